"""The cells of the results tables: one formatting per kind of number, shared by every report.

Two layers: ``fmt_*`` turn a list of values into text, and the cell factories (``percent``,
``mean_std``, ``ms``, ``params``, …) turn the CSV rows of one table row into text, with the
signature ``cell(rows, key, view)`` that :class:`reproduce.runner.tables.Col` takes. A row with one
value prints that value alone: the spread of one run is not a measurement, so no cell says
``± 0.0`` for ``n = 1``.
"""
from __future__ import annotations

import math
import re
import statistics
from typing import Any, Callable, Iterable

#: a cell turns the rows of one table row (and the row's key, and the view) into text
Cell = Callable[[list[dict], Any, Any], str]
NONE = "–"


# --------------------------------------------------------------------------- values
def same(a: Any, b: Any) -> bool:
    """Equal as CSV text reads them: ``'4' == 4 == '4.0'``, ``'x' == 'x'``."""
    if str(a) == str(b):
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def select(rows: Iterable[dict], **eq) -> list[dict]:
    """Rows whose columns equal the given values (compared as :func:`same` does)."""
    return [r for r in rows if all(same(r.get(k), v) for k, v in eq.items())]


def floats(rows: Iterable[dict], key: str) -> list[float]:
    """The numeric values of column ``key`` (blank and NaN cells skipped)."""
    out = []
    for r in rows:
        try:
            f = float(r.get(key, ""))
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return out


