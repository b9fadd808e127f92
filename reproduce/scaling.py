"""Cost of one spherical convolution layer against the number of pixels: DeepSphere's graph
convolution and the spectral (spherical-harmonic) convolutions, measured side by side.

Reproduces the cost figure of the DeepSphere slides ("Desideratum 2: scalable", "it matters!";
Defferrard et al. ICLR 2020 §"Method"): a Chebyshev graph convolution costs O(K·|E|) = O(N_pix)
(sparse matrix–vector products), while a convolution through spherical harmonic transforms on an
equiangular grid costs O(N_pix^1.5) (b³ for b² pixels: an FFT in longitude and a dense Legendre
transform per order) or more (S2CNN's SO(3) transforms: O(b⁴) = O(N_pix²) for the S² → SO(3) layer's
output of 8b³ points).

    python reproduce/scaling.py                 # CPU, ~10 min: results/scaling.{md,png,csv}
    python reproduce/scaling.py --device cuda   # the same on a GPU (rows kept per device)
    python reproduce/scaling.py --quick         # seconds; what the test suite runs (prints only)
    python reproduce/scaling.py --table         # rewrite results/scaling.md + png from the CSV

Series (16 → 16 channels, batch 4, float32): ChebConv K = 5 and K = 15 on the full HEALPix sphere
(k = 8 graph), K = 5 on partial graphs of 1/12 (one base pixel) and 1/192 of the sphere (DeepSphere's
cosmology inputs) from Nside 16 upwards; the spectral layers of ``models/spectral`` on equiangular
grids of bandwidth b (4b² pixels). Each series grows until one forward+backward exceeds the time
budget (``--budget``) or the next size would not fit in memory; that is "the largest size this
machine holds" within the run's time. Times are medians after warm-up (``reproduce/_timing.py``),
peak memory is the CUDA allocator peak or the growth of the process's peak RSS (CPU, an upper
bound). Graph construction and transform set-up are excluded (built once per size, cached).
Log–log slopes of time against pixels are fitted over each series' sizes from 3,072 pixels up
(smaller layers are dominated by fixed overheads) and printed beside the claimed exponents.
"""
from __future__ import annotations

import csv
import datetime as _dt
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from datamodules._common import atomic_write_text
from reproduce._timing import forward_backward, forward_only, peak_memory_mb, time_fn
from reproduce.runner import tables as T
from reproduce.runner.cli import HelpFormatter, Parser, refuse_shared_options
from reproduce.runner.store import REPO_ROOT, code_version, machine

CHANNELS, BATCH = 16, 4
FIT_FROM = 3072          # pixels: slopes are fitted from here up
COMMON_PIXELS = 16384    # the size every series is compared at (b = 64: the SHREC'17 equiangular grid)
CLAIMS = {"graph": 1.0, "spectral": 1.5}
COLUMNS = ["series", "family", "claim", "size", "npix", "forward_ms", "forward_backward_ms", "peak_mb",
           "device", "machine", "threads", "load", "date", "code_version"]


@dataclass
class Series:
    """One curve: ``build(size, device)`` → (layer, input) for each ``size`` in ``sizes``."""

    name: str
    family: str                      # "graph" (claimed O(N)) or "spectral" (claimed O(N^1.5))
    sizes: list[int]
    build: Callable[[int, str], tuple[torch.nn.Module, torch.Tensor]]
    size_label: str = "Nside"
    claim: float | None = None       # claimed exponent, default CLAIMS[family]

    @property
    def exponent(self) -> float:
        return self.claim if self.claim is not None else CLAIMS[self.family]


def cheb_series(K: int, order: int | None, sizes: list[int]) -> Series:
    from models.deepsphere.graph import healpix_laplacian
    from models.deepsphere.layers import ChebConv

    def build(nside: int, device: str):
        lap = healpix_laplacian(nside, 8, order, 0)
        conv = ChebConv(CHANNELS, CHANNELS, K, lap).to(device)
        return conv, torch.randn(BATCH, conv.num_vertices, CHANNELS, device=device)

    part = "full sphere" if order is None else f"1/{12 * order * order} of the sphere"
    return Series(f"ChebConv K={K}, {part}", "graph", sizes, build)


