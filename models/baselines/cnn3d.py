"""Plain 3-D CNN baselines of the 3D Steerable CNN experiments: the Tetris CNN and the CATH
ResNet34.

Paper: Weiler et al. 2018, §5.1 (Tetris: "a conventional CNN ... 27 ± 7 %"), supplement
Table 2 (low-pass ablation) and §5.4 (CATH: "ResNet34" baseline, 15,878,764 parameters).
Reference: ``mariogeiger/se3cnn`` at 546bc68, ``examples/tetris.py`` (``CNN``) and
``experiments/scripts/cath/networks/ResNet34`` on ``experiments/util/arch_blocks.py``, run by
``final_run.py`` with ``--kernel-size 3 --downsample-by-pooling``. The steerable counterparts
are :class:`models.steerable.TetrisSE3Net` and :class:`models.steerable.SE3ResNet34Small`.

>>> import torch
>>> TetrisCNN().eval()(torch.zeros(2, 1, 13, 13, 13)).shape  # the input and classes of TetrisSE3Net
torch.Size([2, 8])
>>> [sum(p.numel() for p in m.parameters()) for m in (TetrisCNN(), ResNet34())]
[6221832, 15878764]
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


# --------------------------------------------------------------------------- CATH ResNet34
class _PreActConv(nn.Sequential):
    """``BatchNorm3d → ReLU → Dropout3d → Conv3d`` (no conv bias), optionally ``→ AvgPool3d``."""

    def __init__(self, c_in: int, c_out: int, size: int, dropout: float, pool_stride: int = 1):
        layers: list[nn.Module] = [nn.BatchNorm3d(c_in), nn.ReLU(inplace=False)]
        if dropout > 0:
            layers.append(nn.Dropout3d(dropout))
        layers.append(nn.Conv3d(c_in, c_out, size, padding=size // 2, bias=False))
        if pool_stride > 1:
            layers.append(nn.AvgPool3d(size, stride=pool_stride, padding=size // 2))
        super().__init__(*layers)


class _PreActResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, size: int, stride: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(_PreActConv(c_in, c_out, size, dropout, stride),
                                  _PreActConv(c_out, c_out, size, dropout))
        self.shortcut = (nn.Identity() if c_in == c_out and stride == 1
                         else _PreActConv(c_in, c_out, 1, 0.0, 1))
        self.pool = nn.AvgPool3d(size, stride=stride, padding=size // 2) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(x)
        if self.pool is not None:
            s = self.pool(s)
        return self.body(x) + s


class ResNet34(nn.Module):
    """Plain pre-activation 3-D ResNet34 of the CATH experiment: 15,878,764 parameters.

    Widths ``[32] | [32, 32] × 3 | [64, 64] × 4 | [128, 128] × 6 | [256, 256] × 3``; stem kernel 7,
    then 3. Every convolution (stem, block, 1×1×1 projection shortcut) is pre-activated,
    ``BN → ReLU → Dropout3d(dropout) → Conv3d`` without bias; projections only where the width
    or stride changes; stride 2 by ``AvgPool3d(3, 2, 1)`` after the first convolution of a
    strided block and after its shortcut. No activation after the residual sum.
    Global mean, ``Linear(256, classes)``.

    The layout was reconstructed from the published facts (stages, kernels, BN, no conv bias,
    average-pool downsampling, ``--p-drop-conv 0.01``) and reproduces the published count exactly:
    convolutions 15,825,632 + shortcuts 43,008 + BN 2 × 3,777 + linear 2,570. The reference
    (se3cnn ``networks/ResNet34`` on ``arch_blocks.ResBlock``) orders each convolution
    ``BN → Conv3d → Dropout3d [→ AvgPool] → ReLU`` (no ReLU after a block's last convolution), puts
    ``BN → Conv 1×1 → Dropout3d`` on projection shortcuts, applies a ReLU after every residual sum
    and initialises convolutions Xavier-normal; the same parameters, a different function (listed
    in configs/cath/protocol.yaml).

    Layout shared with :class:`models.steerable.SE3ResNet34Small` (stage: blocks × convs per
    block): ``[stem, k=7] | [k=3] × 2 × 3 | × 2 × 4, stride 2 | × 2 × 6, stride 2 | × 2 × 3,
    stride 2`` (:attr:`BLOCKS`, :attr:`STRIDES`); downsampling by pooling.
    """

    WIDTHS = [32, 32, 64, 128, 256]
    BLOCKS = [1, 3, 4, 6, 3]
    STRIDES = [1, 1, 2, 2, 2]

    def __init__(self, num_classes: int = 10, dropout: float = 0.01, size: int = 3,
                 n_input: int = 1, stem_size: int = 7):
        super().__init__()
        self.n_input = n_input
        w = self.WIDTHS
        stages: list[nn.Module] = [_PreActConv(n_input, w[0], stem_size, dropout)]
        c_in = w[0]
        for width, n_blocks, stride in zip(w[1:], self.BLOCKS[1:], self.STRIDES[1:]):
            blocks = []
            for b in range(n_blocks):
                blocks.append(_PreActResBlock(c_in, width, size, stride if b == 0 else 1, dropout))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.linear = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.n_input:
            raise ValueError(f"ResNet34: expected (B, {self.n_input}, X, Y, Z), got shape {tuple(x.shape)}")
        return self.linear(self.stages(x).flatten(2).mean(-1))


__all__ = ["TetrisCNN", "ResNet34"]
