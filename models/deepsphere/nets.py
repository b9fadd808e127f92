"""DeepSphere classifiers: HEALPix maps (cosmological model classification) and 3D shapes seen
from the sphere (SHREC'17, :class:`SphereClassifier`, any sampling).

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
from models.deepsphere.sampling import CLASSIFIER_GRAPH, Sampling
from models.deepsphere.unet import sphere_levels


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
        lmax_factor, spectrum_scale: ``None``, 1 (default): ``L̃ = 2L/λ_max − I``, spectrum
            ``[−1, 1]``; deepsphere-cosmo-tf1 ``chebyshev5``: 1.02, 0.75, ``L̃ = 1.5·L/(1.02·λ_max) − I``,
            spectrum ``[−1, 0.4706]`` (:func:`.graph.chebyshev_operator`).
        pool: ``"max"`` (paper) or ``"avg"``.
    """

    def __init__(self, nside: int = 1024, in_channels: int = 1, num_classes: int = 2,
                 channels: Sequence[int] = (16, 32, 64, 64, 64), K: int = 5, k: int = 8,
                 order: int | None = None, base_index: int = 0, laplacian: str = "normalized",
                 graph: str = "knn", kernel_width: float | str = "optimal",
                 lmax: float | str = "auto", pool: str = "max", lmax_factor: float | None = None,
                 spectrum_scale: float = 1.0):
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
                                graph=graph, kernel_width=kernel_width, lmax=lmax,
                                lmax_factor=None if lmax_factor is None else float(lmax_factor),
                                spectrum_scale=float(spectrum_scale))
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
                                 a["graph"], a["kernel_width"], a["lmax"], a["lmax_factor"],
                                 a["spectrum_scale"])

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
                          pool: str = "max", lmax_factor: float | None = None,
                          spectrum_scale: float = 1.0) -> DeepSphereFCN | DeepSphereCNN:
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
               kernel_width=kernel_width, lmax=lmax, pool=pool, lmax_factor=lmax_factor,
               spectrum_scale=spectrum_scale)


# --------------------------------------------------------------------------- SHREC'17
#: the ICLR SHREC'17 widths (deepsphere-tf1 ``hyperparameters.get_params_shrec17_optim``, F[:-1])
SHREC17_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)


class SphereClassifier(nn.Module):
    """The DeepSphere SHREC'17 net (Defferrard et al. ICLR 2020, "3D objects recognition" and
    appendix "Experimental details"), on any sampling with a pooling hierarchy::

        input (B, V, 6)   ray-cast channels on HEALPix Nside 32 (NEST) or equiangular b = 64
        5 × [ChebConv(K = 4) → BN → ReLU → max-pool]   F = 16, 32, 64, 128, 256
                                                       Nside 32 → 1   |   b 64 → 2
        global average pooling → descriptor (B, 256)   (rotation invariant)
        Linear(256, num_classes, no bias) → logits     (deepsphere-tf1 ``fc(..., bias=False)``)

    deepsphere-tf1 ``get_params_shrec17_optim`` with ``architecture="CNN"`` (the FCN variant
    would end in a 55-map graph convolution; the published "190 k parameters" is this one):
    **190,032** parameters at 6 inputs and 55 classes (GC weights and biases 174,960, BN affine
    992, FC 14,080). Graphs: HEALPix ``graph="v1"`` (the 8 HEALPix neighbours, kernel
    exp(−d²/(2·mean d²)) as deepsphere-cosmo-tf1 ``utils.healpix_weightmatrix`` computes it; the
    paper's SHREC'17 setting) or k-NN; equiangular k = 4 with w = 1/d (``kernel_width="inverse_distance"``, Khasanova & Frossard, [ICLR]
    'Experiments'); these defaults are :data:`~.sampling.CLASSIFIER_GRAPH`. Each level has its own
    graph (:func:`~.unet.sphere_levels`).

    Arguments: ``sampling`` (``"healpix:32"``, ``"equiangular:64"``, …), ``in_channels``,
    ``num_classes``, ``channels`` (one pooled block each), ``K``, ``graph`` / ``k`` /
    ``kernel_width`` / ``laplacian`` (``None`` = the paper's choice for the sampling), ``pool``.

    >>> import torch
    >>> net = SphereClassifier("healpix:4", in_channels=6, num_classes=5, channels=(4, 8))
    >>> net(torch.randn(2, 192, 6)).shape, net.embed(torch.randn(2, 192, 6)).shape
    (torch.Size([2, 5]), torch.Size([2, 8]))
    >>> sum(p.numel() for p in SphereClassifier("healpix:32", num_classes=55).parameters())
    190032
    """

    def __init__(self, sampling: str = "healpix:32", in_channels: int = 6, num_classes: int = 55,
                 channels: Sequence[int] = SHREC17_CHANNELS, K: int = 4, graph: str | None = None,
                 k: int | None = None, kernel_width: float | str | None = None,
                 laplacian: str = "normalized", pool: str = "max"):
        super().__init__()
        channels = [int(c) for c in channels]
        sampling = Sampling.parse(sampling)
        paper = CLASSIFIER_GRAPH.get(sampling.kind, {})
        graph = paper.get("graph", "knn") if graph is None else graph
        k = paper.get("k") if k is None else k
        kernel_width = paper.get("kernel_width") if kernel_width is None else kernel_width
        levels = sphere_levels(sampling, len(channels), k=k, laplacian=laplacian, kernel_width=kernel_width,
                               pool=pool, graph=graph)
        self.sampling, self.in_channels, self.num_classes = str(sampling), int(in_channels), int(num_classes)
        self.num_vertices = levels[0].num_vertices
        self.level_names = [lv.name for lv in levels]
        fin, blocks = self.in_channels, []
        for lv, fout in zip(levels, channels):
            blocks.append(nn.ModuleDict({"conv": ChebConv(fin, fout, K, lv.laplacian), "bn": SphereBatchNorm(fout),
                                         "pool": lv.pool}))
            fin = fout
        self.blocks = nn.ModuleList(blocks)
        self.act, self.gap = nn.ReLU(), GlobalAvgPool()
        self.classifier = nn.Linear(fin, self.num_classes, bias=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant descriptor ``(B, F_last)`` (global average of the last pooled level)."""
        if x.dim() != 3 or x.shape[1] != self.num_vertices or x.shape[2] != self.in_channels:
            raise ValueError(f"SphereClassifier: expected input (B, {self.num_vertices}, {self.in_channels}) "
                             f"({self.sampling}), got {tuple(x.shape)}")
        for blk in self.blocks:
            x = blk["pool"](self.act(blk["bn"](blk["conv"](x))))
        return self.gap(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