def spectral_series(quick: bool) -> list[Series]:
    """The spectral layers of ``models/spectral`` on the equiangular grid of bandwidth b (pixels
    N = 4b²; for the SO(3) layer, N is the pixel count of the sphere at the same bandwidth).
    Claimed exponents: SHT-based S² convolution (Esteves) O(b³) = O(N^1.5); S² → SO(3) and
    SO(3) → SO(3) correlations through Wigner-D transforms O(b⁴) = O(N²) (the issue's upper end)."""
    from models.spectral import S2Convolution, SO3Convolution, SphericalConv

    def esteves(b: int, device: str):
        return (SphericalConv(CHANNELS, CHANNELS, b).to(device),
                torch.randn(BATCH, 4 * b * b, CHANNELS, device=device))

    def s2(b: int, device: str):
        return (S2Convolution(CHANNELS, CHANNELS, b, b).to(device),
                torch.randn(BATCH, 4 * b * b, CHANNELS, device=device))

    class _SO3(torch.nn.Module):  # reports N = 4b² as the input's second axis, like the sphere layers
        def __init__(self, b: int):
            super().__init__()
            self.conv, self.b = SO3Convolution(CHANNELS, CHANNELS, b, b), b

        def forward(self, x):
            return self.conv(x.view(BATCH, CHANNELS, 2 * self.b, 2 * self.b, 2 * self.b))

    def so3(b: int, device: str):
        x = torch.randn(BATCH, 4 * b * b, 2 * b * CHANNELS, device=device)  # (B, N, ·) view of (B, C, 2b, 2b, 2b)
        return _SO3(b).to(device), x

    sizes = [4, 8] if quick else [8, 16, 32, 64, 128]
    return [Series("Esteves SphericalConv (zonal, S² → S²)", "spectral", sizes, esteves, "b"),
            Series("S2CNN S2Convolution (S² → SO(3))", "spectral", sizes, s2, "b", 2.0),
            Series("S2CNN SO3Convolution (SO(3) → SO(3))", "spectral", sizes[:-1] if not quick else sizes, so3, "b",
                   2.0)]


def all_series(quick: bool) -> list[Series]:
    if quick:
        return [cheb_series(5, None, [2, 4]), cheb_series(5, 1, [4, 8])] + spectral_series(True)
    return [cheb_series(5, None, [16, 32, 64, 128, 256, 512, 1024]),
            cheb_series(15, None, [16, 32, 64, 128, 256, 512, 1024]),
            cheb_series(5, 1, [16, 32, 64, 128, 256, 512, 1024, 2048]),
            cheb_series(5, 4, [32, 64, 128, 256, 512, 1024, 2048, 4096])] + spectral_series(False)


def measure(series: Series, device: str, budget_s: float, reps: int, log=print) -> list[dict]:
    rows = []
    for size in series.sizes:
        try:
            layer, x = series.build(size, device)
            x.requires_grad_(False)
            fwd = time_fn(forward_only(layer, x), warmup=1, reps=reps, device=device)
            step = forward_backward(layer, x)
            fb = time_fn(step, warmup=1, reps=reps, device=device)
            peak = peak_memory_mb(step, device)
        except (RuntimeError, MemoryError) as e:  # out of memory: the largest size is the previous one
            log(f"  {series.name} at {series.size_label} {size}: stopped ({str(e).splitlines()[0][:80]})")
            break
        npix = int(x.shape[1])
        rows.append({"series": series.name, "family": series.family, "claim": series.exponent, "size": size,
                     "npix": npix, "forward_ms": round(1000 * fwd, 4), "forward_backward_ms": round(1000 * fb, 4),
                     "peak_mb": round(peak, 2)})
        log(f"  {series.name}: {series.size_label} {size:>5} ({npix:>9,} px) forward {1000 * fwd:9.2f} ms, "
            f"forward+backward {1000 * fb:9.2f} ms, peak {peak:8.1f} MB")
        del layer, x, step
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        if fb > budget_s:
            break
    return rows


