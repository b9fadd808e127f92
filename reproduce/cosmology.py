"""Cosmological model discrimination: DeepSphere vs 2D ConvNets and linear SVMs (PSD, histogram).

Reproduces Perraudin, Defferrard, Kacprzak, Sgier 2019, *DeepSphere: efficient spherical CNN with
HEALPix sampling for cosmological applications* (Astron. & Comput. 27:130), figure "result_order{1,2,4}":
test accuracy of six methods on partial convergence maps of order o = 1, 2, 4 at noise levels
0 … 2, and the o = 1, noise 3.5 row of Defferrard et al. ICLR 2020 tab:cosmo.

    python reproduce/cosmology.py --preset smoke   # < 1 min, stand-in at Nside 16
    python reproduce/cosmology.py --preset cpu     # ~20 min on 2 cores, stand-in at Nside 64
    python reproduce/cosmology.py --preset paper --gpus 1 --data-dir <dir with same_psd/, same_psd_testing/>

Without ``--data-dir`` an offline stand-in (two classes of non-Gaussian maps with identical power
spectra, see datamodules/cosmology.py) is written as FITS and read back by the same reader.
Writes results/cosmology.csv (one row per run) and results/cosmology.md (+ cosmology.png).
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from datamodules._common import InputError, is_stand_in
from datamodules.cosmology import (CosmologyDataModule, add_noise, load_data, prepare_samples,
                                   stand_in_params, write_stand_in)
from reproduce import _config
from reproduce import _tables as T
from reproduce._runner import Benchmark, main

METHODS = ["deepsphere_fcn", "deepsphere_cnn", "cnn2d_fcn", "cnn2d_cnn", "svm_hist", "svm_psd"]
LABELS = {"deepsphere_fcn": "DeepSphere FCN", "deepsphere_cnn": "DeepSphere CNN",
          "cnn2d_fcn": "2D ConvNet FCN", "cnn2d_cnn": "2D ConvNet CNN",
          "svm_hist": "linear SVM, histogram", "svm_psd": "linear SVM, PSD",
          "deepsphere_fcn_k8": "DeepSphere FCN, V2 graph k = 8",
          "deepsphere_fcn_k20": "DeepSphere FCN, V2 graph k = 20",
          "deepsphere_fcn_k40": "DeepSphere FCN, V2 graph k = 40"}
NOISES = [0.0, 0.5, 1.0, 1.5, 2.0]
#: published test accuracy (%) per (model, order) at noise 0, 0.5, 1, 1.5, 2: deepsphere-cosmo-tf1
#: results/**/*_results_list_sigma3*.npz = Perraudin et al. 2019 fig. result_order{1,2,4}
#: (shared/reference/anchors-sphere.md §3)
PUBLISHED = {
    ("deepsphere_fcn", 1): [100, 100, 100, 100, 100], ("deepsphere_fcn", 2): [100, 100, 100, 99.6, 97.9],
    ("deepsphere_fcn", 4): [100, 99.8, 97.7, 92.5, 86.8],
    ("deepsphere_cnn", 1): [100, 100, 100, 99.6, 100], ("deepsphere_cnn", 2): [100, 100, 100, 99.1, 98.1],
    ("deepsphere_cnn", 4): [100, 99.7, 97.2, 91.2, 83.6],
    ("cnn2d_fcn", 1): [100, 100, 100, 100, 98.8], ("cnn2d_fcn", 2): [100, 99.9, 99.3, 97.9, 89.8],
    ("cnn2d_fcn", 4): [99.3, 98.2, 93.4, 87.2, 80.1],
    ("cnn2d_cnn", 1): [100, 100, 90.8, 55.4, 50.8], ("cnn2d_cnn", 2): [100, 100, 96.6, 93.3, 64.3],
    ("cnn2d_cnn", 4): [99.4, 98.0, 92.3, 79.9, 73.9],
    ("svm_hist", 1): [100, 100, 100, 99.6, 99.2], ("svm_hist", 2): [99.0, 99.3, 98.1, 95.0, 89.5],
    ("svm_hist", 4): [90.4, 89.1, 86.0, 80.1, 74.3],
    ("svm_psd", 1): [100, 98.3, 92.9, 88.8, 77.5], ("svm_psd", 2): [95.4, 90.2, 86.8, 81.7, 75.3],
    ("svm_psd", 4): [86.4, 77.8, 71.4, 68.0, 63.7],
}
CITE = "Perraudin et al. 2019, fig. result_order{o} (cosmo-tf1 results npz)"
#: o = 1, noise 3.5: Defferrard et al. ICLR 2020 tab:cosmo (accuracy %, inference ms per sample)
PUBLISHED_ICLR = {"cnn2d_cnn": 54.2, "deepsphere_cnn": 62.1, "deepsphere_fcn": 83.8,
                  "deepsphere_fcn_k8": 87.1, "deepsphere_fcn_k20": 91.3, "deepsphere_fcn_k40": 92.5}


class Cosmology(Benchmark):
    name = "cosmology"

    # -- grid: the product model x order x noise, plus explicit rows -------------------------------
    def grid(self, cfg):
        out = []
        prod = _config.get(cfg, "grid.product", None) or {}
        if prod:
            for key in ("model", "order", "noise"):
                if not isinstance(prod.get(key), list) or not prod[key]:
                    raise InputError(f"cosmology: grid.product.{key} must be a non-empty list")
            for model, order, noise in itertools.product(prod["model"], prod["order"], prod["noise"]):
                out.append((model, {"order": int(order), "noise": float(noise)}, {}))
        return out + super().grid({"grid": {"rows": _config.get(cfg, "grid.rows", None) or []}})

    # -- data ----------------------------------------------------------------------------------
    def prepare_data(self, ctx, data_dir, generate):
        d = ctx.cfg["data"]
        if generate:
            si = dict(d["stand_in"])
            want = {"nside": int(d["nside"]), "train_maps_per_class": int(si["train_maps_per_class"]),
                    "test_maps_per_class": int(si["test_maps_per_class"]),
                    "skew": [float(s) for s in si["skew"]], "ell0": si["ell0"],
                    "beam_pixels": si["beam_pixels"], "paired": bool(si["paired"]),
                    "seed": int(si["seed"]), "tokens": list(d["fits_class_tokens"])}
            have = stand_in_params(data_dir) if is_stand_in(data_dir) else None
            if have != want:
                if Path(data_dir).exists() and any(Path(data_dir).iterdir()) and not is_stand_in(data_dir):
                    raise InputError(f"cosmology: --stand-in would write into {data_dir}, which holds "
                                     f"other files; choose an empty folder")
                write_stand_in(data_dir, nside=want["nside"],
                               train_maps_per_class=want["train_maps_per_class"],
                               test_maps_per_class=want["test_maps_per_class"], skew=want["skew"],
                               ell0=want["ell0"], beam_pixels=want["beam_pixels"],
                               paired=want["paired"], seed=want["seed"], tokens=want["tokens"])
        # validate (and cache) both splits now, before anything is trained or written
        load_data(data_dir, int(d["nside"]), d["smoothing_arcmin"], d["fits_class_tokens"])

    def build_datamodule(self, ctx, run):
        d = run.cfg["data"]
        o = int(run.setting["order"])
        return CosmologyDataModule(ctx.data_dir, nside=d["nside"], order=o, noise=run.setting["noise"],
                                   batch_size=int(d["batch_per_order2"]) * o * o,
                                   test_batch_size=d["test_batch_size"], val_fraction=d["val_fraction"],
                                   smoothing_arcmin=d["smoothing_arcmin"],
                                   fits_class_tokens=d["fits_class_tokens"], num_classes=d["num_classes"])

    # -- models --------------------------------------------------------------------------------
    def build_backbone(self, ctx, run):
        m = dict(run.cfg["model"])
        kind = m.pop("kind")
        nside, order = int(run.cfg["data"]["nside"]), int(run.setting["order"])
        n = int(run.cfg["data"]["num_classes"])
        head = m.pop("head")
        if kind == "deepsphere":
            from models.deepsphere import DeepSphereCNN, DeepSphereFCN
            cls = DeepSphereFCN if head == "fcn" else DeepSphereCNN
            try:
                return cls(nside=nside, in_channels=1, num_classes=n, order=order, **m)
            except ValueError as e:  # e.g. more poolings than the partial map allows
                raise InputError(f"cosmology: model {run.model} at order {order}: {e}") from None
        if kind == "cnn2d":
            from models.baselines import FlatPatchConvNet
            m.pop("l2_reg", None)
            return FlatPatchConvNet(side=nside // order, head=head, num_classes=n, **m)
        raise InputError(f"cosmology: model {run.model} has unknown kind '{kind}'")

    def build_task(self, ctx, run, backbone):
        from models.tasks import Classify
        optim = dict(run.cfg.get("optim") or {})
        reg = float(run.cfg["model"].get("l2_reg", 0) or 0)
        if reg:  # cosmo-tf1 cnn2d.loss: reg · Σ ½‖W‖² / n_weights  ==  l2 · Σ ‖W‖² with l2 = reg / (2n)
            optim["l2"] = reg / (2 * backbone.num_weights())
        return Classify(backbone, num_classes=int(run.cfg["data"]["num_classes"]), optim=optim)

    def custom_run(self, ctx, run, run_dir):
        m = run.cfg["model"]
        if m.get("kind") != "svm":
            return None
        return svm_run(ctx.data_dir, run.cfg["data"], m, int(run.setting["order"]),
                       float(run.setting["noise"]), run.seed)

    # -- table ---------------------------------------------------------------------------------
    def write_table(self, ctx, rows):
        write_table(ctx, rows)


def svm_run(data_dir, d: dict, m: dict, order: int, noise: float, seed: int) -> dict:
    """Linear SVM on PSD or histogram features (ASCOM §Baselines; cosmo-tf1 ``data_preprossing``).

    The training features are computed on noisy copies of the training samples; new noise
    realisations are added (one at a time, up to ``max_noise_realizations``) while the validation
    accuracy of the best ``C`` still improves by at least ``tol``. Validation and test noise are
    the fixed draws of the datamodule.
    """
    from models.baselines.svm import fit_linear_svm, histogram_features, psd_features

    nside = int(d["nside"])
    data = load_data(data_dir, nside, d["smoothing_arcmin"], d["fits_class_tokens"])
    s = prepare_samples(data, order, noise, float(d["val_fraction"]))
    if m["features"] == "psd":
        it = int(m.get("psd_iter", 3))

        def feats(x):
            return psd_features(x, nside, order, iter=it)
    elif m["features"] == "hist":
        lo, hi = float(s["x_train"].min()), float(s["x_train"].max())
        bins = int(m.get("bins", 100))

        def feats(x):
            return histogram_features(x, lo, hi, bins)
    else:
        raise InputError(f"cosmology: unknown SVM features '{m['features']}' (psd, hist)")
    rng = np.random.default_rng([int(seed), 7, order, int(round(noise * 100))])
    f_val, f_test = feats(s["x_val"]), feats(s["x_test"])
    Cs = [float(c) for c in m.get("Cs", np.logspace(-2, 2, 9))]
    fs, ys, history = [], [], []
    best = None
    rounds = 1 if noise == 0 else max(1, int(m.get("max_noise_realizations", 1)))
    for _ in range(rounds):
        fs.append(feats(add_noise(s["x_train"], noise, rng)))
        ys.append(s["y_train"])
        predict, info = fit_linear_svm(np.concatenate(fs), np.concatenate(ys), f_val, s["y_val"], Cs)
        history.append(info["val_acc"])
        if best is None or info["val_acc"] > best[1]["val_acc"]:
            best = (predict, info, len(fs))
        if len(history) > 1 and history[-1] < history[-2] + float(m.get("tol", 0.005)):
            break
    predict, info, nreal = best
    acc = float((predict(f_test) == s["y_test"]).mean())
    return {"test_acc": round(acc, 6), "val_acc": round(info["val_acc"], 6),
            "svm_train_acc": round(info["train_acc"], 6), "svm_C": info["C"],
            "svm_noise_realizations": nreal, "svm_val_history": " ".join(f"{h:.4f}" for h in history),
            "params": int(f_val.shape[1]) + 1, "n_train": len(s["y_train"]) * nreal,
            "n_test": len(s["y_test"])}


# --------------------------------------------------------------------------- table
def _cell(rows, model, order, noise) -> tuple[str, float | None]:
    rs = [r for r in rows if r.get("model") == model and _num(r.get("setting_order")) == order
          and _num(r.get("setting_noise")) == noise]
    accs = T.floats(rs, "test_acc")
    if not accs:
        return "–", None
    mean, sd, n = T.mean_std(accs)
    txt = f"{mean * 100:.1f}" + (f" ± {sd * 100:.1f}" if n > 1 else "") + f" (n={n})"
    return txt, mean


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def write_table(ctx, rows) -> None:
    orders = sorted({int(_num(r["setting_order"])) for r in rows if _num(r.get("setting_order"))})
    noises = sorted({_num(r["setting_noise"]) for r in rows if _num(r.get("setting_noise")) is not None})
    grid_noises = [n for n in noises if n in NOISES]
    src = sorted({r.get("data_source", "") for r in rows} - {""}) or [ctx.data_source]
    stand_in = any(s != "real" for s in src)
    text = T.header(
        "Cosmological model discrimination on partial HEALPix maps",
        "Perraudin et al. 2019 (Astron. & Comput. 27:130), fig. result_order{1,2,4}: test accuracy of "
        "DeepSphere (FCN, CNN), 2D ConvNets on flattened patches (FCN, CNN) and linear SVMs on histograms "
        "and power spectral densities, per partial-map order o and noise level; plus Defferrard et al. "
        "ICLR 2020 tab:cosmo (o = 1, noise 3.5).", ctx, rows)
    if stand_in:
        text += ("**Data: offline stand-in** (two classes of lognormal maps with identical power spectra, "
                 "see notes), not the N-body convergence maps of the paper: the published column is the "
                 "paper's result on its data, shown for orientation, not a like-for-like target.\n\n")
    for o in orders:
        text += f"## Order o = {o} ({(int(ctx.cfg['data']['nside']) // o) ** 2:,} pixels per sample here; " \
                f"paper {(1024 // o) ** 2:,})\n\n"
        text += "Test accuracy in %, published / reproduced mean ± std (n runs).\n\n"
        body = []
        for mdl in METHODS:
            if not any(r.get("model") == mdl for r in rows):
                continue
            cells = []
            for nz in grid_noises:
                pub = PUBLISHED.get((mdl, o))
                p = f"{pub[NOISES.index(nz)]:g}" if pub else "–"
                cells.append(f"{p} / {_cell(rows, mdl, o, nz)[0]}")
            body.append([LABELS[mdl]] + cells)
        text += T.md_table(["method"] + [f"noise {n:g}" for n in grid_noises], body) + "\n"
    iclr = [r for r in rows if _num(r.get("setting_noise")) == 3.5]
    if iclr:
        text += "## o = 1, noise 3.5 (Defferrard et al. ICLR 2020, tab:cosmo)\n\n"
        body = [[LABELS.get(mdl, mdl), f"{PUBLISHED_ICLR.get(mdl, float('nan')):g}", _cell(rows, mdl, 1, 3.5)[0]]
                for mdl in sorted({r["model"] for r in iclr}, key=lambda m: list(LABELS).index(m)
                                  if m in LABELS else 99)]
        text += T.md_table(["method", "published acc %", "reproduced acc %"], body) + "\n"
    # parameters and wall time
    body = []
    for mdl in [m for m in LABELS if any(r.get("model") == m for r in rows)]:
        rs = T.select(rows, model=mdl)
        params = sorted({int(p) for p in T.floats(rs, "params")})
        walls = T.floats(rs, "wall_s")
        ptxt = ", ".join(f"{p:,}" for p in params) if params else "–"
        body.append([LABELS[mdl], ptxt, f"{np.mean(walls):.1f}" if walls else "–",
                     f"{np.sum(walls) / 60:.1f}" if walls else "–"])
    text += "## Parameters and wall time\n\n"
    text += ("Trainable parameters (they depend on the order for the CNN heads; for the SVMs: features + 1) "
             "and wall time per run on this hardware.\n\n")
    text += T.md_table(["method", "params", "mean wall s / run", "total min"], body) + "\n"
    verdict = _verdict(rows, orders, grid_noises)
    if verdict:
        text += "## Hardest setting run\n\n" + verdict + "\n\n"
    if orders and grid_noises and len(grid_noises) > 1:
        _plot(ctx, rows, orders, grid_noises)
        text += "![accuracy vs noise per order, published dashed, reproduced solid](cosmology.png)\n\n"
    text += _notes(ctx, stand_in)
    T.write_md(ctx.results_dir / "cosmology.md", text)


def _verdict(rows, orders, noises) -> str:
    if not orders or not noises:
        return ""
    o, nz = max(orders), max(noises)
    got = {m: _cell(rows, m, o, nz)[1] for m in METHODS}
    if got.get("svm_hist") is None and got.get("svm_psd") is None:
        return ""
    parts = [f"{LABELS[m]} {v * 100:.1f} %" for m, v in got.items() if v is not None]
    ds = [v for m, v in got.items() if m.startswith("deepsphere") and v is not None]
    svm = [v for m, v in got.items() if m.startswith("svm") and v is not None]
    line = f"o = {o}, noise {nz:g}: " + "; ".join(parts) + "."
    if ds and svm:
        if min(ds) > max(svm):
            line += " Both DeepSphere variants beat both SVMs, as in the paper."
        elif max(ds) > max(svm):
            line += " The better DeepSphere variant beats both SVMs; the other does not."
        else:
            line += " DeepSphere does **not** beat the best SVM here (see notes)."
    return line


def _plot(ctx, rows, orders, noises) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(METHODS, ["#1f4e99", "#4f8fd6", "#c0392b", "#e67e73", "#2e8b57", "#8e6c9e"]))
    fig, axes = plt.subplots(1, len(orders), figsize=(4.2 * len(orders), 3.6), squeeze=False)
    for ax, o in zip(axes[0], orders):
        for mdl in METHODS:
            ys = [_cell(rows, mdl, o, nz)[1] for nz in noises]
            if all(y is None for y in ys):
                continue
            ax.plot(noises, [np.nan if y is None else y * 100 for y in ys], "o-", c=colors[mdl],
                    label=LABELS[mdl], lw=1.6, ms=4)
            pub = PUBLISHED.get((mdl, o))
            if pub:
                ax.plot(NOISES, pub, "--", c=colors[mdl], lw=0.9, alpha=0.7)
        ax.set_title(f"order {o}", fontsize=9)
        ax.set_xlabel("noise level")
        ax.set_ylim(40, 102)
        ax.axhline(50, ls=":", c="k", lw=0.7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"solid: reproduced ({ctx.preset} preset, {ctx.data_source}); dashed: published",
                 fontsize=8)
    fig.tight_layout()
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.results_dir / "cosmology.png", dpi=110)
    plt.close(fig)


def _notes(ctx, stand_in: bool) -> str:
    cfg = ctx.cfg
    paper = _config.load_preset("cosmology", "paper")
    d, pd = cfg["data"], paper["data"]
    si = d["stand_in"]
    lines = ["## Notes", ""]
    if ctx.preset != "paper":
        red = []
        if d["nside"] != pd["nside"]:
            red.append(f"Nside {pd['nside']} → {d['nside']} (pixels per sample ÷{(pd['nside'] // d['nside']) ** 2})")
        if stand_in and (si["train_maps_per_class"], si["test_maps_per_class"]) != (
                pd["stand_in"]["train_maps_per_class"], pd["stand_in"]["test_maps_per_class"]):
            red.append(f"maps per class {pd['stand_in']['train_maps_per_class']} train / "
                       f"{pd['stand_in']['test_maps_per_class']} test → {si['train_maps_per_class']} / "
                       f"{si['test_maps_per_class']}")
        gp, g = paper["grid"]["product"], cfg["grid"]["product"]
        for key in ("order", "noise"):
            if g[key] != gp[key]:
                red.append(f"{key} {gp[key]} → {g[key]}")
        if not cfg["grid"].get("rows") and paper["grid"].get("rows"):
            red.append("no o = 1, noise 3.5 (ICLR tab:cosmo) rows")
        if cfg["grid"]["runs"] != paper["grid"]["runs"]:
            red.append(f"runs per point {paper['grid']['runs']} → {cfg['grid']['runs']}")
        te, pte = cfg["trainer"]["max_epochs"], paper["trainer"]["max_epochs"]
        if te != pte:
            red.append(f"epochs {pte} → {te}")
        if cfg["optim"] != paper["optim"]:
            red.append(f"optimiser lr {paper['optim']['lr']:g}·{paper['optim']['schedule'].get('gamma', 1):g}^step → "
                       f"{cfg['optim']['lr']:g}·{cfg['optim']['schedule'].get('gamma', 1):g}^step")
        for mdl in METHODS:
            a, b = paper["models"][mdl], cfg["models"][mdl]
            diff = [f"{k} {a.get(k)} → {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            if diff:
                red.append(f"{mdl}: " + ", ".join(diff))
        lines.append(f"- This `{ctx.preset}` preset reduces the paper protocol: " + "; ".join(red) + ".")
    if stand_in:
        lines.append(
            f"- Stand-in data (datamodules/cosmology.py::write_stand_in): per map, a Gaussian field with "
            f"C_ℓ ∝ (ℓ + {si['ell0']})⁻²·b_ℓ² (Gaussian beam σ = {si['beam_pixels']} pixel) is made lognormal, "
            f"(exp(λg) − mean)/λ with λ = {si['skew'][0]} (class 1) / {si['skew'][1]} (class 2), and its a_ℓm "
            f"are rescaled so that every map's full-sky spectrum equals the same C_ℓ. Power spectra "
            f"therefore carry no class information (the PSD SVM should sit near 50 %), unlike the paper's "
            f"maps whose spectra differ by ~5 % at ℓ > 1000; the classes differ in their one-point "
            f"distribution and structure shapes. Written as NESTED FITS and read by the same reader as real data.")
    lines.append("- Partial maps are the 12·o² contiguous NEST blocks of each map; all blocks share the graph "
                 "of block 0 (cosmo-tf1 does the same). Samples are divided by the training std; Gaussian "
                 "noise of std = level is redrawn for every training batch and fixed (seeded) for "
                 "validation and test. Validation = 20 % of the training samples; the final model is tested.")
    lines.append("- SVMs: sklearn LinearSVC on standardised features, C from logspace(−2, 2, 9) chosen on "
                 "validation; the training set grows by one noise realisation at a time until validation "
                 "accuracy stops improving (column `svm_noise_realizations` in the CSV). PSD = ℓ(ℓ+1)·anafast "
                 "of the partial map on an otherwise UNSEEN sphere; histogram = 100 bins over the noiseless "
                 "training range.")
    lines.append("- 2D ConvNets read the partial map as an image through NEST bit de-interleaving (face "
                 "coordinates), 5×5 convolutions with stride 2 and 'same' padding; L2 weight "
                 "reg·Σ½‖W‖²/n_weights with reg = 3 as the published results files (reg3).")
    lines.append("- DeepSphere uses the ASCOM ('V1') graph: 8 HEALPix neighbours, w = exp(−d²/(2·mean d²)), "
                 "normalised Laplacian rescaled by its largest eigenvalue, Chebyshev K = 5, max pooling. "
                 "The ICLR rows use batch 8 in the paper; here the ASCOM batch 16·o².")
    n_layers = len(cfg["models"]["deepsphere_fcn"]["channels"])
    last = int(d["nside"]) >> n_layers
    per_order = ", ".join(f"{(last // o) ** 2} at o = {o}" for o in sorted(cfg["grid"]["product"]["order"])
                          if last >= o)
    lines.append(f"- DeepSphere trunk here: {n_layers} pooled layers, Nside {d['nside']} → {last}, so the last "
                 f"graph has (Nside/o)² vertices per sample: {per_order} (paper: Nside 1024 → 32, 1,024 / 256 / 64 "
                 f"vertices at o = 1 / 2 / 4); with a single vertex the FCN's average pooling is trivial and "
                 f"the two heads differ only by the last layer's form.")
    return "\n".join(lines) + "\n"


BENCH = Cosmology()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
