"""CAM5 climate data: awkward netCDF files (reversed latitude, 0–360 vs −180–180 longitude, fill
values, a missing variable, several time steps, unstructured ``ncol`` columns), UGSCNN npz
validation errors, the resampling round trip, the stand-in read back through the datamodule, the
``resample`` command line."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from datamodules import cam5
from datamodules import climate as C
from datamodules._common import MANIFEST, InputError
from datamodules.climate_standin import GALE
from models.deepsphere.graph import icosahedral_vectors, lonlat_vectors

SMALL = C.StandInClimate(files=10, nlat=48, nlon=96)


def smooth(lat, lon):
    """A smooth field on the sphere (degree <= 2 in x, y, z), amplitude ~1."""
    la, lo = np.radians(lat), np.radians(lon)
    x, y, z = np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)
    return x + 0.5 * y * z + z ** 2


def write_nc(path, lat, lon, n_time=1, drop=(), fill=None, labels=True, scale=None):
    """A ClimateNet-style file: field v = (i + 1) · smooth(lat, lon) · (t + 1), LABELS = 1 where
    lat > 60, 2 where lat < −60 (on the given axes, in the given order)."""
    LON, LAT = np.meshgrid(lon, lat)
    base = smooth(LAT, LON)
    data = {}
    for i, v in enumerate(C.VARIABLES):
        if v in drop:
            continue
        a = np.stack([(i + 1) * base * (t + 1) for t in range(n_time)]).astype(np.float32)
        data[v] = (("time", "lat", "lon"), a)
    if labels:
        lab = np.where(LAT > 60, 1, np.where(LAT < -60, 2, 0))
        data["LABELS"] = (("time", "lat", "lon"), np.stack([lab] * n_time).astype(np.int64))
    ds = xr.Dataset(data, coords={"time": ("time", np.arange(n_time, dtype=float),
                                           {"units": "hours since 2110-05-01 00:00:00"}),
                                  "lat": lat, "lon": lon})
    enc = {}
    if fill is not None:
        ds = fill(ds)
        enc = {"TMQ": {"_FillValue": np.float32(-9999.0)}}
    ds.to_netcdf(path, engine="netcdf4", encoding=enc)
    return path


LAT = np.linspace(-89, 89, 90)
LON360 = np.arange(0, 360, 2.0)


# ------------------------------------------------------------------ netCDF reader
def test_reversed_latitude_and_longitude_conventions_read_the_same(tmp_path):
    a = write_nc(tmp_path / "data-2110-05-01-00-1_0.nc", LAT, LON360)
    lon180 = np.where(LON360 >= 180, LON360 - 360, LON360)
    order = np.argsort(lon180)
    b = write_nc(tmp_path / "b.nc", LAT[::-1], lon180[order])  # descending lat, -180..178
    fa, fb = cam5.open_cam5(a), cam5.open_cam5(b)
    np.testing.assert_array_equal(fa.lat, fb.lat)
    np.testing.assert_array_equal(fa.lon, fb.lon)
    assert np.all(np.diff(fb.lat) > 0) and fb.lon.min() >= 0 and fb.lon.max() < 360
    xa, la = fa.read_step(0)
    xb, lb = fb.read_step(0)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(la, lb)
    # the reordered grid holds the field at its own coordinates
    LO, LA = np.meshgrid(fb.lon, fb.lat)
    np.testing.assert_allclose(xb[0], smooth(LA, LO), atol=1e-6)
    ra = cam5.resample_file(a, "ico:3", tmp_path / "ra")
    rb = cam5.resample_file(b, "ico:3", tmp_path / "rb")
    da, _ = C.read_mesh_npz(ra[0], 642)
    db, _ = C.read_mesh_npz(rb[0], 642)
    np.testing.assert_array_equal(da, db)
    assert ra[0].name == "data-2110-05-01-00-1-mesh.npz"  # date from the time coordinate, run 1


def test_duplicate_360_column_is_dropped(tmp_path):
    lon = np.arange(0, 362, 2.0)  # 0 and 360 both present
    f = cam5.open_cam5(write_nc(tmp_path / "x.nc", LAT, lon))
    assert len(f.lon) == 180 and f.read_step(0)[0].shape == (16, 90, 180)


def test_fill_values_are_left_out_of_the_interpolation(tmp_path):
    def holes(ds):
        tmq = ds["TMQ"].values.copy()
        tmq[0, 40:50, 10:20] = np.nan  # written as _FillValue -9999
        ds["TMQ"] = (ds["TMQ"].dims, tmq)
        ps = ds["PS"].values.copy()
        ps[0, 5, 5] = 1e36  # CESM convention, no attribute
        ds["PS"] = (ds["PS"].dims, ps)
        return ds
    p = write_nc(tmp_path / "f.nc", LAT, LON360, fill=holes)
    with xr.open_dataset(p, mask_and_scale=False) as raw:  # the file really holds the fill value
        assert raw["TMQ"].attrs["_FillValue"] == -9999 and (raw["TMQ"].values == -9999).sum() == 100
    fields, _ = cam5.open_cam5(p).read_step(0)
    assert np.isnan(fields[0]).sum() == 100 and np.isnan(fields[6]).sum() == 1
    out = cam5.resample_file(p, "ico:4", tmp_path / "r")[0]
    data, _ = C.read_mesh_npz(out, 2562)  # finite: validated
    v = icosahedral_vectors(4)
    lat = np.degrees(np.arcsin(v[:, 2]))
    lon = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360
    truth = smooth(lat, lon)
    # no -9999 leaked. Targets with some valid weighted neighbours: renormalised bilinear weights;
    # targets whose weighted neighbours are all missing: the nearest valid TMQ value (both stay
    # close to the smooth field, which varies by < 0.1 over 2 grid cells)
    f = cam5.open_cam5(p)
    interp = cam5.bilinear_lonlat(f.lat, f.lon, v)
    missing = np.isnan(fields[0]).reshape(-1)[interp.idx]
    w_valid = np.where(missing, 0.0, interp.w).sum(1)
    none_valid, some_valid = w_valid == 0, (w_valid > 0) & missing.any(1)
    assert none_valid.sum() > 5 and some_valid.sum() > 5
    ok = ~np.isnan(fields[0]).reshape(-1)
    j = cam5.cKDTree(interp.src_vectors[ok]).query(v[none_valid])[1]
    np.testing.assert_allclose(data[0][none_valid], fields[0].reshape(-1)[ok][j], rtol=1e-6)
    assert np.abs(data[0][none_valid | some_valid] - truth[none_valid | some_valid]).max() < 0.25
    assert np.abs(data[0][~missing.any(1)] - truth[~missing.any(1)]).max() < 0.02  # 0.017 at the poles
    assert np.abs(data[6] - 7 * truth).max() < 0.2  # one missing PS point: its neighbours take over


def test_variable_all_missing_is_an_error(tmp_path):
    def empty(ds):
        ds["TMQ"] = (ds["TMQ"].dims, np.full(ds["TMQ"].shape, np.nan, np.float32))
        return ds
    p = write_nc(tmp_path / "e.nc", LAT, LON360, fill=empty)
    with pytest.raises(InputError, match=r"e\.nc: variable TMQ \(step 0\) has no valid value"):
        cam5.open_cam5(p).read_step(0)


def test_missing_variable_names_the_file_and_lists_what_it_has(tmp_path):
    p = write_nc(tmp_path / "m.nc", LAT, LON360, drop=("ZBOT", "T200"))
    with pytest.raises(InputError) as e:
        cam5.open_cam5(p)
    msg = str(e.value)
    assert "m.nc" in msg and "missing variable(s) T200, ZBOT" in msg
    assert "the file has: TMQ, U850" in msg and "LABELS" in msg


def write_cam5_netcdf4(path, lat, lon, units=None, scale=None, extra=None, fill_pairs=()):
    """A CAM5-like file written with netCDF4 directly (not xarray): fields at their published
    mean + 0.5 std x smooth(lat, lon), each with a ``units`` attribute (``units``: variable ->
    unit overriding the published one, ``scale``: variable -> (factor, offset) applied to the
    values written); ``fill_pairs``: variables given both ``_FillValue`` and a different
    ``missing_value``, as NCEP reanalysis files do."""
    import netCDF4

    units, scale = dict(units or {}), dict(scale or {})
    LON, LAT_ = np.meshgrid(lon, lat)
    base = smooth(LAT_, LON)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        for name, values, attrs in (("lat", lat, {"units": "degrees_north"}),
                                    ("lon", lon, {"units": "degrees_east"})):
            var = nc.createVariable(name, "f8", (name,))
            var[:] = values
            var.setncatts(attrs)
        for i, v in enumerate(extra or C.VARIABLES):
            a = C.MEAN[i % 16] + 0.5 * C.STD[i % 16] * base
            f, o = scale.get(v, (1.0, 0.0))
            kw = {"fill_value": np.float32(-9.96921e36)} if v in fill_pairs else {}
            var = nc.createVariable(v, "f4", ("time", "lat", "lon"), **kw)
            var[0] = (a * f + o).astype(np.float32)
            var.units = units.get(v, C.UNITS.get(v, "1"))
            if v in fill_pairs:
                var.missing_value = np.float32(32766)
    return path


def test_units_other_than_published_are_converted_with_one_line(tmp_path, capsys):
    """PS / PSL in hPa, QREFHT in g/kg, TS in degC, Z200 in dam (netCDF4-written): converted and
    said once; the fields equal those of the same file in the published units."""
    (tmp_path / "pub").mkdir()
    ref = write_cam5_netcdf4(tmp_path / "pub" / "a.nc", LAT, LON360)
    other = {"PS": "hPa", "PSL": "mbar", "QREFHT": "g kg-1", "TS": "degC", "Z200": "dam"}
    scale = {"PS": (0.01, 0), "PSL": (0.01, 0), "QREFHT": (1000, 0), "TS": (1, -273.15), "Z200": (0.1, 0)}
    (tmp_path / "other").mkdir()
    for k in range(2):
        write_cam5_netcdf4(tmp_path / "other" / f"b{k}.nc", LAT, LON360, units=other, scale=scale)
    capsys.readouterr()
    a, _ = cam5.open_cam5(ref).read_step(0, require_labels=False)
    assert capsys.readouterr().err == ""  # published units, plausible values: nothing to say
    for k in range(2):
        b, _ = cam5.open_cam5(tmp_path / "other" / f"b{k}.nc").read_step(0, require_labels=False)
        np.testing.assert_allclose(b, a, rtol=2e-6, atol=1e-6)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err  # one line for the folder
    assert "b0.nc" in err[0] and "PS: hPa -> Pa (x100)" in err[0] and "QREFHT: g kg-1 -> kg/kg (x0.001)" in err[0]
    assert "TS: degC -> K (x1 + 273.15)" in err[0] and "Z200: dam -> m (x10)" in err[0]


def test_unknown_units_are_refused_naming_file_variable_and_unit(tmp_path):
    p = write_cam5_netcdf4(tmp_path / "psi.nc", LAT, LON360, units={"PS": "psi"})
    with pytest.raises(InputError, match=r"psi\.nc: variable PS has units 'psi', not Pa and not convertible") as e:
        cam5.open_cam5(p)
    assert "hpa" in str(e.value) and "\n" not in str(e.value)


def test_implausible_channels_are_a_warning_naming_them(tmp_path, capsys):
    """hPa written under 'Pa' (the units check cannot see it): the range check after
    normalisation names PS and PSL with their medians; plausible channels are not named."""
    p = write_cam5_netcdf4(tmp_path / "hpa.nc", LAT, LON360, scale={"PS": (0.01, 0), "PSL": (0.01, 0)})
    capsys.readouterr()
    cam5.open_cam5(p).read_step(0, require_labels=False)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("climate: warning:") and "hpa.nc" in err[0]
    assert "PS median 1011 Pa (-12.5 std)" in err[0] and "PSL median 1023 Pa (-26 std)" in err[0]
    assert "TMQ" not in err[0] and "QREFHT" not in err[0]
    assert C.check_plausible(p, C.MEAN[:, None] + C.STD[:, None] * np.array([[-7.9, 7.9]])) == []
    # a UGSCNN npz file with QREFHT in g/kg
    data = (C.MEAN[:, None] + 0.1 * C.STD[:, None] * np.ones((16, 162))).astype(np.float32)
    data[5] *= 1000
    (tmp_path / "npz").mkdir()
    C.write_mesh_npz(tmp_path / "npz" / "data-2106-01-01-00-1-mesh.npz", data, np.zeros(162, int))
    C.read_mesh_npz(tmp_path / "npz" / "data-2106-01-01-00-1-mesh.npz", 162)
    err = capsys.readouterr().err
    # (published mean + 0.1 std) x 1000 = 11.39 "kg/kg", +1.78e3 std
    assert "QREFHT median 11.39 kg/kg (+1.78e+03 std)" in err and "PS" not in err


def test_library_warnings_of_an_ncep_file_are_silenced(tmp_path, capsys):
    """An NCEP-reanalysis-like file (netCDF4-written; _FillValue and a different missing_value on
    every variable, which xarray warns about once per variable, no CAM5 fields): no warning, and
    the one error line names what is missing."""
    import warnings

    p = write_cam5_netcdf4(tmp_path / "air.sig995.nc", LAT, LON360, extra=[f"v{i}" for i in range(14)],
                           fill_pairs=[f"v{i}" for i in range(14)])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        xr.open_dataset(p).close()  # what xarray says unasked
        assert len(seen) >= 14
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"air\.sig995\.nc: missing variable\(s\) TMQ"):
            cam5.open_cam5(p)
    assert seen == [] and capsys.readouterr().err == ""


def test_bad_labels_are_an_error(tmp_path):
    p = write_nc(tmp_path / "l.nc", LAT, LON360)
    with xr.open_dataset(p) as ds:
        ds = ds.load()
    lab = ds["LABELS"].values.copy()
    lab[0, 0, :3] = 7
    ds["LABELS"] = (ds["LABELS"].dims, lab)
    ds.to_netcdf(tmp_path / "l2.nc")
    with pytest.raises(InputError, match=r"l2\.nc: variable LABELS .* 3 value\(s\) other than 0"):
        cam5.open_cam5(tmp_path / "l2.nc").read_step(0)
    q = write_nc(tmp_path / "nolab.nc", LAT, LON360, labels=False)
    with pytest.raises(InputError, match=r"nolab\.nc: no variable LABELS"):
        cam5.resample_file(q, "ico:2", tmp_path / "r")
    out = cam5.resample_file(q, "ico:2", tmp_path / "r", require_labels=False)
    assert C.read_mesh_npz(out[0], 162, require_labels=False)[1] is None


def test_several_time_steps_are_several_samples(tmp_path):
    p = write_nc(tmp_path / "data-2110-05-01-00-3_0.nc", LAT, LON360, n_time=3)
    f = cam5.open_cam5(p)
    assert f.n_time == 3
    names = cam5.step_names(f)
    assert names == [f"data-2110-05-01-{h:02d}-3-mesh.npz" for h in (0, 1, 2)]
    outs = cam5.resample_file(p, "ico:2", tmp_path / "r")
    d = [C.read_mesh_npz(o, 162)[0] for o in outs]
    np.testing.assert_allclose(d[2], 3 * d[0], rtol=1e-5)  # step t holds (t + 1) x the field
    np.testing.assert_allclose(d[1], 2 * d[0], rtol=1e-5)
    # cached: a second call rewrites nothing
    mtimes = [o.stat().st_mtime_ns for o in outs]
    assert cam5.resample_file(p, "ico:2", tmp_path / "r") == outs
    assert [o.stat().st_mtime_ns for o in outs] == mtimes


def test_unstructured_ncol_files_are_point_sets(tmp_path):
    v = icosahedral_vectors(3)
    lat = np.degrees(np.arcsin(v[:, 2]))
    lon = np.degrees(np.arctan2(v[:, 1], v[:, 0]))  # -180..180
    base = smooth(lat, lon)
    data = {name: (("time", "ncol"), ((i + 1) * base)[None].astype(np.float64)) for i, name in enumerate(C.VARIABLES)}
    data["LABELS"] = (("time", "ncol"), (lat > 50).astype(np.int64)[None])
    ds = xr.Dataset(data, coords={"lat": ("ncol", lat), "lon": ("ncol", lon), "time": ("time", [0.0])})
    p = tmp_path / "cam_se.nc"
    ds.to_netcdf(p)
    f = cam5.open_cam5(p)
    assert f.grid == "points" and f.shape == (642,)
    native = C.read_mesh_npz(cam5.resample_file(p, "native", tmp_path / "n")[0], None)
    np.testing.assert_allclose(native[0][0], base, rtol=1e-6)
    # onto the same icosahedron: inverse-distance weights hit coincident points exactly
    ico, lab = C.read_mesh_npz(cam5.resample_file(p, "ico:3", tmp_path / "i")[0], 642)
    np.testing.assert_allclose(ico[3], 4 * base, rtol=1e-6)
    np.testing.assert_array_equal(lab, (lat > 50).astype(np.int64))
    # a DeepSphere graph is built on the columns directly
    from models.deepsphere.graph import points_graph

    assert points_graph(f.lon, f.lat).n == 642
    with pytest.raises(InputError, match="native"):
        cam5.resample_file(write_nc(tmp_path / "g.nc", LAT, LON360), "native", tmp_path / "x")


def test_native_point_sets_through_the_datamodule_and_segment_task(tmp_path):
    """CAM-SE-like columns (a jittered icosahedron) kept as they are (``native``): batches on the
    columns, a point-set U-Net built on them, the weighted segmentation loss of the task."""
    import torch

    from models.deepsphere import DeepSphereUNet
    from models.tasks import Segment

    rng = np.random.default_rng(0)
    v = icosahedral_vectors(2) + 0.01 * rng.standard_normal((162, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    lat, lon = np.degrees(np.arcsin(v[:, 2])), np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    for i in range(10):
        data = {n: (("ncol",), (C.MEAN[j] + C.STD[j] * rng.standard_normal(162))) for j, n in enumerate(C.VARIABLES)}
        data["LABELS"] = (("ncol",), rng.choice(3, 162, p=[0.8, 0.05, 0.15]).astype(np.int64))
        xr.Dataset(data, coords={"lat": ("ncol", lat), "lon": ("ncol", lon)}).to_netcdf(
            tmp_path / f"data-2106-01-{i + 1:02d}-00-1.nc")
    dm = C.ClimateDataModule(tmp_path, sampling="native", batch_size=4, progress=False)
    dm.prepare_data()
    dm.setup()
    np.testing.assert_allclose(dm.vectors(), v, atol=1e-12)
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (4, 16, 162) and tuple(y.shape) == (4, 162)
    net = DeepSphereUNet("points", coords=dm.vectors(), encoder=((8,), (8,)))
    task = Segment(net, 3, class_weights=dm.class_weights(), map_classes=[1, 2], class_names=list(C.CLASSES))
    loss = task.loss(task(x), y)
    loss.backward()
    assert torch.isfinite(loss) and net.head.weight.grad.abs().sum() > 0


def test_published_class_weights_imply_the_published_frequencies():
    """sklearn 'balanced' weights are w_c = n / (3 n_c), so f_c = 1 / (3 w_c): the published
    weights must give back the published 97.7 / 0.1 / 2.2 % (and sum to 1)."""
    f = 1 / (3 * np.array(C.PUBLISHED_CLASS_WEIGHTS))
    assert abs(f.sum() - 1) < 1e-4
    np.testing.assert_allclose(f, C.PUBLISHED_FREQUENCIES, atol=5e-4)


def test_unreadable_and_wrong_dims(tmp_path):
    bad = tmp_path / "broken.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(InputError, match=r"broken\.nc: unreadable netCDF"):
        cam5.open_cam5(bad)
    p = write_nc(tmp_path / "d.nc", LAT, LON360)
    with xr.open_dataset(p) as ds:
        ds = ds.load()
    ds["TMQ"] = (("time", "lat"), ds["TMQ"].values[:, :, 0])
    ds.to_netcdf(tmp_path / "d2.nc")
    with pytest.raises(InputError, match=r"d2\.nc: variable TMQ has dims \('time', 'lat'\)"):
        cam5.open_cam5(tmp_path / "d2.nc").read_step(0)


# ------------------------------------------------------------------ UGSCNN npz validation
def _good(V=162):
    rng = np.random.default_rng(0)
    data = (C.MEAN[:, None] + C.STD[:, None] * rng.standard_normal((16, V))).astype(np.float32)
    lab = rng.integers(0, 3, V)
    return data, (lab[None] == np.arange(3)[:, None]).astype(np.float32)


@pytest.mark.parametrize("case, pattern", [
    ("no_labels", r"no field 'labels'"),
    ("no_data", r"no field 'data'"),
    ("int_data", r"field 'data' has dtype int64"),
    ("shape", r"field 'data' has shape \(16, 160\), expected \(16, 162\)"),
    ("nan", r"field 'data' has 1 NaN/inf value\(s\) \(first in channel 7, PSL\)"),
    ("two_hot", r"field 'labels' is not one-hot: 1 vertices have 2 classes"),
    ("not_binary", r"field 'labels' is not one-hot: 2 entries are neither 0 nor 1"),
    ("label_shape", r"field 'labels' has shape \(2, 162\)"),
    ("string_labels", r"field 'labels' has dtype <U1"),
    ("not_npz", r"unreadable npz"),
])
def test_npz_validation_names_file_and_field(tmp_path, case, pattern):
    data, lab = _good()
    p = tmp_path / "data-2106-01-01-00-1-mesh.npz"
    arrays = {"data": data, "labels": lab}
    if case == "no_labels":
        del arrays["labels"]
    elif case == "no_data":
        del arrays["data"]
    elif case == "int_data":
        arrays["data"] = data.astype(np.int64)
    elif case == "shape":
        arrays["data"] = data[:, :160]
    elif case == "nan":
        arrays["data"][7, 3] = np.nan
    elif case == "two_hot":
        lab[:, 5] = [1, 1, 0]
    elif case == "not_binary":
        lab[:, 5] = [0.5, 0.5, 0]
    elif case == "label_shape":
        arrays["labels"] = lab[:2]
    elif case == "string_labels":
        arrays["labels"] = np.full((3, 162), "a")
    if case == "not_npz":
        p.write_bytes(b"garbage")
    else:
        np.savez(p, **arrays)
    with pytest.raises(InputError, match=pattern) as e:
        C.read_mesh_npz(p, 162)
    assert p.name in str(e.value)


def test_npz_folder_with_split_lists(tmp_path):
    d = tmp_path / "ugscnn" / "data_5_all"
    d.mkdir(parents=True)
    names = [f"data-2106-01-{i + 1:02d}-00-1-mesh.npz" for i in range(10)]
    for n in names:
        data, lab = _good(C.N_ICO5)
        np.savez(d / n, data=data, labels=lab)
    C.write_split_lists(d.parent, {"train": names[:6], "val": names[6:7], "test": names[7:]})
    dm = C.ClimateDataModule(tmp_path / "ugscnn", sampling="ico:5", batch_size=2)
    dm.prepare_data()
    dm.setup()
    assert dm.form == "npz" and [len(dm.datasets[s]) for s in C.SPLITS] == [6, 1, 3]
    x, y = next(iter(dm.train_dataloader()))
    assert y.shape == (2, C.N_ICO5) and str(y.dtype) == "torch.int64" and str(x.dtype) == "torch.float32"
    counts = sum(np.bincount(C.read_mesh_npz(p)[1], minlength=3) for p in dm.files["train"])
    np.testing.assert_allclose(dm.class_weights(), counts.sum() / (3 * counts))  # sklearn 'balanced'
    # normalised with the published statistics: these files are mean + std x N(0, 1)
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    with pytest.raises(InputError, match=r"holds npz files on 10242 vertices, but the sampling is healpix:32"):
        C.ClimateDataModule(tmp_path / "ugscnn", sampling="healpix:32").prepare_data()
    (d / names[8]).unlink()
    with pytest.raises(InputError, match=r"test_split.txt lists 1 file\(s\) not in .*data-2106-01-09-00-1-mesh.npz"):
        C.ClimateDataModule(tmp_path / "ugscnn").prepare_data()


# ------------------------------------------------------------------ resampling round trip
def test_resampling_round_trip_smooth_field_and_label_fractions():
    """lat/lon (2°) → ico:5 (bilinear) → lat/lon (inverse distance, 4 nearest): a smooth field of
    amplitude ~1 comes back within 0.02 (max) / 0.005 (rms) (measured 0.012 / 0.003); on the
    icosahedron it is within 1e-3 between grid rows (measured 6e-4); labels (nearest neighbour) keep their
    area fractions within 15 % (10° cap, ~70 level-5 vertices; measured −9.9 %) and 5 % (25° cap;
    measured −0.7 %) relative: the
    vertex count is not an area (icosahedral cells vary by ~±10 % in area) and the 2° grid
    quantises the cap's edge."""
    lat = np.arange(-89, 90, 2.0)
    lon = np.arange(0, 360, 2.0)
    LO, LA = np.meshgrid(lon, lat)
    f = smooth(LA, LO)
    ico = C.parse_sampling("ico:5").vertices()
    to_ico = cam5.bilinear_lonlat(lat, lon, ico)
    g = to_ico.fields(f.reshape(1, -1))[0]
    grid = lonlat_vectors(LO.ravel(), LA.ravel())
    back = cam5.idw_points(ico, grid).fields(g[None])[0].reshape(f.shape)
    err = np.abs(back - f)
    assert err.max() < 0.02 and np.sqrt((err ** 2).mean()) < 0.005
    ilat = np.degrees(np.arcsin(ico[:, 2]))
    ilon = np.degrees(np.arctan2(ico[:, 1], ico[:, 0])) % 360
    e = np.abs(g - smooth(ilat, ilon))
    inside = np.abs(ilat) <= 89  # between grid rows: bilinear error ~ h² f''
    assert e[inside].max() < 1e-3
    assert e.max() < 0.02  # the 2 pole vertices: constant beyond the last row (±89°)
    # labels: caps of class 1 and 2
    from datamodules.climate_standin import _angular_dist
    cap = lambda c_lat, c_lon, r: _angular_dist(LA, LO, c_lat, c_lon) < r  # noqa: E731
    lab = np.zeros(f.shape, np.int64)
    lab[cap(20, 100, 10)] = 1
    lab[cap(-40, 250, 25)] = 2
    lab_ico = to_ico.labels(lab)
    w = np.cos(np.radians(LA))
    for c, tol in ((1, 0.15), (2, 0.05)):
        area = (w * (lab == c)).sum() / w.sum()
        frac = (lab_ico == c).mean()
        assert abs(frac - area) / area < tol, (c, frac, area)


