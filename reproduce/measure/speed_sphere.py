"""Speed section: DeepSphere Chebyshev graph convolution against bare sparse products and against
the deepsphere-pytorch algorithm, and the HEALPix graph build against a bare k-NN query (same run).

Paper: DeepSphere slides "Desideratum 2: scalable" and Perraudin et al. 2019 (ASCOM)
§"Graph convolution": filtering costs ``O(K·|E|)`` = ``O(N_pix)``, because it only multiplies
vectors by a sparse matrix with ``O(N_pix)`` non-zeros. Measured here:

* ``ChebConv(16 → 32, K)`` for K = 3 and 6, batch 8, HEALPix k = 8 graphs at Nside 32 … 256
  (… 512 when the machine has ≥ 48 GiB of RAM or on CUDA): forward and forward+backward time,
  against the *floor*: the ``K − 1`` bare sparse × dense products ``L̃ X`` of the same sizes
  (``X`` of shape ``(N_pix, 8·16)``; ``T_0 X = X`` is free) plus one dense channel-mixing
  matmul ``(N_pix·8, K·16) × (K·16, 32)``, run through autograd for the forward+backward floor
  (the backward of each product is one product with ``L̃ᵀ = L̃``, as in the layer). The floor
  works in the ``(V, B·F)`` layout (one transposed copy in, one concatenation) of
  deepsphere-pytorch and of this package's first ChebConv (before its custom autograd function);
  the layer now keeps ``x`` batch-major on large graphs and mixes each term as it comes, so it
  can run below this "floor";
* K = 3: the same layer against the **deepsphere-pytorch algorithm** (``cheb_conv`` of
  ``deepsphere/layers/chebyshev.py``), re-implemented here for timing only
  (:mod:`reproduce.measure.deepsphere_pytorch`; the package's PyPI sdist ``deepsphere==0.2.1`` does not
  build), on the same Laplacian as a coalesced COO tensor; ratio = ours / peer;
* forward+backward = the forward, then the backward of a fixed upstream gradient
  (``out.backward(g)``, ``g`` drawn once), with an input that requires its gradient (a hidden
  layer): the layer's own work, not a loss's;
* the log-log slope of time against the pixel count (goal ≤ 1.05: linear);
* graph construction time per Nside: the rescaled Laplacian the nets use (k-NN graph + normalised
  Laplacian + λ_max + rescaling, ``healpix_laplacian``) and the k-NN graph ``W`` alone
  (``healpix_graph``), against a bare ``cKDTree`` build and ``k+1``-neighbour query of the same
  points (all threads);
* peak memory of forward+backward (CUDA allocator peak; on CPU the growth of the process's
  maximum RSS, an upper bound that reads 0 once the allocator already holds the memory);
* once, each in a fresh subprocess (not with ``quick``): the full-sphere Nside = 1024 graph
  (12.6 M pixels, k = 8) with its rescaled Laplacian, and its bare ``cKDTree`` floor; time and
  peak RSS, each bounded by ``timeout`` seconds.

Every row carries the 1-minute load average when it was measured: the CPU runners are shared,
and a load above the core count inflates the times (ratios measured alternately stay usable).

``quick=True`` (the test suite): Nside 16 and 32, batch 2, one repetition; seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import torch

from models.deepsphere.layers import sym_spmm
from reproduce.measure.deepsphere_pytorch import DeepSpherePyTorchChebConv
from reproduce.measure.timing import forward_backward, forward_only, peak_memory_mb, time_fn
from reproduce.runner.store import load_average

TITLE = "DeepSphere Chebyshev graph convolution vs bare sparse products and deepsphere-pytorch"
K_NEIGHBOURS = 8
# peak RSS of the child itself: VmHWM of its own address space (ru_maxrss carries the parent's
# high-water mark across fork and exec on Linux: it read the benchmark's 8 GB)
_PEAK_MB = """
import resource
def peak_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
_BUILD_1024 = _PEAK_MB + """
import time, sys
sys.path.insert(0, {root!r})
from models.deepsphere import graph as G
t0 = time.perf_counter()
g = G.healpix_graph(1024, {k})
t1 = time.perf_counter()
op, lam = G.chebyshev_operator(g.W, "normalized", "auto")
t2 = time.perf_counter()
print(g.n, g.W.nnz, t1 - t0, t2 - t0, peak_mb())
"""
_FLOOR_1024 = _PEAK_MB + """
import time, sys
sys.path.insert(0, {root!r})
from scipy.spatial import cKDTree
from models.deepsphere import graph as G
v = G.healpix_vectors(1024)
t0 = time.perf_counter()
cKDTree(v).query(v, k={k} + 1, workers=-1)
print(time.perf_counter() - t0, peak_mb())
"""


def _ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        return 0.0


