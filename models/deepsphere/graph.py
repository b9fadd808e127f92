"""Sphere graphs for DeepSphere: samplings, k-NN graphs, Laplacians, Chebyshev rescaling.

Paper: Defferrard, Milani, Gusset, Perraudin, "DeepSphere: a graph-based spherical CNN",
ICLR 2020, §"Method" (graph construction, optimal kernel width) and Perraudin, Defferrard,
Kacprzak, Sgier, "DeepSphere: efficient spherical CNN", Astron. & Comput. 27:130 (2019),
§"Graph construction" (the "V1" HEALPix graph). Reference code read for the conventions:
``epfl-lts2/pygsp`` branch ``sphere-graphs`` (``SphereHealpix``, ``NNGraph``) and
``deepsphere/deepsphere-pytorch`` (``prepare_laplacian``).

Conventions, as math:

* A sampling is a set of unit vectors ``x_i ∈ S² ⊂ R³``; distances are chordal,
  ``d_ij = ‖x_i − x_j‖₂``.
* k-NN graph (ICLR "V2"): ``j ~ i`` if ``j`` is among the ``k`` nearest neighbours of ``i``
  (ties at the k-th distance are *all* kept, see :func:`knn_edges`), then symmetrised by
  union (pygsp's ``'fill'``): ``W = max(W_dir, W_dirᵀ)``. Weights are the heat kernel
  ``w_ij = exp(−d_ij² / (4t))``.
* Kernel width ``t``: for HEALPix the published optimal ``σ`` per ``(k, Nside)`` (pygsp
  ``_OPTIMAL_KERNEL_WIDTHS``, ICLR ``figures/kernel_widths.py``), whose kernel is
  ``exp(−ln2 · d²/σ²)``, hence ``t = σ² / (4 ln 2)``; below Nside 32 ``σ(Nside) = σ(32)·32/Nside``
  and above the last tabulated Nside ``σ`` halves per doubling of Nside. For other samplings
  (or ``kernel_width="mean"``) the heuristic ``t = mean(d²)/2`` over the k-NN edges, i.e.
  ``w = exp(−d²/(2·mean d²))`` (the V1 rule, "half the average squared distance").
* Laplacians: combinatorial ``L = D − W``; normalised ``L = I − D^{-1/2} W D^{-1/2}``
  (both symmetric positive semi-definite).
* Chebyshev rescaling: ``L̃ = 2L/λ_max − I`` so that the spectrum lies in ``[−1, 1]``; with
  ``lmax_factor = f`` and ``spectrum_scale = s``, ``L̃ = 2s·L/(f·λ_max) − I`` with ``λ_max``
  the Lanczos value itself, spectrum ``[−1, 2s/f − 1]`` (deepsphere-cosmo-tf1
  ``models.chebyshev5``: ``rescale_L(L, lmax=1.02·λ_max, scale=0.75)``, i.e. ``[−1, 0.4706]``;
  deepsphere-tf1 ``utils.build_laplacians``: ``f = 1.02``, ``s = 1``).
* HEALPix pixels are in NESTED order; a *partial* sphere of order ``o`` (``o`` a power of 2,
  ``o ≤ Nside``) is one of the ``12·o²`` contiguous NEST blocks of ``(Nside/o)²`` pixels: the
  pixels under base pixel ``base_index`` of the order-``o`` tessellation (1/12, 1/48, 1/192 of
  the sphere for ``o = 1, 2, 4``).

Everything is sparse (``scipy.sparse`` CSR, ``scipy.spatial.cKDTree`` on unit vectors,
queried in chunks), so that a full Nside = 1024 graph (12.6 M vertices) fits in a few GiB.

>>> g = healpix_graph(4, k=8)
>>> g.n, g.W.shape, bool(abs(g.W - g.W.T).max() == 0)
(192, (192, 192), True)
>>> L = laplacian(g.W, "combinatorial")
>>> float(abs(L @ np.ones(g.n)).max()) < 1e-12
True
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

LAPLACIANS = ("combinatorial", "normalized")

#: Published optimal kernel widths σ per k and Nside (pygsp ``_OPTIMAL_KERNEL_WIDTHS``, ICLR
#: ``figures/kernel_widths.py``; anchors-sphere.md §1). Kernel ``exp(−ln2·d²/σ²)``.
#: k = 40 and 60 stop at Nside 256; larger Nside are extrapolated (σ halves per doubling).
OPTIMAL_SIGMA: dict[int, dict[int, float]] = {
    8: {32: 0.02500, 64: 0.01228, 128: 0.00614, 256: 0.00307, 512: 0.00154, 1024: 0.00077},
    20: {32: 0.03185, 64: 0.01564, 128: 0.00782, 256: 0.00391, 512: 0.00196, 1024: 0.00098},
    40: {32: 0.042432, 64: 0.021354, 128: 0.010595, 256: 0.005551},
    60: {32: 0.051720, 64: 0.025403, 128: 0.012695, 256: 0.006351},
}


# --------------------------------------------------------------------------------------
# Samplings (unit vectors)
# --------------------------------------------------------------------------------------

def _check_nside(nside: int) -> int:
    nside = int(nside)
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"HEALPix Nside must be a power of 2 (NESTED ordering), got {nside}")
    return nside


def healpix_pixels(nside: int, order: int | None = None, base_index: int = 0) -> np.ndarray:
    """NEST pixel indices of the full sphere (``order=None``) or of one partial-sphere block.

    Block ``base_index`` of order ``o`` holds NEST pixels
    ``[base_index·(Nside/o)², (base_index+1)·(Nside/o)²)`` (the pixels under that base pixel of
    the Nside = ``o`` tessellation; cosmo-tf1 ``hp_split``).

    >>> healpix_pixels(4, order=2, base_index=3)
    array([12, 13, 14, 15])
    """
    nside = _check_nside(nside)
    if order is None:
        return np.arange(12 * nside * nside, dtype=np.int64)
    order = int(order)
    if order < 1 or order & (order - 1) or order > nside:
        raise ValueError(f"partial-sphere order must be a power of 2 with 1 <= order <= Nside "
                         f"({nside}), got {order}")
    if not 0 <= int(base_index) < 12 * order * order:
        raise ValueError(f"base_index must be in [0, {12 * order * order}) for order {order}, "
                         f"got {base_index}")
    block = (nside // order) ** 2
    return np.arange(int(base_index) * block, (int(base_index) + 1) * block, dtype=np.int64)


def healpix_vectors(nside: int, order: int | None = None, base_index: int = 0) -> np.ndarray:
    """Unit vectors ``(n, 3)`` (float64) of HEALPix pixel centres in NEST order."""
    import healpy as hp

    pix = healpix_pixels(nside, order, base_index)
    out = np.empty((len(pix), 3))  # filled column by column: np.stack(..., axis=1) is 10x slower
    out[:, 0], out[:, 1], out[:, 2] = hp.pix2vec(int(nside), pix, nest=True)
    return out


def equiangular_vectors(bandwidth: int) -> np.ndarray:
    """Driscoll–Healy / SOFT grid of bandwidth ``b``: ``2b × 2b`` points (colatitude major),
    ``θ_j = π(2j+1)/(4b)``, ``φ_k = 2πk/(2b)`` (the s2cnn / DeepSphere SHREC17 grid)."""
    b = int(bandwidth)
    if b < 1:
        raise ValueError(f"equiangular bandwidth must be >= 1, got {bandwidth}")
    theta = np.pi * (2 * np.arange(2 * b) + 1) / (4 * b)
    phi = 2 * np.pi * np.arange(2 * b) / (2 * b)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    return np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)


_ICO_FACES = np.array([
    [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
    [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
    [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])


def icosahedral_vectors(level: int) -> np.ndarray:
    """Vertices of the icosahedron subdivided ``level`` times (``10·4^level + 2`` points).

    Each subdivision appends the edge midpoints (projected onto the sphere) after the existing
    vertices, so the first ``10·4^(l−1) + 2`` vertices are the level ``l − 1`` mesh: pooling
    keeps a prefix (deepsphere-pytorch ``icosahedron_pool_unpool``; UGSCNN meshes).
    """
    return icosahedral_hierarchy(level)[0].copy()


def icosahedral_size(level: int) -> int:
    """Number of vertices ``10·4^level + 2`` of the level-``level`` icosahedral mesh.

    >>> [icosahedral_size(l) for l in range(6)]
    [12, 42, 162, 642, 2562, 10242]
    """
    return 10 * 4 ** int(level) + 2


@functools.lru_cache(maxsize=8)
def _icosahedron(level: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    level = int(level)
    if level < 0:
        raise ValueError(f"icosahedral level must be >= 0, got {level}")
    phi = (1 + 5 ** 0.5) / 2
    v = [(-1, phi, 0), (1, phi, 0), (-1, -phi, 0), (1, -phi, 0), (0, -1, phi), (0, 1, phi),
         (0, -1, -phi), (0, 1, -phi), (phi, 0, -1), (phi, 0, 1), (-phi, 0, -1), (-phi, 0, 1)]
    verts = [np.asarray(p, dtype=np.float64) / np.linalg.norm(p) for p in v]
    faces = _ICO_FACES.tolist()
    parents = []
    for _ in range(level):
        mid: dict[tuple[int, int], int] = {}

        def midpoint(a: int, b: int) -> int:
            key = (a, b) if a < b else (b, a)
            if key not in mid:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                mid[key] = len(verts) - 1
            return mid[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
        edges = np.array(sorted(mid, key=mid.get), dtype=np.int64).reshape(-1, 2)
        parents.append(edges)  # row j: the two coarse endpoints of new vertex n_coarse + j
    out = np.stack(verts)
    out.setflags(write=False)
    for e in parents:
        e.setflags(write=False)
    return out, tuple(parents)


def icosahedral_hierarchy(level: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Vertices of level ``level`` and, per subdivision ``l = 1 … level``, the parents of the
    vertices it adds.

    ``parents[l − 1]`` is an int64 array ``(n_l − n_{l−1}, 2)``: row ``j`` holds the two level
    ``l − 1`` vertices whose (normalised) midpoint is vertex ``n_{l−1} + j`` (``n_l`` =
    :func:`icosahedral_size`). Vertex order nests: the first ``n_{l−1}`` vertices of level ``l``
    are level ``l − 1``. Read-only arrays (cached in-process).

    >>> v, parents = icosahedral_hierarchy(2)
    >>> v.shape, [p.shape for p in parents]
    ((162, 3), [(30, 2), (120, 2)])
    >>> m = v[parents[0][0]].sum(0); bool(np.allclose(v[12], m / np.linalg.norm(m)))
    True
    """
    v, parents = _icosahedron(int(level))
    return v, parents


