"""Steerable kernel basis of 3D Steerable CNNs, and its assembly into a Conv3d filter bank.

Paper: Weiler et al. 2018, §4.2 (eq. 12–16: kernel constraint and its analytic solution) and
§4.4.1 (discretisation, radial shells, angular band-limit). Reference implementation:
``mariogeiger/se3cnn`` ``se3cnn/kernel.py`` (commit 546bc68).

**Constraint.** A kernel block ``κ: R³ → R^{(2l_out+1)×(2l_in+1)}`` mapping an order-``l_in``
field to an order-``l_out`` field is rotation-steerable iff

.. math::  κ(R x) = D^{l_out}(R)\\, κ(x)\\, D^{l_in}(R)^T \\qquad ∀ R ∈ SO(3).

**Solution** (eq. 14–16). With the Clebsch–Gordan / Wigner-3j tensor
``C^{J} = e3nn.o3.wigner_3j(l_out, l_in, J)`` (shape ``(2l_out+1, 2l_in+1, 2J+1)``, invariant:
``C_{ijk} = D^{l_out}_{ii'} D^{l_in}_{jj'} D^{J}_{kk'} C_{i'j'k'}``), every

.. math::  κ^{J,r}_{ij}(x) = φ_r(|x|) \\sum_M C^{J}_{ijM}\\, Y^J_M(x/|x|),
           \\qquad |l_out − l_in| ≤ J ≤ l_out + l_in,

solves the constraint, and together they span its solutions for the chosen radial functions.
``Y^J`` are e3nn's real spherical harmonics (``normalize=True, normalization='component'``,
so ``Y^J(Rx) = D^J(R) Y^J(x)``); at ``x = 0`` we set ``Y^0 = 1`` and ``Y^{J>0} = 0``.

**Discretisation** (§4.4.1, se3cnn defaults):

* radial shells ``φ_r(ρ) = exp(−(ρ − r)² / (2σ²))``, ``r = 0, 1, …, ⌊s/2⌋`` voxels, ``σ = 0.6``;
* angular band-limit per shell, ``J ≤ J_max(r)``: ``compromise`` (default in every paper
  script) ``J_max = 0, 3, 5, 7, …``; ``conservative`` ``0, 2, 4, 6, …``; ``sfcnn``
  ``0, 4, 6, 8, …``. So the shell ``r = 0`` keeps only ``J = 0``;
* samples at the voxel centres ``x ∈ {−(s−1)/2, …, (s−1)/2}³`` (x, y, z = kernel axes 0, 1, 2);
* basis order: shells outer loop, ``J`` inner loop; each element scaled to unit Frobenius norm
  on the grid, then by ``√((2 l_out + 1) / (n_basis · Σ_{in} m))`` so that N(0, 1) weights give
  outputs of unit variance (se3cnn ``SE3Kernel``).

**Assembly** (§4.4.3). For field types ``Rs_in, Rs_out`` and each pair of entries
``(m_o, l_o) ∈ Rs_out``, ``(m_i, l_i) ∈ Rs_in`` a weight ``w ∈ R^{m_o × m_i × n_basis}`` gives the
block ``K[(u, a), (v, b)] = Σ_β w[u, v, β] κ^β_{ab}`` (``u, v`` field indices, ``a, b``
components); all weights live in one flat parameter, pair by pair (as in se3cnn, so parameter
counts match). The block sizes are tiny, so the assembly is one small ``einsum`` per pair.

Unit-norm bases are computed once per ``(l_in, l_out, size, mode, σ)`` in float64 and cached in
process (:func:`unit_basis`), so building a 70-layer network takes well under a second.

>>> k = SteerableKernel([(2, 0), (1, 1)], [(1, 1)], size=5)
>>> k().shape
torch.Size([3, 5, 5, 5, 5])
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
from e3nn import o3
from torch import nn

from models.steerable.group import _float64_default, normalize_rs, rs_dim, rs_str

BANDLIMIT_MODES = ("compromise", "conservative", "sfcnn")
SIGMA = 0.6


def jmax_per_shell(n_shells: int, mode: str = "compromise") -> list[int]:
    """Angular band-limit of each radial shell ``r = 0 … n_shells−1`` (se3cnn
    ``gaussian_window_wrapper``): 0 at the origin, then ``2r + {0, 1, 2}``."""
    if mode not in BANDLIMIT_MODES:
        raise ValueError(f"unknown band-limit mode '{mode}' (choose from {', '.join(BANDLIMIT_MODES)})")
    extra = {"conservative": 0, "compromise": 1, "sfcnn": 2}[mode]
    return [0 if r == 0 else 2 * r + extra for r in range(n_shells)]


def basis_labels(l_in: int, l_out: int, size: int, mode: str = "compromise") -> list[tuple[int, int]]:
    """``(r, J)`` of each basis element, in basis order (before dropping numerically zero ones)."""
    n_shells = size // 2 + 1
    labels = []
    for r, jmax in zip(range(n_shells), jmax_per_shell(n_shells, mode)):
        for J in range(abs(l_in - l_out), l_in + l_out + 1):
            if J <= jmax:
                labels.append((r, J))
    return labels


@functools.lru_cache(maxsize=None)
def _wigner_3j(l_out: int, l_in: int, J: int) -> torch.Tensor:
    with _float64_default():
        return o3.wigner_3j(l_out, l_in, J, dtype=torch.float64)


def _sh(J: int, points: torch.Tensor) -> torch.Tensor:
    """``Y^J`` at ``points (N, 3)`` in float64, with ``Y^0(0) = 1`` and ``Y^{J>0}(0) = 0``."""
    r = points.norm(dim=-1)
    origin = r < 1e-12
    safe = torch.where(origin[:, None], torch.ones_like(points), points)
    with _float64_default():
        Y = o3.spherical_harmonics(J, safe, normalize=True, normalization="component")
    if J > 0:
        Y = torch.where(origin[:, None], torch.zeros_like(Y), Y)
    else:
        Y = torch.ones_like(Y)
    return Y


def kernel_basis_at(points: torch.Tensor, l_in: int, l_out: int, radii: Sequence[float],
                    jmax: Sequence[int], sigma: float = SIGMA) -> torch.Tensor:
    """Continuous basis kernels evaluated at arbitrary ``points (N, 3)`` (no normalisation).

    Returns ``(n_basis, 2 l_out + 1, 2 l_in + 1, N)`` in float64; element ``(r, J)`` is
    ``φ_r(|x|) Σ_M C^J_{··M} Y^J_M(x̂)`` for every shell radius ``r`` and ``J ≤ jmax`` of that
    shell. This is the object the constraint ``κ(Rx) = D^{l_out}(R) κ(x) D^{l_in}(R)^T`` is about.
    """
    points = points.to(torch.float64)
    rho = points.norm(dim=-1)
    out = []
    Ys = {}
    for r, jm in zip(radii, jmax):
        window = torch.exp(-0.5 * ((rho - float(r)) / sigma) ** 2)
        for J in range(abs(l_in - l_out), l_in + l_out + 1):
            if J > jm:
                continue
            if J not in Ys:
                Ys[J] = _sh(J, points)  # (N, 2J+1)
            C = _wigner_3j(l_out, l_in, J)  # (2l_out+1, 2l_in+1, 2J+1)
            out.append(torch.einsum("ijk,nk->ijn", C, Ys[J]) * window)
    if not out:
        return torch.zeros(0, 2 * l_out + 1, 2 * l_in + 1, points.shape[0], dtype=torch.float64)
    return torch.stack(out)


def grid_points(size: int) -> torch.Tensor:
    """Voxel centres of a ``size³`` kernel, ``(size³, 3)``, in (x, y, z) = axis (0, 1, 2) order."""
    rng = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size, dtype=torch.float64)
    gx, gy, gz = torch.meshgrid(rng, rng, rng, indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1).reshape(-1, 3)


@functools.lru_cache(maxsize=None)
def unit_basis(l_in: int, l_out: int, size: int, mode: str = "compromise",
               sigma: float = SIGMA) -> torch.Tensor:
    """Sampled basis ``(n_basis, 2l_out+1, 2l_in+1, size, size, size)``, each element of unit
    Frobenius norm, float64, cached. Elements that vanish on the grid (possible only for
    degenerate sizes such as 1) are dropped. Do not modify the returned tensor in place."""
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    n_shells = size // 2 + 1
    radii = list(range(n_shells))
    B = kernel_basis_at(grid_points(size), l_in, l_out, radii, jmax_per_shell(n_shells, mode), sigma)
    B = B.reshape(B.shape[0], 2 * l_out + 1, 2 * l_in + 1, size, size, size)
    norms = B.flatten(1).norm(dim=1)
    keep = norms > 1e-10 * max(1.0, float(norms.max()) if norms.numel() else 1.0)
    B = B[keep] / norms[keep].view(-1, 1, 1, 1, 1, 1)
    B.requires_grad_(False)
    return B


class SteerableKernel(nn.Module):
    """Learned weights × cached basis → full filter bank ``(C_out, C_in, s, s, s)`` (§4.4.3).

    Parameters: ``weight`` (flat, N(0, 1) init), one block ``(m_out, m_in, n_basis)`` per pair of
    ``Rs_out`` / ``Rs_in`` entries, in that (out-major) order. The scaled bases are
    non-persistent buffers ``basis_{i}_{j}`` (not in the state dict, identical in train and eval
    mode); casting the module (``.double()``, ``.to(...)``) rebuilds them from the float64 cache,
    so a float64 module has a float64-exact basis.
    """

    def __init__(self, Rs_in, Rs_out, size: int, mode: str = "compromise", sigma: float = SIGMA):
        super().__init__()
        self.Rs_in = normalize_rs(Rs_in)
        self.Rs_out = normalize_rs(Rs_out)
        self.size = int(size)
        self.mode = mode
        self.sigma = float(sigma)
        jmax_per_shell(1, mode)  # validates mode
        self.n_in = rs_dim(self.Rs_in)
        self.n_out = rs_dim(self.Rs_out)
        n_fields_in = sum(m for m, _ in self.Rs_in)
        self._pairs: list[tuple[int, int, int, int, int, int, float]] = []  # i, j, m_o, l_o, m_i, l_i, scale
        n_weights = 0
        for i, (m_o, l_o) in enumerate(self.Rs_out):
            for j, (m_i, l_i) in enumerate(self.Rs_in):
                nb = unit_basis(l_i, l_o, self.size, mode, self.sigma).shape[0]
                scale = math.sqrt((2 * l_o + 1) / (nb * n_fields_in)) if nb else 0.0
                self._pairs.append((i, j, m_o, l_o, m_i, l_i, scale))
                n_weights += m_o * m_i * nb
                self.register_buffer(f"basis_{i}_{j}", self._scaled_basis(l_i, l_o, scale,
                                                                          torch.get_default_dtype()),
                                     persistent=False)
        self.weight = nn.Parameter(torch.randn(n_weights))

    def _scaled_basis(self, l_in: int, l_out: int, scale: float, dtype, device=None) -> torch.Tensor:
        B = unit_basis(l_in, l_out, self.size, self.mode, self.sigma)
        return (B * scale).to(dtype=dtype, device=device)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        # re-derive the bases from the float64 cache so that e.g. float32 -> float64 is exact
        for i, j, m_o, l_o, m_i, l_i, scale in self._pairs:
            name = f"basis_{i}_{j}"
            old = getattr(self, name)
            self._buffers[name] = self._scaled_basis(l_i, l_o, scale, old.dtype, old.device)
        return self

    def n_basis(self, i: int, j: int) -> int:
        return getattr(self, f"basis_{i}_{j}").shape[0]

    def extra_repr(self) -> str:
        return f"{rs_str(self.Rs_in)} -> {rs_str(self.Rs_out)}, size={self.size}, mode={self.mode}"

    def combination(self, weight: torch.Tensor) -> torch.Tensor:
        """Kernel ``(C_out, C_in, s, s, s)`` for a given flat weight vector."""
        s = self.size
        if not self.Rs_in or not self.Rs_out:
            return weight.new_zeros(self.n_out, self.n_in, s, s, s)
        rows: list[list[torch.Tensor]] = [[] for _ in self.Rs_out]
        w_index = 0
        for i, j, m_o, l_o, m_i, l_i, _ in self._pairs:
            B = getattr(self, f"basis_{i}_{j}")  # (nb, d_o, d_i, s, s, s)
            nb = B.shape[0]
            d_o, d_i = 2 * l_o + 1, 2 * l_i + 1
            if nb == 0:
                rows[i].append(weight.new_zeros(m_o * d_o, m_i * d_i, s, s, s))
                continue
            w = weight[w_index: w_index + m_o * m_i * nb].view(m_o, m_i, nb)
            w_index += m_o * m_i * nb
            k = torch.einsum("uvb,bijxyz->uivjxyz", w, B.to(weight.dtype))
            rows[i].append(k.reshape(m_o * d_o, m_i * d_i, s, s, s))
        cat_rows = [r[0] if len(r) == 1 else torch.cat(r, dim=1) for r in rows]
        return cat_rows[0] if len(cat_rows) == 1 else torch.cat(cat_rows, dim=0)

    def forward(self) -> torch.Tensor:
        return self.combination(self.weight)


__all__ = [
    "BANDLIMIT_MODES", "SIGMA", "jmax_per_shell", "basis_labels", "kernel_basis_at",
    "grid_points", "unit_basis", "SteerableKernel",
]
