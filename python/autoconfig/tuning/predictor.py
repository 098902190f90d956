"""The "predictor" selectors: the offline-trained ranking model picks the config.

  predictor     zero measurements: every config of space(task, profile) gets
                the model's score (tuning/features.py -> tuning/ranker.py),
                the highest wins.
  predictor:K   One-Shot Tuner's mode: the model's top K are measured
                (tuning/measure.py) on this machine and the fastest wins.
                When measuring is impossible (a cross-build's ISA this CPU
                lacks, no compiler), it falls back to the top-1 with a note.

The model ranks only the configs whose analytical estimate is within
MODEL_GUARD (4x) of the model's best estimate for the task: the trees learn
the model's residual near the good configs and have seen few far ones, so
far outside them they extrapolate (an algorithm absent from training, such
as a depthwise layer's im2col-gemm at 37x the depthwise time, could
otherwise rank first). In the dataset the fastest config of every (task,
ISA) lies within 2.7x of the model's best estimate.

The model file ships in the package (predictor.json.gz, trained by
python -m autoconfig.tuning.train on the dataset of tuning/dataset.py);
AUTOCONFIG_PREDICTOR=/path/model.json.gz replaces it. Only numpy is needed.
Every Plan's reasons name the model's score and the config's rank.

Time to configure (issue 16's bar: all default spec tasks in < 1 s): the
features of a task's whole space are a few numpy operations per column
(features.space_features), the forest scores them all at once
(ranker._FlatForest), and only the pick is planned (space.plan_for); the
ranked configs are made as Config objects only when indexed (Ranked).
benchmarks/configure_time.py times it; tests/build/test_predictor_picks.py
holds the picks to the ones frozen from the per-config implementation.
"""
from __future__ import annotations

import os
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

try:
    import numpy as np
except ImportError as e:     # the generator's Python (C++ engines) may lack it: say what to install
    raise ImportError(f"the predictor selector needs numpy in the Python that runs the generator ({e}): "
                      "pip install numpy") from e

from ..plan import Plan
from ..profile import HostProfile
from .features import COLUMN, FEATURES, space_features
from .ranker import Ranker, load_ranker, require_features
from .selectors import SelectorError, register
from .space import Config, Task, isa_name, plan_for

SHIPPED = Path(__file__).with_name("predictor.json.gz")
MODEL_GUARD = 4.0       # ranked: configs the analytical model estimates within this factor of its best
_LOADED: Dict[str, Ranker] = {}


def model_path() -> Path:
    return Path(os.environ.get("AUTOCONFIG_PREDICTOR") or SHIPPED)


def load_model(path: Optional[Path] = None) -> Ranker:
    """The ranking model (cached per path), checked to read this version's features."""
    path = Path(path or model_path())
    if path.is_absolute() and str(path) in _LOADED:     # resolving costs a stat per folder, per task
        return _LOADED[str(path)]
    key = str(path.resolve())
    if key not in _LOADED:
        ranker = load_ranker(path)
        require_features(ranker, FEATURES)
        _LOADED[key] = ranker
    if path.is_absolute():
        _LOADED[str(path)] = _LOADED[key]
    return _LOADED[key]


class Ranked(SequenceABC):
    """Configs in the predictor's order, made on demand: item i is
    configs[index[i]] (a GEMM space holds ~2,000 configs; a selector plans one
    and predictor:K measures K). Equal to any sequence of the same configs."""

    def __init__(self, configs: Sequence[Config], index: np.ndarray):
        self.configs, self.index = configs, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.configs[int(j)] for j in self.index[i]]
        return self.configs[int(self.index[i])]

    def __eq__(self, other) -> bool:
        return isinstance(other, SequenceABC) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None


def rank(task: Task, profile: HostProfile, model: Optional[Ranker] = None) -> Tuple[Ranked, np.ndarray]:
    """The task's configs within MODEL_GUARD of the model's best estimate,
    best predicted first, and their scores (stable: equal scores keep the
    space's order)."""
    model = model or load_model()
    x, configs = space_features(task, profile)
    keep = np.nonzero(x[:, COLUMN["model_vs_best"]] <= np.log2(MODEL_GUARD))[0]
    scores = model.score(x[keep])
    order = np.argsort(-scores, kind="stable")
    return Ranked(configs, keep[order]), scores[order]


def _why(score: float, r: int, n: int) -> str:
    return (f"predictor: score {score:.3f}, rank {r} of {n} configs (offline-trained ranking model; "
            f"configs the analytical model puts within {MODEL_GUARD:g}x of its best)")


def predictor_plan(task: Task, profile: HostProfile, *, log=None, arg: Optional[str] = None) -> Plan:
    k = 0
    if arg is not None:
        try:
            k = int(arg)
        except ValueError:
            k = -1
        if k < 1:
            raise SelectorError(f"selector 'predictor:{arg}': K must be a positive integer (configs measured)")
    configs, scores = rank(task, profile)
    n = len(configs)
    if k <= 1:
        plan = plan_for(task, configs[0], profile, _why(float(scores[0]), 1, n))
        plan.notes.append(f"selector predictor: {configs[0].name()} ranked first of {n} by {model_path().name}")
        return plan
    top = configs[:k]
    try:
        from .measure import MeasureError, measure
        seconds = measure([(task, c) for c in top], profile)
    except (MeasureError, OSError) as e:
        plan = plan_for(task, configs[0], profile, _why(float(scores[0]), 1, n))
        plan.notes.append(f"selector predictor:{k}: measuring the top {len(top)} on this machine failed "
                          f"({str(e)[:200]}): the predictor's first choice, unmeasured")
        return plan
    best = int(np.argmin(seconds))
    why = (f"predictor:{k}: fastest of the predictor's top {len(top)} measured on this machine "
           f"({seconds[best] * 1e6:.1f} us); " + _why(float(scores[best]), best + 1, n))
    plan = plan_for(task, top[best], profile, why)
    plan.predicted_s = float(seconds[best])
    plan.predicted_terms = {"measured": float(seconds[best])}
    plan.notes.append(f"selector predictor:{k} on {isa_name(profile)}: measured " + ", ".join(
        f"#{i + 1} {c.name()} {s * 1e6:.1f} us" for i, (c, s) in enumerate(zip(top, seconds))))
    return plan


register("predictor", predictor_plan)
