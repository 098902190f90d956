"""Analytical GEMM model (BLIS-style blocking, AutoConfig-style selection).

For a shape (or for "any shape") it enumerates register tiles that fit the
vector register file, derives kc/mc/nc from the cache hierarchy, predicts the
time of each candidate from named terms, and keeps the cheapest. Nothing is
measured here: every number comes from the HostProfile or a named constant in
models/machine.py.

Time model for C[M,N] += A[M,K] B[K,N] on t threads with tile mr x nr:
  compute = 2*Mp*Np*K / (peak * tile_eff) / t_balanced     (Mp, Np rounded up to the tile)
  tile_eff = FMA cycles / (max(FMA cycles, load cycles, FMA latency) per k step
             x (1 + jitter), plus the C-tile load/store per kc block, plus L2
             misses of C rows that alias in one L1 set when N*4 is a multiple
             of the L1 way size)
Two loop orders (gemm_driver.h: LoopOrder), each with its own blocking:
  b-panel-in-L1 (BLIS): B block kc x nc in L3, A block mc x kc in L2; every
      B micro-panel sweeps the A block. A is packed once per B block (once
      when nc covers N or the rows fit one A block), B once. kc: both
      micro-panels in the L1 ways left for panels.
  a-panel-in-L1: B block kc x nc in L2, A block mc x kc in L3; every A
      micro-panel sweeps the B block. A thread's A block is packed once per
      k block when its rows fit one block (mc from L3 makes that the rule),
      else once per B block, a micro-panel at a time before its sweep; a
      small A whose rows spread over the L1 sets is read in place instead.
      kc: the A micro-panel in half the panel ways (B's lines stream past).
  stream_A/B = bytes each operand's micro-panels bring into L1 / bandwidth of
             the level their block lives in (B from memory when read in place)
  pack     = bytes copied into packed A and B / bandwidth of where they come from
  c_io     = C read+write per kc block / bandwidth of where C lives
  sync     = barriers * SYNC_SECONDS when t > 1 (one per packed B block, and the join)
  calls    = microkernel calls * CALL_OVERHEAD_CYCLES / clock
  total    = max(compute + calls, stream_A, stream_B) + pack + c_io + sync
B prepared ahead (estimate(prepared_b=True): a layer's constant weights,
packed once by PreparedGemmB in the order the loops read them):
  pack_B   = 0 (no per-call copy), sync = the join only (no block to wait for)
  stream_B = b-panel-in-L1: each B micro-panel comes into L1 once per A block
             from where the prepared copy lives; a-panel-in-L1: the first
             sweep of a B block reads it from there, the others from L2
Cold B (estimate(cold_b=True), estimate_gemv(cold_b=True): constant weights
inside a network whose weights do not fit in L3, graph/planner.py): the
call's first read of B comes from DRAM (stream_B's first pass, or the GEMV's
whole stream, at the DRAM bandwidth); the B micro-panels are streamed with
the next one prefetched, so this stays inside max(compute, streams).
The plan keeps one kernel (tile, KC) per shape and gives it a second blocking
for a prepared B (params prepared_*): PREPARED_B_ORDER, kc <= the compiled KC.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..plan import Candidate, Param, Plan
from ..profile import HostProfile
from ..vocabulary import ACTIVATIONS
from .machine import (CALL_OVERHEAD_CYCLES, ISSUE_JITTER, L2_LATENCY_CYCLES, LOADS_PER_CYCLE,
                      SYNC_SECONDS, Machine)

F32 = 4
MC_CAP = 4096            # beyond this, a bigger A block buys nothing
NC_CAP = 4096            # beyond this, a bigger B block buys nothing (A is packed N/nc times)
KC_QUANTUM = 8           # kc is a multiple of this (keeps unrolled k loops whole)
MR_LIMIT = 16            # largest mr considered (one broadcast per row per k)
# L1 ways kept free of the A and B micro-panels: one for the C tile and the
# stack; on caches of 8 or more ways a second one for the lines the
# prefetchers bring in ahead of use (the streaming operand's next panel, the C
# tile fetched before the epilogue), which otherwise evict the resident panel
# (measured on Zen 3, 8 ways: 6x16 at kc 256 beats kc 320 by 2-4%). With
# fewer ways a whole way is too coarse a unit for those few lines.
LOOKAHEAD_WAY_MIN_WAYS = 8
DIRECT_A_L2_MULTIPLE = 2  # a-panel-in-L1 reads A in place up to this many L2s (direct_a_panel_bytes)
# a-panel-in-L1: deepest k block. Deeper blocks leave the L2-resident B block
# (kc x nc) only a few micro-panels wide, so the A block is streamed again for
# every few columns (measured on Zen 3, 6x16: kc 512 beats 256 and 384 at
# 384^3..1024^3).
A_PANEL_KC_CAP = 512
# Loop order when B was prepared ahead (PreparedGemmB). The b-panel order
# reads each B micro-panel from the prepared copy once per A block, with the
# next one prefetched during the current sweep (gemm_thread: RowsPrefetch);
# the a-panel order reads a B block from it only when its first A micro-panel
# sweeps it, with nothing fetching ahead, and then from L2 at every sweep
# (measured on Zen 3, 4x24, prepared B, 1 thread, under load: b-panel 89% of
# peak vs a-panel 81% at 128x768x768, and ahead at 128x3072x768 and
# 128x768x3072). Both orders are timed by estimate(prepared_b=True).
PREPARED_B_ORDER = "b-panel-in-L1"


def l1_ways_for_panels(m: Machine) -> int:
    ways = m.cache(1).ways
    return ways - (2 if ways >= LOOKAHEAD_WAY_MIN_WAYS else 1)


# Loop orders, by the micro-panel that stays in L1 (values: gemm_driver.h LoopOrder).
A_PANEL_IN_L1 = "a-panel-in-L1"
B_PANEL_IN_L1 = "b-panel-in-L1"
LOOP_ORDERS = (B_PANEL_IN_L1, A_PANEL_IN_L1)
LOOP_ORDER_ENUM = {A_PANEL_IN_L1: "kAPanelInL1", B_PANEL_IN_L1: "kBPanelInL1"}


@dataclass(frozen=True)
class Tile:
    mr: int
    nr: int
    nv: int               # vectors per row of the tile

    @property
    def name(self) -> str:
        return f"{self.mr}x{self.nr}"


def register_tiles(m: Machine) -> List[Tile]:
    """Tiles whose accumulators + B vectors + one broadcast (+ the product
    copy of two-operand code, Machine.product_registers) fit the register file.

    For each width nv (vectors) keep the tallest mr that fits, plus mr in
    {1, 2, 4} for skinny M; ties in efficiency are then decided by the shape.
    """
    tiles = []
    for nv in range(1, m.vregs):
        tallest = (m.vregs - 1 - nv - m.product_registers(nv)) // nv
        if tallest < 1:
            break
        tallest = min(tallest, MR_LIMIT)
        for mr in sorted({tallest, 1, 2, 4}):
            if mr <= tallest:
                tiles.append(Tile(mr, nv * m.lanes, nv))
    return tiles


def c_alias_cycles(m: Machine, t: Tile, ldc: Optional[int]) -> float:
    """Extra cycles per tile store when C's rows all map to one L1 set.

    With a row stride that is a multiple of the L1 way size (N = 1024, 2048,
    ... floats), the mr rows of a C tile compete for the ways of one set; rows
    beyond ways-1 miss to L2 at every store of the tile."""
    if ldc is None:
        return 0.0
    l1 = m.cache(1)
    if (ldc * F32) % m.l1_way_bytes():
        return 0.0
    extra_rows = max(0, t.mr - (l1.ways - 1))
    lines_per_row = math.ceil(t.nr * F32 / l1.line_bytes)
    return extra_rows * lines_per_row * L2_LATENCY_CYCLES


def tile_efficiency(m: Machine, t: Tile, kc: int, ldc: Optional[int] = None) -> Tuple[float, Dict[str, float]]:
    """Fraction of FMA peak the microkernel sustains, and the cycle terms behind it."""
    acc = t.mr * t.nv
    fma_cycles = acc / m.fma_units
    load_cycles = (t.mr + t.nv) / LOADS_PER_CYCLE
    latency_cycles = m.fma_latency           # each accumulator is updated once per k
    per_k = max(fma_cycles, load_cycles, latency_cycles)
    jitter = ISSUE_JITTER * m.fma_latency * m.fma_units / acc   # fewer spare chains, more stalls
    c_tile_cycles = 2 * acc / LOADS_PER_CYCLE  # C tile read + written once per kc block
    alias = c_alias_cycles(m, t, ldc)
    eff = fma_cycles / (per_k * (1 + jitter) + (c_tile_cycles + alias) / max(kc, 1))
    return eff, {"fma_cyc": fma_cycles, "load_cyc": load_cycles, "lat_cyc": latency_cycles,
                 "jitter": jitter, "c_alias_cyc": alias}


# kc_for by (L1 bytes, L1 ways, mr, nr, order): it tries every kc up to 2048,
# and the tuning space and the predictor's features ask for every tile.
_KC_CACHE: Dict[Tuple[int, int, int, int, str], int] = {}


def kc_for(m: Machine, t: Tile, order: str = B_PANEL_IN_L1) -> int:
    l1 = m.cache(1)
    key = (l1.size_bytes, l1.ways, t.mr, t.nr, order)
    if key not in _KC_CACHE:
        _KC_CACHE[key] = _kc_for(m, t, order)
    return _KC_CACHE[key]


def _kc_for(m: Machine, t: Tile, order: str) -> int:
    """b-panel-in-L1: largest kc with the B micro-panel (kc x nr) and the A
    micro-panel (mr x kc) in the L1 ways left for panels, counted as whole
    ways: B stays, A's lines pass through.
    a-panel-in-L1: only the A micro-panel stays; it may take half of those
    ways (the other half for the B lines streaming past, as for an in-place A),
    up to A_PANEL_KC_CAP."""
    limit = l1_ways_for_panels(m)
    best = KC_QUANTUM
    kc = KC_QUANTUM
    while kc <= 2048:
        if order == A_PANEL_IN_L1:
            fits = kc <= A_PANEL_KC_CAP and m.ways_l1(kc * t.mr * F32) <= max(1, limit // 2)
        else:
            fits = m.ways_l1(kc * t.nr * F32) + m.ways_l1(kc * t.mr * F32) <= limit
        if fits:
            best = kc
        kc += KC_QUANTUM
    return best


def mc_for(m: Machine, t: Tile, kc: int, order: str) -> int:
    """Packed A block (mc x kc).
    b-panel-in-L1: every B micro-panel sweeps it, so it stays in half of L2
    (the other half: the B micro-panels and C tiles passing through).
    a-panel-in-L1: its micro-panels are used one at a time from L1, so it only
    has to stay in half of this core's L3 share; capped at MC_CAP."""
    if order == B_PANEL_IN_L1:
        budget = m.cache(2).size_bytes // 2
    else:
        budget = m.cache(3).size_bytes // 2
    mc = (budget // (kc * F32)) // t.mr * t.mr
    return max(t.mr, min(mc, MC_CAP // t.mr * t.mr))


def nc_for(m: Machine, t: Tile, kc: int, order: str) -> int:
    """Packed B block (kc x nc), double-buffered.
    a-panel-in-L1: every A micro-panel sweeps it, so it stays in half of L2.
    b-panel-in-L1: its micro-panels are used one at a time from L1, so the two
    buffers only have to stay in half of this core's L3 share; capped at NC_CAP."""
    if order == A_PANEL_IN_L1:
        budget = m.cache(2).size_bytes // 2
        return max(t.nr, (budget // (kc * F32)) // t.nr * t.nr)
    budget = m.cache(3).size_bytes // 4
    nc = (budget // (kc * F32)) // t.nr * t.nr
    return max(t.nr, min(nc, NC_CAP // t.nr * t.nr))


def direct_a_bytes(m: Machine) -> int:
    """A row-major A that fits L1 is cheaper to read in place than to copy."""
    return m.cache(1).size_bytes


def direct_a_panel_bytes(m: Machine) -> int:
    """a-panel-in-L1: largest row-major A whose micro-panels are read in place.
    Each micro-panel is then read once from where A lives and kept in L1 for
    its sweep over the B block, so packing it only adds a copy; past a few
    L2s of A the in-place rows (one stream and one page each) cost the time
    the copy saves (measured on Zen 3: in place 2-5% faster up to 512^2, 1 MiB
    of A; no faster at 1000^2, 4 MiB)."""
    return DIRECT_A_L2_MULTIPLE * m.cache(2).size_bytes


def direct_a_lines_per_set(m: Machine) -> int:
    """Most lines of an in-place A micro-panel allowed in one L1 set: half the
    panel ways, the rest for the B lines streaming past it."""
    return max(1, l1_ways_for_panels(m) // 2)


def lines_per_l1_set(m: Machine, lda: int, kc: int, rows: int) -> int:
    """Most cache lines `rows` rows of kc floats, lda floats apart, put in one
    L1 set (same count as gemm_driver.h: lines_per_l1_set). With lda a multiple
    of the way size every row lands in the same sets."""
    line = m.cache(1).line_bytes
    sets = max(1, m.l1_way_bytes() // line)
    count: Dict[int, int] = {}
    for r in range(rows):
        first = r * lda * F32 // line
        last = ((r * lda + kc) * F32 - 1) // line
        for ln in range(first, last + 1):
            count[ln % sets] = count.get(ln % sets, 0) + 1
    return max(count.values(), default=0)


def a_in_place(m: Machine, t: Tile, M: int, K: int, kc: int, order: str) -> bool:
    """Whether gemm_run() reads a contiguous row-major A in place (lda = K)."""
    a_bytes = M * K * F32
    if a_bytes <= direct_a_bytes(m):
        return True
    return (order == A_PANEL_IN_L1 and a_bytes <= direct_a_panel_bytes(m)
            and lines_per_l1_set(m, K, kc, t.mr) <= direct_a_lines_per_set(m))


def balanced(total: int, step: int, quantum: int) -> int:
    """Equal blocks no larger than step covering total, rounded up to quantum."""
    blocks = max(1, math.ceil(total / step))
    return min(step, math.ceil(math.ceil(total / blocks) / quantum) * quantum)


def thread_grid(M: int, N: int, t: Tile, threads: int, order: str = B_PANEL_IN_L1) -> Tuple[int, int]:
    """Same rule as choose_grid() in gemm_driver.h: the busiest thread's tiles
    plus its packing; with the A micro-panel in L1 every thread sweeps its whole
    A block once per B block, so a row group's A panel weighs like a tile."""
    mt, nt = math.ceil(M / t.mr), math.ceil(N / t.nr)
    a_weight = 4 if order == A_PANEL_IN_L1 else 1
    best, grid = None, (1, threads)
    for a in range(1, threads + 1):
        if threads % a:
            continue
        b = threads // a
        cost = math.ceil(mt / a) * math.ceil(nt / b) * 4 + math.ceil(nt / threads) + a_weight * math.ceil(mt / a)
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
    order: str = B_PANEL_IN_L1


def estimate_gemv(m: Machine, N: int, K: int, threads: int, cold_b: bool = False) -> Estimate:
    """M == 1, row-major B: B's rows stream once, in order (gemm_run's gemv
    path); bound by the bandwidth of wherever B lives (DRAM when cold_b)."""
    threads = max(1, min(threads, math.ceil(N / 16)))
    b_bytes = K * N * F32
    b_stream = b_bytes / threads / m.bandwidth("DRAM" if cold_b else m.level_of(b_bytes))
    compute = 2.0 * K * N / threads / m.peak_flops
    sync = SYNC_SECONDS if threads > 1 else 0.0
    total = max(compute, b_stream) + sync
    return Estimate(total, {"compute": compute, "b_stream": b_stream, "sync": sync}, K, 1, N, threads, (1, threads))


def estimate(m: Machine, t: Tile, M: int, N: int, K: int, threads: int,
             order: str = B_PANEL_IN_L1, *, prepared_b: bool = False,
             kc_limit: Optional[int] = None, cold_b: bool = False) -> Estimate:
    """prepared_b: B was packed once ahead (PreparedGemmB), so the call
    neither copies it nor waits at a barrier per B block; kc_limit: the
    deepest k block the kernel was compiled for (a prepared blocking shares
    its kernel's tile and KC); cold_b: a prepared B (or a GEMV's B) is
    first read from DRAM on every call (module docstring)."""
    if M == 1 and not prepared_b:
        return estimate_gemv(m, N, K, threads, cold_b)
    kc_max = kc_for(m, t, order)
    if kc_limit:
        kc_max = min(kc_max, kc_limit)
    kc = balanced(K, kc_max, KC_QUANTUM)
    threads = max(1, min(threads, math.ceil(M / t.mr) * math.ceil(N / t.nr)))
    tm, tn = thread_grid(M, N, t, threads, order)
    m_per_thread = math.ceil(math.ceil(M / t.mr) / tm) * t.mr
    mc = balanced(m_per_thread, mc_for(m, t, kc_max, order), t.mr)
    nc = balanced(N, nc_for(m, t, kc_max, order), t.nr)

    eff, _ = tile_efficiency(m, t, kc, ldc=N)   # C contiguous: row stride N
    mtiles, ntiles = math.ceil(M / t.mr), math.ceil(N / t.nr)
    busiest = math.ceil(mtiles / tm) * math.ceil(ntiles / tn)      # tiles of the busiest thread
    flops_busiest = 2.0 * busiest * t.mr * t.nr * K
    compute = flops_busiest / (m.peak_flops * eff)
    # fixed cost per microkernel call, at the clock implied by the peak
    hz = m.peak_flops / (2 * m.lanes * m.fma_units)
    calls = busiest * math.ceil(K / kc) * CALL_OVERHEAD_CYCLES / hz

    a_bytes, b_bytes, c_bytes = M * K * F32, K * N * F32, M * N * F32
    jc_blocks, k_blocks = math.ceil(N / nc), math.ceil(K / kc)
    a_block = min(mc, m_per_thread) * kc * F32
    b_block = min(nc, N) * kc * F32
    # Row-major B with one row of micro-tiles per thread is read in place
    # (packing would double its traffic for no reuse): same rule as gemm_run().
    # Each thread then has one A micro-panel: the loop order does not matter.
    direct_a = a_in_place(m, t, M, K, kc, order)     # same rule as gemm_run()
    one_panel = N == t.nr            # B's rows are then already the packed layout
    direct_b = not prepared_b and (mtiles <= tm or one_panel)
    b_home = m.bandwidth(m.level_of(b_bytes))   # where B itself lives
    b_first = m.bandwidth("DRAM") if cold_b and prepared_b else b_home   # the call's first read of B
    if prepared_b:
        # B's panels are read where the prepared copy lives, never copied:
        # b-panel-in-L1 brings each micro-panel into L1 once per A block; with
        # the A micro-panel in L1 the first sweep brings the B block into L2
        # from there and the others read it in L2.
        pack_b = 0.0
        if order == B_PANEL_IN_L1:
            a_stream = math.ceil(ntiles / tn) * (a_bytes / tm) / m.bandwidth("L2")
            b_stream = (b_bytes / tn) / b_first + (math.ceil(m_per_thread / mc) - 1) * (b_bytes / tn) / b_home
        else:
            b_stream = (math.ceil(mtiles / tm) - 1) * (b_bytes / tn) / m.bandwidth("L2") + (b_bytes / tn) / b_first
            a_home = a_bytes if direct_a else a_block
            a_stream = (a_bytes / tm) * jc_blocks / m.bandwidth(m.level_of(a_home))
    elif direct_b:
        pack_b = 0.0
        # Each k step reads an nr-wide row segment; rows are not line-aligned
        # in general, so a segment touches one line more than it fills.
        line = m.cache(1).line_bytes
        touched = 1.0 if one_panel else (math.ceil(t.nr * F32 / line) + 1) * line / (t.nr * F32)
        # B is read once per row of micro-tiles the thread owns: once when it
        # has one; N == nr with more rows sweeps the whole of B (its one
        # panel) per micro-tile row, from wherever B fits. (128^3 on the Zen 5
        # VM, tile 2x128, 1 thread: 36 us measured, 20 us predicted with one
        # sweep; 64 sweeps of 64 KiB from L2 take 24 us.)
        sweeps = math.ceil(mtiles / tm)
        b_stream = sweeps * (b_bytes * touched / tn) / m.bandwidth(m.level_of(b_bytes))
        a_stream = (a_bytes / tm) * jc_blocks / m.bandwidth(m.level_of(a_block))
    elif order == B_PANEL_IN_L1:
        pack_b = 2 * b_bytes / m.bandwidth(m.level_of(b_bytes)) / threads
        # every B micro-panel sweeps the thread's A block from L2 ...
        a_stream = math.ceil(ntiles / tn) * (a_bytes / tm) / m.bandwidth("L2")
        # ... and comes into L1 once per A block, from where the B block lives
        b_stream = math.ceil(m_per_thread / mc) * (b_bytes / tn) / m.bandwidth(m.level_of(2 * b_block))
    else:
        pack_b = 2 * b_bytes / m.bandwidth(m.level_of(b_bytes)) / threads
        # every A micro-panel sweeps the thread's share of the L2-resident B block ...
        b_stream = math.ceil(mtiles / tm) * (b_bytes / tn) / m.bandwidth("L2")
        # ... and comes into L1 once per B block, from where the A block
        # lives (A itself when it is read in place)
        a_home = a_bytes if direct_a else a_block
        a_stream = (a_bytes / tm) * jc_blocks / m.bandwidth(m.level_of(a_home))
    # A thread whose rows fit one A block packs it once per k block (gemm_thread: a_once)
    a_packs = 1 if m_per_thread <= mc else jc_blocks
    pack_a = 0.0 if direct_a else 2 * (a_bytes / tm) * a_packs / m.bandwidth(m.level_of(a_bytes))
    c_io = 2 * (c_bytes / threads) * k_blocks / m.bandwidth(m.level_of(c_bytes))
    # a barrier after each packed B block, and the join; a prepared B needs only the join
    barriers = 1 if prepared_b else jc_blocks * k_blocks + 1
    sync = barriers * SYNC_SECONDS if threads > 1 else 0.0
    total = max(compute + calls, a_stream, b_stream) + pack_a + pack_b + c_io + sync
    terms = {"compute": compute, "calls": calls, "a_stream": a_stream, "b_stream": b_stream,
             "pack_a": pack_a, "pack_b": pack_b, "c_io": c_io, "sync": sync}
    return Estimate(total, terms, kc, mc, nc, threads, (tm, tn), order)


def _tile_reason(m: Machine, t: Tile) -> str:
    acc = t.mr * t.nv
    copy = m.product_registers(t.nv)
    regs = (f"{acc} accumulators + {t.nv} B vectors + 1 broadcast"
            + (f" + {copy} product copy (two-operand multiply)" if copy else "")
            + f" = {acc + t.nv + 1 + copy} <= {m.vregs}")
    return (f"{regs} vector registers; {acc} independent FMAs >= latency {m.fma_latency:g} x "
            f"{m.fma_units:g} units = {m.fma_latency * m.fma_units:g}"
            if acc >= m.fma_latency * m.fma_units else
            f"{regs} registers (latency-bound: {acc} < {m.fma_latency * m.fma_units:g} chains)")


def _kc_reason(m: Machine, t: Tile, kc: int, order: str) -> str:
    l1 = m.cache(1)
    where = f"{l1_ways_for_panels(m)} of {l1.ways} L1 ways ({l1.size_bytes >> 10} KiB, {l1.source}"
    if order == A_PANEL_IN_L1:
        return (f"A panel {t.mr}x{kc} fp32 in {m.ways_l1(kc * t.mr * F32)} <= half of {where}; the rest for "
                f"the streaming B panels, C and prefetched lines), capped at {A_PANEL_KC_CAP}")
    return (f"B panel {kc}x{t.nr} + A panel {t.mr}x{kc} fp32 in "
            f"{m.ways_l1(kc * t.nr * F32)}+{m.ways_l1(kc * t.mr * F32)} <= {where}; "
            "the rest kept for C and prefetched lines)")


def _params(m: Machine, t: Tile, kc_max: int, mc: int, nc: int, threads: int,
            grid: Optional[Tuple[int, int]], order: str) -> Dict[str, Param]:
    l1, l2, l3 = m.cache(1), m.cache(2), m.cache(3)
    if order == B_PANEL_IN_L1:
        mc_why = (f"packed A {mc}x{kc_max} fp32 <= half of L2 ({l2.size_bytes >> 10} KiB, {l2.source}): "
                  "every B micro-panel sweeps it; balanced over M")
        nc_why = (f"packed B {kc_max}x{nc} fp32, two buffers, <= half of L3 per core "
                  f"({l3.size_bytes >> 10} KiB, {l3.source}), capped at {NC_CAP}, balanced over N")
        order_why = ("B micro-panel in L1, A block in L2, B block in L3 (BLIS order): "
                     "every block packed once; chosen by predicted time")
    else:
        mc_why = (f"packed A {mc}x{kc_max} fp32 <= half of L3 per core ({l3.size_bytes >> 10} KiB, "
                  f"{l3.source}), capped at {MC_CAP}, balanced over M")
        nc_why = (f"packed B {kc_max}x{nc} fp32 <= half of L2 ({l2.size_bytes >> 10} KiB, {l2.source}): "
                  "every A micro-panel sweeps it; balanced over N")
        order_why = ("A micro-panel in L1, B block in L2, A block in L3: "
                     "B panels stream from L2, A packed once per k block when a thread's rows fit one A block; "
                     "chosen by predicted time")
    p = {
        "mr": Param(t.mr, _tile_reason(m, t)),
        "nr": Param(t.nr, f"{t.nv} x {m.lanes} lanes (vector_bits={m.profile.vector_bits})"),
        "kc": Param(kc_max, _kc_reason(m, t, kc_max, order)),
        "mc": Param(mc, mc_why),
        "nc": Param(nc, nc_why),
        "loop_order": Param(order, order_why),
        "threads": Param(threads, "fewest-seconds thread count in 1..cores "
                                  f"({m.profile.cores}) with {SYNC_SECONDS * 1e6:g} us per barrier"),
    }
    p["direct_a_bytes"] = Param(direct_a_bytes(m), f"row-major A up to the L1 size ({l1.size_bytes >> 10} KiB) "
                                                    "is read in place instead of packed")
    if order == A_PANEL_IN_L1:
        p["direct_a_panel_bytes"] = Param(
            direct_a_panel_bytes(m),
            f"row-major A up to {DIRECT_A_L2_MULTIPLE} x L2 ({l2.size_bytes >> 10} KiB) is read in place when "
            f"an A micro-panel puts <= {direct_a_lines_per_set(m)} lines in any L1 set (half the panel ways): "
            "the panel stays in L1 for its whole sweep, so a copy buys nothing")
        p["direct_a_lines_per_set"] = Param(direct_a_lines_per_set(m), f"half of the {l1_ways_for_panels(m)} "
                                            "L1 ways for panels; the rest for the B lines streaming past")
        p["l1_way_bytes"] = Param(m.l1_way_bytes(), f"L1 {l1.size_bytes >> 10} KiB / {l1.ways} ways ({l1.source}): "
                                  "rows this many bytes apart share their L1 sets")
    if grid is not None:
        p["grid"] = Param(f"{grid[0]}x{grid[1]}", "threads along M x N minimising the busiest thread's tiles")
    return p


def shown_candidates(cands: List[Candidate], keep: int = 8) -> List[Candidate]:
    """The best `keep` candidates (sorted), plus the best of any loop order
    that did not make it, so an explanation always shows both orders."""
    shown = cands[:keep]
    for order in LOOP_ORDERS:
        if not any(c.name.endswith(order) for c in shown):
            shown += [c for c in cands if c.name.endswith(order)][:1]
    return shown


def kernel_name(isa_suffix: str, t: Tile, shape: Optional[Tuple[int, int, int]]) -> str:
    base = f"f32_gemm_{t.mr}x{t.nr}_{isa_suffix}"
    if shape is None:
        return base + "_generic"
    M, N, K = shape
    return f"{base}_m{M}_n{N}_k{K}"


def plan_shape(profile: HostProfile, M: int, N: int, K: int, *, isa_suffix: str,
               activations: Sequence[str] = ("none",), spec_name: Optional[str] = None,
               op: str = "matmul", tiles: Optional[Iterable[Tile]] = None,
               threads: Optional[int] = None) -> Plan:
    """Plan for one concrete shape: best tile and blocking for `threads`
    threads, or for the fastest thread count in 1..cores when None."""
    m = Machine(profile)
    counts = [threads] if threads else list(range(1, max(1, profile.cores) + 1))
    if M == 1:
        return _plan_gemv(m, N, K, counts, isa_suffix, activations, spec_name, op)
    cands: List[Candidate] = []
    best = None
    for t in (tiles or register_tiles(m)):
        for order in LOOP_ORDERS:
            e = min((estimate(m, t, M, N, K, th, order) for th in counts), key=lambda e: e.seconds)
            eff, _ = tile_efficiency(m, t, e.kc, ldc=N)
            terms = dict(e.terms)
            terms["tile_eff"] = eff
            terms["threads"] = e.threads
            cands.append(Candidate(f"tile {t.name} {order}", e.seconds, terms))
            if best is None or e.seconds < best[1].seconds:
                best = (t, e)
    t, e = best
    for c in cands:
        c.chosen = c.name == f"tile {t.name} {e.order}"
    cands.sort(key=lambda c: c.predicted_s)
    kc_max = kc_for(m, t, e.order)
    # The plan's mc is the cache bound (capped by M); the run time splits M
    # among threads and balances the blocks, so thread counts share kernels.
    mc_plan = min(mc_for(m, t, kc_max, e.order), math.ceil(M / t.mr) * t.mr)
    params = _params(m, t, kc_max, mc_plan, e.nc, e.threads, e.grid, e.order)
    if threads:
        params["threads"] = Param(e.threads, f"planned for {threads} thread(s) (spec), "
                                             f"capped by the {math.ceil(M / t.mr) * math.ceil(N / t.nr)} micro-tiles")
    notes = _prepared_params(m, t, kc_max, params, lambda order: [
        estimate(m, t, M, N, K, e.threads, order, prepared_b=True, kc_limit=kc_max)], M)
    return Plan(op=op, kernel=kernel_name(isa_suffix, t, (M, N, K)), algorithm="blis-gemm",
                isa=profile.isa, shape={"M": M, "N": N, "K": K}, params=params,
                predicted_s=e.seconds, predicted_terms=e.terms, candidates=shown_candidates(cands),
                activations=list(activations), spec=spec_name, notes=notes)


def prepared_estimate(profile: HostProfile, plan: Plan, cold_b: bool = False) -> Estimate:
    """The time of a shape plan's kernel when B was prepared ahead (the
    executor's constant weights): its tile, its prepared blocking (cold_b:
    B first read from DRAM)."""
    m = Machine(profile)
    s = plan.shape
    nr = plan.value("nr")
    t = Tile(plan.value("mr"), nr, nr // m.lanes)
    return estimate(m, t, s["M"], s["N"], s["K"], plan.value("threads"), plan.value("prepared_loop_order"),
                    prepared_b=True, kc_limit=plan.value("kc"), cold_b=cold_b)


def _prepared_params(m: Machine, t: Tile, kc_max: int, params: Dict[str, Param],
                     estimates, M: Optional[int]) -> List[str]:
    """The blocking the kernel uses when B was prepared ahead (a layer's
    weights, PreparedGemmB): same tile and compiled KC, the BLIS order
    (PREPARED_B_ORDER), its k block and mc / nc. estimates(order) gives the
    estimates behind the note (one per shape)."""
    order = PREPARED_B_ORDER
    es = estimates(order)
    total = sum(x.seconds for x in es)
    kc = min(kc_for(m, t, order), kc_max)
    mc = mc_for(m, t, kc, order)
    if M is not None:
        mc = min(mc, math.ceil(M / t.mr) * t.mr)
    nc = es[0].nc if M is not None else nc_for(m, t, kc, order)
    why = "B prepared ahead (no per-call copy, no barrier per B block): "
    params["prepared_loop_order"] = Param(order, why + "each B micro-panel stays in L1 for a sweep over the A "
                                          "block while the next one is prefetched from the prepared copy")
    params["prepared_kc"] = Param(kc, why + _kc_reason(m, t, kc, order) + f", at most the compiled KC {kc_max}")
    params["prepared_mc"] = Param(mc, why + ("A block in half of L2" if order == B_PANEL_IN_L1 else
                                              "A block in half of the L3 share"))
    params["prepared_nc"] = Param(nc, why + ("B micro-panels read in place from the prepared B"
                                              if order == B_PANEL_IN_L1 else "B block in half of L2"))
    if M is None:
        return [f"prepared B: {order}, kc {kc}"]
    terms = ", ".join(f"{k}={v * 1e6:.1f}us" for k, v in es[0].terms.items())
    return [f"prepared B: {order}, kc {kc}, predicted {total * 1e6:.1f} us ({terms})"]


def _plan_gemv(m: Machine, N: int, K: int, counts: Sequence[int], isa_suffix: str,
               activations: Sequence[str], spec_name: Optional[str], op: str) -> Plan:
    """M == 1: the row-streaming path of gemm_run, with the generic tile kept
    for a column-major B (which cannot stream rows)."""
    e = min((estimate_gemv(m, N, K, th) for th in counts), key=lambda e: e.seconds)
    generic = plan_generic(m.profile, isa_suffix=isa_suffix)
    t = Tile(generic.value("mr"), generic.value("nr"), generic.value("nr") // m.lanes)
    params = dict(generic.params)
    params["threads"] = Param(e.threads, f"fewest seconds over {list(counts)} thread(s), "
                                         f"{SYNC_SECONDS * 1e6:g} us per barrier; N split in 16-column slices")
    b_level = m.level_of(K * N * F32)
    cand = Candidate("gemv-stream", e.seconds, dict(e.terms), chosen=True)
    name = f"f32_gemv_{isa_suffix}_n{N}_k{K}"
    return Plan(op=op, kernel=name, algorithm="gemv-stream", isa=m.profile.isa,
                shape={"M": 1, "N": N, "K": K}, params=params, predicted_s=e.seconds,
                predicted_terms=e.terms, candidates=[cand], activations=list(activations), spec=spec_name,
                notes=[f"M = 1: B ({K * N * F32 >> 10} KiB, in {b_level}) is streamed row by row once at "
                       f"{m.bandwidth(b_level) / 1e9:.0f} GB/s; the {t.name} tile serves a column-major B"])


def same_kernel(a: Plan, b: Plan) -> bool:
    """Two plans compile to the same code when tile and blocking agree."""
    keys = ("mr", "nr", "kc", "mc", "nc", "loop_order",
            "prepared_loop_order", "prepared_kc", "prepared_mc", "prepared_nc")
    return all(_value_or_none(a, k) == _value_or_none(b, k) for k in keys)


def _value_or_none(p: Plan, key: str):
    return p.params[key].value if key in p.params else None


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
        for order in LOOP_ORDERS:
            total = sum(estimate(m, t, M, N, K, 1, order).seconds for (M, N, K) in reference)
            cands.append(Candidate(f"tile {t.name} {order}", total, {"sum_over_reference_shapes_s": total}))
            if best is None or total < best[2]:
                best = (t, order, total)
    t, order, _ = best
    for c in cands:
        c.chosen = c.name == f"tile {t.name} {order}"
    cands.sort(key=lambda c: c.predicted_s)
    kc_max = kc_for(m, t, order)
    params = _params(m, t, kc_max, mc_for(m, t, kc_max, order), nc_for(m, t, kc_max, order), 0, None, order)
    params["threads"] = Param(0, "chosen per call: min(cores, work / (50 us of peak compute))")
    notes = _prepared_params(m, t, kc_max, params, lambda o: [
        estimate(m, t, M, N, K, 1, o, prepared_b=True, kc_limit=kc_max) for (M, N, K) in reference], None)
    return Plan(op=op, kernel=kernel_name(isa_suffix, t, None), algorithm="blis-gemm",
                isa=profile.isa, shape=None, params=params, predicted_s=None,
                candidates=shown_candidates(cands), activations=list(ACTIVATIONS),
                notes=["reference shapes: " + ", ".join(f"{a}x{b}x{c}" for a, b, c in reference)] + notes)
