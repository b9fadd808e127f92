"""What every test shares.

* :func:`run_script` (also the ``run_script`` fixture): run a script of the repository in a
  subprocess — ``python <script> <args>`` from the repository root, quiet and single-threaded
  (:data:`QUIET`), output captured — and, with ``check``, fail with the exit status and the tails of
  both streams. Test modules that run the reproduction scripts wrap it with their own arguments.
* Seeding: every test starts from the same state of Python's, numpy's and torch's global random
  generators, so a test that draws without a seed of its own draws the same numbers in any order,
  alone or in the whole suite.
"""
from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: the test double of a benchmark on the shared runner
BORING = ROOT / "tests" / "data" / "boring_bench.py"
#: the environment of every script a test runs: no progress bars, unbuffered output, one thread
QUIET = {"EB_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
#: the seed of the global generators at the start of every test
SEED = 0


#: what a launcher (Lightning's DDP launcher, torchrun, SLURM) sets to give a process its rank: an
#: in-process Lightning run of an earlier test may leave them in this process's environment, and a
#: script that inherited them would take itself for a rank of that launch
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR",
                 "MASTER_PORT", "PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def script_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without launcher variables (:data:`LAUNCHER_VARS`, ``SLURM_*``), with
    :data:`QUIET` and ``extra`` (values turned into strings)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS and not k.startswith("SLURM_")}
    return {**env, **QUIET, **{k: str(v) for k, v in extra.items()}}


def run_script(script: str | os.PathLike, *args, check: bool = True, timeout: float = 300,
               **env) -> subprocess.CompletedProcess:
    """``python <script> <args>`` (``script`` relative to the repository root or absolute; use
    ``"-m", "package.module"`` for a module) with :func:`script_env` ``(**env)``, from the root;
    with ``check`` an ``AssertionError`` naming the exit status and the last 3,000 characters of
    stdout and stderr unless it exits 0."""
    p = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                       env=script_env(**env), timeout=timeout, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"{script} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def boring_module(monkeypatch):
    """tests/data/boring_bench.py imported (its benchmark ``BENCH``, for in-process calls of
    ``reproduce.runner.main``: no interpreter start, no torch and Lightning import per call)."""
    spec = importlib.util.spec_from_file_location("boring_bench_in_process", BORING)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(name="run_script")
def run_script_fixture():
    """:func:`run_script` as a fixture."""
    return run_script


@pytest.fixture(autouse=True)
def seeded():
    """Seed Python's, numpy's and torch's global generators with :data:`SEED` before every test."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


def first_fast(cases: list) -> list:
    """Cases of a parametrized subprocess test: the first runs in ``make test``, the others (the same
    code path with other messages, each paying an interpreter start with torch and Lightning, ~7 s on
    2 cores) are ``slow`` and run in ``make test-all``."""
    return [cases[0], *(pytest.param(*case, marks=pytest.mark.slow) for case in cases[1:])]
