"""SHREC'17 networks: parameter counts against the published ones, exact rotation invariance where
the grid has the symmetry (HEALPix quarter turn, equiangular quarter turn, the 24 cube rotations),
with negative controls, and the semi-hard triplet loss against a brute-force reading of its
definition."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.deepsphere import healpix_rotation_permutation
from models.deepsphere.nets import SphereClassifier
from models.steerable import Shrec17SE3Net, cube_rotations, rotate_field
from models.tasks import Retrieve, triplet_semihard_loss
from tests.equivariance import assert_equivariant

SMALL = (4, 8, 8)


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def permute_vertices(perm: np.ndarray):
    p = torch.from_numpy(perm)

    def act(_g, x):  # (B, V, F): (R x)[:, perm[i]] = x[:, i]
        y = torch.empty_like(x)
        y[:, p] = x
        return y
    return act


def invariant(_g, y):
    return y


def test_parameter_counts_match_the_papers():
    """DeepSphere: ~190 k published ([ICLR] tab:shrec17); by hand K·Fin·Fout + Fout per GC, 2F per
    BN, 256·55 for the bias-free FC. Steerable: 142,617 (counted from se3cnn
    examples/shrec17/model.py; the paper's 142k, Weiler et al. 2018 supplement p. 16)."""
    by_hand = sum(4 * a * b + b for a, b in [(6, 16), (16, 32), (32, 64), (64, 128), (128, 256)])
    by_hand += 2 * (16 + 32 + 64 + 128 + 256) + 256 * 55
    assert by_hand == 190_032
    for sampling in ("healpix:32", "equiangular:64"):
        assert n_params(SphereClassifier(sampling, in_channels=6, num_classes=55)) == by_hand
    assert n_params(Shrec17SE3Net(num_classes=55)) == 142_617


def test_healpix_levels_and_graph():
    net = SphereClassifier("healpix:32")
    assert net.level_names == [f"healpix:{n}" for n in (32, 16, 8, 4, 2, 1)]
    assert net.num_vertices == 12_288
    eq = SphereClassifier("equiangular:64")
    assert eq.level_names[-1] == "equiangular:2" and eq.num_vertices == 16_384


def test_healpix_net_invariant_to_exact_quarter_turn_with_negative_control():
    torch.manual_seed(0)
    net = SphereClassifier("healpix:8", in_channels=6, num_classes=5, channels=SMALL).double()
    net.train()
    with torch.no_grad():
        net(torch.randn(4, 768, 6, dtype=torch.float64))  # non-trivial BN running statistics
    net.eval()
    x = torch.randn(2, 768, 6, dtype=torch.float64)
    perm = healpix_rotation_permutation(8)
    err = assert_equivariant(net, x, permute_vertices(perm), invariant, [None], rtol=1e-10)
    assert err < 1e-10
    assert_equivariant(net.embed, x, permute_vertices(perm), invariant, [None], rtol=1e-10)
    wrong = np.random.default_rng(0).permutation(768)  # not a symmetry of the graph
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(net, x, permute_vertices(wrong), invariant, [None], rtol=1e-6)


def test_equiangular_net_invariant_to_quarter_turn_about_the_pole():
    """A longitude shift by a multiple of 2^depth columns commutes with the graphs and the 2 × 2
    pooling of every level; a quarter turn is 2b/4 columns."""
    torch.manual_seed(0)
    b = 16
    net = SphereClassifier(f"equiangular:{b}", in_channels=6, num_classes=5, channels=SMALL).double().eval()
    idx = np.arange(4 * b * b).reshape(2 * b, 2 * b)
    perm = np.roll(idx, b // 2, axis=1).reshape(-1)  # vertex i moves to perm[i]
    x = torch.randn(2, 4 * b * b, 6, dtype=torch.float64)
    assert_equivariant(net, x, permute_vertices(perm), invariant, [None], rtol=1e-9)
    odd = np.roll(idx, 1, axis=1).reshape(-1)  # one column: breaks the pooling cells
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(net, x, permute_vertices(odd), invariant, [None], rtol=1e-6)


NARROW = [(1,), (2, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1), (8,)]


def test_steerable_net_invariant_under_the_24_cube_rotations():
    torch.manual_seed(0)
    net = Shrec17SE3Net(num_classes=5, features=NARROW).double().train()
    assert 13 in net.exact_sizes(20)
    with torch.no_grad():
        net(torch.rand(2, 1, 13, 13, 13, dtype=torch.float64))
    net.eval()
    x = torch.rand(1, 1, 13, 13, 13, dtype=torch.float64)
    rots = cube_rotations()
    assert len(rots) == 24
    err = assert_equivariant(net, x, lambda R, t: rotate_field(t, R, [(1, 0)]), invariant, rots, rtol=1e-10)
    assert err < 1e-10
    # negative control: an even edge puts the stride-2 sampling grid off-centre
    x14 = torch.rand(1, 1, 14, 14, 14, dtype=torch.float64)
    assert 14 not in net.exact_sizes(20)
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(net, x14, lambda R, t: rotate_field(t, R, [(1, 0)]), invariant, rots[1:4], rtol=1e-6)


def test_steerable_paper_sizes():
    net = Shrec17SE3Net()
    assert net.spatial_sizes(64) == [34, 38, 21, 25, 15, 19, 12, 16]
    assert 61 in net.exact_sizes(64)
    with pytest.raises(ValueError, match="9 multiplicity tuples"):
        Shrec17SE3Net(features=[(1,), (4,)])


def brute_force_triplet(e: torch.Tensor, y: torch.Tensor, margin: float) -> float:
    d = torch.cdist(e.double(), e.double())
    losses = []
    for a, p in itertools.permutations(range(len(y)), 2):
        if y[a] != y[p]:
            continue
        negs = [n for n in range(len(y)) if y[n] != y[a]]
        if not negs:
            continue
        semi = [float(d[a, n]) for n in negs if d[a, n] > d[a, p]]
        dn = min(semi) if semi else max(float(d[a, n]) for n in negs)
        losses.append(max(float(d[a, p]) - dn + margin, 0.0))
    return float(np.mean(losses)) if losses else 0.0


def test_triplet_semihard_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        e = torch.nn.functional.normalize(torch.randn(12, 4, generator=g, dtype=torch.float64), dim=1)
        y = torch.randint(0, 3, (12,), generator=g)
        for margin in (0.2, 1.0):
            assert float(triplet_semihard_loss(e, y, margin)) == pytest.approx(brute_force_triplet(e, y, margin),
                                                                             abs=1e-12)
    e = torch.randn(3, 4)
    assert float(triplet_semihard_loss(e, torch.tensor([0, 1, 2]))) == 0.0  # no positive pair
    assert float(triplet_semihard_loss(e, torch.tensor([1, 1, 1]))) == 0.0  # no negative


def test_retrieve_with_triplet_trains_one_step():
    torch.manual_seed(0)
    net = SphereClassifier("healpix:4", in_channels=6, num_classes=3, channels=(4, 8))
    task = Retrieve(net, num_classes=3, triplet_margin=1.0, optim={"name": "adam", "lr": 1e-2})
    task.log = lambda *a, **k: None  # outside a Trainer
    x, y = torch.randn(6, 192, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    loss = task._step((x, y, torch.arange(6)), "train")
    ce = torch.nn.functional.cross_entropy(net(x), y)
    assert float(loss.detach()) > float(ce.detach()) - 1e-6  # cross-entropy + a non-negative triplet term
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="embed"):
        Retrieve(torch.nn.Linear(3, 3), num_classes=3, triplet_margin=1.0)
