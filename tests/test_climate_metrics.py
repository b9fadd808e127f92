"""The climate table's metrics (models/tasks.py::Segment) on hand-made masks, every value worked out
by hand below (not by sklearn): per-class recall ("accuracy"), its mean over BG/TC/AR, per-class
average precision over the *whole* test set (not a mean of per-batch APs), mAP over TC and AR only,
per-class IoU, site accuracy, and the class-weighted cross-entropy. TC is absent from the second
map (batch), so a per-batch computation would differ.

Eight sites in two maps of four, class order 0 BG, 1 TC, 2 AR; the backbone is the identity and
the "logits" are log-probabilities, so the task's softmax gives back exactly these probabilities::

    site  true  p(BG)  p(TC)  p(AR)  argmax
    A0    BG    0.80   0.10   0.10   BG
    A1    BG    0.50   0.20   0.30   BG
    A2    TC    0.20   0.60   0.20   TC
    A3    AR    0.40   0.10   0.50   AR
    B0    BG    0.20   0.70   0.10   TC   (false TC)
    B1    BG    0.30   0.10   0.60   AR   (false AR)
    B2    BG    0.90   0.05   0.05   BG
    B3    AR    0.55   0.10   0.35   BG   (missed AR)

Recall: BG 3/5 (A0, A1, B2 of A0, A1, B0, B1, B2), TC 1/1, AR 1/2; mean (0.6 + 1 + 0.5)/3 = 0.7.
IoU = |pred ∩ true| / |pred ∪ true|: BG 3/(4 + 5 − 3) = 1/2, TC 1/(2 + 1 − 1) = 1/2, AR 1/(2 + 2 − 1) = 1/3.
Site accuracy 5/8.

AP = Σ_n (R_n − R_{n−1}) P_n over the distinct scores in decreasing order (sklearn's definition):

* TC, whole set: 0.70 (B0, neg) then 0.60 (A2, pos): AP = 1 · 1/2 = 1/2. Per batch it would be
  1 on map A and undefined on map B (no TC there).
* AR: 0.60 neg; 0.50 pos (R 1/2, P 1/2); 0.35 pos (R 1, P 2/3): AP = ½·½ + ½·⅔ = 7/12.
  Per batch: map A 1, map B 1/2, mean 3/4 ≠ 7/12.
* BG: 0.9 +, 0.8 +, 0.55 −, 0.5 + (R 3/5, P 3/4), 0.4 −, 0.3 + (R 4/5, P 4/6), 0.2 {+, −} (R 1,
  P 5/8): AP = (1 + 1 + 3/4 + 2/3 + 5/8)/5 = 97/120.

mAP (TC, AR) = (1/2 + 7/12)/2 = 13/24; the mean over all three classes would be (1/2 + 7/12 + 97/120)/3.
"""
from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.tasks import Segment

NAMES = ["BG", "TC", "AR"]
P = torch.tensor([[[.80, .10, .10], [.50, .20, .30], [.20, .60, .20], [.40, .10, .50]],
                  [[.20, .70, .10], [.30, .10, .60], [.90, .05, .05], [.55, .10, .35]]], dtype=torch.float64)
Y = torch.tensor([[0, 0, 1, 2], [0, 0, 0, 2]])
#: the hand-worked values of the module docstring
EXPECTED = {"recall_BG": 3 / 5, "recall_TC": 1.0, "recall_AR": 1 / 2, "acc_mean": 0.7,
            "iou_BG": 1 / 2, "iou_TC": 1 / 2, "iou_AR": 1 / 3, "acc": 5 / 8,
            "ap_TC": 1 / 2, "ap_AR": 7 / 12, "ap_BG": 97 / 120, "map": 13 / 24}


def logits() -> torch.Tensor:
    """(B, K, V) log-probabilities: softmax over K gives back P exactly."""
    return P.log().movedim(2, 1).float()


