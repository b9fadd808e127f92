"""`reproduce/speed.py --quick`: every section runs and reports a ratio against its floor.
(Speed itself is a benchmark in results/speed.md, never asserted here.)"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from reproduce.speed import SECTIONS as ALL  # noqa: E402

SECTIONS = [s for s in ALL if importlib.util.find_spec(f"reproduce._speed_{s}") is not None]


@pytest.mark.slow
def test_speed_quick_all_sections(tmp_path):
    assert SECTIONS == list(ALL)  # every declared section has its module
    out = tmp_path / "speed.md"
    p = subprocess.run([sys.executable, "reproduce/speed.py", "--quick", "--only", ",".join(SECTIONS),
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    text = out.read_text()
    for s in SECTIONS:
        assert f"<!-- section: {s};" in text
    assert "| what |" in text and "ratio" in text


def test_speed_unknown_section_is_an_error():
    p = subprocess.run([sys.executable, "reproduce/speed.py", "--only", "nope"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "unknown section" in p.stderr
