"""CAM5 climate event segmentation (TC / AR / BG) on the sphere: the DeepSphere U-Net, weighted vs
unweighted loss, and the same net on other samplings.

Reproduces Defferrard, Milani, Gusset, Perraudin, ICLR 2020, tab:climate and tab:climate:map:
per-class accuracy (recall) of TC, AR, BG and its mean, TC/AR average precision and their mean
(mAP) on the UGSCNN level-5 data, for the DeepSphere U-Net with sklearn-"balanced" class weights
and without, and for the narrower "Jiang architecture"; beside every published row (Mudigonda 2017,
Jiang 2019 paper / rerun, Cohen 2019 gauge S2R / R2R, DeepSphere wider). Per-class IoU (ClimateNet's
metric) is an extra column. A second table runs the same net on HEALPix and equiangular samplings
of the same maps (the "any sampling" claim, measured).

    python reproduce/climate.py --preset smoke    # ~1 min: stand-in at ico:2, 1 epoch, every row kind
    python reproduce/climate.py --preset cpu      # ~30-40 min on 2 cores: stand-in at ico:4 (configs/climate/cpu.yaml)
    python reproduce/climate.py --preset paper --gpus 1 --data-dir <folder with data_5_all/ and *_split.txt>
    python reproduce/climate.py --preset cpu --table   # rewrite the tables from results/climate.csv
    python reproduce/climate.py --predict runs/climate/.../checkpoints/last.ckpt --data-dir IN --out OUT

``--data-dir``: the UGSCNN npz files (``climate_sphere_l5.zip``) or ClimateNet / CAM5 netCDF files,
resampled once onto the row's sampling (datamodules/climate.py). Without it an offline stand-in is
written as ClimateNet-style netCDF and read back by the same reader; the tables say so.

``--predict CKPT --data-dir IN --out OUT``: for every ``IN/*.nc`` (lat/lon or unstructured ``ncol``),
``OUT/<same name>`` holds ``LABELS`` (0 BG, 1 TC, 2 AR) and ``PROBABILITIES`` on the input's own
grid, coordinates and attributes (:func:`predict`). The model runs on the sampling it was trained
on: fields are interpolated onto it as for training, class probabilities back onto the input
points (inverse distance, 4 nearest; a convex combination, so they still sum to 1), and LABELS is
their argmax. A model trained on ``native`` columns runs on each file's own columns (its graph is
built on them).

Writes results/climate.csv (one row per run) and results/climate.md (+ climate.png, one test map).
"""
from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from datamodules._common import InputError
from datamodules.climate import (CLASSES, PUBLISHED_CLASS_WEIGHTS, PUBLISHED_FREQUENCIES, ClimateDataModule,
                                 StandInClimate, parse_sampling, stand_in_description)
from models.deepsphere.unet import DeepSphereUNet
from models.tasks import Segment
from reproduce.runner import Benchmark, main
from reproduce.runner import config as C
from reproduce.runner import tables as T
from reproduce.runner.measure import InferenceTime

LABELS = {"ds_weighted": "DeepSphere, weighted loss", "ds_unweighted": "DeepSphere, non-weighted loss",
          "jiang_weighted": "DeepSphere, Jiang architecture, weighted",
          "jiang_unweighted": "DeepSphere, Jiang architecture, non-weighted"}
