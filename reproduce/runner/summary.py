"""The lines an invocation ends with: the headline table (published vs reproduced, n, wall
time) read back from the rendered ``results/<benchmark>.md``, and where every file went.

The table is the first markdown table of the results file, cut to the row label and the
columns that compare with the paper (published, reproduced, wall time), aligned for a
terminal; the rendered file stays the reference (it has every column and the notes)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: header words of the columns the console shows (besides the first, the row label)
HEADLINE = ("published", "reproduced", "wall")


def first_table(md: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, bullet lines before it) of the first markdown table of ``md``.

    >>> first_table("# T\\n\\n- Runs: 2\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n\\ntext")
    (['a', 'b'], [['1', '2']], ['- Runs: 2'])
    """
    lines = md.splitlines()
    bullets: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            header = _cells(line)
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return header, rows, bullets
        if line.startswith("## "):  # past the headline section: no table there
            break
        if line.startswith("- "):
            bullets.append(line)
    return [], [], bullets


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def headline(header: list[str], rows: list[list[str]], width: int = 48) -> list[str]:
    """The table as aligned text lines, cut to the headline columns, each cell at most ``width``
    characters.

    >>> headline(["model", "published acc", "reproduced acc", "params"], [["cnn", "27 %", "23 %", "6M"]])
    ['model  published acc  reproduced acc', 'cnn    27 %           23 %']
    """
    keep = [0] + [j for j, h in enumerate(header) if j and any(w in h.lower() for w in HEADLINE)]
    if len(keep) < 2:
        keep = list(range(len(header)))

    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    table = [[cut(header[j]) for j in keep]] + [[cut(r[j]) if j < len(r) else "" for j in keep] for r in rows]
    widths = [max(len(r[k]) for r in table) for k in range(len(keep))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]


def rel(path: Path | str) -> str:
    """``path`` relative to the current folder when inside it, else as it is."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def print_summary(name: str, preset: str, table: Path | None, results_dir: Path, runs_dir: Path,
                  logger: str, wall_s: float, finished: int | None = None, total: int | None = None,
                  stream=None) -> None:
    """The closing lines of an invocation (stderr): what finished, the headline table, the files."""
    out = stream or sys.stderr
    lines = []
    done = f"{finished} of {total} runs finished" if total is not None else ""
    lines.append(f"[{name}] {preset}: {done + ', ' if done else ''}this invocation took {_duration(wall_s)}")
    if table is not None and Path(table).is_file():
        header, rows, bullets = first_table(Path(table).read_text())
        for b in bullets:
            if b.startswith(("- Runs:", "- Data:", "- Hardware:")):
                lines.append("  " + b[2:])
        if header and rows:
            lines += ["  " + line for line in headline(header, rows)]
        else:
            lines.append("  (no rows of this preset in the table yet)")
    lines.append("  files:")
    if table is not None:
        lines.append(f"    table    {rel(table)}")
    csv = Path(results_dir) / f"{name}.csv"
    if csv.is_file():
        lines.append(f"    rows     {rel(csv)}")
    runs = Path(runs_dir) / name / preset
    if runs.is_dir():
        lines.append(f"    runs     {rel(runs)}/<model>/<setting>/seed<k>-<id>/ (config.yaml, checkpoints/, logs/)")
    if logger == "wandb":
        mode = os.environ.get("WANDB_MODE", "offline")
        lines.append(f"    W&B      {rel(runs)}/**/wandb/ ({mode}; `wandb sync` uploads offline runs)")
    print("\n".join(lines), file=out, flush=True)


def _duration(s: float) -> str:
    """
    >>> _duration(42.4), _duration(754), _duration(7300)
    ('42 s', '12.6 min', '2.0 h')
    """
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"
