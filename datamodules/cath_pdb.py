"""Build the CATH architecture data set (``cath_10arch_ca.npz``) from raw structures.

Paper: Weiler et al. 2018, §5.5 and supplement: CATH v4.2 domains of the S40 non-redundant set,
architectures with at least 500 members (→ 10 classes), balanced to the same number of domains per
class (711) sampled evenly across sub-categories, CA atoms only, 10 splits with no sub-category shared
between splits and every class in every split. The published file was made by
``deepfold/cath_datasets`` ``scripts/construct_dataset.py`` (``--extract-at-level arch
--sub-category-level topo --min-size 500``); this module re-implements that recipe with biopython.

Inputs
------
* ``pdb_dir``: structure files, PDB (``.pdb``, ``.ent``, CATH ``dompdb`` files without extension),
  mmCIF (``.cif``, ``.mmcif``) or BinaryCIF (``.bcif``; decoded by biotite), any
  of them optionally gzipped. A domain ``1abcA01`` is looked up, in this order, as a file named after
  the domain (already cut to the domain: CATH ``dompdb``, boundaries are then not needed), after the
  chain (``1abcA``, ``1abc_A``, or a whole-chain SCOP/ASTRAL file ``d1abca_``), after the entry
  (``1abc``, ``pdb1abc.ent``). Case is ignored (:func:`name_key`). Files whose name allows no match
  (``adk_open.pdb``, SCOP domains ``d1abca1`` cut by SCOP's boundaries, sub-folders, other
  suffixes) and files no domain was read from are named in the report, as is every domain of the
  list without a file.
* ``domain_list``: the CATH *CathDomainList* text format (``cath-domain-list-v4_2_0.txt``): one domain
  per line, ``#`` comments, whitespace-separated columns ``domain C A T H S35 S60 S95 S100 count length
  resolution``; only the first five and the 12th (resolution in Å; 999 for NMR) are used. A dotted
  ``C.A.T.H`` code in the second column is accepted too. This format carries **no domain
  boundaries**.
* ``boundaries`` (needed when files are whole entries/chains and a chain holds several domains):
  either the CATH *CathDomall* format (``cath-domain-boundaries-v4_2_0.txt``; lines
  ``1chmA D02 F00  1  A    2 - A  156 -  1  A  157 - A  402 -``: chain, number of domains and
  fragments, then per domain its number of segments and per segment ``chain start insert chain end
  insert`` with ``-`` for no insertion code), or a simple two-column file
  ``domain  chain:start-end[,chain:start-end...]`` (e.g. ``1abcA01  A:5-120,A:130A-140``; chain
  optional, default the domain's chain). Both use the PDB *author* residue numbering with insertion
  codes (not CATH's SEQRES "chopping" numbering). Domains ``....x00`` without boundaries are whole
  chains.

Structure reading (:func:`read_ca`)
-----------------------------------
First model only; one CA per residue, from standard residues (``ATOM``) and from modified amino
acids written as ``HETATM`` that carry backbone N, CA and C (e.g. MSE); calcium ions named ``CA``,
waters and ligands are ignored. Alternate locations: the CA of highest occupancy (first listed on a
tie); point mutations (two residue types at one position): the residue whose CA has the highest
occupancy. Insertion codes are part of the residue identity; a segment ``start-end`` takes the
residues from ``start`` to ``end`` in file order (by residue number and insertion code when an end
residue is absent from the file).

Selection (:func:`build_dataset`)
---------------------------------
resolution < ``max_resolution`` → the published 50 Å rule (``construct_dataset.py``: every atom —
here every non-water atom of the domain's residues — within ``max_radius`` Å of their mean, else the
domain is left out whole and reported; atoms are never clipped) → CA coordinates centred on their mean →
classes (CATH codes truncated to ``level``) with at least ``min_size`` usable domains → each cut to
``per_class`` domains (default: the smallest eligible class), spreading the quota evenly over the
sub-categories (``group_level``, smallest first, best resolution first) → splits: sub-categories,
largest first, each to the smallest split that does not yet hold its class in the current round
(a round ends when every split holds the class), so splits are disjoint in ``group_level`` (and
hence in superfamily) and every class with ≥ ``n_splits`` sub-categories is in every split.
Unusable structures are skipped and listed with the reason in the report file, next to the domains
without a structure file and the unused files; an input with no usable structure at all, and a
build with an empty split (hence an empty validation or test set), is an
:class:`~datamodules._common.InputError`.

Output: the published npz layout (see :mod:`datamodules.cath`), ``positions`` as float32 (the
published file has float64; the reader accepts both), plus ``domain_ids`` (extra, for provenance).
"""
from __future__ import annotations

import gzip
import io
import math
import os
import re
import warnings
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datamodules._common import InputError, atomic_savez, atomic_write_text

