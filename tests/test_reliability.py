"""Nothing lost, nothing silent (the runner's side), through the test double tests/data/boring_bench.py:
real SIGKILLs, truncated checkpoints, a deleted CSV row, two concurrent invocations, a corrupt
row.json, unwritable folders, bad checkpoints for --evaluate, wrong-typed options."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.runner.checkpoints import check_checkpoint
from tests.conftest import boring_module, run_script, script_env

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "boring_bench.py"


def args(tmp_path, *extra):
    return ["--logger", "csv", "--preset", "smoke", "--results-dir", str(tmp_path / "res"),
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--stand-in", *extra]


def cmd(tmp_path, *extra):
    return [sys.executable, str(SCRIPT), *args(tmp_path, *extra)]


def run(tmp_path, *extra, check=True, **kw):
    return run_script(SCRIPT, *args(tmp_path, *extra), check=check, **kw)


def rows(tmp_path, name="boring"):
    path = tmp_path / "res" / f"{name}.csv"
    return list(csv.DictReader(open(path))) if path.is_file() else []


def ckpt_dir(tmp_path, model="mlp"):
    (d,) = list((tmp_path / "runs").glob(f"boring/smoke/{model}/*/seed0-*/checkpoints"))
    return d


def test_sigkill_during_training_then_resume_finishes_with_nothing_left_over(tmp_path):
    p = subprocess.Popen(cmd(tmp_path, "--only", "mlp", "trainer.max_epochs=40"), env=script_env(EB_TEST_EPOCH_SLEEP="0.5"),
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 200:  # wait for a few checkpoints, then kill -9 mid-training
        last = list((tmp_path / "runs").rglob("last.ckpt.prev"))
        if last:
            break
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not rows(tmp_path)
    out = run(tmp_path, "--only", "mlp", "trainer.max_epochs=40")
    assert "resuming" in out.stderr
    assert [r["model"] for r in rows(tmp_path)] == ["mlp"]
    assert not list((tmp_path / "runs").rglob(".*.tmp*"))
    # the finished smoke run keeps its tested (val/acc-selected) checkpoint only
    assert check_checkpoint(ckpt_dir(tmp_path) / "best.ckpt") is None
    assert sorted(f.name for f in ckpt_dir(tmp_path).iterdir()) == ["best.ckpt", "pruned.json"]


@pytest.mark.slow
def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    p = run(tmp_path, "--only", "mlp", check=False, EB_TEST_KILL_AT_EPOCH="2")
    assert p.returncode == 17
    d = ckpt_dir(tmp_path)
    last = d / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 10])  # a kill during the copy
    assert check_checkpoint(last) is not None
    listed = run(tmp_path, "--only", "mlp", "--list").stdout
    assert "last.ckpt damaged" in listed
    out = run(tmp_path, "--only", "mlp")
    assert "is damaged" in out.stderr and "resuming" in out.stderr and "last.ckpt.prev" in out.stderr
    assert (d / "last.ckpt.damaged").is_file()
    assert [r["model"] for r in rows(tmp_path)] == ["mlp"]


@pytest.mark.slow
def test_no_usable_checkpoint_restarts_the_run_and_says_so(tmp_path):
    run(tmp_path, "--only", "mlp", check=False, EB_TEST_KILL_AT_EPOCH="2")
    d = ckpt_dir(tmp_path)
    for name in ("last.ckpt", "last.ckpt.prev"):
        (d / name).write_bytes(b"garbage")
    assert "damaged (will restart)" in run(tmp_path, "--only", "mlp", "--list").stdout
    out = run(tmp_path, "--only", "mlp")
    assert "restarting the run from scratch" in out.stderr
    assert [r["model"] for r in rows(tmp_path)] == ["mlp"]


@pytest.mark.slow
def test_a_lost_csv_row_comes_back_from_its_run_folder(tmp_path):
    run(tmp_path)
    before = rows(tmp_path)
    assert len(before) == 2
    with open(tmp_path / "res" / "boring.csv", "w") as f:  # an older copy: header and one row
        w = csv.DictWriter(f, fieldnames=list(before[0]), lineterminator="\n")
        w.writeheader()
        w.writerow(before[1])
    out = run(tmp_path)
    assert "restored 1 row(s)" in out.stderr and "0 to do" in out.stderr
    assert sorted(r["run_id"] for r in rows(tmp_path)) == sorted(r["run_id"] for r in before)
    assert "(n=1)" in (tmp_path / "res" / "boring.md").read_text()


@pytest.mark.slow
def test_two_concurrent_invocations_train_every_run_once(tmp_path):
    run(tmp_path, "--only", "mlp", "trainer.max_epochs=1")  # the stand-in exists before both start
    procs = [subprocess.Popen(cmd(tmp_path, "trainer.max_epochs=8"), env=script_env(), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=400)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    # three run folders (the 1-epoch run and the grid's two), each trained by one attempt only
    run_dirs = list((tmp_path / "runs").glob("boring/smoke/*/*/seed0-*"))
    assert len(run_dirs) == 3
    assert [len(list((d / "logs").glob("attempt*"))) for d in run_dirs] == [1, 1, 1], errs
    got = rows(tmp_path)
    assert len(got) == 3 and len({r["run_id"] for r in got}) == 3


@pytest.mark.slow
def test_corrupt_row_json_is_retested_not_fatal(tmp_path):
    run(tmp_path)
    (row_json,) = list((tmp_path / "runs").rglob("boring/smoke/mlp/*/seed0-*/row.json"))
    row_json.write_text("{not json")
    out = run(tmp_path)
    assert "row.json is unreadable" in out.stderr and "1 to do" in out.stderr
    assert json.loads(row_json.read_text())["model"] == "mlp"
    assert len(rows(tmp_path)) == 2


def in_process(monkeypatch, tmp_path, *extra) -> int:
    """``main`` of the test double in-process with :func:`args` (the command line's own refusals:
    test_cli.test_an_unmet_request_through_the_command_line_writes_nothing and
    test_interruptions.test_bad_values_are_refused_before_any_run_folder)."""
    from reproduce.runner import main
    return main(boring_module(monkeypatch).BENCH, argv=args(tmp_path, *extra))


def test_unwritable_results_dir_is_refused_before_training(tmp_path, capsys, monkeypatch):
    # /proc refuses new folders even to root (a chmod'ed folder would not stop root)
    assert in_process(monkeypatch, tmp_path, "--results-dir", "/proc/eb-results") == 2
    err = capsys.readouterr().err
    assert "--results-dir /proc/eb-results is not writable" in err and err.count("\n") == 1, err
    assert not list((tmp_path / "runs").rglob("*.ckpt"))


def test_unwritable_runs_dir_is_refused_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "runs").write_text("a file, not a folder")
    assert in_process(monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err
    assert "--runs-dir" in err and "not writable" in err and err.count("\n") == 1, err
    assert not (tmp_path / "res" / "boring.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("content, why", [
    (lambda good: good[: len(good) // 3], "not a torch zip archive"),
    (lambda good: b"", "empty file"),
    (lambda good: b"\x00garbage" * 100, "not a torch zip archive"),
])
def test_evaluate_refuses_unusable_checkpoints_in_one_line(tmp_path, content, why):
    run(tmp_path, "--only", "mlp", "--keep-checkpoints", "all")  # last.ckpt stays beside the selected one
    d = ckpt_dir(tmp_path)
    bad = d / "bad.ckpt"
    bad.write_bytes(content((d / "last.ckpt").read_bytes()))
    p = run(tmp_path, "--evaluate", str(bad), check=False)
    assert p.returncode == 2 and why in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: --evaluate")


@pytest.mark.slow
def test_evaluate_refuses_pickled_and_non_lightning_files_and_a_corrupt_config(tmp_path):
    import torch

    run(tmp_path, "--only", "mlp", "--keep-checkpoints", "all")
    d = ckpt_dir(tmp_path)
    pickled = d / "pickled.ckpt"
    torch.save({"state_dict": {}, "obj": Path("x")}, pickled)  # needs unpickling a class
    p = run(tmp_path, "--evaluate", str(pickled), check=False)
    assert p.returncode == 2 and "UnpicklingError" in p.stderr
    plain = d / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    p = run(tmp_path, "--evaluate", str(plain), check=False)
    assert p.returncode == 2 and "not a Lightning checkpoint" in p.stderr
    (d.parent / "config.yaml").write_text("benchmark: [unclosed")
    p = run(tmp_path, "--evaluate", str(d / "last.ckpt"), check=False)
    assert p.returncode == 2 and "config.yaml is not a run config" in p.stderr


@pytest.mark.slow
def test_evaluate_uses_the_checkpoints_config_and_says_what_it_scored(tmp_path):
    run(tmp_path, "--only", "mlp_wide", "--keep-checkpoints", "all")
    (ckpt,) = list((tmp_path / "runs").rglob("mlp_wide/*/seed0-*/checkpoints/last.ckpt"))
    # the command line's preset would build the 16-unit MLP; the checkpoint's config says 32
    p = run(tmp_path, "--evaluate", str(ckpt))
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["test_samples"] == 64 and 0 <= out["test_acc"] <= 1
    assert "scored 64 test samples" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["--only", ","], "--only ',' names no model"),
    (["--cpu-procs", "0"], "--cpu-procs must be at least 1"),
    (["--num-nodes", "0"], "--num-nodes must be at least 1"),
    (["grid.runs=abc"], "config grid.runs: expected an int >= 1, got 'abc'"),
])
def test_wrong_options_are_one_line_errors(tmp_path, args, message, capsys, monkeypatch):
    """In-process (a real command's refusal: test_cli, test_interruptions)."""
    assert in_process(monkeypatch, tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