def lonlat_vectors(lon, lat, degrees: bool = True) -> np.ndarray:
    """Unit vectors of arbitrary points given by longitude and latitude arrays (e.g. stations)."""
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if lon.shape != lat.shape:
        raise ValueError(f"lon and lat must have the same length, got {lon.size} and {lat.size}")
    if degrees:
        lon, lat = np.radians(lon), np.radians(lat)
    if np.any(np.abs(lat) > np.pi / 2 + 1e-12):
        raise ValueError("latitudes must lie in [-90°, 90°]")
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


# --------------------------------------------------------------------------------------
# k-NN graphs
# --------------------------------------------------------------------------------------

def knn_edges(coords: np.ndarray, k: int, tie_rtol: float | None = 1e-9, chunk: int = 1 << 18,
              workers: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed k-NN edges ``(rows, cols, dist)`` of a point set, self excluded, grouped by row
    (ascending) and by distance within a row.

    Ties: every point at distance ``≤ d_k·(1 + tie_rtol)`` from ``i`` is kept, where ``d_k``
    is the k-th smallest distance, so vertex ``i`` may get more than ``k`` neighbours. This
    makes the neighbour sets a function of the (rounded) distances only, independent of the
    order in which the tree returns equidistant points, so a graph on a sampling that is
    invariant under a rotation (HEALPix and 90° about the pole) is *exactly* invariant too.
    ``tie_rtol=None`` keeps exactly ``k`` (arbitrary tie-breaking; not equivariant).
    See :func:`_knn_csr` for the algorithm; ``chunk`` bounds the query memory.
    """
    indptr, cols, dist = _knn_csr(coords, k, tie_rtol, chunk, workers)
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=cols.dtype), np.diff(indptr))
    return rows, cols, dist


def _knn_csr(coords: np.ndarray, k: int, tie_rtol: float | None = 1e-9, chunk: int = 1 << 18,
             workers: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges of :func:`knn_edges` in CSR form ``(indptr, cols, dist)``.

    One ``cKDTree`` (its default balanced build: at Nside 1024 the unbalanced one builds in
    1.3 s instead of 3.2 s but queries ~10 % slower, a wash, and it would change the arbitrary
    tie order of ``tie_rtol=None``); each chunk of points is queried for ``m = k + 2`` neighbours
    (itself, the k nearest and one more, to see whether the (k+1)-th ties with the k-th), within
    a distance bound of 1.5 × the largest m-th neighbour distance of the chunks before (the
    tree prunes more: −17 % query time at Nside 1024). Rows with fewer than ``m`` points inside
    the bound, and rows whose last returned neighbour is still a tie (a fraction of a percent on
    HEALPix), are queried again without bound for ``2m``, ``4m`` … neighbours; so the result is
    exact whatever the bound (which is dropped after a chunk with > 10 % such rows). The kept
    neighbours of a row are a prefix of its sorted distances, so they go straight into the
    row's CSR slots.
    """
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coords must be (n, 3) unit vectors, got shape {coords.shape}")
    n = coords.shape[0]
    k = int(k)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n-1] = [1, {n - 1}], got {k}")
    tree = cKDTree(coords)
    idx_dtype = np.int32 if n < 2 ** 31 else np.int64
    counts = np.empty(n, dtype=np.int64)
    col_parts, dist_parts = [], []
    bound = np.inf
    for s in range(0, n, chunk):
        q = coords[s:s + chunk]
        m = min(k + 1 if tie_rtol is None else k + 2, n)
        todo = np.arange(len(q))
        first, again = None, []  # the first query round; (rows, kept prefix, ids, dists) of later ones
        while len(todo):
            d, j = tree.query(q[todo], k=m, workers=workers,
                              distance_upper_bound=bound if first is None else np.inf)
            # the query point itself is at distance 0, hence first; anything else at 0 is a copy
            if np.any(d[:, 1] == 0):
                raise ValueError("knn graph: duplicate points in the sampling")
            d, j = d[:, 1:], j[:, 1:]
            short = np.isinf(d[:, -1])  # fewer than m points within the bound
            if tie_rtol is None:
                keep = np.zeros(d.shape, dtype=bool)
                keep[:, :k] = True
                done = ~short
            else:
                keep = d <= d[:, k - 1:k] * (1 + tie_rtol)
                # rows whose last returned neighbour is still a tie may have more: query again
                done = (~keep[:, -1] | (m >= n)) & ~short
            keep &= done[:, None]
            if first is None and m < n and tie_rtol is not None:  # None: the tree's order, as always
                bound = np.inf if short.mean() > 0.1 else max(
                    bound if np.isfinite(bound) else 0.0, 1.5 * float(d[~short, -1].max(initial=0.0)))
            counts[s + todo[done]] = keep[done].sum(axis=1)
            if first is None:
                first = (keep, j, d)
            else:
                again.append((todo[done], keep[done], j[done], d[done]))
            todo = todo[~done]
            m = min(2 * m, n)
        keep, j, d = first
        if not again:  # the usual case: rows in order, each a prefix of its sorted neighbours
            col_parts.append(j[keep].astype(idx_dtype))
            dist_parts.append(d[keep])
            continue
        n_row = counts[s:s + len(q)]
        cols = np.empty(int(n_row.sum()), dtype=idx_dtype)
        dist = np.empty(len(cols), dtype=np.float64)
        later = np.zeros(len(q), dtype=bool)
        for rows, *_ in again:
            later[rows] = True
        slots = ~np.repeat(later, n_row)  # the CSR slots of the rows done in the first round
        cols[slots], dist[slots] = j[keep], d[keep]
        start = np.cumsum(n_row) - n_row
        for rows, keep, j, d in again:
            r, c = np.nonzero(keep)  # c = rank within the row (keep is a prefix)
            cols[start[rows[r]] + c], dist[start[rows[r]] + c] = j[r, c], d[r, c]
        col_parts.append(cols)
        dist_parts.append(dist)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.concatenate(col_parts), np.concatenate(dist_parts)


