"""Run identity and layout (``shared/CONVENTIONS.md``).

A run is one cell of a benchmark's grid: a model, a setting of the grid axes, a seed, a preset
and the resolved config of that cell. Its identity is a hash of all of these, and its folder is
derived from it::

    <runs-dir>/<benchmark>/<preset>/<model>/<setting>/seed<k>-<hash>/
        config.yaml        resolved config of this run
        checkpoints/last.ckpt, checkpoints/best.ckpt (when validation selects the model)
        logs/attempt<k>/metrics.csv  Lightning CSV log per (re)start;  wandb/
        row.json, done     written last: the run is finished
"""
from __future__ import annotations

import os
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
