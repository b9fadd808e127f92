"""The SHREC'17 results page: published rows of tab:shrec17 / tab:shrec17_retrieval interleaved with
the reproduced ones, the invariance and preprocessing tables, and the retrieval figure."""
from __future__ import annotations

import numpy as np

from datamodules.shrec17_render import CHANNEL_MEAN, CHANNEL_STD, sampling_vectors
from datamodules.shrec17_standin import SYNSETS, stand_in_description
from models import retrieval as R
from reproduce.runner import tables as T
from reproduce.runner.store import Artifact, load_npz, npz_bytes
from reproduce.runner.tables import Published

LABELS = {"ds_healpix": "DeepSphere, HEALPix", "ds_equiangular": "DeepSphere, equiangular",
          "se3": "3D steerable CNN (voxels)", "esteves": "Esteves et al. (spectral)", "s2cnn": "S2CNN (spectral)"}
#: the official metrics (CSV columns ``micro_<key>`` / ``macro_<key>``) and their table headers
METRICS = {"precision": "P@N", "recall": "R@N", "f1": "F1@N", "map": "mAP", "ndcg": "NDCG"}
SYNSET_NAMES = {s: name for s, (name, _) in SYNSETS.items()}  # ShapeNet names of the stand-in's (real) synset ids
INFER_OBJECTS = 10  # test objects timed one at a time (batch 1) after a warm-up object
FIGURE_QUERIES, FIGURE_TOP = 4, 5
FIGURE_GRID = (24, 48)  # latitude x longitude cells of the stored input maps


#: [S2P] Cohen et al. 2018 Table 2; [ICLR] Defferrard et al. 2020 tab:shrec17, tab:shrec17_retrieval;
#: DeepSphere NDCG from deepsphere-tf1 experiments.md; Weiler et al. 2018 (parameters and score: supplement
#: p. 16; micro/macro P@N, R@N, mAP from the SE3CNN row of the shenzy08/PDO-s3DCNN README).
PUBLISHED = [
    Published("Tatsuma_ReVGG (SHREC'17)", {"micro P@N": ".705", "micro R@N": ".769", "micro F1@N": ".719",
                                           "micro mAP": ".696", "micro NDCG": ".783"}, "Cohen 2018 T2"),
    Published("Furuya_DLAN (SHREC'17)", {"micro P@N": ".814", "micro R@N": ".683", "micro F1@N": ".706",
                                         "micro mAP": ".656", "micro NDCG": ".754", "params": "8.4 M"},
              "Cohen 2018 T2; Weiler 2018 p.16"),
    Published("SHREC16-Bai_GIFT", {"micro P@N": ".678", "micro R@N": ".667", "micro F1@N": ".661",
                                   "micro mAP": ".607", "micro NDCG": ".735"}, "Cohen 2018 T2"),
    Published("Deng_CM-VGG5-6DB", {"micro P@N": ".412", "micro R@N": ".706", "micro F1@N": ".472",
                                   "micro mAP": ".524", "micro NDCG": ".624"}, "Cohen 2018 T2"),
    Published("Cohen et al. 2018, S2CNN b = 128", {
        "micro P@N": ".701", "micro R@N": ".711", "micro F1@N": ".699", "micro mAP": ".676", "micro NDCG": ".756",
        "params": "1.4 M", "inference / object": "38 ms", "training": "50 h"}, "Cohen 2018 T2; ICLR 2020"),
    Published("Cohen et al. 2018, simplified b = 64", {
        "F1 (cls, %)": "78.9", "micro P@N": ".704", "micro R@N": ".701", "micro F1@N": ".696", "micro mAP": ".665",
        "macro mAP": ".385", "params": "400 k", "inference / object": "12 ms", "training": "32 h"},
        "ICLR 2020", model="s2cnn"),
    Published("Esteves et al. 2018, b = 64", {
        "F1 (cls, %)": "79.4", "micro P@N": ".717", "micro R@N": ".737", "micro mAP": ".685",
        "macro mAP": ".444", "params": "500 k", "inference / object": "9.8 ms", "training": "3 h"},
        "ICLR 2020", model="esteves"),
    Published("DeepSphere, equiangular b = 64", {
        "F1 (cls, %)": "79.4", "micro P@N": ".709", "micro R@N": ".700", "micro F1@N": ".698", "micro mAP": ".665",
        "micro NDCG": "(.748)", "macro mAP": ".403", "params": "190 k", "inference / object": "0.9 ms",
        "training": "50 min"}, "ICLR 2020; NDCG deepsphere-tf1", model="ds_equiangular"),
    Published("DeepSphere, HEALPix Nside 32", {
        "F1 (cls, %)": "80.7", "micro P@N": ".725", "micro R@N": ".717", "micro F1@N": ".715", "micro mAP": ".686",
        "micro NDCG": "(.764)", "macro P@N": ".475", "macro R@N": ".508", "macro F1@N": ".468", "macro mAP": ".428",
        "params": "190 k", "inference / object": "0.9 ms", "training": "50 min"},
        "ICLR 2020; NDCG deepsphere-tf1", model="ds_healpix"),
    Published("Weiler et al. 2018, 3D steerable CNN", {
        "micro P@N": ".704", "micro R@N": ".706", "micro mAP": ".661", "macro P@N": ".490", "macro R@N": ".549",
        "macro mAP": ".449", "params": "142 k"}, "Weiler 2018 p.16; PDO-s3DCNN README", model="se3"),
]


