"""`autoconfig tune` and `autoconfig compare-selectors`: the tuning stage's tools.

tune: the tasks of a spec folder or an ONNX model (its conv and GEMM layers,
through graph/layer_spec.py), each searched within --budget measurements
(tuning/search.py), every measurement written to the tuning log.

compare-selectors: per task, the measured time of the config each selector
picks (analytical, random, search at each budget, and the predictor and
predictor:K when that selector is registered), its time to configure, and
the oracle: the best time of an exhaustive measurement of the space when it
has at most --exhaustive-max configs, else of a search with --oracle-budget
measurements (the output says which), or of anything measured on the way
when faster. Measurements are shared through a cache (a config is measured
once); a selector's time to configure is its own planning time plus, for
each measurement it asked for, that measurement's share of its batch's wall
time (compile + check + timing), whether or not the cache already held it.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .profile import HostProfile
from .tuning.log import TuningLog
from .tuning.measure import measure
from .tuning.search import search_many
from .tuning.selectors import SelectorError, check_selector, select
from .tuning.space import Config, Task, isa_name, profile_for_isa, space, tasks_from_specs

DEFAULT_BUDGETS = (16, 64, 256)
PREDICTOR_K = 8


# --------------------------------------------------------------------------- tasks
def tasks_from_args(spec_dirs: Optional[Sequence[str]], model: Optional[str], profile: HostProfile,
                    threads: Optional[Sequence[int]] = None, input_shape=None, limit: Optional[int] = None,
                    match: Optional[str] = None) -> List[Task]:
    """The tasks of spec folders or of an ONNX model's conv/GEMM layers;
    threads: the thread counts to tune each at (default: the specs' own);
    match: keep tasks whose key contains it; limit: the first N."""
    from . import spec as spec_mod
    if bool(spec_dirs) == bool(model):
        raise ValueError("give exactly one of --spec DIR and --model MODEL.onnx")
    if model:
        from .graph.layer_spec import layer_spec_yaml
        from .graph.pipeline import compile_onnx
        plan = compile_onnx(model, profile, input_shape=input_shape, threads=max(threads) if threads else None)
        with tempfile.TemporaryDirectory(prefix="autoconfig-tune-") as tmp:
            (Path(tmp) / "model.yaml").write_text(layer_spec_yaml(plan.graph))
            specs = spec_mod.load_dirs([Path(tmp)])
    else:
        missing = [d for d in spec_dirs if not Path(d).is_dir()]
        if missing:
            raise ValueError(f"--spec: no such folder: {', '.join(missing)}")
        specs = spec_mod.load_dirs([Path(d) for d in spec_dirs])
    tasks = tasks_from_specs(specs, profile)
    if threads:
        by_key: Dict[str, Task] = {}
        for t in tasks:
            for n in threads:
                u = Task(t.op, t.shape, min(n, max(1, profile.cores)), t.activations, t.tolerance)
                by_key.setdefault(u.key(), u)
        tasks = list(by_key.values())
    if match:
        tasks = [t for t in tasks if match in t.key()]
    if limit is not None:
        tasks = tasks[:limit]
    if not tasks:
        raise ValueError("no conv2d or GEMM task to tune (check --spec/--model, --match and --limit)")
    return tasks


# --------------------------------------------------------------------------- tune
def tune(tasks: Sequence[Task], profile: HostProfile, budget: int, out: str, *, isa: Optional[str] = None,
         repeats: int = 5, append: bool = True, progress=print) -> TuningLog:
    log = TuningLog.load(out) if append and Path(out).exists() else TuningLog()
    results = search_many(tasks, profile, budget, isa=isa, log=log, repeats=repeats, progress=progress)
    log.save(out)
    prof = profile_for_isa(profile, isa)
    for r in results:
        a = select(r.task, prof, "analytical")
        progress(f"{r.task.label():<48} best {r.best_seconds * 1e6:10.1f} us  {r.best.name()}"
                 f"  ({len(r.history)} measured; analytical: {a.kernel})")
    return log


# --------------------------------------------------------------------------- compare
class CachedMeasure:
    """measure() with a cache: each config is measured once; every request is
    charged the wall-time share of the batch that measured it."""

    def __init__(self, profile: HostProfile, repeats: int, log: Optional[TuningLog] = None):
        self.profile, self.repeats, self.log = profile, repeats, log
        self.seconds: Dict[Tuple[str, Config], float] = {}
        self.cost: Dict[Tuple[str, Config], float] = {}

    def __call__(self, pairs: Sequence[Tuple[Task, Config]], profile: HostProfile) -> List[float]:
        todo, seen = [], set()
        for t, c in pairs:
            k = (t.key(), c)
            if k not in self.seconds and k not in seen:
                todo.append((t, c))
                seen.add(k)
        if todo:
            t0 = time.perf_counter()
            secs = measure(todo, self.profile, repeats=self.repeats)
            share = (time.perf_counter() - t0) / len(todo)
            for (t, c), s in zip(todo, secs):
                self.seconds[(t.key(), c)] = s
                self.cost[(t.key(), c)] = share
                if self.log is not None:
                    self.log.add(t, c, s, self.repeats, self.profile, isa_name(self.profile))
        return [self.seconds[(t.key(), c)] for t, c in pairs]

    def charged(self, pairs: Sequence[Tuple[Task, Config]]) -> float:
        return sum(self.cost.get((t.key(), c), 0.0) for t, c in pairs)

    def charged_since(self, before) -> float:
        """Wall time spent measuring the configs not in `before` (a set of cache keys)."""
        return sum(c for k, c in self.cost.items() if k not in before)

    def best(self, task: Task) -> float:
        return min((s for (k, _), s in self.seconds.items() if k == task.key()), default=math.inf)


@dataclass
class LayerResult:
    layer: str
    oracle_ms: float
    oracle: str
    selectors: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "oracle_ms": self.oracle_ms, "oracle": self.oracle, "selectors": self.selectors}


def _config_of(plan, task: Task, profile: HostProfile) -> Config:
    """The config a selector's plan compiles (its knobs read back from the plan's parameters)."""
    if task.op == "gemm":
        if plan.algorithm == "gemv-stream":
            return Config.make("gemm", path="gemv")
        grid = plan.params["grid"].value if "grid" in plan.params else None
        from .tuning.space import _grids
        if grid not in _grids(task.threads):
            grid = f"1x{task.threads}"
        return Config.make("gemm", mr=plan.value("mr"), nr=plan.value("nr"), kc=plan.value("kc"), mc=plan.value("mc"),
                           nc=plan.value("nc"), loop_order=plan.value("loop_order"), grid=grid)
    if plan.algorithm != "direct":
        return Config.make("conv2d", algorithm=plan.algorithm)
    return Config.make("conv2d", algorithm="direct", tile=plan.value("tile"), input=plan.value("input"),
                       order=plan.value("order"), c_blocks=plan.value("c_blocks"))


def selector_names(budgets: Sequence[int]) -> List[str]:
    """analytical, random, search:B per budget, and predictor / predictor:K when registered."""
    names = ["analytical", "random"] + [f"search:{b}" for b in budgets]
    for extra in ("predictor", f"predictor:{PREDICTOR_K}"):
        try:
            check_selector(extra)
            names.append(extra)
        except SelectorError:
            pass
    return names


def compare(tasks: Sequence[Task], profile: HostProfile, *, budgets: Sequence[int] = DEFAULT_BUDGETS,
            repeats: int = 5, exhaustive_max: int = 64, oracle_budget: int = 512, isa: Optional[str] = None,
            log: Optional[TuningLog] = None, progress=print) -> List[LayerResult]:
    prof = profile_for_isa(profile, isa)
    meas = CachedMeasure(prof, repeats, log)
    out: List[LayerResult] = []
    names = selector_names(budgets)
    for task in tasks:
        configs = space(task, prof)
        if len(configs) <= exhaustive_max:
            meas([(task, c) for c in configs], prof)
            oracle = f"exhaustive ({len(configs)} configs)"
        else:
            search_many([task], prof, oracle_budget, measure_fn=meas)
            oracle = f"search of {min(oracle_budget, len(configs))} of {len(configs)} configs"
        res = LayerResult(task.label(), math.nan, oracle)
        for name in names:
            base, _, arg = name.partition(":")
            if base == "search":
                t0 = time.perf_counter()
                before = set(meas.seconds)
                r = search_many([task], prof, int(arg), measure_fn=meas)[0]
                planning = time.perf_counter() - t0 - meas.charged_since(before)
                configure_s = planning + meas.charged([(task, c) for c, _ in r.history])
                ms = r.best_seconds * 1e3
            else:
                t0 = time.perf_counter()
                plan = select(task, prof, name)
                configure_s = time.perf_counter() - t0
                ms = meas([(task, _config_of(plan, task, prof))], prof)[0] * 1e3
            res.selectors[name] = {"ms": ms, "configure_s": configure_s}
        res.oracle_ms = meas.best(task) * 1e3
        out.append(res)
        if progress:
            progress(f"{res.layer}: oracle {res.oracle_ms:.4f} ms ({oracle}); "
                     + ", ".join(f"{n} {v['ms']:.4f}" for n, v in res.selectors.items()))
    return out


def geomean_ratios(results: Sequence[LayerResult]) -> Dict[str, float]:
    """Per selector, the geometric mean over layers of oracle time / chosen time (1 = always the best)."""
    out: Dict[str, float] = {}
    for name in (results[0].selectors if results else {}):
        logs = [math.log(r.oracle_ms / r.selectors[name]["ms"]) for r in results]
        out[name] = math.exp(sum(logs) / len(logs))
    return out


def format_results(results: Sequence[LayerResult], profile: HostProfile, markdown: bool) -> str:
    names = list(results[0].selectors) if results else []
    head = ["layer", "oracle ms"] + [f"{n} ms (s to configure)" for n in names] + ["oracle"]
    rows = [[r.layer, f"{r.oracle_ms:.4f}"] + [f"{r.selectors[n]['ms']:.4f} ({r.selectors[n]['configure_s']:.2f})"
                                               for n in names] + [r.oracle] for r in results]
    g = geomean_ratios(results)
    total = {n: sum(r.selectors[n]["configure_s"] for r in results) for n in names}
    rows.append(["geomean oracle/chosen", "1"] + [f"{g[n]:.3f} ({total[n]:.1f} total)" for n in names] + [""])
    title = (f"selectors on {profile.name} ({isa_name(profile)}, {profile.peak_gflops_per_core:.1f} GFLOPS/core peak); "
             "ms = measured time of the chosen kernel; s to configure = planning + measurements")
    if markdown:
        lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def results_json(results: Sequence[LayerResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=1)
