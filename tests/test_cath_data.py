"""CATH data: CA reader on real and awkward PDB/mmCIF files, CATH domain list and boundaries, the
biopython build of the published npz (stand-in through the same path), the npz reader and its
errors, the batched Gaussian voxeliser, splits, reductions and per-process batches."""
from __future__ import annotations

import gzip
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules._common import MANIFEST, InputError, sha256, stand_in_manifest
from datamodules.cath import (FILES, CathDataModule, DatasetName, _cli, collate, load_npz, prepare_stand_in,
                              reduce_indices, voxelize)
from datamodules.cath_pdb import (Segment, StructureError, build_dataset, parse_structure, read_boundaries,
                                  read_ca, read_domain_list)
from datamodules.cath_standin import ARCHITECTURES
from models.geometry import random_rotation

DATA = Path(__file__).resolve().parent / "data"
PDB = DATA / "pdb"
REAL = {"1ahsA": (126, 126, 251), "1lpbA": (85, 6, 90), "2cviA": (83, 1, 83), "3a4rA": (79, -4, 412)}


def ca_lines(path: Path) -> list[tuple[int, tuple[float, float, float]]]:
    """Independent reference: CA ATOM records of a simple PDB file read as fixed columns."""
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("ATOM") and line[12:16] == " CA ":
                out.append((int(line[22:26]), (float(line[30:38]), float(line[38:46]), float(line[46:54]))))
    return out


# --------------------------------------------------------------------------- structure reader
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_chains_match_their_ca_records(name):
    path = PDB / f"{name}.pdb.gz"
    xyz, resnum = read_ca(path, chain="A")
    n, first, last = REAL[name]
    ref = ca_lines(path)
    assert len(xyz) == len(ref) == n
    assert resnum[0] == first and resnum[-1] == last
    assert resnum.tolist() == [r for r, _ in ref]
    np.testing.assert_allclose(xyz, np.array([c for _, c in ref]), atol=1e-3)


@pytest.mark.parametrize("fmt", ["pdb", "cif"])
def test_awkward_file_altlocs_insertions_hetatm_models(fmt):
    xyz, resnum = read_ca(PDB / f"awkward.{fmt}", chain="A")
    # first model only; altloc B (occ .6) of residue 2, altloc A on the .5/.5 tie of residue 54;
    # 52, 52A, 52B are three residues; MSE (HETATM with backbone) kept; Ca2+ ion and water dropped
    expected = [(0, 0), (3.8, 1), (7.6, 0), (11.4, 0), (15.2, 0), (19.0, 0), (22.8, 0), (26.6, 0)]
    np.testing.assert_allclose(xyz[:, :2], np.array(expected), atol=1e-4)
    assert resnum.tolist() == [1, 2, 52, 52, 52, 53, 54, 55]
    xyz_b, _ = read_ca(PDB / f"awkward.{fmt}", chain="B")
    np.testing.assert_allclose(xyz_b, [[0, 10, 0]], atol=1e-4)


@pytest.mark.parametrize("seg, n", [(Segment("A", (52, "A"), (54, "")), 4),
                                    (Segment("A", (52, ""), (52, "")), 1),
                                    (Segment("A", (50, ""), (52, "A")), 2),   # start absent: by number
                                    (Segment("A", (2, ""), (52, "B")), 4)])
def test_segments_follow_insertion_codes(seg, n):
    xyz, _ = read_ca(PDB / "awkward.pdb", segments=[seg])
    assert len(xyz) == n


@pytest.mark.parametrize("name, chain, message", [
    ("noca.pdb", "A", "no CA atom"),
    ("garbage.pdb", "A", "no model"),
    ("awkward.pdb", "Z", "chain 'Z' not in file"),
])
def test_unusable_structures_raise_structure_error(name, chain, message):
    with pytest.raises(StructureError, match=message):
        read_ca(PDB / name, chain=chain)


def test_corrupt_gzip_is_unreadable(tmp_path):
    bad = tmp_path / "1abc.pdb.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip")
    with pytest.raises(StructureError, match="unreadable"):
        read_ca(bad, chain="A")


def test_bcif_structure_reads_the_same_ca_as_its_pdb_twin(tmp_path):
    """tests/data/pdb/bcif/ holds BinaryCIF files written by tests/bcif.py (FixedPoint/Delta/
    IntegerPacking/RunLength/StringArray, masks) from 3a4rA.pdb.gz and awkward.cif."""
    from tests.bcif import FIXTURES, fixture_bytes

    xyz, resnum = read_ca(PDB / "bcif" / "3a4rA.bcif.gz", chain="A")
    ref_xyz, ref_resnum = read_ca(PDB / "3a4rA.pdb.gz", chain="A")
    ref = ca_lines(PDB / "3a4rA.pdb.gz")
    assert resnum.tolist() == ref_resnum.tolist() == [r for r, _ in ref] and resnum[0] == -4
    np.testing.assert_allclose(xyz, ref_xyz, atol=5e-4)
    np.testing.assert_allclose(xyz, np.array([c for _, c in ref]), atol=5e-4)
    for chain in "AB":  # altlocs, insertion codes, MSE, ion and water, second model: as from the mmCIF
        a, ra = read_ca(PDB / "bcif" / "awkward.bcif", chain=chain)
        b, rb = read_ca(PDB / "awkward.cif", chain=chain)
        np.testing.assert_allclose(a, b, atol=5e-4)
        assert ra.tolist() == rb.tolist()
    # the writer still makes what is committed (content, not gzip bytes)
    for name in FIXTURES:
        fresh = tmp_path / Path(name).name
        fresh.write_bytes(fixture_bytes(name))
        np.testing.assert_allclose(read_ca(fresh, chain="A")[0], read_ca(PDB / name, chain="A")[0])


