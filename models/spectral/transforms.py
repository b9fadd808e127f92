"""Fourier transforms on the sphere S² and on the rotation group SO(3), on the Driscoll–Healy /
SOFT grids, with e3nn's harmonics and Wigner matrices.

Paper: Driscoll & Healy 1994 (S² sampling theorem and quadrature); Kostelec & Rockmore 2008
(SOFT grid and weights on SO(3)); used by Cohen et al. 2018 ("Spherical CNNs", "Fast spherical
correlation with G-FFT") and Esteves et al. 2018 (the spherical harmonic transform of its preliminaries).

Conventions
-----------
* **Our grid** (:func:`models.deepsphere.graph.equiangular_vectors`): bandwidth ``b``, ``2b × 2b``
  points, colatitude major, ``θ_j = π(2j+1)/(4b)``, ``φ_k = 2πk/(2b)``, vertex ``v = (sin θ cos φ,
  sin θ sin φ, cos θ)``; tensors ``(B, V, C)``, ``V = 4b²``, vertex index ``2b·j + k``.
* **e3nn's grid** (``o3.s2_grid(2b, 2b)``, ``ToS2Grid``/``FromS2Grid`` with ``res = (2b, 2b)``)
  has the *same* angles ``β_j = θ_j``, ``α_k = φ_k`` and the same ``(β, α)`` order, but e3nn's
  polar axis is ``y``: ``u = o3.angles_to_xyz(α, β) = (sin β sin α, cos β, sin β cos α)``. Hence
  ``u = P v`` with the fixed rotation :data:`E3NN_FROM_GRID` ``P`` (``(x, y, z) → (y, z, x)``,
  det +1). All harmonics here live in e3nn's frame: a signal on our grid is
  ``f(v) = Σ_l F^l · Y^l(P v)``, and a rotation ``R`` of *our* frame acts on coefficients by
  ``D^l(P R Pᵀ)``.
* **Harmonics**: e3nn's real spherical harmonics with ``normalization="integral"``,
  ``∫_{S²} Y^l_m Y^{l'}_{m'} dΩ = δ δ``; on the grid they factor as
  ``Y^l_m(β, α) = shb[β, (l, m)] · sha[α, m]`` (``o3.spherical_harmonics_s2_grid``), ``sha`` being
  e3nn's real Fourier basis (``1, √2 cos mα, √2 sin |m|α``). The β factor is built here from
  e3nn's D (:func:`_sphere_tables`), not from ``o3.Legendre``: that one expands the Legendre
  functions in monomials and loses accuracy with the degree, so e3nn's own ``FromS2Grid(ToS2Grid(c))``
  on this grid (same samples, same exact quadrature) errs 2e-12 at b = 16, 6e-9 at b = 24 and 3e-6
  at b = 32 in float64 (and takes 15 s to build at b = 32, minutes at b = 64).
* **Wigner D**: e3nn's real ``D^l(α, β, γ) = exp(α X_y) exp(β X_x) exp(γ X_y)`` (Y-X-Y Euler angles,
  ``o3.wigner_D``), evaluated in float64 by :func:`models.steerable.group.wigner_D_angles`. A signal on
  SO(3) is ``f(g) = Σ_l Σ_{mn} F^l_{mn} D^l_{mn}(g)`` and ``F^l = (2l+1)/(8π²) ∫ f D^l dg``
  (Haar measure ``dg = dα sin β dβ dγ``, volume 8π²).
* **SO(3) grid** (SOFT, as e3nn's ``SO3Grid`` with ``aspect_ratio=1``): ``(α_i, β_j, γ_k)`` with
  ``α, γ ∈ 2πk/(2b)`` and ``β_j = π(2j+1)/(4b)``; tensors ``(..., 2b, 2b, 2b)`` in the order
  ``(α, β, γ)``. Grid point ``(α, β, γ)`` is the rotation ``o3.angles_to_matrix(α, β, γ)`` of
  e3nn's frame, ``Pᵀ R P`` in ours.
* **Coefficient layout** ("padded"): ``(..., L, 2L-1)`` on S² (entry ``[l, m + L - 1]``, zero where
  ``|m| > l``) and ``(..., L, 2L-1, 2L-1)`` on SO(3) (``[l, m + L - 1, n + L - 1]``), ``L = lmax + 1``;
  :func:`flat_to_padded` / :func:`padded_to_flat` convert from / to e3nn's flat S² layout
  (index ``l² + l + m``).
* **Quadrature** (:func:`quadrature_weights`): e3nn's Driscoll–Healy / Kostelec–Rockmore weights
  (``o3._s2grid._quadrature_weights``, private in e3nn 0.6), rescaled so that
  ``Σ_j q_j h(β_j) = ∫_0^π h(β) sin β dβ`` exactly for band-limited ``h``. The quadrature is exact
  on this grid: analysis after synthesis returns band-limited coefficients (degrees ``l < b``) to
  float round-off (~1e-12 in float64 up to b = 64 on S² and b = 32 on SO(3)).

Algorithms: the α (and γ) sums are matrix products with the real Fourier basis ``sha``; the β
sums are batched matrix products over the order ``m`` (S²) or the pair ``(m, n)`` (SO(3)). For SO(3) the
rotation about the polar axis ``D^l(α, 0, 0) = Σ_m sha[α, m] P^l_m`` couples only the orders
``±m``, so ``D^l_{m'n'}(α, β, γ) = Σ_{mn} sha[α, m] sha[γ, n] (P^l_m d^l(β) P^l_n)_{m'n'}`` with
``(m', n') = ±(m, n)``: two terms per ``(m, n)`` (a real-basis Wigner-d transform).
Tables are built once per ``(bandwidth, lmax)`` in float64 (:func:`functools.lru_cache`; shared,
read-only) and held by the modules as non-persistent buffers in the module's dtype.

>>> import torch
>>> b, lmax = 4, 3
>>> c = torch.randn(2, (lmax + 1) ** 2, dtype=torch.float64)        # e3nn's flat layout
>>> x = SphereSynthesis(b, lmax).double()(flat_to_padded(c, lmax))   # (2, 2b, 2b) = (β, α)
>>> back = padded_to_flat(SphereAnalysis(b, lmax).double()(x), lmax)
>>> x.shape, bool((back - c).abs().max() < 1e-12)
(torch.Size([2, 8, 8]), True)
>>> F = torch.randn(3, lmax + 1, 2 * lmax + 1, 2 * lmax + 1, dtype=torch.float64) * so3_mask(lmax)
>>> g = SO3Synthesis(b, lmax).double()(F)                            # (3, 2b, 2b, 2b) = (α, β, γ)
>>> g.shape, bool((SO3Analysis(b, lmax).double()(g) - F).abs().max() < 1e-12)
(torch.Size([3, 8, 8, 8]), True)
"""
from __future__ import annotations

