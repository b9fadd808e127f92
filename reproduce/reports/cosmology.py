"""The cosmology results page: per partial-map order, published / reproduced accuracy per noise level
(Perraudin et al. 2019), ICLR 2020 tab:cosmo, parameters and wall time, and the accuracy figure."""
from __future__ import annotations

import numpy as np

from datamodules.cosmology import STAND_IN_SUMMARY, StandInMaps, stand_in_description
from reproduce.runner import config as C
from reproduce.runner import tables as T
from reproduce.runner.tables import Published

METHODS = ["deepsphere_fcn", "deepsphere_cnn", "cnn2d_fcn", "cnn2d_cnn", "svm_hist", "svm_psd"]
LABELS = {"deepsphere_fcn": "DeepSphere FCN", "deepsphere_cnn": "DeepSphere CNN",
          "cnn2d_fcn": "2D ConvNet FCN", "cnn2d_cnn": "2D ConvNet CNN",
          "svm_hist": "linear SVM, histogram", "svm_psd": "linear SVM, PSD",
          "deepsphere_fcn_k8": "DeepSphere FCN, V2 graph k = 8",
          "deepsphere_fcn_k20": "DeepSphere FCN, V2 graph k = 20",
          "deepsphere_fcn_k40": "DeepSphere FCN, V2 graph k = 40"}
NOISES = [0.0, 0.5, 1.0, 1.5, 2.0]
FIGURE = "Perraudin et al. 2019, fig. result_order{1,2,4} (deepsphere-cosmo-tf1 results files)"


def by_noise(**orders: list[float]) -> dict[tuple[int, float], float]:
    """``by_noise(o1=[...])``: accuracies at the noise levels of :data:`NOISES`, keyed (order, noise)."""
    return {(int(o[1:]), nz): acc for o, accs in orders.items() for nz, acc in zip(NOISES, accs, strict=True)}


#: published test accuracy (%) per model and order at noise 0, 0.5, 1, 1.5, 2: deepsphere-cosmo-tf1
#: results/**/*_results_list_sigma3*.npz = Perraudin et al. 2019 fig. result_order{1,2,4} (read as
#: figures.ipynb does: the last 15 rows for DeepSphere and the histogram SVM, the first 15 for the 2D net)
CURVES = {
    "deepsphere_fcn": dict(o1=[100, 100, 100, 100, 100], o2=[100, 100, 100, 99.6, 97.9], o4=[100, 99.8, 97.7, 92.5, 86.8]),
    "deepsphere_cnn": dict(o1=[100, 100, 100, 99.6, 100], o2=[100, 100, 100, 99.1, 98.1], o4=[100, 99.7, 97.2, 91.2, 83.6]),
    "cnn2d_fcn": dict(o1=[100, 100, 100, 100, 98.8], o2=[100, 99.9, 99.3, 97.9, 89.8], o4=[99.3, 98.2, 93.4, 87.2, 80.1]),
    "cnn2d_cnn": dict(o1=[100, 100, 90.8, 55.4, 50.8], o2=[100, 100, 96.6, 93.3, 64.3], o4=[99.4, 98.0, 92.3, 79.9, 73.9]),
    "svm_hist": dict(o1=[100, 100, 100, 99.6, 99.2], o2=[99.0, 99.3, 98.1, 95.0, 89.5], o4=[90.4, 89.1, 86.0, 80.1, 74.3]),
    "svm_psd": dict(o1=[100, 98.3, 92.9, 88.8, 77.5], o2=[95.4, 90.2, 86.8, 81.7, 75.3], o4=[86.4, 77.8, 71.4, 68.0, 63.7]),
}
PUBLISHED = [Published(LABELS[m], by_noise(**curves), FIGURE, model=m) for m, curves in CURVES.items()]
PUB = {p.model: p for p in PUBLISHED}


def published_acc(model: str, order: int, noise: float) -> float | None:
    p = PUB.get(model)
    return None if p is None else p.values.get((order, noise))


#: o = 1, noise 3.5: Defferrard et al. ICLR 2020 tab:cosmo (accuracy %)
PUBLISHED_ICLR = [Published(LABELS[m], {"acc %": acc}, "Defferrard et al. ICLR 2020, tab:cosmo", model=m)
                  for m, acc in {"cnn2d_cnn": 54.2, "deepsphere_cnn": 62.1, "deepsphere_fcn": 83.8,
                                 "deepsphere_fcn_k8": 87.1, "deepsphere_fcn_k20": 91.3,
                                 "deepsphere_fcn_k40": 92.5}.items()]


