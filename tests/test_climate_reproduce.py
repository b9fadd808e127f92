"""reproduce/climate.py end to end: the smoke preset through the runner (stand-in netCDF resampled onto
ico / HEALPix / equiangular, weighted and non-weighted U-Nets, rows + table + PNG under tmp dirs), then
``--predict`` with its checkpoint on a lat/lon file (latitudes descending, longitudes −180…180, a
fill value, two time steps) and on an unstructured ``ncol`` file without LABELS: the outputs keep the
input's coordinates and attributes, LABELS are in {0, 1, 2} and the argmax of probabilities that sum
to 1, and the lat/lon answer does not depend on the file's grid conventions."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from datamodules import climate as DC
from reproduce.climate import BENCH
from reproduce.reports.climate import decode_map
from reproduce.runner import main
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reproduce" / "climate.py"


def run_climate(*args, check=True, timeout=300):
    return run_script(SCRIPT, *args, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("climate")
    run_climate("--preset", "smoke", "--logger", "csv", "--results-dir", tmp / "res", "--runs-dir", tmp / "runs",
                "--data-dir", tmp / "data", "--stand-in")
    with open(tmp / "res" / "climate.csv") as f:
        rows = list(csv.DictReader(f))
    return tmp, rows


def test_smoke_writes_rows_table_and_figure(smoke):
    tmp, rows = smoke
    assert sorted((r["model"], r["setting"]) for r in rows) == [
        ("ds_unweighted", "sampling=ico:2"), ("ds_weighted", "sampling=equiangular:8"),
        ("ds_weighted", "sampling=healpix:4"), ("ds_weighted", "sampling=ico:2"), ("jiang_weighted", "sampling=ico:2"),
        ("per_site", "sampling=ico:2")]
    vertices = {"ico:2": 162, "healpix:4": 192, "equiangular:8": 256}
    base = next(r for r in rows if r["model"] == "per_site")  # the per-vertex baseline: fitted, not trained
    assert int(base["params"]) == 3 * 16 + 3 and int(base["vertices"]) == 162 and int(base["test_maps"]) > 0
    for k in ("test_acc_mean", "test_map", "test_recall_TC", "test_ap_AR", "test_iou_BG"):
        assert 0.0 <= float(base[k]) <= 1.0, k
    rows = [r for r in rows if r is not base]
    for r in rows:
        assert r["data_source"] == "stand-in" and int(r["vertices"]) == vertices[r["setting_sampling"]]
        for k in ("test_acc_mean", "test_map", "test_recall_TC", "test_ap_AR", "test_iou_BG"):
            assert 0.0 <= float(r[k]) <= 1.0, k
        assert float(r["infer_ms"]) > 0 and r["checkpoint"].endswith("last.ckpt")  # smoke tests the final model, as paper
        w = np.array([float(r[f"class_weight_{c}"]) for c in DC.CLASSES])
        assert abs((1 / (3 * w)).sum() - 1) < 1e-4 and w[0] < 1 < w[2] and w[0] < w[1]  # sklearn 'balanced'
        tmq, true, pred = decode_map(tmp / "res", r["example_map"])
        assert r["example_map"] == f"climate/{r['run_id']}.example_map.npz"
        assert len(tmq) == len(true) == len(pred) == int(r["vertices"]) and set(np.unique(pred)) <= {0, 1, 2}
        assert 0 < tmq.min() < tmq.max() < 120  # kg m-2, in physical units
    ico = {r["model"]: r for r in rows if r["setting_sampling"] == "ico:2"}
    assert ico["ds_weighted"]["params"] == ico["ds_unweighted"]["params"] != ico["jiang_weighted"]["params"]
    md = (tmp / "res" / "climate.md").read_text()
    assert "**Data: offline stand-in**" in md and "Preset: `smoke`" in md
    assert "| DeepSphere, weighted loss | 97.4 ± 1.1 |" in md and "77.15 ± 1.94" in md and "Cohen et al. 2019" in md
    assert "| ↳ reproduced: DeepSphere, weighted loss |" in md and "| ↳ reproduced: DeepSphere, non-weighted" in md
    assert "| ↳ reproduced: Per-vertex logistic regression (no spatial context) |" in md
    assert "| healpix:4 | 192 |" in md and "| equiangular:8 | 256 |" in md
    assert "| TC | 318.4739 | 0.1 |" in md
    assert (tmp / "res" / "climate.png").stat().st_size > 5000
    # the table regenerates from the CSV alone
    (tmp / "res" / "climate.md").unlink()
    run_climate("--preset", "smoke", "--table", "--results-dir", tmp / "res")
    assert (tmp / "res" / "climate.md").read_text() == md


def awkward_latlon(src: Path, dst: Path) -> Path:
    """A stand-in file with latitudes descending, longitudes in −180…180, a fill value in TMQ and
    two time steps (the second one a copy with other time), with attributes to keep."""
    with xr.open_dataset(src, decode_times=False) as ds:
        ds = ds.load()
    ds = ds.isel(lat=slice(None, None, -1))
    ds = ds.assign_coords(lon=("lon", (ds.lon.values + 180) % 360 - 180, dict(ds.lon.attrs))).sortby("lon")
    two = xr.concat([ds, ds.assign_coords(time=ds.time + 0.125)], "time")
    tmq = two["TMQ"].values.copy()
    tmq[0, 3, 5] = np.nan
    two["TMQ"] = (two["TMQ"].dims, tmq, dict(ds["TMQ"].attrs))
    two.attrs["institution"] = "test"
    two.lat.attrs["standard_name"] = "latitude"
    two.to_netcdf(dst, engine="netcdf4", encoding={"TMQ": {"_FillValue": np.float32(-9999.0)}})
    return dst


def ncol_file(dst: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(3)
    v = rng.standard_normal((n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    lat, lon = np.degrees(np.arcsin(v[:, 2])), np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360
    data = {name: (("time", "ncol"), (DC.MEAN[j] + DC.STD[j] * rng.standard_normal((1, n))).astype(np.float32))
            for j, name in enumerate(DC.VARIABLES)}
    xr.Dataset(data, coords={"time": ("time", [0.0], {"units": "days since 2106-01-01 00:00:00"}),
                             "lat": ("ncol", lat, {"units": "degrees_north"}),
                             "lon": ("ncol", lon, {"units": "degrees_east"})},
               attrs={"title": "CAM-SE columns"}).to_netcdf(dst, engine="netcdf4")
    return dst


@pytest.mark.slow
def test_predict_round_trip_latlon_and_ncol(smoke, tmp_path):
    tmp, rows = smoke
    ckpt = (ROOT / next(r for r in rows if r["model"] == "ds_weighted" and r["setting_sampling"] == "ico:2")
            ["checkpoint"]).resolve()
    original = sorted((tmp / "data").glob("*.nc"))[0]
    inp = tmp_path / "in"
    inp.mkdir()
    awkward_latlon(original, inp / "flipped.nc")
    ncol_file(inp / "columns.nc")
    (tmp_path / "plain").mkdir()
    os.symlink(original, tmp_path / "plain" / original.name)
    run_climate("--predict", ckpt, "--data-dir", inp, "--out", tmp_path / "out")
    run_climate("--predict", ckpt, "--data-dir", tmp_path / "plain", "--out", tmp_path / "out_plain")
    for name in ("flipped.nc", "columns.nc"):
        with xr.open_dataset(inp / name, decode_times=False) as src, \
                xr.open_dataset(tmp_path / "out" / name, decode_times=False) as out:
            for c in ("time", "lat", "lon"):
                np.testing.assert_array_equal(out[c].values, src[c].values)
                assert out[c].dims == src[c].dims and dict(out[c].attrs).items() >= dict(src[c].attrs).items()
            assert {k: out.attrs[k] for k in src.attrs} == dict(src.attrs)
            assert out.attrs["prediction_sampling"] == "ico:2" and "inverse-distance" in out.attrs["prediction_method"]
            assert out["LABELS"].dims == src["TMQ"].dims
            assert out["PROBABILITIES"].dims == (src["TMQ"].dims[0], "class", *src["TMQ"].dims[1:])
            lab, prob = out["LABELS"].values, out["PROBABILITIES"].values
            assert set(np.unique(lab)) <= {0, 1, 2} and np.isfinite(prob).all() and (prob >= 0).all()
            np.testing.assert_allclose(prob.sum(1), 1.0, atol=1e-5)
            np.testing.assert_array_equal(lab, prob.argmax(1))
    # the same physical points get the same answer whatever the file's grid conventions (step 1 has no fill)
    with xr.open_dataset(tmp_path / "out" / "flipped.nc", decode_times=False) as a, \
            xr.open_dataset(tmp_path / "out_plain" / original.name, decode_times=False) as b:
        fa = a.isel(time=1).assign_coords(lon=a.lon % 360).sortby("lon").sortby("lat")
        np.testing.assert_allclose(fa["PROBABILITIES"].values, b["PROBABILITIES"].values[0], atol=1e-5)


def test_predict_bad_input_is_one_error_line(smoke, tmp_path, capsys):
    tmp, rows = smoke
    ckpt = ROOT / rows[0]["checkpoint"]
    cases = [(["--predict", str(ckpt), "--data-dir", str(tmp / "data")], "needs --data-dir"),
             (["--predict", str(tmp_path / "none.ckpt"), "--data-dir", str(tmp / "data"), "--out", str(tmp_path / "o")],
              "none.ckpt does not exist"),
             (["--predict", str(ckpt), "--data-dir", str(tmp / "data"), "--out", str(tmp / "data")], "must differ"),
             (["--predict", str(ckpt), "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")], "no netCDF files"),
             (["--out", str(tmp_path), "--preset", "smoke"], "--out is the output folder of --predict")]
    for argv, message in cases:
        assert main(BENCH, argv=argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_predict_checks_every_file_first_and_names_all_failures(smoke, tmp_path, capsys):
    """A folder of one good file and three bad ones (a variable missing, units that cannot be
    converted, not netCDF): one error naming the three, a line each, and nothing written."""
    tmp, rows = smoke
    ckpt = ROOT / rows[0]["checkpoint"]
    src = write_one_standin(tmp_path / "sd")
    inp = tmp_path / "in"
    inp.mkdir()
    with xr.open_dataset(src, decode_times=False) as ds:
        ds = ds.load()
    ds.to_netcdf(inp / "a_good.nc")
    ds.drop_vars("PSL").to_netcdf(inp / "b_nopsl.nc")
    bad = ds.copy()
    bad["PRECT"].attrs["units"] = "inch/day"
    bad.to_netcdf(inp / "c_inches.nc")
    (inp / "d_text.nc").write_text("not netCDF\n")
    capsys.readouterr()
    assert main(BENCH, argv=["--predict", str(ckpt), "--data-dir", str(inp), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: --predict: 3 of 4 input files cannot be segmented; nothing was written:", err
    assert len(err) == 4 and all(line.startswith("  climate: ") for line in err[1:]), err
    assert "b_nopsl.nc: missing variable(s) PSL" in err[1]
    assert "c_inches.nc: variable PRECT has units 'inch/day'" in err[2]
    assert "d_text.nc: unreadable netCDF" in err[3]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    for name in ("b_nopsl.nc", "c_inches.nc", "d_text.nc"):
        (inp / name).unlink()
    assert main(BENCH, argv=["--predict", str(ckpt), "--data-dir", str(inp), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a_good.nc"]


def test_evaluate_rescores_a_checkpoint_without_recomputing_weights(smoke):
    """``--evaluate`` rebuilds the weighted run from its checkpoint's config and scores the same test
    split to the same numbers, test/loss included: the class weights are not recomputed from the data
    but restored from the checkpoint."""
    import json

    tmp, rows = smoke
    row = next(r for r in rows if r["model"] == "ds_weighted" and r["setting_sampling"] == "healpix:4")
    p = run_climate("--evaluate", (ROOT / row["checkpoint"]).resolve(), "--data-dir", tmp / "data", "--logger", "none")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["test_samples"] == 2 and out["data_source"] == "stand-in" and "class_weight_TC" not in out
    for k in ("test_map", "test_acc_mean", "test_recall_AR", "test_iou_BG", "test_loss"):
        assert out[k] == pytest.approx(float(row[k]), abs=1e-5), k
    assert out["vertices"] == 192


@pytest.mark.slow
def test_native_columns_train_and_predict_on_other_columns(tmp_path):
    """A model trained on CAM-SE-like columns (sampling ``native``: the graph on the files' own
    points, no resampling) segments a file with *other* columns: its graph is built on them."""
    rng = np.random.default_rng(5)
    data = tmp_path / "cols"
    data.mkdir()
    base = rng.standard_normal((200, 3))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    lat, lon = np.degrees(np.arcsin(base[:, 2])), np.degrees(np.arctan2(base[:, 1], base[:, 0]))
    for i in range(10):
        fields = {n: (("ncol",), (DC.MEAN[j] + DC.STD[j] * rng.standard_normal(200)).astype(np.float32))
                  for j, n in enumerate(DC.VARIABLES)}
        fields["LABELS"] = (("ncol",), rng.choice(3, 200, p=[0.8, 0.1, 0.1]).astype(np.int64))
        xr.Dataset(fields, coords={"lat": ("ncol", lat), "lon": ("ncol", lon)}).to_netcdf(
            data / f"data-2106-01-{i + 1:02d}-00-1.nc")
    run_climate("--preset", "smoke", "--logger", "none", "--results-dir", tmp_path / "res", "--runs-dir",
                tmp_path / "runs", "--data-dir", data,
                "grid.rows=[{model: ds_unweighted, setting: {sampling: native}}]")
    with open(tmp_path / "res" / "climate.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["vertices"] == "200" and row["data_source"] == "real"
    other = tmp_path / "other"
    other.mkdir()
    ncol_file(other / "columns.nc", n=150)
    run_climate("--predict", (ROOT / row["checkpoint"]).resolve(), "--data-dir", other, "--out", tmp_path / "out")
    with xr.open_dataset(tmp_path / "out" / "columns.nc", decode_times=False) as out:
        assert out["LABELS"].shape == (1, 150) and out.attrs["prediction_sampling"] == "native"
        np.testing.assert_allclose(out["PROBABILITIES"].values.sum(1), 1.0, atol=1e-5)
    (tmp_path / "grid").mkdir()
    awkward_latlon(write_one_standin(tmp_path / "sd"), tmp_path / "grid" / "g.nc")
    p = run_climate("--predict", (ROOT / row["checkpoint"]).resolve(), "--data-dir", tmp_path / "grid", "--out",
                    tmp_path / "out2", check=False)
    assert p.returncode == 2 and "trained on native (ncol) columns" in p.stderr.strip().splitlines()[-1]


def write_one_standin(folder: Path) -> Path:
    DC.write_stand_in(folder, DC.StandInClimate(files=1, nlat=24, nlon=48))
    return sorted(folder.glob("*.nc"))[0]
