"""Thin Lightning task wrappers around plain ``torch.nn`` backbones.

The backbones (``models.steerable``, ``models.harmonic``, ``models.deepsphere``, baselines) know
nothing of Lightning. A task adds the loss, the metrics per stage and the optimiser recipe read
from the config's ``optim`` section::

    optim:
      name: adam            # adam | adamw | sgd
      lr: 1.0e-3
      weight_decay: 0.0
      l1: 0.0               # λ1·Σ|w| on conv / norm weights, as a gradient term (CATH recipe)
      l2: 0.0               # λ2·Σw² on the same weights
      schedule:             # constant | step | exp | exp_after | multistep
        kind: constant
      param_groups:         # optional learning-rate multipliers by parameter-name substring
        - {match: phase, lr_mult: 7.8}

Metric keys: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn


def build_optimizer(params_named: list[tuple[str, nn.Parameter]], optim: dict) -> torch.optim.Optimizer:
    lr = float(optim.get("lr", 1e-3))
    groups: list[dict[str, Any]] = []
    rules = optim.get("param_groups") or []
    assigned: set[str] = set()
    for rule in rules:
        ps = [p for n, p in params_named if rule["match"] in n and n not in assigned]
        assigned.update(n for n, _ in params_named if rule["match"] in n)
        if ps:
            groups.append({"params": ps, "lr": lr * float(rule.get("lr_mult", 1.0))})
    rest = [p for n, p in params_named if n not in assigned]
    if rest:
        groups.append({"params": rest, "lr": lr})
    name = optim.get("name", "adam").lower()
    wd = float(optim.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=wd, eps=float(optim.get("eps", 1e-8)))
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, weight_decay=wd, momentum=float(optim.get("momentum", 0.9)))
    raise ValueError(f"unknown optimiser '{name}' (adam, adamw, sgd)")


def lr_lambda(schedule: dict):
    """Multiplicative learning-rate factor as a function of the epoch (or step) counter."""
    kind = schedule.get("kind", "constant")
    if kind == "constant":
        return lambda t: 1.0
    if kind == "step":  # x gamma every step_size
        size, gamma = int(schedule["step_size"]), float(schedule["gamma"])
        return lambda t: gamma ** (t // size)
    if kind == "multistep":
        milestones, gamma = list(schedule["milestones"]), float(schedule["gamma"])
        return lambda t: gamma ** sum(t >= m for m in milestones)
    if kind == "exp":
        gamma = float(schedule["gamma"])
        return lambda t: gamma ** t
    if kind == "exp_after":  # constant until `start`, then x gamma per unit
        start, gamma = int(schedule["start"]), float(schedule["gamma"])
        return lambda t: gamma ** max(0, t - start)
    raise ValueError(f"unknown lr schedule '{kind}' (constant, step, multistep, exp, exp_after)")


class Classify(pl.LightningModule):
    """Cross-entropy classification around any backbone returning logits ``(B, num_classes)``."""

    def __init__(self, backbone: nn.Module, num_classes: int, optim: dict | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        self.optim = dict(optim or {})
        task = "multiclass"
        self.acc = nn.ModuleDict({s: torchmetrics.Accuracy(task=task, num_classes=num_classes)
                                  for s in ("train_", "val_", "test_")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def _penalised(self) -> list[nn.Parameter]:
        """Weights that L1/L2 act on: every ``weight`` of the backbone except those of ``nn.Linear``
        layers (se3cnn ``--lamb_conv_weight_*`` and ``--lamb_bn_weight_*``; its softmax-layer and
        bias penalties are 0). Steerable kernel weights are 1-D vectors, so this goes by name and
        owner, not by ``dim``."""
        if not hasattr(self, "_penalised_cache"):
            out = []
            for name, p in self.backbone.named_parameters():
                owner = self.backbone.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self.backbone
                if p.requires_grad and name.endswith("weight") and not isinstance(owner, nn.Linear):
                    out.append(p)
            self._penalised_cache = out
        return self._penalised_cache

    def on_before_optimizer_step(self, optimizer) -> None:
        """Adds the gradient ``λ1·sign(w) + 2λ2·w`` of ``λ1·Σ|w| + λ2·Σw²`` before each optimiser
        step (as se3cnn's ``optimizers_L1L2.Adam`` does): the same update as a loss term, without an
        autograd graph over every weight."""
        l1, l2 = float(self.optim.get("l1", 0.0)), float(self.optim.get("l2", 0.0))
        if not (l1 or l2):
            return
        with torch.no_grad():
            for p in self._penalised():
                if p.grad is None:
                    continue
                if l1:
                    p.grad.add_(torch.sign(p), alpha=l1)
                if l2:
                    p.grad.add_(p, alpha=2 * l2)

    def _shared_step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = self.acc[stage + "_"]
        acc(logits.detach(), y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True,
                 sync_dist=True, batch_size=len(y))
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        opt = build_optimizer(list(self.backbone.named_parameters()), self.optim)
        schedule = dict(self.optim.get("schedule") or {"kind": "constant"})
        interval = schedule.pop("interval", "epoch")
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(schedule))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}
