"""What a W&B dashboard gets: a two-model grid (one model at two settings, one model not
trained with Lightning) run three times offline, its ``offline-run-*`` folders read back record
by record (:mod:`tests.wandb_files`), and the README's sync command run with ``--dry-run``."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.runner.tables import Number, cell_numbers, numeric_table
from tests.conftest import boring_module
from tests.wandb_files import offline_runs

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "boring_bench.py"


def run_grid(tmp_path, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(EB_BORING="wandb", EB_NO_PROGRESS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(SCRIPT), "--preset", "smoke", "--logger", "wandb",
           "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
           "--data-dir", str(tmp_path / "data"), "--stand-in", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Invocation 1: one seed per cell; 2: a second seed (``--runs 2``) with checkpoint
    artifacts; 3: the same command again (nothing to train, tables unchanged)."""
    tmp = tmp_path_factory.mktemp("wandb_grid")
    run_grid(tmp)
    run_grid(tmp, "--runs", "2", "--log-checkpoints")
    p = run_grid(tmp, "--runs", "2")
    assert "0 to do" in p.stderr
    with open(tmp / "res" / "boring_wb.csv") as f:
        rows = list(csv.DictReader(f))
    return tmp, offline_runs(tmp / "runs"), rows


@pytest.mark.slow  # three grid invocations: ~30 s on a quiet 2-core machine
def test_one_wandb_run_per_grid_cell_including_custom_rows(grid):
    tmp, runs, rows = grid
    cells = [r for r in runs if r.job_type == "smoke"]
    assert len(rows) == 6 and {r["model"] for r in rows} == {"mlp", "centroid"}
    # every row of the results (the centroid rows, trained without Lightning, too) has exactly one run
    assert sorted(r.run_id for r in cells) == sorted(f"boring_wb-{r['run_id']}-s{r['seed']}" for r in rows)
    by_id = {r.run_id: r for r in cells}
    for row in rows:
        run = by_id[f"boring_wb-{row['run_id']}-s{row['seed']}"]
        assert run.summary["test/acc"] == pytest.approx(float(row["test_acc"]), abs=1e-6)
        assert "test_acc" not in run.summary  # test metrics once, under Lightning's key
        assert isinstance(run.summary["wall_s"], (int, float))
        assert run.config["run"]["model"] == row["model"] and f"seed={row['seed']}" in run.tags


@pytest.mark.slow  # three grid invocations: ~30 s on a quiet 2-core machine
def test_groups_separate_settings_and_average_seeds(grid):
    _, runs, _ = grid
    cells = [r for r in runs if r.job_type == "smoke"]
    groups: dict[str, set] = {}
    for r in cells:
        groups.setdefault(r.group, set()).add(r.config["run"]["seed"])
    assert len(groups) == 3  # mlp hidden=16, mlp hidden=32, centroid: each with both seeds
    assert all(seeds == {0, 1} for seeds in groups.values())
    assert sorted(g.rsplit("-", 1)[0] for g in groups) == [
        "boring_wb/smoke/centroid/default", "boring_wb/smoke/mlp/hidden=16", "boring_wb/smoke/mlp/hidden=32"]


@pytest.mark.slow  # three grid invocations: ~30 s on a quiet 2-core machine
def test_summaries_best_values_learning_rate_and_numbers(grid):
    _, runs, _ = grid
    lightning = [r for r in runs if r.job_type == "smoke" and r.config["run"]["model"] == "mlp"]
    assert len(lightning) == 4
    for r in lightning:
        s = r.summary
        accs = [h["val/acc"] for h in r.history if "val/acc" in h]
        losses = [h["val/loss"] for h in r.history if "val/loss" in h]
        assert len(accs) == 2  # two epochs
        assert s["val/acc"]["max"] == pytest.approx(max(accs)) and s["val/acc"]["last"] == pytest.approx(accs[-1])
        assert s["val/loss"]["min"] == pytest.approx(min(losses))
        assert "min" in s["train/loss_epoch"]
        # a formatted column of the CSV ("5.21e-16") is a number in W&B
        assert s["equivariance_error_cube"] == pytest.approx(5.21e-16) and isinstance(s["params"], int)
        # the step schedule (gamma 0.5 per epoch) as logged by the learning-rate monitor
        lrs = [h["lr-Adam"] for h in r.history if "lr-Adam" in h]
        assert lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.005)
    # checkpoints as artifacts only where asked for (the second invocation's seed-1 runs)
    with_artifacts = sorted(r.config["run"]["seed"] for r in lightning if r.artifacts)
    assert with_artifacts == [1, 1]
    for r in lightning:
        for a in r.artifacts:
            assert a.type == "model" and {f.path for f in a.manifest.contents} == {"config.yaml", "checkpoints/best.ckpt"}


