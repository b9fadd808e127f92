"""Results store and provenance: the CSV files of ``results/`` and what every row says about
where it came from. Used by the training grid and by the measurement benchmarks
(``equivariance_sphere``, ``speed``, ``scaling``) alike.

A results CSV has one row per finished run; its first columns are :data:`CSV_FIRST`
(``docs/conventions.md``), benchmark columns follow in the order they first appear. Every
write goes through a temporary file and ``os.replace``: a reader never sees half a file.

A column whose value is a file (a figure's input maps) is an :class:`Artifact` in the row the
benchmark returns: :func:`save_artifacts` writes it beside the CSV, in ``<benchmark>/``, and the
cell holds that path relative to the CSV's folder (:func:`artifact_path` resolves it); no cell
holds file contents.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import fcntl
import io
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datamodules._common import InputError, atomic_open, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[2]

#: columns first in every results CSV, in this order; benchmark columns follow
CSV_FIRST = ["model", "setting", "seed", "preset", "data_source", "hardware", "code_version",
             "started_at", "params", "wall_s"]


# --------------------------------------------------------------------------- provenance
def code_version() -> str:
    """``git describe --always --dirty`` of the checkout, or ``unknown``."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def hardware(gpus: int = 0, num_nodes: int = 1, cpu_procs: int = 1) -> str:
    """What a run ran on, as the tables print it: ``cpu x2``, ``cpu x2, 2 DDP procs``,
    ``4x NVIDIA H200``."""
    if gpus:
        import torch
        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "GPU"
        return f"{gpus * num_nodes}x {name}"
    extra = f", {cpu_procs} DDP procs" if cpu_procs > 1 else ""
    return f"cpu x{cpu_cores()}{extra}"


def machine(device: str = "cpu") -> str:
    """A longer description for benchmarks of speed: device name, or cores, CPU and threads."""
    import torch
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return (f"cpu x{cpu_cores()} ({platform.processor() or platform.machine()}), "
            f"{torch.get_num_threads()} threads")


def count_params(module) -> int:
    """The results column ``params``: a network's trainable parameters (weights, biases, BN
    affine; not BN running statistics)."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def load_average() -> float:
    """The machine's 1-minute load average (NaN where the platform has none), recorded beside timings."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def now() -> str:
    """UTC time stamp of a run's start, ``2026-11-24T10:31:02+00:00``."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(preset: str, data_source: str, hardware_: str, version: str | None = None,
               started_at: str | None = None) -> dict:
    """The provenance columns of a row (``docs/conventions.md``)."""
    return {"preset": preset, "data_source": data_source, "hardware": hardware_,
            "code_version": version if version is not None else code_version(),
            "started_at": started_at or now()}


# --------------------------------------------------------------------------- CSV
def read_rows(path: str | os.PathLike) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def columns(rows: list[dict], first: list[str] = CSV_FIRST) -> list[str]:
    cols = [c for c in first if any(c in r for r in rows)]
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def write_rows(path: str | os.PathLike, rows: list[dict], first: list[str] = CSV_FIRST) -> None:
    """Write ``rows`` as a CSV (columns: ``first`` that occur, then the others), atomically."""
    cols = columns(rows, first)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c, "")) for c in cols})
    atomic_write_text(path, buf.getvalue())


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive lock on ``path``'s companion ``.<name>.lock`` (so that two invocations
    writing one results CSV never interleave their read-modify-write). The operating system
    releases it when the holder dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clean(row: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in row.items()}


def upsert_rows(path: str | os.PathLike, rows: list[dict]) -> int:
    """Insert or replace rows of a results CSV under its lock, atomically, a cell at a time: the
    rows sharing a ``run_id`` (one per trained run; several for a measurement cell,
    :mod:`reproduce.runner.measurement`) replace every row of that ``run_id`` together. Returns how
    many rows were missing or different."""
    with locked(path):
        have = read_rows(path)
        new = [_clean(r) for r in rows]
        text = lambda rs: [{k: str(v) for k, v in r.items() if str(v) != ""} for r in rs]  # noqa: E731
        changed = []
        for run_id in dict.fromkeys(r.get("run_id") for r in new):
            mine = [r for r in new if r.get("run_id") == run_id]
            if text(mine) != text([r for r in have if r.get("run_id") == run_id]):
                changed += mine
        if changed:
            ids = {r.get("run_id") for r in changed}
            write_rows(path, [r for r in have if r.get("run_id") not in ids] + changed)
        return len(changed)


def upsert_row(path: str | os.PathLike, row: dict) -> None:
    """Insert or replace (by ``run_id``) one row of a results CSV, atomically, under its lock."""
    upsert_rows(path, [row])


# --------------------------------------------------------------------------- files of a row
@dataclass(frozen=True)
class Artifact:
    """A file-valued column of a row: ``data`` written as ``<benchmark>/<run_id>.<column><suffix>``
    beside the results CSV by :func:`save_artifacts`."""

    data: bytes
    suffix: str = ".npz"


#: how a cell of rows written before artifacts existed begins: a base64-encoded ``.npz`` (zip) file
_EMBEDDED_NPZ = "UEsDB"


def save_artifacts(csv_path: str | os.PathLike, row: dict) -> dict:
    """``row`` with every :class:`Artifact` written beside ``csv_path`` (atomically) and replaced
    by its path relative to the CSV's folder. A cell that still holds a base64-encoded ``.npz``
    (rows and ``row.json`` files written before figure inputs were files) becomes such a file too."""
    import base64
    import binascii

    csv_path = Path(csv_path)
    out = dict(row)
    for key, value in row.items():
        if isinstance(value, str) and value.startswith(_EMBEDDED_NPZ) and len(value) > 64:
            try:
                value = Artifact(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        if isinstance(value, Artifact):
            rel = f"{csv_path.stem}/{row['run_id']}.{key}{value.suffix}"
            with atomic_open(csv_path.parent / rel, "wb") as f:
                f.write(bytes(value.data))
            out[key] = rel
    return out


def artifact_path(results_dir: str | os.PathLike, cell: str) -> Path:
    """The file a row's artifact cell names (relative to the results folder); an
    :class:`InputError` naming it when it is not there."""
    path = Path(results_dir) / str(cell)
    if not path.is_file():
        raise InputError(f"results: {path} (a file a results row names) is missing")
    return path


def load_npz(results_dir: str | os.PathLike, cell: str) -> dict:
    """The arrays of an ``.npz`` artifact (no pickled objects)."""
    import numpy as np
    with np.load(artifact_path(results_dir, cell), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def npz_bytes(**arrays) -> bytes:
    """``arrays`` as the bytes of a compressed ``.npz`` file (an :class:`Artifact`'s data)."""
    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
