"""The configuration space: every way a task can be compiled, as data.

A `Task` is what is computed (operator, shape, the thread count it is called
with, the epilogue activations); a `Config` is how (knob name -> value). Every
selector (the analytical model, the empirical search, the predictor) maps a
task to one Config of `space(task, profile)`, and `plan_for` turns it into the
same `Plan` type the models produce, so the code generator never knows who
chose.

GEMM knobs (each reaches the generated entry point, codegen/gemm.py):
  mr, nr       register tile: nr = nv vectors, mr rows with mr*nv accumulators
               + nv B vectors + 1 broadcast <= the vector registers (every mr
               from 1 to the tallest that fits, for every nv); the microkernel
               template of the entry point.
  kc           k block (the entry's KC template argument): the model's kc for
               the tile and loop order x {1/2, 3/4, 1, 3/2, 2}, multiples of
               KC_QUANTUM, at most K rounded up (deeper blocks run the same).
  mc, nc       A and B block bounds (GemmBlocking): the model's values for the
               tile and order x {1/2, 1, 2}, multiples of mr / nr, at most M / N
               rounded up to the tile (larger ones run the same).
  loop_order   which micro-panel stays in L1 (GemmBlocking.order).
  grid         threads along M x N (GemmBlocking.tm, tn): every factorization
               of the task's thread count (gemm_run falls back to its own grid
               when the shape has fewer micro-tiles than threads).
  Left out: the thread count, which is the task's (a spec lists thread counts
  and the registry dispatches each to its own kernel); M == 1 runs gemm_run's
  row-streaming path whatever the tile, so its space is the one config
  {path: gemv}.

conv2d knobs (each reaches the runtime through the registry's plan entry,
ConvPlanEntry, or Conv2dOptions when measured):
  algorithm    every algorithm models.conv.applicable() allows for the layer
               (and the task's tolerance).
  tile         direct: a register tile of the build's table (models.conv.direct_tiles).
  input        direct: "blocked" (NCHW[B]c) or "nchw" (plain, one channel per
               tap) where the model admits it (its rows and weights fit L1;
               beyond that it only streams from L2).
  order        direct: "groups-outer" (with c_blocks reduction blocks: the
               powers of two below the channel groups, and all of them) or
               "groups-inner" (one reduction block).
  Left out: the work chunk (derived from the order, the tile and the caches
  as conv_model.cpp does for a forced order), threads (the task's: the
  runtime runs a layer on the caller's thread count; the plan entry's count
  is its dispatch key), the depthwise and Winograd tiles (one per build:
  codegen/conv.py emits a single variant), and the GEMM that gemm-1x1 and
  im2col-gemm run (a GEMM task of its own: spec_plans specializes it).

A GEMM space is a product per (tile, loop order): gemm_blocks() returns it
as those blocks (GemmBlock: the value lists of kc, mc, nc and grid), which is
how the predictor reads it without a Config per config (BlockConfigs makes
them on demand); space() lists the same configs in the same order. This
module needs no numpy: the generator imports it for every selector.
"""
from __future__ import annotations

import bisect
import copy
import itertools
import math
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
from ..isa_table import ISA
from ..models import conv as conv_model
from ..models import gemm as gemm_model
from ..models.machine import Machine
from ..plan import Candidate, Param, Plan
from ..profile import HostProfile, fixed_lanes_profile
from ..shapes import Conv2dShape, GemmShape

OPS = ("gemm", "conv2d")
KC_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)
BLOCK_FACTORS = (0.5, 1.0, 2.0)
KC_MAX = 2048                       # the model's kc search stops there too (gemm.kc_for)
GEMM_KNOBS = ("grid", "kc", "loop_order", "mc", "mr", "nc", "nr")
CONV_DIRECT_KNOBS = ("algorithm", "c_blocks", "input", "order", "tile")
DIRECT_ORDERS = ("groups-outer", "groups-inner")
DIRECT_INPUTS = ("blocked", "nchw")
Shape = Union[GemmShape, Conv2dShape]


