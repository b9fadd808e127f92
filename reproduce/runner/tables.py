"""Results tables declared as data, and the one renderer of ``results/<benchmark>.md``.

A benchmark states its report once::

    REPORT = Report(
        title="Tetris: ...",          # "Reproduces:" comes from the script's docstring
        sections=[Table(rows="model", order=[...], columns=[
            Col("model", label(LABELS)),
            Col("published test acc", published(PUBLISHED)),
            Col("reproduced test acc (mean ± std, n runs)", mean_std("test_acc")), ...]),
            Figure("tetris.png", plot_fn, "test accuracy, published vs reproduced")],
        notes=["static note", callable_note], headline=Headline(...))

and :func:`render` turns the finished runs' CSV rows plus the preset's config into Markdown (and
PNG figures), atomically. Everything the text says comes from those two inputs — never from a
run folder, a data folder or the clock — so that rendering the committed CSV reproduces the
committed table byte for byte (``tests/test_golden_tables.py``). The header says what produced
the rows (preset, data source, hardware, code version, dates); the notes start with what the
preset changes from ``paper``, derived from the two configs (:func:`preset_changes`), then the
benchmark's notes, then the preset's free-text ``notes:``. :func:`render` also keeps the
suite-at-a-glance index ``results/README.md`` (one row per benchmark, its headline number).
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from datamodules._common import atomic_path, atomic_write_text
from reproduce.runner import config as C
from reproduce.runner.runs import expand_grid
from reproduce.runner.cells import (NONE, Cell, Number, cell_numbers, const, distinct, first_int, floats, fmt_distinct,  # noqa: F401
                                    fmt_mean_std, fmt_minutes, fmt_ms, fmt_params, fmt_pm, label, lookup,
                                    max_text, mean_of, mean_std, mean_std_n, minutes, ms, params, percent, pm,
                                    runs, same, select, total)

def md_table(headers: list[str], body: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in body:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def fmt_value(v: Any) -> str:
    """A config value as the notes print it (``unset`` for a key one config lacks)."""
    if v is C.MISSING:
        return "unset"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(x)}" for k, x in v.items()) + "}"
    return str(v)


# --------------------------------------------------------------------------- the view a table sees
@dataclass
class View:
    """What a table is rendered from: the finished rows of one preset and its config."""

    bench: Any
    cfg: dict
    rows: list[dict]
    results_dir: Path

    @property
    def name(self) -> str:
        return self.bench.name

    @property
    def preset(self) -> str:
        return self.cfg["preset"]

    def select(self, **eq) -> list[dict]:
        return select(self.rows, **eq)

    def values(self, key: str) -> list[str]:
        """Distinct non-empty values of a column, in order of first appearance."""
        return list(dict.fromkeys(str(r[key]) for r in self.rows if r.get(key) not in (None, "")))

    @property
    def data_sources(self) -> list[str]:
        return sorted({r.get("data_source", "") for r in self.rows} - {""})

    @property
    def stand_in(self) -> bool:
        return "stand-in" in self.data_sources

    def paper_cfg(self) -> dict:
        return C.load_preset(self.name, "paper", self.bench.config_root)

    def model_cfg(self, model: str) -> dict:
        return (self.cfg.get("models") or {}).get(model, {})


# --------------------------------------------------------------------------- published values
@dataclass(frozen=True)
class Published:
    """A published result: the method as its paper names it, its values by column header (a
    column a paper does not report is left out and prints ``–``), where the values come from,
    and the key of the reproduced row shown under it (``model``; None: published only).

    >>> Published("H-Net", {"test error": "1.69 %"}, "Worrall et al. 2017, Table 1", model="hnet").get("params")
    '–'
    """

    method: str
    values: dict
    source: str
    model: str | None = None

    def get(self, column: str, default: str = NONE) -> Any:
        return self.values.get(column, default)


def published(entries: Sequence[Published], column: str,
              fmt: Callable[[Any, Published], str] = lambda value, p: str(value)) -> Cell:
    """A "published" column beside the reproduced one: ``fmt(value, entry)`` of the entry whose
    ``model`` is the row's key (``–`` where there is none or it lacks the column)."""
    by_model = {p.model: p for p in entries if p.model is not None}

    def cell(rows, k, view):
        p = by_model.get(k)
        return NONE if p is None or column not in p.values else fmt(p.values[column], p)
    return cell


