"""Golden tables: every committed ``results/<benchmark>.csv`` rendered by its benchmark's declared
report must equal the checked-in ``tests/data/golden/<benchmark>.<preset>.md`` byte for byte, and
the committed ``results/<benchmark>.md`` must be one of those renders (the table in the repository
is what its CSV says).

A deliberate change of a table (new rows, a new column, other wording) regenerates both::

    python reproduce/<benchmark>.py --preset <preset> --table        # rewrites results/<benchmark>.md
    cp results/<benchmark>.md tests/data/golden/<benchmark>.<preset>.md

(for a preset whose table is not the committed one, render into a scratch folder with
``--results-dir``, after copying the CSV there). Review the diff of the golden file: it is the
change a reader of the table will see.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from reproduce.runner import config as C
from reproduce.runner.cli import render_table
from reproduce.runner.store import read_rows

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"


def _cases():
    for csv_path in sorted((ROOT / "results").glob("*.csv")):
        name = csv_path.stem
        if not (ROOT / "reproduce" / f"{name}.py").is_file():
            continue  # a CSV no benchmark writes
        for preset in sorted({r["preset"] for r in read_rows(csv_path)}):
            yield name, preset


CASES = list(_cases())


def test_every_committed_table_has_a_golden_file():
    assert CASES, "no committed results CSV"
    missing = [f"{n}.{p}.md" for n, p in CASES if not (GOLDEN / f"{n}.{p}.md").is_file()]
    assert not missing, f"golden files missing: {missing} (see this module's docstring)"


@pytest.mark.parametrize("name, preset", CASES)
def test_committed_csv_renders_to_the_golden_table(tmp_path, name, preset):
    bench = importlib.import_module(f"reproduce.{name}").BENCH
    shutil.copy(ROOT / "results" / f"{name}.csv", tmp_path / f"{name}.csv")
    if (ROOT / "results" / name).is_dir():  # files the rows name (figure inputs)
        shutil.copytree(ROOT / "results" / name, tmp_path / name)
    cfg = C.load_preset(name, preset, bench.config_root)
    path = render_table(bench, cfg, tmp_path)
    got = path.read_text()
    want = (GOLDEN / f"{name}.{preset}.md").read_text()
    assert got == want, f"{name}/{preset}: rendered table differs from tests/data/golden/{name}.{preset}.md"


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_committed_table_is_the_render_of_its_csv(name):
    committed = (ROOT / "results" / f"{name}.md").read_text()
    goldens = [(GOLDEN / f"{name}.{p}.md").read_text() for n, p in CASES if n == name
               and (GOLDEN / f"{name}.{p}.md").is_file()]
    assert committed in goldens, f"results/{name}.md is not the render of results/{name}.csv"
