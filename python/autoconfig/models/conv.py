"""Analytical convolution model: every applicable algorithm gets a predicted
time from named terms, the cheapest wins (AutoConfig's algorithm selection).

Algorithms (cpp_runtime/src/conv2d.cpp runs them):
  direct      NCHW[B]c direct convolution, register tile n columns x kb
              channel blocks; NCHW is converted in and out per call.
  gemm-1x1    pointwise layers: the GEMM on the NCHW tensors, no copy.
  im2col-gemm patch matrix, then the GEMM.
  winograd-f2 / winograd-f4   F(2x2,3x3) / F(4x4,3x3): 3x3, stride 1, groups 1.
  depthwise   groups == C: taps vectorized over channels.

The conv kernels need their lane count at generation time (NCHW[B]c blocks,
arrays of accumulators), so for a scalable profile (SVE) they are built for
its fixed-lanes view (profile.fixed_lanes_profile: NEON on an SVE core) and
direct, depthwise and Winograd are modelled on that view; the GEMM-based
algorithms run the profile's own GEMM. Both views have the same peak.

The C++ runtime evaluates the very same formulas for layers no spec listed
(cpp_runtime/src/conv_model.cpp) with the coefficients this module emits
(model_coefficients), and tests/test_conv_model.py checks both agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..plan import Candidate, Param, Plan
from ..profile import HostProfile, fixed_lanes_profile
from .gemm import kc_for, plan_generic, tile_efficiency, Tile as GemmTile
from .machine import CALL_OVERHEAD_CYCLES, LOADS_PER_CYCLE, SYNC_SECONDS, Machine

F32 = 4
# Layout conversions (NCHW <-> NCHW[B]c, im2col, depthwise gather/scatter)
# move one element per this many cycles: they are strided scalar copies,
# bound by the load/store ports, not by bandwidth, for L2-resident tensors.
COPY_CYCLES_PER_ELEMENT = 0.5
# Fixed cycles per register-tile call of the direct / depthwise kernels
# (loop set-up, epilogue loads, call), as CALL_OVERHEAD_CYCLES for the GEMM.
TILE_OVERHEAD_CYCLES = 30.0
# Winograd transforms are adds and subtracts with a load and a store per few
# flops: they run at about this fraction of the FMA peak.
TRANSFORM_EFFICIENCY = 0.25
# The batched transform-domain GEMMs are short (C deep, tile block wide); they
# reach about this fraction of the peak.
WINOGRAD_GEMM_EFFICIENCY = 0.85

ALGORITHMS = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")


@dataclass(frozen=True)
class Layer:
    """One conv layer's geometry (batch N)."""
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pl: int = 0
    pb: int = 0
    pr: int = 0
    dh: int = 1
    dw: int = 1
    groups: int = 1

    @property
    def Ho(self) -> int:
        return (self.H + self.pt + self.pb - self.dh * (self.R - 1) - 1) // self.sh + 1

    @property
    def Wo(self) -> int:
        return (self.W + self.pl + self.pr - self.dw * (self.S - 1) - 1) // self.sw + 1

    @property
    def flops(self) -> float:
        return 2.0 * self.N * self.K * self.Ho * self.Wo * (self.C // self.groups) * self.R * self.S

    @property
    def pointwise(self) -> bool:
        return (self.R == 1 and self.S == 1 and self.sh == 1 and self.sw == 1
                and self.pt == self.pl == self.pb == self.pr == 0)

    @classmethod
    def from_shape(cls, s) -> "Layer":
        """From a spec Conv2dShape."""
        return cls(s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
                   s.pad_bottom, s.pad_right, s.dilation_h, s.dilation_w, s.groups)


# --------------------------------------------------------------------------- direct tiles
def direct_tiles(profile: HostProfile) -> List[Tuple[int, int]]:
    """Register tiles (n columns, kb channel blocks) the direct kernel is built
    with: for each kb, the widest n whose n*kb accumulators and kb weight
    vectors fit the register file (the input value is a broadcast memory
    operand of the FMA), capped at 28 columns; tiles with fewer accumulators
    than FMA latency x units are dropped (they cannot hide the latency).
    Read from the fixed-lanes view: the kernel is built for it."""
    m = Machine(fixed_lanes_profile(profile))
    need = int(math.ceil(m.fma_latency * m.fma_units))
    out = []
    for kb in (1, 2, 3, 4):
        n = min(28, (m.vregs - kb) // kb)
        if n >= 1 and n * kb >= need:
            out.append((n, kb))
    return out or [(1, 1)]


def _step_cycles(m: Machine, n: int, kb: int) -> float:
    """Cycles per reduction step (one input channel of one tap) of an n x kb
    tile: FMA issue, load issue (kb weights + n broadcasts), or the FMA
    latency of each accumulator's dependency chain, whichever binds."""
    return max(n * kb / m.fma_units, (n + kb) / LOADS_PER_CYCLE, m.fma_latency)


def _hz(m: Machine) -> float:
    return m.peak_flops / (2 * m.lanes * m.fma_units)


def _copy_seconds(m: Machine, elements: float, threads: int) -> float:
    return elements * COPY_CYCLES_PER_ELEMENT / _hz(m) / threads


def _sync(threads: int, barriers: int) -> float:
    return barriers * SYNC_SECONDS if threads > 1 else 0.0


def estimate_direct(m: Machine, L: Layer, tile: Tuple[int, int], threads: int) -> Dict[str, float]:
    n, kb = tile
    B = m.lanes
    kblocks = math.ceil(L.K / B)
    groups = math.ceil(kblocks / kb)
    last_kb = kblocks - (groups - 1) * kb
    # pointwise layers run as one row of Ho*Wo columns (conv2d.cpp does the same)
    Ho, Wo = (1, L.Ho * L.Wo) if L.pointwise else (L.Ho, L.Wo)
    q, rem = divmod(Wo, n)
    taps = L.C * L.R * L.S

    def row(kbn: int) -> float:
        cyc = q * _step_cycles(m, n, kbn) * taps + (_step_cycles(m, rem, kbn) * taps if rem else 0.0)
        return cyc + (q + (1 if rem else 0)) * TILE_OVERHEAD_CYCLES

    items = groups * Ho
    t = max(1, min(threads, items))
    per_image = Ho * ((groups - 1) * row(kb) + row(last_kb))
    compute = L.N * per_image * (math.ceil(items / t) / items) / _hz(m)
    Hp, Wp = L.H + L.pt + L.pb, L.W + L.pl + L.pr
    to_blocked = _copy_seconds(m, L.N * math.ceil(L.C / B) * B * Hp * Wp, min(t, math.ceil(L.C / B)))
    from_blocked = _copy_seconds(m, L.N * L.K * L.Ho * L.Wo, t)
    return {"compute": compute, "to_blocked": to_blocked, "from_blocked": from_blocked,
            "sync": _sync(t, 3 * L.N)}


# --------------------------------------------------------------------------- GEMM-based
@dataclass(frozen=True)
class GemmCoefficients:
    mr: int
    nr: int
    kc: int
    efficiency: float    # microkernel efficiency of the generic tile (models/gemm.tile_efficiency)


def gemm_coefficients(profile: HostProfile) -> GemmCoefficients:
    m = Machine(profile)
    gp = plan_generic(profile, isa_suffix="x")
    mr, nr = gp.value("mr"), gp.value("nr")
    t = GemmTile(mr, nr // m.lanes, m.lanes)
    kc = kc_for(m, t)
    eff, _ = tile_efficiency(m, t, kc)
    return GemmCoefficients(mr, nr, kc, eff)


def _gemm_seconds(m: Machine, g: GemmCoefficients, M: int, N: int, K: int, threads: int) -> Tuple[float, float]:
    """Compute (edge waste included) and per-call overhead of one GEMM, spread over threads."""
    mt, nt = math.ceil(M / g.mr), math.ceil(N / g.nr)
    t = max(1, min(threads, mt * nt))
    busiest = math.ceil(mt * nt / t)
    compute = 2.0 * busiest * g.mr * g.nr * K / (m.peak_flops * g.efficiency)
    calls = busiest * math.ceil(K / g.kc) * CALL_OVERHEAD_CYCLES / _hz(m)
    return compute, calls


def estimate_gemm(m: Machine, g: GemmCoefficients, L: Layer, threads: int, im2col: bool) -> Dict[str, float]:
    Cg, Kg = L.C // L.groups, L.K // L.groups
    P = L.Ho * L.Wo
    depth = Cg * L.R * L.S
    compute, calls = _gemm_seconds(m, g, Kg, P, depth, threads)
    reps = L.N * L.groups
    # B (the input or its patch matrix) is packed once per GEMM: a read and a write.
    pack_b = _copy_seconds(m, 2.0 * depth * P, threads)
    terms = {"compute": reps * compute, "calls": reps * calls, "pack_b": reps * pack_b}
    if im2col:
        terms["im2col"] = reps * _copy_seconds(m, depth * P, 1)   # one thread builds the patch matrix
    terms["sync"] = _sync(threads, reps * 2)
    return terms


# --------------------------------------------------------------------------- Winograd
def winograd_counts(mt: int, L: Layer) -> Dict[str, float]:
    """Flops of F(mt x mt, 3x3) for one image: the transform-domain GEMMs and
    the input/output transforms (a separable (mt+2)-point transform costs
    about 2*(mt+2) adds per element and dimension)."""
    a = mt + 2
    tiles = math.ceil(L.Ho / mt) * math.ceil(L.Wo / mt)
    return {"tiles": tiles,
            "gemm": 2.0 * a * a * L.C * L.K * tiles,
            "input_transform": 2.0 * (a * a * a * 2) * L.C * tiles,
            "output_transform": 2.0 * (a * a * mt + a * mt * mt) * L.K * tiles}


def estimate_winograd(m: Machine, mt: int, L: Layer, threads: int) -> Dict[str, float]:
    c = winograd_counts(mt, L)
    t = max(1, min(threads, int(c["tiles"])))
    peak = m.peak_flops * t
    return {"gemm": L.N * c["gemm"] / (peak * WINOGRAD_GEMM_EFFICIENCY),
            "input_transform": L.N * c["input_transform"] / (peak * TRANSFORM_EFFICIENCY),
            "output_transform": L.N * c["output_transform"] / (peak * TRANSFORM_EFFICIENCY),
            "sync": _sync(t, 2 * L.N)}


# --------------------------------------------------------------------------- depthwise
def estimate_depthwise(m: Machine, L: Layer, ow_tile: int, threads: int) -> Dict[str, float]:
    B = m.lanes
    kblocks = math.ceil(L.K / B)
    t = max(1, min(threads, kblocks))
    share = math.ceil(kblocks / t)
    # One vector FMA and one vector load per tap and output column.
    per_tap = max(1.0 / m.fma_units, 1.0 / LOADS_PER_CYCLE)
    q, rem = divmod(L.Wo, ow_tile)
    row = (q * max(ow_tile * per_tap, m.fma_latency) + rem * max(per_tap, m.fma_latency)) * L.R * L.S \
        + (q + rem) * TILE_OVERHEAD_CYCLES
    compute = L.N * share * L.Ho * row / _hz(m)
    Hp, Wp = L.H + L.pt + L.pb, L.W + L.pl + L.pr
    gather = L.N * share * B * Hp * Wp * COPY_CYCLES_PER_ELEMENT / _hz(m)
    scatter = L.N * share * B * L.Ho * L.Wo * COPY_CYCLES_PER_ELEMENT / _hz(m)
    return {"compute": compute, "gather": gather, "scatter": scatter, "sync": _sync(t, L.N)}


def depthwise_ow_tile(profile: HostProfile) -> int:
    """Output columns per depthwise register tile: enough independent
    accumulators to cover FMA latency x units twice (loads interleave), within
    the register file (one weight and one input vector besides), of the
    fixed-lanes view the kernel is built for."""
    m = Machine(fixed_lanes_profile(profile))
    return int(max(1, min(m.vregs - 2, 2 * math.ceil(m.fma_latency * m.fma_units))))


# --------------------------------------------------------------------------- selection
def applicable(L: Layer) -> Dict[str, Optional[str]]:
    """algorithm -> None if it can run the layer, else why not."""
    wino = None
    if not (L.R == 3 and L.S == 3):
        wino = "needs a 3x3 kernel"
    elif L.sh != 1 or L.sw != 1 or L.dh != 1 or L.dw != 1:
        wino = "needs stride 1 and dilation 1"
    elif L.groups != 1:
        wino = "needs groups = 1"
    return {
        "direct": None if L.groups == 1 else "groups > 1 (the blocked kernel is written for one group)",
        "gemm-1x1": None if L.pointwise else "not a pointwise (1x1, stride 1, unpadded) layer",
        "im2col-gemm": None,
        "winograd-f2": wino,
        "winograd-f4": wino,
        "depthwise": None if (L.groups > 1 and L.groups == L.C and L.K % L.C == 0)
        else "needs groups == C (a multiplier K/C per channel)",
    }


def candidates(profile: HostProfile, L: Layer, threads: int,
               allow: Sequence[str] = ALGORITHMS) -> List[Candidate]:
    m = Machine(fixed_lanes_profile(profile))   # direct, depthwise, Winograd kernels
    g = gemm_coefficients(profile)              # the profile's own GEMM
    why_not = applicable(L)
    out: List[Candidate] = []

    def add(name: str, terms: Dict[str, float]) -> None:
        out.append(Candidate(name, sum(terms.values()), terms))

    for alg in ALGORITHMS:
        reason = why_not[alg] or (None if alg in allow else "not allowed by the spec")
        if reason:
            out.append(Candidate(alg, float("inf"), {}, rejected=reason))
            continue
        if alg == "direct":
            for tile in direct_tiles(profile):
                add(f"direct {tile[0]}x{tile[1]}", estimate_direct(m, L, tile, threads))
        elif alg == "gemm-1x1":
            add(alg, estimate_gemm(m, g, L, threads, im2col=False))
        elif alg == "im2col-gemm":
            add(alg, estimate_gemm(m, g, L, threads, im2col=True))
        elif alg.startswith("winograd"):
            add(alg, estimate_winograd(m, int(alg[-1]), L, threads))
        elif alg == "depthwise":
            add(alg, estimate_depthwise(m, L, depthwise_ow_tile(profile), threads))
    return out


def choose(cands: List[Candidate]) -> Candidate:
    best = min((c for c in cands if c.rejected is None), key=lambda c: c.predicted_s)
    best.chosen = True
    return best


def kernel_name(isa_suffix: str, lanes: int, alg: str) -> str:
    if alg.startswith("direct"):
        return f"f32_conv2d_direct_nchw{lanes}c_{isa_suffix}"
    if alg == "depthwise":
        return f"f32_conv2d_depthwise_nchw{lanes}c_{isa_suffix}"
    if alg.startswith("winograd"):
        mt = alg[-1]
        return f"f32_conv2d_winograd_f{mt}x{mt}_3x3_{isa_suffix}"
    return f"f32_conv2d_{alg.replace('-', '_')}_{isa_suffix}"


def plan_layer(profile: HostProfile, L: Layer, *, isa_suffix: str, threads: int = 1,
               activations: Sequence[str] = ("none",), spec_name: Optional[str] = None,
               allow: Sequence[str] = ALGORITHMS, fixed_lanes_suffix: Optional[str] = None) -> Plan:
    """isa_suffix names the GEMM-based kernels; fixed_lanes_suffix (default:
    isa_suffix) the direct, depthwise and Winograd kernels, which are built for
    the fixed-lanes view of the profile."""
    cands = candidates(profile, L, threads, allow)
    fixed = fixed_lanes_profile(profile)
    best = choose(cands)
    alg = best.name.split()[0]
    params: Dict[str, Param] = {
        "algorithm": Param(alg, "least predicted time among the applicable algorithms (candidates below)"),
        "threads": Param(threads, "spec thread count, capped at the profile's cores"),
    }
    if alg == "direct":
        n, kb = (int(v) for v in best.name.split()[1].split("x"))
        params["tile"] = Param(f"{n}x{kb}", f"{n} output columns x {kb} blocks of {fixed.lanes_f32} channels: "
                               "fits the vector registers (direct_tiles); chosen for this layer's Wo and K edge waste")
        params["tile_index"] = Param(direct_tiles(profile).index((n, kb)), "index in the build's direct tile table")
    if alg == "depthwise":
        params["ow_tile"] = Param(depthwise_ow_tile(profile), "2 x FMA latency x units accumulators "
                                  f"(latency {fixed.fma_latency_cycles}, units {fixed.fma_per_cycle:g} of {fixed.isa})")
    shape = {"N": L.N, "C": L.C, "H": L.H, "W": L.W, "K": L.K, "R": L.R, "S": L.S, "stride_h": L.sh,
             "stride_w": L.sw, "pad_top": L.pt, "pad_left": L.pl, "pad_bottom": L.pb, "pad_right": L.pr,
             "dilation_h": L.dh, "dilation_w": L.dw, "groups": L.groups}
    gemm_based = alg in ("gemm-1x1", "im2col-gemm")
    name = (kernel_name(isa_suffix, profile.lanes_f32, alg) if gemm_based
            else kernel_name(fixed_lanes_suffix or isa_suffix, fixed.lanes_f32, alg))
    plan = Plan(op="conv2d", kernel=name, algorithm=alg,
                isa=profile.isa, shape=shape, params=params, predicted_s=best.predicted_s,
                predicted_terms=dict(best.terms), candidates=cands, activations=list(activations), spec=spec_name)
    plan.notes.append(f"{L.flops / 1e6:.1f} MFLOP; predicted {L.flops / best.predicted_s / 1e9:.1f} GFLOPS "
                      f"of {profile.peak_gflops_per_core * threads:.1f} peak")
    return plan


def model_coefficients(profile: HostProfile) -> Dict[str, float]:
    """Every number the C++ port of this model needs (emitted into the registry):
    the conv kernels' machine terms from the fixed-lanes view (as candidates())."""
    m = Machine(fixed_lanes_profile(profile))
    g = gemm_coefficients(profile)
    return {
        "lanes": m.lanes, "fma_units": m.fma_units, "fma_latency": m.fma_latency, "hz": _hz(m),
        "peak_flops": m.peak_flops, "loads_per_cycle": LOADS_PER_CYCLE, "sync_seconds": SYNC_SECONDS,
        "copy_cycles_per_element": COPY_CYCLES_PER_ELEMENT, "tile_overhead_cycles": TILE_OVERHEAD_CYCLES,
        "call_overhead_cycles": CALL_OVERHEAD_CYCLES, "transform_efficiency": TRANSFORM_EFFICIENCY,
        "winograd_gemm_efficiency": WINOGRAD_GEMM_EFFICIENCY,
        "gemm_mr": g.mr, "gemm_nr": g.nr, "gemm_kc": g.kc, "gemm_efficiency": g.efficiency,
        "depthwise_ow_tile": depthwise_ow_tile(profile),
    }
