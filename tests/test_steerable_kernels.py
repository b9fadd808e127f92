"""Kernel basis of 3D Steerable CNNs (Weiler et al. 2018 §4.2, §4.4.1).

The constraint κ(Rx) = D_out(R) κ(x) D_in(R)^T is checked first at random continuous points,
before any grid, then on the sampled basis for the 24 cube rotations; broken bases must fail.
"""
import math

import pytest
import torch
from e3nn import o3

from models.geometry import cube_rotations, random_rotation, rotate_voxels
from models.steerable.group import _float64_default, wigner_D
from models.steerable.kernels import (SteerableKernel, basis_labels, jmax_per_shell,
                                      kernel_basis_at, unit_basis)

GEN = torch.Generator().manual_seed(1234)
PAIRS = [(a, b) for a in range(4) for b in range(4)]


def _constraint_error(fn, l_in, l_out, R, points):
    """max |κ(Rx) − D_out κ(x) D_in^T| / max |κ(x)| for a basis function ``fn(points)``."""
    K = fn(points)  # (nb, d_out, d_in, N)
    K_rot = fn(points @ R.T)
    Do, Di = wigner_D(l_out, R), wigner_D(l_in, R)
    expected = torch.einsum("ij,bjkn,lk->biln", Do, K, Di)
    return float((K_rot - expected).abs().max() / K.abs().max())


def test_spherical_harmonics_match_wigner_D():
    """Y^l(Rx) = D^l(R) Y^l(x) with D = o3.Irrep(l, (-1)^l).D_from_matrix(R), l = 0..5."""
    x = torch.randn(50, 3, generator=GEN, dtype=torch.float64)
    for _ in range(3):
        R = random_rotation(generator=GEN)
        for l in range(6):
            with _float64_default():
                Y = o3.spherical_harmonics(l, x, normalize=True, normalization="component")
                YR = o3.spherical_harmonics(l, x @ R.T, normalize=True, normalization="component")
            err = (YR - Y @ wigner_D(l, R).T).abs().max()
            assert err < 1e-12, (l, float(err))


def test_wigner_D_is_e3nn_D_from_matrix():
    """Same matrices as e3nn's Irrep.D_from_matrix (up to its torch.matrix_exp round-off)."""
    for _ in range(5):
        R = random_rotation(generator=GEN)
        for l in range(5):
            with _float64_default():
                D_e3nn = o3.Irrep(l, (-1) ** l).D_from_matrix(R)
            assert (wigner_D(l, R) - D_e3nn).abs().max() < 1e-9
    for R in cube_rotations():
        for l in range(4):
            with _float64_default():
                D_e3nn = o3.Irrep(l, (-1) ** l).D_from_matrix(R)
            assert (wigner_D(l, R) - D_e3nn).abs().max() < 1e-12


def test_wigner_D_is_an_orthogonal_representation():
    R1, R2 = random_rotation(generator=GEN), random_rotation(generator=GEN)
    for l in range(5):
        D1, D2, D12 = wigner_D(l, R1), wigner_D(l, R2), wigner_D(l, R1 @ R2)
        assert torch.allclose(D12, D1 @ D2, atol=1e-13)
        assert torch.allclose(D1 @ D1.T, torch.eye(2 * l + 1, dtype=torch.float64), atol=1e-13)
    # a float32 rotation still gets a float64-accurate D, returned in float32
    R = random_rotation(generator=GEN)
    assert wigner_D(3, R.float()).dtype == torch.float32
    assert torch.allclose(wigner_D(3, R.float()).double(), wigner_D(3, R), atol=1e-6)


@pytest.mark.parametrize("l_in,l_out", PAIRS)
def test_kernel_constraint_at_random_continuous_points(l_in, l_out):
    points = 2.5 * torch.randn(40, 3, generator=GEN, dtype=torch.float64)
    radii, jmax = [0, 1, 2, 3], [0, 3, 5, 7]

    def fn(p):
        return kernel_basis_at(p, l_in, l_out, radii, jmax)

    assert fn(points).abs().max() > 1e-3  # not a zero basis
    for _ in range(3):
        assert _constraint_error(fn, l_in, l_out, random_rotation(generator=GEN), points) < 1e-10


def test_broken_continuous_basis_fails_the_constraint():
    """Negative control: Y^J replaced by Y^J of a sheared argument (a non-equivariant field)."""
    points = 2.0 * torch.randn(40, 3, generator=GEN, dtype=torch.float64)
    M = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(3, 3, generator=GEN, dtype=torch.float64)

    def broken(p):
        return kernel_basis_at(p @ M.T, 1, 2, [1, 2], [3, 5])

    def good(p):
        return kernel_basis_at(p, 1, 2, [1, 2], [3, 5])

    R = random_rotation(generator=GEN)
    assert _constraint_error(good, 1, 2, R, points) < 1e-10
    assert _constraint_error(broken, 1, 2, R, points) > 1e-2