def test_bcif_chains_are_author_chains_and_bad_bcif_is_unreadable(tmp_path):
    """Antibody-style author chains H/L whose label_asym_id is A/B: CATH names domains by the author
    chain (1abcH01), as MMCIFParser does; biopython's own BinaryCIFParser would call them A/B."""
    from Bio.PDB.binary_cif import BinaryCIFParser

    from tests.bcif import bcif_from_mmcif, mmcif_dict

    d = mmcif_dict(PDB / "awkward.cif")
    d["_atom_site.auth_asym_id"] = [{"A": "H", "B": "L"}[c] for c in d["_atom_site.auth_asym_id"]]
    p = tmp_path / "9hl9.bcif"
    p.write_bytes(bcif_from_mmcif(d, "9HL9"))
    np.testing.assert_allclose(read_ca(p, chain="H")[0], read_ca(PDB / "awkward.cif", chain="A")[0], atol=5e-4)
    np.testing.assert_allclose(read_ca(p, chain="L")[0], [[0, 10, 0]], atol=5e-4)
    assert {c.id for c in BinaryCIFParser().get_structure(None, str(p))[0]} == {"A", "B", "C", "D"}
    assert {c.id for c in parse_structure(p)[0]} == {"H", "L"}
    for name, data in (("9bad.bcif", b"not msgpack at all"), ("9bae.bcif.gz", b"\x1f\x8b\x08\x00 no gzip"),
                       ("9baf.bcif", p.read_bytes()[:500])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(StructureError, match="unreadable BCIF file"):
            read_ca(tmp_path / name, chain="A")


def _biotite_bcif(pdb_gz: Path, out: Path, chain_map: dict[str, str] | None = None) -> Path:
    """A wwPDB-style BinaryCIF file written by biotite (not by tests/bcif.py): ``_entry.id``, and
    ``pdbx_PDB_ins_code`` / ``label_alt_id`` missing (``?``) in every row, encoded as wwPDB files do
    (a StringArray of no strings, every index -1)."""
    import warnings

    import biotite.structure.io.pdb as bpdb
    import biotite.structure.io.pdbx as pdbx

    with gzip.open(pdb_gz, "rt") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # biotite guesses elements of a PDB file without them
        atoms = bpdb.PDBFile.read(f).get_structure(model=1, extra_fields=["occupancy", "b_factor"])
    bcif = pdbx.BinaryCIFFile()
    pdbx.set_structure(bcif, atoms)
    bcif.block["entry"] = pdbx.BinaryCIFCategory({"id": pdb_gz.name[:4].upper()})
    bcif = pdbx.compress(bcif)
    site = bcif.block["atom_site"]
    if chain_map:
        site["auth_asym_id"] = pdbx.BinaryCIFColumn(
            np.array([chain_map[c] for c in site["auth_asym_id"].as_array(str)]))
    n = len(atoms)
    for empty in ("pdbx_PDB_ins_code", "label_alt_id"):
        no_strings = pdbx.StringArrayEncoding(
            strings=np.array([], dtype="U1"),
            data_encoding=[pdbx.RunLengthEncoding(), pdbx.ByteArrayEncoding()],
            offset_encoding=[pdbx.ByteArrayEncoding()])
        site[empty] = pdbx.BinaryCIFColumn(
            pdbx.BinaryCIFData(np.full(n, "", dtype="U1"), [no_strings]),
            pdbx.BinaryCIFData(np.full(n, pdbx.MaskValue.MISSING, dtype=np.uint8),
                               [pdbx.RunLengthEncoding(), pdbx.ByteArrayEncoding()]))
    bcif.write(out)
    return out


def test_bcif_written_by_biotite_with_all_masked_columns_reads_like_its_pdb(tmp_path):
    """Most wwPDB BinaryCIF files have an all-masked ``pdbx_PDB_ins_code``; biopython 1.88's
    decoder fails on it (IndexError), biotite, which reads them here, does not."""
    import biotite.structure.io.pdbx as pdbx
    from Bio.PDB.binary_cif import BinaryCIFParser

    p = _biotite_bcif(PDB / "1ahsA.pdb.gz", tmp_path / "1ahs.bcif", {"A": "H"})
    site = pdbx.BinaryCIFFile.read(p).block["atom_site"]
    for empty in ("pdbx_PDB_ins_code", "label_alt_id"):  # the case: every value missing
        assert (site[empty].mask.array == pdbx.MaskValue.MISSING).all()
    try:
        BinaryCIFParser().get_structure(None, str(p))
        bio = None
    except Exception as e:  # noqa: BLE001 - documents what the replaced decoder does
        bio = type(e).__name__
    xyz, resnum = read_ca(p, chain="H")  # author chain H (label chain A)
    ref_xyz, ref_resnum = read_ca(PDB / "1ahsA.pdb.gz", chain="A")
    assert resnum.tolist() == ref_resnum.tolist() and len(resnum) == REAL["1ahsA"][0]
    np.testing.assert_allclose(xyz, ref_xyz, atol=1e-3)
    assert bio in (None, "IndexError")  # biopython 1.88: IndexError, as on wwPDB files
    with gzip.open(tmp_path / "1ahsH.bcif.gz", "wb") as f:  # gzipped works the same
        f.write(p.read_bytes())
    np.testing.assert_allclose(read_ca(tmp_path / "1ahsH.bcif.gz", chain="H")[0], ref_xyz, atol=1e-3)


def test_real_wwpdb_bcif_reads_like_its_mmcif_twin():
    """The _atom_site of wwPDB entry 1AKI as the wwPDB writes it (python-mmcif encoder: StringArray
    columns masked in every row, masked integer label_seq_id on waters): the CA trace equals the
    one of the same entry's mmCIF."""
    import biotite.structure.io.pdbx as pdbx

    bcif, cif = PDB / "bcif" / "1aki_atom_site.bcif.gz", PDB / "bcif" / "1aki_atom_site.cif.gz"
    with gzip.open(bcif, "rb") as f:
        site = pdbx.BinaryCIFFile.read(f).block["atom_site"]
    for empty in ("pdbx_PDB_ins_code", "label_alt_id", "pdbx_formal_charge"):
        assert (site[empty].mask.array != pdbx.MaskValue.PRESENT).all()
    xyz, resnum = read_ca(bcif, chain="A")
    ref_xyz, ref_resnum = read_ca(cif, chain="A")
    assert len(resnum) == 129 and resnum.tolist() == ref_resnum.tolist() == list(range(1, 130))
    np.testing.assert_allclose(xyz, ref_xyz, atol=1e-4)
    np.testing.assert_allclose(xyz[0], [35.892, 21.073, -11.427], atol=1e-3)


def test_bcif_encoded_by_biotite_itself_reads_like_its_mmcif(tmp_path):
    """awkward.cif converted to BinaryCIF by biotite's own encoder (``pdbx.compress`` chooses the
    encodings; masked '.' / '?' in label_alt_id, pdbx_PDB_ins_code and label_seq_id): altlocs,
    insertion codes 52A/52B, MSE, ions, waters and a second model read as from the mmCIF."""
    import biotite.structure.io.pdbx as pdbx

    site = pdbx.CIFFile.read(str(PDB / "awkward.cif")).block["atom_site"]
    columns = {}
    for name in site.keys():
        col = site[name]
        values = col.as_array(str)
        mask = None if col.mask is None else col.mask.array
        present = values if mask is None else values[mask == pdbx.MaskValue.PRESENT]
        for dtype in (np.int32, np.float32):  # typed columns, so that compress picks number encodings
            try:
                present.astype(dtype)
                if dtype is np.int32 and any("." in v for v in present):
                    continue
            except ValueError:
                continue
            values = (values if mask is None else np.where(mask == pdbx.MaskValue.PRESENT, values, "0")).astype(dtype)
            break
        columns[name] = pdbx.BinaryCIFColumn(pdbx.BinaryCIFData(values),
                                             None if mask is None else pdbx.BinaryCIFData(mask))
    out = pdbx.compress(pdbx.BinaryCIFFile({"AWKW": pdbx.BinaryCIFBlock({"atom_site": pdbx.BinaryCIFCategory(columns)})}))
    written = out.block["atom_site"]
    assert written["label_seq_id"].mask is not None and written["pdbx_PDB_ins_code"].mask is not None
    assert written["label_seq_id"].data.array.dtype.kind in "iu"  # an integer column with masked rows
    out.write(tmp_path / "awkw.bcif")
    for chain in "AB":
        a, ra = read_ca(tmp_path / "awkw.bcif", chain=chain)
        b, rb = read_ca(PDB / "awkward.cif", chain=chain)
        assert ra.tolist() == rb.tolist()
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert read_ca(tmp_path / "awkw.bcif", chain="A")[1].tolist() == [1, 2, 52, 52, 52, 53, 54, 55]


# --------------------------------------------------------------------------- CATH text formats
def test_domain_list_and_boundary_formats():
    entries = read_domain_list(DATA / "cath" / "domains.txt")
    assert entries["1ahsA02"].cath == (1, 10, 9, 10) and entries["2cviA00"].resolution == 2.9
    domall = read_boundaries(DATA / "cath" / "domall.txt")
    assert domall["1ahsA02"] == [Segment("A", (191, ""), (251, ""))]
    assert domall["1lpbA00"] == domall["1lpbA01"]  # one-domain chain: both names
    simple = read_boundaries(DATA / "cath" / "boundaries_simple.txt")
    assert simple["1ahsA01"] == [Segment("A", (126, ""), (150, "")), Segment("A", (170, ""), (190, ""))]
    assert simple["1ahsA02"] == [Segment("A", (191, ""), (251, ""))]  # chain from the domain id


@pytest.mark.parametrize("line, field", [
    ("1abcA00 5 10 8 10 1 1 1 1 1 59 1.0", "'class' is 5"),
    ("1abcA00 1 x 8 10 1 1 1 1 1 59 1.0", "'architecture' is 'x'"),
    ("1abcA00 1 10 8 0 1 1 1 1 1 59 1.0", "'superfamily' is 0"),
    ("abcdA00 1 10 8 10 1 1 1 1 1 59 1.0", "'domain' is 'abcdA00'"),
    ("1abcA00 1 10 8 10 1 1 1 1 1 59 high", "'resolution' is 'high'"),
    ("1abcA00 1.10.8", "'cath_code'"),
])
def test_domain_list_errors_name_file_line_and_field(tmp_path, line, field):
    p = tmp_path / "list.txt"
    p.write_text("# header\n1oaiA00 1 10 8 10 1 1 1 1 1 59 1.0\n" + line + "\n")
    with pytest.raises(InputError) as e:
        read_domain_list(p)
    assert f"{p}:3" in str(e.value) and field in str(e.value)


def test_boundary_errors(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("1abcA01 A:10-x\n")
    with pytest.raises(InputError, match=r"b.txt:1: field 'segment'"):
        read_boundaries(p)
    p.write_text("1abcA D02 F00  1  A    2 - A  156 -\n")
    with pytest.raises(InputError, match="ends before domain 2"):
        read_boundaries(p)


# --------------------------------------------------------------------------- build from structures
def test_build_real_chains_with_boundaries(tmp_path):
    out = tmp_path / "real.npz"
    s = build_dataset(PDB, DATA / "cath" / "domains.txt", out, boundaries=DATA / "cath" / "domall.txt",
                      min_size=2, n_splits=2)
    assert s.classes == [(1, 10), (2, 60)] and s.per_class == 2 and s.split_sizes == [2, 2]
    a = load_npz(out)
    with np.load(out) as z:
        ids = [d.decode() for d in z["domain_ids"]]
        res = z["res_indices"]
    counts = dict(zip(ids, a.n_atoms.tolist()))
    assert counts == {"1ahsA01": 65, "1ahsA02": 61, "1lpbA00": 85, "2cviA00": 83}
    i = ids.index("1ahsA02")
    assert res[i, 0] == 191 and res[i, 60] == 250 + 1 and res[i, 61] == -1
    # centred on the CA mean; the two topologies of each class are in different splits
    np.testing.assert_allclose(a.positions[i, :61].mean(0), 0, atol=1e-4)
    split_of = {d: int(np.searchsorted(a.split_start_indices, k, side="right") - 1) for k, d in enumerate(ids)}
    assert split_of["1ahsA01"] != split_of["1ahsA02"] and split_of["1lpbA00"] != split_of["2cviA00"]
    assert a.label_set == [(1, 10), (2, 60)] and sorted(a.y.tolist()) == [0, 0, 1, 1]
    report = s.report.read_text()
    assert "usable but left out (balancing / class below min_size, each named below): 1" in report
    (row,) = [ln for ln in report.split("domain\tfile\treason\n")[1].splitlines() if ln.startswith("3a4r")]
    assert row.startswith("3a4rA00\t3a4rA.pdb.gz\tusable, left out: arch ") and "below min_size 2" in row
    assert s.left_out == [tuple(row.split("\t"))]
    from datamodules.cath import build_summary_text
    text = build_summary_text(s, "domains.txt", "pdb")
    assert "usable but left out (1; class below --min-size or balancing): 3a4rA00" in text


def test_build_reports_skipped_and_rejects_wholly_unusable_input(tmp_path):
    pdb = tmp_path / "pdb"
    pdb.mkdir()
    shutil.copy(PDB / "noca.pdb", pdb / "9noc.pdb")
    shutil.copy(PDB / "garbage.pdb", pdb / "9gar.pdb")
    (pdb / "9bad.pdb.gz").write_bytes(b"not gzip")
    lst = tmp_path / "list.txt"
    lst.write_text("9nocA00 1 10 1 1 1 1 1 1 1 9 1.0\n9garA00 1 10 2 1 1 1 1 1 1 9 1.0\n"
                   "9badA00 1 10 3 1 1 1 1 1 1 9 1.0\n9nocA01 1 10 4 1 1 1 1 1 1 9 1.0\n")
    with pytest.raises(InputError, match="no usable structure"):
        build_dataset(pdb, lst, tmp_path / "x.npz", min_size=1)
    report = (tmp_path / "x.npz.report.tsv").read_text()
    assert "9nocA00\t9noc.pdb\tno CA atom" in report and "9garA00\t9gar.pdb\tno model" in report
    assert "9badA00\t9bad.pdb.gz\tunreadable" in report and "9nocA01\t9noc.pdb\tno boundaries" in report
    assert not (tmp_path / "x.npz").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no structure files"):
        build_dataset(empty, lst, tmp_path / "y.npz")
    with pytest.raises(InputError, match="is not a directory"):
        build_dataset(tmp_path / "nowhere", lst, tmp_path / "y.npz")


def test_build_matches_odd_names_and_names_every_unmatched_domain_and_unused_file(tmp_path, capsys):
    pdb = tmp_path / "structures"
    pdb.mkdir()
    (pdb / "1lpbA00").write_bytes(gzip.decompress((PDB / "1lpbA.pdb.gz").read_bytes()))  # CATH dompdb
    (pdb / "d2cvia_.ent").write_bytes(gzip.decompress((PDB / "2cviA.pdb.gz").read_bytes()))  # SCOP chain
    shutil.copy(PDB / "bcif" / "3a4rA.bcif.gz", pdb / "3A4RA.bcif.gz")                   # BinaryCIF
    shutil.copy(PDB / "1ahsA.pdb.gz", pdb / "adk_open.pdb.gz")                           # no id in name
    shutil.copy(PDB / "1ahsA.pdb.gz", pdb / "d1ahsa1.ent.gz")                            # SCOP's own cut
    shutil.copy(PDB / "1ahsA.pdb.gz", pdb / "1xyz.pdb.gz")                               # no such domain
    (pdb / "notes.txt").write_text("where these came from\n")
    (pdb / "old").mkdir()
    lst = tmp_path / "list.txt"
    lst.write_text("1lpbA00 2 60 40 10 1 1 1 1 1 85 1.8\n2cviA00 1 10 41 10 1 1 1 1 1 83 2.9\n"
                   "3a4rA00 3 40 50 300 1 1 1 1 1 79 1.5\n1ahsA01 1 10 8 10 1 1 1 1 1 65 2.1\n"
                   "9zzzA00 1 10 8 11 1 1 1 1 1 50 2.0\n")
    out = tmp_path / "odd.npz"
    assert _cli(["build", "--pdb-dir", str(pdb), "--domain-list", str(lst), "--out", str(out),
                 "--min-size", "1", "--per-class", "1", "--n-splits", "1"]) == 0
    printed = capsys.readouterr().out
    with np.load(out) as z:
        ids = sorted(d.decode() for d in z["domain_ids"])
    assert ids == ["1lpbA00", "2cviA00", "3a4rA00"]
    a = load_npz(out)
    k = [d.decode() for d in np.load(out)["domain_ids"]].index("3a4rA00")
    ca = read_ca(PDB / "3a4rA.pdb.gz", chain="A")[0]
    np.testing.assert_allclose(a.positions[k, :a.n_atoms[k]], ca - ca.mean(0), atol=1e-3)  # bcif = pdb twin
    report = (tmp_path / "odd.npz.report.tsv").read_text()
    for line in ["1ahsA01\t-\tno structure file", "9zzzA00\t-\tno structure file",
                 "-\tadk_open.pdb.gz\tunused: name 'adk_open' is not a PDB entry",
                 "-\td1ahsa1.ent.gz\tunused: SCOP domain d1ahsa1: cut by SCOP's own domain boundaries",
                 "-\t1xyz.pdb.gz\tunused: no domain of list.txt has id '1xyz'",
                 "-\tnotes.txt\tunused: not a structure file name", "-\told/\tunused: a folder"]:
        assert "\n" + line in report, line
    assert "domains of list.txt without a structure file (2): 1ahsA01, 9zzzA00" in printed
    for name in ("adk_open.pdb.gz (name 'adk_open'", "d1ahsa1.ent.gz (SCOP", "1xyz.pdb.gz (no domain",
                 "notes.txt (not a structure", "old/ (a folder"):
        assert name in printed, name
    assert "unused entries of structures (5): " in printed


def _pdb_lines(atoms: list[tuple[str, str, int, tuple[float, float, float]]]) -> str:
    """ATOM/HETATM records for (atom name, residue name, residue number, xyz), chain A."""
    lines = []
    for i, (name, res, num, (x, y, z)) in enumerate(atoms, 1):
        rec = "HETATM" if res == "HOH" else "ATOM  "
        lines.append(f"{rec}{i:5d}  {name:<3s} {res} A{num:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00 20.00"
                     f"           {name[0]}")
    return "\n".join(lines) + "\nEND\n"


def test_build_applies_the_published_50_A_rule_to_every_atom_and_never_clips(tmp_path, capsys):
    """construct_dataset.py keeps a domain only if every atom is < 50 Å from the all-atom centre; a
    domain with one far side-chain atom goes whole (named in the report), waters do not count, and
    kept domains keep all their CA atoms (centred on their mean)."""
    pdb = tmp_path / "pdb"
    pdb.mkdir()
    line = [("CA", "ALA", i + 1, (3.8 * i - 20.0 + 7, 5.0, -3.0)) for i in range(11)]   # CA up to 20 Å out
    far_cb = line + [("CB", "ALA", 6, (7.0, 62.0, -3.0))]          # a CB ~55 Å from the all-atom centre
    wet = line + [("O", "HOH", 301, (7.0, 5.0, 90.0))]             # a water 93 Å out: not an atom of it
    big = [("CA", "ALA", i + 1, (9.0 * i - 45.0, 0.0, 0.0)) for i in range(11)]  # CA 45 Å out: kept whole
    for code, atoms in (("9aaa", far_cb), ("9aab", wet), ("9aac", line), ("9aad", big)):
        (pdb / f"{code}A00.pdb").write_text(_pdb_lines(atoms))
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{c}A00 1 10 {t} 1 1 1 1 1 1 11 1.5\n"
                           for c, t in (("9aaa", 1), ("9aab", 2), ("9aac", 3), ("9aad", 4))))
    out = tmp_path / "r.npz"
    assert _cli(["build", "--pdb-dir", str(pdb), "--domain-list", str(lst), "--out", str(out),
                 "--min-size", "1", "--n-splits", "3"]) == 0
    assert "skipped: 1 domain(s) with a structure file (1 by the 50 A rule)" in capsys.readouterr().out
    report = (tmp_path / "r.npz.report.tsv").read_text()
    assert "9aaaA00\t9aaaA00.pdb\tan atom 5" in report and "beyond the published 50 A rule" in report
    assert "beyond the 50 A rule: 1" in report
    a = load_npz(out)
    ids = [d.decode() for d in np.load(out)["domain_ids"]]
    assert sorted(ids) == ["9aabA00", "9aacA00", "9aadA00"] and a.n_atoms.tolist() == [11, 11, 11]
    k = ids.index("9aadA00")
    np.testing.assert_allclose(a.positions[k, :11, 0], 9.0 * np.arange(11) - 45.0, atol=1e-4)
    np.testing.assert_allclose(a.positions[:, :11].mean(1), 0, atol=1e-4)


