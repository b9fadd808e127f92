"""The Lightning tasks of models/tasks.py on hand-made outputs: Segment's whole-test-set metrics
(recall, AP, IoU, mAP over chosen classes, a class absent from one batch), Retrieve's kept
outputs (no mAP of its own), the typed optimiser recipe."""
from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.tasks import Classify, Optim, Retrieve, Segment


def _test(task, *tensors, batch_size):
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=False)
    return trainer.test(task, dataloaders=loader, verbose=False)[0]


def test_segment_metrics_over_the_whole_test_set():
    # two "maps" of 6 sites; the backbone is the identity, so the inputs are the logits
    y = torch.tensor([[0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 0, 0]])      # class 2 absent from map 2
    pred = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 2, 1, 0, 0, 0]])
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, generator=gen) * 0.1
    logits.scatter_add_(1, pred[:, None], torch.full((2, 1, 6), 3.0))  # argmax = pred
    task = Segment(nn.Identity(), num_classes=3, map_classes=[1, 2], class_names=["bg", "tc", "ar"])
    got = _test(task, logits, y, batch_size=1)
    yf, pf = y.flatten().numpy(), pred.flatten().numpy()
    probs = logits.softmax(1).movedim(1, -1).reshape(-1, 3).numpy()
    for c, name in enumerate(["bg", "tc", "ar"]):
        recall = ((pf == c) & (yf == c)).sum() / (yf == c).sum()
        iou = ((pf == c) & (yf == c)).sum() / ((pf == c) | (yf == c)).sum()
        ap = average_precision_score(yf == c, probs[:, c])
        assert got[f"test/recall_{name}"] == pytest.approx(recall, abs=1e-6)
        assert got[f"test/iou_{name}"] == pytest.approx(iou, abs=1e-6)
        assert got[f"test/ap_{name}"] == pytest.approx(ap, abs=1e-6)
    # hand-worked: bg 5/7 recall, tc 3/4, ar 1/1
    assert got["test/acc_mean"] == pytest.approx((5 / 7 + 3 / 4 + 1) / 3, abs=1e-6)
    assert got["test/acc"] == pytest.approx((pf == yf).mean(), abs=1e-6)
    assert got["test/map"] == pytest.approx((got["test/ap_tc"] + got["test/ap_ar"]) / 2, abs=1e-6)


def test_segment_class_weights_change_the_loss_and_are_checked():
    logits, y = torch.randn(4, 3, 10), torch.randint(0, 3, (4, 10))
    plain = Segment(nn.Identity(), 3).loss(logits, y)
    weighted = Segment(nn.Identity(), 3, class_weights=[0.1, 1.0, 10.0]).loss(logits, y)
    assert not torch.isclose(plain, weighted)
    with pytest.raises(ValueError, match="class_weights"):
        Segment(nn.Identity(), 3, class_weights=[1.0, 2.0])


def test_retrieve_keeps_outputs_for_the_benchmark_evaluator_and_logs_no_map_of_its_own():
    rng = np.random.default_rng(2)
    labels = torch.from_numpy(rng.integers(0, 3, 24))
    x = torch.from_numpy(rng.normal(size=(24, 3))).float() + 3 * nn.functional.one_hot(labels, 3).float()
    task = Retrieve(nn.Identity(), num_classes=3)
    got = _test(task, x, labels, batch_size=5)
    assert "test/map" not in got and "test/acc" in got  # one retrieval mAP: the official SHREC'17 evaluator
    out = task.test_outputs
    assert out["embeddings"].shape == (24, 3) and torch.equal(out["labels"], labels)
    assert torch.equal(out["ids"], torch.arange(24))
    assert torch.allclose(out["scores"].sum(1), torch.ones(24))


def test_optim_recipe_is_typed_and_builds_param_groups():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))
    task = Classify(net, 2, {"lr": 0.01, "param_groups": [{"match": "1.", "lr_mult": 10}],
                             "schedule": {"kind": "multistep", "milestones": [2, 4], "gamma": 0.5}})
    opt = task.configure_optimizers()["optimizer"]
    assert sorted(g["lr"] for g in opt.param_groups) == [0.01, pytest.approx(0.1)]
    assert task.optim.schedule.factor(3) == 0.5 and task.optim.schedule.factor(5) == 0.25
    for bad, msg in [({"lr": 0}, "lr must be positive"), ({"schedule": {"kind": "exp"}}, "needs gamma")]:
        with pytest.raises(ValueError, match=msg):
            Optim.from_dict(bad)
    assert math.isclose(Optim().lr, 1e-3)
