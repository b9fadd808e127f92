"""Networks of the CATH protein-architecture experiment: a plain 3-D ResNet34 baseline and the
steerable ``SE3ResNet34Small``.

Paper: Weiler et al. 2018, §5.4 and supplement (CATH: 10 architecture classes, 50³ grid of
2 Å voxels; "ResNet34" baseline 15,878,764 parameters, steerable model 143,560 parameters).
Reference: ``mariogeiger/se3cnn`` at 546bc68, ``experiments/scripts/cath/networks/
{ResNet34,SE3ResNet34Small}`` on top of ``experiments/util/arch_blocks.py`` (``OuterBlock``,
``SE3GatedResBlock``, ``ResBlock``), run by ``final_run.py`` with ``--kernel-size 3
--downsample-by-pooling`` (defaults: ``--bandlimit-mode compromise --normalization batch
--SE3-nonlinearity gated``, no fully-connected dropout).

Layout shared by both (stage: blocks × convs per block, width):
``[stem, k=7] | [k=3] × 2 × 3 | × 2 × 4, stride 2 | × 2 × 6, stride 2 | × 2 × 3, stride 2``,
global average, ``Linear(256, classes)``. Downsampling is by pooling: the first convolution of
a strided block runs at stride 1 and is followed by ``AvgPool3d(k, stride 2, padding k//2)``
(same on the shortcut).

Exactness of cube-rotation equivariance (steerable net): the three pooled strides need
``n ≡ 1 (mod 8)`` voxels per axis (e.g. 9, 25, 49; not the paper's 50), see
:mod:`models.steerable.layers`.

>>> sum(p.numel() for p in ResNet34().parameters())
15878764
>>> sum(p.numel() for p in SE3ResNet34Small().parameters())
143560
"""
from __future__ import annotations

import torch
from torch import nn

from models.steerable.group import check_channels
from models.steerable.layers import GatedBlock, InvariantPool
from models.steerable.nets import multiplicities_to_rs

CNN_WIDTHS = [32, 32, 64, 128, 256]
STAGE_BLOCKS = [1, 3, 4, 6, 3]
STAGE_STRIDES = [1, 1, 2, 2, 2]


# --------------------------------------------------------------------------- plain baseline
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

    The reference file (``networks/ResNet34``) could not be read; this layout is reconstructed
    from the published facts (stages, kernels, pre-activation BN, no conv bias, average-pool
    downsampling, ``--p-drop-conv 0.01``) and reproduces the published count exactly:
    convolutions 15,825,632 + shortcuts 43,008 + BN 2 × 3,777 + linear 2,570. Whether the
    stem sees a ReLU and whether dropout is element- or channel-wise does not change the count.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.01, size: int = 3,
                 n_input: int = 1, stem_size: int = 7):
        super().__init__()
        self.n_input = n_input
        w = CNN_WIDTHS
        stages: list[nn.Module] = [_PreActConv(n_input, w[0], stem_size, dropout)]
        c_in = w[0]
        for width, n_blocks, stride in zip(w[1:], STAGE_BLOCKS[1:], STAGE_STRIDES[1:]):
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


