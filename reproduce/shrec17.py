"""SHREC'17 3D shape retrieval (ShapeNet Core55, perturbed split): DeepSphere on HEALPix and on the
equiangular grid, the 3D steerable CNN on voxels, and the spectral spherical CNNs, scored by the
official SHREC'17 evaluator (reimplemented in ``models/retrieval.py``).

Reproduces Defferrard et al. ICLR 2020, tab:shrec17 ("performance, size, speed": classification F1,
micro mAP, parameters, inference and training time) and tab:shrec17_retrieval (micro and macro P@N,
R@N, F1@N, mAP, NDCG) beside the published rows of the SHREC'17 entries (Tatsuma ReVGG, Furuya DLAN,
Bai GIFT, Deng CM-VGG), Cohen et al. 2018 (S2CNN), Esteves et al. 2018 and Weiler et al. 2018 §5.2.

    python reproduce/shrec17.py --preset smoke    # ~2 min: tiny stand-in, every row kind, 1 epoch
    python reproduce/shrec17.py --preset cpu      # ~30-40 min on 2 cores: stand-in (configs/shrec17/cpu.yaml)
    python reproduce/shrec17.py --preset paper --gpus 1 --data-dir DIR
    python reproduce/shrec17.py --preset cpu --table   # rewrite the tables from results/shrec17.csv

``--data-dir``: the SHREC'17 folders ``train_perturbed/ val_perturbed/ test_perturbed/`` (``<id>.obj``)
with ``train.csv``, ``val.csv`` and the labelled ``all.csv`` (or ``test.csv``) that scores the test
split (``data.test_split=val`` scores the validation split instead); a folder-per-class layout
(``<class>/<name>.off``, ModelNet style) is read too. Without it an offline stand-in in exactly the
SHREC'17 layout is written and read back by the same reader; the tables say so.

Each run writes the official result files ``<run dir>/retrieval/<model>/<split>_perturbed/<queryId>``
(one retrieved id per line: the Node.js ``evaluate.js`` runs on them unchanged) and the evaluator's
summary ``<model>.summary.csv`` beside them.

Writes results/shrec17.csv (one row per run), results/shrec17.md and results/shrec17.png.
"""
from __future__ import annotations

import base64
import functools
import io
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from datamodules._common import InputError, atomic_write_text
from datamodules.shrec17 import CHANNEL_MEAN, CHANNEL_STD, Shrec17DataModule, sampling_vectors
from datamodules.shrec17_standin import SYNSETS, stand_in_description
from models import retrieval as R
from models.deepsphere.nets import SphereClassifier
from models.spectral import S2CNN, EstevesSphericalCNN
from models.steerable import Shrec17SE3Net
from models.tasks import Retrieve
from reproduce.runner import Benchmark, main
from reproduce.runner import config as C
from reproduce.runner import tables as T
from reproduce.runner.measure import InferenceTime, Invariance

