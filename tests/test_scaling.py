"""reproduce/scaling.py, a measurement benchmark: every series measures rows of its sizes (pixels as
the layer sees them, times finite and positive), the slope fit is the least-squares exponent, a
finished series is skipped, and ``--table`` re-renders the same Markdown from the CSV alone. The
committed table is the render of results/scaling.csv (tests/test_golden_tables.py)."""
from __future__ import annotations

import math

import pytest

from reproduce import scaling
from reproduce.runner import main
from reproduce.reports.scaling import FIT_FROM, slope
from reproduce.runner import config as C
from reproduce.runner.store import read_rows

SERIES = list(C.load_preset("scaling", "paper")["models"])


def run(tmp_path, *args: str) -> int:
    return main(scaling.BENCH, scaling.__doc__, ["--results-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--logger", "none",
                         *args])


def assert_sane(rows: list[dict], series: list[str]) -> None:
    for s in series:
        mine = [r for r in rows if r["model"] == s]
        assert mine, f"series {s} measured no size"
        for r in mine:
            for key in ("forward_ms", "forward_backward_ms"):
                assert math.isfinite(float(r[key])) and float(r[key]) > 0, (s, r["size"], key)
            assert r["device"] == "cpu" and int(r["npix"]) > 0


def test_slope_is_the_fitted_exponent():
    rows = [{"npix": n, "t": 3e-3 * n ** 1.5} for n in (4096, 16384, 65536)]
    assert slope(rows, "t") == pytest.approx(1.5)
    assert math.isnan(slope([{"npix": 100, "t": 1.0}, {"npix": 400, "t": 2.0}], "t"))  # below FIT_FROM
    assert FIT_FROM > 400


def test_smoke_series_rows_then_resume_skips_it(tmp_path):
    assert run(tmp_path, "--preset", "smoke", "--only", "cheb5_12") == 0
    rows = read_rows(tmp_path / "scaling.csv")
    assert_sane(rows, ["cheb5_12"])
    assert [int(r["npix"]) for r in rows] == [12 * int(r["size"]) ** 2 // 12 for r in rows] == [16, 64]
    md = (tmp_path / "scaling.md").read_text()
    assert "## Log–log slopes" in md and "ChebConv K=5, 1/12 of the sphere" in md and "O(N^1)" in md
    assert (tmp_path / "scaling.png").stat().st_size > 5000
    csv_text = (tmp_path / "scaling.csv").read_text()
    assert run(tmp_path, "--preset", "smoke", "--only", "cheb5_12") == 0  # finished: skipped, not re-measured
    assert (tmp_path / "scaling.csv").read_text() == csv_text


@pytest.mark.slow
def test_every_smoke_series_measures(tmp_path):
    assert run(tmp_path, "--preset", "smoke") == 0
    assert_sane(read_rows(tmp_path / "scaling.csv"), SERIES)


@pytest.mark.slow
def test_budgeted_series_has_a_finite_slope_and_table_rerenders(tmp_path):
    args = ["--only", "cheb5_192", "budget_s.cpu=0.05", "reps=1"]
    assert run(tmp_path, *args) == 0
    rows = read_rows(tmp_path / "scaling.csv")
    assert_sane(rows, ["cheb5_192"])
    assert all(int(r["npix"]) == 12 * int(r["size"]) ** 2 // 192 for r in rows)
    if sum(int(r["npix"]) >= FIT_FROM for r in rows) >= 2:
        assert 0 < slope(rows, "forward_backward_ms") < 3
    md = (tmp_path / "scaling.md").read_text()
    (tmp_path / "scaling.md").unlink()
    assert run(tmp_path, *args, "--table") == 0 and (tmp_path / "scaling.md").read_text() == md


def test_bad_budget_is_one_error_line(tmp_path, capsys):
    assert run(tmp_path, "--preset", "smoke", "budget_s.cpu=0") == 2
    err = capsys.readouterr().err.strip()
    assert "budget_s.cpu" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "scaling.csv").exists()