LOSSES = ("weighted", "unweighted")
#: [ICLR] tab:climate (wider non-weighted: tab:climate:map) as (method, acc TC, AR, BG, mean, AP TC,
#: AR, mAP, params, inference, training, the reproduced model shown below it)
PUBLISHED = [
    ("Mudigonda et al. 2017 (different inputs)", "74", "65", "97", "78.67", "–", "–", "–", "–", "–", "–", None),
    ("Jiang et al. 2019, UGSCNN (paper)", "94", "93", "97", "94.67", "–", "–", "–", "330 k", "–", "–", None),
    ("Jiang et al. 2019, UGSCNN (rerun, batch 64)", "93.9", "95.7", "95.2", "94.95", "11.08", "65.21", "38.41",
     "330 k", "–", "–", None),
    ("Cohen et al. 2019, gauge CNN S2R", "97.8", "97.3", "97.3", "97.5", "–", "–", "68.6", "–", "–", "–", None),
    ("Cohen et al. 2019, gauge CNN R2R", "97.9", "97.8", "97.4", "97.7", "–", "–", "75.9", "–", "–", "–", None),
    ("DeepSphere, Jiang architecture, weighted", "97.1", "97.6", "96.5", "97.1", "49.7", "89.2", "69.5",
     "590 k", "5 ms", "3 h", "jiang_weighted"),
    ("DeepSphere, weighted loss", "97.4 ± 1.1", "97.7 ± 0.7", "98.2 ± 0.5", "97.8 ± 0.3", "58.88 ± 3.17",
     "95.41 ± 1.51", "77.15 ± 1.94", "13 M", "33 ms", "13 h", "ds_weighted"),
    ("DeepSphere wider, weighted", "91.5", "93.4", "99.0", "94.6", "52.80", "94.78", "73.79", "52 M", "50 ms",
     "20 h", None),
    ("DeepSphere, Jiang architecture, non-weighted", "33.6", "93.6", "99.3", "75.5", "46.2", "93.9", "70.0",
     "590 k", "5 ms", "3 h", "jiang_unweighted"),
    ("DeepSphere, non-weighted loss", "69.2 ± 3.7", "94.5 ± 2.9", "99.7 ± 0.1", "87.8 ± 0.5", "80.86 ± 2.42",
     "97.45 ± 0.38", "89.16 ± 1.37", "13 M", "33 ms", "13 h", "ds_unweighted"),
    ("DeepSphere wider, non-weighted (tab:climate:map)", "73.4", "92.7", "99.8", "88.7", "84.71", "98.05",
     "91.38", "52 M", "50 ms", "20 h", None)]
METRICS = ["test_recall_TC", "test_recall_AR", "test_recall_BG", "test_acc_mean", "test_ap_TC", "test_ap_AR",
           "test_map"]
HEAD = ["method", "acc TC", "acc AR", "acc BG", "mean acc", "AP TC", "AP AR", "mAP", "IoU TC", "IoU AR",
        "IoU BG", "params", "inference / map", "training", "runs"]
#: the model of the samplings table (grid rows of it on other samplings)
SAMPLING_MODEL = "ds_weighted"
INFER_MAPS = 5  # test maps timed one at a time (batch 1) after a warm-up map


# --------------------------------------------------------------------------- table
def pct(rows, key: str) -> str:
    m, s, n = T.mean_std_n(T.floats(rows, key))
    return "–" if not n else f"{m * 100:.1f}" + (f" ± {s * 100:.1f}" if n > 1 else "")


def main_sampling(cfg: dict) -> str:
    """The sampling of the main table: the first grid row's (the paper's ico:5 in ``paper``)."""
    return str(C.get(cfg, "grid.rows")[0]["setting"]["sampling"])


def reproduced(rows: list[dict], model: str) -> list[str]:
    ms = T.floats(rows, "infer_ms")
    return ([f"↳ reproduced: {LABELS.get(model, model)}"] + [pct(rows, k) for k in METRICS]
            + [pct(rows, f"test_iou_{c}") for c in ("TC", "AR", "BG")]
            + [", ".join(f"{int(p):,}" for p in sorted(set(T.floats(rows, "params")))) or "–",
               f"{np.mean(ms):.1f} ms" if ms else "–", T.mean_of("wall_s", 1 / 60)(rows, model, None) + " min",
               str(len(rows))])


