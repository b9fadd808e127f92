"""SHREC'17 3D shape classification and retrieval data (ShapeNet Core55, "perturbed" split).

Papers: Cohen et al., Spherical CNNs (ICLR 2018) §5.3; Defferrard et al., DeepSphere (ICLR 2020)
"3D objects recognition"; Weiler et al., 3D Steerable CNNs (NeurIPS 2018) §5.3. Reference code:
jonas-koehler/s2cnn ``examples/shrec17/`` (rays, channels, normalisation) and mariogeiger/se3cnn
``examples/shrec17/`` (voxels); metrics: the official SHREC'17 evaluator (``Evaluator.js``,
``Metrics.js``).

**Layout read from** ``data_dir`` (the SHREC'17 download)::

    train_perturbed/<id>.obj   val_perturbed/<id>.obj   test_perturbed/<id>.obj
    train.csv  val.csv        header id,synsetId,subSynsetId,modelId,split
    test.csv | all.csv | all.csv.gz   labels of the test split (only needed to score it)

Columns are found by name (any order, extra columns ignored, ``subSynsetId`` defaults to the
synset, ``split`` to the csv's); ids are normalised to 6 characters
(:func:`models.retrieval.normalize_id`, ``42`` → ``000042``); synset ids stay strings (an
all-digit one shorter than 8 characters, e.g. ``2691156`` from a spreadsheet, is zero-padded back
to ``02691156``); CRLF, a UTF-8 BOM and blank lines are accepted. A split's rows come from
``<split>.csv``, else from the rows of ``all.csv`` / ``all.csv.gz`` with that split. A row whose
mesh file is missing is reported on stderr and skipped, and so is a broken mesh (empty or
unreadable file, no faces, NaN/inf vertices, only degenerate faces, zero extent): one line each,
naming the file and the reason. A split with nothing usable left is an
:class:`~datamodules._common.InputError`.

Mesh files: ``.obj`` is read by :func:`read_obj` (face corners ``a/b/c``, ``a//c``, ``a/b`` reduced to
the vertex index, the s2cnn ``_fix``; negative indices; polygons fan-triangulated as obj2voxel
does), ``.off`` by :func:`read_off`, ``.ply`` through ``trimesh.load(..., force="mesh", process=False)``.
The counts a header declares are checked (OFF vertices and faces, PLY elements), and an ``.obj``
whose last line stops without a line end is refused: a file cut short is a broken mesh, never a
smaller one.

**Folder-per-class layout** (e.g. ModelNet, for evaluating a trained model on other meshes):
``<data_dir>/<class>/<name>.obj|.off|.ply``, or with ``train/``, ``val/``, ``test/`` sub-folders
(``<class>/train/<name>.off``; files directly in a class folder belong to the test split). The class
folder's name is the synset and the sub-synset; ids are assigned 0, 1, ... in sorted order (split,
class, path). It is used when ``data_dir`` has neither ``*_perturbed/`` folders nor csv files.

**Mesh preprocessing** (s2cnn ``examples/shrec17/dataset.py`` ``ToMesh``): merge duplicate
vertices, consistent outward winding (``fix_normals``), fill single-triangle/quad holes, drop
degenerate and duplicate faces; centre on the **area-weighted centroid of the triangles** (trimesh's
``Trimesh.centroid``, as s2cnn ``mesh.centroid``); scale the largest vertex radius to 1; then every
augmentation copy ``c`` of model ``id`` draws, from ``torch_generator(seed, id, c)``, a Haar rotation
``R`` (:func:`models.geometry.random_rotation`; identity with ``rotate=False``) and a translation
``t = τ·u`` with ``u`` uniform on the unit sphere and ``τ ~ U(0, translate)`` (s2cnn: a random
rotation, a shift ``U(0, 0.1)`` along x, and a second random rotation — the same distribution), and
maps ``v ↦ s·(R v + t)`` with ``s`` making the largest radius 0.99. The draws depend only on
(``seed``, id, copy), so the cache is reproducible and shared by runs of the same ``seed``.

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

**Voxel input** (:func:`voxelize_surface`, for the steerable CNN): the reference is
``obj2voxel --size 64 --double`` (github.com/mariogeiger/obj2voxel, called by se3cnn
``util/dataset/shapes.py`` and ``examples/shrec17/train.py``, which then divides by 8). obj2voxel
marks every voxel that a triangle overlaps (exact triangle/box overlap, separating-axis test) —
a *surface* voxelisation, no filling — and ``--double`` does this on a grid of twice the edge and
stores, per output voxel, how many of its 8 sub-cubes are touched (0–8). Here: the same
separating-axis test, vectorised over (triangle, voxel) pairs after splitting large triangles
(exact, the union of the pieces is the triangle), then ``count / 8``: float32 ``(1, n, n, n)`` in
``[0, 1]``, axis 0 = x, 1 = y, 2 = z. ``voxel_double=False`` gives the plain 0/1 surface occupancy.
Grid placement ``voxel_fit``: ``"sphere"`` (default; the centring/scaling/augmentation of the
spherical input, the grid spans ``[−1, 1]³`` so the 0.99 ball fits) or ``"box"`` (obj2voxel's: the
grid is fitted to the axis-aligned bounding box of the rotated mesh, its longest side filling the
grid, centred on the box; this scale changes with the orientation). se3cnn applies its input
low-pass (``low_pass_filter(x, 2)``) in the model here (``Shrec17SE3Net(input_lowpass=True)``).

**Cache.** Every (mesh, augmentation copy) is computed once and stored as ``.npz`` (loaded with
``allow_pickle=False``) under ``cache_dir`` (default ``<data_dir>/cache``) ``/<key>/<split>/<id>_<copy>.npz``,
``key`` naming the input and hashing the preprocessing parameters (:meth:`Shrec17DataModule.cache_key`).
Each file stores the source's path, size and mtime: a changed mesh is recomputed. Files are written
to a temporary name and renamed, and a split is filled under a lock file, so DDP ranks and
concurrent runs never see half-written caches; a per-split manifest (``<split>.json``) lets later
runs skip the per-file check. A cache file that fails to load is recomputed when it is read.
``preprocess_workers`` (default ``num_workers``) > 0 computes with a multiprocessing pool.
``dm.preprocess_stats`` describes the last preprocessing (a later call of the same instance that
only finds that cache keeps it), for the benchmark's tables: ``meshes``
(mesh copies computed), ``seconds`` (spent computing them), ``meshes_per_s``, ``backend``
(``embree`` / ``numpy`` rays, ``numpy-sat`` voxels), ``cached`` (copies reused), ``from_cache``
(nothing computed), ``skipped`` (missing and broken meshes), ``workers``, ``input``, ``grid``.
Any error while preprocessing one mesh (trimesh, qhull) makes it a broken mesh, never a crash.

**Stand-in** (:mod:`datamodules.shrec17_standin`): procedural shapes of **8 synsets** (airplane,
bottle, car, chair, guitar, lamp, mug, table; real ShapeNet synset ids) with 2–3 sub-synsets of
distinct geometry each, every model Haar-rotated, written in the SHREC'17 layout (``.obj`` and
csv files, plus ``test.csv`` and ``all.csv``) and read back by the same reader. With
``stand_in=True`` set ``num_classes=8``.

Batches are ``(x, y, id)``: ``x`` float32 ``(B, V, 6)`` or ``(B, 1, n, n, n)``, ``y`` int64 class
index (``class_names`` order: sorted synsets of the training split), ``id`` int64 model id.

Command line::

    python -m datamodules.shrec17 standin --out DIR [--train 48 --val 12 --test 16 --seed 0]
    python -m datamodules.shrec17 preprocess --data-dir DIR --input sphere --sampling healpix:32
"""
from __future__ import annotations

import argparse
import csv
import fcntl
import functools
import gzip
import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import trimesh
from torch.utils.data import DataLoader, Dataset

from datamodules._common import (InputError, atomic_write_text, eval_batch, eval_sampler, per_rank_batch,
                                 torch_generator)