def test_bandlimit_modes_and_labels():
    assert jmax_per_shell(4, "compromise") == [0, 3, 5, 7]
    assert jmax_per_shell(4, "conservative") == [0, 2, 4, 6]
    assert jmax_per_shell(4, "sfcnn") == [0, 4, 6, 8]
    with pytest.raises(ValueError, match="band-limit"):
        jmax_per_shell(3, "bogus")
    # size 5, compromise: J_max = 0 / 3 / 5 at r = 0 / 1 / 2; r = 0 keeps only J = 0
    assert basis_labels(1, 1, 5) == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert all(J == 0 for r, J in basis_labels(3, 3, 7) if r == 0)
    assert max(J for r, J in basis_labels(3, 3, 7) if r == 3) == 6


def test_basis_sizes_match_se3cnn_compromise():
    """Counts that give the Tetris net its 41,198 parameters (size 5) and CATH's (3, 7)."""
    expected5 = {(0, 0): 3, (0, 1): 2, (0, 2): 2, (0, 3): 2, (1, 1): 7, (1, 2): 6, (1, 3): 5,
                 (2, 2): 10, (2, 3): 8, (3, 3): 11}
    for (a, b), n in expected5.items():
        assert unit_basis(a, b, 5).shape[0] == n
        assert unit_basis(b, a, 5).shape[0] == n
    assert unit_basis(0, 0, 3).shape[0] == 2 and unit_basis(3, 3, 3).shape[0] == 5
    assert unit_basis(3, 3, 7).shape[0] == 1 + 4 + 6 + 7


@pytest.mark.parametrize("size", [3, 5])
def test_sampled_basis_unit_norm_and_cube_equivariant(size):
    rots = cube_rotations()
    for l_in, l_out in PAIRS:
        B = unit_basis(l_in, l_out, size)
        assert B.dtype == torch.float64 and B.shape[1:] == (2 * l_out + 1, 2 * l_in + 1, size, size, size)
        norms = B.flatten(1).norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)
        for R in rots[1:]:
            moved = rotate_voxels(B, R)  # κ(R^{-1} x) at x  =  D_out(R)^T κ(x) D_in(R)
            expected = torch.einsum("ji,bjk...,kl->bil...", wigner_D(l_out, R), B, wigner_D(l_in, R))
            assert (moved - expected).abs().max() < 1e-12


def test_kernel_scaling_gives_unit_variance_outputs():
    """se3cnn normalisation: each pair block has norm √((2l_out+1)/Σ m_in) per weight vector."""
    Rs_in, Rs_out = [(3, 0), (2, 1)], [(2, 0), (1, 2)]
    k = SteerableKernel(Rs_in, Rs_out, 5).double()
    for i, j, m_o, l_o, m_i, l_i, scale in k._pairs:
        B = getattr(k, f"basis_{i}_{j}")
        nb = B.shape[0]
        assert math.isclose(scale, math.sqrt((2 * l_o + 1) / (nb * 5)))
        assert torch.allclose(B.flatten(1).norm(dim=1), torch.full((nb,), scale, dtype=torch.float64))
    # output variance of a random N(0,1) kernel applied to unit-variance white noise ≈ 1 per channel
    torch.manual_seed(0)
    x = torch.randn(8, 9, 9, 9, 9, dtype=torch.float64)
    var = []
    for _ in range(20):
        k.weight.data.normal_()
        var.append(torch.nn.functional.conv3d(x, k()).var().detach())
    assert 0.6 < float(torch.stack(var).mean()) < 1.5


def test_basis_is_rebuilt_exactly_in_float64():
    k = SteerableKernel([(2, 1)], [(1, 2)], 5)  # float32 buffers
    assert k.basis_0_0.dtype == torch.float32
    k = k.double()
    _, _, _, _, _, _, scale = k._pairs[0]
    assert torch.equal(k.basis_0_0, unit_basis(1, 2, 5) * scale)
    assert "basis_0_0" not in k.state_dict()  # derived buffer, not persisted
    k.train()
    b = k.basis_0_0.clone()
    k.eval()
    assert torch.equal(b, k.basis_0_0)  # identical in train and eval mode


def test_kernel_shapes_and_empty_pairs():
    k = SteerableKernel([(2, 0), (1, 1)], [(1, 1), (3, 0)], 3)
    assert k().shape == (6, 5, 3, 3, 3)
    n_w = sum(m_o * m_i * k.n_basis(i, j) for i, j, m_o, _, m_i, _, _ in k._pairs)
    assert k.weight.numel() == n_w
    # size 1: only r = 0, J = 0 survives, so l_in != l_out pairs are empty (zero block, no weights)
    k1 = SteerableKernel([(1, 0)], [(1, 1)], 1)
    assert k1.weight.numel() == 0 and k1().abs().sum() == 0