def _symmetrize(W_dir: sp.csr_matrix) -> sp.csr_matrix:
    """``W = max(W_dir, W_dirᵀ)`` (union of edges, pygsp ``symmetrize(method='fill')``), CSR
    with sorted indices; ``W_dir`` may have unsorted rows (scipy merges them in linear time)."""
    W = W_dir.maximum(W_dir.T.tocsr())  # transposition: a linear counting sort
    W.sort_indices()  # rows of ~k entries
    return W


@dataclass
class SphereGraph:
    """A weighted undirected graph on points of the sphere.

    ``coords`` (n, 3) unit vectors; ``W`` symmetric CSR weight matrix; ``t`` the heat-kernel
    width (``w = exp(−d²/4t)``; ``nan`` for non-Gaussian weights); ``k`` neighbours;
    ``kernel_rule`` says how ``t`` was chosen; ``name`` for tables.
    """

    coords: np.ndarray
    W: sp.csr_matrix
    k: int
    t: float
    kernel_rule: str
    name: str

    @property
    def n(self) -> int:
        return self.W.shape[0]

    def laplacian(self, kind: str = "normalized") -> sp.csr_matrix:
        return laplacian(self.W, kind)


def optimal_kernel_width(k: int, nside: int) -> tuple[float, float, str]:
    """``(σ, t, rule)`` for HEALPix with ``k`` neighbours at ``nside``; ``t = σ²/(4 ln 2)``.

    >>> s, t, rule = optimal_kernel_width(8, 32)
    >>> round(t, 7), rule
    (0.0002254, 'published optimal sigma (k=8, Nside=32)')
    """
    nside = _check_nside(nside)
    if k not in OPTIMAL_SIGMA:
        raise ValueError(f"no published optimal kernel width for k={k} (known: "
                         f"{sorted(OPTIMAL_SIGMA)}); pass kernel_width='mean' or a number t")
    table = OPTIMAL_SIGMA[k]
    lo, hi = min(table), max(table)
    if nside in table:
        sigma, rule = table[nside], f"published optimal sigma (k={k}, Nside={nside})"
    elif nside < lo:
        sigma = table[lo] * lo / nside
        rule = f"sigma(Nside={lo})*{lo}/Nside, extrapolated (k={k}, Nside={nside})"
    else:
        sigma = table[hi] * hi / nside
        rule = f"sigma(Nside={hi})*{hi}/Nside, extrapolated (k={k}, Nside={nside})"
    return sigma, sigma ** 2 / (4 * math.log(2)), rule


