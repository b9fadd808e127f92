"""``--list`` checks the grid without importing Lightning or torch (the classes a run builds are
declared as ``"module:Name"`` and their parameters read from the source,
:mod:`reproduce.runner.lazy`), and what the source says is what the imported classes say."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("tetris", "rotated_mnist", "cosmology", "climate", "shrec17", "cath")
#: the measurement scripts whose --list builds nothing heavy (scaling's builds each series' spec)
LIGHT_MEASUREMENTS = ("speed", "equivariance_sphere")
SCRIPTS = BENCHMARKS + LIGHT_MEASUREMENTS + ("scaling",)
HEAVY = ("lightning", "pytorch_lightning", "torch")

#: runs ``reproduce/<name>.py ARGS`` as ``python reproduce/<name>.py`` would, then prints which of
#: HEAVY its interpreter imported
PROBE = """
import json, runpy, sys
name, args = sys.argv[1], sys.argv[2:]
sys.argv = [f"reproduce/{name}.py", *args]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code or 0
print(json.dumps({"code": code, "imported": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def _probe(name: str, *args: str) -> tuple[dict, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", PROBE, name, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    last = p.stderr.strip().splitlines()[-1]
    return json.loads(last), p.stdout, p.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_imports_neither_lightning_nor_torch(name):
    """Every script's module is light: the classes, reports and measurements it declares are
    imported when a run needs them, so ``--help`` answers at once."""
    out, stdout, stderr = _probe(name, "--help")
    assert out["code"] == 0, stderr
    assert out["imported"] == [], f"--help of {name} imported {out['imported']}"
    assert f"usage: reproduce/{name}.py" in stdout and "--preset" in stdout


@pytest.mark.parametrize("name", BENCHMARKS + LIGHT_MEASUREMENTS)
def test_list_imports_neither_lightning_nor_torch(name, tmp_path):
    out, stdout, stderr = _probe(name, "--preset", "smoke", "--list", "--runs-dir", str(tmp_path))
    assert out["code"] == 0, stderr
    assert out["imported"] == [], f"--list of {name} imported {out['imported']}"
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines and all(line.split()[0] in ("todo", "done", "retest", "resumable", "damaged") for line in lines), stdout


@pytest.mark.parametrize("override, message", [
    ("data.sise=3", "config data.sise: unknown key for TetrisDataModule; valid keys:"),
    ("data.size=abc", "config data.size: expected int, got 'abc' (str)"),
    ("models.steerable.dropuot=0.1", "config models.steerable.dropuot: unknown key for TetrisSE3Net"),
    ("optim.lr=-1", "config optim: lr must be positive"),
])
def test_list_still_checks_overrides_without_lightning(override, message, tmp_path):
    """The check against the classes' parameters happens without importing them."""
    out, _, stderr = _probe("tetris", "--preset", "smoke", "--list", "--runs-dir", str(tmp_path), override)
    assert out["code"] == 2 and f"error: {message}" in stderr, stderr
    assert out["imported"] == []


def test_overrides_may_stand_between_options(tmp_path):
    """``key=value`` before, between and after options, as a shell history grows: all of them apply."""
    def run_ids(*args):
        out, stdout, stderr = _probe("tetris", "--preset", "smoke", *args)
        assert out["code"] == 0, stderr
        return [line.split()[-1] for line in stdout.splitlines() if line.strip()]
    plain = run_ids("--list", "--runs-dir", str(tmp_path))
    last = run_ids("--list", "--runs-dir", str(tmp_path), "trainer.max_epochs=2", "data.size=3")
    mixed = run_ids("trainer.max_epochs=2", "--list", "--runs-dir", str(tmp_path), "data.size=3")
    assert mixed == last and mixed != plain


def test_list_checks_a_sub_section_dataclass_from_its_source(tmp_path):
    """``data.stand_in_maps`` is a dataclass of a Lightning module: its fields come from the source."""
    out, _, stderr = _probe("cosmology", "--preset", "smoke", "--list", "--runs-dir", str(tmp_path),
                            "data.stand_in_maps.test_maps=3")
    assert out["code"] == 2 and "unknown key for StandInMaps; valid keys: beam_pixels, ell0," in stderr, stderr
    out, _, stderr = _probe("cosmology", "--preset", "smoke", "--list", "--runs-dir", str(tmp_path),
                            "data.stand_in_maps.seed=x")
    assert out["code"] == 2 and "config data.stand_in_maps.seed: expected int, got 'x'" in stderr, stderr
    assert out["imported"] == []


#: every class a benchmark declares, read from the source first (nothing imported), then imported
#: and read by ``inspect``: the two must agree on every parameter, its required-ness and type
COMPARE = """
import dataclasses, importlib, json, sys, typing
from reproduce.runner import config as C, lazy
from reproduce.runner.benchmark import Benchmark
names = sys.argv[1:]
benches = [importlib.import_module(f"reproduce.{n}").BENCH for n in names]
refs = sorted({r for b in benches for r in (b.declared("datamodule"), b.declared("task") or b.DEFAULT_TASK,
                                            *b.models.values()) if lazy.is_ref(r)})
read, unresolved = {}, []
for r in refs:
    s = lazy.read_signature(r)
    hints = {}
    for k in s.params:
        try:
            hints[k] = lazy.source_hint(s, k)
        except lazy.Unreadable:
            unresolved.append(k)
    read[r] = (s, hints)
before = sorted(m for m in ("torch", "lightning", "pytorch_lightning") if m in sys.modules)

def same(a, b):
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        fa = {f.name: (f.type, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
              for f in dataclasses.fields(a)}
        fb = {f.name: (typing.get_type_hints(b).get(f.name), f.default is dataclasses.MISSING
                       and f.default_factory is dataclasses.MISSING) for f in dataclasses.fields(b)}
        return a.__name__ == b.__name__ and fa == fb
    return a == b

bad = []
for r, (s, hints) in read.items():
    live = lazy.live_signature(lazy.resolve(r))
    if s.params != live.params or s.var_kw != live.var_kw:
        bad.append(f"{r}: source {s.params} {s.var_kw} != imported {live.params} {live.var_kw}")
    for k, h in hints.items():
        if not same(h, live.hint(k)):
            bad.append(f"{r}.{k}: source {h!r} != imported {live.hint(k)!r}")
print(json.dumps({"refs": refs, "before": before, "bad": bad, "unresolved": sorted(set(unresolved))}))
"""


def test_source_signatures_match_the_imported_classes():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", COMPARE, *BENCHMARKS], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(out["refs"]) >= 20, out["refs"]  # datamodules, backbones and tasks of six benchmarks
    assert out["before"] == [], "reading the declared classes' sources imported " + ", ".join(out["before"])
    assert out["bad"] == [], "\n".join(out["bad"])
    # annotations only an import resolves: the runner supplies these (a backbone, a point set), no config sets them
    assert set(out["unresolved"]) <= {"backbone", "coords"}, out["unresolved"]
