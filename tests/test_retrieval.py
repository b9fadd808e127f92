"""models/retrieval.py: the SHREC'17 evaluator on hand-made label sets with values worked out by
hand, list construction in both modes, result files, and (when the original Node.js evaluator is
available: ``SHREC17_EVALUATOR=<dir with lib/Evaluator.js>`` and ``node`` on the PATH) a
number-for-number cross-check against it on a random case."""
from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from datamodules.shrec17_layout import write_results
from models.retrieval import (classification_f1, evaluate, grades, main, mean_by_id, read_labels,
                              read_results, retrieval_lists, sum_by_id)

L3 = 1 / math.log2(3)
# synset A: 1, 2 in sub-synset A1, 3 in A2, 4 labelled with the bare synset A; synset B: 5, 6;
# 7 is an A1 model of the train split, 99 is unknown
LABELS = {1: ("A", "A1", "test"), 2: ("A", "A1", "test"), 3: ("A", "A2", "test"),
          4: ("A", "A", "test"), 5: ("B", "B1", "test"), 6: ("B", "B1", "test"),
          7: ("A", "A1", "train")}
# oracle of query 1 = grades of 1, 2, 3, 4 = [3, 3, 1, 2], R = 4;
# IDCG = DCG([3, 3, 2, 1]) = 3 + 3/1 + 2/log2(3) + 1/log2(4)
IDCG1 = 3 + 3 + 2 * L3 + 0.5


def q(lists, **kw):
    return evaluate(lists, LABELS, **kw)["per_query"]


def test_grades_rule_and_its_direction():
    lab = read_labels(LABELS)
    # query 1 (A1): itself 3, same sub 3, sibling A2 1, bare-synset model 2, other synset 0;
    # the train model and the unknown id are dropped
    assert grades("000001", ["000001", "000002", "000003", "000004", "000005", "000007",
                             "000099"], lab).tolist() == [3, 3, 1, 2, 0]
    # query 4 (sub-synset == synset): A1 and A2 models are grade 1 for it, not 2 -- grade 2 is
    # the *retrieved* model's sub-synset equal to the query's synset
    assert grades("000004", ["000001", "000003", "000004"], lab).tolist() == [1, 1, 3]


def test_perfect_list_scores_one():
    m = q({1: [1, 2, 4, 3]})["000001"]   # grades [3, 3, 2, 1], the oracle sorted
    assert m == pytest.approx({"precision": 1, "recall": 1, "f1": 1, "map": 1, "ndcg": 1,
                               "n": 4, "relevant": 4})


def test_all_relevant_in_a_bad_order_only_lowers_ndcg():
    m = q({1: [3, 4, 1, 2]})["000001"]   # grades [1, 2, 3, 3]
    assert (m["precision"], m["recall"], m["map"]) == (1, 1, 1)
    assert m["ndcg"] == pytest.approx((1 + 2 + 3 * L3 + 3 / 2) / IDCG1)   # 0.8236


def test_one_wrong_item_in_the_middle():
    m = q({1: [1, 2, 5, 4, 3]})["000001"]  # grades [3, 3, 0, 2, 1], N = 5, R = 4
    assert m["precision"] == pytest.approx(4 / 5)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(2 * 0.8 / 1.8)                       # 0.8889
    assert m["map"] == pytest.approx((1 / 1 + 2 / 2 + 3 / 4 + 4 / 5) / 4)  # 0.8875
    # DCG over the first R = 4 entries only: 3 + 3 + 0/log2(3) + 2/log2(4) = 7; rank 5 is cut
    assert m["ndcg"] == pytest.approx(7 / IDCG1)                          # 0.9018


def test_precision_below_one_relevant_missing():
    m = q({2: [2, 5]})["000002"]            # grades [3, 0]
    assert (m["precision"], m["recall"]) == pytest.approx((1 / 2, 1 / 4))
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)               # 1/3
    assert m["map"] == pytest.approx(1 / 4)                              # AP divides by R
    assert m["ndcg"] == pytest.approx(3 / IDCG1)