# --------------------------------------------------------------------------- steerable
class SE3GatedResBlock(nn.Module):
    """se3cnn ``SE3GatedResBlock`` with downsampling by pooling.

    One field type ``Rs_out`` per convolution. A single-convolution block is a gated
    :class:`GatedBlock` without shortcut. Otherwise the block is
    ``GatedBlock(gated) [→ AvgPool3d] → … → GatedBlock(linear)`` plus a shortcut (identity when
    the type and resolution are unchanged, else a linear ``GatedBlock [→ AvgPool3d]``), and the
    sum is returned as is: se3cnn builds the post-sum ``GatedActivation`` with its default
    ``activation=(None, None)``, i.e. an identity (code quirk kept on purpose). Every
    ``GatedBlock`` batch-normalises its input (no affine parameters, momentum ``bn_momentum``)
    and applies capsule dropout ``p_drop`` to its output.
    """

    def __init__(self, Rs_in, Rs_outs: list, size: int = 3, stride: int = 1,
                 p_drop: float = 0.1, bn_momentum: float = 0.01, mode: str = "compromise"):
        super().__init__()
        common = dict(size=size, padding=size // 2, stride=1, batch_norm=True,
                      bn_momentum=bn_momentum, dropout=p_drop, mode=mode)
        single = len(Rs_outs) == 1
        reprs = [Rs_in] + list(Rs_outs)
        layers: list[nn.Module] = []
        for i in range(len(Rs_outs)):
            last = i == len(Rs_outs) - 1
            act = None if (last and not single) else (torch.relu, torch.sigmoid)
            layers.append(GatedBlock(reprs[i], reprs[i + 1], activation=act, **common))
            if i == 0 and stride > 1:
                layers.append(nn.AvgPool3d(size, stride=stride, padding=size // 2))
        self.layers = nn.Sequential(*layers)
        self.shortcut: nn.Module | None = None
        if not single:
            if list(Rs_in) == list(Rs_outs[-1]) and stride == 1:
                self.shortcut = nn.Identity()
            else:
                sc: list[nn.Module] = [GatedBlock(Rs_in, Rs_outs[-1], activation=None, **common)]
                if stride > 1:
                    sc.append(nn.AvgPool3d(size, stride=stride, padding=size // 2))
                self.shortcut = nn.Sequential(*sc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


class SE3ResNet34Small(nn.Module):
    """Steerable ResNet34 "small" of the CATH experiment: exactly 143,560 parameters.

    Field multiplicities per ``l = (0, 1, 2, 3)`` (se3cnn ``SE3ResNet34Small``)::

        stem (2,2,2,2), k=7 | (2,2,2,2) ×2 ×3 | (4,4,4,4) ×2 ×4 | (8,8,8,8) ×2 ×6
        | (16,16,16,16) ×2 ×2, then one block (16,16,16,16) → (256,)

    kernel 3 after the stem, compromise band-limit, σ = 0.6, batch norm (momentum 0.01) before
    every convolution, capsule dropout ``p_drop`` after every convolution (``--p-drop-conv
    0.1``), gated ReLU/sigmoid on the inner convolution of each block, no nonlinearity after the
    residual sums (se3cnn quirk, see :class:`SE3GatedResBlock`), strides by ``AvgPool3d(3, 2,
    1)``. Global average of the 256 scalars, ``Linear(256, classes)`` (no dense dropout).
    """

    FEATURES = [
        [(2, 2, 2, 2)],
        [[(2, 2, 2, 2)] * 2] * 3,
        [[(4, 4, 4, 4)] * 2] * 4,
        [[(8, 8, 8, 8)] * 2] * 6,
        [[(16, 16, 16, 16)] * 2] * 2 + [[(16, 16, 16, 16), (256,)]],
    ]

    def __init__(self, num_classes: int = 10, p_drop: float = 0.1, size: int = 3,
                 n_input: int = 1, stem_size: int = 7, bn_momentum: float = 0.01,
                 mode: str = "compromise"):
        super().__init__()
        self.Rs_in = [(n_input, 0)]
        kw = dict(p_drop=p_drop, bn_momentum=bn_momentum, mode=mode)
        stem = SE3GatedResBlock(self.Rs_in, [multiplicities_to_rs(self.FEATURES[0][0])],
                                size=stem_size, **kw)
        stages: list[nn.Module] = [stem]
        Rs = multiplicities_to_rs(self.FEATURES[0][0])
        for blocks, stride in zip(self.FEATURES[1:], STAGE_STRIDES[1:]):
            seq = []
            for b, convs in enumerate(blocks):
                Rs_outs = [multiplicities_to_rs(f) for f in convs]
                seq.append(SE3GatedResBlock(Rs, Rs_outs, size=size, stride=stride if b == 0 else 1, **kw))
                Rs = Rs_outs[-1]
            stages.append(nn.Sequential(*seq))
        self.stages = nn.Sequential(*stages)
        self.Rs_out = Rs
        self.pool = InvariantPool(Rs)
        self.linear = nn.Linear(sum(m for m, _ in Rs), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs_in, "SE3ResNet34Small")
        return self.linear(self.pool(self.stages(x)))


__all__ = ["ResNet34", "SE3ResNet34Small", "SE3GatedResBlock"]
