"""Tetris data: the 8 pieces, Haar rotations about the centre, the train/test protocol."""
import numpy as np
import pytest
import torch

from datamodules._common import InputError, torch_generator
from datamodules.tetris import CLASSES, PIECES, TetrisDataModule, piece_volumes, rotated_set
from models.geometry import lowpass, random_rotation, resample_volume
from models.steerable import LowPass3d


def test_pieces_are_distinct_tetracubes_centred():
    vols = piece_volumes(zoom=2, size=15)
    assert vols.shape == (8, 15, 15, 15)
    assert all(v.sum() == 4 * 2 ** 3 for v in vols)
    flat = {v.tobytes() for v in vols}
    assert len(flat) == 8
    assert len(CLASSES) == len(PIECES) == 8


def test_resample_about_centre_matches_exact_quarter_turn():
    vol = lowpass(piece_volumes(zoom=2, size=15)[5], 2.0)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    got = resample_volume(vol, R, order=3)
    # out(x) = vol(R^T x): index (i, j) <- (j, n-1-i)
    want = np.rot90(vol, k=1, axes=(0, 1))
    assert np.abs(got - want).max() < 1e-6


def test_rotation_keeps_mass_inside_the_grid():
    raw = piece_volumes(zoom=2, size=15)
    for p, R in zip(raw, random_rotation(len(raw), generator=torch.Generator().manual_seed(1))):
        r = resample_volume(p, R)
        assert abs(r.sum() - p.sum()) / p.sum() < 0.05


def test_data_blur_is_the_networks_low_pass():
    """The input blur of the data is LowPass3d's filter (se3cnn truncation, 5 taps at scale 2),
    not scipy's gaussian_filter (7 taps at its default truncate=4)."""
    dm = TetrisDataModule(zoom=2, size=15, test_sets=1, lowpass_scale=2.0)
    raw = torch.from_numpy(piece_volumes(zoom=2, size=15))[:, None]
    want = LowPass3d(2.0, 1)(raw).float()
    assert torch.equal(dm.canonical(), want)
    # support of a point's blur: 5 voxels per axis
    v = np.zeros((15, 15, 15))
    v[7, 7, 7] = 1.0
    assert (np.abs(lowpass(v, 2.0)[:, 7, 7]) > 0).sum() == 5


def test_rotated_set_is_reproducible_from_the_generator():
    raw = piece_volumes(zoom=2, size=11)[:2]
    a = rotated_set(raw, torch_generator(3, 1), 2.0)
    assert a.shape == (2, 11, 11, 11)
    assert np.array_equal(a, rotated_set(raw, torch_generator(3, 1), 2.0))
    assert not np.allclose(a, rotated_set(raw, torch_generator(3, 2), 2.0))


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