# ------------------------------------------------------------------ stand-in
def test_stand_in_events_and_class_frequencies():
    m = C.StandInClimate()
    rng = np.random.default_rng(5)
    lat = -90 + 180 * (np.arange(m.nlat) + 0.5) / m.nlat
    w = np.cos(np.radians(lat))[:, None] * np.ones((1, m.nlon))
    acc = np.zeros(3)
    vort = {1: [], -1: []}
    sums = {}
    for _ in range(20):
        f, lab = C.stand_in_map(m, rng)
        acc += [(w * (lab == c)).sum() for c in range(3)]
        # PSL: an intense cyclone on a weather low reaches ~875 hPa (the lowest observed is 870 hPa)
        assert 0 < f["TMQ"].min() and 85000 < f["PSL"].min() and f["T200"].mean() < f["TS"].mean()
        # relative vorticity dv/dx - du/dy on the grid, signed by hemisphere inside TC labels
        dy = np.radians(180 / m.nlat)
        dx = np.radians(360 / m.nlon) * np.cos(np.radians(lat))[:, None]
        zeta = np.gradient(f["V850"], axis=1) / dx - np.gradient(f["U850"], axis=0) / dy
        for h in (1, -1):
            sel = (lab == 1) & (np.sign(lat)[:, None] == h)
            if sel.any():
                vort[h].append(zeta[sel].mean())
        # TCs: TMQ maximum and PSL minimum relative to the background at the same latitudes
        band = (lab == 0) & (np.abs(lat)[:, None] > 5) & (np.abs(lat)[:, None] < 32)
        for key, sel in (("tc", lab == 1), ("band", band), ("ar", lab == 2), ("bg", lab == 0)):
            for v in ("PSL", "TMQ"):
                sums.setdefault((key, v), []).append(f[v][sel])
    mean = {k: np.concatenate(v).mean() for k, v in sums.items()}
    # over all maps (the label reaches out to the gale radius, where the deficit is a few hPa, and
    # the background has weather of its own)
    assert mean["tc", "PSL"] < mean["band", "PSL"] - 500 and mean["tc", "TMQ"] > mean["band", "TMQ"] + 5, mean
    assert mean["ar", "TMQ"] > mean["bg", "TMQ"] + 8, mean
    frac = acc / acc.sum()
    assert 0.965 < frac[0] < 0.985 and 0.0004 < frac[1] < 0.0025 and 0.014 < frac[2] < 0.03, frac
    assert vort[1] and vort[-1]
    assert min(vort[1]) > 0 > max(vort[-1])  # cyclonic: counter-clockwise north, clockwise south


