"""Progress of a phase that runs outside Lightning's bars (post-test measurements, caches): one
line when it starts, then one every ``every`` seconds with the count done and the time so far,
and one when it ends — on rank 0, to stderr, so a long step is never silent.

>>> import io
>>> out = io.StringIO()
>>> [x for x in progress(range(3), "[demo] check", "pieces", every=0, stream=out)]
[0, 1, 2]
>>> print(out.getvalue().replace("0 s", "T").strip())
[demo] check: 0/3 pieces
[demo] check: 1/3 pieces (T)
[demo] check: 2/3 pieces (T)
[demo] check: 3/3 pieces (T)
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], what: str, unit: str, total: int | None = None, every: float = 10.0,
             stream=None) -> Iterator[T]:
    """Yield ``items``, saying how far ``what`` got (see the module text)."""
    from reproduce.runner.runs import global_rank
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    n = total if total is not None else len(items)  # type: ignore[arg-type]
    out = stream or sys.stderr
    quiet = global_rank() != 0
    t0 = last = time.perf_counter()
    if not quiet:
        print(f"{what}: 0/{n} {unit}", file=out, flush=True)
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if not quiet and (now - last >= every or done == n):
            print(f"{what}: {done}/{n} {unit} ({now - t0:.0f} s)", file=out, flush=True)
            last = now