#: CATH classes (level 1); any other class number is an unknown CATH code
CATH_CLASSES = {1: "Mainly Alpha", 2: "Mainly Beta", 3: "Alpha Beta", 4: "Few Secondary Structures",
                6: "Special"}
#: CATH levels by name → number of leading numbers of the code that form the label
LEVELS = {"class": 1, "arch": 2, "architecture": 2, "topo": 3, "topology": 3, "superfamily": 4,
          "homologous_superfamily": 4}
DOMAIN_ID = re.compile(r"^[0-9][0-9a-zA-Z]{3}[0-9a-zA-Z]\d{2}$")
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".bcif", ".brk")
#: how the split indices are used (se3cnn ``experiments/scripts/cath/cath.py``; 10 splits)
TRAIN_SPLITS, VAL_SPLITS, TEST_SPLITS = tuple(range(7)), (7,), (8, 9)
#: keys of the published npz (deepfold/cath_datasets)
NPZ_KEYS = ("positions", "n_atoms", "atom_types", "res_indices", "labels", "split_start_indices")


class StructureError(Exception):
    """A structure that cannot be used (skipped and reported, not fatal)."""


# --------------------------------------------------------------------------- domain list
@dataclass(frozen=True)
class DomainEntry:
    """One line of a CathDomainList: domain id, CATH code (C, A, T, H) and resolution (Å)."""

    domain_id: str
    cath: tuple[int, int, int, int]
    resolution: float

    @property
    def pdb_code(self) -> str:
        return self.domain_id[:4].lower()

    @property
    def chain(self) -> str:
        return self.domain_id[4]

    @property
    def domain_number(self) -> str:
        return self.domain_id[5:7]


