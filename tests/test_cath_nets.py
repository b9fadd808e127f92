"""CATH networks (Weiler et al. 2018 §5.4): exact published parameter counts, fast
construction, structure of the se3cnn blocks, and cube-rotation invariance of the steerable
classifier's logits (float64, eval mode; train mode with a fixed dropout mask)."""
import time

import torch
import torch.nn.functional as F

from models.baselines import ResNet34
from models.steerable import (GatedBlock, SE3GatedResBlock, SE3ResNet34Small, SteerableConv3d,
                              cube_rotations, kernels, rotate_field)
from tests.equivariance import assert_equivariant

ROTS = cube_rotations()


def act_scalar(R, x):
    return rotate_field(x, R, [(1, 0)])


def invariant(R, y):
    return y


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_published_parameter_counts_exactly():
    assert n_params(ResNet34()) == 15_878_764      # P p.9 / p.17
    assert n_params(SE3ResNet34Small()) == 143_560  # P p.9
    # both follow the same ResNet34 stage layout
    assert ResNet34.STRIDES == SE3ResNet34Small.STRIDES
    assert ResNet34.BLOCKS == [1] + [len(stage) for stage in SE3ResNet34Small.FEATURES[1:]]


def test_steerable_net_builds_in_seconds_from_a_cold_cache():
    kernels.unit_basis.cache_clear()
    kernels._wigner_3j.cache_clear()
    t0 = time.perf_counter()
    net = SE3ResNet34Small()
    assert time.perf_counter() - t0 < 10.0
    assert sum(isinstance(m, SteerableConv3d) for m in net.modules()) == 37


def test_se3cnn_block_structure():
    net = SE3ResNet34Small()
    blocks = [m for m in net.modules() if isinstance(m, GatedBlock)]
    assert all(b.bn is not None and b.bn.momentum == 0.01 and not b.bn.affine for b in blocks)
    assert all(b.dropout is not None and b.dropout.p == 0.1 for b in blocks)
    assert all(b.conv.stride == 1 for b in blocks)  # strides are AvgPool3d(3, 2, 1)
    assert sum(isinstance(m, torch.nn.AvgPool3d) for m in net.modules()) == 6
    res = [m for m in net.modules() if isinstance(m, SE3GatedResBlock)]
    assert len(res) == 1 + 3 + 4 + 6 + 3
    # projection shortcuts where type or resolution change: stages 2-4 and the final 256-scalar block
    assert sum(isinstance(r.shortcut, torch.nn.Sequential) for r in res) == 4
    # gated inner convolution, linear last convolution and shortcut, no activation after the sum
    for r in res[1:]:
        assert r.layers[0].scalar_act is not None and r.layers[-1].scalar_act is None
    assert [b.conv.size for b in blocks][:1] == [7] and {b.conv.size for b in blocks[1:]} == {3}
    assert net.Rs_out == [(256, 0)]


def test_resnet34_forward_and_structure():
    net = ResNet34().eval()
    assert net(torch.rand(2, 1, 9, 9, 9)).shape == (2, 10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert sum(c.kernel_size == (1, 1, 1) for c in convs) == 3
    assert all(c.bias is None for c in convs) and convs[0].kernel_size == (7, 7, 7)


def test_steerable_logits_invariant_under_cube_rotations():
    torch.manual_seed(0)
    net = SE3ResNet34Small().double()
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 1, 9, 9, 9, dtype=torch.float64))  # non-trivial running statistics
    net.eval()
    x = torch.rand(1, 1, 9, 9, 9, dtype=torch.float64)  # 9 ≡ 1 (mod 8): three symmetric strides
    assert_equivariant(net, x, act_scalar, invariant, ROTS, rtol=1e-10)
    x25 = torch.rand(1, 1, 25, 25, 25, dtype=torch.float64)
    assert_equivariant(net, x25, act_scalar, invariant, [ROTS[5]], rtol=1e-10)


def test_steerable_train_mode_step_and_seeded_invariance():
    torch.manual_seed(1)
    net = SE3ResNet34Small().double().train()
    x = torch.rand(2, 1, 9, 9, 9, dtype=torch.float64)

    def seeded(t):  # batch statistics are invariant; the capsule-dropout mask is fixed by the seed
        torch.manual_seed(5)
        return net(t)
    assert_equivariant(seeded, x, act_scalar, invariant, ROTS[1:4], rtol=1e-10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = F.cross_entropy(net(x), torch.tensor([0, 7]))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    opt.step()
