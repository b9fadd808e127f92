"""Plain 2-D CNN baselines: the rotated-MNIST Z2CNN and the cosmology flat-patch ConvNet.

Papers: Cohen & Welling 2016, *Group Equivariant Convolutional Networks* (ICML), §8.1 and
Table 1 (rotated MNIST: Z2CNN 5.03 %, the conventional row the Harmonic Networks paper compares
against, Worrall et al. 2017, Table 1; reference ``tscohen/gconv_experiments``
``MNIST_ROT/models/Z2CNN.py``); Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput.
27:130 (2019), §"Baselines" (reference code deepsphere-cosmo-tf1 ``hyperparameters.py``
``FCN-2d`` / ``CNN-2d`` and ``deepsphere/models.py::cnn2d``).

* :class:`Z2CNN`: 7 valid convolutions on 28×28 digits.
* :class:`FlatPatchConvNet`: a 2D ConvNet on a partial map seen as an image. The partial map of
  order ``o`` is the NEST block under one base pixel of the Nside = ``o`` tessellation, turned
  into an ``(Nside/o) × (Nside/o)`` image by :func:`models.deepsphere.healpix.nest_image_index`
  (the curvature is ignored). Architecture (``FCN-2d`` / ``CNN-2d``): 5 × [Conv 5×5 stride 2
  (no bias) → BN → bias → ReLU] with F = 8, 16, 32, 32, 16, then
  FCN: Conv 5×5 (num_classes, stride 1, no BN) → spatial mean;
  CNN: flatten → Linear(num_classes, no bias).
  L2 weight decay ``reg · Σ ½‖W‖² / n_weights`` (``cnn2d.loss``; reg = 3 for the published
  results file ``reg3_*``): the network carries ``l2_reg`` = reg and the task applies it
  (``optim.l2 = reg / (2·n_weights)``, see :meth:`FlatPatchConvNet.num_weights`).

The group-equivariant counterpart of Z2CNN is :class:`models.baselines.p4cnn.P4CNN`.

>>> import torch
>>> Z2CNN()(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in Z2CNN().parameters())
21750
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.deepsphere.healpix import nest_image_index


class Z2CNN(nn.Module):
    """The conventional CNN of Cohen & Welling (``Z2CNN``): 7 valid convolutions, 3×3 then a
    final 4×4, 20 channels, each ``conv → BN → ReLU``; dropout ``p`` after layers 1, 3, 4, 5, 6;
    2×2 max-pooling after layer 2; the 4×4 top convolution maps 28×28 input to 1×1×10 logits
    (spatial max, as in the reference). 21,750 parameters (published "22k": listed for Z2CNN in the README of
    ZJULearning/DREN@4b903ac, not checked against H-Net Table 1)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, channels: int = 20,
                 dropout: float = 0.3):
        super().__init__()
        c = int(channels)
        self.blocks = nn.ModuleList()
        for i in range(6):
            self.blocks.append(nn.Sequential(nn.Conv2d(in_channels if i == 0 else c, c, 3),
                                             nn.BatchNorm2d(c), nn.ReLU()))
        self.top = nn.Conv2d(c, num_classes, 4)
        self.drop = nn.Dropout(float(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"Z2CNN: expected input (B, C, H, W), got {tuple(x.shape)}")
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 1:
                x = F.max_pool2d(x, 2)
            else:
                x = self.drop(x)
        return self.top(x).amax(dim=(-2, -1))


class FlatPatchConvNet(nn.Module):
    """2D ConvNet baseline on NEST partial maps flattened to images (ASCOM §"Baselines").

    Input ``(B, V, 1)`` with ``V = side²`` (NEST order inside the block), as for DeepSphere;
    output logits ``(B, num_classes)``. ``l2_reg`` is the weight of the published L2 term
    ``reg · Σ ½‖W‖² / n_weights``; the network only carries it, the training task applies it.

    >>> net = FlatPatchConvNet(side=32, head="fcn")
    >>> net(torch.randn(2, 1024, 1)).shape
    torch.Size([2, 2])
    """

    def __init__(self, side: int, head: str = "fcn", num_classes: int = 2,
                 channels: Sequence[int] = (8, 16, 32, 32, 16), kernel: int = 5, stride: int = 2,
                 l2_reg: float = 0.0):
        super().__init__()
        if head not in ("fcn", "cnn"):
            raise ValueError(f"FlatPatchConvNet: head must be 'fcn' or 'cnn', got '{head}'")
        if l2_reg < 0:
            raise ValueError(f"FlatPatchConvNet: l2_reg must be non-negative, got {l2_reg}")
        self.side, self.head_kind, self.l2_reg = int(side), head, float(l2_reg)
        self.register_buffer("index", torch.from_numpy(nest_image_index(self.side)), persistent=False)
        layers = []
        fin, n = 1, self.side
        pad = kernel // 2
        for fout in channels:
            layers += [nn.Conv2d(fin, fout, kernel, stride, pad, bias=False),
                       nn.BatchNorm2d(fout, affine=False), _Bias(fout), nn.ReLU()]
            fin, n = fout, (n + 2 * pad - kernel) // stride + 1
        self.trunk = nn.Sequential(*layers)
        if head == "fcn":
            self.head = nn.Conv2d(fin, num_classes, kernel, 1, pad, bias=False)
        else:
            self.head = nn.Linear(fin * n * n, num_classes, bias=False)
        self.out_side = n

    def image(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.side ** 2 or x.shape[2] != 1:
            raise ValueError(f"FlatPatchConvNet: expected input (B, {self.side ** 2}, 1) "
                             f"(a NEST block of side {self.side}), got {tuple(x.shape)}")
        return x[:, self.index, 0].reshape(-1, 1, self.side, self.side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(self.image(x))
        if self.head_kind == "fcn":
            return self.head(h).mean(dim=(2, 3))
        return self.head(h.flatten(1))

    def num_weights(self) -> int:
        """Entries of the regularised weights (convolution kernels and the linear layer)."""
        return int(sum(p.numel() for p in self.parameters() if p.dim() > 1))


class _Bias(nn.Module):
    """One learnable bias per channel, added after a non-affine batch norm (``cnn2d.bias``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.view(1, -1, 1, 1)


__all__ = ["Z2CNN", "FlatPatchConvNet"]
