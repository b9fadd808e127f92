"""CATH protein-architecture classification data (Weiler et al. 2018, §5.5 and supplement).

Published file (``deepfold/cath_datasets``, ``cath_10arch_ca.npz``; siblings ``cath_3class_ca.npz``
and ``cath_20topo_ca.npz``), read with ``np.load(allow_pickle=False)``:

=======================  ===================  ===================================================
key                      shape / dtype        meaning
=======================  ===================  ===================================================
``positions``            (N, A, 3) float      CA coordinates in Å, centred on their mean, 0-padded
``n_atoms``              (N,) int             atoms per record (1 ≤ n ≤ A)
``atom_types``           (N, A) S10           ``b"CA"``, ``b""`` as padding
``res_indices``          (N, A) int or float  PDB residue numbers, −1 as padding
``labels``               (N, k) int           CATH code prefix per record: (class, arch) for k = 2
``split_start_indices``  (S,) int             records are ordered by split; split s starts here
=======================  ===================  ===================================================

Coordinates are checked record by record when the file is read (:func:`load_npz`), because a
record that lies outside the voxel box grids to (nearly) nothing and would train and score as a
silent, wrong example: every record must be finite, centred (CA centroid within
``CENTRE_TOLERANCE`` = 1 Å of the origin; the published builder centres on the CA mean, so the file
is centred to float precision) and, for the config's box of ``grid_size × bin_size`` Å about the
origin, have at most half of its atoms outside it (``MAX_OUTSIDE_FRACTION``). A violation is one
:class:`~datamodules._common.InputError` naming the file, the first offending record (index and
``domain_ids`` entry when the file has one) and how many records are affected.

Labels are mapped to ``0..K−1`` through the *sorted* set of label tuples (se3cnn
``experiments/datasets/cath/cath.py``). Splits (se3cnn ``experiments/scripts/cath/cath.py``):
train = splits 0–6, validation = 7, test = 8–9.

Voxelisation (:func:`voxelize`, the loader's defaults): ``n = 50`` bins of ``bin = 2 Å`` per axis
centred on the origin, bin centres ``c_i = (i − (n−1)/2)·bin``; every CA is an isotropic Gaussian of
σ = 1 Å (= bin/2) normalised to sum 1 over the grid, so a record's grid sums to its atom count.
Because the Gaussian factorises, ``grid[i,j,k] = Σ_a gx[a,i]·gy[a,j]·gz[a,k]`` with per-axis
normalised 1-D Gaussians — one batched contraction, computed on the training device after the batch
is transferred (:meth:`CathDataModule.on_after_batch_transfer`). Axis convention: grid axis 0 (D) is
x, 1 (H) is y, 2 (W) is z. Training samples get a Haar-random rotation ``p ↦ R p`` about the centre
(:func:`models.geometry.random_rotation`, drawn on the CPU from the global torch RNG and moved to the
device), as in the reference (``--randomize-orientation``).

Under DDP the global batch stays the paper's 16: each of W processes loads ``batch_size / W``
records (W must divide the batch); torch BatchNorm statistics are synchronised by the runner (GPUs), the
steerable net's equivariant batch norm is not (it sees ``batch_size / W`` records per process).
Validation and test use a non-repeating distributed sampler so that every record is scored exactly
once.

Offline stand-in (:func:`prepare_stand_in`, ``--stand-in``): generated PDB/mmCIF files and a CATH
domain list (:mod:`datamodules.cath_standin`) under ``raw/``, built into ``cath_10arch_ca.npz`` by
the same pipeline as the real data (:func:`datamodules.cath_pdb.build_dataset`); the folder's
``STAND_IN.json`` manifest (:func:`datamodules._common.ensure_stand_in`) keeps its parameters and
file hashes, so it is reused while they match and regenerated when a parameter changes.

Command line (raw structures → npz; stand-in)::

    python -m datamodules.cath build --pdb-dir DIR --domain-list cath-domain-list.txt \\
        [--boundaries cath-domain-boundaries.txt] --out cath_10arch_ca.npz [--level arch]
    python -m datamodules.cath standin --out DIR --per-class 60
    python -m datamodules.cath info FILE.npz [--grid-size 50 --bin-size 2]
"""
from __future__ import annotations

