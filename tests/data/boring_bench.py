"""A tiny benchmark on the shared runner (test double, like Lightning's BoringModel).

Two Gaussian blobs in 8 dimensions, an MLP; exercises the grid, resume, results files, --evaluate
and DDP without any heavy model. Run as a script so Lightning's DDP launcher can re-execute it.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules._common import InputError, is_stand_in, mark_stand_in
from reproduce import _tables as T
from reproduce._runner import Benchmark, main


class BlobData(pl.LightningDataModule):
    def __init__(self, data_dir: Path, batch_size: int):
        super().__init__()
        self.data_dir, self.batch_size = Path(data_dir), batch_size

    def setup(self, stage=None):
        f = self.data_dir / "blobs.npz"
        with np.load(f, allow_pickle=False) as z:
            x, y = torch.from_numpy(z["x"]).float(), torch.from_numpy(z["y"]).long()
        n = len(y)
        self.train = TensorDataset(x[: n // 2], y[: n // 2])
        self.val = TensorDataset(x[n // 2: 3 * n // 4], y[n // 2: 3 * n // 4])
        self.test = TensorDataset(x[3 * n // 4:], y[3 * n // 4:])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)


class Boring(Benchmark):
    name = "boring"
    config_root = Path(__file__).resolve().parent / "configs"

    def prepare_data(self, ctx, data_dir, generate):
        if generate and not is_stand_in(data_dir):
            rng = np.random.default_rng(0)
            y = rng.integers(0, 2, 256)
            x = rng.normal(size=(256, 8)) + 1.5 * y[:, None]
            data_dir.mkdir(parents=True, exist_ok=True)
            np.savez(data_dir / "blobs.npz", x=x, y=y)
            mark_stand_in(data_dir, "two Gaussian blobs")
        if not (data_dir / "blobs.npz").is_file():
            raise InputError(f"boring: missing {data_dir / 'blobs.npz'}")

    def build_datamodule(self, ctx, run):
        return BlobData(ctx.data_dir, run.cfg["data"]["batch_size"])

    def build_backbone(self, ctx, run):
        h = run.cfg["model"]["hidden"]
        return nn.Sequential(nn.Linear(8, h), nn.ReLU(), nn.Linear(h, 2))

    def callbacks(self, ctx, run):
        """``EB_TEST_KILL_AT_EPOCH=k`` kills the process after epoch k's checkpoint (resume tests)."""
        import os

        kill_at = os.environ.get("EB_TEST_KILL_AT_EPOCH")

        class Kill(pl.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if kill_at is not None and trainer.current_epoch + 1 >= int(kill_at):
                    trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt")
                    os._exit(17)

        return [Kill()]

    def after_test(self, ctx, run, task, datamodule):
        """Each rank records its world size and a checksum of its weights (DDP agreement test)."""
        import json
        import torch.distributed as dist

        ddp = dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if ddp else 1
        rank = dist.get_rank() if ddp else 0
        checksum = float(sum(p.detach().double().sum() for p in task.parameters()))
        (run.run_dir(ctx.runs_dir) / f"rank{rank}.json").write_text(
            json.dumps({"world": world, "checksum": checksum}))
        return {"world_size": world}

    def write_table(self, ctx, rows):
        body = [[m, T.fmt_mean_std(T.floats(T.select(rows, model=m), "test_acc"))]
                for m in sorted({r["model"] for r in rows})]
        T.write_md(ctx.results_dir / "boring.md",
                   T.header("boring", "nothing", ctx, rows) + T.md_table(["model", "acc"], body))


BENCH = Boring()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
