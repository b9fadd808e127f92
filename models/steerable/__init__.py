"""3D Steerable CNNs (Weiler, Geiger, Welling, Boomsma, Cohen 2018) in plain ``torch.nn``.

Modules: :mod:`.group` (field types, Wigner D, the induced representation on fields),
:mod:`.kernels` (steerable kernel basis, §4.2/§4.4), :mod:`.layers` (convolution, gated block,
batch norm, capsule dropout, low-pass, invariant pooling, export), :mod:`.nets` (Tetris
network, §5.1; CATH ``SE3ResNet34Small``, §5.4). Cube rotations, Haar rotations, exact voxel
rotation and the low-pass taps are those of :mod:`models.geometry` (re-exported here);
``resample_rotated`` wraps its ``resample_volume``.
"""
from models.geometry import cube_rotations, gaussian_taps, random_rotation, rotate_voxels
from models.steerable.group import (irrep_D, normalize_rs, resample_rotated, rotate_field, rs_dim,
                                    rs_fields, rs_str, wigner_D)
from models.steerable.kernels import (BANDLIMIT_MODES, SteerableKernel, basis_labels,
                                      jmax_per_shell, kernel_basis_at, unit_basis)
from models.steerable.layers import (CapsuleDropout, EquivariantBatchNorm, GatedBlock,
                                     InvariantPool, LowPass3d, SteerableConv3d, export_network)
from models.steerable.nets import (SE3GatedResBlock, SE3ResNet34Small, Shrec17SE3Net, TetrisSE3Net,
                                   multiplicities_to_rs)

__all__ = [
    "cube_rotations", "gaussian_taps", "random_rotation", "rotate_voxels",
    "irrep_D", "normalize_rs", "resample_rotated", "rotate_field", "rs_dim", "rs_fields",
    "rs_str", "wigner_D",
    "BANDLIMIT_MODES", "SteerableKernel", "basis_labels", "jmax_per_shell", "kernel_basis_at",
    "unit_basis",
    "CapsuleDropout", "EquivariantBatchNorm", "GatedBlock", "InvariantPool", "LowPass3d",
    "SteerableConv3d", "export_network",
    "SE3GatedResBlock", "SE3ResNet34Small", "Shrec17SE3Net", "TetrisSE3Net", "multiplicities_to_rs",
]