# --------------------------------------------------------------------------- sections
@dataclass
class Col:
    """A column: its header, the cell of a reproduced row, and what a published row shows in it
    (``pub``: a key of :attr:`Published.values` or a callable of the entry; default the header)."""

    header: str | Callable[[View], str]
    cell: Cell
    pub: str | Callable[[Published], str] | None = None

    def published_text(self, p: Published) -> str:
        if callable(self.pub):
            return self.pub(p)
        return str(p.get(self.pub if self.pub is not None else self.header))


def method(labels: dict, header: str = "method") -> Col:
    """The first column of a table that interleaves published and reproduced rows: the published
    method's name, and ``↳ reproduced: <label>`` under it."""
    return Col(header, lambda rows, k, v: f"↳ reproduced: {labels.get(k, k)}", pub=lambda p: p.method)


@dataclass
class Table:
    """A Markdown table whose rows are the distinct values of the CSV column ``rows``.

    ``order`` fixes which row keys appear and in which order (keys without rows are skipped);
    without it the keys present are sorted numerically where they are numbers. ``where``
    (a dict of column values, or a callable of the view returning one) filters the CSV rows first.
    ``published`` (entries, or a callable of the view) interleaves published rows: each entry's
    row, then the reproduced row of its ``model`` when there is one; reproduced rows without a
    published twin follow. ``heading``, ``intro`` (before) and ``after`` are text or callables of
    the view; a table without any row renders nothing, unless ``always`` is set.
    ``title`` names the table where it is logged (W&B); without it the heading's text, else the
    intro's first sentence, name it (:meth:`name`).
    """

    columns: list[Col]
    rows: str = "model"
    order: Sequence | Callable[[View], Sequence] | None = None
    where: dict | Callable[[View], dict] = field(default_factory=dict)
    heading: str | Callable[[View], str] = ""
    intro: str | Callable[[View], str] = ""
    after: str | Callable[[View], str] = ""
    always: bool = False
    title: str = ""

    def name(self, view: View) -> str:
        """The table's title: ``title``, else its heading without ``#``, else the first words of
        its intro, else ``""``."""
        if self.title:
            return self.title
        for part in (self.heading, self.intro):
            text = (part(view) if callable(part) else part) or ""
            text = " ".join(text.replace("#", " ").split())
            if part is self.intro:  # its first sentence
                text = re.split(r"(?<=[a-z)][.:;])\s", text)[0].rstrip(".:;")
            if text:
                return text if len(text) <= 60 else text[:60].rsplit(" ", 1)[0] + " …"
        return ""

    published: Sequence[Published] | Callable[[View], Sequence[Published]] = ()

    def _keys(self, view: View, rows: list[dict]) -> list:
        present = list(dict.fromkeys(str(r[self.rows]) for r in rows if r.get(self.rows) not in (None, "")))
        order = self.order(view) if callable(self.order) else self.order
        if order is not None:
            return [k for k in order if any(same(k, p) for p in present)]
        try:
            return sorted(present, key=float)
        except ValueError:
            return present

    def grid(self, view: View) -> tuple[list[str], list[list[str]]]:
        """Header and body cells (the same for the Markdown and for W&B tables)."""
        where = self.where(view) if callable(self.where) else self.where
        rows = select(view.rows, **where) if where else view.rows
        keys = self._keys(view, rows)
        row = lambda k: [c.cell(select(rows, **{self.rows: k}), k, view) for c in self.columns]  # noqa: E731
        body, shown = [], set()
        for p in (self.published(view) if callable(self.published) else self.published):
            body.append([c.published_text(p) for c in self.columns])
            twin = next((k for k in keys if p.model is not None and same(k, p.model)), None)
            if twin is not None:
                body.append(row(twin))
                shown.add(twin)
        body += [row(k) for k in keys if k not in shown]
        return [c.header(view) if callable(c.header) else c.header for c in self.columns], body

    def render(self, view: View) -> str:
        heads, body = self.grid(view)
        if not body and not self.always:
            return ""
        text = lambda part: part(view) if callable(part) else part  # noqa: E731
        return text(self.heading) + text(self.intro) + md_table(heads, body) + text(self.after)


@dataclass
class Text:
    """Free text: a string, or a callable of the view (return "" to leave nothing)."""

    text: str | Callable[[View], str]

    def render(self, view: View) -> str:
        return self.text(view) if callable(self.text) else self.text