# --------------------------------------------------------------------------- table
def acc(rows) -> str:
    """``'91.9 (n=1)'`` / ``'91.9 ± 1.2 (n=3)'`` of ``test_acc`` in %, or ``'–'``."""
    return T.fmt_mean_std(T.floats(rows, "test_acc"), unit="")


def at(view, model, order, noise) -> float | None:
    """The mean test accuracy (fraction) of a grid cell, None where it has not run."""
    m, _, n = T.mean_std_n(T.floats(view.select(model=model, setting_order=order, setting_noise=noise), "test_acc"))
    return m if n else None


def orders(view) -> list[int]:
    return sorted({int(float(o)) for o in view.values("setting_order") if float(o)})


def noises(view) -> list[float]:
    """The noise levels run that the published figure has."""
    return sorted({float(n) for n in view.values("setting_noise")} & set(NOISES))


def order_tables(view) -> str:
    """One table per order: "published / reproduced" per noise level."""
    def pub_rep(o, nz):
        def cell(rows, m, view):
            pub = published_acc(m, o, nz)
            pub = "–" if pub is None else f"{pub:g}"
            return f"{pub} / {acc(T.select(rows, setting_noise=nz))}"
        return cell
    here, paper = int(view.cfg["data"]["nside"]), int(view.paper_cfg()["data"]["nside"])
    return "".join(T.Table(
        [T.Col("method", T.label(LABELS))] + [T.Col(f"noise {nz:g}", pub_rep(o, nz)) for nz in noises(view)],
        order=METHODS, where={"setting_order": o}, after="\n",
        heading=f"## Order o = {o} ({(here // o) ** 2:,} pixels per sample here; paper {(paper // o) ** 2:,})\n\n",
        intro="Test accuracy in %, published / reproduced mean ± std (n runs).\n\n").render(view)
        for o in orders(view))


def verdict(view) -> str:
    if not orders(view) or not noises(view):
        return ""
    o, nz = max(orders(view)), max(noises(view))
    got = {m: v for m in METHODS if (v := at(view, m, o, nz)) is not None}
    if "svm_hist" not in got and "svm_psd" not in got:
        return ""
    ds = [v for m, v in got.items() if m.startswith("deepsphere")]
    svm = [v for m, v in got.items() if m.startswith("svm")]
    line = f"o = {o}, noise {nz:g}: " + "; ".join(f"{LABELS[m]} {v * 100:.1f} %" for m, v in got.items()) + "."
    if ds and svm:
        line += (" Both DeepSphere variants beat both SVMs, as in the paper." if min(ds) > max(svm) else
                 " The better DeepSphere variant beats both SVMs; the other does not." if max(ds) > max(svm)
                 else " DeepSphere does **not** beat the best SVM here (see notes).")
    return f"## Hardest setting run\n\n{line}\n\n"


def plot(view):
    plt, ords, nz = T.pyplot(), orders(view), noises(view)
    colors = dict(zip(METHODS, ["#1f4e99", "#4f8fd6", "#c0392b", "#e67e73", "#2e8b57", "#8e6c9e"]))
    fig, axes = plt.subplots(1, len(ords), figsize=(4.2 * len(ords), 3.6), squeeze=False)
    for ax, o in zip(axes[0], ords):
        for mdl in METHODS:
            ys = [at(view, mdl, o, n) for n in nz]
            if all(y is None for y in ys):
                continue
            ax.plot(nz, [np.nan if y is None else y * 100 for y in ys], "o-", c=colors[mdl], label=LABELS[mdl],
                    lw=1.6, ms=4)
            if published_acc(mdl, o, NOISES[0]) is not None:
                ax.plot(NOISES, [published_acc(mdl, o, n) for n in NOISES], "--", c=colors[mdl], lw=0.9, alpha=0.7)
        ax.set(title=f"order {o}", xlabel="noise level", ylim=(40, 102))
        ax.title.set_fontsize(9)
        ax.axhline(50, ls=":", c="k", lw=0.7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"solid: reproduced ({view.preset} preset, {', '.join(view.data_sources)}); dashed: published",
                 fontsize=8)
    fig.tight_layout()
    return fig


