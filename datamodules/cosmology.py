"""Cosmological model discrimination on HEALPix convergence maps (Perraudin et al. 2019, ASCOM).

Paper: Perraudin, Defferrard, Kacprzak, Sgier, "DeepSphere: efficient spherical convolutional
neural network with HEALPix sampling for cosmological applications", Astron. & Comput. 27:130
(2019), §"Data" and §"Results"; reference code deepsphere-cosmo-tf1 (``data_preprocess.py``,
``deepsphere/experiment_helper.py``, ``deepsphere/data.py``).

Layout read from ``--data-dir`` (the layout of deepsphere-cosmo-tf1 after preprocessing)::

    <data-dir>/same_psd/            training maps (paper: 20 per class)
    <data-dir>/same_psd_testing/    test maps (paper: 10 per class)

each holding *either*

* ``smoothed_class1_sigma3.npz`` and ``smoothed_class2_sigma3.npz``: key ``arr_0``, an array
  ``(n_maps, 12·Nside²)`` of NESTED maps (``np.savez`` of a list of maps), read with
  ``np.load(allow_pickle=False)``; the ``3`` is ``smoothing_arcmin``;
* or one FITS file per map (``*.fits``, ``*.fit``, ``*.fts``, each optionally ``.gz``; as
  ``healpy.write_map`` writes them: a table in HDU 1, ``NSIDE`` = the configured Nside, header
  ``ORDERING`` = ``NESTED`` or ``RING``, RING being reordered to NESTED; partial-sky files with
  explicit indexing are expanded with UNSEEN), the class told by a token of the file name: the
  first of ``fits_class_tokens`` (``0p26``) for class 1, the second (``0p31``) for class 2 — the
  rule of cosmo-tf1 ``data_preprocess.smooth``, which files the Ωm = 0.26 maps as
  ``smoothed_class1`` (the paper's figure legend numbers the classes the other way round; labels
  are symmetric). The map is the column ``data.fits_column`` (0-based index or ``TTYPEn`` name);
  unset, a file must have exactly one column besides the mask, else it is refused as ambiguous
  with its column names listed. ``data.fits_mask_column`` (optional) names a mask column: a pixel
  is observed where it is ``> 0`` (HEALPix masks: 1 = observed, 0 = masked).

When both forms are present the npz files win (cosmo-tf1 keeps the raw, RING-ordered FITS
next to them); the two column keys then are an error, not silently unused. Every map is checked:
shape / Nside, ordering, finite values in observed pixels, at least one observed pixel; a bad
file raises :class:`InputError` naming it.

Partial sky. A pixel is *unobserved* where the map is ``healpy.UNSEEN`` (npz or FITS), the
mask column is ``≤ 0``, or the mask file ``data.mask_file`` (a HEALPix FITS mask as WMAP's or
Planck's, any ordering and Nside, :func:`read_mask`) is ``≤ 0`` there (whatever the map holds,
NaN included). Conversions made while reading — RING files reordered to NESTED, a mask of another
Nside degraded or upgraded — are said in one line each. Such pixels are honoured, not
scored: a partial map (below) less than ``data.min_observed_fraction`` (default 0.5) observed is
dropped, the count per split kept in the samples' ``dropped`` (and reported as the run's
``unseen_blocks_dropped_<split>`` columns); the normalising std is taken over observed pixels
only; unobserved pixels are set to 0 (the maps' mean) after normalisation and stay 0 after the
noise of every sample served (training draws included). A split left without a class is an
error with the count. Full-sky maps (the paper's, the stand-in's) take none of these steps, so
their samples are bit-for-bit those of a reader without masking. The models see one channel, so
a 0 fill is indistinguishable from an observed 0: with heavy masks, drop more
(``min_observed_fraction`` up to 1, i.e. only complete blocks).

Samples (cosmo-tf1 ``hp_split``, ``get_training_data``, ``data_preprossing``):

* partial maps: a map of ``12·Nside²`` NEST pixels is reshaped to ``(12·o², (Nside/o)²)``, i.e.
  the ``12·o²`` contiguous NEST blocks of order ``o`` (1/12, 1/48, 1/192 of the sphere for
  ``o = 1, 2, 4``), each a sample with its map's label;
* normalisation: every sample is divided by ``s = std(all training samples)`` (the maps have
  zero mean); ``s`` is the datamodule's Lightning state, saved in checkpoints, so that
  ``--evaluate`` needs only the test split (:class:`CosmologyDataModule`);
* noise: ``x + level·n``, ``n ~ N(0, 1)`` i.i.d. per pixel; for training a fresh draw every
  time a sample is served (``LabeledDatasetWithNoise``), for validation and test one fixed draw
  (``RandomState(1)`` in the reference; here ``default_rng([1, split])``, independent of the
  run seed);
* validation: 20 % of the training *samples*, ``train_test_split(train_size=0.8,
  random_state=0, shuffle=True)`` (40 training maps, 20 test maps as in the paper).

The offline stand-in (:func:`write_stand_in`, parameters :class:`StandInMaps` = the config's
``data.stand_in_maps``) writes FITS files in this layout; they are read back by the same code. Its
construction is documented there and in :func:`stand_in_description`; the datamodule's
``prepare_data`` writes it through the stand-in manifest (:func:`datamodules._common.ensure_stand_in`).
"""
from __future__ import annotations

import itertools
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from datamodules._common import InputError, atomic_path, ensure_stand_in, eval_batch, eval_sampler, per_rank_batch

