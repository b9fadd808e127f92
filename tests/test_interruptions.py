"""Nothing lost when a run is interrupted: periodic ``last.ckpt`` whatever selects the tested model,
SIGTERM / SIGUSR1 / Ctrl-C (a checkpoint, a non-zero status, one line), kills during a stand-in or a
checkpoint write, bad values refused before any run folder exists, a full disk, ``--evaluate``
overrides and read-only folders, ``--list`` of a corrupt row, ``started_at`` across resumptions.

Each mechanism has a fast in-process test; real signals go to subprocesses of the test double
tests/data/boring_bench.py (a few seconds each) and, marked slow, of the Tetris smoke preset."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules._common import InputError, WRITING, ensure_stand_in, stand_in_manifest
from reproduce.runner.checkpoints import AtomicCheckpointIO, check_checkpoint, recover, resume_point
from reproduce.runner.config import config_hash
from tests.conftest import boring_module, first_fast, script_env
from tests.test_reliability import ROOT, ckpt_dir, cmd, rows, run


# --------------------------------------------------------------------------- helpers
def epochs_trained(run_dir: Path) -> list[list[int]]:
    """Per attempt, the epochs that logged a training loss."""
    import csv
    out = []
    for log in sorted(run_dir.glob("logs/attempt*/metrics.csv"), key=lambda p: int(p.parent.name[7:])):
        out.append(sorted({int(r["epoch"]) for r in csv.DictReader(open(log)) if r.get("train/loss_epoch")}))
    return out


def wait_for(predicate, proc, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def tiny_trainer(tmp_path, select, max_epochs=5, every=2, callbacks=()):
    """The runner's Lightning trainer (make_trainer) for a two-parameter model in-process."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from reproduce.runner.runs import Run
    from reproduce.runner.trainer import Launch, StopOnSignal, make_trainer

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            x, y = batch
            loss = ((self.lin(x).squeeze(-1) - y) ** 2).mean()
            self.log("train/loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, _):
            # improves only in epoch 0: a monitored metric that never improves again
            self.log("val/score", float(self.current_epoch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8)), batch_size=4)

        def val_dataloader(self):
            return DataLoader(TensorDataset(torch.randn(4, 2), torch.randn(4)), batch_size=4)

    cfg = {"trainer": {"max_epochs": max_epochs, "ckpt_every_n_epochs": every, "select": select}}
    stop = StopOnSignal()
    trainer = make_trainer(Launch(logger="none"), Run("tiny", "m", {}, 0, "smoke", cfg), tmp_path, "test",
                           list(callbacks), stop=stop)
    return trainer, Tiny(), stop


class Probe(pl.Callback):
    """At the start of each epoch, the epoch stored in ``last.ckpt`` (None while there is none)."""

    def __init__(self, ckpt_dir):
        self.ckpt_dir, self.seen = Path(ckpt_dir), {}

    def on_train_epoch_start(self, trainer, pl_module):
        last = self.ckpt_dir / "last.ckpt"
        self.seen[trainer.current_epoch] = torch.load(last, weights_only=True)["epoch"] if last.is_file() else None


# --------------------------------------------------------------------------- A: periodic last.ckpt
@pytest.mark.parametrize("select", ["last", {"metric": "val/score", "mode": "min"}])
def test_last_ckpt_every_n_epochs_whatever_selects_the_model(tmp_path, select):
    probe = Probe(tmp_path / "checkpoints")
    trainer, model, _ = tiny_trainer(tmp_path, select, max_epochs=5, every=2, callbacks=[probe])
    trainer.fit(model)
    # saved after epochs 1 and 3 (every 2), then when training ends (5 epochs done; 5 % 2 != 0)
    assert probe.seen == {0: None, 1: None, 2: 1, 3: 1, 4: 3}
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["epoch"] == 5 and final["global_step"] == 10
    if isinstance(select, dict):  # the metric improved in epoch 0 only: best.ckpt is epoch 0's
        assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == 0