#: published rows: (method, F1 cls %, micro P@N, R@N, F1@N, mAP, NDCG, macro P@N, R@N, F1@N, mAP, NDCG,
#: params, inference / object, training, source, reproduced model shown below it).
#: [S2P] Cohen et al. 2018 Table 2; [ICLR] tab:shrec17, tab:shrec17_retrieval; DeepSphere NDCG from
#: deepsphere-tf1 experiments.md; Weiler et al. 2018 (parameters and score: supplement p. 16; micro/macro
#: P@N, R@N, mAP from the SE3CNN row of the shenzy08/PDO-s3DCNN README).
PUBLISHED = [
    ("Tatsuma_ReVGG (SHREC'17)", "–", ".705", ".769", ".719", ".696", ".783", "–", "–", "–", "–", "–",
     "–", "–", "–", "Cohen 2018 T2", None),
    ("Furuya_DLAN (SHREC'17)", "–", ".814", ".683", ".706", ".656", ".754", "–", "–", "–", "–", "–",
     "8.4 M", "–", "–", "Cohen 2018 T2; Weiler 2018 p.16", None),
    ("SHREC16-Bai_GIFT", "–", ".678", ".667", ".661", ".607", ".735", "–", "–", "–", "–", "–",
     "–", "–", "–", "Cohen 2018 T2", None),
    ("Deng_CM-VGG5-6DB", "–", ".412", ".706", ".472", ".524", ".624", "–", "–", "–", "–", "–",
     "–", "–", "–", "Cohen 2018 T2", None),
    ("Cohen et al. 2018, S2CNN b = 128", "–", ".701", ".711", ".699", ".676", ".756", "–", "–", "–", "–", "–",
     "1.4 M", "38 ms", "50 h", "Cohen 2018 T2; ICLR 2020", None),
    ("Cohen et al. 2018, simplified b = 64", "78.9", ".704", ".701", ".696", ".665", "–", "–", "–", "–", ".385",
     "–", "400 k", "12 ms", "32 h", "ICLR 2020", "s2cnn"),
    ("Esteves et al. 2018, b = 64", "79.4", ".717", ".737", "–", ".685", "–", "–", "–", "–", ".444", "–",
     "500 k", "9.8 ms", "3 h", "ICLR 2020", "esteves"),
    ("DeepSphere, equiangular b = 64", "79.4", ".709", ".700", ".698", ".665", "(.748)", "–", "–", "–", ".403",
     "–", "190 k", "0.9 ms", "50 min", "ICLR 2020; NDCG deepsphere-tf1", "ds_equiangular"),
    ("DeepSphere, HEALPix Nside 32", "80.7", ".725", ".717", ".715", ".686", "(.764)", ".475", ".508", ".468",
     ".428", "–", "190 k", "0.9 ms", "50 min", "ICLR 2020; NDCG deepsphere-tf1", "ds_healpix"),
    ("Weiler et al. 2018, 3D steerable CNN", "–", ".704", ".706", "–", ".661", "–", ".490", ".549", "–", ".449",
     "–", "142 k", "–", "–", "Weiler 2018 p.16; PDO-s3DCNN README", "se3"),
]
LABELS = {"ds_healpix": "DeepSphere, HEALPix", "ds_equiangular": "DeepSphere, equiangular",
          "se3": "3D steerable CNN (voxels)", "esteves": "Esteves et al. (spectral)", "s2cnn": "S2CNN (spectral)"}
METRICS = ("precision", "recall", "f1", "map", "ndcg")
SYNSET_NAMES = {s: name for s, (name, _) in SYNSETS.items()}  # ShapeNet names of the stand-in's (real) synset ids
INFER_OBJECTS = 10  # test objects timed one at a time (batch 1) after a warm-up object
#: the logits of an object's first two orientations (the test-time augmentations), compared
ROTATION = Invariance("rotation", agreement="rotation_agreement", column="rotation_logit_error")
FIGURE_QUERIES, FIGURE_TOP = 4, 5
FIGURE_GRID = (24, 48)  # latitude x longitude cells of the stored input maps


#: ``evaluation.scores``: what is summed over an object's test-time copies before the argmax and the
#: ranking of the retrieval lists. ``logits`` (default); ``log_softmax``: s2cnn ``examples/shrec17/test.py``
#: (its model ends in ``F.log_softmax``, test.py sums the outputs over the repeats); ``softmax``:
#: deepsphere-tf1 ``run_eperiment_*.py`` (``model.probs`` averaged over the copies; with the same copy
#: count per object the sum ranks identically).
SCORES = ("logits", "log_softmax", "softmax")
RETRIEVAL_MODES = ("class", "class+median")


def evaluation_settings(cfg: dict) -> tuple[str, str]:
    """``(retrieval mode, summed scores)`` of a run's ``evaluation`` section; a bad value is an
    :class:`InputError` naming the key.

    >>> evaluation_settings({"evaluation": {"scores": "softmax"}})
    ('class', 'softmax')
    """
    ev = cfg.get("evaluation") or {}
    mode, scores = str(ev.get("retrieval", "class")), str(ev.get("scores", "logits"))
    if mode not in RETRIEVAL_MODES:
        raise InputError(f"shrec17: evaluation.retrieval {mode!r} must be one of {', '.join(RETRIEVAL_MODES)}")
    if scores not in SCORES:
        raise InputError(f"shrec17: evaluation.scores {scores!r} must be one of {', '.join(SCORES)}")
    return mode, scores