def slope(rows: list[dict], key: str) -> float:
    pts = [(float(r["npix"]), float(r[key])) for r in rows if float(r["npix"]) >= FIT_FROM]
    if len(pts) < 2:
        return float("nan")
    n, t = zip(*pts)
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


# --------------------------------------------------------------------------- rendering
def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict]) -> None:
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def by_series(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["device"], r["series"]), []).append(r)
    return out


def plot(rows: list[dict], path: Path) -> None:
    plt = T.pyplot()
    devices = list(dict.fromkeys(r["device"] for r in rows))
    fig, axes = plt.subplots(len(devices), 2, figsize=(11, 4 * len(devices)), squeeze=False)
    for d, dev in enumerate(devices):
        for j, (key, what) in enumerate((("forward_ms", "forward"), ("forward_backward_ms", "forward + backward"))):
            ax = axes[d, j]
            for (device, name), rs in by_series(rows).items():
                if device != dev:
                    continue
                n = [float(r["npix"]) for r in rs]
                t = [float(r[key]) for r in rs]
                style = "o-" if rs[0]["family"] == "graph" else "s--"
                ax.loglog(n, t, style, label=f"{name} (slope {slope(rs, key):.2f})", ms=4)
            lo = min(float(r["npix"]) for r in rows if r["device"] == dev)
            hi = max(float(r["npix"]) for r in rows if r["device"] == dev)
            ref = np.array([lo, hi])
            t0 = min(float(r[key]) for r in rows if r["device"] == dev)
            for e, ls in ((1.0, ":"), (1.5, "-."), (2.0, "--")):
                ax.loglog(ref, t0 * (ref / lo) ** e, "k" + ls, lw=0.8, label=f"O(N^{e:g})")
            ax.set(xlabel="pixels N", ylabel="time (ms)",
                   title=f"{what}, one layer {CHANNELS}→{CHANNELS} ch, batch {BATCH} ({dev})")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
    fig.tight_layout()
    T.save_figure(fig, path)


def at_pixels(rows: list[dict], key: str, n: float = COMMON_PIXELS) -> float:
    """``key`` at ``n`` pixels, interpolated linearly in log–log between the two nearest sizes
    (NaN outside the measured range)."""
    pts = sorted((float(r["npix"]), float(r[key])) for r in rows)
    for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
        if n0 <= n <= n1:
            w = np.log(n / n0) / np.log(n1 / n0)
            return float(np.exp((1 - w) * np.log(t0) + w * np.log(t1)))
    return float("nan")


