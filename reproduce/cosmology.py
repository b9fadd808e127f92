"""Cosmological model discrimination: DeepSphere vs 2D ConvNets and linear SVMs (PSD, histogram).

Reproduces: Perraudin et al. 2019 (Astron. & Comput. 27:130), fig. result_order{1,2,4}: test accuracy
of DeepSphere (FCN, CNN), 2D ConvNets on flattened patches (FCN, CNN) and linear SVMs on histograms
and power spectral densities, per partial-map order o and noise level; plus Defferrard et al. ICLR
2020 tab:cosmo (o = 1, noise 3.5).

Perraudin, Defferrard, Kacprzak, Sgier 2019, *DeepSphere: efficient spherical CNN with HEALPix
sampling for cosmological applications*: partial convergence maps of order o = 1, 2, 4 at noise
levels 0 … 2.

    python reproduce/cosmology.py --preset smoke   # < 1 min, stand-in at Nside 16
    python reproduce/cosmology.py --preset cpu     # ~20 min on 2 cores, stand-in at Nside 64
    python reproduce/cosmology.py --preset paper --gpus 1 --data-dir <dir with same_psd/, same_psd_testing/>
    python reproduce/cosmology.py --preset cpu --table   # rewrite the table from results/cosmology.csv

The paper preset is 96 runs at Nside 1024 (a GPU; not timed here). Without ``--data-dir`` an offline
stand-in (two classes of non-Gaussian maps with identical power spectra, datamodules/cosmology.py) is
written as FITS and read back by the same reader. The SVM rows are fitted by
models.baselines.svm.LinearSVMBaseline, not by Lightning. Writes results/cosmology.csv (one row per
run) and results/cosmology.md (+ cosmology.png).
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError
from reproduce.runner import Benchmark, main
from reproduce.runner import config as C


class Cosmology(Benchmark):
    name = "cosmology"
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.cosmology:CosmologyDataModule"
    models = {"deepsphere": "models.deepsphere.nets:deepsphere_classifier", "cnn2d": "models.baselines:FlatPatchConvNet",
              "svm": "models.baselines:LinearSVMBaseline"}
    report = "reproduce.reports.cosmology:REPORT"
    #: the HEALPix resolution and class count a checkpoint was trained on (--evaluate keeps them)
    geometry_keys = ("data.num_classes", "data.nside")

    def grid(self, cfg):
        """The product model × order × noise (``grid.product``), then the explicit ``grid.rows``."""
        prod, out = C.get(cfg, "grid.product", None) or {}, []
        if prod:
            for key in ("model", "order", "noise"):
                if not isinstance(prod.get(key), list) or not prod[key]:
                    raise InputError(f"cosmology: grid.product.{key} must be a non-empty list")
            out = [(m, {"order": int(o), "noise": float(n)}, {})
                   for m, o, n in itertools.product(prod["model"], prod["order"], prod["noise"])]
        return out + super().grid({"grid": {"rows": C.get(cfg, "grid.rows", None) or []}})

    def datamodule_args(self, ctx, run) -> dict:
        """The grid setting, and ``require_train=False`` under ``--evaluate`` (the checkpoint's
        datamodule state carries the training std, so a folder with the test split suffices)."""
        return {**super().datamodule_args(ctx, run), "order": int(run.setting["order"]),
                "noise": float(run.setting["noise"]), "require_train": getattr(ctx, "evaluate", None) is None}

    def model_args(self, ctx, run) -> dict:
        nside, order = int(C.get(run.cfg, "data.nside")), int(run.setting["order"])
        n = int(C.get(run.cfg, "data.num_classes"))
        return {"svm": {"nside": nside, "order": order}, "cnn2d": {"side": nside // order, "num_classes": n}}.get(
            run.cfg["model"].get("kind"), {"nside": nside, "order": order, "num_classes": n})

    def task_args(self, ctx, run, backbone) -> dict:
        args = super().task_args(ctx, run, backbone)
        reg = getattr(backbone, "l2_reg", 0.0)
        if reg:  # cosmo-tf1 cnn2d.loss: reg · Σ ½‖W‖² / n_weights, gradient (reg / n)·W = optim.l2 · W
            args["optim"] = {**args["optim"], "l2": reg / backbone.num_weights()}
        return args

    def is_custom(self, run) -> bool:
        return (run.cfg.get("model") or {}).get("kind") == "svm"

    def custom_run(self, ctx, run, run_dir) -> dict:
        dm = self.build_datamodule(ctx, run)
        dm.setup()
        out = self.build_backbone(ctx, run).fit_and_score(dm.samples, dm.train_realizations(run.seed))
        return {**out, **unseen_columns(dm)}

    def after_test(self, ctx, run, task, datamodule) -> dict:
        return unseen_columns(datamodule)


def unseen_columns(dm) -> dict:
    """``unseen_blocks_dropped_<split>``: partial maps dropped as mostly unobserved (datamodules/
    cosmology.py, "Partial sky"); no columns for full-sky data, so full-sky rows keep their schema."""
    s = dm.samples or {}
    if not any(s.get("unseen", {}).values()):
        return {}
    return {f"unseen_blocks_dropped_{k}": v for k, v in s["dropped"].items()}


BENCH = Cosmology()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