def test_empty_list_is_nan_like_the_js_or_zero():
    res = evaluate({1: [], 2: [1, 2, 4, 3]}, LABELS)
    m = res["per_query"]["000001"]
    assert math.isnan(m["precision"]) and math.isnan(m["recall"]) and math.isnan(m["ndcg"])
    assert m["map"] == 0 and res["micro_map"] == pytest.approx(0.5)
    assert math.isnan(res["micro_precision"]) and math.isnan(res["macro_ndcg"])
    zero = evaluate({1: [], 2: [1, 2, 4, 3]}, LABELS, empty="zero")
    assert zero["per_query"]["000001"]["ndcg"] == 0
    assert zero["micro_precision"] == pytest.approx(0.5)
    # only foreign ids left = empty too
    assert math.isnan(q({1: [7, 99]})["000001"]["precision"])


def test_duplicates_and_foreign_ids_are_ignored():
    # cut, de-duplicate -> [1, 7, 99, 2, 5]; 7 (train) and 99 (unknown) dropped -> grades [3, 3, 0]
    m = q({"1": ["1", 1, 7, 99, 2, "000002", 5]})["000001"]
    assert m["n"] == 3
    assert (m["precision"], m["recall"]) == pytest.approx((2 / 3, 1 / 2))
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["map"] == pytest.approx(2 / 4)
    assert m["ndcg"] == pytest.approx(6 / IDCG1)


def test_queries_of_other_splits_or_unknown_are_skipped():
    res = evaluate({1: [1, 2, 4, 3], 7: [7], 99: [1]}, LABELS)
    assert res["num_queries"] == 1 and res["ignored_queries"] == 2
    assert list(res["per_query"]) == ["000001"]
    # the same lists scored on the train split: only query 7 counts, its oracle is itself
    tr = evaluate({1: [1], 7: [7, 1]}, LABELS, split="train_perturbed")
    assert tr["num_queries"] == 1 and tr["micro_map"] == 1 and tr["micro_ndcg"] == 1