def stand_in_note(view) -> str:
    d = view.cfg["data"]
    maps = C.build(StandInMaps, d.get("stand_in_maps"), "data.stand_in_maps")
    return stand_in_description(int(d["nside"]), maps)


def trunk_note(view) -> str:
    nside, layers = int(view.cfg["data"]["nside"]), len(view.model_cfg("deepsphere_fcn")["channels"])
    last = nside >> layers
    per_order = ", ".join(f"{(last // o) ** 2} at o = {o}" for o in sorted(C.get(view.cfg, "grid.product.order"))
                          if last >= o)
    single = any(last == o for o in C.get(view.cfg, "grid.product.order"))
    return (f"DeepSphere trunk here: {layers} pooled layers, Nside {nside} → {last}, so the last graph has "
            f"(Nside/o)² vertices per sample: {per_order} (paper: Nside 1024 → 32, 1,024 / 256 / 64 vertices "
            f"at o = 1 / 2 / 4)" + ("; with a single vertex the FCN's average pooling is trivial and the two "
                                    "heads differ only by the last layer's form." if single else "."))


REPORT = T.Report(
    title="Cosmological model discrimination on partial HEALPix maps",
    stand_in=T.StandIn(STAND_IN_SUMMARY, "the N-body convergence maps of the paper",
                       "the published column is the paper's result on its data, shown for orientation", stand_in_note),
    sections=[
        T.Text(order_tables),
        T.Table(rows="model", order=list(LABELS), where={"setting_order": 1, "setting_noise": 3.5}, after="\n",
                heading="## o = 1, noise 3.5 (Defferrard et al. ICLR 2020, tab:cosmo)\n\n", columns=[
                    T.Col("method", T.label(LABELS)),
                    T.Col("published acc %", T.published(PUBLISHED_ICLR, "acc %", lambda a, p: f"{a:g}")),
                    T.Col("reproduced acc %", lambda rows, k, v: acc(rows))]),
        T.Table(rows="model", order=list(LABELS), after="\n", heading="## Parameters and wall time\n\n",
                intro="Trainable parameters (they depend on the order for the CNN heads; for the SVMs: features "
                      "+ 1) and wall time per run on this hardware.\n\n", columns=[
                    T.Col("method", T.label(LABELS)),
                    T.Col("params", lambda rows, k, v: ", ".join(
                        f"{p:,}" for p in sorted({int(p) for p in T.floats(rows, "params")})) or "–"),
                    T.Col("mean wall s / run", T.mean_of("wall_s")),
                    T.Col("total min", T.total("wall_s", scale=1 / 60))]),
        T.Text(verdict),
        T.Figure("cosmology.png", plot, "accuracy vs noise per order, published dashed, reproduced solid",
                 before="", dpi=110, when=lambda v: bool(orders(v)) and len(noises(v)) > 1)],
    notes=[
        "Partial maps are the 12·o² contiguous NEST blocks of each map; all blocks share the graph of block 0 "
        "(cosmo-tf1 does the same). Samples are divided by the training std; Gaussian noise of std = level is "
        "redrawn for every training batch and fixed (seeded) for validation and test. Validation = 20 % of "
        "the training samples; the final model is tested.",
        "SVMs: sklearn LinearSVC on standardised features, C from logspace(−2, 2, 9) chosen on validation; the "
        "training set grows by one noise realisation at a time until validation accuracy stops improving "
        "(column `svm_noise_realizations` in the CSV). PSD = ℓ(ℓ+1)·anafast of the partial map on an otherwise "
        "UNSEEN sphere; histogram = 100 bins over the noiseless training range.",
        "2D ConvNets read the partial map as an image through NEST bit de-interleaving (face coordinates), 5×5 "
        "convolutions with stride 2 and 'same' padding; L2 weight reg·Σ½‖W‖²/n_weights with reg = 3 as the "
        "published results files (reg3).",
        "DeepSphere uses the ASCOM ('V1') graph: 8 HEALPix neighbours, w = exp(−d²/(2·mean d²)), normalised "
        "Laplacian rescaled by its largest eigenvalue, Chebyshev K = 5, max pooling. The ICLR rows use batch 8 "
        "in the paper; here the ASCOM batch 16·o².",
        trunk_note],
    headline=T.Headline("test acc, DeepSphere FCN (o = 4, noise 2)", "86.8 %", lambda v: T.fmt_mean_std(
        T.floats(v.select(model="deepsphere_fcn", setting_order=4, setting_noise=2), "test_acc"))))
