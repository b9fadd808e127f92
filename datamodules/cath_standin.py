"""Offline stand-in for the CATH data: idealised CA traces of ten architectures, written as PDB /
mmCIF files plus a CATH domain list and boundaries, then built by :mod:`datamodules.cath_pdb`.

**Not the paper's data.** The real set (Weiler et al. 2018 §5.5; deepfold/cath_datasets) holds
7,110 CATH v4.2 domains from the PDB. These traces only share its *form*: one CA per residue, ten
classes named by the CATH architectures that the real set contains, sub-categories ("topologies")
that never share a split, classes told apart by how secondary-structure elements are arranged in
3-D. Accuracies on them say whether the pipeline and models learn such arrangements, nothing about
the published numbers.

Geometry (Å): α-helix CA trace — radius 2.3, rise 1.5 and 100° per residue (3.8 Å CA–CA);
β-strand — 3.3 Å rise per residue with a ±0.9 Å pleat, strands 4.8 Å apart in a sheet, sheets and
helix layers ~10 Å apart. Elements are joined in chain order by loops (quadratic Bézier bulging away
from the domain centre, resampled at ~3.8 Å). Architectures (CATH codes):

====== ============================ ==================================================================
code   name                         idealisation
====== ============================ ==================================================================
1.10   orthogonal bundle            helices in two layers whose axes cross at 70–110°
1.20   up-down bundle               3–6 antiparallel helices on a circle (inter-axis 10 Å)
2.30   roll                         4–6 antiparallel strands on an open arc (< 200°) of a cylinder
2.40   β-barrel                     5–8 strands closing a cylinder, tilted ~35°
2.60   sandwich                     two flat antiparallel sheets of 3–5 strands, 10 Å apart, ~30° twist
3.10   α-β roll                     curved 4-strand sheet with 1–2 helices on its convex side
3.20   α-β barrel (TIM-like)        6–8 parallel strands in a barrel, helices on an outer ring
3.30   2-layer sandwich (α+β)       flat antiparallel sheet with a layer of 2–3 helices on one side
3.40   3-layer (αβα) sandwich       flat parallel sheet with helices on both sides (Rossmann-like)
4.10   few secondary structures     compact irregular coil, sometimes with one short helix
====== ============================ ==================================================================

Each architecture has ``topologies`` variants (element counts, lengths, order, angles drawn once per
topology) and 2 "superfamilies" per topology (lengths ±2); each domain adds per-element jitter
(0.7 Å, ~6°), 0.4 Å CA noise, a random loop slack, a Haar-random orientation and a random
translation. About 20 % of the entries hold two domains in one chain (boundaries in CathDomall
format, the second domain starting at an insertion-coded residue), ~10 % are mmCIF, ~10 % are
gzipped; ~3 % of the domains have a resolution above 3.5 Å (filtered), and two deliberately broken
files (no CA; not a structure) show up in the build report.
"""
from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from datamodules._common import InputError, atomic_write_text

#: the ten architectures of cath_10arch (CATH v4.2 class.architecture → name)
ARCHITECTURES: dict[tuple[int, int], str] = {
    (1, 10): "orthogonal bundle", (1, 20): "up-down bundle", (2, 30): "roll", (2, 40): "beta barrel",
    (2, 60): "sandwich", (3, 10): "alpha-beta roll", (3, 20): "alpha-beta barrel",
    (3, 30): "2-layer sandwich", (3, 40): "3-layer (aba) sandwich", (4, 10): "few secondary structures",
}
HELIX_RADIUS, HELIX_RISE, HELIX_TURN = 2.3, 1.5, math.radians(100.0)
STRAND_RISE, STRAND_PLEAT, STRAND_GAP, LAYER_GAP, CA_CA = 3.3, 0.9, 4.8, 10.0, 3.8


# --------------------------------------------------------------------------- primitives
def helix_trace(n: int) -> np.ndarray:
    """Ideal α-helix CA trace along +z, centred: (n, 3)."""
    i = np.arange(n)
    return np.stack([HELIX_RADIUS * np.cos(HELIX_TURN * i), HELIX_RADIUS * np.sin(HELIX_TURN * i),
                     HELIX_RISE * (i - (n - 1) / 2)], 1)


def strand_trace(n: int) -> np.ndarray:
    """Ideal β-strand CA trace along +z, pleated along y (the sheet normal), centred: (n, 3)."""
    i = np.arange(n)
    return np.stack([np.zeros(n), STRAND_PLEAT * (-1.0) ** i, STRAND_RISE * (i - (n - 1) / 2)], 1)


