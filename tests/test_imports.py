"""The install puts three top-level packages, ``models``, ``datamodules`` and ``reproduce``, on
the path. The supported uses cannot meet a clash: ``python reproduce/<benchmark>.py`` from any
folder puts the script's folder first, not the current one. Where a module of one of these
names does come first (``python -c`` or a notebook in a folder with its own ``models.py`` or
``models/`` package), importing the suite stops at once with one message naming both, instead
of failing later inside the suite or mixing the two."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python(cwd: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EB_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name, make", [
    ("models", lambda d: (d / "models.py").write_text("x = 1\n")),
    ("models", lambda d: ((d / "models").mkdir(), (d / "models" / "__init__.py").write_text(""))),
    ("datamodules", lambda d: (d / "datamodules.py").write_text("x = 1\n")),
])
def test_a_local_module_of_a_suite_name_is_refused_with_one_message(tmp_path, name, make):
    make(tmp_path)
    p = python(tmp_path, "-c", "import reproduce.load")
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: equivariant-bench: the top-level name") and f"'{name}'" in last
    assert str(tmp_path / name) in last and str(ROOT / name) in last


@pytest.mark.slow  # imports Lightning in a subprocess: 5-20 s
def test_the_scripts_run_from_a_folder_with_a_clashing_module(tmp_path):
    (tmp_path / "models.py").write_text("raise SystemExit('the local models.py was imported')\n")
    (tmp_path / "datamodules").mkdir()
    (tmp_path / "datamodules" / "__init__.py").write_text("raise SystemExit('the local datamodules was imported')\n")
    p = python(tmp_path, str(ROOT / "reproduce" / "tetris.py"), "--preset", "smoke", "--list",
               "--runs-dir", str(tmp_path / "runs"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "todo" in p.stdout


def test_no_clash_in_a_clean_folder(tmp_path):
    p = python(tmp_path, "-c", "import reproduce.load, datamodules._common, models; print(models.__file__)")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == str(ROOT / "models" / "__init__.py")
