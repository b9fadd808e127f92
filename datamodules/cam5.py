"""CAM5 / ClimateNet netCDF files: the reader, the interpolation onto a model sampling and the
resampled cache in the UGSCNN npz layout that :class:`datamodules.climate.ClimateDataModule` reads.

**ClimateNet / raw CAM5 netCDF** (:func:`open_cam5`): one file per time step (a ``time`` dimension
of length > 1 gives one sample per step), opened lazily with xarray + netCDF4, each field read one
step at a time. Regular grids have dims ``(time, lat, lon)`` (any order; ``time`` optional);
unstructured CAM-SE files have a dimension ``ncol`` with ``lat`` / ``lon`` coordinate variables
and are read as a point set. Variables: the 16 of :data:`VARIABLES` and ``LABELS`` (0 BG, 1 TC,
2 AR). Handled: latitude descending (reordered ascending), longitude in −180…180 or 0…360 (taken
modulo 360 and sorted; a duplicated 0/360 column is dropped), missing values (``_FillValue`` /
``missing_value`` decoded to NaN by xarray, and the CESM convention ``|x| ≥ 1e30``: these source
points are *left out* of the interpolation, the weights renormalised over the valid neighbours; a
target point whose weighted neighbours are all missing gets the value of the nearest valid source
point of that variable and time step). ``LABELS`` must be 0, 1 or 2 everywhere (a fill value there is an error). A missing variable
is an error naming the file and listing the variables it has.

Resampling onto the model's sampling (:func:`datamodules.climate.parse_sampling`: ``ico:L``, ``healpix:NSIDE``
(NEST), ``equiangular:B``, or ``native`` for point-set files) is done once per file and sampling
and cached to disk as the UGSCNN npz layout (:func:`resample_file`, written atomically, with a
progress bar); the datamodule then reads the cache through :func:`datamodules.climate.read_mesh_npz`. Interpolation
(:class:`Interpolator`):

* fields from a regular lat/lon grid: **bilinear in (lon, lat)**, periodic in longitude, constant
  beyond the first/last latitude row. It is exact for fields linear in lon and lat, uses the 4
  surrounding grid points (a convex combination: non-negative fields such as TMQ or PRECT stay
  non-negative) and copes with non-uniform latitudes (Gaussian grids);
* fields from a point set (CAM-SE columns, or an icosahedral / HEALPix map read back onto a grid):
  **inverse-distance weighting** ``w ∝ 1/d²`` over the ``k = 4`` nearest source points on the
  unit sphere (``scipy.spatial.cKDTree``, chordal distance), exact at coincident points. Also a
  convex combination; no mesh connectivity is needed;
* labels: **nearest neighbour** on the unit sphere (a class is never blended).
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from datamodules._common import InputError
from datamodules.climate_config import BENCH, parse_sampling
from datamodules.climate_files import (HINT, LABEL_VAR, UNITS, VARIABLES, check_plausible, default_splits, read_split_lists,
                                       say_once, write_mesh_npz)
from models.deepsphere.sampling import Sampling

# --------------------------------------------------------------------------- units
MISSING_ABS = 1e30  # CESM/CAM fill convention (1e36): |x| >= this is missing
_G0 = 9.80665  # standard gravity (WMO), geopotential m2 s-2 -> geopotential height m
#: accepted spellings of each quantity's units (lower case, blanks, '*' and '^' removed) -> (factor,
#: offset) onto the published unit: value_published = value * factor + offset
_UNIT_SPELLINGS = {
    "pressure": {**dict.fromkeys(("pa", "pascal", "pascals"), (1.0, 0.0)),
                 **dict.fromkeys(("hpa", "mbar", "mb", "millibar", "millibars", "hectopascal", "hectopascals"),
                                 (100.0, 0.0)),
                 "kpa": (1000.0, 0.0)},
    "temperature": {**dict.fromkeys(("k", "kelvin", "degk", "deg_k", "degreesk", "degrees_k", "degree_k"),
                                    (1.0, 0.0)),
                    **dict.fromkeys(("degc", "deg_c", "°c", "c", "celsius", "degreesc", "degrees_c",
                                     "degree_c", "degree_celsius", "degrees_celsius"), (1.0, 273.15))},
    "wind": {**dict.fromkeys(("m/s", "ms-1", "meters/second", "metres/second", "m/sec"), (1.0, 0.0)),
             **dict.fromkeys(("km/h", "kmh-1", "km/hr"), (1 / 3.6, 0.0)),
             **dict.fromkeys(("knots", "knot", "kt", "kts"), (1852 / 3600, 0.0))},
    "precipitation": {**dict.fromkeys(("m/s", "ms-1", "meters/second", "metres/second"), (1.0, 0.0)),
                      **dict.fromkeys(("mm/s", "mms-1", "kgm-2s-1", "kg/m2/s", "kg/m2s"), (1e-3, 0.0)),
                      **dict.fromkeys(("mm/day", "mm/d", "mmday-1", "mmd-1"), (1e-3 / 86400, 0.0)),
                      **dict.fromkeys(("mm/h", "mm/hr", "mmh-1", "mmhr-1"), (1e-3 / 3600, 0.0))},
    "column water": {**dict.fromkeys(("kgm-2", "kg/m2", "mm"), (1.0, 0.0)), "cm": (10.0, 0.0)},
    "mixing ratio": {**dict.fromkeys(("kg/kg", "kgkg-1", "1"), (1.0, 0.0)),
                     **dict.fromkeys(("g/kg", "gkg-1"), (1e-3, 0.0))},
    "height": {**dict.fromkeys(("m", "meter", "meters", "metre", "metres", "gpm"), (1.0, 0.0)),
               "dam": (10.0, 0.0), "km": (1000.0, 0.0),
               **dict.fromkeys(("m2s-2", "m2/s2"), (1 / _G0, 0.0))},
}
_QUANTITY = {"TMQ": "column water", "QREFHT": "mixing ratio", "PS": "pressure", "PSL": "pressure",
             "PRECT": "precipitation", **dict.fromkeys(("U850", "V850", "UBOT", "VBOT"), "wind"),
             **dict.fromkeys(("T200", "T500", "TS", "TREFHT"), "temperature"),
             **dict.fromkeys(("Z1000", "Z200", "ZBOT"), "height")}


def _unit_key(text: str) -> str:
    return re.sub(r"[\s*^]", "", str(text).lower())


def unit_conversions(path: Path, attrs: dict[str, dict]) -> dict[str, tuple[float, float]]:
    """``{variable: (factor, offset)}`` that bring each field into its published unit
    (:data:`UNITS`) from the ``units`` attribute it carries (``attrs``: variable -> attributes).
    A unit that is the published one (in any common spelling) needs nothing; a convertible one
    (hPa, mbar, g/kg, °C, mm/day, dam, ...) is converted, said in one line per folder; an
    unknown unit is an :class:`InputError` naming file, variable and unit; a field without a
    ``units`` attribute is taken as published, said in one line per folder."""
    out: dict[str, tuple[float, float]] = {}
    converted, unitless = [], []
    for v in VARIABLES:
        raw = attrs.get(v, {}).get("units")
        if raw is None or not str(raw).strip():
            unitless.append(v)
            continue
        table = _UNIT_SPELLINGS[_QUANTITY[v]]
        conv = table.get(_unit_key(raw))
        if conv is None:
            known = sorted({k for k in table})
            raise InputError(f"{BENCH}: {path}: variable {v} has units '{raw}', not {UNITS[v]} and not "
                             f"convertible to it (known {_QUANTITY[v]} units: {', '.join(known)})")
        if conv != (1.0, 0.0):
            out[v] = conv
            converted.append((v, str(raw).strip()))
    if converted:
        groups: dict[str, list[str]] = {}
        for v, u in converted:
            groups.setdefault(f"{u} -> {UNITS[v]}", []).append(v)
        what = "; ".join(f"{', '.join(vs)}: {k} ({_conversion_text(out[vs[0]])})" for k, vs in groups.items())
        say_once(("units", str(path.parent), tuple(converted)),
                 f"{BENCH}: {path} (and every file of {path.parent} in these units): converted {what}")
    if unitless:
        say_once(("unitless", str(path.parent), tuple(unitless)),
                 f"{BENCH}: {path} (and every file of {path.parent} like it): no units attribute on "
                 f"{', '.join(unitless)}; taken as the published {', '.join(sorted({UNITS[v] for v in unitless}))}")
    return out


def _conversion_text(conv: tuple[float, float]) -> str:
    f, o = conv
    return f"x{f:.6g}" + (f" + {o:g}" if o else "")


# --------------------------------------------------------------------------- netCDF reader
@dataclass
class Cam5File:
    """A CAM5 netCDF file as read by :func:`open_cam5` (no field loaded yet).

    ``grid``: ``"latlon"`` or ``"points"``. For ``latlon``, ``lat`` (ascending) and ``lon``
    (ascending in [0, 360)) are the axes after reordering, ``lat_order`` / ``lon_order`` the file
    indices they come from; for ``points``, ``lat`` / ``lon`` are per column. ``n_time`` steps
    (1 without a ``time`` dimension); ``has_labels`` whether ``LABELS`` exists; ``variables``
    all data variables of the file.
    """

    path: Path
    grid: str
    lat: np.ndarray
    lon: np.ndarray
    lat_order: np.ndarray | None
    lon_order: np.ndarray | None
    n_time: int
    has_labels: bool
    variables: tuple[str, ...]
    times: tuple[str, ...] = ()
    convert: dict = field(default_factory=dict)  # variable -> (factor, offset), see unit_conversions

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.lat), len(self.lon)) if self.grid == "latlon" else (len(self.lat),)

    def vectors(self) -> np.ndarray:
        """Unit vectors of the source points, flattened in (lat, lon) order for ``latlon``."""
        from models.deepsphere.graph import lonlat_vectors

        if self.grid == "latlon":
            lo, la = np.meshgrid(self.lon, self.lat)
            return lonlat_vectors(lo.ravel(), la.ravel())
        return lonlat_vectors(self.lon, self.lat)

    def read_step(self, t: int = 0, require_labels: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Fields ``(16, *shape)`` float64 (NaN where missing) and labels ``shape`` int64 (or
        None) of time step ``t``, in the reordered grid."""
        with _open(self.path) as ds, _quiet():
            fields = np.stack([self._values(ds[v], t, v) for v in VARIABLES])
            labels = None
            if self.has_labels:
                raw = self._values(ds[LABEL_VAR], t, LABEL_VAR)
                bad = ~np.isin(raw, (0, 1, 2))
                if bad.any():
                    ex = raw[bad][0]
                    raise InputError(f"{BENCH}: {self.path}: variable {LABEL_VAR} (step {t}) has {int(bad.sum())} "
                                     f"value(s) other than 0 (BG), 1 (TC), 2 (AR), e.g. "
                                     f"{'a fill value / NaN' if not np.isfinite(ex) else repr(float(ex))}")
                labels = raw.astype(np.int64)
            elif require_labels:
                raise InputError(f"{BENCH}: {self.path}: no variable {LABEL_VAR} (needed for training and "
                                 f"scoring); the file has: {', '.join(self.variables)}")
        fields[np.abs(fields) >= MISSING_ABS] = np.nan
        for i, v in enumerate(VARIABLES):
            if np.isnan(fields[i]).all():
                raise InputError(f"{BENCH}: {self.path}: variable {v} (step {t}) has no valid value "
                                 f"(all missing / _FillValue)")
            if v in self.convert:
                factor, offset = self.convert[v]
                fields[i] = fields[i] * factor + offset
        check_plausible(self.path, fields, f" (step {t})" if self.n_time > 1 else "")
        return fields, labels

    def _values(self, da, t: int, name: str) -> np.ndarray:
        dims = set(da.dims)
        space = ("lat", "lon") if self.grid == "latlon" else ("ncol",)
        want = set(space) | ({"time"} if "time" in dims else set())
        if dims != want:
            raise InputError(f"{BENCH}: {self.path}: variable {name} has dims {tuple(da.dims)}, expected "
                             f"{('time',) + space} (time optional)")
        if "time" in dims:
            da = da.isel(time=t)
        a = np.asarray(da.transpose(*space).values, dtype=np.float64)
        if self.grid == "latlon":
            a = a[self.lat_order][:, self.lon_order]
        return a


