"""A tiny benchmark on the shared runner (test double, like Lightning's BoringModel).

Two Gaussian blobs in 8 dimensions, an MLP; exercises the grid, resume, results files, --evaluate,
the declared table and DDP without any heavy model. Run as a script so Lightning's DDP launcher
can re-execute it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules._common import ClassCountError, InputError, ensure_stand_in
from reproduce.runner import Benchmark, main
from reproduce.runner import tables as T


class BlobData(pl.LightningDataModule):
    """``blobs.npz`` (keys ``x`` (n, 8), ``y`` (n,)) from ``data_dir``; halves/quarters split."""

    def __init__(self, data_dir: Path, stand_in: bool = False, batch_size: int = 16,
                 num_classes: int = 2, samples: int = 256):
        super().__init__()
        self.data_dir, self.stand_in, self.batch_size, self.samples = Path(data_dir), stand_in, batch_size, samples
        self.num_classes = int(num_classes)

    def _write(self, d: Path) -> None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, self.samples)
        x = rng.normal(size=(self.samples, 8)) + 1.5 * y[:, None]
        np.savez(d / "blobs.npz", x=x, y=y)

    def prepare_data(self) -> None:
        if self.stand_in:
            ensure_stand_in(self.data_dir, "boring", {"samples": self.samples}, self._write,
                            f"two Gaussian blobs, {self.samples} samples")
        f = self.data_dir / "blobs.npz"
        if not f.is_file():
            raise InputError(f"boring: missing {f}")
        with np.load(f, allow_pickle=False) as z:
            found = len(np.unique(z["y"]))
        if found != self.num_classes:
            raise ClassCountError(f"boring: {f} has {found} classes, config data.num_classes is {self.num_classes}",
                                  found, self.num_classes, str(f))

    def setup(self, stage=None):
        with np.load(self.data_dir / "blobs.npz", allow_pickle=False) as z:
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


class SiteData(BlobData):
    """Dense labels: ``sites.npz`` with ``x`` (n, 3, 10) and per-site classes ``y`` (n, 10)."""

    def _write(self, d: Path) -> None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, (self.samples, 10))
        x = rng.normal(size=(self.samples, 3, 10)) + 1.5 * np.eye(3)[y].transpose(0, 2, 1)
        np.savez(d / "blobs.npz", x=x, y=y)


class SiteNet(nn.Sequential):
    def __init__(self, hidden: int = 8, num_classes: int = 3):
        super().__init__(nn.Conv1d(3, hidden, 1), nn.ReLU(), nn.Conv1d(hidden, num_classes, 1))


class MLP(nn.Sequential):
    def __init__(self, hidden: int = 16, num_classes: int = 2):
        super().__init__(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class Kill(pl.Callback):
    """``EB_TEST_KILL_AT_EPOCH=k`` kills the process after epoch k's checkpoint (resume tests);
    ``EB_TEST_EPOCH_SLEEP=s`` makes every epoch last s seconds longer (a window for a real kill)."""

    def on_train_epoch_end(self, trainer, pl_module):
        if os.environ.get("EB_TEST_EPOCH_SLEEP"):
            import time
            time.sleep(float(os.environ["EB_TEST_EPOCH_SLEEP"]))
        kill_at = os.environ.get("EB_TEST_KILL_AT_EPOCH")
        if kill_at is not None and trainer.current_epoch + 1 >= int(kill_at):
            trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt")
            os._exit(17)


if os.environ.get("EB_TEST_KILL_IN_RENAME"):
    # ``EB_TEST_KILL_IN_RENAME=best.ckpt``: SIGKILL between the two renames of a checkpoint write
    # (the old file just moved to ``best.ckpt.prev``, the complete new one not yet in place)
    import signal

    from datamodules import _common as _atomic  # atomic_open: the checkpoint writer's renames

    class _KillBetweenRenames:
        def __getattr__(self, name):
            return getattr(os, name)

        def replace(self, src, dst):
            os.replace(src, dst)
            if Path(dst).name == os.environ["EB_TEST_KILL_IN_RENAME"] + ".prev":
                os.kill(os.getpid(), signal.SIGKILL)

    _atomic.os = _KillBetweenRenames()


REPORT = T.Report(
    title="boring", reproduces="nothing",
    sections=[T.Table(rows="model", columns=[T.Col("model", T.label({})),
                                             T.Col("acc", T.mean_std("test_acc"))])],
    headline=T.Headline("test accuracy", "–", lambda v: T.fmt_mean_std(T.floats(v.rows, "test_acc"))))


class Boring(Benchmark):
    name = "boring"
    config_root = Path(__file__).resolve().parent / "configs"
    datamodule = BlobData
    models = {"mlp": MLP}
    report = REPORT

    def callbacks(self, ctx, run):
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


class BoringSegment(Boring):
    """The same plumbing for a dense task: ``Segment``, model selection on ``val/map``."""

    name = "boring_seg"
    datamodule = SiteData
    models = {"sites": SiteNet}
    report = T.Report(title="boring segmentation", reproduces="nothing", sections=[T.Table(rows="model", columns=[
        T.Col("model", T.label({})), T.Col("mAP", T.mean_std("test_map"))])])

    @property
    def task(self):
        from models.tasks import Segment
        return Segment


class Centroid:
    """Nearest class mean, fitted without Lightning (a custom row, like cosmology's SVMs)."""

    def __init__(self, num_classes: int = 2):
        self.num_classes = num_classes


class BoringWandb(Boring):
    """Two models, one of them not trained with Lightning, and one model at two settings: what
    the W&B read-back test needs (a run per cell, groups per setting, numeric tables)."""

    name = "boring_wb"
    models = {"mlp": MLP, "centroid": Centroid}
    report = T.Report(
        title="boring W&B", reproduces="nothing",
        sections=[T.Table(rows="setting", title="accuracy", columns=[
            T.Col("setting", T.label({})),
            T.Col("published acc", T.lookup({"hidden=16": "90 ± 2 % (made up)", "hidden=32": "91 %"})),
            T.Col("reproduced acc (mean ± std, n runs)", T.mean_std("test_acc")),
            T.Col("params", T.first_int("params")),
            T.Col("cube error", T.max_text("equivariance_error_cube"))])])

    def is_custom(self, run):
        return run.model == "centroid"

    def custom_run(self, ctx, run, run_dir):
        dm = self.build_datamodule(ctx, run)
        dm.setup("fit")
        x, y = dm.train.tensors
        means = torch.stack([x[y == c].mean(0) for c in range(dm.num_classes)])
        xt, yt = dm.test.tensors
        pred = torch.cdist(xt, means).argmin(1)
        return {"test_acc": round(float((pred == yt).float().mean()), 6)}

    def after_test(self, ctx, run, task, datamodule):
        return {"equivariance_error_cube": "5.21e-16"}  # formatted text, as tetris writes it


BENCH = {"segment": BoringSegment, "wandb": BoringWandb}.get(os.environ.get("EB_BORING", ""), Boring)()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
