"""A classifier that sees only the total mass of its input: 1-nearest neighbour on ``Σ voxels``.

Total mass is invariant under rotations (exactly for the continuous signal, up to interpolation for
a resampled grid), so this baseline measures how much of a rotated-shape benchmark a single
rotation-invariant scalar can solve. On Tetris built as se3cnn builds it (``datamodules.tetris``,
``geometry="zoom"``) the 8 pieces fall into 5 groups of equal volume, so it can reach 5/8 = 62.5 %
in expectation and no more; with equal-volume pieces it is at chance (1/8).

No torch module, no training loop: :meth:`fit` stores the training masses, :meth:`predict` returns
the label of the nearest one.

>>> import torch
>>> x = torch.zeros(3, 1, 4, 4, 4); x[0, 0, 0, 0, :1] = 1; x[1, 0, 0, 0, :2] = 1; x[2, 0, 0, 0, :3] = 1
>>> clf = MassOnlyClassifier(num_classes=3).fit(x, torch.tensor([0, 1, 2]))
>>> clf.predict(x * 1.1).tolist(), clf.score(x, torch.tensor([0, 1, 2]))
([0, 1, 2], 1.0)
"""
from __future__ import annotations

import torch


class MassOnlyClassifier:
    """1-nearest neighbour on the sum of each sample's values (any shape after the batch axis)."""

    def __init__(self, num_classes: int = 8):
        self.num_classes = int(num_classes)
        self.masses: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    @staticmethod
    def mass(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1).double().sum(1)

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "MassOnlyClassifier":
        self.masses, self.labels = self.mass(x), torch.as_tensor(y).long()
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        if self.masses is None:
            raise RuntimeError("MassOnlyClassifier: call fit() before predict()")
        d = (self.mass(x)[:, None] - self.masses[None, :]).abs()
        return self.labels[d.argmin(1)]

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy on (x, y)."""
        return float((self.predict(x) == torch.as_tensor(y).long()).double().mean())