def loglog_slope(n: list[float], t: list[float]) -> float:
    """Least-squares slope of ``log t`` against ``log n``."""
    if len(n) < 2:
        return float("nan")
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


class _Floor(torch.nn.Module):
    """The irreducible work of one Chebyshev convolution: ``K − 1`` products ``L̃ X`` and one
    dense mixing matmul, no recursion arithmetic, no layout changes beyond one reshape."""

    def __init__(self, conv):
        super().__init__()
        self.L, self.K = conv.laplacian, conv.K
        self.weight = torch.nn.Parameter(conv.weight.detach().clone())

    def forward(self, x):
        B, V, F = x.shape
        xs = [x.transpose(0, 1).reshape(V, B * F)]
        for _ in range(1, self.K):
            xs.append(sym_spmm(self.L, xs[-1]))  # backward: one product with L̃ = L̃ᵀ
        s = torch.cat(xs, dim=1).view(V * B, self.K * F)  # one copy, as the stack in ChebConv
        return s @ self.weight.reshape(self.K * F, -1)


def _paired(a, b, warmup: int, reps: int, rounds: int, dev) -> tuple[float, float]:
    """Median times of ``a`` and ``b`` measured alternately ``rounds`` times; the minimum per
    function (robust to other jobs on a shared machine)."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(time_fn(a, warmup, reps, dev))
        tb.append(time_fn(b, warmup, reps, dev))
    return min(ta), min(tb)


def _graph_build(nside: int) -> tuple[float, float, float]:
    """Cold build times of the cached rescaled Laplacian and of the k-NN graph ``W`` alone, and
    of the bare k-NN query (tree build + query, all threads)."""
    from scipy.spatial import cKDTree

    from models.deepsphere import graph as G

    v = G.healpix_vectors(nside)
    t0 = time.perf_counter()
    cKDTree(v).query(v, k=K_NEIGHBOURS + 1, workers=-1)
    floor = time.perf_counter() - t0
    t0 = time.perf_counter()
    G.healpix_graph(nside, K_NEIGHBOURS)
    graph = time.perf_counter() - t0
    G.clear_graph_cache()
    t0 = time.perf_counter()
    G.healpix_laplacian(nside, K_NEIGHBOURS)
    return time.perf_counter() - t0, graph, floor


def _subprocess(code: str, timeout: float) -> tuple[list[str] | None, str]:
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if out.returncode != 0:
        return None, "FAILED: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return out.stdout.split(), ""


def build_nside1024(k: int = K_NEIGHBOURS, timeout: float = 900) -> dict:
    """Build the full-sphere Nside-1024 graph and operator in a fresh process, and time the bare
    k-NN query of the same points in another: time, peak RSS. Each bounded by ``timeout`` s."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    floor, why_floor = _subprocess(_FLOOR_1024.format(root=root, k=k), timeout)
    load = load_average()
    t0 = time.perf_counter()
    build, why = _subprocess(_BUILD_1024.format(root=root, k=k), timeout)
    what = f"graph build k={k} Nside 1024 full sphere (12,582,912 px), subprocess"
    floor_ms = 1e3 * float(floor[0]) if floor else float("nan")
    if build is None:
        return {"what": what, "time_ms": float("nan"), "floor_ms": floor_ms, "ratio": float("nan"),
                "nside": 1024, "load": load, "notes": why}
    n, nnz, graph_s, total_s, rss_mb = build
    return {"what": what, "time_ms": 1e3 * float(total_s), "floor_ms": floor_ms,
            "ratio": 1e3 * float(total_s) / floor_ms, "peak_mb": float(rss_mb), "nside": 1024,
            "n_pix": int(n), "graph_build_s": float(total_s), "graph_only_s": float(graph_s), "load": load,
            "notes": f"k-NN graph W {float(graph_s):.1f} s + normalised Laplacian/λ_max bound/"
                     f"rescale; nnz(W) = {int(nnz):,}; peak RSS of the process; wall "
                     f"{time.perf_counter() - t0:.0f} s incl. start-up; floor: bare cKDTree build + "
                     f"(k+1)-NN query in its own subprocess"
                     + (f" ({why_floor})" if why_floor else f", peak RSS {float(floor[1]):.0f} MB")}


