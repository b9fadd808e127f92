"""Offline stand-in for SHREC'17: procedural shapes written in the SHREC'17 layout.

Eight ShapeNet synsets (real synset and sub-synset ids, :data:`SYNSETS`), each with 2–3 sub-synsets
of distinct geometry built from trimesh primitives (boxes, cylinders, cones, capsules, spheres,
tori, and triangular prisms): airliners with swept wings, delta-wing fighters and straight-winged
propeller planes; wine, beer and pop bottles; sedans, SUVs and racers; straight chairs, armchairs and
swivel chairs; acoustic and electric guitars; floor, table and desk lamps; coffee mugs and steins;
coffee tables, desks and dining tables. Some models carry the bare synset as their sub-synset
(airplane, guitar, lamp, mug, table), so the evaluator's grades 3, 2, 1 and 0 all occur. Every part
has random proportions; every model is scaled, shifted and Haar-rotated at random ("perturbed").

Files (:func:`write_stand_in`), read back by :mod:`datamodules.shrec17` like the real download::

    train_perturbed/<id>.obj  val_perturbed/<id>.obj  test_perturbed/<id>.obj
    train.csv  val.csv  test.csv   (id,synsetId,subSynsetId,modelId,split; by id)
    all.csv                        (every split, ordered by synset, sub-synset, id, like the real one)

The ``.obj`` files vary their face syntax (``f a b c``, ``f a/1/1 ...``, ``f a//1 ...``, and ``f a/1``
without ``vt`` lines, the case s2cnn's ``_fix`` handles) and half of them write coplanar triangle
pairs as quads. Everything is deterministic in the seed; a model has a few hundred faces.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from datamodules._common import atomic_write_text, ensure_stand_in, torch_generator
from models.geometry import random_rotation

#: synset -> (name, [(sub-synset, name), ...]); sorted synsets are the class order
SYNSETS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "02691156": ("airplane", [("02690373", "airliner"), ("03335030", "fighter"), ("02691156", "propeller plane")]),
    "02876657": ("bottle", [("04591713", "wine bottle"), ("02823428", "beer bottle"), ("03983396", "pop bottle")]),
    "02958343": ("car", [("04166281", "sedan"), ("04285965", "sport utility"), ("04037443", "racer")]),
    "03001627": ("chair", [("04331277", "straight chair"), ("02738535", "armchair"), ("04373704", "swivel chair")]),
    "03467517": ("guitar", [("02676566", "acoustic guitar"), ("03467517", "electric guitar")]),
    "03636649": ("lamp", [("03367059", "floor lamp"), ("04380533", "table lamp"), ("03636649", "desk lamp")]),
    "03797390": ("mug", [("03063599", "coffee mug"), ("03797390", "stein")]),
    "04379243": ("table", [("03063968", "coffee table"), ("03179701", "desk"), ("04379243", "dining table")]),
}
NUM_CLASSES = len(SYNSETS)
BENCH = "shrec17"


# --------------------------------------------------------------------------- primitives
def _at(m: trimesh.Trimesh, xyz=(0.0, 0.0, 0.0), rot: np.ndarray | None = None) -> trimesh.Trimesh:
    T = np.eye(4)
    if rot is not None:
        T[:3, :3] = rot
    T[:3, 3] = xyz
    m.apply_transform(T)
    return m


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def box(ext, xyz=(0, 0, 0), rot=None) -> trimesh.Trimesh:
    return _at(trimesh.creation.box(extents=ext), xyz, rot)


def rod(p0, p1, r: float, sections: int = 10) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=r, segment=[p0, p1], sections=sections)


def disk(r: float, h: float, xyz=(0, 0, 0), rot=None, sections: int = 16) -> trimesh.Trimesh:
    return _at(trimesh.creation.cylinder(radius=r, height=h, sections=sections), xyz, rot)


def cone(r: float, h: float, xyz=(0, 0, 0), rot=None, sections: int = 16) -> trimesh.Trimesh:
    return _at(trimesh.creation.cone(radius=r, height=h, sections=sections), xyz, rot)


def capsule(r: float, h: float, xyz=(0, 0, 0), rot=None) -> trimesh.Trimesh:
    return _at(trimesh.creation.capsule(height=h, radius=r, count=[8, 6]), xyz, rot)


def blob(radii, xyz=(0, 0, 0)) -> trimesh.Trimesh:
    m = trimesh.creation.icosphere(subdivisions=1)
    m.apply_scale(radii)
    return _at(m, xyz)


def ring(R: float, r: float, xyz=(0, 0, 0), rot=None) -> trimesh.Trimesh:
    return _at(trimesh.creation.torus(R, r, major_sections=12, minor_sections=6), xyz, rot)


def prism(tri2d, thickness: float, z: float = 0.0) -> trimesh.Trimesh:
    """A triangular prism: the triangle ``tri2d`` (3 × (x, y)) extruded over ``z ± thickness/2``."""
    p = np.asarray(tri2d, dtype=np.float64)
    if np.cross(p[1] - p[0], p[2] - p[0]) < 0:
        p = p[::-1]
    lo = np.c_[p, np.full(3, z - thickness / 2)]
    hi = np.c_[p, np.full(3, z + thickness / 2)]
    v = np.vstack([lo, hi])
    f = [[0, 2, 1], [3, 4, 5]]
    for i in range(3):
        j = (i + 1) % 3
        f += [[i, j, 3 + j], [i, 3 + j, 3 + i]]
    return trimesh.Trimesh(v, np.array(f), process=False)


# --------------------------------------------------------------------------- shapes (z up, x forward)
def _u(rng: np.random.Generator, lo: float = 0.8, hi: float = 1.25) -> float:
    return float(rng.uniform(lo, hi))


def airliner(rng):
    L, r = 4.0 * _u(rng), 0.26 * _u(rng)
    span, sweep = 1.9 * _u(rng), np.radians(rng.uniform(25, 35))
    parts = [capsule(r, L, rot=_ry(np.pi / 2))]
    for s in (1, -1):
        parts.append(box((0.55, span, 0.06), (0.1 - 0.5 * span * np.tan(sweep), s * (r + span / 2), -0.05),
                         _rz(s * sweep)))
        parts.append(disk(0.13, 0.55, (0.35, s * (r + 0.45 * span), -0.22), _ry(np.pi / 2), sections=10))
        parts.append(box((0.3, 0.7, 0.04), (-L / 2 + 0.1, s * (r + 0.3), 0.1), _rz(s * sweep)))
    parts.append(box((0.6, 0.05, 0.8), (-L / 2 + 0.15, 0, r + 0.35), _ry(-sweep)))
    return parts


def fighter(rng):
    L, r = 2.9 * _u(rng), 0.2 * _u(rng)
    span, chord = 1.3 * _u(rng), 1.6 * _u(rng)
    parts = [capsule(r, L, rot=_ry(np.pi / 2)),
             prism([(0.4, 0), (0.4 - chord, span), (0.4 - chord, -span)], 0.07, -0.02)]
    for s in (1, -1):
        parts.append(box((0.5, 0.04, 0.55), (-L / 2 + 0.2, s * 0.25, r + 0.2), _rx(s * 0.35)))
    return parts


def propeller_plane(rng):
    L, r = 2.7 * _u(rng), 0.22 * _u(rng)
    span = 3.0 * _u(rng)
    parts = [capsule(r, L, rot=_ry(np.pi / 2)),
             box((0.45, span, 0.05), (0.25, 0, r * 0.9)),
             box((0.04, 0.9 * _u(rng), 0.12), (L / 2 + r + 0.05, 0, 0), _rx(rng.uniform(0, np.pi))),
             box((0.3, 1.0, 0.04), (-L / 2, 0, 0.05)),
             box((0.35, 0.04, 0.45), (-L / 2, 0, 0.3))]
    for s in (1, -1):
        parts.append(rod((0.4, s * 0.3, -r), (0.4, s * 0.45, -r - 0.4), 0.03, 6))
    return parts


def wine_bottle(rng):
    r, h, n = 0.38 * _u(rng), 1.8 * _u(rng), 0.9 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), cone(r, 0.45, (0, 0, h)), disk(0.1, n, (0, 0, h + n / 2))]


def beer_bottle(rng):
    r, h, n = 0.33 * _u(rng), 1.2 * _u(rng), 0.5 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), cone(r, 0.55, (0, 0, h)), disk(0.1, n, (0, 0, h + 0.2 + n / 2)),
            disk(0.125, 0.08, (0, 0, h + 0.2 + n))]


def pop_bottle(rng):
    r, h = 0.45 * _u(rng), 1.4 * _u(rng)
    return [capsule(r, h, (0, 0, h / 2 + r)), disk(0.15, 0.3, (0, 0, h + 2 * r + 0.1)),
            disk(0.18, 0.12, (0, 0, h + 2 * r + 0.25)), ring(0.3, 0.05, (0, 0, 0.6 * h))]


def _wheels(L, W, r, w, z):
    return [disk(r, w, (x, y, z), _rx(np.pi / 2), sections=12) for x in (0.33 * L, -0.33 * L) for y in (W / 2, -W / 2)]


def sedan(rng):
    L, W, H = 4.0 * _u(rng), 1.7 * _u(rng, 0.9, 1.1), 0.55 * _u(rng)
    return [box((L, W, H), (0, 0, 0.3 + H / 2)), box((0.5 * L, 0.9 * W, 0.45), (-0.05 * L, 0, 0.3 + H + 0.22)),
            *_wheels(L, W, 0.33, 0.22, 0.33)]


def suv(rng):
    L, W, H = 4.2 * _u(rng, 0.9, 1.1), 1.9 * _u(rng, 0.9, 1.1), 0.9 * _u(rng)
    return [box((L, W, H), (0, 0, 0.45 + H / 2)), box((0.75 * L, 0.95 * W, 0.7), (-0.1 * L, 0, 0.45 + H + 0.35)),
            disk(0.4, 0.2, (-L / 2 - 0.1, 0, 0.45 + H / 2), _ry(np.pi / 2), sections=12),
            *_wheels(L, W, 0.45, 0.3, 0.45)]


def racer(rng):
    L, W = 4.4 * _u(rng), 1.8 * _u(rng, 0.9, 1.1)
    return [box((0.6 * L, W * 0.8, 0.35), (-0.15 * L, 0, 0.45)),
            prism([(0.15 * L, W * 0.4), (0.15 * L, -W * 0.4), (0.5 * L, 0)], 0.25, 0.4),
            capsule(0.25, 0.6, (-0.1 * L, 0, 0.7), _ry(np.pi / 2)),
            box((0.4, W, 0.05), (-0.48 * L, 0, 1.0)),
            box((0.1, 0.05, 0.5), (-0.48 * L, W * 0.3, 0.75)), box((0.1, 0.05, 0.5), (-0.48 * L, -W * 0.3, 0.75)),
            *_wheels(L, W * 1.05, 0.33, 0.4, 0.33)]


def _legs(w, d, h, t, z0=0.0):
    return [box((t, t, h), (x, y, z0 + h / 2)) for x in (w / 2 - t, -w / 2 + t) for y in (d / 2 - t, -d / 2 + t)]


def straight_chair(rng):
    w, d, h, b = 0.9 * _u(rng), 0.9 * _u(rng), 0.45 * _u(rng), 0.8 * _u(rng)
    return [box((d, w, 0.08), (0, 0, h)), *_legs(d, w, h, 0.06),
            box((0.06, w, b), (-d / 2 + 0.03, 0, h + b / 2))]


def armchair(rng):
    w, d, h, b = 1.1 * _u(rng), 1.0 * _u(rng), 0.35 * _u(rng), 0.7 * _u(rng)
    parts = [box((d, w, 0.15), (0, 0, h)), *_legs(d, w, h, 0.09),
             box((0.15, w, b), (-d / 2 + 0.07, 0, h + b / 2))]
    for s in (1, -1):
        parts += [box((d, 0.14, 0.08), (0, s * (w / 2 - 0.07), h + 0.35)),
                  box((0.08, 0.1, 0.3), (d / 2 - 0.08, s * (w / 2 - 0.07), h + 0.2))]
    return parts


def swivel_chair(rng):
    w, h, b = 0.85 * _u(rng), 0.5 * _u(rng), 0.75 * _u(rng)
    parts = [box((w, w, 0.1), (0, 0, h)), box((0.08, w * 0.9, b), (-w / 2, 0, h + 0.1 + b / 2)),
             disk(0.05, h - 0.1, (0, 0, h / 2), sections=10)]
    for k in range(5):
        a = 2 * np.pi * k / 5
        parts.append(box((0.5, 0.06, 0.05), (0.25 * np.cos(a), 0.25 * np.sin(a), 0.05), _rz(a)))
    return parts


def acoustic_guitar(rng):
    a, t, n = 0.75 * _u(rng, 0.9, 1.1), 0.2 * _u(rng), 1.6 * _u(rng)
    return [blob((a, a, t), (0, 0, 0)), blob((0.72 * a, 0.72 * a, t), (1.05 * a, 0, 0)),
            box((n, 0.12, 0.06), (1.5 * a + n / 2, 0, 0.08)), box((0.35, 0.18, 0.05), (1.5 * a + n + 0.17, 0, 0.06)),
            disk(0.18, 0.02, (0.6 * a, 0, t))]


def electric_guitar(rng):
    a, n = 0.55 * _u(rng), 1.5 * _u(rng)
    body = capsule(a, 0.6 * _u(rng), rot=_ry(np.pi / 2))
    body.apply_scale((1.0, 1.0, 0.22))
    return [body, box((0.25, 0.2, 0.06), (0.55, 0.45, 0)), box((n, 0.1, 0.06), (0.5 + n / 2, 0, 0.06)),
            box((0.3, 0.14, 0.04), (0.5 + n + 0.15, 0.04, 0.06)),
            box((0.08, 0.35, 0.03), (0.1, 0, 0.14)), box((0.08, 0.35, 0.03), (-0.15, 0, 0.14))]


def floor_lamp(rng):
    h = 3.2 * _u(rng)
    return [disk(0.4 * _u(rng), 0.06, (0, 0, 0.03)), disk(0.03, h, (0, 0, h / 2), sections=8),
            cone(0.5 * _u(rng), 0.6, (0, 0, h - 0.3))]


def table_lamp(rng):
    b, p = 0.35 * _u(rng), 0.5 * _u(rng)
    return [blob((b, b, 1.1 * b), (0, 0, b)), disk(0.03, p, (0, 0, 2 * b + p / 2), sections=8),
            disk(0.45 * _u(rng), 0.45, (0, 0, 2 * b + p + 0.1))]


def desk_lamp(rng):
    a1, a2 = 1.0 * _u(rng), 0.9 * _u(rng)
    t1, t2 = np.radians(rng.uniform(55, 75)), np.radians(rng.uniform(-30, 0))
    p1 = np.array([a1 * np.cos(t1), 0, 0.1 + a1 * np.sin(t1)])
    p2 = p1 + a2 * np.array([np.cos(t2), 0, np.sin(t2)])
    return [box((0.5, 0.4, 0.1), (0, 0, 0.05)), rod((0, 0, 0.1), p1, 0.035, 8), rod(p1, p2, 0.03, 8),
            cone(0.22, 0.35, p2 - (0, 0, 0.25))]


def coffee_mug(rng):
    r, h = 0.5 * _u(rng, 0.9, 1.1), 0.9 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), ring(0.25 * h, 0.06, (r + 0.1, 0, h / 2), _rx(np.pi / 2))]


def stein(rng):
    r, h = 0.42 * _u(rng, 0.9, 1.1), 1.4 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), disk(r + 0.04, 0.08, (0, 0, h + 0.04)), disk(r + 0.05, 0.1, (0, 0, 0.05)),
            ring(0.3 * h, 0.07, (r + 0.2, 0, h / 2), _rx(np.pi / 2))]


def coffee_table(rng):
    r, h = 0.95 * _u(rng), 0.45 * _u(rng)
    parts = [disk(r, 0.06, (0, 0, h), sections=20)]
    for k in range(3):
        a = 2 * np.pi * k / 3
        parts.append(disk(0.04, h, (0.6 * r * np.cos(a), 0.6 * r * np.sin(a), h / 2), sections=8))
    return parts


def desk(rng):
    w, d, h = 1.6 * _u(rng), 0.8 * _u(rng, 0.9, 1.1), 0.75 * _u(rng, 0.9, 1.1)
    return [box((w, d, 0.05), (0, 0, h)), box((0.5, d * 0.95, h - 0.05), (w / 2 - 0.25, 0, (h - 0.05) / 2)),
            box((0.06, 0.06, h), (-w / 2 + 0.05, d / 2 - 0.05, h / 2)),
            box((0.06, 0.06, h), (-w / 2 + 0.05, -d / 2 + 0.05, h / 2))]


def dining_table(rng):
    w, h = 1.1 * _u(rng), 0.75 * _u(rng, 0.9, 1.1)
    return [box((w, w * _u(rng, 0.9, 1.1), 0.05), (0, 0, h)), *_legs(w, w, h - 0.025, 0.07),
            box((w * 0.9, 0.03, 0.1), (0, w * 0.43, h - 0.08)), box((w * 0.9, 0.03, 0.1), (0, -w * 0.43, h - 0.08))]


#: sub-synset -> builder
BUILDERS: dict[str, Callable] = {
    "02690373": airliner, "03335030": fighter, "02691156": propeller_plane,
    "04591713": wine_bottle, "02823428": beer_bottle, "03983396": pop_bottle,
    "04166281": sedan, "04285965": suv, "04037443": racer,
    "04331277": straight_chair, "02738535": armchair, "04373704": swivel_chair,
    "02676566": acoustic_guitar, "03467517": electric_guitar,
    "03367059": floor_lamp, "04380533": table_lamp, "03636649": desk_lamp,
    "03063599": coffee_mug, "03797390": stein,
    "03063968": coffee_table, "03179701": desk, "04379243": dining_table,
}


def build_model(sub: str, rng: np.random.Generator, rotation: np.ndarray) -> trimesh.Trimesh:
    """One model of sub-synset ``sub``: its parts, concatenated, randomly scaled and shifted, then
    rotated by ``rotation`` (3 × 3)."""
    m = trimesh.util.concatenate(BUILDERS[sub](rng))
    m.apply_scale(float(rng.uniform(0.5, 2.0)))
    m.apply_translation(rng.normal(0.0, 0.3, 3))
    T = np.eye(4)
    T[:3, :3] = rotation
    m.apply_transform(T)
    return m


# --------------------------------------------------------------------------- obj writer
def quads(m: trimesh.Trimesh) -> list[tuple[int, ...]]:
    """Faces of ``m`` with coplanar, consistently wound neighbour pairs merged into convex quads
    ``(p, q, s, r)`` (fan from ``p`` gives the same surface); the rest stay triangles."""
    faces = m.faces
    normals = m.face_normals
    used = np.zeros(len(faces), dtype=bool)
    out: list[tuple[int, ...]] = []
    adj = m.face_adjacency[m.face_adjacency_angles < 1e-9]
    v = m.vertices
    for i, j in adj:
        if used[i] or used[j]:
            continue
        a = list(faces[i])
        shared = set(a) & set(faces[j])
        if len(shared) != 2:
            continue
        p = next(x for x in a if x not in shared)
        k = a.index(p)
        p, q, r = a[k], a[(k + 1) % 3], a[(k + 2) % 3]
        b = list(faces[j])
        s = next(x for x in b if x not in shared)
        kb = b.index(r)
        if b[(kb + 1) % 3] != q:  # the neighbour must run the shared edge the other way (r -> q)
            continue
        n = normals[i]
        if np.dot(np.cross(v[q] - v[p], v[s] - v[p]), n) <= 0 or np.dot(np.cross(v[s] - v[p], v[r] - v[p]), n) <= 0:
            continue
        used[i] = used[j] = True
        out.append((int(p), int(q), int(s), int(r)))
    out += [tuple(int(x) for x in f) for f, u in zip(faces, used) if not u]
    return out


def obj_text(m: trimesh.Trimesh, style: int, use_quads: bool) -> str:
    """The ``.obj`` text of ``m``; ``style`` 0: ``f a b c``, 1: ``f a/1/1``, 2: ``f a//1``,
    3: ``f a/1`` with no ``vt`` line (what s2cnn's ``_fix`` rewrites)."""
    lines = ["# SHREC'17 stand-in (procedural, not ShapeNet)", "o model"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in m.vertices]
    if style == 1:
        lines.append("vt 0 0")
    if style in (1, 2):
        lines.append("vn 0 0 1")
    fmt = {0: "{}", 1: "{}/1/1", 2: "{}//1", 3: "{}/1"}[style]
    polys = quads(m) if use_quads else [tuple(int(x) for x in f) for f in m.faces]
    lines += ["f " + " ".join(fmt.format(i + 1) for i in poly) for poly in polys]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- layout
def stand_in_params(train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> dict:
    """The parameters that generate the stand-in (its manifest's ``params``): models per synset
    in each split, and the seed."""
    return {"train": int(train), "val": int(val), "test": int(test), "seed": int(seed)}


def stand_in_description(train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> str:
    """What the stand-in is, for its manifest and for the tables made on it.

    >>> "NOT the paper's data" in stand_in_description()
    True
    """
    return ("**Data: offline stand-in — NOT the paper's data.** Procedural meshes of 8 ShapeNet synsets "
            "(airplane, bottle, car, chair, guitar, lamp, mug, table) with 2–3 sub-synsets of distinct "
            f"geometry each ({train} train / {val} val / {test} test models per synset, seed {seed}), "
            "randomly rotated, written in the SHREC'17 layout (.obj + csv) and read by the same reader "
            "(`datamodules/shrec17_standin.py`). Scores say whether the pipeline and models learn such "
            "shapes; they are not comparable with the published SHREC'17 tables.")


def write_stand_in(data_dir: str | Path, train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> Path:
    """Write the stand-in into ``data_dir`` (see the module docstring); returns ``data_dir``.
    Ids are a seeded permutation of 1..N, zero-padded to 6 digits."""
    root = Path(data_dir)
    shutil.rmtree(root / "cache", ignore_errors=True)  # caches of an earlier stand-in
    counts = {"train": int(train), "val": int(val), "test": int(test)}
    if min(counts.values()) < 1:
        raise ValueError(f"stand-in sizes must be positive, got {counts}")
    plan = [(split, syn, subs[k % len(subs)][0]) for split in counts for syn, (_, subs) in SYNSETS.items()
            for k in range(counts[split])]
    rng0 = np.random.default_rng([int(seed), 0])
    ids = rng0.permutation(len(plan)) + 1
    rows = []
    for k, ((split, syn, sub), mid) in enumerate(zip(plan, ids)):
        rng = np.random.default_rng([int(seed), 1, k])
        R = random_rotation(generator=torch_generator(int(seed), 2, k)).numpy()
        m = build_model(sub, rng, R)
        folder = root / f"{split}_perturbed"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{int(mid):06d}"
        (folder / f"{name}.obj").write_text(obj_text(m, style=k % 4, use_quads=(k // 4) % 2 == 1))
        rows.append((name, syn, sub, rng.bytes(16).hex(), split))
    header = "id,synsetId,subSynsetId,modelId,split\n"
    for split in counts:
        part = sorted(r for r in rows if r[4] == split)
        atomic_write_text(root / f"{split}.csv", header + "".join(",".join(r) + "\n" for r in part))
    ordered = sorted(rows, key=lambda r: (r[1], r[2], r[0]))
    atomic_write_text(root / "all.csv", header + "".join(",".join(r) + "\n" for r in ordered))
    return root


def prepare_stand_in(data_dir: str | Path, train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> bool:
    """Make ``data_dir`` hold the stand-in of these parameters (:func:`ensure_stand_in`: reused
    while its manifest matches, regenerated when a parameter differs). True when written."""
    params = stand_in_params(train, val, test, seed)
    return ensure_stand_in(data_dir, BENCH, params, lambda d: write_stand_in(d, **params),
                           stand_in_description(**params))
