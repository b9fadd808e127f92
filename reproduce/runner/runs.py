"""Run identity and layout (``shared/CONVENTIONS.md``).

A run is one cell of a benchmark's grid: a model, a setting of the grid axes, a seed, a preset
and the resolved config of that cell. Its identity is a hash of all of these, and its folder is
derived from it::

    <runs-dir>/<benchmark>/<preset>/<model>/<setting>/seed<k>-<hash>/
        config.yaml        resolved config of this run
        started_at         when its first attempt started (kept by resumptions); elapsed_s.txt
        checkpoints/last.ckpt, checkpoints/best.ckpt (when validation selects the model)
        logs/attempt<k>/metrics.csv  Lightning CSV log per (re)start;  wandb/
        row.json, done     written last: the run is finished
"""
from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from reproduce.runner.config import config_hash


@dataclass
class Run:
    """One cell of the grid: a model, a setting of the grid axes, a seed, and its config."""

    benchmark: str
    model: str
    setting: dict
    seed: int
    preset: str
    cfg: dict = field(repr=False)

    @property
    def setting_str(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.setting.items()) or "default"

    @property
    def cell(self) -> tuple[str, str, str]:
        """(model, setting, seed) as they read in a results CSV."""
        return self.model, self.setting_str, str(self.seed)

    @property
    def run_id(self) -> str:
        return config_hash({"benchmark": self.benchmark, "model": self.model,
                            "setting": self.setting, "seed": self.seed,
                            "preset": self.preset, "cfg": self.cfg})

    def run_dir(self, runs_dir: Path) -> Path:
        safe = self.setting_str.replace("/", "_").replace(" ", "")
        return Path(runs_dir) / self.benchmark / self.preset / self.model / safe / \
            f"seed{self.seed}-{self.run_id}"


def global_rank() -> int:
    """This process's rank under DDP (Lightning's or SLURM's variables), 0 otherwise."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


class RunLock:
    """An exclusive lock on a run folder (``<run dir>/lock``, ``flock``): a second invocation of
    the same command skips (or waits for) a run that a live process is training. The operating
    system drops the lock when its holder dies, so a stale lock is simply taken over."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "lock"
        self._f = None

    def acquire(self, wait: bool = False) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{socket.gethostname()} pid {os.getpid()}\n")
        f.flush()
        self._f = f
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._f is not None:
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None
