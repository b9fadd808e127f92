"""Rotations acting on voxel grids of steerable fields.

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
  :func:`rotate_voxels`; other rotations need interpolation, see :func:`resample_rotated`.

>>> import torch
>>> R = cube_rotations()[5]
>>> x = torch.randn(2, 1 + 3, 5, 5, 5, dtype=torch.float64)
>>> rotate_field(x, R, [(1, 0), (1, 1)]).shape
torch.Size([2, 4, 5, 5, 5])
"""
from __future__ import annotations

import functools
import itertools
from contextlib import contextmanager
from typing import Iterable, Sequence

import numpy as np
import torch
from e3nn import o3

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


# --------------------------------------------------------------------------- group elements
def cube_rotations(dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    """The 24 rotations of the cube: signed 3×3 permutation matrices with determinant +1.

    The identity comes first; the order is deterministic.
    """
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            R = torch.zeros(3, 3, dtype=torch.float64)
            for row, (col, s) in enumerate(zip(perm, signs)):
                R[row, col] = s
            if torch.det(R) > 0:
                mats.append(R)
    mats.sort(key=lambda R: (not torch.equal(R, torch.eye(3, dtype=torch.float64)),))
    return [R.to(dtype) for R in mats]


def random_rotation(generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Haar-uniform random rotation matrix (normalised Gaussian quaternion)."""
    q = torch.randn(4, generator=generator, dtype=torch.float64)
    q = q / q.norm()
    a, b, c, d = q.tolist()
    R = torch.tensor([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
    ], dtype=torch.float64)
    return R.to(dtype)


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
    from scipy.linalg import expm

    R64 = torch.tensor(R_flat, dtype=torch.float64).view(3, 3)
    if abs(float(torch.det(R64)) - 1) > 1e-6:
        raise ValueError("wigner_D expects a proper rotation (det +1)")
    with _float64_default():
        alpha, beta, gamma = (float(t) for t in o3.matrix_to_angles(R64))
        X = o3.so3_generators(l).to(torch.float64).numpy()
    D = expm(alpha * X[1]) @ expm(beta * X[0]) @ expm(gamma * X[1])
    return torch.from_numpy(D)


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
def _signed_permutation(R: torch.Tensor) -> tuple[list[int], list[int]]:
    """``R[j, σ(j)] = s_j``; raises if R is not a signed permutation with det +1."""
    Rn = R.detach().to("cpu", torch.float64)
    if Rn.shape != (3, 3):
        raise ValueError(f"rotation must be 3x3, got {tuple(Rn.shape)}")
    sigma, signs = [], []
    for j in range(3):
        nz = torch.nonzero(Rn[j].abs() > 0.5).flatten().tolist()
        if len(nz) != 1 or abs(abs(float(Rn[j, nz[0]])) - 1) > 1e-9 or \
                float(Rn[j].abs().sum()) - 1 > 1e-9:
            raise ValueError("rotate_voxels needs one of the 24 cube rotations (a signed "
                             "permutation matrix); use resample_rotated for other rotations")
        sigma.append(nz[0])
        signs.append(1 if Rn[j, nz[0]] > 0 else -1)
    if sorted(sigma) != [0, 1, 2] or torch.det(Rn) < 0:
        raise ValueError("rotate_voxels needs a rotation (det +1) that permutes the axes")
    return sigma, signs


def rotate_voxels(x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Move voxel contents: ``out[p'] = x[R^{-1} p']`` for a cube rotation ``R``.

    With ``R[j, σ(j)] = s_j`` (one non-zero per row), output axis ``j`` is input axis ``σ(j)``,
    reversed when ``s_j = −1`` (reversal maps position ``t`` to ``−t`` about the centre).
    Channels are not mixed; see :func:`rotate_field`.
    """
    sigma, signs = _signed_permutation(R)
    lead = list(range(x.dim() - 3))
    off = x.dim() - 3
    y = x.permute(*lead, *[off + s for s in sigma])
    flips = [off + j for j in range(3) if signs[j] < 0]
    return y.flip(flips) if flips else y


def rotate_field(x: torch.Tensor, R: torch.Tensor, Rs: Rs_t) -> torch.Tensor:
    """``[π(R) x](p) = D_{Rs}(R) x(R^{-1} p)`` on a ``(B, C, X, Y, Z)`` tensor of type ``Rs``."""
    check_channels(x, Rs, "rotate_field")
    D = irrep_D(Rs, R.to(x.dtype)).to(x.device)
    y = rotate_voxels(x, R)
    return torch.einsum("ij,bj...->bi...", D, y)


def resample_rotated(x: torch.Tensor, R: torch.Tensor, order: int = 3,
                     Rs: Rs_t | None = None) -> torch.Tensor:
    """Continuous rotation of a ``(B, C, X, Y, Z)`` grid by interpolation about its centre.

    ``out(p') = x(R^{-1} p')`` evaluated with ``scipy.ndimage.affine_transform`` (spline of
    ``order``, zeros outside the grid), channel by channel. With ``Rs`` given the channel blocks
    are also mixed by ``D_{Rs}(R)``; without it every channel is treated as a scalar field.
    For a cube rotation and grid-aligned samples this equals :func:`rotate_field` up to
    interpolation round-off.
    """
    from scipy.ndimage import affine_transform

    if x.dim() != 5:
        raise ValueError(f"resample_rotated: expected (B, C, X, Y, Z), got shape {tuple(x.shape)}")
    Rn = R.detach().to("cpu", torch.float64).numpy()
    shape = np.array(x.shape[2:], dtype=np.float64)
    centre = (shape - 1) / 2
    # output index o  ->  input index  R^T (o - c) + c
    matrix = Rn.T
    offset = centre - matrix @ centre
    arr = x.detach().to("cpu", torch.float64).numpy()
    out = np.empty_like(arr)
    for b in range(arr.shape[0]):
        for ch in range(arr.shape[1]):
            out[b, ch] = affine_transform(arr[b, ch], matrix, offset=offset, order=order,
                                          mode="constant", cval=0.0)
    y = torch.from_numpy(out).to(x.device, x.dtype)
    if Rs is not None:
        check_channels(x, Rs, "resample_rotated")
        D = irrep_D(Rs, R.to(torch.float64)).to(x.device, x.dtype)
        y = torch.einsum("ij,bj...->bi...", D, y)
    return y


__all__ = [
    "normalize_rs", "rs_dim", "rs_fields", "rs_str", "check_channels",
    "cube_rotations", "random_rotation", "wigner_D", "irrep_D",
    "rotate_voxels", "rotate_field", "resample_rotated",
]
