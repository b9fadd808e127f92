"""``--evaluate CKPT --data-dir DIR``: re-score a saved checkpoint on other data of the same
format, without training. The run's own ``config.yaml`` (beside ``checkpoints/``) rebuilds the
datamodule, backbone and task; the result is printed as JSON and kept in the run folder."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from datamodules._common import InputError, atomic_write_text
from reproduce.runner.config import config_hash
from reproduce.runner.runs import Run


def evaluate(bench, ctx, ckpt: Path) -> dict:
    import pytorch_lightning as pl
    import torch

    ckpt = Path(ckpt).expanduser().resolve()
    if not ckpt.is_file():
        raise InputError(f"--evaluate: checkpoint {ckpt} does not exist")
    run_dir = ckpt.parent.parent
    meta_path = run_dir / "config.yaml"
    if not meta_path.is_file():
        raise InputError(f"--evaluate: {meta_path} not found; a checkpoint must sit in "
                         f"<run dir>/checkpoints/ next to the run's config.yaml")
    meta = yaml.safe_load(meta_path.read_text())
    if meta.get("benchmark") != bench.name:
        raise InputError(f"--evaluate: {ckpt} is a '{meta.get('benchmark')}' checkpoint, "
                         f"not {bench.name}")
    run = Run(bench.name, meta["model_name"], meta["setting"], int(meta["seed"]), meta["preset"],
              meta["config"])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    dm = bench.build_datamodule(ctx, run)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    task.load_state_dict(state["state_dict"])
    trainer = pl.Trainer(accelerator="gpu" if ctx.launch.gpus else "cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(task, datamodule=dm, verbose=False)
    metrics = {k.replace("/", "_"): float(v) for k, v in results[0].items()}
    metrics.update(bench.after_test(ctx, run, task, dm) or {})
    out = {"checkpoint": str(ckpt), "data_dir": str(ctx.data_dir), "data_source": ctx.data_source,
           **metrics}
    tag = config_hash(str(ctx.data_dir), 8)
    atomic_write_text(run_dir / f"evaluate-{tag}.json", json.dumps(out, indent=1))
    print(json.dumps(out))
    return out