from models.geometry import random_rotation
from models.retrieval import normalize_id

BENCH = "shrec17"
SPLITS = ("train", "val", "test")
MESH_SUFFIXES = (".obj", ".off", ".ply")
CSV_COLUMNS = ("id", "synsetId", "subSynsetId", "modelId", "split")
#: s2cnn ``ProjectOnSphere`` per-channel normalisation (s2cnn ``examples/shrec17/dataset.py``)
CHANNEL_MEAN = (0.75, 0.59, 0.54, 0.52, 0.80, 0.51)
CHANNEL_STD = (0.26, 0.50, 0.29, 0.19, 0.18, 0.25)
#: the final radius of the preprocessed mesh (s2cnn rescales to 0.99 inside the unit sphere)
FINAL_RADIUS = 0.99
#: bump when the cached numbers change meaning (part of the cache key)
CACHE_VERSION = 1
HINT = ("put the SHREC'17 files there (train_perturbed/, val_perturbed/, train.csv, val.csv; "
        "as laid out by the s2cnn examples/shrec17 download) or use --stand-in")
#: at most this many missing-file rows are named per split (the rest are counted)
MAX_NAMED = 20
#: the voxeliser splits triangles wider than this many grid cells (speed only: the result is exact)
SPLIT_EXTENT = 12.0


class BrokenMesh(Exception):
    """A mesh that cannot be used; the message is the reason shown to the user."""


