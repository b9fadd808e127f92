"""DeepSphere networks for HEALPix maps (cosmological model classification).

Paper: Perraudin et al. 2019 (ASCOM) §"Network architecture and hyper-parameters" and
cosmo-tf1 ``hyperparameters.py``; Defferrard et al. ICLR 2020 tab:cosmo (V2 graphs, k = 8/20/40).

Architecture (defaults = the paper's)::

    input (B, V, F_in), V = 12·Nside² (full) or (Nside/o)² (partial, order o), NEST order
    5 × [ChebConv(K=5) → BN → ReLU → HEALPix max-pool /4]   F = 16, 32, 64, 64, 64
                                                            Nside 1024 → 512 → … → 32
    FCN: ChebConv(num_classes, K=5) (no BN) → global average pooling   (rotation invariant)
    CNN: flatten (V_last·F_last) → Linear(num_classes)                  (not invariant)

Each level ``Nside`` has its own graph (k-NN with the optimal width, or V1), built once per
process and shared (:func:`models.deepsphere.graph.healpix_laplacian` cache). The outputs are
logits (softmax is in the loss).

>>> import torch
>>> net = DeepSphereFCN(nside=8, channels=(4, 8), K=3, num_classes=2)
>>> net.nsides
[8, 4, 2]
>>> net(torch.randn(3, 768, 1)).shape
torch.Size([3, 2])
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from models.deepsphere.graph import healpix_laplacian, healpix_pixels
from models.deepsphere.layers import ChebConv, GlobalAvgPool, HealpixPool, SphereBatchNorm


class _DeepSphereBase(nn.Module):
    """Shared trunk: ``len(channels)`` × [ChebConv → BN → ReLU → pool /4].

    Arguments:
        nside: input HEALPix resolution (power of 2).
        in_channels: input features per pixel.
        num_classes: outputs.
        channels: output features of the pooled blocks (paper: 16, 32, 64, 64, 64).
        K: Chebyshev coefficients per filter (paper: 5, i.e. degree 4).
        k: neighbours of the k-NN graph (8, 20, 40, 60 have a published optimal width).
        order, base_index: partial sphere (one NEST block of order ``o``; ``None`` = full sphere).
        laplacian: ``"normalized"`` (paper) or ``"combinatorial"``.
        graph: ``"knn"`` (ICLR V2) or ``"v1"`` (Perraudin et al., 8 HEALPix neighbours).
        kernel_width: ``"optimal"``, ``"mean"`` or a number ``t`` (see :mod:`.graph`).
        lmax: ``"auto"``, ``"eigsh"``, ``"bound"`` or a number (see :func:`.graph.resolve_lmax`).
        pool: ``"max"`` (paper) or ``"avg"``.
    """

    def __init__(self, nside: int = 1024, in_channels: int = 1, num_classes: int = 2,
                 channels: Sequence[int] = (16, 32, 64, 64, 64), K: int = 5, k: int = 8,
                 order: int | None = None, base_index: int = 0, laplacian: str = "normalized",
                 graph: str = "knn", kernel_width: float | str = "optimal",
                 lmax: float | str = "auto", pool: str = "max"):
        super().__init__()
        channels = [int(c) for c in channels]
        nside = int(nside)
        order = None if order is None else int(order)
        last = nside >> len(channels)
        if nside < 1 or nside & (nside - 1) or last < 1 or (order is not None and last < order):
            raise ValueError(f"{type(self).__name__}: Nside {nside} cannot be pooled {len(channels)} "
                             f"times" + ("" if order is None else f" within order-{order} blocks")
                             + "; use fewer channels/layers or a larger nside")
        healpix_pixels(nside, order, base_index)  # validates order / base_index
        self.nside, self.order, self.base_index = nside, order, int(base_index)
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.nsides = [nside >> i for i in range(len(channels) + 1)]
        self._graph_args = dict(k=int(k), order=order, base_index=self.base_index, kind=laplacian,
                                graph=graph, kernel_width=kernel_width, lmax=lmax)
        layers = []
        fin = self.in_channels
        for i, fout in enumerate(channels):
            layers.append(nn.ModuleDict({
                "conv": ChebConv(fin, fout, K, self.level_laplacian(self.nsides[i])),
                "bn": SphereBatchNorm(fout),
            }))
            fin = fout
        self.blocks = nn.ModuleList(layers)
        self.pool = HealpixPool(pool)
        self.act = nn.ReLU()
        self.out_features = fin

    def level_laplacian(self, nside: int) -> torch.Tensor:
        a = self._graph_args
        return healpix_laplacian(nside, a["k"], a["order"], a["base_index"], a["kind"],
                                 a["graph"], a["kernel_width"], a["lmax"])

    def num_vertices(self, nside: int | None = None) -> int:
        nside = self.nside if nside is None else nside
        return 12 * nside ** 2 if self.order is None else (nside // self.order) ** 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk output ``(B, V_last, F_last)`` at Nside ``nside / 2^len(channels)``."""
        V = self.num_vertices()
        if x.dim() != 3 or x.shape[1] != V or x.shape[2] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected input (B, {V}, {self.in_channels}) "
                             f"(HEALPix Nside {self.nside}, NEST), got {tuple(x.shape)}")
        for blk in self.blocks:
            x = self.pool(self.act(blk["bn"](blk["conv"](x))))
        return x


