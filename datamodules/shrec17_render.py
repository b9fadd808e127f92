"""Spherical images of a mesh by ray casting (s2cnn ``render_model`` / ``ProjectOnSphere``), on the
samplings of the networks: the SHREC'17 spherical input.

**Spherical input** (:func:`sphere_channels`, 6 channels, s2cnn ``render_model`` / ``ProjectOnSphere``):
from every sample point ``x`` of the sampling (unit sphere) a ray towards the centre, direction
``−x``; first hit on the mesh gives

1. the distance from ``x`` to the hit (``1`` on a miss),
2. ``cos = n̂ · x`` with ``n̂`` the unit normal of the hit face (the s2cnn code takes the outward
   sample direction ``x``, i.e. minus the ray direction: +1 when the ray meets an outward face
   head-on; ``0`` on a miss),
3. ``sin = ‖n̂ × x‖`` (``0`` on a miss),

then the same three on the convex hull (the mesh itself when qhull fails on a flat mesh, as s2cnn).
Samplings: ``healpix:<nside>`` in NEST order (:func:`models.deepsphere.graph.healpix_vectors`) and
``equiangular:<b>`` (:func:`models.deepsphere.graph.equiangular_vectors`), the vertex order of the
networks. Items are float32 ``(V, 6)``; ``normalize=True`` (default) applies the s2cnn per-channel
``(x − mean) / std`` with mean (0.75, 0.59, 0.54, 0.52, 0.80, 0.51) and std (0.26, 0.50, 0.29, 0.19,
0.18, 0.25) (:data:`CHANNEL_MEAN`, :data:`CHANNEL_STD`). Rays are cast with Embree
(``trimesh.ray.ray_pyembree``, package ``embreex``) when it imports, else with a chunked
Möller–Trumbore test in numpy (:func:`first_hits`, backend ``"numpy"``: exact, but it tests every ray
against every face, so it is slow on large meshes). The mesh is not moved per copy: the rays are
mapped into the mesh's frame (``x ↦ R⁻¹(x/s − t)``) and the BVH is built once per mesh.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import trimesh

from datamodules._common import InputError
from datamodules.meshes import Pose, convex_hull
from datamodules.shrec17_input import BENCH, SAMPLINGS, parse_sampling  # noqa: F401 - re-exported
from models.deepsphere.sampling import Sampling

#: s2cnn ``ProjectOnSphere`` per-channel normalisation (s2cnn ``examples/shrec17/dataset.py``)
CHANNEL_MEAN = (0.75, 0.59, 0.54, 0.52, 0.80, 0.51)
CHANNEL_STD = (0.26, 0.50, 0.29, 0.19, 0.18, 0.25)


# --------------------------------------------------------------------------- samplings
def sampling_vectors(spec: str | Sampling) -> np.ndarray:
    """Unit vectors ``(V, 3)`` of ``healpix:<nside>`` (NEST) or ``equiangular:<b>``, the networks'
    vertex order. Read-only, cached per process.

    >>> sampling_vectors("healpix:2").shape, sampling_vectors("equiangular:4").shape
    ((48, 3), (64, 3))
    """
    return parse_sampling(spec).vertices()


# --------------------------------------------------------------------------- ray casting
def embree_available() -> bool:
    """True when Embree (``embreex``) imports, so trimesh's Embree ray intersector works."""
    try:
        import embreex  # noqa: F401
        from trimesh.ray import ray_pyembree  # noqa: F401
    except Exception:
        return False
    return True


def ray_backend(backend: str = "auto") -> str:
    """``"embree"`` or ``"numpy"``: the backend ``auto`` picks (Embree when it imports)."""
    if backend == "auto":
        return "embree" if embree_available() else "numpy"
    if backend not in ("embree", "numpy"):
        raise ValueError(f"ray backend must be auto, embree or numpy, got {backend!r}")
    if backend == "embree" and not embree_available():
        raise InputError(f"{BENCH}: the Embree ray backend needs the package embreex (pip install embreex)")
    return backend


