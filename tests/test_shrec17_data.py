"""SHREC'17 data: mesh files (obj face syntaxes and polygons, off, ply, each kind of broken mesh),
csv robustness, the ray-cast channels against hand-computed answers (sphere, cube, moved cube, both
ray backends), the surface voxeliser against a brute-force box, the stand-in (determinism, layout,
all four grades), the datamodule end to end for both inputs, its cache (reuse, corruption, a changed
mesh, worker pool), the folder-per-class layout and the InputError messages. Everything is written
in ``tmp_path``; total well under a minute on one core."""
from __future__ import annotations

import csv
import gzip
import math
import shutil

import numpy as np
import pytest
import torch
import trimesh

from datamodules import meshes
from datamodules import shrec17_cache as cache
from datamodules import shrec17_layout as layout
from datamodules import shrec17_render as rays
from datamodules import voxelize as vox
from datamodules import shrec17 as S
from datamodules._common import InputError
from datamodules.shrec17_standin import (NUM_CLASSES, PERTURB, SYNSETS, prepare_stand_in, split_counts,
                                        write_stand_in)
from models.retrieval import evaluate, grades

SMALL = dict(stand_in_train=2, stand_in_val=1, stand_in_test=1)  # 16 synsets, 1-4 / 1-2 / 1-2 models each
N_TRAIN, N_VAL, N_TEST = (sum(split_counts(n).values()) for n in (2, 1, 1))  # models in each split
FAST = dict(num_classes=NUM_CLASSES, sampling="healpix:2", progress=False, batch_size=4, test_batch_size=4)


def write_obj(path, v, f, fmt="{}"):
    lines = [f"v {float(x)!r} {float(y)!r} {float(z)!r}" for x, y, z in np.asarray(v, dtype=float)]
    lines += ["f " + " ".join(fmt.format(i + 1) for i in face) for face in f]
    path.write_text("\n".join(lines) + "\n")
    return path


def box_mesh(ext=(1.0, 1.0, 1.0)):
    return trimesh.creation.box(extents=ext)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    d = tmp_path_factory.mktemp("shrec") / "standin"
    prepare_stand_in(d, train=2, val=1, test=1, seed=0)
    return d


def copy_standin(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
    return dst


# ------------------------------------------------------------------ mesh files
def test_obj_face_syntaxes_polygons_and_negative_indices(tmp_path):
    p = tmp_path / "m.obj"
    p.write_text("# comment\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\nvt 0 0\nvn 0 0 1\n"
                 "f 1/1/1 2/1/1 3/1/1\n"      # v/vt/vn
                 "f 1/1 3/1 4/1\n"            # v/vt (s2cnn _fix case)
                 "f 1//1 2//1 5//1\n"         # v//vn
                 "  f 2 3 4 5\n"              # quad, leading blank
                 "f -5 -3 -2 -1 -4\n"         # pentagon with relative indices
                 "f 1 2\n"                    # fewer than 3 corners: ignored
                 "l 1 2\n")
    v, f = meshes.read_obj(p)
    assert v.shape == (5, 3)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 4], [1, 2, 3], [1, 3, 4],
                          [0, 2, 3], [0, 3, 4], [0, 4, 1]]