BENCH = "cosmology"
SPLIT_DIRS = {"train": "same_psd", "test": "same_psd_testing"}
NPZ_NAME = "smoothed_class{c}_sigma{s:g}.npz"
FITS_CLASS_TOKENS = ("0p26", "0p31")
HINT = ("pass --data-dir <folder with same_psd/ and same_psd_testing/> (deepsphere-cosmo-tf1 layout, "
        "see datamodules/cosmology.py), or --stand-in to generate the offline stand-in")


# --------------------------------------------------------------------------- reading
#: ``healpy.UNSEEN`` as float32: the marker of an unobserved pixel in the maps held in memory
UNSEEN32 = np.float32(-1.6375e30)
#: FITS map files: ``.fits``, ``.fit``, ``.fts``, each optionally gzipped
FITS_SUFFIX = re.compile(r"\.(fits?|fts)(\.gz)?$", re.I)
#: a FITS column chosen by its 0-based index among the map columns or by its name (``TTYPEn``)
Column = int | str | None


class Split(NamedTuple):
    """One split as read: ``maps (n, 12·Nside²) float32 NEST`` (``UNSEEN32`` where unobserved),
    ``labels (n,) int64`` (0 = class 1), ``form`` (``"npz"`` / ``"fits"``) and the files read."""

    maps: np.ndarray
    labels: np.ndarray
    form: str
    files: tuple[Path, ...]


def _observed_map(m: np.ndarray, seen: np.ndarray, path: Path, what: str) -> np.ndarray:
    """``m`` as float32 with ``UNSEEN32`` where ``seen`` is False; an observed NaN/inf pixel or a
    map without any observed pixel is an :class:`InputError` naming ``path``."""
    bad = seen & ~np.isfinite(m)
    if bad.any():
        raise InputError(f"{BENCH}: {path}: {what} contains {int(bad.sum())} NaN/inf pixel(s)"
                         + ("" if seen.all() else " outside the unobserved (UNSEEN/masked) ones"))
    if not seen.any():
        raise InputError(f"{BENCH}: {path}: {what} has no observed pixel (all UNSEEN or masked)")
    out = m.astype(np.float32)
    out[~seen] = UNSEEN32
    return out


def _read_npz(path: Path, nside: int) -> np.ndarray:
    import healpy as hp

    npix = 12 * nside * nside
    try:
        with np.load(path, allow_pickle=False) as z:
            if "arr_0" not in z.files:
                raise InputError(f"{BENCH}: {path}: no key 'arr_0' (keys: {', '.join(z.files) or 'none'})")
            arr = z["arr_0"]
    except InputError:
        raise
    except ValueError as e:  # object arrays need pickle: refused
        raise InputError(f"{BENCH}: {path}: unreadable npz ({e})") from None
    except Exception as e:  # zipfile/numpy raise OSError, EOFError, BadZipFile, KeyError...
        raise InputError(f"{BENCH}: {path}: unreadable npz ({type(e).__name__}: {e})") from None
    if arr.dtype.kind != "f":
        raise InputError(f"{BENCH}: {path}: arr_0 has dtype {arr.dtype}, expected floating point maps")
    if arr.ndim != 2 or arr.shape[1] != npix or arr.shape[0] < 1:
        raise InputError(f"{BENCH}: {path}: arr_0 has shape {arr.shape}, expected (n_maps, {npix}) "
                         f"= HEALPix Nside {nside} maps in NESTED order")
    return np.stack([_observed_map(m, ~hp.mask_bad(m), path, f"arr_0[{i}]") for i, m in enumerate(arr)])


def _columns_listing(names: Sequence[str]) -> str:
    return ", ".join(f"[{i}] {n}" for i, n in enumerate(names))


def _pick_column(spec: Column, names: Sequence[str], path: Path, key: str, exclude: int | None = None) -> int:
    """Index of column ``spec`` (index or case-insensitive name) among ``names``; ``None``: the one
    column other than ``exclude``, else the file is ambiguous."""
    if spec is None:
        rest = [i for i in range(len(names)) if i != exclude]
        if len(rest) == 1:
            return rest[0]
        raise InputError(f"{BENCH}: {path}: {len(names)} map columns ({_columns_listing(names)}), which "
                         f"one is the map is ambiguous; set config data.fits_column to its name or 0-based "
                         f"index" + ("" if exclude is not None else
                                     " (and data.fits_mask_column to a mask column, if there is one)"))
    if isinstance(spec, int):
        if 0 <= spec < len(names):
            return spec
    else:
        hits = [i for i, n in enumerate(names) if n.strip().upper() == spec.strip().upper()]
        if len(hits) == 1:
            return hits[0]
    raise InputError(f"{BENCH}: {path}: no map column {spec!r} (config data.{key}); columns: "
                     f"{_columns_listing(names)}")