def test_stand_in_is_deterministic_and_resamples_onto_equiangular(tmp_path):
    m = C.StandInClimate(files=2, nlat=24, nlon=48, seed=3)
    for d in ("a", "b"):
        C.write_stand_in(tmp_path / d, m)
    C.write_stand_in(tmp_path / "c", C.StandInClimate(files=2, nlat=24, nlon=48, seed=4))
    fa, fb, fc = (sorted((tmp_path / d).glob("*.nc"))[1] for d in "abc")
    xa, la = cam5.open_cam5(fa).read_step(0)
    xb, lb = cam5.open_cam5(fb).read_step(0)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(xa, cam5.open_cam5(fc).read_step(0)[0])
    with xr.open_dataset(fa) as ds:  # ClimateNet layout and attributes
        assert ds["TMQ"].dims == ("time", "lat", "lon") and ds["PSL"].attrs["units"] == "Pa"
        assert str(ds["LABELS"].dtype) == "int64"
    out = cam5.resample_file(fa, "equiangular:8", tmp_path / "eq")
    data, lab = C.read_mesh_npz(out[0], 256)
    assert data.shape == (16, 256) and lab.shape == (256,)


def test_stand_in_through_the_datamodule(tmp_path):
    d = tmp_path / "climate"
    dm = C.ClimateDataModule(d, stand_in=True, sampling="ico:3", batch_size=3, stand_in_maps=SMALL,
                             progress=False)
    dm.prepare_data()
    assert (d / MANIFEST).is_file() and len(list(d.glob("*.nc"))) == 10
    dm.setup()
    assert dm.form == "netcdf" and [len(dm.datasets[s]) for s in C.SPLITS] == [7, 1, 2]
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (3, 16, 642) and tuple(y.shape) == (3, 642)
    assert str(x.dtype) == "torch.float32" and str(y.dtype) == "torch.int64"
    assert set(np.unique(y.numpy())) <= {0, 1, 2}
    assert abs(float(x[:, 0].mean())) < 1.5  # TMQ normalised with the published statistics
    w = dm.class_weights()
    assert len(w) == 3 and w[0] < 1 < w[2] < w[1]
    cached = sorted((tmp_path / "climate-resampled" / "ico3").glob("*-mesh.npz"))
    assert len(cached) == 10
    mt = [p.stat().st_mtime_ns for p in cached]
    dm2 = C.ClimateDataModule(d, stand_in=True, sampling="ico:3", stand_in_maps=SMALL, progress=False)
    dm2.prepare_data()  # reuses the stand-in and the cache
    assert [p.stat().st_mtime_ns for p in cached] == mt
    # the same stand-in on HEALPix
    hp = C.ClimateDataModule(d, stand_in=True, sampling="healpix:4", stand_in_maps=SMALL, progress=False)
    hp.prepare_data()
    hp.setup()
    assert tuple(hp.datasets["val"][0][0].shape) == (16, 192)


