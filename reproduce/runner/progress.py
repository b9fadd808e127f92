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


class slow_step:
    """Context manager for a step that is usually quick but may not be (a model whose graphs are
    built, a cache filled, a post-test measurement): silent when it ends within ``after``
    seconds; otherwise one line when ``after`` has passed and one when it ends, with the time
    (rank 0, stderr). Steps with their own progress bars need no wrapper.

    >>> import io, time
    >>> out = io.StringIO()
    >>> with slow_step("[demo] quick", after=5, stream=out):
    ...     pass
    >>> out.getvalue()
    ''
    >>> with slow_step("[demo] slow", after=0.05, stream=out):
    ...     time.sleep(0.3)
    >>> print(out.getvalue().replace("0 s", "T").strip())
    [demo] slow ... (still running after 0.05 s)
    [demo] slow: done in T
    """

    def __init__(self, what: str, after: float = 10.0, stream=None):
        self.what, self.after, self.stream = what, after, stream
        self.fired = False
        self._timer = None

    def _say(self) -> None:
        self.fired = True
        print(f"{self.what} ... (still running after {self.after:g} s)", file=self.stream or sys.stderr, flush=True)

    def __enter__(self):
        import threading

        from reproduce.runner.runs import global_rank
        self.t0 = time.perf_counter()
        if global_rank() == 0:
            self._timer = threading.Timer(self.after, self._say)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.fired and exc[0] is None:
            print(f"{self.what}: done in {time.perf_counter() - self.t0:.0f} s", file=self.stream or sys.stderr, flush=True)
