"""DeepSphere layers: Chebyshev graph convolution, HEALPix pooling, batch norm on (B, V, F).

Paper: Defferrard et al. 2016 (Chebyshev filters), Perraudin et al. 2019 (ASCOM) §"Graph
convolution" and §"Pooling", Defferrard et al. ICLR 2020 §"Method".

Tensor layout everywhere: ``x`` is ``(B, V, F)`` = (batch, vertices, features). Vertices of
HEALPix inputs are in NESTED order.

Chebyshev convolution, with ``L̃ = 2L/λ_max − I`` (spectrum in ``[−1, 1]``)::

    y_b,:,o = Σ_{k<K} Σ_i  T_k(L̃) x_b,:,i  θ_{k,i,o}  (+ bias_o),
    T_0 = I,  T_1 = L̃,  T_k = 2 L̃ T_{k−1} − T_{k−2},

``K`` = number of coefficients (polynomial degree ``K − 1``; cosmology ``K = 5``); cost
``O(K·|E|·B·min(F_in, F_out))`` sparse plus ``O(K·V·B·F_in·F_out)`` dense. How it is computed
(:class:`_ChebConvFunction`, a custom autograd function): no stack of the ``K`` terms and no
layout change for large graphs; each term is multiplied by its ``θ_k`` as soon as it exists,
and because ``L̃`` is symmetric the backward is again a Chebyshev sum (Clenshaw's recurrence),
one sparse product per order, forward and backward.

>>> import torch
>>> from models.deepsphere.graph import healpix_laplacian
>>> conv = ChebConv(3, 5, K=4, laplacian=healpix_laplacian(2, k=8))
>>> conv(torch.randn(2, 48, 3)).shape
torch.Size([2, 48, 5])
>>> HealpixPool("max")(torch.randn(2, 48, 5)).shape
torch.Size([2, 12, 5])
>>> IcosahedralPool(2)(torch.randn(2, 162, 5)).shape, IcosahedralUnpool(2)(torch.randn(2, 42, 5)).shape
(torch.Size([2, 42, 5]), torch.Size([2, 162, 5]))
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

POOL_MODES = ("max", "avg")


class _SymSpMM(torch.autograd.Function):
    """``L x`` for a symmetric sparse ``L`` (no gradient to ``L``): backward is ``L g``."""

    @staticmethod
    def forward(ctx, L: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(L)
        return torch.sparse.mm(L, x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (L,) = ctx.saved_tensors
        return None, torch.sparse.mm(L, g.contiguous())


def sym_spmm(L: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``L @ x`` for a symmetric sparse ``L`` (CSR or COO) and dense 2-D ``x``."""
    return _SymSpMM.apply(L, x)


def _panels(x: torch.Tensor, vertex_major: bool) -> torch.Tensor:
    """``(B, V, F)`` as "panels" ``(P, V, n·F)``: each panel a contiguous ``(V, n·F)`` matrix for
    the sparse products and, viewed as ``(V·n, F)``, for the channel mixing. Batch-major
    ``P = B, n = 1`` is ``x`` itself (no copy); vertex-major ``P = 1, n = B`` is one wide panel
    (a transposed copy), for small graphs where one product per batch element would cost more in
    calls than in arithmetic."""
    if not vertex_major:
        return x.contiguous()
    B, V, F = x.shape
    return x.transpose(0, 1).contiguous().view(1, V, B * F)