def _open(path: Path):
    try:
        import netCDF4  # noqa: F401  (xarray's engine="netcdf4")
        import xarray as xr
    except ImportError as e:
        raise InputError(f"{BENCH}: reading netCDF needs xarray and netCDF4 ({e}); "
                         f"pip install xarray netCDF4") from None
    try:
        with _quiet():
            return xr.open_dataset(path, engine="netcdf4", mask_and_scale=True, decode_times=False)
    except Exception as e:  # OSError, ValueError from netCDF4 / xarray
        raise InputError(f"{BENCH}: {path}: unreadable netCDF ({type(e).__name__}: {e})") from None


@contextlib.contextmanager
def _quiet():
    """Library warnings off while a file is opened and decoded: xarray's SerializationWarning
    (e.g. 'variable has multiple fill values', NCEP files give one per variable) and netCDF4's
    would bury the one line this reader says about the file; what matters is checked and said
    here (missing values, units, ranges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def open_cam5(path: str | os.PathLike) -> Cam5File:
    """Read the layout of a CAM5 / ClimateNet netCDF file (lazily: no field is loaded); see the
    module docstring for what is accepted. Errors name the file."""
    path = Path(path)
    with _open(path) as ds:
        variables = tuple(str(v) for v in ds.data_vars)
        missing = [v for v in VARIABLES if v not in ds.variables]
        if missing:
            raise InputError(f"{BENCH}: {path}: missing variable(s) {', '.join(missing)}; the file has: "
                             f"{', '.join(variables) or 'no data variables'}")
        for c in ("lat", "lon"):
            if c not in ds.variables:
                raise InputError(f"{BENCH}: {path}: no coordinate variable '{c}' (the file has: "
                                 f"{', '.join(map(str, ds.variables))})")
        convert = unit_conversions(path, {v: dict(ds[v].attrs) for v in VARIABLES})
        with _quiet():
            lat = np.asarray(ds["lat"].values, dtype=np.float64)
            lon = np.asarray(ds["lon"].values, dtype=np.float64)
        n_time = int(ds.sizes.get("time", 1))
        times = _time_names(ds, n_time)
        has_labels = LABEL_VAR in ds.variables
        if "ncol" in ds.dims:
            if ds["lat"].dims != ("ncol",) or ds["lon"].dims != ("ncol",):
                raise InputError(f"{BENCH}: {path}: unstructured file (dimension ncol) needs lat(ncol) and "
                                 f"lon(ncol), got lat{tuple(ds['lat'].dims)} and lon{tuple(ds['lon'].dims)}")
            _check_coords(path, lat, lon)
            return Cam5File(path, "points", lat, lon % 360.0, None, None, n_time, has_labels, variables, times,
                            convert)
        if ds["lat"].ndim != 1 or ds["lon"].ndim != 1:
            raise InputError(f"{BENCH}: {path}: lat and lon must be 1-D axes (dims (time, lat, lon)) or "
                             f"columns (dimension ncol); got lat{tuple(ds['lat'].dims)}, lon{tuple(ds['lon'].dims)}")
    _check_coords(path, lat, lon)
    lat_order = np.argsort(lat, kind="stable")
    if np.any(np.diff(lat[lat_order]) <= 0):
        raise InputError(f"{BENCH}: {path}: latitudes are not strictly monotonic (repeated values)")
    lon_mod = lon % 360.0
    lon_order = np.argsort(lon_mod, kind="stable")
    keep = np.concatenate([[True], np.diff(lon_mod[lon_order]) > 1e-9])  # drop a repeated 0/360 column
    lon_order = lon_order[keep]
    if len(lon_order) < 2:
        raise InputError(f"{BENCH}: {path}: fewer than 2 distinct longitudes")
    return Cam5File(path, "latlon", lat[lat_order], lon_mod[lon_order], lat_order, lon_order, n_time,
                    has_labels, variables, times, convert)


def _check_coords(path: Path, lat: np.ndarray, lon: np.ndarray) -> None:
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise InputError(f"{BENCH}: {path}: lat/lon contain NaN/inf")
    if np.any(np.abs(lat) > 90 + 1e-9):
        raise InputError(f"{BENCH}: {path}: latitudes outside [-90, 90] (min {lat.min():g}, max {lat.max():g}); "
                         f"expected degrees")


def _time_names(ds, n_time: int) -> tuple[str, ...]:
    """``YYYY-MM-DD-HH`` per step when the time coordinate decodes (CF units), else ()."""
    if "time" not in ds.variables or "units" not in ds["time"].attrs:
        return ()
    try:
        import xarray as xr

        with _quiet():
            dec = xr.decode_cf(ds[["time"]].copy())["time"].values.reshape(-1)
        names = tuple(f"{t.year:04d}-{t.month:02d}-{t.day:02d}-{t.hour:02d}" if hasattr(t, "year")
                      else str(np.datetime_as_string(t, unit="h")).replace("T", "-") for t in dec)
        return names if len(names) == n_time else ()
    except Exception:  # undecodable units: fall back to the file name
        return ()


# --------------------------------------------------------------------------- interpolation
@dataclass
class Interpolator:
    """Source → target weights: field value at target ``i`` = ``Σ_j w[i, j] · src[idx[i, j]]``
    (renormalised over valid sources), label = ``src[nearest[i]]``. ``method`` says which rule."""

    idx: np.ndarray
    w: np.ndarray
    nearest: np.ndarray
    method: str
    src_vectors: np.ndarray | None = None
    tgt_vectors: np.ndarray | None = None

    def fields(self, src: np.ndarray) -> np.ndarray:
        """``(C, N_src)`` (NaN = missing) → ``(C, N_tgt)`` float64, see the module docstring.

        Missing sources are left out and the weights renormalised over the valid ones; a target
        whose weighted sources are all missing takes the nearest valid source point of that
        channel (the channel's mean of valid values when the vectors are unknown)."""
        src = np.asarray(src, dtype=np.float64).reshape(src.shape[0], -1)
        vals = src[:, self.idx]                           # (C, N, k)
        valid = np.isfinite(vals)
        w = np.where(valid, self.w[None], 0.0)
        num = np.einsum("cnk,cnk->cn", np.where(valid, vals, 0.0), w)
        den = w.sum(-1)
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        for c in np.nonzero((den <= 0).any(1))[0]:
            ok, todo = np.isfinite(src[c]), den[c] <= 0
            if self.src_vectors is None or self.tgt_vectors is None:
                out[c, todo] = np.nanmean(src[c])
            else:
                j = cKDTree(self.src_vectors[ok]).query(self.tgt_vectors[todo])[1]
                out[c, todo] = src[c][ok][j]
        return out

    def labels(self, src: np.ndarray) -> np.ndarray:
        return np.asarray(src).reshape(-1)[self.nearest]


def bilinear_lonlat(lat: np.ndarray, lon: np.ndarray, tgt_vectors: np.ndarray) -> Interpolator:
    """Bilinear weights on a regular grid (``lat`` ascending, ``lon`` ascending in [0, 360),
    periodic) for target unit vectors; sources flattened in (lat, lon) order. Latitudes beyond
    the first/last row take that row's values (constant extrapolation towards the poles)."""
    from models.deepsphere.graph import lonlat_vectors

    t = np.asarray(tgt_vectors, dtype=np.float64)
    tlat = np.degrees(np.arcsin(np.clip(t[:, 2], -1, 1)))
    tlon = np.degrees(np.arctan2(t[:, 1], t[:, 0])) % 360.0
    nlat, nlon = len(lat), len(lon)
    lon_ext = np.concatenate([lon, [lon[0] + 360.0]])
    i = np.clip(np.searchsorted(lon_ext, tlon, side="right") - 1, 0, nlon - 1)
    tl = np.where(tlon < lon[0], tlon + 360.0, tlon)
    i = np.where(tlon < lon[0], nlon - 1, i)
    a = (tl - lon_ext[i]) / (lon_ext[i + 1] - lon_ext[i])
    i1 = (i + 1) % nlon
    j = np.clip(np.searchsorted(lat, tlat, side="right") - 1, 0, nlat - 2)
    b = np.clip((tlat - lat[j]) / (lat[j + 1] - lat[j]), 0.0, 1.0)
    idx = np.stack([j * nlon + i, j * nlon + i1, (j + 1) * nlon + i, (j + 1) * nlon + i1], axis=1)
    w = np.stack([(1 - a) * (1 - b), a * (1 - b), (1 - a) * b, a * b], axis=1)
    lo, la = np.meshgrid(lon, lat)
    src = lonlat_vectors(lo.ravel(), la.ravel())
    nearest = cKDTree(src).query(t)[1]
    return Interpolator(idx, w, nearest, "bilinear in (lon, lat), periodic lon", src, t)


def idw_points(src_vectors: np.ndarray, tgt_vectors: np.ndarray, k: int = 4) -> Interpolator:
    """Inverse-distance weights ``w ∝ 1/d²`` over the ``k`` nearest source points (chordal
    distance on the unit sphere; a coincident source point gets all the weight)."""
    src = np.asarray(src_vectors, dtype=np.float64)
    k = min(int(k), len(src))
    tree = cKDTree(src)
    d, idx = tree.query(np.asarray(tgt_vectors, dtype=np.float64), k=k)
    d, idx = d.reshape(len(d), -1), idx.reshape(len(idx), -1)
    hit = d[:, 0] < 1e-12
    w = 1.0 / np.maximum(d, 1e-12) ** 2
    w[hit] = 0.0
    w[hit, 0] = 1.0
    w /= w.sum(1, keepdims=True)
    return Interpolator(idx, w, idx[:, 0].copy(), f"inverse-distance (1/d^2) over {k} nearest points",
                        src, np.asarray(tgt_vectors, dtype=np.float64))


_INTERP_CACHE: dict[tuple, Interpolator] = {}


def interpolator_for(f: Cam5File, sampling: Sampling) -> Interpolator | None:
    """The interpolator from ``f``'s grid to ``sampling`` (cached in-process per grid); None for
    ``native`` (point-set files keep their columns)."""
    if sampling.kind == "native":
        if f.grid != "points":
            raise InputError(f"{BENCH}: {f.path}: sampling 'native' keeps the columns of unstructured (ncol) "
                             f"files; this file is on a lat/lon grid: choose ico:L, healpix:NSIDE or equiangular:B")
        return None
    key = (f.grid, sampling.name, f.lat.tobytes(), f.lon.tobytes())
    if key not in _INTERP_CACHE:
        tgt = sampling.vertices()
        if len(_INTERP_CACHE) > 8:
            _INTERP_CACHE.clear()
        _INTERP_CACHE[key] = (bilinear_lonlat(f.lat, f.lon, tgt) if f.grid == "latlon"
                              else idw_points(f.vectors(), tgt))
    return _INTERP_CACHE[key]


# --------------------------------------------------------------------------- resampling + cache
_NAME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}-\d{2})-(\d+)")