def test_off_and_ply_are_read(tmp_path):
    off = tmp_path / "q.off"
    off.write_text("OFF\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n4 0 1 2 3\n3 0 1 4\n")
    v, f = meshes.read_mesh(off)
    assert v.shape == (5, 3) and len(f) == 3  # the quad is split in two
    assert math.isclose(trimesh.Trimesh(v, f, process=False).area, 1.5)
    glued = tmp_path / "glued.off"  # ModelNet's header glitch: counts on the OFF line
    glued.write_text("OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert meshes.read_mesh(glued)[1].tolist() == [[0, 1, 2]]
    box = box_mesh((1.0, 2.0, 3.0))
    for enc in ("binary", "ascii"):
        ply = tmp_path / f"b_{enc}.ply"
        box.export(ply, encoding=enc)
        v, f = meshes.read_mesh(ply)
        assert len(f) == 12 and math.isclose(trimesh.Trimesh(v, f, process=False).area, box.area)


BROKEN = {
    "empty.obj": ("", "empty file"),
    "blank.obj": ("\n  \n", "empty file"),
    "nofaces.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
    "novertices.obj": ("# nothing\n", "no vertices"),
    "nan.obj": ("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
    "inf.obj": ("v 0 0 0\nv 1e999 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
    "point.obj": ("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "zero extent"),
    "flat.obj": ("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "degenerate"),
    "range.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "out of range"),
    "token.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "unreadable face corner"),
    "vertex.obj": ("v 0 0\nf 1 1 1\n", "unreadable vertex"),
    "binary.obj": (b"\x00\x01garbage", "binary"),
    "garbage.ply": (b"not a ply\x00\x01", "unreadable .ply"),
    "empty.off": ("", "empty file"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_broken_mesh_kind_has_a_reason(tmp_path, name):
    content, reason = BROKEN[name]
    p = tmp_path / name
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    with pytest.raises(meshes.BrokenMesh, match=reason):
        meshes.load_normalized(p)


def test_broken_meshes_are_skipped_with_one_line_each(standin, tmp_path, capsys):
    d = copy_standin(standin, tmp_path / "d")
    train = sorted((d / "train_perturbed").glob("*.obj"))
    (train[0]).write_text("")
    (train[1]).write_text("v 0 0 0\nv nan 1 0\nv 0 1 0\nf 1 2 3\n")
    (train[2]).write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    dm = S.Shrec17DataModule(d, test_split="val", **FAST)
    dm.prepare_data()
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "skipped" in ln]
    assert len(lines) == 3
    for p, why in zip(train[:3], ("empty file", "NaN or infinite", "no faces")):
        assert sum(p.name in ln and why in ln for ln in lines) == 1
    assert dm.preprocess_stats["skipped"] == 3
    dm.setup()
    assert len(dm.datasets["train"]) == N_TRAIN - 3
    ids = {int(dm.datasets["train"][k][2]) for k in range(len(dm.datasets["train"]))}
    assert not ids & {int(p.stem) for p in train[:3]}
    # a second run takes the broken list from the cache: nothing recomputed, the same 3 skipped
    again = S.Shrec17DataModule(d, test_split="val", **FAST)
    again.prepare_data()
    assert again.preprocess_stats["meshes"] == 0 and again.preprocess_stats["skipped"] == 3
    # nothing usable left in a split: a clear error
    for p in (d / "val_perturbed").glob("*.obj"):
        p.write_text("")
    with pytest.raises(InputError, match=r"nothing usable left in the val split"):
        S.Shrec17DataModule(d, test_split="val", **FAST).prepare_data()


def test_an_unexpected_error_on_one_mesh_skips_it(standin, tmp_path, monkeypatch):
    items = layout.index_shrec_split(standin, "val").items[:3]
    real = meshes.load_normalized

    def flaky(path):
        if path.name == items[1].path.name:
            raise RuntimeError("qhull fell over")
        return real(path)

    monkeypatch.setattr(cache, "load_normalized", flaky)
    params = S.Shrec17DataModule(standin, **FAST).params() | {"backend": "numpy"}
    res = cache.fill_cache(items, tmp_path / "val", 1, params, progress=False)
    assert res.usable == [items[0].id, items[2].id] and res.computed == 2
    assert res.broken == {items[1].id: "preprocessing failed (RuntimeError: qhull fell over)"}


# ------------------------------------------------------------------ csv files
def test_csv_robustness(tmp_path):
    p = tmp_path / "train.csv"
    p.write_bytes(b"\xef\xbb\xbfmodelId,extra,synsetId,id,subSynsetId\r\n"
                  b"abc,1,02691156,7,02690373\r\n"
                  b"def,2,2691156,000008,\r\n"          # synset read by a spreadsheet, no sub
                  b"ghi,3,04379243,123456,03179701\r\n\r\n")
    rows = layout.read_csv(p)
    assert [(r.id, r.synset, r.sub, r.split) for r in rows] == [
        ("000007", "02691156", "02690373", "train"), ("000008", "02691156", "02691156", "train"),
        ("123456", "04379243", "03179701", "train")]
    allcsv = tmp_path / "all.csv"
    allcsv.write_text("id,synsetId,subSynsetId,modelId,split\n1,03001627,04331277,a,test\n"
                      "2,03001627,03001627,b,val\n3,03001627,02738535,c,test_perturbed\n")  # trailing newline
    assert [r.id for r in layout.read_csv(allcsv, "test")] == ["000001", "000003"]
    gz = tmp_path / "all.csv.gz"
    gz.write_bytes(gzip.compress(allcsv.read_bytes()))
    assert layout.read_csv(gz, "val")[0].sub == "03001627"
    bad = {"dup.csv": ("id,synsetId\n5,02691156\n000005,02691156\n", "appears twice"),
           "nocol.csv": ("id,category\n5,02691156\n", "no column 'synsetId'"),
           "word.csv": ("id,synsetId\nabc,02691156\n", "is not a model number"),
           "empty.csv": ("", "is empty")}
    for name, (text, msg) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=msg) as e:
            layout.read_csv(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)


def test_shrec_layout_from_foreign_csvs_and_a_missing_mesh(tmp_path, capsys):
    d = tmp_path / "data"
    v, f = box_mesh().vertices, box_mesh().faces
    for split, ids in (("train", [1, 2, 3, 4]), ("val", [5, 6])):
        (d / f"{split}_perturbed").mkdir(parents=True)
        for i in ids:
            name = f"{i:06d}.obj" if split == "train" else f"{i}.obj"  # val files without padding
            write_obj(d / f"{split}_perturbed" / name, v * (1 + i / 10), f, "{0}/{0}")
    (d / "train_perturbed" / "000004.obj").unlink()       # listed, but its file is missing
    (d / "train.csv").write_bytes(b"split,id,synsetId,subSynsetId,modelId,source\r\n"
                                  b"train,1,03001627,04331277,m1,x\r\ntrain,2,04379243,04379243,m2,x\r\n"
                                  b"train,3,03001627,02738535,m3,x\r\ntrain,4,03001627,02738535,m4,x\r\n")
    (d / "val.csv").write_text("id,synsetId,subSynsetId,modelId,split\n000005,03001627,04331277,a,val\n"
                               "000006,04379243,03179701,b,val\n")
    dm = S.Shrec17DataModule(d, num_classes=2, test_split="val", sampling="healpix:1", progress=False)
    dm.prepare_data()
    err = capsys.readouterr().err
    assert "train.csv line 5: id 000004 has no mesh file" in err
    dm.setup()
    assert dm.class_names == ["03001627", "04379243"]
    assert len(dm.datasets["train"]) == 3
    assert list(dm.labels("train")) == ["000001", "000002", "000003", "000004"]  # the oracle keeps it
    assert dm.labels() == {"000005": ("03001627", "04331277", "val"), "000006": ("04379243", "03179701", "val")}
    x, y, i = next(iter(dm.test_dataloader()))
    assert x.shape == (2, 12, 6) and y.tolist() == [0, 1] and i.tolist() == [5, 6]


# ------------------------------------------------------------------ ray-cast channels
@pytest.fixture(scope="module")
def backends():
    return ["numpy"] + (["embree"] if rays.embree_available() else [])


def unit_cube():
    """A cube centred on the origin, after the preprocessing: largest radius 1, half-edge 1/√3."""
    return meshes.centre_and_scale(meshes.clean_mesh(box_mesh().vertices, box_mesh().faces))


def test_sphere_channels_of_a_sphere(tmp_path, backends):
    m = trimesh.creation.icosphere(subdivisions=4)
    p = write_obj(tmp_path / "s.obj", m.vertices * 3 + 5, m.faces)  # not centred, not unit
    mesh = meshes.load_normalized(p)
    pose = meshes.draw_pose(mesh.vertices, 0, 1, 0, rotate=False, translate=0.0)
    assert math.isclose(pose.s, 0.99) and np.allclose(pose.t, 0)
    for be in backends:
        x = rays.sampling_vectors("healpix:2" if be == "numpy" else "healpix:8")
        ch = rays.sphere_channels(mesh, x, [pose], be)[0]
        # every ray meets the sphere of radius 0.99 at distance 0.01 (faceting: < 2e-3 more)
        assert np.all(ch[:, 0] >= 0.01 - 1e-6) and np.all(ch[:, 0] < 0.012)
        assert np.all(ch[:, 1] > 0.998) and np.all(ch[:, 2] < 0.06)     # normal ∥ ray
        np.testing.assert_allclose(ch[:, 3:], ch[:, :3], atol=1e-6)     # convex: hull = mesh


def test_sphere_channels_of_a_cube_by_hand(backends):
    cube = unit_cube()
    a = 1 / math.sqrt(3)
    assert np.allclose(np.abs(cube.vertices), a)
    s = 0.99
    pose = meshes.Pose(np.eye(3), np.zeros(3), s)
    rng = np.random.default_rng(0)
    u = rng.normal(size=(200, 3))
    u = np.vstack([np.eye(3), -np.eye(3), [[1, 1, 1 - 1e-3]], u])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    big = np.abs(u).max(1)                        # the face hit is the one of the largest |u_i|
    want = np.c_[1 - s * a / big, big, np.sqrt(1 - big ** 2)]
    for be in backends:
        ch = rays.sphere_channels(cube, u, [pose], be)[0]
        np.testing.assert_allclose(ch[:, :3], want, atol=2e-6)
        np.testing.assert_allclose(ch[:, 3:], want, atol=2e-6)
        assert math.isclose(ch[0, 0], 1 - 0.99 / math.sqrt(3), abs_tol=1e-6) and ch[0, 1] == 1
        assert math.isclose(ch[6, 0], 1 - s * a / max(u[6]), abs_tol=1e-6)  # next to a corner
        assert math.isclose(ch[6, 1], 1 / math.sqrt(3), abs_tol=1e-3)


def test_moved_cube_matches_the_rays_moved_the_other_way(backends):
    cube = unit_cube()
    a = 1 / math.sqrt(3)
    R = meshes.draw_pose(cube.vertices, 3, 4, 5).R
    x = rays.sampling_vectors("healpix:2")
    for be in backends:
        rotated = rays.render(cube, x, meshes.Pose(R, np.zeros(3), 0.9), be)
        np.testing.assert_allclose(rotated, rays.render(cube, x @ R, meshes.Pose(np.eye(3), np.zeros(3), 0.9), be),
                                   atol=1e-6)
        # translated by t: the +x face is at s·(a + t_x); the ray from (1, 0, 0) meets it head-on
        t = np.array([0.1, -0.05, 0.02])
        ch = rays.render(cube, np.array([[1.0, 0, 0]]), meshes.Pose(np.eye(3), t, 0.8), be)[0]
        assert np.allclose(ch, [1 - 0.8 * (a + t[0]), 1, 0], atol=1e-9)
        # a miss is (1, 0, 0): the cube shrunk and shifted away from the ray
        miss = rays.render(cube, np.array([[0, 0, 1.0]]), meshes.Pose(np.eye(3), np.array([0.9, 0, 0]), 0.2), be)[0]
        assert miss.tolist() == [1.0, 0.0, 0.0]


def test_backends_agree_on_a_stand_in_mesh(standin):
    if not rays.embree_available():
        pytest.skip("embreex not installed")
    m = meshes.load_normalized(next((standin / "train_perturbed").glob("*.obj")))
    poses = [meshes.draw_pose(m.vertices, 0, 9, c) for c in range(2)]
    x = rays.sampling_vectors("healpix:4")
    a, b = (rays.sphere_channels(m, x, poses, be) for be in ("embree", "numpy"))
    assert (np.abs(a - b) > 1e-4).mean() < 0.01  # a ray through a shared edge may pick either face
    assert (a[..., 0] < 1).mean() > 0.3 and a.shape == (2, 192, 6)


def test_normalisation_is_the_s2cnn_one():
    x = torch.tensor([rays.CHANNEL_MEAN, [m + s for m, s in zip(rays.CHANNEL_MEAN, rays.CHANNEL_STD)]])
    assert torch.allclose(rays.normalize_channels(x), torch.tensor([[0.0] * 6, [1.0] * 6]), atol=1e-6)


# ------------------------------------------------------------------ voxeliser
def brute_force_box_surface(lo, hi, m):
    """Voxels of the [−1, 1]³ grid of edge m whose closed cube meets the surface of the box [lo, hi]:
    it meets the closed box and is not inside the open box."""
    e = np.linspace(-1, 1, m + 1)
    c0, c1 = e[:-1], e[1:]
    meets = [(c1 >= lo[k]) & (c0 <= hi[k]) for k in range(3)]
    inside = [(c0 > lo[k]) & (c1 < hi[k]) for k in range(3)]
    M = meets[0][:, None, None] & meets[1][None, :, None] & meets[2][None, None, :]
    I = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
    return M & ~I


def test_voxeliser_marks_exactly_the_cells_of_a_box_surface():
    lo, hi = np.array([-0.53, -0.31, -0.77]), np.array([0.61, 0.29, 0.44])
    b = trimesh.creation.box(bounds=[lo, hi])
    for n in (9, 16):
        got = vox.voxelize_surface(b.vertices, b.faces, n, double=False)
        assert got.dtype == np.uint8 and got.shape == (n, n, n)
        np.testing.assert_array_equal(got.astype(bool), brute_force_box_surface(lo, hi, n))
    fine = brute_force_box_surface(lo, hi, 2 * 12).reshape(12, 2, 12, 2, 12, 2).sum((1, 3, 5))
    np.testing.assert_array_equal(vox.voxelize_surface(b.vertices, b.faces, 12), fine)  # --double


def test_voxeliser_double_counts_sub_cubes_and_box_fit():
    # a square at x = −0.9, |y|, |z| ≤ 0.6 on the grid of edge 8 (sub-cubes of 0.125): it lies in
    # sub-cube column 0 of x (voxel 0) and covers sub-cubes 3..12 in y and z (3.2..12.8), so voxel
    # j holds 0, 1, 2, 2, 2, 2, 1, 0 of its sub-cubes per axis: the counts are their products
    sq = trimesh.Trimesh([[-0.9, -0.6, -0.6], [-0.9, 0.6, -0.6], [-0.9, 0.6, 0.6], [-0.9, -0.6, 0.6]],
                         [[0, 1, 2], [0, 2, 3]], process=False)
    g = vox.voxelize_surface(sq.vertices, sq.faces, 8)
    per_axis = np.array([0, 1, 2, 2, 2, 2, 1, 0])
    np.testing.assert_array_equal(g[0], np.outer(per_axis, per_axis))
    assert g[1:].sum() == 0
    # box fit: the longest side fills the grid whatever the scale and position
    b = trimesh.creation.box(extents=(4.0, 1.0, 2.0))
    b.apply_translation([10, 20, 30])
    g = vox.voxelize_surface(b.vertices, b.faces, 10, double=False, fit="box")
    assert g[0].any() and g[-1].any() and not g[:, 0].any() and not g[:, -1].any()
    with pytest.raises(ValueError, match="fit"):
        vox.voxelize_surface(b.vertices, b.faces, 10, fit="cube")


# ------------------------------------------------------------------ stand-in
def test_stand_in_is_deterministic_and_has_the_shrec_layout(tmp_path, monkeypatch):
    a = write_stand_in(tmp_path / "a", train=1, val=1, test=3, seed=5)
    b = write_stand_in(tmp_path / "b", train=1, val=1, test=3, seed=5)
    c = write_stand_in(tmp_path / "c", train=1, val=1, test=3, seed=6)
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "all.csv").read_bytes() != (c / "all.csv").read_bytes()
    assert {f.split("/")[0] for f in files} == {"train_perturbed", "val_perturbed", "test_perturbed", "train.csv",
                                                "val.csv", "test.csv", "all.csv"}
    for name in ("train.csv", "val.csv", "test.csv", "all.csv"):
        assert (a / name).read_text().splitlines()[0] == "id,synsetId,subSynsetId,modelId,split"
    rows = list(csv.DictReader(open(a / "all.csv")))
    n = sum(split_counts(1).values()) * 2 + sum(split_counts(3).values())
    assert len(rows) == n and len({r["id"] for r in rows}) == n
    assert {r["synsetId"] for r in rows} == set(SYNSETS)
    for r in rows:
        assert (a / f"{r['split']}_perturbed" / f"{r['id']}.obj").is_file()
    texts = [p.read_text() for p in sorted(a.rglob("*.obj"))]
    assert any("/1/1 " in t for t in texts) and any("//1 " in t for t in texts)
    # quads: exactly coplanar triangle pairs, which the vertex noise leaves none of; without it they occur
    monkeypatch.setitem(PERTURB, "noise", 0.0)
    flat = write_stand_in(tmp_path / "flat", train=1, val=1, test=1, seed=5)
    texts = [p.read_text() for p in sorted(flat.rglob("*.obj"))]
    assert any(len(ln.split()) == 5 for t in texts for ln in t.splitlines() if ln.startswith("f "))
    labels = layout.read_csv(a / "all.csv")
    lab = {r.id: (r.synset, r.sub, r.split) for r in labels}
    test = [i for i, v in lab.items() if v[2] == "test"]
    seen = set()
    for q in test:
        seen |= set(grades(q, test, lab).tolist())
    assert seen == {0, 1, 2, 3}


# ------------------------------------------------------------------ datamodule end to end
def test_datamodule_sphere_end_to_end(standin):
    dm = S.Shrec17DataModule(standin, stand_in=True, **SMALL, **FAST, test_augmentations=2)
    dm.prepare_data()
    st = dm.preprocess_stats
    assert st["meshes"] + st["cached"] == N_TRAIN + N_VAL * 2 + N_TEST * 2 and st["input"] == "sphere"
    assert st["backend"] in ("embree", "numpy") and st["grid"] == "healpix:2"
    dm.setup("fit")
    assert dm.class_names == sorted(SYNSETS) and dm.test_split_name == "test"
    assert dm.test_dataset_name == "test_perturbed"
    x, y, i = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 48, 6) and x.dtype == torch.float32 and y.dtype == i.dtype == torch.int64
    assert isinstance(dm.train_dataloader().sampler, torch.utils.data.RandomSampler)
    assert isinstance(dm.test_dataloader().sampler, torch.utils.data.SequentialSampler)
    test = [dm.datasets["test"][k] for k in range(len(dm.datasets["test"]))]
    ids = [int(t[2]) for t in test]
    assert len(test) == 2 * N_TEST and all(ids.count(k) == 2 for k in set(ids))     # two copies each
    assert not torch.equal(test[0][0], test[1][0])                          # ... with their own draw
    lab = dm.labels()
    assert list(lab) == [r.id for r in layout.read_csv(standin / "test.csv")]  # csv order
    assert {f"{k:06d}" for k in ids} == set(lab)
    for k in range(0, 2 * N_TEST, 2):
        assert dm.class_names[test[k][1]] == lab[f"{ids[k]:06d}"][0]
    res = evaluate({q: list(lab) for q in lab}, lab, dm.test_split_name)
    assert res["num_queries"] == N_TEST and res["ignored_queries"] == 0
    raw = S.Shrec17DataModule(standin, stand_in=True, normalize=False, **SMALL, **FAST)
    raw.setup()
    xr = raw.datasets["val"][0][0]
    assert torch.allclose(rays.normalize_channels(xr), dm.datasets["val"][0][0], atol=1e-5)
    assert xr[:, 0].min() >= 0.0099 and xr[:, 0].max() <= 1.99 and xr[:, 1:3].abs().max() <= 1 + 1e-6


def test_datamodule_voxel_end_to_end(standin):
    dm = S.Shrec17DataModule(standin, stand_in=True, input="voxel", voxel_size=9, **SMALL, **FAST)
    dm.prepare_data()
    assert dm.preprocess_stats["grid"] == "voxel:9x2" and dm.cache_key().startswith("voxel9x2-")
    dm.setup()
    x, y, i = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1, 9, 9, 9) and x.dtype == torch.float32
    v = torch.unique(x * 8)
    assert v.min() == 0 and v.max() <= 8 and torch.equal(v, v.round()) and (x > 0).any()
    test = dm.datasets["test"]
    assert set(dm.labels()) == {f"{k:06d}" for k in (int(test[j][2]) for j in range(len(test)))}


def test_cache_reuse_corruption_and_changed_mesh(standin, tmp_path, capsys):
    d = copy_standin(standin, tmp_path / "d")
    kw = dict(test_split="val", cache_dir=tmp_path / "cache", **FAST)
    dm = S.Shrec17DataModule(d, **kw)
    dm.prepare_data()
    assert dm.preprocess_stats["meshes"] == N_TRAIN + N_VAL and not dm.preprocess_stats["from_cache"]
    assert dm.preprocess_stats["meshes_per_s"] > 0
    first = dict(dm.preprocess_stats)
    dm.prepare_data()                             # Lightning's second call (test): keeps the numbers
    assert dm.preprocess_stats == first
    again = S.Shrec17DataModule(d, **kw)
    again.prepare_data()
    assert again.preprocess_stats["meshes"] == 0 and again.preprocess_stats["cached"] == N_TRAIN + N_VAL
    assert again.preprocess_stats["from_cache"]
    again.setup()
    before = again.datasets["train"][0]
    cached = sorted((dm.cache_folder / "train").glob("*.npz"))
    assert len(cached) == N_TRAIN and str(dm.cache_folder).startswith(str(tmp_path / "cache"))
    victim = dm.cache_folder / "train" / f"{before[2]:06d}_0.npz"
    victim.write_bytes(b"garbage")
    after = again.datasets["train"][0]            # read back: recomputed, identical
    assert "unreadable" in capsys.readouterr().err and torch.equal(before[0], after[0])
    victim.write_bytes(b"garbage")
    (dm.cache_folder / "train.json").unlink()     # no manifest: every file is checked
    third = S.Shrec17DataModule(d, **kw)
    third.prepare_data()
    assert third.preprocess_stats["meshes"] == 1
    mesh = d / "train_perturbed" / f"{before[2]:06d}.obj"
    mesh.write_text(mesh.read_text() + "v 9 9 9\n")  # a changed source is recomputed
    fourth = S.Shrec17DataModule(d, **kw)
    fourth.prepare_data()
    assert fourth.preprocess_stats["meshes"] == 1
    # other parameters → another cache folder
    assert S.Shrec17DataModule(d, seed=1, **kw).cache_key() != dm.cache_key()


def test_worker_pool_writes_the_same_cache(standin, tmp_path):
    d = copy_standin(standin, tmp_path / "d")
    out = {}
    for w in (0, 2):
        dm = S.Shrec17DataModule(d, test_split="val", input="voxel", voxel_size=6, preprocess_workers=w,
                                 cache_dir=tmp_path / f"c{w}", **FAST)
        dm.prepare_data()
        assert dm.preprocess_stats["workers"] == w and dm.preprocess_stats["meshes"] == N_TRAIN + N_VAL
        dm.setup()
        out[w] = torch.stack([dm.datasets["val"][k][0] for k in range(8)])
    assert torch.equal(out[0], out[2])


def _fill_in_process(args):
    items, folder, params = args
    return cache.fill_cache(items, folder, 2, params, progress=False).computed


def test_two_processes_filling_one_cache_take_turns(standin, tmp_path):
    """DDP ranks / two runs at once: the lock lets one compute, the other then reuses its files."""
    items = layout.index_shrec_split(standin, "val").items
    params = S.Shrec17DataModule(standin, input="voxel", voxel_size=5, **FAST).params()
    ctx = cache._pool_context()
    with ctx.Pool(2) as pool:
        computed = pool.map(_fill_in_process, [(items, tmp_path / "val", params)] * 2)
    assert sorted(computed) == [0, 2 * N_VAL]
    assert not list(tmp_path.rglob(".*.tmp*"))
    again = cache.fill_cache(items, tmp_path / "val", 2, params, progress=False)
    assert again.computed == 0 and again.reused == 2 * N_VAL and len(again.usable) == N_VAL


def test_max_per_class_caps_the_training_meshes(standin):
    dm = S.Shrec17DataModule(standin, stand_in=True, max_per_class=1, test_split="val", **SMALL, **FAST)
    dm.prepare_data()
    dm.setup()
    ys = [dm.datasets["train"][k][1] for k in range(len(dm.datasets["train"]))]
    assert sorted(ys) == list(range(NUM_CLASSES))


# ------------------------------------------------------------------ folder-per-class layout
def test_folder_per_class_layout(tmp_path):
    d = tmp_path / "modelnet"
    box = box_mesh((1, 2, 3))
    sph = trimesh.creation.icosphere(1)
    for cls, m in (("chair", box), ("table", sph)):
        for split in ("train", "test"):
            (d / cls / split).mkdir(parents=True)
            m.export(d / cls / split / f"{cls}_0001.off")
            m.export(d / cls / split / f"{cls}_0002.ply")
            write_obj(d / cls / split / f"{cls}_0003.obj", m.vertices, m.faces)
    dm = S.Shrec17DataModule(d, num_classes=2, test_split="test", sampling="healpix:1", progress=False)
    dm.prepare_data()
    dm.setup()
    assert dm.layout == "folders" and dm.class_names == ["chair", "table"]
    assert len(dm.datasets["train"]) == len(dm.datasets["test"]) == 6
    lab = dm.labels()
    assert len(lab) == 6 and {v for v in lab.values()} == {("chair", "chair", "test"), ("table", "table", "test")}
    x, y, i = next(iter(dm.test_dataloader()))
    assert x.shape == (6, 12, 6) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert evaluate({q: list(lab) for q in lab}, lab, "test")["num_queries"] == 6
    assert (d / "cache").is_dir()  # the default cache inside data_dir is not read as a class
    again = S.Shrec17DataModule(d, num_classes=2, sampling="healpix:1", progress=False)
    again.prepare_data()
    assert again.class_names == ["chair", "table"] and again.preprocess_stats["from_cache"]

    flat = tmp_path / "flat"
    for cls in ("a", "b", "c"):
        (flat / cls).mkdir(parents=True)
        box.export(flat / cls / "x.off")
    fm = S.Shrec17DataModule(flat, num_classes=3, sampling="healpix:1", progress=False)
    fm.setup()
    assert fm.class_names == ["a", "b", "c"] and len(fm.datasets["test"]) == 3
    with pytest.raises(InputError, match="no training meshes"):
        fm.train_dataloader()


def _cut(data: bytes, frac: float, at_line_end: bool = False) -> bytes:
    """The first ``frac`` of a file, optionally backed up to the last line end before it."""
    n = int(len(data) * frac)
    if at_line_end:
        n = data.rindex(b"\n", 0, n) + 1
    elif data[n - 1:n] == b"\n":
        n -= 1
    return data[:n]


def _exported(m, file_type, **kw) -> bytes:
    out = m.export(file_type=file_type, **kw)
    return out.encode() if isinstance(out, str) else out


def test_truncated_meshes_written_by_trimesh_are_refused_naming_the_problem(tmp_path):
    """Files written by trimesh, then cut short: the counts the header declares are checked (OFF,
    PLY), an .obj that stops inside a line is refused; a complete file of each kind reads."""
    m = trimesh.creation.icosphere(3)  # 642 vertices, 1280 faces
    off, obj = _exported(m, "off"), _exported(m, "obj")
    ply_ascii = _exported(m, "ply", encoding="ascii")
    for name, data in (("whole.off", off), ("whole.obj", obj), ("whole.ply", ply_ascii)):
        (tmp_path / name).write_bytes(data)
        v, f = meshes.read_mesh(tmp_path / name)
        assert v.shape == (642, 3) and f.shape == (1280, 3)
    # OFF cut inside its face block, inside a line and at a line end
    face_start = off.index(b"\n3 ") + 1
    frac = (face_start + 0.66 * (len(off) - face_start)) / len(off)
    cases = {
        "mid_line.off": (_cut(off, frac), r"declares 1280 faces, the file holds \d+ complete face line"),
        "line_end.off": (_cut(off, frac, at_line_end=True), r"declares 1280 faces, the file holds \d+ complete"),
        "vertices.off": (_cut(off, 0.2), r"declares 642 vertices, the file holds \d+ vertex line"),
        "sixty.obj": (_cut(obj, 0.6), r"stops without a line end: the file looks cut short"),
        "sixty.ply": (_cut(ply_ascii, 0.6), r"declares 1280 face records, the file holds \d+ complete"),
        "line_end.ply": (_cut(ply_ascii, 0.9, at_line_end=True), r"declares 1280 face records"),
        "vertices.ply": (_cut(ply_ascii, 0.1, at_line_end=True), r"declares 642 vertices, \d+ were read|"
                                                                  r"declares 642 vertex records"),
        "binary.ply": (_cut(_exported(m, "ply"), 0.6), r"unreadable .ply"),
        "range.off": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", r"line 6: face index 3 out of range"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(meshes.BrokenMesh, match=reason):
            meshes.read_mesh(tmp_path / name)
    # the 60 % .obj, when it happens to end at a line end, has faces in range: nothing to detect
    # in .obj (no counts); ending it inside a line is what a cut usually does
    assert not _cut(obj, 0.6).endswith(b"\n")


def test_ply_face_indices_out_of_range_are_a_broken_mesh(tmp_path):
    """trimesh-written .ply (ASCII and binary) whose face list names vertex 400 of 42 (or -1): a
    BrokenMesh naming the face, never an IndexError or a wrapped index."""
    m = trimesh.creation.icosphere(1)  # 42 vertices
    lines = _exported(m, "ply", encoding="ascii").split(b"\n")
    first_face = lines.index(b"end_header") + 1 + len(m.vertices)
    lines[first_face] = b"3 0 1 400"
    (tmp_path / "ascii.ply").write_bytes(b"\n".join(lines))
    for name, bad in (("binary.ply", 400), ("negative.ply", -1)):
        f = np.asarray(m.faces).copy()
        f[3, 2] = bad
        (tmp_path / name).write_bytes(_exported(trimesh.Trimesh(m.vertices, f, process=False, validate=False), "ply"))
    for name, face in (("ascii.ply", "face 0: 0 1 400"), ("binary.ply", r"face 3: \d+ \d+ 400"),
                       ("negative.ply", r"face 3: \d+ \d+ -1")):
        with pytest.raises(meshes.BrokenMesh,
                           match=rf"1 face\(s\) index vertices out of range \({face}; 42 vertices"):
            meshes.read_mesh(tmp_path / name)


def test_truncated_meshes_in_class_folders_are_skipped_with_one_line_each(tmp_path, capsys):
    d = tmp_path / "modelnet"
    for cls, m in (("chair", box_mesh((1, 2, 3))), ("table", trimesh.creation.icosphere(2))):
        (d / cls).mkdir(parents=True)
        for k in range(2):
            m.export(d / cls / f"{cls}_{k}.off")
    sph = _exported(trimesh.creation.icosphere(2), "off")
    (d / "table" / "table_cut.off").write_bytes(_cut(sph, 0.8, at_line_end=True))
    (d / "table" / "table_cut.obj").write_bytes(_cut(_exported(trimesh.creation.icosphere(2), "obj"), 0.6))
    dm = S.Shrec17DataModule(d, num_classes=2, sampling="healpix:1", progress=False)
    dm.prepare_data()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(lines) == 2, lines
    assert sum("table_cut.off" in ln and "declares 320 faces" in ln for ln in lines) == 1
    assert sum("table_cut.obj" in ln and "cut short" in ln for ln in lines) == 1
    dm.setup()
    assert len(dm.datasets["test"]) == 4


# ------------------------------------------------------------------ errors
def test_input_errors_name_the_problem(standin, tmp_path):
    def err(match, **kw):
        with pytest.raises(InputError, match=match) as e:
            dm = S.Shrec17DataModule(**{"progress": False, "sampling": "healpix:1", **kw})
            dm.prepare_data()
        assert "\n" not in str(e.value)
        return str(e.value)

    err("does not exist", data_dir=tmp_path / "nope", num_classes=NUM_CLASSES)
    msg = err(f"has {NUM_CLASSES} synsets", data_dir=standin, num_classes=55)
    assert "55" in msg and "train.csv" in msg
    d = copy_standin(standin, tmp_path / "d")
    (d / "test.csv").unlink()
    (d / "all.csv").unlink()
    msg = err("no labels for the test split", data_dir=d, num_classes=NUM_CLASSES)
    assert "all.csv" in msg and "data.test_split=val" in msg
    dm = S.Shrec17DataModule(d, num_classes=NUM_CLASSES, test_split="val", sampling="healpix:1", progress=False)
    dm.prepare_data()
    dm.setup()
    assert dm.test_dataset_name == "val_perturbed" and set(dm.labels().values()) <= {
        (s, u, "val") for s, (_, subs) in SYNSETS.items() for u, _ in subs}
    shutil.rmtree(d / "val_perturbed")
    err("missing folder .*val_perturbed", data_dir=d, num_classes=NUM_CLASSES, test_split="val")
    (d / "val.csv").unlink()
    err("missing .*val.csv", data_dir=d, num_classes=NUM_CLASSES, test_split="val")
    err("unknown sampling 'cube:3'", data_dir=d, num_classes=NUM_CLASSES, sampling="cube:3")
    err("data.input 'mesh' unknown", data_dir=d, input="mesh")
    err("data.test_split 'train' unknown", data_dir=d, test_split="train")
    empty = tmp_path / "empty"
    empty.mkdir()
    err("neither the SHREC'17 layout", data_dir=empty, num_classes=NUM_CLASSES)
