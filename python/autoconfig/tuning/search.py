"""Empirical search: the AutoTVM / ATLAS-style baseline, seeded by the model.

For each task, within `budget` measurements:
  1. the first round measures the analytical model's top-ranked configs
     (model_ranked: the model's choice first, then the next candidates it
     predicts fastest, each with the model's own blocking / schedule);
  2. every later round measures unmeasured neighbours of the best configs so
     far (a local, evolutionary search: neighbours differ in one knob, the
     register tile counting as one; when the best configs' neighbourhoods are
     used up, two knobs), the best parent first, ties broken by a seeded
     random order, until the budget is spent or no unmeasured neighbour is
     left.
Rounds of all tasks are measured together (one compiled batch serves several
tasks). Every measurement goes into the tuning log when one is given.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..models import conv as conv_model
from ..models import gemm as gemm_model
from ..models.machine import Machine
from ..profile import HostProfile
from .log import TuningLog
from .measure import measure as measure_pairs
from .space import (Config, Task, _gemm_model_blocking, _gemm_tiles, analytical_config, isa_name, profile_for_isa,
                    space)

MeasureFn = Callable[[Sequence[Tuple[Task, Config]], HostProfile], List[float]]


@dataclass
class SearchResult:
    task: Task
    best: Optional[Config] = None
    best_seconds: float = math.inf
    history: List[Tuple[Config, float]] = field(default_factory=list)   # in measurement order


def _tile_key(c: Config) -> Tuple[Tuple[str, object], ...]:
    """Knobs with the register tile (mr, nr) merged into one, for distances."""
    k = c.as_dict()
    if "mr" in k:
        k["tile"] = (k.pop("mr"), k.pop("nr"))
    return tuple(sorted(k.items()))


def _keyed_distance(ka: Dict[str, object], kb: Dict[str, object]) -> int:
    return sum(1 for n in ka.keys() | kb.keys() if ka.get(n) != kb.get(n))


def distance(a: Config, b: Config) -> int:
    """How many knobs differ (the register tile counting as one; a knob one has and the other lacks, too)."""
    return _keyed_distance(dict(_tile_key(a)), dict(_tile_key(b)))


def model_ranked(task: Task, profile: HostProfile) -> List[Config]:
    """The space's configs the analytical model estimates, fastest first: the
    model's choice, then per GEMM (tile, loop order) / conv candidate the
    config with the model's own blocking or schedule."""
    first = analytical_config(task, profile)
    sp = set(space(task, profile))
    scored: List[Tuple[float, Config]] = []
    if task.op == "gemm" and task.shape.M > 1:
        m = Machine(profile)
        M, N, K = task.shape.M, task.shape.N, task.shape.K
        for t in _gemm_tiles(m):
            for order in gemm_model.LOOP_ORDERS:
                kc, mc, nc = _gemm_model_blocking(m, t, order, M, N)
                c = Config.make("gemm", mr=t.mr, nr=t.nr, kc=kc, mc=mc, nc=nc, loop_order=order,
                                grid=first.get("grid"))
                if c in sp:
                    scored.append((gemm_model.estimate(m, t, M, N, K, task.threads, order).seconds, c))
    elif task.op == "conv2d":
        m = conv_model.kernel_machine(profile)
        for cand in conv_model.candidates(profile, task.shape, task.threads, tolerance=task.tolerance):
            if cand.rejected:
                continue
            alg = cand.name.split()[0]
            if alg != "direct":
                scored.append((cand.predicted_s, Config.make("conv2d", algorithm=alg)))
                continue
            tile, plain = conv_model.parse_direct_name(cand.name)
            s = conv_model.direct_schedule(m, task.shape, tile, plain, task.threads)
            c = Config.make("conv2d", algorithm="direct", tile=f"{tile[0]}x{tile[1]}", input="nchw" if plain else "blocked",
                            order="groups-inner" if s.groups_inner else "groups-outer", c_blocks=s.cblocks)
            if c in sp:
                scored.append((cand.predicted_s, c))
    ranked = [c for _, c in sorted(scored, key=lambda sc: (sc[0], sc[1].name()))]
    return [first] + [c for c in ranked if c != first]


