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
line, in the npz folder or its parent; UGSCNN ``partition.py``); this layout, torch-free, is
:mod:`datamodules.climate_files`. Every file is validated when it is
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
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules._common import (InputError, command_line, ensure_stand_in, eval_batch, eval_sampler, per_rank_batch,
                                 subcommands)
from datamodules.climate_config import BENCH, CLASSES, SAMPLINGS, parse_sampling  # noqa: F401 - re-exported
# the file layer (datamodules/climate_files.py) and the stand-in (datamodules/climate_standin.py):
# their public names stay importable from here
from datamodules.climate_files import (  # noqa: F401 - re-exported
    VARIABLES, LABEL_VAR, MEAN, STD, PUBLISHED_FREQUENCIES, PUBLISHED_CLASS_WEIGHTS, N_ICO5, NPZ_PATTERN,
    SPLITS, SPLIT_FILES, SPLIT_RATIOS, UNITS, PLAUSIBLE_MEDIAN, HINT, read_mesh_npz, write_mesh_npz,
    normalize, say_once, check_plausible, default_splits, read_split_lists, write_split_lists)
from datamodules.climate_standin import StandInClimate, stand_in_description, stand_in_map, write_stand_in  # noqa: F401


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
