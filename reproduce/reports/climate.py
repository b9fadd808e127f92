"""The climate results page: ICLR 2020 tab:climate (published rows interleaved with the reproduced
ones), the same net on other samplings, the class weights, and one segmented test map."""
from __future__ import annotations

import numpy as np

from datamodules.climate import (CLASSES, PUBLISHED_CLASS_WEIGHTS, PUBLISHED_FREQUENCIES, StandInClimate,
                                 parse_sampling, stand_in_description)
from reproduce.runner import config as C
from reproduce.runner import tables as T
from reproduce.runner.store import Artifact, load_npz, npz_bytes
from reproduce.runner.tables import Published

LABELS = {"ds_weighted": "DeepSphere, weighted loss", "ds_unweighted": "DeepSphere, non-weighted loss",
          "jiang_weighted": "DeepSphere, Jiang architecture, weighted",
          "jiang_unweighted": "DeepSphere, Jiang architecture, non-weighted",
          "per_site": "Per-vertex logistic regression (no spatial context)"}
#: the model of the samplings table (grid rows of it on other samplings)
SAMPLING_MODEL = "ds_weighted"
ICLR = "Defferrard et al. ICLR 2020, tab:climate"


def acc(tc: str, ar: str, bg: str, mean: str) -> dict:
    return {"acc TC": tc, "acc AR": ar, "acc BG": bg, "mean acc": mean}


def ap(tc: str, ar: str, mean: str) -> dict:
    return {"AP TC": tc, "AP AR": ar, "mAP": mean}


def cost(params: str, inference: str, training: str) -> dict:
    return {"params": params, "inference / map": inference, "training": training}


#: [ICLR] tab:climate (wider non-weighted: tab:climate:map), in %; the reproduced model shown below each
PUBLISHED = [
    Published("Mudigonda et al. 2017 (different inputs)", acc("74", "65", "97", "78.67"), ICLR),
    Published("Jiang et al. 2019, UGSCNN (paper)", {**acc("94", "93", "97", "94.67"), "params": "330 k"}, ICLR),
    Published("Jiang et al. 2019, UGSCNN (rerun, batch 64)",
              {**acc("93.9", "95.7", "95.2", "94.95"), **ap("11.08", "65.21", "38.41"), "params": "330 k"}, ICLR),
    Published("Cohen et al. 2019, gauge CNN S2R", {**acc("97.8", "97.3", "97.3", "97.5"), "mAP": "68.6"}, ICLR),
    Published("Cohen et al. 2019, gauge CNN R2R", {**acc("97.9", "97.8", "97.4", "97.7"), "mAP": "75.9"}, ICLR),
    Published("DeepSphere, Jiang architecture, weighted", {
        **acc("97.1", "97.6", "96.5", "97.1"), **ap("49.7", "89.2", "69.5"), **cost("590 k", "5 ms", "3 h")},
        ICLR, model="jiang_weighted"),
    Published("DeepSphere, weighted loss", {
        **acc("97.4 ± 1.1", "97.7 ± 0.7", "98.2 ± 0.5", "97.8 ± 0.3"),
        **ap("58.88 ± 3.17", "95.41 ± 1.51", "77.15 ± 1.94"), **cost("13 M", "33 ms", "13 h")},
        ICLR, model="ds_weighted"),
    Published("DeepSphere wider, weighted", {
        **acc("91.5", "93.4", "99.0", "94.6"), **ap("52.80", "94.78", "73.79"), **cost("52 M", "50 ms", "20 h")},
        ICLR),
    Published("DeepSphere, Jiang architecture, non-weighted", {
        **acc("33.6", "93.6", "99.3", "75.5"), **ap("46.2", "93.9", "70.0"), **cost("590 k", "5 ms", "3 h")},
        ICLR, model="jiang_unweighted"),
    Published("DeepSphere, non-weighted loss", {
        **acc("69.2 ± 3.7", "94.5 ± 2.9", "99.7 ± 0.1", "87.8 ± 0.5"),
        **ap("80.86 ± 2.42", "97.45 ± 0.38", "89.16 ± 1.37"), **cost("13 M", "33 ms", "13 h")},
        ICLR, model="ds_unweighted"),
    Published("DeepSphere wider, non-weighted (tab:climate:map)", {
        **acc("73.4", "92.7", "99.8", "88.7"), **ap("84.71", "98.05", "91.38"), **cost("52 M", "50 ms", "20 h")},
        "Defferrard et al. ICLR 2020, tab:climate:map")]
