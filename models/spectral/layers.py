"""Spectral spherical convolutions: zonal S² → S² (Esteves et al. 2018), S² → SO(3) and
SO(3) → SO(3) correlations (Cohen et al. 2018), spectral pooling and quadrature pooling.

Grids, frames, harmonics and layouts are those of :mod:`models.spectral.transforms`: sphere
signals enter as ``(B, V, C)`` on the grid of
:func:`models.deepsphere.graph.equiangular_vectors` (``V = 4b²``) and are handled internally as
``(B, C, 2b, 2b)`` (β, α) maps; SO(3) signals are ``(B, C, 2b, 2b, 2b)`` (α, β, γ) on the SOFT
grid (e3nn's Y-X-Y Euler angles).

Equivariance. Every layer ``f`` here commutes with rotations, ``f(λ_R x) = λ_R f(x)``, exactly (to
round-off) for band-limited inputs (degrees below the input bandwidth) and any rotation ``R``:
the transforms are exact on these grids and the spectral products are the convolution theorems.
On the grid itself a rotation about the polar axis by ``2πk/(2b)`` rolls the α axis, and the
rotation by π about the grid's x axis maps ``(θ, φ) → (π − θ, −φ)``; both permute the samples of
every grid (S² and SO(3)), so layers and pointwise nonlinearities are exactly equivariant to them
whenever the shift is a whole number of samples at every bandwidth involved.

Citations name the papers' sections by title: equation numbers were not checked against the
papers, so none are given.

>>> import torch
>>> conv = SphericalConv(3, 5, bandwidth_in=4, bandwidth_out=2)          # with spectral pooling
>>> conv(torch.randn(2, 64, 3)).shape
torch.Size([2, 16, 5])
>>> s2 = S2Convolution(3, 4, bandwidth_in=4, bandwidth_out=3, grid=s2_near_identity_grid())
>>> y = s2(torch.randn(2, 64, 3)); y.shape
torch.Size([2, 4, 6, 6, 6])
>>> so3 = SO3Convolution(4, 2, bandwidth_in=3, bandwidth_out=2, grid=so3_near_identity_grid())
>>> so3(y).shape, SO3Integrate()(so3(y)).shape
(torch.Size([2, 2, 4, 4, 4]), torch.Size([2, 2]))
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from models.spectral.transforms import (SO3Analysis, SO3Synthesis, SphereAnalysis, SphereSynthesis,
                                        _Tables, check_bandwidth, so3_mean, sphere_harmonics_padded,
                                        sphere_mean, wigner_padded)


# --------------------------------------------------------------------------- layouts
def sphere_to_grid(x: torch.Tensor, bandwidth: int | None = None, who: str = "sphere_to_grid") -> torch.Tensor:
    """``(B, V, C)`` on the equiangular grid (``V = 4b²``, colatitude major) → ``(B, C, 2b, 2b)``."""
    if x.dim() != 3:
        raise ValueError(f"{who}: expected (B, V, C), got shape {tuple(x.shape)}")
    n = math.isqrt(x.shape[1])
    if n * n != x.shape[1] or n % 2 or (bandwidth is not None and n != 2 * bandwidth):
        want = "4b²" if bandwidth is None else f"4·{bandwidth}² = {4 * bandwidth ** 2}"
        raise ValueError(f"{who}: expected V = {want} equiangular vertices, got {x.shape[1]}")
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], n, n)


def grid_to_sphere(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, 2b, 2b)`` → ``(B, V, C)`` (inverse of :func:`sphere_to_grid`)."""
    return x.flatten(2).transpose(1, 2)


