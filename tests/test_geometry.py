"""models/geometry.py: Haar rotations, exact and resampled rotations of grids, the se3cnn
low-pass filter shared by data and model, and the equivariance-error metric."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from models.geometry import (cube_rotations, gaussian_taps, lowpass, random_rotation,
                             relative_error, resample_image, resample_volume, rotate_voxels)
from models.steerable import LowPass3d

ROTS = cube_rotations()


# --------------------------------------------------------------------------- random_rotation
def test_random_rotation_is_a_rotation_single_and_batched():
    gen = torch.Generator().manual_seed(0)
    R = random_rotation(generator=gen)
    assert R.shape == (3, 3) and R.dtype == torch.float64
    Rs = random_rotation(50, generator=gen)
    assert Rs.shape == (50, 3, 3)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(Rs @ Rs.transpose(1, 2), eye.expand(50, 3, 3), atol=1e-14)
    assert torch.allclose(torch.linalg.det(Rs), torch.ones(50, dtype=torch.float64), atol=1e-14)
    assert random_rotation(2, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="keyword"):
        random_rotation(gen)


def test_random_rotation_reproducible_with_a_seeded_generator():
    a = random_rotation(5, generator=torch.Generator().manual_seed(11))
    b = random_rotation(5, generator=torch.Generator().manual_seed(11))
    c = random_rotation(5, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_random_rotation_is_roughly_haar():
    """E[R] = 0 under the Haar measure, and tr R = 1 + 2 cos θ with the rotation angle θ of
    density (1 − cos θ)/π on [0, π], so E[tr R] = 0 and E[(tr R)²] = 1."""
    R = random_rotation(20000, generator=torch.Generator().manual_seed(3))
    assert R.mean(0).abs().max() < 0.02
    tr = R.diagonal(dim1=1, dim2=2).sum(-1)
    assert abs(float(tr.mean())) < 0.03 and abs(float((tr ** 2).mean()) - 1) < 0.04
    # negative control: uniform axis and angle θ ~ U[0, π] is not Haar (E[tr R] = 1)
    from e3nn import o3
    gen = torch.Generator().manual_seed(4)
    axis = torch.randn(20000, 3, generator=gen, dtype=torch.float64)
    angle = torch.rand(20000, generator=gen, dtype=torch.float64) * math.pi
    tr_bad = o3.axis_angle_to_matrix(axis / axis.norm(dim=1, keepdim=True), angle).diagonal(dim1=1, dim2=2).sum(-1)
    assert abs(float(tr_bad.mean()) - 1) < 0.05


# --------------------------------------------------------------------------- resample_volume
def _smooth_volume(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return ndimage.gaussian_filter(rng.standard_normal((2, n, n, n)), 1.0, axes=(1, 2, 3))


def test_resample_volume_equals_rotate_voxels_for_all_cube_rotations():
    x = torch.from_numpy(_smooth_volume(7))
    for R in ROTS:
        got = resample_volume(x, R, order=3)
        assert isinstance(got, torch.Tensor) and got.dtype == x.dtype
        assert (got - rotate_voxels(x, R)).abs().max() < 1e-10
    # numpy in, numpy out
    assert isinstance(resample_volume(x.numpy(), ROTS[3]), np.ndarray)


def test_resample_volume_negative_controls():
    """Rotating about the wrong centre, or by Rᵀ instead of R, does not give the exact rotation."""
    from scipy.ndimage import affine_transform

    x = _smooth_volume(7)[0]
    R = next(R for R in ROTS if not torch.equal(R, R.T))   # a rotation with R ≠ R⁻¹
    exact = rotate_voxels(torch.from_numpy(x), R).numpy()
    assert np.abs(resample_volume(x, R.T) - exact).max() > 0.1
    Rn = R.numpy()
    c = np.array(x.shape) / 2                              # not (n − 1)/2
    off_centre = affine_transform(x, Rn.T, offset=c - Rn.T @ c, order=3, mode="constant")
    assert np.abs(off_centre - exact).max() > 0.1


def test_resample_volume_continuous_rotation_is_close_to_a_representation():
    """R₁ then R₂ ≈ R₂R₁ on a smooth, centred blob (interpolation error only)."""
    n = 15
    p = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2] * 3, indexing="ij"))
    blob = np.exp(-((p[0] - 1.5) ** 2 + p[1] ** 2 / 4 + (p[2] + 1) ** 2) / 4)
    R1, R2 = random_rotation(2, generator=torch.Generator().manual_seed(5))
    two = resample_volume(resample_volume(blob, R1), R2)
    one = resample_volume(blob, R2 @ R1)
    assert np.abs(two - one).max() < 0.05 * blob.max()
    assert np.abs(resample_volume(blob, R1 @ R2) - two).max() > 0.2 * blob.max()  # wrong order


# --------------------------------------------------------------------------- resample_image
def test_resample_image_is_scipy_rotate_counter_clockwise():
    img = np.random.default_rng(1).random((28, 28))
    for angle in (0.3, math.pi / 4, 2.0, -1.1):
        want = ndimage.rotate(img, math.degrees(angle), reshape=False, order=1, mode="constant", cval=0.0)
        assert np.array_equal(resample_image(img, angle), want)
    # quarter turns are exact and counter-clockwise as displayed (numpy's rot90)
    assert np.allclose(resample_image(img, math.pi / 2), np.rot90(img, 1), atol=1e-12)
    t = torch.from_numpy(img)[None, None]
    assert resample_image(t, 0.5).shape == t.shape


# --------------------------------------------------------------------------- low pass
def test_gaussian_taps_se3cnn_rule():
    taps = gaussian_taps(2)
    assert len(taps) == 5 and math.isclose(sum(taps), 1.0)
    assert taps == taps[::-1] and taps[2] == max(taps)
    sigma = 0.5 * math.sqrt(3)
    assert math.isclose(taps[1] / taps[2], math.exp(-1 / (2 * sigma ** 2)))
    assert gaussian_taps(1) == [1.0] and len(gaussian_taps(4)) == 11


def test_lowpass_is_the_separable_zero_padded_convolution():
    x = _smooth_volume(9)[0]
    g = np.array(gaussian_taps(2.0))
    k = g[:, None, None] * g[None, :, None] * g[None, None, :]
    want = ndimage.correlate(x, k, mode="constant", cval=0.0)
    assert np.abs(lowpass(x, 2.0) - want).max() < 1e-12
    assert np.abs(lowpass(x, 2.0, stride=2) - want[::2, ::2, ::2]).max() < 1e-12
    # scipy's default truncation (4σ, 7 taps) is a different filter
    assert np.abs(ndimage.gaussian_filter(x, 0.5 * math.sqrt(3), mode="constant") - want).max() > 1e-4


def test_data_lowpass_equals_LowPass3d():
    x = torch.from_numpy(_smooth_volume(9))[:, None]          # (2, 1, 9, 9, 9) float64
    for scale, stride in ((2.0, 1), (2.0, 2), (3.0, 1), (1.0, 2)):
        model = LowPass3d(scale, stride)(x)
        data = np.stack([lowpass(v, scale, stride) for v in x[:, 0].numpy()])
        assert torch.equal(model[:, 0], torch.from_numpy(data))
    assert len(LowPass3d(2.0).taps) == 5


# --------------------------------------------------------------------------- relative_error
def test_relative_error_hand_made_example():
    y_ref = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)    # norms 5 and 2
    y = torch.tensor([[3.0, 4.0], [1.0, 2.0]], dtype=torch.float64)        # changes 0 and 1
    assert relative_error(y, y_ref) == pytest.approx(0.25)                  # (0/5 + 1/2) / 2
    assert torch.allclose(relative_error(y, y_ref, reduction="none"),
                          torch.tensor([0.0, 0.5], dtype=torch.float64))
    # not the whole-batch ratio ‖Y − Y_ref‖ / ‖Y_ref‖ = 1/√29
    assert relative_error(y, y_ref) != pytest.approx(1 / math.sqrt(29))
    # non-batch axes are flattened; numpy gives the same numbers
    y3, r3 = y.reshape(2, 1, 2), y_ref.reshape(2, 2, 1)
    assert relative_error(y3, r3.reshape(2, 1, 2)) == pytest.approx(0.25)
    assert relative_error(y.numpy(), y_ref.numpy()) == pytest.approx(0.25)
    # explicit denominators: ‖y − y_ref‖ / ‖s‖
    s = torch.tensor([[0.0, 10.0], [0.0, 4.0]], dtype=torch.float64)
    assert relative_error(y, y_ref, scale=s) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="equal shape"):
        relative_error(y, y_ref[:1])
    with pytest.raises(ValueError, match="reduction"):
        relative_error(y, y_ref, reduction="sum")


def test_relative_error_numpy_rows_match_single_vectors_exactly():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 500)), rng.standard_normal((3, 500))
    got = relative_error(a, b, reduction="none")
    for i in range(3):
        assert got[i] == np.linalg.norm(a[i] - b[i]) / np.linalg.norm(b[i])
