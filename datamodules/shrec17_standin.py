"""Offline stand-in for SHREC'17: procedural shapes written in the SHREC'17 layout.

Sixteen ShapeNet synsets (real synset ids; sub-synset ids in :data:`SYNSETS`), each with 2–3
sub-synsets built from trimesh primitives (boxes, cylinders, cones, capsules, spheres, tori and
triangular prisms): airliners, delta-wing fighters and propeller planes; park and flat benches;
bookshelves and open shelves; wine, beer and pop bottles; buses and minibuses; cabinets and
wardrobes; beverage cans and tins; sedans, SUVs and racers; straight chairs, armchairs and swivel
chairs; monitors and televisions; acoustic and electric guitars; floor, table and desk lamps; coffee
mugs and steins; rifles and carbines; sofas and loveseats; coffee tables, desks and dining tables.
Several sub-synsets share parts across synsets, as on ShapeNet: a loveseat is an armchair-wide
sofa, a park bench a long chair and a flat bench a long low table, a minibus a tall car, a can a
stein without its handle, an open shelf a bookshelf without a back, a monitor stands on a lamp's
foot. Some models carry the bare synset as their sub-synset, so the evaluator's grades 3, 2, 1 and 0
all occur. The synsets have different numbers of models (:data:`WEIGHTS`, 0.3 to 2.0 times the
mean), so micro and macro averages differ.

Every part has random proportions (0.7–1.4×), and every model is perturbed (:data:`PERTURB`,
:func:`build_model`): parts go missing, a stray primitive may sit beside it, it is stretched per axis,
its vertices get noise and a random fraction of its faces is removed (holes: not watertight), then
it is scaled, shifted and Haar-rotated at random. Version 1 of this generator (8 synsets, equal
counts, none of these perturbations but scale, shift and rotation) was separated by a histogram of
the distances to the centroid (1-NN: 96 % accuracy) and classified perfectly by the networks of the
`cpu` table; ``tests/test_shrec17_difficulty.py`` keeps such a baseline well below them.

Files (:func:`write_stand_in`), read back by :mod:`datamodules.shrec17` like the real download::

    train_perturbed/<id>.obj  val_perturbed/<id>.obj  test_perturbed/<id>.obj
    train.csv  val.csv  test.csv   (id,synsetId,subSynsetId,modelId,split; by id)
    all.csv                        (every split, ordered by synset, sub-synset, id, like the real one)

The ``.obj`` files vary their face syntax (``f a b c``, ``f a/1/1 ...``, ``f a//1 ...``, and ``f a/1``
without ``vt`` lines, the case s2cnn's ``_fix`` handles) and half of them write exactly coplanar
triangle pairs as quads (the vertex noise of :data:`PERTURB` leaves none; with ``noise`` 0 they
occur). Everything is deterministic in the seed; a model has a few hundred faces.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from datamodules._common import atomic_write_text, ensure_stand_in, torch_generator
from models.geometry import random_rotation

#: the eight synsets whose sub-synsets carry WordNet ids: synset -> (name, [(sub-synset, name), ...])
_WORDNET_SUBS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "02691156": ("airplane", [("02690373", "airliner"), ("03335030", "fighter"), ("02691156", "propeller plane")]),
    "02876657": ("bottle", [("04591713", "wine bottle"), ("02823428", "beer bottle"), ("03983396", "pop bottle")]),
    "02958343": ("car", [("04166281", "sedan"), ("04285965", "sport utility"), ("04037443", "racer")]),
    "03001627": ("chair", [("04331277", "straight chair"), ("02738535", "armchair"), ("04373704", "swivel chair")]),
    "03467517": ("guitar", [("02676566", "acoustic guitar"), ("03467517", "electric guitar")]),
    "03636649": ("lamp", [("03367059", "floor lamp"), ("04380533", "table lamp"), ("03636649", "desk lamp")]),
    "03797390": ("mug", [("03063599", "coffee mug"), ("03797390", "stein")]),
    "04379243": ("table", [("03063968", "coffee table"), ("03179701", "desk"), ("04379243", "dining table")]),
}
#: the eight added synsets: synset -> (name, first sub-synset, second sub-synset); the first carries the
#: bare synset id, the second a stand-in id (the synset id + 1), not a WordNet id
_ADDED_SUBS: dict[str, tuple[str, str, str]] = {
    "02828884": ("bench", "park bench", "flat bench"),
    "02871439": ("bookshelf", "bookshelf", "open shelf"),
    "02924116": ("bus", "bus", "minibus"),
    "02933112": ("cabinet", "cabinet", "wardrobe"),
    "02946921": ("can", "beverage can", "tin"),
    "03211117": ("display", "monitor", "television"),
    "04090263": ("rifle", "rifle", "carbine"),
    "04256520": ("sofa", "sofa", "loveseat"),
}
#: synset -> (name, [(sub-synset, name), ...]) of all sixteen; sorted synsets are the class order
SYNSETS: dict[str, tuple[str, list[tuple[str, str]]]] = dict(sorted({
    **_WORDNET_SUBS,
    **{syn: (name, [(syn, first), (f"{int(syn) + 1:08d}", second)])
       for syn, (name, first, second) in _ADDED_SUBS.items()}}.items()))
#: synset -> its share of the models (mean 1): the large ShapeNet synsets (table, chair, airplane,
#: car, sofa) get more models, the small ones (can, mug, bookshelf, bottle) fewer, so the synsets'
#: test counts differ and micro and macro averages differ, as on ShapeNet
WEIGHTS: dict[str, float] = {
    "04379243": 2.0, "03001627": 1.8, "02691156": 1.5, "02958343": 1.4, "04256520": 1.3, "04090263": 1.1,
    "03636649": 1.1, "02828884": 1.0, "02933112": 0.9, "03211117": 0.8, "02924116": 0.7, "03467517": 0.7,
    "02876657": 0.5, "02871439": 0.5, "03797390": 0.4, "02946921": 0.3,
}
NUM_CLASSES = len(SYNSETS)
#: the generator's version, part of the manifest's parameters: a stand-in written by an earlier
#: generator (version 1: 8 synsets, equal counts, no part dropout, noise or holes) is regenerated
VERSION = 2
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
def _u(rng: np.random.Generator, lo: float = 0.7, hi: float = 1.4) -> float:
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


def park_bench(rng):
    """A long straight chair: seat, four legs, a backrest, sometimes arms (shares parts with chairs and sofas)."""
    w, d, h, b = 1.7 * _u(rng), 0.6 * _u(rng), 0.45 * _u(rng), 0.5 * _u(rng)
    parts = [box((d, w, 0.07), (0, 0, h)), *_legs(d, w, h, 0.07),
             box((0.06, w, b), (-d / 2 + 0.03, 0, h + 0.1 + b / 2), _ry(-rng.uniform(0, 0.3)))]
    if rng.random() < 0.5:
        parts += [box((d, 0.08, 0.06), (0, s * (w / 2 - 0.04), h + 0.3)) for s in (1, -1)]
    return parts


def flat_bench(rng):
    """A long, low table: a top on four legs or on two slabs (shares parts with tables)."""
    w, d, h = 1.6 * _u(rng), 0.5 * _u(rng), 0.45 * _u(rng)
    legs = (_legs(d, w, h, 0.07) if rng.random() < 0.5 else
            [box((0.9 * d, 0.08, h), (0, s * (w / 2 - 0.12), h / 2)) for s in (1, -1)])
    return [box((d, w, 0.08), (0, 0, h)), *legs]


def _couch(rng, w):
    d, h, b = 0.95 * _u(rng), 0.4 * _u(rng), 0.5 * _u(rng)
    a = 0.2 * _u(rng)
    parts = [box((d, w, h), (0, 0, h / 2 + 0.08)), box((0.2, w, b), (-d / 2 + 0.1, 0, h + 0.08 + b / 2)),
             *_legs(d, w, 0.08, 0.06)]
    parts += [box((d, a, h + 0.25), (0, s * (w / 2 + a / 2), (h + 0.25) / 2 + 0.08)) for s in (1, -1)]
    return parts


def sofa(rng):
    return _couch(rng, 2.0 * _u(rng))


def loveseat(rng):
    """A sofa of armchair width (shares its shape with the armchairs)."""
    return _couch(rng, 1.25 * _u(rng))


def bus(rng):
    L, W, H = 9.0 * _u(rng), 2.4 * _u(rng, 0.9, 1.1), 2.6 * _u(rng, 0.85, 1.15)
    parts = [box((L, W, H), (0, 0, 0.5 + H / 2)), box((0.85 * L, W + 0.04, 0.5), (0, 0, 0.5 + 0.7 * H))]
    parts += [disk(0.5, 0.3, (x, y, 0.5), _rx(np.pi / 2), sections=12)
              for x in (0.35 * L, -0.3 * L, -0.4 * L)[:2 + int(rng.random() < 0.5)] for y in (W / 2, -W / 2)]
    return parts


def minibus(rng):
    """A tall van: an SUV-like body with a short bonnet (shares parts with cars)."""
    L, W, H = 5.0 * _u(rng, 0.85, 1.15), 1.9 * _u(rng, 0.9, 1.1), 1.5 * _u(rng)
    return [box((0.8 * L, W, H), (-0.1 * L, 0, 0.45 + H / 2)), box((0.2 * L, W, 0.6), (0.4 * L, 0, 0.75)),
            *_wheels(L, W, 0.4, 0.25, 0.4)]


def _doors(w, d, h, z0, n, rng):
    parts = []
    for k in range(n):
        y = -w / 2 + (k + 0.5) * w / n
        parts.append(box((0.03, w / n - 0.04, h - 0.06), (d / 2 + 0.015, y, z0 + h / 2)))
        parts.append(rod((d / 2 + 0.03, y + 0.3 * w / n * (-1) ** k, z0 + 0.45 * h),
                         (d / 2 + 0.08, y + 0.3 * w / n * (-1) ** k, z0 + 0.45 * h), 0.015, 6))
    return parts


def cabinet(rng):
    w, d, h = 1.0 * _u(rng), 0.5 * _u(rng), 0.9 * _u(rng)
    z0 = 0.12 if rng.random() < 0.5 else 0.0
    parts = [box((d, w, h), (0, 0, z0 + h / 2)), *_doors(w, d, h, z0, 1 + int(rng.integers(0, 3)), rng)]
    if z0:
        parts += _legs(d, w, z0, 0.05)
    return parts


def wardrobe(rng):
    w, d, h = 1.2 * _u(rng), 0.6 * _u(rng), 2.0 * _u(rng)
    return [box((d, w, h), (0, 0, h / 2)), box((d + 0.08, w + 0.08, 0.08), (0, 0, h + 0.04)),
            *_doors(w, d, h, 0.0, 2, rng)]


def _shelves(rng, back: bool):
    w, d, h = 1.0 * _u(rng), 0.35 * _u(rng), 1.8 * _u(rng)
    n = int(rng.integers(3, 7))
    parts = [box((d, 0.04, h), (0, s * w / 2, h / 2)) for s in (1, -1)]
    parts += [box((d, w, 0.035), (0, 0, 0.02 + k * (h - 0.04) / (n - 1))) for k in range(n)]
    if back:
        parts.append(box((0.02, w, h), (-d / 2, 0, h / 2)))
    return parts


def bookshelf(rng):
    return _shelves(rng, back=True)


def open_shelf(rng):
    return _shelves(rng, back=False)


def beverage_can(rng):
    """A cylinder with rims: a stein without its handle (shares parts with mugs and bottles)."""
    r, h = 0.33 * _u(rng), 1.0 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), disk(0.9 * r, 0.06, (0, 0, h + 0.03)), disk(0.9 * r, 0.06, (0, 0, -0.03))]


def tin(rng):
    r, h = 0.5 * _u(rng), 0.6 * _u(rng)
    return [disk(r, h, (0, 0, h / 2)), disk(r + 0.03, 0.05, (0, 0, h)), disk(r + 0.02, 0.04, (0, 0, 0.3 * h))]


def _gun(rng, L):
    b = 1.0 * L * _u(rng)
    parts = [rod((0, 0, 0.05), (b, 0, 0.05), 0.025, 8), box((0.5 * L, 0.08, 0.16), (-0.1 * L, 0, 0)),
             prism([(-0.35 * L, 0.05), (-0.35 * L, -0.12), (-0.85 * L * _u(rng, 0.9, 1.1), -0.15)], 0.07),
             box((0.08, 0.06, 0.25 * _u(rng)), (0.02 * L, 0, -0.18), _ry(0.2))]
    parts[2].apply_transform(np.r_[np.c_[_rx(np.pi / 2), [0, 0, 0]], [[0, 0, 0, 1]]])
    if rng.random() < 0.5:
        parts.append(disk(0.04, 0.35 * L, (-0.05 * L, 0, 0.15), _ry(np.pi / 2), sections=8))
    return parts


def rifle(rng):
    return _gun(rng, 1.0)


def carbine(rng):
    return _gun(rng, 0.7)


def _screen(rng, depth):
    w, h = 1.0 * _u(rng), 0.6 * _u(rng)
    s = 0.3 * _u(rng)
    parts = [box((depth, w, h), (0, 0, s + h / 2))]
    if rng.random() < 0.6:  # neck and foot (a table lamp's foot)
        parts += [disk(0.04, s, (0, 0, s / 2), sections=8), disk(0.25 * _u(rng), 0.04, (0, 0, 0.02))]
    else:
        parts += [box((0.3, 0.06, s), (0, 0, s / 2)), box((0.4, 0.5 * w, 0.04), (0, 0, 0.02))]
    return parts


def monitor(rng):
    return _screen(rng, 0.06 * _u(rng))


def television(rng):
    return _screen(rng, 0.4 * _u(rng))


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
    "02828884": park_bench, "02828885": flat_bench, "02871439": bookshelf, "02871440": open_shelf,
    "02924116": bus, "02924117": minibus, "02933112": cabinet, "02933113": wardrobe,
    "02946921": beverage_can, "02946922": tin, "03211117": monitor, "03211118": television,
    "04090263": rifle, "04090264": carbine, "04256520": sofa, "04256521": loveseat,
}


#: how each model is perturbed (:func:`build_model`)
PERTURB = {
    "drop_part": 0.15,        # each part but the first is missing with this probability (incomplete models)
    "clutter": 0.3,           # probability of one stray primitive beside the model
    "aniso": (0.75, 1.33),    # per-axis scale jitter before the rotation
    "noise": 0.01,            # vertex noise, std as a fraction of the bounding-box diagonal
    "holes": (0.0, 0.2),      # fraction of faces removed (non-watertight surfaces)
    "scale": (0.5, 2.0),      # uniform scale
    "shift": 0.3,             # translation std (before the rotation, in model units)
}


def build_model(sub: str, rng: np.random.Generator, rotation: np.ndarray) -> trimesh.Trimesh:
    """One model of sub-synset ``sub``: its parts (each but the first dropped with probability
    ``PERTURB['drop_part']``), sometimes a stray primitive, concatenated; stretched per axis, vertex
    noise, a random fraction of the faces removed (holes), randomly scaled and shifted, then rotated
    by ``rotation`` (3 × 3)."""
    parts = BUILDERS[sub](rng)
    parts = [parts[0]] + [q for q in parts[1:] if rng.random() >= PERTURB["drop_part"]]
    m = trimesh.util.concatenate(parts)
    lo, hi = m.bounds
    if rng.random() < PERTURB["clutter"]:
        size = float(np.linalg.norm(hi - lo))
        at = rng.uniform(lo - 0.1 * size, hi + 0.1 * size)
        q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        stray = (box(rng.uniform(0.05, 0.3, 3) * size, at, q * np.sign(np.linalg.det(q))) if rng.random() < 0.5 else
                 rod(at, at + rng.normal(0, 0.2 * size, 3), 0.02 * size, 6))
        m = trimesh.util.concatenate([m, stray])
    v = m.vertices * rng.uniform(*PERTURB["aniso"], 3)
    v = v + rng.normal(0.0, PERTURB["noise"] * float(np.linalg.norm(v.max(0) - v.min(0))), v.shape)
    keep = rng.random(len(m.faces)) >= rng.uniform(*PERTURB["holes"])
    m = trimesh.Trimesh(v, m.faces[keep], process=False)
    m.remove_unreferenced_vertices()
    m.apply_scale(float(rng.uniform(*PERTURB["scale"])))
    m.apply_translation(rng.normal(0.0, PERTURB["shift"], 3))
    T = np.eye(4)
    T[:3, :3] = rotation
    m.apply_transform(T)
    return m


def split_counts(n: int) -> dict[str, int]:
    """Models per synset in a split of ``n`` models per synset on average: ``max(1, round(n * WEIGHTS))``."""
    return {syn: max(1, int(round(n * WEIGHTS[syn]))) for syn in SYNSETS}


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
    return {"train": int(train), "val": int(val), "test": int(test), "seed": int(seed), "version": VERSION}


def stand_in_description(train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> str:
    """What the stand-in is, for its manifest and for the tables made on it.

    >>> "NOT the paper's data" in stand_in_description()
    True
    """
    names = ", ".join(name for name, _ in SYNSETS.values())
    return ("**Data: offline stand-in — NOT the paper's data.** Procedural meshes of "
            f"{NUM_CLASSES} ShapeNet synsets ({names}) with 2–3 sub-synsets each, several of which share "
            "parts across synsets (benches, sofas and chairs; buses and cars; cans and mugs; cabinets and "
            f"bookshelves), {train} train / {val} val / {test} test models per synset on average (the "
            "synsets' counts differ 7-fold, as on ShapeNet), seed "
            f"{seed}; every model is perturbed (missing parts, stray primitives, per-axis stretch, vertex "
            "noise, holes, scale, translation) and randomly rotated, written in the SHREC'17 layout (.obj + "
            "csv) and read by the same reader (`datamodules/shrec17_standin.py`, generator version "
            f"{VERSION}). Scores say whether the pipeline and models learn such shapes; they are not "
            "comparable with the published SHREC'17 tables.")


def write_stand_in(data_dir: str | Path, train: int = 48, val: int = 12, test: int = 16, seed: int = 0) -> Path:
    """Write the stand-in into ``data_dir`` (see the module docstring); returns ``data_dir``.
    Ids are a seeded permutation of 1..N, zero-padded to 6 digits."""
    root = Path(data_dir)
    shutil.rmtree(root / "cache", ignore_errors=True)  # caches of an earlier stand-in
    counts = {"train": int(train), "val": int(val), "test": int(test)}
    if min(counts.values()) < 1:
        raise ValueError(f"stand-in sizes must be positive, got {counts}")
    plan = [(split, syn, subs[k % len(subs)][0]) for split in counts for syn, (_, subs) in SYNSETS.items()
            for k in range(split_counts(counts[split])[syn])]
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
    sizes = {k: v for k, v in params.items() if k != "version"}
    return ensure_stand_in(data_dir, BENCH, params, lambda d: write_stand_in(d, **sizes),
                           stand_in_description(**sizes))
