"""Speed section: harmonic convolution against a plain ``nn.Conv2d`` (same run).

Paper: Worrall et al. 2017, §4 — a harmonic convolution is a conventional convolution with
filters assembled from a radial profile and a phase per (in, out, order). ``HConv2d`` builds
one real block filter ``[[Re W, −Im W], [Im W, Re W]]`` from precomputed ring bases and calls
ONE ``F.conv2d`` over the stacked (Re, Im) channels of all orders, so its cost should be the
plain convolution with the same number of real channels plus a small assembly term. Measured:

* forward and forward+backward of ``HConv2d(8, 8, 5)`` with orders m ∈ {0, 1} in and out
  (2 orders × (Re, Im) × 8 = 32 real channels), 28×28, batch 32, against ``nn.Conv2d(32, 32, 5,
  padding=2)`` on the same input (the floor);
* the filter assembly alone (radial × basis, phase rotation, block gather; forward+backward);
* the whole MNIST-rot ``HNet`` (one training step, batch 32) against the ``Z2CNN`` baseline —
  for information, the two networks do different amounts of work.

Layer and floor are timed alternately, rep by rep (medians), so that both see the same load.

``quick=True`` shrinks the problem (12×12 batch 4 for the layer, batch 2 for the networks, fewer
repetitions): seconds.
"""
from __future__ import annotations

import torch
from torch import nn

from reproduce.measure.timing import forward_backward, layer_rows, ratio_row, time_paired

TITLE = "Harmonic convolution (HConv2d) vs plain Conv2d"
#: quick -> (edge n, batch, warm-up, repetitions) of the layer rows
SIZES = {True: (12, 4, 1, 3), False: (28, 32, 3, 15)}


def measure(quick: bool = False, device: str = "cpu") -> tuple[str, list[dict]]:
    """The section's ``(title, rows)`` (:func:`~reproduce.measure.timing.layer_rows`, then the whole
    networks); ratios are harmonic / plain, both measured in this call."""
    from models.baselines import Z2CNN
    from models.harmonic import HConv2d, HNet

    dev = torch.device(device)
    n, batch, warmup, reps = SIZES[quick]
    torch.manual_seed(0)
    hconv = HConv2d(8, 8, 5, in_orders=(0, 1), out_orders=(0, 1), n_rings=4).to(dev)
    plain = nn.Conv2d(hconv.in_real_channels, hconv.out_real_channels, 5, padding=2, bias=False).to(dev)
    rows = layer_rows("HConv2d", f"8 ch/order, m∈{{0,1}} (32 real ch), k5, {n}×{n}, batch {batch}", hconv, plain,
                      batch, n, "nn.Conv2d(32, 32, 5), same input; goal ≤ 2x", hconv.weight,
                      f"filter assembly only, forward+backward ({hconv.radial.numel()} radial + "
                      f"{hconv.phase.numel()} phases → 32×32×5×5)", warmup, reps, dev)

    hnet, cnn = HNet().to(dev), Z2CNN().to(dev)
    nb = 2 if quick else batch
    xi = torch.rand(nb, 1, 28, 28, device=dev)  # the Z2CNN needs 28×28 (valid convs down to 1×1)
    t, f = time_paired(forward_backward(hnet, xi), forward_backward(cnn, xi), 1, 1 if quick else 5, dev)
    rows.append(ratio_row(f"HNet (MNIST-rot model) forward+backward, 28×28, batch {nb}", t, f,
                          "floor: Z2CNN baseline (different work: 7 layers 3×3 at 20 ch vs 5×5 at "
                          "32-128 real ch); information only"))
    return TITLE, rows
