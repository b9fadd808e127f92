"""The layers ``reproduce/scaling.py`` grows, and how one series is measured.

A series (a ``models.<id>`` entry of ``configs/scaling/``, :class:`SeriesSpec`) is one spherical
convolution, 16 → 16 channels, batch 4, float32, built at each of its ``sizes``:

* ``cheb``: DeepSphere's ``ChebConv`` of order ``K`` on the HEALPix k = 8 graph at Nside = size, on the
  full sphere or on a partial graph of ``1/(12·order²)`` of it (claimed O(N_pix): K sparse products);
* ``esteves``: the SHT-based zonal S² convolution ``SphericalConv`` on the equiangular grid of
  bandwidth b = size (N = 4b² pixels; claimed O(b³) = O(N^1.5));
* ``s2`` / ``so3``: S2CNN's ``S2Convolution`` (S² → SO(3)) and ``SO3Convolution`` (SO(3) → SO(3))
  through Wigner-D transforms (claimed O(b⁴) = O(N²); for the SO(3) layer N is the sphere's pixel
  count at the same bandwidth).

:func:`measure_series` times each size (medians after warm-up, :mod:`reproduce.measure.timing`) and
stops once one forward+backward exceeds the time budget or the next size does not fit in memory.
Graph construction and transform set-up are excluded (built once per size, cached).
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Literal

import torch

from reproduce.measure.timing import forward_backward, forward_only, peak_memory_mb, time_fn

CHANNELS, BATCH = 16, 4
CLAIMS = {"cheb": 1.0, "esteves": 1.5, "s2": 2.0, "so3": 2.0}


@dataclass
class SeriesSpec:
    """A ``models.<id>`` entry: which layer, at which sizes (Nside for ``cheb``, bandwidth b else)."""

    kind: Literal["cheb", "esteves", "s2", "so3"]
    sizes: list[int]
    K: int = 5
    order: int | None = None

    def __post_init__(self) -> None:
        if not self.sizes or any(s < 1 for s in self.sizes):
            raise ValueError(f"sizes must be a non-empty list of positive ints, got {self.sizes}")
        if self.kind != "cheb" and (self.order is not None or self.K != 5):
            raise ValueError(f"K and order are ChebConv's; a {self.kind} series takes sizes only")

    @property
    def name(self) -> str:
        if self.kind == "cheb":
            part = "full sphere" if self.order is None else f"1/{12 * self.order ** 2} of the sphere"
            return f"ChebConv K={self.K}, {part}"
        return {"esteves": "Esteves SphericalConv (zonal, S² → S²)", "s2": "S2CNN S2Convolution (S² → SO(3))",
                "so3": "S2CNN SO3Convolution (SO(3) → SO(3))"}[self.kind]

    family = property(lambda self: "graph" if self.kind == "cheb" else "spectral")
    claim = property(lambda self: CLAIMS[self.kind])
    size_label = property(lambda self: "Nside" if self.kind == "cheb" else "b")


class _SO3(torch.nn.Module):
    """``SO3Convolution`` on a ``(B, N = 4b², 2b·C)`` view of its ``(B, C, 2b, 2b, 2b)`` input."""

    def __init__(self, b: int):
        super().__init__()
        from models.spectral import SO3Convolution
        self.conv, self.b = SO3Convolution(CHANNELS, CHANNELS, b, b), b

    def forward(self, x):
        return self.conv(x.view(BATCH, CHANNELS, 2 * self.b, 2 * self.b, 2 * self.b))


def build(spec: SeriesSpec, size: int, device: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """(layer, input) of ``spec`` at ``size``; the input's second axis is the pixel count N."""
    if spec.kind == "cheb":
        from models.deepsphere.graph import healpix_laplacian
        from models.deepsphere.layers import ChebConv
        conv = ChebConv(CHANNELS, CHANNELS, spec.K, healpix_laplacian(size, 8, spec.order, 0)).to(device)
        return conv, torch.randn(BATCH, conv.num_vertices, CHANNELS, device=device)
    from models.spectral import S2Convolution, SphericalConv
    b = size
    if spec.kind == "so3":
        return _SO3(b).to(device), torch.randn(BATCH, 4 * b * b, 2 * b * CHANNELS, device=device)
    layer = SphericalConv(CHANNELS, CHANNELS, b) if spec.kind == "esteves" else S2Convolution(CHANNELS, CHANNELS, b, b)
    return layer.to(device), torch.randn(BATCH, 4 * b * b, CHANNELS, device=device)


def measure_series(spec: SeriesSpec, device: str, budget_s: float, reps: int, log=print) -> list[dict]:
    """One row per size: pixels, forward and forward+backward medians (ms), peak memory (MB)."""
    rows = []
    for size in spec.sizes:
        try:
            layer, x = build(spec, size, device)
            x.requires_grad_(False)
            fwd = time_fn(forward_only(layer, x), warmup=1, reps=reps, device=device)
            step = forward_backward(layer, x)
            fb = time_fn(step, warmup=1, reps=reps, device=device)
            peak = peak_memory_mb(step, device)
        except (RuntimeError, MemoryError) as e:  # out of memory: the largest size is the previous one
            log(f"  {spec.name} at {spec.size_label} {size}: stopped ({str(e).splitlines()[0][:80]})")
            break
        npix = int(x.shape[1])
        rows.append({"series": spec.name, "family": spec.family, "claim": spec.claim, "size": size,
                     "npix": npix, "forward_ms": round(1000 * fwd, 4), "forward_backward_ms": round(1000 * fb, 4),
                     "peak_mb": round(peak, 2)})
        log(f"  {spec.name}: {spec.size_label} {size:>5} ({npix:>9,} px) forward {1000 * fwd:9.2f} ms, "
            f"forward+backward {1000 * fb:9.2f} ms, peak {peak:8.1f} MB")
        del layer, x, step
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        if fb > budget_s:
            break
    return rows
