"""Triangle meshes: reading ``.obj`` / ``.off`` / ``.ply`` files, checking them, the s2cnn
clean-up and normalisation, and the similarity of one augmentation copy (:class:`Pose`). Used by
the SHREC'17 datamodule (:mod:`datamodules.shrec17`) and its stand-in.

Mesh files: ``.obj`` is read by :func:`read_obj` (face corners ``a/b/c``, ``a//c``, ``a/b`` reduced to
the vertex index, the s2cnn ``_fix``; negative indices; polygons fan-triangulated as obj2voxel
does), ``.off`` by :func:`read_off`, ``.ply`` through ``trimesh.load(..., force="mesh", process=False)``.
The counts a header declares are checked (OFF vertices and faces, PLY elements), and an ``.obj``
whose last line stops without a line end is refused: a file cut short is a broken mesh, never a
smaller one.

A mesh that cannot be used raises :class:`BrokenMesh`, whose message is the reason shown to the user.

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
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from datamodules._common import torch_generator
from models.geometry import random_rotation

MESH_SUFFIXES = (".obj", ".off", ".ply")
#: the final radius of the preprocessed mesh (s2cnn rescales to 0.99 inside the unit sphere)
FINAL_RADIUS = 0.99


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
    datamodules.meshes.BrokenMesh: the header declares 2 faces, the file holds 1 complete face line(s): it looks cut short
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
    datamodules.meshes.BrokenMesh: zero extent (all vertices coincide)
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
    """The augmentation of copy ``copy`` of model ``model_id`` (module docstring), for a
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