@pytest.mark.slow  # an end-to-end subprocess run; make test-all
def test_sigkill_of_a_select_last_run_resumes_past_epoch_0(tmp_path):
    args = ("--only", "mlp", "trainer.max_epochs=30", "trainer.select=last")
    p = subprocess.Popen(cmd(tmp_path, *args), env=script_env(EB_TEST_EPOCH_SLEEP="0.3"), cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: list((tmp_path / "runs").rglob("last.ckpt.prev")), p)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    out = run(tmp_path, *args)
    assert "resuming" in out.stderr
    (run_dir,) = (tmp_path / "runs").glob("boring/smoke/mlp/*/seed0-*")
    first, second = epochs_trained(run_dir)
    assert first and second[0] > 0 and second[0] <= first[-1] + 1 and second[-1] == 29


@pytest.mark.slow
def test_sigkill_of_a_tetris_smoke_run_resumes_past_epoch_0(tmp_path):
    """The Tetris smoke preset (select: last) killed with SIGKILL mid-training (~1 min)."""
    base = [sys.executable, str(ROOT / "reproduce" / "tetris.py"), "--preset", "smoke", "--logger", "csv",
            "--only", "steerable", "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
            "trainer.max_epochs=12"]
    p = subprocess.Popen(base, env=script_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: list((tmp_path / "runs").rglob("last.ckpt.prev")), p, timeout=300)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    out = subprocess.run(base, capture_output=True, text=True, env=script_env(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming" in out.stderr
    (run_dir,) = (tmp_path / "runs").glob("tetris/smoke/steerable/*/seed0-*")
    first, second = epochs_trained(run_dir)
    assert second[0] > 0 and second[-1] == 11


# --------------------------------------------------------------------------- B: SIGTERM, SIGUSR1, Ctrl-C
def test_sigterm_in_fit_saves_a_checkpoint_at_that_point_in_process(tmp_path):
    import pytorch_lightning as pl

    class SendSigterm(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler is installed during fit

    before = signal.getsignal(signal.SIGTERM)
    trainer, model, stop = tiny_trainer(tmp_path, "last", max_epochs=50, every=20, callbacks=[SendSigterm()])
    with pytest.raises(SystemExit):
        trainer.fit(model)
    assert signal.getsignal(signal.SIGTERM) == before  # Lightning put the handler back
    assert stop.signum == signal.SIGTERM and stop.checkpoint == tmp_path / "checkpoints" / "last.ckpt"
    # no periodic save yet (every 20): the checkpoint is the one the signal saved, 3 epochs done
    saved = torch.load(stop.checkpoint, weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (3, 6)


def test_sigterm_outside_lightning_raises_interrupted():
    from reproduce.runner.trainer import Interrupted, install_signal_handlers

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        install_signal_handlers()
        for sig, code in ((signal.SIGTERM, 143), (signal.SIGUSR1, 138)):
            with pytest.raises(Interrupted) as e:
                os.kill(os.getpid(), sig)
                time.sleep(1)
            assert e.value.exit_code == code
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@pytest.mark.parametrize("sig, code, name", [
    (signal.SIGTERM, 143, "SIGTERM"), pytest.param(signal.SIGUSR1, 138, "SIGUSR1", marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, 130, "Ctrl-C", marks=pytest.mark.slow)])
def test_signal_stops_the_grid_with_one_line_and_the_rerun_resumes(tmp_path, sig, code, name):
    args = ("--only", "mlp", "trainer.max_epochs=30", "trainer.select=last")
    # Ctrl-C reaches a job in the foreground of a terminal; a test run as a background job
    # (``make test-all &``) inherits SIGINT ignored, as every background job does, so the script
    # starts with the default disposition, as from a terminal
    p = subprocess.Popen(cmd(tmp_path, *args), env=script_env(EB_TEST_EPOCH_SLEEP="0.3"), cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert wait_for(lambda: list((tmp_path / "runs").rglob("logs/attempt0/metrics.csv")), p)
    time.sleep(1.0)
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err[-2000:]
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith(f"[boring] stopped by {name}: the grid is incomplete (0 of 1 runs finished)")
    assert last_line.endswith("run the same command again to resume")
    assert "Traceback" not in err and "Received SIGTERM" not in err
    if sig != signal.SIGINT:  # a checkpoint of the point where it stopped
        assert "; saved " in last_line and check_checkpoint(ckpt_dir(tmp_path) / "last.ckpt") is None
    out = run(tmp_path, *args)
    assert [r["model"] for r in rows(tmp_path)] == ["mlp"]
    if sig != signal.SIGINT:
        assert "resuming" in out.stderr


# --------------------------------------------------------------------------- C: a kill during a stand-in
def _writer(fail_after=None):
    def write(d: Path):
        for i in range(3):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("killed")  # leaves the folder as a kill would
            (d / f"part{i}.bin").write_bytes(bytes([i]) * 10)
    return write


def test_an_interrupted_stand_in_is_written_again_in_process(tmp_path, capsys):
    d = tmp_path / "standin"
    with pytest.raises(RuntimeError):
        ensure_stand_in(d, "x", {"n": 1}, _writer(fail_after=2), "three parts")
    assert (d / WRITING).is_file() and stand_in_manifest(d) is None
    assert ensure_stand_in(d, "x", {"n": 1}, _writer(), "three parts")
    assert "was not finished (interrupted); writing it again" in capsys.readouterr().err
    assert not (d / WRITING).exists() and sorted(stand_in_manifest(d)["files"]) == ["part0.bin", "part1.bin", "part2.bin"]
    # a 0-byte temporary file of an earlier writer no longer blocks the folder
    e = tmp_path / "empty-but-temp"
    e.mkdir()
    (e / ".STAND_IN.json.tmp4242").write_bytes(b"")
    assert ensure_stand_in(e, "x", {"n": 1}, _writer(), "three parts")
    # other people's files still do
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "data.csv").write_text("1,2\n")
    with pytest.raises(InputError, match="holds other files"):
        ensure_stand_in(tmp_path / "theirs", "x", {"n": 1}, _writer(), "three parts")


def test_sigkill_while_a_stand_in_is_written_then_the_next_run_writes_it(tmp_path):
    d = tmp_path / "standin"
    code = ("import sys, time; from pathlib import Path; from datamodules._common import ensure_stand_in\n"
            "def w(d):\n    (d / 'a.bin').write_bytes(b'1' * 100)\n    time.sleep(60)\n"
            f"ensure_stand_in(Path({str(d)!r}), 'x', {{'n': 1}}, w, 'slow')\n")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=script_env(PYTHONPATH=str(ROOT)))
    try:
        assert wait_for(lambda: (d / "a.bin").is_file(), p, timeout=60)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert ensure_stand_in(d, "x", {"n": 1}, _writer(), "three parts")
    assert sorted(stand_in_manifest(d)["files"]) == ["part0.bin", "part1.bin", "part2.bin"]


# --------------------------------------------------------------------------- D: a kill during a checkpoint write
def _save(path, step):
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.full((4,), float(step))},
                                          "global_step": step}, path)


