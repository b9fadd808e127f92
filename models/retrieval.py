"""The official SHREC'17 retrieval evaluator in Python, and the retrieval lists of the spherical-CNN
papers that feed it.

Sources:

* Evaluator: SHREC'17 "Large-scale 3D shape retrieval from ShapeNet Core55" (Savva et al., 2017),
  Node.js evaluator version 2017-02-23 (``evaluate.js``, ``lib/Evaluator.js``, ``lib/Metrics.js``;
  a copy is vendored in github.com/auniquesun/VSFormer ``retrieval/evaluator/``). :func:`evaluate`
  reproduces its definitions, quirks included (see below); its numbers match the JS to rounding.
* Lists, ``mode="class"``: Cohen et al., Spherical CNNs (ICLR 2018), s2cnn
  ``examples/shrec17/test.py`` (also used by se3cnn): every object of the query's predicted class,
  by decreasing score of that class.
* Lists, ``mode="class+median"``: Defferrard et al., DeepSphere (ICLR 2020), deepsphere-tf1
  ``load_shrec.shrec_output``.

Result layout read by the JS: ``<results>/<method>/<dataset>/<queryId>``, ``dataset`` one of
``{test,val,train}_{normal,perturbed}``, one file per query (no extension), one retrieved id per
line (anything after a space on a line is ignored). It is run as
``node --max-old-space-size=8192 evaluate.js <results>/<method>/`` (the trailing ``/`` matters) and
loads ``all.csv.gz`` from the working directory. The split of a dataset folder is its name up to
``_``. Only the query files present are evaluated: a query without a file is skipped, not scored 0.

Definitions per query ``q`` (synset ``s``, sub-synset ``u``, split ``t``), as in the JS:

1. The list is cut at 1000 entries, *then* de-duplicated (first occurrence kept), *then* ids that are
   unknown or of another split are dropped (``Evaluator.evaluateRankedLists`` and
   ``resultsToScores``). The query itself counts like any other model. N = what is left.
2. Grade of a retrieved model (synset ``s'``, sub-synset ``u'``): 0 if ``s' != s``; else 3 if
   ``u' == u``; else 2 if ``u' == s`` (the retrieved model is labelled with the bare synset);
   else 1 (``resultsToScores``). Relevant = grade > 0, i.e. same synset.
3. Oracle: the grades of all models of the split with synset ``s``, in ``all.csv`` order, the query
   included. R = min(len(oracle), 1000) (``MetricsSet``).
4. P@N = relevant / N, R@N = relevant / R, F1@N = 2PR / (P + R) (0 if P + R = 0) per query
   (``PrecisionVec``, ``RecallVec``, ``F1Vec``, read at the padded end of the list).
5. AP = Σ_{relevant ranks k} P@k / R, 0 without a relevant item (``AveragePrecision``).
6. NDCG = DCG(first R grades of the list) / IDCG, DCG(x) = x₁ + Σ_{i≥2} x_i / log2(i) (linear
   gains: ranks 1 and 2 both weigh 1), IDCG = DCG of the *first R oracle entries in csv order*,
   sorted by decreasing grade (``DCG``, ``IDCG``, ``NDCG``). When a synset has more than 1000 models
   in the split, that oracle is not the ideal list and NDCG can exceed 1, as in the JS.
7. An empty list (or one with only foreign ids): AP = 0 and P@N, R@N, F1@N, NDCG are NaN in the JS
   (``p[n-1]`` of an empty array), which turns the micro and macro averages NaN.
   ``evaluate(empty="js")`` keeps that; ``empty="zero"`` scores such a query 0 everywhere.
8. microALL = mean over the queries; per synset = mean over the queries of that synset;
   macroALL = mean of the per-synset means (``SummedMetrics.addSummedMetrics``). (The JS also adds
   macroALL to itself once, which leaves the means unchanged; its ``num`` is synsets + 1.)

The JS reads its truth file as ``all.csv.gz``; given a plain ``all.csv`` that ends with a newline
it fails on the empty last line. :func:`read_labels` takes either.

Ids are 6-character strings; shorter ones are zero-padded the JS way (``zeroPad``).
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np


__all__ = [
    "CUTOFF", "DATASETS", "normalize_id", "sum_by_id", "mean_by_id", "retrieval_lists",
    "write_results", "read_results", "read_labels", "grades", "query_metrics", "evaluate",
    "classification_f1", "summary_rows",
]

CUTOFF = 1000  # the evaluator's list cut and cap on R
DATASETS = ("test_normal", "test_perturbed", "val_normal", "val_perturbed",
            "train_normal", "train_perturbed")  # folders evaluate.js looks for, in its order
METRICS = ("precision", "recall", "f1", "map", "ndcg")  # P@N, R@N, F1@N, mAP, NDCG

Label = tuple[str, str, str]  # (synsetId, subSynsetId, split)


# --------------------------------------------------------------------------- ids and labels
def normalize_id(x: Any) -> str:
    """A model id as the evaluator keys it: ints zero-padded to 6 digits, strings of another
    length padded on the left and cut to their last 6 characters (JS ``zeroPad``).

    >>> normalize_id(42), normalize_id("42"), normalize_id("000042")
    ('000042', '000042', '000042')
    """
    if isinstance(x, (int, np.integer)):
        if x < 0 or x > 999_999:
            raise ValueError(f"model id {x} does not fit 6 digits")
        return f"{int(x):06d}"
    s = str(x)
    return s if len(s) == 6 else ("000000" + s)[-6:]


def _synset(x: Any) -> str:
    # ShapeNet synset ids are 8-digit strings with a leading 0 ("02691156"); ints lose it
    return f"{int(x):08d}" if isinstance(x, (int, np.integer)) else str(x).strip()


def read_labels(source: str | os.PathLike | Mapping | Iterable) -> dict[str, Label]:
    """Ground truth as ``{id: (synsetId, subSynsetId, split)}``, in file order (the order matters:
    it is the oracle order of NDCG when a synset has more than 1000 models in a split).

    ``source``: a path to ``all.csv`` / ``all.csv.gz`` (header ``id,synsetId,subSynsetId,modelId,
    split``); a mapping ``id -> (synsetId, subSynsetId, split)`` (the datamodule's ``meta``); or
    rows, each a dict with those column names or a sequence in that column order. Split names
    like ``test_perturbed`` are reduced to ``test``.

    >>> read_labels({7: ("02691156", "02690373", "test")})
    {'000007': ('02691156', '02690373', 'test')}
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
        rows: Iterable = csv.DictReader(io.StringIO(raw.decode("utf-8")))
        items = ((r["id"], (r["synsetId"], r["subSynsetId"], r["split"])) for r in rows)
    elif isinstance(source, Mapping):
        items = ((k, tuple(v)) for k, v in source.items())
    else:
        def row(r: Any) -> tuple[Any, tuple]:
            if isinstance(r, Mapping):
                return r["id"], (r["synsetId"], r["subSynsetId"], r["split"])
            return r[0], (r[1], r[2], r[4] if len(r) >= 5 else r[3])
        items = (row(r) for r in source)
    out: dict[str, Label] = {}
    for k, (syn, sub, split) in items:
        if str(k).strip() in ("", "id"):
            continue
        out[normalize_id(k.strip() if isinstance(k, str) else k)] = (
            _synset(syn), _synset(sub), str(split).strip().split("_")[0])
    return out


# --------------------------------------------------------------------------- retrieval lists
def _ids(ids: Sequence | np.ndarray) -> np.ndarray:
    return np.array([normalize_id(i.item() if isinstance(i, np.generic) else i) for i in ids],
                    dtype=object)


def _group(ids: Sequence | np.ndarray, values: np.ndarray) -> tuple[list[str], np.ndarray,
                                                                     np.ndarray]:
    norm = _ids(ids).astype(str)
    values = np.asarray(values, dtype=np.float64)
    if len(norm) != len(values):
        raise ValueError(f"{len(norm)} ids for {len(values)} rows")
    uniq, inv = np.unique(norm, return_inverse=True)
    out = np.zeros((len(uniq),) + values.shape[1:])
    np.add.at(out, inv.ravel(), values)
    return [str(u) for u in uniq], out, np.bincount(inv.ravel(), minlength=len(uniq))


#: ``evaluation.scores``: what is summed over an object's test-time copies before the argmax and the
#: ranking of the retrieval lists. ``logits`` (default); ``log_softmax``: s2cnn ``examples/shrec17/test.py``
#: (its model ends in ``F.log_softmax``, test.py sums the outputs over the repeats); ``softmax``:
#: deepsphere-tf1 ``run_eperiment_*.py`` (``model.probs`` averaged over the copies; with the same copy
#: count per object the sum ranks identically).
SCORES = ("logits", "log_softmax", "softmax")
MODES = ("class", "class+median")  # retrieval_lists(mode=...)


def evaluation_settings(cfg: dict) -> tuple[str, str]:
    """``(retrieval mode, summed scores)`` of a run's ``evaluation`` section; a bad value is a
    ``ValueError`` naming the key.

    >>> evaluation_settings({"evaluation": {"scores": "softmax"}})
    ('class', 'softmax')
    """
    ev = cfg.get("evaluation") or {}
    mode, scores = str(ev.get("retrieval", "class")), str(ev.get("scores", "logits"))
    if mode not in MODES:
        raise ValueError(f"evaluation.retrieval {mode!r} must be one of {', '.join(MODES)}")
    if scores not in SCORES:
        raise ValueError(f"evaluation.scores {scores!r} must be one of {', '.join(SCORES)}")
    return mode, scores

def first_two_copies(ids: Sequence | np.ndarray) -> tuple[list[int], list[int]]:
    """Row indices of the first and the second copy (test-time augmentation) of every object that has two.

    >>> first_two_copies(["a", "b", "a", "a", "c", "b"])
    ([0, 1], [2, 5])
    """
    first, second = {}, {}
    for i, key in enumerate(np.asarray(ids).tolist()):
        (second if key in first and key not in second else first).setdefault(key, i)
    return [first[k] for k in second], [second[k] for k in second]


def per_copy_scores(logits: np.ndarray, scores: str) -> np.ndarray:
    """Per-copy scores of ``evaluation.scores`` (one of :data:`SCORES`) from the logits ``(N, C)``.

    >>> per_copy_scores(np.array([[0.0, np.log(3.0)]]), "softmax").round(2).tolist()
    [[0.25, 0.75]]
    """
    z = np.asarray(logits, dtype=np.float64)
    if scores == "logits":
        return z
    log_p = z - z.max(axis=1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return log_p if scores == "log_softmax" else np.exp(log_p)


def sum_by_id(ids: Sequence | np.ndarray, scores: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sum the rows of ``scores`` that share an id (test-time augmentations, as s2cnn ``test.py``
    sums its model's log-softmax outputs over the repeats). Returns the sorted distinct ids and
    their summed rows.

    >>> sum_by_id([3, 1, 3], [[1., 0], [0, 1], [2, 0]])
    (['000001', '000003'], array([[0., 1.],
           [3., 0.]]))
    """
    u, s, _ = _group(ids, scores)
    return u, s


def mean_by_id(ids: Sequence | np.ndarray, descriptors: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Average the rows of ``descriptors`` that share an id; same order as :func:`sum_by_id`."""
    u, s, n = _group(ids, descriptors)
    return u, s / n.reshape((-1,) + (1,) * (s.ndim - 1))


def _desc_rank(ids: np.ndarray) -> np.ndarray:
    # rank of each id in decreasing string order (the tie-break of Python's sorted(reverse=True)
    # on (value, id) tuples in both reference scripts)
    order = np.argsort(ids.astype(str), kind="stable")[::-1]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank


def _cosine_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    # scipy's pdist(..., 'cosine') rows: 1 - u.v / (|u||v|), exact 0 on the diagonal
    norms = np.linalg.norm(x, axis=1)
    d = 1.0 - (x[rows] @ x.T) / (norms[rows, None] * norms[None, :])
    d[np.arange(len(rows)), rows] = 0.0
    return d


def retrieval_lists(ids: Sequence | np.ndarray, scores: np.ndarray, *,
                    descriptors: np.ndarray | None = None,
                    mode: Literal["class", "class+median"] = "class",
                    cut: int | None = CUTOFF, block: int = 512) -> dict[str, list[str]]:
    """One ranked list per query, every object a query (the SHREC protocol).

    ``ids`` (N,) distinct model ids; ``scores`` (N, C) class scores already summed over
    augmentations (:func:`sum_by_id`). The predicted class is ``argmax`` (first maximum).

    * ``"class"`` (s2cnn ``test.py``): all objects predicted in the query's class, by decreasing
      score of that class, ties by decreasing id; the query appears wherever it ranks.
    * ``"class+median"`` (deepsphere-tf1 ``shrec_output``; needs ``descriptors`` (N, D)): with d the
      cosine distance of descriptors to the query, the set S of objects predicted in the query's
      class, plus every object (any class) with d < median of d over S (S includes the query, at
      d = 0). The union is ordered as the original does: by *decreasing* d (its
      ``sorted(..., reverse=True)``), ties by decreasing id, so the query comes last. The original
      takes the query's class from ``argsort(score)[::-1][0]``, which differs from argmax only
      when the top score is tied.

    ``cut`` keeps the first ``cut`` entries (the evaluator reads no further); ``None`` keeps all.
    """
    norm = _ids(ids)
    if len(set(norm)) != len(norm):
        raise ValueError("ids repeat: sum the augmentations first (sum_by_id / mean_by_id)")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) != len(norm):
        raise ValueError(f"scores must be (N, C) with N = {len(norm)}, got {scores.shape}")
    pred = scores.argmax(axis=1)
    rank = _desc_rank(norm)
    stop = None if cut is None else int(cut)
    out: dict[str, list[str]] = {}
    if mode == "class":
        for c in np.unique(pred):
            members = np.flatnonzero(pred == c)
            order = members[np.lexsort((rank[members], -scores[members, c]))]
            ranked = [str(i) for i in norm[order[:stop]]]
            for q in members:
                out[str(norm[q])] = list(ranked)
        return {str(k): out[str(k)] for k in norm}
    if mode != "class+median":
        raise ValueError(f"unknown mode {mode!r}")
    if descriptors is None:
        raise ValueError("mode 'class+median' needs descriptors")
    x = np.asarray(descriptors, dtype=np.float64).reshape(len(norm), -1)
    for lo in range(0, len(norm), block):
        rows = np.arange(lo, min(lo + block, len(norm)))
        dist = _cosine_rows(x, rows)
        for r, q in enumerate(rows):
            d = dist[r]
            same = pred == pred[q]
            keep = same | (d < np.median(d[same]))
            sel = np.flatnonzero(keep)
            order = sel[np.lexsort((rank[sel], -d[sel]))]
            out[str(norm[q])] = [str(i) for i in norm[order[:stop]]]
    return out


# --------------------------------------------------------------------------- result files
def read_results(folder: str | os.PathLike, split: str = "test_perturbed") -> dict[str, list[str]]:
    """Read a result folder: the split folder itself, or a method folder holding ``split/``.
    File names and ids are zero-padded like the JS; a line's first whitespace-separated token is
    the id (the JS takes the text before the first space); blank lines and hidden files are
    skipped. Queries come in sorted file-name order.
    """
    folder = Path(folder)
    if (folder / split).is_dir():
        folder = folder / split
    out: dict[str, list[str]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        toks = (line.split() for line in f.read_text().splitlines())
        out[normalize_id(f.name)] = [normalize_id(t[0]) for t in toks if t]
    return out


# --------------------------------------------------------------------------- metrics
def grades(query: str, retrieved: Iterable[str], labels: Mapping[str, Label]) -> np.ndarray:
    """Graded relevance of each retrieved id to ``query`` (``Evaluator.resultsToScores``):
    3 same sub-synset, 2 retrieved sub-synset == query synset, 1 other sub-synset of the same
    synset, 0 other synset; unknown ids and ids of another split are dropped.

    >>> lab = {"000001": ("A", "A1", "test"), "000002": ("A", "A", "test"),
    ...        "000003": ("A", "A2", "test"), "000004": ("B", "B", "test")}
    >>> grades("000001", ["000001", "000002", "000003", "000004", "999999"], lab).tolist()
    [3, 2, 1, 0]
    """
    syn, sub, split = labels[query]
    out = []
    for r in retrieved:
        lab = labels.get(r)
        if lab is None or lab[2] != split:
            continue
        out.append(0 if lab[0] != syn else 3 if lab[1] == sub else 2 if lab[1] == syn else 1)
    return np.asarray(out, dtype=np.int64)


def _dcg(x: np.ndarray) -> float:
    # Metrics.DCG: weight 1 at rank 1, 1 / log2(rank) from rank 2 on; linear gains
    if len(x) == 0:
        return math.nan
    w = 1.0 / np.log2(np.arange(2, len(x) + 1, dtype=np.float64))
    return float(x[0] + np.dot(w, x[1:]))


def query_metrics(g: np.ndarray, oracle: np.ndarray, cutoff: int = CUTOFF,
                  empty: Literal["js", "zero"] = "js") -> dict[str, float]:
    """P@N, R@N, F1@N, AP and NDCG of one graded list ``g`` against the oracle grades
    (``Metrics.MetricsSet``). See the module docstring for the definitions.

    >>> m = query_metrics(np.array([3, 0, 1]), np.array([3, 1, 1, 1]))  # R = 4
    >>> # P 2/3, R 2/4, F1 4/7, AP (1 + 2/3) / 4, NDCG (3 + 1/log2 3) / (3 + 1 + 1/log2 3 + 1/2)
    >>> [round(m[k], 4) for k in ("precision", "recall", "f1", "map", "ndcg")]
    [0.6667, 0.5, 0.5714, 0.4167, 0.7077]
    """
    g = np.asarray(g, dtype=np.float64)
    r_total = min(len(oracle), cutoff)
    if len(g) == 0:
        v = math.nan if empty == "js" else 0.0
        return {"precision": v, "recall": v, "f1": v, "map": 0.0, "ndcg": v, "n": 0,
                "relevant": r_total}
    rel = g > 0
    hits = np.cumsum(rel)
    p = hits[-1] / len(g)
    r = hits[-1] / r_total
    f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    ranks = np.flatnonzero(rel) + 1.0
    ap = float(np.sum(hits[rel] / ranks)) / r_total if rel.any() else 0.0
    idcg = _dcg(np.sort(np.asarray(oracle[:r_total], dtype=np.float64))[::-1])
    ndcg = 0.0 if idcg == 0 else _dcg(g[:r_total]) / idcg
    return {"precision": float(p), "recall": float(r), "f1": float(f1), "map": ap,
            "ndcg": float(ndcg), "n": int(len(g)), "relevant": r_total}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    norm = 1.0 / len(rows)  # the JS multiplies by 1 / num
    return {k: sum(row[k] for row in rows) * norm for k in METRICS}


def evaluate(lists: Mapping[Any, Sequence], labels: Mapping | str | os.PathLike | Iterable,
             split: str = "test", *, cutoff: int = CUTOFF,
             empty: Literal["js", "zero"] = "js") -> dict[str, Any]:
    """Score ranked lists like ``evaluate.js`` on one dataset folder.

    ``lists``: ``{queryId: [retrieved ids]}`` (ints or strings); ``labels``: anything
    :func:`read_labels` takes; ``split``: ``test`` (or ``test_perturbed``...). Queries that are
    unknown or of another split are ignored (counted in ``ignored_queries``).

    Returns ``micro_{precision,recall,f1,map,ndcg}`` (microALL: mean over queries),
    ``macro_...`` (macroALL: mean over query synsets of the per-synset means), ``num_queries``,
    ``ignored_queries``, ``per_synset`` ``{synset: {metric: value, "num": n}}`` in first-seen order
    and ``per_query`` ``{queryId: {metric: value, "n": N, "relevant": R}}``.
    """
    labels = read_labels(labels)
    split = split.split("_")[0]
    by_synset: dict[str, list[str]] = {}
    for i, (syn, _, s) in labels.items():
        if s == split:
            by_synset.setdefault(syn, []).append(i)
    per_query: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, float]]] = {}
    ignored = 0
    oracle_cache: dict[tuple[str, str], np.ndarray] = {}
    for q, retrieved in lists.items():
        q = normalize_id(q)
        lab = labels.get(q)
        if lab is None or lab[2] != split:
            ignored += 1
            continue
        seen: dict[str, None] = {}
        for i in list(retrieved)[:cutoff]:
            seen.setdefault(normalize_id(i), None)
        key = (lab[0], lab[1])
        if key not in oracle_cache:
            oracle_cache[key] = grades(q, by_synset[lab[0]], labels)
        m = query_metrics(grades(q, seen, labels), oracle_cache[key], cutoff, empty)
        per_query[q] = m
        groups.setdefault(lab[0], []).append(m)
    out: dict[str, Any] = {}
    rows = list(per_query.values())
    per_synset = {s: {**_mean(ms), "num": len(ms)} for s, ms in groups.items()}
    micro = _mean(rows) if rows else {k: math.nan for k in METRICS}
    macro = _mean(list(per_synset.values())) if per_synset else {k: math.nan for k in METRICS}
    for k in METRICS:
        out[f"micro_{k}"] = micro[k]
    for k in METRICS:
        out[f"macro_{k}"] = macro[k]
    out.update(num_queries=len(rows), ignored_queries=ignored, per_synset=per_synset,
               per_query=per_query)
    return out


def summary_rows(result: Mapping[str, Any], dataset: str = "test_perturbed",
                 method: str = "method") -> list[str]:
    """The rows of the JS ``<method>.summary.csv`` (header first): microALL, the synsets,
    macroALL; columns class, P@N, R@N, F1@N, mAP, NDCG, dataset, method."""
    def line(name: str, m: Mapping[str, float]) -> str:
        return ",".join([name, *(repr(float(m[k])) for k in METRICS), dataset, method])
    rows = ["class,P@N,R@N,F1@N,mAP,NDCG,dataset,method",
            line("microALL", {k: result[f"micro_{k}"] for k in METRICS})]
    rows += [line(s, m) for s, m in result["per_synset"].items()]
    rows.append(line("macroALL", {k: result[f"macro_{k}"] for k in METRICS}))
    return rows


def classification_f1(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray) -> float:
    """Support-weighted F1 over the classes present in ``y_true`` or ``y_pred``: sklearn's
    ``f1_score(average="weighted")``, the F1 of the DeepSphere SHREC'17 table.

    >>> round(classification_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)  # (2·2/3 + 2·0.8) / 4
    0.7333
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: {t.shape} vs {p.shape}")
    if t.size == 0:
        return 0.0
    f1s, support = [], []
    for c in np.union1d(t, p):
        tp = np.sum((t == c) & (p == c))
        denom = np.sum(t == c) + np.sum(p == c)
        f1s.append(2.0 * tp / denom if denom else 0.0)
        support.append(np.sum(t == c))
    total = float(np.sum(support))
    return float(np.dot(f1s, support) / total) if total else 0.0


# --------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.retrieval <results_dir> <all.csv>``: print the evaluate.js summary for
    every dataset folder (``test_perturbed``...) in ``results_dir`` (a method folder), or for
    ``results_dir`` itself when it is one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    root, labels = Path(argv[0]), read_labels(argv[1])
    if root.name in DATASETS:
        todo = [(root.name, root)]
        method = root.parent.name
    else:
        todo = [(d, root / d) for d in DATASETS if (root / d).is_dir()]
        method = root.name
    if not todo:
        print(f"no {'/'.join(DATASETS)} folder in {root}", file=sys.stderr)
        return 1
    print("class,P@N,R@N,F1@N,mAP,NDCG,dataset,method")
    for name, folder in todo:
        res = evaluate(read_results(folder), labels, split=name.split("_")[0])
        print("\n".join(summary_rows(res, name, method)[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
