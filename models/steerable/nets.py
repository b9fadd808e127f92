"""Steerable networks of the paper's experiments.

Paper: Weiler et al. 2018, §5.1 (Tetris) and supplement Table 2 (low-pass ablation).
Reference: ``mariogeiger/se3cnn`` ``examples/tetris.py`` (``SE3Net``; the HEAD copy
``examples/image/tetris.py`` is the same with its run log).

>>> import torch
>>> net = TetrisSE3Net().eval()
>>> net(torch.zeros(2, 1, 13, 13, 13)).shape
torch.Size([2, 8])
>>> sum(p.numel() for p in net.parameters())
41198
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.steerable.group import check_channels
from models.steerable.layers import GatedBlock, InvariantPool, LowPass3d


def multiplicities_to_rs(mults) -> list[tuple[int, int]]:
    """``(m_0, m_1, …)`` (multiplicity per order l) → ``[(m_0, 0), (m_1, 1), …]`` (se3cnn's
    ``repr`` tuples)."""
    return [(int(m), l) for l, m in enumerate(mults) if m > 0]


class TetrisSE3Net(nn.Module):
    """The 4-layer gated steerable CNN of the Tetris experiment (§5.1; se3cnn ``SE3Net``).

    Input ``(B, 1, n, n, n)`` (one scalar field, e.g. ``n = 36``). The reference forward pass
    first blurs the input with ``low_pass_filter(x, 2)``; here that is ``input_lowpass=True``
    (``LowPass3d(2)``). It is off by default because ``datamodules.tetris`` already low-passes
    every sample (``lowpass_scale: 2``); blurring twice would widen the effective filter.
    Field multiplicities per ``l = (0, 1, 2, 3)``::

        (1) → (4, 4, 4, 1) → (16, 16, 16, 0) → (32, 16, 16, 0) → (128,)

    all :class:`GatedBlock` (ReLU on scalars, sigmoid gates), kernel 5, padding 4, strides
    1, 2, 2, 1; ``lowpass=True`` blurs before each subsampling (se3cnn ``smooth_stride``),
    ``lowpass=False`` uses plain strided convolutions (the paper's ablation, Suppl. Table 2).
    No normalisation. Then global average of the 128 scalars, dropout, ``Linear(128, classes)``.
    Spatial sizes for ``n = 36``: 36 → 40 → 22 → 13 → 17. Exactly 41,198 parameters (the
    paper's "41k"; conv weights 40,034 incl. gates, biases 132, linear 1,032).

    ``features`` overrides the multiplicities (e.g. a narrow copy for fast tests);
    ``lowpass_order="before"`` blurs before each strided convolution instead of after the gate
    (see :class:`GatedBlock`; the reduced CPU presets use it with ``padding=2``).
    Cube-rotation exactness needs ``n ≡ 1 (mod 4)`` (e.g. 37); see :mod:`.layers`.
    """

    FEATURES = [(1,), (4, 4, 4, 1), (16, 16, 16, 0), (32, 16, 16, 0), (128,)]
    STRIDES = [1, 2, 2, 1]

    def __init__(self, num_classes: int = 8, lowpass: bool = True, dropout: float = 0.2,
                 input_lowpass: bool = False, size: int = 5, padding: int = 4,
                 features: Sequence[Sequence[int]] | None = None, lowpass_order: str = "after"):
        super().__init__()
        features = [tuple(f) for f in (features or self.FEATURES)]
        if len(features) != len(self.STRIDES) + 1 or len(features[-1]) != 1:
            raise ValueError("TetrisSE3Net: features must list 5 multiplicity tuples, the last "
                             "one scalars only, e.g. (128,)")
        self.Rs_in = multiplicities_to_rs(features[0])
        reprs = [multiplicities_to_rs(f) for f in features]
        self.input_blur = LowPass3d(2, 1) if input_lowpass else None
        self.blocks = nn.Sequential(*[
            GatedBlock(reprs[i], reprs[i + 1], size=size, padding=padding, stride=self.STRIDES[i],
                       lowpass=lowpass, activation=(F.relu, torch.sigmoid),
                       lowpass_order=lowpass_order)
            for i in range(len(reprs) - 1)
        ])
        self.pool = InvariantPool(reprs[-1])
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(features[-1][0], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Invariant descriptor ``(B, 128)`` before dropout and the linear layer."""
        check_channels(x, self.Rs_in, "TetrisSE3Net")
        if self.input_blur is not None:
            x = self.input_blur(x)
        return self.pool(self.blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.features(x)))


__all__ = ["multiplicities_to_rs", "TetrisSE3Net"]
