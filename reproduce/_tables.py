"""Helpers to turn results-CSV rows into the Markdown tables of ``results/<benchmark>.md``."""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Iterable

from datamodules._common import atomic_write_text


def floats(rows: Iterable[dict], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key, "")
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return out


def mean_std(values: list[float]) -> tuple[float, float, int]:
    if not values:
        return float("nan"), float("nan"), 0
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, s, len(values)


def fmt_mean_std(values: list[float], scale: float = 100.0, digits: int = 1, unit: str = " %") -> str:
    """``'99.1 ± 1.7 % (n=17)'``; ``'–'`` when there is nothing."""
    m, s, n = mean_std(values)
    if n == 0:
        return "–"
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}{unit} (n={n})"


def select(rows: Iterable[dict], **eq) -> list[dict]:
    return [r for r in rows if all(str(r.get(k)) == str(v) for k, v in eq.items())]


def md_table(headers: list[str], body: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in body:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def header(title: str, reproduces: str, ctx, rows: list[dict], extra: str = "") -> str:
    """Common header: what is reproduced, the command, preset, data source, hardware, date."""
    hw = sorted({r.get("hardware", "") for r in rows} - {""}) or [ctx.hardware]
    srcs = sorted({r.get("data_source", "") for r in rows} - {""}) or [ctx.data_source]
    walls = floats(rows, "wall_s")
    versions = sorted({r.get("code_version", "") for r in rows} - {""})
    lines = [f"# {title}", "", f"Reproduces: {reproduces}", "",
             f"- Regenerate: `{ctx.command}`",
             f"- Preset: `{ctx.preset}`",
             f"- Data: {', '.join(srcs)}",
             f"- Hardware: {', '.join(hw)}",
             f"- Runs: {len(rows)} finished, total wall time {sum(walls) / 60:.1f} min",
             f"- Code version: {', '.join(versions) or 'unknown'}",
             f"- Table written: {ctx.started}"]
    if extra:
        lines += ["", extra.strip()]
    return "\n".join(lines) + "\n\n"


def write_md(path, text: str) -> None:
    atomic_write_text(path, text)


def last_logged(row: dict, key: str) -> float | None:
    """Last value of metric ``key`` in a run's Lightning CSV logs (``<run_dir>/logs/attempt<k>/
    metrics.csv``, latest attempt that logged it); ``None`` without a log. ``run_dir`` is read
    from the row, relative to the repository root unless absolute."""
    if not row.get("run_dir"):
        return None
    run_dir = Path(row["run_dir"])
    if not run_dir.is_absolute():
        run_dir = Path(__file__).resolve().parent.parent / run_dir
    logs = sorted((run_dir / "logs").glob("attempt*/metrics.csv"), key=lambda p: int(p.parent.name[7:]))
    for log in reversed(logs):
        with open(log, newline="") as f:
            vals = [r[key] for r in csv.DictReader(f) if r.get(key)]
        if vals:
            return float(vals[-1])
    return None


def notes_md(cfg: dict) -> str:
    """The preset's free-text ``notes:`` (not part of the run identity) as Markdown bullets."""
    return "".join(f"- {note}\n" for note in cfg.get("notes") or [])
