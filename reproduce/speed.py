"""Speed benchmark: every equivariant layer against a plain floor measured in the same run.

Reproduces: the cost claims of the layers' papers, as ratios: every equivariant layer against a plain
floor (Conv2d/Conv3d, bare sparse products, the peer implementation) measured in the same process.
Peers (escnn, e3nn, deepsphere-pytorch) sit at about 1.0-1.16x their floor.

    python reproduce/speed.py                                # every section, results/speed.{csv,md}
    python reproduce/speed.py --only steerable,harmonic --gpus 1
    python reproduce/speed.py --preset smoke                 # seconds per section; results/smoke/
    python reproduce/speed.py --table                        # rewrite results/speed.md from the CSV

Sections (one module each, ``reproduce/measure/speed_<name>.py`` with ``measure(quick, device)``):
steerable (SteerableConv3d vs Conv3d), harmonic (HConv2d vs Conv2d), sphere (Chebyshev graph conv vs
bare sparse matmuls and vs the deepsphere-pytorch algorithm, scaling with Nside, HEALPix graph build
vs a bare k-NN query), cath (voxeliser and training throughput), shrec17 (ray casting and voxelising,
meshes per second). Ratios are time / floor. This is a benchmark, not a timed test: numbers depend
on the machine and are stored with it.

A measurement benchmark (``reproduce/runner/measurement.py``): each section is a cell of the grid
(``configs/speed/``), with the runner's options — ``--preset``, ``--only``, ``--list``, ``--table``,
``--results-dir``, ``--runs-dir``, ``key=value`` overrides; a finished section is skipped (delete its
run folder, or change the config, to measure it again). ``--gpus 1`` measures on the GPU (the
config's ``device``, part of each cell's identity). The table: ``reproduce/reports/speed.py``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError
from reproduce.runner import main
from reproduce.runner.measurement import Timing
from reproduce.runner.store import load_average


class Speed(Timing):
    name = "speed"
    report = "reproduce.reports.speed:REPORT"

    def check_cell(self, run) -> str:  # the section's module, found, not imported
        if not isinstance(run.cfg.get("quick", False), bool):
            raise InputError(f"config quick: expected true or false, got {run.cfg.get('quick')!r}")
        module = f"reproduce.measure.speed_{run.model}"
        if importlib.util.find_spec(module) is None:
            raise InputError(f"speed: models.{run.model}: no section module reproduce/measure/speed_{run.model}.py")
        return module

    def measure(self, ctx, run) -> list[dict]:
        section, where, load = importlib.import_module(self.check_cell(run)), self.where(run), load_average()
        title, rows = section.measure(quick=bool(run.cfg.get("quick")), device=where["device"])
        print(f"[speed] {run.model}: {len(rows)} timings", file=sys.stderr, flush=True)
        return [{"section": run.model, "title": title, **where, "load_avg": round(load, 2), **row} for row in rows]


BENCH = Speed()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