def _step(path):
    return torch.load(path, weights_only=True)["global_step"]


def test_a_kill_between_the_two_renames_is_finished_or_undone(tmp_path, monkeypatch):
    import reproduce.runner.checkpoints as ck

    d = tmp_path / "checkpoints"
    _save(d / "best.ckpt", 1)
    real = os.replace

    def first_rename_only(src, dst):  # the process dies after moving the old file aside
        real(src, dst)
        if str(dst).endswith(".prev"):
            raise SystemExit("killed")

    monkeypatch.setattr(ck.os, "replace", first_rename_only)
    with pytest.raises(SystemExit):
        _save(d / "best.ckpt", 2)
    monkeypatch.setattr(ck.os, "replace", real)
    assert not (d / "best.ckpt").exists() and (d / "best.ckpt.prev").is_file()
    assert recover(d) == ["finished the interrupted write of best.ckpt"]
    assert _step(d / "best.ckpt") == 2 and not list(d.glob(".*tmp*"))
    # the same, but the new file was cut short: the previous one (step 1) is restored
    assert _step(d / "best.ckpt.prev") == 1
    (d / "best.ckpt").unlink()
    (d / ".best.ckpt.tmp77").write_bytes(b"PK\x03\x04 half")
    assert recover(d) == ["restored best.ckpt from best.ckpt.prev"]
    assert _step(d / "best.ckpt") == 1 and not list(d.glob(".*tmp*"))
    # resume_point prefers the furthest trained candidate (e.g. a SLURM requeue checkpoint)
    _save(d / "last.ckpt", 5)
    _save(tmp_path / "hpc_ckpt_1.ckpt", 7)
    assert resume_point(d, (tmp_path / "hpc_ckpt_1.ckpt",))[0] == tmp_path / "hpc_ckpt_1.ckpt"
    _save(d / "last.ckpt", 9)
    assert resume_point(d, (tmp_path / "hpc_ckpt_1.ckpt",))[0] == d / "last.ckpt"


