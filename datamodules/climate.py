"""CAM5 climate event segmentation (tropical cyclones, atmospheric rivers, background) on the sphere.

Paper: Defferrard, Milani, Gusset, Perraudin, ICLR 2020, §"Climate event segmentation" (after
Mudigonda et al. 2017 and Jiang et al., UGSCNN, ICLR 2019); ClimateNet (Kashinath et al., GMD
14:107, 2021). Data format, split and normalisation: maxjiang93/ugscnn
``experiments/exp4_sphere_climate/`` and deepsphere/deepsphere-tf1 ``Experiments/Climate/``.

Two published forms are read from ``--data-dir``:

**UGSCNN preprocessed level-5 files** (what the ICLR table used): ``data_5_all/`` (or the folder
itself) holding ``data-YYYY-MM-DD-HH-<run>-mesh.npz``, each with

=========  ===================  =================================================================
key        shape / dtype        meaning
=========  ===================  =================================================================
``data``   (16, 10242) float    the 16 CAM5 fields (:data:`VARIABLES` order) on the level-5
                                icosahedron (nested vertex order, :func:`~models.deepsphere.graph.icosahedral_vectors`)
``labels`` (3, 10242) one-hot   class per vertex, order 0 BG, 1 TC, 2 AR (argmax over axis 0)
=========  ===================  =================================================================

and the split lists ``train_split.txt`` / ``val_split.txt`` / ``test_split.txt`` (one file name a
line, in the npz folder or its parent; UGSCNN ``partition.py``). Every file is validated when it is
read (:func:`read_mesh_npz`: keys, shapes, dtypes, NaN/inf, one-hot), with an
:class:`~datamodules._common.InputError` naming the file and the field; ``prepare_data`` checks that
every listed file exists.

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

Resampling onto the model's sampling (:func:`parse_sampling`: ``ico:L``, ``healpix:NSIDE``
(NEST), ``equiangular:B``, or ``native`` for point-set files) is done once per file and sampling
and cached to disk as the UGSCNN npz layout (:func:`resample_file`, written atomically, with a
progress bar); the datamodule then reads the cache through :func:`read_mesh_npz`. Interpolation
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

Per-channel normalisation: ``(x − mean) / std`` with the published UGSCNN values
(:data:`MEAN`, :data:`STD`), for every form and sampling.

Splits: the split lists when they exist; otherwise 70 / 10 / 20 of the sorted sample names after
a seed-0 shuffle (``numpy.random.default_rng(0).permutation``; UGSCNN's ``partition.py`` ratios —
the official lists are what reproduce its exact split).

Stand-in (:class:`StandInClimate`, :func:`write_stand_in`, in :mod:`datamodules.climate_standin`):
ClimateNet-style netCDF files with background weather and threshold-rule labels, read back by the
same reader and resampler (see :func:`stand_in_description`).

Command line::

    python -m datamodules.climate resample --src DIR --sampling ico:5 --out DIR
    python -m datamodules.climate standin --out DIR [--files 40 --seed 0]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from scipy.spatial import cKDTree
from torch.utils.data import DataLoader, Dataset

from datamodules._common import (InputError, atomic_write_text, ensure_stand_in, eval_batch, eval_sampler,
                                 per_rank_batch)
from models.deepsphere.sampling import Sampling

BENCH = "climate"
#: the 16 CAM5 fields, in the channel order of the UGSCNN npz files (inferred from
#: the magnitudes of the published means below and the variable order of andregraubner/ClimateNet)
VARIABLES = ("TMQ", "U850", "V850", "UBOT", "VBOT", "QREFHT", "PS", "PSL", "T200", "T500", "PRECT",
             "TS", "TREFHT", "Z1000", "Z200", "ZBOT")
LABEL_VAR = "LABELS"
CLASSES = ("BG", "TC", "AR")  # 0, 1, 2 (deepsphere-pytorch logs ap[1] as TC, ap[2] as AR)
#: per-channel mean of the UGSCNN level-5 data: maxjiang93/ugscnn exp4_sphere_climate loader.py
#: (= deepsphere-tf1 Experiments/Climate/ClimateDataLoader.py)
MEAN = np.array([26.160023, 0.98314494, 0.116573125, -0.45998842, 0.1930554, 0.010749293, 98356.03,
                 100982.02, 216.13145, 258.9456, 3.765611e-08, 288.82578, 288.03925, 342.4827,
                 12031.449, 63.435772], dtype=np.float64)
#: per-channel std, same source (UGSCNN loader.py; deepsphere-tf1 ClimateDataLoader)
STD = np.array([17.04294, 8.164175, 5.6868863, 6.4967732, 5.4465833, 0.006383436, 7778.5957, 3846.1863,
                9.791707, 14.35133, 1.8771327e-07, 19.866386, 19.094095, 624.22406, 679.5602, 4.2283397],
               dtype=np.float64)
#: published class frequencies BG / TC / AR ([ICLR] §climate)
PUBLISHED_FREQUENCIES = (0.977, 0.001, 0.022)
#: published balanced class weights BG / TC, AR: deepsphere-tf1 weighted run, sklearn
#: ``compute_class_weight('balanced')`` on the UGSCNN training set ([ICLR] appendix)
PUBLISHED_CLASS_WEIGHTS = (0.34130685, 318.47388343, 14.93759951)
N_ICO5 = 10242
NPZ_PATTERN = re.compile(r"^data-\d{4}-\d{2}-\d{2}-\d{2}-.+-mesh\.npz$")
SPLITS = ("train", "val", "test")
SPLIT_FILES = {s: f"{s}_split.txt" for s in SPLITS}
SPLIT_RATIOS = (0.7, 0.1, 0.2)
MISSING_ABS = 1e30  # CESM/CAM fill convention (1e36): |x| >= this is missing
#: the units of the 16 fields in CAM5 history files and ClimateNet (the units :data:`MEAN` /
#: :data:`STD` are in; CESM CAM5 output field list, ClimateNet GMD 14:107 Table 1)
UNITS = {"TMQ": "kg m-2", "U850": "m/s", "V850": "m/s", "UBOT": "m/s", "VBOT": "m/s", "QREFHT": "kg/kg",
         "PS": "Pa", "PSL": "Pa", "T200": "K", "T500": "K", "PRECT": "m/s", "TS": "K", "TREFHT": "K",
         "Z1000": "m", "Z200": "m", "ZBOT": "m"}
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
#: a channel whose median, normalised by :data:`MEAN` / :data:`STD`, lies further than this many
#: published standard deviations from 0 is reported as implausible (wrong units under the right
#: name: PS in hPa gives −12.5, QREFHT in g/kg +1600, TS in °C −14, Z200 in dam −16; the medians of
#: real CAM5 fields lie within ±1.5)
PLAUSIBLE_MEDIAN = 8.0
HINT = ("pass --data-dir <folder with data_5_all/*-mesh.npz (UGSCNN) or ClimateNet *.nc files> "
        "(see datamodules/climate.py), or --stand-in to generate the offline stand-in")


# --------------------------------------------------------------------------- UGSCNN npz files
def read_mesh_npz(path: str | os.PathLike, n_vertices: int | None = N_ICO5,
                  require_labels: bool = True, plausible: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """One UGSCNN-layout file: ``data (16, V) float32`` (raw units) and the class per vertex
    ``(V,) int64`` (``None`` when the file has no ``labels`` and ``require_labels`` is False).

    Validation (an :class:`InputError` naming the file and the field): keys ``data`` and
    ``labels``; ``data`` floating point, shape ``(16, n_vertices)`` (``n_vertices=None``: any),
    finite; ``labels`` numeric, shape ``(3, V)``, every entry 0 or 1 and exactly one 1 per
    vertex. Read with ``np.load(allow_pickle=False)``. ``plausible``: the ranges of a file not
    written by :func:`resample_file` are checked (:func:`check_plausible`; the datamodule checks
    the first file of a folder, not every sample served).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "data" not in keys:
                raise InputError(f"{BENCH}: {path}: no field 'data' (fields: {', '.join(sorted(keys)) or 'none'})")
            data = z["data"]
            labels = z["labels"] if "labels" in keys else None
            resampled = "source" in keys  # written by resample_file from a netCDF file checked there
    except InputError:
        raise
    except Exception as e:  # BadZipFile, OSError, EOFError, ValueError (object arrays need pickle)
        raise InputError(f"{BENCH}: {path}: unreadable npz ({type(e).__name__}: {e})") from None
    if data.dtype.kind != "f":
        raise InputError(f"{BENCH}: {path}: field 'data' has dtype {data.dtype}, expected floating point")
    V = data.shape[-1] if n_vertices is None and data.ndim == 2 else n_vertices
    if data.shape != (len(VARIABLES), V):
        raise InputError(f"{BENCH}: {path}: field 'data' has shape {data.shape}, expected "
                         f"({len(VARIABLES)}, {V}) (16 fields x vertices)")
    bad = ~np.isfinite(data)
    if bad.any():
        ch = int(np.nonzero(bad.any(1))[0][0])
        raise InputError(f"{BENCH}: {path}: field 'data' has {int(bad.sum())} NaN/inf value(s) "
                         f"(first in channel {ch}, {VARIABLES[ch]})")
    if plausible and not resampled:
        check_plausible(path, data)
    if labels is None:
        if require_labels:
            raise InputError(f"{BENCH}: {path}: no field 'labels' (fields: {', '.join(sorted(keys))})")
        return data.astype(np.float32, copy=False), None
    if labels.dtype.kind not in "biuf":
        raise InputError(f"{BENCH}: {path}: field 'labels' has dtype {labels.dtype}, expected numbers (one-hot)")
    if labels.shape != (len(CLASSES), V):
        raise InputError(f"{BENCH}: {path}: field 'labels' has shape {labels.shape}, expected "
                         f"({len(CLASSES)}, {V}) (one-hot BG, TC, AR x vertices)")
    if not np.all((labels == 0) | (labels == 1)):
        raise InputError(f"{BENCH}: {path}: field 'labels' is not one-hot: "
                         f"{int(np.count_nonzero((labels != 0) & (labels != 1)))} entries are neither 0 nor 1")
    s = labels.sum(0)
    if np.any(s != 1):
        raise InputError(f"{BENCH}: {path}: field 'labels' is not one-hot: {int(np.count_nonzero(s != 1))} "
                         f"vertices have {int(s[s != 1][0])} classes set, expected exactly 1")
    return data.astype(np.float32, copy=False), labels.argmax(0).astype(np.int64)