def _moller_trumbore(m: trimesh.Trimesh, o: np.ndarray, d: np.ndarray,
                     pairs: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """First hit of every ray against every face: (face index or −1, ray parameter)."""
    tri = m.triangles
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    n_rays = len(o)
    best_t = np.full(n_rays, np.inf)
    best_f = np.full(n_rays, -1, dtype=np.int64)
    step_r = max(1, pairs // max(len(tri), 1))
    eps = 1e-12
    for a in range(0, n_rays, step_r):
        oo, dd = o[a:a + step_r, None, :], d[a:a + step_r, None, :]
        p = np.cross(dd, e2[None])
        det = np.einsum("rfk,fk->rf", p, e1)
        ok = np.abs(det) > eps
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = oo - v0[None]
        u = np.einsum("rfk,rfk->rf", s, p) * inv
        q = np.cross(s, e1[None])
        w = np.einsum("rfk,rfk->rf", np.broadcast_to(dd, q.shape), q) * inv
        t = np.einsum("fk,rfk->rf", e2, q) * inv
        hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > eps)
        t = np.where(hit, t, np.inf)
        f = t.argmin(1)
        tb = t[np.arange(len(f)), f]
        best_t[a:a + step_r] = tb
        best_f[a:a + step_r] = np.where(np.isfinite(tb), f, -1)
    return best_f, best_t


def first_hits(m: trimesh.Trimesh, origins: np.ndarray, directions: np.ndarray,
               backend: str = "auto", intersector=None) -> tuple[np.ndarray, np.ndarray]:
    """First face hit by each ray ``origins + τ·directions`` (τ > 0): face index (−1 on a miss) and
    τ (``inf`` on a miss). Embree finds the face; τ is then the exact plane intersection in float64
    (for a ray grazing the face's plane, the projection of the face centre on the ray)."""
    backend = ray_backend(backend)
    if backend == "numpy":
        return _moller_trumbore(m, origins, directions)
    if intersector is None:
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        intersector = RayMeshIntersector(m)
    f = np.asarray(intersector.intersects_first(origins, directions), dtype=np.int64)
    tau = np.full(len(f), np.inf)
    hit = f >= 0
    if hit.any():
        n = m.face_normals[f[hit]]
        v0 = m.triangles[f[hit], 0]
        o, d = origins[hit], directions[hit]
        nd = np.einsum("ij,ij->i", n, d)
        flat = np.abs(nd) < 1e-12
        t_plane = np.einsum("ij,ij->i", n, v0 - o) / np.where(flat, 1.0, nd)
        t_centre = np.einsum("ij,ij->i", m.triangles_center[f[hit]] - o, d) / np.einsum("ij,ij->i", d, d)
        tau[hit] = np.where(flat, t_centre, t_plane)
    return f, tau


def render(m: trimesh.Trimesh, x: np.ndarray, pose: Pose | None = None, backend: str = "auto",
           intersector=None) -> np.ndarray:
    """The three s2cnn channels ``(V, 3)`` (distance, cos, sin; see the module docstring) of the
    mesh ``m`` moved by ``pose`` (``None``: as it is), seen from the unit vectors ``x``.

    The rays are mapped into the mesh's frame instead of moving the mesh: origin
    ``R⁻¹(x/s − t)``, direction ``−R⁻¹x``; the world distance is ``s·τ`` and ``n̂ · x = n̂' · R⁻¹x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if pose is None:
        pose = Pose(np.eye(3), np.zeros(3), 1.0)
    u = x @ pose.R                     # rows R⁻¹ x (R orthogonal)
    origins = (x / pose.s - pose.t) @ pose.R
    f, tau = first_hits(m, origins, -u, backend, intersector)
    out = np.zeros((len(x), 3))
    out[:, 0] = 1.0
    hit = f >= 0
    if hit.any():
        n = m.face_normals[f[hit]]
        uh = u[hit]
        out[hit, 0] = pose.s * tau[hit]
        out[hit, 1] = np.einsum("ij,ij->i", n, uh)
        out[hit, 2] = np.linalg.norm(np.cross(n, uh), axis=1)
    return out


def sphere_channels(m: trimesh.Trimesh, x: np.ndarray, poses: Sequence[Pose | None] = (None,),
                    backend: str = "auto", hull: trimesh.Trimesh | None = None) -> np.ndarray:
    """Raw (unnormalised) 6-channel spherical images ``(len(poses), V, 6)`` float32 of a
    preprocessed mesh: :func:`render` on the mesh, then on its convex hull. The hull of the moved
    mesh is the moved hull (a similarity), so both ray structures are built once for all poses."""
    hull = convex_hull(m) if hull is None else hull
    backend = ray_backend(backend)
    isect = [None, None]
    if backend == "embree":
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        isect = [RayMeshIntersector(m), RayMeshIntersector(hull)]
    out = np.empty((len(poses), len(x), 6), dtype=np.float32)
    for i, pose in enumerate(poses):
        out[i, :, :3] = render(m, x, pose, backend, isect[0])
        out[i, :, 3:] = render(hull, x, pose, backend, isect[1])
    return out


def normalize_channels(x: np.ndarray | torch.Tensor):
    """The s2cnn ``(x − mean) / std`` per channel on the last axis (6 channels)."""
    mean = np.asarray(CHANNEL_MEAN, dtype=np.float32)
    std = np.asarray(CHANNEL_STD, dtype=np.float32)
    if isinstance(x, torch.Tensor):
        return (x - torch.from_numpy(mean)) / torch.from_numpy(std)
    return (x - mean) / std