def measure(quick: bool = False, device: str = "cpu", nsides: list[int] | None = None,
            include_1024: bool | None = None) -> tuple[str, list[dict]]:
    """Return ``(title, rows)``; rows have ``what, time_ms, floor_ms, ratio`` (+ ``peak_mb``,
    ``notes``, ``nside``, ``n_pix``, ``graph_build_s``, ``graph_only_s``, ``slope``, ``load``).
    Ratios are ours / floor (or / the deepsphere-pytorch algorithm), both measured in this call."""
    from models.deepsphere import ChebConv, healpix_laplacian

    dev = torch.device(device)
    if nsides is None:
        big = dev.type == "cuda" or _ram_gib() >= 48
        nsides = [16, 32] if quick else ([32, 64, 128, 256, 512] if big else [32, 64, 128, 256])
    batch, fin, fout = (2, 16, 32) if quick else (8, 16, 32)
    warmup, reps, rounds = (1, 2, 1) if quick else (1, 3, 2)

    def log(msg: str) -> None:
        if not quick:
            print(f"[speed sphere] {msg} (load {load_average():.2f})", file=sys.stderr, flush=True)

    _graph_build(2)  # imports and first-call costs out of the timings
    rows: list[dict] = []
    series: dict[tuple[int, str], list[tuple[int, float, float]]] = {}
    for nside in nsides:
        build_s, graph_s, knn_s = _graph_build(nside)
        n_pix = 12 * nside ** 2
        rows.append({"what": f"graph build k={K_NEIGHBOURS} Nside {nside}", "time_ms": 1e3 * build_s,
                     "floor_ms": 1e3 * knn_s, "ratio": build_s / knn_s, "nside": nside,
                     "n_pix": n_pix, "graph_build_s": build_s, "graph_only_s": graph_s, "load": load_average(),
                     "notes": "rescaled Laplacian (graph_only_s: the k-NN graph W alone); floor: bare "
                              "cKDTree build + (k+1)-NN query of the same points"})
        log(f"Nside {nside}: operator built in {build_s:.1f} s (graph W {graph_s:.1f} s, "
            f"floor {knn_s:.1f} s)")
        L = healpix_laplacian(nside, K_NEIGHBOURS)
        # big sizes: one timed repetition per round (each call takes seconds on a CPU)
        reps_n, rounds_n = (1, 2) if (not quick and n_pix * batch > 2_000_000) else (reps, rounds)
        torch.manual_seed(0)
        x = torch.randn(batch, n_pix, fin, device=dev, requires_grad=True)
        g = torch.randn(batch, n_pix, fout, device=dev)
        for K in (3, 6):
            conv = ChebConv(fin, fout, K, L).to(dev)
            others = [("floor", _Floor(conv).to(dev),
                       f"{fin}→{fout} ch, batch {batch}; floor: {K - 1} bare L̃X + 1 dense matmul")]
            if K == 3:
                others.append(("deepsphere-pytorch", DeepSpherePyTorchChebConv(conv).to(dev),
                               f"{fin}→{fout} ch, batch {batch}; floor: the deepsphere-pytorch "
                               f"algorithm (re-implemented for timing), ratio = ours / theirs"))
            for name, other, notes in others:
                for what in ("forward", "forward+backward"):
                    if what == "forward":
                        a, b = forward_only(conv, x), forward_only(other, x)
                    else:
                        # the floor returns its (V·B, F_out) product unpermuted: g, flattened
                        g_other = g.view(-1, fout) if name == "floor" else g
                        a, b = forward_backward(conv, x, g), forward_backward(other, x, g_other)
                    t, f = _paired(a, b, warmup, reps_n, rounds_n, dev)
                    log(f"Nside {nside} K={K} {what}: {1e3 * t:.1f} ms vs {name} {1e3 * f:.1f} ms")
                    label = "ChebConv" if name == "floor" else "ChebConv vs deepsphere-pytorch"
                    row = {"what": f"{label} {what} K={K} Nside {nside}", "time_ms": 1e3 * t,
                           "floor_ms": 1e3 * f, "ratio": t / f, "nside": nside, "n_pix": n_pix,
                           "load": load_average(), "notes": notes}
                    if what == "forward+backward":
                        row["peak_mb"] = peak_memory_mb(a, dev)
                        row["notes"] += f"; {name} peak {peak_memory_mb(b, dev):.0f} MB"
                    rows.append(row)
                    if name == "floor":
                        series.setdefault((K, what), []).append((n_pix, t, f))
            del conv, others
        del x, g
    for (K, what), pts in series.items():
        n, t, f = zip(*pts)
        rows.append({"what": f"scaling: ChebConv {what} K={K}, Nside {nsides[0]}→{nsides[-1]}",
                     "time_ms": 1e3 * t[-1], "floor_ms": 1e3 * f[-1], "ratio": t[-1] / f[-1],
                     "slope": loglog_slope(n, t),
                     "notes": f"slope of log time vs log pixels (goal ≤ 1.05); floor slope "
                              f"{loglog_slope(n, f):.2f}; times at the largest Nside"})
    if include_1024 is None:
        include_1024 = not quick and _ram_gib() >= 16
    if include_1024:
        log("Nside 1024 graph build (subprocesses)")
        rows.append(build_nside1024())
    return TITLE, rows
