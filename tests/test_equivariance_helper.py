"""The equivariance helper must fail on a non-equivariant map (negative control)."""
import pytest
import torch

from tests.equivariance import assert_equivariant

ROT90 = [0, 1, 2, 3]


def act(k, x):
    return torch.rot90(x, k, dims=(-2, -1))


def test_helper_accepts_equivariant_map():
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    err = assert_equivariant(lambda t: t ** 2 + t, x, act, act, ROT90, rtol=1e-12)
    assert err < 1e-12


def test_helper_rejects_broken_map():
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    w = torch.randn(9, 9, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_equivariant(lambda t: t * w, x, act, act, ROT90, rtol=1e-3)


def test_helper_rejects_zero_output():
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    with pytest.raises(AssertionError, match="zero"):
        assert_equivariant(lambda t: 0 * t, x, act, act, ROT90, rtol=1e-3)