@pytest.mark.slow
def test_sigkill_between_the_renames_of_best_ckpt_tests_the_selected_weights(tmp_path):
    args = ("--only", "mlp", "trainer.max_epochs=6", "trainer.select={metric: val/loss, mode: min}")
    p = run(tmp_path, *args, check=False, EB_TEST_KILL_IN_RENAME="best.ckpt")
    assert p.returncode == -signal.SIGKILL
    d = ckpt_dir(tmp_path)
    assert not (d / "best.ckpt").exists() and (d / "best.ckpt.prev").is_file()
    out = run(tmp_path, *args)
    assert "finished the interrupted write of best.ckpt" in out.stderr and "warning" not in out.stderr
    (row,) = rows(tmp_path)
    assert row["checkpoint"].endswith("checkpoints/best.ckpt")


@pytest.mark.slow
def test_fallback_to_last_ckpt_prev_of_a_finished_run_keeps_a_last_ckpt(tmp_path):
    args = ("--only", "mlp", "trainer.select=last")
    p = run(tmp_path, *args, check=False, EB_TEST_KILL_AT_EPOCH="3")  # smoke: 3 epochs, then killed
    assert p.returncode == 17
    d = ckpt_dir(tmp_path)
    (d / "last.ckpt.prev").write_bytes((d / "last.ckpt").read_bytes())  # both hold the final epoch
    (d / "last.ckpt").write_bytes((d / "last.ckpt").read_bytes()[:1000])  # then last.ckpt is cut
    out = run(tmp_path, *args)
    assert "from last.ckpt.prev (restored as last.ckpt)" in out.stderr
    assert check_checkpoint(d / "last.ckpt") is None and (d / "last.ckpt.damaged").is_file()
    (row,) = rows(tmp_path)
    assert row["checkpoint"].endswith("checkpoints/last.ckpt") and (ROOT / row["checkpoint"]).is_file()


# --------------------------------------------------------------------------- E: refused before any run folder
@pytest.mark.parametrize("args, message", first_fast([
    (["--gpus", "1"], "--gpus 1: this machine has 0 CUDA GPU(s)"),
    (["--seed", "-1"], "--seed must be between 0 and 2**32 - 1, got -1"),
    (["data.batch_size=0"], "config data.batch_size: expected an int >= 1, got 0"),
    (["data.num_classes=0"], "config data.num_classes: expected an int >= 1, got 0"),
]))
def test_bad_values_are_refused_before_any_run_folder(tmp_path, args, message):
    if args[0] == "--gpus" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    p = run(tmp_path, *args, check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert p.stderr.startswith("error: ") and message in p.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "res").exists()


