"""Rotations acting on steerable fields: field types, Wigner D, the induced representation.

Paper: Weiler, Geiger, Welling, Boomsma, Cohen 2018, "3D Steerable CNNs", §4 (eq. 1–3: the
induced representation π(r) acting on fields).

Conventions (used by every module of :mod:`models.steerable`):

* **Field types.** ``Rs = [(multiplicity, l), ...]``. The channel axis of a tensor of type
  ``Rs`` holds, for each ``(m, l)`` in order, ``m`` consecutive blocks of ``2l + 1`` components:
  channel ``offset + u (2l+1) + i`` is component ``i`` of field ``u``. Entries with ``m = 0``
  are ignored. The total channel count is ``Σ m (2l+1)``.
* **Grid.** Tensors are ``(B, C, X, Y, Z)``. Voxel ``(i, j, k)`` of an ``n × n × n`` grid sits at
  position ``p = (i − c, j − c, k − c)``, ``c = (n − 1)/2``; the spatial axes are x, y, z.
* **Rotations** are 3×3 matrices acting on column vectors ``(x, y, z)``. The representation of
  order ``l`` is e3nn's ``D^l(R) = o3.Irrep(l, (−1)^l).D_from_matrix(R)``, consistent with the
  real spherical harmonics ``Y^l = o3.spherical_harmonics(l, ·, normalize=True,
  normalization='component')``:  ``Y^l(R x) = D^l(R) Y^l(x)``.
* **Action on a field** (the induced representation of the paper, eq. 3):

  .. math::  [\\pi(R) f](x) = D_{Rs}(R)\\, f(R^{-1} x),\\qquad
             D_{Rs}(R) = \\bigoplus_{(m,l) \\in Rs} \\bigoplus^{m} D^l(R).

  On the grid this is exact for the 24 rotations of the cube (signed permutation matrices), see
  :func:`rotate_field`; other rotations need interpolation, see :func:`resample_rotated`.

The voxel part of the action (``cube_rotations``, ``rotate_voxels``, ``resample_volume``) and
Haar-random rotations (``random_rotation``) live in :mod:`models.geometry`, with the same grid
and rotation conventions.

>>> import torch
>>> R = cube_rotations()[5]
>>> x = torch.randn(2, 1 + 3, 5, 5, 5, dtype=torch.float64)
>>> rotate_field(x, R, [(1, 0), (1, 1)]).shape
torch.Size([2, 4, 5, 5, 5])
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Iterable, Sequence

import torch
from e3nn import o3

from models.geometry import cube_rotations, resample_volume, rotate_voxels  # noqa: F401 (cube_rotations: doctest)

Rs_t = Sequence[tuple[int, int]]


# --------------------------------------------------------------------------- field types
def normalize_rs(Rs: Iterable) -> list[tuple[int, int]]:
    """Validate ``Rs`` and drop entries of multiplicity 0: ``[(m, l), ...]`` with ints m, l ≥ 0."""
    out = []
    for entry in Rs:
        try:
            mul, l = entry
        except (TypeError, ValueError):
            raise ValueError(f"field type entries must be (multiplicity, l) pairs, got {entry!r}") from None
        if int(mul) != mul or int(l) != l or mul < 0 or l < 0:
            raise ValueError(f"field type entries must be non-negative integers, got {entry!r}")
        if mul > 0:
            out.append((int(mul), int(l)))
    return out


def rs_dim(Rs: Rs_t) -> int:
    """Number of channels ``Σ m (2l+1)`` of a field type."""
    return sum(m * (2 * l + 1) for m, l in normalize_rs(Rs))


def rs_fields(Rs: Rs_t) -> int:
    """Number of fields ``Σ m``."""
    return sum(m for m, _ in normalize_rs(Rs))


def rs_str(Rs: Rs_t) -> str:
    """Readable form, e.g. ``4x0 + 4x1 + 2x2``."""
    Rs = normalize_rs(Rs)
    return " + ".join(f"{m}x{l}" for m, l in Rs) if Rs else "(empty)"


def check_channels(x: torch.Tensor, Rs: Rs_t, who: str) -> None:
    """Raise a ``ValueError`` naming the layer when ``x`` is not a (B, C, X, Y, Z) tensor of type Rs."""
    if x.dim() != 5:
        raise ValueError(f"{who}: expected a (B, C, X, Y, Z) tensor, got shape {tuple(x.shape)}")
    if x.shape[1] != rs_dim(Rs):
        raise ValueError(f"{who}: expected {rs_dim(Rs)} channels ({rs_str(Rs)}), got {x.shape[1]}")


# --------------------------------------------------------------------------- representations
@contextmanager
def _float64_default():
    """e3nn builds its SO(3) generators in the default dtype; compute D in float64 regardless."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def wigner_D(l: int, R: torch.Tensor) -> torch.Tensor:
    """``D^l(R)`` of e3nn (``o3.Irrep(l, (-1)**l).D_from_matrix(R)`` for a proper rotation),
    returned in ``R``'s dtype and device.

    Same definition as e3nn, ``D^l = exp(α X_y) exp(β X_x) exp(γ X_y)`` with
    ``(α, β, γ) = o3.matrix_to_angles(R)`` and ``X = o3.so3_generators(l)``, but evaluated in
    float64 with ``scipy.linalg.expm``: ``torch.matrix_exp`` (used inside e3nn) loses up to
    ~1e-11 of accuracy for small angles (≈ 0.02 rad), which would spoil float64 equivariance
    checks at 1e-10.
    """
    R64 = R.detach().to("cpu", torch.float64)
    D = _wigner_D_cached(int(l), tuple(R64.flatten().tolist()))
    return D.to(R.device, R.dtype, copy=True)