def test_build_with_an_empty_validation_or_test_split_is_an_error(tmp_path, capsys):
    """Four domains in four topologies cannot fill ten topology-disjoint splits: exit 2, one line
    with the split sizes, no npz (the report is written)."""
    out = tmp_path / "few.npz"
    argv = ["build", "--pdb-dir", str(PDB), "--domain-list", str(DATA / "cath" / "domains.txt"),
            "--boundaries", str(DATA / "cath" / "domall.txt"), "--out", str(out), "--min-size", "2"]
    assert _cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: CATH build: split(s) 4 (training), 5 (training), 6 (training), 7 (validation), "
                   "8 (test), 9 (test) came out empty (split sizes [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]): the 4 "
                   "selected domains fall in 4 topo groups and a group never spans two splits; add "
                   "structures, lower --n-splits or use a finer --group-level"]
    assert not out.exists() and "came out empty" in (tmp_path / "few.npz.report.tsv").read_text()


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cath_standin")
    assert prepare_stand_in(d, per_class=12, topologies=12, seed=3)
    return d


def test_stand_in_goes_through_the_biopython_build(standin):
    a = load_npz(standin / "cath_10arch_ca.npz")
    assert len(a) == 120 and a.label_set == sorted(ARCHITECTURES) and np.bincount(a.y).tolist() == [12] * 10
    entries = read_domain_list(standin / "raw" / "CathDomainList.txt")
    with np.load(standin / "cath_10arch_ca.npz") as z:
        ids = [d.decode() for d in z["domain_ids"]]
    bounds = list(a.split_start_indices) + [len(a)]
    topo_split = {}
    for s in range(10):
        members = ids[bounds[s]:bounds[s + 1]]
        assert {entries[d].cath[:2] for d in members} == set(ARCHITECTURES)  # every class in every split
        for d in members:
            assert topo_split.setdefault(entries[d].cath[:3], s) == s   # topology-disjoint splits
    # domains cut from two-domain chains (second starts at an insertion-coded residue) keep their length
    two = [k for k, d in enumerate(ids) if d.endswith(("01", "02"))]
    assert two
    for k in two:
        length = int(open(standin / "raw" / "CathDomainList.txt").read().split(ids[k])[1].split()[9])
        assert a.n_atoms[k] == length
    # CA traces: consecutive CA-CA within loop tolerance, centred
    for k in range(0, len(a), 17):
        p = a.positions[k, : a.n_atoms[k]]
        d = np.linalg.norm(np.diff(p, axis=0), axis=1)
        assert 1.0 < np.median(d) < 4.5 and abs(np.median(d) - 3.8) < 0.3
        np.testing.assert_allclose(p.mean(0), 0, atol=1e-3)
    report = (standin / "cath_10arch_ca.npz.report.tsv").read_text()
    assert "9zzzA00\t9zzzA.pdb\tno CA atom" in report and "resolution" in report


