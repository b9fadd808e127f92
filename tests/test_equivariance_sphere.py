"""The equivariance-error maths (models/deepsphere/equivariance.py), the figure script
(reproduce/equivariance_sphere.py) and the sphere speed section (reproduce/measure/speed_sphere.py): the
rotation routine really rotates, the exact quarter turn gives (almost) zero error for an exactly
symmetric graph, the ratios are relative_error's, the CLI writes its files and refuses bad input
with exit code 2, and the quick speed section returns well-formed rows."""
from __future__ import annotations

import csv
import math

import healpy as hp
import numpy as np
import pytest

from models.deepsphere import equivariance as E
from models.deepsphere import healpix_graph, healpix_rotation_permutation
from reproduce import equivariance_sphere as script
from reproduce.runner import main


def test_harmonic_rotation_matches_pixel_permutation_and_moves_signals():
    nside = 8
    rng = np.random.default_rng(0)
    f = E.degree_signal(nside, 5, rng)
    # a degree-5 signal has no other degrees
    alm = hp.map2alm(hp.reorder(f, n2r=True), lmax=3 * nside - 1, iter=3)
    ell = hp.Alm.getlm(3 * nside - 1)[0]
    assert np.abs(alm[ell != 5]).max() < 1e-2 * np.abs(alm[ell == 5]).max()  # quadrature error
    # healpy's Rotator(rot=[-90, 0, 0]) turns maps by +90° about the pole = the pixel permutation
    perm = healpix_rotation_permutation(nside)
    Pf = np.empty_like(f)
    Pf[perm] = f
    Rf = E.rotate_nest(f, hp.Rotator(rot=[-90, 0, 0]), nside, 3)
    assert np.linalg.norm(Rf - Pf) < 1e-2 * np.linalg.norm(f)
    # a generic rotation moves the signal and keeps its norm (band-limited)
    Rg = E.rotate_nest(f, hp.Rotator(rot=[10, 30, 50]), nside, 3)
    assert np.linalg.norm(Rg - f) > 0.5 * np.linalg.norm(f)
    assert math.isclose(np.linalg.norm(Rg), np.linalg.norm(f), rel_tol=1e-2)


def test_quarter_turn_error_is_limited_to_the_rotation_routine():
    """For the exact symmetry (90° about the pole) the graph term vanishes: L R f = R L f up
    to the harmonic rotation of L f; a generic rotation gives a much larger error."""
    nside = 8
    L = healpix_graph(nside, 20).laplacian("normalized")
    perm = healpix_rotation_permutation(nside)
    f = E.degree_signal(nside, 6, np.random.default_rng(1))
    Pf = np.empty_like(f)
    Pf[perm] = f
    PLf = np.empty_like(f)
    PLf[perm] = L @ f
    assert np.linalg.norm(PLf - L @ Pf) <= 1e-12 * np.linalg.norm(L @ f)
    rot = hp.Rotator(rot=[10, 30, 50])
    generic = np.linalg.norm(E.rotate_nest(L @ f, rot, nside, 3) - L @ E.rotate_nest(f, rot, nside, 3))
    assert generic > 10 * np.linalg.norm(PLf - L @ Pf) and generic > 1e-3 * np.linalg.norm(L @ f)


def test_ratios_are_the_norm_ratio_and_graphs_share_signals():
    nside = 4
    graphs = {"v1": E.graph_laplacian({"graph": "v1"}, nside)[0],
              "knn8": E.graph_laplacian({"graph": "knn", "k": 8}, nside)[0]}
    both = E.equivariance_ratios(graphs, nside, 3, 2, 2, np.random.default_rng(5))
    alone = E.equivariance_ratios(graphs["knn8"], nside, 3, 2, 2, np.random.default_rng(5))
    assert both["knn8"].shape == (4,) and np.array_equal(both["knn8"], alone)
    # by hand, first signal and rotation: ‖R L f − L R f‖ / ‖L f‖
    rng = np.random.default_rng(5)
    f = E.degree_signal(nside, 3, rng)
    rot = hp.Rotator(rot=list(rng.uniform(0, 360, size=(2, 3))[0]))
    L = graphs["v1"]
    want = np.linalg.norm(E.rotate_nest(L @ f, rot, nside) - L @ E.rotate_nest(f, rot, nside)) / np.linalg.norm(L @ f)
    assert both["v1"][0] == want
    with pytest.raises(ValueError, match="unknown graph"):
        E.graph_laplacian({"graph": "ring"}, nside)


