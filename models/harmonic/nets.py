"""The Harmonic Network of the rotated-MNIST experiment.

Paper: Worrall et al. 2017, §5.1 (MNIST-rot, Table 1: 1.69 % test error). Reference:
``danielewworrall/harmonicConvolutions`` ``MNIST-rot/mnist_model.py`` (``deep_mnist``) with
``harmonic_network_lite.py``.

>>> import torch
>>> net = HNet().eval()
>>> net(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in net.parameters())
22826
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from models.harmonic.layers import CReLU, HBatchNorm, HConv2d, HMeanPool2d, MagnitudeHead


class HNet(nn.Module):
    """Seven harmonic convolutions, rotation orders ``0..max_order`` in every stream::

        x (B,1,28,28) → HConv 1→8 · C-ReLU → HConv 8→8 · BN-ReLU → mean-pool 2
          → HConv 8→16 · C-ReLU → HConv 16→16 · BN-ReLU → mean-pool 2
          → HConv 16→32 · C-ReLU → HConv 32→32 · BN-ReLU
          → HConv 32→10 (no phase offset) → Σ_m |·| → spatial mean + bias → logits

    kernel 5, 'SAME' padding 2, ``n_rings`` 4, channels ``8, 16, 32`` per order (``n_filters``
    8, ``filter_gain`` 2 in the reference). Spatial sizes 28 → 14 → 7: each pooling sees an even
    map, so the logits are exactly invariant to quarter turns of the input (see the exactness
    condition in :mod:`models.harmonic.layers`). 22,826 parameters for the default (radial
    18,496, phases 3,984, C-ReLU biases 112, BN 224, class biases 10), the reference's "used"
    count. ``init`` is :class:`HConv2d`'s parameterisation of the radial weights (``"reference"``:
    the reference's unnormalised basis and ``0.4·√(2 / (rings·in·out))`` initial std).
    ``features()`` returns the last equivariant map (before the head) for tests.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 channels: Sequence[int] = (8, 16, 32), kernel_size: int = 5, n_rings: int = 4,
                 max_order: int = 1, bn_momentum: float = 0.01, eps: float = 1e-4,
                 n_angles: int | None = None, init: str = "fan_in"):
        super().__init__()
        orders = tuple(range(int(max_order) + 1))
        self.orders = orders
        c1, c2, c3 = (int(c) for c in channels)
        kw = dict(kernel_size=kernel_size, n_rings=n_rings, n_angles=n_angles, init=init)
        layers: list[nn.Module] = [
            HConv2d(in_channels, c1, in_orders=(0,), out_orders=orders, real_input=True, **kw),
            CReLU(c1, orders, eps),
            HConv2d(c1, c1, in_orders=orders, out_orders=orders, **kw),
            HBatchNorm(c1, orders, eps, momentum=bn_momentum),
            HMeanPool2d(2),
            HConv2d(c1, c2, in_orders=orders, out_orders=orders, **kw),
            CReLU(c2, orders, eps),
            HConv2d(c2, c2, in_orders=orders, out_orders=orders, **kw),
            HBatchNorm(c2, orders, eps, momentum=bn_momentum),
            HMeanPool2d(2),
            HConv2d(c2, c3, in_orders=orders, out_orders=orders, **kw),
            CReLU(c3, orders, eps),
            HConv2d(c3, c3, in_orders=orders, out_orders=orders, **kw),
            HBatchNorm(c3, orders, eps, momentum=bn_momentum),
        ]
        self.body = nn.Sequential(*layers)
        self.last = HConv2d(c3, num_classes, in_orders=orders, out_orders=orders, phase=False, **kw)
        self.head = MagnitudeHead(num_classes, orders, eps)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The order-``(0..max_order)`` map fed to the head, ``(B, M·2·classes, 7, 7)``."""
        if x.dim() != 4:
            raise ValueError(f"HNet: expected input (B, C, H, W), got {tuple(x.shape)}")
        return self.last(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
