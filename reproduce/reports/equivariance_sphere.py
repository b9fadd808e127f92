"""The table and figure of ``reproduce/equivariance_sphere.py`` (DeepSphere graphs' equivariance
error against the spherical-harmonic degree), declared for :func:`reproduce.runner.tables.render`.

Rows are shown in the order of the config: Nside, then degree, then the graphs as ``models:``
lists them, whatever order the cells finished in.
"""
from __future__ import annotations

import numpy as np

from reproduce.runner import tables as T

NAME = "equivariance_sphere"

#: values stored in the ICLR figure's pickles: deepsphere/paper-deepsphere-iclr2020
#: ``figures/equivariance_error/V* - ||Lf||.pickle``.
PUBLISHED = {
    ("v1", 64): {10: 0.664, 50: 0.334, 100: 0.236, 150: 0.156, 190: 0.151},
    ("knn8", 64): {10: 0.232, 50: 0.066, 100: 0.050, 150: 0.085, 190: 0.102},
    ("knn20", 64): {10: 0.112, 50: 0.0195, 100: 0.0111, 150: 0.028, 190: 0.038},
    ("knn40", 64): {10: 0.067, 50: 0.0080, 100: 0.0030, 150: 0.0068, 190: 0.0111},
    ("v1", 32): {50: 0.238}, ("knn8", 32): {50: 0.053}, ("knn20", 32): {50: 0.014},
    ("knn40", 32): {50: 0.005},
}
LABELS = {"v1": "Perraudin et al. (V1), 8 HEALPix neighbours", "knn8": "k-NN, k = 8",
          "knn20": "k-NN, k = 20", "knn40": "k-NN, k = 40"}
COLORS = {"v1": "tab:green", "knn8": "tab:cyan", "knn20": "tab:red", "knn40": "tab:blue"}



def ordered(view: T.View) -> list[dict]:
    """The rows by Nside, degree, then the graphs in the order of the config's ``models``."""
    order = {m: i for i, m in enumerate(view.cfg.get("models") or {})}
    return sorted(view.rows, key=lambda r: (int(r["nside"]), int(r["degree"]), order.get(r["model"], len(order))))


def _nsides(view: T.View) -> list[int]:
    return sorted({int(r["nside"]) for r in view.rows})


def plot(view: T.View):
    from matplotlib.lines import Line2D

    plt = T.pyplot()
    rows, nsides = ordered(view), _nsides(view)
    markers = dict(zip(nsides, "vxo^s"))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for mid in dict.fromkeys(r["model"] for r in rows):
        for n in nsides:
            sel = T.select(rows, model=mid, nside=n)
            if not sel:
                continue
            ax.loglog([int(r["degree"]) for r in sel], [float(r["equivariance_error"]) for r in sel],
                      "-", marker=markers[n], color=COLORS.get(mid, "k"), ms=5, lw=1.2)
            pub = PUBLISHED.get((mid, n), {})
            if pub:
                ax.loglog(list(pub), list(pub.values()), linestyle="none", marker=markers[n], ms=10,
                          mfc="none", mec=COLORS.get(mid, "k"), mew=1.5)
    ax.set_xlabel(r"spherical harmonic degree $\ell$")
    ax.set_ylabel(r"mean equivariance error $\|RLf - LRf\| / \|Lf\|$")
    ax.grid(True, which="both", alpha=0.3)
    present = [m for m in COLORS if view.select(model=m)]
    ax.add_artist(ax.legend([Line2D([0], [0], color=COLORS[m]) for m in present],
                            [LABELS[m] for m in present], loc="lower left", fontsize=8))
    ax.legend([Line2D([0], [0], color="k", marker=markers[n], linestyle="-") for n in nsides]
              + [Line2D([0], [0], color="k", marker="o", mfc="none", ms=10, linestyle="none")],
              [f"Nside {n}" for n in nsides] + ["published (ICLR pickles)"], loc="upper right", fontsize=8)
    ax.set_title("DeepSphere graphs: equivariance error vs degree (normalised Laplacian)", fontsize=10)
    fig.tight_layout()
    return fig


def per_nside(view: T.View) -> str:
    out = []
    for n in _nsides(view):
        degs = sorted({int(r["degree"]) for r in view.select(nside=n)})
        show = [d for d in degs if d in (10, 50, 100, 150, 190) or (n not in (32, 64) and d % 50 == 0)] or degs
        body = []
        for mid in dict.fromkeys(r["model"] for r in ordered(view)):
            line = [LABELS.get(mid, mid)]
            for d in show:
                sel = view.select(model=mid, nside=n, degree=d)
                pub = PUBLISHED.get((mid, n), {}).get(d)
                rep = f"{float(sel[0]['equivariance_error']):.4f}" if sel else "–"
                line.append(f"{pub:g} / {rep}" if pub is not None else f"– / {rep}")
            body.append(line)
        out += [f"## Nside {n} — published / reproduced (mean ratio)", "",
                T.md_table(["graph"] + [f"ℓ = {d}" for d in show], body)]
    return "\n".join(out) + "\n"


