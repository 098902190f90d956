"""Selectors: (task, HostProfile) -> Plan, by name, as AUTOCONFIG_SELECTOR spells it.

  analytical   the models' choice (models/gemm.py, models/conv.py): no measurement.
  search       the fastest config a tuning log holds for the task, measured on
               the same ISA variant; a task the log lacks (or whose best config
               does not fit this profile) falls back to the analytical plan,
               with a note saying so.
  random       a config drawn uniformly from the space (seeded by the task):
               the floor every comparison prints (STYLE.md 6).

Other selectors register themselves with `register(name, fn)`; a name with a
parameter ("predictor:8") is looked up by its part before the colon. Names
the design reserves but no module has registered yet ("predictor") are
refused with an error saying so.
"""
from __future__ import annotations

import importlib
import random
from typing import Callable, Dict, Optional

from ..plan import Plan
from ..profile import HostProfile
from .log import TuningLog
from .space import SpaceError, Task, analytical_config, check_config, isa_name, plan_for, space
from .space import _conv_plan_analytical, _gemm_plan_analytical

SelectorFn = Callable[..., Plan]      # fn(task, profile, *, log=None, arg=None) -> Plan
RESERVED = {"predictor": "the offline-trained predictor (autoconfig.tuning.predictor) cannot be loaded"}
# Modules that register a reserved name when imported.
PLUGINS = {"predictor": "autoconfig.tuning.predictor"}
_REGISTRY: Dict[str, SelectorFn] = {}


class SelectorError(ValueError):
    """An unknown selector name, or a selector missing what it needs (a log)."""


def register(name: str, fn: SelectorFn) -> None:
    _REGISTRY[name] = fn


def names() -> list:
    return sorted(_REGISTRY)


def parse(selector: str) -> tuple:
    """("predictor", "8") from "predictor:8"; ("search", None) from "search"."""
    base, _, arg = str(selector).partition(":")
    return base, (arg or None)


def check_selector(selector: str) -> None:
    """Raises SelectorError unless `selector` names a registered selector.
    A reserved name registers itself when its module is importable
    (PLUGINS), and is refused with RESERVED's reason when it is not."""
    base, _ = parse(selector)
    missing = None
    if base not in _REGISTRY and base in PLUGINS:
        try:
            importlib.import_module(PLUGINS[base])
        except ImportError as e:
            missing = e
    if base in _REGISTRY:
        return
    if base in RESERVED:
        why = f"{RESERVED[base]} ({missing})" if missing else RESERVED[base]
        raise SelectorError(f"selector {selector!r}: {why}; available: {', '.join(names())}")
    raise SelectorError(f"unknown selector {selector!r}; expected one of {', '.join(names())}")


def select(task: Task, profile: HostProfile, selector: str, *, log: Optional[TuningLog] = None) -> Plan:
    """The Plan `selector` chooses for `task` on `profile`."""
    check_selector(selector)
    base, arg = parse(selector)
    return _REGISTRY[base](task, profile, log=log, arg=arg)


# --------------------------------------------------------------------------- built-ins
def analytical_plan(task: Task, profile: HostProfile, *, log: Optional[TuningLog] = None,
                    arg: Optional[str] = None) -> Plan:
    """Exactly the model's plan (the generator's default path)."""
    return _gemm_plan_analytical(task, profile) if task.op == "gemm" else _conv_plan_analytical(task, profile)


def search_plan(task: Task, profile: HostProfile, *, log: Optional[TuningLog] = None,
                arg: Optional[str] = None) -> Plan:
    if log is None:
        raise SelectorError("selector 'search' needs a tuning log (AUTOCONFIG_TUNING_LOG / --tuning-log)")
    variant = isa_name(profile)
    records = [r for r in log.for_task(task) if r.isa == variant]
    if not records:
        plan = analytical_plan(task, profile)
        other = sorted({r.isa for r in log.for_task(task)})
        plan.notes.append(f"selector search: the tuning log has no measurement of {task.key()} on {variant}"
                          + (f" (only on {', '.join(other)})" if other else "") + ": the analytical plan")
        return plan
    best = min(records, key=lambda r: r.seconds)
    try:
        check_config(task, best.config, profile)
    except SpaceError as e:
        plan = analytical_plan(task, profile)
        plan.notes.append(f"selector search: the log's best config for {task.key()} does not fit this profile "
                          f"({e}): the analytical plan")
        return plan
    why = (f"searched: best of {len(records)} measurement(s) in the tuning log, "
           f"{best.seconds * 1e6:.1f} us ({best.timestamp})")
    plan = plan_for(task, best.config, profile, why)
    plan.predicted_s = best.seconds
    plan.predicted_terms = {"measured": best.seconds}
    if best.profile not in {h for h, p in log.profiles.items() if p.to_json() == profile.to_json()}:
        plan.notes.append("the tuning log was measured with a profile that differs from this build's "
                          "(another probe of the machine, or another machine)")
    return plan


def random_plan(task: Task, profile: HostProfile, *, log: Optional[TuningLog] = None,
                arg: Optional[str] = None) -> Plan:
    rng = random.Random(f"{arg or 0}:{task.key()}")
    config = rng.choice(space(task, profile))
    return plan_for(task, config, profile, "random: drawn uniformly from the space (the floor)")


register("analytical", analytical_plan)
register("search", search_plan)
register("random", random_plan)

__all__ = ["select", "register", "names", "check_selector", "parse", "SelectorError", "analytical_config"]


# --------------------------------------------------------------------------- the generator's seam
class SpecPlanners:
    """A selector in the shape models/spec_plans.py calls: plan_layer and
    plan_shape with the model functions' signatures (generate.py)."""

    def __init__(self, selector: str, log: Optional[TuningLog] = None):
        check_selector(selector)
        self.selector, self.log = selector, log

    @staticmethod
    def check(selector: str) -> None:
        check_selector(selector)

    def plan_layer(self, profile: HostProfile, L, *, isa_suffix: str, threads: int = 1, activations=("none",),
                   spec_name: Optional[str] = None, tolerance: Optional[float] = None,
                   fixed_lanes_suffix: Optional[str] = None) -> Plan:
        plan = select(Task("conv2d", L, threads, tuple(activations), tolerance), profile, self.selector, log=self.log)
        plan.spec, plan.activations = spec_name, list(activations)
        return plan

    def plan_shape(self, profile: HostProfile, M: int, N: int, K: int, *, isa_suffix: str, activations=("none",),
                   spec_name: Optional[str] = None, op: str = "matmul", threads: Optional[int] = None) -> Plan:
        from ..shapes import GemmShape
        plan = select(Task("gemm", GemmShape(M, N, K), threads or 1, tuple(activations)), profile, self.selector,
                      log=self.log)
        plan.spec, plan.op, plan.activations = spec_name, op, list(activations)
        return plan
