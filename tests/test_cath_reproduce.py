"""reproduce/cath.py: the DDP path on 2 CPU processes (gloo) through the stand-in, bad input through
the CLI (npz, typed data section), the results table and Figure 4 from CSV rows (class count and
chance level from the config), and the L1/L2 penalty of the reference."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.tasks import Classify
from reproduce.cath import BENCH
from reproduce.reports.cath import plot
from reproduce.runner import config as C
from reproduce.runner import main
from reproduce.runner.tables import View, render_text
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reproduce" / "cath.py"


def run_cath(tmp_path, *extra, check=True, timeout=420):
    return run_script(SCRIPT, "--logger", "csv", "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs",
                      *extra, check=check, timeout=timeout)


@pytest.mark.slow
def test_smoke_ddp_two_processes_one_row_per_run_and_ranks_agree(tmp_path):
    """Two runs (steerable x1, CNN x4) on 2 gloo processes, 1 epoch, 10 stand-in domains per class."""
    rows_override = ("grid.rows=[{model: se3resnet34small, setting: {reduction: 1}, overrides: {optim.lr: 0.1, "
                     "trainer.max_epochs: 1}}, {model: resnet34, setting: {reduction: 4}, overrides: "
                     "{trainer.max_epochs: 1}}]")
    run_cath(tmp_path, "--preset", "smoke", "--cpu-procs", "2", "--data-dir", str(tmp_path / "data"),
             "--stand-in", "data.stand_in_per_class=10", rows_override)
    with open(tmp_path / "res" / "cath.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], r["setting"]) for r in rows) == [("resnet34", "reduction=4"),
                                                                ("se3resnet34small", "reduction=1")]
    for r in rows:
        assert r["world_size"] == "2" and "2 DDP procs" in r["hardware"] and r["data_source"] == "stand-in"
        assert r["ranks_agree"] == "True"          # same synced test accuracy and weights on both ranks
        assert r["test_n"] == "20"                 # splits 8-9 of 10 per class, each scored exactly once
        assert 0.0 <= float(r["test_acc"]) <= 1.0 and 0.0 <= float(r["test_acc_rotated"]) <= 1.0
        assert (ROOT / r["run_dir"] / "done").is_file()
    assert {r["model"]: int(r["params"]) for r in rows} == {"resnet34": 15_878_764, "se3resnet34small": 143_560}
    md = (tmp_path / "res" / "cath.md").read_text()
    assert "NOT the paper's data" in md and "Preset: `smoke`" in md and "65.7 ± 0.8 %" in md
    assert (tmp_path / "res" / "cath.png").stat().st_size > 1000
    manifest = json.loads((tmp_path / "data" / "STAND_IN.json").read_text())
    assert manifest["params"] == {"per_class": 10, "topologies": 12, "seed": 0}
    assert "raw/CathDomainList.txt" in manifest["files"] and (tmp_path / "data" / "raw" / "structures").is_dir()


def test_bad_npz_is_one_line_exit_2_before_results(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    np.savez(d / "cath_10arch_ca.npz", positions=np.zeros((2, 3, 3)), n_atoms=np.array([1, 2]))
    p = run_cath(tmp_path, "--preset", "smoke", "--data-dir", str(d), check=False, timeout=120)
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CATH: ") and "cath_10arch_ca.npz lacks field(s) atom_types" in last
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("args, message", [
    (["grid.rows=[{model: resnet34, setting: {reduction: 1}, overrides: {data.grid_sise: 9}}]"],
     "config data.grid_sise: unknown key for CathDataModule; valid keys: batch_size, bin_size, dataset,"),
    (["data.grid_size=nine"], "config data.grid_size: expected int, got 'nine' (str)"),
    (["data.stand_in_per_class=[40]"], "config data.stand_in_per_class: expected int, got [40] (list)"),
    (["data.dataset=5arch"], "config data.dataset: expected one of '10arch', '3class', '20topo', got '5arch'"),
    (["grid.rows=[{model: resnet34, setting: {reduction: 1}, overrides: {data.reduction: 2}}]"],
     "config data.reduction: set by the runner for CathDataModule, not by the config"),
    (["data.dataset=3class", "data.num_classes=3"],
     "cath: the stand-in provides only 10arch, not data.dataset=3class"),
    (["models.resnet34.kind=cnn3d"], "models.resnet34.kind 'cnn3d' is unknown; valid kinds: cnn, se3"),
])
def test_bad_config_is_one_line_exit_2_before_any_data(tmp_path, capsys, args, message):
    d = tmp_path / "data"
    argv = ["--preset", "smoke", "--logger", "none", "--results-dir", str(tmp_path / "res"),
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(d), "--stand-in", *args]
    assert main(BENCH, argv=argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "res").exists() and not (d / "STAND_IN.json").exists()


def fake_rows(data_source: str = "stand-in") -> list[dict]:
    rows = []
    for model, params in (("resnet34", 15_878_764), ("se3resnet34small", 143_560)):
        for f, acc in ((1, 0.4), (4, 0.3), (16, 0.2)):
            for seed in (0, 1):
                rows.append({"model": model, "setting": f"reduction={f}", "setting_reduction": str(f),
                             "seed": str(seed), "preset": "cpu", "data_source": data_source,
                             "hardware": "cpu x2", "params": str(params), "wall_s": "60",
                             "test_acc": str(acc + 0.1 * seed), "test_acc_rotated": str(acc),
                             "equivariance_error_so3": "0.01", "train_n": str(280 // f),
                             "max_epochs": str(3 * f), "final_train_loss": str(2.0 - 0.1 * seed)})
    return rows


def test_table_and_figure_from_rows(tmp_path):
    cfg = C.load_preset("cath", "cpu")
    md = render_text(BENCH, cfg, fake_rows(), tmp_path)
    assert "NOT the paper's data" in md and "40 domains each" in md and "plotted, not tabulated" in md
    assert ("| ×4 (2^2) | 70 | 57.3 ± 1.2 % | 35.0 ± 7.1 % (n=2) | 61.8 ± 0.8 % | 35.0 ± 7.1 % (n=2) "
            "| 2.00 / 1.90 | 2.00 / 1.90 | 4.0 |") in md
    assert "15,878,764 | 15,878,764" in md and "143,560 | 143,560" in md
    assert "ln 10 ≈ 2.30" in md and "test splits 8-9" in md and "best validation accuracy" in md
    assert "×16: 48 epochs × 1 steps" in md and "`models.se3resnet34small.bn_momentum`: 0.01 → 0.1" in md
    assert "`data.stand_in_per_class`: 711 → 40" in md
    assert (tmp_path / "cath.png").stat().st_size > 1000


def test_class_count_chance_level_and_file_come_from_the_config(tmp_path):
    cfg = C.apply_overrides(C.load_preset("cath", "cpu"), ["data.dataset=3class", "data.num_classes=3",
                                                          "trainer.select=last"])
    md = render_text(BENCH, cfg, fake_rows("real"), tmp_path)
    assert "Data: the published `cath_3class_ca.npz` (deepfold/cath_datasets). Its 3 CATH classes" in md
    assert f"ln 3 ≈ {math.log(3):.2f}" in md and "ln 10" not in md.split("## Notes")[0]
    assert "classified correctly by the final model" in md and "NOT the paper's data" not in md
    fig = plot(View(bench=BENCH, cfg=cfg, rows=fake_rows("real"), results_dir=tmp_path))
    chance = [ln for ln in fig.axes[0].lines if ln.get_label() == "chance (3 classes)"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(100 / 3)
    assert fig.axes[0].get_title().startswith("CATH classes, preset cpu (published data)")


def test_penalty_is_the_se3cnn_gradient_on_convolution_weights_only():
    """se3cnn optimizers_L1L2.Adam adds lamb_L1·sign(w) + lamb_L2·w to the gradient (not 2·lamb_L2·w),
    and only its convolution weights carry a penalty: the --lamb_bn_weight_* flags of final_run.py never
    reach get_param_groups (it reads lamb_normalization_weight_*), linear / bias penalties are 0."""
    from models.steerable.layers import SteerableConv3d

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.BatchNorm3d(2),
                        SteerableConv3d([(2, 0)], [(1, 0), (1, 1)], 3, padding=1),
                        nn.Flatten(), nn.LazyLinear(3))
    x = torch.randn(4, 1, 5, 5, 5)
    net(x)
    l1, l2 = 0.3, 0.2
    task = Classify(net, 3, {"l1": l1, "l2": l2})
    net(x).square().mean().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    task.on_before_optimizer_step(None)
    penalised = {"0.weight", "2.kernel.weight"}
    assert penalised <= {n for n, _ in net.named_parameters()}
    for n, p in net.named_parameters():
        # the gradient of l1·Σ|w| + (l2/2)·Σw² by autograd (no weight is exactly 0 here)
        w = p.detach().clone().requires_grad_(True)
        (l1 * w.abs().sum() + l2 / 2 * w.square().sum()).backward()
        extra = w.grad if n in penalised else torch.zeros_like(p)
        torch.testing.assert_close(p.grad, grads[n] + extra)
    with pytest.raises(ValueError, match="no convolution weights"):
        Classify(nn.Linear(2, 3), 3, {"l2": 1e-3})._penalised()


def test_cath_nets_penalise_every_convolution_weight_and_nothing_else():
    from models.baselines import ResNet34
    from models.steerable import SE3ResNet34Small
    from models.steerable.kernels import SteerableKernel

    for net, conv in ((ResNet34(), nn.Conv3d), (SE3ResNet34Small(), SteerableKernel)):
        got = {id(p) for p in Classify(net, 10, {"l2": 1e-8})._penalised()}
        want = {id(m.weight) for m in net.modules() if isinstance(m, conv)}
        assert got == want and len(want) > 30
        assert not {id(m.weight) for m in net.modules() if isinstance(m, nn.BatchNorm3d)} & got
