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

**ClimateNet / raw CAM5 netCDF** (:mod:`datamodules.cam5`): one file per time step (or a ``time``
dimension, one sample per step) on a regular lat/lon grid or CAM-SE columns, with the 16
:data:`VARIABLES` and ``LABELS``; resampled once per file and sampling onto the model's sampling
(:func:`parse_sampling`: ``ico:L``, ``healpix:NSIDE`` (NEST), ``equiangular:B``, or ``native`` for
point-set files) — fields bilinear or inverse-distance, labels nearest neighbour — and cached to
disk in the UGSCNN npz layout, which the datamodule then reads through :func:`read_mesh_npz`.

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

import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules._common import (InputError, atomic_savez, atomic_write_text, command_line, ensure_stand_in, eval_batch,
                                 eval_sampler, per_rank_batch, subcommands)
from datamodules.climate_config import BENCH, CLASSES, SAMPLINGS, parse_sampling  # noqa: F401 - re-exported
from models.deepsphere.sampling import Sampling
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


# --------------------------------------------------------------------------- stand-in
# the generator lives in datamodules/climate_standin.py; its public names stay importable from here
from datamodules.climate_standin import (StandInClimate, stand_in_description, stand_in_map,  # noqa: E402
                                         write_stand_in)


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
            from datamodules.cam5 import netcdf_files, netcdf_splits, open_cam5, resample_folder

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

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole split in memory, as the networks see it: ``x`` (N, 16, V) float32 normalised,
        ``y`` (N, V) int64 (for baselines fitted outside a Trainer)."""
        self.setup()
        ds = self.datasets[split]
        items = [ds[i] for i in range(len(ds))]
        return np.stack([x.numpy() for x, _ in items]), np.stack([y.numpy() for _, y in items])

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
@command_line
def _cli(argv: list[str] | None = None) -> None:
    p, sub = subcommands("datamodules.climate", __doc__)
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
    if args.cmd == "resample":
        from datamodules.cam5 import netcdf_splits, resample_folder

        outs = resample_folder(args.src, args.sampling, args.out, require_labels=not args.allow_unlabelled)
        splits = netcdf_splits(Path(args.src), outs)
        write_split_lists(Path(args.out), splits)
        print(f"wrote {len(outs)} files ({args.sampling}) and {', '.join(SPLIT_FILES.values())} to {args.out} "
              f"({', '.join(f'{k} {len(v)}' for k, v in splits.items())})")
    else:
        m = StandInClimate(files=args.files, seed=args.seed)
        wrote = ensure_stand_in(args.out, BENCH, asdict(m), lambda d: write_stand_in(d, m), stand_in_description(m))
        print(f"{'wrote' if wrote else 'kept'} the stand-in in {args.out}")


if __name__ == "__main__":
    sys.exit(_cli())