import functools
import math

import torch
from e3nn import o3
from torch import nn

from models.steerable.group import _float64_default, wigner_D, wigner_D_angles

#: ``u_e3nn = E3NN_FROM_GRID @ v``: e3nn's frame (y polar) from the frame of
#: :func:`models.deepsphere.graph.equiangular_vectors` (z polar); a proper rotation.
E3NN_FROM_GRID = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)


# --------------------------------------------------------------------------- checks and grids
def check_bandwidth(b: int, lmax: int | None = None, who: str = "transform") -> tuple[int, int]:
    """``(b, lmax)`` as ints, ``lmax = b - 1`` by default; raises unless ``0 <= lmax < b``
    (the Driscoll–Healy sampling theorem: degrees below the bandwidth)."""
    if int(b) != b or b < 1:
        raise ValueError(f"{who}: bandwidth must be a positive integer, got {b!r}")
    b = int(b)
    lmax = b - 1 if lmax is None else lmax
    if int(lmax) != lmax or not 0 <= lmax < b:
        raise ValueError(f"{who}: lmax must satisfy 0 <= lmax < bandwidth = {b}, got {lmax!r}")
    return b, int(lmax)


def grid_angles(b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(β, α)`` of the bandwidth-``b`` grid (float64, ``2b`` each): e3nn's ``o3.s2_grid(2b, 2b)``,
    which equals ``(θ_j, φ_k)`` of :func:`~models.deepsphere.graph.equiangular_vectors`.

    >>> beta, alpha = grid_angles(2)
    >>> [round(float(t), 4) for t in beta], [round(float(t), 4) for t in alpha]
    ([0.3927, 1.1781, 1.9635, 2.7489], [0.0, 1.5708, 3.1416, 4.7124])
    """
    b, _ = check_bandwidth(b, who="grid_angles")
    return o3.s2_grid(2 * b, 2 * b, dtype=torch.float64)


@functools.lru_cache(maxsize=None)
def _quadrature(b: int) -> torch.Tensor:
    with _float64_default():
        w = o3._s2grid._quadrature_weights(b, dtype=torch.float64)
    return (2.0 * (2 * b) ** 2) * w


def quadrature_weights(b: int) -> torch.Tensor:
    """Driscoll–Healy weights ``q_j`` (float64, ``2b``) with ``Σ_j q_j h(β_j) = ∫_0^π h sin β dβ``
    for ``h`` of degree ``< 2b`` in ``cos β`` (e3nn's ``_quadrature_weights(b)·2(2b)²``).

    >>> round(float(quadrature_weights(8).sum()), 12)
    2.0
    """
    b, _ = check_bandwidth(b, who="quadrature_weights")
    return _quadrature(b).clone()


# --------------------------------------------------------------------------- coefficient layouts
def _flat_index(lmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    ls = torch.cat([torch.full((2 * l + 1,), l) for l in range(lmax + 1)])
    ms = torch.cat([torch.arange(-l, l + 1) for l in range(lmax + 1)])
    return ls, ms + lmax


def sphere_mask(lmax: int) -> torch.Tensor:
    """``(L, 2L-1)`` float64 mask of the padded S² layout: 1 where ``|m| <= l``."""
    L = lmax + 1
    m = torch.arange(-lmax, lmax + 1)
    return (m.abs()[None, :] <= torch.arange(L)[:, None]).to(torch.float64)


def so3_mask(lmax: int) -> torch.Tensor:
    """``(L, 2L-1, 2L-1)`` float64 mask of the padded SO(3) layout: 1 where ``|m|, |n| <= l``."""
    s = sphere_mask(lmax)
    return s[:, :, None] * s[:, None, :]


def flat_to_padded(c: torch.Tensor, lmax: int) -> torch.Tensor:
    """e3nn's flat S² coefficients ``(..., (lmax+1)²)`` → padded ``(..., L, 2L-1)``."""
    ls, ms = _flat_index(lmax)
    if c.shape[-1] != len(ls):
        raise ValueError(f"flat_to_padded: expected last axis {(lmax + 1) ** 2}, got {c.shape[-1]}")
    out = c.new_zeros(*c.shape[:-1], lmax + 1, 2 * lmax + 1)
    out[..., ls, ms] = c
    return out


def padded_to_flat(c: torch.Tensor, lmax: int) -> torch.Tensor:
    """Padded S² coefficients ``(..., L, 2L-1)`` → e3nn's flat ``(..., (lmax+1)²)``."""
    ls, ms = _flat_index(lmax)
    return c[..., ls, ms]


# --------------------------------------------------------------------------- harmonics and Wigner D
def pole_harmonic(l: int) -> float:
    """e3nn's ``Y^l(e_y)`` (the polar axis, ``normalization="integral"``) is ``√((2l+1)/4π)`` at
    ``m = 0`` and zero elsewhere; ``Y^l(R e_y) = D^l(R) Y^l(e_y)`` then gives every other value.

    >>> round(pole_harmonic(0) * math.sqrt(4 * math.pi), 12)
    1.0
    """
    return math.sqrt((2 * l + 1) / (4 * math.pi))


def sphere_harmonics_padded(alpha: torch.Tensor, beta: torch.Tensor, lmax: int) -> torch.Tensor:
    """e3nn's ``Y^l_m`` (``normalization="integral"``) at the points ``o3.angles_to_xyz(α, β)`` of
    e3nn's frame, padded ``(P, L, 2L-1)`` float64, for any degree: ``Y^l(α, β) = D^l(α, β, 0)
    Y^l(e_y)`` (``o3.spherical_harmonics`` stops at l = 12).

    >>> sphere_harmonics_padded(torch.zeros(3), torch.ones(3), 2).shape
    torch.Size([3, 3, 5])
    """
    a, b = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (alpha, beta))
    out = torch.zeros(len(a), lmax + 1, 2 * lmax + 1, dtype=torch.float64)
    for l in range(lmax + 1):
        out[:, l, lmax - l: lmax + l + 1] = wigner_D_angles(l, a, b, 0.0)[:, :, l] * pole_harmonic(l)
    return out


def wigner_padded(alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, lmax: int) -> torch.Tensor:
    """e3nn's ``D^l(α, β, γ)`` for ``l <= lmax`` at ``P`` rotations, padded ``(P, L, 2L-1, 2L-1)``
    float64 (:func:`models.steerable.group.wigner_D_angles`).

    >>> D = wigner_padded(torch.zeros(2), torch.zeros(2), torch.zeros(2), 2)
    >>> D.shape, bool(torch.equal(D[0, 2], torch.eye(5, dtype=torch.float64)))
    (torch.Size([2, 3, 5, 5]), True)
    """
    a, b, g = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (alpha, beta, gamma))
    L = lmax + 1
    out = torch.zeros(len(a), L, 2 * L - 1, 2 * L - 1, dtype=torch.float64)
    for l in range(L):
        s = slice(lmax - l, lmax + l + 1)
        out[:, l, s, s] = wigner_D_angles(l, a, b, g)
    return out


