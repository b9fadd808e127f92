"""The command line as Lightning users expect it: device options and their contradictions,
requests this machine cannot meet refused before anything is written, --preset choices and
defaults in --help, --help without torch, --list checking overrides, the measurement scripts
naming the shared options they do not take, the closing summary, checkpoints slimmed to the
tested one, and the warnings the runner silences."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from datamodules._common import InputError
from reproduce.runner import cli
from reproduce.runner.cli import build_parser, presets
from reproduce.runner.launch import check_nodes, check_strategy, precision_override, resolve_devices
from tests.conftest import BORING, boring_module, run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["tetris", "rotated_mnist", "cosmology", "climate", "shrec17", "cath"]


def py(*args, timeout=300, **env):
    return run_script(*args, check=False, timeout=timeout, **env)


# --------------------------------------------------------------------------- devices
def none(**kw):
    return dict(accelerator=None, devices=None, gpus=None, cpu_procs=None) | kw


@pytest.mark.parametrize("given, gpus_cpu", [
    (none(), (0, 1)),
    (none(devices="3"), (0, 3)),                         # --devices on the default (cpu) accelerator
    (none(accelerator="cpu", devices="2"), (0, 2)),
    (none(cpu_procs=2, devices="2"), (0, 2)),             # short and long form agree
    (none(accelerator="auto"), (0, 1)),                   # auto without CUDA: the CPU
    (none(accelerator="cpu", devices="auto"), (0, 1)),
    (none(gpus=0), (0, 1)),
])
def test_device_options_resolve_like_lightning(given, gpus_cpu):
    assert resolve_devices(**given, visible=lambda: 0) == gpus_cpu


@pytest.mark.parametrize("given, gpus", [
    (none(gpus=2), 2), (none(accelerator="gpu", devices="2"), 2), (none(accelerator="cuda"), 1),
    (none(accelerator="auto"), 1), (none(accelerator="gpu", devices="auto"), 4), (none(accelerator="gpu", devices="-1"), 4),
    (none(gpus=2, devices="2", accelerator="gpu"), 2),
])
def test_gpu_requests_on_a_machine_with_four(given, gpus):
    assert resolve_devices(**given, visible=lambda: 4) == (gpus, 1)


@pytest.mark.parametrize("given, message", [
    (none(gpus=2, accelerator="cpu"), "--gpus 2 asks for GPUs, --accelerator cpu for the CPU"),
    (none(gpus=2, devices="4"), "--gpus 2 and --devices 4 disagree"),
    (none(gpus=1, cpu_procs=2), "--gpus and --cpu-procs exclude each other"),
    (none(cpu_procs=2, accelerator="gpu"), "--cpu-procs 2 runs CPU processes, --accelerator gpu asks for GPUs"),
    (none(cpu_procs=2, devices="3"), "--cpu-procs 2 and --devices 3 disagree"),
    (none(gpus=0, accelerator="gpu"), "--gpus 0 asks for the CPU, --accelerator gpu for GPUs"),
    (none(devices="0"), "--devices must be at least 1"),
    (none(devices="0,1"), "a list of GPU indices is set with CUDA_VISIBLE_DEVICES"),
    (none(gpus=-1), "--gpus must be 0 or more"),
    (none(gpus=1), "--gpus 1: this machine has 0 CUDA GPU(s)"),
    (none(accelerator="gpu", devices="2"), "--accelerator gpu --devices 2: this machine has 0 CUDA GPU(s)"),
])
def test_contradictions_and_unmet_requests_are_input_errors(given, message):
    with pytest.raises(InputError, match=None) as e:
        resolve_devices(**given, visible=lambda: 0)
    assert message in str(e.value)


def test_multi_node_needs_something_that_starts_the_other_nodes():
    check_nodes(1, "local", env={})
    check_nodes(2, "slurm", env={})                       # --launcher slurm submits the nodes itself
    check_nodes(2, "local", env={"SLURM_JOB_ID": "7", "SLURM_NNODES": "2"})
    check_nodes(2, "local", env={"MASTER_ADDR": "n1", "NODE_RANK": "1"})
    check_nodes(2, "local", env={"TORCHELASTIC_RUN_ID": "x"})
    with pytest.raises(InputError, match="nothing here starts the other nodes"):
        check_nodes(2, "local", env={"SLURM_PROCID": "0"})
    with pytest.raises(InputError, match="this SLURM job has 1 node"):
        check_nodes(2, "local", env={"SLURM_JOB_ID": "7", "SLURM_NNODES": "1"})
    with pytest.raises(InputError, match="--num-nodes must be at least 1"):
        check_nodes(0, "local", env={})


def test_precision_and_strategy():
    assert precision_override(None, 0, None) is None
    assert precision_override("32-true", 0, None) is None          # float32 asked, float32 configured: same run
    assert precision_override("bf16-mixed", 1, None) == "bf16-mixed"
    assert precision_override("32", 1, "16-mixed") == "32"
    with pytest.raises(InputError, match="CPU runs train in float32"):
        precision_override("16-mixed", 0, None)
    check_strategy("ddp", 2)
    with pytest.raises(InputError, match="--strategy ddp needs more than one process"):
        check_strategy("ddp", 1)


# --------------------------------------------------------------------------- parser and --help
class Named:
    config_root = ROOT / "configs"

    def __init__(self, name):
        self.name = name

    def add_arguments(self, parser):
        pass


@pytest.mark.parametrize("name", SCRIPTS)
def test_preset_choices_are_the_configs_that_exist(name, capsys):
    p = build_parser(Named(name), None)
    (action,) = [a for a in p._actions if "--preset" in a.option_strings]
    assert list(action.choices) == presets(name) == [
        s for s in ("smoke", "cpu", "paper") if (ROOT / "configs" / name / f"{s}.yaml").is_file()]
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--preset", "fast"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --preset: invalid choice: 'fast'") and len(err.strip().splitlines()) == 1


def test_help_shows_defaults_and_the_lightning_options():
    text = " ".join(build_parser(Named("tetris"), None).format_help().split())
    for option in ("--accelerator", "--devices", "--strategy", "--precision", "--gpus", "--num-nodes",
                   "--cpu-procs", "--max-epochs", "--keep-checkpoints"):
        assert option in text
    for default in ("(default: wandb)", "(default: auto)", "(default: 0, the CPU)", "(default: 1)", "(default: local)",
                    "(default: paper on GPUs, else cpu)", "(default: runs/ in the repository)"):
        assert default in text, default


@pytest.mark.parametrize("name", SCRIPTS + ["equivariance_sphere", "speed", "scaling"])
def test_help_is_answered_without_importing_torch(name):
    code = ("import runpy, sys\n"
            f"sys.argv = ['reproduce/{name}.py', '--help']\n"
            "try:\n"
            f"    runpy.run_path('reproduce/{name}.py', run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "print('IMPORTED', 'torch' in sys.modules, 'pytorch_lightning' in sys.modules)\n")
    p = py("-c", code, PYTHONPATH=str(ROOT))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "--accelerator" in p.stdout and "IMPORTED False False" in p.stdout
    if name == "climate":
        assert "--predict CKPT" in p.stdout


# --------------------------------------------------------------------------- refused before any run folder
UNMET = [
    (["--num-nodes", "2"], "--num-nodes 2: nothing here starts the other nodes' processes"),
    (["--gpus", "2", "--accelerator", "cpu"], "--gpus 2 asks for GPUs, --accelerator cpu for the CPU"),
    (["--strategy", "ddp"], "--strategy ddp needs more than one process"),
    (["--precision", "bf16-mixed"], "--precision bf16-mixed: CPU runs train in float32"),
    (["--list", "optim.lrr=1e-2"], "config optim.lrr: unknown key for Optim"),
]
LAUNCH_ENV = ("SLURM_", "MASTER_", "NODE_RANK", "TORCHELASTIC")


def _unmet_argv(tmp_path, args):
    return ["--logger", "wandb", "--preset", "smoke", "--results-dir", str(tmp_path / "res"),
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--stand-in", *args]


def _wrote_nothing(tmp_path):
    return not (tmp_path / "runs").exists() and not (tmp_path / "res").exists() and not (tmp_path / "data").exists()


def test_an_unmet_request_through_the_command_line_writes_nothing(tmp_path):
    """The first case of :data:`UNMET` as a real command (the others in-process below)."""
    args, message = UNMET[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_ENV)}
    p = subprocess.run([sys.executable, str(BORING), *_unmet_argv(tmp_path, args)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300, env={**env, "WANDB_MODE": "offline"})
    assert p.returncode == 2 and p.stderr.startswith("error: ") and message in p.stderr, p.stderr[-2000:]
    assert len(p.stderr.strip().splitlines()) == 1
    assert _wrote_nothing(tmp_path)


@pytest.mark.parametrize("args, message", UNMET)
def test_unmet_or_contradictory_requests_write_nothing(tmp_path, args, message, capsys, monkeypatch):
    from reproduce.runner import main
    for k in list(os.environ):
        if k.startswith(LAUNCH_ENV):
            monkeypatch.delenv(k)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(boring_module(monkeypatch).BENCH, argv=_unmet_argv(tmp_path, args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert _wrote_nothing(tmp_path)


# --------------------------------------------------------------------------- measurement scripts
def test_measurement_list_checks_overrides_and_refuses_what_does_not_apply(tmp_path, capsys):
    """equivariance_sphere, speed and scaling are measurement benchmarks on the runner: its --list
    (a cell per graph and Nside), its config checks, and one error line for an option that needs
    training or several processes (in-process, but for one real command of the last)."""
    import importlib

    def main(script, *argv):
        module = importlib.import_module(f"reproduce.{script}")
        rc = cli.main(module.BENCH, module.__doc__, [str(a) for a in argv])
        return rc, capsys.readouterr()

    rc, ok = main("equivariance_sphere", "--preset", "smoke", "--list", "--runs-dir", tmp_path)
    assert rc == 0 and "nside=16" in ok.out and "todo" in ok.out, ok.err[-2000:]
    rc, bad = main("equivariance_sphere", "--list", "data.nsidez=[3]")
    assert rc == 2 and "error: config data.nsidez: unknown key" in bad.err
    for script in ("equivariance_sphere", "speed"):
        rc, procs = main(script, "--cpu-procs", "2")
        assert rc == 2 and "--cpu-procs cannot be used" in procs.err, procs.err[-2000:]
        assert len(procs.err.strip().splitlines()) == 1
    procs = py("reproduce/scaling.py", "--cpu-procs", "2", PYTHONPATH=str(ROOT))
    assert procs.returncode == 2 and "--cpu-procs cannot be used" in procs.stderr, procs.stderr[-2000:]
    assert len(procs.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- summary and checkpoints
def test_smoke_run_ends_with_the_summary_and_keeps_one_checkpoint_per_run(tmp_path):
    p = py(BORING, "--logger", "csv", "--preset", "smoke", "--results-dir", tmp_path / "res",
           "--runs-dir", tmp_path / "runs", "--data-dir", tmp_path / "data", "--stand-in")
    assert p.returncode == 0, p.stderr[-3000:]
    err = p.stderr
    assert "boring: writing the offline stand-in into" in err and "stand-in written (1 files" in err
    tail = err[err.index("[boring] smoke: 2 of 2 runs finished, this invocation took"):]
    md = (tmp_path / "res" / "boring.md").read_text()
    first_row = next(line for line in md.splitlines() if line.startswith("| ") and "---" not in line)
    assert first_row.split("|")[1].strip() in tail.splitlines()[0] or first_row.split("|")[1].strip() in tail
    assert "table    " in tail and "boring.md" in tail and "boring.csv" in tail and "runs     " in tail
    assert "W&B" not in tail  # --logger csv
    for ckpts in (tmp_path / "runs").glob("boring/smoke/*/*/seed0-*/checkpoints"):
        names = sorted(f.name for f in ckpts.iterdir())
        assert names == ["best.ckpt", "pruned.json"], names  # val/acc selects: the tested one only
        import torch
        state = torch.load(ckpts / "best.ckpt", weights_only=True)
        assert "state_dict" in state and "optimizer_states" not in state
        assert json.loads((ckpts / "pruned.json").read_text())["kept"] == "best.ckpt"


@pytest.mark.slow
def test_pruned_run_is_retested_from_its_kept_checkpoint_and_keep_all_keeps_everything(tmp_path):
    base = (BORING, "--logger", "csv", "--preset", "smoke", "--only", "mlp", "--data-dir", tmp_path / "data", "--stand-in")
    a = py(*base, "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs")
    assert a.returncode == 0, a.stderr[-2000:]
    (run_dir,) = list((tmp_path / "runs").glob("boring/smoke/mlp/*/seed0-*"))
    before = json.loads((run_dir / "row.json").read_text())
    (run_dir / "row.json").write_text("{not json")
    b = py(*base, "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs")
    assert b.returncode == 0 and "tested again from its checkpoint" in b.stderr, b.stderr[-2000:]
    assert "resuming" not in b.stderr
    after = json.loads((run_dir / "row.json").read_text())
    assert after["test_acc"] == before["test_acc"] and after["checkpoint"].endswith("best.ckpt")
    assert len(list((run_dir / "logs").glob("attempt*"))) == 2  # the retest's attempt trained nothing
    c = py(*base, "--results-dir", tmp_path / "res2", "--runs-dir", tmp_path / "runs2", "--keep-checkpoints", "all")
    assert c.returncode == 0, c.stderr[-2000:]
    (ckpts,) = list((tmp_path / "runs2").glob("boring/smoke/mlp/*/seed0-*/checkpoints"))
    assert {"best.ckpt", "last.ckpt"} <= {f.name for f in ckpts.iterdir()} and not (ckpts / "pruned.json").exists()


# --------------------------------------------------------------------------- warnings
def test_warnings_nobody_can_act_on_are_silenced_and_others_stay():
    from reproduce.runner.cli import quiet_libraries
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    log = logging.getLogger("pytorch_lightning.trainer.connectors.checkpoint_connector")
    handler = Keep()
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_libraries()
            log.info("`weights_only` was not set, defaulting to `False`.")
            log.info("Restoring states from the checkpoint path at x.ckpt")
            warnings.warn("Total length of `DataLoader` across ranks is zero. Please make sure this was your intention.")
            warnings.warn("Using `DistributedSampler` with the dataloaders. During `trainer.test()`, it is recommended")
            warnings.warn("a warning that matters")
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    assert records == ["Restoring states from the checkpoint path at x.ckpt"]
    assert [str(w.message) for w in caught] == ["a warning that matters"]


def test_pyproject_license_is_an_spdx_string_without_the_setuptools_banner():
    pytest.importorskip("setuptools", minversion="77")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the TOML-table form raises SetuptoolsDeprecationWarning here
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"
