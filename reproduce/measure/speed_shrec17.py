"""Speed section: SHREC'17 input preprocessing, meshes per second (same run).

Paper: Cohen et al. 2018 and Defferrard et al. 2020 feed SHREC'17 meshes to spherical CNNs as
6-channel spherical images (a ray from every sample point towards the centre, hit distance and
normal angle on the mesh and on its convex hull, ``datamodules/shrec17_render.py``); Weiler et al. 2018
voxelise them (obj2voxel ``--size 64 --double``). Every mesh is preprocessed once per augmentation
copy, so this throughput bounds how fast a new data set or augmentation is ready. Measured here:

* ``sphere_channels`` (6 channels, one random pose) on HEALPix Nside 32 (12,288 rays) and
  equiangular b = 64 (16,384 rays), per mesh including the convex hull and the ray structures,
  against the floor: one bare ``intersects_first`` query of the same rays on the mesh alone (the
  ray-casting backend's own cost for channel 0);
* ``voxelize_surface`` (obj2voxel ``--double``: touched sub-cubes of a 2n grid, 0..8 per voxel) at
  33³ and 64³, against trimesh's own surface voxeliser (``Trimesh.voxelized``) at the same 2n pitch;
* on the stand-in's procedural models (a few hundred faces, like many ShapeNet parts) and on a
  denser mesh (an icosphere of 20,480 faces, typical of a ShapeNet model).

``quick=True``: two small meshes, HEALPix only, voxels at 17³ (seconds).
"""
from __future__ import annotations

import numpy as np
import trimesh

from reproduce.measure.timing import time_fn

TITLE = "SHREC'17 preprocessing: ray casting and voxelising, meshes per second"


def _meshes(quick: bool) -> list[tuple[str, trimesh.Trimesh]]:
    from datamodules.meshes import centre_and_scale
    from datamodules.shrec17_standin import SYNSETS, build_model

    rng = np.random.default_rng(0)
    subs = [sub for _, (_, ss) in SYNSETS.items() for sub, _ in ss]
    stand_in = [build_model(s, rng, np.eye(3)) for s in subs[:2 if quick else 8]]
    out = [(f"stand-in models (mean of {len(stand_in)}, {int(np.mean([len(m.faces) for m in stand_in]))} faces)",
            stand_in)]
    if not quick:
        out.append(("icosphere, 20,480 faces", [trimesh.creation.icosphere(subdivisions=5)]))
    return [(name, [centre_and_scale(m) for m in ms]) for name, ms in out]


def _row(what: str, fn, floor, k: int, reps: int, notes: str) -> dict:
    """One row: ``fn`` and ``floor`` each process all ``k`` meshes once; times per mesh."""
    t, f = time_fn(fn, 1, reps), time_fn(floor, 1, reps)
    return {"what": what, "time_ms": 1e3 * t / k, "floor_ms": 1e3 * f / k, "ratio": t / f, "meshes_per_s": k / t,
            "notes": notes}


def measure(quick: bool = False, device: str = "cpu") -> tuple[str, list[dict]]:
    """Return ``(title, rows)``; ``ratio`` = time / floor, ``meshes_per_s`` = 1 / time."""
    from datamodules.meshes import draw_pose
    from datamodules.shrec17_render import ray_backend, render, sampling_vectors, sphere_channels
    from datamodules.voxelize import voxelize_surface

    backend = ray_backend("auto")
    reps = 1 if quick else 3
    rows: list[dict] = []
    for label, meshes in _meshes(quick):
        for spec in ("healpix:32",) if quick else ("healpix:32", "equiangular:64"):
            x = sampling_vectors(spec)
            poses = [draw_pose(m.vertices, 0, i, 0) for i, m in enumerate(meshes)]

            def full():
                for m, p in zip(meshes, poses):
                    sphere_channels(m, x, (p,), backend)

            def floor():
                for m, p in zip(meshes, poses):
                    render(m, x, p, backend)

            rows.append(_row(f"ray casting 6 channels, {spec} ({len(x):,} rays), {label}", full, floor, len(meshes),
                             reps, f"backend {backend}; floor: one ray query + 3 channels on the mesh only "
                                   "(no hull, no hull rays)"))
        for n in (17,) if quick else (33, 64):
            def vox():
                for m in meshes:
                    voxelize_surface(m.vertices, m.faces, n, double=True)

            def tri():
                for m in meshes:
                    m.voxelized(pitch=2.0 / (2 * n))

            rows.append(_row(f"voxelise (obj2voxel --double), {n}³, {label}", vox, tri, len(meshes), reps,
                             f"floor: trimesh Trimesh.voxelized at the same {2 * n}³ pitch (surface only, "
                             "no sub-cube counts)"))
    return TITLE, rows