def _blocks(lmax: int) -> list[tuple[int, slice]]:
    return [(l, slice(lmax - l, lmax + l + 1)) for l in range(lmax + 1)]


def rotate_sphere_coefficients(c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Coefficients of ``f(R⁻¹ v)`` from those of ``f`` (padded ``(..., L, 2L-1)``), ``R`` a rotation
    of *our* grid's frame: ``F^l ← D^l(P R Pᵀ) F^l``. Exact: with :class:`SphereSynthesis` this
    rotates a band-limited signal on the grid without interpolation error."""
    lmax = c.shape[-2] - 1
    Re = E3NN_FROM_GRID @ R.detach().to("cpu", torch.float64) @ E3NN_FROM_GRID.T
    out = torch.zeros_like(c)
    for l, s in _blocks(lmax):
        out[..., l, s] = c[..., l, s] @ wigner_D(l, Re).to(c).T
    return out


def rotate_so3_coefficients(F: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Coefficients of the left translation ``f(R⁻¹ g)`` (padded ``(..., L, 2L-1, 2L-1)``), ``R``
    a rotation of our frame: ``F^l ← D^l(P R Pᵀ) F^l``. S² → SO(3) and SO(3) → SO(3)
    correlations commute with it."""
    lmax = F.shape[-3] - 1
    Re = E3NN_FROM_GRID @ R.detach().to("cpu", torch.float64) @ E3NN_FROM_GRID.T
    out = torch.zeros_like(F)
    for l, s in _blocks(lmax):
        out[..., l, s, s] = wigner_D(l, Re).to(F) @ F[..., l, s, s]
    return out


# --------------------------------------------------------------------------- real Fourier basis
@functools.lru_cache(maxsize=None)
def _fourier(b: int, lmax: int) -> torch.Tensor:
    """e3nn's real Fourier basis ``sha[α_k, m] = o3.spherical_harmonics_alpha(lmax, α_k)`` on the
    ``2b`` grid angles (``√2 sin |m|α`` for ``m < 0``, ``1``, ``√2 cos mα``): ``(2b, 2lmax+1)``.
    (Matrix products with it beat ``torch.fft`` here: the transforms are memory bound on CPU.)"""
    _, alpha = grid_angles(b)
    with _float64_default():
        return o3.spherical_harmonics_alpha(lmax, alpha).contiguous()


# --------------------------------------------------------------------------- tables from e3nn's D
def _polar_blocks(l: int) -> torch.Tensor:
    """``p (2l+1, 2, 2)``: the Fourier components of e3nn's rotation about the polar axis,
    ``D^l(α, 0, 0) = Σ_m sha[α, m] P^l_m`` with ``P^l_m`` non-zero only at rows/columns ``±m``:
    ``p[m, s, u] = P^l_m[(-1)^s m, (-1)^u m]`` (duplicates at ``m = 0`` zeroed). Computed by an exact
    discrete projection on ``2l + 3`` angles; raises if e3nn's D had any other structure."""
    N = 2 * l + 3
    a = torch.arange(N, dtype=torch.float64) * (2 * math.pi / N)
    with _float64_default():
        S = o3.spherical_harmonics_alpha(l, a)  # (N, 2l+1)
    Z = wigner_D_angles(l, a, 0.0, 0.0)  # (N, 2l+1, 2l+1)
    P = torch.einsum("km,kij->mij", S, Z) / N  # (2l+1: m, 2l+1, 2l+1)
    m = torch.arange(-l, l + 1)
    p = torch.zeros(2 * l + 1, 2, 2, dtype=torch.float64)
    rebuilt = torch.zeros_like(P)
    for s_ in (0, 1):
        for u in (0, 1):
            rows, cols = (-1) ** s_ * m + l, (-1) ** u * m + l
            p[:, s_, u] = P[m + l, rows, cols] * ((m != 0) | ((s_ == 0) & (u == 0)))
            rebuilt.index_put_((m + l, rows, cols), p[:, s_, u], accumulate=True)
    if (rebuilt - P).abs().max() > 1e-12:
        raise RuntimeError("spectral tables: e3nn's rotation about the polar axis does not couple orders ±m only")
    return p


def _small_d(l: int, b: int) -> torch.Tensor:
    """``d^l(β_j) = D^l(0, β_j, 0)`` on the grid's ``2b`` colatitudes: ``(2b, 2l+1, 2l+1)``."""
    beta, _ = grid_angles(b)
    return wigner_D_angles(l, 0.0, beta, 0.0)


# --------------------------------------------------------------------------- S² tables and modules
@functools.lru_cache(maxsize=None)
def _sphere_tables(b: int, lmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(leg, ana)``: ``leg (M, 2b, L)`` with ``Y^l_m(β, α) = leg[m, β, l] sha[α, m]``, and the
    analysis table ``leg · q_β · 2π/(2b)``.

    The Legendre factor comes from e3nn's Wigner D: ``Y^l(R e_y) = D^l(R) Y^l(e_y)`` with ``R =
    D(α, 0, 0) d(β)`` and ``Y^l(e_y) = √((2l+1)/4π) δ_{m0}`` (e3nn's y-polar harmonics at their pole),
    so ``leg[m, β, l] = (P^l_m d^l(β) Y^l(e_y))_m``. (``o3.spherical_harmonics_s2_grid`` gives the same
    table but evaluates ``o3.Legendre``, a monomial expansion that loses all accuracy in float64
    above l ≈ 30 and takes minutes to build at l = 63; see ``tests/test_spectral.py``.)"""
    L, M = lmax + 1, 2 * lmax + 1
    leg = torch.zeros(M, 2 * b, L, dtype=torch.float64)
    for l in range(L):
        p = _polar_blocks(l)
        v = _small_d(l, b)[:, :, l] * pole_harmonic(l)  # (β, 2l+1) = d(β) Y(e_y)
        vflip = v.flip(-1)  # component -m
        own = p[:, 0, 0] * v + p[:, 0, 1] * vflip  # (P_m d Y)_m
        other = p[:, 1, 0] * v + p[:, 1, 1] * vflip  # (P_m d Y)_{-m}: must vanish (e3nn's factorisation)
        if other.abs().max() > 1e-12:
            raise RuntimeError("spectral tables: e3nn's harmonics do not factor as sha(α)·P(β) in this frame")
        leg[lmax - l: lmax + l + 1, :, l] = own.T
    ana = leg * (_quadrature(b) * (2 * math.pi / (2 * b)))[None, :, None]
    return leg, ana.contiguous()


class _Tables(nn.Module):
    """Holds cached float64 tables as non-persistent buffers (out of checkpoints) in the default
    dtype. They follow ``.to()``/``.double()``/``.cuda()``, always re-cast from the float64 master,
    so that ``.float().double()`` keeps full precision."""

    def _put(self, name: str, t: torch.Tensor) -> None:
        if not hasattr(self, "_masters"):
            self._masters: dict[str, torch.Tensor] = {}
        self._masters[name] = t
        self.register_buffer(name, t.to(torch.get_default_dtype()), persistent=False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for name, master in getattr(self, "_masters", {}).items():
            cur = self._buffers[name]
            self._buffers[name] = master.to(device=cur.device, dtype=cur.dtype)
        return self

    def extra_repr(self) -> str:
        return f"bandwidth={self.bandwidth}, lmax={self.lmax}"


class SphereAnalysis(_Tables):
    """Forward spherical harmonic transform ``(..., 2b, 2b)`` (β, α) → ``(..., L, 2L-1)``:
    ``F^l_m = ∫ f Y^l_m dΩ ≈ (2π/2b) Σ_j q_j Σ_k f(β_j, α_k) Y^l_m(β_j, α_k)``, exact for degrees
    below ``b`` (Driscoll & Healy 1994): the real Fourier transform along α, then one matrix product
    per order ``m`` along β."""

    def __init__(self, bandwidth: int, lmax: int | None = None):
        super().__init__()
        self.bandwidth, self.lmax = check_bandwidth(bandwidth, lmax, "SphereAnalysis")
        self._put("sha", _fourier(self.bandwidth, self.lmax))  # (α, M)
        self._put("ana", _sphere_tables(self.bandwidth, self.lmax)[1])  # (M, β, L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, L, M = 2 * self.bandwidth, self.lmax + 1, 2 * self.lmax + 1
        if x.shape[-2:] != (n, n):
            raise ValueError(f"SphereAnalysis: expected (..., {n}, {n}) (β, α), got {tuple(x.shape)}")
        lead = x.shape[:-2]
        xm = x.reshape(-1, n) @ self.sha  # (Z·β, M)
        c = torch.bmm(xm.view(-1, n, M).permute(2, 0, 1), self.ana)  # (M, Z, L)
        return c.permute(1, 2, 0).reshape(*lead, L, M)


class SphereSynthesis(_Tables):
    """Inverse transform ``(..., L, 2L-1)`` → ``(..., 2b, 2b)``: ``f(β, α) = Σ F^l_m Y^l_m(β, α)``
    (one matrix product per order ``m`` along β, then the real Fourier synthesis along α)."""

    def __init__(self, bandwidth: int, lmax: int | None = None):
        super().__init__()
        self.bandwidth, self.lmax = check_bandwidth(bandwidth, lmax, "SphereSynthesis")
        self._put("sha", _fourier(self.bandwidth, self.lmax))  # (α, M)
        self._put("leg", _sphere_tables(self.bandwidth, self.lmax)[0].transpose(1, 2).contiguous())  # (M, L, β)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        n, L, M = 2 * self.bandwidth, self.lmax + 1, 2 * self.lmax + 1
        if c.shape[-2:] != (L, M):
            raise ValueError(f"SphereSynthesis: expected (..., {L}, {M}) coefficients, got {tuple(c.shape)}")
        lead = c.shape[:-2]
        xm = torch.bmm(c.reshape(-1, L, M).permute(2, 0, 1), self.leg)  # (M, Z, β)
        x = self.sha @ xm.view(M, -1)  # (α, Z·β)
        return x.view(n, -1, n).permute(1, 2, 0).reshape(*lead, n, n)


# --------------------------------------------------------------------------- SO(3) tables and modules
@functools.lru_cache(maxsize=None)
def _so3_tables(b: int, lmax: int) -> torch.Tensor:
    """``T (2, L, 2b, M, M)``: ``T[s, l, j, m, n] = (P^l_m d^l(β_j) P^l_n)_{m'n'}`` at ``(m', n') =
    (m, n)`` (``s = 0``) and ``(−m, −n)`` (``s = 1``) (:func:`_polar_blocks`), so that

    .. math::  D^l_{m'n'}(α, β_j, γ) = \\sum_{mn} \\mathrm{sha}[α, m]\\, \\mathrm{sha}[γ, n]\\,
               (P^l_m d^l(β_j) P^l_n)_{m'n'}

    (e3nn's ``D(α, β, γ) = D(α, 0, 0) D(0, β, 0) D(γ, 0, 0)``). ``P_m`` couples only ``±m``, and
    ``d^l(β)`` (a rotation about e3nn's x axis, which commutes with the reflection ``x → −x``) only
    couples cos-type to cos-type (``m ≥ 0``) and sin-type to sin-type (``m < 0``) harmonics, so of
    the four entries ``(±m, ±n)`` only ``(m, n)`` and ``(−m, −n)`` are non-zero; the builder checks
    it. Zero where ``|m|`` or ``|n| > l`` (and the duplicate ``s = 1`` at ``m = n = 0``)."""
    L, M = lmax + 1, 2 * lmax + 1
    T = torch.zeros(2, L, 2 * b, M, M, dtype=torch.float64)
    for l in range(L):
        p = _polar_blocks(l)  # (m, s, u)
        d = _small_d(l, b)  # (β, 2l+1, 2l+1)
        m = torch.arange(-l, l + 1)
        rows = torch.stack([(-1) ** u * m + l for u in (0, 1)])  # (u, m)
        dflip = d[:, rows[:, None, :, None], rows[None, :, None, :]]  # (β, u, v, m, n)
        blk = torch.einsum("msu,juvmn,nvt->stjmn", p, dflip, p)  # (s, t, β, m, n)
        if max(blk[0, 1].abs().max(), blk[1, 0].abs().max()) > 1e-12:
            raise RuntimeError("spectral tables: e3nn's d(β) couples cos- and sin-type harmonics")
        s_ = slice(lmax - l, lmax + l + 1)
        T[0, l, :, s_, s_] = blk[0, 0]
        T[1, l, :, s_, s_] = blk[1, 1]
    return T


class SO3Synthesis(_Tables):
    """Inverse SO(3) Fourier transform ``(..., L, 2L-1, 2L-1)`` → ``(..., 2b, 2b, 2b)`` (α, β, γ):
    ``f(g) = Σ_l Σ_{mn} F^l_{mn} D^l_{mn}(g)`` on the SOFT grid (Kostelec & Rockmore 2008): one
    matrix product per ``(m, n)`` over the degrees (and the two sign patterns of
    :func:`_so3_tables`) along β, then the real Fourier syntheses along γ and α."""

    def __init__(self, bandwidth: int, lmax: int | None = None):
        super().__init__()
        self.bandwidth, self.lmax = check_bandwidth(bandwidth, lmax, "SO3Synthesis")
        L, M = self.lmax + 1, 2 * self.lmax + 1
        T = _so3_tables(self.bandwidth, self.lmax)
        self._put("sha", _fourier(self.bandwidth, self.lmax))  # (α, M)
        T = T.permute(0, 3, 4, 1, 2).reshape(2, M * M, L, 2 * self.bandwidth)
        self._put("T0", T[0].contiguous())  # (m·n, L, β): the (m, n) terms
        self._put("T1", T[1].contiguous())  # the (−m, −n) terms

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        L, M, n = self.lmax + 1, 2 * self.lmax + 1, 2 * self.bandwidth
        if F.shape[-3:] != (L, M, M):
            raise ValueError(f"SO3Synthesis: expected (..., {L}, {M}, {M}) coefficients, got {tuple(F.shape)}")
        lead = F.shape[:-3]
        Fp = F.reshape(-1, L, M, M).permute(2, 3, 0, 1).contiguous().view(M * M, -1, L)  # (m·n, Z, L)
        # F at (−m, −n) is the flat (m, n) index reversed
        g = torch.baddbmm(torch.bmm(Fp, self.T0), Fp.flip(0), self.T1)  # (m·n, Z, β)
        h = torch.matmul(self.sha, g.view(M, M, -1))  # (m, γ, Z·β)
        x = (self.sha @ h.view(M, -1)).view(n, n, -1, n)  # (α, γ, Z, β)
        # a view: the next analysis reads this memory layout without a copy
        return x.permute(2, 0, 3, 1).reshape(*lead, n, n, n)


class SO3Analysis(_Tables):
    """Forward SO(3) Fourier transform ``(..., 2b, 2b, 2b)`` (α, β, γ) → ``(..., L, 2L-1, 2L-1)``:
    ``F^l_{mn} = (2l+1)/(8π²) ∫ f D^l_{mn} dg ≈ (2l+1)/(8π²) (2π/2b)² Σ q_j f D^l_{mn}``, exact for
    signals of degree below ``b`` (real Fourier transforms along α and γ, then one matrix product
    per ``(m, n)``)."""

    def __init__(self, bandwidth: int, lmax: int | None = None):
        super().__init__()
        self.bandwidth, self.lmax = check_bandwidth(bandwidth, lmax, "SO3Analysis")
        L, M, n = self.lmax + 1, 2 * self.lmax + 1, 2 * self.bandwidth
        T = _so3_tables(self.bandwidth, self.lmax)
        c = torch.tensor([(2 * l + 1) / (8 * math.pi ** 2) for l in range(L)], dtype=torch.float64)
        c = c * (2 * math.pi / n) ** 2
        W = T * c[None, :, None, None, None] * _quadrature(self.bandwidth)[None, None, :, None, None]
        self._put("shaT", _fourier(self.bandwidth, self.lmax).T.contiguous())  # (M, α)
        self._put("T", W.permute(3, 4, 2, 0, 1).reshape(M * M, n, 2 * L).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L, M, n = self.lmax + 1, 2 * self.lmax + 1, 2 * self.bandwidth
        if x.shape[-3:] != (n, n, n):
            raise ValueError(f"SO3Analysis: expected (..., {n}, {n}, {n}) (α, β, γ), got {tuple(x.shape)}")
        lead = x.shape[:-3]
        xa = x.reshape(-1, n, n, n).permute(1, 3, 0, 2).reshape(n, -1)  # (α, γ·Z·β)
        h = (self.shaT @ xa).view(M, n, -1)  # (m, γ, Z·β)
        ft = torch.matmul(self.shaT, h)  # (m, n, Z·β)
        H = torch.bmm(ft.view(M * M, -1, n), self.T)  # (m·n, Z, 2L)
        F = H[:, :, :L] + H[:, :, L:].flip(0)  # the (−m, −n) terms land on the flipped index
        return F.view(M, M, -1, L).permute(2, 3, 0, 1).reshape(*lead, L, M, M)


# --------------------------------------------------------------------------- quadrature pooling
def sphere_mean(x: torch.Tensor) -> torch.Tensor:
    """``(1/4π) ∫ f dΩ`` of grid signals ``(..., 2b, 2b)`` (β, α) by quadrature → ``(...)``; exact
    (= ``F^0_0/√(4π)``) for band-limited ``f``."""
    n = x.shape[-1]
    if x.shape[-2] != n or n % 2:
        raise ValueError(f"sphere_mean: expected (..., 2b, 2b), got {tuple(x.shape)}")
    q = _quadrature(n // 2).to(x) / (2 * n)
    return (x.sum(-1) * q).sum(-1)


def so3_mean(x: torch.Tensor) -> torch.Tensor:
    """``(1/8π²) ∫ f dg`` of SO(3) grid signals ``(..., 2b, 2b, 2b)`` (α, β, γ) → ``(...)``
    (Haar measure; = ``F^0_{00}`` for band-limited ``f``)."""
    n = x.shape[-1]
    if x.shape[-3:] != (n, n, n) or n % 2:
        raise ValueError(f"so3_mean: expected (..., 2b, 2b, 2b), got {tuple(x.shape)}")
    q = _quadrature(n // 2).to(x) / (2 * n * n)
    return (x.sum(dim=(-3, -1)) * q).sum(-1)


__all__ = [
    "E3NN_FROM_GRID", "check_bandwidth", "grid_angles", "quadrature_weights",
    "sphere_mask", "so3_mask", "flat_to_padded", "padded_to_flat",
    "pole_harmonic", "sphere_harmonics_padded", "wigner_padded", "rotate_sphere_coefficients", "rotate_so3_coefficients",
    "SphereAnalysis", "SphereSynthesis", "SO3Analysis", "SO3Synthesis", "sphere_mean", "so3_mean",
]