def per_copy_scores(logits: np.ndarray, scores: str) -> np.ndarray:
    """Per-copy scores of ``evaluation.scores`` from the logits ``(N, C)``.

    >>> per_copy_scores(np.array([[0.0, np.log(3.0)]]), "softmax").round(2).tolist()
    [[0.25, 0.75]]
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    if scores == "log_softmax":
        return torch.log_softmax(z, dim=1).numpy()
    if scores == "softmax":
        return torch.softmax(z, dim=1).numpy()
    return z.numpy()


# --------------------------------------------------------------------------- inputs
def parse_input(text: str) -> dict:
    """A grid row's ``setting.input`` → datamodule arguments: ``healpix:32`` / ``equiangular:64``
    (6-channel ray casting on that sampling) or ``voxel:64`` (occupancy grid of that edge)."""
    kind, _, arg = str(text).partition(":")
    if kind in ("healpix", "equiangular") and arg.isdigit():
        return {"input": "sphere", "sampling": f"{kind}:{int(arg)}"}
    if kind == "voxel" and arg.isdigit():
        return {"input": "voxel", "voxel_size": int(arg)}
    raise InputError(f"shrec17: setting.input {text!r} must be healpix:NSIDE, equiangular:B or voxel:N")


#: model kinds and the input each needs ("sphere" any sampling, "equiangular" only, "voxel")
NEEDS = {"deepsphere": "sphere", "se3": "voxel", "esteves": "equiangular", "s2cnn": "equiangular"}


# --------------------------------------------------------------------------- table cells
def fmt3(rows, key: str) -> str:
    m, s, n = T.mean_std_n(T.floats(rows, key))
    return "–" if not n else f"{m:.3f}" + (f" ± {s:.3f}" if n > 1 else "")


def pct(rows, key: str) -> str:
    m, s, n = T.mean_std_n(T.floats(rows, key))
    return "–" if not n else f"{100 * m:.1f}" + (f" ± {100 * s:.1f}" if n > 1 else "")


def params(rows) -> str:
    return ", ".join(f"{int(p):,}" for p in sorted(set(T.floats(rows, "params")))) or "–"


def ms(rows, key: str = "infer_ms") -> str:
    v = T.floats(rows, key)
    return f"{np.mean(v):.1f} ms" if v else "–"


def minutes(rows) -> str:
    v = T.floats(rows, "wall_s")
    return f"{np.mean(v) / 60:.1f} min" if v else "–"


def input_of(rows) -> str:
    return ", ".join(dict.fromkeys(str(r.get("setting_input", "")) for r in rows)) or "–"


def model_rows(view) -> list[tuple[str, list[dict]]]:
    """(model, rows) per reproduced model, in the order of the grid."""
    return [(m, view.select(model=m)) for m in dict.fromkeys(r["model"] for r in view.rows)]


def retrieval_table(view) -> str:
    head = ["method", "input", *[f"micro {k}" for k in ("P@N", "R@N", "F1@N", "mAP", "NDCG")],
            *[f"macro {k}" for k in ("P@N", "R@N", "F1@N", "mAP", "NDCG")], "runs", "source"]
    body, shown = [], set()
    mine = dict(model_rows(view))

    def reproduced(model: str) -> list[str]:
        rows = mine[model]
        return ([f"↳ reproduced: {LABELS.get(model, model)}", input_of(rows)]
                + [fmt3(rows, f"micro_{k}") for k in METRICS] + [fmt3(rows, f"macro_{k}") for k in METRICS]
                + [str(len(rows)), f"preset `{view.preset}`"])

    for p in PUBLISHED:
        body.append([p[0], "–", *p[2:12], "–", p[15]])
        if p[16] in mine:
            body.append(reproduced(p[16]))
            shown.add(p[16])
    body += [reproduced(m) for m in mine if m not in shown]
    return ("## Retrieval (tab:shrec17_retrieval, Cohen 2018 Table 2)\n\n"
            f"Official SHREC'17 metrics on the {split_name(view)} split (evaluate.js definitions: lists cut at "
            "1,000, P@N and R@N at the end of each list, graded NDCG). micro = mean over queries (the "
            "evaluator's microALL), macro = mean of the per-synset means (macroALL; the ICLR table has the two "
            "labels swapped). Lists: every object predicted in the query's class, by decreasing summed score "
            f"(mode `{view.cfg.get('evaluation', {}).get('retrieval', 'class')}`). Reproduced: mean ± std over "
            "runs.\n\n" + T.md_table(head, body) + "\n")


def performance_table(view) -> str:
    head = ["method", "F1 (cls, %)", "micro mAP", "macro mAP", "params", "inference / object", "training",
            "hardware", "runs"]
    body, shown = [], set()
    mine = dict(model_rows(view))

    def reproduced(model: str) -> list[str]:
        rows = mine[model]
        return [f"↳ reproduced: {LABELS.get(model, model)}", pct(rows, "f1_cls"), fmt3(rows, "micro_map"),
                fmt3(rows, "macro_map"), params(rows), ms(rows), minutes(rows),
                ", ".join(dict.fromkeys(r.get("hardware", "") for r in rows)), str(len(rows))]

    for p in PUBLISHED:
        if p[1] == "–" and p[12] == "–" and p[16] is None:
            continue  # competition entries without F1 / size / speed: in the retrieval table only
        body.append([p[0], p[1], p[5], p[10], p[12], p[13], p[14], "their GPU", "–"])
        if p[16] in mine:
            body.append(reproduced(p[16]))
            shown.add(p[16])
    body += [reproduced(m) for m in mine if m not in shown]
    return ("## Performance, size, speed (tab:shrec17)\n\n"
            "F1: support-weighted classification F1 on the scored split (sklearn `average='weighted'`, as "
            "deepsphere-tf1). Inference: forward pass of one object (batch 1) on this hardware, mean over "
            f"{INFER_OBJECTS} objects after a warm-up; training: wall time per run (data preprocessing excluded, "
            "see the next table). Published times are on the authors' GPUs.\n\n" + T.md_table(head, body) + "\n")


def invariance_table(view) -> str:
    body = []
    for model, rows in model_rows(view):
        if not T.floats(rows, "rotation_logit_error"):
            continue
        body.append([LABELS.get(model, model), input_of(rows),
                     T.fmt_mean_std(T.floats(rows, "rotation_logit_error"), scale=1, digits=3, unit=""),
                     pct(rows, "rotation_agreement")])
    if not body:
        return ""
    return ("## Continuous rotations\n\nEvery scored object is seen in several random orientations (test-time "
            "augmentation: Haar-random rotation and translation of the mesh before ray casting or voxelising). "
            "Columns: mean relative change of the logits between two orientations of the same object, "
            "‖f(R₁x) − f(R₀x)‖ / ‖f(R₀x)‖, and how often their predicted classes agree. Exact invariance under "
            "the rotations each grid permutes is tested in `tests/test_shrec17_nets.py`; this is what the "
            "discretisation leaves under arbitrary rotations.\n\n"
            + T.md_table(["model", "input", "logit change, two orientations", "same prediction"], body) + "\n")


def preprocessing_table(view) -> str:
    body = []
    for model, rows in model_rows(view):
        rate = T.floats(rows, "preprocess_meshes_per_s")
        if not rate:
            continue
        body.append([LABELS.get(model, model), input_of(rows),
                     ", ".join(dict.fromkeys(r.get("preprocess_backend", "") for r in rows)),
                     f"{np.mean(rate):.1f}", T.first_int("preprocess_meshes")(rows, model, view),
                     ", ".join(dict.fromkeys(r.get("hardware", "") for r in rows))])
    if not body:
        return ""
    return ("## Preprocessing speed\n\nRay casting (6 channels: mesh and convex hull) or voxelising, once per "
            "mesh and augmentation copy, cached as npz; meshes per second of the run that filled the cache "
            "(a run that found its cache reports the filling run's figure).\n\n"
            + T.md_table(["model", "input", "backend", "meshes / s", "meshes", "hardware"], body) + "\n")


def split_name(view) -> str:
    return str(view.cfg.get("data", {}).get("test_split", "test"))


# --------------------------------------------------------------------------- figure
def encode_maps(maps: np.ndarray) -> str:
    """Input maps (k, lat, lon) in [0, 1] as one CSV cell: 8 bits, compressed."""
    buf = io.BytesIO()
    np.savez_compressed(buf, maps=np.round(255 * np.clip(maps, 0, 1)).astype(np.uint8))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_maps(text: str) -> np.ndarray:
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as z:
        return z["maps"] / 255.0


def lonlat_map(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Values on sphere sample points → a (lat, lon) image by nearest sample point."""
    from scipy.spatial import cKDTree
    nlat, nlon = FIGURE_GRID
    lat = np.pi / 2 - np.pi * (np.arange(nlat) + 0.5) / nlat
    lon = -np.pi + 2 * np.pi * (np.arange(nlon) + 0.5) / nlon
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    pts = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1).reshape(-1, 3)
    return values[cKDTree(vectors).query(pts)[1]].reshape(nlat, nlon)


