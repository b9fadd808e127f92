"""Thin Lightning tasks around plain ``torch.nn`` backbones: :class:`Classify`, :class:`Segment`
and :class:`Retrieve`, one step structure for all three.

The backbones (``models.steerable``, ``models.harmonic``, ``models.deepsphere``,
``models.baselines``) know nothing of Lightning. A task adds the loss, the metrics of each stage
and the optimiser recipe of the config's ``optim`` section (:class:`models.optim.Optim`)::

    optim:
      name: adam            # adam | adamw | sgd
      lr: 1.0e-3
      weight_decay: 0.0
      l1: 0.0               # gradient term λ1·sign(w) on convolution weights (CATH recipe)
      l2: 0.0               # gradient term λ2·w on the same weights (= loss (λ2/2)·Σw²)
      schedule:             # constant | step | exp | exp_after | multistep
        kind: constant
      param_groups:         # optional learning-rate multipliers by parameter-name substring
        - {match: bias, lr_mult: 0.01}

Every stage runs :meth:`Task._step`: ``out = backbone(x)``, ``loss(out, y)``, then the task's
metrics. Metric keys: ``<stage>/loss`` and, per task, ``<stage>/acc`` (Classify, Retrieve),
``<stage>/map``, ``<stage>/acc_mean``, ``<stage>/{recall,ap,iou}_<class>`` (Segment; the AP of
per-site class probabilities, not a retrieval score). Retrieve logs no retrieval metric of its
own: the benchmark scores its kept outputs with the one retrieval mAP, the official SHREC'17
evaluator (:func:`models.retrieval.evaluate`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from models import segmentation
from models.bn import recalibrate_bn
from models.optim import Optim, ParamGroup, Schedule  # noqa: F401 - the config's optim section

STAGES = ("train", "val", "test")


# --------------------------------------------------------------------------- optimiser
def build_optimizer(params_named: list[tuple[str, nn.Parameter]], optim: Optim) -> torch.optim.Optimizer:
    groups: list[dict[str, Any]] = []
    assigned: set[str] = set()
    for rule in optim.param_groups:
        ps = [p for n, p in params_named if rule.match in n and n not in assigned]
        assigned.update(n for n, _ in params_named if rule.match in n)
        if ps:
            groups.append({"params": ps, "lr": optim.lr * rule.lr_mult})
    rest = [p for n, p in params_named if n not in assigned]
    if rest:
        groups.append({"params": rest, "lr": optim.lr})
    if optim.name == "adam":
        return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay, eps=optim.eps)
    if optim.name == "adamw":
        return torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)
    return torch.optim.SGD(groups, lr=optim.lr, weight_decay=optim.weight_decay, momentum=optim.momentum)


# --------------------------------------------------------------------------- the shared task
class Task(pl.LightningModule):
    """Backbone + loss + metrics + optimiser; subclasses define :meth:`loss` and the metrics."""

    def __init__(self, backbone: nn.Module, optim: dict | None = None):
        super().__init__()
        self.backbone = backbone
        self.optim = Optim.from_dict(optim)
        # the loss of an epoch: the mean over its samples, summed over DDP processes before dividing
        # (processes may score different numbers of evaluation samples); no state in checkpoints
        self.mean_loss = nn.ModuleDict({f"{s}_": torchmetrics.MeanMetric() for s in ("val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    # -- loading a trained run -------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir, checkpoint="best", **kwargs) -> "Task":
        """The trained task of a run folder (or of a checkpoint inside its ``checkpoints/``),
        rebuilt from its ``config.yaml`` (:func:`reproduce.load.load_run`, which also gives the
        datamodule; ``kwargs`` go to it)."""
        from reproduce.load import load_run
        task = load_run(run_dir, checkpoint=checkpoint, **kwargs).task
        if not isinstance(task, cls):
            raise TypeError(f"{run_dir} holds a {type(task).__name__}, not a {cls.__name__}")
        return task

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's loader when the backbone is passed (``backbone=...``); without it, a
        checkpoint in a run folder is rebuilt from the run's ``config.yaml`` (:meth:`from_run`):
        the backbone is not a hyper-parameter the checkpoint can store."""
        if "backbone" in kwargs:
            return super().load_from_checkpoint(checkpoint_path, map_location=map_location,
                                                hparams_file=hparams_file, strict=strict, **kwargs)
        return cls.from_run(checkpoint_path, map_location=str(map_location or "cpu"))

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits ``(B, K, ...)`` against class labels ``(B, ...)``."""
        return F.cross_entropy(out, y)

    def update_metrics(self, stage: str, out: torch.Tensor, y: torch.Tensor, batch) -> None:
        """Accumulate (and log) this batch's metrics of ``stage``."""

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch[0], batch[1]
        out = self(x)
        loss = self.loss(out, y)
        if stage == "train":  # every process trains on equal batches: the mean of their means is exact
            self.log(f"{stage}/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True,
                     batch_size=len(y))
        else:  # the sample-weighted mean over every process (their sums are all-reduced)
            m = self.mean_loss[stage + "_"]
            m.update(loss.detach(), len(y))
            self.log(f"{stage}/loss", m, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.update_metrics(stage, out.detach(), y, batch)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    # -- L1/L2 as gradient terms -----------------------------------------------------------------
    def _penalised(self) -> list[nn.Parameter]:
        """Weights that L1/L2 act on: the ``weight`` of every convolution of the backbone
        (``nn.Conv*d`` / ``nn.ConvTranspose*d``, and the steerable kernels' ``SteerableKernel``
        weights). se3cnn's CATH script gives only its convolution weights a penalty: the
        ``--lamb_bn_weight_*`` flags it is run with never reach a parameter group
        (``get_param_groups`` reads ``lamb_normalization_weight_*``), and its linear, softmax,
        bias and activation-bias penalties are 0. Steerable kernel weights are 1-D vectors, so
        this goes by owner type, not by ``dim``."""
        if not hasattr(self, "_penalised_cache"):
            from models.steerable.kernels import SteerableKernel  # e3nn import: only when penalised
            conv_types = (nn.modules.conv._ConvNd, SteerableKernel)
            out = []
            for name, p in self.backbone.named_parameters():
                owner = self.backbone.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self.backbone
                if p.requires_grad and name.endswith("weight") and isinstance(owner, conv_types):
                    out.append(p)
            if not out:
                raise ValueError(f"optim.l1/l2 is set but {type(self.backbone).__name__} has no "
                                 f"convolution weights to penalise")
            self._penalised_cache = out
        return self._penalised_cache

    def on_before_optimizer_step(self, optimizer) -> None:
        """Adds ``λ1·sign(w) + λ2·w`` to the gradient of every convolution weight before each
        optimiser step, as se3cnn's ``optimizers_L1L2.Adam`` does inside its step
        (``grad.add_(lamb_L1, p.sign())``, ``grad.add_(lamb_L2, p)``): the gradient of
        ``λ1·Σ|w| + (λ2/2)·Σw²``, without an autograd graph over every weight."""
        l1, l2 = self.optim.l1, self.optim.l2
        if not (l1 or l2):
            return
        with torch.no_grad():
            for p in self._penalised():
                if p.grad is None:
                    continue
                if l1:
                    p.grad.add_(torch.sign(p), alpha=l1)
                if l2:
                    p.grad.add_(p, alpha=l2)

    def configure_optimizers(self):
        opt = build_optimizer(list(self.backbone.named_parameters()), self.optim)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.optim.schedule.factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": self.optim.schedule.interval}}


# --------------------------------------------------------------------------- classification
class Classify(Task):
    """Cross-entropy classification around any backbone returning logits ``(B, num_classes)``."""

    def __init__(self, backbone: nn.Module, num_classes: int, optim: dict | None = None):
        super().__init__(backbone, optim)
        self.save_hyperparameters(ignore=["backbone"])
        # keys "train_", ...: nn.Module already has an attribute "train"
        self.acc = nn.ModuleDict({f"{s}_": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
                                  for s in STAGES})

    def update_metrics(self, stage, out, y, batch) -> None:
        acc = self.acc[stage + "_"]
        acc(out, y)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))


