"""Baselines of the cosmological model discrimination (Perraudin et al. 2019, ASCOM §"Results").

Paper: Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput. 27:130 (2019), §"Baselines";
reference code deepsphere-cosmo-tf1 ``hyperparameters.py`` (``FCN-2d``, ``CNN-2d``),
``deepsphere/models.py::cnn2d`` and ``deepsphere/experiment_helper.py`` (features, SVM).

* :class:`FlatPatchConvNet`: a 2D ConvNet on a partial map seen as an image. The partial map of
  order ``o`` is the NEST block under one base pixel of the Nside = ``o`` tessellation; inside a
  HEALPix base pixel the NEST index interleaves the bits of the two face coordinates,
  ``p = Σ_b x_b 2^{2b} + y_b 2^{2b+1}``, so de-interleaving them (:func:`nest_xy`) turns the
  ``(Nside/o)²`` pixels into an ``(Nside/o) × (Nside/o)`` image (the face "flattened"; the
  curvature is ignored). Architecture (``FCN-2d`` / ``CNN-2d``): 5 × [Conv 5×5 stride 2 (no
  bias) → BN → bias → ReLU] with F = 8, 16, 32, 32, 16, then
  FCN: Conv 5×5 (num_classes, stride 1, no BN) → spatial mean;
  CNN: flatten → Linear(num_classes, no bias).
  L2 weight decay ``reg · Σ ½‖W‖² / n_weights`` (``cnn2d.loss``; reg = 3 for the published
  results file ``reg3_*``), applied by the task.
* SVM features: :func:`psd_features` (``healpy.anafast`` of the partial map on the sphere, the
  rest of the sphere ``UNSEEN``, times ℓ(ℓ+1)) and :func:`histogram_features` (100 bins over the
  range of the noiseless training samples); :func:`fit_linear_svm` chooses ``C`` of a
  ``LinearSVC`` on standardised features by validation accuracy.

No Lightning here: plain ``torch.nn`` / numpy / scikit-learn.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from torch import nn


# --------------------------------------------------------------------------- NEST -> image
def nest_xy(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Face coordinates ``(x, y)`` of the NEST indices ``0 … side²−1`` inside one block.

    ``x`` collects the even bits of the index, ``y`` the odd bits (HEALPix ``nest2xyf``), so
    pixels adjacent on the sphere are adjacent in the ``(x, y)`` grid.

    >>> x, y = nest_xy(4)
    >>> [(int(a), int(b)) for a, b in zip(x[:5], y[:5])]
    [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0)]
    """
    side = int(side)
    if side < 1 or side & (side - 1):
        raise ValueError(f"nest_xy: side must be a power of 2, got {side}")
    p = np.arange(side * side, dtype=np.int64)
    x = np.zeros_like(p)
    y = np.zeros_like(p)
    for b in range(max(1, side.bit_length() - 1)):
        x |= ((p >> (2 * b)) & 1) << b
        y |= ((p >> (2 * b + 1)) & 1) << b
    return x, y


def nest_image_index(side: int) -> np.ndarray:
    """``idx`` with ``image.reshape(-1) = patch[idx]``: row ``y``, column ``x`` of :func:`nest_xy`."""
    x, y = nest_xy(side)
    idx = np.empty(side * side, dtype=np.int64)
    idx[y * side + x] = np.arange(side * side)
    return idx


class FlatPatchConvNet(nn.Module):
    """2D ConvNet baseline on NEST partial maps flattened to images (ASCOM §"Baselines").

    Input ``(B, V, 1)`` with ``V = side²`` (NEST order inside the block), as for DeepSphere;
    output logits ``(B, num_classes)``.

    >>> net = FlatPatchConvNet(side=32, head="fcn")
    >>> net(torch.randn(2, 1024, 1)).shape
    torch.Size([2, 2])
    """

    def __init__(self, side: int, head: str = "fcn", num_classes: int = 2,
                 channels: Sequence[int] = (8, 16, 32, 32, 16), kernel: int = 5, stride: int = 2):
        super().__init__()
        if head not in ("fcn", "cnn"):
            raise ValueError(f"FlatPatchConvNet: head must be 'fcn' or 'cnn', got '{head}'")
        self.side, self.head_kind = int(side), head
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


# --------------------------------------------------------------------------- SVM features
def psd_features(x: np.ndarray, nside: int, order: int, base_index: int = 0, iter: int = 0) -> np.ndarray:
    """ℓ(ℓ+1)·Ĉ_ℓ of each partial map (``healpy.anafast``, ℓ ≤ 3·Nside − 1).

    Each row of ``x`` (``(n, (Nside/o)²)``, NEST block ``base_index`` of order ``o``) is placed
    on an otherwise ``UNSEEN`` full sphere (cosmo-tf1 ``psd_unseen`` places it in block 0;
    every block is a base-pixel patch of the same shape, so the choice is immaterial), converted
    to RING and passed to ``anafast``, which treats ``UNSEEN`` pixels as zero.
    """
    import healpy as hp

    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    npix = 12 * nside * nside
    block = (nside // order) ** 2
    if x.shape[1] != block:
        raise ValueError(f"psd_features: rows of length {block} expected for Nside {nside}, order {order}")
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1)
    r2 = hp.nest2ring(nside, np.arange(base_index * block, (base_index + 1) * block))
    out = np.empty((len(x), lmax + 1))
    ring = np.full(npix, hp.UNSEEN, dtype=np.float64)
    for i, row in enumerate(x):
        ring[r2] = row
        out[i] = hp.anafast(ring, lmax=lmax, iter=iter)
    return out * ell * (ell + 1)


def histogram_features(x: np.ndarray, lo: float, hi: float, bins: int = 100) -> np.ndarray:
    """Counts of each row's values in ``bins`` equal bins over ``[lo, hi]`` (values outside are
    dropped, ``numpy.histogram``; cosmo-tf1 ``histogram``)."""
    x = np.asarray(x)
    edges = np.linspace(lo, hi, bins + 1)
    out = np.empty((len(x), bins))
    for i, row in enumerate(x):
        out[i] = np.histogram(row, bins=edges)[0]
    return out


def fit_linear_svm(f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, y_val: np.ndarray,
                   Cs: Sequence[float] = tuple(np.logspace(-2, 2, 9)), max_iter: int = 5000):
    """A ``LinearSVC`` on standardised features, ``C`` chosen by validation accuracy.

    Standardisation uses the training mean and std (+1e-6), as cosmo-tf1 ``data_preprossing``;
    ``C`` ranges over ``logspace(−2, 2, 9)`` (``err_svc_linear``). Returns ``(predict, info)``:
    ``predict(features) → labels`` and ``{"C", "val_acc", "train_acc"}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    mu = f_train.mean(0)
    sd = f_train.std(0) + 1e-6

    def z(f):
        return (f - mu) / sd

    zt, zv = z(f_train), z(f_val)
    best = None
    for C in Cs:
        clf = LinearSVC(C=float(C), max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(zt, y_train)
        acc = float((clf.predict(zv) == y_val).mean())
        if best is None or acc > best[0]:
            best = (acc, float(C), clf)
    acc, C, clf = best
    info = {"C": C, "val_acc": acc, "train_acc": float((clf.predict(zt) == y_train).mean())}
    return (lambda f: clf.predict(z(f))), info
