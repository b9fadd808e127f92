"""One equivariance helper for every family (house style §5).

``assert_equivariant(f, x, act_in, act_out, elements, rtol)`` checks f(g·x) = g·f(x) for each
group element g and returns the largest relative error over the elements, each
:func:`models.geometry.relative_error` — the definition the results tables use: the mean over
the batch (axis 0) of ‖f(gx)ᵢ − g f(x)ᵢ‖ / ‖g f(x)ᵢ‖. It refuses outputs that are (nearly)
zero, because a zero map passes any such test, and a non-finite error (a sample whose output
is zero).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from models.geometry import relative_error


def assert_equivariant(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       act_in: Callable, act_out: Callable, elements: Iterable,
                       rtol: float, min_norm: float = 1e-6) -> float:
    with torch.no_grad():
        y = f(x)
        assert float(y.norm()) > min_norm * max(1.0, float(x.norm())), \
            "output is (nearly) zero: the equivariance check would be vacuous"
        worst = 0.0
        for g in elements:
            err = relative_error(f(act_in(g, x)), act_out(g, y))
            assert math.isfinite(err), f"equivariance error is {err} (a sample's output is zero)"
            worst = max(worst, err)
    assert worst <= rtol, f"equivariance error {worst:.3g} > {rtol:.3g}"
    return worst