def plot(view):
    rows = [r for m in LABELS for r in sorted(view.select(model=m), key=lambda r: int(r["seed"]))
            if r.get("example_maps")]
    if not rows:
        return None
    row = rows[0]
    maps = decode_maps(row["example_maps"])
    ids = row["example_ids"].split()
    grades = [int(g) for g in row["example_grades"].split()]
    syn = row["example_synsets"].split()
    k = FIGURE_TOP + 1
    plt = T.pyplot()
    fig, axes = plt.subplots(FIGURE_QUERIES, k, figsize=(2.0 * k, 1.25 * FIGURE_QUERIES + 0.6))
    colour = {3: "#2ca02c", 2: "#98df8a", 1: "#ffbb78", 0: "#d62728"}
    for q in range(min(FIGURE_QUERIES, len(maps) // k)):
        for j in range(k):
            ax = axes[q, j]
            ax.imshow(maps[q * k + j], cmap="magma_r", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            i = q * k + j
            name = SYNSET_NAMES.get(syn[i], syn[i])
            if j == 0:
                ax.set_title(f"query {ids[i]}: {name}", fontsize=7)
            else:
                ax.set_title(f"#{j} {ids[i]}: {name} (grade {grades[i]})", fontsize=6,
                             color=colour.get(grades[i], "k"))
                for side in ax.spines.values():
                    side.set_color(colour.get(grades[i], "k"))
                    side.set_linewidth(2)
    fig.suptitle(f"{LABELS.get(row['model'], row['model'])}, {row.get('setting_input', '')}, seed {row['seed']}: "
                 "queries (left) and their top retrieved objects\nray-cast hit distance of one random orientation "
                 "(bright: surface near the enclosing sphere; dark: deep or no hit); frame colour = official grade "
                 "(3 same sub-synset … 0 other synset)",
                 fontsize=7)
    fig.tight_layout()
    return fig


def stand_in_note(view) -> str:
    d = view.cfg.get("data", {})
    return stand_in_description(d.get("stand_in_train", 48), d.get("stand_in_val", 12), d.get("stand_in_test", 16),
                                d.get("stand_in_seed", 0)) if view.stand_in else ""


REPORT = T.Report(
    title="SHREC'17 3D shape retrieval (ShapeNet Core55, perturbed)",
    reproduces="Defferrard et al. ICLR 2020, tab:shrec17 and tab:shrec17_retrieval (DeepSphere on HEALPix and "
               "equiangular samplings) and Weiler et al. 2018 §5.2 (3D steerable CNN), with the official SHREC'17 "
               "metrics, beside the competition entries, S2CNN (Cohen et al. 2018) and Esteves et al. 2018.",
    preamble=lambda v: v.stand_in and (
        "**Data: offline stand-in** (procedural shapes in the SHREC'17 layout, see notes), not ShapeNet: the "
        "published rows are the papers' results on ShapeNet Core55, for orientation, not a like-for-like "
        "target.") or "",
    sections=[T.Text(performance_table), T.Text(retrieval_table), T.Text(invariance_table),
              T.Text(preprocessing_table),
              T.Figure("shrec17.png", plot, "queries and their top retrieved objects")],
    notes=[
        stand_in_note,
        "Published inference times are on the authors' GPUs (ICLR 2020; the DeepSphere slides give 1.6 ms for "
        "DeepSphere and 19 ms for S2CNN); ours are on the hardware column's machine.",
        "DeepSphere NDCG (in parentheses) is from the deepsphere-tf1 experiment log, not the paper."],
    headline=T.Headline("micro mAP, DeepSphere HEALPix", "0.686", lambda v: fmt3(v.select(model="ds_healpix"),
                                                                                  "micro_map")))


# --------------------------------------------------------------------------- benchmark
def checkpoint_classes(ckpt) -> list[str] | None:
    """The class order a checkpoint was trained with (its datamodule state), or None."""
    return _checkpoint_classes(str(Path(ckpt).resolve()))


@functools.lru_cache(maxsize=4)  # asked for by the config check and by the datamodule build: read once
def _checkpoint_classes(ckpt: str) -> list[str] | None:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    names = (state.get(Shrec17DataModule.__qualname__) or {}).get("class_names")
    return [str(c) for c in names] if names else None


class Shrec17(Benchmark):
    name = "shrec17"
    datamodule = Shrec17DataModule
    models = {"deepsphere": SphereClassifier, "se3": Shrec17SE3Net, "esteves": EstevesSphericalCNN, "s2cnn": S2CNN}
    task = Retrieve
    report = REPORT
    measurements = (InferenceTime(INFER_OBJECTS),)
    #: the class count and voxel grid options a checkpoint was trained on (--evaluate keeps them;
    #: the sampling / voxel size is the run's setting, which --evaluate takes from the checkpoint)
    geometry_keys = ("data.num_classes", "data.voxel_double", "data.voxel_fit")

    def datamodule_args(self, ctx, run) -> dict:
        # data.seed (not the run seed) draws the augmentations: every run and model of an input shares its cache
        args = {**super().datamodule_args(ctx, run), **parse_input(run.setting.get("input", ""))}
        if ctx.evaluate is not None and "class_names" not in (run.cfg.get("data") or {}):
            args["class_names"] = checkpoint_classes(ctx.evaluate)  # score other data in the model's class order
        return args

    def model_args(self, ctx, run) -> dict:
        kind = (run.cfg.get("model") or {}).get("kind")
        inp = parse_input(run.setting.get("input", ""))
        args = {"num_classes": int(run.cfg["data"]["num_classes"])}
        if kind == "se3":
            return args
        args["in_channels"] = 6
        if kind == "deepsphere":
            return {**args, "sampling": inp["sampling"]}
        return {**args, "bandwidth": int(inp["sampling"].partition(":")[2])}

    def check(self, ctx, run) -> None:
        if "input" not in run.setting:
            raise InputError(f"config grid row {run.model}: setting.input is required (healpix:32, "
                             f"equiangular:64 or voxel:64)")
        inp = parse_input(run.setting["input"])
        kind = (run.cfg.get("model") or {}).get("kind")
        need = NEEDS.get(kind)
        if need == "voxel" and inp["input"] != "voxel" or need in ("sphere", "equiangular") and inp["input"] != "sphere" \
                or need == "equiangular" and not inp["sampling"].startswith("equiangular"):
            raise InputError(f"config grid row {run.model}: model kind {kind!r} needs {need} input, "
                             f"setting.input is {run.setting['input']!r}")
        evaluation_settings(run.cfg)
        super().check(ctx, run)

    def after_test(self, ctx, run, task, datamodule) -> dict:
        """Official metrics on the summed test-time augmentations, the result files, classification
        F1, the change of the logits between two orientations, inference ms per object, and the
        figure's input maps."""
        out = task.test_outputs
        if not out:
            return {}
        split = datamodule.test_split_name
        labels = datamodule.labels()
        ids_raw = out["ids"].numpy()
        mode, kind = evaluation_settings(run.cfg)
        uids, scores = R.sum_by_id(ids_raw, per_copy_scores(out["logits"].numpy(), kind))
        _, desc = R.mean_by_id(ids_raw, out["embeddings"].numpy())
        lists = R.retrieval_lists(uids, scores, descriptors=desc, mode=mode)
        res = R.evaluate(lists, labels, split=split)
        index = {s: i for i, s in enumerate(datamodule.class_names)}
        y_true = np.array([index[labels[u][0]] for u in uids])
        metrics = {f"{avg}_{k}": round(float(res[f"{avg}_{k}"]), 6) for avg in ("micro", "macro") for k in METRICS}
        metrics.update(f1_cls=round(R.classification_f1(y_true, scores.argmax(1)), 6), scored_objects=len(uids),
                       scored_split=split, train_objects=len(datamodule.datasets["train"]),
                       retrieval_mode=mode, **self._rotation_change(ids_raw, out["logits"].numpy()))
        stats = (getattr(datamodule, "preprocess_stats", None) or {}).get("filled") or {}
        if stats.get("meshes_per_s"):
            metrics.update(preprocess_meshes_per_s=round(float(stats["meshes_per_s"]), 2),
                           preprocess_meshes=int(stats.get("meshes", 0)),
                           preprocess_backend=str(stats.get("backend", "")))
        if ctx.is_rank_zero:  # --evaluate writes beside the training run's files, one folder per data dir
            folder = (run.run_dir(ctx.runs_dir) / "retrieval" if ctx.evaluate is None else  # the checkpoint's run
                      Path(ctx.evaluate).resolve().parent.parent / f"retrieval-evaluate-{C.config_hash(str(ctx.data_dir), 8)}")
            R.write_results(lists, folder, run.model, datamodule.test_dataset_name)
            atomic_write_text(folder / f"{run.model}.summary.csv",
                              "\n".join(R.summary_rows(res, datamodule.test_dataset_name, run.model)) + "\n")
        metrics.update(self.measure(ctx, run, task, datamodule))
        if datamodule.input == "sphere" and ctx.evaluate is None:
            metrics.update(self._figure(datamodule, lists, labels))
        return metrics

    @staticmethod
    def _rotation_change(ids: np.ndarray, logits: np.ndarray) -> dict:
        """Relative change of the logits between the first two orientations of every object."""
        first, second = {}, {}
        for i, key in enumerate(ids.tolist()):
            (second if key in first and key not in second else first).setdefault(key, i)
        pairs = [(first[k], second[k]) for k in second]
        if not pairs:
            return {}
        a, b = (torch.from_numpy(logits[[p[j] for p in pairs]]).double() for j in (0, 1))
        return ROTATION.columns(a, [b])

    @staticmethod
    def _figure(datamodule, lists, labels) -> dict:
        """Hit-distance maps of a few queries (one per synset, first in id order) and of their top
        retrieved objects, as the figure draws them (first orientation of each)."""
        ds = datamodule.datasets["test"]
        first = {R.normalize_id(it.id): k * ds.copies for k, it in enumerate(ds.items)}  # first copy of each
        queries, seen = [], set()
        for q in sorted(lists):
            if labels[q][0] not in seen and len(lists[q]) >= FIGURE_TOP + 1:
                queries.append(q)
                seen.add(labels[q][0])
            if len(queries) == FIGURE_QUERIES:
                break
        if len(queries) < FIGURE_QUERIES:
            return {}
        vec = sampling_vectors(datamodule.sampling)
        maps, ids, grades, syn = [], [], [], []
        for q in queries:
            top = [i for i in lists[q] if i != q][:FIGURE_TOP]
            g = R.grades(q, top, labels)
            for j, i in enumerate([q, *top]):
                x = ds[first[i]][0].numpy()
                d = x[:, 0] * CHANNEL_STD[0] + CHANNEL_MEAN[0] if datamodule.normalize else x[:, 0]
                maps.append(lonlat_map(d, vec))
                ids.append(i)
                grades.append(3 if j == 0 else int(g[j - 1]))
                syn.append(labels[i][0])
        return {"example_maps": encode_maps(np.stack(maps)), "example_ids": " ".join(ids),
                "example_grades": " ".join(map(str, grades)), "example_synsets": " ".join(syn)}


BENCH = Shrec17()

if __name__ == "__main__":
    sys.exit(main(BENCH, __doc__))