def read_fits_map(path: Path, nside: int, column: Column = None, mask_column: Column = None,
                  reordered: list | None = None) -> np.ndarray:
    """One map of the configured Nside from a HEALPix FITS file, NESTED, float32, ``UNSEEN32`` at
    unobserved pixels.

    ``column`` selects the map among the table's columns of HDU 1 (0-based index as healpy's
    ``field``, or ``TTYPEn`` name, case-insensitive; ``None``: the file must have exactly one column
    besides the mask). ``mask_column`` (optional): a pixel is observed where that column is
    ``> 0`` (the 1 = observed, 0 = masked convention of HEALPix masks). A pixel is also unobserved
    where the map is ``healpy.UNSEEN`` (partial-sky files with explicit indexing are expanded by
    ``healpy.read_map`` with UNSEEN). ``ORDERING`` must be ``NESTED`` or ``RING`` (RING is
    reordered to NESTED); NaN/inf in an observed pixel is refused.
    """
    import healpy as hp
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise InputError(f"{BENCH}: {path}: no binary table in HDU 1 (the HEALPix map layout "
                                 f"healpy.write_map writes)")
            hdr = hdul[1].header
            names = [str(n) for n in hdul[1].columns.names]
            partial = (str(hdr.get("OBJECT", "")).strip().upper() == "PARTIAL"
                       or str(hdr.get("INDXSCHM", "")).strip().upper() == "EXPLICIT")
            if partial:  # the first column holds the pixel indices (healpy's field 0 is the next one)
                names = names[1:]
            ordering = str(hdr.get("ORDERING", "")).strip().upper()
            if ordering not in ("NESTED", "RING"):
                raise InputError(f"{BENCH}: {path}: ORDERING is '{ordering or 'missing'}', expected NESTED "
                                 f"or RING (header keyword ORDERING; without it the pixel order is unknown)")
            mi = None if mask_column is None else _pick_column(mask_column, names, path, "fits_mask_column")
            ci = _pick_column(column, names, path, "fits_column", exclude=mi)
            if ci == mi:
                raise InputError(f"{BENCH}: {path}: config data.fits_column and data.fits_mask_column both "
                                 f"select column [{ci}] {names[ci]}")
            fields = (ci,) if mi is None else (ci, mi)
            out = hp.read_map(hdul, field=fields, nest=None, dtype=[np.float64] * len(fields), hdu=1,
                              partial=partial)
    except InputError:
        raise
    except Exception as e:  # astropy/healpy raise OSError, ValueError, TypeError, KeyError...
        raise InputError(f"{BENCH}: {path}: unreadable FITS map ({type(e).__name__}: {e})") from None
    m, mask = (out, None) if mi is None else (out[0], out[1])
    got = hp.npix2nside(len(m)) if hp.isnpixok(len(m)) else None
    if got != nside:
        raise InputError(f"{BENCH}: {path}: HEALPix Nside {got if got else f'? ({len(m)} pixels)'}, "
                         f"expected {nside} (config data.nside)")
    if ordering == "RING":  # to NESTED: pixel p of the NESTED map is pixel nest2ring(p) of the file
        idx = hp.nest2ring(nside, np.arange(len(m)))
        m, mask = m[idx], (None if mask is None else mask[idx])
        if reordered is not None:
            reordered.append(path)
    seen = ~hp.mask_bad(m)
    if mask is not None:
        seen &= mask > 0
    return _observed_map(m, seen, path, f"column [{ci}] {names[ci]}" if len(names) > 1 else "map")


def fits_label(name: str, tokens: Sequence[str]) -> int | None:
    hits = [i for i, t in enumerate(tokens) if t in name]
    return hits[0] if len(hits) == 1 else None


