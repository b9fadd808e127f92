"""reproduce/speed.py, a measurement benchmark: every section measures rows whose ratio is its time
over a floor timed in the same run (finite, positive, time / floor), through the runner's store and
table. Speed itself is a benchmark in results/speed.md, never asserted here; the committed table
is the render of results/speed.csv (tests/test_golden_tables.py)."""
from __future__ import annotations

import math

import pytest

from reproduce import speed
from reproduce.runner import main
from reproduce.runner import config as C
from reproduce.runner.store import read_rows

SECTIONS = list(C.load_preset("speed", "paper")["models"])


def run_smoke(tmp_path, sections: list[str]) -> tuple[list[dict], str]:
    argv = ["--preset", "smoke", "--only", ",".join(sections), "--results-dir", str(tmp_path),
            "--runs-dir", str(tmp_path / "runs"), "--logger", "none"]
    assert main(speed.BENCH, speed.__doc__, argv) == 0
    return read_rows(tmp_path / "speed.csv"), (tmp_path / "speed.md").read_text()


def assert_sane(rows: list[dict], md: str, sections: list[str]) -> None:
    for s in sections:
        mine = [r for r in rows if r["model"] == s]
        assert mine, f"section {s} measured no rows"
        assert f"<!-- section: {s};" in md
        for r in mine:
            if r["floor_ms"] == "":  # a reference row without a floor (e.g. the CNN's own throughput)
                assert float(r["time_ms"]) > 0
                continue
            t, floor, ratio = float(r["time_ms"]), float(r["floor_ms"]), float(r["ratio"])
            assert math.isfinite(ratio) and ratio > 0 and t > 0 and floor > 0, r["what"]
            assert ratio == pytest.approx(t / floor, rel=1e-6), r["what"]


def test_harmonic_section_rows_are_ratios_to_their_floor(tmp_path):
    rows, md = run_smoke(tmp_path, ["harmonic"])
    assert_sane(rows, md, ["harmonic"])
    assert {r["run_id"] for r in rows} == {rows[0]["run_id"]} and rows[0]["device"] == "cpu"
    assert "## Harmonic convolution (HConv2d) vs plain Conv2d" in md


@pytest.mark.slow
def test_every_section_measures_sane_ratios(tmp_path):
    rows, md = run_smoke(tmp_path, SECTIONS)
    assert_sane(rows, md, SECTIONS)


def test_unknown_section_and_several_processes_are_errors(capsys):
    assert main(speed.BENCH, speed.__doc__, ["--only", "nope"]) == 2
    assert "unknown model(s) nope" in capsys.readouterr().err
    assert main(speed.BENCH, speed.__doc__, ["--cpu-procs", "2"]) == 2
    assert "--cpu-procs cannot be used" in capsys.readouterr().err