def score(batch_size: int, map_classes=(1, 2)) -> dict[str, float]:
    task = Segment(nn.Identity(), num_classes=3, map_classes=list(map_classes), class_names=NAMES)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    loader = DataLoader(TensorDataset(logits(), Y), batch_size=batch_size, shuffle=False)
    out = trainer.test(task, dataloaders=loader, verbose=False)[0]
    return {k.removeprefix("test/"): float(v) for k, v in out.items()}


def test_the_hand_made_probabilities_give_the_stated_predictions():
    assert torch.allclose(P.sum(-1), torch.ones(2, 4, dtype=torch.float64))
    assert P.argmax(-1).tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]
    assert torch.allclose(logits().softmax(1).movedim(1, 2).double(), P, atol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_segment_metrics_equal_the_hand_worked_values(batch_size):
    """One map per batch (TC absent from the second) and both maps in one batch give the same
    numbers: the metrics accumulate every site of the test set before computing."""
    got = score(batch_size)
    for key, want in EXPECTED.items():
        assert got[key] == pytest.approx(want, abs=1e-6), key


def test_ap_is_over_the_whole_set_not_a_mean_of_batches():
    got = score(1)
    per_batch_ar = (1.0 + 0.5) / 2          # map A: AP 1; map B: AP 1/2 (module docstring)
    assert got["ap_AR"] == pytest.approx(7 / 12, abs=1e-6) and abs(got["ap_AR"] - per_batch_ar) > 0.1
    assert got["ap_TC"] == pytest.approx(0.5, abs=1e-6)  # per-batch: 1 on map A, undefined on map B


def test_map_is_the_mean_of_tc_and_ar_only():
    tc_ar = score(2)
    assert tc_ar["map"] == pytest.approx(13 / 24, abs=1e-6)
    every = score(2, map_classes=(0, 1, 2))
    assert every["map"] == pytest.approx((1 / 2 + 7 / 12 + 97 / 120) / 3, abs=1e-6)
    assert abs(every["map"] - tc_ar["map"]) > 0.05  # BG's AP would inflate the paper's mAP


def test_weighted_cross_entropy_by_hand():
    """PyTorch's weighted mean: Σ_i w_{y_i}·(−log p_{i,y_i}) / Σ_i w_{y_i}; without weights the
    plain mean of −log p_{i,y_i} over the 8 sites."""
    w = [0.5, 20.0, 3.0]
    nll = {(m, s): -math.log(float(P[m, s, Y[m, s]])) for m in range(2) for s in range(4)}
    plain = sum(nll.values()) / 8
    weighted = (sum(w[int(Y[m, s])] * v for (m, s), v in nll.items())
                / sum(w[int(Y[m, s])] for m in range(2) for s in range(4)))
    x = logits()
    assert float(Segment(nn.Identity(), 3).loss(x, Y)) == pytest.approx(plain, rel=1e-5)
    assert float(Segment(nn.Identity(), 3, class_weights=w).loss(x, Y)) == pytest.approx(weighted, rel=1e-5)
    assert abs(weighted - plain) > 0.1


def test_train_ap_off_keeps_the_confusion_metrics():
    """``train_ap=False``: no AP state at the training stage (nothing kept per site), the counts
    that give recall / IoU / accuracy still there; validation and test keep AP."""
    task = Segment(nn.Identity(), num_classes=3, map_classes=[1, 2], class_names=NAMES, train_ap=False)
    assert "ap" not in task.metrics["train_"] and "ap" in task.metrics["val_"] and "ap" in task.metrics["test_"]
    logged = {}
    task.log_dict = lambda d, **kw: logged.update({k: float(v) for k, v in d.items()})
    task.update_metrics("train", logits(), Y, None)
    task.on_train_epoch_end()
    assert "train/map" not in logged and "train/ap_TC" not in logged
    assert logged["train/acc_mean"] == pytest.approx(0.7, abs=1e-6)
    assert logged["train/iou_AR"] == pytest.approx(1 / 3, abs=1e-6)
