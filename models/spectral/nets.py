"""Spectral spherical CNNs for SHREC'17: Esteves et al. 2018 and Cohen et al. 2018 (S2CNN).

Both take the input of the DeepSphere equiangular net, ``(B, V, C)`` with ``V = 4b²`` vertices
in the order of :func:`models.deepsphere.graph.equiangular_vectors` (Driscoll–Healy grid), and
expose ``embed(x) → (B, F)`` (the rotation-invariant descriptor) and ``classifier``
(descriptor → logits), with ``forward(x) = classifier(embed(x))`` (what
:class:`models.tasks.Retrieve` needs for its triplet option). Outputs are logits.

**EstevesSphericalCNN** (Paper: Esteves et al. 2018; the layer table is the authors' published
configuration, ``daniilidis-group/spherical-cnn`` ``params/model-64.txt`` with ``models.two_branch``,
``layers.sphconv``; their repository ships it for ModelNet40, and its parameter count at 55 classes
is the ~0.5 M that the DeepSphere paper quotes for Esteves' SHREC'17 model. The paper's inputs are
a distance and a normal-angle channel, one per branch; with SHREC'17's six ray-cast channels the
split below is ours)::

    input (B, 4b², 6) → spectral pooling to the feature bandwidth (32: the paper's 64 × 64 maps)
    two branches (distance channels 0, 3 | normal-angle channels 1, 2, 4, 5), each
      8 × [SphericalConv (zonal, 8 anchor degrees) → BN (shift only) → PReLU]
           widths 16, 16, 32, 32, 64, 64, 128, 128; spectral pooling ÷2 in layers 3, 5, 7
           (bandwidth 32 → 16 → 8 → 4); in the pooling layers branch 1 also receives branch 2
    weighted (quadrature) global average per branch → descriptor (B, 128 + 128)
    Linear(256, num_classes) → logits

**491,959** parameters at 6 inputs and 55 classes (the paper: ~0.5 M; the code's extra
per-branch loss head, 7,095 more at 55 classes, is left out: :class:`~models.tasks.Retrieve`
trains ``classifier(embed(x))`` only).

**S2CNN** (Paper: Cohen et al. 2018, SHREC'17 experiment; code
``jonas-koehler/s2cnn`` ``examples/shrec17/model.py``, the "simplified" model of its README)::

    input (B, 4·64², 6) → S2Convolution(6 → 100, b 64 → 16, 128 equatorial kernel points)
    BN3d → ReLU → SO3Convolution(100 → 100, b 16 → 10, 32 equatorial kernel rotations)
    BN3d → ReLU → SO(3) integral (quadrature) → descriptor (B, 100) → Linear(100, 55)

**402,955** parameters (s2cnn README: "400k"). ``S2CNN(bandwidth=128, **S2CNN_ORIGINAL)`` is
``model_original.py`` (the paper's 1.4 M, b = 128: widths 50, 70, 350, bandwidths 32, 22, 7,
max over the SO(3) grid, BatchNorm1d without affine, Linear): **1,399,515** parameters.

>>> import torch
>>> net = EstevesSphericalCNN(bandwidth=8, num_classes=5, channels=(4, 4, 8, 8), pool=(0, 0, 1, 0),
...                           concat=(0, 0, 1, 0))
>>> net(torch.randn(2, 256, 6)).shape, net.embed(torch.randn(2, 256, 6)).shape
(torch.Size([2, 5]), torch.Size([2, 16]))
>>> s2cnn = S2CNN(bandwidth=8, num_classes=5, features=(4, 6), bandwidths=(4, 3))
>>> s2cnn(torch.randn(2, 256, 6)).shape, s2cnn.embed(torch.randn(2, 256, 6)).shape
(torch.Size([2, 5]), torch.Size([2, 6]))
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from models.spectral.layers import (S2Convolution, SO3Convolution, SO3Integrate, SpectralPool, SphereAverage,
                                    SphericalConv, s2_equatorial_grid, s2_near_identity_grid,
                                    so3_equatorial_grid, so3_near_identity_grid, sphere_to_grid)

#: Esteves et al. 2018 (code ``params/model-64.txt``): widths, pooling layers, branch concatenation
ESTEVES_CHANNELS: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 128, 128)
ESTEVES_POOL: tuple[int, ...] = (0, 0, 1, 0, 1, 0, 1, 0)
ESTEVES_CONCAT: tuple[int, ...] = (0, 0, 1, 0, 1, 0, 1, 0)
#: the first feature maps of Esteves et al. are 64 × 64 (``--input_res 64``): Driscoll–Healy bandwidth 32
ESTEVES_FEATURE_BANDWIDTH = 32
#: SHREC'17 channels (s2cnn ``dataset.py``): distance, cos, sin of the mesh, then of its convex hull;
#: Esteves' two branches take the distances and the normal angles
SHREC17_BRANCHES: tuple[tuple[int, ...], ...] = ((0, 3), (1, 2, 4, 5))

#: s2cnn ``examples/shrec17/model.py`` (b = 64)
S2CNN_SIMPLIFIED = {"features": (100, 100), "bandwidths": (16, 10)}
#: s2cnn ``examples/shrec17/model_original.py`` (the paper's model, b = 128)
S2CNN_ORIGINAL = {"features": (50, 70, 350), "bandwidths": (32, 22, 7), "pool": "max", "head_batchnorm": True}


def _check_input(x: torch.Tensor, bandwidth: int, channels: int, who: str) -> torch.Tensor:
    if x.dim() != 3 or x.shape[1] != 4 * bandwidth ** 2 or x.shape[2] != channels:
        raise ValueError(f"{who}: expected input (B, {4 * bandwidth ** 2}, {channels}) (equiangular b = {bandwidth}), "
                         f"got {tuple(x.shape)}")
    return sphere_to_grid(x, bandwidth, who)


class ShiftBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over ``(B, C, H, W)`` with a learnt shift and no learnt scale (TensorFlow
    ``batch_normalization(scale=False)``, as in Esteves' code: a scale is redundant before a
    (P)ReLU)."""

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=False)
        self.shift = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.shift[:, None, None]


