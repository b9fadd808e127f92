"""Steerable networks of the paper's experiments: Tetris, SHREC'17 and CATH.

Paper: Weiler et al. 2018, §5.1 (Tetris) and supplement Table 2 (low-pass ablation); §5.4 and
supplement (CATH: 10 architecture classes, 50³ grid of 2 Å voxels, steerable model 143,560
parameters). Reference: ``mariogeiger/se3cnn`` ``examples/tetris.py`` (``SE3Net``; the HEAD
copy ``examples/image/tetris.py`` is the same with its run log) and, at 546bc68,
``experiments/scripts/cath/networks/SE3ResNet34Small`` on ``experiments/util/arch_blocks.py``
(``SE3GatedResBlock``), run by ``final_run.py`` with ``--kernel-size 3
--downsample-by-pooling`` (defaults: ``--bandlimit-mode compromise --normalization batch
--SE3-nonlinearity gated``, no fully-connected dropout). The plain baselines are in
:mod:`models.baselines.cnn3d`.

>>> import torch
>>> net = TetrisSE3Net().eval()
>>> net(torch.zeros(2, 1, 13, 13, 13)).shape
torch.Size([2, 8])
>>> [sum(p.numel() for p in m.parameters()) for m in (net, SE3ResNet34Small(), Shrec17SE3Net())]
[41198, 143560, 142617]
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


class _GatedInvariantNet(nn.Module):
    """What the Tetris and SHREC'17 steerable nets share: an optional input blur (se3cnn
    ``low_pass_filter(x, 2)``: :class:`LowPass3d`), a stack of :class:`GatedBlock` through the field
    types ``reprs`` with the subclass's ``STRIDES`` and gated ReLU / sigmoid nonlinearities, and the
    invariant pool of the last (scalar) type. Subclasses set the head."""

    STRIDES: list[int] = []

    def _build_stack(self, reprs: list, input_lowpass: bool, **block) -> None:
        """Register ``input_blur``, ``blocks`` and ``pool`` (in that order: the state-dict keys of
        the published checkpoints); ``block``: the :class:`GatedBlock` options of every block."""
        self.Rs_in = reprs[0]
        self.input_blur = LowPass3d(2, 1) if input_lowpass else None
        self.blocks = nn.Sequential(*[
            GatedBlock(reprs[i], reprs[i + 1], stride=self.STRIDES[i], activation=(F.relu, torch.sigmoid), **block)
            for i in range(len(reprs) - 1)])
        self.pool = InvariantPool(reprs[-1])

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant descriptor: the pooled scalars of the last block, before the head."""
        check_channels(x, self.Rs_in, type(self).__name__)
        if self.input_blur is not None:
            x = self.input_blur(x)
        return self.pool(self.blocks(x))


