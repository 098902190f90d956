"""The shipped ranking model: a file format and its evaluator in numpy alone.

The predictor is an ensemble of regression trees trained offline for ranking
(tuning/train.py: LightGBM lambdarank); a configuration's score is the sum of
the leaf values its feature vector reaches, one leaf per tree, and a higher
score means a faster configuration. At build time only this module runs, so
a build needs numpy but no training library.

File (JSON, gzip-compressed when the name ends in .gz):
  {"format": "autoconfig-ranker", "version": 1,
   "features": [name, ...],                 # the column order of the vectors
   "trees": [{"split_feature": [int],       # per internal node: the column tested,
              "threshold": [float],         #   go left when x[column] <= threshold
              "left": [int], "right": [int],#   child: >= 0 an internal node, < 0 leaf ~child
              "leaf_value": [float]}, ...],
   "metadata": {...}}                       # how it was trained (free-form)
A tree without internal nodes is one leaf (empty node lists, one leaf value).
Loading checks the whole structure, so a truncated or edited file is refused
with the reason instead of scoring wrongly.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy as np

FORMAT = "autoconfig-ranker"
VERSION = 1


class RankerFileError(ValueError):
    """A ranking-model file that cannot be used, with the reason."""


@dataclass
class Tree:
    split_feature: np.ndarray      # int, per internal node
    threshold: np.ndarray          # float64, per internal node
    left: np.ndarray               # int, per internal node (< 0: leaf ~value)
    right: np.ndarray
    leaf_value: np.ndarray         # float64, per leaf


@dataclass
class Ranker:
    features: List[str]
    trees: List[Tree]
    metadata: Dict[str, Any] = field(default_factory=dict)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of the rows of x (higher: predicted faster)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"x: expected a (rows, {len(self.features)}) feature matrix, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            bad = sorted({self.features[j] for j in np.nonzero(~np.isfinite(x))[1]})
            raise ValueError(f"x: non-finite feature value(s) in {bad}")
        return self._flat().score(x)

    def _flat(self) -> "_FlatForest":
        if getattr(self, "_flat_cache", None) is None:
            self._flat_cache = _FlatForest(self.trees)
        return self._flat_cache

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "features": list(self.features),
                "trees": [{"split_feature": t.split_feature.tolist(), "threshold": t.threshold.tolist(),
                           "left": t.left.tolist(), "right": t.right.tolist(),
                           "leaf_value": t.leaf_value.tolist()} for t in self.trees],
                "metadata": self.metadata}

    def save(self, path: Union[str, Path]) -> None:
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        path = Path(path)
        if path.suffix == ".gz":
            # mtime=0: the same model gives the same bytes
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text)


class _FlatForest:
    """All trees in one node table, walked together: a leaf is a node that
    tests nothing (threshold +inf, both children itself), so every (row,
    tree) pair takes the same number of steps (the deepest tree's depth) and
    each step is a handful of whole-array numpy operations, instead of a
    Python loop over trees (the predictor scores ~2000 GEMM configs per task)."""

    def __init__(self, trees: Sequence[Tree]):
        feat, thr, left, right, value, roots = [], [], [], [], [], []
        depth = 0
        base = 0
        for t in trees:
            n, leaves = t.split_feature.size, t.leaf_value.size
            leaf0 = base + n                         # the tree's leaves follow its internal nodes

            def glob(child):
                return np.where(child >= 0, base + child, leaf0 + ~child)
            feat += [t.split_feature, np.zeros(leaves, dtype=np.int64)]
            thr += [t.threshold, np.full(leaves, np.inf)]
            left += [glob(t.left), leaf0 + np.arange(leaves)]
            right += [glob(t.right), leaf0 + np.arange(leaves)]
            value += [np.zeros(n), t.leaf_value]
            roots.append(base if n else leaf0)
            depth = max(depth, _depth(t))
            base += n + leaves
        self.feat = np.concatenate(feat)
        self.thr = np.concatenate(thr)
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.value = np.concatenate(value)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.depth = depth

    def score(self, x: np.ndarray) -> np.ndarray:
        rows = np.arange(x.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (x.shape[0], self.roots.size))
        for _ in range(self.depth):
            go_left = x[rows, self.feat[node]] <= self.thr[node]
            node = np.where(go_left, self.left[node], self.right[node])
        # trees summed in order, as the training library does
        total = np.zeros(x.shape[0])
        for v in self.value[node].T:
            total += v
        return total


def _depth(t: Tree) -> int:
    """Internal nodes on the longest root-to-leaf path."""
    if t.split_feature.size == 0:
        return 0
    d = np.zeros(t.split_feature.size, dtype=np.int64)
    d[0] = 1
    for i in range(t.split_feature.size):          # children come after their parent
        for c in (t.left[i], t.right[i]):
            if c >= 0:
                d[c] = d[i] + 1
    return int(d.max())


def _tree_from_dict(d: Any, index: int, n_features: int) -> Tree:
    where = f"trees[{index}]"
    if not isinstance(d, dict):
        raise RankerFileError(f"{where}: expected an object, got {type(d).__name__}")
    keys = ("split_feature", "threshold", "left", "right", "leaf_value")
    missing = [k for k in keys if k not in d]
    if missing:
        raise RankerFileError(f"{where}: missing {missing}")
    try:
        sf = np.asarray(d["split_feature"], dtype=np.int64)
        th = np.asarray(d["threshold"], dtype=np.float64)
        left = np.asarray(d["left"], dtype=np.int64)
        right = np.asarray(d["right"], dtype=np.int64)
        leaves = np.asarray(d["leaf_value"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RankerFileError(f"{where}: node lists must be numbers ({e})") from None
    n = sf.size
    if any(a.ndim != 1 for a in (sf, th, left, right, leaves)):
        raise RankerFileError(f"{where}: node lists must be flat lists")
    if not (th.size == left.size == right.size == n):
        raise RankerFileError(f"{where}: split_feature, threshold, left, right differ in length "
                              f"({n}, {th.size}, {left.size}, {right.size})")
    if leaves.size != n + 1:
        raise RankerFileError(f"{where}: a binary tree with {n} internal nodes has {n + 1} leaves, "
                              f"got {leaves.size} leaf values")
    if n and (sf.min() < 0 or sf.max() >= n_features):
        raise RankerFileError(f"{where}: split_feature outside 0..{n_features - 1}")
    if not (np.all(np.isfinite(th)) and np.all(np.isfinite(leaves))):
        raise RankerFileError(f"{where}: non-finite threshold or leaf value")
    if n == 0:
        return Tree(sf, th, left, right, leaves)
    children = np.concatenate([left, right])
    internal = children[children >= 0]
    leaf_ids = ~children[children < 0]
    # every node but the root is the child of exactly one node, every leaf too,
    # and a child's index is larger than its parent's (no cycle)
    if (internal.size != n - 1 or leaf_ids.size != n + 1 or np.any(internal >= n)
            or np.unique(internal).size != internal.size or np.any(internal == 0)
            or not np.array_equal(np.sort(leaf_ids), np.arange(n + 1))):
        raise RankerFileError(f"{where}: children do not form one binary tree over {n} nodes and {n + 1} leaves")
    parent_ok = all(c > i for i in range(n) for c in (left[i], right[i]) if c >= 0)
    if not parent_ok:
        raise RankerFileError(f"{where}: a child index is not larger than its parent's (nodes must be in "
                              "pre-order or breadth-first order)")
    return Tree(sf, th, left, right, leaves)


def ranker_from_dict(d: Any) -> Ranker:
    if not isinstance(d, dict):
        raise RankerFileError(f"expected a JSON object, got {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise RankerFileError(f"format: expected {FORMAT!r}, got {d.get('format')!r}")
    if d.get("version") != VERSION:
        raise RankerFileError(f"version: this autoconfig reads version {VERSION}, got {d.get('version')!r}")
    feats = d.get("features")
    if not isinstance(feats, list) or not feats or not all(isinstance(f, str) for f in feats):
        raise RankerFileError("features: expected a non-empty list of names")
    trees = d.get("trees")
    if not isinstance(trees, list) or not trees:
        raise RankerFileError("trees: expected a non-empty list")
    meta = d.get("metadata", {})
    if not isinstance(meta, dict):
        raise RankerFileError("metadata: expected an object")
    return Ranker(feats, [_tree_from_dict(t, i, len(feats)) for i, t in enumerate(trees)], meta)


def load_ranker(path: Union[str, Path]) -> Ranker:
    """Read and check a ranking-model file; RankerFileError names the file and what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        d = json.loads(text)
    except FileNotFoundError:
        raise RankerFileError(f"{path}: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RankerFileError(f"{path}: not a readable (gzip) JSON ranking model: {e}") from None
    try:
        return ranker_from_dict(d)
    except RankerFileError as e:
        raise RankerFileError(f"{path}: {e}") from None


def require_features(ranker: Ranker, names: Sequence[str]) -> None:
    """The model must read the feature columns this autoconfig computes, in order."""
    if list(ranker.features) != list(names):
        extra = [f for f in ranker.features if f not in names]
        missing = [f for f in names if f not in ranker.features]
        raise RankerFileError(f"features: the model was trained on other features (unknown to this version: "
                              f"{extra[:5]}, not in the model: {missing[:5]}); retrain it with "
                              "python -m autoconfig.tuning.train")