# --------------------------------------------------------------------------- mesh files
def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(n, 3)`` float64 and triangles ``(m, 3)`` int64 of a Wavefront ``.obj``.

    Only ``v`` and ``f`` lines are used. A face corner ``a``, ``a/b``, ``a//c`` or ``a/b/c`` is the
    vertex ``a`` (1-based; negative = relative to the vertices read so far); a polygon of k ≥ 3
    corners becomes the fan ``(0, i, i+1)``; faces of fewer corners are ignored. Problems raise
    :class:`BrokenMesh` with the line number: an index out of range, an unreadable number, and a
    last ``v``/``vn``/``vt``/``f`` line without a line end (a file cut short; .obj declares no counts).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "q.obj"
    >>> _ = p.write_text("v 0 0 0\\nv 1 0 0\\nv 1 1 0\\nv 0 1 0\\nf 1/1/1 2/2/2 3/3/3 -1/4/4\\n")
    >>> read_obj(p)[1].tolist()
    [[0, 1, 2], [0, 2, 3]]
    """
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise BrokenMesh("empty file")
    if b"\0" in raw[:4096]:
        raise BrokenMesh("not a text .obj file (binary content)")
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    last = lines[-1].split()[:1] if lines else []
    if not raw.endswith((b"\n", b"\r")) and last and last[0] in ("v", "vn", "vt", "f"):
        raise BrokenMesh(f"line {len(lines)}, the last, stops without a line end: the file looks cut "
                         f"short (if it is complete, end it with a newline)")
    verts: list[tuple[float, float, float]] = []
    tris: list[tuple[int, int, int]] = []
    for ln, line in enumerate(lines, 1):
        line = line.strip()
        if len(line) < 2 or line[0] not in "vf" or line[1] not in " \t":
            continue
        parts = line.split()
        if parts[0] == "v":
            try:
                verts.append((float(parts[1]), float(parts[2]), float(parts[3])))
            except (ValueError, IndexError):
                raise BrokenMesh(f"line {ln}: unreadable vertex {line[:60]!r}") from None
            continue
        corners = []
        for tok in parts[1:]:
            try:
                k = int(tok.split("/", 1)[0])
            except ValueError:
                raise BrokenMesh(f"line {ln}: unreadable face corner {tok!r}") from None
            k = k - 1 if k > 0 else len(verts) + k
            if not 0 <= k < len(verts):
                raise BrokenMesh(f"line {ln}: face index {tok.split('/', 1)[0]} out of range "
                                 f"({len(verts)} vertices read so far)")
            corners.append(k)
        tris.extend((corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1))
    v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    return v, f


_OFF_KEYWORD = re.compile(r"^(ST)?C?N?(4?)(n?)OFF(.*)$")


def read_off(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a text ``.off`` file (``OFF``, ``COFF``, ``NOFF``, ``STOFF``: the
    first three numbers of a vertex line are used), polygons fan-triangulated as in :func:`read_obj`.
    The counts the header declares are checked: fewer vertex or complete face lines than declared
    (a file cut short), a face line with fewer indices than it announces, an index out of range
    and an unreadable number raise :class:`BrokenMesh` naming the problem. ModelNet's glitch
    (counts on the ``OFF`` line, ``OFF490 518 0``) and ``#`` comments are accepted.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "q.off"
    >>> _ = p.write_text("OFF\\n4 2 0\\n0 0 0\\n1 0 0\\n1 1 0\\n0 1 0\\n3 0 1 2\\n")
    >>> read_off(p)
    Traceback (most recent call last):
    ...
    datamodules.shrec17.BrokenMesh: the header declares 2 faces, the file holds 1 complete face line(s): it looks cut short
    """
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise BrokenMesh("empty file")
    if b"\0" in raw[:4096]:
        raise BrokenMesh("not a text .off file (binary content; binary OFF is not read)")
    rows = [(ln, line.split("#", 1)[0].split())
            for ln, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1)]
    rows = [(ln, tok) for ln, tok in rows if tok]
    if not rows:
        raise BrokenMesh("empty file")
    m = _OFF_KEYWORD.match(rows[0][1][0])
    if not m:
        raise BrokenMesh(f"line {rows[0][0]}: no OFF header (first word {rows[0][1][0][:20]!r})")
    if m.group(2) or m.group(3):
        raise BrokenMesh(f"line {rows[0][0]}: {rows[0][1][0]} (4-D or n-D OFF) is not a 3-D mesh")
    head = ([m.group(4)] if m.group(4) else []) + rows[0][1][1:]
    if "BINARY" in (t.upper() for t in head):
        raise BrokenMesh("binary OFF is not read (write it as text OFF, .obj or .ply)")
    body = rows[1:]
    if not head:
        if not body:
            raise BrokenMesh("the header has no vertex and face counts")
        (ln, head), body = body[0], body[1:]
    else:
        ln = rows[0][0]
    try:
        nv, nf = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise BrokenMesh(f"line {ln}: expected the counts 'vertices faces edges', got {' '.join(head)[:40]!r}") from None
    if nv < 0 or nf < 0:
        raise BrokenMesh(f"line {ln}: negative counts {nv} {nf}")
    if len(body) < nv:
        raise BrokenMesh(f"the header declares {nv} vertices, the file holds {len(body)} vertex line(s) "
                         f"and no faces: it looks cut short")
    try:
        v = np.array([tok[:3] for _, tok in body[:nv]], dtype=np.float64)
    except ValueError:
        bad = next(ln for ln, tok in body[:nv] if len(tok) < 3 or not _floats(tok[:3]))
        raise BrokenMesh(f"line {bad}: unreadable vertex") from None
    tris: list[tuple[int, int, int]] = []
    complete = 0
    for ln, tok in body[nv:nv + nf]:
        try:
            k = int(tok[0])
            idx = [int(t) for t in tok[1:1 + k]]
        except ValueError:
            raise BrokenMesh(f"line {ln}: unreadable face {' '.join(tok)[:60]!r}") from None
        if len(idx) < k:
            break  # announced more indices than the line holds: a cut line (reported below)
        for i in idx:
            if not 0 <= i < nv:
                raise BrokenMesh(f"line {ln}: face index {i} out of range ({nv} vertices)")
        tris.extend((idx[0], idx[i], idx[i + 1]) for i in range(1, k - 1))
        complete += 1
    if complete < nf:
        raise BrokenMesh(f"the header declares {nf} faces, the file holds {complete} complete face "
                         f"line(s): it looks cut short")
    return v.reshape(-1, 3), np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _floats(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def check_ply_counts(path: Path, v: np.ndarray, f: np.ndarray) -> None:
    """:class:`BrokenMesh` when a ``.ply`` file holds fewer records than its header declares
    (trimesh refuses a short binary body but reads a short ASCII body as a smaller mesh): the
    vertex count must match; in ASCII files every element needs its declared number of lines
    and every face line the indices it announces."""
    with open(path, "rb") as fh:
        header = []
        for _ in range(10000):
            line = fh.readline()
            if not line:
                return  # trimesh read it, so this does not happen; nothing to check against
            words = line.decode("ascii", errors="replace").split()
            header.append(words)
            if words[:1] == ["end_header"]:
                break
        body = fh.read()
    fmt = next((w[1] for w in header if w[:1] == ["format"] and len(w) > 1), "")
    elements = [(w[1], int(w[2])) for w in header if w[:1] == ["element"] and len(w) > 2 and w[2].isdigit()]
    declared = dict(elements)
    if "vertex" in declared and declared["vertex"] != len(v):
        raise BrokenMesh(f"the header declares {declared['vertex']} vertices, {len(v)} were read")
    if fmt != "ascii":
        return
    lines = [ln for ln in body.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    start = 0
    for name, count in elements:
        block = lines[start:start + count]
        complete = len(block)
        if name == "face" and block:
            last = block[-1].split()
            if not last[0].isdigit() or len(last) < 1 + int(last[0]):
                complete -= 1
        if complete < count:
            raise BrokenMesh(f"the header declares {count} {name} records, the file holds {complete} "
                             f"complete line(s): it looks cut short")
        start += count


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of an ``.obj`` (:func:`read_obj`), ``.off`` (:func:`read_off`) or
    ``.ply`` (trimesh, ``process=False``, then :func:`check_ply_counts`), checked by
    :func:`check_mesh`; :class:`BrokenMesh` with the reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BrokenMesh("empty file")
        if path.suffix.lower() == ".obj":
            v, f = read_obj(path)
        elif path.suffix.lower() == ".off":
            v, f = read_off(path)
        else:
            try:
                m = trimesh.load(str(path), file_type=path.suffix.lower()[1:], force="mesh", process=False)
            except BrokenMesh:
                raise
            except Exception as e:  # trimesh raises many kinds on garbage
                raise BrokenMesh(f"unreadable {path.suffix} file ({type(e).__name__}: {e})") from None
            if not isinstance(m, trimesh.Trimesh):
                raise BrokenMesh("no faces")
            v = np.asarray(m.vertices, dtype=np.float64).reshape(-1, 3)
            f = np.asarray(m.faces, dtype=np.int64).reshape(-1, 3)
            check_ply_counts(path, v, f)
    except OSError as e:
        raise BrokenMesh(f"unreadable ({e.strerror or e})") from None
    check_mesh(v, f)
    return v, f


def check_mesh(v: np.ndarray, f: np.ndarray) -> None:
    """:class:`BrokenMesh` unless the mesh has faces, finite vertices, face indices in range (a
    ``.ply`` face list is checked here) and a nonzero extent.

    >>> check_mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]))
    Traceback (most recent call last):
    ...
    datamodules.shrec17.BrokenMesh: zero extent (all vertices coincide)
    """
    if len(v) == 0:
        raise BrokenMesh("no vertices")
    if len(f) == 0:
        raise BrokenMesh("no faces")
    bad = ~np.isfinite(v).all(1)
    if bad.any():
        raise BrokenMesh(f"{int(bad.sum())} of {len(v)} vertices are NaN or infinite")
    out = (f < 0) | (f >= len(v))
    if out.any():
        row = int(np.nonzero(out.any(1))[0][0])
        raise BrokenMesh(f"{int(out.any(1).sum())} face(s) index vertices out of range (face {row}: "
                         f"{' '.join(map(str, f[row].tolist()))}; {len(v)} vertices, indices 0..{len(v) - 1})")
    used = v[np.unique(f)]
    if not (np.ptp(used, axis=0).max() > 0):
        raise BrokenMesh("zero extent (all vertices coincide)")


def clean_mesh(v: np.ndarray, f: np.ndarray) -> trimesh.Trimesh:
    """The s2cnn ``ToMesh`` clean-up, on a copy pre-scaled into the unit box (trimesh's merge and
    degeneracy tolerances are absolute): merge duplicate vertices, drop degenerate and duplicate
    faces and unreferenced vertices, make the winding consistent and outward (``fix_normals``),
    fill single-triangle/quad holes. :class:`BrokenMesh` when no face of nonzero area is left."""
    lo, hi = v.min(0), v.max(0)
    v = (v - (lo + hi) / 2) / (np.ptp(v, axis=0).max() / 2)
    m = trimesh.Trimesh(v, f, process=False)
    m.merge_vertices()
    m.update_faces(m.nondegenerate_faces())
    m.update_faces(m.unique_faces())
    m.remove_unreferenced_vertices()
    if len(m.faces) == 0 or not m.area > 0:
        raise BrokenMesh("all faces are degenerate (zero area)")
    m.fix_normals()
    m.fill_holes()
    return m


def centre_and_scale(m: trimesh.Trimesh) -> trimesh.Trimesh:
    """Centre on the area-weighted triangle centroid (``Trimesh.centroid``), largest radius 1."""
    v = m.vertices - m.centroid
    r = np.linalg.norm(v, axis=1).max()
    if not r > 0:
        raise BrokenMesh("zero extent (all vertices coincide)")
    return trimesh.Trimesh(v / r, m.faces, process=False)


def load_normalized(path: str | os.PathLike) -> trimesh.Trimesh:
    """:func:`read_mesh` → :func:`clean_mesh` → :func:`centre_and_scale`."""
    return centre_and_scale(clean_mesh(*read_mesh(path)))


def convex_hull(m: trimesh.Trimesh) -> trimesh.Trimesh:
    """The convex hull (outward faces), or the mesh itself when qhull fails (flat mesh; s2cnn)."""
    try:
        h = m.convex_hull
        if len(h.faces) == 0:
            return m
        return h
    except Exception:  # scipy QhullError and trimesh's ValueError on degenerate point sets
        return m


# --------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class Pose:
    """The similarity ``v ↦ s·(R v + t)`` of one augmentation copy."""

    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,)
    s: float

    def apply(self, v: np.ndarray) -> np.ndarray:
        return self.s * (v @ self.R.T + self.t)


def draw_pose(vertices: np.ndarray, seed: int, model_id: int, copy: int, rotate: bool = True,
              translate: float = 0.1) -> Pose:
    """The augmentation of copy ``copy`` of model ``model_id`` (see the module docstring), for a
    mesh already centred and scaled (:func:`centre_and_scale`); ``s`` brings its largest radius
    to :data:`FINAL_RADIUS`.

    >>> v = np.eye(3)
    >>> p = draw_pose(v, 0, 7, 0)
    >>> round(float(np.linalg.norm(p.apply(v), axis=1).max()), 6), np.allclose(p.R @ p.R.T, np.eye(3))
    (0.99, True)
    """
    g = torch_generator(int(seed), int(model_id), int(copy))
    R = random_rotation(generator=g).numpy() if rotate else np.eye(3)
    t = np.zeros(3)
    if translate > 0:
        u = torch.randn(3, generator=g, dtype=torch.float64).numpy()
        t = u / np.linalg.norm(u) * float(translate) * float(torch.rand((), generator=g, dtype=torch.float64))
    r = np.linalg.norm(vertices @ R.T + t, axis=1).max()
    return Pose(R, t, FINAL_RADIUS / r)


# --------------------------------------------------------------------------- samplings
@functools.lru_cache(maxsize=8)
def sampling_vectors(spec: str) -> np.ndarray:
    """Unit vectors ``(V, 3)`` of ``healpix:<nside>`` (NEST) or ``equiangular:<b>``, the networks'
    vertex order (:mod:`models.deepsphere.graph`). Read-only, cached per process.

    >>> sampling_vectors("healpix:2").shape, sampling_vectors("equiangular:4").shape
    ((48, 3), (64, 3))
    """
    from models.deepsphere.graph import equiangular_vectors, healpix_vectors

    kind, _, n = str(spec).partition(":")
    try:
        n = int(n)
    except ValueError:
        n = -1
    try:
        if kind == "healpix" and n > 0:
            v = healpix_vectors(n)
        elif kind == "equiangular" and n > 0:
            v = equiangular_vectors(n)
        else:
            raise ValueError("unknown")
    except ValueError as e:
        raise InputError(f"{BENCH}: data.sampling '{spec}' is not a sampling of this benchmark "
                         f"(healpix:<nside, a power of 2> or equiangular:<bandwidth>)"
                         + ("" if str(e) == "unknown" else f": {e}")) from None
    v = np.ascontiguousarray(v, dtype=np.float64)
    v.setflags(write=False)
    return v


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


# --------------------------------------------------------------------------- voxeliser
def _split_large(g: np.ndarray, max_extent: float) -> np.ndarray:
    """Split triangles ``(T, 3, 3)`` at their edge midpoints until every bounding box is at most
    ``max_extent`` (grid units) wide; the pieces cover exactly the original triangle."""
    done = []
    while len(g):
        big = np.ptp(g, axis=1).max(1) > max_extent
        done.append(g[~big])
        g = g[big]
        if not len(g):
            break
        a, b, c = g[:, 0], g[:, 1], g[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        g = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return np.concatenate(done) if done else np.zeros((0, 3, 3))


def _sat_axes(g: np.ndarray) -> np.ndarray:
    """The 13 separating axes ``(T, 13, 3)`` of triangle vs. axis-aligned box: the 3 box axes,
    the triangle normal and the 9 cross products of a box axis with a triangle edge."""
    T = len(g)
    edges = np.stack([g[:, 1] - g[:, 0], g[:, 2] - g[:, 1], g[:, 0] - g[:, 2]], 1)  # (T, 3, 3)
    axes = np.zeros((T, 13, 3))
    axes[:, 0, 0] = axes[:, 1, 1] = axes[:, 2, 2] = 1.0
    axes[:, 3] = np.cross(edges[:, 0], edges[:, 1])
    eye = np.eye(3)
    for k in range(3):
        axes[:, 4 + 3 * k: 7 + 3 * k] = np.cross(eye[k][None, None, :], edges)
    return axes


def voxelize_surface(vertices: np.ndarray, faces: np.ndarray, size: int, double: bool = True,
                     fit: str = "sphere", chunk: int = 1 << 18) -> np.ndarray:
    """Surface voxelisation ``(size, size, size)`` uint8 of a triangle mesh, obj2voxel's meaning.

    A voxel (closed cube) is marked when the triangle meets it (separating-axis test: no
    separating axis among the 13 of triangle vs. box; touching counts). ``double``: mark on a grid
    of edge ``2·size`` and return, per output voxel, the number of its 8 sub-cubes marked (0–8;
    ``--double``); else 0/1 on the ``size`` grid. ``fit="sphere"``: the grid spans ``[−1, 1]³``;
    ``fit="box"``: obj2voxel's placement, cube edge = longest side of the vertices' bounding box
    / grid edge, centred on the box. Axis 0 is x.

    >>> v = np.array([[-.5, -.5, .3], [.5, -.5, .3], [0., .5, .3]])  # a flat triangle at z = 0.3
    >>> g = voxelize_surface(v, np.array([[0, 1, 2]]), 4)       # sub-cubes of edge 0.25: z in [0.25, 0.5]
    >>> np.flatnonzero(g.sum((0, 1))).tolist(), int(g.max())     # one layer, at most its 4 sub-cubes
    ([2], 4)
    """
    size = int(size)
    m = 2 * size if double else size
    v = np.asarray(vertices, dtype=np.float64)
    if fit == "sphere":
        origin, h = np.full(3, -1.0), 2.0 / m
    elif fit == "box":
        lo, hi = v.min(0), v.max(0)
        h = float(np.ptp(v, axis=0).max()) / m
        origin = (lo + hi) / 2 - h * m / 2
    else:
        raise ValueError(f"voxel fit must be 'sphere' or 'box', got {fit!r}")
    g = (v[np.asarray(faces, dtype=np.int64)] - origin) / h       # grid units: voxel i = [i, i+1]
    g = _split_large(g, SPLIT_EXTENT)
    # obj2voxel's candidate range: floor(min − 0.1) .. ceil(max + 0.1), clipped to the grid
    lo = np.clip(np.floor(g.min(1) - 0.1), 0, m).astype(np.int64)
    hi = np.clip(np.ceil(g.max(1) + 0.1), 0, m).astype(np.int64)
    ext = np.maximum(hi - lo, 0)
    count = ext.prod(1)
    keep = count > 0
    g, lo, ext, count = g[keep], lo[keep], ext[keep], count[keep]
    occ = np.zeros((m, m, m), dtype=bool)
    axes = _sat_axes(g)                                             # (T, 13, 3)
    proj = np.einsum("tak,tvk->tav", axes, g)                       # (T, 13, 3 vertices)
    rad = 0.5 * np.abs(axes).sum(2)                                 # box half-width 0.5
    # separated along axis a iff L·c < low or L·c > high (touching is overlap, as Akenine-Möller)
    low, high = proj.min(2) - rad, proj.max(2) + rad
    ends = np.cumsum(count)
    start = 0
    while start < len(g):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + chunk, side="right"))
        stop = max(stop, start + 1)
        n = count[start:stop]
        tri = np.repeat(np.arange(start, stop), n)
        q = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        ny, nz = ext[tri, 1], ext[tri, 2]
        ijk = np.stack([lo[tri, 0] + q // (ny * nz), lo[tri, 1] + (q // nz) % ny, lo[tri, 2] + q % nz], 1)
        c = ijk + 0.5
        # the three box axes, then the triangle's plane, then the nine edge axes, each on the survivors
        keep = np.all((c >= low[tri, :3]) & (c <= high[tri, :3]), 1)
        tri, ijk, c = tri[keep], ijk[keep], c[keep]
        for a in range(3, 13):
            lc = np.einsum("pk,pk->p", axes[tri, a], c)
            keep = (lc >= low[tri, a]) & (lc <= high[tri, a])
            tri, ijk, c = tri[keep], ijk[keep], c[keep]
        occ[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
        start = stop
    if not double:
        return occ.astype(np.uint8)
    return occ.reshape(size, 2, size, 2, size, 2).sum((1, 3, 5), dtype=np.uint8)


# --------------------------------------------------------------------------- csv files
@dataclass(frozen=True)
class Row:
    """One labelled model: 6-character id, synset, sub-synset, split, and where it was read."""

    id: str
    synset: str
    sub: str
    split: str
    source: str  # "train.csv row 7"


def _synset_text(s: str) -> str:
    s = s.strip()
    return s.zfill(8) if s.isdigit() and len(s) < 8 else s


def read_csv(path: str | os.PathLike, split: str | None = None) -> list[Row]:
    """The rows of a SHREC'17 label file (``.csv`` or ``.csv.gz``), in file order; with ``split``
    only the rows of that split (``test_perturbed`` counts as ``test``). Columns by name, see the
    module docstring; :class:`InputError` naming the file for a missing column, an unreadable id
    or an id given twice.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = p.write_bytes(b"split,synsetId,id,extra\\r\\ntrain,2691156,42,x\\r\\n")
    >>> r = read_csv(p)[0]
    >>> r.id, r.synset, r.sub, r.split
    ('000042', '02691156', '02691156', 'train')
    """
    path = Path(path)
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"{BENCH}: {path} is not a readable csv file ({type(e).__name__}: {e})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{BENCH}: {path} is empty; expected the header {','.join(CSV_COLUMNS)}")
    cols = {h.strip().lower(): i for i, h in enumerate(header)}
    for need in ("id", "synsetid"):
        if need not in cols:
            raise InputError(f"{BENCH}: {path} has no column '{need if need == 'id' else 'synsetId'}' "
                             f"(header: {','.join(header)}); expected {','.join(CSV_COLUMNS)}")
    file_split = path.name.split(".")[0].split("_")[0]
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for n, rec in enumerate(reader, 2):
        if not rec or all(not c.strip() for c in rec):
            continue

        def col(name: str, default: str | None = None) -> str | None:
            i = cols.get(name)
            return rec[i].strip() if i is not None and i < len(rec) and rec[i].strip() else default

        raw_id, syn = col("id"), col("synsetid")
        if raw_id is None or syn is None:
            raise InputError(f"{BENCH}: {path} line {n}: empty id or synsetId ({','.join(rec)})")
        try:
            if not raw_id.isdigit():
                raise ValueError
            mid = normalize_id(raw_id)
        except ValueError:
            raise InputError(f"{BENCH}: {path} line {n}: id {raw_id!r} is not a model number "
                             f"(SHREC'17 ids are up to 6 digits)") from None
        row_split = (col("split", file_split) or file_split).split("_")[0]
        if split is not None and row_split != split:
            continue
        if mid in seen:
            raise InputError(f"{BENCH}: {path}: id {mid} appears twice (lines {seen[mid]} and {n})")
        seen[mid] = n
        syn = _synset_text(syn)
        sub = _synset_text(col("subsynsetid", syn))
        rows.append(Row(mid, syn, sub, row_split, f"{path.name} line {n}"))
    return rows


# --------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class Item:
    """One mesh of a split: its labels and file (``path`` None when the file is missing)."""

    row: Row
    path: Path | None

    @property
    def id(self) -> str:
        return self.row.id


@dataclass
class SplitIndex:
    """What the reader found for one split: every labelled row (``rows``, csv order, for the
    evaluator's oracle) and the meshes with a file (``items``)."""

    name: str
    folder: Path
    label_file: Path | None
    rows: list[Row]
    items: list[Item]
    missing: list[Row]


def _mesh_files(folder: Path) -> dict[str, Path]:
    """``{normalised id: path}`` of the mesh files of a SHREC split folder."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in MESH_SUFFIXES and p.is_file() and not p.name.startswith("."):
            stem = p.stem
            key = normalize_id(stem) if stem.isdigit() else stem
            out.setdefault(key, p)  # .obj before .off/.ply for the same id (sorted: o < p)
    return out


def is_shrec_layout(data_dir: Path) -> bool:
    return any((data_dir / n).exists() for n in
               ("train_perturbed", "val_perturbed", "test_perturbed", "train.csv", "val.csv", "all.csv",
                "all.csv.gz"))


def label_file(data_dir: Path, split: str) -> Path | None:
    """``<split>.csv``, else ``all.csv`` / ``all.csv.gz`` (filtered to the split), else None."""
    for name in (f"{split}.csv", "all.csv", "all.csv.gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def index_shrec_split(data_dir: Path, split: str) -> SplitIndex:
    """Rows and mesh files of one split of the SHREC'17 layout (:class:`InputError` when the
    labels or the folder are missing)."""
    folder = data_dir / f"{split}_perturbed"
    lab = label_file(data_dir, split)
    if lab is None:
        if split == "test":
            raise InputError(f"{BENCH}: no labels for the test split in {data_dir}: put all.csv (or "
                             f"test.csv, header {','.join(CSV_COLUMNS)}) in the data dir, or pass "
                             f"data.test_split=val to score the validation split")
        raise InputError(f"{BENCH}: missing {data_dir / f'{split}.csv'} (labels of the {split} split); {HINT}")
    rows = read_csv(lab, split)
    if not rows:
        raise InputError(f"{BENCH}: {lab} lists no model of the {split} split"
                         + ("; put test.csv (or an all.csv with the test rows) there, or pass "
                            "data.test_split=val" if split == "test" else ""))
    if not folder.is_dir():
        raise InputError(f"{BENCH}: missing folder {folder} (the meshes of the {split} split, "
                         f"{len(rows)} listed in {lab.name}); {HINT}")
    files = _mesh_files(folder)
    items, missing = [], []
    for r in rows:
        p = files.get(r.id)
        (items.append(Item(r, p)) if p is not None else missing.append(r))
    return SplitIndex(split, folder, lab, rows, items, missing)


#: class ids named in full in an error before it is shortened
MAX_NAMED_CLASSES = 12


def index_folders(data_dir: Path, exclude: Sequence[Path] = ()) -> dict[str, SplitIndex]:
    """The folder-per-class layout (module docstring): ``{split: SplitIndex}`` of the splits that
    have files. Ids are 0, 1, ... over the sorted (split, class, path)."""
    skip = {p.resolve() for p in exclude}
    classes = sorted(p for p in data_dir.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and p.resolve() not in skip)
    found: dict[str, list[tuple[str, Path]]] = {s: [] for s in SPLITS}
    for c in classes:
        for p in sorted(c.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in MESH_SUFFIXES or p.name.startswith("."):
                continue
            rel = p.relative_to(c).parts
            split = rel[0] if len(rel) > 1 and rel[0] in SPLITS else "test"
            found[split].append((c.name, p))
    out: dict[str, SplitIndex] = {}
    n = 0
    for s in SPLITS:
        rows, items = [], []
        for cls, p in found[s]:
            if n > 999_999:
                raise InputError(f"{BENCH}: {data_dir} holds more than 1,000,000 mesh files")
            r = Row(normalize_id(n), cls, cls, s, str(p.relative_to(data_dir)))
            rows.append(r)
            items.append(Item(r, p))
            n += 1
        if rows:
            out[s] = SplitIndex(s, data_dir, None, rows, items, [])
    if not out:
        raise InputError(f"{BENCH}: {data_dir} holds neither the SHREC'17 layout (train_perturbed/, "
                         f"train.csv, ...) nor class folders of .obj/.off/.ply files; {HINT}")
    return out


def report(lines: Sequence[str]) -> None:
    """Write report lines to stderr (through tqdm, so progress bars stay intact)."""
    if not lines:
        return
    from tqdm import tqdm

    for line in lines:
        tqdm.write(line, file=sys.stderr)


_REPORTED: set[str] = set()


def _report_once(lines: Sequence[str]) -> None:
    new = [ln for ln in lines if ln not in _REPORTED]
    _REPORTED.update(new)
    report(new)


# --------------------------------------------------------------------------- cache
def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


def _atomic_savez(path: Path, compress: bool, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cache_state(path: Path, source: Path, stamp: list[int]) -> str | None:
    """``"ok"``, ``"broken: <reason>"`` for a valid cache file of ``source`` at ``stamp``, else
    None (missing, unreadable or stale)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["source"]) != str(source) or z["stamp"].tolist() != stamp:
                return None
            if "error" in z.files:
                return f"broken: {z['error']}"
            return "ok" if "x" in z.files else None
    except Exception:
        return None


