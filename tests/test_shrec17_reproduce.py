"""reproduce/shrec17.py end to end on a tiny stand-in: the smoke grid (DeepSphere on HEALPix and on the
equiangular grid, the steerable CNN on voxels) through the runner; rows, tables and figure; the
official result files are in the evaluate.js layout and score, read back, to the row's metrics; the
table regenerates from the CSV alone; DDP over 2 gloo processes scores every test object once; bad
settings are one error line, exit 2."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from datamodules.shrec17_layout import MAX_NAMED_CLASSES
from datamodules.shrec17_standin import NUM_CLASSES, split_counts
from models import retrieval as R
from reproduce.reports.shrec17 import decode_maps
from datamodules.shrec17 import parse_input
from tests.conftest import first_fast, run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reproduce" / "shrec17.py"
TINY = ["data.stand_in_train=2", "data.stand_in_val=1", "data.stand_in_test=1"]  # per synset (16 synsets)
N_TEST = sum(split_counts(1).values())  # test models of TINY (1 or 2 per synset; 19 in all)
HEAD = 55 - NUM_CLASSES  # classes fewer than ShapeNet's in the heads


def run_shrec(*args, check=True, timeout=600):
    return run_script(SCRIPT, *args, check=check, timeout=timeout)


def rows_of(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shrec17")
    run_shrec("--preset", "smoke", "--logger", "csv", "--results-dir", tmp / "res", "--runs-dir", tmp / "runs",
              "--data-dir", tmp / "data", "--stand-in", *TINY)
    return tmp, rows_of(tmp / "res" / "shrec17.csv")


def test_smoke_rows_tables_and_figure(smoke):
    tmp, rows = smoke
    assert sorted((r["model"], r["setting_input"]) for r in rows) == [
        ("ds_equiangular", "equiangular:64"), ("ds_healpix", "healpix:32"), ("esteves", "equiangular:64"),
        ("s2cnn", "equiangular:64"), ("se3", "voxel:33")]
    for r in rows:
        assert r["data_source"] == "stand-in" and r["scored_split"] == "test"
        assert int(r["scored_objects"]) == N_TEST  # augmentations summed per id
        for k in ("micro_precision", "micro_recall", "micro_map", "macro_map", "f1_cls", "rotation_agreement"):
            assert 0.0 <= float(r[k]) <= 1.0, k
        assert float(r["infer_ms"]) > 0 and float(r["rotation_logit_error"]) >= 0
        assert float(r["preprocess_meshes_per_s"]) > 0 and int(r["preprocess_meshes"]) > 0
    by = {r["model"]: r for r in rows}
    assert int(by["ds_healpix"]["params"]) == int(by["ds_equiangular"]["params"]) == 190_032 - HEAD * 256
    assert int(by["esteves"]["params"]) == 491_959 - HEAD * 257  # FC(256 -> classes) with bias
    assert int(by["s2cnn"]["params"]) == 99_108 + 8 * 51  # the cpu preset's narrowed S2CNN (50, 50) at b (12, 8)
    assert by["ds_healpix"]["preprocess_backend"] in ("embree", "numpy")
    maps = decode_maps(tmp / "res", by["ds_healpix"]["example_maps"])
    assert by["ds_healpix"]["example_maps"] == f"shrec17/{by['ds_healpix']['run_id']}.example_maps.npz"
    assert maps.shape == (4 * 6, 24, 48) and 0 <= maps.min() < maps.max() <= 1
    assert not by["se3"].get("example_maps")  # voxel input: no spherical map to draw
    md = (tmp / "res" / "shrec17.md").read_text()
    assert "**Data: offline stand-in**" in md and "Preset: `smoke`" in md
    assert "| DeepSphere, HEALPix Nside 32 | 80.7 | .686 | .428 | 190 k | 0.9 ms | 50 min |" in md
    assert "| ↳ reproduced: DeepSphere, HEALPix |" in md and "| ↳ reproduced: 3D steerable CNN (voxels) |" in md
    assert "| ↳ reproduced: Esteves et al. (spectral) |" in md and "| ↳ reproduced: S2CNN (spectral) |" in md
    assert "| Tatsuma_ReVGG (SHREC'17) | – | .705 | .769 | .719 | .696 | .783 |" in md
    assert "## Continuous rotations" in md and "## Preprocessing speed" in md
    assert (tmp / "res" / "shrec17.png").stat().st_size > 5000
    (tmp / "res" / "shrec17.md").unlink()
    run_shrec("--preset", "smoke", "--table", "--results-dir", tmp / "res", *TINY)
    assert (tmp / "res" / "shrec17.md").read_text() == md


def test_result_files_score_to_the_row(smoke):
    """The official layout: <run>/retrieval/<model>/test_perturbed/<queryId>, one id per line; read
    back and scored against the stand-in's all.csv they give the row's numbers."""
    tmp, rows = smoke
    for r in rows:
        folder = ROOT / r["run_dir"] / "retrieval" / r["model"] if not Path(r["run_dir"]).is_absolute() \
            else Path(r["run_dir"]) / "retrieval" / r["model"]
        lists = R.read_results(folder)
        assert len(lists) == N_TEST and all(len(v) >= 1 for v in lists.values())
        res = R.evaluate(lists, tmp / "data" / "all.csv", split="test")
        for k in ("micro_map", "macro_map", "micro_ndcg", "micro_f1"):
            assert res[k] == pytest.approx(float(r[k]), abs=1e-6), (r["model"], k)
        summary = (folder.parent / f"{r['model']}.summary.csv").read_text().splitlines()
        assert summary[0] == "class,P@N,R@N,F1@N,mAP,NDCG,dataset,method" and summary[1].startswith("microALL,")


@pytest.mark.slow
def test_ddp_two_processes_score_every_object_once(smoke, tmp_path):
    tmp, _ = smoke
    run_shrec("--preset", "smoke", "--logger", "none", "--only", "ds_healpix", "--cpu-procs", "2",
              "--results-dir", tmp_path / "res", "--runs-dir", tmp_path / "runs", "--data-dir", tmp_path / "data",
              "--stand-in", *TINY, "data.stand_in_test=3", "data.test_augmentations=1")
    (row,) = rows_of(tmp_path / "res" / "shrec17.csv")
    assert row["hardware"].endswith("2 DDP procs") and int(row["scored_objects"]) == sum(split_counts(3).values())


@pytest.mark.parametrize("setting, message", first_fast([
    ("grid.rows=[{model: ds_healpix, setting: {input: 'voxel:33'}}]", "needs sphere input"),
    ("grid.rows=[{model: se3, setting: {input: 'healpix:32'}}]", "needs voxel input"),
    ("grid.rows=[{model: ds_healpix, setting: {input: 'cube:9'}}]", "must be healpix:NSIDE"),
    ("grid.rows=[{model: ds_healpix, setting: {input: 'healpix:32'}, overrides: {evaluation.scores: probs}}]",
     "evaluation.scores 'probs' must be one of logits, log_softmax, softmax"),
    ("evaluation.retrieval=median", "evaluation.retrieval 'median' must be one of class, class+median"),
]))
def test_bad_rows_are_one_line_exit_2(tmp_path, setting, message):
    p = run_shrec("--preset", "smoke", "--results-dir", tmp_path, "--runs-dir", tmp_path, setting, check=False)
    assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_summed_scores_follow_the_reference():
    """s2cnn test.py sums log-softmax outputs, deepsphere-tf1 averages softmax probabilities: the
    argmax is that of the summed logits for log_softmax, but the ranking score is not."""
    from models.retrieval import per_copy_scores
    from models.retrieval import evaluation_settings
    logits = np.array([[2.0, 0.0], [2.0, 1.9],    # object 1: two copies
                       [1.0, 0.0], [1.0, 0.0]])   # object 2
    ids = [1, 1, 2, 2]
    sums = {k: R.sum_by_id(ids, per_copy_scores(logits, k))[1] for k in ("logits", "log_softmax", "softmax")}
    assert all((v.argmax(1) == 0).all() for v in sums.values())
    # both objects are predicted class 0; by summed logits object 1 ranks first (4 > 2), by summed
    # log-probabilities object 2 does (its copies are more confident)
    assert sums["logits"][0, 0] > sums["logits"][1, 0]
    assert sums["log_softmax"][0, 0] < sums["log_softmax"][1, 0]
    np.testing.assert_allclose(sums["softmax"].sum(1), [2.0, 2.0])
    assert evaluation_settings({}) == ("class", "logits")


def test_parse_input():
    assert parse_input("healpix:32") == {"input": "sphere", "sampling": "healpix:32"}
    assert parse_input("voxel:64") == {"input": "voxel", "voxel_size": 64}


def test_evaluate_on_class_folders(smoke, tmp_path, capsys):
    """``--evaluate`` scores a trained checkpoint on the second input form, a folder per class of
    ``.off`` files (ModelNet style, names unrelated to ids), in the class order of the checkpoint;
    the result files go beside the run's own, not over them."""
    import trimesh

    tmp, rows = smoke
    data = tmp / "data"
    with open(data / "test.csv") as f:
        test = list(csv.DictReader(f))
    for r in test:
        mesh = trimesh.load(data / "test_perturbed" / f"{r['id']}.obj", force="mesh")
        (tmp_path / "folders" / r["synsetId"]).mkdir(parents=True, exist_ok=True)
        mesh.export(tmp_path / "folders" / r["synsetId"] / f"shape_{r['modelId']}.off")
    row = next(r for r in rows if r["model"] == "ds_healpix")
    run_dir = Path(row["run_dir"]) if Path(row["run_dir"]).is_absolute() else ROOT / row["run_dir"]
    before = sorted((run_dir / "retrieval").rglob("*"))
    from reproduce.runner import main  # in-process: the command line's path is the smoke fixture's
    from reproduce.shrec17 import BENCH
    capsys.readouterr()
    assert main(BENCH, argv=["--evaluate", str(run_dir / "checkpoints" / "last.ckpt"),
                             "--data-dir", str(tmp_path / "folders")]) == 0
    out = __import__("json").loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["scored_objects"] == len(test) == N_TEST and out["test_samples"] == N_TEST * 2
    assert 0 <= out["micro_map"] <= 1 and "example_maps" not in out
    assert sorted((run_dir / "retrieval").rglob("*")) == before
    (evaluated,) = run_dir.glob("retrieval-evaluate-*")
    assert len(R.read_results(evaluated / "ds_healpix")) == N_TEST


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """One smoke run (DeepSphere on HEALPix) on the tiny stand-in: its checkpoint and data."""
    tmp = tmp_path_factory.mktemp("shrec17_one")
    run_shrec("--preset", "smoke", "--logger", "none", "--results-dir", tmp / "res", "--runs-dir", tmp / "runs",
              "--data-dir", tmp / "data", "--stand-in", *TINY,
              "grid.rows=[{model: ds_healpix, setting: {input: 'healpix:32'}}]")
    (ckpt,) = (tmp / "runs").rglob("last.ckpt")
    return tmp, ckpt


