"""Tetris data: the 8 pieces, Haar rotations about the centre, the train/test protocol."""
import numpy as np
import pytest
import torch

from datamodules._common import InputError
from datamodules.tetris import (CLASSES, PIECES, TetrisDataModule, haar_rotation, lowpass,
                                piece_volumes, rotate_volume)


def test_pieces_are_distinct_tetracubes_centred():
    vols = piece_volumes(zoom=2, size=15)
    assert vols.shape == (8, 15, 15, 15)
    assert all(v.sum() == 4 * 2 ** 3 for v in vols)
    flat = {v.tobytes() for v in vols}
    assert len(flat) == 8
    assert len(CLASSES) == len(PIECES) == 8


def test_haar_rotation_is_a_rotation():
    rng = np.random.default_rng(0)
    for _ in range(5):
        R = haar_rotation(rng)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1.0)


def test_rotate_volume_about_centre_matches_exact_quarter_turn():
    vol = lowpass(piece_volumes(zoom=2, size=15)[5], 2.0)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    got = rotate_volume(vol, R, order=3)
    # out(x) = vol(R^T x): index (i, j) <- (j, n-1-i)
    want = np.rot90(vol, k=1, axes=(0, 1))
    assert np.abs(got - want).max() < 1e-6


def test_rotation_keeps_mass_inside_the_grid():
    raw = piece_volumes(zoom=2, size=15)
    rng = np.random.default_rng(1)
    for p in raw:
        r = rotate_volume(p, haar_rotation(rng))
        assert abs(r.sum() - p.sum()) / p.sum() < 0.05


def test_datamodule_protocol_and_determinism():
    dm = TetrisDataModule(zoom=2, size=15, test_sets=3, seed=4)
    dm.setup()
    x, y = dm.train_set.tensors
    assert x.shape == (8, 1, 15, 15, 15) and torch.equal(y, torch.arange(8))
    xt, yt = dm.test_set.tensors
    assert xt.shape == (24, 1, 15, 15, 15) and torch.equal(yt, torch.arange(8).repeat(3))
    assert not torch.allclose(x, xt[:8])  # fresh rotations at test time
    dm2 = TetrisDataModule(zoom=2, size=15, test_sets=3, seed=4)
    dm2.setup()
    assert torch.equal(dm2.train_set.tensors[0], x)
    assert len(dm.train_dataloader()) == 1  # full batch


def test_bad_sizes_are_clear_errors():
    with pytest.raises(InputError, match="smaller than the zoomed pieces"):
        piece_volumes(zoom=5, size=10)
    with pytest.raises(InputError, match="num_classes"):
        TetrisDataModule(num_classes=10)
