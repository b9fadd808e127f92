"""Cosmology benchmark: FITS/npz reader, partial maps, normalisation and noise, the stand-in's matched
power spectra and its manifest, bad input and bad config keys, the NEST→image map of the 2D ConvNet, SVM
features and the SVM protocol, the config → model path, and one end-to-end smoke run through the shared
runner (``reproduce/cosmology.py --preset smoke``)."""
from __future__ import annotations

import csv
import itertools
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
import torch
from scipy.stats import skew

from datamodules._common import InputError, is_stand_in, stand_in_manifest
from datamodules.cosmology import (SPLIT_DIRS, UNSEEN32, CosmologyDataModule, NoisyMaps, StandInMaps, load_data,
                                   partial_maps, prepare_samples, read_fits_map, read_split, stand_in_cl,
                                   write_stand_in)
from models.baselines import (FlatPatchConvNet, LinearSVMBaseline, fit_linear_svm, histogram_features,
                              psd_features)
from models.deepsphere.healpix import nest_image_index, nest_xy
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
NSIDE = 16


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    d = tmp_path_factory.mktemp("cosmo") / "data"
    CosmologyDataModule(d, stand_in=True, nside=NSIDE,
                        stand_in_maps=StandInMaps(train_maps_per_class=3, test_maps_per_class=2)).prepare_data()
    return d


# --------------------------------------------------------------------------- reader and stand-in
def test_stand_in_is_fits_in_reference_layout_and_reads_back(stand_in):
    assert is_stand_in(stand_in)
    files = sorted((stand_in / "same_psd").glob("*.fits"))
    assert len(files) == 6 and len(list((stand_in / "same_psd_testing").glob("*.fits"))) == 4
    # real FITS written by healpy, NESTED, read back identically by healpy itself
    m, h = hp.read_map(str(files[0]), nest=None, h=True)
    assert dict(h)["ORDERING"] == "NESTED" and len(m) == 12 * NSIDE ** 2
    data = load_data(stand_in, NSIDE)
    assert data["form"] == "fits"
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    assert xtr.shape == (6, 12 * NSIDE ** 2) and xte.shape == (4, 12 * NSIDE ** 2)
    assert xtr.dtype == np.float32
    assert np.bincount(ytr).tolist() == [3, 3] and np.bincount(yte).tolist() == [2, 2]
    # the class comes from the Omega_m token of the file name
    names = sorted(p.name for p in files)
    assert all(("0p26" in n) == ("class1" in n) for n in names)


def test_stand_in_classes_share_the_power_spectrum_but_not_the_skewness(tmp_path):
    nside = 32
    write_stand_in(tmp_path, nside, StandInMaps(train_maps_per_class=3, test_maps_per_class=1, seed=3))
    maps, labels, form, files = read_split(tmp_path / "same_psd", nside)
    assert form == "fits" and len(files) == 6
    lmax = 3 * nside - 1
    target = stand_in_cl(nside, lmax)
    cls = np.array([hp.anafast(hp.reorder(m.astype(np.float64), n2r=True), lmax=lmax) for m in maps])
    band = slice(2, 2 * nside)  # well inside the band limit
    # every map (both classes) has the target spectrum: exact by construction, up to float32 storage
    # and HEALPix quadrature
    np.testing.assert_allclose(cls[:, band], np.broadcast_to(target[band], cls[:, band].shape), rtol=0.02)
    c1, c2 = cls[labels == 0].mean(0), cls[labels == 1].mean(0)
    assert np.max(np.abs(c1[band] / c2[band] - 1)) < 0.02
    # ... while the maps themselves differ (paired seeds, different lognormal transform)
    s1 = [skew(m) for m in maps[labels == 0]]
    s2 = [skew(m) for m in maps[labels == 1]]
    assert min(s2) > max(s1) + 0.5, (s1, s2)
    assert not np.allclose(maps[labels == 0][0], maps[labels == 1][0])


def test_stand_in_manifest_is_reused_then_regenerated_when_a_parameter_changes(tmp_path):
    d = tmp_path / "data"

    def prepare(**maps):
        CosmologyDataModule(d, stand_in=True, nside=8, stand_in_maps=StandInMaps(
            train_maps_per_class=1, test_maps_per_class=1, **maps)).prepare_data()

    prepare()
    first = stand_in_manifest(d)
    assert first["benchmark"] == "cosmology" and first["params"]["nside"] == 8 and len(first["files"]) == 4
    assert "identical power spectra" in first["description"] and not (d / "STAND_IN.txt").exists()
    f = d / sorted(first["files"])[0]
    stamp = f.stat().st_mtime_ns
    prepare()  # same parameters: reused as it is
    assert stand_in_manifest(d) == first and f.stat().st_mtime_ns == stamp
    prepare(seed=1)  # a parameter changed: regenerated, new manifest
    second = stand_in_manifest(d)
    assert second["params"]["seed"] == 1 and second["files"].keys() == first["files"].keys()
    assert second["files"] != first["files"]
    f.write_bytes(f.read_bytes()[:-8])  # a file changed after it was written: refused
    with pytest.raises(InputError, match="was changed after it was generated"):
        prepare(seed=1)


def test_stand_in_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds other files"):
        CosmologyDataModule(tmp_path, stand_in=True, nside=8).prepare_data()


