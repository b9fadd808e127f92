"""Cosmological model discrimination on HEALPix convergence maps (Perraudin et al. 2019, ASCOM).

Paper: Perraudin, Defferrard, Kacprzak, Sgier, "DeepSphere: efficient spherical convolutional
neural network with HEALPix sampling for cosmological applications", Astron. & Comput. 27:130
(2019), §"Data" and §"Results"; reference code deepsphere-cosmo-tf1 (``data_preprocess.py``,
``deepsphere/experiment_helper.py``, ``deepsphere/data.py``). Facts: shared/reference/
anchors-sphere.md §3.

Layout read from ``--data-dir`` (the layout of deepsphere-cosmo-tf1 after preprocessing)::

    <data-dir>/same_psd/            training maps (paper: 20 per class)
    <data-dir>/same_psd_testing/    test maps (paper: 10 per class)

each holding *either*

* ``smoothed_class1_sigma3.npz`` and ``smoothed_class2_sigma3.npz``: key ``arr_0``, an array
  ``(n_maps, 12·Nside²)`` of NESTED maps (``np.savez`` of a list of maps), read with
  ``np.load(allow_pickle=False)``; the ``3`` is ``smoothing_arcmin``;
* or one FITS file per map (``healpy.write_map(nest=True)``: header ``ORDERING = NESTED``,
  ``NSIDE`` = the configured Nside), the class told by a token of the file name: the first of
  ``fits_class_tokens`` (``0p26``) for class 1, the second (``0p31``) for class 2 — the rule of
  cosmo-tf1 ``data_preprocess.smooth``, which files the Ωm = 0.26 maps as ``smoothed_class1``
  (the paper's figure legend numbers the classes the other way round; labels are symmetric).

When both forms are present the npz files win (cosmo-tf1 keeps the raw, RING-ordered FITS
next to them). Every map is checked: shape / Nside, NESTED ordering, finite values (no NaN,
no ``healpy.UNSEEN``); a bad file raises :class:`InputError` naming it.

Samples (cosmo-tf1 ``hp_split``, ``get_training_data``, ``data_preprossing``):

* partial maps: a map of ``12·Nside²`` NEST pixels is reshaped to ``(12·o², (Nside/o)²)``, i.e.
  the ``12·o²`` contiguous NEST blocks of order ``o`` (1/12, 1/48, 1/192 of the sphere for
  ``o = 1, 2, 4``), each a sample with its map's label;
* normalisation: every sample is divided by ``s = std(all training samples)`` (the maps have
  zero mean);
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from datamodules._common import InputError, ensure_stand_in

BENCH = "cosmology"
SPLIT_DIRS = {"train": "same_psd", "test": "same_psd_testing"}
NPZ_NAME = "smoothed_class{c}_sigma{s:g}.npz"
FITS_CLASS_TOKENS = ("0p26", "0p31")
HINT = ("pass --data-dir <folder with same_psd/ and same_psd_testing/> (deepsphere-cosmo-tf1 layout, "
        "see datamodules/cosmology.py), or --stand-in to generate the offline stand-in")


# --------------------------------------------------------------------------- reading
def _check_map_values(arr: np.ndarray, path: Path, what: str) -> None:
    import healpy as hp

    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{BENCH}: {path}: {what} contains {int(bad.sum())} NaN/inf pixel(s)")
    unseen = np.isclose(arr, hp.UNSEEN)
    if unseen.any():
        raise InputError(f"{BENCH}: {path}: {what} contains {int(unseen.sum())} UNSEEN "
                         f"(masked) pixel(s); full-sky maps are expected")


def _read_npz(path: Path, nside: int) -> np.ndarray:
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
    _check_map_values(arr, path, "arr_0")
    return arr.astype(np.float32, copy=False)


def _fits_header(header) -> dict:
    return {str(k).upper(): v for k, v in (header.items() if hasattr(header, "items") else header)}


def read_fits_map(path: Path, nside: int) -> np.ndarray:
    """One NESTED map of the configured Nside from a FITS file (``healpy.read_map``)."""
    import healpy as hp

    try:
        m, header = hp.read_map(str(path), field=0, nest=None, h=True, dtype=np.float64)
    except Exception as e:  # astropy/healpy raise OSError, ValueError, TypeError, KeyError...
        raise InputError(f"{BENCH}: {path}: unreadable FITS map ({type(e).__name__}: {e})") from None
    h = _fits_header(header)
    ordering = str(h.get("ORDERING", "")).strip().upper()
    if ordering != "NESTED":
        raise InputError(f"{BENCH}: {path}: ORDERING is '{ordering or 'missing'}', expected NESTED "
                         f"(the preprocessed maps are NESTED; reorder with healpy.reorder(m, r2n=True))")
    got = hp.npix2nside(len(m)) if hp.isnpixok(len(m)) else None
    if got != nside:
        raise InputError(f"{BENCH}: {path}: HEALPix Nside {got if got else f'? ({len(m)} pixels)'}, "
                         f"expected {nside} (config data.nside)")
    _check_map_values(m, path, "map")
    return m.astype(np.float32)


def fits_label(name: str, tokens: Sequence[str]) -> int | None:
    hits = [i for i, t in enumerate(tokens) if t in name]
    return hits[0] if len(hits) == 1 else None


def read_split(folder: Path, nside: int, smoothing_arcmin: float = 3,
               tokens: Sequence[str] = FITS_CLASS_TOKENS) -> tuple[np.ndarray, np.ndarray, str]:
    """All maps of one split: ``(maps (n, 12·Nside²) float32 NEST, labels (n,) int64, form)``.

    ``form`` is ``"npz"`` or ``"fits"``. Labels: 0 = class 1, 1 = class 2.
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
        arrs = [_read_npz(p, nside) for p in npz]
        maps = np.concatenate(arrs)
        labels = np.concatenate([np.full(len(a), c, np.int64) for c, a in enumerate(arrs)])
        return maps, labels, "npz"
    files = sorted(p for p in folder.iterdir() if p.is_file() and re.search(r"\.fits(\.gz)?$", p.name, re.I))
    if not files:
        raise InputError(f"{BENCH}: {folder} holds neither {npz[0].name}/{npz[1].name} nor *.fits maps; {HINT}")
    maps, labels = [], []
    for p in files:
        lab = fits_label(p.name, tokens)
        if lab is None:
            raise InputError(f"{BENCH}: {p}: cannot tell the class from the file name (it must contain "
                             f"exactly one of {', '.join(tokens)}: config data.fits_class_tokens)")
        maps.append(read_fits_map(p, nside))
        labels.append(lab)
    labels = np.array(labels, np.int64)
    return np.stack(maps), labels, "fits"


