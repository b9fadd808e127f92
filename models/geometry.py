"""Rotation geometry shared by data, models and measurements: one home per equation.

Everything that rotates, resamples, blurs or compares outputs under rotation lives here, so
that the data pipelines, the layers and the tables use the same formula. Plain torch / numpy /
scipy / e3nn; no Lightning.

Conventions (those of :mod:`models.steerable.group`, restated as math):

* **Grid.** An ``n₁ × n₂ × n₃`` grid (the last three axes of a tensor) has its centre at
  ``c = (n − 1)/2`` per axis; voxel ``(i, j, k)`` sits at position ``p = (i, j, k) − c``.
  Images (last two axes, row then column) likewise.
* **Rotations** are matrices acting on column vectors of positions. A scalar field is rotated
  by ``[R·x](p) = x(R⁻¹ p)`` (the content at ``p`` moves to ``R p``); outside the grid it is
  zero.
* **Haar measure.** A unit quaternion drawn as a normalised 4-D Gaussian is uniform on S³;
  its image under the double cover S³ → SO(3) is Haar-uniform.

Contents: :func:`cube_rotations` and :func:`rotate_voxels` (the exact 24-element symmetry of a
grid), :func:`random_rotation` (Haar), :func:`resample_volume` / :func:`resample_image`
(continuous rotations by spline interpolation), :func:`gaussian_taps` / :func:`lowpass` (the
se3cnn low-pass filter, used by the Tetris data and by ``LowPass3d``), :func:`relative_error`
(the equivariance error reported in every table).

>>> R = random_rotation(generator=torch.Generator().manual_seed(0))
>>> bool(torch.allclose(R @ R.T, torch.eye(3, dtype=torch.float64))), round(float(torch.det(R)), 6)
(True, 1.0)
>>> x = torch.rand(1, 1, 5, 5, 5, dtype=torch.float64)
>>> Q = cube_rotations()[7]
>>> bool((resample_volume(x, Q, order=1) - rotate_voxels(x, Q)).abs().max() < 1e-12)
True
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from e3nn import o3


# --------------------------------------------------------------------------- group elements
def cube_rotations(dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    """The 24 rotations of the cube: signed 3×3 permutation matrices with determinant +1.

    The identity comes first; the order is deterministic.

    >>> rots = cube_rotations()
    >>> len(rots), rots[0].tolist()
    (24, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
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


def random_rotation(n: int | None = None, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Haar-uniform random rotation matrix ``(3, 3)``, or a batch ``(n, 3, 3)``.

    ``q ~ N(0, I₄)``, ``q ← q/‖q‖`` (uniform on S³), ``R = o3.quaternion_to_matrix(q)``
    (e3nn; real part first). Drawn with ``generator`` (the global CPU RNG when ``None``) and
    computed in ``dtype``, on the CPU; move the result with ``.to(device)``.

    >>> gen = torch.Generator().manual_seed(1)
    >>> random_rotation(4, generator=gen).shape
    torch.Size([4, 3, 3])
    >>> a = random_rotation(generator=torch.Generator().manual_seed(2))
    >>> torch.equal(a, random_rotation(generator=torch.Generator().manual_seed(2)))
    True
    """
    if isinstance(n, torch.Generator):
        raise TypeError("random_rotation: the generator is a keyword argument, "
                        "random_rotation(n, generator=gen)")
    shape = () if n is None else (int(n),)
    q = torch.randn(*shape, 4, generator=generator, dtype=dtype)
    q = q / q.norm(dim=-1, keepdim=True)
    return o3.quaternion_to_matrix(q)


# --------------------------------------------------------------------------- exact actions
def _signed_permutation(R: torch.Tensor) -> tuple[list[int], list[int]]:
    """``R[j, σ(j)] = s_j``; raises if R is not a signed permutation with det +1."""
    Rn = torch.as_tensor(R).detach().to("cpu", torch.float64)
    if Rn.shape != (3, 3):
        raise ValueError(f"rotation must be 3x3, got {tuple(Rn.shape)}")
    sigma, signs = [], []
    for j in range(3):
        nz = torch.nonzero(Rn[j].abs() > 0.5).flatten().tolist()
        if len(nz) != 1 or abs(abs(float(Rn[j, nz[0]])) - 1) > 1e-9 or \
                float(Rn[j].abs().sum()) - 1 > 1e-9:
            raise ValueError("rotate_voxels needs one of the 24 cube rotations (a signed "
                             "permutation matrix); use resample_volume for other rotations")
        sigma.append(nz[0])
        signs.append(1 if Rn[j, nz[0]] > 0 else -1)
    if sorted(sigma) != [0, 1, 2] or torch.det(Rn) < 0:
        raise ValueError("rotate_voxels needs a rotation (det +1) that permutes the axes")
    return sigma, signs


def rotate_voxels(x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Move voxel contents: ``out[p'] = x[R^{-1} p']`` for a cube rotation ``R`` (exact).

    Acts on the last three axes. With ``R[j, σ(j)] = s_j`` (one non-zero per row), output axis
    ``j`` is input axis ``σ(j)``, reversed when ``s_j = −1`` (reversal maps position ``t`` to
    ``−t`` about the centre). Channels are not mixed; see
    :func:`models.steerable.group.rotate_field`.

    >>> x = torch.zeros(3, 3, 3); x[2, 1, 1] = 1           # at p = (1, 0, 0)
    >>> Rz = torch.tensor([[0., -1, 0], [1, 0, 0], [0, 0, 1]])  # x → y
    >>> torch.nonzero(rotate_voxels(x, Rz)).tolist()        # now at p = (0, 1, 0)
    [[1, 2, 1]]
    """
    sigma, signs = _signed_permutation(R)
    lead = list(range(x.dim() - 3))
    off = x.dim() - 3
    y = x.permute(*lead, *[off + s for s in sigma])
    flips = [off + j for j in range(3) if signs[j] < 0]
    return y.flip(flips) if flips else y


# --------------------------------------------------------------------------- resampling
def _as_float64_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _resample_about_centre(x, R_inv: np.ndarray, order: int, who: str):
    """``out(p) = x(R⁻¹ p)`` on the last ``d = len(R_inv)`` axes, ``p`` relative to the centre.

    ``scipy.ndimage.affine_transform`` maps output index ``o`` to input index
    ``M o + offset``; with ``M = R⁻¹`` (``= Rᵀ``) and ``offset = c − M c`` that is
    ``R⁻¹(o − c) + c``. Spline of ``order``, zeros outside (``mode="constant"``), evaluated in
    float64 one ``d``-dimensional slice at a time. Numpy in → numpy (float64) out; torch in →
    torch out on the input's device and dtype.
    """
    from scipy.ndimage import affine_transform

    is_torch = isinstance(x, torch.Tensor)
    arr = _as_float64_numpy(x)
    d = R_inv.shape[0]
    if R_inv.shape != (d, d) or arr.ndim < d:
        raise ValueError(f"{who}: expected a {d}x{d} rotation and at least {d} axes, got rotation "
                         f"{R_inv.shape} and shape {arr.shape}")
    centre = (np.asarray(arr.shape[-d:]) - 1) / 2
    matrix = R_inv
    offset = centre - matrix @ centre
    flat = arr.reshape(-1, *arr.shape[-d:])
    out = np.empty_like(flat)
    for i in range(len(flat)):
        affine_transform(flat[i], matrix, offset=offset, output=out[i], order=order,
                         mode="constant", cval=0.0)
    out = out.reshape(arr.shape)
    return torch.from_numpy(out).to(x.device, x.dtype) if is_torch else out


def resample_volume(x, R, order: int = 3):
    """Continuous rotation of a volume about its grid centre: ``out(p) = x(R⁻¹ p)``.

    ``x``: numpy array or tensor ``(..., X, Y, Z)`` (every leading index is rotated as a scalar
    field); ``R``: ``(3, 3)`` rotation. ``scipy.ndimage.affine_transform`` with a spline of
    ``order`` (3 = cubic, the Tetris protocol), zeros outside the grid. For a cube rotation
    and an odd grid this equals :func:`rotate_voxels` up to round-off (the samples fall on
    voxels). Returns the input's type (torch: same device and dtype; numpy: float64).

    >>> vol = np.zeros((5, 5, 5)); vol[2, 2, 4] = 1.0              # at p = (0, 0, 2)
    >>> Ry = np.array([[0., 0, 1], [0, 1, 0], [-1, 0, 0]])          # z → x
    >>> np.argwhere(resample_volume(vol, Ry, order=1) > 0.5).tolist()
    [[4, 2, 2]]
    """
    return _resample_about_centre(x, _as_float64_numpy(R).T, int(order), "resample_volume")


def resample_image(img, angle: float, order: int = 1):
    """``img`` rotated counter-clockwise by ``angle`` radians about its centre (as displayed,
    row 0 on top): ``out(p) = img(R(θ)⁻¹ p)`` on ``(row, col)`` positions with
    ``R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]``; spline of ``order`` (1 = bilinear), zeros
    outside. Same numbers as ``scipy.ndimage.rotate(img, degrees(angle), reshape=False,
    order=order, mode="constant")`` (cos/sin in degrees, exact at quarter turns). Acts on the
    last two axes; numpy or torch, as :func:`resample_volume`.

    >>> img = np.zeros((3, 3)); img[1, 2] = 1.0                      # right of the centre
    >>> np.argwhere(resample_image(img, math.pi / 2) > 0.5).tolist()  # now above it
    [[0, 1]]
    """
    from scipy.special import cosdg, sindg

    deg = math.degrees(angle)
    c, s = cosdg(deg), sindg(deg)
    R_inv = np.array([[c, s], [-s, c]])
    return _resample_about_centre(img, R_inv, int(order), "resample_image")


# --------------------------------------------------------------------------- low pass
def gaussian_taps(scale: float) -> list[float]:
    """1-D taps of se3cnn's ``low_pass_filter``: σ = 0.5·√(scale² − 1), ``int(1 + 2·2.5·σ)``
    taps made odd, ``w_t ∝ exp(−(t − ⌊size/2⌋)² / 2σ²)`` normalised to sum 1 (the 3-D kernel
    is their outer product, also of sum 1). ``scale ≤ 1``: the identity ``[1.0]``.

    Paper: Weiler et al. 2018, §4.4.2 (low-pass before subsampling); reference
    ``mariogeiger/se3cnn`` ``filter.py``.

    >>> len(gaussian_taps(2)), len(gaussian_taps(3)), gaussian_taps(1)
    (5, 9, [1.0])
    """
    if scale <= 1:
        return [1.0]
    sigma = 0.5 * math.sqrt(scale ** 2 - 1)
    size = int(1 + 2 * 2.5 * sigma)
    if size % 2 == 0:
        size += 1
    taps = [math.exp(-((t - size // 2) ** 2) / (2 * sigma ** 2)) for t in range(size)]
    total = sum(taps)
    return [t / total for t in taps]


def _blur_axis(x: torch.Tensor, taps: list[float], axis: int, stride: int) -> torch.Tensor:
    """Zero-padded correlation with ``taps`` along ``axis``, keeping samples ``0, s, 2s, …``."""
    g = len(taps)
    n = x.shape[axis]
    n_out = (n - 1) // stride + 1
    if g > 1:
        pad = [0, 0] * (x.dim() - axis)
        k = x.dim() - 1 - axis  # F.pad lists the last axis first
        pad[2 * k] = pad[2 * k + 1] = g // 2
        x = F.pad(x, pad)
    out = None
    for t, w in enumerate(taps):
        idx = [slice(None)] * x.dim()
        idx[axis] = slice(t, t + (n_out - 1) * stride + 1, stride)
        term = x[tuple(idx)] * w
        out = term if out is None else out + term
    return out


def lowpass(x, scale: float, stride: int = 1):
    """The se3cnn low-pass filter ``y = (G_σ * x)[::s, ::s, ::s]`` on the last three axes.

    Separable: three 1-D passes with :func:`gaussian_taps` (``scale``), zero padding
    ``⌊taps/2⌋`` (same size at stride 1), then every ``stride``-th sample from the first, so
    ``n ↦ ⌊(n − 1)/s⌋ + 1``. Commutes with the 24 cube rotations (the kernel is symmetric).
    The Tetris data blur and :class:`models.steerable.layers.LowPass3d` both call this, so data
    and model use the same truncation (5 taps at scale 2). Torch in → torch out; numpy in →
    numpy float64 out.

    >>> v = np.zeros((5, 5, 5)); v[2, 2, 2] = 1.0
    >>> y = lowpass(v, 2.0)
    >>> y.shape, round(float(y.sum()), 12), lowpass(v, 2.0, stride=2).shape
    ((5, 5, 5), 1.0, (3, 3, 3))
    """
    if int(stride) != stride or stride < 1:
        raise ValueError(f"lowpass: stride must be a positive integer, got {stride}")
    stride = int(stride)
    is_torch = isinstance(x, torch.Tensor)
    t = x if is_torch else torch.from_numpy(np.asarray(x, dtype=np.float64))
    if t.dim() < 3:
        raise ValueError(f"lowpass: expected at least 3 axes (..., X, Y, Z), got shape {tuple(t.shape)}")
    taps = gaussian_taps(scale)
    if len(taps) == 1 and stride == 1:
        return x
    for axis in range(t.dim() - 3, t.dim()):
        t = _blur_axis(t, taps, axis, stride)
    return t if is_torch else t.numpy()


# --------------------------------------------------------------------------- error metric
def relative_error(y, y_ref, scale=None, reduction: str = "mean"):
    """The equivariance error of the tables: the mean relative change per sample,

    .. math::  \\mathrm{err}(y, y^{\\mathrm{ref}}) = \\frac{1}{B} \\sum_{i=1}^{B}
               \\frac{\\lVert y_i - y^{\\mathrm{ref}}_i \\rVert_2}{\\lVert s_i \\rVert_2},
               \\qquad s = y^{\\mathrm{ref}} \\text{ unless given},

    axis 0 indexes the samples ``i``; all other axes are flattened into one vector per sample.
    Typical use: ``y = f(R·x)`` and ``y_ref = f(x)`` for an invariant output (logits), or
    ``y = f(R·x)``, ``y_ref = R·f(x)`` for an equivariant one. ``scale`` gives other
    denominators: the DeepSphere figure divides by ``‖L f‖`` (the unrotated output) rather
    than by ``‖R L f‖`` (Defferrard et al. 2020, fig:equivariance_error). A zero denominator
    gives ``inf``/``nan`` (the error is undefined there).

    ``reduction="mean"`` returns a Python float, ``"none"`` the ``B`` per-sample ratios (a
    tensor for torch input, else a numpy array). Numpy norms are taken one sample at a time
    (``np.linalg.norm`` of each flattened row), so a batch gives exactly the values of its rows
    taken alone.

    >>> y_ref = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    >>> y = torch.tensor([[3.0, 4.5], [1.0, 0.1]])          # ratios 0.5/5 and 0.1/1
    >>> round(relative_error(y, y_ref), 6)
    0.1
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"relative_error: reduction must be 'mean' or 'none', got {reduction!r}")
    s = y_ref if scale is None else scale
    if any(isinstance(a, torch.Tensor) for a in (y, y_ref, s)):
        y, y_ref, s = (torch.as_tensor(a) for a in (y, y_ref, s))
        if y.dim() == 0 or y.shape != y_ref.shape or s.shape[:1] != y.shape[:1]:
            raise ValueError(f"relative_error: expected batches of equal shape, got {tuple(y.shape)}, "
                             f"{tuple(y_ref.shape)} and scale {tuple(s.shape)}")
        B = y.shape[0]
        ratios = (y - y_ref).reshape(B, -1).norm(dim=1) / s.reshape(B, -1).norm(dim=1)
        return float(ratios.mean()) if reduction == "mean" else ratios
    y, y_ref, s = (np.asarray(a) for a in (y, y_ref, s))
    if y.ndim == 0 or y.shape != y_ref.shape or s.shape[:1] != y.shape[:1]:
        raise ValueError(f"relative_error: expected batches of equal shape, got {y.shape}, "
                         f"{y_ref.shape} and scale {s.shape}")
    ratios = np.array([np.linalg.norm(np.ravel(y[i] - y_ref[i])) / np.linalg.norm(np.ravel(s[i]))
                       for i in range(len(y))])
    return float(ratios.mean()) if reduction == "mean" else ratios


__all__ = [
    "cube_rotations", "random_rotation", "rotate_voxels", "resample_volume", "resample_image",
    "gaussian_taps", "lowpass", "relative_error",
]
