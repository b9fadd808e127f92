"""End to end: `reproduce/tetris.py --preset smoke` through the shared runner (what `make demo` runs)."""
import csv
from collections import Counter
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tetris_smoke_writes_rows_table_and_plot(tmp_path, run_script):
    run_script("reproduce/tetris.py", "--preset", "smoke", "--logger", "csv", "--results-dir", tmp_path / "res",
               "--runs-dir", tmp_path / "runs", timeout=600)
    rows = list(csv.DictReader(open(tmp_path / "res" / "tetris.csv")))
    assert {r["model"] for r in rows} == {"steerable", "cnn", "mass_only"}
    by = {r["model"]: r for r in rows}
    # the mass-only row is fitted without Lightning; at zoom 2 all pieces weigh the same (chance level)
    assert float(by["mass_only"]["final_train_acc"]) == 1.0 and not by["mass_only"]["checkpoint"]
    assert int(by["steerable"]["params"]) == 41198 and int(by["cnn"]["params"]) == 6221832
    # the trained steerable net is exactly invariant to cube rotations (float64); the CNN is not
    assert float(by["steerable"]["equivariance_error_cube"]) < 1e-10
    assert float(by["cnn"]["equivariance_error_cube"]) > 1e-4
    md = (tmp_path / "res" / "tetris.md").read_text()
    assert "99 ± 2 %" in md and "27 ± 7 %" in md and "Preset: `smoke`" in md
    assert "total mass only" in md
    assert (tmp_path / "res" / "tetris.png").stat().st_size > 1000


def _tetris():
    sys.path.insert(0, str(ROOT))
    from reproduce.tetris import BENCH
    return BENCH


def test_cpu_grid_rows_have_their_own_run_counts_and_runs_flag_sets_all():
    from reproduce.runner.cli import build_parser, resolve_config
    from reproduce.runner.runs import expand_grid
    bench = _tetris()
    parser = build_parser(bench, None)
    count = lambda cfg: Counter((r.model, r.setting_str) for r in expand_grid(bench, cfg))  # noqa: E731
    cells = count(resolve_config(bench, parser.parse_args(["--preset", "cpu"])))
    assert cells[("steerable", "lowpass=True,zoom=3")] == 2 and cells[("cnn", "lowpass=True,zoom=3")] == 2
    assert cells[("steerable", "lowpass=True,zoom=4")] == 1
    assert set(count(resolve_config(bench, parser.parse_args(["--preset", "cpu", "--runs", "3"]))).values()) == {3}


def test_grid_row_runs_must_be_a_positive_int_and_zoom_must_match_the_data():
    import pytest
    from datamodules._common import InputError
    from reproduce.runner import config as C
    from reproduce.runner.runs import expand_grid
    bench = _tetris()
    cfg = C.load_preset("tetris", "cpu", bench.config_root)
    bad = C.deep_merge(cfg, {})
    bad["grid"]["rows"] = [{"model": "cnn", "setting": {"lowpass": True, "zoom": 3}, "runs": 0}]
    with pytest.raises(InputError, match="runs"):
        expand_grid(bench, bad)
    bad["grid"]["rows"] = [{"model": "cnn", "setting": {"lowpass": True, "zoom": 3}, "repeats": 2}]
    with pytest.raises(InputError, match="repeats"):
        expand_grid(bench, bad)
    bad["grid"]["rows"] = [{"model": "cnn", "setting": {"lowpass": True, "zoom": 4}}]  # data.zoom stays 3
    run = expand_grid(bench, bad)[0]
    with pytest.raises(InputError, match="zoom 4"):
        bench.check(None, run)


def test_resolution_table_and_figure_from_rows(tmp_path):
    from reproduce.runner import config as C
    from reproduce.runner.tables import render_text
    bench = _tetris()
    cfg = C.load_preset("tetris", "cpu", bench.config_root)
    rows = []
    for zoom, acc in ((2, 0.2), (3, 0.4), (4, 0.6)):
        for model in ("steerable", "cnn"):
            rows.append({"model": model, "setting": f"lowpass=True,zoom={zoom}", "setting_zoom": str(zoom),
                         "seed": "0", "preset": "cpu", "run_id": f"{model}{zoom}", "data_source": "generated",
                         "test_acc": str(acc if model == "steerable" else 0.15),
                         "equivariance_error_so3": "0.5", "wall_s": "60", "params": "41198"})
    md = render_text(bench, cfg, rows, tmp_path)
    main, res = md.split("## Resolution study")
    assert "40.0 % (n=1)" in main and "60.0 %" not in main  # main table: zoom 3 only
    assert "| 4 | 29³ | 16³ | cpu | 60.0 % (n=1)" in res
    assert (tmp_path / "tetris_resolution.png").stat().st_size > 1000