class _TaskSearch:
    """One task's state: its space, what was measured, what comes next."""

    def __init__(self, task: Task, profile: HostProfile, budget: int, seed: int):
        self.result = SearchResult(task)
        self.space = space(task, profile)
        names = sorted({n for c in self.space for n, _ in _tile_key(c)})
        # each config's knob values in one order: a distance is a zip of two tuples
        self.keys = {c: tuple(dict(_tile_key(c)).get(n) for n in names) for c in self.space}
        self.seeds = model_ranked(task, profile)
        self.budget = min(budget, len(self.space))
        self.measured: Dict[Config, float] = {}
        self.rng = random.Random(f"{seed}:{task.key()}")

    def left(self) -> int:
        return self.budget - len(self.measured)

    def propose(self, n: int) -> List[Config]:
        n = min(n, self.left())
        if n <= 0:
            return []
        if not self.measured:
            return self.seeds[:n]
        parents = sorted(self.measured, key=lambda c: (self.measured[c], c.name()))
        out: List[Config] = []
        for reach in (1, 2):
            for p in parents:
                pk = self.keys[p]
                taken = set(out)
                near = [c for c in self.space if c not in self.measured and c not in taken
                        and sum(a != b for a, b in zip(pk, self.keys[c])) <= reach]
                self.rng.shuffle(near)
                out += near[:max(0, n - len(out))]
                if len(out) >= n:
                    return out
        # neighbourhoods used up: the rest of the model's ranking, then random configs
        out += [c for c in self.seeds if c not in self.measured and c not in out][:n - len(out)]
        if len(out) < n:
            pool = [c for c in self.space if c not in self.measured and c not in out]
            out += self.rng.sample(pool, k=min(len(pool), n - len(out)))
        return out

    def record(self, config: Config, seconds: float) -> None:
        self.measured[config] = seconds
        self.result.history.append((config, seconds))
        if seconds < self.result.best_seconds:
            self.result.best, self.result.best_seconds = config, seconds


def search_many(tasks: Sequence[Task], profile: HostProfile, budget: int, *, isa: Optional[str] = None,
                log: Optional[TuningLog] = None, repeats: int = 5, first_round: Optional[int] = None,
                round_size: Optional[int] = None, seed: int = 0,
                measure_fn: Optional[MeasureFn] = None, progress: Optional[Callable[[str], None]] = None
                ) -> List[SearchResult]:
    """Search every task within `budget` measurements each (see the module
    docstring). measure_fn(pairs, profile) -> seconds replaces the real
    measurement (tests); by default measure.measure at `repeats`."""
    if budget < 1:
        raise ValueError(f"budget: expected a positive number of measurements per task, got {budget!r}")
    prof = profile_for_isa(profile, isa)
    if measure_fn is None:
        def measure_fn(pairs, p):
            return measure_pairs(pairs, p, repeats=repeats)
    first_round = first_round or max(2, min(8, math.ceil(budget / 4)))
    round_size = round_size or max(2, min(16, math.ceil(budget / 8)))
    states = [_TaskSearch(t, prof, budget, seed) for t in tasks]
    n = first_round
    rnd = 0
    while True:
        pairs: List[Tuple[_TaskSearch, Config]] = [(s, c) for s in states for c in s.propose(n)]
        if not pairs:
            break
        seconds = measure_fn([(s.result.task, c) for s, c in pairs], prof)
        for (s, c), sec in zip(pairs, seconds):
            s.record(c, sec)
            if log is not None:
                log.add(s.result.task, c, sec, repeats, prof, isa_name(prof))
        rnd += 1
        if progress:
            progress(f"round {rnd}: {len(pairs)} measurements; best so far: "
                     + "; ".join(f"{s.result.task.label()} {s.result.best_seconds * 1e6:.1f} us" for s in states))
        n = round_size
    return [s.result for s in states]


def search(task: Task, profile: HostProfile, budget: int, **kw) -> SearchResult:
    return search_many([task], profile, budget, **kw)[0]