def read_split(folder: Path, nside: int, smoothing_arcmin: float = 3, tokens: Sequence[str] = FITS_CLASS_TOKENS,
               column: Column = None, mask_column: Column = None) -> Split:
    """All maps of one split (:class:`Split`); labels: 0 = class 1, 1 = class 2.

    ``column`` / ``mask_column``: :func:`read_fits_map`; they concern FITS files only, so setting
    them for a folder read in the npz form is an :class:`InputError`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{BENCH}: missing folder {folder}; {HINT}")
    npz = [folder / NPZ_NAME.format(c=c, s=smoothing_arcmin) for c in (1, 2)]
    have = [p.is_file() for p in npz]
    if any(have):
        if not all(have):
            missing = npz[have.index(False)]
            raise InputError(f"{BENCH}: {folder} has {npz[have.index(True)].name} but not {missing.name}")
        if column is not None or mask_column is not None:
            raise InputError(f"{BENCH}: {folder} is read in the npz form ({npz[0].name}, {npz[1].name}, which win "
                             f"over FITS files), but config data.fits_column / data.fits_mask_column is set; "
                             f"unset it, or move the npz files away to read the FITS maps")
        arrs = [_read_npz(p, nside) for p in npz]
        maps = np.concatenate(arrs)
        labels = np.concatenate([np.full(len(a), c, np.int64) for c, a in enumerate(arrs)])
        return Split(maps, labels, "npz", tuple(npz))
    files = sorted(p for p in folder.iterdir() if p.is_file() and FITS_SUFFIX.search(p.name))
    if not files:
        raise InputError(f"{BENCH}: {folder} holds neither {npz[0].name}/{npz[1].name} nor FITS maps "
                         f"(*.fits, *.fit, *.fts, optionally .gz); {HINT}")
    maps, labels, reordered = [], [], []
    for p in files:
        lab = fits_label(p.name, tokens)
        if lab is None:
            raise InputError(f"{BENCH}: {p}: cannot tell the class from the file name (it must contain "
                             f"exactly one of {', '.join(tokens)}: config data.fits_class_tokens)")
        maps.append(read_fits_map(p, nside, column, mask_column, reordered))
        labels.append(lab)
    if reordered:
        say(f"{BENCH}: {folder}: {len(reordered)} of {len(files)} FITS map(s) RING-ordered (e.g. "
            f"{reordered[0].name}), reordered to NESTED")
    return Split(np.stack(maps), np.array(labels, np.int64), "fits", tuple(files))


def say(line: str) -> None:
    """One line on stderr: a conversion made to the data as read (reordering, resolution, mask)."""
    print(line, file=sys.stderr, flush=True)


def read_mask(path: str | os.PathLike, nside: int) -> np.ndarray:
    """A HEALPix mask file (as WMAP's and Planck's: the first column of the binary table in HDU 1,
    ``ORDERING`` RING or NESTED, any Nside that is a power of 2) as ``(12·nside²,)`` bool NESTED,
    True where observed (value ``> 0``, the HEALPix convention 1 = observed, 0 = masked; UNSEEN /
    NaN = masked). Its conversions are said in one line each: RING reordered to NESTED; a finer
    mask degraded (a pixel is observed only where every finer pixel is), a coarser one upgraded
    (each pixel's sub-pixels take its value). A file that cannot be used raises :class:`InputError`."""
    import healpy as hp
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{BENCH}: mask file {path} (config data.mask_file) does not exist")
    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                raise InputError(f"{BENCH}: mask {path}: no binary table in HDU 1 (the HEALPix map layout)")
            hdr = hdul[1].header
            names = [str(n) for n in hdul[1].columns.names]
            partial = (str(hdr.get("OBJECT", "")).strip().upper() == "PARTIAL"
                       or str(hdr.get("INDXSCHM", "")).strip().upper() == "EXPLICIT")
            ordering = str(hdr.get("ORDERING", "")).strip().upper()
            if ordering not in ("NESTED", "RING"):
                raise InputError(f"{BENCH}: mask {path}: ORDERING is '{ordering or 'missing'}', expected NESTED "
                                 f"or RING")
            m = hp.read_map(hdul, field=0, nest=None, dtype=np.float64, hdu=1, partial=partial)
    except InputError:
        raise
    except Exception as e:  # astropy/healpy raise OSError, ValueError, TypeError, KeyError...
        raise InputError(f"{BENCH}: mask {path}: unreadable FITS map ({type(e).__name__}: {e})") from None
    column = names[1 if partial else 0] if names else "?"
    if not hp.isnpixok(len(m)):
        raise InputError(f"{BENCH}: mask {path}: {len(m)} pixels is no HEALPix map")
    got = hp.npix2nside(len(m))
    if ordering == "RING":
        m = m[hp.nest2ring(got, np.arange(len(m)))]
        say(f"{BENCH}: mask {path.name} (column {column}, Nside {got}): RING-ordered, reordered to NESTED")
    seen = np.isfinite(m) & ~hp.mask_bad(m) & (m > 0)
    if got > nside:
        seen = seen.reshape(12 * nside * nside, -1).all(1)
        say(f"{BENCH}: mask {path.name}: Nside {got} degraded to the maps' Nside {nside} (a pixel is observed "
            f"only where all {(got // nside) ** 2} of its Nside-{got} pixels are)")
    elif got < nside:
        seen = np.repeat(seen, (nside // got) ** 2)
        say(f"{BENCH}: mask {path.name}: Nside {got} upgraded to the maps' Nside {nside} (each pixel's "
            f"{(nside // got) ** 2} sub-pixels take its value)")
    if not seen.any():
        raise InputError(f"{BENCH}: mask {path}: no observed pixel (every value is 0, negative, UNSEEN or NaN)")
    say(f"{BENCH}: mask {path.name}: {100 * seen.mean():.1f} % of the sky observed; the maps' other pixels "
        f"are unobserved")
    return seen


#: split name → (cache key, value): one dataset in memory per split (the paper's is ~3 GB)
_CACHE: dict[str, tuple] = {}


def load_data(data_dir: str | os.PathLike, nside: int, smoothing_arcmin: float = 3,
              tokens: Sequence[str] = FITS_CLASS_TOKENS, *, splits: Sequence[str] = ("train", "test"),
              column: Column = None, mask_column: Column = None, mask_file: str | os.PathLike | None = None) -> dict:
    """The given splits, validated (cached in-process by folder, reader options and file stamps).
    ``mask_file``: a HEALPix mask (:func:`read_mask`) applied to every map: its masked pixels are
    unobserved.

    Returns ``{split: (maps, labels)}`` for each of ``splits``, plus ``"form"`` (``"npz"``,
    ``"fits"`` or ``"fits+npz"``), ``"files"`` (``{split: files read}``) and ``"unseen"``
    (``{split: number of unobserved pixels}``).
    """
    root = Path(data_dir).resolve()
    if not root.is_dir():
        raise InputError(f"{BENCH}: data directory {root} does not exist; {HINT}")
    out: dict = {"files": {}, "unseen": {}}
    forms = set()
    mask_stamp = None
    if mask_file is not None:
        mp = Path(mask_file).expanduser().resolve()
        mask_stamp = (str(mp), mp.stat().st_mtime_ns, mp.stat().st_size) if mp.is_file() else (str(mp),)
    mask = None
    for split in splits:
        d = root / SPLIT_DIRS[split]
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(d.iterdir())) \
            if d.is_dir() else ()
        key = (str(d), int(nside), float(smoothing_arcmin), tuple(tokens), column, mask_column, stamp, mask_stamp)
        if split in _CACHE and _CACHE[split][0] == key:
            s, unseen = _CACHE[split][1]
        else:
            s = read_split(d, nside, smoothing_arcmin, tokens, column, mask_column)
            if mask_file is not None:
                if mask is None:
                    mask = read_mask(mask_file, nside)
                s.maps[:, ~mask] = UNSEEN32
                empty = [i for i in range(len(s.maps)) if not (s.maps[i] != UNSEEN32).any()]
                if empty:
                    raise InputError(f"{BENCH}: {s.files[min(empty[0], len(s.files) - 1)]}: no observed pixel "
                                     f"left under the mask {mask_file}")
            counts = np.bincount(s.labels, minlength=2)
            if (counts == 0).any():
                raise InputError(f"{BENCH}: {d}: no maps of class {int(np.argmin(counts)) + 1} "
                                 f"(found {counts[0]} of class 1, {counts[1]} of class 2)")
            unseen = int(np.count_nonzero(s.maps == UNSEEN32))
            _CACHE.pop(split, None)  # free the old arrays before keeping the new ones
            _CACHE[split] = (key, (s, unseen))
        out[split] = (s.maps, s.labels)
        out["files"][split] = s.files
        out["unseen"][split] = unseen
        forms.add(s.form)
    out["form"] = "+".join(sorted(forms))
    return out


# --------------------------------------------------------------------------- samples
def partial_maps(maps: np.ndarray, labels: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Split NEST maps into the ``12·o²`` contiguous blocks of order ``o`` (cosmo-tf1 ``hp_split``).

    ``(n, 12·Nside²) → (n·12·o², (Nside/o)²)``; sample ``i·12o² + b`` is block ``b`` of map ``i``.
    """
    n, npix = maps.shape
    nside = int(round((npix / 12) ** 0.5))
    order = int(order)
    if order < 1 or order & (order - 1) or order > nside:
        raise InputError(f"{BENCH}: order must be a power of 2 between 1 and Nside ({nside}), got {order}")
    nblock = 12 * order * order
    return maps.reshape(n * nblock, npix // nblock), np.repeat(labels, nblock)


def _blocks(data: dict, split: str, order: int, min_observed: float):
    """Partial maps of one split ``(x, y, seen, dropped)``: ``seen`` is None when the split has no
    unobserved pixel, else the observed-pixel mask of the blocks kept (those at least
    ``min_observed`` observed); ``dropped`` counts the others."""
    x, y = partial_maps(*data[split], order)
    if not data.get("unseen", {}).get(split):
        return x, y, None, 0
    seen = x != UNSEEN32
    keep = seen.mean(1) >= min_observed
    dropped = int(np.count_nonzero(~keep))
    counts = np.bincount(y[keep], minlength=2)
    if (counts == 0).any():
        files = data.get("files", {}).get(split)
        where = Path(files[0]).parent if files else f"the {split} split"
        raise InputError(f"{BENCH}: {where}: {dropped} of {len(y)} partial maps of order {order} are less than "
                         f"{min_observed:.0%} observed (UNSEEN or masked pixels) and dropped, leaving "
                         f"{counts[0]} of class 1 and {counts[1]} of class 2; lower config "
                         f"data.min_observed_fraction or the order")
    if dropped:
        x, y, seen = x[keep], y[keep], seen[keep]
    return x, y, seen, dropped


def _zero_unseen(x: np.ndarray, seen: np.ndarray | None) -> np.ndarray:
    """``x`` with the unobserved pixels set to 0 (in place; ``x`` is a fresh array)."""
    if seen is not None:
        x[~seen] = 0
    return x


def prepare_samples(data: dict, order: int, noise: float, val_fraction: float = 0.2,
                    min_observed: float = 0.5, std: float | None = None) -> dict:
    """Normalised partial maps, the train/validation split and the fixed validation/test noise.

    Unobserved pixels (``UNSEEN32`` in ``data``'s maps): a block less than ``min_observed``
    observed is dropped (counted in ``dropped``); the std is taken over the observed pixels of the
    training blocks kept; unobserved pixels are 0 in every sample served, after normalisation and
    after noise (0 is the maps' mean). Maps without unobserved pixels take none of these steps.

    ``std``: the training std to normalise with (restored from a checkpoint); None: computed from
    ``data["train"]``. Given, ``data`` may hold the test split only: then only the test samples
    are made (the validation split and the noise draws of the test samples do not depend on it).

    Returns a dict with ``x_train`` (clean), ``y_train``, ``seen_train`` (observed-pixel mask of
    ``x_train``, None for full-sky data), ``x_val``, ``y_val`` (when ``data`` has the training
    split), ``x_test``, ``y_test`` (noisy, fixed), ``std`` (the training std used to normalise),
    ``unseen`` (``{split: unobserved pixels}``, as ``data`` says) and ``dropped``
    (``{split: blocks dropped}``).
    """
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise InputError(f"{BENCH}: data.val_fraction must be in (0, 1), got {val_fraction}")
    if std is None and "train" not in data:
        raise InputError(f"{BENCH}: no training std to normalise the test maps with")
    out: dict = {"unseen": dict(data.get("unseen", {})), "dropped": {}}
    if "train" in data:
        xtr, ytr, seen_tr, out["dropped"]["train"] = _blocks(data, "train", order, min_observed)
        if std is None:
            std = float(np.std(xtr if seen_tr is None else xtr[seen_tr], dtype=np.float64))
    if not std > 0 or not np.isfinite(std):
        raise InputError(f"{BENCH}: the training maps are constant (std 0)" if std == 0 else
                         f"{BENCH}: training std {std!r} is not a positive number")
    out["std"] = std = float(std)
    if "train" in data:
        if seen_tr is not None:
            xtr = np.where(seen_tr, xtr, np.float32(0))
        xtr = xtr / np.float32(std)
        arrays = [xtr, ytr] + ([] if seen_tr is None else [seen_tr])
        parts = train_test_split(*arrays, train_size=1 - val_fraction, shuffle=True, random_state=0)
        x_train, x_val, y_train, y_val = parts[:4]
        seen_train, seen_val = (None, None) if seen_tr is None else parts[4:]
        x_val = _zero_unseen(add_noise(x_val, noise, np.random.default_rng([1, 0])), seen_val)
        out.update(x_train=x_train, y_train=y_train, seen_train=seen_train, x_val=x_val, y_val=y_val)
    xte, yte, seen_te, out["dropped"]["test"] = _blocks(data, "test", order, min_observed)
    if seen_te is not None:
        xte = np.where(seen_te, xte, np.float32(0))
    xte = xte / np.float32(std)
    out.update(x_test=_zero_unseen(add_noise(xte, noise, np.random.default_rng([1, 1])), seen_te), y_test=yte)
    return out


def add_noise(x: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """``x + level·n``, ``n ~ N(0, 1)`` i.i.d. (float32)."""
    if not level:
        return x.astype(np.float32, copy=True)
    return (x + np.float32(level) * rng.standard_normal(x.shape, dtype=np.float32)).astype(np.float32)


@dataclass(frozen=True)
class StandInMaps:
    """How the offline stand-in is made (config ``data.stand_in_maps``; Nside = ``data.nside``).

    ``skew`` is the lognormal parameter λ of class 1 / class 2 (skewness ≈ 3λ); ``ell0`` and
    ``beam_pixels`` shape the common spectrum (:func:`stand_in_cl`); ``paired``: map i of both
    classes shares its Gaussian field ("identical initial conditions"); ``seed`` seeds them.
    """

    train_maps_per_class: int = 20
    test_maps_per_class: int = 10
    skew: tuple[float, float] = (0.5, 1.0)
    ell0: float = 20.0
    beam_pixels: float = 1.0
    paired: bool = True
    seed: int = 0


class NoisyMaps(Dataset):
    """Clean training samples; every access adds a fresh noise draw (``LabeledDatasetWithNoise``).

    Items are ``(x (V, 1) float32, label)``; the noise comes from torch's global generator, which
    the runner seeds per run. ``seen`` (optional, ``x``'s shape): pixels where it is False stay 0
    (unobserved pixels of partial-sky data get no noise).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, level: float, seen: np.ndarray | None = None):
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
        self.level = float(level)
        self.unseen = None if seen is None else torch.from_numpy(~np.asarray(seen, dtype=bool))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if self.level:
            x = x + self.level * torch.randn_like(x)
            if self.unseen is not None:
                x = x.masked_fill(self.unseen[i], 0.0)
        return x[:, None], self.y[i]


def _fixed(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, :, None],
                         torch.from_numpy(np.asarray(y, dtype=np.int64)))


class CosmologyDataModule(pl.LightningDataModule):
    """Partial convergence maps of one order and noise level, as ``(B, V, 1)`` NEST tensors.

    Batches (every loader): ``(x, y)`` — ``x`` float32 ``(B, V, 1)``, one partial map per sample
    (V HEALPix pixels in NEST order, one channel, divided by the training std, noise added);
    ``y`` int64 ``(B,)``, the class 0/1. The model takes ``x`` as it is (:meth:`model_batch`).

    ``V = (Nside/order)²``. The keyword arguments after ``noise`` are the config's ``data``
    section; ``order`` and ``noise`` are the grid setting. Training batches hold
    ``batch_per_order2·order²`` samples (the paper's "constant number of pixels per step",
    16·o²). With ``stand_in`` set, :meth:`prepare_data` writes the offline stand-in described by
    ``stand_in_maps`` into ``data_dir`` (reused when its manifest matches). ``fits_column``,
    ``fits_mask_column`` and ``min_observed_fraction`` (the partial-sky rule) are described in the
    module docstring; their defaults read the paper's single-column full-sky files unchanged.

    What the test samples need from the training data — the normalising std — is the
    datamodule's Lightning state (:meth:`state_dict`, saved in every checkpoint; restored by
    :meth:`load_state_dict`, which wins over a std computed from a training split). ``require_train``
    is not a config key; the runner passes False under ``--evaluate`` (an explicit argument, because
    ``prepare_data`` runs before the checkpoint's state is restored, so the state cannot tell it):
    :meth:`prepare_data` then validates the test split only, and ``setup("test")`` reads the
    training split only when no std was restored — and, that split missing, raises one
    :class:`InputError` saying so. ``test_files`` lists the files the test samples come from.

    >>> CosmologyDataModule("data", order=4, batch_per_order2=16).batch_size
    256
    """

    def __init__(self, data_dir: Path, stand_in: bool = False, order: int = 1, noise: float = 0.0,
                 num_classes: int = 2, nside: int = 1024, smoothing_arcmin: float = 3,
                 fits_class_tokens: tuple[str, str] = FITS_CLASS_TOKENS, val_fraction: float = 0.2,
                 batch_per_order2: int = 16, test_batch_size: int = 64,
                 stand_in_maps: StandInMaps = StandInMaps(), num_workers: int = 0,
                 fits_column: int | str | None = None, fits_mask_column: int | str | None = None,
                 min_observed_fraction: float = 0.5, require_train: bool = True,
                 mask_file: str | None = None):
        super().__init__()
        if num_classes != 2:
            raise InputError(f"{BENCH}: num_classes must be 2, got {num_classes}")
        if not 0 < min_observed_fraction <= 1:
            raise InputError(f"{BENCH}: data.min_observed_fraction must be in (0, 1], got {min_observed_fraction}")
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.nside, self.order, self.noise = int(nside), int(order), float(noise)
        self.batch_size = int(batch_per_order2) * self.order ** 2
        self.test_batch_size, self.val_fraction = int(test_batch_size), float(val_fraction)
        self.smoothing_arcmin, self.tokens = smoothing_arcmin, tuple(fits_class_tokens)
        self.stand_in_maps, self.num_workers = stand_in_maps, int(num_workers)
        self.fits_column, self.fits_mask_column = fits_column, fits_mask_column
        self.min_observed = float(min_observed_fraction)
        self.require_train = bool(require_train)
        self.mask_file = None if mask_file in (None, "") else Path(mask_file).expanduser()
        self.samples: dict | None = None
        self.test_files: tuple[Path, ...] = ()  # set by setup: the files of the test samples
        self._train_std: float | None = None    # restored by load_state_dict

    @property
    def num_vertices(self) -> int:
        return (self.nside // self.order) ** 2

    def prepare_data(self) -> None:
        """Write the stand-in when asked (manifest: reused when its parameters and files are
        unchanged), then read and validate both splits (cached in-process); the test split only
        when ``require_train`` is False."""
        if self.stand_in:
            m, tokens = self.stand_in_maps, self.tokens
            params = {"nside": self.nside, **asdict(m), "tokens": list(tokens)}
            ensure_stand_in(self.data_dir, BENCH, params, lambda d: write_stand_in(d, self.nside, m, tokens),
                            stand_in_description(self.nside, m))
        self._load(("train", "test") if self.require_train else ("test",))

    def _load(self, splits: Sequence[str] = ("train", "test")) -> dict:
        return load_data(self.data_dir, self.nside, self.smoothing_arcmin, self.tokens, splits=splits,
                         column=self.fits_column, mask_column=self.fits_mask_column, mask_file=self.mask_file)

    def setup(self, stage: str | None = None) -> None:
        """The samples of every split; for ``stage == "test"`` with a restored std, of the test
        split only."""
        if self.samples is not None and (stage == "test" or "x_train" in self.samples):
            return
        with_train = stage != "test" or self._train_std is None
        train_dir = self.data_dir / SPLIT_DIRS["train"]
        if with_train and not self.require_train and not train_dir.is_dir():
            raise InputError(f"{BENCH}: cannot normalise the test maps: the checkpoint holds no training std "
                             f"(no '{type(self).__qualname__}' state: written before the datamodule saved it) "
                             f"and {train_dir}, the training split to compute it from, is missing; evaluate "
                             f"on a folder with both splits, or with a checkpoint that carries the std")
        data = self._load(("train", "test") if with_train else ("test",))
        self.samples = s = prepare_samples(data, self.order, self.noise, self.val_fraction, self.min_observed,
                                           std=self._train_std)
        self.test_files = tuple(data["files"]["test"])
        if "x_train" in s:
            self.train_set = NoisyMaps(s["x_train"], s["y_train"], self.noise, s["seen_train"])
            self.val_set = _fixed(s["x_val"], s["y_val"])
        self.test_set = _fixed(s["x_test"], s["y_test"])

    def state_dict(self) -> dict:
        """``{"train_std": s}`` once known (Lightning saves it in checkpoints under this class's
        ``__qualname__``), else ``{}``."""
        std = self.samples["std"] if self.samples is not None else self._train_std
        return {} if std is None else {"train_std": float(std)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the training std of a checkpoint; samples already made with another std are
        made again."""
        std = state_dict.get("train_std")
        if std is None:
            return
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not (np.isfinite(std) and std > 0):
            raise InputError(f"{BENCH}: the checkpoint's datamodule state has train_std {std!r}; expected a "
                             f"positive number")
        self._train_std = float(std)
        if self.samples is not None and self.samples["std"] != self._train_std:
            stage = None if "x_train" in self.samples else "test"
            self.samples = None
            self.setup(stage)

    def train_realizations(self, seed: int) -> Iterator[np.ndarray]:
        """Noisy copies of the training samples, a fresh noise draw each (for the SVMs, which
        see a fixed training set); one clean copy only when the noise level is 0. The draws
        depend on ``seed``, the order and the noise level."""
        self.setup()
        x, seen = self.samples["x_train"], self.samples["seen_train"]
        if not self.noise:
            yield x.copy()
            return
        rng = np.random.default_rng([int(seed), 7, self.order, int(round(self.noise * 100))])
        for _ in itertools.count():
            yield _zero_unseen(add_noise(x, self.noise, rng), seen)

    def train_dataloader(self) -> DataLoader:
        # batch_size is the global batch: each of W DDP processes loads batch_size / W
        batch = per_rank_batch(self, self.batch_size, "data.batch_per_order2 x order^2")
        return DataLoader(self.train_set, batch_size=batch, shuffle=True, drop_last=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=eval_batch(self, self.test_batch_size), num_workers=self.num_workers,
                          sampler=eval_sampler(self, self.val_set, "cosmology validation set"))

    def model_batch(self, batch):
        """``(x, y)``: the model's input and target from a batch of this datamodule's loaders
        (what a training or test step feeds ``task(x)``), usable outside a Trainer."""
        return batch[0], batch[1]

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=eval_batch(self, self.test_batch_size), num_workers=self.num_workers,
                          sampler=eval_sampler(self, self.test_set, "cosmology test set"))


#: stand-in folders whose manifest this process has verified: path → (params, file stamps)
# --------------------------------------------------------------------------- stand-in
def stand_in_cl(nside: int, lmax: int, ell0: float = 20.0, beam_pixels: float = 1.0) -> np.ndarray:
    """Target angular power spectrum of the stand-in, ``C_ℓ = (ℓ + ℓ₀)⁻² · b_ℓ²``, ``C_0 = C_1 = 0``.

    ``b_ℓ = exp(−ℓ(ℓ+1)σ²/2)`` is a Gaussian beam of ``σ = beam_pixels`` pixel widths (the paper
    smooths with 3 arcmin ≈ 0.9 pixel at Nside 1024), so the signal is correlated over a few
    pixels while the added noise is white.
    """
    import healpy as hp

    ell = np.arange(lmax + 1, dtype=np.float64)
    sigma = beam_pixels * hp.nside2resol(nside)
    cl = (ell + ell0) ** -2.0 * np.exp(-ell * (ell + 1) * sigma ** 2)
    cl[:2] = 0.0
    return cl


def _gaussian_alm(cl: np.ndarray, lmax: int, rng: np.random.Generator) -> np.ndarray:
    """Random ``a_ℓm`` of a Gaussian isotropic field with spectrum ``C_ℓ`` (healpy ordering):
    ``a_ℓ0 ~ N(0, C_ℓ)`` real, ``Re, Im a_ℓm ~ N(0, C_ℓ/2)`` for ``m > 0``."""
    import healpy as hp

    ell, m = hp.Alm.getlm(lmax)
    sd = np.sqrt(cl[ell])
    re = rng.standard_normal(len(ell))
    im = rng.standard_normal(len(ell))
    alm = np.where(m == 0, sd * re, sd * (re + 1j * im) / np.sqrt(2)).astype(np.complex128)
    return alm


def stand_in_map(g_alm: np.ndarray, cl: np.ndarray, nside: int, lmax: int, skew: float) -> np.ndarray:
    """One stand-in map (NEST, float32) with full-sky spectrum exactly ``cl`` up to ``lmax``.

    ``g`` = the Gaussian field of ``g_alm`` at unit variance; ``y = (exp(λg) − mean)/λ`` (a
    lognormal field, skewness ≈ 3λ; ``y = g`` for λ = 0); then ``a_ℓm(y)`` is multiplied by
    ``sqrt(C_ℓ / Ĉ_ℓ(y))`` so that this realisation's power spectrum equals the target. The
    rescaling is a linear isotropic filter: it keeps the field non-Gaussian.
    """
    import healpy as hp

    g = hp.alm2map(g_alm, nside, lmax=lmax)
    g = (g - g.mean()) / g.std()
    if skew:
        y = np.exp(skew * g)
        y = (y - y.mean()) / skew
    else:
        y = g
    alm = hp.map2alm(y, lmax=lmax, iter=3)
    c = hp.alm2cl(alm)
    gain = np.divide(np.sqrt(cl), np.sqrt(c), out=np.zeros_like(cl), where=c > 0)
    m = hp.alm2map(hp.almxfl(alm, gain), nside, lmax=lmax)
    return hp.reorder(m, r2n=True).astype(np.float32)


#: what the stand-in is, in a few words (the table's preamble says it too)
STAND_IN_SUMMARY = "two classes of lognormal maps with identical power spectra"


def stand_in_description(nside: int, maps: StandInMaps) -> str:
    """What :func:`write_stand_in` makes with these parameters: the manifest's description and
    the stand-in note of ``results/cosmology.md``.

    >>> d = stand_in_description(64, StandInMaps(train_maps_per_class=8, test_maps_per_class=4))
    >>> "8 training and 4 test maps per class at Nside 64" in d, "λ = 0.5 (class 1) / 1 (class 2)" in d
    (True, True)
    """
    m = maps
    return (f"Offline stand-in, {STAND_IN_SUMMARY} ({m.train_maps_per_class} training and "
            f"{m.test_maps_per_class} test maps per class at Nside {nside}, written by "
            f"datamodules/cosmology.py::write_stand_in): per map, a Gaussian field with "
            f"C_ℓ ∝ (ℓ + {m.ell0:g})⁻²·b_ℓ² (Gaussian beam σ = {m.beam_pixels:g} pixel) is made "
            f"lognormal, (exp(λg) − mean)/λ with λ = {m.skew[0]:g} (class 1) / {m.skew[1]:g} (class 2), "
            f"and its a_ℓm are rescaled so that every map's full-sky spectrum equals the same C_ℓ"
            + (" (map i of both classes shares its Gaussian field, as the paper's identical initial "
               "conditions)" if m.paired else "")
            + ". Power spectra therefore carry no class information (the PSD SVM should sit near "
            "50 %), unlike the paper's maps whose spectra differ by ~5 % at ℓ > 1000; the classes "
            "differ in their one-point distribution and structure shapes. Written as NESTED FITS "
            "(class from the Ωm token of the file name) and read by the same reader as real data.")


def write_stand_in(data_dir: str | os.PathLike, nside: int = 64, maps: StandInMaps = StandInMaps(),
                   tokens: Sequence[str] = FITS_CLASS_TOKENS) -> Path:
    """Write the stand-in maps (:func:`stand_in_description`) into ``data_dir`` as FITS files in
    the deepsphere-cosmo-tf1 layout. No manifest: :meth:`CosmologyDataModule.prepare_data`
    writes it through :func:`datamodules._common.ensure_stand_in`."""
    import healpy as hp

    root = Path(data_dir)
    nside = int(nside)
    if nside < 1 or nside & (nside - 1):
        raise InputError(f"{BENCH}: stand-in Nside must be a power of 2, got {nside}")
    if len(maps.skew) != 2 or len(tokens) != 2:
        raise InputError(f"{BENCH}: stand-in needs two skew values and two class tokens")
    lmax = 3 * nside - 1
    cl = stand_in_cl(nside, lmax, maps.ell0, maps.beam_pixels)
    rng = np.random.default_rng([int(maps.seed), nside])
    counts = {"train": int(maps.train_maps_per_class), "test": int(maps.test_maps_per_class)}
    (root / "stand_in.json").unlink(missing_ok=True)  # parameters file of earlier versions
    for split, sub in SPLIT_DIRS.items():
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("stand_in_*.fits"):
            old.unlink()
        for i in range(counts[split]):
            alms = [_gaussian_alm(cl, lmax, rng)]
            alms.append(alms[0] if maps.paired else _gaussian_alm(cl, lmax, rng))
            for c in range(2):
                m = stand_in_map(alms[c], cl, nside, lmax, float(maps.skew[c]))
                path = d / f"stand_in_{split}_class{c + 1}_Om{tokens[c]}_{i:03d}.fits"
                with atomic_path(path) as tmp:
                    hp.write_map(str(tmp), m, nest=True, dtype=np.float32, overwrite=True)
    return root
