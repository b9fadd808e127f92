"""A grid cell is a job (reproduce/runner/launchers.py): ``--cell`` runs one cell, ``--jobs K`` runs K
cell commands at once, ``--launcher slurm`` submits a job array through submitit (here its local
executor); every launcher writes the same rows as the sequential grid."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.runner import launchers as L
from tests.conftest import boring_module, run_script, script_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "boring_bench.py"
#: what a row measures (not when, where or how long)
SAME = ("model", "setting", "seed", "preset", "run_id", "test_acc", "test_loss", "final_train_loss", "params")


def base(tmp_path) -> list[str]:
    return ["--logger", "csv", "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "data"), "--stand-in", "--preset", "smoke"]


def boring(tmp_path, *extra, check=True):
    return run_script(SCRIPT, *base(tmp_path), *extra, check=check, PYTHONPATH=ROOT)


def measured(tmp_path) -> list[tuple]:
    with open(tmp_path / "res" / "boring.csv") as f:
        return sorted(tuple(r[k] for k in SAME) for r in csv.DictReader(f))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    d = tmp_path_factory.mktemp("sequential")
    boring(d)
    return measured(d)


def test_cell_argv_drops_the_driver_options_only():
    argv = ["--preset", "smoke", "--jobs", "3", "--launcher=slurm", "--time", "10", "--wait", "--only", "mlp",
            "x.y=1", "--account=a", "--partition", "p", "--cell", "abc"]
    assert L.cell_argv(argv) == ["--preset", "smoke", "--only", "mlp", "x.y=1"]


@pytest.mark.slow
def test_cell_runs_exactly_that_cell_and_no_table(tmp_path, sequential):
    run_id = sequential[1][4]
    p = boring(tmp_path, "--cell", run_id)
    rows = measured(tmp_path)
    assert [r[4] for r in rows] == [run_id] and rows == [r for r in sequential if r[4] == run_id]
    assert not (tmp_path / "res" / "boring.md").exists()  # the driver (or --table) writes it
    bad = boring(tmp_path, "--cell", "0000000000", check=False)
    assert bad.returncode == 2 and "error: --cell 0000000000 is not a run" in bad.stderr


@pytest.mark.slow
def test_jobs_2_writes_the_rows_of_the_sequential_grid(tmp_path, sequential):
    p = boring(tmp_path, "--jobs", "2")
    assert "2 to do as cells (2 at once)" in p.stderr
    assert measured(tmp_path) == sequential
    assert "| mlp |" in (tmp_path / "res" / "boring.md").read_text()
    logs = sorted((tmp_path / "runs").rglob("logs/cell.log"))
    assert len(logs) == 2


@pytest.mark.slow
def test_slurm_launcher_through_submitits_local_executor_writes_the_same_rows(tmp_path, sequential, monkeypatch):
    pytest.importorskip("submitit")
    mod = boring_module(monkeypatch)
    monkeypatch.setattr(L, "CLUSTER", "local")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from reproduce.runner import main
    assert main(mod.BENCH, argv=[*base(tmp_path), "--launcher", "slurm", "--time", "0:10:00", "--wait"]) == 0
    assert measured(tmp_path) == sequential
    assert "| mlp |" in (tmp_path / "res" / "boring.md").read_text()
    logs = sorted((tmp_path / "runs").rglob("logs/slurm-*-rank0.log"))
    assert len(logs) == 2 and all("error" not in p.read_text() for p in logs)
    assert (tmp_path / "runs" / "boring" / "smoke" / "slurm").is_dir()  # submitit's own files
    # submitted without --wait: nothing to wait for (all finished), the table comes from --table
    assert main(mod.BENCH, argv=[*base(tmp_path), "--launcher", "slurm"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--cell", "abc", "--jobs", "2"], "--cell runs one cell itself"),
    (["--partition", "gpu"], "--partition: only with --launcher slurm"),
    (["--launcher", "slurm", "--time", "ten"], "--time 'ten'"),
])
def test_launcher_options_are_checked_before_anything_runs(tmp_path, args, message, capsys, monkeypatch):
    from reproduce.runner import main
    assert main(boring_module(monkeypatch).BENCH, argv=[*base(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_sigterm_to_the_driver_stops_its_cells_and_the_rerun_resumes_them(tmp_path, sequential):
    import signal
    import time
    env = script_env(PYTHONPATH=ROOT, EB_TEST_EPOCH_SLEEP="0.5")
    p = subprocess.Popen([sys.executable, str(SCRIPT), *base(tmp_path), "--jobs", "2"], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 200
    while time.time() < deadline and len(list((tmp_path / "runs").rglob("checkpoints/last.ckpt"))) < 2:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=200)
    assert p.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err and "run the same command again to resume" in err
    stopped = [log for log in (tmp_path / "runs").rglob("logs/cell.log") if "stopped by SIGTERM" in log.read_text()]
    assert stopped  # a cell still training saved its checkpoint and said so
    assert all(not (log.parents[1] / "done").exists() for log in stopped)
    p = boring(tmp_path, "--jobs", "2")
    # resumed from the checkpoints saved at SIGTERM: the same runs (a resume mid-epoch draws other
    # batches than an uninterrupted run, so the metrics are not compared)
    assert [r[:5] for r in measured(tmp_path)] == [r[:5] for r in sequential]
    logs = "".join(log.read_text() for log in (tmp_path / "runs").rglob("logs/cell.log"))
    assert logs.count("resuming") >= len(stopped)  # every stopped cell resumed