def test_smoke_preset_writes_csv_md_png(tmp_path):
    argv = ["--preset", "smoke", "--results-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs"),
            "--logger", "none", "data.nsides=[16]", "data.signals=1", "data.rotations=2"]
    assert main(script.BENCH, script.__doc__, argv) == 0
    rows = list(csv.DictReader(open(tmp_path / "equivariance_sphere.csv")))
    graphs = {"v1", "knn8", "knn20", "knn40"}
    assert {r["model"] for r in rows} == graphs
    assert len(rows) == 4 * len(script.degrees_for(16, 10))  # degrees 10..40
    for col in ("model", "setting", "seed", "preset", "data_source", "hardware", "code_version",
                "started_at", "wall_s", "nside", "degree", "equivariance_error",
                "equivariance_error_squared", "kernel_width_t", "kernel_rule"):
        assert col in rows[0], col
    err = {(r["model"], int(r["degree"])): float(r["equivariance_error"]) for r in rows}
    assert all(0 < v < 2 for v in err.values())
    # the ordering the paper shows: more neighbours, smaller error; V1 the largest
    for d in (20, 30):
        assert err[("knn40", d)] < err[("knn8", d)] < err[("v1", d)]
    md = (tmp_path / "equivariance_sphere.md").read_text()
    assert "equivariance_sphere.png" in md and "Normalisation caveat" in md
    assert (tmp_path / "equivariance_sphere.png").stat().st_size > 10_000
    # a measurement cell per (graph, Nside): a second invocation skips the finished cells
    stamp = (tmp_path / "equivariance_sphere.csv").read_text()
    assert main(script.BENCH, script.__doc__, argv) == 0 and (tmp_path / "equivariance_sphere.csv").read_text() == stamp
    assert {r["setting"] for r in rows} == {"nside=16"} and len({r["run_id"] for r in rows}) == 4


@pytest.mark.parametrize("argv, message", [
    (["--preset", "smoke", "data.nsides=[12]"], "not a power of 2"),
    (["--preset", "smoke", "data.nsidez=[16]"], "unknown key"),
    (["--preset", "smoke", "data.nsides=[8]"], "degree_step"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(script.BENCH, script.__doc__, argv + ["--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "equivariance_sphere.csv").exists()


def test_speed_section_quick():
    from reproduce.measure import speed_sphere as S

    title, rows = S.measure(quick=True)
    assert "Chebyshev" in title
    peer = [r for r in rows if r["what"].startswith("ChebConv vs deepsphere-pytorch")]
    convs = [r for r in rows if r["what"].startswith("ChebConv") and r not in peer]
    assert len(convs) == 2 * 2 * 2  # Nside 16, 32 × K 3, 6 × fwd, fwd+bwd
    assert [r["what"] for r in peer] == [f"ChebConv vs deepsphere-pytorch {w} K=3 Nside {n}"
                                         for n in (16, 32) for w in ("forward", "forward+backward")]
    assert all(math.isfinite(r["load"]) for r in convs + peer)
    assert all(r["graph_only_s"] > 0 for r in rows if r["what"].startswith("graph build"))
    for r in rows:
        assert {"what", "time_ms", "floor_ms", "ratio"} <= set(r)
        assert r["time_ms"] > 0 and r["floor_ms"] > 0
        assert math.isclose(r["ratio"], r["time_ms"] / r["floor_ms"], rel_tol=1e-9)
    slopes = [r for r in rows if "slope" in r]
    assert len(slopes) == 4 and all(math.isfinite(r["slope"]) for r in slopes)
    assert [r["nside"] for r in rows if r["what"].startswith("graph build")] == [16, 32]
    assert S.loglog_slope([1, 10, 100], [2, 20, 200]) == pytest.approx(1.0)