def mean_std_n(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count; NaNs for none."""
    if not values:
        return float("nan"), float("nan"), 0
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s, len(values)


# --------------------------------------------------------------------------- numbers behind the text
class Number(str):
    """A cell's text that also carries the numbers it shows, unrounded, in the unit the text uses
    (``{"mean": 99.06, "std": 1.7, "n": 17}`` for ``'99.1 ± 1.7 % (n=17)'``, ``{"value": 12345}``
    for ``'12,345'``): the Markdown prints the text, W&B tables get the numbers as numeric columns
    (:func:`reproduce.runner.tables.numeric_table`).

    >>> c = Number("60.0 ± 14.1 % (n=2)", mean=60.0, std=14.14, n=2)
    >>> c, c.numbers["n"]
    ('60.0 ± 14.1 % (n=2)', 2)
    """

    numbers: dict

    def __new__(cls, text: str, **numbers):
        obj = super().__new__(cls, text)
        obj.numbers = dict(numbers)
        return obj


_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"
#: a whole cell that is one number, or ``mean ± std``, with an optional unit (``%``, ``ms``, ``s``,
#: ``min``, ``h``), ``(n=k)`` and a trailing note in parentheses or brackets:
#: ``'99 ± 2 % (Weiler 2018, p. 8)'``, ``'12,345'``, ``'17.4 ms'``
_NUMBER_CELL = re.compile(rf"^\s*(?P<mean>{_NUM})(?:\s*±\s*(?P<std>{_NUM}))?\s*(?:%|ms|s|min|h)?\s*"
                          rf"(?:\(n=(?P<n>\d+)\))?\s*(?:\(.*\)|\[.*\])?\s*$")


def cell_numbers(cell: Any) -> dict | None:
    """The numbers a cell shows: a :class:`Number`'s own, else parsed from text that is wholly a
    number (``'86.8 %'``, ``'99 ± 2 % (paper p. 8)'``, ``'5.21e-16'``); None for other text
    (``'–'``, a label, ``'3D CNN'``).

    >>> cell_numbers("99 ± 2 % (Weiler 2018)")
    {'mean': 99.0, 'std': 2.0}
    >>> cell_numbers("1,234"), cell_numbers("3D CNN"), cell_numbers("–")
    ({'value': 1234.0}, None, None)
    """
    if isinstance(cell, Number):
        return cell.numbers or None
    if isinstance(cell, bool):
        return None
    if isinstance(cell, (int, float)):
        return {"value": float(cell)}
    m = _NUMBER_CELL.match(str(cell))
    if m is None:
        return None
    mean = float(m["mean"].replace(",", ""))
    if m["std"] is None and m["n"] is None:
        return {"value": mean}
    out = {"mean": mean}
    if m["std"] is not None:
        out["std"] = float(m["std"].replace(",", ""))
    if m["n"] is not None:
        out["n"] = int(m["n"])
    return out


# --------------------------------------------------------------------------- formats
def fmt_pm(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """``'0.921 ± 0.027'``; the mean alone for one value; ``'–'`` for none.

    >>> fmt_pm([0.5, 0.7], scale=100, digits=1), fmt_pm([0.25]), fmt_pm([])
    ('60.0 ± 14.1', '0.250', '–')
    """
    m, s, n = mean_std_n(values)
    if not n:
        return NONE
    return Number(f"{m * scale:.{digits}f}" + (f" ± {s * scale:.{digits}f}" if n > 1 else ""),
                  mean=m * scale, std=s * scale, n=n)


def fmt_mean_std(values: list[float], scale: float = 100.0, digits: int = 1, unit: str = " %") -> str:
    """``'60.0 ± 14.1 % (n=2)'``: :func:`fmt_pm` with a unit and the count (``'–'`` for none).

    >>> fmt_mean_std([0.5, 0.7]), fmt_mean_std([0.1234], scale=1, digits=3, unit="")
    ('60.0 ± 14.1 % (n=2)', '0.123 (n=1)')
    """
    if not values:
        return NONE
    pm_ = fmt_pm(values, scale, digits)
    return Number(f"{pm_}{unit} (n={len(values)})", **pm_.numbers)


def fmt_ms(values: list[float]) -> str:
    """Mean milliseconds: ``'17.4 ms'``."""
    return Number(f"{statistics.fmean(values):.1f} ms", value=statistics.fmean(values)) if values else NONE


def fmt_minutes(seconds: list[float]) -> str:
    """Mean of seconds, in minutes: ``'8.2 min'``."""
    return (Number(f"{statistics.fmean(seconds) / 60:.1f} min", value=statistics.fmean(seconds) / 60)
            if seconds else NONE)


def fmt_params(values: list[float]) -> str:
    """The distinct parameter counts: ``'178,000'``, ``'1,234, 5,678'``."""
    return ", ".join(f"{int(p):,}" for p in sorted({int(p) for p in values})) or NONE


def fmt_distinct(rows: Iterable[dict], key: str) -> str:
    """The distinct texts of a column in order of appearance, comma-separated."""
    return ", ".join(dict.fromkeys(str(r.get(key, "")) for r in rows)) or NONE


# --------------------------------------------------------------------------- cells
def _where(rows: list[dict], where: dict | None) -> list[dict]:
    return select(rows, **where) if where else rows


def mean_std(key: str, scale: float = 100.0, digits: int = 1, unit: str = " %",
             where: dict | None = None) -> Cell:
    """``mean ± std unit (n=k)`` of a column."""
    return lambda rows, k, v: fmt_mean_std(floats(_where(rows, where), key), scale, digits, unit)


def pm(key: str, scale: float = 1.0, digits: int = 3, where: dict | None = None) -> Cell:
    """``mean ± std`` of a column without unit or count (the count is a column of its own)."""
    return lambda rows, k, v: fmt_pm(floats(_where(rows, where), key), scale, digits)


def percent(key: str, digits: int = 1, where: dict | None = None) -> Cell:
    """A fraction as ``mean ± std`` in percent, without the sign (the header says ``%``)."""
    return pm(key, 100.0, digits, where)


def ms(key: str = "infer_ms") -> Cell:
    return lambda rows, k, v: fmt_ms(floats(rows, key))


def minutes(key: str = "wall_s") -> Cell:
    return lambda rows, k, v: fmt_minutes(floats(rows, key))


def params(key: str = "params") -> Cell:
    return lambda rows, k, v: fmt_params(floats(rows, key))


def distinct(key: str) -> Cell:
    return lambda rows, k, v: fmt_distinct(rows, key)


def runs() -> Cell:
    """How many CSV rows (runs) the table row has."""
    return lambda rows, k, v: str(len(rows))


def first_int(key: str, where: dict | None = None) -> Cell:
    """The column's first value as ``12,345``."""
    def cell(rows, k, v):
        xs = floats(_where(rows, where), key)
        return Number(f"{int(xs[0]):,}", value=int(xs[0])) if xs else NONE
    return cell


def max_text(key: str, where: dict | None = None) -> Cell:
    """The text of a column's largest value, as written (for preformatted numbers such as ``7.53e-15``);
    compared as numbers, so ``1.2e-14`` beats ``7.53e-15``."""
    def as_number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return float("-inf")
    return lambda rows, k, v: max((r[key] for r in _where(rows, where) if r.get(key) not in (None, "")),
                                  key=as_number, default=NONE)


def mean_of(key: str, scale: float = 1.0, digits: int = 1, where: dict | None = None) -> Cell:
    """Plain mean of a column (e.g. wall seconds → minutes with ``scale=1/60``)."""
    def cell(rows, k, v):
        xs = floats(_where(rows, where), key)
        return Number(f"{statistics.fmean(xs) * scale:.{digits}f}", value=statistics.fmean(xs) * scale) if xs else NONE
    return cell


def total(key: str, scale: float = 1.0, digits: int = 1, where: dict | None = None) -> Cell:
    def cell(rows, k, v):
        xs = floats(_where(rows, where), key)
        return Number(f"{sum(xs) * scale:.{digits}f}", value=sum(xs) * scale) if xs else NONE
    return cell


def label(labels: dict) -> Cell:
    """The row key's label (the key itself when it has none)."""
    return lambda rows, k, v: str(labels.get(k, k))


def lookup(values: dict, default: str = NONE) -> Cell:
    """A per-row-key constant."""
    return lambda rows, k, v: str(values.get(k, default))


def const(text: str) -> Cell:
    return lambda rows, k, v: text