def test_resample_command_line(tmp_path, capsys):
    C.write_stand_in(tmp_path / "nc", C.StandInClimate(files=10, nlat=24, nlon=48))
    rc = C._cli(["resample", "--src", str(tmp_path / "nc"), "--sampling", "ico:2", "--out", str(tmp_path / "out")])
    assert rc == 0 and "wrote 10 files (ico:2)" in capsys.readouterr().out
    lists = C.read_split_lists([tmp_path / "out"])
    assert {k: len(v) for k, v in lists.items()} == {"train": 7, "val": 1, "test": 2}
    files = sorted((tmp_path / "out").glob("*-mesh.npz"))
    assert all(C.NPZ_PATTERN.match(p.name) for p in files)
    with np.load(files[0], allow_pickle=False) as z:
        assert z["data"].shape == (16, 162) and z["labels"].shape == (3, 162)
    dm = C.ClimateDataModule(tmp_path / "out", sampling="ico:2")
    dm.prepare_data()
    assert dm.form == "npz" and len(dm.files["train"]) == 7
    assert C._cli(["resample", "--src", str(tmp_path / "none"), "--out", str(tmp_path / "o2")]) == 2
    assert "holds no netCDF files" in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown sampling 'ico'. Valid values are"):
        C.parse_sampling("ico")


