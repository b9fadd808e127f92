"""Tetris: 8 three-dimensional tetrominoes under arbitrary rotations (Weiler et al. 2018, §5.1).

Protocol of the reference code (se3cnn ``examples/tetris.py``; shared/reference/anchors-steerable.md §1.2):

* the 8 pieces are sets of cells of a 4³ grid, zoomed ×``zoom`` by nearest neighbour and padded to an
  ``n``³ grid (paper: zoom 5 → 20³ padded to 36³; we use an odd ``n`` — 37 — so that the strided layers
  sample a grid symmetric under the 24 cube rotations, which keeps exact-equivariance checks exact);
* a rotation is Haar-uniform on SO(3) (:func:`models.geometry.random_rotation`, a normalised
  Gaussian quaternion drawn from a ``torch.Generator`` seeded by (run seed, stream)) applied about
  the grid centre by :func:`models.geometry.resample_volume` (``scipy.ndimage.affine_transform``,
  cubic interpolation, order 3) — arbitrary angles, not only 90° turns;
* the input is low-passed by :func:`models.geometry.lowpass`: Gaussian blur with
  σ = 0.5·√(scale² − 1) for ``lowpass_scale`` 2 and se3cnn's truncation (5 taps at scale 2; the
  same filter as ``LowPass3d`` in the networks), applied to every sample;
* training set: the 8 pieces, each rotated at random **once** (a new draw per run seed), one full batch;
  test set: ``test_sets`` fresh sets of 8 randomly rotated pieces (paper: 100).

Nothing is read from disk: the data *are* the published protocol, regenerated from the run seed.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from datamodules._common import InputError, torch_generator
from models.geometry import lowpass, random_rotation, resample_volume

#: cells of each piece in a 4³ grid (se3cnn examples/tetris.py)
PIECES: dict[str, list[tuple[int, int, int]]] = {
    "chiral_1": [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)],
    "chiral_2": [(0, 1, 0), (0, 1, 1), (1, 1, 0), (1, 0, 0)],
    "square": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)],
    "line": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)],
    "corner": [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)],
    "L": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)],
    "T": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)],
    "zigzag": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)],
}
CLASSES = list(PIECES)


def piece_volumes(zoom: int, size: int) -> np.ndarray:
    """The 8 pieces as (8, size, size, size) float64 arrays: 4³ cells zoomed ×zoom, centred."""
    inner = 4 * zoom
    if size < inner:
        raise InputError(f"tetris: grid size {size} is smaller than the zoomed pieces ({inner})")
    lo = (size - inner) // 2
    out = np.zeros((len(PIECES), size, size, size))
    for i, cells in enumerate(PIECES.values()):
        vox = np.zeros((4, 4, 4))
        for c in cells:
            vox[c] = 1.0
        vox = vox.repeat(zoom, 0).repeat(zoom, 1).repeat(zoom, 2)
        out[i, lo:lo + inner, lo:lo + inner, lo:lo + inner] = vox
    return out


def rotated_set(pieces: np.ndarray, generator: torch.Generator, scale: float) -> np.ndarray:
    """Each piece rotated by its own Haar-random rotation (one batch of draws from
    ``generator``), resampled with cubic splines, then low-passed at ``scale``; float64."""
    rots = random_rotation(len(pieces), generator=generator)
    return np.stack([lowpass(resample_volume(p, R, order=3), scale) for p, R in zip(pieces, rots)])


class TetrisDataModule(pl.LightningDataModule):
    """Train on the 8 pieces rotated once (full batch), test on ``test_sets`` rotated sets."""

    def __init__(self, zoom: int = 5, size: int = 37, test_sets: int = 100, lowpass_scale: float = 2.0,
                 seed: int = 0, test_batch_size: int = 32, num_classes: int = 8):
        super().__init__()
        if num_classes != len(PIECES):
            raise InputError(f"tetris: num_classes must be {len(PIECES)}, got {num_classes}")
        self.zoom, self.size, self.test_sets = int(zoom), int(size), int(test_sets)
        self.scale, self.seed, self.test_batch_size = float(lowpass_scale), int(seed), int(test_batch_size)
        self.train_set = self.test_set = None

    def canonical(self) -> torch.Tensor:
        """The 8 unrotated, low-passed pieces (8, 1, n, n, n) float32 — for equivariance checks."""
        vols = piece_volumes(self.zoom, self.size)
        return torch.from_numpy(np.stack([lowpass(v, self.scale) for v in vols])).float()[:, None]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        pieces = piece_volumes(self.zoom, self.size)
        labels = torch.arange(len(PIECES))
        train_gen = torch_generator(self.seed, 0)
        x = torch.from_numpy(rotated_set(pieces, train_gen, self.scale)).float()[:, None]
        self.train_set = TensorDataset(x, labels)
        test_gen = torch_generator(self.seed, 1)
        xs = [torch.from_numpy(rotated_set(pieces, test_gen, self.scale)).float()[:, None]
              for _ in range(self.test_sets)]
        self.test_set = TensorDataset(torch.cat(xs), labels.repeat(self.test_sets))

    def train_dataloader(self) -> DataLoader:
        # one full batch of 8 per step (per process under DDP the sampler splits it)
        return DataLoader(self.train_set, batch_size=len(PIECES), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.test_batch_size, shuffle=False)