def selection_text(cfg: dict, note: bool = False) -> str:
    """Which weights the table's rows were tested with (the preset's ``trainer.select``)."""
    sel = C.get(cfg, "trainer.select", "last")
    if sel == {"metric": "val/map", "mode": "max"}:
        return "the checkpoint with the best validation mAP (TC, AR)" if note else \
            "checkpoint with the best validation mAP"
    if isinstance(sel, dict):
        return f"the checkpoint with the best validation {sel.get('metric')} ({sel.get('mode', 'max')})"
    return "the final model (as deepsphere-tf1, which tests its latest checkpoint)" if note else "the final model"


def iclr_table(view) -> str:
    samp = main_sampling(view.cfg)
    rows = view.select(setting_sampling=samp)
    body, shown = [], set()
    for *pub, model in PUBLISHED:
        body.append(pub[:8] + ["–", "–", "–"] + pub[8:] + ["–"])  # published: no IoU, no run count
        if model and T.select(rows, model=model):
            body.append(reproduced(T.select(rows, model=model), model))
            shown.add(model)
    for model in dict.fromkeys(r["model"] for r in rows):  # reproduced rows without a published twin
        if model not in shown:
            body.append(reproduced(T.select(rows, model=model), model))
    return (f"## ICLR 2020 tab:climate, published and reproduced (sampling here: {samp})\n\n"
            "Test set, in %: per-class accuracy = recall (correct sites of the class / its true sites), mean "
            "accuracy = its mean over TC, AR, BG; AP per class over the whole test set, mAP = mean of the TC and "
            "AR APs; IoU (ClimateNet's metric) only reproduced. Reproduced: mean ± std over runs (the `runs` "
            f"column), {selection_text(view.cfg)}; inference = forward pass of one map (batch 1) on "
            "this hardware; training = wall time per run.\n\n" + T.md_table(HEAD, body) + "\n")


def samplings_table(view) -> str:
    model = SAMPLING_MODEL
    rows = view.select(model=model)
    samps = list(dict.fromkeys(r.get("setting_sampling", "") for r in rows))
    if len(samps) < 2:
        return ""
    body = []
    for s in samps:
        sel = T.select(rows, setting_sampling=s)
        ms = T.floats(sel, "infer_ms")
        body.append([s, T.first_int("vertices")(sel, s, view), pct(sel, "test_acc_mean"), pct(sel, "test_map"),
                     pct(sel, "test_recall_TC"), pct(sel, "test_recall_AR"), pct(sel, "test_iou_TC"),
                     pct(sel, "test_iou_AR"), T.first_int("params")(sel, s, view),
                     f"{np.mean(ms):.1f} ms" if ms else "–", T.mean_of("wall_s", 1 / 60)(sel, s, view),
                     str(len(sel))])
    return (f"## The same net on other samplings ({LABELS.get(model, model)})\n\n"
            "The same maps resampled onto each sampling (fields bilinear, labels nearest neighbour), the same "
            "layers and widths (graph and pooling of each sampling: k-NN k = 6 icosahedral, k = 8 HEALPix / "
            "equiangular; 1-ring average, 4-children average, 2 × 2 average pooling). Metrics on each "
            "sampling's own sites, in %; no published counterpart (the paper trains on ico:5 only).\n\n"
            + T.md_table(["sampling", "vertices", "mean acc", "mAP", "acc TC", "acc AR", "IoU TC", "IoU AR",
                          "params", "inference / map", "wall min", "runs"], body) + "\n")


def weights_table(view) -> str:
    samp = main_sampling(view.cfg)
    rows = [r for r in view.select(setting_sampling=samp) if r.get("class_weight_BG") not in (None, "")]
    if not rows:
        return ""
    body = []
    for c, pub_w, pub_f in zip(CLASSES, PUBLISHED_CLASS_WEIGHTS, PUBLISHED_FREQUENCIES):
        ws = sorted(set(T.floats(rows, f"class_weight_{c}")))
        body.append([c, f"{pub_w:.4f}", f"{pub_f * 100:.1f}", " / ".join(f"{w:.4f}" for w in ws),
                     " / ".join(f"{100 / (3 * w):.2f}" for w in ws)])
    return ("## Class weights of the weighted loss\n\nsklearn `compute_class_weight('balanced')` on the training "
            "labels, w_c = n / (3 n_c), so the class frequency is 1 / (3 w_c). Published: deepsphere-tf1's weights "
            "on the UGSCNN training set (frequencies as stated in the paper). Computed: on this preset's training "
            f"split at {samp}.\n\n"
            + T.md_table(["class", "published weight", "published frequency %", "computed weight",
                          "computed frequency %"], body) + "\n")


