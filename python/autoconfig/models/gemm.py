"""Analytical GEMM model (BLIS-style blocking, AutoConfig-style selection).

For a shape (or for "any shape") it enumerates register tiles that fit the
vector register file, derives kc/mc/nc from the cache hierarchy, predicts the
time of each candidate from named terms, and keeps the cheapest. Nothing is
measured here: every number comes from the HostProfile or a named constant in
models/machine.py.

Time model for C[M,N] += A[M,K] B[K,N] on t threads with tile mr x nr:
  compute = 2*Mp*Np*K / (peak * tile_eff) / t_balanced     (Mp, Np rounded up to the tile)
  tile_eff = FMA cycles / (max(FMA cycles, load cycles, FMA latency) per k step
             x (1 + jitter), plus the C-tile load/store per kc block)
  stream_A = A panel bytes read from L2 per B micro-panel / L2 bandwidth (overlaps compute)
  stream_B = B bytes / bandwidth, when B is read in place (M fits one row of tiles per thread)
  pack     = bytes copied into packed A and B / bandwidth of where they come from
  c_io     = C read+write per kc block / bandwidth of where C lives
  sync     = barriers * SYNC_SECONDS when t > 1
  total    = max(compute, stream_A, stream_B) + pack + c_io + sync
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..plan import Candidate, Param, Plan
from ..profile import HostProfile
from .machine import ISSUE_JITTER, LOADS_PER_CYCLE, SYNC_SECONDS, Machine

F32 = 4
NC_CAP = 4096            # beyond this, nc buys nothing and costs L3 (BLIS practice)
KC_QUANTUM = 8           # kc is a multiple of this (keeps unrolled k loops whole)
MR_LIMIT = 16            # largest mr considered (one broadcast per row per k)


@dataclass(frozen=True)
class Tile:
    mr: int
    nr: int
    nv: int               # vectors per row of the tile

    @property
    def name(self) -> str:
        return f"{self.mr}x{self.nr}"


def register_tiles(m: Machine) -> List[Tile]:
    """Tiles whose accumulators + B vectors + one broadcast fit the register file.

    For each width nv (vectors) keep the tallest mr that fits, plus mr in
    {1, 2, 4} for skinny M; ties in efficiency are then decided by the shape.
    """
    tiles = []
    for nv in range(1, m.vregs):
        tallest = (m.vregs - 1 - nv) // nv
        if tallest < 1:
            break
        tallest = min(tallest, MR_LIMIT)
        for mr in sorted({tallest, 1, 2, 4}):
            if mr <= tallest:
                tiles.append(Tile(mr, nv * m.lanes, nv))
    return tiles


def tile_efficiency(m: Machine, t: Tile, kc: int) -> Tuple[float, Dict[str, float]]:
    """Fraction of FMA peak the microkernel sustains, and the cycle terms behind it."""
    acc = t.mr * t.nv
    fma_cycles = acc / m.fma_units
    load_cycles = (t.mr + t.nv) / LOADS_PER_CYCLE
    latency_cycles = m.fma_latency           # each accumulator is updated once per k
    per_k = max(fma_cycles, load_cycles, latency_cycles)
    jitter = ISSUE_JITTER * m.fma_latency * m.fma_units / acc   # fewer spare chains, more stalls
    c_tile_cycles = 2 * acc / LOADS_PER_CYCLE  # C tile read + written once per kc block
    eff = fma_cycles / (per_k * (1 + jitter) + c_tile_cycles / max(kc, 1))
    return eff, {"fma_cyc": fma_cycles, "load_cyc": load_cycles, "lat_cyc": latency_cycles,
                 "jitter": jitter}


def kc_for(m: Machine, t: Tile) -> int:
    """Largest kc with the B micro-panel (kc x nr) and the A micro-panel
    (mr x kc) in L1 within W-1 ways (one way left for C and the stack)."""
    limit = m.cache(1).ways - 1
    best = KC_QUANTUM
    kc = KC_QUANTUM
    while kc <= 2048:
        if m.ways_l1(kc * t.nr * F32) + m.ways_l1(kc * t.mr * F32) <= limit:
            best = kc
        kc += KC_QUANTUM
    return best


def mc_for(m: Machine, t: Tile, kc: int) -> int:
    """Packed A block (mc x kc) in half of L2: the other half holds the B
    micro-panels streaming through and C tiles."""
    budget = m.cache(2).size_bytes // 2
    return max(t.mr, (budget // (kc * F32)) // t.mr * t.mr)


def nc_for(m: Machine, t: Tile, kc: int) -> int:
    """Packed B block (kc x nc) in half of this core's L3 share, capped."""
    budget = m.cache(3).size_bytes // 2
    nc = (budget // (kc * F32)) // t.nr * t.nr
    return max(t.nr, min(nc, NC_CAP // t.nr * t.nr))


def balanced(total: int, step: int, quantum: int) -> int:
    """Equal blocks no larger than step covering total, rounded up to quantum."""
    blocks = max(1, math.ceil(total / step))
    return min(step, math.ceil(math.ceil(total / blocks) / quantum) * quantum)


def thread_grid(M: int, N: int, t: Tile, threads: int) -> Tuple[int, int]:
    """Same rule as choose_grid() in gemm_driver.h."""
    mt, nt = math.ceil(M / t.mr), math.ceil(N / t.nr)
    best, grid = None, (1, threads)
    for a in range(1, threads + 1):
        if threads % a:
            continue
        b = threads // a
        cost = math.ceil(mt / a) * math.ceil(nt / b) * 4 + math.ceil(nt / threads) + math.ceil(mt / a)
        if best is None or cost < best:
            best, grid = cost, (a, b)
    return grid


@dataclass
class Estimate:
    seconds: float
    terms: Dict[str, float]
    kc: int
    mc: int
    nc: int
    threads: int
    grid: Tuple[int, int]


def estimate(m: Machine, t: Tile, M: int, N: int, K: int, threads: int) -> Estimate:
    kc_max = kc_for(m, t)
    kc = balanced(K, kc_max, KC_QUANTUM)
    threads = max(1, min(threads, math.ceil(M / t.mr) * math.ceil(N / t.nr)))
    tm, tn = thread_grid(M, N, t, threads)
    m_per_thread = math.ceil(math.ceil(M / t.mr) / tm) * t.mr
    mc = min(mc_for(m, t, kc_max), m_per_thread)
    nc = balanced(N, nc_for(m, t, kc_max), t.nr)

    eff, _ = tile_efficiency(m, t, kc)
    mtiles, ntiles = math.ceil(M / t.mr), math.ceil(N / t.nr)
    busiest = math.ceil(mtiles / tm) * math.ceil(ntiles / tn)      # tiles of the busiest thread
    flops_busiest = 2.0 * busiest * t.mr * t.nr * K
    compute = flops_busiest / (m.peak_flops * eff)

    # A micro-panels stream from L2 once per B micro-panel.
    a_stream = (m_per_thread * K * F32) * math.ceil(ntiles / tn) / m.bandwidth("L2")
    a_bytes, b_bytes, c_bytes = M * K * F32, K * N * F32, M * N * F32
    jc_blocks, k_blocks = math.ceil(N / nc), math.ceil(K / kc)
    # Row-major B with one row of micro-tiles per thread is read in place
    # (packing would double its traffic for no reuse): same rule as gemm_run().
    direct_b = mtiles <= tm
    if direct_b:
        pack_b = 0.0
        # Each k step reads an nr-wide row segment; rows are not line-aligned
        # in general, so a segment touches one line more than it fills.
        line = m.cache(1).line_bytes
        touched = (math.ceil(t.nr * F32 / line) + 1) * line / (t.nr * F32)
        b_stream = (b_bytes * touched / tn) / m.bandwidth(m.level_of(b_bytes))
    else:
        pack_b = 2 * b_bytes / m.bandwidth(m.level_of(b_bytes)) / threads
        b_stream = 0.0
    pack_a = 2 * (a_bytes / tm) * jc_blocks / m.bandwidth(m.level_of(a_bytes))
    c_io = 2 * (c_bytes / threads) * k_blocks / m.bandwidth(m.level_of(c_bytes))
    sync = (jc_blocks * k_blocks + 1) * SYNC_SECONDS if threads > 1 else 0.0
    total = max(compute, a_stream, b_stream) + pack_a + pack_b + c_io + sync
    terms = {"compute": compute, "a_stream": a_stream, "b_stream": b_stream, "pack_a": pack_a,
             "pack_b": pack_b, "c_io": c_io, "sync": sync}
    return Estimate(total, terms, kc, mc, nc, threads, (tm, tn))


def _tile_reason(m: Machine, t: Tile) -> str:
    acc = t.mr * t.nv
    return (f"{acc} accumulators + {t.nv} B vectors + 1 broadcast = {acc + t.nv + 1} <= "
            f"{m.vregs} vector registers; {acc} independent FMAs >= latency {m.fma_latency:g} x "
            f"{m.fma_units:g} units = {m.fma_latency * m.fma_units:g}"
            if acc >= m.fma_latency * m.fma_units else
            f"{acc} accumulators + {t.nv} B vectors + 1 broadcast = {acc + t.nv + 1} <= {m.vregs} "
            f"registers (latency-bound: {acc} < {m.fma_latency * m.fma_units:g} chains)")


def _params(m: Machine, t: Tile, kc_max: int, mc: int, nc: int, threads: int,
            grid: Optional[Tuple[int, int]]) -> Dict[str, Param]:
    l1, l2, l3 = m.cache(1), m.cache(2), m.cache(3)
    p = {
        "mr": Param(t.mr, _tile_reason(m, t)),
        "nr": Param(t.nr, f"{t.nv} x {m.lanes} lanes (vector_bits={m.profile.vector_bits})"),
        "kc": Param(kc_max, f"B panel {kc_max}x{t.nr} + A panel {t.mr}x{kc_max} fp32 in "
                            f"{m.ways_l1(kc_max * t.nr * F32)}+{m.ways_l1(kc_max * t.mr * F32)} <= "
                            f"{l1.ways - 1} of {l1.ways} L1 ways ({l1.size_bytes >> 10} KiB, {l1.source})"),
        "mc": Param(mc, f"packed A {mc}x{kc_max} fp32 <= half of L2 ({l2.size_bytes >> 10} KiB, {l2.source})"),
        "nc": Param(nc, f"packed B {kc_max}x{nc} fp32 <= half of L3 per core "
                        f"({l3.size_bytes >> 10} KiB, {l3.source}), capped at {NC_CAP}"),
        "threads": Param(threads, "fewest-seconds thread count in 1..cores "
                                  f"({m.profile.cores}) with {SYNC_SECONDS * 1e6:g} us per barrier"),
    }
    if grid is not None:
        p["grid"] = Param(f"{grid[0]}x{grid[1]}", "threads along M x N minimising the busiest thread's tiles")
    return p


def kernel_name(isa_suffix: str, t: Tile, shape: Optional[Tuple[int, int, int]]) -> str:
    base = f"f32_gemm_{t.mr}x{t.nr}_{isa_suffix}"
    if shape is None:
        return base + "_generic"
    M, N, K = shape
    return f"{base}_m{M}_n{N}_k{K}"


def plan_shape(profile: HostProfile, M: int, N: int, K: int, *, isa_suffix: str,
               activations: Sequence[str] = ("none",), spec_name: Optional[str] = None,
               op: str = "matmul", tiles: Optional[Iterable[Tile]] = None) -> Plan:
    """Plan for one concrete shape: best tile, blocking and thread count."""
    m = Machine(profile)
    cands: List[Candidate] = []
    best = None
    for t in (tiles or register_tiles(m)):
        # thread count: the fewest seconds over 1..cores
        ests = [estimate(m, t, M, N, K, th) for th in range(1, max(1, profile.cores) + 1)]
        e = min(ests, key=lambda e: e.seconds)
        eff, _ = tile_efficiency(m, t, e.kc)
        terms = dict(e.terms)
        terms["tile_eff"] = eff
        terms["threads"] = e.threads
        cands.append(Candidate(f"tile {t.name}", e.seconds, terms))
        if best is None or e.seconds < best[1].seconds:
            best = (t, e)
    t, e = best
    for c in cands:
        c.chosen = c.name == f"tile {t.name}"
    cands.sort(key=lambda c: c.predicted_s)
    kc_max = kc_for(m, t)
    return Plan(op=op, kernel=kernel_name(isa_suffix, t, (M, N, K)), algorithm="blis-gemm",
                isa=profile.isa, shape={"M": M, "N": N, "K": K},
                params=_params(m, t, kc_max, max(e.mc, t.mr), e.nc, e.threads, e.grid),
                predicted_s=e.seconds, predicted_terms=e.terms, candidates=cands[:8],
                activations=list(activations), spec=spec_name)


# Shapes the generic kernel is chosen for: the square sizes users meet most
# and a few rectangular ones; the tile with the least total predicted time wins.
GENERIC_REFERENCE_SHAPES = [(n, n, n) for n in (64, 128, 256, 512, 1024)] + [
    (128, 768, 768), (128, 3072, 768), (32, 1000, 2048), (384, 384, 64)]


def plan_generic(profile: HostProfile, *, isa_suffix: str,
                 reference: Sequence[Tuple[int, int, int]] = GENERIC_REFERENCE_SHAPES,
                 op: str = "matmul") -> Plan:
    """The any-shape kernel: one tile, blocking from the caches, threads and
    k/n balancing decided at run time by the same rules."""
    m = Machine(profile)
    cands = []
    best = None
    for t in register_tiles(m):
        if t.mr < 4:          # skinny tiles lose on most shapes; specialized plans may still pick them
            continue
        total = 0.0
        for (M, N, K) in reference:
            total += estimate(m, t, M, N, K, 1).seconds
        cands.append(Candidate(f"tile {t.name}", total, {"sum_over_reference_shapes_s": total}))
        if best is None or total < best[1]:
            best = (t, total)
    t, _ = best
    for c in cands:
        c.chosen = c.name == f"tile {t.name}"
    cands.sort(key=lambda c: c.predicted_s)
    kc_max = kc_for(m, t)
    params = _params(m, t, kc_max, mc_for(m, t, kc_max), nc_for(m, t, kc_max), 0, None)
    params["threads"] = Param(0, "chosen per call: min(cores, work / (50 us of peak compute))")
    return Plan(op=op, kernel=kernel_name(isa_suffix, t, None), algorithm="blis-gemm",
                isa=profile.isa, shape=None, params=params, predicted_s=None,
                candidates=cands[:8], activations=["none", "relu", "relu6", "gelu_tanh", "gelu_erf"],
                notes=["reference shapes: " + ", ".join(f"{a}x{b}x{c}" for a, b, c in reference)])
