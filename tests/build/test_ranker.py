"""The ranking model's numpy evaluator (tuning/ranker.py): exact scores on a
hand-built model, a round trip through the file, refusal of broken files, and
agreement with LightGBM's own predictions where LightGBM is installed."""
import gzip
import json

import numpy as np
import pytest

from autoconfig.tuning.ranker import RankerFileError, Ranker, load_ranker, ranker_from_dict

# Two trees over features (a, b):
#   tree 0: a <= 1.5 ? (b <= 0 ? 10 : 20) : 30
#   tree 1: one leaf, -1
HAND = {"format": "autoconfig-ranker", "version": 1, "features": ["a", "b"],
        "trees": [{"split_feature": [0, 1], "threshold": [1.5, 0.0], "left": [1, -1], "right": [-3, -2],
                   "leaf_value": [10.0, 20.0, 30.0]},
                  {"split_feature": [], "threshold": [], "left": [], "right": [], "leaf_value": [-1.0]}],
        "metadata": {"note": "hand-built"}}


def naive_score(x):
    a, b = x
    t0 = (10.0 if b <= 0 else 20.0) if a <= 1.5 else 30.0
    return t0 - 1.0


def test_hand_built_scores_exact(tmp_path):
    path = tmp_path / "m.json.gz"
    path.write_bytes(gzip.compress(json.dumps(HAND).encode()))
    r = load_ranker(path)
    x = np.array([[0.0, 0.0], [1.5, -3.0], [1.5, 0.5], [1.6, -9.0], [100.0, 100.0], [-1e30, 1e-300]])
    got = r.score(x)
    assert got.tolist() == [naive_score(row) for row in x]
    assert got.tolist() == [9.0, 9.0, 19.0, 29.0, 29.0, 19.0]


