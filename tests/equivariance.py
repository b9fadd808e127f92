"""One equivariance helper for every family (house style §5).

``assert_equivariant(f, x, act_in, act_out, elements, rtol)`` checks f(g·x) = g·f(x) for each
group element g and returns the largest relative error max_g ‖f(gx) − g f(x)‖ / ‖f(x)‖.
It refuses outputs that are (nearly) zero, because a zero map passes any such test.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


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
            worst = max(worst, err)
    assert worst <= rtol, f"equivariance error {worst:.3g} > {rtol:.3g}"
    return worst
