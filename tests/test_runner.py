"""The shared reproduction runner, exercised through a tiny benchmark (tests/data/boring_bench.py):
grid and results files, skip-finished, resume after a kill, --evaluate, bad input, DDP on CPU (gloo)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reproduce.runner import config as _config
from reproduce.runner.grid import current_rows
from reproduce.runner.runs import Run
from reproduce.runner.store import read_rows, upsert_row, upsert_rows
from tests.conftest import boring_module, run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "boring_bench.py"


def run_boring(tmp_path, *extra, env=None, check=True):
    return run_script(SCRIPT, "--logger", "csv", "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs",
                      "--data-dir", tmp_path / "data", "--stand-in", *extra, check=check, timeout=240, **(env or {}))


def rows(tmp_path):
    with open(tmp_path / "res" / "boring.csv") as f:
        return list(csv.DictReader(f))


def test_grid_writes_rows_and_table_then_skips_finished(tmp_path):
    run_boring(tmp_path, "--preset", "smoke")
    first = rows(tmp_path)
    assert [r["model"] for r in first] == ["mlp", "mlp_wide"]
    for r in first:
        assert r["preset"] == "smoke" and r["data_source"] == "stand-in"
        assert 0.0 <= float(r["test_acc"]) <= 1.0 and int(r["params"]) > 0
        assert (ROOT / r["run_dir"] / "done").is_file()
    md = (tmp_path / "res" / "boring.md").read_text()
    assert "| mlp |" in md and "Preset: `smoke`" in md
    # second invocation: nothing retrained, rows unchanged
    p = run_boring(tmp_path, "--preset", "smoke")
    assert "0 to do" in p.stderr
    assert rows(tmp_path) == first


@pytest.mark.slow
def test_killed_run_resumes_from_checkpoint(tmp_path):
    p = run_boring(tmp_path, "--preset", "smoke", "--only", "mlp",
                   env={"EB_TEST_KILL_AT_EPOCH": "2"}, check=False)
    assert p.returncode == 17
    assert not (tmp_path / "res" / "boring.csv").exists()  # nothing half-written
    last = list((tmp_path / "runs").rglob("last.ckpt"))
    assert len(last) == 1
    p = run_boring(tmp_path, "--preset", "smoke", "--only", "mlp")
    assert "resuming" in p.stderr and "from last.ckpt" in p.stderr
    logs = sorted((tmp_path / "runs").rglob("logs/attempt*/metrics.csv"))
    assert [p.parent.name for p in logs] == ["attempt0", "attempt1"]

    def trained_epochs(path):
        return {int(r["epoch"]) for r in csv.DictReader(open(path)) if r.get("val/acc")}

    # epochs 0-1 before the kill, only the last epoch (2) after: nothing retrained
    assert trained_epochs(logs[0]) == {0, 1} and trained_epochs(logs[1]) == {2}
    assert [r["model"] for r in rows(tmp_path)] == ["mlp"]


@pytest.mark.slow
def test_evaluate_rescore_checkpoint_on_other_data(tmp_path):
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp")
    ckpt = next((tmp_path / "runs").rglob("best.ckpt"))
    other = tmp_path / "other"
    run_boring(tmp_path, "--preset", "smoke", "--data-dir", str(other), "--stand-in")  # writes data
    p = run_boring(tmp_path, "--preset", "smoke", "--evaluate", str(ckpt), "--data-dir", str(other))
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert 0.0 <= out["test_acc"] <= 1.0 and out["data_dir"] == str(other)


@pytest.mark.slow
def test_evaluate_refuses_another_class_count_unless_asked(tmp_path):
    """A 2-output checkpoint on data of 3 classes: refused whatever is asked; on data of 1 class:
    refused naming both counts, scored with --allow-mismatch, which says so in one line; an
    override of data.num_classes is refused the same way."""
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp")
    ckpt = next((tmp_path / "runs").rglob("best.ckpt"))
    rng = np.random.default_rng(1)
    for name, classes in (("three", 3), ("one", 1)):
        (tmp_path / name).mkdir()
        y = rng.integers(0, classes, 64)
        np.savez(tmp_path / name / "blobs.npz", x=rng.normal(size=(64, 8)) + 1.5 * y[:, None], y=y)

    def ev(folder, *extra):  # the data as they are (no --stand-in)
        return run_script(SCRIPT, "--logger", "none", "--preset", "smoke", "--evaluate", ckpt, "--data-dir",
                          tmp_path / folder, "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs", *extra,
                          check=False, timeout=240)

    def error(p):
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --evaluate: "), p.stderr
        return lines[0]

    npz = tmp_path / "three" / "blobs.npz"
    for extra in ((), ("--allow-mismatch",)):
        assert error(ev("three", *extra)) == (f"error: --evaluate: the checkpoint's head has 2 outputs, data has "
                                              f"3 classes ({npz}): class 2 of the data would have no output "
                                              f"to be scored by")
    msg = error(ev("one"))
    assert "the checkpoint's head has 2 outputs, data has 1 class (" in msg
    assert msg.endswith("pass --allow-mismatch to score them as the checkpoint's class 0")
    p = ev("one", "--allow-mismatch")
    assert p.returncode == 0, p.stderr[-2000:]
    said = [ln for ln in p.stderr.splitlines() if "--allow-mismatch" in ln]
    assert said == ["[boring] --allow-mismatch: the checkpoint's head has 2 outputs, data has 1 class; data "
                    "class k (k = 0-0, in the data's order) is scored as the checkpoint's class k"], p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert 0.0 <= out["test_acc"] <= 1.0 and out["allowed_mismatch"] == [said[0].split(": ", 1)[1]]
    msg = error(ev("one", "data.num_classes=1"))
    assert "the checkpoint's head has 2 outputs, data has 1 class (data.num_classes=1); pass --allow-mismatch" in msg
    p = run_boring(tmp_path, "--preset", "smoke", "--allow-mismatch", check=False)
    assert p.returncode == 2 and "--allow-mismatch goes with --evaluate CKPT" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["--preset", "smoke", "--only", "nope"], "unknown model(s) nope"),
    (["--preset", "smoke", "optim.lrr=1"], "config optim.lrr: unknown key for Optim"),
    (["--preset", "smoke", "grid.runz=1"], "unknown key 'grid.runz'"),
    (["--preset", "smoke", "optim"], "must look like key.sub=value"),
    (["--preset", "smoke", "optim.lr=[1"], "not valid YAML"),
])
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, message, capsys, monkeypatch):
    """In-process (argparse's refusals exit 2, the runner's return 2); the command line's own
    path: test_cli, test_interruptions."""
    try:
        rc = boring_main(monkeypatch, "--logger", "csv", "--results-dir", tmp_path / "res", "--runs-dir",
                         tmp_path / "runs", "--data-dir", tmp_path / "data", "--stand-in", *args)
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "res").exists()


def boring_main(monkeypatch, *argv) -> int:
    """``main`` of tests/data/boring_bench.py in-process (the command line's own refusals:
    test_cli.test_an_unmet_request_through_the_command_line_writes_nothing and
    test_interruptions.test_bad_values_are_refused_before_any_run_folder)."""
    from reproduce.runner import main
    return main(boring_module(monkeypatch).BENCH, argv=[str(a) for a in argv])


def test_missing_data_dir_is_an_error(tmp_path, capsys, monkeypatch):
    assert boring_main(monkeypatch, "--preset", "smoke", "--data-dir", tmp_path / "nowhere",
                       "--results-dir", tmp_path / "res") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "--stand-in" in err and err.count("\n") == 1, err
    assert not (tmp_path / "res").exists()


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tmp_path):
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp", "--cpu-procs", "2")
    (row,) = rows(tmp_path)
    assert row["world_size"] == "2" and "2 DDP procs" in row["hardware"]
    run_dir = Path(row["run_dir"]) if Path(row["run_dir"]).is_absolute() else ROOT / row["run_dir"]
    ranks = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-6)


def test_upsert_row_replaces_by_run_id_and_keeps_others(tmp_path):
    path = tmp_path / "r.csv"
    upsert_row(path, {"model": "a", "seed": 0, "run_id": "x", "test_acc": 0.5})
    upsert_row(path, {"model": "b", "seed": 0, "run_id": "y", "test_acc": 0.7, "extra": 1})
    upsert_row(path, {"model": "a", "seed": 0, "run_id": "x", "test_acc": 0.6})
    got = read_rows(path)
    assert [(r["model"], r["test_acc"]) for r in got] == [("b", "0.7"), ("a", "0.6")]
    assert list(got[0])[:2] == ["model", "seed"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_upsert_rows_replaces_a_measurement_cell_whole(tmp_path):
    """A measurement cell's rows share its run_id: a new set replaces all of them (a shorter one
    leaves none of the old rows behind), the same set changes nothing, other cells stay."""
    path = tmp_path / "m.csv"
    cell = [{"model": "g", "run_id": "c", "degree": d, "err": 0.1 * d} for d in (1, 2, 3)]
    assert upsert_rows(path, cell + [{"model": "h", "run_id": "d", "degree": 1, "err": 9}]) == 4
    assert upsert_rows(path, cell) == 0
    assert upsert_rows(path, [{"model": "g", "run_id": "c", "degree": 1, "err": 0.5}]) == 1
    assert [(r["run_id"], r["degree"], r["err"]) for r in read_rows(path)] == [("d", "1", "9"), ("c", "1", "0.5")]


def test_table_drops_rows_made_with_an_earlier_config():
    grid = [Run("b", "m", {"k": 1}, 0, "cpu", {"lr": 0.1})]
    new = grid[0].run_id
    old = Run("b", "m", {"k": 1}, 0, "cpu", {"lr": 0.3}).run_id
    assert new != old
    rows = [{"model": "m", "setting": "k=1", "seed": "0", "preset": "cpu", "run_id": old},
            {"model": "m", "setting": "k=1", "seed": "0", "preset": "cpu", "run_id": new},
            {"model": "m", "setting": "k=1", "seed": "1", "preset": "cpu", "run_id": "extra-seed"},
            {"model": "m", "setting": "k=1", "seed": "0", "preset": "smoke", "run_id": "x"},
            {"model": "m", "setting": "k=2", "seed": "0", "preset": "cpu", "run_id": "setting-gone"},
            {"model": "gone", "setting": "k=1", "seed": "0", "preset": "cpu", "run_id": "model-gone"}]
    assert [r["run_id"] for r in current_rows(rows, "cpu", grid)] == [new, "extra-seed"]


def test_config_extends_and_overrides(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "paper.yaml").write_text("a: {b: 1, c: [1, 2]}\nd: 3\n")
    (tmp_path / "x" / "smoke.yaml").write_text("extends: paper.yaml\na: {b: 2}\n")
    cfg = _config.load_preset("x", "smoke", tmp_path)
    assert cfg["a"] == {"b": 2, "c": [1, 2]} and cfg["d"] == 3 and cfg["preset"] == "smoke"
    cfg = _config.apply_overrides(cfg, ["a.c=[3]", "d=0.5"])
    assert cfg["a"]["c"] == [3] and cfg["d"] == 0.5


def test_segmentation_task_selects_on_validation_map(tmp_path):
    """The runner is task-agnostic: a Segment benchmark declares its task and selects the tested
    checkpoint on val/map (config ``trainer.select``), and its rows carry the dense metrics."""
    run_boring(tmp_path, "--preset", "smoke", env={"EB_BORING": "segment"})
    (row,) = list(csv.DictReader(open(tmp_path / "res" / "boring_seg.csv")))
    assert 0.0 <= float(row["test_map"]) <= 1.0 and "test_iou_a" in row and "test_recall_bg" in row
    assert row["checkpoint"].endswith("best.ckpt")
    assert "final_train_loss" in row
    assert "| sites |" in (tmp_path / "res" / "boring_seg.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["trainer.max_epochs=abc"], "config trainer.max_epochs: expected int, got 'abc'"),
    (["optim.lr=-1"], "lr must be positive"),
    (["data.batch_size=abc"], "config data.batch_size: expected int, got 'abc'"),
    (["models.mlp.kind=transformer"], "models.mlp.kind 'transformer' is unknown; valid kinds: mlp"),
    (["models.mlp.hidden=[1]"], "config models.mlp.hidden: expected int"),
])
def test_typed_config_errors_name_the_key_before_training(tmp_path, args, message, capsys, monkeypatch):
    assert boring_main(monkeypatch, "--logger", "csv", "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs",
                       "--data-dir", tmp_path / "data", "--stand-in", "--preset", "smoke", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "res").exists()


@pytest.mark.slow
def test_stand_in_manifest_reused_then_regenerated_when_its_parameters_change(tmp_path):
    run_boring(tmp_path, "--preset", "smoke", "--list")  # --list prepares nothing
    assert not (tmp_path / "data").exists()
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp")
    manifest = json.loads((tmp_path / "data" / "STAND_IN.json").read_text())
    assert manifest["params"] == {"samples": 256} and set(manifest["files"]) == {"blobs.npz"}
    stamp = (tmp_path / "data" / "blobs.npz").stat().st_mtime_ns
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp")
    assert (tmp_path / "data" / "blobs.npz").stat().st_mtime_ns == stamp  # reused
    (tmp_path / "data" / "blobs.npz").write_bytes(b"tampered")
    p = run_boring(tmp_path, "--preset", "smoke", "--only", "mlp", check=False)
    assert p.returncode == 2 and "was changed after it was generated" in p.stderr
    (tmp_path / "data" / "blobs.npz").unlink()
    run_boring(tmp_path, "--preset", "smoke", "--only", "mlp", "data.samples=128")  # new parameters
    assert json.loads((tmp_path / "data" / "STAND_IN.json").read_text())["params"] == {"samples": 128}
    with np.load(tmp_path / "data" / "blobs.npz") as z:
        assert len(z["y"]) == 128
    p = run_boring(tmp_path, "--preset", "smoke", "data.sampels=3", check=False)
    assert p.returncode == 2 and "config data.sampels: unknown key for BlobData" in p.stderr


def test_wandb_is_offline_by_default_one_run_per_grid_cell_with_its_own_test_metrics_and_a_table_run(tmp_path):
    """No WANDB_* variable set: the runs are offline (a run that went online would need an
    account), one per grid cell and one for the invocation's tables; the CSV log is kept too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    p = subprocess.run([sys.executable, str(SCRIPT), "--logger", "wandb", "--results-dir", str(tmp_path / "res"),
                        "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--stand-in",
                        "--preset", "smoke"], capture_output=True, text=True, cwd=ROOT, timeout=240,
                       env={**env, "EB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    offline = list((tmp_path / "runs").rglob("wandb/offline-run-*"))
    assert len([d for d in offline if "/tables/" not in str(d)]) == 2  # the two grid cells' runs
    assert len([d for d in offline if "/tables/" in str(d)]) == 1      # the invocation's tables
    assert len(list((tmp_path / "runs").rglob("logs/attempt0/metrics.csv"))) == 2  # CSV always
    from tests.wandb_files import offline_runs
    by_kind = {}
    for run in offline_runs(tmp_path / "runs"):
        by_kind.setdefault("table" if run.name.endswith("-table") else "cell", []).append(run)
    cells = by_kind["cell"]
    assert sorted(r.name for r in cells) == ["boring-mlp-hidden=16-seed0", "boring-mlp_wide-hidden=32-seed0"]
    assert len({r.run_id for r in cells}) == 2
    for r in cells:
        assert 0.0 <= r.summary["test/acc"] <= 1.0 and r.summary["params"] > 0
    (table_run,) = by_kind["table"]
    assert table_run.name == "boring-smoke-table"


def test_datamodule_state_is_what_the_checkpoint_saved_of_that_datamodule(tmp_path):
    import torch

    from reproduce.runner.evaluate import datamodule_state

    class Shapes:  # stands for a LightningDataModule class: its state is saved under its __qualname__
        pass

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, Shapes.__qualname__: {"class_names": ["04379243", "02691156"]}}, path)
    assert datamodule_state(path, Shapes) == {"class_names": ["04379243", "02691156"]}
    assert datamodule_state(str(path), torch.nn.Module) == {}