_CACHE: dict = {}


def load_data(data_dir: str | os.PathLike, nside: int, smoothing_arcmin: float = 3,
              tokens: Sequence[str] = FITS_CLASS_TOKENS) -> dict:
    """Both splits, validated (cached in-process by path, Nside and file modification times).

    Returns ``{"train": (maps, labels), "test": (maps, labels), "form": "npz"|"fits"}``.
    """
    root = Path(data_dir).resolve()
    if not root.is_dir():
        raise InputError(f"{BENCH}: data directory {root} does not exist; {HINT}")
    stamp = []
    for sub in SPLIT_DIRS.values():
        d = root / sub
        if d.is_dir():
            stamp += [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(d.iterdir())]
    key = (str(root), int(nside), float(smoothing_arcmin), tuple(tokens), tuple(stamp))
    if key in _CACHE:
        return _CACHE[key]
    out = {}
    forms = set()
    for split, sub in SPLIT_DIRS.items():
        maps, labels, form = read_split(root / sub, nside, smoothing_arcmin, tokens)
        counts = np.bincount(labels, minlength=2)
        if (counts == 0).any():
            raise InputError(f"{BENCH}: {root / sub}: no maps of class {int(np.argmin(counts)) + 1} "
                             f"(found {counts[0]} of class 1, {counts[1]} of class 2)")
        out[split] = (maps, labels)
        forms.add(form)
    out["form"] = "+".join(sorted(forms))
    _CACHE.clear()  # keep one dataset in memory (the paper's is ~3 GB)
    _CACHE[key] = out
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


def prepare_samples(data: dict, order: int, noise: float, val_fraction: float = 0.2) -> dict:
    """Normalised partial maps, the train/validation split and the fixed validation/test noise.

    Returns a dict with ``x_train`` (clean), ``y_train``, ``x_val``, ``y_val``, ``x_test``,
    ``y_test`` (noisy, fixed) and ``std`` (the training std used to normalise).
    """
    from sklearn.model_selection import train_test_split

    xtr, ytr = partial_maps(*data["train"], order)
    xte, yte = partial_maps(*data["test"], order)
    std = float(np.std(xtr, dtype=np.float64))
    if not std > 0:
        raise InputError(f"{BENCH}: the training maps are constant (std 0)")
    xtr = xtr / np.float32(std)
    xte = xte / np.float32(std)
    if not 0 < val_fraction < 1:
        raise InputError(f"{BENCH}: data.val_fraction must be in (0, 1), got {val_fraction}")
    x_train, x_val, y_train, y_val = train_test_split(xtr, ytr, train_size=1 - val_fraction,
                                                      shuffle=True, random_state=0)
    x_val = add_noise(x_val, noise, np.random.default_rng([1, 0]))
    x_test = add_noise(xte, noise, np.random.default_rng([1, 1]))
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": yte, "std": std}


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
    the runner seeds per run.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, level: float):
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
        self.level = float(level)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if self.level:
            x = x + self.level * torch.randn_like(x)
        return x[:, None], self.y[i]