def test_npz_form_is_read_and_wins_over_fits(stand_in, tmp_path):
    ref = load_data(stand_in, NSIDE)
    for split, sub in SPLIT_DIRS.items():
        d = tmp_path / sub
        d.mkdir()
        x, y = ref[split]
        np.savez(d / "smoothed_class1_sigma3.npz", x[y == 0])   # np.savez(list of maps): key arr_0
        np.savez(d / "smoothed_class2_sigma3.npz", x[y == 1])
        # a raw RING FITS next to the npz (as in cosmo-tf1's folders) is ignored
        hp.write_map(str(d / "raw_0p26_ring.fits"), np.zeros(12 * NSIDE ** 2), nest=False)
    data = load_data(tmp_path, NSIDE)
    assert data["form"] == "npz"
    for split in ("train", "test"):
        x, y = ref[split]
        order = np.argsort(y, kind="stable")
        np.testing.assert_array_equal(data[split][0], x[order])
        np.testing.assert_array_equal(data[split][1], y[order])


def _one_split(tmp_path, name, m, nest=True):
    for sub in SPLIT_DIRS.values():
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "same_psd" / name
    hp.write_map(str(path), m, nest=nest, overwrite=True)
    return path


@pytest.mark.parametrize("case, needle", [
    ("nside", "Nside 8, expected 16"),
    ("no_ordering", "ORDERING is 'missing', expected NESTED or RING"),
    ("nan", "NaN"),
    ("all_unseen", "has no observed pixel (all UNSEEN or masked)"),
    ("garbage", "unreadable FITS"),
    ("no_token", "cannot tell the class"),
])
def test_bad_fits_raise_input_error_naming_the_file(tmp_path, case, needle):
    m = np.random.default_rng(0).standard_normal(12 * NSIDE ** 2)
    name = "map_0p26_000.fits"
    if case == "nside":
        path = _one_split(tmp_path, name, np.zeros(12 * 8 ** 2))
    elif case == "no_ordering":
        from astropy.io import fits
        path = _one_split(tmp_path, name, m)
        with fits.open(path, mode="update") as f:
            del f[1].header["ORDERING"]
    elif case == "nan":
        m[5] = np.nan
        path = _one_split(tmp_path, name, m)
    elif case == "all_unseen":
        path = _one_split(tmp_path, name, np.full_like(m, hp.UNSEEN))
    elif case == "garbage":
        path = _one_split(tmp_path, name, m)
        path.write_bytes(b"SIMPLE  = this is not a FITS file" * 10)
    else:
        path = _one_split(tmp_path, "map_000.fits", m)
    with pytest.raises(InputError) as e:
        read_split(tmp_path / "same_psd", NSIDE)
    assert str(path) in str(e.value) and needle in str(e.value)


@pytest.mark.parametrize("case, needle", [
    ("shape", "expected (n_maps, 3072)"),
    ("pickle", "unreadable npz"),
    ("key", "no key 'arr_0'"),
    ("corrupt", "unreadable npz"),
    ("half", "but not smoothed_class2_sigma3.npz"),
    ("nan", "NaN"),
])
def test_bad_npz_raise_input_error_naming_the_file(tmp_path, case, needle):
    d = tmp_path / "same_psd"
    d.mkdir()
    good = np.zeros((2, 12 * NSIDE ** 2), np.float32)
    p1, p2 = d / "smoothed_class1_sigma3.npz", d / "smoothed_class2_sigma3.npz"
    np.savez(p2, good)
    bad = p1
    if case == "shape":
        np.savez(p1, np.zeros((2, 100), np.float32))
    elif case == "pickle":
        np.savez(p1, np.array([good[0], "x"], dtype=object))
    elif case == "key":
        np.savez(p1, maps=good)
    elif case == "corrupt":
        p1.write_bytes(b"PK\x03\x04 truncated")
    elif case == "half":
        bad = d
        p2.rename(p1)
    else:
        x = good.copy()
        x[1, 3] = np.nan
        np.savez(p1, x)
    with pytest.raises(InputError) as e:
        read_split(d, NSIDE)
    assert str(bad) in str(e.value) and needle in str(e.value)


# --------------------------------------------------------------------------- real-file awkwardness
def _maps(seed=0, n=2):
    return np.random.default_rng(seed).standard_normal((n, 12 * NSIDE ** 2))


