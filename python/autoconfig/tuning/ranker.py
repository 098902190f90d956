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
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

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


MAX_LEAVES = 64        # leaves per tree the evaluator's bit masks hold
ROW_CHUNK = 1024       # rows scored at once: bounds the (tests, rows) and (trees, rows) scratch buffers
FEW_ROWS = 64          # up to this many rows, all tests are one gather and compare (a loop per feature costs more)


class _FlatForest:
    """All trees scored at once with the QuickScorer idea (Lucchese et al.,
    SIGIR 2015): number each tree's leaves left to right; a node whose test
    sends a row right rules out every leaf of its left subtree; the leaf the
    row reaches is the leftmost leaf no false test ruled out. So every node's
    test is one column comparison over all rows, the ruled-out leaves are
    AND-ed as bit masks per tree (8 to 64 bits), and the exit leaf is the
    lowest set bit: a few whole-array numpy operations instead of a walk per
    tree (the predictor scores up to ~2000 GEMM configs per task).

    Layout, for speed: the nodes' tests are computed grouped by the feature
    they read (one comparison of a contiguous feature row against that
    feature's thresholds), and AND-ed per tree slot: node slot d of every tree
    is one row gather, trees with fewer nodes padded with a test that never
    rules anything out. A feature with one value in every row (the machine's
    and the task's columns, the other op's knobs: about half the tests of a
    GEMM space) is tested once: its slots read a shared all-true or
    all-false row. Every row still reaches the same leaves, and the trees are
    summed in the same order, so scores are exact.

    The large intermediates live in scratch buffers kept per thread and
    reused from call to call: a fresh multi-megabyte numpy array is a fresh
    mmap whose pages fault in on first touch, which cost ~2/3 of the time
    (measured on the default GEMM tasks, Zen 3: 0.18 s against 0.06 s)."""

    def __init__(self, trees: Sequence[Tree]):
        width = max(t.leaf_value.size for t in trees)
        depth = max(max(1, t.split_feature.size) for t in trees)      # node slots per tree
        n_trees = len(trees)
        # the narrowest unsigned type whose bits hold the widest tree's leaves
        self.dtype = next(np.dtype(d) for d in ("u1", "u2", "u4", "u8") if np.dtype(d).itemsize * 8 >= width)
        ones = self.dtype.type(np.iinfo(self.dtype).max)
        feat = np.zeros((depth, n_trees), dtype=np.int64)
        thr = np.full((depth, n_trees), np.inf)                      # padding: x > inf is never true
        ruled_out = np.zeros((depth, n_trees), dtype=self.dtype)      # leaves a true "go right" rules out
        self.values = np.zeros((n_trees, width))                      # leaf values, left-to-right order
        for j, t in enumerate(trees):
            if t.split_feature.size == 0:
                self.values[j, 0] = t.leaf_value[0]
                continue
            position: Dict[int, int] = {}       # leaf id -> left-to-right position
            left_leaves: Dict[int, List[int]] = {}

            def walk(child: int) -> List[int]:
                if child < 0:
                    position[~child] = len(position)
                    return [position[~child]]
                lows = walk(int(t.left[child]))
                left_leaves[child] = lows
                return lows + walk(int(t.right[child]))
            walk(0)
            for node in range(t.split_feature.size):
                feat[node, j] = int(t.split_feature[node])
                thr[node, j] = float(t.threshold[node])
                ruled_out[node, j] = self.dtype.type(sum(1 << pos for pos in left_leaves[node]))
            for leaf, pos in position.items():
                self.values[j, pos] = t.leaf_value[leaf]
        self.ones = ones
        self.ruled_out = ruled_out[:, :, None]                       # (slots, trees, 1)
        # real tests sorted by feature; slot (d, j) reads test row slot_row[d, j]
        # (padding slots read the last row, always False)
        real = np.isfinite(thr.ravel())
        by_feature = np.argsort(np.where(real, feat.ravel(), np.iinfo(np.int64).max), kind="stable")[:real.sum()]
        n_tests = by_feature.size
        row = np.full(depth * n_trees, n_tests, dtype=np.int64)        # n_tests: the all-false row
        row[by_feature] = np.arange(n_tests)
        self.slot_row = row.reshape(depth, n_trees)
        sorted_feat = feat.ravel()[by_feature]
        cuts = np.flatnonzero(np.diff(sorted_feat)) + 1
        self.segments = [(int(sorted_feat[a]), int(a), int(b), thr.ravel()[by_feature[a:b]][:, None])
                         for a, b in zip(np.r_[0, cuts], np.r_[cuts, n_tests]) if b > a]
        self.n_tests = n_tests
        self.test_feature = feat.ravel()[by_feature]
        self.test_threshold = thr.ravel()[by_feature]
        self.n_trees = n_trees
        if self.dtype.itemsize == 1:
            # an 8-bit alive mask -> the value of its lowest set bit's leaf, per tree
            low_bit = np.array([min((v & -v).bit_length() - 1, width - 1) if v else 0 for v in range(256)])
            self.mask_values = self.values[:, low_bit].ravel()                   # (trees x 256)
            self.mask_offset = (np.arange(n_trees) * 256)[:, None]
        self._local = threading.local()

    def score(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self._score(x[i:i + ROW_CHUNK]) for i in range(0, max(1, x.shape[0]), ROW_CHUNK)])

    def _buffer(self, name: str, shape: Tuple[int, ...], dtype) -> np.ndarray:
        """A C-contiguous scratch array of `shape`: a prefix of this thread's
        buffer `name`, grown when too small (see the class docstring)."""
        size = int(np.prod(shape))
        buf = getattr(self._local, name, None)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, 1), dtype=dtype)
            setattr(self._local, name, buf)
        return buf[:size].reshape(shape)

    def _score(self, x: np.ndarray) -> np.ndarray:
        rows = x.shape[0]
        if rows == 0:
            return np.zeros(0)
        n, trees = self.n_tests, self.n_trees
        go_right = self._buffer("go_right", (n + 2, rows), bool)   # the tests, an all-false and an all-true row
        go_right[n], go_right[n + 1] = False, True
        slot_row = self.slot_row
        if rows <= FEW_ROWS:
            go_right[:n] = (x[:, self.test_feature] > self.test_threshold).T
        else:
            same = x.min(axis=0) == x.max(axis=0)               # columns with one value in every row
            fixed = same[self.test_feature]
            to_row = np.arange(n + 2)
            to_row[:n][fixed] = n + (x[0, self.test_feature[fixed]] > self.test_threshold[fixed])
            slot_row = to_row[slot_row]
            column = self._buffer("column", (rows,), np.float64)
            for f, a, b, thr in self.segments:
                if not same[f]:
                    np.copyto(column, x[:, f])
                    np.greater(column, thr, out=go_right[a:b])
        alive = self._buffer("alive", (trees, rows), self.dtype)
        alive[...] = self.ones
        went = self._buffer("went", (trees, rows), bool)
        cleared = self._buffer("cleared", (trees, rows), self.dtype)
        for d in range(slot_row.shape[0]):
            np.take(go_right, slot_row[d], axis=0, out=went, mode="clip")       # indices are in range
            np.multiply(went, self.ruled_out[d], out=cleared)
            np.bitwise_xor(cleared, self.ones, out=cleared)
            np.bitwise_and(alive, cleared, out=alive)
        picked = self._buffer("picked", (trees, rows), np.float64)
        if self.dtype.itemsize == 1:
            index = self._buffer("index", (trees, rows), np.intp)
            np.add(alive, self.mask_offset, out=index)
            np.take(self.mask_values, index, out=picked, mode="clip")
        else:
            lowest = alive & (~alive + self.dtype.type(1))
            leaf = np.log2(lowest.astype(np.float64)).astype(np.intp)           # exact: a power of two
            picked[...] = self.values[np.arange(trees)[:, None], leaf]
        # trees summed in order, as the training library does
        total = np.zeros(rows)
        for v in picked:
            total += v
        return total


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
    if leaves.size > MAX_LEAVES:
        raise RankerFileError(f"{where}: {leaves.size} leaves; this evaluator takes trees of at most {MAX_LEAVES}")
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