def step_names(f: Cam5File) -> list[str]:
    """UGSCNN-style names ``data-YYYY-MM-DD-HH-<run>-mesh.npz`` of the steps of ``f``: the date
    from the decoded time coordinate (else from the file name, ``data-YYYY-MM-DD-HH-<run>…``, with
    ``-t<i>`` appended for steps after the first), the run from the file name (else 1); a file
    name without a date keeps its stem."""
    m = _NAME_RE.search(f.path.name)
    run = m.group(2) if m else "1"
    names = []
    for t in range(f.n_time):
        if f.times:
            names.append(f"data-{f.times[t]}-{run}-mesh.npz")
        elif m:
            names.append(f"data-{m.group(1)}-{run}{'' if t == 0 else f'-t{t}'}-mesh.npz")
        else:
            names.append(f"{f.path.stem}{'' if f.n_time == 1 else f'-t{t}'}-mesh.npz")
    return names


def _stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


def _cache_valid(path: Path, source: Path, step: int) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return (str(z["source"]) == str(source.resolve()) and int(z["step"]) == step
                    and np.array_equal(z["stamp"], _stamp(source)))
    except Exception:
        return False


def resample_file(path: str | os.PathLike, sampling: Sampling | str, out_dir: str | os.PathLike,
                  require_labels: bool = True) -> list[Path]:
    """Resample every step of one netCDF file onto ``sampling`` and write it in the UGSCNN npz
    layout into ``out_dir`` (one file per step, :func:`step_names`; atomic). A file already
    written from the same source (path, size, mtime) and step is kept. Returns the npz paths."""
    sampling = parse_sampling(sampling) if isinstance(sampling, str) else sampling
    path, out_dir = Path(path), Path(out_dir)
    f = open_cam5(path)
    names = step_names(f)
    outs = [out_dir / n for n in names]
    if all(o.is_file() and _cache_valid(o, path, t) for t, o in enumerate(outs)):
        return outs
    if require_labels and not f.has_labels:
        raise InputError(f"{BENCH}: {path}: no variable {LABEL_VAR} (needed for training and scoring); "
                         f"the file has: {', '.join(f.variables)}")
    interp = interpolator_for(f, sampling)
    for t, o in enumerate(outs):
        if o.is_file() and _cache_valid(o, path, t):
            continue
        fields, labels = f.read_step(t, require_labels)
        flat = fields.reshape(len(VARIABLES), -1)
        if interp is None:
            data = Interpolator(np.arange(flat.shape[1])[:, None], np.ones((flat.shape[1], 1)),
                                np.arange(flat.shape[1]), "identity").fields(flat)
            lab = None if labels is None else labels.reshape(-1)
        else:
            data = interp.fields(flat)
            lab = None if labels is None else interp.labels(labels)
        extra = {"source": np.array(str(path.resolve())), "step": np.array(t), "stamp": _stamp(path),
                 "sampling": np.array(sampling.name)}
        if interp is None:
            extra.update(lat=f.lat.astype(np.float64), lon=f.lon.astype(np.float64))
        write_mesh_npz(o, data, lab, **extra)
    return outs