class EstevesBlock(nn.Module):
    """``SphericalConv`` (no bias; spectral pooling when ``bandwidth_out < bandwidth_in``) →
    ``ShiftBatchNorm2d`` → ``PReLU`` (one slope per channel, initial 0.1), on ``(B, C, 2b, 2b)``."""

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int,
                 n_filter_params: int | None):
        super().__init__()
        self.conv = SphericalConv(in_channels, out_channels, bandwidth_in, bandwidth_out, n_filter_params, bias=False)
        self.bn = ShiftBatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels, init=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv.forward_grid(x)))


class EstevesSphericalCNN(nn.Module):
    """Esteves et al. 2018 spherical CNN (zonal spectral convolutions), SHREC'17 configuration by
    default; see the module docstring for the layer table.

    Arguments: ``bandwidth`` (input grid, ``V = 4b²``), ``in_channels``, ``num_classes``;
    ``channels``, ``pool`` (1 = halve the bandwidth in that layer) and ``concat`` (1 = the first
    branch also receives the other branches' maps) per layer; ``n_filter_params`` (anchor degrees of
    the smooth spectral filters, at most the layer's input bandwidth; ``None`` = one per degree);
    ``branches`` (input channel indices per branch; ``None`` = one branch of all channels);
    ``feature_bandwidth`` (bandwidth of the first feature maps; the input is spectrally pooled to it;
    default ``min(bandwidth, 32)``). Smaller CPU variants: e.g. ``bandwidth=16`` or narrower
    ``channels``.

    >>> sum(p.numel() for p in EstevesSphericalCNN(bandwidth=64).parameters())
    491959
    """

    def __init__(self, bandwidth: int = 64, in_channels: int = 6, num_classes: int = 55,
                 channels: Sequence[int] = ESTEVES_CHANNELS, pool: Sequence[int] = ESTEVES_POOL,
                 concat: Sequence[int] = ESTEVES_CONCAT, n_filter_params: int | None = 8,
                 branches: Sequence[Sequence[int]] | None = SHREC17_BRANCHES, feature_bandwidth: int | None = None):
        super().__init__()
        channels, pool, concat = [int(c) for c in channels], [bool(p) for p in pool], [bool(c) for c in concat]
        if not (len(channels) == len(pool) == len(concat)) or not channels:
            raise ValueError(f"EstevesSphericalCNN: channels, pool and concat need one entry per layer, got "
                             f"{len(channels)}, {len(pool)}, {len(concat)}")
        self.bandwidth, self.in_channels, self.num_classes = int(bandwidth), int(in_channels), int(num_classes)
        branches = [tuple(range(self.in_channels))] if branches is None else [tuple(int(i) for i in b) for b in branches]
        bad = sorted({i for b in branches for i in b if not 0 <= i < self.in_channels})
        if bad or any(not b for b in branches):
            raise ValueError(f"EstevesSphericalCNN: branches {branches} must be non-empty lists of input channels "
                             f"0..{self.in_channels - 1} (pass branches=None for one branch of all channels)")
        self.branches = branches
        fb = min(self.bandwidth, ESTEVES_FEATURE_BANDWIDTH) if feature_bandwidth is None else int(feature_bandwidth)
        if not 1 <= fb <= self.bandwidth:
            raise ValueError(f"EstevesSphericalCNN: feature_bandwidth must be in 1..{self.bandwidth}, got {fb}")
        self.feature_bandwidth = fb
        self.resample = SpectralPool(self.bandwidth, fb) if fb < self.bandwidth else None
        widths = [len(b) for b in branches]
        b_cur, self.bandwidths = fb, []
        layers = []
        for i, (cout, p, cat) in enumerate(zip(channels, pool, concat)):
            b_out = b_cur // 2 if p else b_cur
            if b_out < 1:
                raise ValueError(f"EstevesSphericalCNN: layer {i} pools bandwidth {b_cur} below 1; "
                                 f"use fewer pooling layers or a larger bandwidth")
            cins = [sum(widths) if (cat and k == 0) else w for k, w in enumerate(widths)]
            layers.append(nn.ModuleList([EstevesBlock(c, cout, b_cur, b_out, n_filter_params) for c in cins]))
            self.bandwidths.append(b_out)
            widths, b_cur = [cout] * len(branches), b_out
        self.concat = concat
        self.layers = nn.ModuleList(layers)
        self.pool = SphereAverage()
        self.embedding_dim = sum(widths)
        self.classifier = nn.Linear(self.embedding_dim, self.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant descriptor ``(B, Σ widths)``: weighted global average of each branch."""
        x = _check_input(x, self.bandwidth, self.in_channels, "EstevesSphericalCNN")
        if self.resample is not None:
            x = self.resample.forward_grid(x)
        feats = [x[:, list(b)] for b in self.branches]
        for blocks, cat in zip(self.layers, self.concat):
            inputs = [torch.cat(feats, dim=1) if (cat and k == 0) else f for k, f in enumerate(feats)]
            feats = [blk(f) for blk, f in zip(blocks, inputs)]
        return self.pool(torch.cat(feats, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class S2CNN(nn.Module):
    """Cohen et al. 2018 spherical CNN, s2cnn's SHREC'17 model by default (see the module docstring).

    Arguments: ``bandwidth`` (input grid), ``in_channels``, ``num_classes``; ``features`` and
    ``bandwidths``: width and output bandwidth of the S² convolution then of each SO(3)
    convolution; ``kernel_grid``: ``"equatorial"`` (s2cnn SHREC'17: ``2·b_in`` points on the
    equator / rotations with β = π/2, γ = 0) or ``"near_identity"`` (s2cnn's default rings,
    :func:`~.layers.s2_near_identity_grid`); ``pool``: ``"integrate"`` (Haar integral, invariant to
    every rotation for band-limited maps) or ``"max"`` (over the SO(3) grid, ``model_original``);
    ``head_batchnorm``: BatchNorm1d (no affine) before the linear head (``model_original``).
    Smaller CPU variants: e.g. ``S2CNN(bandwidth=32, features=(32, 32), bandwidths=(8, 6))``.

    >>> sum(p.numel() for p in S2CNN(bandwidth=64).parameters())
    402955
    """

    def __init__(self, bandwidth: int = 64, in_channels: int = 6, num_classes: int = 55,
                 features: Sequence[int] = S2CNN_SIMPLIFIED["features"],
                 bandwidths: Sequence[int] = S2CNN_SIMPLIFIED["bandwidths"],
                 kernel_grid: Literal["equatorial", "near_identity"] = "equatorial",
                 pool: Literal["integrate", "max"] = "integrate", head_batchnorm: bool = False):
        super().__init__()
        features, bandwidths = [int(f) for f in features], [int(b) for b in bandwidths]
        if len(features) != len(bandwidths) or not features:
            raise ValueError(f"S2CNN: features and bandwidths need one entry per layer, got {features}, {bandwidths}")
        if kernel_grid not in ("equatorial", "near_identity"):
            raise ValueError(f"S2CNN: unknown kernel_grid {kernel_grid!r}; valid: 'equatorial', 'near_identity'")
        if pool not in ("integrate", "max"):
            raise ValueError(f"S2CNN: unknown pool {pool!r}; valid: 'integrate', 'max'")
        self.bandwidth, self.in_channels, self.num_classes = int(bandwidth), int(in_channels), int(num_classes)
        self.features, self.bandwidths, self.pool_kind = features, bandwidths, pool
        eq = kernel_grid == "equatorial"
        s2_grid = s2_equatorial_grid(n_alpha=2 * self.bandwidth) if eq else s2_near_identity_grid()
        self.s2 = S2Convolution(self.in_channels, features[0], self.bandwidth, bandwidths[0], grid=s2_grid)
        blocks = []
        for (f_in, b_in), (f_out, b_out) in zip(zip(features, bandwidths), zip(features[1:], bandwidths[1:])):
            grid = (so3_equatorial_grid(max_gamma=0.0, n_alpha=2 * b_in, n_gamma=1) if eq
                    else so3_near_identity_grid())
            blocks.append(nn.Sequential(nn.BatchNorm3d(f_in), nn.ReLU(), SO3Convolution(f_in, f_out, b_in, b_out, grid)))
        self.so3 = nn.Sequential(*blocks)
        self.bn, self.act = nn.BatchNorm3d(features[-1]), nn.ReLU()
        self.integrate = SO3Integrate()
        self.embedding_dim = features[-1]
        head = nn.Linear(features[-1], self.num_classes)
        self.classifier = nn.Sequential(nn.BatchNorm1d(features[-1], affine=False), head) if head_batchnorm else head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant descriptor ``(B, features[-1])``: SO(3) integral (or max) of the last maps."""
        _check_input(x, self.bandwidth, self.in_channels, "S2CNN")
        y = self.act(self.bn(self.so3(self.s2(x))))
        return self.integrate(y) if self.pool_kind == "integrate" else y.flatten(2).amax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


__all__ = [
    "ESTEVES_CHANNELS", "ESTEVES_POOL", "ESTEVES_CONCAT", "ESTEVES_FEATURE_BANDWIDTH", "SHREC17_BRANCHES",
    "S2CNN_SIMPLIFIED", "S2CNN_ORIGINAL", "ShiftBatchNorm2d", "EstevesBlock", "EstevesSphericalCNN", "S2CNN",
]
