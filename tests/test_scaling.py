"""reproduce/scaling.py: the quick run measures every series (graph and spectral) and writes nothing;
a short real run writes the CSV, the Markdown with log-log slopes and the PNG; ``--table`` re-renders
the same Markdown from the CSV alone; the slope fit is the least-squares exponent."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce import scaling as S

ROOT = Path(__file__).resolve().parents[1]


def test_slope_is_the_fitted_exponent():
    rows = [{"npix": n, "t": 3e-3 * n ** 1.5} for n in (4096, 16384, 65536)]
    assert S.slope(rows, "t") == pytest.approx(1.5)
    assert S.slope([{"npix": 100, "t": 1.0}, {"npix": 400, "t": 2.0}], "t") != S.slope(rows, "t")  # < FIT_FROM: nan


@pytest.mark.slow
def test_quick_run_measures_every_series_and_writes_nothing(tmp_path):
    p = subprocess.run([sys.executable, "reproduce/scaling.py", "--quick", "--results-dir", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    for name in ("ChebConv K=5, full sphere", "1/12 of the sphere", "Esteves SphericalConv", "S2Convolution",
                 "SO3Convolution"):
        assert name in p.stdout
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_run_then_table(tmp_path):
    args = [sys.executable, "reproduce/scaling.py", "--results-dir", str(tmp_path), "--only", "1/192",
            "--budget", "0.05", "--reps", "1"]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    md = (tmp_path / "scaling.md").read_text()
    assert "## Log–log slopes" in md and "ChebConv K=5, 1/192 of the sphere" in md and "O(N^1)" in md
    assert (tmp_path / "scaling.png").stat().st_size > 5000
    rows = S.read_csv(tmp_path / "scaling.csv")
    assert rows and all(r["device"] == "cpu" and int(r["npix"]) == 12 * int(r["size"]) ** 2 // 192 for r in rows)
    (tmp_path / "scaling.md").unlink()
    p = subprocess.run(args[:4] + ["--table"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0 and (tmp_path / "scaling.md").read_text() == md


def test_committed_table_is_the_render_of_its_csv(tmp_path):
    """results/scaling.md is what its CSV renders to (regenerate: python reproduce/scaling.py --table)."""
    import shutil
    shutil.copy(ROOT / "results" / "scaling.csv", tmp_path / "scaling.csv")
    S.render(S.read_csv(tmp_path / "scaling.csv"), tmp_path)
    assert (tmp_path / "scaling.md").read_text() == (ROOT / "results" / "scaling.md").read_text()
