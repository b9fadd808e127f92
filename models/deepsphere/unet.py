"""DeepSphere U-Net for dense segmentation on the sphere (CAM5 climate events, TC / AR / BG).

Paper: Defferrard, Milani, Gusset, Perraudin, ICLR 2020, §"Climate event segmentation" and
appendix "Experimental details" (tab:climate); reference code
deepsphere-tf1 ``experiments/climate/run_experiment_ico.py`` (``F = [32, 64, 128, 256, 512,
512, 512]`` on levels ``[5, 5, 4, 3, 2, 1, 0]``, K = 4, average pooling, batch norm).

Architecture, for a hierarchy of ``D + 1`` levels (level 0 = the input sampling; ``encoder[d]``
the widths of the graph convolutions at depth ``d``)::

    encoder, depth d = 0 … D:  [pool ↓ (d > 0)] → for w in encoder[d]: GC_w → BN → ReLU
                               skip_d = output at depth d (d < D)
    decoder, depth d = D−1 … 0: unpool ↑ → GC_{s_d} → BN → ReLU → concat(·, skip_d)
                               → GC_{s_d} → BN → ReLU → for w in reversed(encoder[d][:-1]): GC_w → BN → ReLU
                               (s_d = encoder[d][-1], the width of the skip)
    head:                      GC_{num_classes} (no BN / ReLU): logits

GC = :class:`~.layers.ChebConv` with ``K`` coefficients on the level's graph. The paper's net is
``encoder = ((32, 64), (128,), (256,), (512,), (512,), (512,))`` on icosahedral levels 5 … 0
(:data:`PAPER_ENCODER`); the decoder's "upconv, concat, conv" per level is deepsphere-tf1's
``_decoder`` (unpool → filter → concat → filter). Its parameter count here is
**10,486,787** (all GC weights and biases + BN affine parameters; ``count_parameters``) against
the published **13 M** ([ICLR] tab:climate), 19 % fewer: the published decoder is not fully
specified (in the deepsphere-tf1 ``models.py::_decoder`` read, commit 06a1b67, the skip taken at
each level is the *pooled* output of the encoder layer, one level coarser than the unpooled
signal it is concatenated with, so that code cannot be followed literally).
The "Jiang architecture" row (published **590 k**) uses UGSCNN's widths, ``feat = 8`` at level 5
doubling per level (maxjiang93/ugscnn ``experiments/exp4_sphere_climate/run.sh`` ``--feat 8``),
``((8,), (16,), (32,), (64,), (128,), (256,))`` (:data:`JIANG_ENCODER`; the exact widths of the DeepSphere variant are not in
the sources read): **527,387** parameters here, 11 % fewer than published.

Samplings (:func:`sphere_levels`): ``"ico:L"`` (levels ``L … L−D`` of the nested icosahedron,
k = 6, t = mean distance, :class:`~.layers.IcosahedralPool` / ``IcosahedralUnpool``),
``"healpix:NSIDE"`` (NEST, Nside halves per depth, k-NN graph with the optimal width,
:class:`~.layers.HealpixPool` ``avg`` / ``HealpixUnpool`` ``nearest``), ``"equiangular:B"``
(Driscoll–Healy ``2B × 2B``, B halves per depth, k-NN graph k = 8, 2 × 2
:class:`~.layers.EquiangularPool` average / ``EquiangularUnpool`` nearest) and ``"points"`` (an
arbitrary point set, e.g. CAM-SE columns: the :func:`~.graph.points_graph` k-NN graph on the
points, **no pooling**: every depth runs on the same graph, so the net has the same layers and
parameters and can take a checkpoint trained on another sampling).

Tensors are channels-first, as the segmentation task expects: input ``(B, C_in, V)``, output
``(B, num_classes, V)`` logits.

>>> import torch
>>> net = DeepSphereUNet("ico:2", in_channels=4, num_classes=3, encoder=((4, 8), (8,), (8,)))
>>> net(torch.randn(2, 4, 162)).shape
torch.Size([2, 3, 162])
>>> [lv.num_vertices for lv in net.levels]
[162, 42, 12]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from models.deepsphere.graph import icosahedral_size
from models.deepsphere.layers import ChebConv, SphereBatchNorm
from models.deepsphere.sampling import Sampling

#: the ICLR DeepSphere climate net: GC32, GC64 at L5, GC128 L4, GC256 L3, GC512 L2, L1, L0
PAPER_ENCODER: tuple[tuple[int, ...], ...] = ((32, 64), (128,), (256,), (512,), (512,), (512,))
#: the "Jiang architecture" widths (UGSCNN U-Net, feat = 8 doubling per level, levels 5 … 0)
JIANG_ENCODER: tuple[tuple[int, ...], ...] = ((8,), (16,), (32,), (64,), (128,), (256,))
#: published parameter counts ([ICLR] tab:climate)
PUBLISHED_PARAMETERS = {"paper": 13_000_000, "jiang": 590_000}


@dataclass
class SphereLevel:
    """One level of a sampling hierarchy: its rescaled Laplacian and name; ``pool`` maps this
    level to the next coarser one, ``unpool`` back (``None`` at the coarsest level)."""

    name: str
    laplacian: torch.Tensor
    pool: nn.Module | None = None
    unpool: nn.Module | None = None

    @property
    def num_vertices(self) -> int:
        return self.laplacian.shape[0]


def sphere_levels(sampling: str, depth: int, coords: np.ndarray | None = None, k: int | None = None,
                  laplacian: str = "normalized", kernel_width: float | str | None = None,
                  ico_unpool: str = "interp", pool: str = "avg", graph: str = "knn") -> list[SphereLevel]:
    """The ``depth + 1`` levels of a sampling (finest first), see the module docstring.

    ``sampling``: ``"ico:L"``, ``"healpix:NSIDE"``, ``"equiangular:B"`` or ``"points"`` (then
    ``coords``, unit vectors ``(n, 3)``, are required), parsed by
    :meth:`~.sampling.Sampling.parse`; its levels, pooling and graph defaults are the
    :class:`~.sampling.Sampling`'s (``k`` / ``kernel_width``: :data:`~.sampling.GRAPH_DEFAULTS`). ``pool``: ``"avg"``
    (climate) or ``"max"`` (SHREC'17) for HEALPix and equiangular pooling (icosahedral pooling
    is a 1-ring average); ``graph``: ``"knn"`` or ``"v1"`` (HEALPix only: the 8 HEALPix
    neighbours of Perraudin et al., :func:`~.graph.healpix_graph_v1`).
    """
    s = Sampling.parse(sampling, allowed=("ico", "healpix", "equiangular", "points"))
    depth = int(depth)
    levels = s.levels(depth)
    out = []
    for d, lv in enumerate(levels):
        if lv.kind == "points" and out:  # one graph on the points at every depth
            op = out[0].laplacian
        else:
            op = lv.operator(k, kernel_width, laplacian, graph, coords)
        name = f"points:{op.shape[0]}" if lv.kind == "points" else lv.name
        pool_, unpool = lv.pooling(pool, ico_unpool) if d < depth else (None, None)
        out.append(SphereLevel(name, op, pool_, unpool))
    return out


class LevelInfo(NamedTuple):
    name: str
    num_vertices: int


class _Block(nn.Module):
    """GC → BN → ReLU on ``(B, V, F)``."""

    def __init__(self, fin: int, fout: int, K: int, lap: torch.Tensor):
        super().__init__()
        self.conv, self.bn = ChebConv(fin, fout, K, lap), SphereBatchNorm(fout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class DeepSphereUNet(nn.Module):
    """The ICLR 2020 DeepSphere climate U-Net (module docstring), on any sampling hierarchy.

    Arguments:
        sampling: ``"ico:L"`` (paper: ``"ico:5"``), ``"healpix:NSIDE"`` (e.g. 32), ``"equiangular:B"``
            or ``"points"``.
        in_channels: input fields (16 CAM5 variables).
        num_classes: output classes (3: BG, TC, AR).
        encoder: widths per depth, finest first (:data:`PAPER_ENCODER`, :data:`JIANG_ENCODER`);
            ``len(encoder) − 1`` poolings.
        K: Chebyshev coefficients (paper: 4, degree 3).
        coords: unit vectors ``(n, 3)`` of a ``"points"`` sampling.
        k, kernel_width, laplacian: graph options (:func:`sphere_levels`).
        ico_unpool: ``"interp"`` (equivariant, default), ``"ones"`` (UGSCNN) or ``"nearest"``.
    """

    def __init__(self, sampling: str = "ico:5", in_channels: int = 16, num_classes: int = 3,
                 encoder: Sequence[Sequence[int]] = PAPER_ENCODER, K: int = 4,
                 coords: np.ndarray | None = None, k: int | None = None,
                 kernel_width: float | str | None = None, laplacian: str = "normalized",
                 ico_unpool: str = "interp"):
        super().__init__()
        encoder = [tuple(int(w) for w in ws) for ws in encoder]
        if not encoder or any(not ws for ws in encoder):
            raise ValueError(f"DeepSphereUNet: encoder needs at least one width per depth, got {encoder}")
        self.sampling, self.in_channels, self.num_classes = str(sampling), int(in_channels), int(num_classes)
        self.encoder_widths = encoder
        depth = len(encoder) - 1
        levels = sphere_levels(sampling, depth, coords, k, laplacian, kernel_width, ico_unpool)
        #: (name, number of vertices) per depth; the operators live in the ChebConvs only, so the
        #: net deep-copies and moves with ``.to()`` like any module
        self.levels = tuple(LevelInfo(lv.name, lv.num_vertices) for lv in levels)
        self.pools = nn.ModuleList([lv.pool for lv in levels[:-1]])
        self.unpools = nn.ModuleList([lv.unpool for lv in levels[:-1]])
        self.enc = nn.ModuleList()
        fin = self.in_channels
        for d, ws in enumerate(encoder):
            blocks = []
            for w in ws:
                blocks.append(_Block(fin, w, K, levels[d].laplacian))
                fin = w
            self.enc.append(nn.ModuleList(blocks))
        self.up, self.merge, self.tail = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for d in range(depth):  # index d = the depth the decoder step arrives at
            lap, s = levels[d].laplacian, encoder[d][-1]
            fdeep = encoder[d + 1][-1] if d + 1 == depth else encoder[d + 1][0]
            self.up.append(_Block(fdeep, s, K, lap))
            self.merge.append(_Block(2 * s, s, K, lap))
            tail, f = [], s
            for w in reversed(encoder[d][:-1]):
                tail.append(_Block(f, w, K, lap))
                f = w
            self.tail.append(nn.ModuleList(tail))
        f_top = encoder[0][0] if depth else encoder[0][-1]
        self.head = ChebConv(f_top, self.num_classes, K, levels[0].laplacian)

    @property
    def num_vertices(self) -> int:
        return self.levels[0].num_vertices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        V = self.num_vertices
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != V:
            raise ValueError(f"DeepSphereUNet: expected input (B, {self.in_channels}, {V}) "
                             f"(channels first, {self.levels[0].name}), got {tuple(x.shape)}")
        x = x.transpose(1, 2)
        skips = []
        depth = len(self.enc) - 1
        for d, blocks in enumerate(self.enc):
            if d:
                x = self.pools[d - 1](x)
            for blk in blocks:
                x = blk(x)
            if d < depth:
                skips.append(x)
        for d in reversed(range(depth)):
            x = self.up[d](self.unpools[d](x))
            x = self.merge[d](torch.cat([x, skips[d]], dim=2))
            for blk in self.tail[d]:
                x = blk(x)
        return self.head(x).transpose(1, 2)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (weights, biases, BN affine; not BN running statistics)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def paper_unet(sampling: str = "ico:5", architecture: str = "paper", **kwargs) -> DeepSphereUNet:
    """The published nets: ``architecture="paper"`` (DeepSphere, 13 M published) or ``"jiang"``
    (the "Jiang architecture" row, 590 k published).

    >>> paper_unet("ico:2", "jiang", encoder=((8,), (16,)), in_channels=16).encoder_widths
    [(8,), (16,)]
    """
    encs = {"paper": PAPER_ENCODER, "jiang": JIANG_ENCODER}
    if architecture not in encs:
        raise ValueError(f"paper_unet: architecture must be 'paper' or 'jiang', got '{architecture}'")
    kwargs.setdefault("encoder", encs[architecture])
    return DeepSphereUNet(sampling, **kwargs)


__all__ = ["DeepSphereUNet", "JIANG_ENCODER", "PAPER_ENCODER", "PUBLISHED_PARAMETERS", "SphereLevel",
           "count_parameters", "icosahedral_size", "paper_unet", "sphere_levels"]
