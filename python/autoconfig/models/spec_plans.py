"""From specs to plans, per operator family: which layers and shapes the
specs ask for, how several specs listing the same one merge, and the thread
variants of each. The models (conv.py, gemm.py) plan one task; this is the
policy around them that generate.py runs.

  conv2d: one plan per (layer, thread count) the specs list (thread counts
          capped at the profile's cores); a layer several specs list is
          planned once, under the strictest of their tolerances.
  GEMM:   the generic plan, plus one per distinct shape of the matmul/gemm
          specs and of the conv layers the conv model runs as a GEMM; one
          plan per thread count, identical ones sharing a kernel.
Each takes the function that plans one task (default: the model's;
generate.py passes a selector's, tuning/selectors.py, for
AUTOCONFIG_SELECTOR), with the model function's signature.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..plan import Param, Plan
from ..profile import HostProfile
from ..shapes import Conv2dShape
from ..vocabulary import ACTIVATIONS
from . import conv as conv_model
from . import gemm as gemm_model


def _threads(profile: HostProfile, t: int) -> int:
    """A spec's thread count, capped at the profile's cores."""
    return min(max(1, profile.cores), t)


@dataclass
class ConvLayerRequest:
    """A conv layer (at one thread count) and the specs that list it."""
    activations: Sequence[str]             # the first listing spec's
    specs: List[str] = field(default_factory=list)
    tolerance: Optional[float] = None      # the strictest of theirs (None: any error)


@dataclass
class GemmShapeRequest:
    """A GEMM shape and what the specs listing it (or a conv layer lowered to it) ask."""
    op: str                                # the first listing spec's op
    activations: Set[str] = field(default_factory=set)
    specs: List[str] = field(default_factory=list)
    threads: Set[int] = field(default_factory=set)


def conv_plans(profile: HostProfile, specs, isa_suffix: str, fixed_lanes_suffix: str,
               plan_layer: Callable[..., Plan] = conv_model.plan_layer) -> List[Plan]:
    """One plan per (conv layer, thread count) the specs list: the model's
    choice of algorithm and its parameters. A layer several specs list is
    planned once, under the strictest of their tolerances."""
    layers: Dict[Tuple, ConvLayerRequest] = {}
    for s in specs:
        if s.op != "conv2d":
            continue
        for sh in s.shapes:
            for t in sorted({_threads(profile, t) for t in s.threads}):
                e = layers.setdefault((sh, t), ConvLayerRequest(s.activations))
                e.specs.append(s.name)
                if s.tolerance is not None:
                    e.tolerance = min(s.tolerance, e.tolerance or s.tolerance)
    return [plan_layer(profile, sh, isa_suffix=isa_suffix, threads=t, activations=e.activations,
                                  spec_name=",".join(e.specs), tolerance=e.tolerance,
                                  fixed_lanes_suffix=fixed_lanes_suffix)
            for (sh, t), e in layers.items()]


def gemm_plans(profile: HostProfile, specs, isa_suffix: str, convs: Sequence[Plan] = (),
               plan_shape: Callable[..., Plan] = gemm_model.plan_shape) -> Tuple[Plan, List[Plan]]:
    """The generic plan and the shape-specialized ones.

    A shape gets one plan per thread count its spec lists (capped at the
    profile's cores); plans that come out identical share one kernel, and the
    registry maps each (shape, threads) to its kernel."""
    generic = gemm_model.plan_generic(profile, isa_suffix=isa_suffix)
    # One entry per distinct shape; activations and thread counts of several specs merge.
    shapes: Dict[Tuple[int, int, int], GemmShapeRequest] = {}
    # conv layers the model runs on the GEMM get that GEMM specialized
    gemm_convs = {(Conv2dShape(**p.shape), p.value("threads")) for p in convs
                  if p.algorithm in ("gemm-1x1", "im2col-gemm")}
    for s in specs:
        if s.op not in ("matmul", "gemm", "conv2d"):
            continue
        for sh in s.shapes:
            if s.op == "conv2d":
                if not any((sh, _threads(profile, t)) in gemm_convs for t in s.threads):
                    continue
                sh = sh.gemm_shape()   # conv2d runs as one GEMM per image and group
            key = (sh.M, sh.N, sh.K)
            entry = shapes.setdefault(key, GemmShapeRequest(s.op))
            entry.activations.update(s.activations)
            entry.specs.append(s.name)
            entry.threads.update(_threads(profile, t) for t in s.threads)
    specialized: List[Plan] = []
    for (M, N, K), e in sorted(shapes.items()):
        # The plain product ("none") is always compiled in: without it a call
        # of the shape with no activation (an unfused matmul, a benchmark)
        # missed the registry row and ran the generic kernel.
        acts = [a for a in ACTIVATIONS if a in e.activations or a == "none"]
        variants: List[Plan] = []
        per_t = {t: plan_shape(profile, M, N, K, isa_suffix=isa_suffix, activations=acts,
                                          spec_name=",".join(e.specs), op=e.op, threads=t)
                 for t in sorted(e.threads)}
        fastest = min(per_t, key=lambda t: per_t[t].predicted_s)
        for t, p in per_t.items():
            p.params["threads"].value = t
            p.params["default_threads"] = Param(
                fastest, "threads=None runs the spec thread count with the least predicted time: "
                + ", ".join(f"{k}: {v.predicted_s * 1e6:.1f} us" for k, v in per_t.items()))
            twin = next((v for v in variants if gemm_model.same_kernel(v, p)), None)
            if twin is not None:
                twin.notes.append(f"also serves {t} thread(s): the {t}-thread plan has the same tile and blocking")
                twin.params.setdefault("also_threads", Param([], "thread counts sharing this kernel"))
                twin.params["also_threads"].value.append(t)
                continue
            variants.append(p)
        if len(variants) > 1:
            for v in variants:
                v.kernel += f"_t{v.value('threads')}"
        specialized += variants
    return generic, specialized