# --------------------------------------------------------------------------- Esteves et al. 2018
def anchor_interpolation(num_degrees: int, num_anchors: int | None) -> torch.Tensor:
    """Linear interpolation ``(num_degrees, K)`` from ``K`` anchors, evenly spaced over the degrees
    ``0 … num_degrees − 1``, to every degree: the spectrally smooth (hence spatially localised)
    filter of Esteves et al. 2018 (the "localized filters" of the method section). ``None`` or ``K ≥ num_degrees``: one
    free coefficient per degree (identity).

    >>> anchor_interpolation(5, 3)
    tensor([[1.0000, 0.0000, 0.0000],
            [0.5000, 0.5000, 0.0000],
            [0.0000, 1.0000, 0.0000],
            [0.0000, 0.5000, 0.5000],
            [0.0000, 0.0000, 1.0000]], dtype=torch.float64)
    """
    if num_anchors is None or num_anchors >= num_degrees:
        return torch.eye(num_degrees, dtype=torch.float64)
    if num_anchors < 1:
        raise ValueError(f"anchor_interpolation: need at least one anchor, got {num_anchors}")
    if num_anchors == 1:
        return torch.ones(num_degrees, 1, dtype=torch.float64)
    pos = np.linspace(0.0, num_degrees - 1, num_anchors)
    l = np.arange(num_degrees, dtype=np.float64)
    cols = [np.interp(l, pos, np.eye(num_anchors)[k]) for k in range(num_anchors)]
    return torch.from_numpy(np.stack(cols, axis=1))


