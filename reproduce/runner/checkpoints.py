"""Checkpoints that survive a kill or a full disk, and the choice of what to resume from.

Lightning's default writer serialises to a temporary location and then copies over the old file
in place, so a kill or ``ENOSPC`` during that copy leaves a truncated ``last.ckpt`` and no good
one. :class:`AtomicCheckpointIO` writes ``.<name>.tmp<pid>`` *beside* the target (same
filesystem), fsyncs it, keeps the previous file as ``<name>.prev`` and only then renames the new
one into place: at every moment one of ``<name>`` / ``<name>.prev`` / the complete temporary
file is a good checkpoint. :func:`recover` puts a write that a kill interrupted right (the
complete temporary file finished into place, else ``<name>.prev`` restored); :func:`resume_point`
verifies the candidates (a full ``weights_only`` load). A write that fails (full disk, read-only
folder) raises :class:`CheckpointWriteError`, an ``OSError`` naming the file.
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

#: ``.<name>.tmp<pid>`` (:func:`datamodules._common.temporary_name`): a write of ``<name>`` in progress (or interrupted)
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp\d+$")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only or vanished folder)."""


def _why_write_failed(e: BaseException, folder: Path) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    try:  # torch reports a failed write as "RuntimeError: [enforce fail at inline_container.cc] ..."
        free = shutil.disk_usage(folder).free
        if free < 64 << 20:
            return f"no space left on the device ({free >> 20} MiB free)"
    except OSError:
        pass
    return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'write failed'}"


def _atomic_checkpoint_io() -> type:
    """:class:`AtomicCheckpointIO`, defined on first use (its base class is Lightning's, whose
    import this module leaves to the processes that train)."""
    import torch
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    from datamodules._common import atomic_open

    class AtomicCheckpointIO(TorchCheckpointIO):
        """``TorchCheckpointIO`` with an atomic, same-directory write that keeps the previous file."""

        def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO takes no storage_options")
            path = Path(path)
            try:
                with atomic_open(path, "wb", previous=".prev") as f:
                    torch.save(checkpoint, f)
            except (OSError, RuntimeError) as e:
                raise CheckpointWriteError(f"cannot write checkpoint {path}: "
                                           f"{_why_write_failed(e, path.parent)}") from e
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    return AtomicCheckpointIO


_LAZY: dict[str, type] = {}


def __getattr__(name: str):
    if name == "AtomicCheckpointIO":
        if name not in _LAZY:
            _LAZY[name] = _atomic_checkpoint_io()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def inspect_checkpoint(path: str | os.PathLike) -> tuple[str | None, int]:
    """(None when ``path`` is a complete, weights-only-loadable Lightning checkpoint, else why
    not; its ``global_step``, -1 when unknown)."""
    path = Path(path)
    if not path.is_file():
        return "missing", -1
    if path.stat().st_size == 0:
        return "empty file", -1
    if not zipfile.is_zipfile(path):
        return "not a torch zip archive (truncated or another format)", -1
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reason a checkpoint cannot be loaded
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'unreadable'}", -1
    if not isinstance(state, dict) or "state_dict" not in state:
        return "not a Lightning checkpoint (no state_dict)", -1
    step = state.get("global_step", -1)
    return None, int(step) if isinstance(step, int) else -1


