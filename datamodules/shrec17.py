"""SHREC'17 3D shape classification and retrieval data (ShapeNet Core55, "perturbed" split).

Papers: Cohen et al., Spherical CNNs (ICLR 2018) §5.3; Defferrard et al., DeepSphere (ICLR 2020)
"3D objects recognition"; Weiler et al., 3D Steerable CNNs (NeurIPS 2018) §5.3. Reference code:
jonas-koehler/s2cnn ``examples/shrec17/`` (rays, channels, normalisation) and mariogeiger/se3cnn
``examples/shrec17/`` (voxels); metrics: the official SHREC'17 evaluator (``Evaluator.js``,
``Metrics.js``).

The pieces, one concern each: :mod:`datamodules.shrec17_layout` (the layouts and csv files read
from ``data_dir``), :mod:`datamodules.meshes` (mesh files, clean-up, normalisation, augmentation
poses), :mod:`datamodules.shrec17_render` (the 6-channel spherical input by ray casting),
:mod:`datamodules.voxelize` (the voxel input), :mod:`datamodules.shrec17_cache` (every mesh copy
computed once, stored as ``.npz``) and :mod:`datamodules.shrec17_standin` (the stand-in data);
this module is the LightningDataModule over them and the command line.

**Layout read from** ``data_dir`` (the SHREC'17 download; :mod:`datamodules.shrec17_layout`)::

    train_perturbed/<id>.obj   val_perturbed/<id>.obj   test_perturbed/<id>.obj
    train.csv  val.csv        header id,synsetId,subSynsetId,modelId,split
    test.csv | all.csv | all.csv.gz   labels of the test split (only needed to score it)

A row whose mesh file is missing is reported on stderr and skipped, and so is a broken mesh (empty
or unreadable file, no faces, NaN/inf vertices, only degenerate faces, zero extent): one line each,
naming the file and the reason. A split with nothing usable left is an
:class:`~datamodules._common.InputError`. A folder-per-class layout (``<data_dir>/<class>/<name>.obj``,
e.g. ModelNet) is read when ``data_dir`` has neither ``*_perturbed/`` folders nor csv files.

**Preprocessing**: every mesh is cleaned and normalised as s2cnn's ``ToMesh``, then every
augmentation copy ``c`` of model ``id`` gets its pose from ``torch_generator(seed, id, c)``
(:mod:`datamodules.meshes`); the input is ``sphere`` (6 ray-cast channels on ``sampling``,
:mod:`datamodules.shrec17_render`) or ``voxel`` (:mod:`datamodules.voxelize`).

**Cache** (:mod:`datamodules.shrec17_cache`): under ``cache_dir`` (default ``<data_dir>/cache``)
``/<key>/<split>/<id>_<copy>.npz``, ``key`` naming the input and hashing the preprocessing
parameters (:meth:`Shrec17DataModule.cache_key`); ``preprocess_workers`` (default ``num_workers``)
> 0 computes with a multiprocessing pool.
``dm.preprocess_stats`` describes the last preprocessing (a later call of the same instance that
only finds that cache keeps it), for the benchmark's tables: ``meshes``
(mesh copies computed), ``seconds`` (spent computing them), ``meshes_per_s``, ``backend``
(``embree`` / ``numpy`` rays, ``numpy-sat`` voxels), ``cached`` (copies reused), ``from_cache``
(nothing computed), ``skipped`` (missing and broken meshes), ``workers``, ``input``, ``grid``.
Any error while preprocessing one mesh (trimesh, qhull) makes it a broken mesh, never a crash.

**Stand-in** (:mod:`datamodules.shrec17_standin`): procedural shapes of **16 synsets** (real
ShapeNet synset ids) with 2–3 sub-synsets each, some sharing parts across synsets, every model
perturbed (missing parts, strays, stretch, noise, holes) and Haar-rotated, written in the
SHREC'17 layout (``.obj`` and csv files, plus ``test.csv`` and ``all.csv``) and read back by the same reader. With
``stand_in=True`` set ``num_classes=16``.

Batches are ``(x, y, id)``: ``x`` float32 ``(B, V, 6)`` or ``(B, 1, n, n, n)``, ``y`` int64 class
index (``class_names`` order: sorted synsets of the training split), ``id`` int64 model id.

Command line::

    python -m datamodules.shrec17 standin --out DIR [--train 48 --val 12 --test 16 --seed 0]
    python -m datamodules.shrec17 preprocess --data-dir DIR --input sphere --sampling healpix:32
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules._common import (InputError, atomic_write_text, command_line, eval_batch, eval_sampler, per_rank_batch,
                                 subcommands)
from datamodules.shrec17_cache import CACHE_VERSION, fill_cache, recompute
from datamodules.shrec17_layout import (HINT, MAX_NAMED_CLASSES, Item, SplitIndex, index_folders, index_shrec_split,
                                        is_shrec_layout, report, report_once)
from datamodules.shrec17_input import BENCH, NEEDS, check_input, parse_input, parse_sampling  # noqa: F401 - re-exported
from datamodules.shrec17_render import normalize_channels, ray_backend


#: at most this many missing-file rows are named per split (the rest are counted)
MAX_NAMED = 20


# --------------------------------------------------------------------------- dataset
class Shrec17Dataset(Dataset):
    """Cached inputs of one split: item ``k`` is copy ``k % copies`` of mesh ``k // copies``,
    returned as ``(x, y, id)``. A cache file that fails to load is recomputed (and reported)."""

    def __init__(self, folder: Path, items: Sequence[Item], copies: int, class_index: dict[str, int],
                 params: dict, normalize: bool):
        self.folder, self.items, self.copies = Path(folder), list(items), int(copies)
        self.y = [class_index[it.row.synset] for it in self.items]
        self.params, self.normalize = dict(params), bool(normalize)

    def __len__(self) -> int:
        return len(self.items) * self.copies

    def _load(self, path: Path) -> np.ndarray:
        with np.load(path, allow_pickle=False) as z:
            return z["x"]

    def __getitem__(self, k: int):
        it, c = self.items[k // self.copies], k % self.copies
        path = self.folder / f"{it.id}_{c}.npz"
        try:
            x = self._load(path)
        except Exception as e:
            report([f"{BENCH}: cache file {path} is unreadable ({type(e).__name__}); recomputing it"])
            recompute(it, c, path, self.params)
            x = self._load(path)
        if self.params["input"] == "sphere":
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            if self.normalize:
                x = normalize_channels(x)
        else:
            x = torch.from_numpy(x.astype(np.float32) / (8.0 if self.params["voxel_double"] else 1.0))[None]
        return x, self.y[k // self.copies], int(it.id)


# --------------------------------------------------------------------------- datamodule
def _stand_in_classes() -> int:
    from datamodules.shrec17_standin import NUM_CLASSES
    return NUM_CLASSES


class Shrec17DataModule(pl.LightningDataModule):
    """SHREC'17 meshes as spherical images or voxel grids (module docstring), train / val / test.

    Batches (every loader): ``(x, y, ids)`` — ``x`` float32, ``(B, V, 6)`` for ``input="sphere"``
    (the 6 ray-cast channels on the V points of ``sampling``, normalised per channel) or
    ``(B, 1, n, n, n)`` for ``input="voxel"``; ``y`` int64 ``(B,)``, the class index (synsets in
    :attr:`class_names` order); ``ids`` int64 ``(B,)``, the SHREC'17 model id (retrieval output).
    :meth:`model_batch` gives ``(x, y)``.

    ``data_dir``: the SHREC'17 layout or a folder-per-class layout; with ``stand_in`` the offline
    stand-in is written there first (:mod:`datamodules.shrec17_standin`, sizes
    ``stand_in_train/val/test`` models per synset on average, ``stand_in_seed``; 16 synsets, so
    ``num_classes=16``). ``input``: ``"sphere"`` (``sampling``) or ``"voxel"`` (``voxel_size``,
    ``voxel_double``, ``voxel_fit``). ``train_augmentations`` / ``test_augmentations``: copies of
    every training / validation-and-test mesh, each with its own draw (``rotate``, ``translate``,
    ``seed``); all copies are items of the split (the test set holds every copy of every mesh,
    with the same id). ``test_split``: ``"test"`` (needs test labels) or ``"val"``.
    ``max_per_class``: keep at most this many training meshes per class (evenly spaced in csv
    order). ``class_names``: fix the class order (e.g. a trained model's) instead of the sorted
    training synsets. ``preprocess_workers``: processes for filling the cache (default
    ``num_workers``; 0 = serial).

    >>> Shrec17DataModule("data", input="voxel", voxel_size=33).cache_key()[:10]
    'voxel33x2-'
    """

    def __init__(self, data_dir: str | os.PathLike, stand_in: bool = False, num_classes: int | None = 55,
                 input: str = "sphere", sampling: str = "healpix:32", voxel_size: int = 64,
                 train_augmentations: int = 1, test_augmentations: int = 1, rotate: bool = True,
                 translate: float = 0.1, normalize: bool = True, test_split: str = "test",
                 max_per_class: int | None = None, batch_size: int = 32, test_batch_size: int = 32,
                 num_workers: int = 0, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                 stand_in_train: int = 48, stand_in_val: int = 12, stand_in_test: int = 16,
                 stand_in_seed: int = 0, voxel_double: bool = True, voxel_fit: str = "sphere",
                 preprocess_workers: int | None = None, class_names: Sequence[str] | None = None,
                 ray_backend: str = "auto", progress: bool = True):
        super().__init__()
        if input not in ("sphere", "voxel"):
            raise InputError(f"{BENCH}: data.input '{input}' unknown; valid: sphere, voxel")
        if test_split not in ("test", "val"):
            raise InputError(f"{BENCH}: data.test_split '{test_split}' unknown; valid: test, val")
        if voxel_fit not in ("sphere", "box"):
            raise InputError(f"{BENCH}: data.voxel_fit '{voxel_fit}' unknown; valid: sphere, box")
        if ray_backend not in ("auto", "embree", "numpy"):
            raise InputError(f"{BENCH}: data.ray_backend '{ray_backend}' unknown; valid: auto, embree, numpy")
        for name, val in (("train_augmentations", train_augmentations), ("test_augmentations", test_augmentations),
                          ("voxel_size", voxel_size), ("batch_size", batch_size), ("test_batch_size", test_batch_size)):
            if int(val) < 1:
                raise InputError(f"{BENCH}: data.{name} must be a positive integer, got {val}")
        if max_per_class is not None and int(max_per_class) < 1:
            raise InputError(f"{BENCH}: data.max_per_class must be positive or null, got {max_per_class}")
        if not 0 <= float(translate) < 1:
            raise InputError(f"{BENCH}: data.translate must be in [0, 1), got {translate}")
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.input = input
        self.sampling, self.voxel_size = str(sampling), int(voxel_size)
        if input == "sphere":
            self.sampling = parse_sampling(sampling).name
        self.voxel_double, self.voxel_fit = bool(voxel_double), voxel_fit
        self.copies = {"train": int(train_augmentations), "val": int(test_augmentations),
                       "test": int(test_augmentations)}
        self.rotate, self.translate, self.normalize = bool(rotate), float(translate), bool(normalize)
        self.test_split_name = test_split
        self.max_per_class = None if max_per_class is None else int(max_per_class)
        self.batch_size, self.test_batch_size = int(batch_size), int(test_batch_size)
        self.num_workers = int(num_workers)
        self.preprocess_workers = self.num_workers if preprocess_workers is None else int(preprocess_workers)
        self.cache_root = Path(cache_dir) if cache_dir is not None else self.data_dir / "cache"
        self.seed, self.progress = int(seed), bool(progress)
        self.backend = ray_backend
        self.fixed_classes = None if class_names is None else [str(c) for c in class_names]
        self.stand_in_params = {"train": int(stand_in_train), "val": int(stand_in_val),
                                "test": int(stand_in_test), "seed": int(stand_in_seed)}
        self.class_names: list[str] = []
        self.layout: str | None = None
        self.index: dict[str, SplitIndex] = {}
        self.datasets: dict[str, Shrec17Dataset] = {}
        self.preprocess_stats: dict = {}
        self._usable: dict[str, list[Item]] = {}

    # -- names ---------------------------------------------------------------------------------
    @property
    def test_dataset_name(self) -> str:
        """The evaluator's dataset folder of the scored split: ``test_perturbed`` / ``val_perturbed``."""
        return f"{self.test_split_name}_perturbed"

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this run reads: train, val, and test when it is scored."""
        return ("train", "val", "test") if self.test_split_name == "test" else ("train", "val")

    def params(self) -> dict:
        """The preprocessing parameters (what the cached numbers depend on)."""
        p = {"input": self.input, "rotate": self.rotate, "translate": self.translate, "seed": self.seed,
             "version": CACHE_VERSION}
        if self.input == "sphere":
            p.update(sampling=self.sampling)
        else:
            p.update(voxel_size=self.voxel_size, voxel_double=self.voxel_double, voxel_fit=self.voxel_fit)
        return p

    def cache_key(self) -> str:
        """Folder name of this preprocessing: the input, then a hash of :meth:`params`."""
        p = self.params()
        h = hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:10]
        if self.input == "sphere":
            name = self.sampling.replace(":", "")
        else:
            name = f"voxel{self.voxel_size}" + ("x2" if self.voxel_double else "") + \
                   ("-box" if self.voxel_fit == "box" else "")
        return f"{name}-{h}"

    @property
    def cache_folder(self) -> Path:
        return self.cache_root / self.cache_key()

    # -- reading -------------------------------------------------------------------------------
    def _read_index(self) -> None:
        if self.stand_in:
            from datamodules.shrec17_standin import prepare_stand_in

            prepare_stand_in(self.data_dir, **self.stand_in_params)
        if not self.data_dir.is_dir():
            raise InputError(f"{BENCH}: data directory {self.data_dir} does not exist; {HINT}")
        if is_shrec_layout(self.data_dir):
            self.layout = "shrec"
            index = {s: index_shrec_split(self.data_dir, s) for s in self.splits}
        else:
            self.layout = "folders"
            index = index_folders(self.data_dir, exclude=[self.cache_root])
            for s in self.splits:
                if s not in index:
                    if s == "test":
                        raise InputError(f"{BENCH}: {self.data_dir} has no test meshes (files in <class>/ or "
                                         f"<class>/test/); pass data.test_split=val to score the val split")
                    index[s] = SplitIndex(s, self.data_dir, None, [], [], [])
        for s, ix in index.items():
            if ix.missing:
                lines = [f"{BENCH}: {r.source}: id {r.id} has no mesh file in {ix.folder}; skipped"
                         for r in ix.missing[:MAX_NAMED]]
                if len(ix.missing) > MAX_NAMED:
                    lines.append(f"{BENCH}: ... and {len(ix.missing) - MAX_NAMED} more rows of "
                                 f"{ix.label_file.name if ix.label_file else s} without a mesh file")
                report_once(lines)
        self._set_classes(index)
        if self.max_per_class is not None and index["train"].items:
            index["train"] = _cap_per_class(index["train"], self.max_per_class)
        self.index = index

    def _set_classes(self, index: dict[str, SplitIndex]) -> None:
        source = index["train"].label_file or self.data_dir
        if self.fixed_classes is not None:
            names = list(self.fixed_classes)
        elif index["train"].rows:
            names = sorted({r.synset for r in index["train"].rows})
        else:
            names = sorted({r.synset for ix in index.values() for r in ix.rows})
        if self.num_classes is None:
            self.num_classes = len(names)
        if len(names) != self.num_classes:
            raise InputError(f"{BENCH}: {source} has {len(names)} synsets (classes), config data.num_classes "
                             f"is {self.num_classes}"
                             + (f" (the stand-in has {_stand_in_classes()})" if self.stand_in else ""))
        known = set(names)
        if self.layout == "folders" and self.fixed_classes is not None:
            unknown = sorted({r.synset for ix in index.values() for r in ix.rows} - known)
            if unknown:
                shown = ", ".join(names[:MAX_NAMED_CLASSES]) + (f", ... ({len(names)} in all)"
                                                               if len(names) > MAX_NAMED_CLASSES else "")
                raise InputError(
                    f"{BENCH}: {self.data_dir}: class folder(s) {', '.join(repr(u) for u in unknown[:5])}"
                    f"{' ...' if len(unknown) > 5 else ''} are not classes of the model; its {len(names)} "
                    f"class ids are {shown}. Rename each class folder to the id of the class it holds "
                    f"(e.g. {self.data_dir / names[0]}/), a folder per class; classes the data lacks may "
                    f"be left out")
        for ix in index.values():
            bad = [r for r in ix.rows if r.synset not in known]
            if bad:
                raise InputError(f"{BENCH}: {bad[0].source}: synset {bad[0].synset} (id {bad[0].id}) is not "
                                 f"one of the {len(names)} training classes ({len(bad)} such rows in the "
                                 f"{ix.name} split)")
        self.class_names = names

    def _fill(self) -> None:
        params = {**self.params(), "backend": ray_backend(self.backend) if self.input == "sphere" else "numpy"}
        stats = {"meshes": 0, "seconds": 0.0, "cached": 0, "skipped": 0}
        usable_by_split: dict[str, list[Item]] = {}
        for s in self.splits:
            ix = self.index[s]
            if not ix.items:
                usable_by_split[s] = []
                continue
            folder = self.cache_folder / s
            res = fill_cache(ix.items, folder, self.copies[s], params, self.preprocess_workers, self.progress,
                             desc=f"{BENCH} {s} -> {self.cache_key().split('-')[0]}")
            by_id = {it.id: it for it in ix.items}
            report_once([f"{BENCH}: skipped {by_id[i].path}: {why}" for i, why in res.broken.items()])
            usable = [by_id[i] for i in res.usable]
            if not usable:
                raise InputError(f"{BENCH}: nothing usable left in the {s} split ({ix.folder}): "
                                 f"{len(ix.missing)} listed models without a mesh file, {len(res.broken)} "
                                 f"broken meshes (named above)")
            usable_by_split[s] = usable
            stats["meshes"] += res.computed
            stats["seconds"] += res.seconds
            stats["cached"] += res.reused
            stats["skipped"] += len(res.broken) + len(ix.missing)
        secs = stats["seconds"]
        stats.update(seconds=round(secs, 3),
                     meshes_per_s=round(stats["meshes"] / secs, 2) if stats["meshes"] and secs > 0 else None,
                     backend=params["backend"] if self.input == "sphere" else "numpy-sat",
                     from_cache=stats["meshes"] == 0, workers=self.preprocess_workers,
                     input=self.input, grid=self.sampling if self.input == "sphere" else
                     f"voxel:{self.voxel_size}" + ("x2" if self.voxel_double else ""))
        # the numbers of the preprocessing that filled the cache are kept beside it, so a run (or a
        # second prepare_data call, as Lightning makes in test()) that only found the cache reports them
        # (``stats["filled"]``: meshes, seconds, meshes_per_s, backend, workers of that preprocessing)
        saved = self.cache_folder / "preprocess_stats.json"
        keys = ("meshes", "seconds", "meshes_per_s", "backend", "workers")
        if stats["meshes"]:
            stats["filled"] = {k: stats[k] for k in keys}
            self.preprocess_stats = stats
            atomic_write_text(saved, json.dumps(stats["filled"], indent=1) + "\n")
        elif self.preprocess_stats.get("from_cache", True):
            try:
                filled = json.loads(saved.read_text())
            except (OSError, ValueError):
                filled = {}
            self.preprocess_stats = {**stats, "filled": {k: filled[k] for k in keys if k in filled}}
        self._usable = usable_by_split

    def prepare_data(self) -> None:
        """Write the stand-in when asked, read and validate the csv files and mesh folders of
        every split used, and fill the caches (reused while valid)."""
        self._read_index()
        self._fill()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets from the caches (filling them first when this process has not)."""
        if self.datasets:
            return
        if not self._usable:  # prepare_data ran in another process (DDP rank > 0) or not at all
            self._read_index()
            self._fill()
        index = {c: i for i, c in enumerate(self.class_names)}
        params = {**self.params(), "backend": ray_backend(self.backend) if self.input == "sphere" else "numpy"}
        self.datasets = {s: Shrec17Dataset(self.cache_folder / s, self._usable[s], self.copies[s], index,
                                           params, self.normalize) for s in self.splits}
        if self.test_split_name == "val":
            self.datasets["test"] = self.datasets["val"]

    @property
    def test_files(self) -> list[Path]:
        """The mesh files of the scored split that were read and scored (broken ones left out,
        each named when skipped); what ``--evaluate`` reports."""
        return [it.path for it in self._usable.get(self.test_split_name, [])]

    # -- labels --------------------------------------------------------------------------------
    def labels(self, split: str | None = None) -> dict[str, tuple[str, str, str]]:
        """``{id: (synsetId, subSynsetId, split)}`` of every model of ``split`` (default: the
        scored split) in csv order, missing and broken meshes included (the official evaluator's
        oracle counts them): the form :func:`models.retrieval.evaluate` reads."""
        split = split or self.test_split_name
        if not self.index:
            self._read_index()
        if split not in self.index:
            raise InputError(f"{BENCH}: no {split} split read (splits: {', '.join(self.index)})")
        return {r.id: (r.synset, r.sub, split) for r in self.index[split].rows}

    # -- checkpoint state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Saved in Lightning checkpoints: the class order the model was trained with."""
        return {"class_names": list(self.class_names)}

    def load_state_dict(self, state_dict: dict) -> None:
        names = [str(c) for c in state_dict.get("class_names") or []]
        if names and self.class_names and names != self.class_names:
            raise InputError(f"{BENCH}: the checkpoint's classes ({len(names)}: {', '.join(names[:4])}, ...) are "
                             f"not the data's ({len(self.class_names)}: {', '.join(self.class_names[:4])}, ...); "
                             f"pass them as data.class_names")
        if names:
            self.fixed_classes = names

    # -- loaders -------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        if len(ds) == 0:
            raise InputError(f"{BENCH}: {self.data_dir} has no training meshes")
        # batch_size is the global batch: each of W DDP processes loads batch_size / W
        return DataLoader(ds, batch_size=per_rank_batch(self, self.batch_size, "data.batch_size"), shuffle=True,
                          num_workers=self.num_workers, drop_last=len(ds) > self.batch_size,
                          persistent_workers=self.num_workers > 0)

    def _eval_loader(self, split: str) -> DataLoader:
        ds = self.datasets[split]
        if len(ds) == 0:
            raise InputError(f"{BENCH}: {self.data_dir} has no {split} meshes")
        return DataLoader(ds, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, ds, f"{BENCH} {split} set"), num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def _cap_per_class(ix: SplitIndex, k: int) -> SplitIndex:
    """At most ``k`` items per synset, evenly spaced over the synset's items in csv order."""
    by: dict[str, list[int]] = {}
    for i, it in enumerate(ix.items):
        by.setdefault(it.row.synset, []).append(i)
    keep: set[int] = set()
    for idx in by.values():
        if len(idx) <= k:
            keep.update(idx)
        else:
            keep.update(idx[int(j)] for j in np.round(np.linspace(0, len(idx) - 1, k)).astype(int))
    return SplitIndex(ix.name, ix.folder, ix.label_file, ix.rows,
                      [it for i, it in enumerate(ix.items) if i in keep], ix.missing)


# --------------------------------------------------------------------------- command line
@command_line
def _cli(argv: list[str] | None = None) -> None:
    p, sub = subcommands("datamodules.shrec17", __doc__)
    s = sub.add_parser("standin", help="write the offline stand-in (SHREC'17 layout) into a folder")
    s.add_argument("--out", required=True)
    s.add_argument("--train", type=int, default=48, help="training models per synset")
    s.add_argument("--val", type=int, default=12)
    s.add_argument("--test", type=int, default=16)
    s.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("preprocess", help="fill the cache of a data folder and print the throughput")
    q.add_argument("--data-dir", required=True)
    q.add_argument("--input", default="sphere", choices=("sphere", "voxel"))
    q.add_argument("--sampling", default="healpix:32")
    q.add_argument("--voxel-size", type=int, default=64)
    q.add_argument("--augmentations", type=int, default=1, help="copies of every mesh (all splits)")
    q.add_argument("--test-split", default="test", choices=("test", "val"))
    q.add_argument("--workers", type=int, default=0)
    q.add_argument("--cache-dir", default=None)
    q.add_argument("--num-classes", type=int, default=None, help="default: what the data has")
    args = p.parse_args(argv)
    if args.cmd == "standin":
        from datamodules.shrec17_standin import prepare_stand_in

        wrote = prepare_stand_in(args.out, args.train, args.val, args.test, args.seed)
        print(f"{'wrote' if wrote else 'kept'} the SHREC'17 stand-in in {args.out}")
    else:
        kw = dict(input=args.input, sampling=args.sampling, voxel_size=args.voxel_size,
                  train_augmentations=args.augmentations, test_augmentations=args.augmentations,
                  test_split=args.test_split, preprocess_workers=args.workers, cache_dir=args.cache_dir)
        dm = Shrec17DataModule(args.data_dir, num_classes=args.num_classes, **kw)
        dm.prepare_data()
        print(json.dumps(dm.preprocess_stats))


if __name__ == "__main__":
    sys.exit(_cli())