def _cath_number(text: str, where: str, name: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise InputError(f"{where}: field '{name}' is '{text}', not a CATH number") from None
    if v < 1:
        raise InputError(f"{where}: field '{name}' is {v}; CATH numbers start at 1")
    return v


def parse_cath_code(parts: list[str], where: str) -> tuple[int, int, int, int]:
    """(C, A, T, H) from four numbers, or from one dotted ``C.A.T.H`` string. Unknown class → error."""
    if len(parts) == 1 and "." in parts[0]:
        parts = parts[0].split(".")
        if len(parts) != 4:
            raise InputError(f"{where}: field 'cath_code' is '{'.'.join(parts)}', expected C.A.T.H")
    names = ("class", "architecture", "topology", "superfamily")
    code = tuple(_cath_number(p, where, n) for p, n in zip(parts, names))
    if code[0] not in CATH_CLASSES:
        raise InputError(f"{where}: field 'class' is {code[0]}, an unknown CATH class "
                         f"(known: {', '.join(map(str, CATH_CLASSES))})")
    return code  # type: ignore[return-value]


def _records(path: Path):
    """Yield ``("<file>:<line>", fields)`` for each non-empty line of a whitespace-separated
    CATH text file, with ``#`` comments removed."""
    with open(path, errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield f"{path}:{lineno}", line.split()


def read_domain_list(path: str | os.PathLike) -> dict[str, DomainEntry]:
    """Parse a CathDomainList file into ``{domain_id: DomainEntry}``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "list.txt"
    >>> _ = p.write_text("# comment\\n1oaiA00 1 10 8 10 1 1 1 1 1 59 1.000\\n")
    >>> read_domain_list(p)["1oaiA00"].cath
    (1, 10, 8, 10)
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CATH domain list {path} does not exist")
    out: dict[str, DomainEntry] = {}
    for where, cols in _records(path):
        if not DOMAIN_ID.match(cols[0]):
            raise InputError(f"{where}: field 'domain' is '{cols[0]}', not a CATH domain id "
                             f"(4-character PDB code, chain, 2-digit domain number, e.g. 1oaiA00)")
        if len(cols) >= 2 and "." in cols[1]:
            code, rest = parse_cath_code([cols[1]], where), cols[2:]
        elif len(cols) >= 5:
            code, rest = parse_cath_code(cols[1:5], where), cols[5:]
        else:
            raise InputError(f"{where}: expected 'domain C A T H ...' (CathDomainList), got "
                             f"{len(cols)} column(s)")
        res = math.nan
        if len(rest) >= 7:  # CathDomainList: resolution is column 12
            try:
                res = float(rest[6])
            except ValueError:
                raise InputError(f"{where}: field 'resolution' is '{rest[6]}', not a number") from None
        out[cols[0]] = DomainEntry(cols[0], code, res)
    if not out:
        raise InputError(f"CATH domain list {path} holds no domain lines")
    return out


# --------------------------------------------------------------------------- boundaries
ResKey = tuple[int, str]  # (residue number, insertion code or "")


@dataclass(frozen=True)
class Segment:
    chain: str
    start: ResKey
    end: ResKey


def _reskey(num: str, ins: str, where: str) -> ResKey:
    try:
        n = int(num)
    except ValueError:
        raise InputError(f"{where}: residue number '{num}' is not an integer") from None
    ins = "" if ins in ("-", "") else ins
    if len(ins) > 1:
        raise InputError(f"{where}: insertion code '{ins}' must be one character")
    return n, ins


def _parse_domall_line(cols: list[str], where: str) -> dict[str, list[Segment]]:
    chain_name = cols[0]
    nd = int(cols[1][1:])
    i = 3
    out: dict[str, list[Segment]] = {}
    for d in range(1, nd + 1):
        if i >= len(cols):
            raise InputError(f"{where}: CathDomall line ends before domain {d} of {nd}")
        nseg = int(cols[i])
        i += 1
        segs = []
        for _ in range(nseg):
            if i + 6 > len(cols):
                raise InputError(f"{where}: CathDomall segment of domain {d} is truncated")
            c1, s, si, c2, e, ei = cols[i:i + 6]
            i += 6
            if c1 != c2:
                raise InputError(f"{where}: segment spans chains {c1} and {c2}")
            segs.append(Segment(c1 if c1 != "0" else "", _reskey(s, si, where), _reskey(e, ei, where)))
        dom = f"{chain_name[:5]}{d:02d}"
        out[dom] = segs
        if nd == 1:  # a one-domain chain is named ...00 in the CATH domain list
            out[f"{chain_name[:5]}00"] = segs
    return out


_SIMPLE_SEG = re.compile(r"^(?:([A-Za-z0-9]):)?(-?\d+)([A-Za-z]?)-(-?\d+)([A-Za-z]?)$")


def read_boundaries(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """Domain boundaries ``{domain_id: [Segment, ...]}`` from a CathDomall file or the simple
    ``domain chain:start-end[,...]`` format (detected per line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CATH domain boundaries file {path} does not exist")
    out: dict[str, list[Segment]] = {}
    for where, cols in _records(path):
        if len(cols) >= 3 and re.fullmatch(r"D\d+", cols[1]) and re.fullmatch(r"F\d+", cols[2]):
            try:
                out.update(_parse_domall_line(cols, where))
            except ValueError as e:
                raise InputError(f"{where}: malformed CathDomall line ({e})") from None
            continue
        if len(cols) != 2 or not DOMAIN_ID.match(cols[0]):
            raise InputError(f"{where}: expected a CathDomall line ('1chmA D02 F00 ...') or "
                             f"'domain chain:start-end[,...]', got '{' '.join(cols)[:60]}'")
        segs = []
        for part in cols[1].split(","):
            m = _SIMPLE_SEG.match(part)
            if not m:
                raise InputError(f"{where}: field 'segment' is '{part}', expected "
                                 f"[chain:]start-end such as A:5-120 or 52A-60")
            chain = m.group(1) or cols[0][4]
            segs.append(Segment(chain, _reskey(m.group(2), m.group(3), where),
                                _reskey(m.group(4), m.group(5), where)))
        out[cols[0]] = segs
    return out


# --------------------------------------------------------------------------- structure files
def _stem(name: str) -> tuple[str, str]:
    """(lower-case stem without structure/gzip suffixes, format 'pdb'|'cif'|'bcif')."""
    low = name.lower()
    if low.endswith(".gz"):
        low = low[:-3]
    fmt = "bcif" if low.endswith(".bcif") else "cif" if low.endswith((".cif", ".mmcif")) else "pdb"
    for suf in STRUCTURE_SUFFIXES:
        if low.endswith(suf):
            low = low[: -len(suf)]
            break
    return low, fmt


_PDB_CODE = r"[0-9][0-9a-z]{3}"
_NAMES = (re.compile(rf"^(?:pdb)?({_PDB_CODE})$"),                 # entry: 1mba, pdb1mba
          re.compile(rf"^({_PDB_CODE})[_.:-]?([0-9a-z])$"),         # chain: 1mbaA, 1mba_A
          re.compile(rf"^({_PDB_CODE}[0-9a-z]\d\d)$"))             # CATH domain (dompdb): 1mbaA00
_SCOP = re.compile(rf"^d({_PDB_CODE})([0-9a-z_.])([0-9a-z_])$")   # SCOP / ASTRAL sid: d1mbaa_
NAMING = ("a PDB entry (1mba, pdb1mba), chain (1mbaA, 1mba_A), CATH domain (1mbaA00) or whole-chain "
          "SCOP domain (d1mbaa_)")


def name_key(name: str) -> tuple[str | None, str]:
    """The lower-case id a structure file name stands for (``1mba``, ``1mbaa``, ``1mbaa00``), or
    None and why the name cannot be matched to a CATH domain.

    >>> [name_key(n)[0] for n in ("1MBA.pdb.gz", "pdb1mba.ent", "1mbaA.cif", "1mba_A.bcif", "1mbaA00", "d1mbaa_.ent")]
    ['1mba', '1mba', '1mbaa', '1mbaa', '1mbaa00', '1mbaa']
    >>> name_key("d1mbaa1.ent")[1]
    "SCOP domain d1mbaa1: cut by SCOP's own domain boundaries, not CATH's (only whole-chain files d....x_ are matched)"
    """
    low = name.lower()
    stem, _ = _stem(name)
    for pattern in _NAMES:
        m = pattern.match(stem)
        if m:
            return "".join(m.groups()), ""
    if stem == (low[:-3] if low.endswith(".gz") else low) and "." in stem:
        return None, (f"not a structure file name (suffixes {', '.join(STRUCTURE_SUFFIXES)}, optionally .gz, "
                      f"or a CATH dompdb name without suffix)")
    m = _SCOP.match(stem)
    if m:
        code, chain, dom = m.groups()
        if chain == ".":
            return None, f"SCOP domain {stem}: spans several chains, which no CATH domain does"
        if dom != "_":
            return None, (f"SCOP domain {stem}: cut by SCOP's own domain boundaries, not CATH's (only "
                          f"whole-chain files d....x_ are matched)")
        return code + (chain if chain != "_" else "0"), ""  # SCOP '_' = no chain id = CATH '0'
    return None, f"name '{stem}' is not {NAMING}"


def index_structures(pdb_dir: str | os.PathLike) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """``({id: file}, [(name, why not used)])`` for the entries of ``pdb_dir`` (not recursive): ids
    by :func:`name_key`; every other entry (sub-folder, other name, second file of one id) is
    listed with the reason."""
    pdb_dir = Path(pdb_dir)
    if not pdb_dir.is_dir():
        raise InputError(f"CATH: --pdb-dir {pdb_dir} is not a directory")
    out: dict[str, Path] = {}
    ignored: list[tuple[str, str]] = []
    for p in sorted(pdb_dir.iterdir()):
        if not p.is_file():
            ignored.append((p.name + "/", "a folder (--pdb-dir is not searched recursively)"))
            continue
        key, why = name_key(p.name)
        if key is None:
            ignored.append((p.name, why))
        elif key in out:
            ignored.append((p.name, f"same id '{key}' as {out[key].name}, which is used"))
        else:
            out[key] = p
    return out, ignored


def locate(index: dict[str, Path], domain_id: str) -> tuple[Path, bool] | None:
    """(file, whether the file is already cut to the domain) or None."""
    d = domain_id.lower()
    if d in index:
        return index[d], True
    for key in (d[:5], d[:4]):
        if key in index:
            return index[key], False
    return None


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), errors="replace")
    return open(path, errors="replace")


def _parse_bcif(path: Path):
    """BinaryCIF decoded by biotite (``biotite.structure.io.pdbx.BinaryCIFFile``), its
    ``_atom_site`` table handed to biopython's :class:`~Bio.PDB.MMCIFParser` as mmCIF text, so a
    BinaryCIF file reads exactly as its mmCIF twin (chains by ``auth_asym_id``, altlocs, insertion
    codes, models). biotite rather than biopython's own decoder: biopython 1.88's
    ``Bio.PDB.binary_cif`` fails on a column whose every value is masked (an all-``?``
    ``pdbx_PDB_ins_code``, as in most wwPDB files: ``IndexError: index -1 is out of bounds``) and
    names chains by ``label_asym_id``."""
    from Bio.PDB import MMCIFParser

    try:
        import biotite.structure.io.pdbx as pdbx
    except ImportError as e:
        raise InputError(f"CATH: reading the BinaryCIF file {path} needs biotite ({e}); "
                         f"pip install biotite") from None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        bcif = pdbx.BinaryCIFFile.read(f)
    blocks = list(bcif.values())
    if not blocks or "atom_site" not in blocks[0]:
        raise KeyError("no _atom_site category")
    site = blocks[0]["atom_site"]
    columns = {}
    for name in site.keys():
        col = site[name]
        mask = None if col.mask is None else col.mask.array
        columns[name] = pdbx.CIFColumn(pdbx.CIFData(col.data.array.astype(str)), mask)
    text = pdbx.CIFFile({"structure": pdbx.CIFBlock({"atom_site": pdbx.CIFCategory(columns)})})
    buf = io.StringIO()
    text.write(buf)
    buf.seek(0)
    return MMCIFParser(QUIET=True).get_structure(path.name, buf)


def parse_structure(path: str | os.PathLike):
    """Biopython structure (PDB, mmCIF or BinaryCIF by suffix, gzip allowed); StructureError if
    unreadable."""
    from Bio.PDB import MMCIFParser, PDBParser
    from Bio.PDB.PDBExceptions import PDBConstructionException

    path = Path(path)
    _, fmt = _stem(path.name)
    if fmt == "bcif":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _parse_bcif(path)
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to decode the file makes it unreadable
            raise StructureError(f"unreadable BCIF file ({type(e).__name__}: {str(e)[:80]})") from None
    parser = MMCIFParser(QUIET=True) if fmt == "cif" else PDBParser(QUIET=True, PERMISSIVE=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _open_text(path) as fh:
                return parser.get_structure(path.name, fh)
    except (PDBConstructionException, ValueError, KeyError, IndexError, EOFError, OSError,
            UnicodeDecodeError, zlib.error) as e:
        raise StructureError(f"unreadable {fmt.upper()} file ({type(e).__name__}: "
                             f"{str(e)[:80]})") from None


def _best_ca(residue):
    """The CA atom of a residue (highest-occupancy altloc; for point mutations the residue variant
    whose CA has the highest occupancy), or None."""
    variants = residue.disordered_get_list() if residue.is_disordered() == 2 else [residue]
    best, best_occ = None, -math.inf
    for res in variants:
        hetflag = res.id[0]
        if hetflag == "W" or "CA" not in res:
            continue
        if hetflag != " " and not ("N" in res and "C" in res):  # ions, ligands
            continue
        atom = res["CA"]
        if (atom.element or "C").upper() not in ("C", "X", ""):
            continue
        alts = atom.disordered_get_list() if atom.is_disordered() else [atom]
        for a in alts:  # first listed wins ties
            occ = a.get_occupancy() if a.get_occupancy() is not None else 1.0
            if occ > best_occ:
                best, best_occ = a, occ
    return best


def _key_of(residue) -> ResKey:
    return int(residue.id[1]), residue.id[2].strip()


def _sort_key(k: ResKey) -> tuple[int, str]:
    return k[0], k[1]


def read_ca(source, chain: str | None = None,
            segments: list[Segment] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CA coordinates ``(n, 3)`` float64 and residue numbers ``(n,)`` of one chain / domain.

    ``source`` is a file path or an already parsed biopython structure. ``chain=None`` takes every
    chain of the first model (a file cut to one domain); ``segments`` restrict to residue ranges (see
    the module docstring). Raises :class:`StructureError` for a structure that cannot be used
    (unreadable, no model, chain absent, no CA, empty selection).
    """
    xyz, resnum, _ = read_domain(source, chain, segments)
    return xyz, resnum


def read_domain(source, chain: str | None = None, segments: list[Segment] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_ca` plus the coordinates ``(m, 3)`` of every atom of the selected residues except
    waters (the all-atom selection of the published 50 Å rule; one position per atom: the altloc
    and residue variant biopython selects, i.e. the highest occupancy)."""
    structure = parse_structure(source) if isinstance(source, (str, os.PathLike)) else source
    models = list(structure)
    if not models:
        raise StructureError("no model (empty or unreadable file)")
    model = models[0]
    chains = {c.id: c for c in model}
    if not chains:
        raise StructureError("first model has no chain")

    def pick(cid: str):
        if cid in chains:
            return chains[cid]
        if cid in ("", "0", "_") and len(chains) == 1:
            return next(iter(chains.values()))
        raise StructureError(f"chain '{cid}' not in file (chains: {', '.join(sorted(chains)) or 'none'})")

    residues = []  # (chain id, residue) in file order
    if segments:
        for seg in segments:
            ch = pick(seg.chain or (chain or ""))
            rs = [r for r in ch]
            keys = [_key_of(r) for r in rs]
            lo = keys.index(seg.start) if seg.start in keys else next(
                (i for i, k in enumerate(keys) if _sort_key(k) >= _sort_key(seg.start)), len(keys))
            hi = keys.index(seg.end) if seg.end in keys else max(
                (i for i, k in enumerate(keys) if _sort_key(k) <= _sort_key(seg.end)), default=-1)
            residues += [(ch.id, r) for r in rs[lo:hi + 1]]
        if not residues:
            raise StructureError("no residue inside the domain boundaries "
                                 + ",".join(f"{s.chain}:{s.start[0]}{s.start[1]}-{s.end[0]}{s.end[1]}"
                                            for s in segments))
    elif chain is not None:
        ch = pick(chain)
        residues = [(ch.id, r) for r in ch]
        if not residues:
            raise StructureError(f"chain '{ch.id}' is empty")
    else:
        residues = [(c.id, r) for c in model for r in c]
    coords, resnums = [], []
    for _, r in residues:
        a = _best_ca(r)
        if a is not None:
            coords.append(a.get_coord())
            resnums.append(int(a.get_parent().id[1]))
    if not coords:
        raise StructureError("no CA atom in the selected residues")
    xyz = np.asarray(coords, dtype=np.float64)
    every = np.asarray([a.get_coord() for _, r in residues if r.id[0] != "W" for a in r.get_atoms()],
                       dtype=np.float64).reshape(-1, 3)
    if not (np.isfinite(xyz).all() and np.isfinite(every).all()):
        raise StructureError("non-finite coordinates")
    return xyz, np.asarray(resnums, dtype=np.int64), every


# --------------------------------------------------------------------------- selection and splits
@dataclass
class BuildSummary:
    out: Path
    report: Path
    n_records: int
    per_class: int
    classes: list[tuple[int, ...]]
    split_sizes: list[int]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (domain, file, reason)
    #: domains of the list without a structure file, by id
    unmatched: list[str] = field(default_factory=list)
    #: entries of the structure folder that no domain was read from: (name, reason)
    unused_files: list[tuple[str, str]] = field(default_factory=list)
    #: domains left out by the published 50 Å rule (also in ``skipped``)
    n_beyond_radius: int = 0
    warnings: list[str] = field(default_factory=list)
    #: usable domains the selection leaves out (class below min_size, balancing): (domain, file, reason)
    left_out: list[tuple[str, str, str]] = field(default_factory=list)


def balanced_selection(members: list[tuple[tuple, float, str]], quota: int) -> list[str]:
    """Pick ``quota`` domain ids from ``members`` = [(sub-category, resolution, domain id)],
    spreading the quota evenly over sub-categories (smallest first) and taking the best resolution
    first within each."""
    groups: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for sub, res, dom in members:
        groups[sub].append((res if math.isfinite(res) else 1e9, dom))
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    chosen: list[str] = []
    for i, (_, items) in enumerate(ordered):
        take = (quota - len(chosen)) // (len(ordered) - i)
        chosen += [d for _, d in sorted(items)[:take]]
    return chosen


def assign_splits(groups: list[tuple[tuple, tuple, int]], n_splits: int) -> dict[tuple, int]:
    """Assign sub-categories to splits. ``groups`` = [(class label, sub-category, size)]; returns
    ``{sub-category: split}``. Largest sub-category first, to the smallest split that does not yet
    hold its class in the current round (ties: lowest split index)."""
    sizes = [0] * n_splits
    used: dict[tuple, set[int]] = defaultdict(set)
    out = {}
    for label, sub, size in sorted(groups, key=lambda g: (-g[2], g[1])):
        if len(used[label]) == n_splits:
            used[label] = set()
        free = [s for s in range(n_splits) if s not in used[label]]
        s = min(free, key=lambda k: (sizes[k], k))
        out[sub] = s
        used[label].add(s)
        sizes[s] += size
    return out


def _code(c: tuple) -> str:
    return ".".join(map(str, c))


def _split_role(s: int, n_splits: int) -> str:
    if n_splits != 10:
        return f"{s}"
    role = "validation" if s in VAL_SPLITS else "test" if s in TEST_SPLITS else "training"
    return f"{s} ({role})"


def build_dataset(pdb_dir: str | os.PathLike, domain_list: str | os.PathLike, out: str | os.PathLike,
                  boundaries: str | os.PathLike | None = None, level: str = "arch",
                  group_level: str = "topo", min_size: int = 500, per_class: int | None = None,
                  n_splits: int = 10, max_resolution: float = 3.5, max_radius: float = 50.0,
                  report: str | os.PathLike | None = None) -> BuildSummary:
    """Build the published npz from a folder of structures and a CATH domain list (see module doc).

    The 50 Å rule is the published builder's (``construct_dataset.py --max-distance 50``): a domain is
    kept only if *every* atom of it (here: every non-water atom of its residues, first model) lies
    within ``max_radius`` Å of the mean of those atoms; a domain with any atom farther is left out
    whole (its atoms are never clipped, which would change the shape being classified) and named in
    the report with its largest distance. Kept domains are centred on their CA mean.

    Returns a :class:`BuildSummary`; writes ``out`` and the report (default ``<out>.report.tsv``):
    one line ``domain<TAB>file<TAB>reason`` per domain that was considered but not used, per domain of
    the list without a structure file (file ``-``) and per entry of ``pdb_dir`` that no domain was
    read from (domain ``-``). A build with an empty split (so an empty validation or test set) is an
    :class:`~datamodules._common.InputError`; no npz is written then, the report is.
    """
    if level not in LEVELS or group_level not in LEVELS:
        raise InputError(f"CATH build: level must be one of {', '.join(LEVELS)}")
    depth, gdepth = LEVELS[level], LEVELS[group_level]
    if gdepth <= depth:
        raise InputError(f"CATH build: group level '{group_level}' must be finer than '{level}'")
    out = Path(out)
    report = Path(report) if report else out.with_name(out.name + ".report.tsv")
    index, ignored = index_structures(pdb_dir)
    if not index:
        named = "; ".join(f"{n} ({why})" for n, why in ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        raise InputError(f"CATH build: no structure files (.pdb, .ent, .cif, .bcif, dompdb ids; optionally "
                         f".gz) in {pdb_dir}" + (f"; ignored: {named}" if ignored else ""))
    entries = read_domain_list(domain_list)
    bounds = read_boundaries(boundaries) if boundaries else {}

    skipped: list[tuple[str, str, str]] = []
    usable: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    files_of: dict[str, str] = {}
    cache: dict[Path, object] = {}  # parsed structures (or the StructureError) of recent files
    n_beyond = 0

    def parsed(path: Path):
        if path not in cache:
            if len(cache) >= 16:
                cache.pop(next(iter(cache)))
            try:
                cache[path] = parse_structure(path)
            except StructureError as err:
                cache[path] = err
        if isinstance(cache[path], StructureError):
            raise cache[path]
        return cache[path]

    located = [(e, locate(index, e.domain_id)) for e in entries.values()]
    candidates = [(e, loc) for e, loc in located if loc is not None]
    unmatched = [e.domain_id for e, loc in located if loc is None]
    used_files = {loc[0] for _, loc in candidates}
    ids = {e.domain_id.lower() for e in entries.values()}
    prefixes = {k: {d[:k] for d in ids} for k in (4, 5)}
    unused = list(ignored)
    for key, path in index.items():
        if path in used_files:
            continue
        if key in ids or (len(key) in prefixes and key in prefixes[len(key)]):
            unused.append((path.name, f"its domains were read from more specific files (id '{key}')"))
        else:
            unused.append((path.name, f"no domain of {Path(domain_list).name} has id '{key}' or starts with it"))
    unused.sort()
    looked_for = ("<domain> (CATH dompdb), <pdb><chain>, <pdb>, pdb<pdb>, d<pdb><chain>_ (SCOP) with "
                  ".pdb/.ent/.cif/.bcif[.gz]")

    left_out: list[tuple[str, str, str]] = []  # usable domains the selection leaves out (domain, file, reason)

    def write_report(lines: list[str]) -> None:
        body = "".join(f"{d}\t{f}\t{r}\n" for d, f, r in skipped + left_out)
        body += "".join(f"{d}\t-\tno structure file (looked for {looked_for})\n" for d in unmatched)
        body += "".join(f"-\t{n}\tunused: {why}\n" for n, why in unused)
        head = lines + [f"skipped (domain with a file, not usable): {len(skipped)}, of them beyond the "
                        f"{max_radius:g} A rule: {n_beyond}",
                        f"domains of {Path(domain_list).name} without a structure file: {len(unmatched)}",
                        f"unused entries of {Path(pdb_dir).name}: {len(unused)}"]
        atomic_write_text(report, "".join(f"# {ln}\n" for ln in head) + "domain\tfile\treason\n" + body)

    if not candidates:
        write_report([f"no domain of {domain_list} has a structure file in {pdb_dir}"])
        raise InputError(f"CATH build: none of the {len(entries)} domains of {domain_list} has a "
                         f"structure file in {pdb_dir} (looked for {looked_for}; every domain and "
                         f"file is named in {report})")
    for e, (path, is_domain_file) in candidates:
        if not (e.resolution < max_resolution) and math.isfinite(e.resolution):
            skipped.append((e.domain_id, path.name, f"resolution {e.resolution:g} >= {max_resolution:g} A"))
            continue
        segs = None
        if not is_domain_file:
            segs = bounds.get(e.domain_id)
            if segs is None and e.domain_number != "00":
                skipped.append((e.domain_id, path.name, "no boundaries for a domain of a multi-domain "
                                                        "chain (give --boundaries)"))
                continue
        try:
            xyz, resnum, every = read_domain(parsed(path), chain=None if is_domain_file else e.chain,
                                             segments=segs)
        except StructureError as err:
            skipped.append((e.domain_id, path.name, str(err)))
            continue
        rmax = float(np.linalg.norm(every - every.mean(0), axis=1).max())
        if not rmax < max_radius:
            n_beyond += 1
            skipped.append((e.domain_id, path.name, f"an atom {rmax:.1f} A from the all-atom centre: beyond "
                                                    f"the published {max_radius:g} A rule (domain left out)"))
            continue
        usable[e.domain_id] = (xyz - xyz.mean(0), resnum)
        files_of[e.domain_id] = path.name
    cache.clear()

    if not usable:
        write_report([f"no usable structure among {len(candidates)} domains with files"])
        raise InputError(f"CATH build: no usable structure in {pdb_dir}: all {len(candidates)} domains "
                         f"with files were skipped (reasons in {report})")

    by_class: dict[tuple, list[tuple[tuple, float, str]]] = defaultdict(list)
    for dom in usable:
        e = entries[dom]
        by_class[e.cath[:depth]].append((e.cath[:gdepth], e.resolution, dom))
    counts = {c: len(m) for c, m in sorted(by_class.items())}
    classes = [c for c, n in counts.items() if n >= min_size]
    if not classes:
        write_report([f"class sizes: {counts}", f"min_size {min_size}: no class qualifies"])
        raise InputError(f"CATH build: no {level} has at least {min_size} usable domains "
                         f"(sizes: {', '.join(_code(c) + '=' + str(n) for c, n in counts.items())}); "
                         f"lower --min-size")
    quota = per_class if per_class is not None else min(counts[c] for c in classes)
    short = [c for c in classes if counts[c] < quota]
    if short:
        raise InputError(f"CATH build: --per-class {quota} exceeds the usable domains of "
                         f"{', '.join(_code(c) for c in short)}")
    chosen: dict[tuple, list[str]] = {c: balanced_selection(by_class[c], quota) for c in classes}
    sub_sizes: dict[tuple, int] = defaultdict(int)
    for c in classes:
        for dom in chosen[c]:
            sub_sizes[entries[dom].cath[:gdepth]] += 1
    split_of = assign_splits([(sub[:depth], sub, n) for sub, n in sub_sizes.items()], n_splits)
    missing = [(c, s) for c in classes for s in range(n_splits)
               if not any(split_of[entries[d].cath[:gdepth]] == s for d in chosen[c])]

    records = sorted((split_of[entries[d].cath[:gdepth]], entries[d].cath[:depth], d)
                     for c in classes for d in chosen[c])
    n = len(records)
    split_sizes = [sum(1 for s, _, _ in records if s == k) for k in range(n_splits)]
    empty = [k for k, size in enumerate(split_sizes) if size == 0]
    if empty:
        msg = (f"CATH build: split(s) {', '.join(_split_role(k, n_splits) for k in empty)} came out empty "
               f"(split sizes {split_sizes}): the {n} selected domains fall in {len(sub_sizes)} {group_level} "
               f"groups and a group never spans two splits; add structures, lower --n-splits or use a "
               f"finer --group-level")
        write_report([msg, f"split sizes: {split_sizes}"])
        raise InputError(msg)
    max_atoms = max(len(usable[d][0]) for _, _, d in records)
    positions = np.zeros((n, max_atoms, 3), dtype=np.float32)
    atom_types = np.full((n, max_atoms), b"", dtype="S10")
    res_indices = np.full((n, max_atoms), -1, dtype=np.int32)
    n_atoms = np.zeros(n, dtype=np.int32)
    labels = np.zeros((n, depth), dtype=np.int32)
    for i, (_, lab, d) in enumerate(records):
        xyz, resnum = usable[d]
        k = len(xyz)
        positions[i, :k] = xyz
        atom_types[i, :k] = b"CA"
        res_indices[i, :k] = resnum
        n_atoms[i] = k
        labels[i] = lab
    starts = np.concatenate([[0], np.cumsum(split_sizes)[:-1]]).astype(np.int64)
    atomic_savez(out, compress=True, positions=positions, n_atoms=n_atoms, atom_types=atom_types,
                 res_indices=res_indices, labels=labels, split_start_indices=starts,
                 domain_ids=np.array([d for _, _, d in records], dtype="S16"))
    not_selected = sorted(set(usable) - {d for _, _, d in records})
    for d in not_selected:
        c = entries[d].cath[:depth]
        why = (f"usable, left out: {level} {_code(c)} has {counts[c]} usable domains, below min_size {min_size}"
               if c not in classes else
               f"usable, left out by the balanced selection: {level} {_code(c)} has {counts[c]} usable "
               f"domains, {quota} are kept per class")
        left_out.append((d, files_of[d], why))
    warn = [f"class {_code(c)} absent from split {s} (fewer sub-categories than splits)" for c, s in missing]
    write_report([f"built {out.name}: {n} domains, {len(classes)} classes x {quota}, level {level}, "
                  f"splits disjoint in {group_level}",
                  f"classes: {', '.join(_code(c) for c in classes)}",
                  f"usable domains per class: {counts}",
                  f"split sizes: {split_sizes}",
                  f"usable but left out (balancing / class below min_size, each named below): "
                  f"{len(not_selected)}",
                  *(f"WARNING: {w}" for w in warn)])
    return BuildSummary(out=out, report=report, n_records=n, per_class=quota, classes=classes,
                        split_sizes=split_sizes, skipped=skipped, unmatched=unmatched, unused_files=unused,
                        n_beyond_radius=n_beyond, warnings=warn, left_out=left_out)