def _compute_task(task: dict) -> tuple[str, str | None, int, float]:
    """Worker: preprocess one mesh and write the requested copies (or one ``error`` file).
    Returns (id, error or None, copies written, seconds)."""
    t0 = time.perf_counter()
    src, stamp = Path(task["source"]), task["stamp"]
    p = task["params"]
    meta = {"source": np.array(str(src)), "stamp": np.array(stamp, dtype=np.int64)}
    try:
        m = load_normalized(src)
        poses = [draw_pose(m.vertices, p["seed"], int(task["id"]), c, p["rotate"], p["translate"])
                 for c, _ in task["outs"]]
        if p["input"] == "sphere":
            xs = list(sphere_channels(m, sampling_vectors(p["sampling"]), poses, p["backend"]))
        else:
            xs = [voxelize_surface(pose.apply(m.vertices), m.faces, p["voxel_size"], p["voxel_double"],
                                   p["voxel_fit"]) for pose in poses]
    except InputError:
        raise
    except Exception as e:  # BrokenMesh, or anything a strange mesh makes trimesh / qhull raise
        why = str(e) if isinstance(e, BrokenMesh) else f"preprocessing failed ({type(e).__name__}: {e})"
        first = Path(task["outs"][0][1]).with_name(f"{task['id']}_0.npz")
        _atomic_savez(first, False, error=np.array(why), **meta)
        return task["id"], why, 0, time.perf_counter() - t0
    for (_, out), x in zip(task["outs"], xs):
        _atomic_savez(Path(out), p["input"] == "voxel", x=x, **meta)
    return task["id"], None, len(task["outs"]), time.perf_counter() - t0


