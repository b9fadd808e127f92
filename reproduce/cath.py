"""CATH protein-architecture classification: SE3ResNet34Small vs a ResNet34 3-D CNN.

Reproduces: Weiler et al. 2018, *3D Steerable CNNs*, §5.5 and Figure 4 (test accuracy on 10 CATH
architectures vs reduction of the training splits by 2^0..2^4).

Weiler, Geiger, Welling, Boomsma & Cohen, "3D Steerable CNNs" (NeurIPS 2018): CA atoms voxelised on
a 50³ grid of 2 Å; the baseline has 15,878,764 parameters, the steerable network 143,560. The paper
only *plots* these accuracies (steerable above the CNN at every reduction); the published column
quotes the values se3cnn's plotting script draws (``experiments/plots/cath.py``).

    python reproduce/cath.py --preset smoke     # ~1-2 min: stand-in, 9³ grid, both models, x1/x4
    python reproduce/cath.py --preset cpu       # ~43 min on 2 cores: stand-in, 9³ grid, x1/x4/x16, 2 seeds
    python reproduce/cath.py --gpus 1 --preset paper --data-dir /data/cath   # Figure 4, one GPU per run as the reference
    python reproduce/cath.py --preset cpu --table   # rewrite the table from results/cath.csv

``--data-dir`` holds ``cath_10arch_ca.npz`` (deepfold/cath_datasets; ``data.dataset=3class|20topo``
with ``data.num_classes`` for its siblings); without it a stand-in is built from generated PDB files
(``datamodules/cath_standin.py``) and tables say so. DDP (``--gpus N``, ``--cpu-procs N``): the
global batch stays 16 — each of the N processes loads 16/N records per step (N must divide 16) and
ResNet34's BatchNorm is synchronised on GPUs (the steerable net's equivariant batch norm is not, so its
statistics cover 16/N records); validation/test score every record once.

Writes results/cath.csv (one row per run), results/cath.md and results/cath.png (Figure 4).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reproduce.runner import Benchmark, main
from reproduce.runner.after_test import Invariance


def rotated_views(run, dm, device=None):
    """The test set, batch by batch, as given and with every record in a Haar-random orientation
    (an exact rotation of its CA coordinates, then re-voxelised on ``device``); rotations drawn
    from a generator of the run seed."""
    import torch

    from datamodules.cath import collate, voxelize
    from models.geometry import random_rotation
    gen = torch.Generator().manual_seed(run.seed + 1234)
    ds = dm.sets["test"]
    for start in range(0, len(ds), dm.batch_size):
        pos, mask, y = (t.to(device) for t in collate([ds[i] for i in range(start, min(start + dm.batch_size, len(ds)))]))
        R = random_rotation(len(pos), generator=gen, dtype=torch.float32).to(device)
        yield (voxelize(pos, mask, dm.grid_size, dm.bin_size, dm.sigma),
               [voxelize(pos, mask, dm.grid_size, dm.bin_size, dm.sigma, R)], y)


class Cath(Benchmark):
    name = "cath"
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.cath:CathDataModule"
    models = {"se3": "models.steerable:SE3ResNet34Small", "cnn": "models.baselines:ResNet34"}
    report = "reproduce.reports.cath:REPORT"
    #: the trained model on the test set in random orientations (rank 0): accuracy and the mean
    #: relative change of its logits
    measurements = (Invariance("so3", rotated_views, accuracy="test_acc_rotated", float64=False),)
    #: the voxel grid (resolution) and the class count a checkpoint was trained on (--evaluate keeps them)
    geometry_keys = ("data.num_classes", "data.grid_size", "data.bin_size", "data.sigma")

    def datamodule_args(self, ctx, run) -> dict:
        return {**super().datamodule_args(ctx, run), "reduction": int(run.setting.get("reduction", 1))}

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """DDP agreement (test accuracy and weights equal on every rank, records scored once) and,
        on rank 0, the trained model on the test set in random orientations: accuracy and the
        relative change of its logits (exact rotations of the CA coordinates, re-voxelised)."""
        import torch.distributed as dist

        ddp = dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if ddp else 1
        acc = float(task.trainer.callback_metrics.get("test/acc", float("nan")))
        checksum = float(sum(p.detach().double().sum() for p in task.parameters()))
        mine = {"acc": acc, "checksum": checksum, "n": int(datamodule.scored.get("test", 0))}
        ranks = [None] * world
        if ddp:
            dist.all_gather_object(ranks, mine)
        else:
            ranks = [mine]
        agree = all(math.isclose(r["acc"], ranks[0]["acc"], rel_tol=1e-9)
                    and math.isclose(r["checksum"], ranks[0]["checksum"], rel_tol=1e-6) for r in ranks)
        out = {"world_size": world, "ranks_agree": agree, "test_n": sum(r["n"] for r in ranks),
               "train_n": len(datamodule.sets["train"]), "max_epochs": run.cfg["trainer"]["max_epochs"]}
        if ctx.is_rank_zero:
            out.update(self.declared_measurements(ctx, run, task, datamodule))
        if ddp:
            dist.barrier()
        return out


BENCH = Cath()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