#: the CSV column of each published metric
METRICS = {"acc TC": "test_recall_TC", "acc AR": "test_recall_AR", "acc BG": "test_recall_BG",
           "mean acc": "test_acc_mean", "AP TC": "test_ap_TC", "AP AR": "test_ap_AR", "mAP": "test_map"}
IOU = [T.Col(f"IoU {c}", T.percent(f"test_iou_{c}")) for c in ("TC", "AR", "BG")]


def main_sampling(cfg: dict) -> str:
    """The sampling of the main table: the first grid row's (the paper's ico:5 in ``paper``)."""
    return str(C.get(cfg, "grid.rows")[0]["setting"]["sampling"])


def selection_text(cfg: dict, note: bool = False) -> str:
    """Which weights the table's rows were tested with (the preset's ``trainer.select``)."""
    sel = C.get(cfg, "trainer.select", "last")
    if sel == {"metric": "val/map", "mode": "max"}:
        return "the checkpoint with the best validation mAP (TC, AR)" if note else \
            "checkpoint with the best validation mAP"
    if isinstance(sel, dict):
        return f"the checkpoint with the best validation {sel.get('metric')} ({sel.get('mode', 'max')})"
    return "the final model (as deepsphere-tf1, which tests its latest checkpoint)" if note else "the final model"


ICLR_TABLE = T.Table(
    published=PUBLISHED, where=lambda v: {"setting_sampling": main_sampling(v.cfg)}, after="\n",
    heading=lambda v: f"## ICLR 2020 tab:climate, published and reproduced (sampling here: {main_sampling(v.cfg)})\n\n",
    intro=lambda v: (
        "Test set, in %: per-class accuracy = recall (correct sites of the class / its true sites), mean "
        "accuracy = its mean over TC, AR, BG; AP per class over the whole test set, mAP = mean of the TC and "
        "AR APs; IoU (ClimateNet's metric) only reproduced. Reproduced: mean ± std over runs (the `runs` "
        f"column), {selection_text(v.cfg)}; inference = forward pass of one map (batch 1) on "
        "this hardware; training = wall time per run.\n\n"),
    columns=[T.method(LABELS), *[T.Col(head, T.percent(key)) for head, key in METRICS.items()], *IOU,
             T.Col("params", T.params()), T.Col("inference / map", T.ms()), T.Col("training", T.minutes()),
             T.Col("runs", T.runs())])


def other_samplings(view) -> list[str]:
    """The samplings of the samplings table: none unless its model ran on two."""
    samps = list(dict.fromkeys(r.get("setting_sampling", "") for r in view.select(model=SAMPLING_MODEL)))
    return samps if len(samps) > 1 else []


SAMPLINGS_TABLE = T.Table(
    rows="setting_sampling", order=other_samplings, where={"model": SAMPLING_MODEL}, after="\n",
    heading=f"## The same net on other samplings ({LABELS[SAMPLING_MODEL]})\n\n",
    intro="The same maps resampled onto each sampling (fields bilinear, labels nearest neighbour), the same "
          "layers and widths (graph and pooling of each sampling: k-NN k = 6 icosahedral, k = 8 HEALPix / "
          "equiangular; 1-ring average, 4-children average, 2 × 2 average pooling). Metrics on each "
          "sampling's own sites, in %; no published counterpart (the paper trains on ico:5 only).\n\n",
    columns=[T.Col("sampling", lambda rows, k, v: k), T.Col("vertices", T.first_int("vertices")),
             *[T.Col(head, T.percent(METRICS[head])) for head in ("mean acc", "mAP", "acc TC", "acc AR")],
             *IOU[:2], T.Col("params", T.first_int("params")), T.Col("inference / map", T.ms()),
             T.Col("wall min", T.mean_of("wall_s", 1 / 60)), T.Col("runs", T.runs())])


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