def test_cli_build_info_and_errors(standin, tmp_path, capsys):
    raw = standin / "raw"
    out = tmp_path / "cli.npz"
    assert _cli(["build", "--pdb-dir", str(raw / "structures"), "--domain-list", str(raw / "CathDomainList.txt"),
                 "--boundaries", str(raw / "CathDomall.txt"), "--out", str(out), "--min-size", "12",
                 "--level", "class", "--group-level", "topo"]) == 0
    assert load_npz(out).label_set == [(1,), (2,), (3,), (4,)]
    assert _cli(["info", str(out)]) == 0 and "records" in capsys.readouterr().out
    assert _cli(["build", "--pdb-dir", str(tmp_path / "no"), "--domain-list", str(raw / "CathDomainList.txt"),
                 "--out", str(out)]) == 2
    assert "error: CATH: --pdb-dir" in capsys.readouterr().err


# --------------------------------------------------------------------------- npz reader
def published_like(path: Path, **changes) -> Path:
    """A small npz in the published layout (float64 positions, float res_indices, like
    construct_dataset.py), with fields replaced or removed by ``changes``."""
    rng = np.random.default_rng(0)
    n, a = 12, 7
    n_atoms = rng.integers(3, a + 1, n)
    pos = np.zeros((n, a, 3))
    types = np.full((n, a), b"", dtype="S10")
    res = np.zeros((n, a)) - 1
    for i, k in enumerate(n_atoms):
        pos[i, :k] = rng.normal(size=(k, 3)) * 5
        pos[i, :k] -= pos[i, :k].mean(0)  # centred on the CA mean, as construct_dataset.py writes
        types[i, :k] = b"CA"
        res[i, :k] = np.arange(k)
    arrays = {"positions": pos, "n_atoms": n_atoms, "atom_types": types, "res_indices": res,
              "labels": np.array([(3, 40), (1, 10), (2, 60)] * 4), "split_start_indices": np.array([0, 4, 8])}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_and_label_mapping(standin, tmp_path):
    a = load_npz(published_like(tmp_path / "p.npz"))
    assert a.positions.dtype == np.float32 and a.label_set == [(1, 10), (2, 60), (3, 40)]
    assert a.y.tolist() == [2, 0, 1] * 4
    np.testing.assert_array_equal(a.split_indices([1, 2]), np.arange(4, 12))
    b = load_npz(standin / "cath_10arch_ca.npz")
    with np.load(standin / "cath_10arch_ca.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(b.positions, z["positions"])
        np.testing.assert_array_equal(b.n_atoms, z["n_atoms"])
        np.testing.assert_array_equal(b.labels, z["labels"])
        assert z["atom_types"][0, 0] == b"CA" and z["atom_types"][0, -1] in (b"", b"CA")


@pytest.mark.parametrize("changes, field", [
    ({"labels": None}, "lacks field(s) labels"),
    ({"n_atoms": np.ones(11, dtype=int)}, "'n_atoms' has shape (11,)"),
    ({"n_atoms": np.full(12, 8)}, "'n_atoms' ranges 8..8"),
    ({"res_indices": np.zeros((12, 6))}, "'res_indices' has shape (12, 6)"),
    ({"positions": np.zeros((12, 7, 2))}, "'positions' has shape (12, 7, 2)"),
    ({"labels": np.array([(7, 10)] * 12)}, "'labels' holds unknown CATH class(es) [7]"),
    ({"labels": np.full((12, 2), 1.5)}, "'labels' must hold integer"),
    ({"split_start_indices": np.array([0, 8, 4])}, "'split_start_indices' is [0, 8, 4]"),
    ({"atom_types": np.zeros((12, 7))}, "'atom_types' has dtype float64"),
])
def test_bad_npz_names_file_and_field(tmp_path, changes, field):
    p = published_like(tmp_path / "bad.npz", **changes)
    with pytest.raises(InputError) as e:
        load_npz(p)
    assert str(p) in str(e.value) and field in str(e.value)


def _corrupt(kind: str) -> dict:
    """Field changes of :func:`published_like` that break the coordinates of some records."""
    with np.load(published_like(Path(tempfile.mkdtemp()) / "ok.npz")) as z:
        pos, n_atoms = z["positions"].copy(), z["n_atoms"]
    if kind == "non-finite":
        pos[5, 1] = [np.nan, 0, np.inf]
    elif kind == "uncentred":                       # +1e4 Å: a translated file
        pos[[3, 7, 9]] += 1e4 * (np.arange(pos.shape[1]) < n_atoms[[3, 7, 9], None])[..., None]
    elif kind == "x1e30":                           # a unit mix-up: centred, far outside any box
        pos *= 1e30
    elif kind == "outside":                         # centred but ~150 Å across: mostly off the grid
        pos[2] *= 30
    return {"positions": pos, "domain_ids": np.array([f"1r{i:02d}A00" for i in range(12)], dtype="S16")}


@pytest.mark.parametrize("kind, message", [
    ("non-finite", "1 of 12 records hold non-finite coordinates (NaN, inf, or beyond the float32 range), "
                   "first record 5 (1r05A00): atom 1 is [nan, 0.0, inf]"),
    ("uncentred", "3 of 12 records not centred (CA centroid more than 1 Å from the origin; the published "
                  "file is centred on the CA mean), first record 3 (1r03A00): centroid 1.73e+04 Å"),
    ("x1e30", "12 of 12 records have most of their atoms outside the voxel box of the config "
              "(data.grid_size x data.bin_size = 50 x 2 Å: ±50 Å about the origin), first record 0 (1r00A00)"),
    ("outside", "1 of 12 records have most of their atoms outside the voxel box of the config "
                "(data.grid_size x data.bin_size = 50 x 2 Å: ±50 Å about the origin), first record 2 (1r02A00)"),
])
def test_bad_coordinates_are_refused_naming_file_record_and_count(tmp_path, capsys, kind, message):
    """Coordinates that would voxelise to empty or shifted grids (and train as if real) are one
    InputError before any training: prepare_data, the info command (exit 2, one line) and the runner."""
    p = published_like(tmp_path / FILES["10arch"], **_corrupt(kind))
    dm = CathDataModule(tmp_path, num_classes=3, train_splits=(0,), val_splits=(1,), test_splits=(2,))
    with pytest.raises(InputError) as e:
        dm.prepare_data()
    assert str(e.value).startswith(f"CATH: {p}: field 'positions': ") and message in str(e.value)
    assert _cli(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: CATH: ") and message in err[0]


def test_bad_coordinates_stop_the_runner_with_one_line(tmp_path, capsys):
    from reproduce.cath import BENCH
    from reproduce.runner import main

    published_like(tmp_path / FILES["10arch"], **_corrupt("uncentred"))
    argv = ["--preset", "smoke", "--logger", "none", "--results-dir", str(tmp_path / "res"),
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path)]
    assert main(BENCH, argv=argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: CATH: ") and "3 of 12 records not centred" in err[-1], err
    assert not [p for p in (tmp_path / "res").rglob("*") if p.is_file()]   # no row, no table


def test_box_check_follows_the_config_and_tolerates_a_few_atoms_outside(tmp_path, capsys):
    p = published_like(tmp_path / FILES["10arch"])
    a = load_npz(p, (9, 6.0))                       # 54 Å box: every record of the fixture is inside
    assert a.domain_ids is None and len(a) == 12
    with pytest.raises(InputError, match=r"12 of 12 records have most .* = 2 x 1 Å: ±1 Å"):
        load_npz(p, (2, 1.0))
    pos = np.zeros((1, 4, 3))
    pos[0, :, 0] = [-30.0, 10.0, 10.0, 10.0]         # centred; one atom of four beyond ±27 Å: kept
    q = published_like(tmp_path / "few.npz", positions=np.repeat(pos, 12, 0)[:, :4], n_atoms=np.full(12, 4),
                       atom_types=np.full((12, 4), b"CA", dtype="S10"), res_indices=np.zeros((12, 4)))
    load_npz(q, (9, 6.0))
    assert _cli(["info", str(q), "--grid-size", "9", "--bin-size", "6"]) == 0
    assert "12 records with atoms outside the 9 x 6 Å box (12 atoms)" in capsys.readouterr().out


def test_unreadable_npz_errors(tmp_path):
    with pytest.raises(InputError, match="missing .*nope.npz.*--stand-in"):
        load_npz(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="junk.npz is not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    obj = published_like(tmp_path / "obj.npz", labels=np.array([(1, 10)] * 11 + [(1, "x")], dtype=object))
    with pytest.raises(InputError, match="cannot be read without pickle"):
        load_npz(obj)


# --------------------------------------------------------------------------- voxeliser
def brute_force(p: np.ndarray, n: int, bin_size: float, sigma: float) -> np.ndarray:
    c = (np.arange(n) - (n - 1) / 2) * bin_size
    X, Y, Z = np.meshgrid(c, c, c, indexing="ij")
    out = np.zeros((n, n, n))
    for x, y, z in p:
        g = np.exp(-((X - x) ** 2 + (Y - y) ** 2 + (Z - z) ** 2) / (2 * sigma ** 2))
        out += g / g.sum()
    return out


def test_voxelize_matches_direct_sum_and_conserves_mass():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(2, 30, 3)) * 6
    mask = np.ones((2, 30), dtype=bool)
    mask[1, 20:] = False
    p[1, 20:] = 1000.0  # padding far away must not matter when masked
    g = voxelize(torch.from_numpy(p), torch.from_numpy(mask), n=12, bin_size=2.0, sigma=1.0)
    assert g.shape == (2, 1, 12, 12, 12)
    np.testing.assert_allclose(g[0, 0].numpy(), brute_force(p[0], 12, 2.0, 1.0), atol=1e-10)
    np.testing.assert_allclose(g[1, 0].numpy(), brute_force(p[1, :20], 12, 2.0, 1.0), atol=1e-10)
    np.testing.assert_allclose(g.sum((1, 2, 3, 4)).numpy(), [30, 20], rtol=1e-10)
    # an atom with no mass on the grid is dropped rather than renormalised into the border
    far = voxelize(torch.tensor([[[500.0, 0, 0]]]), torch.ones(1, 1, dtype=torch.bool), n=8)
    assert float(far.abs().sum()) == 0.0


@pytest.mark.parametrize("n", [9, 50])
def test_voxelize_centring_and_axis_convention(n):
    def com(g):
        idx = torch.arange(n, dtype=torch.float64)
        g = g[0, 0].double()
        return [float((g.sum(dims) * idx).sum() / g.sum()) for dims in ((1, 2), (0, 2), (0, 1))]

    one = torch.ones(1, 1, dtype=torch.bool)
    centre = (n - 1) / 2
    assert com(voxelize(torch.zeros(1, 1, 3, dtype=torch.float64), one, n)) == pytest.approx([centre] * 3, abs=1e-9)
    # +1, -2, +2 bins along x, y, z = grid axes 0, 1, 2 (tails cut by the box edge: abs 1e-3)
    shifted = voxelize(torch.tensor([[[2.0, -4.0, 4.0]]], dtype=torch.float64), one, n, bin_size=2.0)
    assert com(shifted) == pytest.approx([centre + 1, centre - 2, centre + 2], abs=1e-3)


def test_voxelize_rotation():
    rng = np.random.default_rng(2)
    p = torch.from_numpy(rng.normal(size=(3, 25, 3)) * 5)
    mask = torch.ones(3, 25, dtype=torch.bool)
    R = random_rotation(3, dtype=torch.float64)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3, dtype=torch.float64))
    g_rot = voxelize(p, mask, 15, rotations=R)
    torch.testing.assert_close(g_rot, voxelize(p @ R.transpose(1, 2), mask, 15))
    # a quarter turn about z (x -> y) is an exact permutation of the voxels of an odd grid
    Rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64).expand(3, 3, 3)
    g = voxelize(p, mask, 15)
    torch.testing.assert_close(voxelize(p, mask, 15, rotations=Rz), torch.rot90(g, 1, dims=(2, 3)))
    torch.testing.assert_close(g_rot.sum((1, 2, 3, 4)), g.sum((1, 2, 3, 4)), rtol=1e-3, atol=0)


