"""Equivariance error of sphere-graph Laplacians against the spherical-harmonic degree.

Reproduces: Defferrard, Milani, Gusset, Perraudin, "DeepSphere: a graph-based spherical CNN",
ICLR 2020, fig:equivariance_error (the DeepSphere slides' "Desideratum 1" plot): the mean of
``‖R L f − L R f‖ / ‖L f‖`` over random degree-ℓ signals ``f`` and random rotations ``R``, for
the HEALPix k-NN graphs (k = 8, 20, 40, optimal kernel width) and the Perraudin et al. 2019
("V1") graph, normalised Laplacian, at Nside 32, 64 (and 128 in the ``paper`` preset).

    python reproduce/equivariance_sphere.py --preset cpu      # Nside 32, 64: ~3 min, 2 cores
    python reproduce/equivariance_sphere.py --preset paper    # + Nside 128: ~8 min
    python reproduce/equivariance_sphere.py --preset smoke    # seconds, writes results/smoke/

Protocol (ICLR ``HEALPix_equivariance_error.ipynb``): per degree ℓ (``step, 2·step, … < 3·Nside``)
draw ``signals`` maps whose harmonic coefficients are i.i.d. Gaussian at degree ℓ only (RING,
``healpy.alm2map``), reorder to NEST; per map draw ``rotations`` rotations with three angles
uniform in [0°, 360°) (``healpy.Rotator`` default Euler convention, as the notebook). A map is
rotated on its harmonic coefficients: NEST → RING, ``map2alm`` (``lmax = 3·Nside − 1``, 3
iterations, no pixel weights), ``Rotator.rotate_alm``, ``alm2map``, RING → NEST. The same
rotation routine is applied to ``f`` and to ``L f`` (the maths: ``models/deepsphere/equivariance.py``,
the ratio is ``models.geometry.relative_error``'s). Each (graph, Nside, ℓ) row reports the
mean ratio (``equivariance_error``, the normalisation of the figure's pickles, named
``‖Lf‖``) and the mean squared ratio (``equivariance_error_squared``, the paper's formula).

Options: ``--preset {smoke,cpu,paper}``, ``--results-dir DIR``, and ``key.sub=value`` config
overrides (e.g. ``data.nsides=[32]``). Bad input prints one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import os
import shlex
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from datamodules._common import InputError, atomic_write_text
from models.deepsphere.equivariance import equivariance_ratios, graph_laplacian
from reproduce import _config
from reproduce import _tables as T
from reproduce._runner import CSV_FIRST, REPO_ROOT, code_version

NAME = "equivariance_sphere"

#: anchors-sphere.md §5: values stored in the ICLR figure's pickles ("V* - ||Lf||.pickle").
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


# ------------------------------------------------------------------------------- degrees
# (rotate_nest, degree_signal, graph_laplacian and the error ratios are the library's,
# models/deepsphere/equivariance.py)
def degrees_for(nside: int, step: int) -> list[int]:
    return list(range(step, 3 * nside, step))


# ------------------------------------------------------------------------------- config
def check_config(cfg: dict) -> dict:
    d = _config.get(cfg, "data")
    try:
        nsides = [int(n) for n in d["nsides"]]
        steps = {int(k): int(v) for k, v in d["degree_step"].items()}
        signals, rotations = int(d["signals"]), int(d["rotations"])
        seed, iters = int(d["seed"]), int(d.get("map2alm_iter", 3))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{NAME}: bad data section in config ({e})") from None
    for n in nsides:
        if n < 2 or n & (n - 1):
            raise InputError(f"{NAME}: data.nsides: {n} is not a power of 2 >= 2")
        if n not in steps or steps[n] < 1:
            raise InputError(f"{NAME}: data.degree_step has no positive step for Nside {n}")
    if signals < 1 or rotations < 1:
        raise InputError(f"{NAME}: data.signals and data.rotations must be >= 1")
    if d.get("laplacian", "normalized") not in ("normalized", "combinatorial"):
        raise InputError(f"{NAME}: data.laplacian must be normalized or combinatorial")
    models = cfg.get("models") or {}
    if not models:
        raise InputError(f"{NAME}: no graphs under 'models' in the config")
    for mid, spec in models.items():
        if not isinstance(spec, dict) or spec.get("graph", "knn") not in ("knn", "v1") or \
                (spec.get("graph", "knn") == "knn" and "k" not in spec):
            raise InputError(f"{NAME}: models.{mid} must be {{graph: v1}} or {{graph: knn, k: K}}")
    return dict(nsides=nsides, steps=steps, signals=signals, rotations=rotations, seed=seed,
                iters=iters, laplacian=d.get("laplacian", "normalized"), models=models)


# ------------------------------------------------------------------------------- measure
def measure(p: dict, log=print) -> list[dict]:
    """One row per (graph, Nside, degree)."""
    rows = []
    for nside in p["nsides"]:
        t0 = time.perf_counter()
        graphs = {}
        for mid, spec in p["models"].items():
            tg = time.perf_counter()
            L, g = graph_laplacian(spec, nside, p["laplacian"])
            graphs[mid] = (L, g, time.perf_counter() - tg)
        rng = np.random.default_rng([p["seed"], nside])
        for degree in degrees_for(nside, p["steps"][nside]):
            td = time.perf_counter()
            ratios = equivariance_ratios({mid: L for mid, (L, _, _) in graphs.items()}, nside, degree,
                                         p["signals"], p["rotations"], rng, iters=p["iters"])
            per = (time.perf_counter() - td) / len(graphs)
            for mid, r in ratios.items():
                L, g, build_s = graphs[mid]
                r = np.asarray(r)
                pub = PUBLISHED.get((mid, nside), {}).get(degree, "")
                rows.append({
                    "model": mid, "setting": f"nside={nside},degree={degree}", "nside": nside,
                    "degree": degree, "k": g.k, "kernel_width_t": f"{g.t:.6g}",
                    "kernel_rule": g.kernel_rule, "laplacian": p["laplacian"],
                    "n_vertices": g.n, "nnz": g.W.nnz, "seed": p["seed"],
                    "n_signals": p["signals"], "n_rotations": p["rotations"],
                    "equivariance_error": float(r.mean()),
                    "equivariance_error_std": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
                    "equivariance_error_squared": float((r ** 2).mean()),
                    "published_equivariance_error": pub, "graph_build_s": round(build_s, 3),
                    "wall_s": round(per, 3),
                })
            log(f"[{NAME}] Nside {nside} l={degree}: " + ", ".join(
                f"{mid} {np.mean(r):.4g}" for mid, r in ratios.items()))
        log(f"[{NAME}] Nside {nside} done in {time.perf_counter() - t0:.0f} s")
    return rows


# ------------------------------------------------------------------------------- outputs
def write_csv(path: Path, rows: list[dict]) -> None:
    cols = [c for c in CSV_FIRST if any(c in r for r in rows)]
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in cols})
    atomic_write_text(path, buf.getvalue())


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colors = {"v1": "tab:green", "knn8": "tab:cyan", "knn20": "tab:red", "knn40": "tab:blue"}
    nsides = sorted({int(r["nside"]) for r in rows})
    markers = dict(zip(nsides, "vxo^s"))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for mid in dict.fromkeys(r["model"] for r in rows):
        for n in nsides:
            sel = [r for r in rows if r["model"] == mid and int(r["nside"]) == n]
            if not sel:
                continue
            ax.loglog([int(r["degree"]) for r in sel], [float(r["equivariance_error"]) for r in sel],
                      "-", marker=markers[n], color=colors.get(mid, "k"), ms=5, lw=1.2)
            pub = PUBLISHED.get((mid, n), {})
            if pub:
                ax.loglog(list(pub), list(pub.values()), linestyle="none", marker=markers[n], ms=10,
                          mfc="none", mec=colors.get(mid, "k"), mew=1.5)
    ax.set_xlabel(r"spherical harmonic degree $\ell$")
    ax.set_ylabel(r"mean equivariance error $\|RLf - LRf\| / \|Lf\|$")
    ax.grid(True, which="both", alpha=0.3)
    leg1 = ax.legend([Line2D([0], [0], color=colors.get(m, "k")) for m in colors if
                      any(r["model"] == m for r in rows)],
                     [LABELS[m] for m in colors if any(r["model"] == m for r in rows)],
                     loc="lower left", fontsize=8)
    ax.add_artist(leg1)
    ax.legend([Line2D([0], [0], color="k", marker=markers[n], linestyle="-") for n in nsides]
              + [Line2D([0], [0], color="k", marker="o", mfc="none", ms=10, linestyle="none")],
              [f"Nside {n}" for n in nsides] + ["published (ICLR pickles)"],
              loc="upper right", fontsize=8)
    ax.set_title("DeepSphere graphs: equivariance error vs degree (normalised Laplacian)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_md(path: Path, rows: list[dict], ctx: dict) -> None:
    nsides = sorted({int(r["nside"]) for r in rows})
    head = ["# Equivariance error of DeepSphere graphs vs degree", "",
            "Reproduces: Defferrard et al., ICLR 2020, fig:equivariance_error (DeepSphere slides, "
            "\"Desideratum 1\"): mean ‖R L f − L R f‖ / ‖L f‖ over random degree-ℓ signals f and "
            "random rotations R, normalised Laplacian, HEALPix Nside " + ", ".join(map(str, nsides)) + ".",
            "",
            f"- Regenerate: `{ctx['command']}`",
            f"- Preset: `{ctx['preset']}`",
            "- Data: synthetic by construction (random degree-ℓ harmonics, as in the paper; "
            "nothing stands in for a dataset)",
            f"- Hardware: {ctx['hardware']}",
            f"- Wall time: {ctx['wall_s'] / 60:.1f} min",
            f"- Code version: {ctx['code_version']}",
            f"- Table written: {ctx['date']}", "",
            f"![equivariance error vs degree]({NAME}.png)", "",
            "Filled markers and lines: this run; hollow markers: published values (anchors-sphere.md "
            "§5, the ICLR figure's pickles).", ""]
    body = []
    for n in nsides:
        degs = sorted({int(r["degree"]) for r in rows if int(r["nside"]) == n})
        show = [d for d in degs if d in (10, 50, 100, 150, 190) or (n not in (32, 64) and d % 50 == 0)]
        show = show or degs
        table = []
        for mid in dict.fromkeys(r["model"] for r in rows):
            line = [LABELS.get(mid, mid)]
            for d in show:
                sel = T.select(rows, model=mid, nside=n, degree=d)
                pub = PUBLISHED.get((mid, n), {}).get(d)
                rep = f"{float(sel[0]['equivariance_error']):.4f}" if sel else "–"
                line.append(f"{pub:g} / {rep}" if pub is not None else f"– / {rep}")
            table.append(line)
        body += [f"## Nside {n} — published / reproduced (mean ratio)", "",
                 T.md_table(["graph"] + [f"ℓ = {d}" for d in show], table)]
    allrows = []
    for r in rows:
        allrows.append([r["model"], r["nside"], r["degree"], f"{float(r['equivariance_error']):.4g}",
                        f"{float(r['equivariance_error_std']):.2g}",
                        f"{float(r['equivariance_error_squared']):.3g}",
                        r["published_equivariance_error"] or "–"])
    body += ["## Graphs", "",
             T.md_table(["graph", "Nside", "k", "t (w = exp(−d²/4t))", "how t was chosen", "vertices", "nnz(W)", "build s"],
                        [[r["model"], r["nside"], r["k"], r["kernel_width_t"], r["kernel_rule"],
                          r["n_vertices"], r["nnz"], r["graph_build_s"]]
                         for r in rows if int(r["degree"]) == min(int(q["degree"]) for q in rows
                                                                  if q["nside"] == r["nside"])]),
             "<details><summary>All rows (mean ratio, its std over signals × rotations, mean squared "
             "ratio, published)</summary>", "",
             T.md_table(["graph", "Nside", "ℓ", "error", "std", "squared", "published"], allrows),
             "</details>", ""]
    ratios = {}
    for r in rows:
        if r["published_equivariance_error"] != "":
            ratios.setdefault(r["model"], []).append(
                float(r["published_equivariance_error"]) / float(r["equivariance_error"]))
    spread = "; ".join(f"{LABELS.get(m, m)}: median {np.median(v):.2f}× (range {min(v):.2f}–{max(v):.2f}, "
                       f"{len(v)} points)" for m, v in ratios.items())
    notes = ["## Notes", ""]
    if ratios:
        allr = [x for v in ratios.values() for x in v]
        side = "lower" if np.median(allr) > 1 else "higher"
        notes.append(
            "- **Published / reproduced** at the degrees where the pickles give values: " + spread
            + f". Compare the ordering of the graphs and the shape of the curves; the absolute errors "
            f"here are {side} (median ratio {np.median(allr):.2f}). Arbitrary k-NN tie-breaking (as in "
            "pygsp) does not change them measurably; the harmonic rotation does: with "
            "`data.map2alm_iter=0` (no Jacobi iterations in `map2alm`) the k-NN errors rise at mid "
            "degrees while V1 barely moves, so the notebook's exact rotation settings (healpy "
            "version, pixel weights, iterations) are a likely remaining difference.")
    notes += [
             "- **Normalisation caveat.** The paper writes the error as E[(‖RLf − LRf‖/‖Lf‖)²]; the "
             "notebook that produced the figure averages the *non-squared* norm, and the figure's "
             "pickles are named `‖Lf‖`. The published column is compared with the mean non-squared "
             "ratio (`equivariance_error`); the squared version is in the CSV "
             "(`equivariance_error_squared`) and in the collapsed table.",
             "- Rotations act on harmonic coefficients with band limit 3·Nside − 1. `L f` is not "
             "band-limited, so part of the measured error is the aliasing of that rotation, as in "
             "the paper; it dominates near ℓ = 3·Nside, where every curve rises.",
             "- Rotation angles are uniform in [0°, 360)³ with healpy's default Euler convention, as "
             "in the notebook (not Haar-uniform rotations). Seeds differ from the notebook's, so "
             "individual points differ by the sampling noise given in the `std` column / √n.",
             "- `map2alm` uses 3 iterations without pixel weights (healpy ≥ 1.15 would download "
             "pixel weights; this machine is offline).",
             "- k-NN graphs keep every neighbour tied with the k-th (relative tolerance 1e-9), "
             "symmetrised by union; the published code (pygsp) breaks ties arbitrarily. This changes "
             "a few edges per vertex on HEALPix and makes the graph exactly invariant to 90° "
             "rotations about the pole (tests/test_deepsphere_graph.py)."]
    if ctx["preset"] != "paper":
        notes.append(f"- Preset `{ctx['preset']}` reduces the paper's protocol: Nside "
                     f"{', '.join(map(str, nsides))} (paper: 32, 64, 128)"
                     + ("" if ctx["preset"] == "cpu" else ", fewer signals and rotations") + ".")
    atomic_write_text(path, "\n".join(head + body + notes) + "\n")


# ------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu", help="smoke | cpu | paper (default cpu)")
    p.add_argument("--results-dir", default=None,
                   help="where to write equivariance_sphere.{csv,md,png} (default results/, "
                        "results/smoke/ for the smoke preset)")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p


def run(args: argparse.Namespace) -> int:

    cfg = _config.apply_overrides(_config.load_preset(NAME, args.preset), args.overrides)
    params = check_config(cfg)
    results_dir = Path(args.results_dir) if args.results_dir else (
        REPO_ROOT / "results" / ("smoke" if args.preset == "smoke" else ""))
    if results_dir.exists() and not results_dir.is_dir():
        raise InputError(f"{NAME}: --results-dir {results_dir} exists and is not a directory")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    started = _dt.datetime.now().isoformat(timespec="seconds")
    ctx = {"preset": args.preset, "hardware": f"cpu x{cores}", "code_version": code_version(),
           "date": _dt.date.today().isoformat(),
           "command": "python " + " ".join(shlex.quote(a) for a in [f"reproduce/{NAME}.py", *sys.argv[1:]])}
    t0 = time.perf_counter()
    rows = measure(params, log=lambda s: print(s, file=sys.stderr, flush=True))
    ctx["wall_s"] = time.perf_counter() - t0
    for r in rows:
        r.update(preset=args.preset, data_source="synthetic", hardware=ctx["hardware"],
                 code_version=ctx["code_version"], started_at=started)
    results_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results_dir / f"{NAME}.csv", rows)
    plot(results_dir / f"{NAME}.png", rows)
    write_md(results_dir / f"{NAME}.md", rows, ctx)
    print(f"[{NAME}] {len(rows)} rows; table: {os.path.relpath(results_dir / (NAME + '.md'), Path.cwd())}",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
