"""The metrics of dense classification, in one place: the :class:`~models.tasks.Segment` task and
the non-Lightning baselines of a segmentation table (:mod:`models.baselines.per_site`) score with them.

Over *every* site of an epoch (torchmetrics accumulates before computing; not a mean of per-batch
values): per-class recall (the "accuracy" of a class in the climate tables: correct sites of c / true
sites of c) and its mean ``acc_mean``; per-class average precision of the class probability and
``map``, the mean AP over ``map_classes``; per-class IoU; site accuracy ``acc``.

>>> import torch
>>> ms = metric_set(3)
>>> probs = torch.tensor([[.8, .1, .1], [.2, .7, .1], [.3, .3, .4], [.6, .3, .1]])
>>> update(ms, probs, torch.tensor([0, 1, 2, 2]))
>>> s = scores(ms, "test", ["BG", "TC", "AR"], [1, 2])
>>> [round(float(s[k]), 3) for k in ("test/acc", "test/acc_mean", "test/recall_AR", "test/map")]
[0.75, 0.833, 0.5, 0.875]
"""
from __future__ import annotations

import torch
from torch import nn


def metric_set(num_classes: int, with_ap: bool = True) -> nn.ModuleDict:
    """Recall, AP (unless ``with_ap`` is False: exact AP keeps every site's scores until the end),
    IoU and accuracy over ``num_classes`` classes."""
    from torchmetrics.classification import (MulticlassAccuracy, MulticlassAveragePrecision,
                                             MulticlassJaccardIndex, MulticlassRecall)
    return nn.ModuleDict({
        "recall": MulticlassRecall(num_classes, average=None),
        **({"ap": MulticlassAveragePrecision(num_classes, average=None, thresholds=None)} if with_ap else {}),
        "iou": MulticlassJaccardIndex(num_classes, average=None),
        "acc": MulticlassAccuracy(num_classes, average="micro")})


def update(ms: nn.ModuleDict, probs: torch.Tensor, labels: torch.Tensor) -> None:
    """Add sites: ``probs`` (N, K) class probabilities, ``labels`` (N,)."""
    for m in ms.values():
        m.update(probs, labels)


def scores(ms: nn.ModuleDict, stage: str, names: list[str], map_classes: list[int]) -> dict[str, torch.Tensor]:
    """``{stage}/acc``, ``/acc_mean``, ``/map`` and per class ``/recall_<name>``, ``/ap_<name>``,
    ``/iou_<name>`` of the sites added so far (AP keys only when the set has AP)."""
    recall, iou = ms["recall"].compute(), ms["iou"].compute()
    ap = ms["ap"].compute() if "ap" in ms else None
    out = {f"{stage}/acc": ms["acc"].compute(), f"{stage}/acc_mean": recall.mean()}
    if ap is not None:
        out[f"{stage}/map"] = ap[list(map_classes)].mean()
    for c, name in enumerate(names):
        out[f"{stage}/recall_{name}"] = recall[c]
        if ap is not None:
            out[f"{stage}/ap_{name}"] = ap[c]
        out[f"{stage}/iou_{name}"] = iou[c]
    return out
