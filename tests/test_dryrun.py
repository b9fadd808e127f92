"""``--dry-run`` (reproduce/runner/dryrun.py) and the GPU evidence kit (reproduce/gpu_check.py) on the CPU."""
import csv
import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.runner import config as C
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = C.benchmark_names(trained=True)  # every configs/<name>/ whose paper preset is a grid
#: paper presets whose dry-run at batch 2 takes seconds of CPU (the others: minutes to tens of minutes)
CHEAP_PAPER = ["rotated_mnist", "climate"]


def _dry_run(name: str, preset: str, tmp_path: Path, capsys, *extra: str):
    from reproduce.runner.cli import main
    bench = importlib.import_module(f"reproduce.{name}").BENCH
    out, runs, res = tmp_path / "out", tmp_path / "runs", tmp_path / "res"
    rc = main(bench, argv=["--preset", preset, "--dry-run", "--dry-run-out", str(out), "--runs-dir", str(runs),
                           "--results-dir", str(res), "--logger", "wandb", *extra])
    printed = capsys.readouterr().out
    assert rc == 0
    assert not runs.exists() and not res.exists()  # no run folder, no table, no W&B run, no checkpoint
    data = json.loads((out / f"{name}-{preset}-dryrun.json").read_text())
    with open(out / f"{name}-{preset}-dryrun.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["cells"]) > 0
    _check_printed(printed, name, data)
    return data


def _check_printed(printed: str, name: str, data: dict):
    """One line per cell and a total line, with finite positive figures."""
    lines = [line for line in printed.splitlines() if line.startswith(f"[{name}] dry-run ")]
    assert len(lines) == len(data["cells"]) + 1, printed
    for line, c in zip(lines, data["cells"]):
        if c["status"] == "custom":
            assert line.endswith("not a gradient step")
            continue
        step, peak, hours = (float(x) for x in re.search(
            r"step ([\d.e+-]+) s at batch \d+ .*peak (\d+) MiB.*→ ([\d.e+-]+) h", line).groups())
        assert all(math.isfinite(x) and x > 0 for x in (step, peak, hours)), line
    total = float(re.search(r"projected ([\d.e+-]+) h of training", lines[-1]).group(1))
    assert math.isfinite(total) and total > 0 and total == pytest.approx(data["total_h"], rel=5e-3)


def _check_cells(data: dict, bench_name: str, preset: str):
    from reproduce.runner.runs import expand_grid
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
        for k in ("step_s", "first_step_s", "build_s", "peak_mb", "step_s_at_batch", "run_h", "cell_h", "params",
                  "steps_per_run", "n_train"):
            assert math.isfinite(c[k]) and c[k] > 0, (k, c)
        assert c["step_mb"] >= 0 and c["peak_mb_at_batch"] >= c["peak_mb"] - c["step_mb"]
        assert 1 <= c["measured_batch"] <= min(2, c["batch"])
        assert c["alt_step_s"] is None  # the command measures the preset's TF32 setting only
        # the projection: linear in the batch, steps per run × runs
        assert c["step_s_at_batch"] == pytest.approx(c["step_s"] * c["batch"] / c["measured_batch"])
        assert c["cell_h"] == pytest.approx(c["runs"] * c["steps_per_run"] * c["step_s_at_batch"] / 3600)
    assert data["total_h"] == pytest.approx(sum(c["cell_h"] for c in data["cells"] if c["status"] != "custom"))
    assert data["total_h"] > 0


@pytest.mark.parametrize("name,preset", [(b, "smoke") for b in BENCHMARKS] + [(b, "paper") for b in CHEAP_PAPER])
def test_dry_run_fast_presets(name, preset, tmp_path, capsys):
    data = _dry_run(name, preset, tmp_path, capsys)
    _check_cells(data, name, preset)


def _tree(*folders: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for d in folders if d.exists() for p in d.rglob("*")}


def test_dry_run_writes_nothing_by_default(tmp_path, capsys, monkeypatch):
    """With the default --runs-dir / --results-dir and a W&B logger: no run folder, no table row,
    no W&B run, no stand-in data anywhere in the repository (or the working directory)."""
    from reproduce.rotated_mnist import BENCH
    from reproduce.runner.cli import main
    monkeypatch.chdir(tmp_path)
    watched = [ROOT / "runs", ROOT / "results", ROOT / "data", ROOT / "wandb"]
    before = _tree(*watched)
    exists = [d.exists() for d in watched]
    assert main(BENCH, argv=["--preset", "smoke", "--dry-run", "--logger", "wandb", "--only", "cnn"]) == 0
    assert _tree(*watched) == before and [d.exists() for d in watched] == exists
    assert list(tmp_path.iterdir()) == []
    printed = capsys.readouterr().out
    assert re.search(r"\[rotated_mnist\] dry-run smoke: 2 cells, projected [\d.e+-]+ h", printed), printed


def test_dry_run_steps_per_run_follow_the_preset(tmp_path, capsys):
    data = _dry_run("tetris", "smoke", tmp_path, capsys, "trainer.max_epochs=7")
    # Tetris: one full batch of the 8 pieces per epoch
    assert {(c["batch"], c["steps_per_run"], c["n_train"]) for c in data["cells"] if c["status"] != "custom"} \
        == {(8, 7, 8)}
    data = _dry_run("cosmology", "smoke", tmp_path / "b", capsys, "--only", "deepsphere_fcn")
    # 40 training maps x 12 blocks at order 1, 80 % kept for training, batch 16, drop_last: 24 steps per epoch
    (c,) = data["cells"]
    assert (c["n_train"], c["batch"], c["steps_per_run"]) == (384, 16, 24) and c["input_shape"] == "256×1"
    data = _dry_run("cath", "smoke", tmp_path / "c", capsys, "--only", "resnet34", "--dry-run-batch", "1")
    # reduction 4 differs from reduction 1 in dropout and penalties (floats): the same step, measured once
    first, second = data["cells"]
    assert (first["status"], second["status"], second["step_s"]) == ("ok", "same", first["step_s"])
    assert first["measured_batch"] == 1 and second["n_train"] < first["n_train"]


def test_cost_key_counts_floats_only_as_zero_or_not():
    from reproduce.runner.dryrun import _shape_only
    assert _shape_only({"a": 0.1, "b": [3, 0.0, 2.5], "c": "x"}) == {"a": "float", "b": [3, "0.0", "float"], "c": "x"}
    assert _shape_only({"lr": 0.1}) == _shape_only({"lr": 3e-4}) != _shape_only({"lr": 0.0})


def test_cath_paper_reductions_share_one_measurement():
    """The ten CATH paper cells differ in reduction, epochs, schedule, dropout and penalties: two networks."""
    from pathlib import Path as P

    from reproduce.cath import BENCH
    from reproduce.runner import dryrun as D
    from reproduce.runner.benchmark import Context
    from reproduce.runner.runs import expand_grid
    from reproduce.runner.trainer import Launch
    cfg = C.load_preset("cath", "paper")
    ctx = Context(cfg=cfg, preset="paper", launch=Launch(logger="none"), data_dir=None, generate=False,
                  data_source="", hardware="", results_dir=P("."), runs_dir=P("."), code_version="")
    keys = {}
    for run, _ in D.cell_runs(expand_grid(BENCH, cfg)):
        spec = D.INPUTS["cath"](run)
        keys.setdefault(run.model, set()).add(D._cost_key(BENCH, ctx, run, spec))
    assert {m: len(k) for m, k in keys.items()} == {"resnet34": 1, "se3resnet34small": 1}
    assert keys["resnet34"] != keys["se3resnet34small"]


def test_dry_run_rejects_table_and_bad_batch(capsys):
    from reproduce.runner.cli import main
    from reproduce.tetris import BENCH
    assert main(BENCH, argv=["--preset", "smoke", "--dry-run", "--table"]) == 2
    assert main(BENCH, argv=["--preset", "smoke", "--dry-run", "--dry-run-batch", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: ") for line in err) and len(err) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_dry_run_paper_presets_on_cpu(name, tmp_path, capsys):
    """Every paper cell at its full input size, batch shrunk to 2 (seconds to ~40 min per preset on 2 cores)."""
    data = _dry_run(name, "paper", tmp_path, capsys)
    _check_cells(data, name, "paper")


# --------------------------------------------------------------------------- gpu_check.py
def _gpu_check(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "check"
    run_script("reproduce/gpu_check.py", "--device", "cpu", "--tiny", "--out", out, *extra, timeout=1200)
    return out


def _finite_positive(x) -> bool:
    return math.isfinite(float(x)) and float(x) > 0


def _check_kit(out: Path, benchmarks: list[str], tetris_cells: int):
    with open(out / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["benchmark"] for r in rows} == set(benchmarks)
    for name in benchmarks:
        mine = [r for r in rows if r["benchmark"] == name]
        assert {r["status"] for r in mine} <= {"ok", "same", "custom"}, mine
        for r in mine:
            if r["status"] == "custom":
                continue
            for k in ("build_s", "step_s", "peak_mb", "cell_h", "alt_step_s", "alt_peak_mb", "alt_cell_h"):
                assert _finite_positive(r[k]), (k, r)  # FP32 and the TF32 pass of every network
            assert int(r["measured_batch"]) == min(2, int(r["batch"]))
        data = json.loads((out / f"steps-{name}.json").read_text())
        assert _finite_positive(data["total_h"]) and len(data["cells"]) == len(mine)
    md = (out / "gpu_budget.md").read_text()
    assert "Measured on " in md and "CPU core" in md
    for name in benchmarks:
        line = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        assert _finite_positive(line.split("|")[3])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["skipped"] == 0 and not summary["errors"]
    assert summary["elapsed_s"] > 0 and summary["stopped"] is None
    assert all(_finite_positive(summary["hours_fp32"][b]) for b in benchmarks)
    with open(out / "tetris_cells.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == summary["tetris_cells_done"] == tetris_cells
    if tetris_cells:
        assert all(c["rc"] == "0" and _finite_positive(c["wall_s"]) and 0 <= float(c["test_acc"]) <= 1 for c in cells)
        with open(out / "tetris" / "results" / "tetris.csv", newline="") as f:
            table = list(csv.DictReader(f))
        assert [(r["model"], r["seed"]) for r in table] == [(c["model"], c["seed"]) for c in cells]
        assert all((out / "tetris" / "logs" / f"{c['model']}-seed{c['seed']}.log").is_file() for c in cells)
    assert "Tetris smoke cells: " + f"{tetris_cells} done" in (out / "summary.md").read_text()
    return summary


@pytest.mark.slow  # an end-to-end subprocess run; make test-all
def test_gpu_check_tiny_on_cpu_end_to_end(tmp_path):
    """Steps (FP32 + TF32 pass), budget, one Tetris cell, summary: every file, finite figures."""
    before = _tree(ROOT / "results", ROOT / "runs")
    out = _gpu_check(tmp_path, "--benchmarks", "rotated_mnist,climate", "--tetris-only", "cnn",
                     "--max-tetris-cells", "1")
    _check_kit(out, ["rotated_mnist", "climate"], 1)
    assert _tree(ROOT / "results", ROOT / "runs") == before  # everything under --out


def test_gpu_check_budget_guard_skips_measurements(tmp_path):
    out = tmp_path / "check"
    from reproduce.measure.gpu_kit import main
    assert main(["--device", "cpu", "--tiny", "--out", str(out), "--benchmarks", "rotated_mnist",
                 "--budget-s", "0.001", "--max-tetris-cells", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["measurements"] == 0 and summary["skipped"] > 0 and summary["tetris_cells_done"] == 0
    assert not (out / "tetris" / "runs").exists()
    assert "| rotated_mnist | 6 | – |" in (out / "gpu_budget.md").read_text()


def _slow_batches(monkeypatch, seconds: float = 30.0) -> None:
    """Every measurement takes ``seconds`` longer (a sleep, which a signal interrupts), so that a
    budget or a signal certainly falls inside one, whatever the machine's speed."""
    from reproduce.runner import dryrun as D
    real = D.synthetic_batch

    def slow(*a, **k):
        time.sleep(seconds)
        return real(*a, **k)
    monkeypatch.setattr(D, "synthetic_batch", slow)


def test_gpu_check_timer_stops_a_running_measurement(monkeypatch):
    """A measurement still running at the end of the step budget is stopped (not waited for)."""
    from reproduce.measure import gpu_kit as G
    _slow_batches(monkeypatch)
    budget = G.Budget(60)
    budget.install()
    try:
        t0 = time.monotonic()
        cells = G.measure_steps("smoke", "cpu", 0, True, budget, time.monotonic() + 2, lambda line: None, ["tetris"])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert time.monotonic() - t0 < 30
    assert [c.status for c in cells] == ["skipped", "skipped", "custom"]
    assert [c.note for c in cells[:2]] == ["stopped at the end of the time budget",
                                           "not measured (stopped at the end of the time budget)"]


def test_gpu_check_sigterm_stops_the_measurements(monkeypatch):
    """SIGTERM during a measurement: it stops, and no later benchmark is measured."""
    import threading

    from reproduce.measure import gpu_kit as G
    _slow_batches(monkeypatch)
    budget = G.Budget(600)
    budget.install()
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        cells = G.measure_steps("smoke", "cpu", 0, False, budget, time.monotonic() + 600, lambda line: None,
                                ["tetris", "rotated_mnist"])
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert budget.stopped == "SIGTERM"
    assert (cells[0].status, cells[0].note) == ("skipped", "stopped by SIGTERM")
    mnist = [c for c in cells if c.benchmark == "rotated_mnist"]
    assert len(mnist) == 6 and {(c.status, c.note) for c in mnist} == {("skipped", "stopped by SIGTERM")}


def test_gpu_check_rejects_bad_options(capsys):
    from reproduce.measure.gpu_kit import main
    assert main(["--device", "cpu", "--out", "/tmp/x", "--benchmarks", "mnist"]) == 2
    assert main(["--device", "cpu", "--out", "/tmp/x", "--tiny", "--tetris-only", "nope"]) == 2
    assert main(["--device", "cpu", "--out", "/tmp/x", "--budget-s", "10", "--steps-budget-s", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


@pytest.mark.slow
def test_gpu_check_tiny_everything_and_a_tetris_cell(tmp_path):
    out = _gpu_check(tmp_path, "--max-tetris-cells", "1", "--budget-s", "900")
    _check_kit(out, BENCHMARKS, 1)


@pytest.mark.slow
def test_gpu_check_sigterm_writes_what_it_has(tmp_path):
    """SIGTERM during a Tetris cell: the cell saves a checkpoint and stops, the kit writes its summary."""
    out = tmp_path / "check"
    p = subprocess.Popen([sys.executable, str(ROOT / "reproduce" / "gpu_check.py"), "--device", "cpu", "--tiny",
                          "--out", str(out), "--benchmarks", "rotated_mnist", "--tetris-only", "steerable"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        if line.startswith("wrote "):
            break
    time.sleep(8)  # inside the first Tetris cell
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 0, rest
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "SIGTERM" and summary["measurements"] > 0
    (cell,) = summary["tetris_cells"]
    assert cell["rc"].startswith("stopped") and os.path.isfile(out / "tetris_cells.csv")