def _fixed(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, :, None],
                         torch.from_numpy(np.asarray(y, dtype=np.int64)))


class CosmologyDataModule(pl.LightningDataModule):
    """Partial convergence maps of one order and noise level, as ``(B, V, 1)`` NEST tensors.

    ``V = (Nside/order)²``. The keyword arguments after ``noise`` are the config's ``data``
    section; ``order`` and ``noise`` are the grid setting. Training batches hold
    ``batch_per_order2·order²`` samples (the paper's "constant number of pixels per step",
    16·o²). With ``stand_in`` set, :meth:`prepare_data` writes the offline stand-in described by
    ``stand_in_maps`` into ``data_dir`` (reused when its manifest matches).

    >>> CosmologyDataModule("data", order=4, batch_per_order2=16).batch_size
    256
    """

    def __init__(self, data_dir: Path, stand_in: bool = False, order: int = 1, noise: float = 0.0,
                 num_classes: int = 2, nside: int = 1024, smoothing_arcmin: float = 3,
                 fits_class_tokens: tuple[str, str] = FITS_CLASS_TOKENS, val_fraction: float = 0.2,
                 batch_per_order2: int = 16, test_batch_size: int = 64,
                 stand_in_maps: StandInMaps = StandInMaps(), num_workers: int = 0):
        super().__init__()
        if num_classes != 2:
            raise InputError(f"{BENCH}: num_classes must be 2, got {num_classes}")
        self.data_dir, self.stand_in = Path(data_dir), bool(stand_in)
        self.nside, self.order, self.noise = int(nside), int(order), float(noise)
        self.batch_size = int(batch_per_order2) * self.order ** 2
        self.test_batch_size, self.val_fraction = int(test_batch_size), float(val_fraction)
        self.smoothing_arcmin, self.tokens = smoothing_arcmin, tuple(fits_class_tokens)
        self.stand_in_maps, self.num_workers = stand_in_maps, int(num_workers)
        self.samples: dict | None = None

    @property
    def num_vertices(self) -> int:
        return (self.nside // self.order) ** 2

    def prepare_data(self) -> None:
        """Write the stand-in when asked (manifest: reused when its parameters and files are
        unchanged), then read and validate both splits (cached in-process)."""
        if self.stand_in:
            m, tokens, root = self.stand_in_maps, self.tokens, str(self.data_dir.resolve())
            params = {"nside": self.nside, **asdict(m), "tokens": list(tokens)}
            # the manifest hashes every file: once per process and state of the folder, not per fit
            if _VERIFIED.get(root) != (params, _stamp(self.data_dir)):
                ensure_stand_in(self.data_dir, BENCH, params, lambda d: write_stand_in(d, self.nside, m, tokens),
                                stand_in_description(self.nside, m))
                _VERIFIED[root] = (params, _stamp(self.data_dir))
        load_data(self.data_dir, self.nside, self.smoothing_arcmin, self.tokens)

    def setup(self, stage: str | None = None) -> None:
        if self.samples is not None:
            return
        data = load_data(self.data_dir, self.nside, self.smoothing_arcmin, self.tokens)
        self.samples = prepare_samples(data, self.order, self.noise, self.val_fraction)
        s = self.samples
        self.train_set = NoisyMaps(s["x_train"], s["y_train"], self.noise)
        self.val_set = _fixed(s["x_val"], s["y_val"])
        self.test_set = _fixed(s["x_test"], s["y_test"])

    def train_realizations(self, seed: int) -> Iterator[np.ndarray]:
        """Noisy copies of the training samples, a fresh noise draw each (for the SVMs, which
        see a fixed training set); one clean copy only when the noise level is 0. The draws
        depend on ``seed``, the order and the noise level."""
        self.setup()
        x = self.samples["x_train"]
        if not self.noise:
            yield x.copy()
            return
        rng = np.random.default_rng([int(seed), 7, self.order, int(round(self.noise * 100))])
        for _ in itertools.count():
            yield add_noise(x, self.noise, rng)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.test_batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.test_batch_size, num_workers=self.num_workers)


#: stand-in folders whose manifest this process has verified: path → (params, file stamps)
_VERIFIED: dict[str, tuple] = {}


def _stamp(root: Path) -> tuple:
    """(name, mtime, size) of every file under ``root``: a change of any file changes it."""
    return tuple((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size)
                 for p in sorted(root.rglob("*")) if p.is_file()) if root.is_dir() else ()


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
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
                hp.write_map(str(tmp), m, nest=True, dtype=np.float32, overwrite=True)
                os.replace(tmp, path)
    return root
