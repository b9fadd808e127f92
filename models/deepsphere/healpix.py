r"""HEALPix face coordinates in NESTED order: a base-pixel patch as a square image.

Paper: Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput. 27:130 (2019), §"Baselines"
(the 2D ConvNet sees a partial map as an image); Górski et al. 2005, ApJ 622:759, §4 (NESTED
indexing). Inside one HEALPix base pixel (or one NEST block of a coarser tessellation) the
NEST index interleaves the bits of the two face coordinates,

.. math::  p = \sum_b x_b\, 2^{2b} + y_b\, 2^{2b+1},

so de-interleaving them (HEALPix ``nest2xyf``) turns the ``side²`` pixels of a block into a
``side × side`` grid in which pixels adjacent on the sphere are adjacent (the face is
"flattened"; its curvature is ignored). Pure numpy.
"""
from __future__ import annotations

import numpy as np


def nest_xy(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Face coordinates ``(x, y)`` of the NEST indices ``0 … side²−1`` inside one block.

    ``x`` collects the even bits of the index, ``y`` the odd bits (HEALPix ``nest2xyf``), so
    pixels adjacent on the sphere are adjacent in the ``(x, y)`` grid.

    >>> x, y = nest_xy(4)
    >>> [(int(a), int(b)) for a, b in zip(x[:5], y[:5])]
    [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0)]
    """
    side = int(side)
    if side < 1 or side & (side - 1):
        raise ValueError(f"nest_xy: side must be a power of 2, got {side}")
    p = np.arange(side * side, dtype=np.int64)
    x = np.zeros_like(p)
    y = np.zeros_like(p)
    for b in range(max(1, side.bit_length() - 1)):
        x |= ((p >> (2 * b)) & 1) << b
        y |= ((p >> (2 * b + 1)) & 1) << b
    return x, y


def nest_image_index(side: int) -> np.ndarray:
    """``idx`` with ``image.reshape(-1) = patch[idx]``: row ``y``, column ``x`` of :func:`nest_xy`."""
    x, y = nest_xy(side)
    idx = np.empty(side * side, dtype=np.int64)
    idx[y * side + x] = np.arange(side * side)
    return idx


__all__ = ["nest_xy", "nest_image_index"]