def having(key: str):
    """Row keys (models, in the order of the rows) that have a value in column ``key``."""
    return lambda view: [m for m in view.values("model") if T.floats(view.select(model=m), key)]


def split_name(view) -> str:
    return str(view.cfg.get("data", {}).get("test_split", "test"))


PERFORMANCE = T.Table(
    heading="## Performance, size, speed (tab:shrec17)\n\n", after="\n",
    intro="F1: support-weighted classification F1 on the scored split (sklearn `average='weighted'`, as "
          "deepsphere-tf1). Inference: forward pass of one object (batch 1) on this hardware, mean over "
          f"{INFER_OBJECTS} objects after a warm-up; training: wall time per run (data preprocessing excluded, "
          "see the next table). Published times are on the authors' GPUs.\n\n",
    # competition entries without F1 / size / speed are in the retrieval table only
    published=[p for p in PUBLISHED if p.model or {"F1 (cls, %)", "params"} & p.values.keys()],
    columns=[T.method(LABELS), T.Col("F1 (cls, %)", T.percent("f1_cls")),
             T.Col("micro mAP", T.pm("micro_map")), T.Col("macro mAP", T.pm("macro_map")),
             T.Col("params", T.params()), T.Col("inference / object", T.ms()), T.Col("training", T.minutes()),
             T.Col("hardware", T.distinct("hardware"), pub=lambda p: "their GPU"), T.Col("runs", T.runs())])

RETRIEVAL = T.Table(
    heading="## Retrieval (tab:shrec17_retrieval, Cohen 2018 Table 2)\n\n", after="\n",
    intro=lambda view: (
        f"Official SHREC'17 metrics on the {split_name(view)} split (evaluate.js definitions: lists cut at "
        "1,000, P@N and R@N at the end of each list, graded NDCG). micro = mean over queries (the "
        "evaluator's microALL), macro = mean of the per-synset means (macroALL; the ICLR table has the two "
        "labels swapped). Lists: every object predicted in the query's class, by decreasing summed score "
        f"(mode `{view.cfg.get('evaluation', {}).get('retrieval', 'class')}`). Reproduced: mean ± std over "
        "runs.\n\n"),
    published=PUBLISHED,
    columns=[T.method(LABELS), T.Col("input", T.distinct("setting_input")),
             *[T.Col(f"{avg} {head}", T.pm(f"{avg}_{key}")) for avg in ("micro", "macro")
               for key, head in METRICS.items()],
             T.Col("runs", T.runs()),
             T.Col("source", lambda rows, k, view: f"preset `{view.preset}`", pub=lambda p: p.source)])

