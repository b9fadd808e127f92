"""The table primitives of ``reproduce/runner/tables.py`` and ``cells.py``: published rows interleaved
with reproduced ones, the shared cells (no ``± 0.0`` for one run), and the index ``results/README.md``
whose row order comes from the benchmarks' names, not from a list to keep up to date."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from reproduce.runner import tables as T
from reproduce.runner.tables import Published

ROOT = Path(__file__).resolve().parents[1]


def view(rows, **cfg):
    return T.View(bench=SimpleNamespace(name="demo"), cfg={"preset": "cpu", **cfg}, rows=rows, results_dir=Path("."))


ROWS = [{"model": "b", "acc": "0.5", "wall_s": "60"}, {"model": "b", "acc": "0.7", "wall_s": "120"},
        {"model": "a", "acc": "0.9", "wall_s": "30"}, {"model": "x", "acc": "0.1", "wall_s": "30"}]
PUB = [Published("Paper A", {"acc": "91"}, "A 2020", model="a"),
       Published("Paper only", {"acc": "50", "params": "1 M"}, "C 2019"),
       Published("Paper B", {"params": "2 M"}, "B 2021", model="b")]
TABLE = T.Table(published=PUB, columns=[
    T.method({"a": "model A", "b": "model B"}), T.Col("acc", T.percent("acc")), T.Col("params", T.const("?")),
    T.Col("training", T.minutes()), T.Col("runs", T.runs()), T.Col("source", T.const("here"), pub=lambda p: p.source)])


def test_published_rows_interleave_with_their_reproduced_twin_and_the_rest_follow():
    heads, body = TABLE.grid(view(ROWS))
    assert heads == ["method", "acc", "params", "training", "runs", "source"]
    assert body == [
        ["Paper A", "91", "–", "–", "–", "A 2020"],
        ["↳ reproduced: model A", "90.0", "?", "0.5 min", "1", "here"],
        ["Paper only", "50", "1 M", "–", "–", "C 2019"],
        ["Paper B", "–", "2 M", "–", "–", "B 2021"],
        ["↳ reproduced: model B", "60.0 ± 14.1", "?", "1.5 min", "2", "here"],
        ["↳ reproduced: x", "10.0", "?", "0.5 min", "1", "here"]]


def test_published_rows_render_without_any_reproduced_row():
    text = TABLE.render(view([]))
    assert text.count("\n") == 2 + len(PUB) and "↳" not in text


def test_published_column_beside_the_reproduced_one():
    cell = T.published(PUB, "acc", lambda v, p: f"{v} % ({p.source})")
    assert [cell([], k, None) for k in ("a", "b", "x")] == ["91 % (A 2020)", "–", "–"]


def test_one_run_has_no_spread_and_none_is_a_dash():
    assert T.fmt_mean_std([0.25]) == "25.0 % (n=1)"
    assert T.fmt_mean_std([0.25, 0.25]) == "25.0 ± 0.0 % (n=2)"
    assert T.fmt_pm([0.1234]) == "0.123" and T.fmt_pm([]) == "–" and T.fmt_mean_std([]) == "–"
    assert T.fmt_params([178000.0, 178000.0, 99108.0]) == "99,108, 178,000"
    assert T.fmt_ms([1.0, 2.0]) == "1.5 ms" and T.fmt_minutes([90.0]) == "1.5 min"


def _bench(name):
    head = T.Headline(f"{name} acc", "1 %", lambda v: "2 %")
    return SimpleNamespace(name=name, report=T.Report(title=name, reproduces="", sections=[], headline=head))


def test_index_rows_follow_the_benchmark_names_and_keep_the_others(tmp_path):
    for name in ("zeta", "alpha", "mid"):
        T.update_index(tmp_path, _bench(name), {"preset": "cpu"}, [{"data_source": "stand-in"}])
    T.update_index(tmp_path, _bench("alpha"), {"preset": "paper"}, [])
    rows = [line for line in (tmp_path / "README.md").read_text().splitlines() if line.startswith("| [")]
    assert [re.match(r"\| \[(\w+)\]", r).group(1) for r in rows] == ["alpha", "mid", "zeta"]
    assert "`paper`" in rows[0] and "stand-in" in rows[2]


def test_committed_index_lists_benchmarks_with_a_config_folder_in_name_order():
    text = (ROOT / "results" / "README.md").read_text()
    names = re.findall(r"^\| \[(\w+)\]\(", text, flags=re.M)
    assert names == sorted(names)
    assert all((ROOT / "configs" / n).is_dir() and (ROOT / "reproduce" / f"{n}.py").is_file() for n in names)


def test_stand_in_notice_and_note_only_on_stand_in_rows():
    stand_in = T.StandIn("toy maps", "the paper's maps", "published: theirs", describe=lambda v: "made by a toy")
    report = T.Report(title="demo", reproduces="x", sections=[], notes=["a note"], stand_in=stand_in)
    bench = SimpleNamespace(name="demo", report=report)
    for source, says in (("stand-in", True), ("real", False)):
        text = T.render_text(bench, {"preset": "paper"}, [{"data_source": source}], Path("."))
        assert ("**Data: offline stand-in** (toy maps, see notes), not the paper's maps: published: theirs, "
                "not a like-for-like target." in text) == says
        notes = text[text.index("## Notes"):].splitlines()[1:]
        assert notes == (["- made by a toy", "- a note"] if says else ["- a note"])


def test_max_text_compares_values_not_strings():
    from reproduce.runner.cells import max_text
    rows = [{"e": "7.53e-15"}, {"e": "1.2e-14"}, {"e": ""}, {"e": "9e-16"}]
    assert max_text("e")(rows, None, None) == "1.2e-14"


def test_header_says_what_the_scripts_docstring_reproduces():
    """A report without ``reproduces=`` heads its table with the ``Reproduces:`` paragraph of the
    script's docstring (the text ``--help`` prints), joined on one line; a declared one wins."""
    doc = ("Demo benchmark.\n\nReproduces: Someone et al. 2020, Table 1\n(test error).\n\n"
           "Published: 1 %.\n\n    python reproduce/demo.py\n")
    bench = SimpleNamespace(name="demo", script_doc=doc)
    view = T.View(bench=bench, cfg={"preset": "cpu"}, rows=[], results_dir=Path("."))
    assert "Reproduces: Someone et al. 2020, Table 1 (test error).\n" in T.header(T.Report(title="t", sections=[]), view)
    assert "Reproduces: declared\n" in T.header(T.Report(title="t", sections=[], reproduces="declared"), view)
    bench.script_doc = "Demo benchmark without the paragraph."
    with pytest.raises(ValueError, match="reproduce/demo.py: the docstring has no 'Reproduces:' paragraph"):
        T.header(T.Report(title="t", sections=[]), view)


def test_every_script_says_what_it_reproduces_in_its_help():
    """The ``Reproduces:`` paragraph of each benchmark's docstring is its table's header line."""
    import importlib

    from reproduce.runner.config import benchmark_names
    checked = []
    for name in benchmark_names():
        bench = importlib.import_module(f"reproduce.{name}").BENCH
        if bench.report.reproduces is None:
            text = T.reproduces_paragraph(bench.script_doc, name)
            assert len(text) > 40 and "  " not in text and "\n" not in text, (name, text)
            checked.append(name)
    assert len(checked) >= 8, checked  # all but equivariance_sphere, whose text names the preset's Nsides
