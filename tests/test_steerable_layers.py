"""Layers of 3D Steerable CNNs: exact equivariance under the 24 cube rotations, negative
controls, the exactness condition of strided layers, and export to plain Conv3d."""
import pytest
import torch
import torch.nn.functional as F

from models.steerable import (CapsuleDropout, EquivariantBatchNorm, GatedBlock, InvariantPool,
                              LowPass3d, SteerableConv3d, cube_rotations, export_network,
                              irrep_D, random_rotation, resample_rotated, rotate_field,
                              rotate_voxels, rs_dim)
from tests.equivariance import assert_equivariant

ROTS = cube_rotations()
RS_A = [(2, 0), (1, 1), (1, 2)]            # 10 channels
RS_B = [(1, 0), (2, 1), (1, 2), (1, 3)]    # 19 channels
GEN = torch.Generator().manual_seed(7)


def act(Rs):
    return lambda R, x: rotate_field(x, R, Rs)


def rand(Rs, n, batch=2, dtype=torch.float64):
    return torch.randn(batch, rs_dim(Rs), n, n, n, generator=GEN, dtype=torch.float64).to(dtype)


# --------------------------------------------------------------------------- group action
def test_cube_rotations_form_the_group():
    assert len(ROTS) == 24 and torch.equal(ROTS[0], torch.eye(3, dtype=torch.float64))
    keys = {tuple(R.flatten().tolist()) for R in ROTS}
    assert len(keys) == 24
    for R in ROTS:
        assert float(torch.det(R)) == 1.0
        for S in ROTS[::5]:
            assert tuple((R @ S).flatten().tolist()) in keys


def test_rotate_voxels_moves_a_voxel_at_p_to_R_p():
    n, c = 5, 2
    for R in ROTS:
        x = torch.zeros(1, 1, n, n, n)
        p = torch.tensor([2.0, -1.0, 1.0])  # position (i - c, j - c, k - c)
        x[0, 0, 4, 1, 3] = 1
        q = (R.float() @ p).round().long() + c
        y = rotate_voxels(x, R)
        assert y[0, 0, q[0], q[1], q[2]] == 1 and y.sum() == 1


def test_rotate_field_is_a_representation():
    x = rand(RS_B, 5)
    for R in ROTS[::3]:
        for S in ROTS[::4]:
            a = rotate_field(rotate_field(x, S, RS_B), R, RS_B)
            b = rotate_field(x, R @ S, RS_B)
            assert (a - b).abs().max() < 1e-12
    with pytest.raises(ValueError, match="cube rotations"):
        rotate_voxels(x, random_rotation(generator=GEN))
    with pytest.raises(ValueError, match="19 channels"):
        rotate_field(x[:, :5], ROTS[1], RS_B)


def test_resample_rotated_agrees_with_exact_cube_rotation():
    x = rand(RS_A, 7, batch=1)
    for R in ROTS[1:6]:
        exact = rotate_field(x, R, RS_A)
        assert (resample_rotated(x, R, order=3, Rs=RS_A) - exact).abs().max() < 1e-10
    R = random_rotation(generator=GEN)
    assert torch.allclose(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-14)
    assert abs(float(torch.det(R)) - 1) < 1e-14
    assert resample_rotated(x[:, :1], R).shape == x[:, :1].shape
    D = irrep_D(RS_A, R)
    assert torch.allclose(D @ D.T, torch.eye(10, dtype=torch.float64), atol=1e-13)


# --------------------------------------------------------------------------- convolution
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_conv_equivariant_all_cube_rotations(dtype, rtol):
    conv = SteerableConv3d(RS_A, RS_B, size=5, padding=2).to(dtype)
    with torch.no_grad():
        conv.bias.normal_()
    err = assert_equivariant(conv, rand(RS_A, 7, dtype=dtype), act(RS_A), act(RS_B), ROTS, rtol=rtol)
    assert err <= rtol