@pytest.mark.slow
def test_evaluate_class_folders_named_otherwise_names_the_ids_and_the_hint_works(one_run, tmp_path):
    """Class folders named 'chair', 'lamp', 'table': one error naming the checkpoint's 16 class ids
    and how to name the folders; renamed so (3 of the 16 classes), --evaluate scores them and
    prints the files it scored."""
    import json

    import trimesh

    tmp, ckpt = one_run
    with open(tmp / "data" / "test.csv") as f:
        test = list(csv.DictReader(f))
    ids = sorted({r["synsetId"] for r in test})
    words = {ids[3]: "chair", ids[5]: "lamp", ids[7]: "table"}
    for r in test:
        if r["synsetId"] in words:
            d = tmp_path / "named" / words[r["synsetId"]]
            d.mkdir(parents=True, exist_ok=True)
            trimesh.load(tmp / "data" / "test_perturbed" / f"{r['id']}.obj", force="mesh").export(
                d / f"{words[r['synsetId']]}_{r['modelId']}.off")
    p = run_shrec("--evaluate", ckpt, "--data-dir", tmp_path / "named", "--logger", "none", check=False)
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and err[-1].startswith("error: shrec17: ") and len(err) == 1, err
    assert "class folder(s) 'chair', 'lamp', 'table' are not classes of the model" in err[-1]
    shown = ", ".join(ids[:MAX_NAMED_CLASSES]) + (f", ... ({len(ids)} in all)" if len(ids) > MAX_NAMED_CLASSES else "")
    assert f"its {NUM_CLASSES} class ids are {shown}." in err[-1] and "Rename each class folder to the id" in err[-1]
    for synset, word in words.items():
        (tmp_path / "named" / word).rename(tmp_path / "named" / synset)
    p = run_shrec("--evaluate", ckpt, "--data-dir", tmp_path / "named", "--logger", "none")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    scored = sorted(str(q) for q in (tmp_path / "named").rglob("*.off"))
    assert out["scored_objects"] == len(scored) == sum(r["synsetId"] in words for r in test) and sorted(out["test_files"]) == scored
    line = next(ln for ln in p.stderr.splitlines() if "[shrec17] scored" in ln)
    assert line.split("scored ")[1].startswith(f"{2 * len(scored)} test samples from ") and all(s in line for s in scored)
