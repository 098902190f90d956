"""LightGBM booster -> the numpy ranking model of tuning/ranker.py.

Only the training script imports this (LightGBM is the optional extra
`autoconfig[tuning]`); the shipped model is read back by ranker.py alone.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from .ranker import Ranker, Tree


def _tree(structure: Dict[str, Any], index: int) -> Tree:
    """Number a LightGBM tree's internal nodes in pre-order (every child after
    its parent) and its leaves in visiting order."""
    sf: List[int] = []
    th: List[float] = []
    left: List[int] = []
    right: List[int] = []
    leaves: List[float] = []

    def visit(node: Dict[str, Any]) -> int:
        if "leaf_value" in node:
            leaves.append(float(node["leaf_value"]))
            return ~(len(leaves) - 1)
        if node.get("decision_type") != "<=":
            raise ValueError(f"tree {index}: decision type {node.get('decision_type')!r} (categorical split?) "
                             "is not supported: train with numeric features only")
        if node.get("missing_type") not in ("None", None):
            raise ValueError(f"tree {index}: missing-value handling {node['missing_type']!r} is not supported "
                             "(the features are always finite: train with use_missing=False)")
        me = len(sf)
        sf.append(int(node["split_feature"]))
        th.append(float(node["threshold"]))
        left.append(0)
        right.append(0)
        left[me] = visit(node["left_child"])
        right[me] = visit(node["right_child"])
        return me

    visit(structure)
    return Tree(np.asarray(sf, dtype=np.int64), np.asarray(th, dtype=np.float64), np.asarray(left, dtype=np.int64),
                np.asarray(right, dtype=np.int64), np.asarray(leaves, dtype=np.float64))


def ranker_from_lightgbm(booster, features: Sequence[str], metadata: Dict[str, Any] = None) -> Ranker:
    """The booster's trees as a Ranker over `features` (its columns, in order)."""
    d = booster.dump_model()
    if d.get("num_tree_per_iteration", 1) != 1:
        raise ValueError("a ranking booster has one tree per iteration")
    if d.get("max_feature_idx", len(features) - 1) != len(features) - 1:
        raise ValueError(f"the booster reads {d['max_feature_idx'] + 1} features, {len(features)} names given")
    trees = [_tree(t["tree_structure"], t["tree_index"]) for t in d["tree_info"]]
    return Ranker(list(features), trees, dict(metadata or {}))