# --------------------------------------------------------------------------- segmentation
class Segment(Task):
    """Dense classification: logits ``(B, K, *sites)`` against labels ``(B, *sites)``.

    Loss: cross-entropy, weighted per class when ``class_weights`` is given (e.g. sklearn's
    ``compute_class_weight('balanced')`` on the training labels). Metrics (:mod:`models.segmentation`)
    over the *whole* epoch: per-class recall ("accuracy" of a class: correct sites of c / true sites
    of c) and its mean ``acc_mean``; per-class average precision of the class probability and
    ``map``, the mean AP over ``map_classes`` (default: all); per-class IoU; site accuracy ``acc``.

    ``train_ap=False`` leaves AP (and ``train/map``) out of the training stage: exact AP keeps every
    site's scores until the epoch ends, which for the UGSCNN training split is ~450 M sites × 3
    classes (recall, IoU and accuracy are confusion counts and stay).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, optim: dict | None = None,
                 class_weights: list[float] | None = None, map_classes: list[int] | None = None,
                 class_names: list[str] | None = None, train_ap: bool = True):
        super().__init__(backbone, optim)
        self.save_hyperparameters(ignore=["backbone"])
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"class_weights has {len(class_weights)} entries for {num_classes} classes")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} entries for {num_classes} classes")
        self.num_classes = num_classes
        self.names = list(class_names or [str(c) for c in range(num_classes)])
        self.map_classes = list(map_classes if map_classes is not None else range(num_classes))
        if any(not 0 <= c < num_classes for c in self.map_classes):
            raise ValueError(f"map_classes {self.map_classes} outside 0..{num_classes - 1}")
        w = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("class_weights", w)
        self.metrics = nn.ModuleDict({f"{s}_": segmentation.metric_set(num_classes, s != "train" or train_ap)
                                      for s in STAGES})

    def loss(self, out, y):
        return F.cross_entropy(out, y, weight=self.class_weights)

    def update_metrics(self, stage, out, y, batch) -> None:
        segmentation.update(self.metrics[stage + "_"], out.softmax(1).movedim(1, -1).reshape(-1, self.num_classes),
                            y.reshape(-1))

    def _epoch_end(self, stage: str) -> None:
        ms = self.metrics[stage + "_"]
        self.log_dict(segmentation.scores(ms, stage, self.names, self.map_classes), prog_bar=False)
        for m in ms.values():
            m.reset()

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_epoch_end(self):
        self._epoch_end("test")


# --------------------------------------------------------------------------- retrieval
def gather_uneven(all_gather, t: torch.Tensor, world: int) -> torch.Tensor:
    """Every process's rows of ``t`` (their numbers may differ), in the order of the dataset that
    the evaluation sampler dealt out (:func:`datamodules._common.eval_sampler`: process r holds
    items r, r + W, r + 2W, …). ``all_gather`` needs equal shapes, so each process pads its rows
    to the longest count and the padding is dropped after the gather.

    >>> parts = [torch.tensor([0., 2, 4]), torch.tensor([1., 3])]   # 5 items on 2 processes
    >>> def fake_all_gather(t):  # what process 0 receives
    ...     if t.ndim == 0:
    ...         return torch.tensor([len(p) for p in parts])
    ...     return torch.stack([torch.cat([p, p.new_zeros(len(t) - len(p))]) for p in parts])
    >>> gather_uneven(fake_all_gather, parts[0], 2)
    tensor([0., 1., 2., 3., 4.])
    """
    n = torch.tensor(len(t), device=t.device)
    counts = [int(c) for c in all_gather(n).reshape(-1)]
    longest = max(counts)
    padded = torch.cat([t, t.new_zeros((longest - len(t), *t.shape[1:]))]) if len(t) < longest else t
    rows = all_gather(padded).reshape(world, longest, *t.shape[1:])
    out = t.new_empty((sum(counts), *t.shape[1:]))
    for r, c in enumerate(counts):
        out[r::world][:c] = rows[r, :c]
    return out


def triplet_semihard_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Triplet loss with semi-hard negative mining (Schroff et al. 2015, FaceNet §3.2), as
    TensorFlow's ``triplet_semihard_loss`` that deepsphere-tf1 adds to the cross-entropy for
    SHREC'17 (``extra_loss=True``, on L2-normalised descriptors, margin 1, NaN → 0).

    For every anchor a and positive p (same label, p ≠ a), with Euclidean distances d: the
    negative is the closest n with d(a, n) > d(a, p) (semi-hard); when there is none, the
    farthest negative. Loss = mean over (a, p) of max(d(a, p) − d(a, n) + margin, 0); 0 when
    the batch has no positive pair or no negative.

    >>> e = torch.tensor([[1., 0], [1., 0], [0., 1]])
    >>> float(triplet_semihard_loss(e, torch.tensor([0, 0, 1])))  # d(a,p) = 0, d(a,n) = √2 > margin
    0.0
    >>> # (a, p) = (1, 2): no negative beyond √2, farthest d(1, 0) = 0 → √2 + 1; (2, 1): d(2, 0) = √2 → 1
    >>> round(float(triplet_semihard_loss(e, torch.tensor([0, 1, 1]))), 4)
    1.7071
    """
    d2 = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(-1)
    d = torch.sqrt(d2.clamp_min(1e-16)) * (d2 > 0)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if not pos.any() or not neg.any():
        return embeddings.sum() * 0.0
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    d_an = d[:, None, :]                                     # (a, ·, n)
    semi = neg[:, None, :] & (d_an > d[:, :, None])           # (a, p, n): negatives farther than p
    closest = torch.where(semi, d_an, inf).amin(-1)           # semi-hard negative per (a, p)
    farthest = torch.where(neg, d, -inf).amax(-1)             # fallback per anchor
    d_neg = torch.where(semi.any(-1), closest, farthest[:, None])
    loss = (d - d_neg + margin).clamp_min(0)
    return loss[pos].mean()


