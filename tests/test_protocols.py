"""Protocol ledgers (``configs/<benchmark>/protocol.yaml``, rendered by ``reproduce/protocols.py``):
every trained benchmark with a ``paper`` preset has one, each validates, nothing is left "assumed"
outside an ``unverifiable`` entry, every repository file an entry names exists, the rendered
``results/protocols.md`` is current, and a malformed ledger is one ``error:`` line with exit status 2.

The per-benchmark tests are parametrised so that a missing ledger fails under its own name.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reproduce.reports import protocols as P
from reproduce.runner import config as C
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
#: the trained benchmarks whose `paper` preset reproduces a published table: every configs/<name>/
#: whose paper preset is a grid of runs (a new one fails below under its own name until it has a ledger)
BENCHMARKS = tuple(C.benchmark_names(trained=True))
#: benchmarks with a `paper` preset that train nothing (no optimiser, no grid of runs): no ledger
NOT_TRAINED = {"equivariance_sphere": "measures the equivariance error of fixed graph Laplacians",
               "speed": "times layers against floors measured in the same run",
               "scaling": "times one layer against the number of pixels"}
#: repository paths named in a ledger's `ours` column
_REPO_PATH = re.compile(r"(?<![\w./-])((?:configs|models|datamodules|reproduce|tests|results)/[\w./-]*\w)")


def _ledger(bench: str) -> Path:
    return CONFIGS / bench / "protocol.yaml"


def test_every_paper_preset_is_trained_or_says_why_not():
    presets = {p.parent.name for p in CONFIGS.glob("*/paper.yaml")}
    assert "tetris" in BENCHMARKS and presets == set(BENCHMARKS) | set(NOT_TRAINED), (
        f"configs/*/paper.yaml: {sorted(presets)}; a paper preset without a grid of runs trains nothing: "
        f"add it to NOT_TRAINED with what it measures")


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_ledger_exists(bench):
    assert (CONFIGS / bench / "paper.yaml").is_file()
    assert _ledger(bench).is_file(), f"configs/{bench}/paper.yaml has no protocol ledger configs/{bench}/protocol.yaml"


def _problems(path: Path) -> list[str]:
    """A valid ledger's content problems: 'assumed' outside an unverifiable entry, and `ours`
    naming a repository file that does not exist."""
    led, out = P.load(path), []
    for i, e in enumerate(led["entries"]):
        at = f"{path.name} entries[{i}] ({e['element']})"
        text = " ".join(str(e.get(k, "")) for k in P.ENTRY_KEYS)
        if "assumed" in text.lower() and e["status"] != "unverifiable":
            out.append(f"{at}: 'assumed' in an entry of status {e['status']}")
        for rel in _REPO_PATH.findall(e["ours"]):
            if "." in Path(rel).name and not (ROOT / rel).is_file():  # skip folders and dotted symbols' stems
                out.append(f"{at}: ours names {rel}, which is not a file of the repository")
    return out


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_ledger_validates_and_names_existing_files(bench):
    path = _ledger(bench)
    if not path.is_file():
        pytest.skip(f"no ledger for {bench} (test_ledger_exists fails)")
    assert P.load(path)["benchmark"] == bench
    assert _problems(path) == []


def test_problems_are_found(tmp_path):
    data = _good()
    data["entries"][0]["ours"] = "models/no_such_module.py Net"
    data["entries"][1]["why"] = "value assumed"
    data["entries"][1]["ours"] = "configs/climate/paper.yaml trainer.max_epochs"   # exists
    path = _write(tmp_path, data) / "toy" / "protocol.yaml"
    found = _problems(path)
    assert len(found) == 2 and "models/no_such_module.py" in found[0] and "'assumed'" in found[1]


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_paper_preset_has_no_assumed_values(bench):
    text = (CONFIGS / bench / "paper.yaml").read_text()
    assert "[assumed]" not in text, (f"configs/{bench}/paper.yaml marks a value [assumed]: read it from the "
                                     f"reference code or make it an unverifiable ledger entry")


def test_rendered_table_is_current(capsys):
    assert P.main(["--check"]) == 0, capsys.readouterr().err


def _good() -> dict:
    return {"benchmark": "toy", "paper": "A 2020, Table 1",
            "references": {"ref": {"repo": "owner/name", "commit": "0123456789abcdef0123456789abcdef01234567"}},
            "entries": [{"element": "optimiser", "paper": "Adam", "reference": "ref:train.py main() — Adam",
                         "ours": "configs/toy/paper.yaml optim", "status": "matches"},
                        {"element": "epochs", "paper": "30", "reference": "ref:train.py main() — 30 epochs",
                         "ours": "configs/toy/paper.yaml trainer.max_epochs: 20", "status": "deviates",
                         "why": "measured time budget"}]}


def _write(tmp_path: Path, data: dict) -> Path:
    folder = tmp_path / "configs" / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "protocol.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return tmp_path / "configs"


def test_a_valid_toy_ledger_renders(tmp_path, capsys):
    configs = _write(tmp_path, _good())
    assert P.main(["--configs", str(configs), "--out", str(tmp_path / "p.md")]) == 0
    text = (tmp_path / "p.md").read_text()
    assert "| epochs | 30 | owner/name@01234567:train.py main() — 30 epochs |" in text
    assert "deviates: measured time budget" in text
    assert P.main(["--check", "--configs", str(configs), "--out", str(tmp_path / "p.md")]) == 0
    (tmp_path / "p.md").write_text(text + "edit\n")
    assert P.main(["--check", "--configs", str(configs), "--out", str(tmp_path / "p.md")]) == 1


def _missing_why(d):
    del d["entries"][1]["why"]


def _bad_commit(d):
    d["references"]["ref"]["commit"] = "0123abc"


def _unknown_reference(d):
    d["entries"][1]["reference"] = "other:train.py — 30 epochs"


def _none_but_matches(d):
    d["entries"][0]["reference"] = "none — no public code"


@pytest.mark.parametrize("spoil, where, message", [
    (_missing_why, "entries[1] (epochs)", "status 'deviates' needs a non-empty 'why'"),
    (_bad_commit, "toy/protocol.yaml", "references.ref.commit '0123abc' is not 40 lower-case hex digits"),
    (_unknown_reference, "entries[1] (epochs)", "names 'other', not one of references: ref"),
    (_none_but_matches, "entries[0] (optimiser)", "reference 'none' needs status unverifiable"),
])
def test_malformed_ledger_is_one_error_line_exit_2(tmp_path, capsys, spoil, where, message):
    data = _good()
    spoil(data)
    configs = _write(tmp_path, data)
    out = tmp_path / "p.md"
    assert P.main(["--configs", str(configs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "protocol.yaml" in err
    assert where in err and message in err, err
    assert not out.exists()


def test_malformed_ledger_from_the_command_line(tmp_path):
    data = _good()
    _missing_why(data)
    configs = _write(tmp_path, data)
    p = run_script("reproduce/protocols.py", "--configs", configs, "--out", tmp_path / "p.md", check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "toy/protocol.yaml entries[1] (epochs)" in p.stderr
    assert p.stdout == ""
