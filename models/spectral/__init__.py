"""Spectral spherical CNNs in plain ``torch.nn``: Esteves et al. 2018 (zonal S² convolutions,
spectral pooling) and Cohen et al. 2018 (S2CNN: S² → SO(3) → SO(3) correlations).

Modules: :mod:`.transforms` (S² and SO(3) Fourier transforms on the Driscoll–Healy / SOFT grids
with e3nn's harmonics and Wigner D; the frame change to e3nn's y-polar convention; exact
spectral rotation of coefficients), :mod:`.layers` (``SphericalConv``, ``SpectralPool``,
``SphereAverage``, ``S2Convolution``, ``SO3Convolution``, ``SO3Integrate``, kernel grids),
:mod:`.nets` (``EstevesSphericalCNN``, ``S2CNN``, SHREC'17 configurations). Sphere inputs are
``(B, V, C)`` on :func:`models.deepsphere.graph.equiangular_vectors` (``V = 4b²``), as for the
DeepSphere equiangular net.
"""
from models.spectral.layers import (S2Convolution, SO3Convolution, SO3Integrate, SpectralPool, SphereAverage,
                                    SphericalConv, anchor_interpolation, grid_to_sphere, s2_equatorial_grid,
                                    s2_near_identity_grid, so3_equatorial_grid, so3_near_identity_grid,
                                    sphere_to_grid)
from models.spectral.nets import (ESTEVES_CHANNELS, ESTEVES_CONCAT, ESTEVES_FEATURE_BANDWIDTH, ESTEVES_POOL,
                                  S2CNN, S2CNN_ORIGINAL, S2CNN_SIMPLIFIED, SHREC17_BRANCHES, EstevesBlock,
                                  EstevesSphericalCNN, ShiftBatchNorm2d)
from models.spectral.transforms import (E3NN_FROM_GRID, SO3Analysis, SO3Synthesis, SphereAnalysis,
                                        SphereSynthesis, flat_to_padded, grid_angles, padded_to_flat,
                                        quadrature_weights, rotate_so3_coefficients, rotate_sphere_coefficients,
                                        so3_mask, so3_mean, sphere_harmonics_padded, sphere_mask, sphere_mean,
                                        wigner_padded)

__all__ = [
    "E3NN_FROM_GRID", "SO3Analysis", "SO3Synthesis", "SphereAnalysis", "SphereSynthesis", "flat_to_padded",
    "grid_angles", "padded_to_flat", "quadrature_weights", "rotate_so3_coefficients",
    "rotate_sphere_coefficients", "so3_mask", "so3_mean", "sphere_harmonics_padded", "sphere_mask",
    "sphere_mean", "wigner_padded",
    "S2Convolution", "SO3Convolution", "SO3Integrate", "SpectralPool", "SphereAverage", "SphericalConv",
    "anchor_interpolation", "grid_to_sphere", "s2_equatorial_grid", "s2_near_identity_grid",
    "so3_equatorial_grid", "so3_near_identity_grid", "sphere_to_grid",
    "ESTEVES_CHANNELS", "ESTEVES_CONCAT", "ESTEVES_FEATURE_BANDWIDTH", "ESTEVES_POOL", "S2CNN",
    "S2CNN_ORIGINAL", "S2CNN_SIMPLIFIED", "SHREC17_BRANCHES", "EstevesBlock", "EstevesSphericalCNN",
    "ShiftBatchNorm2d",
]
