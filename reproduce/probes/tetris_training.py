"""Probe: does the Tetris steerable net (or the CNN) train at a reduced grid, and why does lr 0.1 collapse?

Plain Adam loop (no Lightning) over one full batch of the 8 rotated pieces, as the reference
``train()`` of se3cnn ``examples/tetris.py``; prints the loss, the fraction of live (non-zero) pooled
features of the last block and the mean |activation| of block 0 every few steps, then the accuracy
on ``--test-sets`` freshly rotated sets. Used to choose the Tetris `cpu` recipe
(configs/tetris/cpu.yaml, results/tetris.md notes):

    python reproduce/probes/tetris_training.py --zoom 3 --size 21 --lr 0.1                      # collapses
    python reproduce/probes/tetris_training.py --zoom 3 --size 21 --lr 0.1 --bias-lr-mult 0.01  # trains
    python reproduce/probes/tetris_training.py --model cnn --zoom 3 --size 21 --lr 0.1 --bias-lr-mult 0.01
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from datamodules.tetris import TetrisDataModule  # noqa: E402
from models.baselines import TetrisCNN  # noqa: E402
from models.steerable import TetrisSE3Net  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["se3", "cnn"], default="se3")
    p.add_argument("--zoom", type=int, default=3)
    p.add_argument("--size", type=int, default=21)
    p.add_argument("--padding", type=int, default=2)
    p.add_argument("--lowpass-order", choices=["before", "after"], default="before")
    p.add_argument("--no-lowpass", action="store_true")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--bias-lr-mult", type=float, default=1.0, help="lr multiplier of every '*bias' parameter")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--decay-start", type=int, default=None, help="x0.98 per step after this step")
    p.add_argument("--test-sets", type=int, default=10)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dm = TetrisDataModule(zoom=a.zoom, size=a.size, test_sets=a.test_sets, seed=a.seed)
    dm.setup()
    x, y = dm.train_set.tensors
    kw = dict(lowpass=not a.no_lowpass, padding=a.padding, lowpass_order=a.lowpass_order)
    net = TetrisSE3Net(**kw) if a.model == "se3" else TetrisCNN(**kw)
    named = list(net.named_parameters())
    bias = [q for n, q in named if "bias" in n]
    rest = [q for n, q in named if "bias" not in n]
    opt = torch.optim.Adam([{"params": rest, "lr": a.lr}, {"params": bias, "lr": a.lr * a.bias_lr_mult}])
    stats = {}

    def pooled_hook(_m, inp, _out):
        stats["live"] = float((inp[0] != 0).float().mean())

    def block0_hook(_m, _inp, out):
        stats["a0"] = float(out.abs().mean())

    net.linear.register_forward_hook(pooled_hook)
    net.blocks[0].register_forward_hook(block0_hook)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        net.train()
        out = net(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if a.decay_start is not None and step > a.decay_start:
            for g in opt.param_groups:
                g["lr"] *= 0.98
        if step % a.every == 0 or step <= 3:
            acc = float((out.argmax(1) == y).float().mean())
            print(f"step {step:4d}  loss {loss.item():6.3f}  train acc {acc:4.2f}  live pooled {stats['live']:4.2f}"
                  f"  |block0| {stats['a0']:7.4f}  {(time.time() - t0) / step:5.2f} s/step", flush=True)
    net.eval()
    xt, yt = dm.test_set.tensors
    with torch.no_grad():
        pred = torch.cat([net(xb).argmax(1) for xb in xt.split(32)])
    print(f"test acc {float((pred == yt).float().mean()):.3f} on {len(yt)} rotated pieces; "
          f"{time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
