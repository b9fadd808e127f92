"""Checkpoints that survive a kill or a full disk, and the choice of what to resume from.

Lightning's default writer serialises to a temporary location and then copies over the old file
in place, so a kill or ``ENOSPC`` during that copy leaves a truncated ``last.ckpt`` and no good
one. :class:`AtomicCheckpointIO` writes ``.<name>.tmp<pid>`` *beside* the target (same
filesystem), fsyncs it, keeps the previous file as ``<name>.prev`` and only then renames the new
one into place: at every moment one of ``last.ckpt`` / ``last.ckpt.prev`` is complete.
:func:`resume_point` verifies them (a full ``weights_only`` load) in that order.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with an atomic, same-directory write that keeps the previous file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if path.is_file():
            os.replace(path, path.with_name(path.name + ".prev"))
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_checkpoint(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a complete, weights-only-loadable Lightning checkpoint, else why not."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file"
    if not zipfile.is_zipfile(path):
        return "not a torch zip archive (truncated or another format)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reason a checkpoint cannot be loaded
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'unreadable'}"
    if not isinstance(state, dict) or "state_dict" not in state:
        return "not a Lightning checkpoint (no state_dict)"
    return None


def resume_point(ckpt_dir: Path) -> tuple[Path | None, dict[Path, str]]:
    """The checkpoint to resume from (``last.ckpt``, else ``last.ckpt.prev``; None: start the
    run from scratch), and each damaged candidate passed over with the reason."""
    damaged = {}
    for cand in (Path(ckpt_dir) / "last.ckpt", Path(ckpt_dir) / "last.ckpt.prev"):
        if not cand.exists():
            continue
        why = check_checkpoint(cand)
        if why is None:
            return cand, damaged
        damaged[cand] = why
    return None, damaged


def clean_temporaries(ckpt_dir: Path) -> None:
    """Remove half-written checkpoints left by a killed writer."""
    for tmp in Path(ckpt_dir).glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)