def _unpanel(y: torch.Tensor, batch: int, vertex_major: bool) -> torch.Tensor:
    if not vertex_major:
        return y
    _, V, nF = y.shape
    return y.view(V, batch, nF // batch).transpose(0, 1).contiguous()


def _cheb_recursion(L: torch.Tensor, X: torch.Tensor, f: int, W: torch.Tensor | None, K: int,
                    bias: torch.Tensor | None = None, keep: torch.Tensor | None = None):
    """``Y = Σ_{k<K} T_k(L̃) X W_k (+ bias)`` on panels ``X`` ``(P, V, n·f)`` with ``W`` ``(K, f, g)``,
    by the recursion ``T_k X = 2 L̃ T_{k−1} X − T_{k−2} X`` on the ``f``-wide columns, each term
    mixed into ``Y`` ``(P, V, n·g)`` as soon as it is computed. ``keep`` ``(K−1, P, V, n·f)``
    receives ``T_k X`` for ``k ≥ 1`` (for the weight gradient); otherwise three rolling buffers
    hold them. ``W = None``: only the terms (into ``keep``), no ``Y``."""
    P, V, c = X.shape
    rows = V * (c // f)
    Y = None if W is None else X.new_empty(P, V, (c // f) * W.shape[2])
    ring = X.new_empty(min(K - 1, 3), V, c) if keep is None and K > 1 else None
    for p in range(P):
        y = None if Y is None else Y[p].view(rows, -1)
        older, prev = None, X[p]
        if y is not None:
            if bias is None:
                torch.mm(prev.view(rows, f), W[0], out=y)
            else:
                torch.addmm(bias, prev.view(rows, f), W[0], out=y)
        for k in range(1, K):
            t = keep[k - 1, p] if keep is not None else ring[(k - 1) % 3]
            if k == 1:  # T_1 X = L̃ X (beta = 0: t's old content is ignored)
                torch.addmm(t, L, prev, beta=0, out=t)
            else:
                torch.addmm(older, L, prev, beta=-1, alpha=2, out=t)
            if y is not None:
                y.addmm_(t.view(rows, f), W[k])
            older, prev = prev, t
    return Y


def _cheb_clenshaw(L: torch.Tensor, X: torch.Tensor, f: int, W: torch.Tensor,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """The same sum ``Y = Σ_{k<K} T_k(L̃) (X W_k) (+ bias)`` by Clenshaw's recurrence on the
    ``g``-wide products ``G_k = X W_k``: ``b_{K−1} = G_{K−1}``,
    ``b_k = G_k + 2 L̃ b_{k+1} − b_{k+2}``, ``Y = G_0 + L̃ b_1 − b_2``: ``K − 1`` sparse products
    on ``g`` columns instead of ``f`` (the layer's forward when ``F_out < F_in``, and its input
    gradient ``Σ_k T_k(L̃) G W_kᵀ``, since ``T_k(L̃)`` is symmetric)."""
    P, V, c = X.shape
    rows = V * (c // f)
    K, _, g = W.shape
    Y = X.new_empty(P, V, (c // f) * g)
    ring = X.new_empty(min(K - 1, 3), V, Y.shape[2]) if K > 1 else None
    for p in range(P):
        x, y = X[p].view(rows, f), Y[p]
        cur, prev = None, None
        if K > 1:
            cur = ring[0]
            torch.mm(x, W[K - 1], out=cur.view(rows, g))
        for k in range(K - 2, 0, -1):
            nxt = ring[(K - 1 - k) % 3]
            if prev is None:
                torch.mm(x, W[k], out=nxt.view(rows, g))
            else:
                torch.addmm(prev.view(rows, g), x, W[k], beta=-1, out=nxt.view(rows, g))
            nxt.addmm_(L, cur, alpha=2)
            prev, cur = cur, nxt
        if prev is None:
            torch.mm(x, W[0], out=y.view(rows, g))
        else:
            torch.addmm(prev.view(rows, g), x, W[0], beta=-1, out=y.view(rows, g))
        if cur is not None:
            y.addmm_(L, cur)
        if bias is not None:
            y.view(rows, g).add_(bias)
    return Y


class _ChebConvFunction(torch.autograd.Function):
    """``y = Σ_k T_k(L̃) x θ_k + b`` with its gradients, for a symmetric ``L̃``.

    Forward, ``F_in ≤ F_out``: the recursion on ``x`` (:func:`_cheb_recursion`; the terms are
    kept for ``∂/∂θ`` when the weight needs a gradient); ``F_in > F_out``: Clenshaw on ``x θ_k``
    (:func:`_cheb_clenshaw`), so the sparse products always run on ``min(F_in, F_out)``
    columns. Backward, with ``g = ∂ℓ/∂y``: ``∂ℓ/∂x = Σ_k T_k(L̃) g θ_kᵀ`` (Clenshaw, resp. the
    recursion on ``g``), ``∂ℓ/∂θ_k = (T_k x)ᵀ g = xᵀ (T_k g)``, ``∂ℓ/∂b = Σ g``: one sparse
    product per order again. Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, L, x, weight, bias, vertex_major: bool, keep_terms: bool):
        B, V, f_in = x.shape
        K, _, f_out = weight.shape
        X = _panels(x, vertex_major)
        keep = None
        if f_in <= f_out:
            if keep_terms and K > 1:
                keep = X.new_empty(K - 1, *X.shape)
            Y = _cheb_recursion(L, X, f_in, weight, K, bias, keep)
        else:
            Y = _cheb_clenshaw(L, X, f_in, weight, bias)
        ctx.save_for_backward(L, X, weight, keep)
        ctx.vertex_major = vertex_major
        ctx.batch = B
        return _unpanel(Y, B, vertex_major)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        L, X, weight, keep = ctx.saved_tensors
        K, f_in, f_out = weight.shape
        G = _panels(grad, ctx.vertex_major)
        need_x, need_w, need_b = ctx.needs_input_grad[1:4]
        gx = gw = gb = None
        if f_in <= f_out:
            if need_x:
                gx = _cheb_clenshaw(L, G, f_out, weight.transpose(1, 2))
            if need_w and keep is None and K > 1:  # θ needed no gradient when the forward ran
                keep = X.new_empty(K - 1, *X.shape)
                _cheb_recursion(L, X, f_in, None, K, keep=keep)
            terms, others = X, keep
        else:
            U = G.new_empty(K - 1, *G.shape) if need_w and K > 1 else None
            if need_x:
                gx = _cheb_recursion(L, G, f_out, weight.transpose(1, 2), K, keep=U)
            elif U is not None:
                _cheb_recursion(L, G, f_out, None, K, keep=U)
            terms, others = G, U
        if need_w:  # ∂ℓ/∂θ_k = (T_k x)ᵀ g = xᵀ (T_k g)
            gw = torch.empty_like(weight)
            x_rows, g_rows = X.view(-1, f_in), G.view(-1, f_out)
            for k in range(K):
                t = terms if k == 0 else others[k - 1]
                if f_in <= f_out:
                    torch.mm(t.view(-1, f_in).t(), g_rows, out=gw[k])
                else:
                    torch.mm(x_rows.t(), t.view(-1, f_out), out=gw[k])
        if need_b:
            gb = G.view(-1, f_out).sum(0)
        if gx is not None:
            gx = _unpanel(gx, ctx.batch, ctx.vertex_major)
        return None, gx, gw, gb, None, None


def _as_sparse_csr(L: torch.Tensor) -> torch.Tensor:
    if not isinstance(L, torch.Tensor) or L.layout not in (torch.sparse_csr, torch.sparse_coo):
        raise ValueError("ChebConv: laplacian must be a torch sparse (CSR or COO) tensor, "
                         "e.g. models.deepsphere.graph.healpix_laplacian(...)")
    if L.dim() != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"ChebConv: laplacian must be square, got shape {tuple(L.shape)}")
    if L.layout == torch.sparse_coo:
        L = L.coalesce().to_sparse_csr()
    return L


class ChebConv(nn.Module):
    """Chebyshev graph convolution ``y = Σ_k T_k(L̃) x θ_k + b`` (Defferrard et al. 2016).

    ``laplacian`` is the *rescaled* symmetric Laplacian ``L̃`` (torch sparse CSR/COO, e.g.
    :func:`models.deepsphere.graph.healpix_laplacian`). It behaves like a non-persistent
    buffer: ``.to()``/``.cuda()``/``.double()`` move and convert it (``_apply``) and it is not
    written to checkpoints (it is rebuilt from the constructor arguments). It is deliberately
    *not* registered as a buffer: DistributedDataParallel broadcasts every buffer at start-up
    and rejects sparse tensors ("Sparse CSR tensors do not have is_contiguous"); the operator
    is deterministic, so every rank builds the same one. Weights ``θ`` of shape ``(K, F_in, F_out)``
    are initialised ``N(0, 2/(F_in·K))`` (deepsphere-pytorch ``ChebConv``), bias 0.01.

    Layout: with ``f = min(F_in, F_out)`` (the width of the sparse products), small problems,
    ``V·f <`` :attr:`batch_major_min_size`, are computed on one ``(V, B·f)`` panel (one sparse
    product per order for the whole batch, after a transposed copy); larger ones one batch
    element at a time on ``x`` as it is, without copies. Measured crossover (1 thread, B = 8,
    forward+backward): ``V·f`` ≈ 50 k for f = 16 and 64, 100–150 k for f = 4 and 1.
    """

    #: ``V·min(F_in, F_out)`` from which the batch is processed element by element (class doc)
    batch_major_min_size = 1 << 16

    def __init__(self, in_channels: int, out_channels: int, K: int, laplacian: torch.Tensor,
                 bias: bool = True):
        super().__init__()
        if int(K) < 1:
            raise ValueError(f"ChebConv: K (number of Chebyshev coefficients) must be >= 1, got {K}")
        self.in_channels, self.out_channels, self.K = int(in_channels), int(out_channels), int(K)
        self.laplacian = _as_sparse_csr(laplacian).to(torch.get_default_dtype())
        self.weight = nn.Parameter(torch.empty(self.K, self.in_channels, self.out_channels))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.reset_parameters()

    def _apply(self, fn, recurse: bool = True):
        # ``.to()``, ``.cuda()``, ``.double()`` … also move/convert the sparse operator.
        super()._apply(fn, recurse)
        self.laplacian = fn(self.laplacian)
        return self

    def __deepcopy__(self, memo):
        # torch cannot deep-copy sparse CSR tensors; the operator is never modified in place
        # (``_apply`` rebinds it), so copies share it.
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = value if key == "laplacian" else copy.deepcopy(value, memo)
        return new

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (self.in_channels * self.K)))
        if self.bias is not None:
            nn.init.constant_(self.bias, 0.01)

    @property
    def num_vertices(self) -> int:
        return self.laplacian.shape[0]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, K={self.K}, V={self.num_vertices}, "
                f"nnz={self.laplacian.values().numel()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.num_vertices or x.shape[2] != self.in_channels:
            raise ValueError(f"ChebConv: expected input (B, {self.num_vertices}, {self.in_channels}), "
                             f"got {tuple(x.shape)}")
        f = min(self.in_channels, self.out_channels)  # columns of the sparse products
        vertex_major = x.shape[0] > 1 and self.num_vertices * f < self.batch_major_min_size
        keep_terms = torch.is_grad_enabled() and self.weight.requires_grad
        return _ChebConvFunction.apply(self.laplacian, x, self.weight, self.bias, vertex_major, keep_terms)


class HealpixPool(nn.Module):
    """HEALPix hierarchical pooling ``Nside → Nside/2`` on NESTED inputs.

    In NEST order the 4 children of parent pixel ``p`` are ``4p … 4p+3`` (also inside a
    partial-sphere block), so pooling is max/mean over groups of 4 consecutive vertices:
    ``(B, V, F) → (B, V/4, F)`` (deepsphere-pytorch ``healpix_pool_unpool``). With
    ``return_indices=True`` (max only) it also returns the child index in ``0..3`` per output,
    for :class:`HealpixUnpool`.
    """

    def __init__(self, mode: str = "max", return_indices: bool = False):
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"HealpixPool: mode must be one of {POOL_MODES}, got '{mode}'")
        if return_indices and mode != "max":
            raise ValueError("HealpixPool: return_indices needs mode='max'")
        self.mode, self.return_indices = mode, return_indices

    def extra_repr(self) -> str:
        return f"mode={self.mode}"

    def forward(self, x: torch.Tensor):
        if x.dim() != 3 or x.shape[1] % 4:
            raise ValueError(f"HealpixPool: expected (B, V, F) with V divisible by 4, got {tuple(x.shape)}")
        B, V, F = x.shape
        g = x.reshape(B, V // 4, 4, F)
        if self.mode == "avg":
            return g.mean(dim=2)
        val, idx = g.max(dim=2)
        return (val, idx) if self.return_indices else val


class HealpixUnpool(nn.Module):
    """HEALPix unpooling ``Nside → 2·Nside``: ``"nearest"`` copies each parent to its 4 NEST
    children; ``"max"`` puts it back at the child given by ``indices`` (zeros elsewhere)."""

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        if mode not in ("nearest", "max"):
            raise ValueError(f"HealpixUnpool: mode must be 'nearest' or 'max', got '{mode}'")
        self.mode = mode

    def forward(self, x: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"HealpixUnpool: expected (B, V, F), got {tuple(x.shape)}")
        B, V, F = x.shape
        if self.mode == "nearest":
            return x.repeat_interleave(4, dim=1)
        if indices is None or indices.shape != x.shape:
            raise ValueError("HealpixUnpool('max'): needs the indices returned by "
                             "HealpixPool('max', return_indices=True), same shape as x")
        out = x.new_zeros(B, V, 4, F)
        out.scatter_(2, indices.unsqueeze(2), x.unsqueeze(2))
        return out.reshape(B, 4 * V, F)


def _ico_parents(level: int) -> tuple[int, torch.Tensor]:
    from models.deepsphere.graph import icosahedral_hierarchy, icosahedral_size

    level = int(level)
    if level < 1:
        raise ValueError(f"icosahedral pooling needs a fine level >= 1, got {level}")
    parents = icosahedral_hierarchy(level)[1][level - 1]
    return icosahedral_size(level - 1), torch.from_numpy(np.array(parents, dtype=np.int64))


class IcosahedralPool(nn.Module):
    """Average pooling along the nested icosahedral hierarchy, level ``l → l − 1``.

    Rule (as math): with ``n = 10·4^(l−1) + 2`` coarse vertices and ``N(i)`` the fine vertices
    that are midpoints of a coarse edge incident to coarse vertex ``i`` (its 1-ring on level
    ``l``: 6 vertices, 5 at the 12 original ones),

        y_i = (x_i + Σ_{j ∈ N(i)} x_j) / (1 + |N(i)|),   i < n.

    Where it comes from: the ICLR paper says "average pooling" (climate section and appendix) without
    the rule; the deepsphere-tf1 ``models.py`` read (commit 06a1b67) has only the HEALPix /
    equiangular ``pool_average`` (mean over 4 consecutive NEST pixels), and deepsphere-pytorch
    keeps the first ``n`` vertices (subsampling, ``icosahedron_pool_unpool.py``). This rule is our transfer of
    the HEALPix neighbourhood average to the icosahedron: each coarse vertex is the centre
    of its fine 1-ring, and since the rule is defined by the mesh alone it commutes with every
    rotation of the icosahedral group (which permutes the vertices of each level and keeps the
    nesting). ``(B, V_l, F) → (B, V_{l−1}, F)``.
    """

    def __init__(self, level: int):
        super().__init__()
        self.level = int(level)
        self.n_coarse, parents = _ico_parents(self.level)
        self.register_buffer("parents", parents, persistent=False)
        count = torch.ones(self.n_coarse, dtype=torch.float64)
        count.index_add_(0, parents.reshape(-1), torch.ones(parents.numel(), dtype=torch.float64))
        self.register_buffer("inv_count", 1.0 / count, persistent=False)

    def extra_repr(self) -> str:
        return f"level={self.level} -> {self.level - 1}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m = self.n_coarse, self.parents.shape[0]
        if x.dim() != 3 or x.shape[1] != n + m:
            raise ValueError(f"IcosahedralPool: expected (B, {n + m}, F) (level {self.level}), got {tuple(x.shape)}")
        fine = x[:, n:]
        y = x[:, :n].index_add(1, self.parents[:, 0], fine).index_add(1, self.parents[:, 1], fine)
        return y * self.inv_count.to(x.dtype)[None, :, None]


class IcosahedralUnpool(nn.Module):
    """Unpooling along the nested icosahedral hierarchy, level ``l − 1 → l``.

    ``"interp"`` (default): a fine vertex that is a coarse vertex keeps its value, an edge
    midpoint gets the mean of its two parents, ``y_{n+j} = (x_a + x_b)/2`` (linear interpolation
    along the coarse edge). ``"nearest"``: both copies of the coarse values, midpoints get the
    value of their first parent (not symmetric in the two parents, hence not equivariant).
    ``"ones"``: midpoints get the constant 1, the UGSCNN / deepsphere-pytorch unpooling
    (deepsphere-pytorch ``icosahedron_pool_unpool.py``). ``(B, V_{l−1}, F) → (B, V_l, F)``.
    """

    MODES = ("interp", "ones", "nearest")

    def __init__(self, level: int, mode: str = "interp"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"IcosahedralUnpool: mode must be one of {self.MODES}, got '{mode}'")
        self.level, self.mode = int(level), mode
        self.n_coarse, parents = _ico_parents(self.level)
        self.register_buffer("parents", parents, persistent=False)

    def extra_repr(self) -> str:
        return f"level={self.level - 1} -> {self.level}, mode={self.mode}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_coarse:
            raise ValueError(f"IcosahedralUnpool: expected (B, {self.n_coarse}, F) (level {self.level - 1}), "
                             f"got {tuple(x.shape)}")
        a, b = self.parents[:, 0], self.parents[:, 1]
        if self.mode == "interp":
            mid = 0.5 * (x[:, a] + x[:, b])
        elif self.mode == "nearest":
            mid = x[:, a]
        else:
            mid = x.new_ones(x.shape[0], len(a), x.shape[2])
        return torch.cat([x, mid], dim=1)


class EquiangularPool(nn.Module):
    """2 × 2 average (``mode="avg"``) or max (``"max"``) pooling on the Driscoll–Healy grid, bandwidth ``b → b/2``
    (:func:`~.graph.equiangular_vectors`: ``2b × 2b`` points, colatitude major). Coarse colatitude
    ``θ'_j = π(2j+1)/(2b)`` is the mean of the fine pair ``θ_{2j}, θ_{2j+1}``; coarse longitude
    ``φ'_k = 2πk/b`` is the first of its fine pair (the pooled cell is centred half a fine step
    east of it). ``(B, 4b², F) → (B, b², F)``."""

    def __init__(self, bandwidth: int, mode: str = "avg"):
        super().__init__()
        self.bandwidth = int(bandwidth)
        if self.bandwidth < 2 or self.bandwidth % 2:
            raise ValueError(f"EquiangularPool: bandwidth must be even and >= 2, got {bandwidth}")
        if mode not in POOL_MODES:
            raise ValueError(f"EquiangularPool: mode must be one of {POOL_MODES}, got '{mode}'")
        self.mode = mode

    def extra_repr(self) -> str:
        return f"b={self.bandwidth} -> {self.bandwidth // 2}, mode={self.mode}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 2 * self.bandwidth
        if x.dim() != 3 or x.shape[1] != n * n:
            raise ValueError(f"EquiangularPool: expected (B, {n * n}, F) (b = {self.bandwidth}), got {tuple(x.shape)}")
        B, _, F = x.shape
        g = x.reshape(B, n // 2, 2, n // 2, 2, F)
        g = g.mean(dim=(2, 4)) if self.mode == "avg" else g.amax(dim=(2, 4))
        return g.reshape(B, n * n // 4, F)


class EquiangularUnpool(nn.Module):
    """Nearest unpooling ``b/2 → b`` on the Driscoll–Healy grid: each coarse value is copied to
    the 2 × 2 fine points it was pooled from (the inverse layout of :class:`EquiangularPool`)."""

    def __init__(self, bandwidth: int):
        super().__init__()
        self.bandwidth = int(bandwidth)
        if self.bandwidth < 2 or self.bandwidth % 2:
            raise ValueError(f"EquiangularUnpool: bandwidth must be even and >= 2, got {bandwidth}")

    def extra_repr(self) -> str:
        return f"b={self.bandwidth // 2} -> {self.bandwidth}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.bandwidth  # coarse grid is 2(b/2) = b points a side
        if x.dim() != 3 or x.shape[1] != m * m:
            raise ValueError(f"EquiangularUnpool: expected (B, {m * m}, F) (b = {m // 2}), got {tuple(x.shape)}")
        B, _, F = x.shape
        return x.reshape(B, m, 1, m, 1, F).expand(B, m, 2, m, 2, F).reshape(B, 4 * m * m, F)


class SphereBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the feature axis of ``(B, V, F)`` inputs (statistics over batch and
    vertices, hence invariant to any vertex permutation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GlobalAvgPool(nn.Module):
    """Mean over vertices ``(B, V, F) → (B, F)``: invariant to vertex permutations (ASCOM
    §"Network architectures", the FCN's rotation invariance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)