import math
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules._common import ClassCountError, InputError, command_line, ensure_stand_in, subcommands, trainer_world
from datamodules.cath_pdb import (CATH_CLASSES, NPZ_KEYS, TEST_SPLITS, TRAIN_SPLITS, VAL_SPLITS, BuildSummary,
                                  build_dataset)
from models.geometry import random_rotation

#: config key ``data.dataset`` → published file name
FILES = {"10arch": "cath_10arch_ca.npz", "3class": "cath_3class_ca.npz", "20topo": "cath_20topo_ca.npz"}
DatasetName = Literal["10arch", "3class", "20topo"]
#: what the classes of each file are (table text)
CLASS_NOUN = {"10arch": "architectures", "3class": "classes", "20topo": "topologies"}
#: a record whose CA centroid is farther than this from the origin is not centred (Å; half the
#: paper's 2 Å bin — the published file is centred on the CA mean to float precision)
CENTRE_TOLERANCE = 1.0
#: a record with more than this fraction of its atoms outside the voxel box is refused
MAX_OUTSIDE_FRACTION = 0.5


# --------------------------------------------------------------------------- reader
@dataclass
class CathArrays:
    """The validated content of one npz: padded positions, atom counts, class ids, split starts."""

    path: Path
    positions: np.ndarray          # (N, A, 3) float32
    n_atoms: np.ndarray            # (N,) int64
    labels: np.ndarray             # (N, k) raw CATH code prefixes
    y: np.ndarray                  # (N,) int64 in 0..K-1
    label_set: list[tuple[int, ...]]
    split_start_indices: np.ndarray  # (S,) int64
    domain_ids: list[str] | None = None  # the builder's extra provenance field, when present

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_splits(self) -> int:
        return len(self.split_start_indices)

    def split_indices(self, splits) -> np.ndarray:
        """Record indices of the given splits (in file order)."""
        bounds = list(self.split_start_indices) + [len(self)]
        out = []
        for s in splits:
            if not 0 <= s < self.num_splits:
                raise InputError(f"{self.path}: split {s} requested but the file has "
                                 f"{self.num_splits} splits (field 'split_start_indices')")
            out.append(np.arange(bounds[s], bounds[s + 1]))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def load_npz(path: str | Path, voxel_box: tuple[int, float] | None = None) -> CathArrays:
    """Read and validate a CATH npz; every problem is an :class:`InputError` naming file and field
    (and, for coordinates, the record: :func:`check_coordinates`). ``voxel_box = (grid_size,
    bin_size)`` also refuses records that lie mostly outside that box."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CATH: missing {path}; pass --data-dir with the published "
                         f"{path.name} (deepfold/cath_datasets) or use --stand-in")
    if not zipfile.is_zipfile(path):
        raise InputError(f"CATH: {path} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise InputError(f"CATH: {path} lacks field(s) {', '.join(missing)} "
                                 f"(has: {', '.join(z.files) or 'none'})")
            arr = {k: z[k] for k in NPZ_KEYS}
            ids = z["domain_ids"] if "domain_ids" in z.files else None
    except InputError:
        raise
    except ValueError as e:  # object arrays need pickle
        raise InputError(f"CATH: {path} cannot be read without pickle ({e}); the published "
                         f"format holds plain numeric/bytes arrays") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"CATH: {path} is not a readable .npz file ({type(e).__name__}: {e})") from None

    def bad(field: str, what: str) -> InputError:
        return InputError(f"CATH: {path}: field '{field}' {what}")

    pos, n_atoms, labels, starts = arr["positions"], arr["n_atoms"], arr["labels"], arr["split_start_indices"]
    if pos.ndim != 3 or pos.shape[2] != 3 or not np.issubdtype(pos.dtype, np.number):
        raise bad("positions", f"has shape {pos.shape} {pos.dtype}; expected numeric (N, max_atoms, 3)")
    n, a = pos.shape[:2]
    if n == 0:
        raise bad("positions", "holds no records")
    if n_atoms.shape != (n,) or not np.issubdtype(n_atoms.dtype, np.integer):
        raise bad("n_atoms", f"has shape {n_atoms.shape} {n_atoms.dtype}; expected integer ({n},)")
    if n_atoms.min() < 1 or n_atoms.max() > a:
        raise bad("n_atoms", f"ranges {n_atoms.min()}..{n_atoms.max()}; expected 1..{a} (max_atoms)")
    for key in ("atom_types", "res_indices"):
        if arr[key].shape != (n, a):
            raise bad(key, f"has shape {arr[key].shape}; expected ({n}, {a}) like 'positions'")
    if arr["atom_types"].dtype.kind not in "SU":
        raise bad("atom_types", f"has dtype {arr['atom_types'].dtype}; expected bytes (S10)")
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != n or not 1 <= labels.shape[1] <= 4:
        raise bad("labels", f"has shape {arr['labels'].shape}; expected ({n}, k) CATH code prefixes, k ≤ 4")
    if not np.issubdtype(labels.dtype, np.number) or not np.all(np.isfinite(labels)) \
            or not np.all(labels == np.round(labels)):
        raise bad("labels", "must hold integer CATH numbers")
    labels = labels.astype(np.int64)
    unknown = sorted(set(labels[:, 0].tolist()) - set(CATH_CLASSES))
    if unknown:
        raise bad("labels", f"holds unknown CATH class(es) {unknown} (known: {sorted(CATH_CLASSES)})")
    if (labels < 1).any():
        raise bad("labels", "holds CATH numbers < 1")
    if starts.ndim != 1 or len(starts) == 0 or not np.issubdtype(starts.dtype, np.number):
        raise bad("split_start_indices", f"has shape {starts.shape}; expected (num_splits,)")
    starts = starts.astype(np.int64)
    if starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > n:
        raise bad("split_start_indices", f"is {starts.tolist()}; expected non-decreasing from 0, ≤ {n}")
    if ids is not None:
        if ids.shape != (n,) or ids.dtype.kind not in "SU":
            raise bad("domain_ids", f"has shape {ids.shape} {ids.dtype}; expected ({n},) strings")
        ids = [d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in ids.tolist()]
    with np.errstate(over="ignore", invalid="ignore"):
        pos = pos.astype(np.float32, copy=False)
    n_atoms = n_atoms.astype(np.int64)
    check_coordinates(path, pos, n_atoms, ids, voxel_box)
    label_set = sorted(set(map(tuple, labels.tolist())))
    lookup = {lab: i for i, lab in enumerate(label_set)}
    y = np.array([lookup[tuple(r)] for r in labels.tolist()], dtype=np.int64)
    return CathArrays(path, pos, n_atoms, labels, y, label_set, starts, ids)


def outside_counts(positions: np.ndarray, n_atoms: np.ndarray, grid_size: int, bin_size: float) -> np.ndarray:
    """Atoms per record outside the voxel box ``|x|, |y|, |z| ≤ grid_size·bin_size/2`` (its edge,
    half a bin beyond the outermost bin centres)."""
    mask = np.arange(positions.shape[1])[None, :] < n_atoms[:, None]
    with np.errstate(invalid="ignore"):
        out = ~(np.abs(positions) <= grid_size * bin_size / 2).all(2)
    return (out & mask).sum(1)


def check_coordinates(path: Path, positions: np.ndarray, n_atoms: np.ndarray, ids: list[str] | None = None,
                      voxel_box: tuple[int, float] | None = None) -> None:
    """Refuse records whose coordinates are non-finite, not centred (CA centroid farther than
    :data:`CENTRE_TOLERANCE` from the origin) or, given ``voxel_box = (grid_size, bin_size)``,
    mostly (> :data:`MAX_OUTSIDE_FRACTION`) outside that box: one :class:`InputError` naming the file,
    the first such record and how many there are (checks in this order; the first that fails).

    >>> p = np.zeros((3, 2, 3), np.float32); p[1, :, 0] = (1e4 - 1, 1e4 + 1)
    >>> check_coordinates(Path("x.npz"), p, np.array([2, 2, 2]), ["1abcA00", "1abcA01", "2xyzA00"])
    Traceback (most recent call last):
    ...
    datamodules._common.InputError: CATH: x.npz: field 'positions': 1 of 3 records not centred (CA centroid more than 1 Å from the origin; the published file is centred on the CA mean), first record 1 (1abcA01): centroid 1e+04 Å from the origin; recentre each record on its CA mean or rebuild the file (python -m datamodules.cath build)
    """
    n, a = positions.shape[:2]
    mask = np.arange(a)[None, :] < n_atoms[:, None]

    def refuse(bad: np.ndarray, what: str, detail, fix: str) -> None:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            name = f"record {i}" + (f" ({ids[i]})" if ids is not None else "")
            raise InputError(f"CATH: {path}: field 'positions': {int(bad.sum())} of {n} records {what}, "
                             f"first {name}: {detail(i)}; {fix}")

    finite = np.isfinite(positions).all(2) | ~mask
    refuse(~finite.all(1), "hold non-finite coordinates (NaN, inf, or beyond the float32 range)",
           lambda i: f"atom {int(np.flatnonzero(~finite[i])[0])} is {positions[i, ~finite[i]][0].tolist()}",
           "the file is corrupt; rebuild it (python -m datamodules.cath build)")
    centroid = np.where(mask[..., None], positions, 0).sum(1, dtype=np.float64) / n_atoms[:, None]
    offset = np.linalg.norm(centroid, axis=1)
    extent = np.where(mask, np.abs(positions).max(2), 0).max(1)
    # plus float rounding, which scales with the coordinates (a ×1e30 file is centred, but off-grid)
    refuse(~(offset <= CENTRE_TOLERANCE + 1e-5 * extent),
           f"not centred (CA centroid more than {CENTRE_TOLERANCE:g} Å from the origin; the published "
           f"file is centred on the CA mean)", lambda i: f"centroid {offset[i]:.3g} Å from the origin",
           "recentre each record on its CA mean or rebuild the file (python -m datamodules.cath build)")
    if voxel_box is not None:
        grid_size, bin_size = voxel_box
        outside = outside_counts(positions, n_atoms, grid_size, bin_size)
        half = grid_size * bin_size / 2
        refuse(outside > MAX_OUTSIDE_FRACTION * n_atoms,
               f"have most of their atoms outside the voxel box of the config (data.grid_size x "
               f"data.bin_size = {grid_size} x {bin_size:g} Å: ±{half:g} Å about the origin)",
               lambda i: f"{int(outside[i])} of {int(n_atoms[i])} atoms outside, up to "
                         f"{float(np.abs(positions[i, :n_atoms[i]]).max()):.3g} Å from the origin",
               "such records grid to (nearly) empty voxels; enlarge the box or check that the "
               "coordinates are in Å")


def reduce_indices(idx: np.ndarray, y: np.ndarray, factor: int, seed: int = 0) -> np.ndarray:
    """Training-set reduction ×``factor`` (paper Fig. 4): per class keep ⌈n/factor⌉ records, a fixed
    random subset (``seed``, independent of the run seed) so that every model sees the same data."""
    if factor < 1 or int(factor) != factor:
        raise InputError(f"CATH: reduction factor must be a positive integer, got {factor}")
    if factor == 1:
        return idx
    rng = np.random.default_rng([seed, int(factor)])
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        keep.append(rng.permutation(members)[: math.ceil(len(members) / factor)])
    return np.sort(np.concatenate(keep))


# --------------------------------------------------------------------------- voxeliser
def voxelize(positions: torch.Tensor, mask: torch.Tensor, n: int = 50, bin_size: float = 2.0,
             sigma: float = 1.0, rotations: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian density grids ``(B, 1, n, n, n)`` of padded CA positions ``(B, A, 3)``.

    ``grid[b, 0, i, j, k] = Σ_a m_ba · g(x_ba − c_i) g(y_ba − c_j) g(z_ba − c_k) / Z_ba`` with
    ``g(t) = exp(−t²/2σ²)``, ``c_i = (i − (n−1)/2)·bin`` and ``Z_ba`` the sum of the atom's Gaussian
    over the grid (= product of its three axis sums), so each atom inside the box carries mass 1.
    Atoms whose Gaussian has (numerically) no mass on the grid are dropped. ``rotations`` (B, 3, 3)
    act as ``p ↦ R p`` before gridding.

    >>> g = voxelize(torch.zeros(1, 1, 3), torch.ones(1, 1, dtype=torch.bool), n=5)
    >>> g.shape, round(float(g.sum()), 5), tuple(int(i) for i in (g[0, 0] == g.max()).nonzero()[0])
    (torch.Size([1, 1, 5, 5, 5]), 1.0, (2, 2, 2))
    """
    if rotations is not None:
        positions = positions @ rotations.transpose(1, 2)
    b, a, _ = positions.shape
    centres = (torch.arange(n, device=positions.device, dtype=positions.dtype) - (n - 1) / 2) * bin_size
    g = torch.exp(-(positions[..., None] - centres) ** 2 / (2 * sigma ** 2))  # (B, A, 3, n)
    axis_mass = g.sum(-1, keepdim=True)                                        # (B, A, 3, 1)
    inside = (axis_mass > 1e-12).all(2, keepdim=True) & mask[:, :, None, None]
    g = torch.where(inside, g / axis_mass.clamp_min(1e-12), torch.zeros((), dtype=g.dtype, device=g.device))
    gx, gy, gz = g[:, :, 0], g[:, :, 1], g[:, :, 2]                            # (B, A, n)
    xy = (gx[:, :, :, None] * gy[:, :, None, :]).reshape(b, a, n * n)          # (B, A, n²)
    grid = torch.bmm(xy.transpose(1, 2), gz)                                   # (B, n², n)
    return grid.reshape(b, 1, n, n, n)


