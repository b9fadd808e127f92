"""The table of ``reproduce/speed.py``: one Markdown section per speed section (declared order of the
config's ``models``), its rows in the order they were measured, declared for
:func:`reproduce.runner.tables.render`.

A section's columns are ``what, time_ms, floor_ms, ratio``, then the other columns its rows fill
(in the CSV's order), then ``notes, peak_mb, slope``; numbers print with three significant digits
(thousands grouped), integers as they are. Each section opens with a comment line naming the
machine, the date and the 1-minute load average when it was measured.
"""
from __future__ import annotations

from reproduce.runner import tables as T
from reproduce.runner.store import CSV_FIRST

TITLE = "Speed: equivariant layers vs plain floors (same run)"
FIRST_COLS = ["what", "time_ms", "floor_ms", "ratio"]
LAST_COLS = ["notes", "peak_mb", "slope"]
#: columns of every row that say where it came from, not what was measured
META = set(CSV_FIRST) | {"run_id", "run_dir", "cell_wall_s", "section", "title", "machine", "load_avg", "device"}


def fmt(text: str) -> str:
    """A CSV cell as the table prints it: floats to 3 significant digits (``1,088`` from 1000 up),
    integers and text unchanged."""
    try:
        int(text)
        return text
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return text
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def section_md(rows: list[dict]) -> str:
    filled = [c for c in rows[0] if c not in META and any(r.get(c) not in (None, "") for r in rows)]
    cols = [c for c in FIRST_COLS if c in filled] + [c for c in filled if c not in FIRST_COLS + LAST_COLS] \
        + [c for c in LAST_COLS if c in filled]
    r0 = rows[0]
    return (f"<!-- section: {r0['section']}; machine: {r0['machine']}; {r0['started_at'][:10]}; "
            f"load average at start {float(r0['load_avg']):.1f} -->\n## {r0['title']}\n\n"
            + T.md_table(cols, [[fmt(r.get(c, "")) for c in cols] for r in rows]) + "\n")


def sections(view: T.View) -> str:
    order = list(view.cfg.get("models") or {})
    present = sorted(view.values("model"), key=lambda m: order.index(m) if m in order else len(order))
    return "".join(section_md(view.select(model=m)) for m in present)


def headline(view: T.View) -> str:
    rows = [r for r in view.select(model="sphere")
            if r["what"].startswith("ChebConv vs deepsphere-pytorch forward+backward")]
    return f"{float(rows[-1]['ratio']):.2f}× (Nside {rows[-1]['nside']})" if rows else "–"


REPORT = T.Report(
    title=TITLE,
    data_labels={"synthetic": "random tensors and generated meshes (a timing needs no dataset)"},
    count_line=lambda v: f"Sections: {len(v.values('model'))}, {len(v.rows)} timings",
    preamble=("Ratio = time of the layer / time of the floor measured in the same process. Each section's "
              "comment line names the machine, the date and the load average (1 min) when it was measured: on "
              "a loaded machine the absolute times are inflated and the ratios noisy; rerun a section "
              "(`--only sphere`) on a quiet machine or a GPU (`--gpus 1`) for clean figures."),
    sections=[T.Text(sections)],
    notes=["Sections and what each floor is: `reproduce/measure/speed_<section>.py`; timing helpers "
           "(medians after warm-up, paired timings, peak memory): `reproduce/measure/timing.py`. Speed is a "
           "benchmark, never a timed test: the numbers depend on the machine and are stored with it."],
    headline=T.Headline("ChebConv / deepsphere-pytorch algorithm, forward+backward time, largest Nside", "–",
                        headline))