@dataclass
class Figure:
    """A PNG written next to the table by ``plot(view)`` (a matplotlib figure, or None for
    nothing to plot), embedded as ``![alt](file)``; ``when(view)`` may switch it off."""

    file: str
    plot: Callable[[View], Any]
    alt: str
    before: str = "\n"
    after: str = "\n"
    when: Callable[[View], bool] | None = None
    dpi: int = 120

    def render(self, view: View) -> str:
        if self.when is not None and not self.when(view):
            return ""
        fig = self.plot(view)
        if fig is None:
            return ""
        save_figure(fig, view.results_dir / self.file, self.dpi)
        return f"{self.before}![{self.alt}]({self.file}){self.after}"


@dataclass
class Headline:
    """The benchmark's one number for ``results/README.md``: what it is, its published value,
    and the reproduced one computed from the rows."""

    what: str
    published: str
    reproduced: Callable[[View], str]


@dataclass
class StandIn:
    """What a table made on an offline stand-in says about its data (nothing on real data): a notice
    after the header (what the data are, what they replace, what the published values are then) and,
    first of the notes, ``describe(view)``: how the stand-in was generated."""

    data: str
    instead_of: str
    published: str
    describe: Callable[[View], str] | None = None

    @classmethod
    def papers(cls, data: str, instead_of: str, on: str, describe: Callable[[View], str] | None = None) -> StandIn:
        """The stand-in of a table whose published rows are several papers' results on ``on``."""
        return cls(data, instead_of, f"the published rows are the papers' results on {on}, for orientation", describe)

    def notice(self, view: View) -> str:
        return (f"**Data: offline stand-in** ({self.data}, see notes), not {self.instead_of}: {self.published}, "
                "not a like-for-like target.") if view.stand_in else ""

    def note(self, view: View) -> str:
        return self.describe(view) if view.stand_in and self.describe is not None else ""


@dataclass
class Report:
    """Everything ``results/<name>.md`` says, declared once per benchmark."""

    title: str
    sections: list
    notes: list = field(default_factory=list)
    #: the header's "Reproduces:" text; by default the ``Reproduces:`` paragraph of the benchmark
    #: script's docstring (what ``--help`` says, :func:`reproduces_paragraph`); a callable where
    #: the text depends on the rows
    reproduces: str | Callable[[View], str] | None = None
    #: text right after the header bullets, str or callable (default: the stand-in notice)
    preamble: str | Callable[[View], str] = ""
    #: what the table says when its rows were made on an offline stand-in
    stand_in: StandIn | None = None
    #: describes data sources in the header, e.g. {"synthetic": "synthetic by construction"}
    data_labels: dict = field(default_factory=dict)
    #: the header's "Runs:" line, replaced for scripts whose rows are not runs
    count_line: Callable[[View], str] | None = None
    headline: Headline | None = None


