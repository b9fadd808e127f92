"""The declared measurements of reproduce/runner/after_test.py: Invariance (exact and resampled
symmetries, agreement and accuracy columns, chunking, the model left as found, a
non-invariant negative control), InferenceTime and the one timing helper time_fn."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from models.geometry import relative_error
from reproduce.runner import after_test as M
from reproduce.runner.after_test import InferenceTime, Invariance, time_fn


class PoolNet(nn.Module):
    """Global sum of a pointwise map: invariant to any permutation of the pixels (rot90 included)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 3)

    def forward(self, x):
        return self.lin(x.flatten(1)[..., None]).tanh().sum(1)


class FlatNet(nn.Module):
    """A dense layer on the flattened image: not invariant."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 3)

    def forward(self, x):
        return self.lin(x.flatten(1))


def task_of(net):
    return SimpleNamespace(backbone=net)


def turns(run, dm, device=None):
    x = dm.x
    yield x, [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 2, 3)], dm.y


def test_invariance_exact_symmetry_is_zero_to_rounding_and_model_is_restored():
    torch.manual_seed(0)
    net = PoolNet().train()
    dm = SimpleNamespace(x=torch.rand(5, 1, 4, 4), y=torch.zeros(5, dtype=torch.long))
    out = Invariance("rot90", turns, exact=True, agreement="agree").measure(None, None, task_of(net), dm)
    assert float(out["equivariance_error_rot90"]) < 1e-14 and out["agree"] == 1.0
    assert out["equivariance_error_rot90"].count("e") == 1            # exact: '%.2e'
    assert net.training and next(net.parameters()).dtype == torch.float32


def test_invariance_negative_control_mean_over_transforms_and_chunks():
    torch.manual_seed(0)
    net = FlatNet()
    dm = SimpleNamespace(x=torch.rand(6, 1, 4, 4), y=torch.arange(6) % 3)
    inv = Invariance("rot90", turns, agreement="agree", accuracy="acc")
    out = inv.measure(None, None, task_of(net), dm)
    with torch.no_grad():
        x = dm.x.double()
        ref = net.double()(x)
        errs = [relative_error(net(torch.rot90(x, k, dims=(-2, -1))), ref) for k in (1, 2, 3)]
    net.float()
    assert out["equivariance_error_rot90"] == round(sum(errs) / 3, 5) > 0.05
    assert 0 <= out["agree"] <= 1 and 0 <= out["acc"] <= 1
    assert Invariance("rot90", turns, agreement="agree", accuracy="acc", chunk=4).measure(
        None, None, task_of(net), dm) == out


def test_invariance_columns_batches_concatenate():
    """Errors over several view batches are the per-sample mean over all their samples."""
    ref = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    moved = ref + torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.0, 0.5]])
    views = lambda run, dm, dev: [(ref[:2], [moved[:2]], None), (ref[2:], [moved[2:]], None)]  # noqa: E731
    out = Invariance("t").columns(ref, [moved])
    assert out == {"equivariance_error_t": round((0.5 + 0 + 0.1) / 3, 5)}
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
        net.bias.zero_()
    assert Invariance("t", views).measure(None, None, task_of(net), None) == out


def test_invariance_without_views_refuses_to_measure():
    with pytest.raises(ValueError, match="no views"):
        Invariance("t").measure(None, None, task_of(FlatNet()), None)


def test_inference_time_uses_n_inputs_after_a_warm_up(monkeypatch):
    calls = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            calls.append(x.shape)
            return x

    dm = SimpleNamespace(datasets={"test": [(torch.rand(3), 0) for _ in range(20)]})
    out = InferenceTime(4).measure(None, None, task_of(Recorder()), dm)
    assert len(calls) == 5 and calls[0] == (1, 3) and out["infer_ms"] >= 0
    calls.clear()
    dm.datasets["test"] = dm.datasets["test"][:1]
    InferenceTime(4, column="ms").measure(None, None, task_of(Recorder()), dm)
    assert len(calls) == 1


def test_time_fn_median_or_mean_of_the_timed_calls(monkeypatch):
    clock = iter([0.0, 1.0, 1.0, 1.5, 1.5, 5.5])  # three calls: 1 s, 0.5 s, 4 s
    monkeypatch.setattr(M.time, "perf_counter", lambda: next(clock))
    assert time_fn(lambda: None, warmup=1, reps=3) == 1.0
    clock = iter([0.0, 1.0, 1.0, 1.5, 1.5, 5.5])
    assert time_fn(lambda: None, warmup=0, reps=3, statistic="mean") == pytest.approx(5.5 / 3)
    with pytest.raises(ValueError, match="statistic"):
        time_fn(lambda: None, statistic="max")