def encode_map(tmq: np.ndarray, true: np.ndarray, pred: np.ndarray) -> str:
    """One test map as a CSV cell: TMQ quantised to 8 bits and the two label maps, compressed."""
    lo, hi = float(tmq.min()), float(tmq.max())
    q = np.round(255 * (tmq - lo) / max(hi - lo, 1e-12)).astype(np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, tmq=q, range=np.array([lo, hi]), labels=(3 * true + pred).astype(np.uint8))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_map(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as z:
        lo, hi = z["range"]
        return lo + (hi - lo) * z["tmq"] / 255.0, z["labels"] // 3, z["labels"] % 3


def plot(view):
    samp = main_sampling(view.cfg)
    rows = [r for m in LABELS for r in sorted(view.select(model=m, setting_sampling=samp), key=lambda r: int(r["seed"]))
            if r.get("example_map")]
    if not rows or parse_sampling(samp).kind == "native":
        return None
    row = rows[0]
    tmq, true, pred = decode_map(row["example_map"])
    v = parse_sampling(samp).vectors()
    lon, lat = (np.degrees(np.arctan2(v[:, 1], v[:, 0])) + 180) % 360 - 180, np.degrees(np.arcsin(v[:, 2]))
    plt = T.pyplot()
    from matplotlib.colors import ListedColormap
    cmap = ListedColormap(["#f2f2f2", "#d62728", "#1f77b4"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    s = max(1.0, 30000 / len(v))
    sc = axes[0].scatter(lon, lat, c=tmq, s=s, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=axes[0], label="TMQ (kg m$^{-2}$)", fraction=0.05)
    for ax, lab, title in ((axes[1], true, "true labels"), (axes[2], pred, f"predicted ({LABELS[row['model']]})")):
        ax.scatter(lon, lat, c=lab, s=s, cmap=cmap, vmin=-0.5, vmax=2.5, linewidths=0)
        ax.set_title(f"{title}: grey BG, red TC, blue AR", fontsize=8)
    axes[0].set_title(f"input TMQ, one test map ({samp}, {len(v):,} vertices)", fontsize=8)
    for ax in axes:
        ax.set(xlim=(-180, 180), ylim=(-90, 90), xlabel="longitude")
    axes[0].set_ylabel("latitude")
    fig.suptitle(f"preset {view.preset}, {', '.join(view.data_sources)} data, seed {row['seed']}", fontsize=8)
    fig.tight_layout()
    return fig


def stand_in_note(view) -> str:
    if not view.stand_in:
        return ""
    m = C.build(StandInClimate, view.cfg["data"].get("stand_in_maps"), "data.stand_in_maps")
    return stand_in_description(m)


REPORT = T.Report(
    title="Climate event segmentation on the sphere (CAM5: tropical cyclones, atmospheric rivers)",
    reproduces="Defferrard et al. ICLR 2020, tab:climate and tab:climate:map: DeepSphere U-Net on the UGSCNN "
               "level-5 icosahedral CAM5 maps, weighted vs non-weighted cross-entropy, beside the published rows "
               "of Mudigonda 2017, Jiang 2019 (UGSCNN) and Cohen 2019 (gauge CNNs).",
    preamble=lambda v: v.stand_in and (
        "**Data: offline stand-in** (synthetic ClimateNet-style netCDF, see notes), not the CAM5 simulations "
        "of the paper: the published rows are the papers' results on their data, for orientation, not a "
        "like-for-like target.") or "",
    sections=[T.Text(iclr_table), T.Text(samplings_table), T.Text(weights_table),
              T.Figure("climate.png", plot, "one test map: input TMQ, true and predicted TC/AR masks")],
    notes=[
        stand_in_note,
        lambda v: (f"Model selection: {selection_text(v.cfg, note=True)} is tested. Inputs are normalised "
                   "with the published UGSCNN per-channel mean / std on every sampling."),
        "Parameters: the paper net has 10,486,787 parameters here against the published 13 M, the Jiang "
        "architecture 527,387 against 590 k (models/deepsphere/unet.py says why); reduced presets narrow "
        "them (their `params` column).",
        "Not reproduced: the 'wider' net (52 M parameters); Mudigonda, UGSCNN and gauge-CNN rows are "
        "published only. The published Jiang-architecture rows have no ± (one run each), so those rows run once."],
    headline=T.Headline("mean accuracy / mAP, DeepSphere weighted", "97.8 / 77.15 %", lambda v: (
        f"{pct(v.select(model='ds_weighted', setting_sampling=main_sampling(v.cfg)), 'test_acc_mean')} / "
        f"{pct(v.select(model='ds_weighted', setting_sampling=main_sampling(v.cfg)), 'test_map')} %")))


class Climate(Benchmark):
    name = "climate"
    datamodule = ClimateDataModule
    models = {"unet": DeepSphereUNet}
    task = Segment
    report = REPORT
    measurements = (InferenceTime(INFER_MAPS),)

    def __init__(self):
        self._weights: dict[str, list[float]] = {}

    def datamodule_args(self, ctx, run) -> dict:
        return {**super().datamodule_args(ctx, run), "sampling": str(run.setting["sampling"])}

    def _model_section(self, run) -> dict:  # ``loss`` picks the task's loss, not a backbone argument
        return {k: v for k, v in super()._model_section(run).items() if k != "loss"}

    def model_args(self, ctx, run) -> dict:
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

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """The training split's balanced weights, inference ms per map (batch 1) and one test map."""
        import torch

        from datamodules.climate import MEAN, STD

        out = {} if ctx.evaluate is not None else {
            f"class_weight_{c}": round(w, 6) for c, w in zip(CLASSES, self.class_weights(ctx, run))}
        net, dev = task.backbone.eval(), task.device
        test = datamodule.datasets["test"]
        out.update(vertices=int(net.num_vertices), train_maps=len(datamodule.datasets["train"]), test_maps=len(test))
        out.update(self.measure(ctx, run, task, datamodule))
        if len(test):
            x0, y = test[0][0], test[0][1].numpy()
            with torch.no_grad():
                pred = net.eval()(x0[None].to(dev))[0].argmax(0).cpu().numpy()
            out["example_map"] = encode_map(x0.numpy()[0] * STD[0] + MEAN[0], y, pred)
        return out

    # -- --predict ------------------------------------------------------------------------------
    def add_arguments(self, parser) -> None:
        parser.add_argument("--predict", default=None, metavar="CKPT",
                            help="segment every --data-dir/*.nc with a trained checkpoint; writes LABELS and "
                                 "PROBABILITIES on each input's own grid to --out")
        parser.add_argument("--out", default=None, help="output folder of --predict")

    def command(self, args) -> int | None:
        if args.out is not None and not args.predict:
            raise InputError("--out is the output folder of --predict CKPT")
        if not args.predict:
            return None
        if not args.data_dir or not args.out:
            raise InputError("--predict CKPT needs --data-dir (the netCDF files to segment) and --out (a folder)")
        from reproduce._climate_predict import predict
        for path in predict(self, Path(args.predict), Path(args.data_dir), Path(args.out), gpus=args.gpus):
            print(f"[climate] wrote {path}", file=sys.stderr)
        return 0


BENCH = Climate()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
