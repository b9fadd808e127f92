"""CAM5 climate event segmentation (TC / AR / BG) on the sphere: the DeepSphere U-Net, weighted vs
unweighted loss, and the same net on other samplings.

Reproduces: Defferrard et al. ICLR 2020, tab:climate and tab:climate:map: DeepSphere U-Net on the
UGSCNN level-5 icosahedral CAM5 maps, weighted vs non-weighted cross-entropy, beside the published
rows of Mudigonda 2017, Jiang 2019 (UGSCNN) and Cohen 2019 (gauge CNNs).

Per-class accuracy, AP and mAP, for the paper's U-Net and the "Jiang architecture".

    python reproduce/climate.py --preset smoke    # ~1 min: stand-in at ico:2, 1 epoch, every row kind
    python reproduce/climate.py --preset cpu      # ~30-40 min on 2 cores: stand-in at ico:4 (configs/climate/cpu.yaml)
    python reproduce/climate.py --preset paper --gpus 1 --data-dir <folder with data_5_all/ and *_split.txt>
    python reproduce/climate.py --preset cpu --table   # rewrite the tables from results/climate.csv
    python reproduce/climate.py --predict runs/climate/.../checkpoints/last.ckpt --data-dir IN --out OUT

``--data-dir``: the UGSCNN npz files (``climate_sphere_l5.zip``) or ClimateNet / CAM5 netCDF files,
resampled once onto the row's sampling (datamodules/climate.py). Without it an offline stand-in is
written as ClimateNet-style netCDF and read back by the same reader; the tables say so.

``--predict CKPT --data-dir IN --out OUT``: for every ``IN/*.nc``, ``OUT/<same name>`` holds ``LABELS``
(0 BG, 1 TC, 2 AR) and ``PROBABILITIES`` on the input's own grid (the predictor's module says how).

Writes results/climate.csv (one row per run) and results/climate.md (+ climate.png, one test map).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError
from datamodules.climate_config import CLASSES, parse_sampling
from reproduce.commands import climate_predict
from reproduce.runner import Benchmark, main
from reproduce.runner import config as C
from reproduce.runner.after_test import InferenceTime

LOSSES = ("weighted", "unweighted")
INFER_MAPS = 5  # test maps timed one at a time (batch 1) after a warm-up map


class Climate(Benchmark):
    name = "climate"
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.climate:ClimateDataModule"
    models = {"unet": "models.deepsphere.unet:DeepSphereUNet", "per_site": "models.baselines.per_site:PerSiteLogistic"}
    task = "models.tasks:Segment"
    report = "reproduce.reports.climate:REPORT"
    measurements = (InferenceTime(INFER_MAPS),)

    def __init__(self):
        self._weights: dict[str, list[float]] = {}

    def datamodule_args(self, ctx, run) -> dict:
        return {**super().datamodule_args(ctx, run), "sampling": str(run.setting["sampling"])}

    def _model_section(self, run) -> dict:  # ``loss`` picks the task's loss, not a backbone argument
        return {k: v for k, v in super()._model_section(run).items() if k != "loss"}

    def model_args(self, ctx, run) -> dict:
        if self.is_custom(run):
            return {}
        samp = parse_sampling(run.setting["sampling"])
        args = {"in_channels": 16, "num_classes": len(CLASSES)}
        if samp.kind == "native":  # a point set: the graph is built on the files' columns
            return {**args, "sampling": "points", "coords": self.build_datamodule(ctx, run).vectors()}
        return {**args, "sampling": samp.name}

    def check(self, ctx, run) -> None:
        loss = (run.cfg.get("model") or {}).get("loss", "unweighted")
        if loss not in LOSSES:
            raise InputError(f"config models.{run.model}.loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        if "sampling" not in run.setting:
            raise InputError(f"config grid row {run.model}: setting.sampling is required (e.g. ico:5)")
        parse_sampling(run.setting["sampling"])
        super().check(ctx, run)

    def class_weights(self, ctx, run) -> list[float]:
        """sklearn-balanced weights on this run's training split (computed once per data section)."""
        key = C.config_hash([run.cfg.get("data"), run.setting, str(ctx.data_dir)])
        if key not in self._weights:
            self._weights[key] = self.build_datamodule(ctx, run).class_weights()
        return self._weights[key]

    def task_args(self, ctx, run, backbone) -> dict:
        """Segment with mAP over TC and AR; the balanced class weights for ``loss: weighted`` (only
        computed when the task is built, not for the config check, which has no backbone)."""
        weighted = (run.cfg.get("model") or {}).get("loss") == "weighted"
        w = None
        if weighted and backbone is not None:
            # --evaluate: a placeholder of the right shape; the checkpoint's state restores the training weights
            w = [1.0] * len(CLASSES) if ctx.evaluate is not None else self.class_weights(ctx, run)
        return {"backbone": backbone, "num_classes": len(CLASSES), "optim": run.cfg.get("optim") or {},
                "class_weights": w, "map_classes": [1, 2], "class_names": list(CLASSES)}

    def is_custom(self, run) -> bool:
        return (run.cfg.get("model") or {}).get("kind") == "per_site"

    def custom_run(self, ctx, run, run_dir) -> dict:
        """The per-site baseline: fitted on the training maps, scored on the test maps."""
        dm = self.build_datamodule(ctx, run)  # arrays() sets it up
        (xtr, ytr), (xte, yte) = (dm.arrays(s) for s in ("train", "test"))
        model = self.build_backbone(ctx, run).fit(xtr, ytr)
        return {**model.score(xte, yte, list(CLASSES), [1, 2]), "vertices": int(xte.shape[-1]),
                "train_maps": len(xtr), "test_maps": len(xte), "params": model.num_params()}

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """The training split's balanced weights, inference ms per map (batch 1) and one test map."""
        out = {} if ctx.evaluate is not None else {
            f"class_weight_{c}": round(w, 6) for c, w in zip(CLASSES, self.class_weights(ctx, run))}
        test = datamodule.datasets["test"]
        out.update(vertices=int(task.backbone.num_vertices), train_maps=len(datamodule.datasets["train"]),
                   test_maps=len(test), **self.declared_measurements(ctx, run, task, datamodule))
        if len(test) and ctx.evaluate is None:  # the figure's map: a training run's row
            from reproduce.reports.climate import example_map
            out["example_map"] = example_map(task.backbone, test, task.device)
        return out

    # -- --predict CKPT --data-dir IN --out OUT (reproduce/commands/climate_predict.py) -----------
    def add_arguments(self, parser) -> None:
        climate_predict.add_arguments(parser)

    def command(self, args) -> int | None:
        return climate_predict.run(self, args)


BENCH = Climate()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
