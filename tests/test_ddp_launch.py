"""DDP and launchers: the rank of a process comes from the launcher that started it, ranks > 0
never take run locks, write rows or change checkpoints, and every rank resumes from rank 0's
decision."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from reproduce.runner import runs as R
from tests.conftest import run_script

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "SLURM_NTASKS",
               "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT", "TORCHELASTIC_RUN_ID",
               "TORCHELASTIC_RESTART_COUNT")


@pytest.fixture
def launch_env(monkeypatch):
    """A clean launcher environment; ``set(world, per_node, **vars)`` describes a launch."""
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    saved = dict(R._LAUNCH)

    def setup(world: int, per_node: int, **env):
        R.set_launch(world, per_node)
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))

    yield setup
    R._LAUNCH.update(saved)


@pytest.mark.parametrize("env, world, per_node, rank, source", [
    # an interactive SLURM allocation (salloc: 1 task): Lightning starts rank 1, which inherits
    # SLURM_PROCID=0; the launcher's LOCAL_RANK is the rank
    ({"SLURM_PROCID": 0, "SLURM_NTASKS": 1, "LOCAL_RANK": 1, "NODE_RANK": 0, "WORLD_SIZE": 2}, 2, 2, 1, "lightning"),
    # ... and the process that started it (before and after it did)
    ({"SLURM_PROCID": 0, "SLURM_NTASKS": 1}, 2, 2, 0, "single"),
    ({"SLURM_PROCID": 0, "SLURM_NTASKS": 1, "LOCAL_RANK": 0, "NODE_RANK": 0, "WORLD_SIZE": 2}, 2, 2, 0, "lightning"),
    # Lightning on the second of two nodes, 4 processes each
    ({"LOCAL_RANK": 3, "NODE_RANK": 1, "WORLD_SIZE": 8}, 8, 4, 7, "lightning"),
    ({"NODE_RANK": 1}, 8, 4, 4, "lightning"),
    # srun started every task: SLURM_PROCID counts when SLURM_NTASKS is the world size
    ({"SLURM_PROCID": 3, "SLURM_NTASKS": 4}, 4, 4, 3, "srun"),
    ({"SLURM_PROCID": 3, "SLURM_NTASKS": 8}, 4, 4, 0, "single"),
    # torchrun
    ({"RANK": 5, "LOCAL_RANK": 1, "WORLD_SIZE": 8, "SLURM_PROCID": 0, "SLURM_NTASKS": 1}, 8, 4, 5, "torchrun"),
    ({}, 1, 1, 0, "single"),
    ({"NODE_RANK": 1}, 1, 1, 0, "single"),  # a variable left in the shell of a one-process run
])
def test_rank_comes_from_the_launcher_not_from_leftover_slurm_variables(launch_env, env, world, per_node, rank,
                                                                        source):
    launch_env(world, per_node, **env)
    assert R.rank_source() == (rank, source)
    assert R.global_rank() == rank


def test_rank_survives_lightnings_teardown_of_world_size(launch_env, monkeypatch):
    """Lightning's environment plugin deletes WORLD_SIZE when fit or test ends: rank 1 of the launch
    stays rank 1 for what runs after the test (rows, retrieval lists), but a LOCAL_RANK never seen
    with WORLD_SIZE (a leftover) is no rank."""
    launch_env(2, 2, LOCAL_RANK=1, NODE_RANK=0, WORLD_SIZE=2)
    assert R.global_rank() == 1
    monkeypatch.delenv("WORLD_SIZE")
    assert R.rank_source() == (1, "lightning")
    launch_env(2, 2)  # a new launch: what was seen is forgotten
    assert R.rank_source() == (0, "single")


def test_launch_token_is_shared_by_the_ranks_of_one_srun_step(launch_env):
    launch_env(2, 2, SLURM_PROCID=1, SLURM_NTASKS=2, SLURM_JOB_ID=77, SLURM_STEP_ID=0)
    assert R.launch_token() == "slurm-77-0-"
    launch_env(2, 2, SLURM_STEP_ID=1)
    assert R.launch_token() == "slurm-77-1-"


class _Bench:
    name = "fake"


def _ctx(tmp_path, world):
    from reproduce.runner.benchmark import Context
    from reproduce.runner.trainer import Launch
    return Context(cfg={}, preset="smoke", launch=Launch(cpu_procs=world, logger="none"), data_dir=None,
                   generate=False, data_source="stand-in", hardware="cpu", results_dir=tmp_path / "res",
                   runs_dir=tmp_path / "runs", code_version="test")


def test_a_rank_above_0_takes_no_lock_and_writes_no_row_in_an_interactive_allocation(launch_env, tmp_path,
                                                                                      monkeypatch):
    from reproduce.runner import grid
    launch_env(2, 2, SLURM_PROCID=0, SLURM_NTASKS=1, LOCAL_RANK=1, NODE_RANK=0, WORLD_SIZE=2)
    run = R.Run("fake", "m", {"k": 1}, 0, "smoke", {"x": 1})
    locks = []
    real_acquire = R.RunLock.acquire
    monkeypatch.setattr(R.RunLock, "acquire", lambda self, wait=False: locks.append(self) or real_acquire(self, wait))
    from reproduce.runner import trainer  # grid imports fit_and_test from here when a run trains
    monkeypatch.setattr(trainer, "fit_and_test", lambda bench, ctx, run: {"test_acc": 0.5})
    rows = grid.run_grid(_Bench(), _ctx(tmp_path, 2), [run])
    assert rows[0]["test_acc"] == 0.5
    d = run.run_dir(tmp_path / "runs")
    assert locks == []
    assert not (d / "row.json").exists() and not (d / "done").exists() and not (d / "started_at").exists()
    assert not (tmp_path / "res" / "fake.csv").exists()


def test_a_rank_above_0_never_withdraws_a_done_marker(launch_env, tmp_path):
    from reproduce.runner.grid import finished_row
    launch_env(2, 2, LOCAL_RANK=1, NODE_RANK=0, WORLD_SIZE=2, SLURM_PROCID=0, SLURM_NTASKS=1)
    (tmp_path / "done").write_text("x\n")
    (tmp_path / "row.json").write_text("{trunc")
    assert finished_row(tmp_path) is None
    assert (tmp_path / "done").is_file()  # rank 0 withdraws it, and says so


def _damaged_run(tmp_path):
    run = R.Run("fake", "m", {}, 0, "smoke", {})
    d = run.run_dir(tmp_path)
    (d / "checkpoints").mkdir(parents=True)
    (d / "checkpoints" / "last.ckpt").write_bytes(b"truncated")
    return run, d


def test_srun_ranks_above_0_wait_for_rank_0s_resume_decision_and_touch_nothing(launch_env, tmp_path):
    from reproduce.runner.trainer import shared_resume
    run, d = _damaged_run(tmp_path)
    launch_env(2, 2, SLURM_PROCID=1, SLURM_NTASKS=2, SLURM_JOB_ID=9, SLURM_STEP_ID=0)
    (d / "resume.json").write_text(json.dumps({"launch": "slurm-8-0-", "resume": "/old/launch.ckpt"}))  # stale

    def rank0_decides():
        time.sleep(0.5)
        (d / "resume.json").write_text(json.dumps({"launch": "slurm-9-0-", "resume": ""}))

    t = threading.Thread(target=rank0_decides)
    t.start()
    t0 = time.time()
    assert shared_resume(run, d, 2) is None
    t.join()
    assert time.time() - t0 >= 0.4  # it waited for this launch's decision, not the stale one
    assert (d / "checkpoints" / "last.ckpt").read_bytes() == b"truncated"  # not renamed by rank 1
    assert not (d / "checkpoints" / "last.ckpt.damaged").exists()


def test_rank_0_decides_sets_damaged_files_aside_and_hands_the_decision_on(launch_env, tmp_path, monkeypatch):
    from reproduce.runner.trainer import shared_resume
    run, d = _damaged_run(tmp_path)
    launch_env(2, 2, SLURM_PROCID=0, SLURM_NTASKS=2, SLURM_JOB_ID=9, SLURM_STEP_ID=0)
    monkeypatch.delenv(f"EB_RESUME_{run.run_id}", raising=False)
    assert shared_resume(run, d, 2) is None
    assert (d / "checkpoints" / "last.ckpt.damaged").exists()
    assert json.loads((d / "resume.json").read_text()) == {"launch": "slurm-9-0-", "resume": ""}
    import os
    assert os.environ[f"EB_RESUME_{run.run_id}"] == ""  # what the processes Lightning starts inherit
    # a process Lightning started reads the decision from its environment, nothing from the folder
    launch_env(2, 2, LOCAL_RANK=1, WORLD_SIZE=2, NODE_RANK=0)
    monkeypatch.setenv(f"EB_RESUME_{run.run_id}", str(d / "checkpoints" / "last.ckpt"))
    assert shared_resume(run, d, 2) == d / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_ddp_in_an_interactive_slurm_allocation_one_row_per_cell_and_ranks_agree(tmp_path):
    """``salloc`` then ``--cpu-procs 2``: Lightning starts rank 1 itself, and it inherits
    ``SLURM_PROCID=0``. Every rank used to believe it was rank 0 (rank 1 then waited forever for
    the run lock that rank 0 held). Two cells, each run by both ranks."""
    import csv
    root = Path(__file__).resolve().parents[1]
    run_script("tests/data/boring_bench.py", "--logger", "csv", "--results-dir", tmp_path / "res", "--runs-dir",
               tmp_path / "runs", "--data-dir", tmp_path / "data", "--stand-in", "--preset", "smoke", "--cpu-procs", "2",
               timeout=400, PYTHONPATH=root, SLURM_PROCID="0", SLURM_NTASKS="1", SLURM_JOB_NAME="bash",
               SLURM_JOB_ID="4242", SLURM_LOCALID="0", SLURM_NODEID="0")
    with open(tmp_path / "res" / "boring.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == ["mlp", "mlp_wide"]
    for r in rows:
        assert r["world_size"] == "2"
        run_dir = Path(r["run_dir"]) if Path(r["run_dir"]).is_absolute() else root / r["run_dir"]
        ranks = [json.loads((run_dir / f"rank{k}.json").read_text()) for k in (0, 1)]
        assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-6)
        assert len(list((run_dir / "logs").glob("attempt*"))) == 1  # rank 1 started no log of its own
