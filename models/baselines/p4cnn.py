"""The p4 group CNN of the rotated-MNIST table (a group-equivariant baseline).

Paper: Cohen & Welling 2016, *Group Equivariant Convolutional Networks* (ICML), §8.1 and Table 1
(rotated MNIST: P4CNN with rotation pooling after every layer 3.21 %, P4CNN 2.28 %), the rows
the Harmonic Networks paper compares against (Worrall et al. 2017, Table 1). Reference:
``tscohen/gconv_experiments`` ``MNIST_ROT/models/P4CNN.py``. Its conventional counterpart
``Z2CNN`` is in :mod:`models.baselines.cnn2d`.

Group conventions (p4 = translations ⋊ quarter turns). A p4 feature map is ``(B, C, 4, H, W)``;
index ``s`` of axis 2 is the rotation ``r^s``, ``r`` the counter-clockwise quarter turn
``torch.rot90(·, 1, dims=(-2, -1))``. Rotating the input by ``r`` maps a p4 map ``f`` to
``(r·f)(s, x) = f(s − 1, r⁻¹x)``, i.e. ``torch.rot90`` of every plane then ``torch.roll`` by +1
along axis 2 (Cohen & Welling eq. 10–11, Fig. 1). Exact for valid convolutions and 2×2
max-pooling of even maps (28 → 26 → 24 → 12 → 10 → 8 → 6 → 4 → 1).

>>> import torch
>>> P4CNN()(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in P4CNN().parameters())
24680
>>> conv, x = P4ConvZ2(1, 3), torch.randn(1, 1, 9, 9)
>>> bool(torch.allclose(conv(torch.rot90(x, 1, dims=(-2, -1))), rotate_p4(conv(x)), atol=1e-6))
True
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class P4ConvZ2(nn.Module):
    """Lifting convolution ``Z² → p4`` (Cohen & Welling eq. 10): output rotation ``s`` is the
    correlation with the filter turned by ``r^s``. ``(B, C_in, H, W) → (B, C_out, 4, H', W')``;
    the bias is shared by the 4 rotations."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.padding = in_channels, out_channels, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.stack([torch.rot90(self.weight, s, dims=(-2, -1)) for s in range(4)], dim=1)
        k = w.shape[-1]
        y = F.conv2d(x, w.reshape(self.out_channels * 4, self.in_channels, k, k), padding=self.padding)
        y = y.reshape(y.shape[0], self.out_channels, 4, *y.shape[-2:])
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


class P4ConvP4(nn.Module):
    """Group convolution ``p4 → p4`` (Cohen & Welling eq. 11): the filter ``ψ(s', x)`` for output
    rotation ``s`` is ``ψ_s(s', x) = ψ(s' − s, r^{−s}x)`` — each plane turned by ``r^s`` and the
    rotation axis rolled by ``s``. All four are stacked into one ``F.conv2d``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.padding = in_channels, out_channels, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 4, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight.view(out_channels, in_channels * 4, kernel_size, kernel_size),
                                 a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1:3] != (self.in_channels, 4):
            raise ValueError(f"P4ConvP4: expected input (B, {self.in_channels}, 4, H, W), got {tuple(x.shape)}")
        w = torch.stack([torch.rot90(torch.roll(self.weight, s, dims=2), s, dims=(-2, -1))
                         for s in range(4)], dim=1)                  # (out, 4, in, 4, k, k)
        k = w.shape[-1]
        b = x.shape[0]
        y = F.conv2d(x.reshape(b, self.in_channels * 4, *x.shape[-2:]),
                     w.reshape(self.out_channels * 4, self.in_channels * 4, k, k), padding=self.padding)
        y = y.reshape(b, self.out_channels, 4, *y.shape[-2:])
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


def rotate_p4(f: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Act by ``r^k`` on a p4 map ``(B, C, 4, H, W)``: turn every plane, roll the rotation axis."""
    return torch.roll(torch.rot90(f, k, dims=(-2, -1)), k, dims=2)


class P4CNN(nn.Module):
    """The p4 group CNN of Cohen & Welling (``P4CNN``, rotation pooling at the end): the
    :class:`~models.baselines.cnn2d.Z2CNN` layout with ``P4ConvZ2`` then ``P4ConvP4`` layers,
    channels divided by √4 = 2 (10) to keep the parameter count, BN shared over the 4
    rotations of a channel (``BatchNorm3d``), ReLU, no dropout (commented out in the
    reference), 2×2 spatial max-pooling after layer 2, a 4×4 top ``P4ConvP4``, then max over
    rotations and space → logits exactly invariant to quarter turns. 24,680 parameters (published
    "25k": listed for P4CNN in the README of ZJULearning/DREN@4b903ac, not checked against H-Net
    Table 1)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, channels: int = 10):
        super().__init__()
        c = int(channels)
        self.convs = nn.ModuleList([P4ConvZ2(in_channels, c, 3)] + [P4ConvP4(c, c, 3) for _ in range(5)])
        self.bns = nn.ModuleList([nn.BatchNorm3d(c) for _ in range(6)])
        self.top = P4ConvP4(c, num_classes, 4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last p4 map ``(B, classes, 4, H', W')`` before rotation/spatial pooling."""
        if x.dim() != 4:
            raise ValueError(f"P4CNN: expected input (B, C, H, W), got {tuple(x.shape)}")
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = F.relu(bn(conv(x)))
            if i == 1:
                b, c, g, h, w = x.shape
                x = F.max_pool2d(x.reshape(b, c * g, h, w), 2).reshape(b, c, g, h // 2, w // 2)
        return self.top(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).amax(dim=(2, 3, 4))


__all__ = ["P4ConvZ2", "P4ConvP4", "rotate_p4", "P4CNN"]