def test_a_full_disk_during_training_is_one_error_line(tmp_path):
    def limit():  # files above 1.5 MB cannot be written (the 1 MiB write probe passes, a checkpoint does not)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    p = subprocess.run(cmd(tmp_path, "--only", "mlp", "models.mlp.hidden=20000"), capture_output=True, text=True,
                       env=script_env(), cwd=ROOT, timeout=300, preexec_fn=limit)
    assert p.returncode == 1, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write checkpoint ") and ".ckpt: " in last
    assert "Traceback" not in p.stderr and not list((tmp_path / "runs").rglob(".*.tmp*"))


def test_an_unwritable_data_dir_is_one_error_line(tmp_path, capsys, monkeypatch):
    """In-process (a real command's error line: test_a_full_disk_during_training_is_one_error_line)."""
    from reproduce.runner import main
    argv = [*cmd(tmp_path)[2:-2], "/proc/eb-data", "--stand-in"]
    assert argv[-3] == "--data-dir"
    assert main(boring_module(monkeypatch).BENCH, argv=argv) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ") and "eb-data" in err and "Traceback" not in err


@pytest.mark.slow
def test_evaluate_prints_its_metrics_when_it_cannot_keep_them(tmp_path):
    run(tmp_path, "--only", "mlp")
    ckpt = ckpt_dir(tmp_path) / "best.ckpt"
    tag = config_hash([str((tmp_path / "data").resolve()), []], 8)
    (ckpt.parent.parent / f"evaluate-{tag}.json").mkdir()  # the result's place cannot be written
    p = run(tmp_path, "--evaluate", str(ckpt))
    assert 0 <= json.loads(p.stdout.strip().splitlines()[-1])["test_acc"] <= 1
    assert p.stderr.strip().splitlines()[-1].startswith("warning: the metrics above were not kept in ")


# --------------------------------------------------------------------------- F
@pytest.mark.slow
def test_evaluate_applies_model_overrides_and_checks_their_types(tmp_path):
    run(tmp_path, "--only", "mlp")
    ckpt = str(ckpt_dir(tmp_path) / "best.ckpt")
    for override in ("models.mlp.hidden=32", "model.hidden=32"):  # the 16-unit checkpoint no longer fits
        p = run(tmp_path, "--evaluate", ckpt, override, check=False)
        assert p.returncode == 2 and "does not fit the model of its config" in p.stderr, p.stderr[-1000:]
    p = run(tmp_path, "--evaluate", ckpt, "models.mlp.hidden=abc", check=False)
    assert p.returncode == 2 and "config models.mlp.hidden: expected int, got 'abc'" in p.stderr
    p = run(tmp_path, "--evaluate", ckpt, "models.mlp_wide.hidden=32", check=False)
    assert p.returncode == 2 and "is for model 'mlp_wide', but the checkpoint is a 'mlp' run" in p.stderr
    p = run(tmp_path, "--evaluate", ckpt, "model.hidden=16")
    assert 0 <= json.loads(p.stdout.strip().splitlines()[-1])["test_acc"] <= 1


@pytest.mark.slow
def test_list_says_retest_for_a_corrupt_row_and_started_at_survives_resumes(tmp_path):
    assert run(tmp_path, "--only", "mlp", check=False, EB_TEST_KILL_AT_EPOCH="2").returncode == 17
    (run_dir,) = (tmp_path / "runs").glob("boring/smoke/mlp/*/seed0-*")
    first = (run_dir / "started_at").read_text().strip()
    time.sleep(1.1)
    run(tmp_path, "--only", "mlp")
    (row,) = rows(tmp_path)
    assert row["started_at"] == first and json.loads((run_dir / "row.json").read_text())["started_at"] == first
    (run_dir / "row.json").write_text("{not json")
    listed = run(tmp_path, "--only", "mlp", "--list").stdout
    assert listed.startswith("retest (row.json unreadable: JSONDecodeError)")
