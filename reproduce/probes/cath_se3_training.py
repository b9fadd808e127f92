"""Probe: does SE3ResNet34Small (or ResNet34) start to fit the CATH stand-in in a few hundred steps?

Plain Adam loop (no Lightning, no L1/L2) over the training splits of a CATH npz at the `cpu` preset's
grid, printing the training loss every few steps. Used to choose the `cpu` preset's SE3 learning rate
and capsule dropout (configs/cath/cpu.yaml, results/cath.md notes); numbers depend on the machine's
float reductions but the picture (lr 0.1 explodes; capsule dropout keeps the loss at chance) is stable.

    python reproduce/probes/cath_se3_training.py --lr 0.1 --steps 24
    python reproduce/probes/cath_se3_training.py --lr 3e-3 --p-drop 0.1 --steps 240
    python reproduce/probes/cath_se3_training.py --lr 3e-3 --p-drop 0 --steps 90
    python reproduce/probes/cath_se3_training.py --model cnn --lr 5e-4 --steps 150
    python reproduce/probes/cath_se3_training.py --lr 0.1 --bias-lr-mult 0.01 --steps 24   # Tetris recipe
    python reproduce/probes/cath_se3_training.py --lr 0.1 --head-lr 3e-3 --steps 24
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from datamodules.cath import FILES, CathDataModule  # noqa: E402
from models.baselines import ResNet34  # noqa: E402
from models.steerable import SE3ResNet34Small  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npz", default="data/cath/stand-in-cpu/cath_10arch_ca.npz",
                   help="CATH npz (default: the cpu preset's stand-in; run reproduce/cath.py --preset cpu once)")
    p.add_argument("--model", choices=["se3", "cnn"], default="se3")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--head-lr", type=float, default=None, help="lr of the final Linear (default: --lr)")
    p.add_argument("--bias-lr-mult", type=float, default=1.0,
                   help="lr multiplier of the body's '*bias' parameters (the Tetris cpu recipe uses 0.01)")
    p.add_argument("--p-drop", type=float, default=0.1, help="SE3 capsule dropout")
    p.add_argument("--steps", type=int, default=90)
    p.add_argument("--grid", type=int, default=9, help="bins per axis over a 54 A box, sigma = bin/2")
    p.add_argument("--no-rotate", action="store_true", help="no random rotation of training samples")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    bin_size = 54.0 / a.grid
    npz = Path(a.npz)
    dataset = {name: key for key, name in FILES.items()}.get(npz.name)
    if dataset is None:
        p.error(f"--npz must be named one of {', '.join(FILES.values())}")
    dm = CathDataModule(npz.parent, dataset=dataset, batch_size=16, grid_size=a.grid, bin_size=bin_size,
                        sigma=bin_size / 2)
    dm.setup()
    net = ResNet34(10) if a.model == "cnn" else SE3ResNet34Small(10, p_drop=a.p_drop, bn_momentum=0.1)
    head = list(net.linear.parameters())
    body = [(n, q) for n, q in net.named_parameters() if all(q is not h for h in head)]
    opt = torch.optim.Adam([{"params": [q for n, q in body if "bias" not in n], "lr": a.lr},
                            {"params": [q for n, q in body if "bias" in n], "lr": a.lr * a.bias_lr_mult},
                            {"params": head, "lr": a.head_lr if a.head_lr is not None else a.lr}])
    step, t0, window = 0, time.time(), []
    while step < a.steps:
        for batch in dm.train_dataloader():
            x, y = dm.voxelize_batch(batch, not a.no_rotate)
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            window.append(loss.item())
            if step % a.every == 0 or step == 1:
                print(f"step {step:4d}  loss {loss.item():7.3f}  mean of last {len(window)} {sum(window) / len(window):7.3f}"
                      f"  |logit| {out.abs().mean().item():6.2f}  {time.time() - t0:5.0f} s", flush=True)
                window = []
            if step >= a.steps:
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