# --------------------------------------------------------------------------- figure
def encode_map(tmq: np.ndarray, true: np.ndarray, pred: np.ndarray) -> Artifact:
    """One test map as a file of the row (:class:`~reproduce.runner.store.Artifact`): TMQ
    quantised to 8 bits and the two label maps, compressed ``.npz``."""
    lo, hi = float(tmq.min()), float(tmq.max())
    q = np.round(255 * (tmq - lo) / max(hi - lo, 1e-12)).astype(np.uint8)
    return Artifact(npz_bytes(tmq=q, range=np.array([lo, hi]), labels=(3 * true + pred).astype(np.uint8)))


def example_map(net, test, device) -> Artifact:
    """The figure's map: the first test map's TMQ (de-normalised), true and predicted labels."""
    import torch

    from datamodules.climate import MEAN, STD

    x0, y = test[0][0], test[0][1].numpy()
    with torch.no_grad():
        pred = net.eval()(x0[None].to(device))[0].argmax(0).cpu().numpy()
    return encode_map(x0.numpy()[0] * STD[0] + MEAN[0], y, pred)


def decode_map(results_dir, cell: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TMQ, true and predicted labels of a row's ``example_map`` file (relative to ``results_dir``)."""
    z = load_npz(results_dir, cell)
    lo, hi = z["range"]
    return lo + (hi - lo) * z["tmq"] / 255.0, z["labels"] // 3, z["labels"] % 3


def plot(view):
    samp = main_sampling(view.cfg)
    rows = [r for m in LABELS for r in sorted(view.select(model=m, setting_sampling=samp), key=lambda r: int(r["seed"]))
            if r.get("example_map")]
    if not rows or parse_sampling(samp).kind == "native":
        return None
    row = rows[0]
    tmq, true, pred = decode_map(view.results_dir, row["example_map"])
    v = parse_sampling(samp).vertices()
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
    m = C.build(StandInClimate, view.cfg["data"].get("stand_in_maps"), "data.stand_in_maps")
    return stand_in_description(m)


def headline(view) -> str:
    rows = view.select(model="ds_weighted", setting_sampling=main_sampling(view.cfg))
    return f"{T.fmt_pm(T.floats(rows, 'test_acc_mean'), 100, 1)} / {T.fmt_pm(T.floats(rows, 'test_map'), 100, 1)} %"


REPORT = T.Report(
    title="Climate event segmentation on the sphere (CAM5: tropical cyclones, atmospheric rivers)",
    stand_in=T.StandIn.papers("synthetic ClimateNet-style netCDF", "the CAM5 simulations of the paper", "their data",
                              stand_in_note),
    sections=[ICLR_TABLE, SAMPLINGS_TABLE, T.Text(weights_table),
              T.Figure("climate.png", plot, "one test map: input TMQ, true and predicted TC/AR masks")],
    notes=[
        lambda v: (f"Model selection: {selection_text(v.cfg, note=True)} is tested. Inputs are normalised "
                   "with the published UGSCNN per-channel mean / std on every sampling."),
        "Parameters: the paper net has 10,486,787 parameters here against the published 13 M, the Jiang "
        "architecture 527,387 against 590 k (models/deepsphere/unet.py says why); reduced presets narrow "
        "them (their `params` column).",
        "Not reproduced: the 'wider' net (52 M parameters); Mudigonda, UGSCNN and gauge-CNN rows are "
        "published only. The published Jiang-architecture rows have no ± (one run each), so those rows run once."],
    headline=T.Headline("mean accuracy / mAP, DeepSphere weighted", "97.8 / 77.15 %", headline))
