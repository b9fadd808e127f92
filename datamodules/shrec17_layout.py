"""Where the SHREC'17 datamodule finds its meshes and labels: the SHREC'17 layout with its csv
files, or class folders. What each split holds is a :class:`SplitIndex`.

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

**Folder-per-class layout** (e.g. ModelNet, for evaluating a trained model on other meshes):
``<data_dir>/<class>/<name>.obj|.off|.ply``, or with ``train/``, ``val/``, ``test/`` sub-folders
(``<class>/train/<name>.off``; files directly in a class folder belong to the test split). The class
folder's name is the synset and the sub-synset; ids are assigned 0, 1, ... in sorted order (split,
class, path). It is used when ``data_dir`` has neither ``*_perturbed/`` folders nor csv files.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from datamodules._common import InputError, atomic_write_text
from datamodules.meshes import MESH_SUFFIXES
from models.retrieval import DATASETS, normalize_id

BENCH = "shrec17"
SPLITS = ("train", "val", "test")
CSV_COLUMNS = ("id", "synsetId", "subSynsetId", "modelId", "split")
HINT = ("put the SHREC'17 files there (train_perturbed/, val_perturbed/, train.csv, val.csv; "
        "as laid out by the s2cnn examples/shrec17 download) or use --stand-in")


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


def report_once(lines: Sequence[str]) -> None:
    new = [ln for ln in lines if ln not in _REPORTED]
    _REPORTED.update(new)
    report(new)


# --------------------------------------------------------------------------- the evaluator's result files
def write_results(lists: Mapping[Any, Sequence], out_dir: str | os.PathLike, method: str,
                  split: str = "test_perturbed") -> Path:
    """The retrieval lists in the layout the official SHREC'17 evaluator reads (read back by
    :func:`models.retrieval.read_results`): ``<out_dir>/<method>/<split>/<queryId>`` files (6-digit names, no extension), one
    retrieved id per line with a final newline, each atomically (:func:`~datamodules._common.atomic_write_text`).
    Other query files already in that folder are removed, so the folder holds exactly ``lists``
    (the evaluator scores every file it finds). Returns the split folder; run the JS evaluator
    on its parent, ``<out_dir>/<method>/``.
    """
    if split not in DATASETS:
        raise ValueError(f"split must be one of {DATASETS} for the JS evaluator, got {split!r}")
    folder = Path(out_dir) / method / split
    folder.mkdir(parents=True, exist_ok=True)
    names = {normalize_id(q): [normalize_id(i) for i in ids] for q, ids in lists.items()}
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in names:
            stale.unlink()
    for q, ids in names.items():
        atomic_write_text(folder / q, "".join(i + "\n" for i in ids))
    return folder