def _write(path, maps, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    hp.write_map(str(path), maps, overwrite=True, **{"nest": True, **kw})
    return path


def test_two_columns_without_a_column_choice_are_refused_naming_the_file_and_columns(tmp_path):
    kappa, mask = _maps()
    mask = (mask > -1).astype(np.float64)
    path = _write(tmp_path / "same_psd" / "m_0p26.fits", [mask, kappa], column_names=["MASK", "KAPPA"])
    with pytest.raises(InputError) as e:
        read_split(tmp_path / "same_psd", NSIDE)
    msg = str(e.value)
    assert str(path) in msg and "[0] MASK, [1] KAPPA" in msg and "ambiguous" in msg
    assert "data.fits_column" in msg and "\n" not in msg
    with pytest.raises(InputError, match=r"no map column 'KAPA' \(config data.fits_column\); columns: \[0\] MASK"):
        read_fits_map(path, NSIDE, column="KAPA")
    with pytest.raises(InputError, match=r"no map column 2 \(config data.fits_column\)"):
        read_fits_map(path, NSIDE, column=2)
    with pytest.raises(InputError, match="both select column \\[1\\] KAPPA"):
        read_fits_map(path, NSIDE, column="KAPPA", mask_column=1)


def test_fits_column_by_name_and_by_index_reads_that_map(tmp_path):
    kappa, other = _maps()
    path = _write(tmp_path / "m_0p26.fits", [other, kappa], column_names=["MASK", "KAPPA"])
    np.testing.assert_array_equal(read_fits_map(path, NSIDE, column="kappa"), kappa.astype(np.float32))
    np.testing.assert_array_equal(read_fits_map(path, NSIDE, column=1), kappa.astype(np.float32))
    np.testing.assert_array_equal(read_fits_map(path, NSIDE, column=0), other.astype(np.float32))
    # with a mask column named, the one other column is the map
    np.testing.assert_array_equal(read_fits_map(path, NSIDE, mask_column="MASK")[other > 0],
                                  kappa[other > 0].astype(np.float32))


def test_typed_column_keys_reach_the_reader_and_refuse_the_npz_form(tmp_path, stand_in):
    kappa, mask = _maps()
    for sub, tok in itertools.product(SPLIT_DIRS.values(), ("0p26", "0p31")):
        _write(tmp_path / sub / f"m_{tok}.fits", [np.ones_like(kappa), kappa], column_names=["MASK", "KAPPA"])
    dm = CosmologyDataModule(tmp_path, nside=NSIDE, fits_column="KAPPA")
    dm.prepare_data()
    dm.setup()
    assert len(dm.samples["y_test"]) == 2 * 12
    with pytest.raises(InputError, match="ambiguous"):
        CosmologyDataModule(tmp_path, nside=NSIDE).prepare_data()
    d = tmp_path / "npz" / "same_psd"
    d.mkdir(parents=True)
    np.savez(d / "smoothed_class1_sigma3.npz", kappa[None])
    np.savez(d / "smoothed_class2_sigma3.npz", kappa[None])
    with pytest.raises(InputError, match="read in the npz form .* data.fits_column / data.fits_mask_column is set"):
        read_split(d, NSIDE, column="KAPPA")


def test_mask_column_and_unseen_pixels_are_honoured_as_documented(tmp_path):
    """Unobserved = mask column ≤ 0 or UNSEEN; blocks less than min_observed_fraction observed are dropped
    (counted); the std is over observed pixels; unobserved pixels are 0 in every sample, noise included."""
    nside, npix, per_block = NSIDE, 12 * NSIDE ** 2, NSIDE ** 2  # order 1: 12 blocks of Nside² pixels
    rng = np.random.default_rng(3)
    for split, sub in SPLIT_DIRS.items():
        for c, tok in enumerate(("0p26", "0p31")):
            m = rng.standard_normal(npix) * (1 + c)
            mask = np.ones(npix)
            mask[:per_block] = 0                        # block 0 fully masked: dropped
            mask[per_block:per_block + 10] = 0          # block 1: 10 pixels masked, kept
            m[:per_block] = np.nan                      # anything may sit under the mask
            m[2 * per_block + 3] = hp.UNSEEN            # block 2: one UNSEEN pixel, kept
            _write(tmp_path / sub / f"m_{split}_{tok}.fits", [m, mask], column_names=["KAPPA", "MASK"])
    x = read_fits_map(tmp_path / "same_psd" / "m_train_0p26.fits", nside, "KAPPA", "MASK")
    assert (x[:per_block + 10] == UNSEEN32).all() and x[2 * per_block + 3] == UNSEEN32
    assert np.isfinite(x).all() and (x != UNSEEN32).sum() == npix - per_block - 11

    dm = CosmologyDataModule(tmp_path, nside=nside, order=1, noise=1.0, fits_column="KAPPA",
                             fits_mask_column="MASK", batch_per_order2=4)
    dm.prepare_data()
    dm.setup("fit")
    s = dm.samples
    assert s["dropped"] == {"train": 2, "test": 2}  # block 0 of each of the 2 maps per split
    assert len(s["y_train"]) + len(s["y_val"]) == 2 * 11 and len(s["y_test"]) == 2 * 11
    data = load_data(tmp_path, nside, column="KAPPA", mask_column="MASK")
    raw = data["train"][0]
    blocks = raw.reshape(2 * 12, per_block)[[b for b in range(24) if b % 12]]
    assert s["std"] == pytest.approx(float(np.std(blocks[blocks != UNSEEN32], dtype=np.float64)), rel=1e-12)
    # unobserved pixels are exactly 0 in training (each fresh noise draw), validation and test samples
    seen = s["seen_train"]
    assert seen is not None and (~seen).any()
    i = int(np.flatnonzero((~seen).any(1))[0])
    for _ in range(2):
        xi = dm.train_set[i][0][:, 0].numpy()
        assert (xi[~seen[i]] == 0).all() and (xi[seen[i]] != 0).all()
    real = next(dm.train_realizations(seed=0))
    assert (real[~seen] == 0).all() and (real[seen] != 0).all()
    # the test block 1 of map 0 (first test sample) holds the 10 masked pixels at its start
    assert (s["x_test"][0, :10] == 0).all() and (s["x_test"][0, 10:] != 0).all()
    from reproduce.cosmology import unseen_columns
    assert unseen_columns(dm) == {"unseen_blocks_dropped_train": 2, "unseen_blocks_dropped_test": 2}
    # no block of a split observed enough: refused, with the count and the folder
    holes = raw.copy()
    holes[:, ::per_block] = UNSEEN32  # one unseen pixel in every block
    with pytest.raises(InputError, match=r"same_psd: 24 of 24 partial maps of order 1 are less than 100% "
                                         r"observed .* leaving 0 of class 1 and 0 of class 2"):
        prepare_samples({**data, "train": (holes, data["train"][1])}, 1, 0.0, min_observed=1.0)
    with pytest.raises(InputError, match=r"min_observed_fraction must be in \(0, 1\]"):
        CosmologyDataModule(tmp_path, nside=nside, min_observed_fraction=0)


def test_full_sky_maps_take_none_of_the_masking_steps(stand_in):
    data = load_data(stand_in, NSIDE)
    assert data["unseen"] == {"train": 0, "test": 0}
    s = prepare_samples(data, order=1, noise=0.0)
    assert s["seen_train"] is None and s["dropped"] == {"train": 0, "test": 0}
    from reproduce.cosmology import unseen_columns
    dm = CosmologyDataModule(stand_in, nside=NSIDE)
    dm.setup()
    assert unseen_columns(dm) == {}  # full-sky rows keep their CSV columns
    assert s["std"] == float(np.std(data["train"][0], dtype=np.float64))


def test_ring_file_is_read_as_nest_same_pixels_as_its_nest_twin(tmp_path):
    (m,) = _maps(n=1)
    nest = _write(tmp_path / "nest_0p26.fits", m)
    ring = _write(tmp_path / "ring_0p26.fits", hp.reorder(m, n2r=True), nest=False)
    assert dict(hp.read_map(str(ring), nest=None, h=True)[1])["ORDERING"] == "RING"
    np.testing.assert_array_equal(read_fits_map(ring, NSIDE), read_fits_map(nest, NSIDE))
    np.testing.assert_array_equal(read_fits_map(ring, NSIDE), m.astype(np.float32))
    # a RING map with its mask column: both reordered
    mask = (np.arange(len(m)) % 3 > 0).astype(np.float64)
    ring2 = _write(tmp_path / "ring2_0p26.fits", [hp.reorder(m, n2r=True), hp.reorder(mask, n2r=True)],
                   nest=False, column_names=["K", "M"])
    x = read_fits_map(ring2, NSIDE, mask_column="M")
    assert ((x == UNSEEN32) == (mask == 0)).all()


def _band_mask(nside: int, nest: bool) -> np.ndarray:
    """A WMAP-like galactic cut: 0 within |z| < 0.3 of the equator, 1 elsewhere."""
    z = hp.pix2vec(nside, np.arange(12 * nside ** 2), nest=nest)[2]
    return (np.abs(z) >= 0.3).astype(np.int16)


def test_mask_file_of_another_nside_and_ordering_is_applied_and_said(stand_in, tmp_path, capsys):
    """data.mask_file: a RING mask at Nside 32 (column TEMPERATURE, as WMAP's analysis masks) on
    Nside-16 maps is reordered and degraded (observed where all 4 finer pixels are), a NESTED Nside-8
    one upgraded; each conversion is one line; the masked pixels are unobserved in every map."""
    fine = _write(tmp_path / "wmap_like_mask.fits", _band_mask(2 * NSIDE, nest=False), nest=False,
                  column_names=["TEMPERATURE"], dtype=np.int16)
    capsys.readouterr()
    dm = CosmologyDataModule(stand_in, nside=NSIDE, order=1, mask_file=str(fine))
    dm.prepare_data()
    err = capsys.readouterr().err.strip().splitlines()
    expect = hp.ud_grade(_band_mask(2 * NSIDE, nest=False).astype(float), NSIDE, order_in="RING",
                         order_out="NESTED") == 1  # independent: the mean of the 4 finer pixels is 1
    assert err[0] == (f"cosmology: mask wmap_like_mask.fits (column TEMPERATURE, Nside {2 * NSIDE}): "
                      f"RING-ordered, reordered to NESTED")
    assert err[1].startswith(f"cosmology: mask wmap_like_mask.fits: Nside {2 * NSIDE} degraded to the maps' "
                             f"Nside {NSIDE} (a pixel is observed only where all 4")
    assert err[2] == (f"cosmology: mask wmap_like_mask.fits: {100 * expect.mean():.1f} % of the sky observed; "
                      f"the maps' other pixels are unobserved") and len(err) == 3
    data = load_data(stand_in, NSIDE, mask_file=fine)
    for split in ("train", "test"):
        maps = data[split][0]
        assert ((maps != UNSEEN32) == expect[None]).all()
        assert data["unseen"][split] == len(maps) * int((~expect).sum())
    dm.setup("fit")
    assert dm.samples["seen_train"] is not None  # the partial-sky rule now applies
    coarse = _write(tmp_path / "coarse.fits", _band_mask(NSIDE // 2, nest=True), nest=True, dtype=np.int16)
    capsys.readouterr()
    data = load_data(stand_in, NSIDE, mask_file=coarse)
    up = hp.ud_grade(_band_mask(NSIDE // 2, nest=True).astype(float), NSIDE, order_in="NESTED",
                     order_out="NESTED") > 0
    assert ((data["test"][0] != UNSEEN32) == up[None]).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert "Nside 8 upgraded to the maps' Nside 16 (each pixel's 4 sub-pixels take its value)" in err[0]
    with pytest.raises(InputError, match=r"mask file .*nowhere\.fits \(config data.mask_file\) does not exist"):
        load_data(stand_in, NSIDE, mask_file=tmp_path / "nowhere.fits")
    _write(tmp_path / "zero.fits", np.zeros(12 * NSIDE ** 2), dtype=np.int16)
    with pytest.raises(InputError, match=r"zero\.fits: no observed pixel"):
        load_data(stand_in, NSIDE, mask_file=tmp_path / "zero.fits")


def test_ring_folder_is_reordered_in_one_line(tmp_path, capsys):
    for i, m in enumerate(_maps(n=3)):
        _write(tmp_path / f"r{i}_0p26.fits", hp.reorder(m, n2r=True), nest=False)
    _write(tmp_path / "n_0p31.fits", _maps(seed=1, n=1)[0])
    capsys.readouterr()
    read_split(tmp_path, NSIDE)
    assert capsys.readouterr().err.strip().splitlines() == [
        f"cosmology: {tmp_path}: 3 of 4 FITS map(s) RING-ordered (e.g. r0_0p26.fits), reordered to NESTED"]


def test_gz_fit_suffixes_extra_header_cards_and_partial_sky_files(tmp_path):
    m1, m2 = _maps(n=2)
    d = tmp_path / "same_psd"
    _write(d / "a_0p26.fits.gz", m1, column_names=["KAPPA"], column_units=["1"],
           extra_header=[("UNITS", "none"), ("SIMTYPE", "LPICOLA"), ("REDSHIFT", 0.8)])
    _write(d / "b_0p31.fit", m2, dtype=np.float32)
    partial = np.full_like(m1, hp.UNSEEN)
    partial[100:900] = m1[100:900]
    _write(d / "c_0p26.FTS", partial, partial=True)  # explicit indexing, only the observed pixels
    (d / "notes.txt").write_text("not a map")
    s = read_split(d, NSIDE)
    assert [p.name for p in s.files] == ["a_0p26.fits.gz", "b_0p31.fit", "c_0p26.FTS"]
    assert s.labels.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(s.maps[0], m1.astype(np.float32))
    np.testing.assert_array_equal(s.maps[1], m2.astype(np.float32))
    assert (s.maps[2][100:900] == m1[100:900].astype(np.float32)).all()
    assert (s.maps[2][:100] == UNSEEN32).all() and (s.maps[2][900:] == UNSEEN32).all()
    assert UNSEEN32 == np.float32(hp.UNSEEN)


def test_missing_folder_and_missing_class(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_data(tmp_path / "nowhere", NSIDE)
    _one_split(tmp_path, "a_0p26.fits", np.ones(12 * NSIDE ** 2))
    hp.write_map(str(tmp_path / "same_psd_testing" / "b_0p26.fits"), np.ones(12 * NSIDE ** 2), nest=True)
    with pytest.raises(InputError, match="no maps of class 2"):
        load_data(tmp_path, NSIDE)


# --------------------------------------------------------------------------- samples and noise
@pytest.mark.parametrize("order", [1, 2, 4])
def test_partial_maps_are_the_nest_blocks_under_base_pixels(order):
    maps = np.arange(2 * 12 * NSIDE ** 2, dtype=np.float32).reshape(2, -1)  # value = global index
    x, y = partial_maps(maps, np.array([0, 1]), order)
    nb = 12 * order ** 2
    assert x.shape == (2 * nb, (NSIDE // order) ** 2) and y.tolist() == [0] * nb + [1] * nb
    for b in (0, nb // 2, nb - 1):
        pix = x[b].astype(np.int64)
        # geometrically: every pixel of sample b lies in base pixel b of the Nside = order tessellation
        parent = hp.vec2pix(order, *hp.pix2vec(NSIDE, pix, nest=True), nest=True)
        assert (parent == b).all()
    with pytest.raises(InputError):
        partial_maps(maps, np.array([0, 1]), 3)


def test_normalisation_split_and_noise(stand_in):
    data = load_data(stand_in, NSIDE)
    s0 = prepare_samples(data, order=2, noise=0.0)
    s1 = prepare_samples(data, order=2, noise=1.5)
    n_train = 6 * 48
    assert len(s0["y_train"]) + len(s0["y_val"]) == n_train and len(s0["y_val"]) == round(0.2 * n_train)
    clean = np.concatenate([s0["x_train"], s0["x_val"]])
    assert abs(clean.std() - 1) < 1e-4  # divided by the std of all training samples
    np.testing.assert_allclose(s0["std"], data["train"][0].std(), rtol=1e-5)
    # validation/test noise: fixed draws of the requested level, different between the two splits
    np.testing.assert_array_equal(s1["x_test"], prepare_samples(data, 2, 1.5)["x_test"])
    dn = s1["x_test"] - s0["x_test"]
    assert abs(dn.std() - 1.5) < 0.05
    dv = s1["x_val"] - s0["x_val"]
    assert abs(dv.std() - 1.5) < 0.05 and not np.allclose(dv[:10], dn[:10])
    # training noise: redrawn on every access
    ds = NoisyMaps(s1["x_train"], s1["y_train"], 1.5)
    a, b = ds[3][0], ds[3][0]
    assert a.shape == (64, 1) and not torch.equal(a, b)
    assert abs(float((a - b).std()) - 1.5 * np.sqrt(2)) < 0.5
    assert torch.equal(NoisyMaps(s0["x_train"], s0["y_train"], 0.0)[3][0][:, 0],
                       torch.from_numpy(s0["x_train"][3]))


def test_datamodule_batches(stand_in):
    dm = CosmologyDataModule(stand_in, nside=NSIDE, order=2, noise=1.0, batch_per_order2=4, test_batch_size=50)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 64, 1) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, _ = next(iter(dm.test_dataloader()))
    assert xt.shape == (50, 64, 1)
    with pytest.raises(InputError):
        CosmologyDataModule(stand_in, nside=NSIDE, num_classes=3)


# --------------------------------------------------------------------------- models and features
@pytest.mark.parametrize("order", [1, 2])
def test_nest_image_neighbours_are_sphere_neighbours(order):
    nside = 8
    side = nside // order
    idx = nest_image_index(side)
    assert sorted(idx.tolist()) == list(range(side * side))
    img = idx.reshape(side, side)  # NEST index (inside the block) at each image position
    base = 0 if order == 1 else 5  # an equatorial and a polar-cap block
    offset = base * side * side
    nbrs = hp.get_all_neighbours(nside, np.arange(12 * nside ** 2), nest=True)
    for r in range(side):
        for c in range(side):
            p = offset + img[r, c]
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < side and c + dc < side:
                    q = offset + img[r + dr, c + dc]
                    assert q in nbrs[:, p], (r, c, dr, dc)
    x, y = nest_xy(side)
    assert x.max() == side - 1 and y.max() == side - 1


def test_flat_patch_convnet_heads_and_input_check():
    for head in ("fcn", "cnn"):
        net = FlatPatchConvNet(side=32, head=head)
        out = net(torch.randn(3, 1024, 1))
        assert out.shape == (3, 2) and torch.isfinite(out).all()
        assert 0 < net.num_weights() < sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError, match=r"expected input \(B, 1024, 1\)"):
        FlatPatchConvNet(side=32)(torch.randn(2, 1000, 1))
    # the image is the NEST block reordered, not resampled
    net = FlatPatchConvNet(side=8)
    x = torch.arange(64.)[None, :, None]
    assert sorted(net.image(x).flatten().tolist()) == list(range(64))


def test_psd_features_of_white_noise_follow_the_sky_fraction():
    nside, order = 16, 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, (nside // order) ** 2))
    f = psd_features(x, nside, order)
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1)
    assert f.shape == (8, lmax + 1)
    cl = f[:, 2:].mean(0) / (ell[2:] * (ell[2:] + 1))
    fsky = 1 / (12 * order ** 2)
    # pseudo-C_l of masked white noise: f_sky · 4π σ² / Npix
    expected = fsky * 4 * np.pi / (12 * nside ** 2)
    assert abs(cl.mean() / expected - 1) < 0.15


def test_histogram_and_svm():
    h = histogram_features(np.array([[0.05, 0.15, 0.15, 2.0]]), 0.0, 1.0, bins=10)
    assert h.tolist() == [[1, 2, 0, 0, 0, 0, 0, 0, 0, 0]]
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    f = rng.standard_normal((200, 5)) + 6 * y[:, None] * np.array([1, 0, 0, 0, 0])
    predict, info = fit_linear_svm(f[:150], y[:150], f[150:], y[150:], Cs=[0.01, 1.0])
    assert info["C"] in (0.01, 1.0) and info["val_acc"] > 0.95
    assert (predict(f[150:]) == y[150:]).mean() == info["val_acc"]


def test_svm_baseline_grows_the_training_set_while_validation_improves(stand_in):
    dm = CosmologyDataModule(stand_in, nside=NSIDE, order=2, noise=1.0)
    a, b = list(itertools.islice(dm.train_realizations(seed=0), 2))
    assert a.shape == dm.samples["x_train"].shape and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, next(dm.train_realizations(seed=0)))  # reproducible from the seed
    clean = CosmologyDataModule(stand_in, nside=NSIDE, order=2, noise=0.0)
    assert len(list(clean.train_realizations(seed=0))) == 1  # no noise: one realisation
    svm = LinearSVMBaseline("hist", nside=NSIDE, order=2, bins=20, Cs=[1.0], max_noise_realizations=5, tol=0.005)
    # the same realisation again does not improve validation: the protocol stops after the second fit
    out = svm.fit_and_score(dm.samples, itertools.repeat(a))
    assert out["svm_noise_realizations"] == 1 and len(out["svm_val_history"].split()) == 2
    assert out["params"] == 21 and out["n_train"] == len(dm.samples["y_train"]) and 0 <= out["test_acc"] <= 1
    psd = LinearSVMBaseline("psd", nside=NSIDE, order=2, psd_iter=0, Cs=[1.0], max_noise_realizations=1)
    assert psd.fit_and_score(dm.samples, dm.train_realizations(0))["params"] == 3 * NSIDE + 1
    with pytest.raises(ValueError, match="features must be"):
        LinearSVMBaseline("fft", nside=NSIDE, order=2)


def test_config_entries_build_the_models_and_the_l2_term(tmp_path):
    from types import SimpleNamespace

    from models.deepsphere import DeepSphereCNN, DeepSphereFCN
    from reproduce.cosmology import BENCH
    from reproduce.runner import config as C
    from reproduce.runner.runs import expand_grid

    ctx = SimpleNamespace(data_dir=tmp_path, generate=True)
    runs = {r.model: r for r in expand_grid(BENCH, C.load_preset("cosmology", "smoke"))}
    for run in runs.values():
        BENCH.check(ctx, run)
    nets = {m: BENCH.build_backbone(ctx, r) for m, r in runs.items()}
    assert type(nets["deepsphere_fcn"]) is DeepSphereFCN and type(nets["deepsphere_cnn"]) is DeepSphereCNN
    assert nets["deepsphere_fcn"].order == 1 and nets["deepsphere_fcn"].nside == NSIDE
    assert isinstance(nets["cnn2d_cnn"], FlatPatchConvNet) and nets["cnn2d_cnn"].side == NSIDE
    assert isinstance(nets["svm_psd"], LinearSVMBaseline) and nets["svm_psd"].psd_iter == 0
    assert {m for m, r in runs.items() if BENCH.is_custom(r)} == {"svm_psd", "svm_hist"}
    # cosmo-tf1: reg·Σ½‖W‖²/n_weights with reg = 3 has gradient (3 / n_weights)·W = optim.l2·W; DeepSphere: none
    net = nets["cnn2d_fcn"]
    optim = BENCH.task_args(ctx, runs["cnn2d_fcn"], net)["optim"]
    assert optim["l2"] == pytest.approx(3 / net.num_weights()) and optim["lr"] == 2e-3
    assert BENCH.build_task(ctx, runs["deepsphere_fcn"], nets["deepsphere_fcn"]).optim.l2 == 0
    bad = runs["cnn2d_fcn"]
    bad.cfg["model"]["kind"] = "cnn3d"
    with pytest.raises(InputError, match="kind 'cnn3d' is unknown; valid kinds: cnn2d, deepsphere, svm"):
        BENCH.check(ctx, bad)


# --------------------------------------------------------------------------- end to end
def _run(tmp_path, *extra):
    return run_script("reproduce/cosmology.py", "--preset", "smoke", "--logger", "csv", "--results-dir", tmp_path / "res",
                      "--runs-dir", tmp_path / "runs", *extra, check=False, timeout=240)


def test_smoke_run_through_the_runner_writes_rows_and_table(tmp_path):
    p = _run(tmp_path, "--data-dir", str(tmp_path / "data"), "--stand-in")
    assert p.returncode == 0, p.stderr[-3000:]
    with open(tmp_path / "res" / "cosmology.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == sorted(["deepsphere_fcn", "deepsphere_cnn", "cnn2d_fcn",
                                                       "cnn2d_cnn", "svm_psd", "svm_hist"])
    for r in rows:
        assert r["preset"] == "smoke" and r["data_source"] == "stand-in"
        assert r["setting_order"] == "1" and float(r["setting_noise"]) == 1.0
        assert 0.0 <= float(r["test_acc"]) <= 1.0 and int(r["params"]) > 0
    svm = [r for r in rows if r["model"].startswith("svm")]
    assert all(int(r["svm_noise_realizations"]) >= 1 and r["svm_C"] for r in svm)
    md = (tmp_path / "res" / "cosmology.md").read_text()
    assert "Preset: `smoke`" in md and "| DeepSphere FCN | 100 / " in md and "offline stand-in" in md
    assert "`data.nside`: 1024 → 16" in md  # the preset's changes are listed
    # second invocation: nothing retrained, the stand-in reused as it is
    manifest = stand_in_manifest(tmp_path / "data")
    stamps = {f: (tmp_path / "data" / f).stat().st_mtime_ns for f in manifest["files"]}
    p = _run(tmp_path, "--data-dir", str(tmp_path / "data"), "--stand-in")
    assert p.returncode == 0 and "0 to do" in p.stderr, p.stderr[-3000:]
    assert stand_in_manifest(tmp_path / "data") == manifest
    assert stamps == {f: (tmp_path / "data" / f).stat().st_mtime_ns for f in manifest["files"]}
    # a stand-in parameter changes: the stand-in is regenerated and the run of that data trained
    p = _run(tmp_path, "--data-dir", str(tmp_path / "data"), "--stand-in", "--only", "svm_hist",
             "data.stand_in_maps.seed=1")
    assert p.returncode == 0 and "1 to do" in p.stderr, p.stderr[-3000:]
    regenerated = stand_in_manifest(tmp_path / "data")
    assert regenerated["params"]["seed"] == 1 and regenerated["files"] != manifest["files"]


def test_cli_bad_data_dir_exits_2_naming_the_file(tmp_path, capsys):
    from reproduce.cosmology import BENCH
    from reproduce.runner import main

    d = tmp_path / "bad"
    _one_split(d, "m_0p31.fits", np.zeros(12 * 8 ** 2))  # Nside 8, smoke expects 16
    rc = main(BENCH, None, ["--preset", "smoke", "--logger", "none", "--results-dir", str(tmp_path / "res"),
                            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(d)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "m_0p31.fits" in err and "expected 16" in err
    assert not list((tmp_path / "res").glob("cosmology.*"))  # no results written


def _main(tmp_path, *args, bench=None):
    from reproduce.cosmology import BENCH
    from reproduce.runner import main

    return main(bench or BENCH, None, ["--preset", "smoke", "--logger", "none", "--results-dir", str(tmp_path / "res"),
                                       "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"),
                                       "--stand-in", *args])


@pytest.mark.parametrize("override, needle", [
    ("data.nside=sixteen", "config data.nside: expected int, got 'sixteen'"),
    ("data.stand_in_maps={train_maps_per_class: 2, test_maps: 1}",
     "config data.stand_in_maps.test_maps: unknown key for StandInMaps"),
    ("data.fits_class_tokens=[0p26]", "config data.fits_class_tokens: expected 2 items"),
    ("data.fits_column=[1]", "config data.fits_column: expected int | str | null, got [1] (list)"),
    ("data.min_observed_fraction=most", "config data.min_observed_fraction: expected float"),
    ("models.svm_psd.psd_iter=zero", "config models.svm_psd.psd_iter: expected int"),
    ("models.svm_hist.features=pds", "config models.svm_hist.features: expected one of 'psd', 'hist'"),
    ("models.cnn2d_fcn.l2_reg=high", "config models.cnn2d_fcn.l2_reg: expected float"),
])
def test_mistyped_config_value_exits_2_naming_the_key(tmp_path, capsys, override, needle):
    assert _main(tmp_path, override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert not (tmp_path / "res").exists() and not (tmp_path / "data").exists()  # checked before anything


def test_unknown_data_key_exits_2_naming_it(tmp_path, capsys):
    from reproduce.cosmology import Cosmology

    (tmp_path / "configs" / "cosmology").mkdir(parents=True)
    (tmp_path / "configs" / "cosmology" / "smoke.yaml").write_text(
        f"extends: {ROOT / 'configs' / 'cosmology' / 'smoke.yaml'}\ndata:\n  batch_size: 8\n")
    bench = Cosmology()
    bench.config_root = tmp_path / "configs"
    assert _main(tmp_path, bench=bench) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config data.batch_size: unknown key for CosmologyDataModule" in err
    assert "batch_per_order2" in err  # the valid keys are listed
    assert not (tmp_path / "data").exists()


# --------------------------------------------------------------------------- evaluation: the test split suffices
def _test_only(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src / SPLIT_DIRS["test"], dst / SPLIT_DIRS["test"])
    return dst


def test_the_training_std_is_datamodule_state_and_a_test_only_folder_suffices(stand_in, tmp_path):
    full = CosmologyDataModule(stand_in, nside=NSIDE, order=2, noise=1.0)
    assert full.state_dict() == {}  # nothing known before setup: nothing saved
    full.setup("fit")
    state = full.state_dict()
    assert state == {"train_std": full.samples["std"]} and state["train_std"] > 0
    only = _test_only(stand_in, tmp_path / "only")
    ev = CosmologyDataModule(only, nside=NSIDE, order=2, noise=1.0, require_train=False)
    ev.prepare_data()  # the test split only is validated
    ev.load_state_dict(state)
    ev.setup("test")
    assert "x_train" not in ev.samples and ev.samples["std"] == state["train_std"]
    np.testing.assert_array_equal(ev.test_set.tensors[0].numpy(), full.test_set.tensors[0].numpy())
    assert [p.name for p in ev.test_files] == sorted(p.name for p in (stand_in / "same_psd_testing").glob("*.fits"))
    assert ev.state_dict() == state
    # the restored std wins over one computed from a training split, even after setup
    other = CosmologyDataModule(stand_in, nside=NSIDE, order=2, noise=1.0)
    other.setup("fit")
    other.load_state_dict({"train_std": 2 * state["train_std"]})
    assert other.samples["std"] == 2 * state["train_std"] and "x_train" in other.samples
    np.testing.assert_allclose(other.samples["x_train"] * 2, full.samples["x_train"], rtol=1e-6)
    # training needs the training split; without a restored std, so does testing
    with pytest.raises(InputError, match="missing folder .*same_psd; "):
        CosmologyDataModule(only, nside=NSIDE).prepare_data()
    bare = CosmologyDataModule(only, nside=NSIDE, order=2, require_train=False)
    bare.prepare_data()
    with pytest.raises(InputError, match=r"holds no training std .*/same_psd, the training split to compute it "
                                         r"from, is missing"):
        bare.setup("test")
    with pytest.raises(InputError, match="train_std -1.0; expected a positive number"):
        bare.load_state_dict({"train_std": -1.0})


def test_evaluate_on_a_test_only_folder_uses_the_checkpoints_std(tmp_path, capsys):
    import json

    data = tmp_path / "data"
    assert _main(tmp_path, "--only", "deepsphere_fcn") == 0
    capsys.readouterr()
    with open(tmp_path / "res" / "cosmology.csv") as f:
        (row,) = list(csv.DictReader(f))
    ckpt = ROOT / row["checkpoint"]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["CosmologyDataModule"]["train_std"] > 0  # Lightning saved the datamodule's state
    only = _test_only(data, tmp_path / "only")

    def evaluate(path, folder):
        from reproduce.cosmology import BENCH
        from reproduce.runner import main
        rc = main(BENCH, None, ["--preset", "smoke", "--logger", "none", "--evaluate", str(path),
                                "--data-dir", str(folder)])
        return rc, capsys.readouterr()

    rc, out = evaluate(ckpt, only)
    assert rc == 0, out.err[-2000:]
    res = json.loads(out.out.strip().splitlines()[-1])
    tests = sorted((only / "same_psd_testing").glob("*.fits"))
    assert res["test_samples"] == 2 * 12 and res["test_files"] == [str(p) for p in tests]
    assert res["test_acc"] == pytest.approx(float(row["test_acc"]), abs=1e-6)  # the same samples, same std
    assert f"scored 24 test samples from {tests[0]}" in out.err
    # a checkpoint without the datamodule's state: the training split is needed, and its absence is said
    bare = ckpt.with_name("no-std.ckpt")
    torch.save({k: v for k, v in state.items() if k != "CosmologyDataModule"}, bare)
    rc, out = evaluate(bare, only)
    assert rc == 2 and out.err.count("\n") == 1 and out.err.startswith("error: cosmology: cannot normalise"), out.err
    print("no-std error:", out.err.strip())
    rc, out = evaluate(bare, data)  # with the training split there, the std is computed from it
    assert rc == 0, out.err[-2000:]
    assert json.loads(out.out.strip().splitlines()[-1])["test_acc"] == pytest.approx(float(row["test_acc"]), abs=1e-6)


def test_evaluate_keeps_the_checkpoints_nside_unless_asked(capsys):
    """--evaluate with data.nside other than the checkpoint's: refused naming both values; with
    --allow-mismatch, said in one line."""
    from reproduce.cosmology import BENCH
    from reproduce.runner import config as C
    from reproduce.runner.evaluate import check_geometry

    trained = C.load_preset("cosmology", "smoke")
    now = C.apply_overrides(trained, ["data.nside=512"])
    old = C.get(trained, "data.nside")
    with pytest.raises(InputError, match=rf"--evaluate: data.nside=512 differs from the checkpoint's {old} "
                                         r"\(what it was trained on\); pass --allow-mismatch"):
        check_geometry(BENCH, trained, now, allow=False)
    assert check_geometry(BENCH, trained, trained, allow=False) is None
    capsys.readouterr()
    assert check_geometry(BENCH, trained, now, allow=True) is None
    assert capsys.readouterr().err.strip().splitlines() == [
        f"[cosmology] --allow-mismatch: evaluating with data.nside=512; the checkpoint was trained with {old}"]