class Retrieve(Classify):
    """Classification training, retrieval evaluation: at test time every item's embedding
    (``backbone.embed(x)`` where the backbone has it, else its class scores) is kept, and
    ``self.test_outputs`` holds ``embeddings``, ``logits``, ``scores`` (softmax), ``labels`` and
    ``ids`` (a third batch element, when the datamodule yields one) for the benchmark's
    retrieval evaluator (SHREC'17: :func:`models.retrieval.evaluate`, the official metrics).

    ``triplet_margin``: add :func:`triplet_semihard_loss` of the L2-normalised embeddings to the
    training cross-entropy (deepsphere-tf1's SHREC'17 ``extra_loss``); the backbone must have
    ``embed(x)`` and ``classifier`` (embedding → logits), so the forward pass runs once."""

    def __init__(self, backbone: nn.Module, num_classes: int, optim: dict | None = None,
                 triplet_margin: float | None = None):
        super().__init__(backbone, num_classes, optim)
        if triplet_margin is not None and not (hasattr(backbone, "embed") and hasattr(backbone, "classifier")):
            raise ValueError(f"Retrieve: triplet_margin needs a backbone with embed() and classifier; "
                             f"{type(backbone).__name__} has not")
        self.triplet_margin = None if triplet_margin is None else float(triplet_margin)
        self._kept: list[tuple[torch.Tensor, ...]] = []
        self.test_outputs: dict[str, torch.Tensor] = {}

    def _step(self, batch, stage: str) -> torch.Tensor:
        if self.triplet_margin is None or stage != "train":
            return super()._step(batch, stage)
        x, y = batch[0], batch[1]
        emb = self.backbone.embed(x)
        out = self.backbone.classifier(emb)
        ce = self.loss(out, y)
        trip = triplet_semihard_loss(F.normalize(emb, dim=1), y, self.triplet_margin)
        trip = torch.nan_to_num(trip, nan=0.0)
        loss = ce + trip
        for key, val in (("loss", loss), ("cross_entropy", ce), ("triplet", trip)):
            self.log(f"train/{key}", val, on_step=True, on_epoch=True, prog_bar=key == "loss", sync_dist=True,
                     batch_size=len(y))
        self.update_metrics(stage, out.detach(), y, batch)
        return loss

    def update_metrics(self, stage, out, y, batch) -> None:
        super().update_metrics(stage, out, y, batch)
        if stage != "test":
            return
        with torch.no_grad():
            emb = self.backbone.embed(batch[0]).detach() if hasattr(self.backbone, "embed") else out
        self._own_ids = len(batch) > 2
        ids = batch[2] if len(batch) > 2 else torch.arange(len(y), device=y.device) + sum(len(k[2]) for k in self._kept)
        self._kept.append((emb, out, out.softmax(1), y, torch.as_tensor(ids, device=y.device)))

    def on_test_epoch_start(self):
        self._kept = []

    def on_test_epoch_end(self):
        if not self._kept:
            return
        parts = [torch.cat(p) for p in zip(*self._kept)]
        if self.trainer is not None and self.trainer.world_size > 1:
            parts = [gather_uneven(self.all_gather, p, self.trainer.world_size) for p in parts]
        emb, logits, scores, labels, ids = parts
        if not getattr(self, "_own_ids", True):  # positions in the test set
            ids = torch.arange(len(labels), device=labels.device)
        self.test_outputs = {"embeddings": emb.cpu(), "logits": logits.cpu(), "scores": scores.cpu(),
                             "labels": labels.cpu(), "ids": ids.cpu()}
        self._kept = []


class RecalibrateBN(pl.Callback):
    """After the last epoch: BN population statistics of the final weights over one pass of the
    training loader (:func:`models.bn.recalibrate_bn`), saved into ``last.ckpt`` so that a later
    ``--evaluate`` scores the same model as the test that follows."""

    def on_train_end(self, trainer, pl_module):
        dev = pl_module.device
        n = recalibrate_bn(pl_module, ((x.to(dev), y) for x, y in trainer.datamodule.train_dataloader()))
        cb = trainer.checkpoint_callback
        if n and cb is not None and cb.dirpath:
            trainer.save_checkpoint(str(Path(cb.dirpath) / "last.ckpt"))


__all__ = ["Optim", "Schedule", "ParamGroup", "build_optimizer", "Task", "Classify", "Segment",
           "Retrieve", "RecalibrateBN", "gather_uneven", "triplet_semihard_loss", "STAGES"]