def check_checkpoint(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a complete, weights-only-loadable Lightning checkpoint, else why not."""
    return inspect_checkpoint(path)[0]


def recover(ckpt_dir: Path) -> list[str]:
    """Put right the checkpoint writes a kill interrupted in ``ckpt_dir``; returns what was done.

    * a temporary file whose target is missing was killed between the two renames of
      :class:`AtomicCheckpointIO` (or before the only one): it is complete, so it is renamed into
      place; any other temporary file is half-written and removed;
    * a ``<name>.prev`` whose ``<name>`` is still missing (no complete temporary file, or the
      target was set aside as damaged) is restored as ``<name>``.
    """
    d = Path(ckpt_dir)
    done: list[str] = []
    if not d.is_dir():
        return done
    for tmp in sorted(d.iterdir()):
        m = TEMPORARY.match(tmp.name)
        if m is None or not tmp.is_file():
            continue
        target = d / m["name"]
        if not target.exists() and check_checkpoint(tmp) is None:
            os.replace(tmp, target)
            done.append(f"finished the interrupted write of {target.name}")
        else:
            tmp.unlink(missing_ok=True)
    for prev in sorted(d.glob("*.prev")):
        target = prev.with_name(prev.name[: -len(".prev")])
        if not target.exists():
            os.replace(prev, target)
            done.append(f"restored {target.name} from {prev.name}")
    return done


def resume_point(ckpt_dir: Path, extra: tuple[Path, ...] = ()) -> tuple[Path | None, dict[Path, str]]:
    """The checkpoint to resume from (None: start the run from scratch), and each damaged
    candidate passed over with the reason. Candidates: ``last.ckpt``, ``last.ckpt.prev`` and
    ``extra`` (e.g. Lightning's SLURM ``hpc_ckpt_<n>.ckpt``, saved before a requeue); among the
    ones that load, the furthest trained (``global_step``) wins, ``last.ckpt`` on a tie."""
    damaged: dict[Path, str] = {}
    best: tuple[int, Path] | None = None
    for cand in (Path(ckpt_dir) / "last.ckpt", Path(ckpt_dir) / "last.ckpt.prev", *extra):
        if not cand.exists():
            continue
        why, step = inspect_checkpoint(cand)
        if why is not None:
            damaged[cand] = why
        elif best is None or step > best[0]:
            best = (step, cand)
    return (best[1] if best else None), damaged


def clean_temporaries(ckpt_dir: Path) -> None:
    """Remove half-written checkpoints left by a killed writer (complete ones are kept by
    :func:`recover`, which runs first)."""
    for tmp in Path(ckpt_dir).glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)


#: written into ``checkpoints/`` of a finished run whose checkpoints were pruned (:func:`prune`)
PRUNED = "pruned.json"


def prune(run_dir: Path, tested: str | None, keep: str) -> list[str]:
    """Slim a finished run's checkpoints to what its use needs; returns the names removed.

    ``keep="all"`` leaves everything. ``keep="selected"`` keeps the tested checkpoint
    (``tested``: ``best.ckpt`` or ``last.ckpt``, the row's ``checkpoint``) without its
    optimizer and scheduler state (a finished run is never resumed: more epochs are another
    config, another run), and removes the other full copies: ``last.ckpt`` when ``best.ckpt`` was tested, the ``*.prev`` copies that
    the atomic writes keep while training, and Lightning's SLURM ``hpc_ckpt_<n>.ckpt``. Files
    set aside as ``*.damaged`` stay (a line said so when they were). :data:`PRUNED` records what
    was kept, so that a retest (``row.json`` lost) tests the kept checkpoint instead of training
    again."""
    import json
    ckpt_dir = Path(run_dir) / "checkpoints"
    if keep == "all" or not tested or not (ckpt_dir / tested).is_file():
        return []
    _drop_training_state(ckpt_dir / tested)
    removed = []
    for p in sorted([*ckpt_dir.glob("*.ckpt"), *ckpt_dir.glob("*.ckpt.prev"), *Path(run_dir).glob("hpc_ckpt_*.ckpt")]):
        if p.parent == ckpt_dir and p.name == tested:
            continue
        p.unlink(missing_ok=True)
        removed.append(p.name)
    from datamodules._common import atomic_write_text
    atomic_write_text(ckpt_dir / PRUNED, json.dumps({"kept": tested, "removed": removed}) + "\n")
    return removed


def pruned_to(run_dir: Path) -> str | None:
    """The checkpoint a pruned finished run kept (:func:`prune`), or None."""
    import json
    try:
        kept = json.loads((Path(run_dir) / "checkpoints" / PRUNED).read_text()).get("kept")
    except (OSError, ValueError, AttributeError):
        return None
    return kept if isinstance(kept, str) and kept else None


def _drop_training_state(path: Path) -> None:
    """Rewrite a Lightning checkpoint without ``optimizer_states`` and ``lr_schedulers`` (the
    weights, hyper-parameters, epoch and callbacks' state stay; ``--evaluate`` and
    ``load_from_checkpoint`` need only those), atomically."""
    import torch
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not ({"optimizer_states", "lr_schedulers"} & set(state)):
        return
    for key in ("optimizer_states", "lr_schedulers"):
        state.pop(key, None)
    from datamodules._common import atomic_open
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
