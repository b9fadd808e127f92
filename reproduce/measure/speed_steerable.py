"""Speed section: steerable 3-D convolution against a plain ``nn.Conv3d`` (same run).

Paper: Weiler et al. 2018, §4.4.3 — the forward pass assembles the filter bank from learned
weights × the precomputed basis and calls a standard 3-D convolution, so its cost should be
that of the plain convolution plus a small assembly term. Measured here:

* forward and forward+backward of ``SteerableConv3d`` with fields ``4×l0 + 4×l1 + 2×l2`` in and
  out (26 channels), kernel 5, padding 2, grid 32³, batch 4, against ``nn.Conv3d(26, 26, 5)``
  on the same input (the floor);
* the kernel assembly alone (weights × basis → filter bank, forward+backward);
* basis construction from a cold cache (building ``TetrisSE3Net``), against building the plain
  ``TetrisCNN``;
* peak memory of forward+backward (CUDA allocator peak on GPU; on CPU the growth of the
  process's maximum RSS, an upper bound that is 0 once the allocator has the memory).

``quick=True`` shrinks the problem (grid 12³, batch 1) so that the section runs in seconds.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from reproduce.measure.timing import layer_rows

TITLE = "3D steerable convolution vs plain Conv3d"
RS = [(4, 0), (4, 1), (2, 2)]  # 4 + 12 + 10 = 26 channels


def _cold_build(builder) -> float:
    from models.steerable import kernels

    kernels.unit_basis.cache_clear()
    kernels._wigner_3j.cache_clear()
    t0 = time.perf_counter()
    builder()
    return time.perf_counter() - t0


def measure(quick: bool = False, device: str = "cpu") -> tuple[str, list[dict]]:
    """Return ``(title, rows)``; each row has ``what, time_ms, floor_ms, ratio`` (+ ``peak_mb``,
    ``notes``). Ratios are steerable / plain, both measured in this call."""
    from models.baselines import TetrisCNN
    from models.steerable import SteerableConv3d, TetrisSE3Net

    dev = torch.device(device)
    n, batch = (12, 1) if quick else (32, 4)
    warmup, reps = (1, 3) if quick else (2, 5)
    torch.manual_seed(0)
    steer = SteerableConv3d(RS, RS, size=5, padding=2).to(dev)
    plain = nn.Conv3d(steer.in_channels, steer.out_channels, 5, padding=2).to(dev)
    x = torch.randn(batch, steer.in_channels, n, n, n, device=dev)
    shape = f"26→26 ch (4×l0+4×l1+2×l2), k5, {n}³, batch {batch}"

    def assemble():
        steer.zero_grad(set_to_none=True)
        steer.kernel().square().sum().backward()

    rows = layer_rows("SteerableConv3d", shape, steer, plain, x, "nn.Conv3d, same input", assemble,
                      f"kernel assembly only, forward+backward ({steer.kernel.weight.numel()} "
                      f"weights → 26×26×5³ filter bank)", warmup, reps, dev)

    t = _cold_build(lambda: TetrisSE3Net())
    f = _cold_build(lambda: TetrisCNN())
    rows.append({"what": "build TetrisSE3Net, cold basis cache (basis construction)",
                 "time_ms": 1e3 * t, "floor_ms": 1e3 * f, "ratio": t / f,
                 "notes": "floor: build the plain TetrisCNN (6.2M parameters)"})
    try:
        from models.baselines import ResNet34
        from models.steerable import SE3ResNet34Small
    except ImportError:
        pass
    else:
        t = _cold_build(lambda: SE3ResNet34Small())
        f = _cold_build(lambda: ResNet34())
        rows.append({"what": "build SE3ResNet34Small (37 steerable convs), cold basis cache",
                     "time_ms": 1e3 * t, "floor_ms": 1e3 * f, "ratio": t / f,
                     "notes": "floor: build the plain ResNet34 (15.9M parameters)"})
    return TITLE, rows