class SphericalConv(_Tables):
    """Spherical convolution with zonal filters, S² → S² (Paper: Esteves et al. 2018, the spherical
    convolution theorem and "spherical convolutional layer"):

    .. math::  \\widehat{(f \\star h)}{}^l_m = 2\\pi \\sqrt{\\tfrac{4\\pi}{2l+1}}\\;
               \\sum_{c} \\hat f_c{}^l_m \\, \\hat h_{c}{}^l_0,

    per output channel, with ``ĥ^l_0`` (a zonal filter: one coefficient per degree) interpolated
    linearly from ``n_filter_params`` anchors spread over the input's degrees ``0 … b_in − 1``
    (:func:`anchor_interpolation`; ``None``: one per degree). With ``bandwidth_out < bandwidth_in``
    the output is synthesised on the coarser grid from the degrees ``l < b_out`` only: the
    paper's spectral pooling fused into the layer. Harmonics: e3nn real, orthonormal
    (:mod:`.transforms`); the factor is the Driscoll–Healy convolution theorem in that basis.

    ``forward``: ``(B, 4b_in², C_in) → (B, 4b_out², C_out)``; ``forward_grid``:
    ``(B, C_in, 2b_in, 2b_in) → (B, C_out, 2b_out, 2b_out)``. Weights ``(C_in, C_out, K)`` start
    ``N(0, b_in/(4π³ C_in))`` (unit gain for white input; Esteves' code uses
    ``1/(π √(b_in C_in))``); ``bias`` adds a constant per output channel.

    >>> conv = SphericalConv(2, 3, bandwidth_in=8, n_filter_params=4)
    >>> conv.weight.shape, conv.degree_filter().shape
    (torch.Size([2, 3, 4]), torch.Size([2, 3, 8]))
    """

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int | None = None,
                 n_filter_params: int | None = 8, bias: bool = True):
        super().__init__()
        b_in, _ = check_bandwidth(bandwidth_in, who="SphericalConv")
        b_out = b_in if bandwidth_out is None else check_bandwidth(bandwidth_out, who="SphericalConv")[0]
        if b_out > b_in:
            raise ValueError(f"SphericalConv: bandwidth_out ({b_out}) must not exceed bandwidth_in ({b_in})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.bandwidth_in, self.bandwidth_out = b_in, b_out
        self.bandwidth, self.lmax = b_in, b_out - 1  # for extra_repr
        self.analysis = SphereAnalysis(b_in, b_out - 1)
        self.synthesis = SphereSynthesis(b_out, b_out - 1)
        interp = anchor_interpolation(b_in, n_filter_params)
        self.n_filter_params = interp.shape[1]
        l = torch.arange(b_out, dtype=torch.float64)
        self._put("interp", interp[:b_out] * (2 * math.pi * torch.sqrt(4 * math.pi / (2 * l + 1)))[:, None])
        std = math.sqrt(b_in / (4 * math.pi ** 3 * self.in_channels))
        self.weight = nn.Parameter(torch.randn(self.in_channels, self.out_channels, self.n_filter_params) * std)
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth {self.bandwidth_in} -> {self.bandwidth_out}, "
                f"n_filter_params={self.n_filter_params}, bias={self.bias is not None}")

    def degree_filter(self) -> torch.Tensor:
        """``2π √(4π/(2l+1)) ĥ^l_0`` for ``l < b_out``: ``(C_in, C_out, b_out)``."""
        return torch.einsum("iok,lk->iol", self.weight, self.interp)

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SphericalConv: expected (B, {self.in_channels}, {2 * self.bandwidth_in}, "
                             f"{2 * self.bandwidth_in}), got {tuple(x.shape)}")
        c = self.analysis(x)  # (B, C_in, L, M)
        y = self.synthesis(torch.einsum("bilm,iol->bolm", c, self.degree_filter()))
        return y if self.bias is None else y + self.bias[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grid_to_sphere(self.forward_grid(sphere_to_grid(x, self.bandwidth_in, "SphericalConv")))


class SpectralPool(nn.Module):
    """Spectral pooling (Paper: Esteves et al. 2018, "spectral pooling"): keep the degrees ``l < b_out`` and resample on
    the bandwidth-``b_out`` grid; parameter-free and rotation equivariant. ``forward`` on
    ``(B, V, C)``, ``forward_grid`` on ``(B, C, 2b, 2b)``.

    >>> import torch
    >>> SpectralPool(8, 4)(torch.randn(1, 256, 2)).shape
    torch.Size([1, 64, 2])
    """

    def __init__(self, bandwidth_in: int, bandwidth_out: int):
        super().__init__()
        b_in, _ = check_bandwidth(bandwidth_in, who="SpectralPool")
        b_out, _ = check_bandwidth(bandwidth_out, who="SpectralPool")
        if b_out > b_in:
            raise ValueError(f"SpectralPool: bandwidth_out ({b_out}) must not exceed bandwidth_in ({b_in})")
        self.bandwidth_in, self.bandwidth_out = b_in, b_out
        self.analysis = SphereAnalysis(b_in, b_out - 1)
        self.synthesis = SphereSynthesis(b_out, b_out - 1)

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.analysis(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grid_to_sphere(self.forward_grid(sphere_to_grid(x, self.bandwidth_in, "SpectralPool")))


class SphereAverage(nn.Module):
    """Weighted global average pooling ``(B, C, 2b, 2b) → (B, C)``: ``(1/4π) ∫ f dΩ`` by the
    Driscoll–Healy quadrature (:func:`~.transforms.sphere_mean`), the invariant descriptor of
    Esteves et al. 2018 ("weighted global average pooling")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sphere_mean(x)


# --------------------------------------------------------------------------- kernel grids (Cohen et al.)
def _as64(*a) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in a)


def s2_near_identity_grid(max_beta: float = math.pi / 8, n_alpha: int = 8, n_beta: int = 3):
    """Kernel support on S²: rings around the north pole (e3nn's ``y``, our ``z``), ``β =
    max_beta·k/n_beta`` (``k = 1 … n_beta``) × ``α = 2πj/n_alpha``; returns ``(α, β)`` (float64,
    ``n_alpha·n_beta`` points). Same parameters as s2cnn's ``s2_near_identity_grid``.

    >>> [t.shape for t in s2_near_identity_grid()]
    [torch.Size([24]), torch.Size([24])]
    """
    beta = torch.arange(1, n_beta + 1, dtype=torch.float64) * max_beta / n_beta
    alpha = torch.arange(n_alpha, dtype=torch.float64) * 2 * math.pi / n_alpha
    B, A = torch.meshgrid(beta, alpha, indexing="ij")
    return _as64(A, B)


def s2_equatorial_grid(max_beta: float = 0.0, n_alpha: int = 32, n_beta: int = 1):
    """Kernel support on S²: rings around the equator, ``β ∈ linspace(π/2 − max_beta, π/2 +
    max_beta, n_beta)`` × ``α = 2πj/n_alpha``; returns ``(α, β)``. s2cnn's SHREC'17 models use
    ``max_beta=0, n_alpha=2·b_in, n_beta=1``."""
    beta = torch.linspace(math.pi / 2 - max_beta, math.pi / 2 + max_beta, n_beta, dtype=torch.float64)
    alpha = torch.arange(n_alpha, dtype=torch.float64) * 2 * math.pi / n_alpha
    B, A = torch.meshgrid(beta, alpha, indexing="ij")
    return _as64(A, B)


def so3_near_identity_grid(max_beta: float = math.pi / 8, max_gamma: float = 2 * math.pi, n_alpha: int = 8,
                           n_beta: int = 3, n_gamma: int | None = None):
    """Kernel support on SO(3): rotations near the identity, ``β = max_beta·k/n_beta``, ``α =
    2πj/n_alpha``, ``γ = γ' − α`` with ``γ' ∈ linspace(−max_gamma, max_gamma, n_gamma)``
    (``n_gamma = n_alpha`` by default); returns ``(α, β, γ)`` in e3nn's Y-X-Y convention (s2cnn's
    grid of the same name is in Z-Y-Z angles; same parameters, same role)."""
    n_gamma = n_alpha if n_gamma is None else n_gamma
    beta = torch.arange(1, n_beta + 1, dtype=torch.float64) * max_beta / n_beta
    alpha = torch.arange(n_alpha, dtype=torch.float64) * 2 * math.pi / n_alpha
    pre = torch.linspace(-max_gamma, max_gamma, n_gamma, dtype=torch.float64)
    B, A, C = torch.meshgrid(beta, alpha, pre, indexing="ij")
    return _as64(A, B, C - A)


def so3_equatorial_grid(max_beta: float = 0.0, max_gamma: float = math.pi / 8, n_alpha: int = 32,
                        n_beta: int = 1, n_gamma: int = 2):
    """Kernel support on SO(3): ``β ∈ linspace(π/2 ± max_beta, n_beta)``, ``α = 2πj/n_alpha``,
    ``γ ∈ linspace(−max_gamma, max_gamma, n_gamma)``; returns ``(α, β, γ)`` (e3nn Y-X-Y). s2cnn's
    SHREC'17 models use ``max_beta=0, max_gamma=0, n_alpha=2·b_in, n_beta=1, n_gamma=1``."""
    beta = torch.linspace(math.pi / 2 - max_beta, math.pi / 2 + max_beta, n_beta, dtype=torch.float64)
    alpha = torch.arange(n_alpha, dtype=torch.float64) * 2 * math.pi / n_alpha
    gamma = torch.linspace(-max_gamma, max_gamma, n_gamma, dtype=torch.float64)
    B, A, C = torch.meshgrid(beta, alpha, gamma, indexing="ij")
    return _as64(A, B, C)


# --------------------------------------------------------------------------- Cohen et al. 2018
class _Correlation(_Tables):
    """What the S² → SO(3) and SO(3) → SO(3) correlations share: channel and bandwidth checks, the
    Dirac-kernel weights ``(C_in, C_out, P)`` drawn ``U(−1, 1)`` with the fixed scale
    ``√(3/(P·C_in))``, and the bias per output channel."""

    def _bandwidths(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int) -> tuple[int, int]:
        who = type(self).__name__
        b_in, _ = check_bandwidth(bandwidth_in, who=who)
        b_out, _ = check_bandwidth(bandwidth_out, who=who)
        if b_out > b_in:
            raise ValueError(f"{who}: bandwidth_out ({b_out}) must not exceed bandwidth_in ({b_in})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.bandwidth_in, self.bandwidth_out = b_in, b_out
        self.bandwidth, self.lmax = b_in, b_out - 1
        return b_in, b_out

    def _weights(self, kernel_size: int, bias: bool) -> None:
        self.kernel_size = int(kernel_size)
        self.scaling = math.sqrt(3.0 / (self.kernel_size * self.in_channels))
        self.kernel = nn.Parameter(torch.empty(self.in_channels, self.out_channels, self.kernel_size).uniform_(-1, 1))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, bandwidth {self.bandwidth_in} -> {self.bandwidth_out}, "
                f"kernel points={self.kernel_size}, bias={self.bias is not None}")


class S2Convolution(_Correlation):
    """S² → SO(3) correlation (Paper: Cohen et al. 2018, "Correlation on the sphere and rotation
    group"; Fourier form: the generalised Fourier theorem of "Fast spherical correlation with G-FFT"):

    .. math::  [\\psi \\star f](R) = \\int_{S^2} \\psi(R^{-1}x) f(x)\\,dx, \\qquad
               \\widehat{\\psi \\star f}{}^l_{mn} = \\hat f{}^l_m\\, \\hat\\psi{}^l_n

    (summed over input channels; real orthonormal e3nn harmonics, output ``Σ F^l_{mn} D^l_{mn}(R)``).
    The filter is a weighted sum of Dirac masses at the kernel ``grid`` points ``x_p`` (e3nn frame),
    so ``ψ̂^l = Σ_p w_p Y^l(x_p)`` and ``[ψ ⋆ f](R) = Σ_p w_p f_{<b_out}(R x_p)`` — the input,
    band-limited to ``b_out``, read at the rotated kernel points. Output on the SOFT grid of
    ``b_out``.

    ``(B, 4b_in², C_in) → (B, C_out, 2b_out, 2b_out, 2b_out)`` (α, β, γ). ``grid``: ``(α, β)`` of
    the kernel points (:func:`s2_near_identity_grid`, :func:`s2_equatorial_grid`). Weights
    ``(C_in, C_out, P)`` are ``U(−1, 1)`` (order one, as s2cnn) times the fixed scale
    ``√(3/(P·C_in))`` (unit gain); ``bias`` per output channel.
    """

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int,
                 grid=None, bias: bool = True):
        super().__init__()
        b_in, b_out = self._bandwidths(in_channels, out_channels, bandwidth_in, bandwidth_out)
        alpha, beta = _as64(*(s2_near_identity_grid() if grid is None else grid))
        self.analysis = SphereAnalysis(b_in, b_out - 1)
        self.synthesis = SO3Synthesis(b_out, b_out - 1)
        self._put("Y", sphere_harmonics_padded(alpha, beta, b_out - 1))  # (P, L, M)
        self._weights(len(alpha), bias)

    def kernel_coefficients(self) -> torch.Tensor:
        """``ψ̂^l_n = Σ_p w_p Y^l_n(x_p)``: ``(C_in, C_out, L, 2L-1)``."""
        return torch.einsum("iop,plm->iolm", self.kernel * self.scaling, self.Y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = sphere_to_grid(x, self.bandwidth_in, "S2Convolution")
        if g.shape[1] != self.in_channels:
            raise ValueError(f"S2Convolution: expected {self.in_channels} input channels, got {g.shape[1]}")
        c = self.analysis(g)  # (B, C_in, L, M)
        F = torch.einsum("bilm,ioln->bolmn", c, self.kernel_coefficients())
        y = self.synthesis(F)
        return y if self.bias is None else y + self.bias[:, None, None, None]


class SO3Convolution(_Correlation):
    """SO(3) → SO(3) correlation (Paper: Cohen et al. 2018, the same two sections):

    .. math::  [\\psi \\star f](R) = \\int_{SO(3)} \\psi(R^{-1}g) f(g)\\,dg, \\qquad
               \\widehat{\\psi \\star f}{}^l = \\hat f{}^l\\, \\tilde\\psi{}^{l\\top},\\quad
               \\tilde\\psi{}^l = \\sum_p w_p D^l(g_p),

    with ``f(g) = Σ F^l_{mn} D^l_{mn}(g)`` (e3nn real D) and the filter a weighted sum of Dirac
    masses at the kernel ``grid`` rotations ``g_p``; equivalently ``[ψ ⋆ f](R) = Σ_p w_p
    f_{<b_out}(R g_p)``. Summed over input channels; computed degree by degree.

    ``(B, C_in, 2b_in, 2b_in, 2b_in) → (B, C_out, 2b_out, 2b_out, 2b_out)`` (α, β, γ). ``grid``:
    ``(α, β, γ)`` of the kernel rotations (:func:`so3_near_identity_grid`,
    :func:`so3_equatorial_grid`). Weights ``U(−1, 1)`` times ``√(3/(P·C_in))``; ``bias`` per channel.
    """

    def __init__(self, in_channels: int, out_channels: int, bandwidth_in: int, bandwidth_out: int,
                 grid=None, bias: bool = True):
        super().__init__()
        b_in, b_out = self._bandwidths(in_channels, out_channels, bandwidth_in, bandwidth_out)
        alpha, beta, gamma = _as64(*(so3_near_identity_grid() if grid is None else grid))
        self.analysis = SO3Analysis(b_in, b_out - 1)
        self.synthesis = SO3Synthesis(b_out, b_out - 1)
        D = wigner_padded(alpha, beta, gamma, b_out - 1)  # (P, L, M, M)
        L = b_out
        self._put("D", torch.cat([D[:, l, L - 1 - l: L + l, L - 1 - l: L + l].reshape(len(alpha), -1)
                                  for l in range(L)], dim=1))  # (P, Σ_l (2l+1)²), degree by degree
        self._weights(len(alpha), bias)

    def kernel_coefficients(self) -> list[torch.Tensor]:
        """``ψ̃^l = Σ_p w_p D^l(g_p)`` for ``l < b_out``: a list of ``(C_in, C_out, 2l+1, 2l+1)``."""
        flat = (self.kernel * self.scaling).reshape(-1, self.kernel_size) @ self.D
        sizes = [(2 * l + 1) ** 2 for l in range(self.lmax + 1)]
        return [t.view(self.in_channels, self.out_channels, 2 * l + 1, 2 * l + 1)
                for l, t in enumerate(flat.split(sizes, dim=1))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 2 * self.bandwidth_in
        if x.dim() != 5 or x.shape[1:] != (self.in_channels, n, n, n):
            raise ValueError(f"SO3Convolution: expected (B, {self.in_channels}, {n}, {n}, {n}), got {tuple(x.shape)}")
        F = self.analysis(x).unbind(2)  # L × (B, C_in, M, M)
        L = self.lmax + 1
        blocks = []
        for l, psi in enumerate(self.kernel_coefficients()):
            s = slice(L - 1 - l, L + l)
            G = torch.einsum("bimn,iokn->bomk", F[l][:, :, s, s], psi)
            blocks.append(nn.functional.pad(G, (L - 1 - l,) * 4))
        y = self.synthesis(torch.stack(blocks, dim=2))
        return y if self.bias is None else y + self.bias[:, None, None, None]


class SO3Integrate(nn.Module):
    """``(B, C, 2b, 2b, 2b) → (B, C)``: ``(1/8π²) ∫ f dg`` by the SOFT quadrature (Haar measure),
    the invariant descriptor of Cohen et al. 2018 (s2cnn ``so3_integrate``, up to its constant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return so3_mean(x)


__all__ = [
    "sphere_to_grid", "grid_to_sphere", "anchor_interpolation", "SphericalConv", "SpectralPool",
    "SphereAverage", "s2_near_identity_grid", "s2_equatorial_grid", "so3_near_identity_grid",
    "so3_equatorial_grid", "S2Convolution", "SO3Convolution", "SO3Integrate",
]
