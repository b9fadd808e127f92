"""DeepSphere layers and nets: Chebyshev convolution against a dense reference, exact
equivariance to the 90° polar rotation (pixel permutation), NEST pooling, FCN invariance."""
from __future__ import annotations

import copy
import time

import healpy as hp
import numpy as np
import pytest
import torch

from models.deepsphere import (ChebConv, DeepSphereCNN, DeepSphereFCN, HealpixPool, HealpixUnpool,
                               SphereBatchNorm, chebyshev_operator, healpix_graph,
                               healpix_laplacian, healpix_rotation_permutation, sym_spmm)
from tests.equivariance import assert_equivariant

NSIDE = 8


def rot(perm: torch.Tensor):
    """Action of the quarter turn on (B, V, F) signals: ``(R x)[:, perm[i]] = x[:, i]``."""
    def act(_g, x):
        y = torch.empty_like(x)
        y[:, perm] = x
        return y
    return act


@pytest.fixture(scope="module")
def perms():
    return {n: torch.from_numpy(healpix_rotation_permutation(n)) for n in (NSIDE, NSIDE // 2, NSIDE // 4)}


def test_chebconv_matches_dense_chebyshev_recursion():
    torch.manual_seed(0)
    conv = ChebConv(3, 4, K=4, laplacian=healpix_laplacian(4, k=20)).double()
    Lt = conv.laplacian.to_dense()
    torch.testing.assert_close(Lt, healpix_laplacian(4, k=20).to_dense(), rtol=0, atol=1e-7)
    x = torch.randn(2, 192, 3, dtype=torch.float64)
    T = [torch.eye(192, dtype=torch.float64), Lt]
    for _ in range(2, 4):
        T.append(2 * Lt @ T[-1] - T[-2])
    ref = sum(torch.einsum("uv,bvi,io->buo", T[k], x, conv.weight[k]) for k in range(4)) + conv.bias
    torch.testing.assert_close(conv(x), ref, rtol=1e-12, atol=1e-12)
    # K = 1 is a pointwise linear map
    c1 = ChebConv(3, 2, K=1, laplacian=healpix_laplacian(4, k=20)).double()
    torch.testing.assert_close(c1(x), x @ c1.weight[0] + c1.bias)


def test_symmetric_spmm_gradient():
    L = healpix_laplacian(2, k=8)
    x = torch.randn(48, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: sym_spmm(L, z), (x,))
    conv = ChebConv(2, 3, K=3, laplacian=L).double()
    xb = torch.randn(2, 48, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (xb,))


LAYOUTS = {"vertex-major": 1 << 40, "batch-major": 0}  # ChebConv.batch_major_min_size forcing each


def _dense_chebyshev(L: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """``Σ_k T_k(L̃) x θ_k + b`` with the dense ``T_k`` of the three-term recursion, in float64."""
    Ld = L.to_dense().double()
    T = [torch.eye(Ld.shape[0], dtype=torch.float64), Ld]
    for _ in range(2, weight.shape[0]):
        T.append(2 * Ld @ T[-1] - T[-2])
    y = sum(torch.einsum("uv,bvi,io->buo", T[k], x, weight[k]) for k in range(weight.shape[0]))
    return y if bias is None else y + bias


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("fin, fout", [(3, 5), (5, 3), (4, 4)])
@pytest.mark.parametrize("K", [1, 2, 3, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_chebconv_float32_equals_dense_reference_with_gradients(layout, fin, fout, K, bias):
    """Forward and all gradients (input, θ, bias) of the float32 layer against the dense float64
    reference, on both layouts and both evaluation orders (recursion when F_in ≤ F_out,
    Clenshaw when F_in > F_out; in the backward the other way round)."""
    torch.manual_seed(K + 10 * fin + 100 * fout)
    conv = ChebConv(fin, fout, K, healpix_laplacian(4, k=8), bias=bias)
    conv.batch_major_min_size = LAYOUTS[layout]
    x = torch.randn(3, 192, fin, requires_grad=True)
    g = torch.randn(3, 192, fout)
    y = conv(x)
    assert y.shape == (3, 192, fout) and y.dtype == torch.float32 and y.is_contiguous()
    params = [x, conv.weight] + ([conv.bias] if bias else [])
    grads = torch.autograd.grad(y, params, g)
    xd = x.detach().double().requires_grad_()
    ref_params = [xd, conv.weight.detach().double().requires_grad_()]
    if bias:
        ref_params.append(conv.bias.detach().double().requires_grad_())
    ref = _dense_chebyshev(conv.laplacian, xd, ref_params[1], ref_params[2] if bias else None)
    ref_grads = torch.autograd.grad(ref, ref_params, g.double())
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("fin, fout", [(2, 3), (3, 2)])
def test_chebconv_gradcheck_both_layouts_and_orders(layout, fin, fout):
    conv = ChebConv(fin, fout, K=4, laplacian=healpix_laplacian(2, k=8)).double()
    conv.batch_major_min_size = LAYOUTS[layout]
    x = torch.randn(2, 48, fin, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, w, b: _chebconv_with(conv, z, w, b),
                                    (x, conv.weight.detach().clone().requires_grad_(),
                                     conv.bias.detach().clone().requires_grad_()))


def _chebconv_with(conv, x, weight, bias):
    from models.deepsphere.layers import _ChebConvFunction

    vertex_major = x.shape[1] * min(weight.shape[1:]) < conv.batch_major_min_size
    return _ChebConvFunction.apply(conv.laplacian, x, weight, bias, vertex_major, True)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_chebconv_equals_deepsphere_pytorch_algorithm(layout):
    """Same outputs and gradients as the deepsphere-pytorch algorithm (its re-implementation in
    the speed benchmark, COO Laplacian, its weight layout) to float32 precision."""
    from reproduce.measure.deepsphere_pytorch import DeepSpherePyTorchChebConv

    torch.manual_seed(5)
    conv = ChebConv(6, 10, K=3, laplacian=healpix_laplacian(NSIDE, k=8))
    conv.batch_major_min_size = LAYOUTS[layout]
    peer = DeepSpherePyTorchChebConv(conv)
    x = torch.randn(3, 12 * NSIDE ** 2, 6, requires_grad=True)
    g = torch.randn(3, 12 * NSIDE ** 2, 10)
    ours = torch.autograd.grad(conv(x), (x, conv.weight, conv.bias), g)
    y_peer = peer(x)
    theirs = torch.autograd.grad(y_peer, (x, peer.weight, peer.bias), g)
    torch.testing.assert_close(conv(x), y_peer, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    # the peer's weight rows are ordered (F_in, K): map its gradient back to θ's (K, F_in, F_out)
    torch.testing.assert_close(ours[1], theirs[1].reshape(6, 3, 10).transpose(0, 1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours[2], theirs[2], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("fin, fout", [(3, 5), (5, 3)])
def test_chebconv_partial_gradients_no_grad_and_strided_input(fin, fout):
    """Only the gradients asked for (frozen θ: no terms kept; input without gradient: first
    layer), no_grad forward = grad forward, and a non-contiguous input."""
    torch.manual_seed(2)
    conv = ChebConv(fin, fout, K=4, laplacian=healpix_laplacian(8, k=8))
    conv.batch_major_min_size = 0
    base = torch.randn(fin, 768, 2).permute(2, 1, 0)  # (2, 768, fin), not contiguous
    with torch.no_grad():
        y0 = conv(base)
    x = base.clone().requires_grad_()
    y = conv(x)
    torch.testing.assert_close(y0, y, rtol=0, atol=0)
    g = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, conv.weight, conv.bias), g)
    conv.weight.requires_grad_(False)
    (gx2,) = torch.autograd.grad(conv(x), (x,), g)
    torch.testing.assert_close(gx2, gx, rtol=0, atol=0)
    conv.weight.requires_grad_(True)
    gw2, gb2 = torch.autograd.grad(conv(base), (conv.weight, conv.bias), g)
    torch.testing.assert_close(gw2, gw, rtol=0, atol=0)
    torch.testing.assert_close(gb2, gb, rtol=0, atol=0)


@pytest.mark.parametrize("k", [8, 40])
def test_chebconv_exactly_equivariant(perms, k):
    torch.manual_seed(1)
    conv = ChebConv(2, 5, K=5, laplacian=healpix_laplacian(NSIDE, k=k)).double()
    x = torch.randn(3, 12 * NSIDE ** 2, 2, dtype=torch.float64)
    err = assert_equivariant(conv, x, rot(perms[NSIDE]), rot(perms[NSIDE]), [0], rtol=1e-10)
    assert err < 1e-10
    # float32 too, to single precision
    conv32 = ChebConv(2, 5, K=5, laplacian=healpix_laplacian(NSIDE, k=k))
    assert_equivariant(conv32, x.float(), rot(perms[NSIDE]), rot(perms[NSIDE]), [0], rtol=1e-5)


def test_chebconv_negative_control_arbitrary_ties(perms):
    """A graph built with arbitrary k-NN tie-breaking makes the layer fail the same check."""
    torch.manual_seed(1)
    op, _ = chebyshev_operator(healpix_graph(NSIDE, 8, tie_rtol=None).W, "normalized")
    conv = ChebConv(2, 5, K=5, laplacian=op).double()
    x = torch.randn(3, 12 * NSIDE ** 2, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(conv, x, rot(perms[NSIDE]), rot(perms[NSIDE]), [0], rtol=1e-6)


def test_pooling_maps_nested_children_to_parents(perms):
    n = NSIDE
    theta, phi = hp.pix2ang(n, np.arange(12 * n * n), nest=True)
    parent = hp.ang2pix(n // 2, theta, phi, nest=True)
    assert np.array_equal(parent, np.arange(12 * n * n) // 4)
    x = torch.randn(2, 12 * n * n, 3, dtype=torch.float64)
    p = torch.from_numpy(parent)
    ref_max = torch.stack([x[:, p == q].amax(1) for q in range(12 * n * n // 4)], 1)
    ref_avg = torch.stack([x[:, p == q].mean(1) for q in range(12 * n * n // 4)], 1)
    torch.testing.assert_close(HealpixPool("max")(x), ref_max)
    torch.testing.assert_close(HealpixPool("avg")(x), ref_avg)
    # pooling commutes with the rotation (perm at Nside → perm at Nside/2)
    for mode in ("max", "avg"):
        assert_equivariant(HealpixPool(mode), x, rot(perms[n]), rot(perms[n // 2]), [0], rtol=1e-12)
    # unpooling: nearest copies to the 4 children; max puts the maximum back where it was
    y = HealpixUnpool("nearest")(ref_avg)
    torch.testing.assert_close(y, ref_avg[:, p])
    val, idx = HealpixPool("max", return_indices=True)(x)
    up = HealpixUnpool("max")(val, idx)
    assert torch.equal(HealpixPool("max")(up.where(up != 0, torch.tensor(-1e9, dtype=up.dtype))), val)
    assert int((up != 0).sum()) == val.numel()
    with pytest.raises(ValueError, match="divisible by 4"):
        HealpixPool()(torch.randn(1, 10, 2))


def test_fcn_layers_equivariant_and_output_invariant(perms):
    torch.manual_seed(2)
    net = DeepSphereFCN(nside=NSIDE, in_channels=2, num_classes=3, channels=(6, 8), K=4, k=20)
    net = net.double().eval()
    with torch.no_grad():  # non-trivial BN statistics
        for blk in net.blocks:
            blk["bn"].running_mean.uniform_(-0.2, 0.2)
            blk["bn"].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 12 * NSIDE ** 2, 2, dtype=torch.float64)
    # trunk: equivariant from Nside 8 to Nside 2
    err = assert_equivariant(net.features, x, rot(perms[NSIDE]), rot(perms[NSIDE // 4]), [0], rtol=1e-10)
    assert err < 1e-10
    # logits: invariant
    assert_equivariant(net, x, rot(perms[NSIDE]), lambda g, y: y, [0], rtol=1e-10)
    # also in training mode (batch statistics are permutation invariant)
    net.train()
    assert_equivariant(net, x, rot(perms[NSIDE]), lambda g, y: y, [0], rtol=1e-10)
    # float32, single precision
    net32 = copy.deepcopy(net).float().eval()
    assert_equivariant(net32, x.float(), rot(perms[NSIDE]), lambda g, y: y, [0], rtol=1e-5)


def test_cnn_head_is_not_invariant(perms):
    """The FC head sees pixel positions: the CNN variant is *not* invariant (sanity check
    that the invariance test above can fail)."""
    torch.manual_seed(3)
    net = DeepSphereCNN(nside=NSIDE, channels=(4, 4), K=3).double().eval()
    x = torch.randn(2, 12 * NSIDE ** 2, 1, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_equivariant(net, x, rot(perms[NSIDE]), lambda g, y: y, [0], rtol=1e-6)


def test_paper_architecture_shapes_partial_sphere_and_cache():
    # the paper's FCN/CNN at order 4 of Nside 1024: 65,536 px → 5 pools → Nside 32 (64 px)
    t0 = time.perf_counter()
    fcn = DeepSphereFCN(nside=1024, order=4, base_index=7)
    cnn = DeepSphereCNN(nside=1024, order=4, base_index=7)
    assert fcn.nsides == [1024, 512, 256, 128, 64, 32]
    assert [b["conv"].out_channels for b in fcn.blocks] == [16, 32, 64, 64, 64]
    assert fcn.head.K == 5 and fcn.head.out_channels == 2
    x = torch.randn(2, 65536, 1)
    assert fcn(x).shape == (2, 2) and cnn(x).shape == (2, 2)
    assert cnn.fc.in_features == 64 * 64
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    DeepSphereFCN(nside=1024, order=4, base_index=7)
    assert time.perf_counter() - t0 < max(0.2, cold / 5)  # graphs come from the cache
    # the sparse operator is rebuilt, not checkpointed, and follows .double()
    assert not any("laplacian" in k for k in fcn.state_dict())
    assert fcn.double().blocks[0]["conv"].laplacian.dtype == torch.float64
    with pytest.raises(ValueError, match=r"expected input \(B, 65536, 1\)"):
        fcn(torch.randn(2, 300, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="cannot be pooled"):
        DeepSphereFCN(nside=16, order=4)
    # tiny levels (fewer pixels than k) get complete graphs; a single pixel gets L̃ = −I
    tiny = DeepSphereFCN(nside=8, order=4, channels=(3,), K=3)
    assert tiny(torch.randn(2, 4, 1)).shape == (2, 2)
    assert torch.equal(tiny.head.laplacian.to_dense(), -torch.eye(1))


def test_batchnorm_on_vertex_layout():
    bn = SphereBatchNorm(3).double()
    x = torch.randn(4, 48, 3, dtype=torch.float64) * 5 + 2
    y = bn(x)
    torch.testing.assert_close(y.mean((0, 1)), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    assert y.shape == x.shape


def test_chebconv_weight_gradient_when_forward_kept_no_terms():
    """θ frozen during the forward (no terms kept), then asked for a gradient: recomputed."""
    from models.deepsphere.layers import _ChebConvFunction

    torch.manual_seed(4)
    conv = ChebConv(2, 4, K=3, laplacian=healpix_laplacian(4, k=8)).double()
    x = torch.randn(2, 192, 2, dtype=torch.float64)
    g = torch.randn(2, 192, 4, dtype=torch.float64)
    (want,) = torch.autograd.grad(conv(x), (conv.weight,), g)
    for vertex_major in (True, False):
        y = _ChebConvFunction.apply(conv.laplacian, x, conv.weight, conv.bias, vertex_major, False)
        (got,) = torch.autograd.grad(y, (conv.weight,), g)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