def knn_graph(coords: np.ndarray, k: int, kernel_width: float | str = "mean", name: str = "knn",
              tie_rtol: float | None = 1e-9) -> SphereGraph:
    """Symmetric k-NN heat-kernel graph on arbitrary unit vectors (``k`` is capped at ``n − 1``).

    ``kernel_width``: a number ``t`` (weights ``exp(−d²/4t)``), ``"mean"`` for the
    heuristic ``t = mean(d²)/2`` over the directed k-NN edges, or ``"mean_distance"``: the
    default of pygsp's ``NNGraph`` (branch ``sphere-graphs``), kernel width = mean k-NN distance
    in ``exp(−d²/width)``, i.e. ``t = mean(d)/4`` (the ICLR climate graph's "t = mean distance"),
    or ``"inverse_distance"``: ``w = 1/d`` (Khasanova & Frossard; the ICLR SHREC'17 equiangular
    graph, k = 4).
    """
    n = len(coords)
    if n == 1:  # a single vertex (tiny pooled level): no edges, L = 0
        return SphereGraph(coords, sp.csr_matrix((1, 1)), 0, float("nan"), "no edges (1 vertex)", name)
    k = min(int(k), n - 1)  # tiny levels (n <= k) become complete graphs
    indptr, cols, d = _knn_csr(coords, k, tie_rtol=tie_rtol)

    def symmetric(w):
        return _symmetrize(sp.csr_matrix((w, cols, indptr), shape=(n, n)))

    if kernel_width == "inverse_distance":  # Khasanova & Frossard 2017; the ICLR SHREC'17 equiangular graph
        W = symmetric(1.0 / np.maximum(d, 1e-12))
        return SphereGraph(coords, W, int(k), float("nan"), "inverse distance w = 1/d", name)
    if kernel_width == "mean_distance":
        t = float(d.mean()) / 4
        rule = "pygsp NNGraph default: w = exp(-d^2/mean(d)), t = mean(d)/4"
    elif kernel_width != "mean":
        if isinstance(kernel_width, str):
            raise ValueError(f"kernel_width must be a number t, 'mean', 'mean_distance' or "
                             f"'inverse_distance', got {kernel_width!r}")
        t = float(kernel_width)
        if not t > 0:
            raise ValueError(f"kernel width t must be > 0, got {t}")
        rule = "given t"
    w = np.multiply(d, d, out=d)  # d² in place: at Nside 1024 each temporary is 0.8 GB
    del d
    if kernel_width == "mean":
        t = float(w.mean()) / 2
        rule = "mean heuristic t = mean(d^2)/2"
    np.negative(w, out=w)  # w = exp(−d²/(4t)), the same operations in place
    np.divide(w, 4 * t, out=w)
    np.exp(w, out=w)
    W = symmetric(w)
    return SphereGraph(coords, W, int(k), t, rule, name)


