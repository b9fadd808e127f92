"""Per-site logistic regression: the cheap baseline of a segmentation table.

Every site (vertex, pixel) is classified from its own input channels alone, by one multinomial
logistic regression shared by all sites (scikit-learn, ``class_weight="balanced"``: the weighted
cross-entropy of the U-Nets, without any spatial context). A segmentation benchmark whose labels
a model can only get right by looking at a site's surroundings (the extent and shape of an event,
the core of a cyclone) shows that here: this row stays below the networks that see context.

No Lightning, no torch in the fit: numpy / scikit-learn; the scores are those of
:mod:`models.segmentation`, as for the networks.

>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, size=(6, 50))                      # 6 maps of 50 sites, 2 classes
>>> x = np.stack([y + 0.3 * rng.standard_normal(y.shape), rng.standard_normal(y.shape)], 1)
>>> s = PerSiteLogistic().fit(x[:4], y[:4]).score(x[4:], y[4:], ["a", "b"], [0, 1])
>>> s["test_acc_mean"] > 0.95
True
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np


class PerSiteLogistic:
    """Multinomial logistic regression on each site's channels (config ``models.<name>``: ``c`` the
    inverse regularisation strength, ``max_iter``, ``class_weight`` ``"balanced"`` or None).

    ``fit(x, y)`` / ``score(x, y, names, map_classes)`` take maps ``x`` (N, C, *sites) and labels
    ``y`` (N, *sites); ``predict_proba(x)`` returns (N, K, *sites)."""

    def __init__(self, c: float = 1.0, max_iter: int = 300, class_weight: str | None = "balanced"):
        from sklearn.linear_model import LogisticRegression
        self.clf = LogisticRegression(C=float(c), max_iter=int(max_iter), class_weight=class_weight)

    @staticmethod
    def _sites(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.moveaxis(x.reshape(x.shape[0], x.shape[1], -1), 1, -1).reshape(-1, x.shape[1])

    def fit(self, x: np.ndarray, y: np.ndarray) -> "PerSiteLogistic":
        from sklearn.exceptions import ConvergenceWarning
        with warnings.catch_warnings():  # max_iter is the budget: a fit that stops there is still the fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(self._sites(x), np.asarray(y).reshape(-1))
        return self

    def num_params(self) -> int:
        """Fitted coefficients and intercepts."""
        return int(self.clf.coef_.size + self.clf.intercept_.size)

    def _site_proba(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """(N * sites, K) class probabilities, K = ``k`` or the highest training class + 1; a class
        absent from the training sites has probability 0."""
        p = self.clf.predict_proba(self._sites(x))  # columns in self.clf.classes_ order
        full = np.zeros((p.shape[0], k or int(self.clf.classes_.max()) + 1))
        full[:, self.clf.classes_] = p
        return full

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        p = self._site_proba(x)
        return np.moveaxis(p.reshape(x.shape[0], -1, p.shape[1]), -1, 1).reshape(x.shape[0], p.shape[1], *x.shape[2:])

    def score(self, x: np.ndarray, y: np.ndarray, names: Sequence[str], map_classes: Sequence[int],
              stage: str = "test") -> dict[str, float]:
        """The segmentation metrics (:mod:`models.segmentation`) of the fitted model on ``(x, y)``,
        keyed ``<stage>_<metric>`` as the networks' CSV columns."""
        import torch

        from models import segmentation
        ms = segmentation.metric_set(len(names))
        segmentation.update(ms, torch.from_numpy(self._site_proba(x, len(names))).float(),
                            torch.from_numpy(np.asarray(y).reshape(-1)).long())
        return {key.replace("/", "_"): round(float(v), 6)
                for key, v in segmentation.scores(ms, stage, list(names), list(map_classes)).items()}