def test_round_trip(tmp_path):
    r = ranker_from_dict(HAND)
    r.save(tmp_path / "a.json.gz")
    r.save(tmp_path / "a.json")
    x = np.random.default_rng(0).normal(size=(50, 2)) * 3
    for name in ("a.json.gz", "a.json"):
        assert np.array_equal(load_ranker(tmp_path / name).score(x), r.score(x))
    # same model, same bytes (no time stamp in the gzip header)
    r.save(tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()


def test_score_checks_its_input():
    r = ranker_from_dict(HAND)
    with pytest.raises(ValueError, match=r"x: expected a \(rows, 2\)"):
        r.score(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"non-finite feature value\(s\) in \['b'\]"):
        r.score(np.array([[0.0, np.nan]]))


def _broken(**tree0):
    d = json.loads(json.dumps(HAND))
    d["trees"][0].update(tree0)
    return d


@pytest.mark.parametrize("doc, message", [
    ({"format": "other"}, "format: expected 'autoconfig-ranker'"),
    (dict(HAND, version=2), "version: this autoconfig reads version 1"),
    (dict(HAND, features=[]), "features: expected a non-empty list"),
    (dict(HAND, trees=[]), "trees: expected a non-empty list"),
    (_broken(leaf_value=[1.0, 2.0]), r"trees\[0\]: a binary tree with 2 internal nodes has 3 leaves"),
    (_broken(split_feature=[0, 5]), r"trees\[0\]: split_feature outside 0..1"),
    (_broken(left=[1, -1], right=[-1, -2]), r"trees\[0\]: children do not form one binary tree"),
    (_broken(left=[1, 1], right=[-3, -2]), r"trees\[0\]: children do not form one binary tree"),
    (_broken(threshold=[1.5, float("nan")]), r"trees\[0\]: non-finite threshold"),
    (_broken(threshold=[1.5]), r"trees\[0\]: split_feature, threshold, left, right differ in length"),
    (_broken(left="x"), r"trees\[0\]: node lists must be"),
])
def test_broken_models_refused(doc, message):
    with pytest.raises(RankerFileError, match=message):
        ranker_from_dict(doc)


def test_corrupt_files_refused(tmp_path):
    good = gzip.compress(json.dumps(HAND).encode())
    (tmp_path / "trunc.json.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(RankerFileError, match=r"trunc.json.gz: not a readable \(gzip\) JSON ranking model"):
        load_ranker(tmp_path / "trunc.json.gz")
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(RankerFileError, match="text.json: not a readable"):
        load_ranker(tmp_path / "text.json")
    with pytest.raises(RankerFileError, match="no such file"):
        load_ranker(tmp_path / "absent.json.gz")


def test_agrees_with_lightgbm():
    lgb = pytest.importorskip("lightgbm")
    from autoconfig.tuning.lightgbm_export import ranker_from_lightgbm
    rng = np.random.default_rng(1)
    groups = [7, 1, 13, 5, 31, 2]
    x = rng.normal(size=(sum(groups), 4))
    x[:, 3] = rng.integers(0, 3, size=x.shape[0])      # a categorical-like column, with ties at thresholds
    y = rng.integers(0, 5, size=x.shape[0])
    ds = lgb.Dataset(x, y, group=groups)
    booster = lgb.train({"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 1, "verbose": -1,
                         "learning_rate": 0.3}, ds, num_boost_round=12)
    ours = ranker_from_lightgbm(booster, ["f0", "f1", "f2", "f3"])
    probe = np.concatenate([x, rng.normal(size=(40, 4)) * 2, np.round(x[:20] * 2) / 2])
    np.testing.assert_allclose(ours.score(probe), booster.predict(probe, raw_score=True), rtol=0, atol=1e-9)
    assert isinstance(ours, Ranker)


def _random_tree(rng, n_leaves, n_features):
    """A random binary tree in pre-order (the file's node order), as a dict."""
    sf, th, left, right, leaves = [], [], [], [], []

    def grow(n):            # returns the child reference of a subtree with n leaves
        if n == 1:
            leaves.append(float(rng.normal()))
            return ~(len(leaves) - 1)
        node = len(sf)
        sf.append(int(rng.integers(n_features)))
        th.append(float(rng.integers(-3, 4)) / 2)          # on a grid, so rows hit thresholds exactly
        left.append(0)
        right.append(0)
        k = int(rng.integers(1, n))
        left[node] = grow(k)
        right[node] = grow(n - k)
        return node
    grow(n_leaves)
    return {"split_feature": sf, "threshold": th, "left": left, "right": right, "leaf_value": leaves}


def _walk(tree, row):
    node = 0
    if not tree["split_feature"]:
        return tree["leaf_value"][0]
    while node >= 0:
        nxt = tree["left"][node] if row[tree["split_feature"][node]] <= tree["threshold"][node] else tree["right"][node]
        if nxt < 0:
            return tree["leaf_value"][~nxt]
        node = nxt


@pytest.mark.parametrize("max_leaves", [1, 8, 9, 16, 17, 33, 64])
def test_random_forests_score_as_a_tree_walk(max_leaves):
    """Trees of 1..max_leaves leaves (every mask width: 8, 16, 32, 64 bits)
    scored against a plain walk per tree and row, summed in tree order; more
    rows than one chunk, rows on the thresholds."""
    rng = np.random.default_rng(max_leaves)
    n_features = 5
    trees = [_random_tree(rng, int(rng.integers(1, max_leaves + 1)), n_features) for _ in range(12)]
    trees[0] = _random_tree(rng, max_leaves, n_features)
    r = ranker_from_dict({"format": "autoconfig-ranker", "version": 1,
                          "features": [f"f{i}" for i in range(n_features)], "trees": trees})
    x = np.concatenate([rng.integers(-4, 5, size=(2060, n_features)) / 2, rng.normal(size=(40, n_features))])
    want = np.zeros(x.shape[0])
    for t in trees:
        want += [_walk(t, row) for row in x]
    assert np.array_equal(r.score(x), want)
    assert r.score(x[:0]).shape == (0,)