INVARIANCE = T.Table(
    order=having("rotation_logit_error"), heading="## Continuous rotations\n\n", after="\n",
    intro="Every scored object is seen in several random orientations (test-time augmentation: Haar-random "
          "rotation and translation of the mesh before ray casting or voxelising). Columns: mean relative change "
          "of the logits between two orientations of the same object, ‖f(R₁x) − f(R₀x)‖ / ‖f(R₀x)‖, and how "
          "often their predicted classes agree. Exact invariance under the rotations each grid permutes is "
          "tested in `tests/test_shrec17_nets.py`; this is what the discretisation leaves under arbitrary "
          "rotations.\n\n",
    columns=[T.Col("model", T.label(LABELS)), T.Col("input", T.distinct("setting_input")),
             T.Col("logit change, two orientations",
                   T.mean_std("rotation_logit_error", scale=1, digits=3, unit="")),
             T.Col("same prediction", T.percent("rotation_agreement"))])

PREPROCESSING = T.Table(
    order=having("preprocess_meshes_per_s"), heading="## Preprocessing speed\n\n", after="\n",
    intro="Ray casting (6 channels: mesh and convex hull) or voxelising, once per mesh and augmentation copy, "
          "cached as npz; meshes per second of the run that filled the cache (a run that found its cache "
          "reports the filling run's figure).\n\n",
    columns=[T.Col("model", T.label(LABELS)), T.Col("input", T.distinct("setting_input")),
             T.Col("backend", T.distinct("preprocess_backend")),
             T.Col("meshes / s", T.mean_of("preprocess_meshes_per_s")),
             T.Col("meshes", T.first_int("preprocess_meshes")), T.Col("hardware", T.distinct("hardware"))])


# --------------------------------------------------------------------------- figure
def encode_maps(maps: np.ndarray) -> Artifact:
    """Input maps (k, lat, lon) in [0, 1] as a file of the row (:class:`~reproduce.runner.store.Artifact`):
    8 bits, compressed ``.npz``."""
    return Artifact(npz_bytes(maps=np.round(255 * np.clip(maps, 0, 1)).astype(np.uint8)))


def decode_maps(results_dir, cell: str) -> np.ndarray:
    """The maps of a row's ``example_maps`` file (relative to ``results_dir``), in [0, 1]."""
    return load_npz(results_dir, cell)["maps"] / 255.0


def lonlat_map(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Values on sphere sample points → a (lat, lon) image by nearest sample point."""
    from scipy.spatial import cKDTree
    nlat, nlon = FIGURE_GRID
    lat = np.pi / 2 - np.pi * (np.arange(nlat) + 0.5) / nlat
    lon = -np.pi + 2 * np.pi * (np.arange(nlon) + 0.5) / nlon
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    pts = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1).reshape(-1, 3)
    return values[cKDTree(vectors).query(pts)[1]].reshape(nlat, nlon)


def figure_maps(datamodule, lists, labels) -> dict:
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


def plot(view):
    rows = [r for m in LABELS for r in sorted(view.select(model=m), key=lambda r: int(r["seed"]))
            if r.get("example_maps")]
    if not rows:
        return None
    row = rows[0]
    maps = decode_maps(view.results_dir, row["example_maps"])
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
                                d.get("stand_in_seed", 0))


REPORT = T.Report(
    title="SHREC'17 3D shape retrieval (ShapeNet Core55, perturbed)",
    stand_in=T.StandIn.papers("procedural shapes in the SHREC'17 layout", "ShapeNet", "ShapeNet Core55",
                              stand_in_note),
    sections=[PERFORMANCE, RETRIEVAL, INVARIANCE, PREPROCESSING,
              T.Figure("shrec17.png", plot, "queries and their top retrieved objects")],
    notes=[
        "Published inference times are on the authors' GPUs (ICLR 2020; the DeepSphere slides give 1.6 ms for "
        "DeepSphere and 19 ms for S2CNN); ours are on the hardware column's machine.",
        "DeepSphere NDCG (in parentheses) is from the deepsphere-tf1 experiment log, not the paper."],
    headline=T.Headline("micro mAP, DeepSphere HEALPix", "0.686",
                        lambda v: T.fmt_pm(T.floats(v.select(model="ds_healpix"), "micro_map"))))
