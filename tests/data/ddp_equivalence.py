"""One optimiser step and one test pass of a benchmark's smoke run on N CPU processes (gloo), as
the runner builds them (datamodule, backbone, task, equivariant batch-norm sync, per-rank seeds);
tests/test_ddp_equivalence.py compares N = 1 with N = 2 or 3. Run as a script so that Lightning's
DDP launcher can re-execute it.

    python tests/data/ddp_equivalence.py BENCHMARK MODEL PROCS OUT_DIR DATA_DIR [--test-only] [key=value ...]

Writes ``OUT_DIR/weights.pt`` (rank 0: the task's tensors after the step; with ``--test-only`` no
step, the initial weights) and
``OUT_DIR/test_rank<r>.json`` (the test metrics and the dataset indices rank r scored).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

from reproduce.runner import config as C  # noqa: E402
from reproduce.runner.benchmark import Context  # noqa: E402
from reproduce.runner.runs import expand_grid  # noqa: E402
from reproduce.runner.runs import set_launch  # noqa: E402
from reproduce.runner.trainer import Launch, RankSeed, prepare_ddp, trainer_config  # noqa: E402


class Scored(pl.Callback):
    """The dataset indices this rank's test loader dealt out, and how many samples it scored."""

    def __init__(self):
        self.n = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.n += len(batch[1]) if not isinstance(batch, dict) else len(batch["y"])


def main(name: str, model: str, procs: int, out: Path, data_dir: str, overrides: list[str],
         fit: bool = True) -> None:
    import importlib
    bench = importlib.import_module(f"reproduce.{name}").BENCH
    if os.environ.get("EB_TEST_RETRIEVE"):  # the retrieval task (test/map over the gathered test set)
        from models.tasks import Retrieve
        type(bench).task = Retrieve
    cfg = C.apply_overrides(C.load_preset(name, "smoke", bench.config_root), overrides)
    (run,) = [r for r in expand_grid(bench, cfg, 0, [model])][:1]
    launch = Launch(cpu_procs=procs, logger="none")
    set_launch(launch.world, launch.world)
    ctx = Context(cfg=cfg, preset="smoke", launch=launch, data_dir=Path(data_dir) if bench.uses_data_dir else None,
                  generate=bench.uses_data_dir, data_source="stand-in", hardware="cpu", results_dir=out,
                  runs_dir=out, code_version="test")
    pl.seed_everything(run.seed, workers=True, verbose=False)
    dm = bench.build_datamodule(ctx, run)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    prepare_ddp(task, trainer_config(run.cfg), launch)
    scored = Scored()
    trainer = pl.Trainer(accelerator="cpu", devices=procs, strategy="ddp" if procs > 1 else "auto", max_steps=1,
                         max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[RankSeed(run.seed), scored])
    if fit:
        trainer.fit(task, datamodule=dm)
    if trainer.global_rank == 0:
        torch.save({k: v.detach().cpu().clone() for k, v in task.state_dict().items()}, out / "weights.pt")
    results = trainer.test(task, datamodule=dm, verbose=False)
    sampler = trainer.test_dataloaders.sampler
    indices = [int(i) for i in sampler] if hasattr(sampler, "__iter__") else []
    (out / f"test_rank{trainer.global_rank}.json").write_text(json.dumps(
        {"metrics": {k: float(v) for k, v in results[0].items()}, "n": scored.n, "indices": indices,
         "world": trainer.world_size,
         "retrieved_ids": [int(i) for i in getattr(task, "test_outputs", {}).get("ids", [])],
         "retrieved_scores": [[float(v) for v in row] for row in getattr(task, "test_outputs", {}).get("scores", [])],
         "retrieved_labels": [int(i) for i in getattr(task, "test_outputs", {}).get("labels", [])]}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), Path(a[3]), a[4], [o for o in a[5:] if o != "--test-only"], "--test-only" not in a)
