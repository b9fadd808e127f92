"""Cost of one spherical convolution layer against the number of pixels: DeepSphere's graph
convolution and the spectral (spherical-harmonic) convolutions, measured side by side.

Reproduces: the cost claim of the DeepSphere slides ("Desideratum 2: scalable"; Defferrard et al.,
ICLR 2020 §"Method"): graph convolutions cost O(N_pix), spherical-harmonic convolutions O(N_pix^1.5)
to O(N_pix²).

The cost figure of the slides ("it matters!"): a Chebyshev graph convolution costs O(K·|E|) = O(N_pix)
(sparse matrix–vector products), while a convolution through spherical harmonic transforms on an
equiangular grid costs O(N_pix^1.5) (b³ for b² pixels: an FFT in longitude and a dense Legendre
transform per order) or more (S2CNN's SO(3) transforms: O(b⁴) = O(N_pix²) for the S² → SO(3) layer's
output of 8b³ points).

    python reproduce/scaling.py                     # CPU, ~10 min: results/scaling.{csv,md,png}
    python reproduce/scaling.py --gpus 1            # the same on a GPU (paper preset, device cuda)
    python reproduce/scaling.py --preset smoke      # seconds; results/smoke/
    python reproduce/scaling.py --only cheb5_192 budget_s.cpu=0.05    # one series, a tighter budget

Series (``configs/scaling/``; layers and timing: ``reproduce/measure/scaling_series.py``): ChebConv
K = 5 and K = 15 on the full HEALPix sphere (k = 8 graph), K = 5 on partial graphs of 1/12 (one base
pixel) and 1/192 of the sphere (DeepSphere's cosmology inputs); the spectral layers of
``models/spectral`` on equiangular grids of bandwidth b (4b² pixels). Each series grows until one
forward+backward exceeds the time budget (``budget_s``) or the next size would not fit in memory.
The table, slopes and figure: ``reproduce/reports/scaling.py``.

A measurement benchmark (``reproduce/runner/measurement.py``): one cell per series with the runner's
options (``--only``, ``--list``, ``--table``, ``--results-dir``, ``--runs-dir``, ``key=value``);
finished series are skipped, and rows of another device are other cells.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError
from reproduce.runner import config as C
from reproduce.runner import main
from reproduce.runner.measurement import Timing
from reproduce.runner.store import load_average

if TYPE_CHECKING:
    from reproduce.measure.scaling_series import SeriesSpec


class Scaling(Timing):
    name = "scaling"
    report = "reproduce.reports.scaling:REPORT"

    def check_cell(self, run) -> tuple[SeriesSpec, float, int]:  # the series, its budget (s), repetitions
        from reproduce.measure.scaling_series import SeriesSpec

        device = self.device(run)
        budget = C.get(run.cfg, f"budget_s.{device.split(':')[0]}", None)
        reps = run.cfg.get("reps", 3)
        if not isinstance(budget, (int, float)) or budget <= 0:
            raise InputError(f"config budget_s.{device.split(':')[0]}: expected a positive number of seconds, "
                             f"got {budget!r}")
        if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
            raise InputError(f"config reps: expected an int >= 1, got {reps!r}")
        return C.build(SeriesSpec, run.cfg.get("model"), f"models.{run.model}"), float(budget), reps

    def measure(self, ctx, run) -> list[dict]:
        import torch

        from reproduce.measure.scaling_series import measure_series

        spec, budget, reps = self.check_cell(run)
        info = {**self.where(run), "threads": torch.get_num_threads(), "load": f"{load_average():.1f}"}
        return [{**info, **row} for row in measure_series(spec, info["device"], budget, reps,
                                                          log=lambda s: print(s, file=sys.stderr, flush=True))]


BENCH = Scaling()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
