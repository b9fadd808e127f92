"""What a W&B dashboard gets of a cell's model: the parameter counts as numbers (config
``model_summary`` and summary ``model/*``) and the layer summary (run file ``model_summary.txt``
and the ``model/summary`` HTML), read back from the offline run folders (:mod:`tests.wandb_files`)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wandb_files import offline_runs

ROOT = Path(__file__).resolve().parents[1]


def _net():
    from torch import nn
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    net[0].bias.requires_grad_(False)  # 5 frozen of 3*5 + 5 + 5*2 + 2 = 32
    return net


def test_model_summary_counts_and_layers():
    from models.tasks import Classify
    from reproduce.runner.wandb_log import model_summary
    numbers, text = model_summary(Classify(_net(), 2))
    assert numbers == {"params": 32, "trainable_params": 27, "non_trainable_params": 5, "backbone": "Sequential"}
    assert "backbone.0 " in text and "Linear" in text and "Trainable params" in text
    assert "(2): Linear(in_features=5, out_features=2, bias=True)" in text  # torch's print of every layer


def test_model_summary_reaches_the_offline_run(tmp_path, monkeypatch):
    import wandb

    from models.tasks import Classify
    from reproduce.runner.wandb_log import log_model_summary
    for k in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = wandb.init(project="t", dir=str(tmp_path), id="summary-test", settings=wandb.Settings(silent=True))
    log_model_summary(exp, Classify(_net(), 2))
    exp.finish()
    wandb.teardown()  # the service has written every record before the files are read back
    (run,) = offline_runs(tmp_path)
    assert run.config["model_summary"] == {"params": 32, "trainable_params": 27, "non_trainable_params": 5,
                                           "backbone": "Sequential"}
    assert run.summary["model/params"] == 32 and run.summary["model/trainable_params"] == 27
    text = (run.folder / "files" / "model_summary.txt").read_text()
    assert "Trainable params" in text and "(2): Linear(in_features=5, out_features=2, bias=True)" in text
    (row,) = [r for r in run.history if r.get("model/summary/_type") == "html-file"]
    html = (run.folder / "files" / row["model/summary/path"]).read_text()
    assert "Trainable params" in html and "Linear(in_features=5" in html


@pytest.mark.slow  # one grid invocation with W&B: ~15 s on a quiet 2-core machine
def test_each_trained_cell_of_a_grid_logs_its_model_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(EB_BORING="wandb", EB_NO_PROGRESS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "tests" / "data" / "boring_bench.py"), "--preset", "smoke", "--logger", "wandb",
           "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"),
           "--data-dir", str(tmp_path / "data"), "--stand-in"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(tmp_path / "res" / "boring_wb.csv") as f:
        rows = {f"boring_wb-{r['run_id']}-s{r['seed']}": r for r in csv.DictReader(f)}
    runs = {r.run_id: r for r in offline_runs(tmp_path / "runs") if r.job_type == "smoke"}
    trained = [rid for rid, row in rows.items() if row["model"] == "mlp"]
    assert trained and set(rows) == set(runs)
    for rid in trained:
        run, row = runs[rid], rows[rid]
        counts = run.config["model_summary"]
        # the results column params (trainable parameters of the backbone), as numbers
        assert isinstance(counts["params"], int) and counts["trainable_params"] == int(row["params"]) > 0
        assert counts["params"] == counts["trainable_params"] + counts["non_trainable_params"]
        assert run.summary["model/trainable_params"] == int(row["params"])
        text = (run.folder / "files" / "model_summary.txt").read_text()
        assert "Trainable params" in text and counts["backbone"] in text
    for rid in set(rows) - set(trained):  # rows not trained with Lightning have no model summary
        assert "model_summary" not in runs[rid].config
