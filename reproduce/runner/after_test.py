"""Measurements on a trained model, declared by a benchmark and implemented once.

A benchmark lists them in ``measurements`` (:class:`reproduce.runner.benchmark.Benchmark`); the
default ``after_test`` runs each on the tested model and adds its columns to the run's row:

* :class:`Invariance` — the relative change of the logits under transforms of the input
  (:func:`models.geometry.relative_error`, the one definition of the tables and the tests): the
  worst transform for an exact symmetry, the mean over transforms otherwise, and optionally how
  often the predicted class stays and the accuracy on the transformed inputs;
* :class:`InferenceTime` — milliseconds per input at batch 1 (:func:`time_fn`).

:func:`time_fn` is the one timing helper of the repository (the speed sections use it too): the
median wall time of repeated calls after warm-up, CUDA synchronised.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from reproduce.runner.progress import progress

if TYPE_CHECKING:  # torch is imported where a measurement runs: declaring one (--list) goes without it
    import torch


# --------------------------------------------------------------------------- timing
def sync(device: torch.device | str | None) -> None:
    """Wait for the device's queued work (CUDA), so that a wall time covers it."""
    import torch
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], warmup: int = 2, reps: int = 5,
            device: torch.device | str | None = None, statistic: str = "median") -> float:
    """Wall time of ``fn()`` in seconds: the median (or ``statistic="mean"``) over ``reps`` calls
    after ``warmup`` calls.

    >>> time_fn(lambda: None, warmup=0, reps=3) >= 0
    True
    """
    if statistic not in ("median", "mean"):
        raise ValueError(f"time_fn: statistic must be 'median' or 'mean', got {statistic!r}")
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(max(int(reps), 1)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) if statistic == "median" else statistics.fmean(times)


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class InferenceTime:
    """Milliseconds per input of the trained backbone at batch 1 (eval mode, no gradients): the
    ``statistic`` (``mean``, as the committed tables state, or ``median``) over the first ``n``
    inputs of ``split``, after one warm-up call on the input before them (inputs already on the
    model's device). Column ``column``, 3 decimals."""

    n: int
    split: str = "test"
    column: str = "infer_ms"
    statistic: str = "mean"

    def inputs(self, datamodule) -> list[torch.Tensor]:
        ds = datamodule.datasets[self.split]
        return [ds[i][0][None] for i in range(min(len(ds), int(self.n) + 1))]

    def measure(self, ctx, run, task, datamodule) -> dict:
        import torch
        net = task.backbone
        was_training = net.training
        net.eval()
        dev = next(net.parameters()).device
        items = [x.to(dev) for x in self.inputs(datamodule)]
        if not items:
            return {}
        stream = iter(items)
        with torch.no_grad():
            seconds = time_fn(lambda: net(next(stream)), warmup=1 if len(items) > 1 else 0,
                              reps=max(len(items) - 1, 1), device=dev, statistic=self.statistic)
        net.train(was_training)
        return {self.column: round(1000 * seconds, 3)}


#: one batch of an :class:`Invariance` check: the inputs as given, the same inputs transformed
#: (one tensor per transform, always in the same order) and their class labels (or None)
View = "tuple[torch.Tensor, Sequence[torch.Tensor], torch.Tensor | None]"