def _frame(axis: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Rotation whose columns are (x, y, z) = (axis × normal-ish, normal, axis), orthonormalised."""
    z = axis / np.linalg.norm(axis)
    y = normal - z * (normal @ z)
    if np.linalg.norm(y) < 1e-6:
        y = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
    y = y / np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], 1)


def element(kind: str, n: int, centre, axis, normal=(0.0, 0.0, 1.0)) -> dict:
    return {"kind": kind, "n": int(n), "centre": np.asarray(centre, float),
            "axis": np.asarray(axis, float), "normal": np.asarray(normal, float)}


def _loop(p0: np.ndarray, p1: np.ndarray, centre: np.ndarray, slack: float) -> np.ndarray:
    """CA positions strictly between p0 and p1 on a Bézier curve bulging away from ``centre``."""
    mid = (p0 + p1) / 2
    out = mid - centre
    out = out / (np.linalg.norm(out) + 1e-9)
    d = np.linalg.norm(p1 - p0)
    ctrl = mid + out * (3.0 + 0.35 * d + slack)
    t = np.linspace(0, 1, 200)[:, None]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t ** 2 * p1
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(seg)])
    k = max(1, int(round(arc[-1] / CA_CA)) - 1)
    targets = np.linspace(0, arc[-1], k + 2)[1:-1]
    return np.stack([np.interp(targets, arc, curve[:, j]) for j in range(3)], 1)


def assemble(elements: list[dict], rng: np.random.Generator, jitter: float = 0.7,
             tilt_deg: float = 6.0, noise: float = 0.4) -> np.ndarray:
    """Place elements (with per-domain jitter) in chain order and join them by loops: (n, 3)."""
    pieces = []
    for e in elements:
        local = helix_trace(e["n"]) if e["kind"] == "H" else strand_trace(e["n"])
        R = _frame(e["axis"], e["normal"])
        tilt = Rotation.from_rotvec(rng.normal(size=3) * math.radians(tilt_deg) / math.sqrt(3))
        pieces.append(tilt.apply(local @ R.T) + e["centre"] + rng.normal(scale=jitter, size=3))
    centre = np.concatenate(pieces).mean(0)
    chain = [pieces[0]]
    for a, b in zip(pieces[:-1], pieces[1:]):
        chain.append(_loop(a[-1], b[0], centre, rng.uniform(0, 3)))
        chain.append(b)
    xyz = np.concatenate(chain)
    return xyz + rng.normal(scale=noise, size=xyz.shape)


def _coil(n: int, rng: np.random.Generator, radius: float) -> np.ndarray:
    """Compact random walk with 3.8 Å steps confined to a sphere (few secondary structures)."""
    pts = [np.zeros(3)]
    d = rng.normal(size=3)
    for _ in range(n - 1):
        for _ in range(50):
            step = d / np.linalg.norm(d) * 0.6 + rng.normal(size=3) * 0.8
            step = step / np.linalg.norm(step) * CA_CA
            cand = pts[-1] + step
            if np.linalg.norm(cand) < radius and all(np.linalg.norm(cand - p) > 3.6 for p in pts[-20:-2]):
                break
        pts.append(cand)
        d = step
    return np.array(pts)


# --------------------------------------------------------------------------- architectures
def _arc_positions(k: int, radius: float, span: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(position, outward normal) of k strands on an arc of ``span`` radians around z."""
    angles = (np.arange(k) - (k - 1) / 2) * span / max(k - 1, 1) if k > 1 else np.zeros(1)
    return [(radius * np.array([math.cos(a), math.sin(a), 0.0]), np.array([math.cos(a), math.sin(a), 0.0]))
            for a in angles]


def _arch_elements(arch: tuple[int, int], p: dict, rng: np.random.Generator) -> list[dict]:
    """Secondary-structure elements of one domain of architecture ``arch`` with topology params p."""
    L = lambda key: max(3, int(p[key] + rng.integers(-1, 2)))  # noqa: E731  (length with ±1 jitter)
    els: list[dict] = []
    z = np.array([0.0, 0.0, 1.0])
    if arch == (1, 10):
        ang = math.radians(p["cross"])
        counts = [(p["nh"] + 1) // 2, p["nh"] // 2]
        for i in range(p["nh"]):
            layer, slot = i % 2, i // 2
            axis = np.array([1.0, 0, 0]) if layer == 0 else np.array([math.cos(ang), math.sin(ang), 0])
            side = np.cross(z, axis)
            centre = side * LAYER_GAP * (slot - (counts[layer] - 1) / 2) \
                + z * (LAYER_GAP / 2) * (1 if layer else -1)
            els.append(element("H", L("lh"), centre, axis * (-1) ** slot, z))
    elif arch == (1, 20):
        k = p["nh"]
        r = LAYER_GAP / (2 * math.sin(math.pi / k))
        for i in range(k):
            a = 2 * math.pi * i / k
            pos = r * np.array([math.cos(a), math.sin(a), 0])
            tangent = np.array([-math.sin(a), math.cos(a), 0])
            axis = z * math.cos(math.radians(p["tilt"])) + tangent * math.sin(math.radians(p["tilt"]))
            els.append(element("H", L("lh"), pos, axis * (-1) ** i, pos))
    elif arch in ((2, 30), (2, 40), (3, 10)):
        k = p["ns"]
        if arch == (2, 40):
            radius = k * STRAND_GAP / (2 * math.pi) / math.cos(math.radians(35))
            span = 2 * math.pi * (k - 1) / k
        else:
            radius = p["radius"]
            span = min(k - 1, 5) * STRAND_GAP / radius
        tilt = math.radians(35 if arch == (2, 40) else p["tilt"])
        for i, (pos, nrm) in enumerate(_arc_positions(k, radius, span)):
            tangent = np.cross(z, nrm)
            axis = z * math.cos(tilt) + tangent * math.sin(tilt)
            els.append(element("E", L("ls"), pos, axis * (-1) ** i, nrm))
        order = p["order"][:k]
        els = [els[j] for j in order]
        if arch == (3, 10):
            for j in range(p["nh"]):
                a = (j - (p["nh"] - 1) / 2) * 0.9
                pos = (radius + LAYER_GAP) * np.array([math.cos(a), math.sin(a), 0])
                els.insert(2 * j + 1, element("H", L("lh"), pos, z * (-1) ** j, pos))
    elif arch == (2, 60):
        ang = math.radians(p["twist"])
        for s in range(2):
            axis = np.array([0.0, 1, 0]) if s == 0 else np.array([-math.sin(ang), math.cos(ang), 0])
            across = np.cross(axis, z)
            k = p["ns"][s]
            for i in range(k):
                pos = across * STRAND_GAP * (i - (k - 1) / 2) + z * (LAYER_GAP / 2) * (1 if s else -1)
                els.append(element("E", L("ls"), pos, axis * (-1) ** i, z))
        els = [els[j] for j in p["order"][:len(els)]]
    elif arch == (3, 20):
        k = p["n_units"]
        rs = k * STRAND_GAP / (2 * math.pi) / math.cos(math.radians(36))
        for i in range(k):
            a = 2 * math.pi * i / k
            nrm = np.array([math.cos(a), math.sin(a), 0])
            tangent = np.cross(z, nrm)
            axis = z * math.cos(math.radians(36)) + tangent * math.sin(math.radians(36))
            els.append(element("E", L("ls"), rs * nrm, axis, nrm))
            ah = a + math.pi / k
            nh = np.array([math.cos(ah), math.sin(ah), 0])
            els.append(element("H", L("lh"), (rs + LAYER_GAP) * nh, -z, nh))
    elif arch in ((3, 30), (3, 40)):
        k = p["ns"]
        y = np.array([0.0, 1, 0])
        strands = [element("E", L("ls"), np.array([STRAND_GAP * (i - (k - 1) / 2), 0, 0]),
                           y * (1 if arch == (3, 40) else (-1) ** i), z) for i in range(k)]
        strands = [strands[j] for j in p["order"][:k]]
        if arch == (3, 30):
            ang = math.radians(p["cross"])
            hs = [element("H", L("lh"), np.array([LAYER_GAP * (j - (p["nh"] - 1) / 2), 0, LAYER_GAP]),
                          np.array([math.sin(ang), math.cos(ang), 0]) * (-1) ** j, z) for j in range(p["nh"])]
            els = strands[: k // 2] + hs + strands[k // 2:]
        else:
            for i, s in enumerate(strands):
                els.append(s)
                if i < k - 1:
                    side = 1 if i % 2 == 0 else -1
                    x = (s["centre"][0] + strands[i + 1]["centre"][0]) / 2
                    els.append(element("H", L("lh"), np.array([x, 0, side * LAYER_GAP]), -y, z))
    elif arch == (4, 10):
        return []
    else:
        raise InputError(f"CATH stand-in: unknown architecture {arch}")
    return els


def _topology_params(arch: tuple[int, int], t: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, arch[0], arch[1], t])
    p = {"lh": int(rng.integers(10, 19)), "ls": int(rng.integers(5, 9)), "tilt": float(rng.uniform(-20, 20)),
         "cross": float(rng.uniform(70, 110)), "twist": float(rng.uniform(-40, -20)),
         "radius": float(rng.uniform(9, 12)), "nh": int(rng.integers(1, 3)), "n_units": int(rng.integers(6, 9)),
         "coil": int(rng.integers(30, 60)), "coil_helix": bool(rng.random() < 0.5)}
    if arch == (1, 10):
        p["nh"] = int(rng.integers(3, 6))
    elif arch == (1, 20):
        p["nh"], p["lh"] = int(rng.integers(3, 7)), int(rng.integers(14, 25))
    elif arch == (2, 30):
        p["ns"] = int(rng.integers(4, 7))
    elif arch == (2, 40):
        p["ns"] = int(rng.integers(5, 9))
    elif arch == (3, 10):
        p["ns"] = 4
    elif arch == (2, 60):
        p["ns"] = [int(rng.integers(3, 6)), int(rng.integers(3, 6))]
    elif arch == (3, 30):
        p["ns"], p["nh"] = int(rng.integers(4, 6)), int(rng.integers(2, 4))
    elif arch == (3, 40):
        p["ns"] = int(rng.integers(4, 7))
    n_el = sum(p["ns"]) if isinstance(p.get("ns"), list) else p.get("ns", 8)
    p["order"] = [int(i) for i in rng.permutation(n_el)] if rng.random() < 0.6 else list(range(n_el))
    return p


def domain_trace(arch: tuple[int, int], topology: int, superfamily: int, rng: np.random.Generator,
                 seed: int = 0) -> np.ndarray:
    """CA coordinates of one stand-in domain, in a random orientation and position: (n, 3)."""
    p = _topology_params(arch, topology, seed)
    sf = np.random.default_rng([seed, arch[0], arch[1], topology, superfamily])
    p["lh"] += int(sf.integers(-2, 3))
    p["ls"] += int(sf.integers(-1, 2))
    if arch == (4, 10):
        xyz = _coil(p["coil"] + int(sf.integers(-5, 6)) + int(rng.integers(-3, 4)), rng, radius=11.0)
        if p["coil_helix"]:
            h = helix_trace(8) + np.array([0, 0, 12.0])
            xyz = np.concatenate([xyz, _loop(xyz[-1], h[0], xyz.mean(0), 1.0), h])
        xyz = xyz + rng.normal(scale=0.4, size=xyz.shape)
    else:
        xyz = assemble(_arch_elements(arch, p, rng), rng)
    xyz = xyz - xyz.mean(0)
    R = Rotation.random(random_state=rng)
    return R.apply(xyz) + rng.uniform(-20, 20, size=3)


# --------------------------------------------------------------------------- files
RESIDUE_NAMES = ["ALA", "GLY", "SER", "LEU", "VAL", "GLU", "LYS", "THR", "ASP", "ILE"]


def _structure(code: str, chains: dict[str, list[tuple[int, str, np.ndarray]]]):
    from Bio.PDB.StructureBuilder import StructureBuilder

    sb = StructureBuilder()
    sb.init_structure(code)
    sb.init_model(0)
    serial = 1
    for cid, residues in chains.items():
        sb.init_chain(cid)
        sb.init_seg("    ")
        for k, (num, icode, xyz) in enumerate(residues):
            sb.init_residue(RESIDUE_NAMES[k % len(RESIDUE_NAMES)], " ", num, icode or " ")
            sb.init_atom("CA", np.asarray(xyz, dtype=np.float32), 20.0, 1.0, " ", " CA ", serial, "C")
            serial += 1
    return sb.get_structure()


def write_structure(path: Path, structure) -> None:
    """Write a biopython structure as PDB or mmCIF (by suffix), gzipped when the name ends in .gz."""
    from Bio.PDB import PDBIO, MMCIFIO

    plain = path.with_name(path.name[:-3]) if path.name.endswith(".gz") else path
    io_ = MMCIFIO() if plain.suffix == ".cif" else PDBIO()
    io_.set_structure(structure)
    io_.save(str(plain))
    if plain != path:
        with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()


def _code(i: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    for _ in range(3):
        i, r = divmod(i, 36)
        s = digits[r] + s
    return "9" + s


def write_stand_in(raw_dir: str | Path, per_class: int, seed: int = 0, topologies: int = 12,
                   superfamilies: int = 2, multi_domain_fraction: float = 0.2,
                   high_resolution_fraction: float = 0.03) -> dict[str, Path]:
    """Write the raw stand-in into ``raw_dir``: ``structures/`` (PDB, mmCIF, some gzipped),
    ``CathDomainList.txt`` (CathDomainList format) and ``CathDomall.txt`` (boundaries).

    Every class gets ``per_class`` usable domains plus ~3 % with resolution > 3.5 Å; returns the
    paths ``{"pdb_dir", "domain_list", "boundaries"}``.
    """
    if per_class < 1 or topologies < 1:
        raise InputError("CATH stand-in: per_class and topologies must be positive")
    raw = Path(raw_dir)
    sdir = raw / "structures"
    sdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    domains = []  # (arch, topology, superfamily, resolution)
    for arch in ARCHITECTURES:
        n_bad = int(math.ceil(high_resolution_fraction * per_class))
        for i in range(per_class + n_bad):
            t = 1 + (i % topologies) if i < topologies else int(rng.integers(1, topologies + 1))
            res = rng.uniform(3.6, 4.0) if i >= per_class else rng.uniform(1.0, 3.2)
            domains.append((arch, t, int(rng.integers(1, superfamilies + 1)), float(res)))
    order = rng.permutation(len(domains))
    list_lines = ["# CATH stand-in domain list (CathDomainList format): NOT real CATH data",
                  "# domain C A T H S35 S60 S95 S100 S100count length resolution"]
    domall_lines = ["# CATH stand-in domain boundaries (CathDomall format)"]
    i, entry = 0, 0
    while i < len(order):
        two = rng.random() < multi_domain_fraction and i + 1 < len(order)
        members = [domains[j] for j in order[i:i + (2 if two else 1)]]
        i += len(members)
        code = _code(entry)
        entry += 1
        residues: list[tuple[int, str, np.ndarray]] = []
        num = int(rng.integers(1, 30))
        segs = []
        for d, (arch, t, h, res) in enumerate(members):
            xyz = domain_trace(arch, t, h, rng, seed) + np.array([60.0 * d, 0.0, 0.0])
            keys = []
            for k in range(len(xyz)):
                if d == 1 and k == 0:  # domain 2 starts at an insertion-coded residue (e.g. 100A)
                    keys.append((num - 1, "A"))
                else:
                    keys.append((num, ""))
                    num += 1
            residues += [(n, ic, p) for (n, ic), p in zip(keys, xyz)]
            segs.append((keys[0], keys[-1]))
            dom_id = f"{code}A{(d + 1 if two else 0):02d}"
            list_lines.append(f"{dom_id} {arch[0]} {arch[1]} {t} {h} 1 1 1 1 1 {len(xyz)} {res:.3f}")
        domall_lines.append(f"{code}A D{len(members):02d} F00 " + "  ".join(
            f"1  A {s[0]:4d} {s[1] or '-'} A {e[0]:4d} {e[1] or '-'}" for s, e in segs))
        r = rng.random()
        suffix = ".cif" if r < 0.1 else (".pdb.gz" if r < 0.2 else ".pdb")
        write_structure(sdir / f"{code}{suffix}", _structure(code, {"A": residues}))
    # two broken entries the build must skip and report
    (sdir / "9zzzA.pdb").write_text(
        "HETATM    1 CA    CA A 501      10.000  10.000  10.000  1.00 20.00          CA\n"
        "HETATM    2  O   HOH A 601      12.000  10.000  10.000  1.00 20.00           O\nEND\n")
    (sdir / "9zzy.pdb").write_text("this is not a structure file\n")
    list_lines += ["9zzzA00 1 10 1 1 1 1 1 1 1 1 1.500", "9zzyA00 2 60 1 1 1 1 1 1 1 1 1.500"]
    atomic_write_text(raw / "CathDomainList.txt", "\n".join(list_lines) + "\n")
    atomic_write_text(raw / "CathDomall.txt", "\n".join(domall_lines) + "\n")
    return {"pdb_dir": sdir, "domain_list": raw / "CathDomainList.txt", "boundaries": raw / "CathDomall.txt"}