@functools.lru_cache(maxsize=4096)
def _wigner_D_cached(l: int, R_flat: tuple[float, ...]) -> torch.Tensor:
    R64 = torch.tensor(R_flat, dtype=torch.float64).view(3, 3)
    if abs(float(torch.det(R64)) - 1) > 1e-6:
        raise ValueError("wigner_D expects a proper rotation (det +1)")
    with _float64_default():
        alpha, beta, gamma = (float(t) for t in o3.matrix_to_angles(R64))
    return wigner_D_angles(l, alpha, beta, gamma)


def wigner_D_angles(l: int, alpha, beta, gamma) -> torch.Tensor:
    """e3nn's ``D^l(α, β, γ) = exp(α X_y) exp(β X_x) exp(γ X_y)`` (``o3.wigner_D``, Y-X-Y Euler
    angles, ``X = o3.so3_generators(l)``) in float64 through ``scipy.linalg.expm``, for angles of
    any (broadcast) shape ``S``; returns ``(*S, 2l+1, 2l+1)`` float64 on the CPU.

    >>> D = wigner_D_angles(2, torch.tensor([0.1, 0.2]), 0.3, 0.0)
    >>> D.shape, bool(torch.allclose(D[0] @ D[0].T, torch.eye(5, dtype=torch.float64)))
    (torch.Size([2, 5, 5]), True)
    """
    import numpy as np
    from scipy.linalg import expm

    a, b, g = np.broadcast_arrays(*(np.asarray(torch.as_tensor(t, dtype=torch.float64).detach().cpu(),
                                               dtype=np.float64) for t in (alpha, beta, gamma)))
    with _float64_default():
        X = o3.so3_generators(int(l)).to(torch.float64).numpy()
    ex = lambda t, G: expm(t[..., None, None] * G)  # noqa: E731  (batched over the angles)
    return torch.from_numpy(np.ascontiguousarray(ex(a, X[1]) @ ex(b, X[0]) @ ex(g, X[1])))


def irrep_D(Rs: Rs_t, R: torch.Tensor) -> torch.Tensor:
    """Block-diagonal ``D_{Rs}(R)`` of shape ``(C, C)``, ``C = rs_dim(Rs)``."""
    Rs = normalize_rs(Rs)
    blocks = []
    cache: dict[int, torch.Tensor] = {}
    for m, l in Rs:
        if l not in cache:
            cache[l] = wigner_D(l, R)
        blocks += [cache[l]] * m
    if not blocks:
        return R.new_zeros(0, 0)
    return torch.block_diag(*blocks)


# --------------------------------------------------------------------------- actions on grids
def rotate_field(x: torch.Tensor, R: torch.Tensor, Rs: Rs_t) -> torch.Tensor:
    """``[π(R) x](p) = D_{Rs}(R) x(R^{-1} p)`` on a ``(B, C, X, Y, Z)`` tensor of type ``Rs``."""
    check_channels(x, Rs, "rotate_field")
    D = irrep_D(Rs, R.to(x.dtype)).to(x.device)
    y = rotate_voxels(x, R)
    return torch.einsum("ij,bj...->bi...", D, y)


def resample_rotated(x: torch.Tensor, R: torch.Tensor, order: int = 3,
                     Rs: Rs_t | None = None) -> torch.Tensor:
    """Continuous rotation of a ``(B, C, X, Y, Z)`` field by interpolation about its centre.

    ``[π(R) x](p) = D_{Rs}(R) x(R^{-1} p)``: the resampling ``x(R^{-1} p)`` is
    :func:`models.geometry.resample_volume` (spline of ``order``, zeros outside the grid),
    channel by channel; with ``Rs`` given the channel blocks are then mixed by
    ``D_{Rs}(R)``, without it every channel is treated as a scalar field. For a cube rotation
    this equals :func:`rotate_field` up to interpolation round-off.
    """
    if x.dim() != 5:
        raise ValueError(f"resample_rotated: expected (B, C, X, Y, Z), got shape {tuple(x.shape)}")
    if Rs is not None:
        check_channels(x, Rs, "resample_rotated")
    y = resample_volume(x, R, order)
    if Rs is not None:
        D = irrep_D(Rs, R.to(torch.float64)).to(x.device, x.dtype)
        y = torch.einsum("ij,bj...->bi...", D, y)
    return y


__all__ = [
    "normalize_rs", "rs_dim", "rs_fields", "rs_str", "check_channels",
    "wigner_D", "wigner_D_angles", "irrep_D", "rotate_field", "resample_rotated",
]