# --------------------------------------------------------------------------- figures
def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically (:func:`~datamodules._common.atomic_path`), then close it."""
    plt = pyplot()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- header and notes
def command(view: View) -> str:
    """The command that regenerates the table: the preset's command (finished runs are skipped,
    missing ones trained), with ``--data-dir`` when the rows were made on real data."""
    real = " --data-dir DIR" if "real" in view.data_sources else ""
    return f"python reproduce/{view.name}.py --preset {view.preset}{real}"


def reproduces_paragraph(doc: str | None, name: str) -> str:
    """The paragraph of a script's docstring that begins ``Reproduces:``, on one line, without
    that word: one statement of what a benchmark reproduces, for its ``--help`` and its table.

    >>> reproduces_paragraph("Title.\\n\\nReproduces: Weiler et al. 2018,\\n§5.1.\\n\\n    python x.py\\n", "x")
    'Weiler et al. 2018, §5.1.'
    """
    for paragraph in (doc or "").split("\n\n"):
        if paragraph.lstrip().startswith("Reproduces:"):
            return " ".join(paragraph.split()[1:])
    raise ValueError(f"reproduce/{name}.py: the docstring has no 'Reproduces:' paragraph and the report "
                     "declares no reproduces=")


def header(report: Report, view: View) -> str:
    rows = view.rows
    hw = sorted({r.get("hardware", "") for r in rows} - {""}) or ["–"]
    srcs = [report.data_labels.get(s, s) for s in view.data_sources] or ["–"]
    versions = sorted({r.get("code_version", "") for r in rows} - {""})
    dates = sorted({r.get("started_at", "")[:10] for r in rows} - {""})
    walls = floats(rows, "wall_s")
    count = (report.count_line(view) if report.count_line else
             f"Runs: {len(rows)} finished, total wall time {sum(walls) / 60:.1f} min")
    reproduces = report.reproduces
    if reproduces is None:
        reproduces = reproduces_paragraph(view.bench.script_doc, view.name)
    elif callable(reproduces):
        reproduces = reproduces(view)
    lines = [f"# {report.title}", "", f"Reproduces: {reproduces}", "",
             f"- Regenerate: `{command(view)}`",
             f"- Preset: `{view.preset}`",
             f"- Data: {', '.join(srcs)}",
             f"- Hardware: {', '.join(hw)}",
             f"- {count}",
             f"- Code version: {', '.join(versions) or 'unknown'}",
             f"- Runs started: {' – '.join(dict.fromkeys([dates[0], dates[-1]])) if dates else '–'}"]
    extra = report.preamble(view) if callable(report.preamble) else report.preamble
    extra = extra or (report.stand_in.notice(view) if report.stand_in else "")
    if extra:
        lines += ["", extra.strip()]
    return "\n".join(lines) + "\n\n"


def _grid_cells(bench, cfg: dict) -> dict[tuple[str, str], dict]:
    if "grid" not in cfg:  # a measurement script, not a training grid
        return {}
    one = C.deep_merge(cfg, {"grid": {"runs": 1}})
    return {(r.model, r.setting_str): r.cfg for r in expand_grid(bench, one)}


def _row_runs(bench, cfg: dict) -> list[tuple[str, str, int]]:
    """(model, setting, runs) of the grid rows whose ``runs:`` differs from ``grid.runs``."""
    if "grid" not in cfg:
        return []
    counts: dict[tuple[str, str], int] = {}
    for r in expand_grid(bench, cfg):
        counts[(r.model, r.setting_str)] = counts.get((r.model, r.setting_str), 0) + 1
    default = C.get(cfg, "grid.runs", 1)
    return [(m, s, n) for (m, s), n in counts.items() if n != default]


def _default(bench, cfg: dict, key: str) -> Any:
    """The value a key that a config leaves unset takes: the default of the parameter it feeds
    (datamodule, backbone of that model's kind, optimiser, trainer), else :data:`C.MISSING`."""
    import inspect
    from models.optim import Optim
    from reproduce.runner.lazy import resolve
    from reproduce.runner.launch import TrainerConfig
    parts = key.split(".")
    target, name = None, parts[-1]
    if parts[0] == "data" and len(parts) == 2:
        target = bench.datamodule
    elif parts[0] == "models" and len(parts) == 3:
        target = bench.models.get(((cfg.get("models") or {}).get(parts[1]) or {}).get("kind"))
    elif parts[0] == "model" and len(parts) == 2:
        target = bench.models.get((cfg.get("model") or {}).get("kind"))
    elif parts[0] == "optim" and len(parts) == 2:
        target = Optim
    elif parts[0] == "trainer" and len(parts) == 2:
        target = TrainerConfig
    if target is None:
        return C.MISSING
    target = resolve(target)
    try:
        p = inspect.signature(target).parameters.get(name)
    except (TypeError, ValueError):
        return C.MISSING
    if p is None or p.default is inspect.Parameter.empty:
        return C.MISSING
    if dataclasses.is_dataclass(target):  # a field(default_factory=...) shows as <factory>
        f = {f.name: f for f in dataclasses.fields(target)}.get(name)
        if f is not None and f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
    return p.default


def _change(bench, base: dict, other: dict, key: str, a: Any, b: Any) -> str:
    if a is C.MISSING:
        d = _default(bench, base, key)
        a_txt = "unset" if d is C.MISSING else f"{fmt_value(d)} (default)"
    else:
        a_txt = fmt_value(a)
    if b is C.MISSING:
        d = _default(bench, other, key)
        b_txt = "unset" if d is C.MISSING else f"{fmt_value(d)} (default)"
    else:
        b_txt = fmt_value(b)
    return f"{a_txt} → {b_txt}"


def _some(cells: list[str], most: int = 8) -> str:
    return ", ".join(cells[:most]) + (f", … ({len(cells) - most} more)" if len(cells) > most else "")


def preset_changes(bench, cfg: dict, paper: dict) -> list[str]:
    """What ``cfg`` changes from the ``paper`` preset, one line per difference, derived from the
    two resolved configs: every differing value outside the grid (a change made to every entry
    of ``models`` is written once, as ``models.*.key``), the grid's size, and per grid row
    (model, setting) the values that row's resolved config changes beyond those."""
    skip = ("preset", "notes", "grid.rows", "benchmark")
    glob = [(k, a, b) for k, a, b in C.diff(paper, cfg) if not k.startswith(skip)]
    ids = set(bench.model_ids(cfg))
    lines, grouped = [], {}
    for k, a, b in glob:
        parts = k.split(".")
        if parts[0] == "models" and len(parts) >= 3:
            grouped.setdefault((".".join(parts[2:]), repr(a), repr(b)), []).append((parts[1], k, a, b))
            continue
        lines.append(f"`{k}`: {_change(bench, paper, cfg, k, a, b)}")
    for (rest, _, _), members in grouped.items():
        mids = [m for m, *_ in members]
        _, k, a, b = members[0]
        if len(members) > 1 and set(mids) == ids:
            name = f"models.*.{rest}"
        elif len(members) > 1:
            name = "models.{" + ",".join(mids) + "}." + rest
        else:
            name = k
        lines.append(f"`{name}`: {_change(bench, paper, cfg, k, a, b)}")
    # the same change seen from inside a run's config (models.<id>.x is model.x there)
    seen = {(k, repr(a), repr(b)) for k, a, b in glob}
    mine, theirs = _grid_cells(bench, cfg), _grid_cells(bench, paper)
    dropped = [f"{m} {s}" for (m, s) in theirs if (m, s) not in mine]
    added = [f"{m} {s}" for (m, s) in mine if (m, s) not in theirs]
    own = [f"{m} {s} ×{n}" for m, s, n in _row_runs(bench, cfg)]
    if own:
        lines.append(f"rows with their own number of runs (`runs:` of a grid row): {_some(own)}")
    if dropped:
        lines.append(f"grid rows not run ({len(dropped)} of {len(theirs)}): {_some(dropped)}")
    if added:
        lines.append(f"grid rows not in `paper`: {_some(added)}")
    for (m, s), rc in mine.items():
        if (m, s) not in theirs:
            continue
        row = []
        for k, a, b in C.diff(theirs[(m, s)], rc):
            if k.startswith(skip):
                continue
            owner = f"models.{m}.{k[len('model.'):]}" if k.startswith("model.") else k
            if (owner, repr(a), repr(b)) in seen:
                continue
            row.append(f"`{k}` {_change(bench, theirs[(m, s)], rc, k, a, b)}")
        if row:
            lines.append(f"row {m} {s}: " + ", ".join(row))
    return lines


def notes_section(report: Report, view: View) -> str:
    out = "\n## Notes\n"
    if view.preset != "paper":
        try:
            changes = preset_changes(view.bench, view.cfg, view.paper_cfg())
        except Exception as e:  # noqa: BLE001 - a paper preset that does not load
            changes = [f"(could not compare with `paper`: {e})"]
        out += (f"- What the `{view.preset}` preset changes from `paper` (derived from "
                f"`configs/{view.name}/`):\n")
        out += "".join(f"  - {line}\n" for line in changes) if changes else "  - nothing\n"
    for note in ([report.stand_in.note] if report.stand_in else []) + list(report.notes):
        text = note(view) if callable(note) else note
        if text:
            out += text if text.startswith(("- ", "\n")) else f"- {text.rstrip()}\n"
    out += "".join(f"- {note}\n" for note in view.cfg.get("notes") or [])
    return out


# --------------------------------------------------------------------------- render
def render_text(bench, cfg: dict, rows: list[dict], results_dir: Path) -> str:
    """The Markdown of ``results/<name>.md`` (figures are written as a side effect)."""
    report: Report = bench.report
    view = View(bench=bench, cfg=cfg, rows=rows, results_dir=Path(results_dir))
    text = header(report, view)
    for section in report.sections:
        text += section.render(view)
    return text + notes_section(report, view)


def render(bench, cfg: dict, rows: list[dict], results_dir: Path) -> Path | None:
    """Write ``results/<name>.md`` (+ figures) from this preset's rows, atomically, and update
    the index ``results/README.md``. Returns the table's path (None without a report)."""
    if getattr(bench, "report", None) is None:
        return None
    results_dir = Path(results_dir)
    path = results_dir / f"{bench.name}.md"
    atomic_write_text(path, render_text(bench, cfg, rows, results_dir))
    update_index(results_dir, bench, cfg, rows)
    return path


def table_data(bench, cfg: dict, rows: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every declared :class:`Table` of the report as (title, header, body) — the same cells
    as the Markdown, for loggers that take tables (W&B). Titles are unique (:meth:`Table.name`;
    ``main`` for an untitled first table, ``table <k>`` for a later one)."""
    view = View(bench=bench, cfg=cfg, rows=rows, results_dir=Path("."))
    out, seen = [], set()
    for k, s in enumerate(x for x in bench.report.sections if isinstance(x, Table)):
        heads, body = s.grid(view)
        if not body:
            continue
        title = s.name(view) or ("main" if not out else f"table {k + 1}")
        while title in seen:
            title += "'"
        seen.add(title)
        out.append((title, heads, body))
    return out


def numeric_table(heads: list[str], body: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """The columns of a table for a dashboard: a column whose cells show numbers
    (:func:`cell_numbers`: every cell a number or ``–``, at least one number) becomes numeric
    columns ``<header>: mean``, ``: std``, ``: n`` (or ``<header>`` alone for single values) with
    the text kept as ``<header>: text``; other columns stay text. Missing numbers are None.

    >>> numeric_table(["model", "acc"], [["a", Number("50.0 ± 1.0 % (n=2)", mean=50.0, std=1.0, n=2)], ["b", "–"]])
    (['model', 'acc: mean', 'acc: std', 'acc: n', 'acc: text'], [['a', 50.0, 1.0, 2, '50.0 ± 1.0 % (n=2)'], ['b', None, None, None, '–']])
    """
    plan = []  # per column: the keys of its numbers, or None for text
    for j, h in enumerate(heads):
        nums = [cell_numbers(r[j]) for r in body]
        texts = [str(r[j]).strip() for r in body]
        numeric = any(nums) and all(n is not None or t in ("–", "-", "") for n, t in zip(nums, texts))
        if not numeric:
            plan.append(None)
            continue
        keys = [k for k in ("value", "mean", "std", "n") if any(n and k in n for n in nums)]
        if keys == ["value"]:
            plan.append(["value"])
        else:  # a single value next to mean ± std cells is that column's mean
            plan.append([k for k in ("mean", "std", "n") if k in keys or k == "mean"])
    columns, data = [], [[] for _ in body]
    for j, h in enumerate(heads):
        keys = plan[j]
        if keys is None:
            columns.append(h)
        elif keys == ["value"]:
            columns += [h, f"{h}: text"]
        else:
            columns += [f"{h}: {k}" for k in keys] + [f"{h}: text"]
        for i, r in enumerate(body):
            if keys is None:
                data[i].append(str(r[j]))
                continue
            n = cell_numbers(r[j]) or {}
            if "value" in n and "mean" not in n:
                n = {**n, "mean": n["value"]}
            for k in keys:
                v = n.get(k)
                data[i].append(None if v is None else int(v) if k == "n" or isinstance(v, int) else float(v))
            data[i].append(str(r[j]))
    return columns, data


# --------------------------------------------------------------------------- results/README.md
INDEX_HEAD = ["benchmark", "headline", "published", "reproduced", "preset", "data", "hardware", "runs started"]
INDEX_INTRO = """# Results at a glance

One row per benchmark: its headline number, published beside reproduced, and what produced the
reproduction. Each benchmark's table (`<benchmark>.md`, with figures and notes) and its rows
(`<benchmark>.csv`, one per finished run) are regenerated by `python reproduce/<benchmark>.py`;
this index is rewritten with them. Stand-in numbers are **not** the papers' numbers: the data
column says which data made each row. Speed: [speed.md](speed.md).

"""


def index_row(bench, view: View) -> list[str]:
    h: Headline | None = bench.report.headline
    dates = sorted({r.get("started_at", "")[:10] for r in view.rows} - {""})
    return [f"[{bench.name}]({bench.name}.md)", h.what if h else "–", h.published if h else "–",
            h.reproduced(view) if h else "–", f"`{view.preset}`", ", ".join(view.data_sources) or "–",
            ", ".join(sorted({r.get("hardware", "") for r in view.rows} - {""})) or "–",
            dates[-1] if dates else "–"]


def _read_index(path: Path) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        if line.startswith("| [") and "](" in line:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0][1:cells[0].index("]")]] = cells
    return rows


def update_index(results_dir: Path, bench, cfg: dict, rows: list[dict]) -> None:
    """Replace (or add) this benchmark's row of ``results/README.md``, keeping the others. Rows are
    in the order of the benchmarks' names (that of ``configs/``): nothing to register."""
    path = Path(results_dir) / "README.md"
    view = View(bench=bench, cfg=cfg, rows=rows, results_dir=Path(results_dir))
    rows = _read_index(path)
    rows[bench.name] = index_row(bench, view)
    atomic_write_text(path, INDEX_INTRO + md_table(INDEX_HEAD, [rows[n] for n in sorted(rows)]))