def graphs_and_rows(view: T.View) -> str:
    rows = ordered(view)
    first = {n: min(int(q["degree"]) for q in view.select(nside=n)) for n in _nsides(view)}
    graphs = [[r["model"], r["nside"], r["k"], r["kernel_width_t"], r["kernel_rule"], r["n_vertices"], r["nnz"],
               r["graph_build_s"]] for r in rows if int(r["degree"]) == first[int(r["nside"])]]
    every = [[r["model"], r["nside"], r["degree"], f"{float(r['equivariance_error']):.4g}",
              f"{float(r['equivariance_error_std']):.2g}", f"{float(r['equivariance_error_squared']):.3g}",
              r["published_equivariance_error"] or "–"] for r in rows]
    return "\n".join(["## Graphs", "", T.md_table(["graph", "Nside", "k", "t (w = exp(−d²/4t))", "how t was chosen",
                                                    "vertices", "nnz(W)", "build s"], graphs),
                      "<details><summary>All rows (mean ratio, its std over signals × rotations, mean squared "
                      "ratio, published)</summary>", "",
                      T.md_table(["graph", "Nside", "ℓ", "error", "std", "squared", "published"], every),
                      "</details>", ""])


def published_ratio_note(view: T.View) -> str:
    ratios = {}
    for r in ordered(view):
        if r["published_equivariance_error"] != "":
            ratios.setdefault(r["model"], []).append(
                float(r["published_equivariance_error"]) / float(r["equivariance_error"]))
    if not ratios:
        return ""
    allr = [x for v in ratios.values() for x in v]
    spread = "; ".join(f"{LABELS.get(m, m)}: median {np.median(v):.2f}× (range {min(v):.2f}–{max(v):.2f}, "
                       f"{len(v)} points)" for m, v in ratios.items())
    return ("- **Published / reproduced** at the degrees where the pickles give values: " + spread
            + f". Compare the ordering of the graphs and the shape of the curves; the absolute errors here are "
            f"{'lower' if np.median(allr) > 1 else 'higher'} (median ratio {np.median(allr):.2f}). Arbitrary k-NN "
            "tie-breaking (as in pygsp) does not change them measurably; the harmonic rotation does: with "
            "`data.map2alm_iter=0` (no Jacobi iterations in `map2alm`) the k-NN errors rise at mid degrees while "
            "V1 barely moves, so the notebook's exact rotation settings (healpy version, pixel weights, "
            "iterations) are a likely remaining difference.\n")


REPORT = T.Report(
    title="Equivariance error of DeepSphere graphs vs degree",
    reproduces=lambda v: ("Defferrard et al., ICLR 2020, fig:equivariance_error (DeepSphere slides, \"Desideratum "
                          "1\"): mean ‖R L f − L R f‖ / ‖L f‖ over random degree-ℓ signals f and random rotations "
                          "R, normalised Laplacian, HEALPix Nside " + ", ".join(map(str, _nsides(v))) + "."),
    data_labels={"synthetic": "synthetic by construction (random degree-ℓ harmonics, as in the paper; "
                              "nothing stands in for a dataset)"},
    count_line=lambda v: (f"Wall time: {(sum(T.floats(v.rows, 'wall_s')) + sum(T.floats(_first_rows(v), 'graph_build_s'))) / 60:.1f}"
                          " min (signals, rotations and graph builds)"),
    sections=[T.Figure(f"{NAME}.png", plot, "equivariance error vs degree", before="", dpi=110,
                       after="\n\nFilled markers and lines: this run; hollow markers: published values "
                             "(the ICLR figure's pickles, paper-deepsphere-iclr2020 `figures/equivariance_error/`).\n\n"),
              T.Text(per_nside), T.Text(graphs_and_rows)],
    notes=[published_ratio_note,
           "**Normalisation caveat.** The paper writes the error as E[(‖RLf − LRf‖/‖Lf‖)²]; the notebook that "
           "produced the figure averages the *non-squared* norm, and the figure's pickles are named `‖Lf‖`. The "
           "published column is compared with the mean non-squared ratio (`equivariance_error`); the squared "
           "version is in the CSV (`equivariance_error_squared`) and in the collapsed table.",
           "Rotations act on harmonic coefficients with band limit 3·Nside − 1. `L f` is not band-limited, so part "
           "of the measured error is the aliasing of that rotation, as in the paper; it dominates near ℓ = 3·Nside, "
           "where every curve rises.",
           "Rotation angles are uniform in [0°, 360)³ with healpy's default Euler convention, as in the notebook "
           "(not Haar-uniform rotations). Seeds differ from the notebook's, so individual points differ by the "
           "sampling noise given in the `std` column / √n.",
           "`map2alm` uses 3 iterations without pixel weights (healpy ≥ 1.15 downloads pixel weights; the suite "
           "makes no network requests).",
           "k-NN graphs keep every neighbour tied with the k-th (relative tolerance 1e-9), symmetrised by union; the "
           "published code (pygsp) breaks ties arbitrarily. This changes a few edges per vertex on HEALPix and makes "
           "the graph exactly invariant to 90° rotations about the pole (tests/test_deepsphere_graph.py)."],
    headline=T.Headline("equivariance error, k-NN k = 8, Nside 64, ℓ = 100", "0.050",
                        lambda v: next((f"{float(r['equivariance_error']):.3f}"
                                        for r in v.select(model="knn8", nside=64, degree=100)), "–")))


def _first_rows(view: T.View) -> list[dict]:
    """One row per (graph, Nside): the graph-build time is repeated on every degree's row."""
    return list({(r["model"], r["nside"]): r for r in view.rows}.values())
