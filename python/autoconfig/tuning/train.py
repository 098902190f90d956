"""Offline training of the predictor: dataset -> ranking model file.

    python -m autoconfig.tuning.train [--dataset D] [--out python/autoconfig/tuning/predictor.json.gz]
                                      [--families resnet,bert,...] [--isas x86-64-v3,...] [--machines zen4,...]

Needs the optional extra `autoconfig[tuning]` (LightGBM); the model it writes
is read at build time by tuning/ranker.py with numpy alone.

Why LightGBM lambdarank. What a selector needs is the order of a task's
configurations, not their absolute times (a 3x3 conv and a BERT FFN differ by
1000x in time; the ranking within each differs in its own ways), so the
objective is a ranking one over groups = (task, ISA): lambdarank optimises
NDCG directly, weighting swaps near the top of the list, which is where a
selector's choice comes from (pairwise objectives weight every swap alike).
Gradient-boosted trees suit the features: a mix of counts, ratios, flags and
the analytical model's terms on very different scales, with thresholds
(a tile that no longer fits, a block past a cache) rather than smooth
effects, and a few hundred groups to learn from (hence small trees: 15 leaves,
depth <= 6, at least 20 rows a leaf, 300 rounds at rate 0.05; on the 435-group
Zen 4 dataset, leave-one-family-out, 7 leaves x 150 rounds ranked 0.964 of the
oracle, 15 x 300 0.967, 31 x 500 0.969 at 3x the evaluation cost, and
xendcg or a pointwise regression of log(t / t_best) no better; on the 918-group
Zen 4 + Zen 5 dataset, the Zen 5 groups with every pick measured: 15 x 300 0.953,
31 leaves at depth 8 x 500 rounds 0.962 but 1.35 s to configure the default
specs (bar: 1 s; 15 x 300: 0.5 s), x 250 at rate 0.1 0.958 in 0.8 s); a tree ensemble is also a
dozen lines to evaluate in numpy. XGBoost's rank:ndcg would do as well;
LightGBM is smaller to install. On the dataset after the x86-64-v2 kernels
were fixed and re-measured (765 groups; leave-one-family-out on the picks the
dataset has times for, seeds 7 / 8 / 9), the features without knob_a_in_place
and model_rank ranked 0.971 / 0.968 / 0.970 of the oracle, with them 0.972 /
0.970 / 0.971; the model's per-algorithm margin (0.972), the direct kernel's
bytes beyond L2 per flop (0.972), label power 2 or 6 (0.969 / 0.971), 500
rounds (0.971) and a tighter guard (1.5-3x) changed nothing beyond that noise;
nor did, on that dataset, separate GEMM and conv models (0.968), 7 or 31
leaves (0.967 / 0.968-0.970), a bag of three seeds (0.969-0.970), truncation
4 or 64 (0.969 / 0.970), min leaf 5 or 50, feature fraction 0.5, or ranking
only the model's top 32-512 configs (0.969-0.971): what held the figure down
was the timing noise between the dataset's batches, which re-timing the
compared configs side by side shows (benchmarks/evaluate_predictor.py
--same-batch), not the model.

Labels: per group, grade = round(GRADES * (t_best / t) ** LABEL_POWER): 30
for the best measured config, ~26 at 3% slower, ~20 at 10% slower, 0 beyond
~2x. The power concentrates the grades where selectors differ (within 10%
of the best); gains are linear in the grade.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..profile import HostProfile
from .dataset import DEFAULT_PATH as DEFAULT_DATASET
from .dataset import Dataset, load_dataset
from .features import FEATURES, feature_matrix
from .ranker import Ranker

DEFAULT_MODEL = Path(__file__).with_name("predictor.json.gz")
GRADES = 30
LABEL_POWER = 4.0
PARAMS = {
    "objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [1, 3, 8],
    "lambdarank_truncation_level": 16, "label_gain": list(range(GRADES + 1)),
    "num_leaves": 15, "max_depth": 6, "learning_rate": 0.05, "min_data_in_leaf": 20,
    "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0,
    "use_missing": False, "deterministic": True, "force_row_wise": True, "num_threads": 1,
    "seed": 7, "verbose": -1,
}
ROUNDS = 300


@dataclass
class Group:
    """One (task, machine, ISA) of the dataset: its measured configs, their seconds and
    their feature rows (computed over the whole space, so the model's
    'vs best' column is relative to the best prediction of the space)."""
    task: object
    machine: str
    isa: str
    network: str
    family: str
    profile: HostProfile
    configs: List
    seconds: np.ndarray
    x: np.ndarray

    @property
    def best(self) -> float:
        return float(self.seconds.min())


def groups_of(ds: Dataset, families: Optional[Sequence[str]] = None,
              isas: Optional[Sequence[str]] = None, machines: Optional[Sequence[str]] = None) -> List[Group]:
    """The dataset's groups (of the given families, ISAs and machines only,
    when given), each with the profile of its own machine and ISA: the
    features see the CPU the times were measured on."""
    from .space import Config, Task, space
    profiles = {(name, isa): HostProfile.from_dict(p)
                for name, m in ds.machines.items() for isa, p in m.profiles.items()}
    out = []
    for (_, machine, isa), recs in sorted(ds.groups().items()):
        r0 = recs[0]
        if ((families and r0.family not in families) or (isas and isa not in isas)
                or (machines and machine not in machines)):
            continue
        profile = profiles[(machine, isa)]
        task = Task.from_dict(r0.task)
        best: Dict = {}
        for r in recs:                     # a config measured twice keeps its best time
            c = Config.from_dict(r.config)
            best[c] = min(best.get(c, float("inf")), r.seconds)
        full = space(task, profile)
        where = {c: i for i, c in enumerate(full)}
        configs = [c for c in best if c in where]
        if not configs:
            continue
        x = feature_matrix(task, full, profile)[[where[c] for c in configs]]
        out.append(Group(task, machine, isa, r0.network, r0.family, profile, configs,
                         np.array([best[c] for c in configs]), x))
    return out


def grades(seconds: np.ndarray) -> np.ndarray:
    return np.rint(GRADES * (seconds.min() / seconds) ** LABEL_POWER).astype(int)


def train(groups: Sequence[Group], rounds: int = ROUNDS, params: Optional[dict] = None,
          metadata: Optional[dict] = None) -> Ranker:
    """A LightGBM lambdarank model over the groups, as a numpy Ranker (and
    checked to score the training rows as LightGBM does)."""
    try:
        import lightgbm as lgb
    except ImportError:
        raise SystemExit("training needs LightGBM: pip install 'autoconfig[tuning]'") from None
    from .lightgbm_export import ranker_from_lightgbm
    groups = [g for g in groups if len(g.configs) > 1]       # one config ranks nothing
    if not groups:
        raise ValueError("groups: no (task, ISA) group with two or more measured configs")
    x = np.concatenate([g.x for g in groups])
    y = np.concatenate([grades(g.seconds) for g in groups])
    booster = lgb.train(dict(PARAMS, **(params or {})), lgb.Dataset(x, y, group=[len(g.configs) for g in groups],
                                                                   feature_name=list(FEATURES)),
                        num_boost_round=rounds)
    meta = {"trainer": f"lightgbm {lgb.__version__} lambdarank", "rounds": rounds, "groups": len(groups),
            "rows": int(x.shape[0]), "label": f"round({GRADES} * (t_best / t) ** {LABEL_POWER:g})",
            "params": dict(PARAMS, **(params or {}))}
    meta.update(metadata or {})
    ranker = ranker_from_lightgbm(booster, FEATURES, meta)
    gap = np.max(np.abs(ranker.score(x) - booster.predict(x, raw_score=True)))
    if gap > 1e-9:
        raise AssertionError(f"the numpy evaluator differs from LightGBM by {gap:g} on the training rows")
    return ranker


def main(argv: Optional[Iterable[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoconfig.tuning.train", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--families", default="", help="train on these families only (comma-separated)")
    ap.add_argument("--isas", default="", help="train on these ISA variants only (comma-separated)")
    ap.add_argument("--machines", default="", help="train on these machines of the dataset only (comma-separated)")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    a = ap.parse_args(argv)
    ds = load_dataset(a.dataset)
    fams = [f for f in a.families.split(",") if f] or None
    isas = [i for i in a.isas.split(",") if i] or None
    t0 = time.time()
    machines = [m for m in a.machines.split(",") if m] or None
    groups = groups_of(ds, fams, isas, machines)
    used = sorted({g.machine for g in groups})
    ranker = train(groups, a.rounds, metadata={
        "dataset": a.dataset.name, "machines": {m: ds.machines[m].metadata.get("cpu") for m in used},
        "families": sorted({g.family for g in groups}), "isas": sorted({g.isa for g in groups}),
        "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    ranker.save(a.out)
    print(f"{a.out}: {len(ranker.trees)} trees over {len(FEATURES)} features, {len(groups)} groups, "
          f"{a.out.stat().st_size / 1024:.0f} KiB, {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
