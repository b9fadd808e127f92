"""Linear-SVM baselines of the cosmological model discrimination (Perraudin et al. 2019).

Paper: Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput. 27:130 (2019), §"Baselines";
reference code deepsphere-cosmo-tf1 ``deepsphere/experiment_helper.py`` (features, SVM).

* :func:`psd_features`: ``healpy.anafast`` of the partial map on the sphere, the rest of the
  sphere ``UNSEEN``, times ℓ(ℓ+1);
* :func:`histogram_features`: 100 bins over the range of the noiseless training samples;
* :func:`fit_linear_svm`: ``C`` of a ``LinearSVC`` on standardised features chosen by
  validation accuracy.

No Lightning, no torch: numpy / healpy / scikit-learn.

>>> histogram_features(np.array([[0.1, 0.2, 0.9]]), 0.0, 1.0, bins=2).tolist()
[[2.0, 1.0]]
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np


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


__all__ = ["psd_features", "histogram_features", "fit_linear_svm"]
