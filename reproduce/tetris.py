"""Tetris under arbitrary rotations: 3D steerable CNN vs conventional 3D CNN.

Reproduces: Weiler et al. 2018, *3D Steerable CNNs*, §5.1 (p.8) and supplement low-pass ablation
(p.16); test accuracy on 8 tetrominoes rotated by Haar-random SO(3) rotations after training on one
random rotation of each.

Published (Weiler, Geiger, Welling, Boomsma & Cohen, NeurIPS 2018): 99 ± 2 % steerable, 27 ± 7 % CNN;
without low-pass 36 ± 6 % / 24 ± 4 %.

    python reproduce/tetris.py --preset smoke   # ~1-2 min, also `make demo`
    python reproduce/tetris.py --preset cpu     # reduced protocol, ~40 min on 2 cores
    python reproduce/tetris.py --preset paper   # 17 repeats x 4 models, 36^3 grid (GPU advised)
    python reproduce/tetris.py --preset cpu --table   # rewrite the table from results/tetris.csv

Writes results/tetris.csv (one row per run) and results/tetris.md (+ tetris.png).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError
from reproduce.runner import Benchmark, main
from reproduce.runner.after_test import Invariance


def cube_views(run, dm, device=None):
    """The 8 canonical pieces on an odd grid (the cube check needs a centre voxel) and their 24
    exact cube rotations."""
    from models.geometry import cube_rotations, rotate_voxels
    x = dm.canonical(dm.size + (1 - dm.size % 2)).double()
    yield x, [rotate_voxels(x, R) for R in cube_rotations()], None


def so3_views(run, dm, device=None):
    """The 8 canonical pieces and ``evaluation.so3_rotations`` sets of them, each piece at its
    own Haar-random rotation (resampled, low-passed as the data; generator of the run seed)."""
    import torch

    from datamodules._common import torch_generator
    from datamodules.tetris import rotated_set
    gen = torch_generator(run.seed, 2)
    raw = dm.pieces()
    n = int(run.cfg.get("evaluation", {}).get("so3_rotations", 4))
    yield dm.canonical().double(), (torch.from_numpy(rotated_set(raw, gen, run.cfg["data"]["lowpass_scale"]))[:, None]
                                    for _ in range(n)), None


class Tetris(Benchmark):
    name = "tetris"
    default_data_source = "generated"
    uses_data_dir = False
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.tetris:TetrisDataModule"
    models = {"se3": "models.steerable:TetrisSE3Net", "cnn": "models.baselines:TetrisCNN",
              "mass": "models.baselines:MassOnlyClassifier"}
    report = "reproduce.reports.tetris:REPORT"
    #: the trained classifier's logits (float64, one piece per pass: at 37³ a piece takes ~4 GB on
    #: the CPU) under the exact cube rotations and resampled SO(3) rotations
    measurements = (Invariance("cube", cube_views, exact=True, chunk=1, describe="the 24 cube rotations",
                               unit="rotations"),
                    Invariance("so3", so3_views, agreement="so3_prediction_agreement", chunk=1,
                               describe="resampled SO(3) rotations", unit="rotation sets"))
    #: the voxel grid and class count a checkpoint was trained on (--evaluate keeps them)
    geometry_keys = ("data.num_classes", "data.size", "data.zoom", "data.geometry")

    def datamodule_args(self, ctx, run) -> dict:
        return {"seed": run.seed}

    def check(self, ctx, run) -> None:
        super().check(ctx, run)
        zoom = run.setting.get("zoom")
        if zoom is not None and int(zoom) != int(run.cfg["data"]["zoom"]):
            raise InputError(f"tetris: grid row {run.model} {run.setting_str} says zoom {zoom} but its "
                             f"config has data.zoom {run.cfg['data']['zoom']} (set data.zoom in the row's overrides)")

    def is_custom(self, run) -> bool:
        return (run.cfg.get("model") or {}).get("kind") == "mass"

    def custom_run(self, ctx, run, run_dir) -> dict:
        """The mass-only baseline: fit on the 8 rotated training pieces, score on the test sets."""
        dm = self.build_datamodule(ctx, run)
        dm.setup()
        clf = self.build_backbone(ctx, run).fit(*dm.train_set.tensors)
        return {"test_acc": round(clf.score(*dm.test_set.tensors), 6),
                "final_train_acc": round(clf.score(*dm.train_set.tensors), 6)}


BENCH = Tetris()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
