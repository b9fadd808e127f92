"""A small BinaryCIF writer for test fixtures (the reader under test decodes with biotite).

BinaryCIF (molstar/BinaryCIF ``encoding.md``, version 0.3): a MessagePack map ``{version, encoder,
dataBlocks: [{header, categories: [{name, rowCount, columns: [{name, data, mask}]}]}]}``; each
column's ``data`` is ``{data: bytes, encoding: [...]}`` with the encodings listed in the order they
were *applied* (a reader undoes them last to first). Used here, as RCSB/molstar files do:

* coordinates, occupancy, B: ``FixedPoint`` (×1000 / ×100) → ``Delta`` → ``IntegerPacking`` (int16)
  → ``ByteArray``;
* integers (serial, residue numbers, entity, model): ``Delta`` → ``RunLength`` → ``IntegerPacking``
  → ``ByteArray``;
* text: ``StringArray`` (unique strings + offsets; indices ``RunLength`` → ``IntegerPacking`` →
  ``ByteArray``);
* mmCIF's missing values ``.`` / ``?``: 0 or ``""`` in the data plus a ``mask`` column (0 present,
  1 ``.``, 2 ``?``; ``RunLength`` → ``ByteArray``).

Regenerate the committed fixtures (``tests/data/pdb/bcif/``) with ``python -m tests.bcif``;
``tests/test_cath_data.py`` checks that they are what this writer produces.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import msgpack
import numpy as np

INT8, INT16, INT32, UINT8, FLOAT64 = 1, 2, 3, 4, 33
_DTYPES = {INT8: "<i1", INT16: "<i2", INT32: "<i4", UINT8: "<u1"}
#: mmCIF ``_atom_site`` items by value type (everything else is text)
FLOAT_ITEMS = {"Cartn_x": 1000, "Cartn_y": 1000, "Cartn_z": 1000, "occupancy": 100, "B_iso_or_equiv": 100}
INT_ITEMS = {"id", "label_entity_id", "label_seq_id", "auth_seq_id", "pdbx_PDB_model_num", "pdbx_formal_charge"}
DATA = Path(__file__).resolve().parent / "data" / "pdb"


def _byte_array(values: np.ndarray, type_code: int) -> tuple[bytes, dict]:
    return np.asarray(values, dtype=_DTYPES[type_code]).tobytes(), {"kind": "ByteArray", "type": type_code}


def _integer_packing(values: np.ndarray, byte_count: int = 2) -> tuple[np.ndarray, dict]:
    """Signed packing: a value beyond the small type is a run of limits plus the remainder
    (int8: 128 -> [127, 1], -130 -> [-128, -2])."""
    upper, lower = (127, -128) if byte_count == 1 else (32767, -32768)
    out = []
    for v in values.tolist():
        while v >= upper:
            out.append(upper)
            v -= upper
        while v <= lower:
            out.append(lower)
            v -= lower
        out.append(v)
    enc = {"kind": "IntegerPacking", "byteCount": byte_count, "isUnsigned": False, "srcSize": len(values)}
    return np.array(out, dtype=np.int64), enc


def _packed_bytes(values: np.ndarray, byte_count: int = 2) -> tuple[bytes, list[dict]]:
    packed, pack = _integer_packing(values, byte_count)
    data, ba = _byte_array(packed, INT8 if byte_count == 1 else INT16)
    return data, [pack, ba]


def _run_length(values: np.ndarray, src_type: int) -> tuple[np.ndarray, dict]:
    pairs, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        pairs += [int(values[i]), j - i + 1]
        i = j + 1
    return np.array(pairs, dtype=np.int64), {"kind": "RunLength", "srcType": src_type, "srcSize": len(values)}


def _delta(values: np.ndarray) -> tuple[np.ndarray, dict]:
    origin = int(values[0]) if len(values) else 0
    return np.diff(values - origin, prepend=0), {"kind": "Delta", "origin": origin, "srcType": INT32}


def encode_int(values) -> dict:
    v = np.asarray(values, dtype=np.int64)
    d, delta = _delta(v)
    r, rle = _run_length(d, INT32)
    data, rest = _packed_bytes(r, 1)
    return {"data": data, "encoding": [delta, rle, *rest]}


def encode_float(values, factor: int) -> dict:
    ints = np.round(np.asarray(values, dtype=np.float64) * factor).astype(np.int64)
    d, delta = _delta(ints)
    data, rest = _packed_bytes(d, 2)
    return {"data": data, "encoding": [{"kind": "FixedPoint", "factor": factor, "srcType": FLOAT64}, delta, *rest]}


def encode_str(values: list[str]) -> dict:
    unique = list(dict.fromkeys(values))
    lookup = {s: i for i, s in enumerate(unique)}
    r, rle = _run_length(np.array([lookup[s] for s in values], dtype=np.int64), INT32)
    data, rest = _packed_bytes(r, 1)
    offsets = np.cumsum([0] + [len(s) for s in unique])
    off_data, off_rest = _packed_bytes(offsets, 2)
    return {"data": data, "encoding": [{"kind": "StringArray", "dataEncoding": [rle, *rest],
                                        "stringData": "".join(unique), "offsets": off_data,
                                        "offsetEncoding": off_rest}]}


def encode_column(name: str, raw: list[str], category: str = "_atom_site") -> dict:
    """One column from mmCIF text values (``.``/``?`` become a mask); value types are those of
    ``_atom_site`` items, any other category is text."""
    mask = np.array([1 if t == "." else 2 if t == "?" else 0 for t in raw], dtype=np.int64)
    present = [t if m == 0 else None for t, m in zip(raw, mask)]
    if category != "_atom_site":
        data = encode_str([t if t is not None else "" for t in present])
    elif name in FLOAT_ITEMS:
        data = encode_float([float(t) if t is not None else 0.0 for t in present], FLOAT_ITEMS[name])
    elif name in INT_ITEMS:
        data = encode_int([int(t) if t is not None else 0 for t in present])
    else:
        data = encode_str([t if t is not None else "" for t in present])
    col = {"name": name, "data": data, "mask": None}
    if mask.any():
        r, rle = _run_length(mask, UINT8)
        mdata, ba = _byte_array(r, INT32)
        col["mask"] = {"data": mdata, "encoding": [rle, ba]}
    return col


def bcif_from_mmcif(cif_dict: dict[str, list[str]], header: str) -> bytes:
    """BinaryCIF bytes of the ``_entry`` and ``_atom_site`` categories of an mmCIF dictionary
    (:class:`Bio.PDB.MMCIF2Dict.MMCIF2Dict`: item name -> list of text values)."""
    items = [k.split(".", 1)[1] for k in cif_dict if k.startswith("_atom_site.")]
    n = len(cif_dict["_atom_site.id"])
    entry = cif_dict.get("_entry.id", [header])
    categories = [
        {"name": "_entry", "rowCount": 1, "columns": [encode_column("id", list(entry)[:1], "_entry")]},
        {"name": "_atom_site", "rowCount": n,
         "columns": [encode_column(item, list(cif_dict[f"_atom_site.{item}"])) for item in items]},
    ]
    return msgpack.packb({"version": "0.3.0", "encoder": "equivariant-bench tests/bcif.py",
                          "dataBlocks": [{"header": header, "categories": categories}]}, use_bin_type=True)


def mmcif_dict(path: Path) -> dict[str, list[str]]:
    """mmCIF dictionary of an mmCIF file, or of a PDB file (.gz allowed) written as mmCIF by
    biopython's MMCIFIO."""
    from Bio.PDB import MMCIFIO, PDBParser
    from Bio.PDB.MMCIF2Dict import MMCIF2Dict

    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        text = f.read()
    if name.endswith(".cif"):
        return MMCIF2Dict(io.StringIO(text))
    structure = PDBParser(QUIET=True).get_structure(name.split(".")[0], io.StringIO(text))
    out = io.StringIO()
    writer = MMCIFIO()
    writer.set_structure(structure)
    writer.save(out)
    out.seek(0)
    return MMCIF2Dict(out)


#: committed fixture -> its source (both under tests/data/pdb)
FIXTURES = {"bcif/3a4rA.bcif.gz": "3a4rA.pdb.gz", "bcif/awkward.bcif": "awkward.cif"}


def fixture_bytes(name: str) -> bytes:
    src = DATA / FIXTURES[name]
    raw = bcif_from_mmcif(mmcif_dict(src), src.name.split(".")[0].upper())
    return gzip.compress(raw, mtime=0) if name.endswith(".gz") else raw


if __name__ == "__main__":
    for name in FIXTURES:
        (DATA / name).parent.mkdir(exist_ok=True)
        (DATA / name).write_bytes(fixture_bytes(name))
        print(f"wrote {DATA / name}")
