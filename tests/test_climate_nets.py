"""DeepSphere climate U-Net: icosahedral hierarchy nesting, pooling/unpooling, exact equivariance
under rotations of the icosahedral group (float64) with negative controls, parameter counts."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from models.deepsphere import (DeepSphereUNet, IcosahedralPool, IcosahedralUnpool, count_parameters,
                               icosahedral_hierarchy, icosahedral_size, icosahedral_vectors, paper_unet)
from models.deepsphere.graph import healpix_vectors, icosahedral_graph
from tests.equivariance import assert_equivariant

LEVEL = 3
SMALL = ((4, 6), (8,), (8,), (8,))  # 3 poolings: level 3 -> 0


def vertex_permutation(R: np.ndarray, level: int, atol: float = 1e-9) -> np.ndarray:
    """``perm[i]`` = the vertex onto which ``R`` maps vertex ``i`` (found by matching the rotated
    coordinates); ``ValueError`` if ``R`` is not a symmetry of the mesh."""
    v = icosahedral_vectors(level)
    d, j = cKDTree(v).query(v @ R.T)
    if d.max() > atol or len(np.unique(j)) != len(v):
        raise ValueError(f"rotation does not permute the level-{level} vertices (max mismatch {d.max():.3g})")
    return j


def five_fold(angle_deg: float = 72.0) -> np.ndarray:
    axis = icosahedral_vectors(0)[0]
    return Rotation.from_rotvec(np.radians(angle_deg) * axis).as_matrix()


def three_fold() -> np.ndarray:  # about the centre of face (0, 11, 5)
    v = icosahedral_vectors(0)
    c = v[[0, 11, 5]].sum(0)
    return Rotation.from_rotvec(2 * np.pi / 3 * c / np.linalg.norm(c)).as_matrix()


def act_on(perm: np.ndarray):
    p = torch.from_numpy(perm)

    def act(_g, x):  # (B, C, V): (R x)[..., perm[i]] = x[..., i]
        y = torch.empty_like(x)
        y[..., p] = x
        return y
    return act


# ------------------------------------------------------------------ hierarchy and pooling
def test_hierarchy_nests_and_parents_are_edge_midpoints():
    v3, parents = icosahedral_hierarchy(3)
    assert [len(icosahedral_vectors(l)) for l in range(4)] == [icosahedral_size(l) for l in range(4)] \
        == [12, 42, 162, 642]
    for l in range(1, 4):
        coarse = icosahedral_vectors(l - 1)
        np.testing.assert_array_equal(v3[:len(coarse)], coarse)  # nesting: prefix = coarser level
        p = parents[l - 1]
        assert p.shape == (icosahedral_size(l) - icosahedral_size(l - 1), 2) and p.max() < len(coarse)
        m = coarse[p[:, 0]] + coarse[p[:, 1]]
        np.testing.assert_allclose(v3[len(coarse):icosahedral_size(l)], m / np.linalg.norm(m, axis=1)[:, None],
                                   atol=1e-15)
        # parents are adjacent coarse vertices: each is among the other's 6 nearest
        nbr = cKDTree(coarse).query(coarse, k=7)[1]
        assert all(b in nbr[a] for a, b in p)
    g = icosahedral_graph(2, k=6, kernel_width="mean_distance")
    d = g.W.data
    assert g.n == 162 and np.all(d > 0) and np.all(d < 1)
    assert "mean(d)/4" in g.kernel_rule


def test_icosahedral_pool_is_the_one_ring_average_and_unpool_interpolates():
    x = torch.randn(2, 162, 3, dtype=torch.float64)
    y = IcosahedralPool(2)(x)
    assert y.shape == (2, 42, 3)
    _, parents = icosahedral_hierarchy(2)
    p = parents[1]
    for i in (0, 5, 11, 12, 41):  # original vertices (5 ring members) and level-1 vertices (6)
        ring = 42 + np.nonzero((p == i).any(1))[0]
        assert len(ring) == (5 if i < 12 else 6)
        torch.testing.assert_close(y[:, i], x[:, [i, *ring]].mean(1))
    c = torch.ones(1, 162, 1, dtype=torch.float64)
    torch.testing.assert_close(IcosahedralPool(2)(c), torch.ones(1, 42, 1, dtype=torch.float64))
    z = torch.randn(2, 42, 3, dtype=torch.float64)
    u = IcosahedralUnpool(2)(z)
    assert u.shape == (2, 162, 3)
    torch.testing.assert_close(u[:, :42], z)
    torch.testing.assert_close(u[:, 42 + 7], (z[:, p[7, 0]] + z[:, p[7, 1]]) / 2)
    assert torch.all(IcosahedralUnpool(2, "ones")(z)[:, 42:] == 1)
    with pytest.raises(ValueError, match="expected"):
        IcosahedralPool(2)(torch.randn(1, 160, 3))


# ------------------------------------------------------------------ the U-Net
def test_unet_shapes_and_levels():
    net = DeepSphereUNet(f"ico:{LEVEL}", in_channels=16, num_classes=3, encoder=SMALL)
    assert [lv.num_vertices for lv in net.levels] == [642, 162, 42, 12]
    assert net(torch.randn(2, 16, 642)).shape == (2, 3, 642)
    with pytest.raises(ValueError, match=r"expected input \(B, 16, 642\)"):
        net(torch.randn(2, 642, 16))
    with pytest.raises(ValueError, match="cannot be pooled"):
        DeepSphereUNet("ico:2", encoder=SMALL)
    hp = DeepSphereUNet("healpix:8", in_channels=16, encoder=SMALL)  # Nside 8 -> 1
    assert [lv.num_vertices for lv in hp.levels] == [768, 192, 48, 12]
    assert hp(torch.randn(1, 16, 768)).shape == (1, 3, 768)
    pts = np.random.default_rng(0).standard_normal((300, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    pnet = DeepSphereUNet("points", in_channels=16, encoder=SMALL, coords=pts)
    assert pnet(torch.randn(1, 16, 300)).shape == (1, 3, 300)
    # same layers on every sampling: a state dict moves between them
    assert count_parameters(pnet) == count_parameters(hp) == count_parameters(net)
    pnet.load_state_dict(net.state_dict())
    twin = copy.deepcopy(net).eval()  # sparse operators are shared, parameters copied
    with torch.no_grad():
        x = torch.randn(1, 16, 642)
        torch.testing.assert_close(twin(x), net.eval()(x))


def test_symmetry_permutations_are_found_and_non_symmetries_rejected():
    for R in (five_fold(), three_fold()):
        perm = vertex_permutation(R, LEVEL)
        assert not np.array_equal(perm, np.arange(len(perm)))
        # the permutation respects the nesting: level l-1 vertices go to level l-1 vertices
        n2 = icosahedral_size(LEVEL - 1)
        np.testing.assert_array_equal(perm[:n2], vertex_permutation(R, LEVEL - 1))
    with pytest.raises(ValueError, match="does not permute"):
        vertex_permutation(five_fold(36.0), LEVEL)


@pytest.mark.parametrize("rotation", ["five_fold", "three_fold"])
def test_unet_exactly_equivariant_to_icosahedral_rotations(rotation):
    torch.manual_seed(0)
    R = five_fold() if rotation == "five_fold" else three_fold()
    perm = vertex_permutation(R, LEVEL)
    net = DeepSphereUNet(f"ico:{LEVEL}", in_channels=3, num_classes=3, encoder=SMALL).double().eval()
    for m in net.modules():  # non-trivial BN statistics, so eval-mode BN is not the identity
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, icosahedral_size(LEVEL), dtype=torch.float64)
    err = assert_equivariant(net, x, act_on(perm), act_on(perm), [R], rtol=1e-10)
    assert err < 1e-10
    net.train()  # batch statistics over batch and vertices: permutation invariant too
    assert_equivariant(net, x, act_on(perm), act_on(perm), [R], rtol=1e-10)


def test_equivariance_check_fails_on_broken_nets():
    """Negative controls: the same check must fail (a) for a net whose unpooling is not symmetric
    in the two parents, (b) for a vertex permutation that is not a mesh symmetry (a random one),
    (c) for a net with a per-vertex bias (position dependent)."""
    torch.manual_seed(0)
    perm = vertex_permutation(five_fold(), LEVEL)
    n = icosahedral_size(LEVEL)
    x = torch.randn(2, 3, n, dtype=torch.float64)
    broken = DeepSphereUNet(f"ico:{LEVEL}", in_channels=3, encoder=SMALL, ico_unpool="nearest").double().eval()
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(broken, x, act_on(perm), act_on(perm), [None], rtol=1e-6)
    net = DeepSphereUNet(f"ico:{LEVEL}", in_channels=3, encoder=SMALL).double().eval()
    wrong = np.random.default_rng(0).permutation(n)
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(net, x, act_on(wrong), act_on(wrong), [None], rtol=1e-6)
    bias = torch.randn(1, 3, n, dtype=torch.float64)
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(lambda z: net(z + bias), x, act_on(perm), act_on(perm), [None], rtol=1e-6)


def test_healpix_unet_equivariant_to_polar_quarter_turn():
    from models.deepsphere import healpix_rotation_permutation

    torch.manual_seed(0)
    net = DeepSphereUNet("healpix:8", in_channels=2, encoder=SMALL).double().eval()
    perm = healpix_rotation_permutation(8)
    x = torch.randn(2, 2, 768, dtype=torch.float64)
    assert_equivariant(net, x, act_on(perm), act_on(perm), [None], rtol=1e-10)
    assert healpix_vectors(8).shape == (768, 3)


def test_paper_net_on_healpix_nside_32():
    net = paper_unet("healpix:32", "jiang")
    assert [lv.name for lv in net.levels] == [f"healpix:{n}" for n in (32, 16, 8, 4, 2, 1)]
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 16, 12288)).shape == (1, 3, 12288)


def test_parameter_counts_against_the_published_ones():
    """Paper net 10,486,787 (published 13 M), Jiang architecture 527,387 (published 590 k): the
    numbers the unet module docstring states. Counted on a point set of the same layers (the
    counts do not depend on the sampling) to keep the test fast."""
    pts = icosahedral_vectors(1)
    paper = paper_unet("points", "paper", coords=pts)
    jiang = paper_unet("points", "jiang", coords=pts)
    assert count_parameters(paper) == 10_486_787
    assert count_parameters(jiang) == 527_387
    # by hand: K·Fin·Fout + Fout per GC, 2·F per BN
    enc = [(16, 32), (32, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512)]
    dec = [(512, 512), (1024, 512), (512, 512), (1024, 512), (512, 256), (512, 256), (256, 128),
           (256, 128), (128, 64), (128, 64), (64, 32)]
    n = sum(4 * a * b + b + 2 * b for a, b in enc + dec) + 4 * 32 * 3 + 3
    assert n == 10_486_787
    with open(__import__("models.deepsphere.unet", fromlist=["x"]).__file__) as f:
        doc = f.read()
    assert "10,486,787" in doc and "527,387" in doc


def test_equiangular_pooling_and_unet_equivariant_to_grid_symmetries():
    """Equiangular U-Net (b = 8, 2 poolings -> b = 2): 2 x 2 average pooling and nearest unpooling;
    exactly equivariant (float64) to the grid's own symmetries that survive both poolings: a turn
    about the pole by one coarsest cell (4 fine longitudes) and the north-south flip. Negative
    control: a turn by one fine longitude is a symmetry of the finest graph but not of the pooling."""
    from models.deepsphere import EquiangularPool, EquiangularUnpool
    from models.deepsphere.graph import equiangular_vectors

    x = torch.arange(16.0).reshape(1, 16, 1)  # b = 2: 4 x 4 grid
    torch.testing.assert_close(EquiangularPool(2)(x).flatten(), torch.tensor([2.5, 4.5, 10.5, 12.5]))
    torch.testing.assert_close(EquiangularUnpool(2)(EquiangularPool(2)(x)).reshape(4, 4)[:2, :2],
                               torch.full((2, 2), 2.5))
    with pytest.raises(ValueError, match="multiple of 2"):
        DeepSphereUNet("equiangular:6", encoder=((4,), (4,), (4,)))
    torch.manual_seed(0)
    b, n = 8, 16
    net = DeepSphereUNet(f"equiangular:{b}", in_channels=2, encoder=((4, 6), (8,), (8,))).double().eval()
    assert [lv.name for lv in net.levels] == ["equiangular:8", "equiangular:4", "equiangular:2"]
    assert len(equiangular_vectors(b)) == n * n == net.num_vertices
    grid = np.arange(n * n).reshape(n, n)   # [colatitude, longitude] -> vertex
    turn = np.roll(grid, 4, axis=1).ravel()  # vertex i goes to turn[i]
    flip = grid[::-1].ravel()
    x = torch.randn(2, 2, n * n, dtype=torch.float64)
    for perm in (turn, flip):
        assert_equivariant(net, x, act_on(perm), act_on(perm), [None], rtol=1e-10)
    fine_turn = np.roll(grid, 1, axis=1).ravel()
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(net, x, act_on(fine_turn), act_on(fine_turn), [None], rtol=1e-6)