def test_micro_and_macro_differ_with_unequal_synsets():
    lists = {i: [1, 2, 4, 3] for i in (1, 2, 3, 4)}   # A: every metric but NDCG is 1
    lists.update({5: [1, 5, 6], 6: [1, 5, 6]})        # B: grades [0, 3, 3], R = 2
    res = evaluate(lists, LABELS)
    # B: P = 2/3, R = 1, AP = (1/2 + 2/3) / 2 = 7/12
    assert res["per_synset"]["B"]["map"] == pytest.approx(7 / 12)
    assert res["per_synset"]["A"]["num"] == 4 and res["per_synset"]["B"]["num"] == 2
    assert res["micro_map"] == pytest.approx((4 + 2 * 7 / 12) / 6)     # 0.8611
    assert res["macro_map"] == pytest.approx((1 + 7 / 12) / 2)         # 0.7917
    assert res["micro_precision"] == pytest.approx((4 + 2 * 2 / 3) / 6)
    assert res["macro_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert res["micro_recall"] == res["macro_recall"] == 1
    # B's NDCG: DCG([0, 3]) = 3 over IDCG([3, 3]) = 6 (first R = 2 entries only)
    assert res["per_synset"]["B"]["ndcg"] == pytest.approx(0.5)


def big_labels():
    # synset C: 1200 test models 1000..2199 of one sub-synset
    return {i: ("C", "C1", "test") for i in range(1000, 2200)}


def test_cut_at_1000_then_deduplicate():
    lab = big_labels()
    full = evaluate({1000: list(range(1000, 2200))}, lab)["per_query"]["001000"]
    # cut at 1000 all relevant, R = min(1200, 1000): everything 1
    assert full == pytest.approx({"precision": 1, "recall": 1, "f1": 1, "map": 1, "ndcg": 1,
                                  "n": 1000, "relevant": 1000})
    # the cut comes before de-duplication: 1000 copies of the query leave a list of one
    m = evaluate({1000: [1000] * 1000 + list(range(1001, 2200))}, lab)["per_query"]["001000"]
    assert m["n"] == 1
    assert (m["precision"], m["recall"], m["map"]) == pytest.approx((1, 1e-3, 1e-3))
    assert m["f1"] == pytest.approx(2 * 1e-3 / 1.001)
    assert m["ndcg"] == pytest.approx(3 / (3 * (2 + sum(1 / math.log2(i) for i in range(3, 1001)))))


def test_ndcg_oracle_is_cut_in_csv_order_and_can_exceed_one():
    # synset D: 1000 models of sub-synset D2 listed first, then 5 of D1. For a D1 query the
    # oracle is the first 1000 csv rows (all D2, grade 1), so IDCG = 1 + 1 + sum 1/log2(i)
    lab = {i: ("D", "D2", "test") for i in range(1, 1001)}
    lab.update({i: ("D", "D1", "test") for i in range(2001, 2006)})
    ranked = list(range(2001, 2006)) + list(range(1, 996))
    m = evaluate({2001: ranked}, lab)["per_query"]["002001"]
    w = [1.0] + [1 / math.log2(i) for i in range(2, 1001)]
    dcg = sum(wi * gi for wi, gi in zip(w, [3] * 5 + [1] * 995))
    assert m["ndcg"] == pytest.approx(dcg / sum(w)) and m["ndcg"] > 1
    assert m["map"] == pytest.approx(1.0)


def test_labels_from_csv_gz_mapping_and_rows(tmp_path):
    text = ("id,synsetId,subSynsetId,modelId,split\n000001,02691156,02690373,abc,test\n"
            "000002,02691156,02691156,def,val\n")
    (tmp_path / "all.csv").write_text(text)           # trailing newline tolerated
    with gzip.open(tmp_path / "all.csv.gz", "wt") as f:
        f.write(text)
    want = {"000001": ("02691156", "02690373", "test"), "000002": ("02691156", "02691156", "val")}
    assert read_labels(tmp_path / "all.csv") == want
    assert read_labels(str(tmp_path / "all.csv.gz")) == want
    assert read_labels({1: (2691156, 2690373, "test_perturbed"),
                        2: ("02691156", "02691156", "val")}) == want
    assert read_labels([["1", "02691156", "02690373", "abc", "test"],
                        {"id": "2", "synsetId": "02691156", "subSynsetId": "02691156",
                         "split": "val"}]) == want


# --------------------------------------------------------------------------- list construction
def test_class_mode_orders_by_score_ties_by_id_and_includes_the_query():
    ids = [5, 3, 9, 1]
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.6, 0.3]])
    lists = retrieval_lists(ids, scores)
    # class 0: 5 (0.9), then 9 and 1 tied at 0.6, larger id first (sorted(reverse=True) on tuples)
    assert lists == {"000005": ["000005", "000009", "000001"], "000003": ["000003"],
                     "000009": ["000005", "000009", "000001"],
                     "000001": ["000005", "000009", "000001"]}
    perm = [2, 0, 3, 1]
    assert retrieval_lists(np.array(ids)[perm], scores[perm]) == {k: lists[k] for k in
                                                                   ["000009", "000005", "000001",
                                                                    "000003"]}
    assert retrieval_lists(ids, scores, cut=2)["000001"] == ["000005", "000009"]
    with pytest.raises(ValueError, match="repeat"):
        retrieval_lists([1, 1], scores[:2])


def test_class_median_mode_hand_case():
    # query 1 at angle 0; class-0 mates 2 (90 deg, d = 1) and 3 (60 deg, d = 1/2); class-1
    # objects 4 (10 deg, d = 1 - cos 10 deg) and 5 (180 deg, d = 2). Median over {1, 2, 3} of
    # d = {0, 1, 1/2} is 1/2; d < 1/2 adds 4 (and 1). Order: decreasing d -> 2, 3, 4, 1.
    ang = np.deg2rad([0, 90, 60, 10, 180])
    desc = np.stack([np.cos(ang), np.sin(ang)], 1)
    scores = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], float)
    lists = retrieval_lists([1, 2, 3, 4, 5], scores, descriptors=desc, mode="class+median")
    assert lists["000001"] == ["000002", "000003", "000004", "000001"]
    # query 4 (class 1 = {4, 5}, d = {0, 2}, median 1): adds 1 (d = .015), 3 (.06), 2 (.17)
    assert lists["000004"] == ["000005", "000002", "000003", "000001", "000004"]
    with pytest.raises(ValueError, match="descriptors"):
        retrieval_lists([1, 2, 3, 4, 5], scores, mode="class+median")