def healpix_graph(nside: int, k: int = 8, order: int | None = None, base_index: int = 0,
                  kernel_width: float | str = "optimal", tie_rtol: float | None = 1e-9) -> SphereGraph:
    """The ICLR 2020 ("V2") HEALPix k-NN graph, NEST order, full or partial sphere.

    ``kernel_width``: ``"optimal"`` (published σ table, see :data:`OPTIMAL_SIGMA`),
    ``"mean"`` (heuristic) or a number ``t``.
    """
    coords = healpix_vectors(nside, order, base_index)
    part = "" if order is None else f", order {order} block {base_index}"
    if kernel_width == "optimal":
        _, t, rule = optimal_kernel_width(k, nside)
        g = knn_graph(coords, k, t, tie_rtol=tie_rtol)
        g.kernel_rule = rule
    else:
        g = knn_graph(coords, k, kernel_width, tie_rtol=tie_rtol)
    g.name = f"healpix knn k={k} Nside={nside}{part}"
    return g


def healpix_graph_v1(nside: int, order: int | None = None, base_index: int = 0) -> SphereGraph:
    """Perraudin et al. 2019 ("V1") HEALPix graph: each pixel joined to its 8 HEALPix
    neighbours (7 at some corners; ``healpy.get_all_neighbours``), weights
    ``exp(−d²/(2·mean d²))`` (cosmo-tf1 ``utils.healpix_weightmatrix``), i.e. ``t = mean(d²)/2``.
    Use it with the normalised Laplacian, as in the paper.
    """
    import healpy as hp

    nside = _check_nside(nside)
    pix = healpix_pixels(nside, order, base_index)
    coords = healpix_vectors(nside, order, base_index)
    neigh = hp.get_all_neighbours(nside, pix, nest=True)  # (8, n), -1 where missing
    first = int(pix[0])
    rows = np.broadcast_to(np.arange(len(pix)), neigh.shape)
    local = neigh - first
    keep = (neigh >= 0) & (local >= 0) & (local < len(pix))
    rows, cols = rows[keep], local[keep]
    d2 = np.sum((coords[rows] - coords[cols]) ** 2, axis=1)
    t = float(d2.mean()) / 2 if d2.size else 1.0  # a one-pixel block has no edges
    W = _symmetrize(sp.csr_matrix((np.exp(-d2 / (4 * t)), (rows, cols)), shape=(len(pix), len(pix))))
    part = "" if order is None else f", order {order} block {base_index}"
    return SphereGraph(coords, W, 8, t, "V1: t = mean(d^2)/2 over HEALPix neighbours",
                       f"healpix V1 Nside={nside}{part}")


