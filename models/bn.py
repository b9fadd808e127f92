"""BatchNorm population statistics of trained weights.

A network trained for a few hundred steps has BatchNorm running averages that lag its final
weights (each is an exponential average over the last ~1/momentum batches of *changing* weights).
:func:`recalibrate_bn` replaces them by the plain average of the batch statistics of the final
weights over one pass of the data (plain torch; :class:`models.tasks.RecalibrateBN` does it after the
last training epoch of a Lightning run).

This is the ``finetune`` pass of Cohen & Welling's reference code (tscohen/gconv_experiments,
``MNIST_ROT/train.py``: ``model.start_finetuning()`` then one ``train_epoch(..., finetune=True)``
— forward passes without updates — before every evaluation; Chainer's
``BatchNormalization(finetune=True)`` averages the batch statistics with decay ``1 - 1/N``, a
cumulative average, which is torch's ``momentum=None``).

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2, momentum=0.5))
>>> x = torch.randn(64, 2)
>>> recalibrate_bn(net, [(x[:32], None), (x[32:], None)])
1
>>> bn = net[1]
>>> bool(torch.allclose(bn.running_mean, net[0](x).mean(0), atol=1e-6)), bn.momentum, net.training
(True, 0.5, True)
"""
from __future__ import annotations

from typing import Iterable

import torch


def recalibrate_bn(module: torch.nn.Module, batches: Iterable) -> int:
    """Replace every BatchNorm's running statistics by their plain average over ``batches``
    (``(x, y)`` pairs; training mode, no gradients, momentum ``None`` = cumulative average), then
    restore the momenta and the module's mode. Returns the number of BatchNorm layers."""
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was_training = module.training
    module.train()
    with torch.no_grad():
        for x, _ in batches:
            module(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    module.train(was_training)
    return len(bns)
