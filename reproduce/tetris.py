"""Tetris under arbitrary rotations: 3D steerable CNN vs conventional 3D CNN.

Reproduces Weiler, Geiger, Welling, Boomsma & Cohen, "3D Steerable CNNs" (NeurIPS 2018), §5.1 and the
supplement's low-pass ablation: test accuracy on randomly rotated pieces after training on one rotation
of each piece (published 99 ± 2 % steerable, 27 ± 7 % CNN; without low-pass 36 ± 6 % / 24 ± 4 %).

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

import numpy as np
import torch

from datamodules._common import InputError, torch_generator
from datamodules.tetris import TetrisDataModule, rotated_set
from models.baselines import MassOnlyClassifier, TetrisCNN
from models.geometry import cube_rotations, relative_error, rotate_voxels
from models.steerable import TetrisSE3Net
from reproduce.reports.tetris import REPORT
from reproduce.runner import Benchmark, main

class Tetris(Benchmark):
    name = "tetris"
    default_data_source = "generated"
    uses_data_dir = False
    datamodule = TetrisDataModule
    models = {"se3": TetrisSE3Net, "cnn": TetrisCNN, "mass": MassOnlyClassifier}
    report = REPORT
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

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """Invariance of the trained classifier's logits: exact cube rotations and resampled SO(3)."""
        device = "cuda" if ctx.launch.gpus and torch.cuda.is_available() else "cpu"
        backbone = task.backbone.eval().double().to(device)

        def net(v):  # one piece at a time: float64 convs at 37³ take ~4 GB per piece on the CPU
            return torch.cat([backbone(v[i:i + 1]) for i in range(len(v))])

        d = run.cfg["data"]
        n = datamodule.size + (1 - datamodule.size % 2)  # the cube check needs an odd grid
        x = datamodule.canonical(n).double().to(device)
        with torch.no_grad():
            y = net(x)
            cube = max(relative_error(net(rotate_voxels(x, R)), y) for R in cube_rotations())
            y0 = y if n == datamodule.size else net(datamodule.canonical().double().to(device))
            gen = torch_generator(run.seed, 2)
            raw = datamodule.pieces()
            errs, agree = [], []
            for _ in range(int(run.cfg.get("evaluation", {}).get("so3_rotations", 4))):
                xr = rotated_set(raw, gen, d["lowpass_scale"])
                yr = net(torch.from_numpy(xr)[:, None].double().to(x.device))
                errs.append(relative_error(yr, y0))
                agree.append(float((yr.argmax(1) == y.argmax(1)).double().mean()))
        task.backbone.float().cpu()
        return {"equivariance_error_cube": f"{cube:.2e}", "equivariance_error_so3": round(float(np.mean(errs)), 5),
                "so3_prediction_agreement": round(float(np.mean(agree)), 4)}


BENCH = Tetris()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
