"""DeepSphere graphs: samplings, k-NN ties, exact HEALPix rotation symmetry, Laplacians.

The central check (issue #4 §1): the HEALPix k-NN graph commutes *exactly* with the pixel
permutation of a 90° rotation about the pole, ``L[perm][:, perm] = L`` (same sparsity pattern,
weights equal to float64 rounding), while the same graph with arbitrary tie-breaking does not.
"""
from __future__ import annotations

import math

import healpy as hp
import numpy as np
import pytest
import scipy.sparse as sp

from models.deepsphere import graph as G


def _permuted(M: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """``M'[i, j] = M[perm⁻¹ i, perm⁻¹ j]``, i.e. the operator acting on rotated signals."""
    inv = np.argsort(perm)
    return M[inv][:, inv].tocsr()


def _pattern_mismatches(A: sp.csr_matrix, B: sp.csr_matrix) -> int:
    return ((A != 0).astype(np.int8) != (B != 0).astype(np.int8)).nnz


@pytest.mark.parametrize("nside", [4, 16])
def test_rotation_permutation_is_bijection_and_respects_nesting(nside):
    perm = G.healpix_rotation_permutation(nside)
    assert np.array_equal(np.sort(perm), np.arange(12 * nside ** 2))
    assert not np.array_equal(perm, np.arange(12 * nside ** 2))
    # four quarter turns are the identity
    p4 = np.arange(12 * nside ** 2)
    for _ in range(4):
        p4 = perm[p4]
    assert np.array_equal(p4, np.arange(12 * nside ** 2))
    # rotated pixel centres land exactly on pixel centres
    v = np.stack(hp.pix2vec(nside, np.arange(12 * nside ** 2), nest=True), 1)
    vr = np.stack(hp.pix2vec(nside, perm, nest=True), 1)
    np.testing.assert_allclose(vr, np.stack([-v[:, 1], v[:, 0], v[:, 2]], 1), atol=1e-12)
    # the NEST hierarchy is preserved: children of p go to children of perm_coarse[p]
    coarse = G.healpix_rotation_permutation(nside // 2)
    assert np.array_equal(perm // 4, coarse[np.arange(12 * nside ** 2) // 4])


@pytest.mark.parametrize("k", [8, 20, 40])
def test_knn_graph_commutes_exactly_with_quarter_turn(k):
    nside = 8
    perm = G.healpix_rotation_permutation(nside)
    g = G.healpix_graph(nside, k)
    for M in (g.W, g.laplacian("normalized"), g.laplacian("combinatorial")):
        Mp = _permuted(M, perm)
        assert _pattern_mismatches(M, Mp) == 0
        assert abs(M - Mp).max() <= 1e-12 * abs(M).max()
    # every vertex keeps at least k neighbours (ties add more, never fewer)
    assert np.diff(g.W.indptr).min() >= k


def test_arbitrary_tie_breaking_is_not_equivariant():
    """Negative control: exactly k neighbours with the tree's tie order breaks the symmetry."""
    nside = 8
    perm = G.healpix_rotation_permutation(nside)
    g = G.healpix_graph(nside, 8, tie_rtol=None)
    W = g.W
    assert _pattern_mismatches(W, _permuted(W, perm)) > 0
    assert abs(W - _permuted(W, perm)).max() > 1e-3


def test_v1_graph_commutes_and_matches_healpix_neighbours():
    nside = 8
    g = G.healpix_graph_v1(nside)
    perm = G.healpix_rotation_permutation(nside)
    assert _pattern_mismatches(g.W, _permuted(g.W, perm)) == 0
    assert abs(g.W - _permuted(g.W, perm)).max() <= 1e-12
    deg = np.diff(g.W.indptr)
    assert deg.min() == 7 and deg.max() == 8  # corner pixels have 7 neighbours
    d2 = np.sum((g.coords[g.W.tocoo().row] - g.coords[g.W.tocoo().col]) ** 2, 1)
    assert math.isclose(g.t, d2.mean() / 2, rel_tol=1e-9)


@pytest.mark.parametrize("kind", ["combinatorial", "normalized"])
def test_laplacian_symmetric_psd(kind):
    g = G.healpix_graph(4, 20)
    L = g.laplacian(kind)
    assert abs(L - L.T).max() == 0
    ev = np.linalg.eigvalsh(L.toarray())
    assert ev.min() > -1e-10
    if kind == "combinatorial":
        assert abs(L @ np.ones(g.n)).max() < 1e-12  # constant vector in the null space
    else:
        assert ev.max() <= 2 + 1e-10
        d = np.asarray(g.W.sum(1)).ravel()
        assert abs(L @ np.sqrt(d)).max() < 1e-12
    lam = G.largest_eigenvalue(L)
    assert ev.max() <= lam <= ev.max() * 1.01
    Lt = G.rescale_laplacian(L, lam)
    evt = np.linalg.eigvalsh(Lt.toarray())
    assert evt.min() >= -1 - 1e-12 and evt.max() <= 1 + 1e-12
    assert G.largest_eigenvalue(L, kind, method="bound") >= ev.max()


def test_lanczos_lmax_on_a_larger_graph():
    L = G.healpix_graph(16, 8).laplacian("combinatorial")
    lam = G.largest_eigenvalue(L)
    from scipy.sparse.linalg import eigsh
    ref = eigsh(L, k=1, which="LA", tol=1e-8)[0][0]
    assert ref <= lam <= ref * 1.01


def test_optimal_kernel_width_table_and_extrapolation():
    # anchors-sphere.md §1: t at Nside 32 = 2.25e-4, 3.66e-4, 6.49e-4 for k = 8, 20, 40
    for k, t_ref in ((8, 2.25e-4), (20, 3.66e-4), (40, 6.49e-4)):
        sigma, t, rule = G.optimal_kernel_width(k, 32)
        assert math.isclose(t, t_ref, rel_tol=5e-3) and "published" in rule
        assert math.isclose(t, sigma ** 2 / (4 * math.log(2)))
    assert math.isclose(G.optimal_kernel_width(8, 16)[0], 2 * 0.025)
    assert math.isclose(G.optimal_kernel_width(40, 512)[0], 0.005551 / 2)
    assert math.isclose(G.optimal_kernel_width(40, 1024)[0], 0.005551 / 4)
    assert "extrapolated" in G.optimal_kernel_width(20, 8)[2]
    with pytest.raises(ValueError, match="no published optimal kernel width"):
        G.optimal_kernel_width(9, 32)
    g = G.healpix_graph(8, 8)
    assert math.isclose(g.t, G.optimal_kernel_width(8, 8)[1])


@pytest.mark.parametrize("order", [1, 2, 4])
def test_partial_sphere_blocks(order):
    nside = 16
    base = 12 * order * order - 1
    pix = G.healpix_pixels(nside, order, base)
    assert len(pix) * 12 * order * order == 12 * nside ** 2
    theta, phi = hp.pix2ang(nside, pix, nest=True)
    assert np.all(hp.ang2pix(order, theta, phi, nest=True) == base)
    g = G.healpix_graph(nside, 8, order=order, base_index=base)
    assert g.n == len(pix) and abs(g.W - g.W.T).max() == 0
    np.testing.assert_allclose(g.coords, G.healpix_vectors(nside)[pix])


def test_partial_sphere_graphs_of_rotated_blocks_are_identical():
    """Base pixels 0 → 1 under a quarter turn: their graphs are the same matrix."""
    nside, order = 16, 1
    perm = G.healpix_rotation_permutation(nside)
    block0 = G.healpix_pixels(nside, order, 0)
    block1 = G.healpix_pixels(nside, order, 1)
    assert np.array_equal(np.sort(perm[block0]), block1)
    W0 = G.healpix_graph(nside, 20, order=order, base_index=0).W
    W1 = G.healpix_graph(nside, 20, order=order, base_index=1).W
    local = perm[block0] - block1[0]  # vertex i of block 0 → vertex local[i] of block 1
    W0r = _permuted(W0, local)
    assert _pattern_mismatches(W0r, W1) == 0 and abs(W0r - W1).max() <= 1e-12


def test_other_samplings():
    ico = [G.icosahedral_vectors(level) for level in range(3)]
    assert [len(v) for v in ico] == [12, 42, 162]
    assert np.array_equal(ico[2][:42], ico[1])  # coarse vertices first (pooling = prefix)
    np.testing.assert_allclose(np.linalg.norm(ico[2], axis=1), 1)
    g = G.icosahedral_graph(2, k=6)
    assert np.diff(g.W.indptr).min() >= 5 and abs(g.W - g.W.T).max() == 0
    assert math.isclose(g.t, float(np.mean(G.knn_edges(g.coords, 6)[2] ** 2)) / 2)
    eq = G.equiangular_graph(8, k=4)
    assert eq.n == 16 * 16 and np.diff(eq.W.indptr).min() >= 4
    rng = np.random.default_rng(0)
    pts = G.points_graph(rng.uniform(-180, 180, 300), np.degrees(np.arcsin(rng.uniform(-1, 1, 300))), k=5)
    assert pts.n == 300 and np.diff(pts.W.indptr).min() >= 5 and abs(pts.W - pts.W.T).max() == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="power of 2"):
        G.healpix_graph(6)
    with pytest.raises(ValueError, match="order"):
        G.healpix_pixels(8, 3)
    with pytest.raises(ValueError, match="base_index"):
        G.healpix_pixels(8, 2, 48)
    with pytest.raises(ValueError, match="duplicate"):
        G.knn_graph(np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), 2)
    with pytest.raises(ValueError, match="Laplacian"):
        G.laplacian(sp.identity(3), "random-walk")


def _brute_force_graph(coords: np.ndarray, k: int, t: float, tie_rtol: float = 1e-9) -> np.ndarray:
    """The k-NN heat-kernel graph by its definition, on the full distance matrix (small n):
    ``j ~ i`` iff ``d_ij ≤ d_k(i)·(1 + tie_rtol)``, union-symmetrised, ``w = exp(−d²/4t)``."""
    D = np.sqrt(sum((coords[:, None, a] - coords[None, :, a]) ** 2 for a in range(3)))
    np.fill_diagonal(D, np.inf)
    dk = np.sort(D, axis=1)[:, k - 1]
    A = D <= dk[:, None] * (1 + tie_rtol)
    A |= A.T
    return np.where(A, np.exp(-D ** 2 / (4 * t)), 0.0)


@pytest.mark.parametrize("nside, k, order, base", [(1, 8, None, 0), (2, 20, None, 0), (4, 8, None, 0),
                                                   (8, 40, None, 0), (16, 8, None, 0), (16, 20, 2, 5)])
def test_knn_graph_equals_its_definition(nside, k, order, base):
    """The fast build (k+2 query, re-query of tied rows only, CSR straight from the query,
    scipy merge of W_dir and its transpose) gives the graph of the definition, ties included."""
    g = G.healpix_graph(nside, k, order=order, base_index=base)
    ref = _brute_force_graph(g.coords, min(k, g.n - 1), g.t)
    W = g.W.toarray()
    assert np.array_equal(W != 0, ref != 0)
    np.testing.assert_allclose(W, ref, rtol=1e-13, atol=0)
    assert g.W.has_sorted_indices and abs(g.W - g.W.T).max() == 0


def test_knn_edges_order_chunks_and_requeries():
    """Rows ascending, distances ascending within a row; the same edges whatever the chunking
    (chunk 100: chunk borders inside rows' neighbourhoods and a distance bound from the chunks
    before; chunk 1: a bound from one row; and rows whose (k+1)-th neighbour ties are
    re-queried: 40 of 768 at Nside 8, k = 8). Equidistant neighbours may come in another order."""
    v = G.healpix_vectors(8)
    r, c, d = G.knn_edges(v, 8)
    assert np.all(np.diff(r) >= 0) and np.all((np.diff(d) >= 0) | (np.diff(r) > 0))
    counts = np.bincount(r, minlength=len(v))
    assert counts.min() == 8 and (counts > 8).sum() > 0  # some rows keep a tie beyond the 8th
    for r2, c2, d2 in (G.knn_edges(v, 8, chunk=100), G.knn_edges(v, 8, chunk=1)):
        assert np.array_equal(r, r2) and np.array_equal(d, d2)
        assert np.array_equal(np.sort(r * len(v) + c), np.sort(r2 * len(v) + c2))  # same edges
    ref = _brute_force_graph(v, 8, 1.0)  # directed edges: the rows of the definition before the union
    D = np.sqrt(sum((v[:, None, a] - v[None, :, a]) ** 2 for a in range(3)))
    np.fill_diagonal(D, np.inf)
    A = D <= np.sort(D, axis=1)[:, 7:8] * (1 + 1e-9)
    assert np.array_equal(np.sort(r * len(v) + c), np.flatnonzero(A)) and ref.any()


def test_laplacian_cache_and_clear():
    import torch

    a = G.healpix_laplacian(8, 8)
    assert G.healpix_laplacian(8, 8) is a  # cached
    G.clear_graph_cache()
    b = G.healpix_laplacian(8, 8)
    assert b is not a
    for x, y in ((a.crow_indices(), b.crow_indices()), (a.col_indices(), b.col_indices()),
                 (a.values(), b.values())):
        assert torch.equal(x, y)


@pytest.mark.parametrize("nside, order", [(2, None), (16, 1)])
def test_reference_rescaling_spectrum_bounds(nside, order):
    """deepsphere-cosmo-tf1 ``chebyshev5``: ``rescale_L(L, lmax=1.02·λ_max, scale=0.75)`` is
    ``L̃ = 1.5·L/(1.02·λ_max) − I``: the normalised Laplacian's eigenvalue 0 maps to −1 and λ_max to
    1.5/1.02 − 1 = 0.470588…, exactly (Lanczos to machine precision; 48 and 256 vertices cover both
    the dense and the ARPACK branch of the eigenvalue)."""
    g = G.healpix_graph_v1(nside, order)
    L = G.laplacian(g.W, "normalized")
    lam_true = np.linalg.eigvalsh(L.toarray()).max()
    op, lam = G.chebyshev_operator(g.W, "normalized", "auto", lmax_factor=1.02, spectrum_scale=0.75)
    assert lam == pytest.approx(1.02 * lam_true, rel=1e-12)
    ev = np.linalg.eigvalsh(op.to_dense().numpy())
    assert ev.min() == pytest.approx(-1.0, abs=1e-12)
    assert ev.max() == pytest.approx(1.5 / 1.02 - 1.0, abs=1e-12)
    assert 1.5 / 1.02 - 1.0 == pytest.approx(0.4705882352941, abs=1e-12)
    # the operator itself: 2·0.75·L/(1.02·λ_max) − I, entry by entry
    want = 1.5 / (1.02 * lam_true) * L.toarray() - np.eye(L.shape[0])
    np.testing.assert_allclose(op.to_dense().numpy(), want, rtol=0, atol=1e-12)
    # the default maps onto [−1, 1] (λ_max estimated from above by a factor 1 + 2·tol = 1.002)
    ev0 = np.linalg.eigvalsh(G.chebyshev_operator(g.W, "normalized")[0].to_dense().numpy())
    assert ev0.min() == pytest.approx(-1.0, abs=1e-12) and 0.995 < ev0.max() <= 1.0


def test_reference_rescaling_reaches_the_classifier_and_rejects_bad_values():
    from models.deepsphere.nets import deepsphere_classifier

    net = deepsphere_classifier("fcn", nside=8, channels=(4,), K=3, graph="v1", order=1,
                                lmax_factor=1.02, spectrum_scale=0.75)
    ev = np.linalg.eigvalsh(net.blocks[0]["conv"].laplacian.to_dense().double().numpy())
    assert ev.max() == pytest.approx(1.5 / 1.02 - 1.0, abs=1e-6)  # float32 operator in the layer
    default = deepsphere_classifier("fcn", nside=8, channels=(4,), K=3, graph="v1", order=1)
    assert np.linalg.eigvalsh(default.blocks[0]["conv"].laplacian.to_dense().double().numpy()).max() > 0.99
    W = G.healpix_graph_v1(2).W
    with pytest.raises(ValueError, match="lmax_factor"):
        G.chebyshev_operator(W, "normalized", lmax_factor=0.0)
    with pytest.raises(ValueError, match="scale"):
        G.chebyshev_operator(W, "normalized", lmax_factor=1.02, spectrum_scale=-1.0)