def _pool_context():
    """Worker processes started from a clean server process, never forked from this one: a fork of a
    process whose torch/OpenMP threads hold a lock can hang in the child (seen with ``fork`` when the
    pool follows training in the same process)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # the server imports this module once; workers fork from it
    return ctx


@dataclass
class CacheResult:
    """What :func:`fill_cache` found and did for one split."""

    usable: list[str]               # ids with every copy cached, in item order
    broken: dict[str, str]          # id -> reason
    computed: int                   # copies computed now
    reused: int                     # copies found valid in the cache
    seconds: float                  # time spent computing


def fill_cache(items: Sequence[Item], folder: Path, copies: int, params: dict, workers: int = 0,
               progress: bool = True, desc: str = "") -> CacheResult:
    """Make ``folder`` hold ``<id>_<c>.npz`` for every item and copy ``c < copies`` (or an
    ``error`` file for a broken mesh), computing what is missing or stale, under a lock file;
    then write the manifest ``folder.with_suffix('.json')``. See the module docstring."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder.with_suffix(".json")
    sources = [(it.id, str(it.path.resolve()), _stamp(it.path)) for it in items]
    digest = hashlib.sha256(json.dumps([sources, copies, params], sort_keys=True).encode()).hexdigest()
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            m = _read_manifest(manifest)
            if m is not None and m.get("digest") == digest and all(
                    (folder / f"{i}_{c}.npz").is_file() for i in m["usable"] for c in range(copies)):
                return CacheResult(list(m["usable"]), dict(m["broken"]), 0, len(m["usable"]) * copies, 0.0)
            broken: dict[str, str] = {}
            tasks, reused = [], 0
            for (mid, src, stamp) in sources:
                first = folder / f"{mid}_0.npz"
                state = _cache_state(first, Path(src), stamp)
                if state is not None and state.startswith("broken: "):
                    broken[mid] = state[len("broken: "):]
                    continue
                outs = []
                for c in range(copies):
                    f = folder / f"{mid}_{c}.npz"
                    if (state == "ok" if c == 0 else _cache_state(f, Path(src), stamp) == "ok"):
                        reused += 1
                    else:
                        outs.append((c, str(f)))
                if outs:
                    tasks.append({"id": mid, "source": src, "stamp": stamp, "outs": outs, "params": params})
            t0 = time.perf_counter()
            computed = 0
            bar = tqdm(total=len(tasks), desc=desc or f"{BENCH} preprocess", unit="mesh", leave=False,
                       disable=not progress or not tasks)
            if workers > 0 and len(tasks) > 1:
                with _pool_context().Pool(min(workers, len(tasks))) as pool:
                    results = pool.imap_unordered(_compute_task, tasks, chunksize=1)
                    for mid, err, n, _ in results:
                        computed += n
                        if err is not None:
                            broken[mid] = err
                        bar.update()
            else:
                for task in tasks:
                    mid, err, n, _ = _compute_task(task)
                    computed += n
                    if err is not None:
                        broken[mid] = err
                    bar.update()
            bar.close()
            seconds = time.perf_counter() - t0
            usable = [mid for mid, _, _ in sources if mid not in broken]
            atomic_write_text(manifest, json.dumps({"digest": digest, "usable": usable, "broken": broken,
                                                    "copies": copies, "params": params}) + "\n")
            return CacheResult(usable, broken, computed, reused, seconds)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_manifest(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(m, dict) and isinstance(m.get("usable"), list) and isinstance(m.get("broken"), dict)
    return m if ok else None


# --------------------------------------------------------------------------- dataset
class Shrec17Dataset(Dataset):
    """Cached inputs of one split: item ``k`` is copy ``k % copies`` of mesh ``k // copies``,
    returned as ``(x, y, id)``. A cache file that fails to load is recomputed (and reported)."""

    def __init__(self, folder: Path, items: Sequence[Item], copies: int, class_index: dict[str, int],
                 params: dict, normalize: bool):
        self.folder, self.items, self.copies = Path(folder), list(items), int(copies)
        self.y = [class_index[it.row.synset] for it in self.items]
        self.params, self.normalize = dict(params), bool(normalize)

    def __len__(self) -> int:
        return len(self.items) * self.copies

    def _load(self, path: Path) -> np.ndarray:
        with np.load(path, allow_pickle=False) as z:
            return z["x"]

    def __getitem__(self, k: int):
        it, c = self.items[k // self.copies], k % self.copies
        path = self.folder / f"{it.id}_{c}.npz"
        try:
            x = self._load(path)
        except Exception as e:
            report([f"{BENCH}: cache file {path} is unreadable ({type(e).__name__}); recomputing it"])
            _compute_task({"id": it.id, "source": str(it.path.resolve()), "stamp": _stamp(it.path),
                           "outs": [(c, str(path))], "params": self.params})
            x = self._load(path)
        if self.params["input"] == "sphere":
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            if self.normalize:
                x = normalize_channels(x)
        else:
            x = torch.from_numpy(x.astype(np.float32) / (8.0 if self.params["voxel_double"] else 1.0))[None]
        return x, self.y[k // self.copies], int(it.id)


# --------------------------------------------------------------------------- datamodule
class Shrec17DataModule(pl.LightningDataModule):
    """SHREC'17 meshes as spherical images or voxel grids (module docstring), train / val / test.

    Batches (every loader): ``(x, y, ids)`` — ``x`` float32, ``(B, V, 6)`` for ``input="sphere"``
    (the 6 ray-cast channels on the V points of ``sampling``, normalised per channel) or
    ``(B, 1, n, n, n)`` for ``input="voxel"``; ``y`` int64 ``(B,)``, the class index (synsets in
    :attr:`class_names` order); ``ids`` int64 ``(B,)``, the SHREC'17 model id (retrieval output).
    :meth:`model_batch` gives ``(x, y)``.

    ``data_dir``: the SHREC'17 layout or a folder-per-class layout; with ``stand_in`` the offline
    stand-in is written there first (:mod:`datamodules.shrec17_standin`, sizes
    ``stand_in_train/val/test`` models per synset, ``stand_in_seed``; 8 synsets, so
    ``num_classes=8``). ``input``: ``"sphere"`` (``sampling``) or ``"voxel"`` (``voxel_size``,
    ``voxel_double``, ``voxel_fit``). ``train_augmentations`` / ``test_augmentations``: copies of
    every training / validation-and-test mesh, each with its own draw (``rotate``, ``translate``,
    ``seed``); all copies are items of the split (the test set holds every copy of every mesh,
    with the same id). ``test_split``: ``"test"`` (needs test labels) or ``"val"``.
    ``max_per_class``: keep at most this many training meshes per class (evenly spaced in csv
    order). ``class_names``: fix the class order (e.g. a trained model's) instead of the sorted
    training synsets. ``preprocess_workers``: processes for filling the cache (default
    ``num_workers``; 0 = serial).

    >>> Shrec17DataModule("data", input="voxel", voxel_size=33).cache_key()[:10]
    'voxel33x2-'
    """

    def __init__(self, data_dir: str | os.PathLike, stand_in: bool = False, num_classes: int | None = 55,
                 input: str = "sphere", sampling: str = "healpix:32", voxel_size: int = 64,
                 train_augmentations: int = 1, test_augmentations: int = 1, rotate: bool = True,
                 translate: float = 0.1, normalize: bool = True, test_split: str = "test",
                 max_per_class: int | None = None, batch_size: int = 32, test_batch_size: int = 32,
                 num_workers: int = 0, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                 stand_in_train: int = 48, stand_in_val: int = 12, stand_in_test: int = 16,
                 stand_in_seed: int = 0, voxel_double: bool = True, voxel_fit: str = "sphere",
                 preprocess_workers: int | None = None, class_names: Sequence[str] | None = None,
                 ray_backend: str = "auto", progress: bool = True):
        super().__init__()
        if input not in ("sphere", "voxel"):
            raise InputError(f"{BENCH}: data.input '{input}' unknown; valid: sphere, voxel")
        if test_split not in ("test", "val"):
            raise InputError(f"{BENCH}: data.test_split '{test_split}' unknown; valid: test, val")
        if voxel_fit not in ("sphere", "box"):
            raise InputError(f"{BENCH}: data.voxel_fit '{voxel_fit}' unknown; valid: sphere, box")
        if ray_backend not in ("auto", "embree", "numpy"):
            raise InputError(f"{BENCH}: data.ray_backend '{ray_backend}' unknown; valid: auto, embree, numpy")
        for name, val in (("train_augmentations", train_augmentations), ("test_augmentations", test_augmentations),
                          ("voxel_size", voxel_size), ("batch_size", batch_size), ("test_batch_size", test_batch_size)):
            if int(val) < 1:
                raise InputError(f"{BENCH}: data.{name} must be a positive integer, got {val}")
        if max_per_class is not None and int(max_per_class) < 1:
            raise InputError(f"{BENCH}: data.max_per_class must be positive or null, got {max_per_class}")
        if not 0 <= float(translate) < 1:
            raise InputError(f"{BENCH}: data.translate must be in [0, 1), got {translate}")
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.input = input
        self.sampling, self.voxel_size = str(sampling), int(voxel_size)
        if input == "sphere":
            sampling_vectors(self.sampling)  # validates the name
        self.voxel_double, self.voxel_fit = bool(voxel_double), voxel_fit
        self.copies = {"train": int(train_augmentations), "val": int(test_augmentations),
                       "test": int(test_augmentations)}
        self.rotate, self.translate, self.normalize = bool(rotate), float(translate), bool(normalize)
        self.test_split_name = test_split
        self.max_per_class = None if max_per_class is None else int(max_per_class)
        self.batch_size, self.test_batch_size = int(batch_size), int(test_batch_size)
        self.num_workers = int(num_workers)
        self.preprocess_workers = self.num_workers if preprocess_workers is None else int(preprocess_workers)
        self.cache_root = Path(cache_dir) if cache_dir is not None else self.data_dir / "cache"
        self.seed, self.progress = int(seed), bool(progress)
        self.backend = ray_backend
        self.fixed_classes = None if class_names is None else [str(c) for c in class_names]
        self.stand_in_params = {"train": int(stand_in_train), "val": int(stand_in_val),
                                "test": int(stand_in_test), "seed": int(stand_in_seed)}
        self.class_names: list[str] = []
        self.layout: str | None = None
        self.index: dict[str, SplitIndex] = {}
        self.datasets: dict[str, Shrec17Dataset] = {}
        self.preprocess_stats: dict = {}
        self._usable: dict[str, list[Item]] = {}

    # -- names ---------------------------------------------------------------------------------
    @property
    def test_dataset_name(self) -> str:
        """The evaluator's dataset folder of the scored split: ``test_perturbed`` / ``val_perturbed``."""
        return f"{self.test_split_name}_perturbed"

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this run reads: train, val, and test when it is scored."""
        return ("train", "val", "test") if self.test_split_name == "test" else ("train", "val")

    def params(self) -> dict:
        """The preprocessing parameters (what the cached numbers depend on)."""
        p = {"input": self.input, "rotate": self.rotate, "translate": self.translate, "seed": self.seed,
             "version": CACHE_VERSION}
        if self.input == "sphere":
            p.update(sampling=self.sampling)
        else:
            p.update(voxel_size=self.voxel_size, voxel_double=self.voxel_double, voxel_fit=self.voxel_fit)
        return p

    def cache_key(self) -> str:
        """Folder name of this preprocessing: the input, then a hash of :meth:`params`."""
        p = self.params()
        h = hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:10]
        if self.input == "sphere":
            name = self.sampling.replace(":", "")
        else:
            name = f"voxel{self.voxel_size}" + ("x2" if self.voxel_double else "") + \
                   ("-box" if self.voxel_fit == "box" else "")
        return f"{name}-{h}"

    @property
    def cache_folder(self) -> Path:
        return self.cache_root / self.cache_key()

    # -- reading -------------------------------------------------------------------------------
    def _read_index(self) -> None:
        if self.stand_in:
            from datamodules.shrec17_standin import prepare_stand_in

            prepare_stand_in(self.data_dir, **self.stand_in_params)
        if not self.data_dir.is_dir():
            raise InputError(f"{BENCH}: data directory {self.data_dir} does not exist; {HINT}")
        if is_shrec_layout(self.data_dir):
            self.layout = "shrec"
            index = {s: index_shrec_split(self.data_dir, s) for s in self.splits}
        else:
            self.layout = "folders"
            index = index_folders(self.data_dir, exclude=[self.cache_root])
            for s in self.splits:
                if s not in index:
                    if s == "test":
                        raise InputError(f"{BENCH}: {self.data_dir} has no test meshes (files in <class>/ or "
                                         f"<class>/test/); pass data.test_split=val to score the val split")
                    index[s] = SplitIndex(s, self.data_dir, None, [], [], [])
        for s, ix in index.items():
            if ix.missing:
                lines = [f"{BENCH}: {r.source}: id {r.id} has no mesh file in {ix.folder}; skipped"
                         for r in ix.missing[:MAX_NAMED]]
                if len(ix.missing) > MAX_NAMED:
                    lines.append(f"{BENCH}: ... and {len(ix.missing) - MAX_NAMED} more rows of "
                                 f"{ix.label_file.name if ix.label_file else s} without a mesh file")
                _report_once(lines)
        self._set_classes(index)
        if self.max_per_class is not None and index["train"].items:
            index["train"] = _cap_per_class(index["train"], self.max_per_class)
        self.index = index

    def _set_classes(self, index: dict[str, SplitIndex]) -> None:
        source = index["train"].label_file or self.data_dir
        if self.fixed_classes is not None:
            names = list(self.fixed_classes)
        elif index["train"].rows:
            names = sorted({r.synset for r in index["train"].rows})
        else:
            names = sorted({r.synset for ix in index.values() for r in ix.rows})
        if self.num_classes is None:
            self.num_classes = len(names)
        if len(names) != self.num_classes:
            raise InputError(f"{BENCH}: {source} has {len(names)} synsets (classes), config data.num_classes "
                             f"is {self.num_classes}" + (" (the stand-in has 8)" if self.stand_in else ""))
        known = set(names)
        if self.layout == "folders" and self.fixed_classes is not None:
            unknown = sorted({r.synset for ix in index.values() for r in ix.rows} - known)
            if unknown:
                shown = ", ".join(names[:MAX_NAMED_CLASSES]) + (f", ... ({len(names)} in all)"
                                                               if len(names) > MAX_NAMED_CLASSES else "")
                raise InputError(
                    f"{BENCH}: {self.data_dir}: class folder(s) {', '.join(repr(u) for u in unknown[:5])}"
                    f"{' ...' if len(unknown) > 5 else ''} are not classes of the model; its {len(names)} "
                    f"class ids are {shown}. Rename each class folder to the id of the class it holds "
                    f"(e.g. {self.data_dir / names[0]}/), a folder per class; classes the data lacks may "
                    f"be left out")
        for ix in index.values():
            bad = [r for r in ix.rows if r.synset not in known]
            if bad:
                raise InputError(f"{BENCH}: {bad[0].source}: synset {bad[0].synset} (id {bad[0].id}) is not "
                                 f"one of the {len(names)} training classes ({len(bad)} such rows in the "
                                 f"{ix.name} split)")
        self.class_names = names

    def _fill(self) -> None:
        params = {**self.params(), "backend": ray_backend(self.backend) if self.input == "sphere" else "numpy"}
        stats = {"meshes": 0, "seconds": 0.0, "cached": 0, "skipped": 0}
        usable_by_split: dict[str, list[Item]] = {}
        for s in self.splits:
            ix = self.index[s]
            if not ix.items:
                usable_by_split[s] = []
                continue
            folder = self.cache_folder / s
            res = fill_cache(ix.items, folder, self.copies[s], params, self.preprocess_workers, self.progress,
                             desc=f"{BENCH} {s} -> {self.cache_key().split('-')[0]}")
            by_id = {it.id: it for it in ix.items}
            _report_once([f"{BENCH}: skipped {by_id[i].path}: {why}" for i, why in res.broken.items()])
            usable = [by_id[i] for i in res.usable]
            if not usable:
                raise InputError(f"{BENCH}: nothing usable left in the {s} split ({ix.folder}): "
                                 f"{len(ix.missing)} listed models without a mesh file, {len(res.broken)} "
                                 f"broken meshes (named above)")
            usable_by_split[s] = usable
            stats["meshes"] += res.computed
            stats["seconds"] += res.seconds
            stats["cached"] += res.reused
            stats["skipped"] += len(res.broken) + len(ix.missing)
        secs = stats["seconds"]
        stats.update(seconds=round(secs, 3),
                     meshes_per_s=round(stats["meshes"] / secs, 2) if stats["meshes"] and secs > 0 else None,
                     backend=params["backend"] if self.input == "sphere" else "numpy-sat",
                     from_cache=stats["meshes"] == 0, workers=self.preprocess_workers,
                     input=self.input, grid=self.sampling if self.input == "sphere" else
                     f"voxel:{self.voxel_size}" + ("x2" if self.voxel_double else ""))
        # the numbers of the preprocessing that filled the cache are kept beside it, so a run (or a
        # second prepare_data call, as Lightning makes in test()) that only found the cache reports them
        # (``stats["filled"]``: meshes, seconds, meshes_per_s, backend, workers of that preprocessing)
        saved = self.cache_folder / "preprocess_stats.json"
        keys = ("meshes", "seconds", "meshes_per_s", "backend", "workers")
        if stats["meshes"]:
            stats["filled"] = {k: stats[k] for k in keys}
            self.preprocess_stats = stats
            atomic_write_text(saved, json.dumps(stats["filled"], indent=1) + "\n")
        elif self.preprocess_stats.get("from_cache", True):
            try:
                filled = json.loads(saved.read_text())
            except (OSError, ValueError):
                filled = {}
            self.preprocess_stats = {**stats, "filled": {k: filled[k] for k in keys if k in filled}}
        self._usable = usable_by_split

    def prepare_data(self) -> None:
        """Write the stand-in when asked, read and validate the csv files and mesh folders of
        every split used, and fill the caches (reused while valid)."""
        self._read_index()
        self._fill()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets from the caches (filling them first when this process has not)."""
        if self.datasets:
            return
        if not self._usable:  # prepare_data ran in another process (DDP rank > 0) or not at all
            self._read_index()
            self._fill()
        index = {c: i for i, c in enumerate(self.class_names)}
        params = {**self.params(), "backend": ray_backend(self.backend) if self.input == "sphere" else "numpy"}
        self.datasets = {s: Shrec17Dataset(self.cache_folder / s, self._usable[s], self.copies[s], index,
                                           params, self.normalize) for s in self.splits}
        if self.test_split_name == "val":
            self.datasets["test"] = self.datasets["val"]

    @property
    def test_files(self) -> list[Path]:
        """The mesh files of the scored split that were read and scored (broken ones left out,
        each named when skipped); what ``--evaluate`` reports."""
        return [it.path for it in self._usable.get(self.test_split_name, [])]

    # -- labels --------------------------------------------------------------------------------
    def labels(self, split: str | None = None) -> dict[str, tuple[str, str, str]]:
        """``{id: (synsetId, subSynsetId, split)}`` of every model of ``split`` (default: the
        scored split) in csv order, missing and broken meshes included (the official evaluator's
        oracle counts them): the form :func:`models.retrieval.evaluate` reads."""
        split = split or self.test_split_name
        if not self.index:
            self._read_index()
        if split not in self.index:
            raise InputError(f"{BENCH}: no {split} split read (splits: {', '.join(self.index)})")
        return {r.id: (r.synset, r.sub, split) for r in self.index[split].rows}

    # -- checkpoint state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Saved in Lightning checkpoints: the class order the model was trained with."""
        return {"class_names": list(self.class_names)}

    def load_state_dict(self, state_dict: dict) -> None:
        names = [str(c) for c in state_dict.get("class_names") or []]
        if names and self.class_names and names != self.class_names:
            raise InputError(f"{BENCH}: the checkpoint's classes ({len(names)}: {', '.join(names[:4])}, ...) are "
                             f"not the data's ({len(self.class_names)}: {', '.join(self.class_names[:4])}, ...); "
                             f"pass them as data.class_names")
        if names:
            self.fixed_classes = names

    # -- loaders -------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        if len(ds) == 0:
            raise InputError(f"{BENCH}: {self.data_dir} has no training meshes")
        # batch_size is the global batch: each of W DDP processes loads batch_size / W
        return DataLoader(ds, batch_size=per_rank_batch(self, self.batch_size, "data.batch_size"), shuffle=True,
                          num_workers=self.num_workers, drop_last=len(ds) > self.batch_size,
                          persistent_workers=self.num_workers > 0)

    def _eval_loader(self, split: str) -> DataLoader:
        ds = self.datasets[split]
        if len(ds) == 0:
            raise InputError(f"{BENCH}: {self.data_dir} has no {split} meshes")
        return DataLoader(ds, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, ds, f"{BENCH} {split} set"), num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def _cap_per_class(ix: SplitIndex, k: int) -> SplitIndex:
    """At most ``k`` items per synset, evenly spaced over the synset's items in csv order."""
    by: dict[str, list[int]] = {}
    for i, it in enumerate(ix.items):
        by.setdefault(it.row.synset, []).append(i)
    keep: set[int] = set()
    for idx in by.values():
        if len(idx) <= k:
            keep.update(idx)
        else:
            keep.update(idx[int(j)] for j in np.round(np.linspace(0, len(idx) - 1, k)).astype(int))
    return SplitIndex(ix.name, ix.folder, ix.label_file, ix.rows,
                      [it for i, it in enumerate(ix.items) if i in keep], ix.missing)


# --------------------------------------------------------------------------- command line
def _cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datamodules.shrec17", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("standin", help="write the offline stand-in (SHREC'17 layout) into a folder")
    s.add_argument("--out", required=True)
    s.add_argument("--train", type=int, default=48, help="training models per synset")
    s.add_argument("--val", type=int, default=12)
    s.add_argument("--test", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("preprocess", help="fill the cache of a data folder and print the throughput")
    q.add_argument("--data-dir", required=True)
    q.add_argument("--input", default="sphere", choices=("sphere", "voxel"))
    q.add_argument("--sampling", default="healpix:32")
    q.add_argument("--voxel-size", type=int, default=64)
    q.add_argument("--augmentations", type=int, default=1, help="copies of every mesh (all splits)")
    q.add_argument("--test-split", default="test", choices=("test", "val"))
    q.add_argument("--workers", type=int, default=0)
    q.add_argument("--cache-dir", default=None)
    q.add_argument("--num-classes", type=int, default=None, help="default: what the data has")
    args = p.parse_args(argv)
    try:
        if args.cmd == "standin":
            from datamodules.shrec17_standin import prepare_stand_in

            wrote = prepare_stand_in(args.out, args.train, args.val, args.test, args.seed)
            print(f"{'wrote' if wrote else 'kept'} the SHREC'17 stand-in in {args.out}")
        else:
            kw = dict(input=args.input, sampling=args.sampling, voxel_size=args.voxel_size,
                      train_augmentations=args.augmentations, test_augmentations=args.augmentations,
                      test_split=args.test_split, preprocess_workers=args.workers, cache_dir=args.cache_dir)
            dm = Shrec17DataModule(args.data_dir, num_classes=args.num_classes, **kw)
            dm.prepare_data()
            print(json.dumps(dm.preprocess_stats))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
