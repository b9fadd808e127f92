"""Harmonic Networks (Worrall, Garbin, Turmukhambetov & Brostow 2017) in plain ``torch.nn``.

Modules: :mod:`.layers` (polar ring bases, :class:`HConv2d`, :class:`CReLU`,
:class:`HBatchNorm`, :class:`HMeanPool2d`, :class:`MagnitudeHead`, feature layout and
rotation helpers) and :mod:`.nets` (:class:`HNet`, the MNIST-rot model of §5.1).
"""
from models.harmonic.layers import (BANDWIDTH, CReLU, HBatchNorm, HConv2d, HMeanPool2d,
                                    MagnitudeHead, default_n_angles, from_complex,
                                    ring_basis, ring_radii, rotate_features,
                                    to_complex)
from models.harmonic.nets import HNet

__all__ = [
    "BANDWIDTH", "CReLU", "HBatchNorm", "HConv2d", "HMeanPool2d", "MagnitudeHead",
    "default_n_angles", "from_complex", "ring_basis", "ring_radii",
    "rotate_features", "to_complex", "HNet",
]