def test_ncep_file_through_the_command_line_gives_the_error_as_the_only_line(tmp_path):
    """The same NCEP-like file read by a fresh interpreter (Python's default warning filters, which
    show xarray's SerializationWarning): stderr is the one error line, nothing before it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "ncep"
    src.mkdir()
    write_cam5_netcdf4(src / "air.sig995.nc", LAT, LON360, extra=[f"v{i}" for i in range(14)],
                       fill_pairs=[f"v{i}" for i in range(14)])
    code = "import xarray, warnings; warnings.simplefilter('default'); xarray.open_dataset(__import__('sys').argv[1])"
    shown = subprocess.run([sys.executable, "-c", code, str(src / "air.sig995.nc")], capture_output=True, text=True,
                           timeout=120)
    assert "SerializationWarning" in shown.stderr  # what xarray says unasked on this file
    p = subprocess.run([sys.executable, "-m", "datamodules.climate", "resample", "--src", str(src), "--out",
                        str(tmp_path / "out"), "--sampling", "healpix:2"], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).resolve().parents[1],
                       env={**os.environ, "PYTHONWARNINGS": "default"})
    lines = [ln for ln in p.stderr.replace("\r", "\n").splitlines() if ln.strip() and "resample ->" not in ln]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"error: climate: {src / 'air.sig995.nc'}: missing variable(s) TMQ")


def test_resampling_a_folder_is_said_in_one_line(tmp_path, capsys):
    src = tmp_path / "nc"
    src.mkdir()
    for k in range(2):
        write_cam5_netcdf4(src / f"data-2106-01-0{k + 1}-00-1.nc", LAT, LON360)
    capsys.readouterr()
    cam5.resample_folder(src, "healpix:2", tmp_path / "out", require_labels=False, progress=False)
    cam5.resample_folder(src, "healpix:2", tmp_path / "out", require_labels=False, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    head = (f"climate: 2 netCDF file(s) of {src} (the first on lat/lon {len(LAT)}x{len(LON360)}) onto healpix:2 "
            f"(fields bilinear (lat/lon) or inverse-distance (columns), labels nearest neighbour): ")
    assert err == [head + f"2 sample(s) resampled into {tmp_path / 'out'}", head + f"reused from {tmp_path / 'out'}"]


def test_npz_folder_in_wrong_units_is_said_once_by_the_datamodule(tmp_path, capsys):
    """UGSCNN-layout files with PS in hPa: prepare_data says it in one warning line (the first file
    of the folder is range-checked); the samples served are not checked again."""
    d = tmp_path / "data_5_all"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(10):
        data = (C.MEAN[:, None] + 0.3 * C.STD[:, None] * rng.standard_normal((16, 42))).astype(np.float32)
        data[6] /= 100  # PS in hPa
        C.write_mesh_npz(d / f"data-2106-01-{k + 1:02d}-00-1-mesh.npz", data, rng.integers(0, 3, 42))
    capsys.readouterr()
    dm = C.ClimateDataModule(tmp_path, sampling="ico:1")
    dm.prepare_data()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"climate: warning: {d / 'data-2106-01-01-00-1-mesh.npz'}: "
                                               f"implausible after normalisation") and "PS median" in err[0], err
    dm.setup()
    next(iter(dm.train_dataloader()))
    assert capsys.readouterr().err == ""


def test_cold_core_gale_lows_look_like_tcs_on_their_ring_but_are_not_labelled():
    """``lows_per_map``: gale-force lows at TC latitudes with a cold core are background; the same maps
    with them off differ only by the lows (the generator draws them last among the cyclones)."""
    m = C.StandInClimate(tc_per_map=0.0, ar_per_map=0, decoys_per_map=0.0, short_per_map=0.0, etc_per_map=0.0,
                         lows_per_map=3.0, nlat=96, nlon=192)
    lat = -90 + 180 * (np.arange(m.nlat) + 0.5) / m.nlat
    tropics = (np.abs(lat) < 35)[:, None]
    gales = 0
    for seed in range(4):
        f, lab = C.stand_in_map(m, np.random.default_rng(seed))
        wind = np.hypot(f["UBOT"], f["VBOT"])
        gales += int((tropics & (wind >= GALE)).sum())
        assert not (lab == 1).any()  # no TC label without a warm core
    assert gales > 20  # gale-force winds at TC latitudes: the ring of a TC
    # the same generator with warm cores labels them (tc_per_map instead of lows)
    m_tc = C.StandInClimate(tc_per_map=3.0, ar_per_map=0, decoys_per_map=0.0, short_per_map=0.0, etc_per_map=0.0)
    assert any((C.stand_in_map(m_tc, np.random.default_rng(s))[1] == 1).any() for s in range(4))
