"""The house has no import circles: no two modules of ``models``, ``datamodules`` and ``reproduce``
import each other, directly or around a loop, counting imports inside functions too (a loop there
still means neither module can be read, tested or moved without the other)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "datamodules", "reproduce")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (``from a import b`` names module ``a.b`` when it
    is one, else ``a``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_circles_finds_a_loop():
    """Negative control: a three-module loop and a two-module one are found, a chain is not."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(circles(g)) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_of_the_house_imports_itself_around_a_loop():
    graph = import_graph()
    assert len(graph) > 100 and graph["reproduce.runner.tables"], "the import graph was not read"
    assert circles(graph) == []


#: the model families and the layers, metrics, geometry and evaluator they share: plain torch (and
#: numpy), usable on their own; ``models.tasks`` is the Lightning side
PLAIN_TORCH = ("models.deepsphere", "models.steerable", "models.harmonic", "models.spectral", "models.baselines",
               "models.geometry", "models.segmentation", "models.optim", "models.bn", "models.retrieval")


def test_model_families_import_neither_lightning_nor_the_suite():
    import json
    import subprocess
    import sys

    code = (f"import importlib, json, pkgutil, sys\nfor m in {PLAIN_TORCH!r}:\n"
            "    mod = importlib.import_module(m)\n"
            "    for s in pkgutil.walk_packages(getattr(mod, '__path__', []), m + '.'):\n"
            "        importlib.import_module(s.name)\n"
            "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('lightning', 'pytorch_lightning', 'datamodules', 'reproduce'))))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    loaded = json.loads(p.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the model families loaded {loaded[:8]}"


def test_every_module_of_models_but_the_tasks_is_in_the_plain_torch_list():
    import pkgutil

    import models
    names = {m.name for m in pkgutil.iter_modules(models.__path__, "models.")} - {"models.tasks", "models._siblings"}
    assert names == set(PLAIN_TORCH)