# --------------------------------------------------------------------------- datamodule
def test_datamodule_splits_reduction_and_batches(standin, monkeypatch):
    dm = CathDataModule(standin, batch_size=16, grid_size=9, bin_size=6.0, sigma=3.0, reduction=4, num_classes=10)
    dm.prepare_data()
    dm.setup()
    a = dm.arrays
    train = a.split_indices(range(7))
    sizes = np.bincount(a.y[train], minlength=10)
    assert np.bincount(a.y[dm.sets["train"].idx], minlength=10).tolist() == [math.ceil(s / 4) for s in sizes]
    assert len(dm.sets["val"]) == len(a.split_indices([7])) and len(dm.sets["test"]) == len(a.split_indices([8, 9]))
    # the reduced subset does not depend on anything but the factor
    np.testing.assert_array_equal(reduce_indices(train, a.y, 4), dm.sets["train"].idx)
    x, y = dm.voxelize_batch(next(iter(dm.train_dataloader())), rotate=True)
    assert x.shape == (16, 1, 9, 9, 9) and y.shape == (16,)
    monkeypatch.setattr("datamodules.cath.trainer_world", lambda dm: (2, 1))
    assert dm.per_rank_batch() == 8
    assert len(list(dm.test_dataloader().sampler)) == len(range(1, len(dm.sets["test"]), 2))
    monkeypatch.setattr("datamodules.cath.trainer_world", lambda dm: (3, 0))
    with pytest.raises(InputError, match="not divisible by the 3 DDP processes"):
        dm.per_rank_batch()
    with pytest.raises(InputError, match="has 10 classes"):
        CathDataModule(standin, num_classes=3).prepare_data()