def render(rows: list[dict], out_dir: Path) -> Path:
    slopes, tables = [], []
    for (dev, name), rs in by_series(rows).items():
        common = at_pixels(rs, "forward_backward_ms")
        slopes.append([dev, name, rs[0]["family"], f"O(N^{float(rs[0]['claim']):g})",
                       f"{slope(rs, 'forward_ms'):.2f}", f"{slope(rs, 'forward_backward_ms'):.2f}",
                       "–" if np.isnan(common) else f"{common:,.1f}",
                       f"{int(rs[-1]['npix']):,}", f"{float(rs[-1]['forward_backward_ms']):,.1f}"])
    for dev in dict.fromkeys(r["device"] for r in rows):
        body = [[r["series"], r["size"], f"{int(r['npix']):,}", f"{float(r['forward_ms']):,.2f}",
                 f"{float(r['forward_backward_ms']):,.2f}", f"{float(r['peak_mb']):,.1f}"]
                for r in rows if r["device"] == dev]
        first = next(r for r in rows if r["device"] == dev)
        tables.append(f"### {dev}: {first['machine']}, load average {first['load']} "
                      f"at start, {first['date']}\n\n"
                      + T.md_table(["series", "Nside / b", "pixels", "forward ms", "forward+backward ms",
                                    "peak MB"], body) + "\n")
    text = ("# Scaling: graph vs spectral spherical convolutions\n\n"
            "Reproduces the cost claim of the DeepSphere slides (\"Desideratum 2: scalable\"): graph convolutions "
            "cost O(N_pix), spherical-harmonic convolutions O(N_pix^1.5) to O(N_pix²).\n\n"
            "- Regenerate: `python reproduce/scaling.py` (add `--device cuda` for GPU rows; `--table` re-renders)\n"
            f"- Code version: {', '.join(dict.fromkeys(r['code_version'] for r in rows))}\n"
            f"- One layer, {CHANNELS} → {CHANNELS} channels, batch {BATCH}, float32; graph construction and "
            "transform set-up excluded. Slopes: least squares of log time on log pixels over the sizes from "
            f"{FIT_FROM:,} pixels up.\n\n## Log–log slopes\n\n"
            + T.md_table(["device", "series", "family", "claimed", "slope forward", "slope forward+backward",
                          f"forward+backward ms at {COMMON_PIXELS:,} px", "largest pixels",
                          "its forward+backward ms"], slopes)
            + f"\nAt {COMMON_PIXELS:,} pixels (equiangular b = 64, the SHREC'17 grid; HEALPix Nside ≈ 37) the time "
            "is interpolated in log–log between the two nearest measured sizes. The graph series grow slightly "
            "faster than linearly on a CPU because their working set leaves the caches as N grows (the bare "
            "sparse-product floor of `results/speed.md` shows the same excess); the spectral ones follow their "
            "transforms' powers.\n"
            + "\n![time vs pixels](scaling.png)\n\n## Measurements\n\n" + "\n".join(tables))
    path = out_dir / "scaling.md"
    atomic_write_text(path, text)
    plot(rows, out_dir / "scaling.png")
    return path


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="reproduce/scaling.py", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device to time on: cpu, cuda, cuda:1, ...")
    p.add_argument("--quick", action="store_true", help="tiny sizes, prints only (tests)")
    p.add_argument("--table", action="store_true", help="re-render results/scaling.md + png from the CSV")
    p.add_argument("--budget", type=float, default=None,
                   help="stop a series after a forward+backward longer than this (s; default 4 CPU, 1 CUDA)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per size")
    p.add_argument("--only", default=None, help="measure only series whose name contains this text")
    p.add_argument("--results-dir", default=str(REPO_ROOT / "results"))
    args = refuse_shared_options(p, argv, "a timing of single layers against input size: no grid, presets, training, data folder or W&B logs; the device is --device")
    out_dir = Path(args.results_dir)
    csv_path = out_dir / "scaling.csv"
    if args.table:
        rows = read_csv(csv_path)
        if not rows:
            print(f"error: {csv_path} has no rows; run python reproduce/scaling.py first", file=sys.stderr)
            return 2
        print(f"written {render(rows, out_dir)}", file=sys.stderr)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    budget = args.budget if args.budget is not None else (1.0 if args.device.startswith("cuda") else 4.0)
    info = {"device": args.device, "machine": machine(args.device), "threads": torch.get_num_threads(),
            "load": f"{os.getloadavg()[0]:.1f}", "date": _dt.date.today().isoformat(),
            "code_version": code_version()}
    new = []
    for s in all_series(args.quick):
        if args.only and args.only not in s.name:
            continue
        new += [{**r, **info} for r in measure(s, args.device, 0.5 if args.quick else budget,
                                               1 if args.quick else args.reps)]
    if args.quick:
        return 0
    keep = [r for r in read_csv(csv_path)
            if r["device"] != args.device or (args.only and args.only not in r["series"])]
    rows = keep + new
    write_csv(csv_path, rows)
    print(f"written {render(rows, out_dir)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