def equiangular_graph(bandwidth: int, k: int = 4, kernel_width: float | str = "mean") -> SphereGraph:
    """k-NN heat-kernel graph on the Driscoll–Healy grid of bandwidth ``b``."""
    g = knn_graph(equiangular_vectors(bandwidth), k, kernel_width)
    g.name = f"equiangular knn k={k} b={bandwidth}"
    return g


def icosahedral_graph(level: int, k: int = 6, kernel_width: float | str = "mean") -> SphereGraph:
    """k-NN heat-kernel graph on the subdivided icosahedron (ICLR climate: k = 6, "t = mean
    distance", i.e. ``kernel_width="mean_distance"``, which :class:`~.nets.DeepSphereUNet` uses)."""
    g = knn_graph(icosahedral_vectors(level), k, kernel_width)
    g.name = f"icosahedral knn k={k} level={level}"
    return g


def points_graph(lon, lat, k: int = 5, kernel_width: float | str = "mean",
                 degrees: bool = True) -> SphereGraph:
    """k-NN heat-kernel graph on arbitrary points (e.g. GHCN stations, ICLR: k = 5)."""
    g = knn_graph(lonlat_vectors(lon, lat, degrees), k, kernel_width)
    g.name = f"points knn k={k} n={g.n}"
    return g


# --------------------------------------------------------------------------------------
# Laplacians and Chebyshev rescaling
# --------------------------------------------------------------------------------------

def laplacian(W: sp.spmatrix, kind: str = "normalized") -> sp.csr_matrix:
    """``"combinatorial"``: ``L = D − W``; ``"normalized"``: ``L = I − D^{-1/2} W D^{-1/2}``
    (isolated vertices get ``L_ii = 0`` in the normalised case)."""
    if kind not in LAPLACIANS:
        raise ValueError(f"unknown Laplacian '{kind}' (choose from {', '.join(LAPLACIANS)})")
    W = sp.csr_matrix(W)
    if not W.has_canonical_format:  # one sorted entry per (i, j) (all graphs built here are)
        W = W.copy()
        W.sum_duplicates()
    deg = np.asarray(W.sum(axis=1)).ravel()
    n = W.shape[0]
    if kind == "combinatorial":
        L = sp.diags(deg, format="csr") - W
    else:
        with np.errstate(divide="ignore"):
            s = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
        rows = np.repeat(np.arange(n, dtype=W.indices.dtype), np.diff(W.indptr))
        # w_ij · (s_i s_j): the product s_i s_j commutes exactly, so L stays exactly symmetric;
        # computed on W's CSR arrays (no COO round trip, which sorts again), in place
        N = s[rows]
        N *= s[W.indices]
        N *= W.data
        N = sp.csr_matrix((N, W.indices, W.indptr), shape=W.shape)
        L = sp.diags((deg > 0).astype(W.dtype), format="csr") - N
    L = L.tocsr()
    L.sort_indices()
    assert L.shape == (n, n)
    return L


