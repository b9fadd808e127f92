"""``--dry-run`` (reproduce/runner/dryrun.py) and the GPU evidence kit (reproduce/gpu_check.py) on the CPU."""
import csv
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ["tetris", "rotated_mnist", "cosmology", "climate", "shrec17", "cath"]


def _dry_run(name: str, preset: str, tmp_path: Path, *extra: str):
    from reproduce.runner.cli import main
    bench = importlib.import_module(f"reproduce.{name}").BENCH
    out, runs, res = tmp_path / "out", tmp_path / "runs", tmp_path / "res"
    rc = main(bench, argv=["--preset", preset, "--dry-run", "--dry-run-out", str(out), "--runs-dir", str(runs),
                           "--results-dir", str(res), "--logger", "wandb", *extra])
    assert rc == 0
    assert not runs.exists() and not res.exists()  # no run folder, no table, no W&B run, no checkpoint
    data = json.loads((out / f"{name}-{preset}-dryrun.json").read_text())
    with open(out / f"{name}-{preset}-dryrun.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["cells"]) > 0
    return data


def _check_cells(data: dict, bench_name: str, preset: str):
    from reproduce.runner import config as C
    from reproduce.runner.grid import expand_grid
    bench = importlib.import_module(f"reproduce.{bench_name}").BENCH
    runs = expand_grid(bench, C.load_preset(bench_name, preset))
    cells = {(r.model, r.setting_str) for r in runs}
    assert {(c["model"], c["setting"]) for c in data["cells"]} == cells  # every cell of the preset
    assert sum(c["runs"] for c in data["cells"]) == len(runs)
    for c in data["cells"]:
        if bench.is_custom(next(r for r in runs if (r.model, r.setting_str) == (c["model"], c["setting"]))):
            assert c["status"] == "custom" and c["note"] == "not a gradient step"
            continue
        assert c["status"] in ("ok", "same"), c
        for k in ("step_s", "first_step_s", "peak_mb", "step_s_at_batch", "run_h", "cell_h", "params"):
            assert math.isfinite(c[k]) and c[k] > 0, (k, c)
        assert c["step_mb"] >= 0 and c["peak_mb_at_batch"] >= c["peak_mb"] - c["step_mb"]
        assert 1 <= c["measured_batch"] <= min(2, c["batch"])
        # the projection: linear in the batch, steps per run × runs
        assert c["step_s_at_batch"] == pytest.approx(c["step_s"] * c["batch"] / c["measured_batch"])
        assert c["cell_h"] == pytest.approx(c["runs"] * c["steps_per_run"] * c["step_s_at_batch"] / 3600)
    assert data["total_h"] == pytest.approx(sum(c["cell_h"] for c in data["cells"] if c["status"] != "custom"))


@pytest.mark.parametrize("name", BENCHMARKS)
def test_dry_run_smoke_presets(name, tmp_path):
    data = _dry_run(name, "smoke", tmp_path)
    _check_cells(data, name, "smoke")


def test_dry_run_steps_per_run_follow_the_preset(tmp_path):
    data = _dry_run("tetris", "smoke", tmp_path, "trainer.max_epochs=7")
    # Tetris: one full batch of the 8 pieces per epoch
    assert {(c["batch"], c["steps_per_run"], c["n_train"]) for c in data["cells"]} == {(8, 7, 8)}
    data = _dry_run("cosmology", "smoke", tmp_path / "b", "--only", "deepsphere_fcn")
    # 40 training maps x 12 blocks at order 1, 80 % kept for training, batch 16, drop_last: 24 steps per epoch
    (c,) = data["cells"]
    assert (c["n_train"], c["batch"], c["steps_per_run"]) == (384, 16, 24) and c["input_shape"] == "256×1"


def test_dry_run_rejects_table_and_bad_batch(tmp_path, capsys):
    from reproduce.runner.cli import main
    from reproduce.tetris import BENCH
    assert main(BENCH, argv=["--preset", "smoke", "--dry-run", "--table"]) == 2
    assert main(BENCH, argv=["--preset", "smoke", "--dry-run", "--dry-run-batch", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: ") for line in err) and len(err) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_dry_run_paper_presets_on_cpu(name, tmp_path):
    """Every paper cell at its full input size, batch shrunk to 2 (minutes per preset on 2 cores)."""
    data = _dry_run(name, "paper", tmp_path)
    _check_cells(data, name, "paper")


def _gpu_check(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "check"
    p = subprocess.run([sys.executable, str(ROOT / "reproduce" / "gpu_check.py"), "--device", "cpu", "--tiny",
                        "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def _check_steps(out: Path, benchmarks: list[str]):
    with open(out / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for name in benchmarks:
        mine = [r for r in rows if r["benchmark"] == name]
        assert {r["tf32"] for r in mine} == {"False", "True"}
        measured = [r for r in mine if r["status"] in ("ok", "same")]
        models = {r["model"] for r in mine if r["status"] != "custom"}
        assert models and {r["model"] for r in measured} == models  # a row per backbone, both TF32 modes
        for r in measured:
            for k in ("step_s", "peak_mb", "build_s", "cell_h"):
                assert math.isfinite(float(r[k])) and float(r[k]) > 0, (k, r)
            assert int(r["measured_batch"]) == int(r["batch"])  # the kit measures the preset's own batch
    md = (out / "gpu_budget.md").read_text()
    for name in benchmarks:
        line = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        assert float(line.split("|")[3]) > 0 and float(line.split("|")[4]) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["skipped"] == 0 and summary["elapsed_s"] > 0
    return summary


def test_gpu_check_tiny_on_cpu(tmp_path):
    out = _gpu_check(tmp_path, "--benchmarks", "tetris,cosmology", "--max-tetris-cells", "0")
    summary = _check_steps(out, ["tetris", "cosmology"])
    assert summary["tetris_cells_done"] == 0
    assert (out / "tetris_cells.csv").read_text().strip() == "model,seed,wall_s,rc,projected_train_s,last_line"


def test_gpu_check_budget_guard_skips_measurements(tmp_path):
    out = tmp_path / "check"
    from reproduce.gpu_check import main
    assert main(["--device", "cpu", "--tiny", "--out", str(out), "--benchmarks", "rotated_mnist",
                 "--budget-s", "0.001", "--max-tetris-cells", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measurements"] == 0 and summary["skipped"] > 0 and summary["tetris_cells_done"] == 0
    assert not (out / "tetris" / "runs").exists()


@pytest.mark.slow
def test_gpu_check_tiny_everything_and_a_tetris_cell(tmp_path):
    out = _gpu_check(tmp_path, "--max-tetris-cells", "1", "--budget-s", "900")
    summary = _check_steps(out, BENCHMARKS)
    assert summary["tetris_cells_done"] == 1
    with open(out / "tetris_cells.csv", newline="") as f:
        (cell,) = list(csv.DictReader(f))
    assert cell["rc"] == "0" and float(cell["wall_s"]) > 0
    with open(out / "tetris" / "results" / "tetris.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["model"] == cell["model"] and 0 <= float(row["test_acc"]) <= 1