def resample_folder(src: str | os.PathLike, sampling: Sampling | str, out_dir: str | os.PathLike,
                    require_labels: bool = True, progress: bool = True) -> list[Path]:
    """:func:`resample_file` for every ``*.nc`` of ``src`` (sorted), with a progress bar."""
    from tqdm import tqdm

    src = Path(src)
    files = netcdf_files(src)
    if not files:
        raise InputError(f"{BENCH}: {src} holds no netCDF files (*.nc); {HINT}")
    sampling = parse_sampling(sampling) if isinstance(sampling, str) else sampling
    outs: list[Path] = []
    before = {o.name: o.stat().st_mtime_ns for o in Path(out_dir).glob("*-mesh.npz")} if Path(out_dir).is_dir() else {}
    for p in tqdm(files, desc=f"resample -> {sampling.name}", unit="file", disable=not progress, leave=False):
        outs += resample_file(p, sampling, out_dir, require_labels)
    first = open_cam5(files[0])
    grid = (f"lat/lon {len(first.lat)}x{len(first.lon)}" if first.grid == "latlon"
            else f"{len(first.lat)} ncol columns")
    made = sum(1 for o in outs if before.get(o.name) != o.stat().st_mtime_ns)
    how = ("kept on the files' own points" if sampling.kind == "native" else
           "fields bilinear (lat/lon) or inverse-distance (columns), labels nearest neighbour")
    say_once(("resampled", str(src), sampling.name, made),
             f"{BENCH}: {len(files)} netCDF file(s) of {src} (the first on {grid}) onto {sampling.name} ({how}): "
             + (f"{made} sample(s) resampled into {out_dir}" if made else f"reused from {out_dir}"))
    names = [o.name for o in outs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"{BENCH}: {src}: several steps map to the same sample name {sorted(dup)[0]} "
                         f"(same date and run in two files)")
    return outs


def netcdf_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.nc") if p.is_file() and not p.name.startswith("."))


def netcdf_splits(src: Path, outs: Sequence[Path]) -> dict[str, list[str]]:
    """Splits of the samples ``outs`` resampled from the netCDF folder ``src``: its split lists
    when it has them (entries name either sample npz files or netCDF files, whose steps all follow
    their file), else :func:`default_splits` of the sample names."""
    names = [Path(o).name for o in outs]
    lists = read_split_lists([Path(src)])
    if lists is None:
        return default_splits(names)
    sources = {n: nc.name for nc in netcdf_files(Path(src)) for n in step_names(open_cam5(nc))}
    return {s: sorted(n for n in names if n in set(v) or sources.get(n) in set(v)) for s, v in lists.items()}