def _naive_class_median(ids, scores, desc):
    # straightforward per-query version with scipy distances, for the random comparison
    from scipy.spatial.distance import cdist
    ids = [f"{i:06d}" for i in ids]
    d_all = cdist(desc, desc, "cosine")
    np.fill_diagonal(d_all, 0.0)
    pred = scores.argmax(1)
    out = {}
    for qi, qid in enumerate(ids):
        d = d_all[qi]
        same = [j for j in range(len(ids)) if pred[j] == pred[qi]]
        thr = np.median(d[same])
        chosen = set(same) | {j for j in range(len(ids)) if d[j] < thr}
        ranked = sorted(((d[j], ids[j]) for j in chosen), reverse=True)
        out[qid] = [i for _, i in ranked][:1000]
    return out


def test_class_median_mode_matches_a_naive_version():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    ids = rng.permutation(400)[:150] + 1
    scores = rng.random((150, 4))
    desc = rng.normal(size=(150, 8))
    got = retrieval_lists(ids, scores, descriptors=desc, mode="class+median", block=64)
    assert got == _naive_class_median(ids, scores, desc)


def test_sum_and_mean_by_id():
    ids, s = sum_by_id(["7", 3, "000007", 3], np.array([[1., 2], [3, 4], [5, 6], [7, 8]]))
    assert ids == ["000003", "000007"]
    np.testing.assert_allclose(s, [[10, 12], [6, 8]])
    ids, m = mean_by_id([7, 3, 7], np.array([[1., 2], [3, 4], [5, 6]]))
    assert ids == ["000003", "000007"]
    np.testing.assert_allclose(m, [[3, 4], [3, 4]])


# --------------------------------------------------------------------------- files
def test_result_files_layout_and_round_trip(tmp_path):
    lists = {5: [5, 9, 1], "3": ["3"], 4: []}
    folder = write_results(lists, tmp_path, "mymethod")
    assert folder == tmp_path / "mymethod" / "test_perturbed"
    assert sorted(p.name for p in folder.iterdir()) == ["000003", "000004", "000005"]
    assert (folder / "000005").read_text() == "000005\n000009\n000001\n"
    assert (folder / "000004").read_text() == ""
    want = {"000003": ["000003"], "000004": [], "000005": ["000005", "000009", "000001"]}
    assert read_results(folder) == want
    assert read_results(tmp_path / "mymethod") == want        # method folder holding test_perturbed/
    # rewriting replaces the folder's content: a stale query file goes
    write_results({5: [1]}, tmp_path, "mymethod")
    assert read_results(folder) == {"000005": ["000001"]}
    with pytest.raises(ValueError):
        write_results(lists, tmp_path, "m", split="test")


def test_read_results_tolerates_padding_whitespace_and_distances(tmp_path):
    (tmp_path / "12").write_text("5 0.25\n\n  9  \n1\n\n")
    (tmp_path / ".hidden").write_text("1\n")
    assert read_results(tmp_path) == {"000012": ["000005", "000009", "000001"]}


def test_command_line_prints_the_summary(tmp_path, capsys):
    rows = ["id,synsetId,subSynsetId,modelId,split"] + [
        f"{i:06d},{s},{u},x,{sp}" for i, (s, u, sp) in LABELS.items()]
    (tmp_path / "all.csv").write_text("\n".join(rows) + "\n")
    write_results({i: [1, 2, 4, 3] for i in (1, 2, 3, 4)} | {5: [1, 5, 6], 6: [1, 5, 6]},
                  tmp_path, "m")
    assert main([str(tmp_path / "m"), str(tmp_path / "all.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "class,P@N,R@N,F1@N,mAP,NDCG,dataset,method"
    assert [r.split(",")[0] for r in out[1:]] == ["microALL", "A", "B", "macroALL"]
    assert float(out[1].split(",")[4]) == pytest.approx((4 + 2 * 7 / 12) / 6)
    assert out[1].endswith(",test_perturbed,m")


def test_classification_f1_is_sklearn_weighted():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 6, 300), rng.integers(0, 7, 300)     # class 6 only predicted
    assert classification_f1(t, p) == pytest.approx(sk.f1_score(t, p, average="weighted"))
    assert classification_f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 * 2 / 3 + 2 * 0.8) / 4)