@pytest.mark.parametrize("lowpass", [True, False])
def test_strided_conv_equivariant_when_grid_is_symmetric(lowpass):
    # n + 2p - size = 9 + 4 - 5 = 8, divisible by the stride 2: exact
    conv = SteerableConv3d(RS_A, RS_A, size=5, padding=2, stride=2, lowpass_stride=lowpass).double()
    assert_equivariant(conv, rand(RS_A, 9), act(RS_A), act(RS_A), ROTS, rtol=1e-10)
    # n = 8: 7 not divisible by 2, the sampled grid is off-centre: not exact (documented condition)
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(conv, rand(RS_A, 8), act(RS_A), act(RS_A), ROTS, rtol=1e-3)


def test_broken_basis_fails_negative_control():
    conv = SteerableConv3d(RS_A, RS_B, size=5, padding=2).double()
    x = rand(RS_A, 7)
    assert_equivariant(conv, x, act(RS_A), act(RS_B), ROTS, rtol=1e-10)
    # one basis element gets a non-equivariant perturbation: must fail
    B = conv.kernel.basis_1_1  # (l_out=1, l_in=1) block
    B[2] = B[2] + 0.3 * torch.randn(B[2].shape, generator=GEN, dtype=torch.float64) * B[2].norm()
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(conv, x, act(RS_A), act(RS_B), ROTS, rtol=1e-3)
    # Y^J replaced by a random field on the grid: must fail as well
    conv2 = SteerableConv3d(RS_A, RS_B, size=5, padding=2).double()
    B2 = conv2.kernel.basis_3_0  # (l_out=3, l_in=0): pure Y^3 shells
    B2.copy_(torch.randn(B2.shape, generator=GEN, dtype=torch.float64))
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(conv2, x, act(RS_A), act(RS_B), ROTS, rtol=1e-3)


def test_conv_channel_check_and_bias_only_on_scalars():
    conv = SteerableConv3d(RS_A, RS_B, size=3, padding=1)
    with pytest.raises(ValueError, match=r"SteerableConv3d: expected 10 channels \(2x0 \+ 1x1 \+ 1x2\), got 12"):
        conv(torch.zeros(1, 12, 5, 5, 5))
    with torch.no_grad():
        conv.bias.fill_(1.0)
    b = conv.full_bias()
    assert b.shape == (19,) and b[0] == 1 and b[1:].abs().sum() == 0  # only the single l=0 field
    assert SteerableConv3d([(1, 1)], [(1, 1)], 3).bias is None  # no scalar output, no bias


# --------------------------------------------------------------------------- other layers
@pytest.mark.parametrize("stride,lowpass,bn", [(1, True, False), (2, True, True), (2, False, False)])
def test_gated_block_equivariant(stride, lowpass, bn):
    block = GatedBlock(RS_A, RS_B, size=5, padding=2, stride=stride, lowpass=lowpass,
                       batch_norm=bn).double()
    with torch.no_grad():
        block.conv.bias.normal_()
    block.train()
    if bn:  # give the running statistics non-trivial values, then test both modes
        block(rand(RS_A, 9))
    for mode in ("train", "eval"):
        getattr(block, mode)()
        assert_equivariant(block, rand(RS_A, 9), act(RS_A), act(RS_B), ROTS, rtol=1e-10)
    assert block.n_gates == 4
    assert block.conv.out_channels == rs_dim(RS_B) + 4
    y = block.conv(rand(RS_A, 9))
    # scalars are ReLU'd, non-scalars are gated by sigmoid of the extra scalars
    out = block.gate(y)
    assert torch.equal(out[:, :1], F.relu(y[:, :1]))
    g = torch.sigmoid(y[:, 19:])
    assert torch.allclose(out[:, 1:4], y[:, 1:4] * g[:, :1])


