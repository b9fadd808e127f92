"""Every preset of every benchmark loads, and its grid expands to known models (house style §16)."""
import argparse
import importlib
from pathlib import Path

import pytest

from reproduce import _config
from reproduce._runner import expand_grid

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.name for p in (ROOT / "configs").iterdir()
                    if p.is_dir() and (ROOT / "reproduce" / f"{p.name}.py").is_file()
                    and (p / "paper.yaml").is_file())


def test_there_are_benchmarks():
    assert "tetris" in BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
@pytest.mark.parametrize("preset", _config.PRESETS)
def test_preset_loads_and_grid_expands(name, preset):
    mod = importlib.import_module(f"reproduce.{name}")
    bench = getattr(mod, "BENCH", None)
    cfg = _config.load_preset(name, preset)
    if bench is None or "grid" not in cfg:  # analysis scripts (no training grid)
        return
    args = argparse.Namespace(only=None, seed=0)
    runs = expand_grid(bench, cfg, args)
    assert runs, f"{name}/{preset}: empty grid"
    assert len({r.run_id for r in runs}) == len(runs), "two runs share an identity"
    for r in runs:
        assert "model" in r.cfg and "models" not in r.cfg