def write_mesh_npz(path: str | os.PathLike, data: np.ndarray, labels: np.ndarray | None,
                   **extra) -> Path:
    """Write the UGSCNN layout atomically: ``data`` float32 ``(16, V)``, ``labels`` one-hot
    uint8 ``(3, V)`` from class indices ``(V,)`` (omitted when None), plus ``extra`` arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"data": np.asarray(data, dtype=np.float32), **{k: np.asarray(v) for k, v in extra.items()}}
    if labels is not None:
        arrays["labels"] = (np.asarray(labels)[None, :] == np.arange(len(CLASSES))[:, None]).astype(np.uint8)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def normalize(data: np.ndarray) -> np.ndarray:
    """``(x − mean) / std`` per channel with the published :data:`MEAN` / :data:`STD` (float32)."""
    return ((data - MEAN[:, None]) / STD[:, None]).astype(np.float32)


# --------------------------------------------------------------------------- units and ranges
_ANNOUNCED: set[tuple] = set()


def _say_once(key: tuple, line: str) -> None:
    """One line on stderr per ``key`` in this process (a folder of files in the same units says it once)."""
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        print(line, file=sys.stderr)


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
        _say_once(("units", str(path.parent), tuple(converted)),
                  f"{BENCH}: {path} (and every file of {path.parent} in these units): converted {what}")
    if unitless:
        _say_once(("unitless", str(path.parent), tuple(unitless)),
                  f"{BENCH}: {path} (and every file of {path.parent} like it): no units attribute on "
                  f"{', '.join(unitless)}; taken as the published {', '.join(sorted({UNITS[v] for v in unitless}))}")
    return out


def _conversion_text(conv: tuple[float, float]) -> str:
    f, o = conv
    return f"x{f:.6g}" + (f" + {o:g}" if o else "")


def check_plausible(path: Path, data: np.ndarray, where: str = "") -> list[str]:
    """Channels of raw fields ``(16, N)`` (NaN = missing) whose median lies more than
    :data:`PLAUSIBLE_MEDIAN` published standard deviations from the published mean, each said in
    one warning line (once per folder and channel set); returns their names. A field in other
    units than its ``units`` attribute says (hPa marked Pa) is what this catches."""
    med = np.nanmedian(data.reshape(len(VARIABLES), -1), axis=1)
    z = (med - MEAN) / STD
    bad = [i for i in range(len(VARIABLES)) if not abs(z[i]) <= PLAUSIBLE_MEDIAN]
    if bad:
        what = ", ".join(f"{VARIABLES[i]} median {med[i]:.4g} {UNITS[VARIABLES[i]]} ({z[i]:+.3g} std)" for i in bad)
        _say_once(("range", str(path.parent), tuple(bad)),
                  f"{BENCH}: warning: {path}{where}: implausible after normalisation (published mean "
                  f"+- {PLAUSIBLE_MEDIAN:g} std): {what}; are the units right?")
    return [VARIABLES[i] for i in bad]


# --------------------------------------------------------------------------- samplings
#: the samplings a climate model runs on (``native``: each file's own points, kept as they are)
SAMPLINGS = ("ico", "healpix", "equiangular", "native")


def parse_sampling(spec: str | Sampling) -> Sampling:
    """:meth:`Sampling.parse <models.deepsphere.sampling.Sampling.parse>` of ``ico:L``,
    ``healpix:NSIDE``, ``equiangular:B`` or ``native``; a bad value is this benchmark's
    :class:`InputError`.

    >>> parse_sampling("healpix:32").name, parse_sampling("ico:5").vertices().shape
    ('healpix:32', (10242, 3))
    """
    try:
        return Sampling.parse(spec, SAMPLINGS)
    except ValueError as e:
        raise InputError(f"{BENCH}: {e}") from None


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
    _say_once(("resampled", str(src), sampling.name, made),
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


# --------------------------------------------------------------------------- splits
def default_splits(names: Sequence[str], ratios: Sequence[float] = SPLIT_RATIOS, seed: int = 0) -> dict[str, list[str]]:
    """70 / 10 / 20 of the sorted ``names`` after a ``default_rng(seed)`` permutation.

    >>> {k: len(v) for k, v in default_splits([f"f{i}" for i in range(10)]).items()}
    {'train': 7, 'val': 1, 'test': 2}
    """
    names = sorted(names)
    perm = np.random.default_rng(seed).permutation(len(names))
    n_tr = int(round(ratios[0] * len(names)))
    n_va = int(round(ratios[1] * len(names)))
    order = [names[i] for i in perm]
    return {"train": sorted(order[:n_tr]), "val": sorted(order[n_tr:n_tr + n_va]),
            "test": sorted(order[n_tr + n_va:])}


def read_split_lists(folders: Sequence[Path]) -> dict[str, list[str]] | None:
    """The split lists from the first folder holding ``train_split.txt`` (then all three are
    required); entries are file names (a directory part is dropped); None when there are none."""
    for d in folders:
        if (d / SPLIT_FILES["train"]).is_file():
            out = {}
            for s, fn in SPLIT_FILES.items():
                p = d / fn
                if not p.is_file():
                    raise InputError(f"{BENCH}: {d} has {SPLIT_FILES['train']} but not {fn}")
                out[s] = [Path(line.strip()).name for line in p.read_text().splitlines() if line.strip()]
            return out
    return None


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


def write_split_lists(folder: Path, splits: dict[str, list[str]]) -> None:
    for s, fn in SPLIT_FILES.items():
        atomic_write_text(Path(folder) / fn, "".join(f"{n}\n" for n in splits[s]))


# --------------------------------------------------------------------------- stand-in
# the generator lives in datamodules/climate_standin.py; its public names stay importable from here
from datamodules.climate_standin import (StandInClimate, stand_in_description, stand_in_map,  # noqa: E402
                                         write_stand_in)
from datamodules.climate_standin import _ATTRS, _angular_dist  # noqa: E402,F401  (former names of this module)


# --------------------------------------------------------------------------- dataset + datamodule
class MeshFiles(Dataset):
    """``(x (16, V) float32 normalised, y (V,) int64)`` from UGSCNN-layout files, each validated
    when read (:func:`read_mesh_npz`); files are opened per item (no handle crosses workers)."""

    def __init__(self, files: Sequence[Path], n_vertices: int | None):
        self.files, self.n_vertices = list(files), n_vertices

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        data, labels = read_mesh_npz(self.files[i], self.n_vertices, plausible=False)
        return torch.from_numpy(normalize(data)), torch.from_numpy(labels)


class ClimateDataModule(pl.LightningDataModule):
    """CAM5 maps on the chosen sampling as ``(B, 16, V)`` float32 / ``(B, V)`` int64 batches.

    Batches (every loader): ``(x, y)`` — ``x`` float32 ``(B, 16, V)``, the 16 normalised CAM5
    fields (:data:`VARIABLES` order) on the V vertices of ``sampling``; ``y`` int64 ``(B, V)``, the
    class per vertex (0 background, 1 tropical cyclone, 2 atmospheric river). The model takes
    ``x`` as it is and returns ``(B, 3, V)`` logits (:meth:`model_batch`).

    ``data_dir``: UGSCNN-layout npz folder (``sampling`` must be the files': ``ico:5`` for
    UGSCNN's, whatever ``resample`` wrote otherwise) or a folder of netCDF
    files, resampled once into ``cache_dir`` (default ``<data_dir>-resampled/<sampling>``) by
    :meth:`prepare_data`. ``stand_in``: write the offline stand-in (:class:`StandInClimate`) into
    ``data_dir`` first (reused while its manifest matches).

    >>> ClimateDataModule("data", sampling="healpix:32").sampling.name
    'healpix:32'
    """

    def __init__(self, data_dir: str | os.PathLike, stand_in: bool = False, sampling: str = "ico:5",
                 batch_size: int = 64, test_batch_size: int | None = None, num_workers: int = 0,
                 stand_in_maps: StandInClimate = StandInClimate(), cache_dir: str | os.PathLike | None = None,
                 progress: bool = True):
        super().__init__()
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.sampling = parse_sampling(sampling)
        self.batch_size = int(batch_size)
        self.test_batch_size = int(test_batch_size or batch_size)
        self.num_workers, self.stand_in_maps, self.progress = int(num_workers), stand_in_maps, bool(progress)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else \
            self.data_dir.with_name(f"{self.data_dir.name}-resampled") / self.sampling.tag
        self.files: dict[str, list[Path]] | None = None
        self.form: str | None = None

    @property
    def num_vertices(self) -> int | None:
        return None if self.sampling.kind == "native" else self.sampling.num_vertices

    def vectors(self) -> np.ndarray:
        """Unit vectors ``(V, 3)`` of the samples' vertices: the sampling's, or for ``native`` the
        columns of the (resampled) files, e.g. for ``DeepSphereUNet("points", coords=...)``."""
        if self.sampling.kind != "native":
            return self.sampling.vertices()
        from models.deepsphere.graph import lonlat_vectors

        if self.files is None:
            self.files = self._resolve()
        with np.load(self.files["train"][0], allow_pickle=False) as z:
            return lonlat_vectors(z["lon"], z["lat"])

    def _npz_folder(self) -> Path | None:
        for d in (self.data_dir / "data_5_all", self.data_dir):
            if d.is_dir() and any(NPZ_PATTERN.match(p.name) for p in d.iterdir()):
                return d
        return None

    def prepare_data(self) -> None:
        """Write the stand-in when asked, resample netCDF files into the cache (progress bar), and
        resolve the split file lists (every listed file must exist)."""
        if self.stand_in:
            m = self.stand_in_maps
            ensure_stand_in(self.data_dir, BENCH, asdict(m), lambda d: write_stand_in(d, m),
                            stand_in_description(m))
        self.files = self._resolve()

    def _resolve(self) -> dict[str, list[Path]]:
        if not self.data_dir.is_dir():
            raise InputError(f"{BENCH}: data directory {self.data_dir} does not exist; {HINT}")
        npz_dir = self._npz_folder()
        if npz_dir is not None:
            self.form = "npz"
            folder, names = npz_dir, sorted(p.name for p in npz_dir.iterdir() if NPZ_PATTERN.match(p.name))
            self._check_npz_sampling(folder / names[0])
            read_mesh_npz(folder / names[0], self.num_vertices, require_labels=False)  # units: a range check
            lists = read_split_lists([npz_dir, npz_dir.parent])
        else:
            if not netcdf_files(self.data_dir):
                raise InputError(f"{BENCH}: {self.data_dir} holds neither UGSCNN *-mesh.npz files nor netCDF "
                                 f"files; {HINT}")
            self.form = "netcdf"
            if self.sampling.kind == "native":
                cols = {len(open_cam5(nc).lat) for nc in netcdf_files(self.data_dir)}
                if len(cols) > 1:
                    raise InputError(f"{BENCH}: {self.data_dir}: sampling 'native' batches the files' own columns, "
                                     f"but they differ in size ({sorted(cols)}); resample onto a common sampling")
            outs = resample_folder(self.data_dir, self.sampling, self.cache_dir, progress=self.progress)
            folder, names = self.cache_dir, [o.name for o in outs]
            lists = netcdf_splits(self.data_dir, outs)
        splits = lists if lists is not None else default_splits(names)
        have = set(names)
        out = {}
        for s in SPLITS:
            missing = [n for n in splits[s] if n not in have]
            if missing:
                raise InputError(f"{BENCH}: {SPLIT_FILES[s]} lists {len(missing)} file(s) not in {folder}, e.g. "
                                 f"{missing[0]}")
            if not splits[s]:
                raise InputError(f"{BENCH}: the {s} split of {folder} is empty ({len(names)} samples in all)")
            out[s] = [folder / n for n in splits[s]]
        return out

    def _check_npz_sampling(self, first: Path) -> None:
        """The npz files must be on the configured sampling (UGSCNN's are ico:5; files written by
        :func:`resample_file` carry their sampling's name)."""
        try:
            with np.load(first, allow_pickle=False) as z:
                tag = str(z["sampling"]) if "sampling" in z.files else None
                shape = z["data"].shape if "data" in z.files else None
        except Exception:
            return  # unreadable: read_mesh_npz reports it with the file name when it is read
        V = self.num_vertices
        if (tag is not None and tag != self.sampling.name) or (tag is None and shape is not None
                                                              and V is not None and shape[-1] != V):
            raise InputError(f"{BENCH}: {first.parent} holds npz files on {tag or f'{shape[-1]} vertices'}, "
                             f"but the sampling is {self.sampling.name} ({V} vertices); set the sampling to "
                             f"the files' (UGSCNN: ico:5), or resample the netCDF files onto it")

    def setup(self, stage: str | None = None) -> None:
        if self.files is None:
            self.files = self._resolve()
        self.datasets = {s: MeshFiles(f, self.num_vertices) for s, f in self.files.items()}

    def class_weights(self) -> list[float]:
        """sklearn ``compute_class_weight('balanced')`` on the training labels (the ICLR
        weighted loss; published [0.3413, 318.47, 14.94] for BG, TC, AR on the UGSCNN training set)."""
        from sklearn.utils.class_weight import compute_class_weight

        self.setup()
        counts = np.zeros(len(CLASSES), np.int64)
        from tqdm import tqdm

        for p in tqdm(self.files["train"], desc="class counts", unit="file", leave=False, disable=not self.progress):
            counts += np.bincount(read_mesh_npz(p, self.num_vertices)[1], minlength=len(CLASSES))
        if (counts == 0).any():
            raise InputError(f"{BENCH}: no training pixel of class {CLASSES[int(np.argmin(counts))]}; "
                             f"balanced class weights are undefined")
        y = np.repeat(np.arange(len(CLASSES)), counts)
        return compute_class_weight("balanced", classes=np.arange(len(CLASSES)), y=y).tolist()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.datasets[split]
        if shuffle:  # batch_size is the global batch: each of W DDP processes loads batch_size / W
            return DataLoader(ds, batch_size=per_rank_batch(self, self.batch_size, "data.batch_size"), shuffle=True,
                              num_workers=self.num_workers)
        return DataLoader(ds, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, ds, f"climate {split} set"), num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


# --------------------------------------------------------------------------- command line
def _cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datamodules.climate", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("resample", help="netCDF folder -> UGSCNN npz layout (+ split lists)")
    r.add_argument("--src", required=True, help="folder of CAM5 / ClimateNet *.nc files")
    r.add_argument("--sampling", default="ico:5", help="ico:L | healpix:NSIDE | equiangular:B | native")
    r.add_argument("--out", required=True, help="output folder (npz files and *_split.txt)")
    r.add_argument("--allow-unlabelled", action="store_true", help="files without LABELS are written without labels")
    s = sub.add_parser("standin", help="write the offline stand-in netCDF files into a folder")
    s.add_argument("--out", required=True)
    s.add_argument("--files", type=int, default=StandInClimate.files)
    s.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        if args.cmd == "resample":
            outs = resample_folder(args.src, args.sampling, args.out, require_labels=not args.allow_unlabelled)
            splits = netcdf_splits(Path(args.src), outs)
            write_split_lists(Path(args.out), splits)
            print(f"wrote {len(outs)} files ({args.sampling}) and {', '.join(SPLIT_FILES.values())} to {args.out} "
                  f"({', '.join(f'{k} {len(v)}' for k, v in splits.items())})")
        else:
            m = StandInClimate(files=args.files, seed=args.seed)
            wrote = ensure_stand_in(args.out, BENCH, asdict(m), lambda d: write_stand_in(d, m), stand_in_description(m))
            print(f"{'wrote' if wrote else 'kept'} the stand-in in {args.out}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