class TetrisSE3Net(_GatedInvariantNet):
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
        self._build_stack([multiplicities_to_rs(f) for f in features], input_lowpass, size=size, padding=padding,
                          lowpass=lowpass, lowpass_order=lowpass_order)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(features[-1][0], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Invariant descriptor ``(B, 128)`` before dropout and the linear layer."""
        return self.descriptor(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.features(x)))


# --------------------------------------------------------------------------- SHREC'17
class Shrec17SE3Net(_GatedInvariantNet):
    """The steerable CNN of the SHREC'17 experiment (§5.3; se3cnn ``examples/shrec17/model.py``)
    on voxelised shapes, input ``(B, 1, n, n, n)`` (paper: n = 64).
    Multiplicities per ``l = (0, 1, 2)``::

        (1) → (8, 4, 2) → (8, 4, 2) → (16, 8, 4) → (16, 8, 4) → (32, 16, 8) → (32, 16, 8)
            → (32, 16, 8) → (512,)

    eight :class:`GatedBlock` (ReLU / sigmoid gates), kernel 5, padding 4, batch norm of each
    block's input (se3cnn ``normalization="batch"``: no affine parameters), strides 2 on blocks
    1, 3, 5, 7 as plain strided convolutions (``smooth_stride=False``: ``lowpass=False``), then
    the global average of the 512 scalars and ``Linear(512, classes)``. Spatial sizes for
    n = 64: 34, 38, 21, 25, 15, 19, 12, 16. **142,617** parameters at 55 classes (the paper's
    "142k"; asserted in the tests). ``input_lowpass`` blurs the input with se3cnn's
    ``low_pass_filter(x, 2)`` first (:class:`LowPass3d`); ``features`` replaces the
    multiplicities (a narrow copy for tests or reduced presets, same depth and strides).
    Exact equivariance under the 24 cube rotations needs every strided convolution to see an
    odd padded size, e.g. ``n = 61`` (:func:`exact_sizes`).
    """

    FEATURES = [(1,), (8, 4, 2), (8, 4, 2), (16, 8, 4), (16, 8, 4), (32, 16, 8), (32, 16, 8), (32, 16, 8),
                (512,)]
    STRIDES = [2, 1, 2, 1, 2, 1, 2, 1]

    def __init__(self, num_classes: int = 55, features: Sequence[Sequence[int]] | None = None, size: int = 5,
                 padding: int = 4, batch_norm: bool = True, input_lowpass: bool = False):
        super().__init__()
        features = [tuple(f) for f in (features or self.FEATURES)]
        if len(features) != len(self.STRIDES) + 1 or len(features[-1]) != 1 or features[0] != (1,):
            raise ValueError("Shrec17SE3Net: features must list 9 multiplicity tuples from (1,) to scalars "
                             "only, e.g. (512,)")
        self.size, self.padding = int(size), int(padding)
        self._build_stack([multiplicities_to_rs(f) for f in features], input_lowpass, size=size, padding=padding,
                          lowpass=False, batch_norm=batch_norm)
        self.classifier = nn.Linear(features[-1][0], num_classes)
        nn.init.normal_(self.classifier.weight, std=features[-1][0] ** -0.5)  # as the reference
        nn.init.zeros_(self.classifier.bias)

    def spatial_sizes(self, n: int) -> list[int]:
        out = []
        for s in self.STRIDES:
            n = (n + 2 * self.padding - self.size) // s + 1
            out.append(n)
        return out

    def exact_sizes(self, limit: int = 128) -> list[int]:
        """Input edges ``n ≤ limit`` at which every strided convolution samples a grid symmetric
        under the cube rotations ((n + 2·padding − size) even before each stride 2)."""
        ok = []
        for n in range(self.size, limit + 1):
            m, good = n, True
            for s in self.STRIDES:
                good &= s == 1 or (m + 2 * self.padding - self.size) % s == 0
                m = (m + 2 * self.padding - self.size) // s + 1
            if good:
                ok.append(n)
        return ok

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant descriptor ``(B, 512)`` before the linear layer."""
        return self.descriptor(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


# --------------------------------------------------------------------------- CATH SE3ResNet34Small
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
    Stage layout and strides (:attr:`STRIDES`) are those of :class:`models.baselines.ResNet34`.

    Exactness of cube-rotation equivariance: the three pooled strides need ``n ≡ 1 (mod 8)``
    voxels per axis (e.g. 9, 25, 49; not the paper's 50), see :mod:`models.steerable.layers`.
    """

    FEATURES = [
        [(2, 2, 2, 2)],
        [[(2, 2, 2, 2)] * 2] * 3,
        [[(4, 4, 4, 4)] * 2] * 4,
        [[(8, 8, 8, 8)] * 2] * 6,
        [[(16, 16, 16, 16)] * 2] * 2 + [[(16, 16, 16, 16), (256,)]],
    ]
    STRIDES = [1, 1, 2, 2, 2]

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
        for blocks, stride in zip(self.FEATURES[1:], self.STRIDES[1:]):
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


__all__ = ["multiplicities_to_rs", "TetrisSE3Net", "SE3GatedResBlock", "SE3ResNet34Small"]
