"""Plain 3-D CNN baselines of the 3D Steerable CNN experiments.

Paper: Weiler et al. 2018, §5.1 (Tetris: "a conventional CNN ... 27 ± 7 %") and supplement
Table 2 (low-pass ablation). Reference: ``mariogeiger/se3cnn`` ``examples/tetris.py`` (``CNN``).
The CATH baseline ``ResNet34`` lives in :mod:`models.cath_nets`.

>>> import torch
>>> net = TetrisCNN().eval()
>>> net(torch.zeros(2, 1, 13, 13, 13)).shape
torch.Size([2, 8])
>>> sum(p.numel() for p in net.parameters())
6221832
"""
from __future__ import annotations

import torch
from torch import nn

from models.steerable.layers import LowPass3d


class TetrisCNN(nn.Module):
    """Conventional CNN with the same layout as :class:`~models.steerable.TetrisSE3Net`.

    Channels 1 → 43 → 144 → 160 → 128 (the SE3 net's field dimensions Σ m(2l+1)), kernel 5,
    padding 4, strides 1, 2, 2, 1. Each block is ``Conv3d → [LowPass3d(stride, stride)] →
    BatchNorm3d → ReLU``: with ``lowpass=True`` the convolution runs at stride 1 and the blur
    subsamples (se3cnn ``smooth_stride``), with ``lowpass=False`` the convolution strides.
    ``input_lowpass=True`` blurs the input by ``LowPass3d(scale 2)`` first, as the reference
    forward pass does; off by default because ``datamodules.tetris`` low-passes every sample
    already. Global average pool, dropout 0.2, ``Linear(128, classes)``. 6,221,832 parameters
    (the paper's "~6M"). ``lowpass_order="before"`` blurs the input of each strided
    convolution instead (same as the steerable net's option; the reduced CPU presets use it).
    """

    CHANNELS = [1, 43, 144, 160, 128]
    STRIDES = [1, 2, 2, 1]

    def __init__(self, num_classes: int = 8, lowpass: bool = True, dropout: float = 0.2,
                 input_lowpass: bool = False, size: int = 5, padding: int = 4,
                 lowpass_order: str = "after"):
        super().__init__()
        if lowpass_order not in ("after", "before"):
            raise ValueError(f"TetrisCNN: lowpass_order must be 'after' or 'before', got {lowpass_order!r}")
        ch = self.CHANNELS
        blocks = []
        for i, stride in enumerate(self.STRIDES):
            smooth = lowpass and stride > 1
            before = smooth and lowpass_order == "before"
            layers: list[nn.Module] = [LowPass3d(stride, 1)] if before else []
            layers.append(nn.Conv3d(ch[i], ch[i + 1], size, padding=padding,
                                    stride=stride if (before or not smooth) else 1))
            if smooth and not before:
                layers.append(LowPass3d(stride, stride))
            layers += [nn.BatchNorm3d(ch[i + 1]), nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(*layers))
        self.input_blur = LowPass3d(2, 1) if input_lowpass else None
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(ch[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.CHANNELS[0]:
            raise ValueError(f"TetrisCNN: expected (B, 1, X, Y, Z), got shape {tuple(x.shape)}")
        if self.input_blur is not None:
            x = self.input_blur(x)
        x = self.blocks(x)
        return self.linear(self.dropout(x.flatten(2).mean(-1)))


__all__ = ["TetrisCNN"]
