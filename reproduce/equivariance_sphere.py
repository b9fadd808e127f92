"""Equivariance error of sphere-graph Laplacians against the spherical-harmonic degree.

Reproduces: Defferrard, Milani, Gusset, Perraudin, "DeepSphere: a graph-based spherical CNN",
ICLR 2020, fig:equivariance_error (the DeepSphere slides' "Desideratum 1" plot): the mean of
``‖R L f − L R f‖ / ‖L f‖`` over random degree-ℓ signals ``f`` and random rotations ``R``, for
the HEALPix k-NN graphs (k = 8, 20, 40, optimal kernel width) and the Perraudin et al. 2019
("V1") graph, normalised Laplacian, at Nside 32, 64 (and 128 in the ``paper`` preset).

    python reproduce/equivariance_sphere.py --preset cpu      # Nside 32, 64: ~3 min, 2 cores
    python reproduce/equivariance_sphere.py --preset paper    # + Nside 128: ~8 min
    python reproduce/equivariance_sphere.py --preset smoke    # seconds, writes results/smoke/

Protocol (ICLR ``HEALPix_equivariance_error.ipynb``): per degree ℓ (``step, 2·step, … < 3·Nside``)
draw ``signals`` maps whose harmonic coefficients are i.i.d. Gaussian at degree ℓ only (RING,
``healpy.alm2map``), reorder to NEST; per map draw ``rotations`` rotations with three angles
uniform in [0°, 360°) (``healpy.Rotator`` default Euler convention, as the notebook). A map is
rotated on its harmonic coefficients: NEST → RING, ``map2alm`` (``lmax = 3·Nside − 1``, 3
iterations, no pixel weights), ``Rotator.rotate_alm``, ``alm2map``, RING → NEST. The same
rotation routine is applied to ``f`` and to ``L f`` (the maths: ``models/deepsphere/equivariance.py``,
the ratio is ``models.geometry.relative_error``'s). Each (graph, Nside, ℓ) row reports the
mean ratio (``equivariance_error``, the normalisation of the figure's pickles, named
``‖Lf‖``) and the mean squared ratio (``equivariance_error_squared``, the paper's formula).

A measurement benchmark (``reproduce/runner/measurement.py``): one cell per (graph, Nside) with
the runner's options — ``--preset``, ``--only v1,knn8``, ``--list``, ``--table``, ``--jobs K``,
``--results-dir``, ``--runs-dir``, ``key.sub=value`` overrides (e.g. ``data.nsides=[32]``);
finished cells are skipped, and the rows, provenance and table go through the same store and
renderer as every benchmark. The table and figure: ``reproduce/reports/equivariance_sphere.py``.
Signals are drawn from ``data.seed + seed`` (``--seed``, default 0: the notebook's 1994) and Nside.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from datamodules._common import InputError
from reproduce.reports.equivariance_sphere import NAME, PUBLISHED
from reproduce.runner import config as C
from reproduce.runner import main
from reproduce.runner.measurement import Measurement


@dataclass
class Protocol:
    """The ``data`` section: which maps, degrees, signals and rotations are measured."""

    nsides: list[int]
    degree_step: dict[int, int]
    signals: int = 5
    rotations: int = 5
    seed: int = 0
    laplacian: Literal["normalized", "combinatorial"] = "normalized"
    map2alm_iter: int = 3

    def __post_init__(self) -> None:
        for n in self.nsides:
            if n < 2 or n & (n - 1):
                raise ValueError(f"data.nsides: {n} is not a power of 2 >= 2")
            if self.degree_step.get(n, 0) < 1:
                raise ValueError(f"data.degree_step has no positive step for Nside {n}")
        if self.signals < 1 or self.rotations < 1:
            raise ValueError("data.signals and data.rotations must be >= 1")

    def degrees(self, nside: int) -> list[int]:
        return degrees_for(nside, self.degree_step[nside])


@dataclass
class Graph:
    """A ``models.<id>`` entry: the V1 graph, or a k-NN graph with the published kernel width."""

    graph: Literal["knn", "v1"] = "knn"
    k: int | None = None
    kernel_width: str | float = "optimal"

    def __post_init__(self) -> None:
        if self.graph == "knn" and self.k is None:
            raise ValueError("a knn graph needs k")


def degrees_for(nside: int, step: int) -> list[int]:
    return list(range(step, 3 * nside, step))


class EquivarianceSphere(Measurement):
    """One cell per (graph, Nside): its rows are the degrees, on signals shared by every graph."""

    name = NAME
    report = "reproduce.reports.equivariance_sphere:REPORT"

    def settings(self, cfg: dict, model: str) -> list[tuple[dict, dict]]:
        data = cfg.get("data") or {}
        nsides, steps = data.get("nsides"), data.get("degree_step") or {}
        if not isinstance(nsides, list) or not isinstance(steps, dict):
            raise InputError(f"config data.nsides must be a list and data.degree_step a mapping, got "
                             f"{nsides!r} and {steps!r}")
        return [({"nside": n}, {"data.nsides": [n], "data.degree_step": {n: steps.get(n, 0)}}) for n in nsides]

    def check_cell(self, run) -> tuple[Protocol, Graph]:
        return (C.build(Protocol, run.cfg.get("data"), "data"),
                C.build(Graph, run.cfg.get("model"), f"models.{run.model}"))

    def measure(self, ctx, run) -> list[dict]:
        from models.deepsphere.equivariance import equivariance_ratios, graph_laplacian

        p, spec = self.check_cell(run)
        nside, t0 = run.setting["nside"], time.perf_counter()
        L, g = graph_laplacian(vars(spec), nside, p.laplacian)
        build_s = time.perf_counter() - t0
        rng = np.random.default_rng([p.seed + run.seed, nside])  # as many draws per degree for every graph
        rows = []
        for degree in p.degrees(nside):
            td = time.perf_counter()
            r = np.asarray(equivariance_ratios(L, nside, degree, p.signals, p.rotations, rng, iters=p.map2alm_iter))
            rows.append({
                "wall_s": round(time.perf_counter() - td, 3), "nside": nside, "degree": degree, "k": g.k,
                "kernel_width_t": f"{g.t:.6g}", "kernel_rule": g.kernel_rule, "laplacian": p.laplacian,
                "n_vertices": g.n, "nnz": g.W.nnz, "signal_seed": p.seed + run.seed,
                "n_signals": p.signals, "n_rotations": p.rotations,
                "equivariance_error": float(r.mean()),
                "equivariance_error_std": float(r.std(ddof=1)) if len(r) > 1 else 0.0,
                "equivariance_error_squared": float((r ** 2).mean()),
                "published_equivariance_error": PUBLISHED.get((run.model, nside), {}).get(degree, ""),
                "graph_build_s": round(build_s, 3)})
            print(f"[{NAME}] {run.model} Nside {nside} l={degree}: {r.mean():.4g}", file=sys.stderr, flush=True)
        return rows


BENCH = EquivarianceSphere()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
