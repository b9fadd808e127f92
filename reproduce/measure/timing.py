"""Timing helpers for ``reproduce/speed.py``: a benchmark, never a timed test. The one wall-time
function, :func:`time_fn`, is :func:`reproduce.runner.after_test.time_fn`.

Every figure is a median over repetitions after warm-up, and every ratio is taken against a
floor (plain Conv2d/Conv3d, bare sparse matmul) measured *in the same process and run*.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from reproduce.runner.after_test import time_fn


def time_paired(fn: Callable[[], object], floor: Callable[[], object], warmup: int = 2, reps: int = 5,
                device: torch.device | str | None = None) -> tuple[float, float]:
    """Median wall times (s) of ``fn`` and ``floor``, measured alternately rep by rep so that both
    see the same machine load (the CPU runners are shared)."""
    time_fn(fn, warmup, 1, device)
    time_fn(floor, warmup, 1, device)
    a, b = [], []
    for _ in range(reps):
        a.append(time_fn(fn, 0, 1, device))
        b.append(time_fn(floor, 0, 1, device))
    return statistics.median(a), statistics.median(b)


def forward_backward(module: torch.nn.Module, x: torch.Tensor,
                     grad_out: torch.Tensor | None = None) -> Callable[[], None]:
    """A closure running forward + backward of ``module`` on ``x`` (parameter grads reset): the
    backward of the loss ``mean(out²)``, or, given ``grad_out``, of that fixed upstream gradient
    (``out.backward(grad_out)``: the layer alone, without the loss's own work)."""
    def step() -> None:
        module.zero_grad(set_to_none=True)
        if x.requires_grad:
            x.grad = None
        out = module(x)
        if grad_out is not None:
            out.backward(grad_out)
            return
        if isinstance(out, torch.Tensor) and out.is_complex():
            out = out.abs()
        out.float().square().mean().backward()
    return step


def forward_only(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            module(x)
    return step


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def timed_peak(fn: Callable[[], object], device: torch.device | str | None = None) -> tuple[float, float, float]:
    """One call of ``fn``: (wall seconds, peak memory in MiB while it ran, memory in use before it, MiB).

    CUDA: the caching allocator's tensors (``torch.cuda.max_memory_allocated`` after a reset;
    ``memory_allocated`` before). CPU (Linux): the process's peak resident set (VmHWM, reset to the
    current RSS first by writing 5 to ``/proc/self/clear_refs``) and its resident set before; both
    NaN where that is not available (NaN rather than a wrong number).
    """
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated() / 2**20, base / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _proc_status_kb("VmRSS")
    except OSError:
        base = None
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = _proc_status_kb("VmHWM") if base is not None else None
    if base is None or peak is None:
        return seconds, float("nan"), float("nan")
    return seconds, peak / 1024.0, base / 1024.0


def peak_memory_mb(fn: Callable[[], object], device: torch.device | str | None = None) -> float:
    """Peak memory of one call of ``fn`` above what was in use before it, in MiB (:func:`timed_peak`)."""
    _, peak, base = timed_peak(fn, device)
    return max(peak - base, 0.0) if peak == peak and base == base else float("nan")


def fmt_ratio(t: float, floor: float) -> str:
    return f"{t / floor:.2f}x"


def ratio_row(what: str, t: float, floor: float, notes: str) -> dict:
    """One timing row: ``what``, the time and its floor (seconds in, milliseconds out), their ratio
    time / floor, and ``notes`` (what the floor is)."""
    return {"what": what, "time_ms": 1e3 * t, "floor_ms": 1e3 * floor, "ratio": t / floor, "notes": notes}


def layer_rows(name: str, shape: str, layer: torch.nn.Module, plain: torch.nn.Module, batch: int, n: int,
               floor_note: str, weight: Callable[[], torch.Tensor], assembly: str, warmup: int, reps: int,
               device: torch.device) -> list[dict]:
    """The three rows of an equivariant layer against the plain layer of the same shape, timed alternately
    (:func:`time_paired`) on the same random input ``(batch, plain.in_channels, n, …, n)``: forward,
    forward+backward (with both peaks), and the filter assembly alone (``weight()``, the layer's filter
    bank from its parameters, forward and the backward of its squared sum) against one plain
    forward+backward step."""
    x = torch.randn(batch, plain.in_channels, *(n,) * len(plain.kernel_size), device=device)
    rows = []
    for what, make in (("forward", forward_only), ("forward+backward", forward_backward)):
        t, f = time_paired(make(layer, x), make(plain, x), warmup, reps, device)
        row = ratio_row(f"{name} {what} [{shape}]", t, f, f"floor: {floor_note}")
        if what == "forward+backward":
            row["peak_mb"] = peak_memory_mb(forward_backward(layer, x), device)
            row["notes"] += f"; plain peak {peak_memory_mb(forward_backward(plain, x), device):.1f} MB"
        rows.append(row)

    def assemble() -> None:
        layer.zero_grad(set_to_none=True)
        weight().square().sum().backward()

    t, f = time_paired(assemble, forward_backward(plain, x), warmup, reps, device)
    rows.append(ratio_row(assembly, t, f, f"floor: plain {type(plain).__name__} forward+backward; "
                                          "ratio = share of one conv step"))
    return rows
