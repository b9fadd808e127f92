"""Tetris: 8 three-dimensional tetrominoes under arbitrary rotations (Weiler et al. 2018, §5.1).

Protocol of the reference code (se3cnn @ afd027c ``examples/image/tetris.py``, ``get_volumes`` and ``experiment``):

* the 8 pieces are sets of cells of a 4³ grid, enlarged to ``4·zoom`` voxels per axis and padded to an
  ``n``³ grid. ``geometry="zoom"`` (the reference, and every preset's default) enlarges them as se3cnn's
  ``get_volumes`` does, with ``scipy.ndimage.zoom(voxels, zoom, order=0)``: nearest neighbour with the
  first and last voxel centres on the first and last cell centres, so the four cells of an axis become
  unequal slabs (4, 6, 6, 4 voxels at zoom 5; 2, 4, 4, 2 at zoom 3) and the pieces have different
  volumes (320, 352, 400, 448 or 480 voxels at zoom 5). Total mass is rotation invariant, so it alone
  separates 5 groups of the 8 pieces (the ``mass_only`` row of the table measures how far that goes).
  ``geometry="uniform"`` repeats every cell exactly ``zoom`` times (all pieces 4·zoom³ voxels; an ablation);
* the grid is 36³ in the reference (pad 8 around 20³); the piece block sits at ``(n - 4·zoom) // 2``;
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
from scipy import ndimage
from torch.utils.data import DataLoader, TensorDataset

from datamodules._common import InputError, eval_batch, eval_sampler, per_rank_batch, torch_generator
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


GEOMETRIES = ("zoom", "uniform")


def piece_volumes(zoom: int, size: int, geometry: str = "zoom") -> np.ndarray:
    """The 8 pieces as (8, size, size, size) float64 arrays: 4³ cells enlarged ×zoom (see the module
    docstring for the two ``geometry`` rules), block at ``(size - 4·zoom) // 2`` on every axis.

    >>> [int(v.sum()) for v in piece_volumes(5, 36)]
    [400, 480, 400, 320, 352, 352, 400, 448]
    >>> sorted({int(v.sum()) for v in piece_volumes(5, 36, geometry="uniform")})
    [500]
    """
    if geometry not in GEOMETRIES:
        raise InputError(f"tetris: data.geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    inner = 4 * zoom
    if zoom < 1:
        raise InputError(f"tetris: data.zoom must be at least 1, got {zoom}")
    if size < inner:
        raise InputError(f"tetris: grid size {size} is smaller than the zoomed pieces ({inner})")
    lo = (size - inner) // 2
    out = np.zeros((len(PIECES), size, size, size))
    for i, cells in enumerate(PIECES.values()):
        vox = np.zeros((4, 4, 4))
        for c in cells:
            vox[c] = 1.0
        if geometry == "zoom":
            vox = ndimage.zoom(vox, zoom, order=0)
        else:
            vox = vox.repeat(zoom, 0).repeat(zoom, 1).repeat(zoom, 2)
        out[i, lo:lo + inner, lo:lo + inner, lo:lo + inner] = vox
    return out


def rotated_set(pieces: np.ndarray, generator: torch.Generator, scale: float) -> np.ndarray:
    """Each piece rotated by its own Haar-random rotation (one batch of draws from
    ``generator``), resampled with cubic splines, then low-passed at ``scale``; float64."""
    rots = random_rotation(len(pieces), generator=generator)
    return np.stack([lowpass(resample_volume(p, R, order=3), scale) for p, R in zip(pieces, rots)])


class TetrisDataModule(pl.LightningDataModule):
    """Train on the 8 pieces rotated once (full batch), test on ``test_sets`` rotated sets.

    Batches (every loader): ``(x, y)`` — ``x`` float32 ``(B, 1, size, size, size)``, the low-passed
    rotated pieces (one channel, grid axes x, y, z); ``y`` int64 ``(B,)``, the piece index 0–7
    (:data:`PIECES`). The model takes ``x`` as it is (:meth:`model_batch`).
    """

    def __init__(self, zoom: int = 5, size: int = 36, test_sets: int = 100, lowpass_scale: float = 2.0,
                 seed: int = 0, test_batch_size: int = 32, num_classes: int = 8, geometry: str = "zoom"):
        super().__init__()
        if num_classes != len(PIECES):
            raise InputError(f"tetris: num_classes must be {len(PIECES)}, got {num_classes}")
        self.zoom, self.size, self.test_sets = int(zoom), int(size), int(test_sets)
        self.scale, self.seed, self.test_batch_size = float(lowpass_scale), int(seed), int(test_batch_size)
        self.geometry = str(geometry)
        piece_volumes(self.zoom, self.size, self.geometry)  # bad zoom / size / geometry: error before training
        if self.test_sets < 1 or self.test_batch_size < 1:
            raise InputError(f"tetris: data.test_sets and data.test_batch_size must be at least 1, "
                             f"got {self.test_sets} and {self.test_batch_size}")
        self.train_set = self.test_set = None

    def pieces(self, size: int | None = None) -> np.ndarray:
        """The 8 unrotated, unblurred pieces (8, n, n, n) float64 on an ``size``³ grid (default: the data's)."""
        return piece_volumes(self.zoom, size or self.size, self.geometry)

    def canonical(self, size: int | None = None) -> torch.Tensor:
        """The 8 unrotated, low-passed pieces (8, 1, n, n, n) float32 — for equivariance checks."""
        vols = self.pieces(size)
        return torch.from_numpy(np.stack([lowpass(v, self.scale) for v in vols])).float()[:, None]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        pieces = self.pieces()
        labels = torch.arange(len(PIECES))
        train_gen = torch_generator(self.seed, 0)
        x = torch.from_numpy(rotated_set(pieces, train_gen, self.scale)).float()[:, None]
        self.train_set = TensorDataset(x, labels)
        test_gen = torch_generator(self.seed, 1)
        xs = [torch.from_numpy(rotated_set(pieces, test_gen, self.scale)).float()[:, None]
              for _ in range(self.test_sets)]
        self.test_set = TensorDataset(torch.cat(xs), labels.repeat(self.test_sets))

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def train_dataloader(self) -> DataLoader:
        # one full batch of the 8 pieces per step: under DDP each of W processes loads 8 / W
        batch = per_rank_batch(self, len(PIECES), "tetris training batch (8 pieces)")
        return DataLoader(self.train_set, batch_size=batch, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, self.test_set, "tetris test set"))
