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

from reproduce.measure.timing import layer_rows, ratio_row

TITLE = "3D steerable convolution vs plain Conv3d"
RS = [(4, 0), (4, 1), (2, 2)]  # 4 + 12 + 10 = 26 channels
#: quick -> (edge n, batch, warm-up, repetitions) of the layer rows
SIZES = {True: (12, 1, 1, 3), False: (32, 4, 2, 5)}


def _cold_build(builder) -> float:
    from models.steerable import kernels

    kernels.unit_basis.cache_clear()
    kernels._wigner_3j.cache_clear()
    t0 = time.perf_counter()
    builder()
    return time.perf_counter() - t0


def measure(quick: bool = False, device: str = "cpu") -> tuple[str, list[dict]]:
    """The section's ``(title, rows)`` (:func:`~reproduce.measure.timing.layer_rows`, then the cold
    builds of two networks against their plain floors); ratios are steerable / plain, both measured
    in this call."""
    from models.baselines import ResNet34, TetrisCNN
    from models.steerable import SE3ResNet34Small, SteerableConv3d, TetrisSE3Net

    dev = torch.device(device)
    n, batch, warmup, reps = SIZES[quick]
    torch.manual_seed(0)
    steer = SteerableConv3d(RS, RS, size=5, padding=2).to(dev)
    plain = nn.Conv3d(steer.in_channels, steer.out_channels, 5, padding=2).to(dev)
    rows = layer_rows("SteerableConv3d", f"26→26 ch (4×l0+4×l1+2×l2), k5, {n}³, batch {batch}", steer, plain,
                      batch, n, "nn.Conv3d, same input", steer.kernel,
                      f"kernel assembly only, forward+backward ({steer.kernel.weight.numel()} "
                      f"weights → 26×26×5³ filter bank)", warmup, reps, dev)

    builds = ((TetrisSE3Net, TetrisCNN, "build TetrisSE3Net, cold basis cache (basis construction)",
               "floor: build the plain TetrisCNN (6.2M parameters)"),
              (SE3ResNet34Small, ResNet34, "build SE3ResNet34Small (37 steerable convs), cold basis cache",
               "floor: build the plain ResNet34 (15.9M parameters)"))
    for net, floor, what, notes in builds:
        t, f = _cold_build(net), _cold_build(floor)
        rows.append(ratio_row(what, t, f, notes))
    return TITLE, rows