@pytest.mark.slow  # three grid invocations: ~30 s on a quiet 2-core machine
def test_one_table_run_resumed_across_invocations_with_numeric_titled_tables(grid):
    _, runs, _ = grid
    tables = [r for r in runs if r.job_type == "table"]
    # two invocations changed the tables (the third had nothing new): two offline folders of one run id
    assert len(tables) == 2 and {r.run_id for r in tables} == {"boring_wb-smoke-tables"}
    assert [r.history[0]["_step"] for r in tables] == [0, 1]
    last = tables[-1]
    acc = last.table("boring_wb/accuracy")  # titled key, not table/0
    cols = acc["columns"]
    rows = {r[0]: dict(zip(cols, r)) for r in acc["data"]}
    mean, n = "reproduced acc (mean ± std, n runs): mean", "reproduced acc (mean ± std, n runs): n"
    assert isinstance(rows["hidden=16"][mean], float) and rows["hidden=16"][n] == 2
    assert rows["hidden=16"]["published acc: mean"] == 90.0 and rows["hidden=16"]["published acc: std"] == 2.0
    assert rows["hidden=16"]["reproduced acc (mean ± std, n runs): text"].endswith("(n=2)")
    assert rows["default"]["reproduced acc (mean ± std, n runs): n"] == 2  # the custom rows
    assert rows["hidden=16"]["cube error"] == pytest.approx(5.21e-16)
    cells = last.table("boring_wb/cells")
    line = dict(zip(cells["columns"], next(r for r in cells["data"] if r[0] == "centroid")))
    assert line["runs"] == 2 and line["test_acc: n"] == 2 and isinstance(line["test_acc: mean"], float)
    assert last.summary["finished_runs"] == 6


@pytest.mark.slow  # three grid invocations: ~30 s on a quiet 2-core machine
def test_readme_sync_command_finds_every_offline_run(grid):
    tmp, runs, _ = grid
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^(find runs .*wandb sync.*)$", readme, flags=re.M)
    dry = command.replace("wandb sync", "wandb sync --dry-run", 1)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "WANDB_MODE": "offline"}
    p = subprocess.run(["bash", "-c", dry], cwd=tmp, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"Would sync {len(runs)} run(s)" in p.stdout + p.stderr


def test_numeric_table_columns():
    heads = ["model", "published", "acc", "params", "note"]
    body = [["a", "99 ± 2 % (p. 8)", Number("50.0 ± 1.0 % (n=2)", mean=50.04, std=1.0, n=2), "1,234", "3D CNN"],
            ["b", "–", "–", Number("12", value=12), "x"]]
    cols, data = numeric_table(heads, body)
    assert cols == ["model", "published: mean", "published: std", "published: text", "acc: mean", "acc: std",
                    "acc: n", "acc: text", "params", "params: text", "note"]
    assert data[0][4] == 50.04 and data[0][6] == 2 and data[1][8] == 12 and data[1][4] is None
    assert cell_numbers("3D CNN") is None and cell_numbers("86.8 %") == {"value": 86.8}


def test_log_checkpoints_without_wandb_is_one_error_line(tmp_path, capsys, monkeypatch):
    """In-process: the test double's main (a command's own path is tested by test_cli and test_reliability)."""
    from reproduce.runner import main
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("EB_BORING", "wandb")
    assert main(boring_module(monkeypatch).BENCH, argv=[
        "--preset", "smoke", "--logger", "csv", "--log-checkpoints", "--results-dir", str(tmp_path / "res"),
        "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--stand-in"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --log-checkpoints logs W&B artifacts; it needs --logger wandb, not csv", err
    assert not (tmp_path / "runs").exists()