def largest_eigenvalue(L: sp.spmatrix, kind: str | None = None, method: str = "eigsh",
                       tol: float = 1e-3) -> float:
    """An upper estimate of ``λ_max(L)``.

    ``"eigsh"``: Lanczos (``scipy.sparse.linalg.eigsh``, deterministic start vector), times
    ``1 + 2·tol`` so that it bounds the true value (deepsphere-pytorch ``prepare_laplacian``);
    ``tol=0``: to machine precision, no margin (scipy's default, what deepsphere-tf1 calls).
    ``"bound"``: 2 for the normalised Laplacian; ``2·max_i d_i`` (Gershgorin) for the
    combinatorial one (``kind`` must be given).
    """
    if method == "bound":
        if kind == "normalized":
            return 2.0
        if kind == "combinatorial":
            return float(2 * L.diagonal().max())
        raise ValueError("largest_eigenvalue(method='bound') needs kind='normalized' or 'combinatorial'")
    if method != "eigsh":
        raise ValueError(f"unknown lmax method '{method}' (choose eigsh or bound)")
    from scipy.sparse.linalg import eigsh
    from threadpoolctl import threadpool_limits

    n = L.shape[0]
    if n <= 64:
        return float(np.linalg.eigvalsh(L.toarray()).max()) * (1 + 2 * tol)
    v0 = np.random.default_rng(0).standard_normal(n)
    # ARPACK makes many small dense BLAS calls: one thread is faster than two (5x at Nside 128
    # on a shared 2-core machine), and the result no longer depends on the machine's thread
    # count (threaded BLAS sums in another order: the last bits of λ_max moved)
    with threadpool_limits(1, user_api="blas"):
        lam = eigsh(L, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0]
    return float(lam) * (1 + 2 * tol)


def rescale_laplacian(L: sp.spmatrix, lmax: float, scale: float = 1.0) -> sp.csr_matrix:
    """``L̃ = 2·scale·L/λ_max − I`` (Defferrard et al. 2016; ASCOM eq. for the Chebyshev basis;
    ``scale`` < 1 is deepsphere-cosmo-tf1 ``utils.rescale_L``'s ``scale``)."""
    n = L.shape[0]
    if not float(scale) > 0:
        raise ValueError(f"spectrum scale must be > 0, got {scale}")
    out = (2.0 * float(scale) / float(lmax)) * sp.csr_matrix(L) - sp.identity(n, dtype=L.dtype, format="csr")
    out = out.tocsr()
    out.sort_indices()
    return out


def resolve_lmax(L: sp.spmatrix, kind: str, lmax: float | str = "auto") -> float:
    """``lmax``: a number, ``"eigsh"``, ``"bound"`` or ``"auto"`` (eigsh up to 2²⁰ vertices,
    the bound above, where Lanczos would take minutes)."""
    if isinstance(lmax, str):
        if lmax == "auto":
            lmax = "eigsh" if L.shape[0] <= 2 ** 20 else "bound"
        lam = largest_eigenvalue(L, kind, method=lmax)
        return lam if lam > 0 else 2.0  # edgeless graph: L = 0, L̃ = −I for any λ_max > 0
    if not float(lmax) > 0:
        raise ValueError(f"lmax must be > 0, got {lmax}")
    return float(lmax)


def to_torch_sparse(M: sp.spmatrix, dtype=None):
    """A scipy sparse matrix as a ``torch.sparse_csr`` tensor (int64 indices)."""
    import torch

    M = sp.csr_matrix(M)
    M.sort_indices()
    dtype = dtype or torch.get_default_dtype()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(M.indptr.astype(np.int64)),
                                       torch.from_numpy(M.indices.astype(np.int64)),
                                       torch.from_numpy(M.data).to(dtype), M.shape,
                                       check_invariants=False)


def reference_lmax(L: sp.spmatrix, kind: str, lmax: float | str, factor: float) -> float:
    """``factor · λ_max`` as deepsphere-cosmo-tf1 / deepsphere-tf1 compute it:
    ``1.02 * eigsh(L, k=1, which='LM')`` — Lanczos to machine precision (``tol=0``), without the
    ``1 + 2·tol`` margin of :func:`largest_eigenvalue`. ``lmax``: ``"auto"`` / ``"eigsh"``
    (``"auto"``: the bound above 2²⁰ vertices, as :func:`resolve_lmax`), ``"bound"`` or a number."""
    if not float(factor) > 0:
        raise ValueError(f"lmax_factor must be > 0, got {factor}")
    if isinstance(lmax, str):
        method = ("eigsh" if L.shape[0] <= 2 ** 20 else "bound") if lmax == "auto" else lmax
        if method == "eigsh":
            lam = largest_eigenvalue(L, kind, method="eigsh", tol=0.0)
        else:
            lam = largest_eigenvalue(L, kind, method=method)
        lam = lam if lam > 0 else 2.0
    else:
        lam = float(lmax)
        if not lam > 0:
            raise ValueError(f"lmax must be > 0, got {lmax}")
    return float(factor) * lam