@dataclass(frozen=True)
class Invariance:
    """The change of the trained classifier's logits when its input is transformed.

    ``views(run, datamodule, device)`` yields :data:`View` batches (``device``: the model's, for
    views that are cheaper to build there; any device is accepted). Per transform ``j``, the error is
    :func:`models.geometry.relative_error` of the transformed logits against the logits of the
    inputs as given, over every sample of every batch. ``exact=True`` (a symmetry the network
    has by construction: quarter turns, cube rotations): the column is the largest error over
    the transforms, in ``%.2e``; otherwise the mean over the transforms, 5 decimals.
    ``agreement`` names a column of the share of samples whose predicted class stays (mean over
    transforms, 4 decimals); ``accuracy`` one of the accuracy on the transformed inputs against
    the labels (6 decimals). ``describe`` / ``unit``: progress lines per transform. ``float64`` evaluates the network in double precision (exact
    symmetries are then checked to ~1e-12; the model returns to float32 after); ``chunk`` feeds
    that many samples per forward pass (memory)."""

    name: str
    views: Callable[[Any, Any, torch.device], Iterable[View]] | None = None
    exact: bool = False
    agreement: str | None = None
    accuracy: str | None = None
    float64: bool = True
    chunk: int | None = None
    column: str | None = None
    #: shown with progress lines per transform (e.g. "the 24 cube rotations"); None: silent
    describe: str | None = None
    unit: str = "transforms"

    @property
    def error_column(self) -> str:
        return self.column or f"equivariance_error_{self.name}"

    def measure(self, ctx, run, task, datamodule) -> dict:
        if self.views is None:
            raise ValueError(f"Invariance {self.name!r}: no views to measure (only columns() of given logits)")
        import torch
        net = task.backbone
        was_training = net.training
        net.eval()
        if self.float64:
            net.double()
        dev = next(net.parameters()).device
        dtype = torch.float64 if self.float64 else next(net.parameters()).dtype

        def forward(x: torch.Tensor) -> torch.Tensor:
            x = torch.as_tensor(x).to(dev, dtype)
            step = len(x) if not self.chunk else int(self.chunk)
            return torch.cat([net(x[i:i + step]) for i in range(0, len(x), step)])

        refs, outs, labels = [], [], []
        try:
            with torch.no_grad():
                for x, transformed, y in self.views(run, datamodule, dev):
                    refs.append(forward(x).cpu())
                    if self.describe:
                        what = f"[{run.benchmark}] {run.model}: {'float64 ' if self.float64 else ''}logits under {self.describe}"
                        transformed = progress(transformed, what, self.unit)
                    outs.append([forward(t).cpu() for t in transformed])
                    labels.append(y)
        finally:
            if self.float64:
                net.float()
            net.train(was_training)
        if not refs:
            return {}
        ref = torch.cat(refs)
        per_transform = [torch.cat(o) for o in zip(*outs)]
        y = torch.cat([torch.as_tensor(t) for t in labels]) if self.accuracy and labels[0] is not None else None
        return self.columns(ref, per_transform, y)

    def columns(self, ref: torch.Tensor, outputs: Sequence[torch.Tensor],
                labels: torch.Tensor | None = None) -> dict:
        """The columns of logits ``ref`` (inputs as given) and ``outputs`` (one per transform):

        >>> import torch
        >>> ref = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> Invariance("t", exact=True, agreement="agree").columns(ref, [ref * 1.5])
        {'equivariance_error_t': '5.00e-01', 'agree': 1.0}
        """
        from models.geometry import relative_error
        errors = [relative_error(o.double(), ref.double()) for o in outputs]
        if not errors:
            return {}
        out = {self.error_column: f"{max(errors):.2e}" if self.exact else round(statistics.fmean(errors), 5)}
        pred = ref.argmax(1)
        if self.agreement:
            out[self.agreement] = round(statistics.fmean(float((o.argmax(1) == pred).double().mean())
                                                         for o in outputs), 4)
        if self.accuracy and labels is not None:
            labels = labels.to(pred.device)
            out[self.accuracy] = round(statistics.fmean(float((o.argmax(1) == labels).double().mean())
                                                        for o in outputs), 6)
        return out


def measure_all(measurements: Iterable, ctx, run, task, datamodule) -> dict:
    """The columns of every declared measurement, in declaration order."""
    out: dict = {}
    for m in measurements:
        out.update(m.measure(ctx, run, task, datamodule) or {})
    return out


__all__ = ["sync", "time_fn", "InferenceTime", "Invariance", "View", "measure_all"]
