"""Surface voxelisation of a triangle mesh, obj2voxel's meaning: the SHREC'17 voxel input of the
steerable CNN.

**Voxel input** (:func:`voxelize_surface`, for the steerable CNN): the reference is
``obj2voxel --size 64 --double`` (github.com/mariogeiger/obj2voxel, called by se3cnn
``util/dataset/shapes.py`` and ``examples/shrec17/train.py``, which then divides by 8). obj2voxel
marks every voxel that a triangle overlaps (exact triangle/box overlap, separating-axis test) —
a *surface* voxelisation, no filling — and ``--double`` does this on a grid of twice the edge and
stores, per output voxel, how many of its 8 sub-cubes are touched (0–8). Here: the same
separating-axis test, vectorised over (triangle, voxel) pairs after splitting large triangles
(exact, the union of the pieces is the triangle), then ``count / 8``: float32 ``(1, n, n, n)`` in
``[0, 1]``, axis 0 = x, 1 = y, 2 = z. ``voxel_double=False`` gives the plain 0/1 surface occupancy.
Grid placement ``voxel_fit``: ``"sphere"`` (default; the centring/scaling/augmentation of the
spherical input, the grid spans ``[−1, 1]³`` so the 0.99 ball fits) or ``"box"`` (obj2voxel's: the
grid is fitted to the axis-aligned bounding box of the rotated mesh, its longest side filling the
grid, centred on the box; this scale changes with the orientation). se3cnn applies its input
low-pass (``low_pass_filter(x, 2)``) in the model here (``Shrec17SE3Net(input_lowpass=True)``).
"""
from __future__ import annotations

import numpy as np

#: the voxeliser splits triangles wider than this many grid cells (speed only: the result is exact)
SPLIT_EXTENT = 12.0


def _split_large(g: np.ndarray, max_extent: float) -> np.ndarray:
    """Split triangles ``(T, 3, 3)`` at their edge midpoints until every bounding box is at most
    ``max_extent`` (grid units) wide; the pieces cover exactly the original triangle."""
    done = []
    while len(g):
        big = np.ptp(g, axis=1).max(1) > max_extent
        done.append(g[~big])
        g = g[big]
        if not len(g):
            break
        a, b, c = g[:, 0], g[:, 1], g[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        g = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return np.concatenate(done) if done else np.zeros((0, 3, 3))


def _sat_axes(g: np.ndarray) -> np.ndarray:
    """The 13 separating axes ``(T, 13, 3)`` of triangle vs. axis-aligned box: the 3 box axes,
    the triangle normal and the 9 cross products of a box axis with a triangle edge."""
    T = len(g)
    edges = np.stack([g[:, 1] - g[:, 0], g[:, 2] - g[:, 1], g[:, 0] - g[:, 2]], 1)  # (T, 3, 3)
    axes = np.zeros((T, 13, 3))
    axes[:, 0, 0] = axes[:, 1, 1] = axes[:, 2, 2] = 1.0
    axes[:, 3] = np.cross(edges[:, 0], edges[:, 1])
    eye = np.eye(3)
    for k in range(3):
        axes[:, 4 + 3 * k: 7 + 3 * k] = np.cross(eye[k][None, None, :], edges)
    return axes


def voxelize_surface(vertices: np.ndarray, faces: np.ndarray, size: int, double: bool = True,
                     fit: str = "sphere", chunk: int = 1 << 18) -> np.ndarray:
    """Surface voxelisation ``(size, size, size)`` uint8 of a triangle mesh, obj2voxel's meaning.

    A voxel (closed cube) is marked when the triangle meets it (separating-axis test: no
    separating axis among the 13 of triangle vs. box; touching counts). ``double``: mark on a grid
    of edge ``2·size`` and return, per output voxel, the number of its 8 sub-cubes marked (0–8;
    ``--double``); else 0/1 on the ``size`` grid. ``fit="sphere"``: the grid spans ``[−1, 1]³``;
    ``fit="box"``: obj2voxel's placement, cube edge = longest side of the vertices' bounding box
    / grid edge, centred on the box. Axis 0 is x.

    >>> v = np.array([[-.5, -.5, .3], [.5, -.5, .3], [0., .5, .3]])  # a flat triangle at z = 0.3
    >>> g = voxelize_surface(v, np.array([[0, 1, 2]]), 4)       # sub-cubes of edge 0.25: z in [0.25, 0.5]
    >>> np.flatnonzero(g.sum((0, 1))).tolist(), int(g.max())     # one layer, at most its 4 sub-cubes
    ([2], 4)
    """
    size = int(size)
    m = 2 * size if double else size
    v = np.asarray(vertices, dtype=np.float64)
    if fit == "sphere":
        origin, h = np.full(3, -1.0), 2.0 / m
    elif fit == "box":
        lo, hi = v.min(0), v.max(0)
        h = float(np.ptp(v, axis=0).max()) / m
        origin = (lo + hi) / 2 - h * m / 2
    else:
        raise ValueError(f"voxel fit must be 'sphere' or 'box', got {fit!r}")
    g = (v[np.asarray(faces, dtype=np.int64)] - origin) / h       # grid units: voxel i = [i, i+1]
    g = _split_large(g, SPLIT_EXTENT)
    # obj2voxel's candidate range: floor(min − 0.1) .. ceil(max + 0.1), clipped to the grid
    lo = np.clip(np.floor(g.min(1) - 0.1), 0, m).astype(np.int64)
    hi = np.clip(np.ceil(g.max(1) + 0.1), 0, m).astype(np.int64)
    ext = np.maximum(hi - lo, 0)
    count = ext.prod(1)
    keep = count > 0
    g, lo, ext, count = g[keep], lo[keep], ext[keep], count[keep]
    occ = np.zeros((m, m, m), dtype=bool)
    axes = _sat_axes(g)                                             # (T, 13, 3)
    proj = np.einsum("tak,tvk->tav", axes, g)                       # (T, 13, 3 vertices)
    rad = 0.5 * np.abs(axes).sum(2)                                 # box half-width 0.5
    # separated along axis a iff L·c < low or L·c > high (touching is overlap, as Akenine-Möller)
    low, high = proj.min(2) - rad, proj.max(2) + rad
    ends = np.cumsum(count)
    start = 0
    while start < len(g):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + chunk, side="right"))
        stop = max(stop, start + 1)
        n = count[start:stop]
        tri = np.repeat(np.arange(start, stop), n)
        q = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        ny, nz = ext[tri, 1], ext[tri, 2]
        ijk = np.stack([lo[tri, 0] + q // (ny * nz), lo[tri, 1] + (q // nz) % ny, lo[tri, 2] + q % nz], 1)
        c = ijk + 0.5
        # the three box axes, then the triangle's plane, then the nine edge axes, each on the survivors
        keep = np.all((c >= low[tri, :3]) & (c <= high[tri, :3]), 1)
        tri, ijk, c = tri[keep], ijk[keep], c[keep]
        for a in range(3, 13):
            lc = np.einsum("pk,pk->p", axes[tri, a], c)
            keep = (lc >= low[tri, a]) & (lc <= high[tri, a])
            tri, ijk, c = tri[keep], ijk[keep], c[keep]
        occ[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
        start = stop
    if not double:
        return occ.astype(np.uint8)
    return occ.reshape(size, 2, size, 2, size, 2).sum((1, 3, 5), dtype=np.uint8)
