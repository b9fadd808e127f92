"""Tetris networks (Weiler et al. 2018 §5.1): parameter counts, structure, invariance of the
steerable classifier under the 24 cube rotations, non-invariance of the plain CNN, export."""
import torch
import torch.nn.functional as F

from models.baselines import TetrisCNN
from models.steerable import (GatedBlock, LowPass3d, SteerableConv3d, TetrisSE3Net,
                              cube_rotations, export_network, rotate_field)
from tests.equivariance import assert_equivariant

ROTS = cube_rotations()
SMALL = [(1,), (1, 1, 1, 1), (2, 1, 1, 0), (2, 1, 1, 0), (4,)]
GENERATORS = [ROTS[i] for i in (3, 9, 17)]  # a few non-trivial cube rotations


def invariant(R, y):
    return y


def act_scalar(R, x):
    return rotate_field(x, R, [(1, 0)])


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_match_the_paper():
    assert n_params(TetrisSE3Net()) == 41198          # paper "41k"; 41,198 counted from se3cnn examples/tetris.py
    assert n_params(TetrisSE3Net(lowpass=False)) == 41198
    assert n_params(TetrisCNN()) == 6221832           # paper "~6M"; ≈ 6.2M counted from se3cnn examples/tetris.py
    assert n_params(TetrisCNN(lowpass=False)) == 6221832


def test_structure_and_spatial_sizes_on_36_grid():
    net = TetrisSE3Net().eval()
    blocks = list(net.blocks)
    assert [b.conv.stride for b in blocks] == [1, 1, 1, 1]
    assert [b.pool.stride if b.pool else 1 for b in blocks] == [1, 2, 2, 1]
    assert all(b.conv.size == 5 and b.conv.padding == 4 and b.bn is None for b in blocks)
    assert [b.n_gates for b in blocks] == [9, 32, 32, 0]
    plain = TetrisSE3Net(lowpass=False)
    assert [b.conv.stride for b in plain.blocks] == [1, 2, 2, 1]
    assert all(b.pool is None for b in plain.blocks)
    # 36 -> 40 -> 22 -> 13 -> 17 (se3cnn examples/tetris.py: size 5, padding 4, strides 1, 2, 2, 1), checked on shapes only (no heavy forward)
    n = 36
    for b in blocks:
        n = n + 2 * 4 - 5 + 1
        if b.pool is not None:
            n = (n - 1) // 2 + 1
        assert n in (40, 22, 13, 17)
    assert n == 17
    cnn = TetrisCNN()
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [43, 144, 160, 128]
    assert sum(isinstance(m, LowPass3d) and m.stride == 2 for m in cnn.modules()) == 2


def test_small_steerable_net_invariant_all_cube_rotations_float64():
    torch.manual_seed(0)
    net = TetrisSE3Net(features=SMALL, num_classes=4, input_lowpass=True).double().eval()
    for b in net.blocks:
        with torch.no_grad():
            b.conv.bias.normal_()
    x = torch.rand(1, 1, 5, 5, 5, dtype=torch.float64)  # 5 ≡ 1 (mod 4): symmetric strides
    assert_equivariant(net, x, act_scalar, invariant, ROTS, rtol=1e-10)
    # intermediate fields are equivariant too, not just the logits
    Rs_out = net.blocks[1].Rs_out
    body = torch.nn.Sequential(net.input_blur, net.blocks[0], net.blocks[1])
    assert_equivariant(body, x, act_scalar, lambda R, y: rotate_field(y, R, Rs_out), ROTS[::3],
                       rtol=1e-10)
    plain = TetrisSE3Net(features=SMALL, num_classes=4, lowpass=False).double().eval()
    assert_equivariant(plain, x, act_scalar, invariant, ROTS[::2], rtol=1e-10)


def test_full_steerable_net_invariant_float32():
    torch.manual_seed(0)
    net = TetrisSE3Net().eval()
    x = torch.rand(1, 1, 9, 9, 9)
    err = assert_equivariant(net, x, act_scalar, invariant, GENERATORS, rtol=1e-4)
    assert err < 1e-4


def test_plain_cnn_is_not_equivariant_negative_control():
    """The plain CNN's feature maps do not rotate with its input (its globally pooled features
    are nearly invariant at random init, so the check is on the maps)."""
    torch.manual_seed(0)
    cnn = TetrisCNN().eval()
    x = torch.randn(1, 1, 9, 9, 9)

    def maps(t):
        return cnn.blocks(t)
    try:
        assert_equivariant(maps, x, act_scalar, lambda R, y: rotate_field(y, R, [(128, 0)]),
                           GENERATORS, rtol=1e-2)
    except AssertionError as e:
        assert "equivariance error" in str(e)
    else:
        raise AssertionError("a plain CNN should not be rotation equivariant")


def test_export_small_net_identical_after_training_steps():
    torch.manual_seed(1)
    net = TetrisSE3Net(features=SMALL, num_classes=4).double()
    x = torch.rand(2, 1, 5, 5, 5, dtype=torch.float64)
    y = torch.tensor([0, 3])
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    plain = export_network(net)
    assert not any(isinstance(m, SteerableConv3d) for m in plain.modules())
    assert sum(isinstance(m, GatedBlock) for m in plain.modules()) == 4
    with torch.no_grad():
        assert torch.equal(plain(x), net(x))


def test_lowpass_before_stride_variant_is_exactly_invariant():
    """The reduced-CPU variant (blur before the strided conv, padding 2) keeps exact invariance
    on grids where every strided layer samples a symmetric grid (13 -> 13 -> 7 -> 4 -> 4)."""
    torch.manual_seed(0)
    net = TetrisSE3Net(features=SMALL, num_classes=4, padding=2, lowpass_order="before").double().eval()
    assert [b.conv.stride for b in net.blocks] == [1, 2, 2, 1]
    assert [b.conv.blur is not None for b in net.blocks] == [False, True, True, False]
    x = torch.rand(1, 1, 13, 13, 13, dtype=torch.float64)
    assert_equivariant(net, x, act_scalar, invariant, ROTS, rtol=1e-10)
    cnn = TetrisCNN(padding=2, lowpass_order="before")
    assert sum(isinstance(m, LowPass3d) and m.stride == 1 for m in cnn.modules()) == 2
    assert n_params(cnn) == 6221832
