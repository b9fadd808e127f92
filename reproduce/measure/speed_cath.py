"""Speed section: CATH input pipeline and training throughput (same run).

Paper: Weiler et al. 2018 §5.5 — each protein is voxelised on the fly (50³ bins of 2 Å, Gaussian
σ = 1 Å per CA) and randomly rotated every time it is presented, so the voxeliser must keep up with
the networks. Measured here:

* :func:`datamodules.cath.voxelize` (batched, separable: ``grid = Σ_a gx ⊗ gy ⊗ gz`` as one
  batched matmul) at the paper's 50³ for a batch of 16 proteins of 200 CA with random rotations,
  against the reference's dense evaluation (se3cnn ``Cath.__getitem__``: an ``n³ × atoms`` matrix of
  exponentials per protein, one protein at a time) as the floor — a ratio below 1 is a speed-up;
* the same at the ``cpu`` preset's 9³ × 6 Å;
* training throughput (forward + backward, batch 16) of ``ResNet34`` and ``SE3ResNet34Small`` at the
  ``cpu`` preset's grid; the steerable net is timed against the ResNet34 as floor (same layout and the
  same number of 3-D channels per layer, 110× the parameters). On CUDA also at the paper's 50³.

``quick=True`` shrinks everything (seconds): 20³ grid, batch 4, networks at 9³ with batch 2.
"""
from __future__ import annotations

import torch

from reproduce.measure.timing import forward_backward, time_fn

TITLE = "CATH: voxeliser and training throughput"


def dense_reference(pos: torch.Tensor, n: int, bin_size: float, sigma: float) -> torch.Tensor:
    """se3cnn-style voxelisation of one protein (A, 3): dense n³ × A Gaussians, per-atom normalised."""
    a = (torch.arange(n, device=pos.device, dtype=pos.dtype) - (n - 1) / 2) * bin_size
    grid = torch.stack(torch.meshgrid(a, a, a, indexing="ij"), -1).reshape(-1, 3)   # (n³, 3)
    dens = torch.exp(-((grid[:, None, :] - pos[None]) ** 2).sum(-1) / (2 * sigma ** 2))
    dens = dens / dens.sum(0, keepdim=True)
    return dens.sum(1).reshape(n, n, n)


def measure(quick: bool = False, device: str = "cpu") -> tuple[str, list[dict]]:
    """Return ``(title, rows)``; rows have ``what, time_ms, floor_ms, ratio, samples_per_s, notes``."""
    from datamodules.cath import voxelize
    from models.geometry import random_rotation
    from models.baselines import ResNet34
    from models.steerable import SE3ResNet34Small

    dev = torch.device(device)
    warmup, reps = (1, 2) if quick else (1, 3)
    torch.manual_seed(0)
    rows: list[dict] = []

    atoms = 64 if quick else 200
    for n, bin_size, batch, label in ((20, 2.0, 4, "20³ × 2 Å (quick)") if quick else (50, 2.0, 16, "50³ × 2 Å (paper)"),
                                      (9, 6.0, 4 if quick else 16, "9³ × 6 Å (cpu preset)")):
        sigma = bin_size / 2
        pos = torch.randn(batch, atoms, 3, device=dev) * 12
        mask = torch.ones(batch, atoms, dtype=torch.bool, device=dev)
        rot = random_rotation(batch, dtype=torch.float32).to(dev)
        t = time_fn(lambda: voxelize(pos, mask, n, bin_size, sigma, rot), warmup, reps, dev)
        k = min(batch, 2)  # the dense floor is slow (n³ × atoms exponentials): time 2 proteins, scale
        f = time_fn(lambda: [dense_reference(p @ r.T, n, bin_size, sigma) for p, r in zip(pos[:k], rot[:k])],
                    0, 1, dev) * batch / k
        rows.append({"what": f"voxelise + rotate, {label}, batch {batch} × {atoms} CA", "time_ms": 1e3 * t,
                     "floor_ms": 1e3 * f, "ratio": t / f, "samples_per_s": batch / t,
                     "notes": f"floor: se3cnn-style dense n³×atoms Gaussians, one protein at a time "
                              f"(timed on {k}, scaled to {batch})"})

    n_train, batch = (9, 2) if quick else (9, 16)
    sizes = [(n_train, batch, "9³ (cpu preset)")]
    if dev.type == "cuda" and not quick:
        sizes.append((50, 16, "50³ (paper)"))
    cnn = ResNet34().to(dev).train()
    se3 = SE3ResNet34Small().to(dev).train()
    for n, b, label in sizes:
        x = torch.randn(b, 1, n, n, n, device=dev)
        t_cnn = time_fn(forward_backward(cnn, x), warmup, reps, dev)
        t_se3 = time_fn(forward_backward(se3, x), warmup, reps, dev)
        rows.append({"what": f"ResNet34 forward+backward, {label}, batch {b}", "time_ms": 1e3 * t_cnn,
                     "floor_ms": "", "ratio": "", "samples_per_s": b / t_cnn,
                     "notes": "15,878,764 params"})
        rows.append({"what": f"SE3ResNet34Small forward+backward, {label}, batch {b}", "time_ms": 1e3 * t_se3,
                     "floor_ms": 1e3 * t_cnn, "ratio": t_se3 / t_cnn, "samples_per_s": b / t_se3,
                     "notes": "143,560 params; floor: ResNet34 (same layout and 3-D channels)"})
    return TITLE, rows
