"""Speed benchmark: every equivariant layer against a plain floor measured in the same run.

    python reproduce/speed.py                                # every section, results/speed.{csv,md}
    python reproduce/speed.py --only steerable,harmonic --gpus 1
    python reproduce/speed.py --preset smoke                 # seconds per section; results/smoke/
    python reproduce/speed.py --table                        # rewrite results/speed.md from the CSV

Sections (one module each, ``reproduce/measure/speed_<name>.py`` with ``measure(quick, device)``):
steerable (SteerableConv3d vs Conv3d), harmonic (HConv2d vs Conv2d), sphere (Chebyshev graph conv vs
bare sparse matmuls and vs the deepsphere-pytorch algorithm, scaling with Nside, HEALPix graph build
vs a bare k-NN query), cath (voxeliser and training throughput), shrec17 (ray casting and voxelising,
meshes per second). Ratios are time / floor: the peers (escnn, e3nn, deepsphere-pytorch) sit at about
1.0-1.16x. This is a benchmark, not a timed test: numbers depend on the machine and are stored with it.

A measurement benchmark (``reproduce/runner/measurement.py``): each section is a cell of the grid
(``configs/speed/``), with the runner's options — ``--preset``, ``--only``, ``--list``, ``--table``,
``--results-dir``, ``--runs-dir``, ``key=value`` overrides; a finished section is skipped (delete its
run folder, or change the config, to measure it again). ``--gpus 1`` measures on the GPU (the
config's ``device``, part of each cell's identity). The table: ``reproduce/reports/speed.py``.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":  # --help answers before torch is imported
    from reproduce.runner.cli import early_exit
    early_exit("speed", __doc__)

from datamodules._common import InputError
from reproduce.reports.speed import REPORT
from reproduce.measure.timing import load_average
from reproduce.runner import main as runner_main
from reproduce.runner.measurement import Timing


class Speed(Timing):
    """One cell per section; its rows are the section's timings, each with its floor and ratio."""

    name = "speed"
    report = REPORT

    def section(self, run):
        if not isinstance(run.cfg.get("quick", False), bool):
            raise InputError(f"config quick: expected true or false, got {run.cfg.get('quick')!r}")
        try:
            return importlib.import_module(f"reproduce.measure.speed_{run.model}")
        except ModuleNotFoundError as e:
            if e.name != f"reproduce.measure.speed_{run.model}":
                raise
            raise InputError(f"speed: models.{run.model}: no section module "
                             f"reproduce/measure/speed_{run.model}.py") from None

    def check_cell(self, run) -> None:
        self.section(run)

    def measure(self, ctx, run) -> list[dict]:
        where, load = self.where(run), load_average()
        title, rows = self.section(run).measure(quick=bool(run.cfg.get("quick")), device=where["device"])
        print(f"[speed] {run.model}: {len(rows)} timings", file=sys.stderr, flush=True)
        return [{"section": run.model, "title": title, **where, "load_avg": round(load, 2), **row} for row in rows]


BENCH = Speed()


def main(argv: list[str] | None = None) -> int:
    return runner_main(BENCH, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
