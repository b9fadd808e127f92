"""End to end: `reproduce/tetris.py --preset smoke` through the shared runner (what `make demo` runs)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tetris_smoke_writes_rows_table_and_plot(tmp_path):
    cmd = [sys.executable, "reproduce/tetris.py", "--preset", "smoke", "--logger", "csv",
           "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "EB_NO_PROGRESS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "res" / "tetris.csv")))
    assert {r["model"] for r in rows} == {"steerable", "cnn"}
    by = {r["model"]: r for r in rows}
    assert int(by["steerable"]["params"]) == 41198 and int(by["cnn"]["params"]) == 6221832
    # the trained steerable net is exactly invariant to cube rotations (float64); the CNN is not
    assert float(by["steerable"]["equivariance_error_cube"]) < 1e-10
    assert float(by["cnn"]["equivariance_error_cube"]) > 1e-4
    md = (tmp_path / "res" / "tetris.md").read_text()
    assert "99 ± 2 %" in md and "27 ± 7 %" in md and "Preset: `smoke`" in md
    assert (tmp_path / "res" / "tetris.png").stat().st_size > 1000
