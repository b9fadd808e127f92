"""Linear-SVM baselines of the cosmological model discrimination (Perraudin et al. 2019).

Paper: Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput. 27:130 (2019), §"Baselines";
reference code deepsphere-cosmo-tf1 ``deepsphere/experiment_helper.py`` (features, SVM).

* :func:`psd_features`: ``healpy.anafast`` of the partial map on the sphere, the rest of the
  sphere ``UNSEEN``, times ℓ(ℓ+1);
* :func:`histogram_features`: 100 bins over the range of the noiseless training samples;
* :func:`fit_linear_svm`: ``C`` of a ``LinearSVC`` on standardised features chosen by
  validation accuracy;
* :class:`LinearSVMBaseline`: the whole protocol of one grid point (features, the training set
  grown by noise realisations while validation improves, test accuracy); its constructor takes
  the keys of a config's ``models.svm_*`` entry.

No Lightning, no torch: numpy / healpy / scikit-learn.

>>> histogram_features(np.array([[0.1, 0.2, 0.9]]), 0.0, 1.0, bins=2).tolist()
[[2.0, 1.0]]
"""
from __future__ import annotations

import itertools
import warnings
from typing import Iterable, Literal, Sequence

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


class LinearSVMBaseline:
    """Linear SVM on PSD or histogram features of partial maps (ASCOM §"Baselines"; cosmo-tf1
    ``data_preprossing``, ``err_svc_linear``).

    Arguments: ``features`` (``psd`` | ``hist``), ``nside`` and ``order`` of the partial maps
    (PSD features), ``bins`` (histogram), ``psd_iter`` (``healpy.map2alm`` iterations of the
    PSD; cosmo-tf1: 3), ``Cs`` (the ``C`` grid), ``max_noise_realizations`` and ``tol``.

    :meth:`fit_and_score` computes the training features on noisy copies of the training
    samples; new noise realisations are added (one at a time, at most
    ``max_noise_realizations``) while the validation accuracy of the best ``C`` improves by at
    least ``tol``; the ``C`` and training set with the best validation accuracy are tested.

    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(40) % 2
    >>> x = rng.standard_normal((40, 64)) * (1 + y[:, None])   # class 1 is wider
    >>> s = {"x_train": x[:24], "y_train": y[:24], "x_val": x[24:32], "y_val": y[24:32],
    ...      "x_test": x[32:], "y_test": y[32:]}
    >>> out = LinearSVMBaseline("hist", nside=8, order=1, bins=8, Cs=[1.0]).fit_and_score(s, [x[:24]])
    >>> out["test_acc"], out["params"], out["svm_noise_realizations"]
    (1.0, 9, 1)
    """

    def __init__(self, features: Literal["psd", "hist"], nside: int, order: int, bins: int = 100,
                 psd_iter: int = 3, Cs: Sequence[float] = tuple(np.logspace(-2, 2, 9)),
                 max_noise_realizations: int = 1, tol: float = 0.005, max_iter: int = 5000):
        if features not in ("psd", "hist"):
            raise ValueError(f"LinearSVMBaseline: features must be 'psd' or 'hist', got '{features}'")
        if max_noise_realizations < 1:
            raise ValueError(f"LinearSVMBaseline: max_noise_realizations must be at least 1, "
                             f"got {max_noise_realizations}")
        self.features, self.nside, self.order = features, int(nside), int(order)
        self.bins, self.psd_iter = int(bins), int(psd_iter)
        self.Cs = [float(c) for c in Cs]
        self.max_noise_realizations = int(max_noise_realizations)
        self.tol, self.max_iter = float(tol), int(max_iter)

    def fit_and_score(self, samples: dict, train_realizations: Iterable[np.ndarray]) -> dict:
        """Fit and test on prepared samples: ``samples`` has ``x_train`` (clean) / ``y_train``,
        ``x_val`` / ``y_val`` and ``x_test`` / ``y_test`` (noisy, fixed); the training sets come
        from ``train_realizations`` (noisy copies of ``x_train``, one per realisation). Returns
        the row columns ``test_acc``, ``val_acc``, ``svm_train_acc``, ``svm_C``,
        ``svm_noise_realizations``, ``svm_val_history``, ``params`` (features + 1), ``n_train``,
        ``n_test``."""
        s = samples
        if self.features == "psd":
            def feats(x):
                return psd_features(x, self.nside, self.order, iter=self.psd_iter)
        else:
            lo, hi = float(s["x_train"].min()), float(s["x_train"].max())

            def feats(x):
                return histogram_features(x, lo, hi, self.bins)
        f_val, f_test = feats(s["x_val"]), feats(s["x_test"])
        fs, ys, history, best = [], [], [], None
        for x in itertools.islice(train_realizations, self.max_noise_realizations):
            fs.append(feats(x))
            ys.append(s["y_train"])
            predict, info = fit_linear_svm(np.concatenate(fs), np.concatenate(ys), f_val, s["y_val"],
                                           self.Cs, self.max_iter)
            history.append(info["val_acc"])
            if best is None or info["val_acc"] > best[1]["val_acc"]:
                best = (predict, info, len(fs))
            if len(history) > 1 and history[-1] < history[-2] + self.tol:
                break
        if best is None:
            raise ValueError("LinearSVMBaseline: no training realisation given")
        predict, info, nreal = best
        acc = float((predict(f_test) == s["y_test"]).mean())
        return {"test_acc": round(acc, 6), "val_acc": round(info["val_acc"], 6),
                "svm_train_acc": round(info["train_acc"], 6), "svm_C": info["C"],
                "svm_noise_realizations": nreal, "svm_val_history": " ".join(f"{h:.4f}" for h in history),
                "params": int(f_val.shape[1]) + 1, "n_train": len(s["y_train"]) * nreal,
                "n_test": len(s["y_test"])}


__all__ = ["psd_features", "histogram_features", "fit_linear_svm", "LinearSVMBaseline"]
