"""Equivariance error of sphere-graph Laplacians to rotations, per spherical-harmonic degree.

Paper: Defferrard, Milani, Gusset, Perraudin, "DeepSphere: a graph-based spherical CNN", ICLR
2020, fig:equivariance_error (the DeepSphere slides' "Desideratum 1"); protocol of the ICLR
notebook ``HEALPix_equivariance_error.ipynb``. For a graph Laplacian ``L`` on HEALPix, a signal
``f`` of a single degree ``ℓ`` and a rotation ``R``,

.. math::  E(L, f, R) = \\frac{\\lVert R L f - L R f \\rVert_2}{\\lVert L f \\rVert_2},

:func:`models.geometry.relative_error` with ``y = R L f``, ``y_ref = L R f`` and the
denominator ``‖L f‖`` (``scale=Lf``; not ``‖L R f‖``, as the notebook). The figure plots the mean of ``E`` over random signals and
rotations. **Normalisation caveat:** the paper writes the error as ``E[(‖RLf − LRf‖/‖Lf‖)²]``,
but the notebook that produced the figure averages the *non-squared* ratio (its pickles are
named ``‖Lf‖``); :func:`equivariance_ratios` returns the ratios so that both can be formed.

Conventions:

* Maps are real HEALPix maps in NESTED order (as the graphs, :mod:`.graph`).
* A signal of degree ``ℓ`` (:func:`degree_signal`) has i.i.d. Gaussian harmonic coefficients
  ``a_{ℓm}``, ``m = 0 … ℓ`` (real part of ``a_{ℓ0}`` scaled by √2), all others zero, mapped
  with ``healpy.alm2map`` at band limit ``3·Nside − 1``.
* A map is rotated on its harmonic coefficients (:func:`rotate_nest`): NEST → RING,
  ``map2alm`` (``lmax = 3·Nside − 1``, ``iters`` Jacobi iterations, no pixel weights),
  ``Rotator.rotate_alm``, ``alm2map``, RING → NEST. ``L f`` is not band-limited, so part of the
  error is the aliasing of this rotation (it dominates near ``ℓ = 3·Nside``).
* Rotations are ``healpy.Rotator(rot=angles)`` with three angles uniform in [0°, 360°)
  (healpy's default Euler convention, as the notebook; not Haar-uniform).

>>> import numpy as np
>>> L = healpix_graph(4, 8).laplacian("normalized")
>>> r = equivariance_ratios(L, nside=4, degree=3, signals=1, rotations=2,
...                         rng=np.random.default_rng(0))
>>> r.shape, bool(((0 < r) & (r < 2)).all())
((2,), True)
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse as sp

from models.deepsphere.graph import SphereGraph, healpix_graph, healpix_graph_v1
from models.geometry import relative_error

GRAPHS = ("knn", "v1")


def rotate_nest(m: np.ndarray, rot, nside: int, iters: int = 3) -> np.ndarray:
    """Rotate a NEST map by ``rot`` (a ``healpy.Rotator``) through its harmonic coefficients,
    band limit ``3·Nside − 1``, ``map2alm`` with ``iters`` iterations and no pixel weights."""
    import healpy as hp

    lmax = 3 * nside - 1
    alm = hp.map2alm(hp.reorder(m, n2r=True), lmax=lmax, iter=iters, use_pixel_weights=False)
    alm = rot.rotate_alm(alm, lmax=lmax)
    return hp.reorder(hp.alm2map(alm, nside, lmax=lmax), r2n=True)


def degree_signal(nside: int, degree: int, rng: np.random.Generator) -> np.ndarray:
    """A random real NEST map with harmonic content at ``degree`` only (Gaussian ``a_{ℓm}``).

    >>> degree_signal(4, 2, np.random.default_rng(0)).shape
    (192,)
    """
    import healpy as hp

    lmax = 3 * nside - 1
    alm = np.zeros(hp.Alm.getsize(lmax), dtype=np.complex128)
    m = np.arange(degree + 1)
    idx = hp.Alm.getidx(lmax, degree, m)
    coef = rng.standard_normal(degree + 1) + 1j * rng.standard_normal(degree + 1)
    coef[0] = coef[0].real * np.sqrt(2)
    alm[idx] = coef
    return hp.reorder(hp.alm2map(alm, nside, lmax=lmax), r2n=True)


def graph_laplacian(spec: Mapping, nside: int, kind: str = "normalized") -> tuple[sp.csr_matrix, SphereGraph]:
    """The (unscaled) Laplacian of a graph spec on HEALPix ``nside``, and the graph itself.

    ``spec`` is ``{"graph": "v1"}`` (Perraudin et al. 2019, 8 HEALPix neighbours) or
    ``{"graph": "knn", "k": K[, "kernel_width": "optimal" | t]}`` (ICLR 2020 k-NN graph; the
    default graph is ``knn``); ``kind`` is ``"normalized"`` or ``"combinatorial"``.

    >>> L, g = graph_laplacian({"graph": "knn", "k": 8}, 4)
    >>> L.shape, g.k
    ((192, 192), 8)
    """
    kind_graph = spec.get("graph", "knn")
    if kind_graph == "v1":
        g = healpix_graph_v1(nside)
    elif kind_graph == "knn":
        g = healpix_graph(nside, int(spec["k"]), kernel_width=spec.get("kernel_width", "optimal"))
    else:
        raise ValueError(f"graph_laplacian: unknown graph {kind_graph!r} (expected one of {GRAPHS})")
    return g.laplacian(kind), g


def equivariance_ratios(laplacian, nside: int, degree: int, signals: int, rotations: int,
                        rng: np.random.Generator, iters: int = 3):
    """Ratios ``‖R L f − L R f‖ / ‖L f‖`` for ``signals`` random degree-``degree`` maps ``f``
    (:func:`degree_signal`) × ``rotations`` random rotations each.

    ``laplacian`` is one sparse Laplacian (returns an array of ``signals · rotations`` ratios)
    or a mapping ``name → Laplacian`` (returns ``name → array``); all graphs then see the same
    signals and rotations. ``rng`` is consumed in this order: per signal, the signal, then its
    ``(rotations, 3)`` angles ``U[0, 360)``. Ratios are ordered signal-major.
    """
    import healpy as hp

    single = not isinstance(laplacian, Mapping)
    Ls = {None: laplacian} if single else dict(laplacian)
    out: dict = {name: [] for name in Ls}
    for _ in range(int(signals)):
        f = degree_signal(nside, degree, rng)
        rots = [hp.Rotator(rot=list(angles)) for angles in rng.uniform(0, 360, size=(int(rotations), 3))]
        Rf = [rotate_nest(f, rot, nside, iters) for rot in rots]
        for name, L in Ls.items():
            Lf = L @ f
            RLf = np.stack([rotate_nest(Lf, rot, nside, iters) for rot in rots])
            LRf = np.stack([L @ g for g in Rf])
            scale = np.broadcast_to(Lf, RLf.shape)
            out[name].append(relative_error(RLf, LRf, scale=scale, reduction="none"))
    out = {name: np.concatenate(r) if r else np.zeros(0) for name, r in out.items()}
    return out[None] if single else out


__all__ = ["GRAPHS", "rotate_nest", "degree_signal", "graph_laplacian", "equivariance_ratios"]