# --------------------------------------------------------------------------- the original JS
JS = os.environ.get("SHREC17_EVALUATOR", "")
NODE = shutil.which("node") or shutil.which("nodejs")
RUN_JS = """
const Evaluator = require(process.argv[1] + '/lib/Evaluator.js');
const ev = new Evaluator(process.argv[2]);
ev.init(function () {
  const m = ev.evaluateRankedLists(process.argv[3]);
  const out = {};
  for (const k in m) { out[k] = m[k].getAverages(); delete out[k].P; delete out[k].R;
                       delete out[k].F1; }
  console.log('JSON' + JSON.stringify(out));
});
"""


def _run_js(tmp_path, labels, lists):
    tmp_path.mkdir()
    rows = ["id,synsetId,subSynsetId,modelId,split"] + [
        f"{i},{s},{u},x,{sp}" for i, (s, u, sp) in read_labels(labels).items()]
    with gzip.open(tmp_path / "all.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    folder = write_results(lists, tmp_path, "m")
    res = subprocess.run([NODE, "-e", RUN_JS, JS, str(tmp_path / "all.csv.gz"), f"{folder}/"],
                         capture_output=True, text=True, timeout=120, check=True)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("JSON")][0]
    return json.loads(line[4:])


def _compare(js, ours):
    keys = {"P@N": "precision", "R@N": "recall", "F1@N": "f1", "mAP": "map", "NDCG": "ndcg"}
    rows = {"microALL": {v: ours[f"micro_{v}"] for v in keys.values()},
            "macroALL": {v: ours[f"macro_{v}"] for v in keys.values()}, **ours["per_synset"]}
    assert set(js) == set(rows)
    for name, a in js.items():
        for jk, pk in keys.items():
            want = math.nan if a[jk] is None else a[jk]
            assert rows[name][pk] == pytest.approx(want, rel=1e-12, abs=1e-15, nan_ok=True), \
                (name, jk)


@pytest.mark.skipif(not (JS and NODE and os.path.isfile(os.path.join(JS, "lib", "Evaluator.js"))),
                    reason="set SHREC17_EVALUATOR to the official evaluator folder and install node")
def test_matches_the_official_js_evaluator(tmp_path):
    rng = np.random.default_rng(3)
    labels = {}
    i = 1
    # synset S0 large (~1200 test models, sub-synsets interleaved in csv order, so R = 1000 and
    # the oracle cut of NDCG bites), S1 and S2 small,
    # bare-synset models in each, some train / val models mixed in
    for syn, n, subs in (("03000000", 2000, ["03000001", "03000002", "03000000"]),
                         ("04000000", 60, ["04000000", "04000003"]),
                         ("05000000", 25, ["05000004"])):
        for k in range(n):
            labels[i] = (syn, subs[rng.integers(len(subs))],
                         rng.choice(["test", "test", "test", "train", "val"]))
            i += 1
    all_ids = list(labels)
    test_ids = [k for k, v in labels.items() if v[2] == "test"]
    lists = {}
    for qid in rng.choice(test_ids, 120, replace=False):
        n = int(rng.integers(1, 1300))
        lst = list(rng.choice(all_ids + [9999, 99999], n))   # duplicates, foreign, unknown
        if rng.random() < 0.3:   # some near-perfect lists: same synset first
            same = [k for k in test_ids if labels[k][0] == labels[qid][0]]
            lst = list(rng.permutation(same)) + lst
        lists[int(qid)] = lst
    lists[int(test_ids[0])] = [all_ids[0]]        # a one-item list
    big = [k for k in test_ids if labels[k][0] == "03000000"]
    q0 = next(k for k in big if labels[k][1] == "03000001")
    grade = {"03000001": 3, "03000000": 2, "03000002": 1}
    lists[q0] = sorted(big, key=lambda k: -grade[labels[k][1]])   # graded order: NDCG > 1
    ours = evaluate(lists, labels)
    assert ours["per_query"][f"{q0:06d}"]["ndcg"] > 1
    _compare(_run_js(tmp_path / "a", labels, lists), ours)
    # an empty list: NaN P@N / R@N / F1@N / NDCG in both, mAP still a number
    lists[int(test_ids[1])] = []
    _compare(_run_js(tmp_path / "b", labels, lists), evaluate(lists, labels))
