"""The UGSCNN files of the CAM5 climate data, without torch: the 16 fields, their published
normalisation and units, the level-5 mesh npz layout (:func:`read_mesh_npz` validates each file,
:func:`write_mesh_npz` writes one), plausibility of units, and the split lists.

Sources: maxjiang93/ugscnn ``experiments/exp4_sphere_climate/`` (``loader.py``, ``partition.py``)
and deepsphere/deepsphere-tf1 ``Experiments/Climate/``. Read by the datamodule
(:mod:`datamodules.climate`), the netCDF reader and resampler (:mod:`datamodules.cam5`) and the
stand-in generator (:mod:`datamodules.climate_standin`).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from datamodules._common import InputError, atomic_savez, atomic_write_text
from datamodules.climate_config import BENCH, CLASSES

#: the 16 CAM5 fields, in the channel order of the UGSCNN npz files (inferred from
#: the magnitudes of the published means below and the variable order of andregraubner/ClimateNet)
VARIABLES = ("TMQ", "U850", "V850", "UBOT", "VBOT", "QREFHT", "PS", "PSL", "T200", "T500", "PRECT",
             "TS", "TREFHT", "Z1000", "Z200", "ZBOT")
LABEL_VAR = "LABELS"
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
#: the units of the 16 fields in CAM5 history files and ClimateNet (the units :data:`MEAN` /
#: :data:`STD` are in; CESM CAM5 output field list, ClimateNet GMD 14:107 Table 1)
UNITS = {"TMQ": "kg m-2", "U850": "m/s", "V850": "m/s", "UBOT": "m/s", "VBOT": "m/s", "QREFHT": "kg/kg",
         "PS": "Pa", "PSL": "Pa", "T200": "K", "T500": "K", "PRECT": "m/s", "TS": "K", "TREFHT": "K",
         "Z1000": "m", "Z200": "m", "ZBOT": "m"}
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
    arrays = {"data": np.asarray(data, dtype=np.float32), **{k: np.asarray(v) for k, v in extra.items()}}
    if labels is not None:
        arrays["labels"] = (np.asarray(labels)[None, :] == np.arange(len(CLASSES))[:, None]).astype(np.uint8)
    return atomic_savez(path, **arrays)


def normalize(data: np.ndarray) -> np.ndarray:
    """``(x − mean) / std`` per channel with the published :data:`MEAN` / :data:`STD` (float32)."""
    return ((data - MEAN[:, None]) / STD[:, None]).astype(np.float32)


# --------------------------------------------------------------------------- units and ranges
_ANNOUNCED: set[tuple] = set()


def say_once(key: tuple, line: str) -> None:
    """One line on stderr per ``key`` in this process (a folder of files in the same units says it once)."""
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        print(line, file=sys.stderr)


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
        say_once(("range", str(path.parent), tuple(bad)),
                 f"{BENCH}: warning: {path}{where}: implausible after normalisation (published mean "
                 f"+- {PLAUSIBLE_MEDIAN:g} std): {what}; are the units right?")
    return [VARIABLES[i] for i in bad]


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


def write_split_lists(folder: Path, splits: dict[str, list[str]]) -> None:
    for s, fn in SPLIT_FILES.items():
        atomic_write_text(Path(folder) / fn, "".join(f"{n}\n" for n in splits[s]))