# --------------------------------------------------------------------------- dataset and module
class CathDataset(Dataset):
    """Records ``idx`` of a :class:`CathArrays`: items are (positions (n_atoms, 3), class id)."""

    def __init__(self, arrays: CathArrays, idx: np.ndarray):
        self.arrays, self.idx = arrays, np.asarray(idx, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        r = int(self.idx[i])
        k = int(self.arrays.n_atoms[r])
        return torch.from_numpy(self.arrays.positions[r, :k]), int(self.arrays.y[r])


def collate(items):
    """Pad positions to the batch's largest record: (positions (B, A, 3), mask (B, A), y (B,))."""
    a = max(p.shape[0] for p, _ in items)
    pos = torch.zeros(len(items), a, 3)
    mask = torch.zeros(len(items), a, dtype=torch.bool)
    for i, (p, _) in enumerate(items):
        pos[i, : len(p)] = p
        mask[i, : len(p)] = True
    return pos, mask, torch.tensor([y for _, y in items], dtype=torch.long)


class CathDataModule(pl.LightningDataModule):
    """Train / validation / test splits of a CATH npz, voxelised on the device per batch.

    Batches of the loaders: ``(pos, mask, y)`` — ``pos`` float32 ``(B, A, 3)``, CA coordinates in
    Å (centred, zero-padded to the batch's longest record A); ``mask`` bool ``(B, A)``, the real
    atoms; ``y`` int64 ``(B,)``, the class 0..K−1. A model takes voxel grids: :meth:`model_batch`
    turns a batch into ``(x, y)`` with ``x`` float32 ``(B, 1, n, n, n)`` (``n = grid_size``; what a
    Trainer does after the transfer, :meth:`on_after_batch_transfer`, which also rotates training
    batches). Outside a Trainer::

        dm.setup("test")
        x, y = dm.model_batch(next(iter(dm.test_dataloader())))   # (16, 1, 50, 50, 50), (16,)

    Reads ``data_dir / FILES[dataset]``; with ``stand_in`` it first writes the offline stand-in
    there (:func:`prepare_stand_in`, parameters ``stand_in_*``; only ``dataset="10arch"``).
    Every other keyword is a key of the config's ``data`` section, except ``reduction`` (the grid
    setting: training splits cut ×``reduction`` per class, :func:`reduce_indices`).
    """

    def __init__(self, data_dir: Path, stand_in: bool = False, dataset: DatasetName = "10arch",
                 num_classes: int = 10, grid_size: int = 50, bin_size: float = 2.0, sigma: float = 1.0,
                 batch_size: int = 16, rotate_train: bool = True, rotate_eval: bool = False,
                 train_splits: tuple[int, ...] = TRAIN_SPLITS, val_splits: tuple[int, ...] = VAL_SPLITS,
                 test_splits: tuple[int, ...] = TEST_SPLITS, num_workers: int = 0,
                 stand_in_per_class: int = 711, stand_in_topologies: int = 12, stand_in_seed: int = 0,
                 reduction: int = 1):
        super().__init__()
        if dataset not in FILES:
            raise InputError(f"cath: data.dataset '{dataset}' unknown; valid: {', '.join(FILES)}")
        if stand_in and dataset != "10arch":
            raise InputError(f"cath: the stand-in provides only 10arch, not data.dataset={dataset}")
        self.data_dir, self.stand_in, self.dataset = Path(data_dir), bool(stand_in), dataset
        self.path = self.data_dir / FILES[dataset]
        self.batch_size, self.grid_size = int(batch_size), int(grid_size)
        self.bin_size, self.sigma = float(bin_size), float(sigma)
        self.rotate_train, self.rotate_eval = bool(rotate_train), bool(rotate_eval)
        self.reduction = int(reduction)
        self.splits = {"train": tuple(train_splits), "val": tuple(val_splits), "test": tuple(test_splits)}
        self.num_workers, self.num_classes = int(num_workers), int(num_classes)
        self.stand_in_params = stand_in_params(stand_in_per_class, stand_in_topologies, stand_in_seed)
        self.arrays: CathArrays | None = None
        self.sets: dict[str, CathDataset] = {}
        #: records seen by this process per stage since its dataloader was made (DDP bookkeeping)
        self.scored: dict[str, int] = {}

    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Write the stand-in when asked (reused while its manifest matches), then validate the
        npz, its coordinates against this config's voxel box (:func:`check_coordinates`), its class
        count and every split read (:class:`InputError` naming file, field and record)."""
        if self.stand_in:
            prepare_stand_in(self.data_dir, **self.stand_in_params)
        self._select(load_npz(self.path, (self.grid_size, self.bin_size)))

    def _select(self, arrays: CathArrays) -> dict[str, np.ndarray]:
        """Record indices per stage (training reduced ×``reduction``), checked non-empty."""
        if len(arrays.label_set) != self.num_classes:
            raise ClassCountError(f"CATH: {self.path} has {len(arrays.label_set)} classes (field 'labels'), "
                                  f"config data.num_classes is {self.num_classes}",
                                  len(arrays.label_set), self.num_classes, str(self.path))
        idx = {name: arrays.split_indices(splits) for name, splits in self.splits.items()}
        idx["train"] = reduce_indices(idx["train"], arrays.y, self.reduction)
        for name, i in idx.items():
            if len(i) == 0:
                raise InputError(f"CATH: {self.path}: the {name} splits {self.splits[name]} are empty")
        return idx

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        arrays = load_npz(self.path, (self.grid_size, self.bin_size))
        self.sets = {name: CathDataset(arrays, i) for name, i in self._select(arrays).items()}
        self.arrays = arrays

    def per_rank_batch(self) -> int:
        world, _ = trainer_world(self)
        if self.batch_size % world:
            raise InputError(f"CATH: global batch {self.batch_size} is not divisible by the "
                             f"{world} DDP processes (data.batch_size)")
        return self.batch_size // world

    def train_dataloader(self) -> DataLoader:
        bs = self.per_rank_batch()
        return DataLoader(self.sets["train"], batch_size=bs, shuffle=True, collate_fn=collate,
                          drop_last=len(self.sets["train"]) >= self.batch_size,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def _eval_loader(self, name: str) -> DataLoader:
        ds = self.sets[name]
        self.scored[name] = 0
        world, rank = trainer_world(self)
        sampler = None
        if world > 1:
            from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

            if len(ds) < world:
                raise InputError(f"CATH: the {name} set ({len(ds)} records) is smaller than the "
                                 f"{world} DDP processes")
            sampler = UnrepeatedDistributedSampler(ds, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(ds, batch_size=self.per_rank_batch(), shuffle=False, sampler=sampler,
                          collate_fn=collate, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # -- voxelisation on the device ------------------------------------------------------------
    def voxelize_batch(self, batch, rotate: bool):
        pos, mask, y = batch
        # Haar rotations from the global CPU RNG (seeded per run by the runner; under DDP rank r's
        # stream is seeded with seed + r, reproduce.runner.trainer.RankSeed), then moved to the device
        rot = random_rotation(len(pos), dtype=pos.dtype).to(pos.device) if rotate else None
        x = voxelize(pos, mask, self.grid_size, self.bin_size, self.sigma, rot)
        return x, y

    def model_batch(self, batch, rotate: bool = False):
        """``(x, y)`` the model takes from a loader's ``(pos, mask, y)`` batch: the voxel grids
        ``(B, 1, n, n, n)`` on the batch's device, in the file's orientation unless ``rotate``
        (a Haar-random rotation per record from the global torch RNG, as in training)."""
        return self.voxelize_batch(batch, rotate)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        t = getattr(self, "trainer", None)
        training = bool(t is not None and t.training)
        if t is not None and (t.testing or t.validating):
            stage = "test" if t.testing else "val"
            self.scored[stage] = self.scored.get(stage, 0) + len(batch[2])
        return self.voxelize_batch(batch, self.rotate_train if training else self.rotate_eval)

    # -- evaluation in random orientations -------------------------------------------------------


# --------------------------------------------------------------------------- stand-in
def stand_in_params(per_class: int = 711, topologies: int = 12, seed: int = 0) -> dict:
    """The parameters that generate the stand-in (its manifest's ``params``)."""
    return {"per_class": int(per_class), "topologies": int(topologies), "seed": int(seed)}


def stand_in_description(per_class: int = 711, topologies: int = 12, seed: int = 0) -> str:
    """What the stand-in is, for its manifest and for the tables made on it.

    >>> text = stand_in_description(40)
    >>> "NOT the paper's data" in text, text[text.index("("):text.index(")") + 1]
    (True, '(40 domains each, 12 topologies per architecture, seed 0)')
    """
    return ("**Data: offline stand-in — NOT the paper's data.** Idealised CA traces of ten architectures "
            f"({per_class} domains each, {topologies} topologies per architecture, seed {seed}) written as "
            "PDB/mmCIF files with a CATH domain list and built by the same biopython pipeline as the real "
            "set (`datamodules/cath_standin.py`). Accuracies below say whether the pipeline and models "
            "learn such arrangements; they are not comparable with Figure 4.")


def _write_stand_in(data_dir: Path, per_class: int, topologies: int, seed: int) -> Path:
    """Raw stand-in under ``data_dir/raw`` (PDB/mmCIF + domain list + boundaries), built into
    ``data_dir/cath_10arch_ca.npz`` by the real pipeline (:func:`build_dataset`)."""
    from datamodules.cath_standin import write_stand_in

    shutil.rmtree(data_dir / "raw", ignore_errors=True)  # leftovers of an earlier stand-in
    raw = write_stand_in(data_dir / "raw", per_class=per_class, seed=seed, topologies=topologies)
    out = data_dir / FILES["10arch"]
    build_dataset(raw["pdb_dir"], raw["domain_list"], out, boundaries=raw["boundaries"], level="arch",
                  group_level="topo", min_size=per_class, per_class=per_class,
                  report=data_dir / (out.name + ".report.tsv"))
    return out


def prepare_stand_in(data_dir: str | Path, per_class: int = 711, topologies: int = 12, seed: int = 0) -> bool:
    """Make ``data_dir`` hold the stand-in of these parameters (:func:`ensure_stand_in`: reused
    when its manifest matches, regenerated when the parameters differ). True when written."""
    params = stand_in_params(per_class, topologies, seed)
    return ensure_stand_in(data_dir, "cath", params, lambda d: _write_stand_in(d, **params),
                           stand_in_description(**params))


# --------------------------------------------------------------------------- CLI
#: at most this many unmatched domain ids are printed (the report names all of them)
PRINTED_IDS = 50


def build_summary_text(r: BuildSummary, domain_list: str, pdb_dir: str, max_radius: float = 50.0) -> str:
    """What ``build`` prints: the result, then every unused file and the unmatched domains by name
    (beyond :data:`PRINTED_IDS` of them the rest are counted; the report names every one).

    >>> from pathlib import Path
    >>> r = BuildSummary(Path("o.npz"), Path("o.npz.report.tsv"), 20, 2, [(1, 10)], [2] * 10,
    ...                  skipped=[("1abcA00", "1abc.pdb", "no CA atom")], unmatched=["2xyzA01"],
    ...                  unused_files=[("adk_open.pdb", "name 'adk_open' is not ...")])
    >>> print(build_summary_text(r, "list.txt", "pdb"))
    wrote o.npz: 20 records, 1 classes x 2, splits [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]; report o.npz.report.tsv
      skipped: 1 domain(s) with a structure file (0 by the 50 A rule), each with its reason in the report: 1abcA00 (no CA atom)
      usable but left out (0; class below --min-size or balancing): none
      domains of list.txt without a structure file (1): 2xyzA01
      unused entries of pdb (1): adk_open.pdb (name 'adk_open' is not ...)
    """
    def named(items: list[str]) -> str:
        text = ", ".join(items[:PRINTED_IDS]) or "none"
        if len(items) > PRINTED_IDS:
            text += f", ... and {len(items) - PRINTED_IDS} more (all named in {r.report})"
        return text

    ids = named(r.unmatched)
    lines = [f"wrote {r.out}: {r.n_records} records, {len(r.classes)} classes x {r.per_class}, "
             f"splits {r.split_sizes}; report {r.report}",
             f"  skipped: {len(r.skipped)} domain(s) with a structure file ({r.n_beyond_radius} by the "
             f"{max_radius:g} A rule), each with its reason in the report: "
             + named([f"{d} ({why})" for d, _, why in r.skipped]),
             f"  usable but left out ({len(r.left_out)}; class below --min-size or balancing): "
             + named([d for d, _, _ in r.left_out]),
             f"  domains of {domain_list} without a structure file ({len(r.unmatched)}): {ids}",
             f"  unused entries of {pdb_dir} ({len(r.unused_files)}): "
             + ("; ".join(f"{n} ({why})" for n, why in r.unused_files) or "none"),
             *(f"  WARNING: {w}" for w in r.warnings)]
    return "\n".join(lines)


@command_line
def _cli(argv: list[str] | None = None) -> None:
    p, sub = subcommands("datamodules.cath", __doc__)
    b = sub.add_parser("build", help="PDB/mmCIF folder + CATH domain list -> npz")
    b.add_argument("--pdb-dir", required=True)
    b.add_argument("--domain-list", required=True, help="CathDomainList text file")
    b.add_argument("--boundaries", default=None,
                   help="CathDomall boundaries file, or 'domain chain:start-end[,...]' lines")
    b.add_argument("--out", required=True)
    b.add_argument("--level", default="arch", help="class | arch | topo (label level)")
    b.add_argument("--group-level", default="topo",
                   help="sub-category kept within one split: topo (cath_datasets) or superfamily")
    b.add_argument("--min-size", type=int, default=500, help="classes need this many usable domains")
    b.add_argument("--per-class", type=int, default=None, help="domains per class (default: smallest class)")
    b.add_argument("--n-splits", type=int, default=10)
    b.add_argument("--max-resolution", type=float, default=3.5)
    b.add_argument("--max-radius", type=float, default=50.0,
                   help="published rule: a domain with any atom farther (Å) from its all-atom centre is left out")
    b.add_argument("--report", default=None, help="skipped-structure report (default <out>.report.tsv)")
    s = sub.add_parser("standin", help="write the offline stand-in (raw files + npz) into a folder")
    s.add_argument("--out", required=True)
    s.add_argument("--per-class", type=int, default=60)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--topologies", type=int, default=12)
    i = sub.add_parser("info", help="validate an npz and print its classes and splits")
    i.add_argument("file")
    i.add_argument("--grid-size", type=int, default=50, help="voxel box checked: bins per side")
    i.add_argument("--bin-size", type=float, default=2.0, help="voxel box checked: bin size (Å)")
    args = p.parse_args(argv)
    if args.cmd == "build":
        r = build_dataset(args.pdb_dir, args.domain_list, args.out, args.boundaries, args.level,
                          args.group_level, args.min_size, args.per_class, args.n_splits,
                          args.max_resolution, args.max_radius, args.report)
        print(build_summary_text(r, Path(args.domain_list).name, Path(args.pdb_dir).name, args.max_radius))
    elif args.cmd == "standin":
        wrote = prepare_stand_in(args.out, args.per_class, args.topologies, args.seed)
        print(f"{'wrote' if wrote else 'kept'} the stand-in in {args.out} ({FILES['10arch']})")
    else:
        a = load_npz(args.file, (args.grid_size, args.bin_size))
        sizes = np.diff(list(a.split_start_indices) + [len(a)]).tolist()
        out = outside_counts(a.positions, a.n_atoms, args.grid_size, args.bin_size)
        print(f"{a.path}: {len(a)} records, max_atoms {a.positions.shape[1]}, classes "
              f"{['.'.join(map(str, c)) for c in a.label_set]}, split sizes {sizes}; "
              f"{int((out > 0).sum())} records with atoms outside the {args.grid_size} x "
              f"{args.bin_size:g} Å box ({int(out.sum())} atoms)")


if __name__ == "__main__":
    sys.exit(_cli())
