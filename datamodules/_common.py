"""Pieces every datamodule shares: the user-facing error type and small file helpers.

Errors raised for bad input (missing directory, corrupt file, wrong shape) are
:class:`InputError`; the reproduction runner turns them into one line on stderr and
exit code 2, so they must say *which file* and *what is wrong*, and what to do.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

STAND_IN_MARKER = "STAND_IN.txt"


class InputError(ValueError):
    """Bad user input (data, config, CLI). The message is shown to the user verbatim."""


def require_dir(path: str | os.PathLike, benchmark: str, hint: str = "") -> Path:
    """Return ``path`` as a Path, or raise a clear :class:`InputError` if it is not a directory."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{benchmark}: data directory {p} does not exist"
                         + (f"; {hint}" if hint else ""))
    if not p.is_dir():
        raise InputError(f"{benchmark}: --data-dir {p} is not a directory")
    return p


def require_file(path: str | os.PathLike, benchmark: str, hint: str = "") -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{benchmark}: missing {p}" + (f"; {hint}" if hint else ""))
    return p


def is_stand_in(data_dir: str | os.PathLike) -> bool:
    """True when ``data_dir`` holds a generated stand-in (it carries :data:`STAND_IN_MARKER`)."""
    return (Path(data_dir) / STAND_IN_MARKER).is_file()


def mark_stand_in(data_dir: str | os.PathLike, description: str) -> None:
    """Write the marker that tells tables the data are a generated stand-in, not the paper's."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(data_dir) / STAND_IN_MARKER, description.rstrip() + "\n")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def torch_generator(*key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded deterministically from integers ``key`` (e.g. the run
    seed and a stream number): the seed is the first 64-bit word of
    ``numpy.random.SeedSequence(key)``, so distinct keys give unrelated streams.

    >>> a = torch.randn(2, generator=torch_generator(0, 1))
    >>> torch.equal(a, torch.randn(2, generator=torch_generator(0, 1)))
    True
    >>> torch.equal(a, torch.randn(2, generator=torch_generator(0, 2)))
    False
    """
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(seed)


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
