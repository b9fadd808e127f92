"""SHREC'17 3D shape retrieval (ShapeNet Core55, perturbed split): DeepSphere on HEALPix and on the
equiangular grid, the 3D steerable CNN on voxels and the spectral spherical CNNs, scored by the official
SHREC'17 evaluator (``models/retrieval.py``).

Reproduces: Defferrard et al. ICLR 2020, tab:shrec17 and tab:shrec17_retrieval (DeepSphere on HEALPix
and equiangular samplings) and Weiler et al. 2018 §5.2 (3D steerable CNN), with the official SHREC'17
metrics, beside the competition entries, S2CNN (Cohen et al. 2018) and Esteves et al. 2018.

    python reproduce/shrec17.py --preset smoke    # ~2 min: tiny stand-in, every row kind, 1 epoch
    python reproduce/shrec17.py --preset cpu      # ~30-40 min on 2 cores: stand-in (configs/shrec17/cpu.yaml)
    python reproduce/shrec17.py --preset paper --gpus 1 --data-dir DIR
    python reproduce/shrec17.py --preset cpu --table   # rewrite the tables from results/shrec17.csv

``--data-dir``: the SHREC'17 download or class folders (README, "Data"); without it an offline stand-in
in the SHREC'17 layout is written and read back by the same reader. Each run writes the official
result files (``evaluate.js`` runs on them unchanged) and the evaluator's summary in its run folder.

Writes results/shrec17.csv (one row per run), results/shrec17.md and results/shrec17.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError, atomic_write_text
from datamodules.shrec17_input import check_input, parse_input, parse_sampling
from models import retrieval as R
from reproduce.runner import Benchmark, main
from reproduce.runner import config as C
from reproduce.runner.after_test import InferenceTime, Invariance

#: the logits of an object's first two orientations (the test-time augmentations), compared
ROTATION = Invariance("rotation", agreement="rotation_agreement", column="rotation_logit_error")


class Shrec17(Benchmark):
    name = "shrec17"
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.shrec17:Shrec17DataModule"
    models = {"deepsphere": "models.deepsphere.nets:SphereClassifier", "se3": "models.steerable:Shrec17SE3Net",
              "esteves": "models.spectral:EstevesSphericalCNN", "s2cnn": "models.spectral:S2CNN"}
    task = "models.tasks:Retrieve"
    report = "reproduce.reports.shrec17:REPORT"
    #: the class count and voxel grid options a checkpoint was trained on (--evaluate keeps them;
    #: the sampling / voxel size is the run's setting, which --evaluate takes from the checkpoint)
    geometry_keys = ("data.num_classes", "data.voxel_double", "data.voxel_fit")

    @property
    def measurements(self) -> tuple:
        """Inference time per object (the report states how many objects: imported when a run measures)."""
        from reproduce.reports.shrec17 import INFER_OBJECTS
        return (InferenceTime(INFER_OBJECTS),)

    def datamodule_args(self, ctx, run) -> dict:
        # data.seed (not the run seed) draws the augmentations: every run and model of an input shares its cache
        args = {**super().datamodule_args(ctx, run), **parse_input(run.setting.get("input", ""))}
        if ctx.evaluate is not None and "class_names" not in (run.cfg.get("data") or {}):
            from reproduce.runner.evaluate import datamodule_state
            names = datamodule_state(ctx.evaluate, self.datamodule).get("class_names")  # the model's class order
            args["class_names"] = [str(c) for c in names] if names else None
        return args

    def model_args(self, ctx, run) -> dict:
        kind = (run.cfg.get("model") or {}).get("kind")
        inp = parse_input(run.setting.get("input", ""))
        args = {"num_classes": int(run.cfg["data"]["num_classes"])}
        if kind == "se3":
            return args
        args["in_channels"] = 6
        if kind == "deepsphere":
            return {**args, "sampling": inp["sampling"]}
        return {**args, "bandwidth": parse_sampling(inp["sampling"]).res}

    def check(self, ctx, run) -> None:
        check_input((run.cfg.get("model") or {}).get("kind"), run.setting.get("input"), run.model)
        try:
            R.evaluation_settings(run.cfg)
        except ValueError as e:
            raise InputError(f"shrec17: {e}") from None
        super().check(ctx, run)

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """Official metrics on the summed test-time augmentations, the result files, classification
        F1, the change of the logits between two orientations, inference ms per object, and the
        figure's input maps."""
        import numpy as np
        import torch

        from reproduce.reports.shrec17 import figure_maps
        out = task.test_outputs
        if not out:
            return {}
        split = datamodule.test_split_name
        labels = datamodule.labels()
        ids_raw = out["ids"].numpy()
        mode, kind = R.evaluation_settings(run.cfg)
        uids, scores = R.sum_by_id(ids_raw, R.per_copy_scores(out["logits"].numpy(), kind))
        _, desc = R.mean_by_id(ids_raw, out["embeddings"].numpy())
        lists = R.retrieval_lists(uids, scores, descriptors=desc, mode=mode)
        res = R.evaluate(lists, labels, split=split)
        index = {s: i for i, s in enumerate(datamodule.class_names)}
        y_true = np.array([index[labels[u][0]] for u in uids])
        metrics = {f"{avg}_{k}": round(float(res[f"{avg}_{k}"]), 6) for avg in ("micro", "macro") for k in R.METRICS}
        metrics.update(f1_cls=round(R.classification_f1(y_true, scores.argmax(1)), 6), scored_objects=len(uids),
                       scored_split=split, train_objects=len(datamodule.datasets["train"]),
                       retrieval_mode=mode)
        first, second = R.first_two_copies(ids_raw)
        if first:  # the logits of an object's first two orientations (the test-time augmentations)
            a, b = (torch.from_numpy(out["logits"].numpy()[rows]).double() for rows in (first, second))
            metrics.update(ROTATION.columns(a, [b]))
        stats = (getattr(datamodule, "preprocess_stats", None) or {}).get("filled") or {}
        if stats.get("meshes_per_s"):
            metrics.update(preprocess_meshes_per_s=round(float(stats["meshes_per_s"]), 2),
                           preprocess_meshes=int(stats.get("meshes", 0)),
                           preprocess_backend=str(stats.get("backend", "")))
        if ctx.is_rank_zero:  # --evaluate writes beside the training run's files, one folder per data dir
            folder = (run.run_dir(ctx.runs_dir) / "retrieval" if ctx.evaluate is None else  # the checkpoint's run
                      Path(ctx.evaluate).resolve().parent.parent / f"retrieval-evaluate-{C.config_hash(str(ctx.data_dir), 8)}")
            from datamodules.shrec17_layout import write_results  # imports torch: only after a test
            write_results(lists, folder, run.model, datamodule.test_dataset_name)
            atomic_write_text(folder / f"{run.model}.summary.csv",
                              "\n".join(R.summary_rows(res, datamodule.test_dataset_name, run.model)) + "\n")
        metrics.update(self.declared_measurements(ctx, run, task, datamodule))
        if datamodule.input == "sphere" and ctx.evaluate is None:
            metrics.update(figure_maps(datamodule, lists, labels))
        return metrics



BENCH = Shrec17()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
