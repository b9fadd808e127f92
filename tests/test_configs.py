"""Every preset of every benchmark loads, and its grid expands to known models (house style §16)."""
import importlib
from pathlib import Path

import pytest

from reproduce.runner import config as _config
from reproduce.runner.runs import expand_grid

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
    if bench is None:
        pytest.skip(f"reproduce/{name}.py declares no BENCH")
    runs = expand_grid(bench, cfg)
    assert runs, f"{name}/{preset}: empty grid"
    assert len({r.run_id for r in runs}) == len(runs), "two runs share an identity"
    for r in runs:
        assert "model" in r.cfg and "models" not in r.cfg


@pytest.mark.parametrize("name", BENCHMARKS)
@pytest.mark.parametrize("preset", _config.PRESETS)
def test_every_run_config_fits_the_classes_it_builds(name, preset, tmp_path):
    """The typed check the runner does before training (unknown key, wrong type, unknown model
    kind), for every run of every preset — without building anything."""
    from reproduce.runner.benchmark import Context
    from reproduce.runner.trainer import Launch

    bench = getattr(importlib.import_module(f"reproduce.{name}"), "BENCH", None)
    cfg = _config.load_preset(name, preset)
    if bench is None:
        pytest.skip(f"reproduce/{name}.py declares no BENCH")
    ctx = Context(cfg=cfg, preset=preset, launch=Launch(), data_dir=tmp_path, generate=True,
                  data_source="stand-in", hardware="cpu", results_dir=tmp_path, runs_dir=tmp_path,
                  code_version="test")
    for run in expand_grid(bench, cfg):
        bench.check(ctx, run)