class SpaceError(ValueError):
    """A task or config that is not valid (names the field and what was expected)."""


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Task:
    """What is computed. `shape`: GemmShape for op "gemm" (no transposes: the
    specialized kernels serve row-major operands), Conv2dShape for "conv2d".
    `threads`: the thread count the kernel is called with. `tolerance`
    (conv2d): the largest relative error allowed (refuses Winograd variants
    whose bound exceeds it); None: any."""
    op: str
    shape: Shape
    threads: int = 1
    activations: Tuple[str, ...] = ("none",)
    tolerance: Optional[float] = None

    def __post_init__(self):
        if self.op not in OPS:
            raise SpaceError(f"Task.op: expected one of {OPS}, got {self.op!r}")
        want = GemmShape if self.op == "gemm" else Conv2dShape
        if not isinstance(self.shape, want):
            raise SpaceError(f"Task.shape: op {self.op!r} needs a {want.__name__}, got {type(self.shape).__name__}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise SpaceError(f"Task.threads: expected a positive integer, got {self.threads!r}")
        object.__setattr__(self, "activations", tuple(self.activations))

    def dims(self) -> Dict[str, int]:
        """The shape's fields (GEMM: M, N, K; conv2d: Conv2dShape's)."""
        if self.op == "gemm":
            return {"M": self.shape.M, "N": self.shape.N, "K": self.shape.K}
        return {f.name: getattr(self.shape, f.name) for f in fields(Conv2dShape)}

    def key(self) -> str:
        """A stable string naming the task (log records and the predictor's
        dataset use it). The activations are left out: they change only the
        epilogue, not the space, so a log tuned without them serves a build
        that adds them."""
        dims = ",".join(f"{k}={v}" for k, v in self.dims().items())
        tol = "" if self.tolerance is None else f" tol={self.tolerance:g}"
        return f"{self.op} {dims} t={self.threads}{tol}"

    def label(self) -> str:
        return self.shape.label() + f" t{self.threads}"

    def to_dict(self) -> Dict[str, Any]:
        return {"op": self.op, "shape": self.dims(), "threads": self.threads,
                "activations": list(self.activations), "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Task":
        try:
            op = d["op"]
            shape_cls = GemmShape if op == "gemm" else Conv2dShape
            return cls(op, shape_cls(**d["shape"]), int(d["threads"]), tuple(d.get("activations", ("none",))),
                       d.get("tolerance"))
        except (KeyError, TypeError) as e:
            raise SpaceError(f"Task.from_dict: {e} in {d!r}") from None


@dataclass(frozen=True)
class Config:
    """How a task is computed: knobs as (name, value) pairs sorted by name."""
    op: str
    knobs: Tuple[Tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self):
        object.__setattr__(self, "knobs", tuple(sorted((str(k), v) for k, v in dict(self.knobs).items())))

    @classmethod
    def make(cls, op: str, **knobs: Any) -> "Config":
        return cls(op, tuple(knobs.items()))

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.knobs:
            if k == name:
                return v
        return default

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.knobs)

    def name(self) -> str:
        """Short and readable: 'gemm 6x16 kc256 mc72 nc4096 b-panel-in-L1 1x2', 'conv direct 14x1 blocked outer/2'."""
        k = self.as_dict()
        if self.op == "gemm" and k.get("path") == "gemv":
            return "gemv"
        if self.op == "gemm" and all(n in k for n in GEMM_KNOBS):
            return (f"{k['mr']}x{k['nr']} kc{k['kc']} mc{k['mc']} nc{k['nc']} {k['loop_order']} "
                    f"grid{k['grid']}")
        if self.op == "conv2d" and k.get("algorithm") != "direct" and len(k) == 1:
            return str(k["algorithm"])
        if self.op == "conv2d" and all(n in k for n in CONV_DIRECT_KNOBS):
            order = "inner" if k["order"] == "groups-inner" else f"outer/{k['c_blocks']}"
            return f"direct {k['tile']} {k['input']} {order}"
        return f"{self.op} " + " ".join(f"{n}={v}" for n, v in self.knobs)   # an incomplete config, as it is

    def to_dict(self) -> Dict[str, Any]:
        return {"op": self.op, "knobs": self.as_dict()}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        if not isinstance(d, dict) or d.get("op") not in OPS or not isinstance(d.get("knobs"), dict):
            raise SpaceError(f"Config.from_dict: expected {{'op': one of {OPS}, 'knobs': {{...}}}}, got {d!r}")
        return cls(d["op"], tuple(d["knobs"].items()))


# --------------------------------------------------------------------------- ISA views
# The variants one x86-64 CPU can run (the portable build's), by target name.
ISA_VIEWS = {"x86-64-v4": "avx512", "x86-64-v3": "avx2", "x86-64-v2": "generic", "generic": "generic"}
_V2_FLAGS = ("-msse4.2", "-mpopcnt")


def profile_for_isa(profile: HostProfile, isa: Optional[str]) -> HostProfile:
    """`profile` seen by the code of another ISA variant the same CPU runs
    (x86-64-v4 / v3 / v2, or generic): the register file, vector width and
    compile flags of the ISA table's row; for FMA code (v4, v3) the FMAs per
    cycle the probe measured for that row's vector width
    (fma_per_cycle_by_key: a Zen 4 core issues two 256-bit FMAs a cycle,
    one 512-bit), else the profile's own (the same pipes execute the
    narrower vectors); caches, bandwidths, clock, cores and FMA latency stay
    the machine's. v2 and generic code have no FMA instruction: they issue
    multiply + add pairs the profile counts as one FMA at the profile's own
    rate, as the x86-64-v2 target does (the probe's 128-bit reading times
    FMAs, not those pairs; on the Zen 4 dataset the v2 direct convs measured
    0.88x the time predicted that way, 1.64x with the FMA reading). None:
    the profile itself."""
    if isa is None:
        return profile
    if isa not in ISA_VIEWS:
        raise SpaceError(f"isa: expected one of {', '.join(ISA_VIEWS)}, got {isa!r}")
    row = ISA[ISA_VIEWS[isa]]
    flags = list(_V2_FLAGS) if isa == "x86-64-v2" else list(row.compile_flags)
    if profile.isa == row.key and list(profile.compile_flags) == flags:
        return profile
    missing = [f for f in row.requires if f not in profile.features]
    if isa == "x86-64-v2":
        missing += [f for f in ("sse4_2", "popcnt") if f not in profile.features]
    if missing:
        raise SpaceError(f"isa {isa!r}: the machine of profile {profile.name!r} lacks {', '.join(missing)}")
    units = profile.fma_per_cycle if row.key == "generic" else \
        profile.fma_per_cycle_by_key.get(row.fma_key, profile.fma_per_cycle)
    peak = profile.freq_ghz * units * (row.vector_bits // 32) * 2
    return replace(profile, isa=row.key, vector_bits=row.vector_bits, vector_registers=row.vector_registers,
                   compile_flags=flags, peak_gflops_per_core=round(peak, 3), fma_per_cycle=units,
                   notes=list(profile.notes) + [f"{isa} view of {profile.name} (tuning.space.profile_for_isa): "
                                                f"{row.vector_bits}-bit, {row.vector_registers} registers"])


def isa_name(profile: HostProfile) -> str:
    """The variant name of a profile's code (x86-64-v4 / v3 / v2 / generic, or its ISA key elsewhere)."""
    if profile.isa == "avx512":
        return "x86-64-v4"
    if profile.isa == "avx2":
        return "x86-64-v3"
    if profile.isa == "generic":
        return "x86-64-v2" if "-msse4.2" in profile.compile_flags else "generic"
    return profile.isa


# --------------------------------------------------------------------------- GEMM
def _gemm_tiles(m: Machine) -> List[gemm_model.Tile]:
    """Every tile the register file holds (see the module docstring)."""
    tiles = []
    for nv in range(1, m.vregs):
        tallest = min((m.vregs - 1 - nv - m.product_registers(nv)) // nv, gemm_model.MR_LIMIT)
        if tallest < 1:
            break
        tiles += [gemm_model.Tile(mr, nv * m.lanes, nv) for mr in range(1, tallest + 1)]
    return tiles


def _grids(threads: int) -> List[str]:
    return [f"{a}x{threads // a}" for a in range(1, threads + 1) if threads % a == 0]


def _scaled(base: int, factors: Sequence[float], quantum: int, lo: int, hi: int) -> List[int]:
    out = set()
    for f in factors:
        v = int(round(base * f / quantum)) * quantum
        out.add(min(max(v, lo), hi))
    return sorted(out)


def _gemm_model_blocking(m: Machine, t: gemm_model.Tile, order: str, M: int, N: int) -> Tuple[int, int, int]:
    """(kc, mc, nc) as plan_shape() chooses them for this tile and order."""
    kc = gemm_model.kc_for(m, t, order)
    mc = min(gemm_model.mc_for(m, t, kc, order), math.ceil(M / t.mr) * t.mr)
    nc = gemm_model.balanced(N, gemm_model.nc_for(m, t, kc, order), t.nr)
    return kc, mc, nc


@dataclass(frozen=True)
class GemmBlock:
    """The GEMM configs of one register tile and loop order: every kc x mc x
    nc x grid, in that nesting (the order space() lists them in). The
    predictor's features read the space as blocks (tuning/features.py), so
    a task's ~2,000 configs become arrays without a Config each."""
    tile: gemm_model.Tile
    order: str
    kcs: Tuple[int, ...]
    mcs: Tuple[int, ...]
    ncs: Tuple[int, ...]
    grids: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.kcs) * len(self.mcs) * len(self.ncs) * len(self.grids)

    def config(self, j: int) -> Config:
        """The block's j-th config (0 <= j < len(self))."""
        rest, g = divmod(j, len(self.grids))
        rest, n = divmod(rest, len(self.ncs))
        k, mi = divmod(rest, len(self.mcs))
        return _gemm_config(self.tile.mr, self.tile.nr, self.kcs[k], self.mcs[mi], self.ncs[n], self.order,
                            self.grids[g])

    def configs(self) -> List[Config]:
        t, order = self.tile, self.order
        return [_gemm_config(t.mr, t.nr, kc, mc, nc, order, grid)
                for kc in self.kcs for mc in self.mcs for nc in self.ncs for grid in self.grids]


def _gemm_config(mr: int, nr: int, kc: int, mc: int, nc: int, order: str, grid: str) -> Config:
    """Config.make("gemm", ...) for the space's own knobs, given already in
    name order (grid, kc, loop_order, mc, mr, nc, nr): no sort per config."""
    c = object.__new__(Config)
    object.__setattr__(c, "op", "gemm")
    object.__setattr__(c, "knobs", (("grid", grid), ("kc", kc), ("loop_order", order), ("mc", mc), ("mr", mr),
                                    ("nc", nc), ("nr", nr)))
    return c


def gemm_blocks(task: Task, profile: HostProfile) -> List[GemmBlock]:
    """The GEMM space of `task` (M > 1) as blocks, in space()'s order (see the module docstring)."""
    M, N, K = task.shape.M, task.shape.N, task.shape.K
    if task.op != "gemm" or M == 1:
        raise SpaceError(f"gemm_blocks: expected a GEMM task with M > 1, got {task.key()}")
    m = Machine(profile)
    grids = tuple(_grids(task.threads))
    out = []
    kc_hi = min(KC_MAX, math.ceil(K / gemm_model.KC_QUANTUM) * gemm_model.KC_QUANTUM)
    for t in _gemm_tiles(m):
        m_hi, n_hi = math.ceil(M / t.mr) * t.mr, math.ceil(N / t.nr) * t.nr
        for order in gemm_model.LOOP_ORDERS:
            kc0, mc0, nc0 = _gemm_model_blocking(m, t, order, M, N)
            # the model's own kc stays in even when deeper than K (plan_shape does not clip it)
            kcs = [kc for kc in _scaled(kc0, KC_FACTORS, gemm_model.KC_QUANTUM, gemm_model.KC_QUANTUM, KC_MAX)
                   if kc <= kc_hi or kc == kc0] or [kc0]
            mcs = _scaled(mc0, BLOCK_FACTORS, t.mr, t.mr, max(m_hi, t.mr))
            ncs = _scaled(nc0, BLOCK_FACTORS, t.nr, t.nr, max(n_hi, t.nr))
            out.append(GemmBlock(t, order, tuple(kcs), tuple(mcs), tuple(ncs), grids))
    return out


class BlockConfigs(SequenceABC):
    """The configs of GEMM blocks as one read-only sequence, made on demand:
    item i is the i-th config of the blocks laid end to end (space()'s
    order), so a selector that ranks the whole space builds Configs only
    for the few it plans or reports."""

    def __init__(self, blocks: Sequence[GemmBlock]):
        self.blocks = list(blocks)
        self.offsets = list(itertools.accumulate((len(b) for b in self.blocks), initial=0))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"config index {i} outside a space of {len(self)}")
        i %= len(self)
        b = bisect.bisect_right(self.offsets, i) - 1
        return self.blocks[b].config(i - self.offsets[b])


def _gemm_space(task: Task, profile: HostProfile) -> List[Config]:
    if task.shape.M == 1:
        return [Config.make("gemm", path="gemv")]
    return [c for b in gemm_blocks(task, profile) for c in b.configs()]


def profile_key(profile: HostProfile) -> str:
    """A profile's identity for the memos below: its dataclass repr, which
    shows every field (exact floats) and costs ~1/40 of to_json()."""
    return repr(profile)


# The models' plans by (task, profile): plan_for() and the searches ask for
# the same one many times, and a GEMM plan weighs every tile and thread count.
_MODEL_PLANS: Dict[Tuple[Task, str], Plan] = {}
_MODEL_PLANS_MAX = 512


def _memo_plan(task: Task, profile: HostProfile, make, shared: bool = False) -> Plan:
    """The memo's plan: a deep copy that callers may annotate, or with
    shared=True the memo's own object, which the caller only reads (plan_for
    copies what it takes from it: a deep copy of a GEMM plan costs as much
    as planning the pick)."""
    key = (task, profile_key(profile))
    if key not in _MODEL_PLANS:
        if len(_MODEL_PLANS) >= _MODEL_PLANS_MAX:
            _MODEL_PLANS.clear()
        _MODEL_PLANS[key] = make()
    return _MODEL_PLANS[key] if shared else copy.deepcopy(_MODEL_PLANS[key])


def _gemm_plan_analytical(task: Task, profile: HostProfile, shared: bool = False) -> Plan:
    M, N, K = task.shape.M, task.shape.N, task.shape.K
    return _memo_plan(task, profile, lambda: gemm_model.plan_shape(
        profile, M, N, K, isa_suffix=isa_for_profile(profile).suffix, activations=list(task.activations),
        threads=task.threads), shared)


def _gemm_analytical_config(task: Task, profile: HostProfile) -> Config:
    if task.shape.M == 1:
        return Config.make("gemm", path="gemv")
    p = _gemm_plan_analytical(task, profile)
    m = Machine(profile)
    mr, nr, order = p.value("mr"), p.value("nr"), p.value("loop_order")
    # the model's grid for the plan's thread count (plan_shape keeps it only for > 1 thread)
    t = gemm_model.Tile(mr, nr, nr // m.lanes)
    grid = p.value("grid") if "grid" in p.params else "x".join(
        map(str, gemm_model.thread_grid(M=task.shape.M, N=task.shape.N, t=t, threads=task.threads, order=order)))
    if grid not in _grids(task.threads):       # the model capped threads at the micro-tiles
        grid = f"1x{task.threads}"
    return Config.make("gemm", mr=mr, nr=nr, kc=p.value("kc"), mc=p.value("mc"), nc=p.value("nc"),
                       loop_order=order, grid=grid)


def _check_gemm_config(task: Task, config: Config, profile: HostProfile) -> None:
    k = config.as_dict()
    if k.get("path") == "gemv":
        if task.shape.M != 1:
            raise SpaceError(f"config {config.name()!r}: the gemv path needs M = 1 (task {task.key()})")
        return
    missing = [n for n in GEMM_KNOBS if n not in k]
    if missing:
        raise SpaceError(f"config {k}: missing GEMM knob(s) {missing}; expected {list(GEMM_KNOBS)}")
    m = Machine(profile)
    mr, nr = k["mr"], k["nr"]
    if not (isinstance(nr, int) and nr > 0 and nr % m.lanes == 0):
        raise SpaceError(f"config {config.name()!r}: nr={nr!r} must be a positive multiple of {m.lanes} lanes")
    nv = nr // m.lanes
    if not (isinstance(mr, int) and 1 <= mr and mr * nv + nv + 1 <= m.vregs):
        raise SpaceError(f"config {config.name()!r}: tile {mr}x{nr} needs {mr}*{nv} + {nv} + 1 vector registers, "
                         f"the profile has {m.vregs}")
    for name, q in (("kc", gemm_model.KC_QUANTUM), ("mc", mr), ("nc", nr)):
        v = k[name]
        if not (isinstance(v, int) and v > 0 and v % q == 0):
            raise SpaceError(f"config {config.name()!r}: {name}={v!r} must be a positive multiple of {q}")
    if k["loop_order"] not in gemm_model.LOOP_ORDERS:
        raise SpaceError(f"config {config.name()!r}: loop_order must be one of {gemm_model.LOOP_ORDERS}")
    if k["grid"] not in _grids(task.threads):
        raise SpaceError(f"config {config.name()!r}: grid {k['grid']!r} is not a factorization of "
                         f"{task.threads} thread(s): {_grids(task.threads)}")


def _gemm_plan_for(task: Task, config: Config, profile: HostProfile, why: str) -> Plan:
    M, N, K = task.shape.M, task.shape.N, task.shape.K
    if config.get("path") == "gemv":
        base = _gemm_plan_analytical(task, profile)
        base.params["path"] = Param("gemv", why)
        base.notes.append(why)
        return base
    base = _gemm_plan_analytical(task, profile, shared=True)     # read only: its candidates are copied
    m = Machine(profile)
    k = config.as_dict()
    t = gemm_model.Tile(k["mr"], k["nr"], k["nr"] // m.lanes)
    order = k["loop_order"]
    tm, tn = (int(v) for v in k["grid"].split("x"))
    # The model's parameters for this tile and order (direct-A rules and their reasons), then the knobs.
    params = gemm_model._params(m, t, k["kc"], k["mc"], k["nc"], task.threads, (tm, tn), order)
    for name in GEMM_KNOBS:
        value = f"{tm}x{tn}" if name == "grid" else k[name]
        params[name] = Param(value, why)
    params["threads"] = Param(task.threads, "the task's thread count (spec)")
    est = gemm_model.estimate(m, t, M, N, K, task.threads, order)
    name = f"tile {t.name} {order}"
    cands = [Candidate(c.name, c.predicted_s, dict(c.terms), chosen=c.name == name) for c in base.candidates]
    return Plan(op=base.op, kernel=gemm_model.kernel_name(isa_for_profile(profile).suffix, t, (M, N, K)),
                algorithm="blis-gemm", isa=profile.isa, shape={"M": M, "N": N, "K": K}, params=params,
                predicted_s=est.seconds, predicted_terms=est.terms, candidates=cands,
                activations=list(task.activations), notes=[why, "predicted: the model's estimate of this tile and "
                                                           "loop order with the model's blocking"])


# --------------------------------------------------------------------------- conv2d
def _conv_space(task: Task, profile: HostProfile) -> List[Config]:
    L = task.shape
    m = conv_model.kernel_machine(profile)
    out = []
    for alg, why_not in conv_model.applicable(L, task.tolerance).items():
        if why_not:
            continue
        if alg != "direct":
            out.append(Config.make("conv2d", algorithm=alg))
            continue
        for tile in conv_model.direct_tiles(profile):
            for plain in (False, True):
                if plain and conv_model.plain_input_rejection(m, L, tile, conv_model.NCHW):
                    continue
                g = conv_model.direct_geometry(m, L, tile, plain)
                cgroups = g.taps // (L.R * L.S)
                base = dict(algorithm="direct", tile=f"{tile[0]}x{tile[1]}", input=DIRECT_INPUTS[plain])
                for nb in conv_model._block_counts(cgroups):
                    out.append(Config.make("conv2d", order="groups-outer", c_blocks=nb, **base))
                out.append(Config.make("conv2d", order="groups-inner", c_blocks=1, **base))
    return out


def _conv_plan_analytical(task: Task, profile: HostProfile, shared: bool = False) -> Plan:
    return _memo_plan(task, profile, lambda: conv_model.plan_layer(
        profile, task.shape, isa_suffix=isa_for_profile(profile).suffix, threads=task.threads,
        activations=list(task.activations), tolerance=task.tolerance,
        fixed_lanes_suffix=fixed_lanes_isa_for_profile(profile).suffix), shared)


def conv_candidates(task: Task, profile: HostProfile) -> List[Candidate]:
    """models.conv.candidates() for a conv task at its thread count and
    tolerance, as fresh copies the caller may change (none chosen). They are
    the model's plan's own candidates (plan_layer ranks exactly these), which
    plan_for() needs anyway: the predictor's features and its plan then
    evaluate a layer's candidates once (tests/build/test_tuning_predictor.py
    checks they equal a direct call)."""
    return [Candidate(c.name, c.predicted_s, dict(c.terms), False, c.rejected)
            for c in _conv_plan_analytical(task, profile, shared=True).candidates]


def _conv_analytical_config(task: Task, profile: HostProfile) -> Config:
    p = _conv_plan_analytical(task, profile)
    if p.algorithm != "direct":
        return Config.make("conv2d", algorithm=p.algorithm)
    return Config.make("conv2d", algorithm="direct", tile=p.value("tile"), input=p.value("input"),
                       order=p.value("order"), c_blocks=p.value("c_blocks"))


def _direct_tile(profile: HostProfile, text: str) -> Tuple[int, int]:
    tiles = conv_model.direct_tiles(profile)
    try:
        n, kb = (int(v) for v in str(text).split("x"))
    except ValueError:
        n = kb = -1
    if (n, kb) not in tiles:
        raise SpaceError(f"conv config: tile {text!r} is not in the build's direct tile table "
                         f"{['%dx%d' % t for t in tiles]}")
    return n, kb


def _check_conv_config(task: Task, config: Config, profile: HostProfile) -> None:
    k = config.as_dict()
    alg = k.get("algorithm")
    why_not = conv_model.applicable(task.shape, task.tolerance)
    if alg not in why_not:
        raise SpaceError(f"conv config {k}: algorithm must be one of {list(why_not)}")
    if why_not[alg]:
        raise SpaceError(f"conv config {k}: {alg} cannot run {task.key()}: {why_not[alg]}")
    if alg != "direct":
        return
    missing = [n for n in CONV_DIRECT_KNOBS if n not in k]
    if missing:
        raise SpaceError(f"conv config {k}: missing direct knob(s) {missing}; expected {list(CONV_DIRECT_KNOBS)}")
    _direct_tile(profile, k["tile"])
    if k["input"] not in DIRECT_INPUTS or k["order"] not in DIRECT_ORDERS:
        raise SpaceError(f"conv config {k}: input must be one of {DIRECT_INPUTS}, order one of {DIRECT_ORDERS}")
    if not (isinstance(k["c_blocks"], int) and k["c_blocks"] >= 1) or (k["order"] == "groups-inner"
                                                                        and k["c_blocks"] != 1):
        raise SpaceError(f"conv config {k}: c_blocks must be >= 1 (1 with groups-inner)")


def _conv_plan_for(task: Task, config: Config, profile: HostProfile, why: str) -> Plan:
    L = task.shape
    base = _conv_plan_analytical(task, profile, shared=True)     # read only: what it gives is copied
    k = config.as_dict()
    alg = k["algorithm"]
    if alg == "direct":
        tile = _direct_tile(profile, k["tile"])
        plain = k["input"] == "nchw"
        cand_name = conv_model.direct_candidate_name(tile, plain)
    else:
        cand_name = alg
    cands = conv_candidates(task, profile)
    for c in cands:
        c.chosen = c.name == cand_name
    chosen = next((c for c in cands if c.chosen and c.rejected is None), None)
    params: Dict[str, Param] = {"algorithm": Param(alg, why),
                                "threads": Param(task.threads, "the task's thread count (spec)")}
    if task.tolerance is not None:
        params["tolerance"] = copy.deepcopy(base.params["tolerance"])
    if alg == "direct":
        m = conv_model.kernel_machine(profile)
        inner = k["order"] == "groups-inner"
        s = conv_model.direct_schedule(m, L, tile, plain, task.threads, groups_inner=inner)
        params.update({
            "tile": Param(k["tile"], why),
            "tile_index": Param(conv_model.direct_tiles(profile).index(tile), "index in the build's direct tile table"),
            "input": Param(k["input"], why),
            "order": Param(k["order"], why),
            "chunk": Param(s.chunk, "derived from the order, tile and caches (conv_model.cpp, forced order)"),
            "c_blocks": Param(k["c_blocks"], why),
        })
    if alg == "depthwise":
        params["ow_tile"] = copy.deepcopy(base.params["ow_tile"])
    fixed = fixed_lanes_profile(profile)
    gemm_based = alg in ("gemm-1x1", "im2col-gemm")
    name = (conv_model.kernel_name(isa_for_profile(profile).suffix, profile.lanes_f32, alg) if gemm_based
            else conv_model.kernel_name(fixed_lanes_isa_for_profile(profile).suffix, fixed.lanes_f32, alg))
    predicted = chosen.predicted_s if chosen else None
    return Plan(op="conv2d", kernel=name, algorithm=alg, isa=profile.isa, shape=dict(base.shape), params=params,
                predicted_s=predicted if predicted is not None else base.predicted_s,
                predicted_terms=dict(chosen.terms) if chosen else {}, candidates=cands,
                activations=list(task.activations), notes=[why])


# --------------------------------------------------------------------------- API
_SPACES: Dict[Tuple[Task, str], List[Config]] = {}


def space(task: Task, profile: HostProfile) -> List[Config]:
    """Every valid configuration of `task` on `profile` (see the module docstring), in a fixed order."""
    key = (task, profile_key(profile))
    if key not in _SPACES:
        if len(_SPACES) > 256:
            _SPACES.clear()
        _SPACES[key] = _gemm_space(task, profile) if task.op == "gemm" else _conv_space(task, profile)
    return list(_SPACES[key])


def analytical_config(task: Task, profile: HostProfile) -> Config:
    """What the analytical model chooses for `task`, expressed in the space (it is one of space()'s configs)."""
    return _gemm_analytical_config(task, profile) if task.op == "gemm" else _conv_analytical_config(task, profile)


def check_config(task: Task, config: Config, profile: HostProfile) -> None:
    """Raises SpaceError naming the knob when `config` cannot compile or run `task` on `profile`."""
    if config.op != task.op:
        raise SpaceError(f"config {config.name()!r} is for op {config.op!r}, the task {task.key()} is {task.op!r}")
    (_check_gemm_config if task.op == "gemm" else _check_conv_config)(task, config, profile)


def plan_for(task: Task, config: Config, profile: HostProfile, why: str = "searched") -> Plan:
    """The Plan the generator compiles for `task` with `config` (the same type
    the models produce). Every knob's parameter carries `why` as its reason
    (e.g. "searched: best of 64 measurements, 123.4 us")."""
    check_config(task, config, profile)
    return (_gemm_plan_for if task.op == "gemm" else _conv_plan_for)(task, config, profile, why)


def tasks_from_specs(specs, profile: HostProfile) -> List[Task]:
    """The tasks a build plans for: every (conv layer, thread count) and every
    (GEMM shape, thread count) the specs list, thread counts capped at the
    profile's cores (models/spec_plans.py's rule); duplicates merged."""
    out: Dict[str, Task] = {}
    for s in specs:
        threads = sorted({min(max(1, profile.cores), t) for t in s.threads})
        for sh in s.shapes:
            for t in threads:
                if s.op == "conv2d":
                    task = Task("conv2d", sh, t, tuple(s.activations), getattr(s, "tolerance", None))
                elif s.op in ("matmul", "gemm"):
                    task = Task("gemm", GemmShape(sh.M, sh.N, sh.K), t, tuple(s.activations))
                else:
                    continue
                out.setdefault(task.key(), task)
    return list(out.values())