def test_prepare_data_validates_every_split_and_the_dataset_choice(standin, tmp_path):
    assert set(DatasetName.__args__) == set(FILES)
    with pytest.raises(InputError, match="split 10 requested but the file has 10 splits"):
        CathDataModule(standin, test_splits=(8, 10)).prepare_data()
    with pytest.raises(InputError, match="the val splits .* are empty"):
        CathDataModule(standin, val_splits=()).prepare_data()
    with pytest.raises(InputError, match=r"missing .*cath_3class_ca.npz"):
        CathDataModule(standin, dataset="3class", num_classes=3).prepare_data()
    with pytest.raises(InputError, match="data.dataset '5arch' unknown; valid: 10arch, 3class, 20topo"):
        CathDataModule(tmp_path, dataset="5arch")
    with pytest.raises(InputError, match="the stand-in provides only 10arch, not data.dataset=3class"):
        CathDataModule(tmp_path, stand_in=True, dataset="3class")


def test_stand_in_manifest_reused_then_regenerated_when_a_parameter_changes(tmp_path):
    d = tmp_path / "standin"
    kw = dict(stand_in=True, stand_in_per_class=10, stand_in_topologies=10, grid_size=9, bin_size=6.0)
    CathDataModule(d, **kw).prepare_data()
    m = stand_in_manifest(d)
    npz = d / FILES["10arch"]
    assert m["params"] == {"per_class": 10, "topologies": 10, "seed": 0} and FILES["10arch"] in m["files"]
    assert "NOT the paper's data" in m["description"] and "10 domains each" in m["description"]
    assert "raw/CathDomainList.txt" in m["files"] and len(load_npz(npz)) == 100
    first = (npz.stat().st_mtime_ns, (d / MANIFEST).read_text())
    CathDataModule(d, **kw, reduction=4).prepare_data()          # same stand-in parameters: reused
    assert (npz.stat().st_mtime_ns, (d / MANIFEST).read_text()) == first
    old_hash = sha256(npz)
    CathDataModule(d, **{**kw, "stand_in_seed": 1}).prepare_data()   # another seed: regenerated
    assert stand_in_manifest(d)["params"]["seed"] == 1 and sha256(npz) != old_hash
    npz.write_bytes(npz.read_bytes()[:-10])                       # a changed file is refused
    with pytest.raises(InputError, match="missing or was changed after it was generated"):
        CathDataModule(d, **{**kw, "stand_in_seed": 1}).prepare_data()
    other = tmp_path / "real"
    other.mkdir()
    (other / FILES["10arch"]).write_bytes(b"someone's data")
    with pytest.raises(InputError, match="holds other files"):
        CathDataModule(other, **kw).prepare_data()


def test_collate_pads_and_masks():
    pos, mask, y = collate([(torch.ones(2, 3), 1), (torch.ones(4, 3), 0)])
    assert pos.shape == (2, 4, 3) and mask.sum().item() == 6 and y.tolist() == [1, 0]
    assert pos[0, 2:].abs().sum() == 0
