"""The table and figure of ``reproduce/scaling.py`` (one layer's cost against the number of pixels),
declared for :func:`reproduce.runner.tables.render`: log–log slopes per series beside the claimed
exponents, the time at a common size, the figure, and every measurement per device.

Slopes are least squares of log time on log pixels over each series' sizes from :data:`FIT_FROM`
pixels up (smaller layers are dominated by fixed overheads). Series are shown per device in the
order of the config's ``models``, sizes by pixel count.
"""
from __future__ import annotations

import numpy as np

from reproduce.measure.scaling_series import BATCH, CHANNELS
from reproduce.runner import tables as T

FIT_FROM = 3072          # pixels: slopes are fitted from here up
COMMON_PIXELS = 16384    # the size every series is compared at (b = 64: the SHREC'17 equiangular grid)


def slope(rows: list[dict], key: str) -> float:
    pts = [(float(r["npix"]), float(r[key])) for r in rows if float(r["npix"]) >= FIT_FROM]
    if len(pts) < 2:
        return float("nan")
    n, t = zip(*pts)
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def at_pixels(rows: list[dict], key: str, n: float = COMMON_PIXELS) -> float:
    """``key`` at ``n`` pixels, interpolated linearly in log–log between the two nearest sizes
    (NaN outside the measured range)."""
    pts = sorted((float(r["npix"]), float(r[key])) for r in rows)
    for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
        if n0 <= n <= n1:
            w = np.log(n / n0) / np.log(n1 / n0)
            return float(np.exp((1 - w) * np.log(t0) + w * np.log(t1)))
    return float("nan")


def by_series(view: T.View) -> dict[tuple[str, str], list[dict]]:
    """(device, series name) → its rows by pixel count; devices in order of appearance, series in
    the config's order."""
    order = {m: i for i, m in enumerate(view.cfg.get("models") or {})}
    rows = sorted(view.rows, key=lambda r: (view.values("device").index(r["device"]),
                                            order.get(r["model"], len(order)), float(r["npix"])))
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["device"], r["series"]), []).append(r)
    return out


def plot(view: T.View):
    plt = T.pyplot()
    series, devices = by_series(view), view.values("device")
    fig, axes = plt.subplots(len(devices), 2, figsize=(11, 4 * len(devices)), squeeze=False)
    for d, dev in enumerate(devices):
        mine = [r for r in view.rows if r["device"] == dev]
        for j, (key, what) in enumerate((("forward_ms", "forward"), ("forward_backward_ms", "forward + backward"))):
            ax = axes[d, j]
            for (device, name), rs in series.items():
                if device == dev:
                    ax.loglog([float(r["npix"]) for r in rs], [float(r[key]) for r in rs],
                              "o-" if rs[0]["family"] == "graph" else "s--", label=f"{name} (slope {slope(rs, key):.2f})",
                              ms=4)
            lo, hi = min(T.floats(mine, "npix")), max(T.floats(mine, "npix"))
            ref, t0 = np.array([lo, hi]), min(T.floats(mine, key))
            for e, ls in ((1.0, ":"), (1.5, "-."), (2.0, "--")):
                ax.loglog(ref, t0 * (ref / lo) ** e, "k" + ls, lw=0.8, label=f"O(N^{e:g})")
            ax.set(xlabel="pixels N", ylabel="time (ms)",
                   title=f"{what}, one layer {CHANNELS}→{CHANNELS} ch, batch {BATCH} ({dev})")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def slopes(view: T.View) -> str:
    body = []
    for (dev, name), rs in by_series(view).items():
        common = at_pixels(rs, "forward_backward_ms")
        body.append([dev, name, rs[0]["family"], f"O(N^{float(rs[0]['claim']):g})",
                     f"{slope(rs, 'forward_ms'):.2f}", f"{slope(rs, 'forward_backward_ms'):.2f}",
                     "–" if np.isnan(common) else f"{common:,.1f}",
                     f"{int(rs[-1]['npix']):,}", f"{float(rs[-1]['forward_backward_ms']):,.1f}"])
    return ("## Log–log slopes\n\n"
            + T.md_table(["device", "series", "family", "claimed", "slope forward", "slope forward+backward",
                          f"forward+backward ms at {COMMON_PIXELS:,} px", "largest pixels",
                          "its forward+backward ms"], body)
            + f"\nAt {COMMON_PIXELS:,} pixels (equiangular b = 64, the SHREC'17 grid; HEALPix Nside ≈ 37) the time "
            "is interpolated in log–log between the two nearest measured sizes. The graph series grow slightly "
            "faster than linearly on a CPU because their working set leaves the caches as N grows (the bare "
            "sparse-product floor of `results/speed.md` shows the same excess); the spectral ones follow their "
            "transforms' powers.\n")


def measurements(view: T.View) -> str:
    out = ["## Measurements", ""]
    series = by_series(view)
    for dev in view.values("device"):
        rows = [r for (d, _), rs in series.items() if d == dev for r in rs]
        first = rows[0]
        out += [f"### {dev}: {first['machine']}, load average {first['load']} at start, {first['started_at'][:10]}", "",
                T.md_table(["series", "Nside / b", "pixels", "forward ms", "forward+backward ms", "peak MB"],
                           [[r["series"], r["size"], f"{int(r['npix']):,}", f"{float(r['forward_ms']):,.2f}",
                             f"{float(r['forward_backward_ms']):,.2f}", f"{float(r['peak_mb']):,.1f}"] for r in rows])]
    return "\n".join(out)


def headline(view: T.View) -> str:
    rs = next((rs for (_, name), rs in by_series(view).items() if name == "ChebConv K=5, full sphere"), None)
    return f"{slope(rs, 'forward_backward_ms'):.2f}" if rs else "–"


REPORT = T.Report(
    title="Scaling: graph vs spectral spherical convolutions",
    data_labels={"synthetic": "random inputs (a timing needs no dataset)"},
    count_line=lambda v: f"Series: {len(v.values('model'))}, {len(v.rows)} sizes",
    preamble=(f"One layer, {CHANNELS} → {CHANNELS} channels, batch {BATCH}, float32; graph construction and "
              "transform set-up excluded. Times are medians after warm-up; peak memory is the CUDA allocator peak or "
              "the growth of the process's peak RSS (CPU, an upper bound). Each series grows until one "
              "forward+backward exceeds the time budget (`budget_s`) or the next size does not fit in memory. "
              f"Slopes: least squares of log time on log pixels over the sizes from {FIT_FROM:,} pixels up."),
    sections=[T.Text(slopes), T.Figure("scaling.png", plot, "time vs pixels", before="\n", after="\n\n"),
              T.Text(measurements)],
    headline=T.Headline("log–log slope of forward+backward time vs pixels, ChebConv K = 5, full sphere", "1 (O(N_pix))", headline))