def chebyshev_operator(W: sp.spmatrix, kind: str = "normalized", lmax: float | str = "auto",
                       lmax_factor: float | None = None, spectrum_scale: float = 1.0):
    """``L̃ = 2·s·L/λ − I`` from a weight matrix, as a ``torch.sparse_csr`` float64 tensor, and the
    ``λ`` used. Default (``lmax_factor=None``, ``s = 1``): ``λ`` = :func:`resolve_lmax`, spectrum in
    ``[−1, 1]``. ``lmax_factor = f``: ``λ = f·λ_max`` (:func:`reference_lmax`), spectrum in
    ``[−1, 2s/f − 1]`` — the cosmology reference's ``f = 1.02``, ``s = 0.75`` gives ``[−1, 0.4706]``."""
    import torch

    L = laplacian(W, kind)
    lam = resolve_lmax(L, kind, lmax) if lmax_factor is None else reference_lmax(L, kind, lmax, lmax_factor)
    return to_torch_sparse(rescale_laplacian(L, lam, spectrum_scale), torch.float64), lam


@functools.lru_cache(maxsize=32)
def healpix_laplacian(nside: int, k: int = 8, order: int | None = None, base_index: int = 0,
                      kind: str = "normalized", graph: str = "knn",
                      kernel_width: float | str = "optimal", lmax: float | str = "auto",
                      lmax_factor: float | None = None, spectrum_scale: float = 1.0):
    """Cached rescaled Laplacian ``L̃`` (``torch.sparse_csr``, float64) of a HEALPix graph
    (``lmax``, ``lmax_factor``, ``spectrum_scale``: :func:`chebyshev_operator`).

    ``graph="knn"`` (ICLR V2, ``k`` neighbours) or ``"v1"`` (Perraudin et al., ``k`` ignored).
    Cached per argument tuple in-process, so building a model twice is cheap; call
    :func:`clear_graph_cache` to free memory.
    """
    if graph == "knn":
        g = healpix_graph(nside, k, order, base_index, kernel_width)
    elif graph == "v1":
        g = healpix_graph_v1(nside, order, base_index)
    else:
        raise ValueError(f"unknown HEALPix graph '{graph}' (choose knn or v1)")
    op, _ = chebyshev_operator(g.W, kind, lmax, lmax_factor, spectrum_scale)
    return op


@functools.lru_cache(maxsize=32)
def icosahedral_laplacian(level: int, k: int = 6, kind: str = "normalized",
                          kernel_width: float | str = "mean_distance", lmax: float | str = "auto"):
    """Cached rescaled Laplacian ``L̃`` (``torch.sparse_csr``, float64) of the level-``level``
    icosahedral k-NN graph (:func:`icosahedral_graph`; ICLR climate: k = 6, t = mean distance)."""
    op, _ = chebyshev_operator(icosahedral_graph(level, k, kernel_width).W, kind, lmax)
    return op


def clear_graph_cache() -> None:
    healpix_laplacian.cache_clear()
    icosahedral_laplacian.cache_clear()


def healpix_rotation_permutation(nside: int, quarter_turns: int = 1) -> np.ndarray:
    """Pixel permutation of a rotation by ``quarter_turns·90°`` about the polar (z) axis.

    ``perm[i]`` is the NEST pixel onto which the centre of pixel ``i`` is rotated (found with
    ``healpy.ang2pix`` at ``φ + q·π/2``). A rotated signal is ``(R f)[perm[i]] = f[i]``; a
    graph operator commutes with the rotation iff ``L[perm][:, perm] = L``. HEALPix is invariant
    under these rotations, so ``perm`` is a bijection (checked; ``ValueError`` otherwise).
    """
    import healpy as hp

    nside = _check_nside(nside)
    pix = np.arange(12 * nside * nside)
    theta, phi = hp.pix2ang(nside, pix, nest=True)
    perm = hp.ang2pix(nside, theta, phi + quarter_turns * np.pi / 2, nest=True)
    if len(np.unique(perm)) != len(pix):
        raise ValueError(f"rotation does not permute the HEALPix pixels at Nside {nside}")
    return perm.astype(np.int64)
