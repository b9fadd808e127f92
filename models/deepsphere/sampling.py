"""One sampling type for the sphere: ``"healpix:32"``, ``"ico:5"``, ``"equiangular:64"``,
``"points"``, ``"native"`` — parsed and validated once, for datamodules, nets and scripts alike.

A :class:`Sampling` knows its vertices (unit vectors in the networks' vertex order), its size,
its pooling hierarchy (the levels a net's pooling visits, and the pool / unpool modules between
them), its graph defaults (k, kernel width) and its graph operator per level.

Kinds:

* ``healpix:NSIDE`` — HEALPix in NEST order (:func:`~.graph.healpix_vectors`), Nside a power of 2;
  pooling halves Nside (:class:`~.layers.HealpixPool`, 4 children per parent).
* ``ico:L`` — the icosahedron subdivided L times (:func:`~.graph.icosahedral_vectors`,
  ``10·4^L + 2`` vertices, nested); pooling goes one level down (:class:`~.layers.IcosahedralPool`).
* ``equiangular:B`` — the Driscoll–Healy ``2B × 2B`` grid of bandwidth B
  (:func:`~.graph.equiangular_vectors`); pooling halves B (:class:`~.layers.EquiangularPool`, 2 × 2).
* ``points`` — an arbitrary point set given as coordinates (a net's graph on, e.g., CAM-SE
  columns); no pooling: every level is the same graph.
* ``native`` — the data's own points, kept as each file holds them (a datamodule option; the
  net then runs on ``points`` with the files' coordinates).

Who accepts which kinds is the ``allowed`` argument of :meth:`Sampling.parse`; anything else is
one :class:`ValueError` naming the value and the accepted forms (datamodules and scripts turn it
into their one ``error:`` line).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: the accepted forms, as the error message lists them
FORMS = {"healpix": "healpix:NSIDE", "ico": "ico:L", "equiangular": "equiangular:B",
         "points": "points", "native": "native"}
#: kinds with a fixed vertex set
SPHERES = ("healpix", "ico", "equiangular")
#: kinds without a resolution (a point set)
POINT_SETS = ("points", "native")

#: k-NN graph of a level when a net does not say: (k, kernel width; :func:`~.graph.knn_graph`), the
#: Defferrard et al. ICLR 2020 choices: icosahedron k = 6 with t = mean distance (the climate
#: graph), HEALPix k = 8 with the optimal width (:func:`~.graph.optimal_kernel_width`, the V2
#: graphs), equiangular k = 8 with the ``mean`` heuristic, an arbitrary point set k = 5 (the GHCN graph).
GRAPH_DEFAULTS = {"ico": (6, "mean_distance"), "healpix": (8, "optimal"), "equiangular": (8, "mean"),
                  "points": (5, "mean")}
#: the SHREC'17 classifier's graphs (deepsphere-tf1 ``experiments/shrec17``): HEALPix with the 8
#: HEALPix neighbours of Perraudin et al. (graph "v1"); equiangular k = 4 with w = 1/d
#: (Khasanova & Frossard, as [ICLR] 'Experiments' says)
CLASSIFIER_GRAPH = {"healpix": {"graph": "v1"}, "equiangular": {"k": 4, "kernel_width": "inverse_distance"}}


def _forms(allowed) -> str:
    return ", ".join(FORMS[k] for k in allowed)


@dataclass(frozen=True)
class Sampling:
    """A sampling of the sphere: ``kind`` (:data:`FORMS`) and resolution ``res`` (Nside,
    icosahedral level, bandwidth; 0 for a point set). Build it with :meth:`parse`.

    >>> s = Sampling.parse("healpix:4")
    >>> s.name, s.num_vertices, s.vertices().shape, [str(l) for l in s.levels(2)]
    ('healpix:4', 192, (192, 3), ['healpix:4', 'healpix:2', 'healpix:1'])
    >>> Sampling.parse("ico:5").num_vertices, Sampling.parse("equiangular:32").num_vertices
    (10242, 4096)
    >>> Sampling.parse("healpix:12")
    Traceback (most recent call last):
    ...
    ValueError: sampling 'healpix:12': HEALPix Nside must be a power of 2
    """

    kind: str
    res: int = 0

    # -- parsing -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: "str | Sampling", allowed: tuple[str, ...] = SPHERES) -> "Sampling":
        """``spec`` (``"healpix:32"``, ``"ico:5"``, ``"equiangular:64"``, ``"points"``,
        ``"native"`` or a :class:`Sampling`) if its kind is in ``allowed``; else one
        :class:`ValueError` naming the value and the accepted forms."""
        if isinstance(spec, Sampling):
            kind, arg, text = spec.kind, str(spec.res), spec.name
            sep = "" if kind in POINT_SETS else ":"
        else:
            text = str(spec).strip()
            kind, sep, arg = text.partition(":")
        if kind not in allowed or (kind in POINT_SETS) != (not sep) or (sep and not arg.isdigit()):
            raise ValueError(f"unknown sampling '{text}'. Valid values are {_forms(allowed)}")
        if kind in POINT_SETS:
            return cls(kind)
        res = int(arg)
        if kind == "healpix" and (res < 1 or res & (res - 1)):
            raise ValueError(f"sampling '{text}': HEALPix Nside must be a power of 2")
        if kind == "equiangular" and res < 1:
            raise ValueError(f"sampling '{text}': the equiangular bandwidth must be >= 1")
        return cls(kind, res)

    @property
    def name(self) -> str:
        return self.kind if self.kind in POINT_SETS else f"{self.kind}:{self.res}"

    def __str__(self) -> str:
        return self.name

    @property
    def tag(self) -> str:
        """The name without ``:``, for folder and file names (``healpix32``)."""
        return self.name.replace(":", "")

    # -- vertices --------------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        if self.kind == "healpix":
            return 12 * self.res ** 2
        if self.kind == "ico":
            return 10 * 4 ** self.res + 2
        if self.kind == "equiangular":
            return (2 * self.res) ** 2
        raise ValueError(f"sampling '{self.name}' has no fixed points (it is a point set)")

    def vertices(self) -> np.ndarray:
        """Unit vectors ``(V, 3)`` float64 in the networks' vertex order; read-only, cached."""
        if self.kind in POINT_SETS:
            raise ValueError(f"sampling '{self.name}' has no fixed points (it is a point set)")
        return _vertices(self.kind, self.res)

    # -- pooling hierarchy -----------------------------------------------------------------------
    def coarser(self, steps: int = 1) -> "Sampling":
        """The sampling ``steps`` poolings down; a :class:`ValueError` when it does not exist."""
        steps = int(steps)
        if self.kind in POINT_SETS or steps == 0:
            return self
        if self.kind == "ico":
            if self.res - steps < 0:
                raise ValueError(f"sampling '{self.name}': icosahedral level {self.res} cannot be pooled "
                                 f"{steps} times; use a shallower net or a finer level")
            return Sampling("ico", self.res - steps)
        if self.kind == "healpix" and self.res >> steps < 1:
            raise ValueError(f"sampling '{self.name}': HEALPix Nside {self.res} cannot be halved {steps} "
                             f"times (Nside must be a power of 2 >= 2^{steps})")
        if self.kind == "equiangular" and self.res % (1 << steps):
            raise ValueError(f"sampling '{self.name}': equiangular bandwidth {self.res} cannot be halved "
                             f"{steps} times (it must be a multiple of 2^{steps})")
        return Sampling(self.kind, self.res >> steps)

    def levels(self, depth: int) -> list["Sampling"]:
        """This sampling and the ``depth`` coarser ones its pooling visits (finest first)."""
        self.coarser(depth)
        return [self.coarser(d) for d in range(int(depth) + 1)]

    def pooling(self, pool: str = "avg", ico_unpool: str = "interp"):
        """``(pool, unpool)`` modules between this level and the next coarser one: HEALPix
        ``pool`` (``avg`` / ``max``) over 4 children and nearest unpooling; equiangular ``pool``
        over 2 × 2 and nearest unpooling; icosahedral 1-ring average and ``ico_unpool``; identities
        for a point set."""
        from torch import nn

        from models.deepsphere.layers import (EquiangularPool, EquiangularUnpool, HealpixPool, HealpixUnpool,
                                              IcosahedralPool, IcosahedralUnpool)
        if self.kind == "healpix":
            return HealpixPool(pool), HealpixUnpool("nearest")
        if self.kind == "ico":
            return IcosahedralPool(self.res), IcosahedralUnpool(self.res, ico_unpool)
        if self.kind == "equiangular":
            return EquiangularPool(self.res, pool), EquiangularUnpool(self.res)
        return nn.Identity(), nn.Identity()

    # -- graph -------------------------------------------------------------------------------------
    def graph_defaults(self, k: int | None = None, kernel_width: float | str | None = None) -> tuple:
        """``(k, kernel width)``: the given values, else :data:`GRAPH_DEFAULTS` of the kind."""
        dk, dw = GRAPH_DEFAULTS["points" if self.kind in POINT_SETS else self.kind]
        return (dk if k is None else int(k)), (dw if kernel_width is None else kernel_width)

    def operator(self, k: int | None = None, kernel_width: float | str | None = None,
                 laplacian: str = "normalized", graph: str = "knn", coords: np.ndarray | None = None):
        """The rescaled graph Laplacian (``torch.sparse_csr``, float64) of this level: the k-NN
        graph (:meth:`graph_defaults`), or HEALPix ``graph="v1"``; a point set needs ``coords``."""
        from models.deepsphere.graph import (chebyshev_operator, equiangular_graph, healpix_laplacian,
                                             icosahedral_laplacian, knn_graph)
        if graph not in ("knn", "v1") or (graph == "v1" and self.kind != "healpix"):
            raise ValueError(f"sampling '{self.name}': graph must be 'knn' (any sampling) or 'v1' (HEALPix), "
                             f"got {graph!r}")
        k, kw = self.graph_defaults(k, kernel_width)
        if self.kind == "healpix":
            return healpix_laplacian(self.res, k, None, 0, laplacian, graph, kw)
        if self.kind == "ico":
            return icosahedral_laplacian(self.res, k, laplacian, kw)
        if self.kind == "equiangular":
            return chebyshev_operator(equiangular_graph(self.res, k, kw).W, laplacian)[0]
        if coords is None:
            raise ValueError(f"sampling '{self.name}' needs coords (n, 3) unit vectors")
        return chebyshev_operator(knn_graph(np.asarray(coords, dtype=np.float64), k, kw, name="points").W,
                                  laplacian)[0]


@functools.lru_cache(maxsize=16)
def _vertices(kind: str, res: int) -> np.ndarray:
    from models.deepsphere.graph import equiangular_vectors, healpix_vectors, icosahedral_vectors

    v = {"healpix": healpix_vectors, "ico": icosahedral_vectors, "equiangular": equiangular_vectors}[kind](res)
    v = np.ascontiguousarray(v, dtype=np.float64)
    v.setflags(write=False)
    return v


__all__ = ["Sampling", "FORMS", "SPHERES", "POINT_SETS", "GRAPH_DEFAULTS", "CLASSIFIER_GRAPH"]