class DeepSphereFCN(_DeepSphereBase):
    """Fully convolutional DeepSphere: trunk → ChebConv(num_classes) → global average pooling.

    Every layer commutes with vertex permutations that preserve the graphs and the NEST
    hierarchy (e.g. 90° rotations about the pole on the full sphere), and the global average
    makes the logits invariant to them. Arguments: see :class:`_DeepSphereBase`.
    """

    def __init__(self, nside: int = 1024, in_channels: int = 1, num_classes: int = 2, **kwargs):
        super().__init__(nside, in_channels, num_classes, **kwargs)
        K = self.blocks[0]["conv"].K if len(self.blocks) else kwargs.get("K", 5)
        self.head = ChebConv(self.out_features, self.num_classes, K,
                             self.level_laplacian(self.nsides[-1]))
        self.gap = GlobalAvgPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gap(self.head(self.features(x)))


class DeepSphereCNN(_DeepSphereBase):
    """DeepSphere with a fully connected head: trunk → flatten → Linear(num_classes).

    Not rotation invariant (the linear layer sees pixel positions). Arguments: see
    :class:`_DeepSphereBase`.
    """

    def __init__(self, nside: int = 1024, in_channels: int = 1, num_classes: int = 2, **kwargs):
        super().__init__(nside, in_channels, num_classes, **kwargs)
        self.fc = nn.Linear(self.num_vertices(self.nsides[-1]) * self.out_features, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def deepsphere_classifier(head: Literal["fcn", "cnn"] = "fcn", nside: int = 1024, in_channels: int = 1,
                          num_classes: int = 2, channels: Sequence[int] = (16, 32, 64, 64, 64), K: int = 5,
                          k: int = 8, order: int | None = None, base_index: int = 0,
                          laplacian: str = "normalized", graph: str = "knn",
                          kernel_width: float | str = "optimal", lmax: float | str = "auto",
                          pool: str = "max") -> DeepSphereFCN | DeepSphereCNN:
    """:class:`DeepSphereFCN` (``head="fcn"``) or :class:`DeepSphereCNN` (``head="cnn"``), with
    the arguments of the trunk spelled out (see :class:`_DeepSphereBase`): the typed entry point
    a config entry ``{kind: deepsphere, head: …}`` is checked against and built with.

    >>> type(deepsphere_classifier("cnn", nside=8, channels=(4,), K=3)).__name__
    'DeepSphereCNN'
    """
    if head not in ("fcn", "cnn"):
        raise ValueError(f"deepsphere_classifier: head must be 'fcn' or 'cnn', got '{head}'")
    cls = DeepSphereFCN if head == "fcn" else DeepSphereCNN
    return cls(nside=nside, in_channels=in_channels, num_classes=num_classes, channels=channels, K=K, k=k,
               order=order, base_index=base_index, laplacian=laplacian, graph=graph,
               kernel_width=kernel_width, lmax=lmax, pool=pool)
