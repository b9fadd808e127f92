"""pyproject.toml lists exactly the third-party packages the code imports (no more, no fewer)."""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: import name -> distribution name where they differ
DIST = {"pytorch_lightning": "pytorch-lightning", "yaml": "pyyaml", "Bio": "biopython",
        "sklearn": "scikit-learn"}
OWN = {"models", "datamodules", "reproduce", "tests"}
TEST_ONLY = {"pytest", "setuptools"}  # setuptools: the build backend ([build-system]), read by the license test


def imported_top_level(folders=("models", "datamodules", "reproduce", "tests")) -> set[str]:
    names = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in OWN and n != "__future__"}


def declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}


def test_pyproject_lists_exactly_what_is_imported():
    used = {DIST.get(n, n).lower() for n in imported_top_level() if n not in TEST_ONLY}
    assert used == declared(), (f"imported but not declared: {sorted(used - declared())}; "
                                f"declared but never imported: {sorted(declared() - used)}")