def test_linear_gated_block_has_no_bias_and_no_gates():
    block = GatedBlock(RS_A, RS_B, size=3, padding=1, activation=None)
    assert block.n_gates == 0 and block.conv.bias is None
    x = rand(RS_A, 5, dtype=torch.float32)
    assert torch.equal(block(x), block.conv(x))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batch_norm_equivariant_and_normalising(mode):
    bn = EquivariantBatchNorm(RS_B, momentum=0.5).double()
    x = 3 + 2 * rand(RS_B, 7, batch=4)
    bn.train()
    bn(x)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
    getattr(bn, mode)()
    assert_equivariant(bn, x, act(RS_B), act(RS_B), ROTS, rtol=1e-10)
    if mode == "train":
        bn2 = EquivariantBatchNorm(RS_B, affine=False).double().train()
        y = bn2(x)
        assert abs(float(y[:, 0].mean())) < 1e-10          # scalar field centred
        f = y[:, 1:4]                                       # first l=1 field: E|f|^2 = 1
        assert abs(float(f.pow(2).sum(1).mean()) - 1) < 1e-4
        assert bn2.running_mean.abs().sum() > 0 and bn2.running_var.shape == (5,)


def test_capsule_dropout():
    drop = CapsuleDropout(RS_B, p=0.5).double()
    x = rand(RS_B, 5)
    drop.eval()
    assert torch.equal(drop(x), x)
    assert_equivariant(drop, x, act(RS_B), act(RS_B), ROTS, rtol=1e-12)
    drop.train()
    torch.manual_seed(0)
    y = drop(x)
    ratio = y / x  # per field one value in {0, 2}, shared by components and voxels
    for f0, f1 in [(0, 1), (1, 4), (4, 7), (7, 12), (12, 19)]:
        vals = ratio[:, f0:f1].flatten(1)
        assert torch.allclose(vals, vals[:, :1].expand_as(vals))
        assert set(vals[:, 0].tolist()) <= {0.0, 2.0}

    def seeded(t):  # same mask for both sides: equivariant for any fixed mask
        torch.manual_seed(3)
        return drop(t)
    assert_equivariant(seeded, x, act(RS_B), act(RS_B), ROTS, rtol=1e-12)


def test_lowpass_and_invariant_pool():
    lp = LowPass3d(2, 2)
    assert len(lp.taps) == 5 and abs(sum(lp.taps) - 1) < 1e-15  # σ = 0.866, 5 taps (se3cnn)
    x = rand(RS_A, 9)
    assert lp(x).shape == (2, 10, 5, 5, 5)
    assert_equivariant(lp, x, act(RS_A), act(RS_A), ROTS, rtol=1e-12)
    # separable taps == the full 3-D Gaussian convolution of se3cnn
    t = torch.tensor(lp.taps, dtype=torch.float64)
    k3 = t.view(-1, 1, 1) * t.view(1, -1, 1) * t.view(1, 1, -1)
    ref = F.conv3d(x.reshape(-1, 1, 9, 9, 9), k3[None, None], padding=2, stride=2).reshape(2, 10, 5, 5, 5)
    assert (lp(x) - ref).abs().max() < 1e-12
    pool = InvariantPool(RS_A)
    out = pool(x)
    assert out.shape == (2, 4)
    for R in ROTS:
        assert (pool(rotate_field(x, R, RS_A)) - out).abs().max() < 1e-12


# --------------------------------------------------------------------------- export
def test_export_matches_after_sgd_steps():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        GatedBlock([(1, 0)], RS_A, size=5, padding=2, batch_norm=True, dropout=0.0),
        GatedBlock(RS_A, RS_B, size=5, padding=4, stride=2),
        SteerableConv3d(RS_B, [(3, 0)], size=3, padding=1, stride=2),
        InvariantPool([(3, 0)]),
    ).double()
    x = torch.randn(4, 1, 9, 9, 9, dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    net.eval()
    plain = export_network(net)
    assert not any(isinstance(m, SteerableConv3d) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.Conv3d) for m in plain.modules()) == 3
    with torch.no_grad():
        assert torch.equal(plain(x), net(x))
    conv = SteerableConv3d(RS_A, RS_B, size=3, padding=1)
    x = rand(RS_A, 6, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(conv.export()(x), conv(x))
