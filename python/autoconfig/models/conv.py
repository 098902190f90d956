"""Analytical convolution model: every applicable algorithm gets a predicted
time from named terms, the cheapest wins (AutoConfig's algorithm selection).

Algorithms (cpp_runtime/src/conv2d.cpp runs them):
  direct      output in NCHW[B]c, register tile n columns x kb channel blocks,
              input NCHW[B]c (blocked) or plain NCHW (one channel per tap:
              no channel padding, no input conversion; for few channels).
  gemm-1x1    pointwise layers: the GEMM on the NCHW tensors, no copy.
  im2col-gemm patch matrix, then the GEMM.
  winograd-f2 / winograd-f4   F(2x2,3x3) / F(4x4,3x3): 3x3, stride 1, groups 1.
  depthwise   groups == C: taps vectorized over channels, one channel block
              at a time, in and out of either layout (no conversion).

Every estimate is a sum of named terms (Candidate.terms). Kernels whose data
streams can overlap their arithmetic are charged max(compute, streams): the
part of the stream time beyond the compute time appears as the term "stall".
The tensors around the call are NCHW, or NCHW[B]c when the caller keeps
activations blocked (Context); converting between the two is charged to the
algorithms that need it.

The conv kernels need their lane count at generation time (NCHW[B]c blocks,
arrays of accumulators), so for a scalable profile (SVE) they are built for
its fixed-lanes view (profile.fixed_lanes_profile: NEON on an SVE core) and
direct, depthwise and Winograd are modelled on that view; the GEMM-based
algorithms run the profile's own GEMM. Both views have the same peak.

Preparation (the weights in the layout the algorithm reads, batch-norm scale
folded in the same pass) is a term of its own, "prepare" (prepare_terms): a
one-off conv2d() call pays it on every call and is chosen by run + prepare;
a prepared layer (prepare_conv2d / PreparedConv2d) pays it once and is chosen
by run time alone (candidates(..., prepared=True), the default).
  direct      read w (K*C*R*S floats), write NCHW[B]c weights (K and C padded
              to blocks): max(issue, (bytes read + bytes written) / the copy
              bandwidth of the level source and destination fit in). The
              probe's copy curve reads one stream and writes another with
              ordinary stores, so beyond the last cache it already pays the
              read-for-ownership of every written line (write-allocate):
              nothing is added for it.
  winograd    read w, write U (a*a*C*K floats, a = m + 2), and the transform
              G g G^T (9a + 3a^2 multiply-adds per filter) at
              WEIGHT_TRANSFORM_EFFICIENCY of one FMA unit's peak: the longest
              of the three.
  gemm-1x1, im2col-gemm, depthwise   read w in place: nothing, unless a
              batch-norm scale must be folded into a copy (scale=True).
A one-off call packs into scratch it then reads back (term "reload"): when
the call's working set (w, the packed copy, input and output) exceeds half
of L3, the packed weights are evicted to memory as they are written and the
run reads them back from there, on top of what the prepared run pays:
one copy of the packed bytes at the DRAM copy bandwidth (out and back in).
The direct kernel avoids it where it can (direct_fused_prepare): when its
work runs output-block groups outermost and a group's packed weights of one
reduction block fit half of L2, each thread packs them into its own scratch
just before computing them, so the slice is read from L2: "prepare" then
reads w from its level and writes at the L2 copy bandwidth, and "reload" is 0.
The packers split their work among the call's threads, and the bytes are
shared like the issue: the probe's bandwidth is one core's, limited by the
misses one core keeps in flight, and 2 threads prepared the 2-17 MB layers in
0.23-0.55x the 1-thread time on the Zen 3 VM (BENCHMARKS.md, issue 14's
preparation tables at 1 and 2 threads). Many threads would meet the
machine's total bandwidth, which the profile does not measure.

Cold weights (Context.cold_weights; the graph planner sets it when the
network's weights do not fit in L3, graph/planner.py): inside a network the
weights of a layer have left the caches by the next inference, so every call
reads them from DRAM once, in the layout the algorithm reads (weight_bytes:
NCHW[B]c for direct, U for Winograd, w itself for the GEMM-based and
depthwise kernels):
  cold_weights = weight bytes / DRAM bandwidth, shared by the threads as the
                 kernel's own weight stream is: Winograd's U stream is
                 divided among the threads (each brings its own misses in
                 flight, as for "prepare"); the direct kernel's streams
                 beyond L2, and the GEMM's, count one bandwidth for all
                 threads (memory is one per socket). Either way a cold
                 layer never comes out cheaper than a warm one.
It is added to the estimate, not overlapped with the compute: the kernels
read a weight block at its first use and reuse it from L1/L2 for the rest of
the layer, so the DRAM time falls on the few tiles that touch it first, with
little compute to hide behind (measured on the Zen 3 VM, ResNet-50 in the
network, 1 thread: 2048->512 1x1 at 7x7 +0.36-0.44 ms over the warm estimate
against 0.32 ms of cold weights; the F(4x4) 256-channel 3x3 +0.4-0.8 ms
against 0.71; the F(2x2) 512-channel 3x3 +1.0 ms against 1.27). Those first
reads no longer count in the warm streams ("stall"), which keep the re-reads.
Standalone calls (conv2d, prepare_conv2d) keep the warm assumption: a layer
called again and again finds its weights where they fit.

The C++ runtime evaluates the very same formulas for layers no spec listed
(cpp_runtime/src/conv_model.cpp) with the coefficients this module emits
(model_coefficients), and tests/build/test_conv_model.py checks both agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..plan import Candidate, Param, Plan
from ..profile import HostProfile, fixed_lanes_profile
from ..shapes import Conv2dShape
from ..vocabulary import CONV_ALGORITHMS
from .gemm import plan_generic, tile_efficiency, Tile as GemmTile
from .machine import CALL_OVERHEAD_CYCLES, ISSUE_JITTER, LOADS_PER_CYCLE, SYNC_SECONDS, Machine
from .winograd import WINOGRAD_REL_ERROR

F32 = 4
# Layout conversions (NCHW <-> NCHW[B]c, im2col, depthwise gather/scatter)
# move one element per this many cycles: they are strided copies (B x B
# transposes), bound by the load/store ports, not by bandwidth, for
# L2-resident tensors.
COPY_CYCLES_PER_ELEMENT = 0.5
# Fixed cycles per register-tile call of the direct / depthwise kernels
# (loop set-up, epilogue loads, call), as CALL_OVERHEAD_CYCLES for the GEMM.
TILE_OVERHEAD_CYCLES = 30.0
# Direct kernel, per tap (one input channel block, or channel, at one r, s):
# the tap-table load and the pointer bumps of the reduction loop.
TAP_OVERHEAD_CYCLES = 1.0
# Winograd input / output transforms (the flops of winograd_counts: about
# 2a adds per element and dimension) run at this fraction of the FMA peak:
# vector adds, subtracts and a few FMAs with a load and a store per few of
# them. Least-squares fit with WINOGRAD_GEMM_EFFICIENCY on the AMD EPYC Zen 4
# VM (avx512, 115 GFLOPS probe), 1 thread, 2026-12-07: the 12 x86-64-v4
# Winograd records of the lead's tuning dataset (F2 and F4; 96-512 channels,
# 7x7-35x35) and ResNet-50's four 3x3 layers standalone (bench --op conv2d):
# 0.63 and 0.92, every layer within 15% except the 512-channel 7x7 F4,
# whose 37.7 MB of U stream from DRAM (-25%). The earlier guesses (0.25,
# 0.85) predicted 1.18 ms for ResNet's 64-channel 56x56 F4, measured 0.73.
# That fit holds for a 32-register file only: the same CPU's x86-64-v3 code
# (16 ymm) measured 1.12x / 1.25x (F2 / F4) the time it predicts, and
# 0.85x / 0.89x the time predicted with the earlier values (a 6x6 F4 tile is
# 36 vectors: it stays in registers only with 32 of them), so a 16-register
# file keeps those. winograd_efficiencies() picks by register file.
TRANSFORM_EFFICIENCY = 0.63
TRANSFORM_EFFICIENCY_16_REGISTERS = 0.25
# The batched transform-domain GEMMs are short (C deep, tile block wide); they
# reach about this fraction of the peak (fit above).
WINOGRAD_GEMM_EFFICIENCY = 0.92
WINOGRAD_GEMM_EFFICIENCY_16_REGISTERS = 0.85
# The weight transform G g G^T of the preparation (codegen/conv_prepare.py:
# B x B transposes of the taps, the transform in registers, a store into each
# of the a*a planes, staged through L1 where the planes alias) runs at this
# fraction of ONE FMA unit's rate (peak / FMA units): its shuffles, loads and
# stores do not scale with the FMA units.
# Zen 4 VM (1 x 512-bit unit), 1 thread, bench --op conv2d --check-model,
# 2026-12-07 15:10: the one-off F4 preparation of ResNet-50's 64- and
# 128-channel 3x3 layers took 0.037 / 0.148 ms against 0.046 / 0.184 predicted.
# Zen 5 VM (2 x 512-bit units), 1 thread, quiet, 2026-12-07 18:45
# (benchmarks/weight_transforms.py): 0.050 / 0.197 ms for the same two, against
# 0.044 / 0.176 predicted this way and 0.022 / 0.088 at a fraction of the
# whole peak (the same 27-29 GFLOP/s of transform on both CPUs). F(2x2) comes
# out 1.4-1.5x high there (0.023 / 0.091 against 0.016 / 0.059 ms): it stores
# 16 planes per filter for its 84 multiply-adds, F(4x4) 36 for 162.
WEIGHT_TRANSFORM_EFFICIENCY = 0.25

# Weight preparation (codegen/conv_prepare.py): issue cycles per packed float
# of the vectorized packers when the weights are cache-resident (B x B
# register transposes, loads and stores, no DRAM) are this many cycles divided
# by lanes x FMA units (prepare_cycles_per_element): the shuffles, loads and
# stores use the same vector datapath whose width per cycle the FMA units
# measure (a Zen 4 runs a 512-bit op in two passes, a Zen 5 in one).
#   AMD EPYC Zen 3 VM (AVX2, 8 lanes x 2 units, 2.91 GHz probe), 1 thread, load
#   ~3: 0.68-0.75 cycles per float (1x1: 96->576, 1024->512, 2048->512),
#   0.79-0.84 (3x3/2 with blocked input, 128 and 256 channels); BENCHMARKS.md,
#   "The re-layout bar against the copy bandwidth": 0.8 x 8 x 2 = 12.8.
#   AMD EPYC Zen 5 VM (AVX-512, 16 lanes x 2 units, 3.78 GHz probe), 1 thread,
#   quiet, 2026-12-07 18:45 (benchmarks/weight_transforms.py): the direct
#   re-layouts that fit in L3 at 0.32-0.41 cycles per float (512->128 and
#   512->256 1x1, 512x512 3x3): 12.8 / 32 = 0.4. With 0.8 there, the model
#   charged a one-off direct call twice its packing and sent 8 of 54 default
#   layers to gemm-1x1 / im2col-gemm, 14-27% slower.
PREPARE_DATAPATH_CYCLES = 12.8

ALGORITHMS = CONV_ALGORITHMS

# The shape type's old name here (shapes.Conv2dShape is the one name; the
# runtime's explain still builds a Layer).
Layer = Conv2dShape


@dataclass(frozen=True)
class Context:
    """The tensors around the call: NCHW, or NCHW[B]c when the caller keeps
    activations in the blocked layout (input, output and residual alike).
    cold_weights: the weights come from DRAM on every call (module docstring)."""
    in_blocked: bool = False
    out_blocked: bool = False
    cold_weights: bool = False


NCHW = Context()


def kernel_machine(profile: HostProfile) -> Machine:
    """The machine the direct, depthwise and Winograd kernels are built for:
    the profile's fixed-lanes view."""
    return Machine(fixed_lanes_profile(profile))


# --------------------------------------------------------------------------- direct
# Output-channel blocks per direct tile, at most: wider tiles save few loads
# per FMA (5x5 vs 6x4 on AVX-512: 0.40 vs 0.42) but each one adds its own
# remainder tiles for every input variant to the generated code.
MAX_TILE_BLOCKS = 4


def direct_tiles(profile: HostProfile) -> List[Tuple[int, int]]:
    """Register tiles (n columns, kb channel blocks) the direct kernel is
    built with: for each kb, the widest n (at most 28) whose n*kb accumulators,
    kb weight vectors and one broadcast input fit the register file. Dropped:
    tiles with no more accumulators than FMA latency x units (any late load
    idles a unit) and tiles that issue more loads than FMAs per input channel
    (n + kb > n * kb: load-bound wherever loads per cycle <= FMA units)."""
    m = kernel_machine(profile)
    need = m.fma_latency * m.fma_units
    out = []
    for kb in range(1, MAX_TILE_BLOCKS + 1):
        n = min(28, (m.vregs - kb - 1) // kb)
        if n < 1:
            break
        if n * kb > need and n + kb <= n * kb:
            out.append((n, kb))
    return out or [(max(1, m.vregs - 2), 1)]


def _hz(m: Machine) -> float:
    return m.peak_flops / (2 * m.lanes * m.fma_units)


def _copy_seconds(m: Machine, elements: float, threads: int) -> float:
    return elements * COPY_CYCLES_PER_ELEMENT / _hz(m) / threads


def _layout_seconds(m: Machine, elements: float, threads: int) -> float:
    """An NCHW <-> NCHW[B]c conversion: the copy's issue cycles spread over the
    threads, or reading and writing the tensor at the bandwidth of the level
    it lives in, whichever is longer (threads share L3 and memory)."""
    if elements <= 0:
        return 0.0
    nbytes = F32 * elements
    return max(_copy_seconds(m, elements, threads), 2 * nbytes / m.bandwidth(m.level_of(nbytes)))


def _sync(threads: int, barriers: int) -> float:
    return barriers * SYNC_SECONDS if threads > 1 else 0.0


def _shared_fma_floor(m: Machine, full_rate_seconds: float, threads: int) -> float:
    """The least time `threads` threads need for work that takes
    full_rate_seconds on one core's FMA units at their peak: together they
    reach threads x HostProfile.fma_thread_scaling cores' worth of FMA rate
    (at least one core's), which is less than `threads` cores when logical
    CPUs share FMA units (SMT siblings)."""
    cores_worth = 1.0 if threads <= 1 else max(1.0, threads * m.profile.fma_thread_scaling)
    return full_rate_seconds / cores_worth


def _step_cycles(m: Machine, n: int, kb: int) -> float:
    """Cycles per input channel of an n x kb tile: FMA issue, load issue (kb
    weights + n broadcasts) or the FMA latency of each accumulator chain,
    whichever binds, plus issue jitter when the chains just cover the latency
    (models/gemm.tile_efficiency's term)."""
    acc = n * kb
    cover = m.fma_latency * m.fma_units
    jitter = ISSUE_JITTER * cover / acc if acc >= cover else 0.0
    return max(acc / m.fma_units, (n + kb) / LOADS_PER_CYCLE, m.fma_latency) * (1.0 + jitter)


@dataclass(frozen=True)
class DirectGeometry:
    """The direct kernel's view of a layer: pointwise layers are one row of
    Ho*Wo columns over an unpadded H*W input row."""
    cb: int            # input channels per tap: B (blocked) or 1 (plain)
    taps: int
    rows: int          # output rows
    cols: int          # output columns per row
    in_h: int          # padded input rows
    in_w: int          # padded input columns
    kblocks: int
    groups: int        # groups of kb output blocks
    last_kb: int


def direct_geometry(m: Machine, L: Conv2dShape, tile: Tuple[int, int], plain: bool) -> DirectGeometry:
    n, kb = tile
    B = m.lanes
    cb = 1 if plain else B
    cgroups = math.ceil(L.C / cb)
    kblocks = math.ceil(L.K / B)
    groups = math.ceil(kblocks / kb)
    if L.pointwise:
        rows, cols, in_h, in_w = 1, L.out_h * L.out_w, 1, L.H * L.W
    else:
        rows, cols = L.out_h, L.out_w
        in_h, in_w = L.H + L.pad_top + L.pad_bottom, L.W + L.pad_left + L.pad_right
    return DirectGeometry(cb, cgroups * L.R * L.S, rows, cols, in_h, in_w, kblocks, groups,
                          kblocks - (groups - 1) * kb)


def plain_input_footprint(m: Machine, L: Conv2dShape, tile: Tuple[int, int]) -> int:
    """Bytes one tile touches with plain NCHW input: every (channel, r) input
    row contributes the cache lines its n strided columns span, next to the
    tile's weights. The tile revisits them channel after channel, so they must
    stay in L1 for the plain layout to run at the FMA rate."""
    n, kb = tile
    line = m.cache(1).line_bytes
    span = ((n - 1) * L.stride_w + (L.S - 1) * L.dilation_w + 1) * F32
    rows = L.C * L.R
    weights = kb * m.lanes * L.C * L.R * L.S * F32
    return rows * (math.ceil(span / line) + 1) * line + weights


def plain_input_rejection(m: Machine, L: Conv2dShape, tile: Tuple[int, int], ctx: Context) -> Optional[str]:
    if ctx.in_blocked:
        return "the input is already blocked"
    l1 = m.cache(1)
    usable = l1.size_bytes * (l1.ways - 1) // l1.ways
    need = plain_input_footprint(m, L, tile)
    if need > usable:
        return f"a tile's input rows and weights ({need} B) exceed L1 ({usable} B in {l1.ways - 1} ways)"
    return None


@dataclass(frozen=True)
class DirectSchedule:
    """How the work items (output row, column chunk, group of kb blocks) are
    ordered, and in how many reduction blocks (of input channels) they run."""
    groups_inner: bool     # True: a chunk's input stays in L2 while all weights stream
    chunk: int             # output columns per work item
    cblocks: int           # reduction blocks: partial sums kept in the output between them
    l3_bytes: float        # bytes the schedule moves from beyond L2
    footprint: float       # bytes of input and weights (where they live sets the bandwidth)


def _beyond_l2_bandwidth(m: Machine, footprint: float) -> float:
    """Bandwidth of the level holding a working set: L3 or DRAM (L2 when it fits there)."""
    level = m.level_of(footprint)
    return m.bandwidth("L2" if level in ("L1", "L2") else level)


def _block_counts(cgroups: int) -> List[int]:
    """Reduction block counts tried: powers of two below the channel groups, and all of them."""
    out, nb = [], 1
    while nb < cgroups:
        out.append(nb)
        nb *= 2
    return out + [cgroups]


def direct_schedule(m: Machine, L: Conv2dShape, tile: Tuple[int, int], plain: bool, threads: int = 1,
                    groups_inner: Optional[bool] = None) -> DirectSchedule:
    """The schedule that moves the fewest bytes from beyond L2 (half of L2 is
    usable for what must stay; the other half: outputs and passing lines).
    groups_inner None: the model's choice of work order; True / False force
    it (as Conv2dOptions::direct_order does in conv_model.cpp).

    groups outer, nb reduction blocks: a group's weights for one block are
    reused by every row while they stay in L2; one block of the input (the
    rows the layer reads) is reused by every group while it stays in L2;
    beyond one block, the output's partial sums are written and read back.
    groups inner: a column chunk's input stays in L2 while all weights stream
    once per chunk.
    Groups outer works on whole rows unless rows x groups are fewer than the
    threads (a pointwise layer is one row): the row is then cut in one chunk
    per thread."""
    n, kb = tile
    g = direct_geometry(m, L, tile, plain)
    half_l2 = m.cache(2).size_bytes / 2
    cgroups = g.taps // (L.R * L.S)
    cpad = cgroups * g.cb
    rows_in = (L.R - 1) * L.dilation_h + 1
    rows_read = g.in_h if L.pointwise else min(g.in_h, g.rows * rows_in)
    x_bytes = cpad * rows_read * g.in_w * F32
    w_all = g.kblocks * m.lanes * cpad * L.R * L.S * F32
    w_group = kb * m.lanes * cpad * L.R * L.S * F32
    y_bytes = g.kblocks * m.lanes * g.rows * g.cols * F32
    footprint = x_bytes + w_all
    outer_chunk = g.cols
    if g.rows * g.groups < threads:
        outer_chunk = min(g.cols, math.ceil(math.ceil(g.cols / threads) / n) * n)
    best = None
    for nb in _block_counts(cgroups):
        w_traffic = w_all if w_group / nb <= half_l2 else w_all * g.rows
        x_traffic = x_bytes if x_bytes / nb <= half_l2 else x_bytes * g.groups
        y_traffic = (nb - 1) * 2 * y_bytes if y_bytes > half_l2 else 0.0
        total = w_traffic + x_traffic + y_traffic
        if best is None or total < best.l3_bytes:
            best = DirectSchedule(False, outer_chunk, nb, total, footprint)
    per_col = cpad * rows_in * L.stride_w * F32
    chunk = int(max(1, min(g.cols, (half_l2 // per_col) // n * n)))
    chunks = math.ceil(g.cols / chunk)
    # Equal chunks (in whole tiles), and for one-row (pointwise) layers a
    # multiple of the threads: each thread takes a contiguous range of items,
    # so a sliver of a last chunk left the shares unequal (ResNet-50's
    # 256->64 1x1 at 56x56, 2 threads: 3584 vs 2688 columns; 0.507 ms against
    # 0.457 with an even split).
    if threads > 1 and g.rows == 1:
        chunks = math.ceil(chunks / threads) * threads
    chunk = int(min(chunk, math.ceil(math.ceil(g.cols / chunks) / n) * n))
    chunks = math.ceil(g.cols / chunk)
    inner = x_bytes + (w_all * g.rows * chunks if w_all > half_l2 else w_all)
    if groups_inner or (groups_inner is None and inner < best.l3_bytes):
        return DirectSchedule(True, chunk, 1, inner, footprint)
    return best


def estimate_direct(m: Machine, L: Conv2dShape, tile: Tuple[int, int], plain: bool, threads: int,
                    ctx: Context = NCHW) -> Dict[str, float]:
    n, kb = tile
    g = direct_geometry(m, L, tile, plain)
    s = direct_schedule(m, L, tile, plain, threads)
    hz = _hz(m)

    def tile_cycles(nn: int, kbn: int) -> float:
        # every reduction block calls the tile once; all but the first reload its partial sums
        return (g.taps * (g.cb * _step_cycles(m, nn, kbn) + TAP_OVERHEAD_CYCLES)
                + s.cblocks * TILE_OVERHEAD_CYCLES + (s.cblocks - 1) * nn * kbn / LOADS_PER_CYCLE)

    def row_cycles(kbn: int) -> float:
        q, rem = divmod(g.cols, n)
        return q * tile_cycles(n, kbn) + (tile_cycles(rem, kbn) if rem else 0.0)

    chunks = math.ceil(g.cols / s.chunk)
    items = g.rows * chunks * g.groups
    t = max(1, min(threads, items))
    share = math.ceil(items / t) / items
    cycles = g.rows * ((g.groups - 1) * row_cycles(kb) + row_cycles(g.last_kb))
    fma_cycles = g.rows * g.cols * g.kblocks * g.taps * g.cb / m.fma_units
    compute = max(L.N * cycles * share / hz, _shared_fma_floor(m, L.N * fma_cycles / hz, t))
    # Per tile, from L2: the input rows it reads, and its weights unless the
    # group's weights of a reduction block stay in (half of) L1 across tiles.
    cpad = g.taps // (L.R * L.S) * g.cb
    w_block = kb * m.lanes * cpad * L.R * L.S * F32 / s.cblocks
    tiles = g.rows * math.ceil(g.cols / n) * g.groups
    x_tile = cpad * L.R * n * L.stride_w * F32
    l2_bytes = tiles * (x_tile + (w_block * s.cblocks if w_block > m.cache(1).size_bytes / 2 else 0))
    # Each thread reads its share from its own L2; beyond L2 the threads share
    # the level's bandwidth (L3 and memory are one per socket). Cold weights:
    # their first read is the term of its own (module docstring).
    cold = cold_weight_terms(m, L, "direct", ctx, plain)
    beyond = max(0.0, L.N * s.l3_bytes - (weight_bytes(m, L, "direct", plain) if cold else 0.0))
    streams = max(L.N * l2_bytes * share / m.bandwidth("L2"), beyond / _beyond_l2_bandwidth(m, s.footprint))
    terms = {"compute": compute, "stall": max(0.0, streams - compute), **cold}
    pads = L.pad_top + L.pad_left + L.pad_bottom + L.pad_right
    conv_in = 0.0
    if plain:
        if pads and not L.pointwise:
            conv_in = L.N * L.C * g.in_h * g.in_w     # padded copy
    elif not ctx.in_blocked or (pads and not L.pointwise):
        conv_in = L.N * cpad * g.in_h * g.in_w         # to blocked (with the pads)
    ct = max(1, min(t, math.ceil(L.C / m.lanes)))
    terms["to_blocked"] = _layout_seconds(m, conv_in, ct)
    out_elems = 0.0 if ctx.out_blocked else L.N * L.K * L.out_h * L.out_w
    terms["from_blocked"] = _layout_seconds(m, out_elems, t)
    terms["sync"] = _sync(t, 3 * L.N)
    return terms


# --------------------------------------------------------------------------- NCHW algorithms in a blocked context
def _layout_terms(m: Machine, L: Conv2dShape, threads: int, ctx: Context) -> Dict[str, float]:
    """An algorithm that reads and writes NCHW, called on blocked tensors:
    the input converted to NCHW, the output back."""
    terms = {}
    if ctx.in_blocked:
        terms["from_blocked"] = _layout_seconds(m, L.N * L.C * L.H * L.W, threads)
    if ctx.out_blocked:
        terms["to_blocked"] = _layout_seconds(m, L.N * L.K * L.out_h * L.out_w, threads)
    return terms


# --------------------------------------------------------------------------- GEMM-based
@dataclass(frozen=True)
class GemmCoefficients:
    """The generic GEMM kernel as the conv model sees it. Its microkernel
    efficiency depends on the depth of a kc block: models/gemm.tile_efficiency
    charges the C tile's load and store once per block, so 1/efficiency is
    linear in 1/kc: inv_eff(k) = inv_eff_a + inv_eff_b / k."""
    mr: int
    nr: int
    kc: int
    inv_eff_a: float
    inv_eff_b: float

    def efficiency(self, depth: int) -> float:
        return 1.0 / (self.inv_eff_a + self.inv_eff_b / max(1, min(depth, self.kc)))


# gemm_coefficients by profile (its dataclass repr: every field, exact floats,
# ~1/40 of to_json's time): plan_generic takes ~1 s, and the graph planner and
# the predictor ask for every conv of a network at every thread count.
_GEMM_COEFFICIENTS: Dict[str, GemmCoefficients] = {}


def gemm_coefficients(profile: HostProfile) -> GemmCoefficients:
    key = repr(profile)
    if key not in _GEMM_COEFFICIENTS:
        _GEMM_COEFFICIENTS[key] = _gemm_coefficients(profile)
    return _GEMM_COEFFICIENTS[key]


def _gemm_coefficients(profile: HostProfile) -> GemmCoefficients:
    m = Machine(profile)
    gp = plan_generic(profile, isa_suffix="x")
    mr, nr, kc = gp.value("mr"), gp.value("nr"), gp.value("kc")
    t = GemmTile(mr, nr, nr // m.lanes)
    inv_1 = 1.0 / tile_efficiency(m, t, 1)[0]
    inv_kc = 1.0 / tile_efficiency(m, t, kc)[0]
    b = (inv_1 - inv_kc) / (1.0 - 1.0 / kc) if kc > 1 else 0.0
    return GemmCoefficients(mr, nr, kc, inv_1 - b, b)


def _gemm_seconds(m: Machine, g: GemmCoefficients, M: int, N: int, K: int, threads: int) -> Dict[str, float]:
    """One GEMM spread over threads: compute (edge waste included, at the
    efficiency of its kc blocks), microkernel calls, and C read and written
    once per kc block from where it lives (models/gemm.estimate's c_io; the
    threads share that level's bandwidth, as the layout conversions do)."""
    mt, nt = math.ceil(M / g.mr), math.ceil(N / g.nr)
    t = max(1, min(threads, mt * nt))
    busiest = math.ceil(mt * nt / t)
    k_blocks = math.ceil(K / g.kc)
    compute = max(2.0 * busiest * g.mr * g.nr * K / (m.peak_flops * g.efficiency(math.ceil(K / k_blocks))),
                  _shared_fma_floor(m, 2.0 * mt * nt * g.mr * g.nr * K / m.peak_flops, t))
    calls = busiest * k_blocks * CALL_OVERHEAD_CYCLES / _hz(m)
    c_bytes = M * N * F32
    c_io = 2.0 * c_bytes * k_blocks / _beyond_l2_bandwidth(m, c_bytes)
    return {"compute": compute, "calls": calls, "c_io": c_io}


def estimate_gemm(m: Machine, g: GemmCoefficients, L: Conv2dShape, threads: int, im2col: bool,
                  ctx: Context = NCHW) -> Dict[str, float]:
    Cg, Kg = L.C // L.groups, L.K // L.groups
    P = L.out_h * L.out_w
    depth = Cg * L.R * L.S
    one = _gemm_seconds(m, g, Kg, P, depth, threads)
    reps = L.N * L.groups
    # B (the input or its patch matrix) is packed once per GEMM: a read and a write.
    pack_b = _copy_seconds(m, 2.0 * depth * P, threads)
    terms = {k: reps * v for k, v in one.items()}
    terms["pack_b"] = reps * pack_b
    if im2col:
        terms["im2col"] = reps * _copy_seconds(m, depth * P, 1)   # one thread builds the patch matrix
    terms["sync"] = _sync(threads, reps * 2)
    terms.update(_layout_terms(m, L, threads, ctx))
    terms.update(cold_weight_terms(m, L, "gemm", ctx))
    return terms


# --------------------------------------------------------------------------- Winograd
def winograd_counts(mt: int, L: Conv2dShape) -> Dict[str, float]:
    """Flops of F(mt x mt, 3x3) for one image: the transform-domain GEMMs and
    the input/output transforms (a separable (mt+2)-point transform costs
    about 2*(mt+2) adds per element and dimension), and the bytes of the
    transformed weights."""
    a = mt + 2
    tiles = math.ceil(L.out_h / mt) * math.ceil(L.out_w / mt)
    return {"tiles": tiles,
            "gemm": 2.0 * a * a * L.C * L.K * tiles,
            "input_transform": 2.0 * (a * a * a * 2) * L.C * tiles,
            "output_transform": 2.0 * (a * a * mt + a * mt * mt) * L.K * tiles,
            "u_bytes": float(F32 * a * a * L.C * L.K)}


def winograd_efficiencies(m: Machine) -> Tuple[float, float]:
    """(transform, transform-domain GEMM) fractions of the FMA peak for this
    register file (see TRANSFORM_EFFICIENCY)."""
    if m.vregs >= 32:
        return TRANSFORM_EFFICIENCY, WINOGRAD_GEMM_EFFICIENCY
    return TRANSFORM_EFFICIENCY_16_REGISTERS, WINOGRAD_GEMM_EFFICIENCY_16_REGISTERS


def estimate_winograd(m: Machine, mt: int, L: Conv2dShape, threads: int, ctx: Context = NCHW) -> Dict[str, float]:
    c = winograd_counts(mt, L)
    transform_eff, gemm_eff = winograd_efficiencies(m)
    t = max(1, min(threads, int(c["tiles"])))
    peak = m.peak_flops * t

    def work(flops: float, efficiency: float) -> float:
        return max(L.N * flops / (peak * efficiency), _shared_fma_floor(m, L.N * flops / m.peak_flops, t))
    gemm = work(c["gemm"], gemm_eff)
    # Every call streams the transformed weights (a*a*C*K floats) from where
    # they live; the GEMMs wait for them when that is slower. Cold weights:
    # the first image's read is the term of its own (module docstring).
    cold = cold_weight_terms(m, L, f"winograd-f{mt}", ctx, readers=t)
    u_bytes = L.N * c["u_bytes"] - (c["u_bytes"] if cold else 0.0)
    u_stream = u_bytes / _beyond_l2_bandwidth(m, c["u_bytes"]) / t
    terms = {"gemm": gemm, "stall": max(0.0, u_stream - gemm), **cold,
             "input_transform": work(c["input_transform"], transform_eff),
             "output_transform": work(c["output_transform"], transform_eff),
             "sync": _sync(t, 2 * L.N)}
    terms.update(_layout_terms(m, L, threads, ctx))
    return terms


# --------------------------------------------------------------------------- depthwise
def estimate_depthwise(m: Machine, L: Conv2dShape, ow_tile: int, threads: int, ctx: Context = NCHW) -> Dict[str, float]:
    B = m.lanes
    kblocks = math.ceil(L.K / B)
    t = max(1, min(threads, kblocks))
    share = math.ceil(kblocks / t)
    # One vector FMA and one vector load per tap and output column.
    per_tap = max(1.0 / m.fma_units, 1.0 / LOADS_PER_CYCLE)
    q, rem = divmod(L.out_w, ow_tile)       # whole tiles, then one tile of the remaining columns
    row = (q * max(ow_tile * per_tap, m.fma_latency) + (max(rem * per_tap, m.fma_latency) if rem else 0.0)) \
        * L.R * L.S + (q + (1 if rem else 0)) * TILE_OVERHEAD_CYCLES
    fma_cycles = kblocks * L.out_h * L.out_w * L.R * L.S / m.fma_units
    compute = max(L.N * share * L.out_h * row / _hz(m), _shared_fma_floor(m, L.N * fma_cycles / _hz(m), t))
    Hp, Wp = L.H + L.pad_top + L.pad_bottom, L.W + L.pad_left + L.pad_right
    # The kernel works on channel blocks in either layout (no conversion):
    # gather builds each block's zero-padded Hp x Wp x B tile (a transpose
    # from NCHW, a row copy from NCHW[B]c with multiplier > 1); a blocked
    # input with multiplier 1 is read in place, the taps outside the image
    # skipped (rows per output row, columns at the edges), so nothing is
    # copied, when output rows are at least a register tile wide (narrower
    # padded ones copy; unpadded ones need no copy either way); scatter
    # transposes the output back for an NCHW output (a blocked one is stored
    # in place).
    pads = Hp != L.H or Wp != L.W
    in_place = ctx.in_blocked and L.K == L.C and (L.out_w >= ow_tile or not pads)
    gather = 0.0 if in_place else L.N * share * B * Hp * Wp * COPY_CYCLES_PER_ELEMENT / _hz(m)
    scatter = 0.0 if ctx.out_blocked else L.N * share * B * L.out_h * L.out_w * COPY_CYCLES_PER_ELEMENT / _hz(m)
    return {"compute": compute, "gather": gather, "scatter": scatter, "sync": _sync(t, L.N),
            **cold_weight_terms(m, L, "depthwise", ctx)}


def depthwise_ow_tile(profile: HostProfile) -> int:
    """Output columns per depthwise register tile: enough independent
    accumulators to cover FMA latency x units twice (loads interleave), within
    the register file (one weight and one input vector besides)."""
    m = kernel_machine(profile)
    return int(max(1, min(m.vregs - 2, 2 * math.ceil(m.fma_latency * m.fma_units))))


# --------------------------------------------------------------------------- preparation
def prepare_bytes(m: Machine, L: Layer, alg: str, plain: bool = False, scale: bool = False) -> Tuple[float, float]:
    """(floats read, floats written) by the weight preparation of `alg`
    (a candidate name's first word; plain: direct reads plain NCHW input)."""
    w = float(L.K * (L.C // L.groups) * L.R * L.S)
    B = m.lanes
    if alg == "direct":
        cb = 1 if plain else B
        return w, float(math.ceil(L.K / B) * B * math.ceil(L.C / cb) * cb * L.R * L.S)
    if alg.startswith("winograd"):
        a = int(alg[-1]) + 2
        return w, float(a * a * L.C * math.ceil(L.K / B) * B)
    return (w, w) if scale else (0.0, 0.0)


def weight_bytes(m: Machine, L: Layer, alg: str, plain: bool = False) -> float:
    """Bytes of the weights in the layout `alg` reads: what its preparation
    writes, or w itself for the algorithms that read it in place."""
    read, written = prepare_bytes(m, L, alg, plain)
    return F32 * (written or read or L.K * (L.C // L.groups) * L.R * L.S)


def cold_weight_terms(m: Machine, L: Layer, alg: str, ctx: Context, plain: bool = False,
                      readers: int = 1) -> Dict[str, float]:
    """{"cold_weights": seconds} of reading the weights from DRAM once per
    call when ctx.cold_weights (module docstring), else {}; readers: the
    threads whose DRAM bandwidths add up."""
    if not ctx.cold_weights:
        return {}
    return {"cold_weights": weight_bytes(m, L, alg, plain) / m.bandwidth("DRAM") / max(1, readers)}


def direct_fused_prepare(m: Machine, L: Conv2dShape, tile: Tuple[int, int], plain: bool,
                         s: DirectSchedule) -> bool:
    """Whether a one-off direct call packs each group's weights just before
    computing it (module docstring): one image, groups outermost, and a
    group's packed weights (kb*B output channels x all C x R x S) of one
    reduction block in half of L2, where they stay while the rows stream
    past them (each block of a group is packed before the thread's sweep of
    that block)."""
    g = direct_geometry(m, L, tile, plain)
    group_bytes = tile[1] * m.lanes * g.taps * g.cb * F32
    # One image: a batch would pack every group once per image.
    return L.N == 1 and not s.groups_inner and group_bytes / s.cblocks <= m.cache(2).size_bytes / 2


def prepare_cycles_per_element(m: Machine) -> float:
    """Issue cycles per packed float of the weight packers (PREPARE_DATAPATH_CYCLES)."""
    return PREPARE_DATAPATH_CYCLES / (m.lanes * m.fma_units)


def prepare_terms(m: Machine, L: Layer, alg: str, threads: int, plain: bool = False,
                  scale: bool = False, fused: bool = False) -> Dict[str, float]:
    """Seconds of the weight preparation a one-off call of `alg` pays (module
    docstring): {"prepare": ..., "reload": ...}, 0 when the algorithm reads w
    in place; fused: direct packs group by group (direct_fused_prepare)."""
    read, written = prepare_bytes(m, L, alg, plain, scale)
    if written <= 0:
        return {"prepare": 0.0, "reload": 0.0}
    footprint = F32 * (read + written)
    # The copy bandwidth counts bytes read + written, write-allocate included.
    # It is one core's; the packers' threads each bring their own misses in
    # flight (module docstring), so threads divide it too. Fused: w is read
    # from the level it fits in and the packed slice is written into L2.
    # Measured on the Zen 3 VM (1 thread, load 2.5-3, conv2d_prepare_weights
    # best of 30, which times the run's block-by-block packing), against the
    # 0.29 / 0.57 / 0.83 ms predicted: 2048x7x7->512 1x1 0.24-0.33 ms,
    # 1024x14x14->2048 1x1/2 0.53-0.56, 512x7x7->512 3x3 (9.4 MB of w, so
    # read at the DRAM bandwidth here) 0.52-0.70 with w left in L3 by the
    # previous call, 1.29-1.37 with w evicted first (standalone harness).
    if fused:
        memory = (F32 * read / m.bandwidth(m.level_of(F32 * read))
                  + F32 * written / m.copy_bandwidth("L2")) / threads
    else:
        memory = footprint / m.copy_bandwidth(m.level_of(footprint)) / threads
    issue = written * prepare_cycles_per_element(m) / _hz(m) / threads
    compute = 0.0
    if alg.startswith("winograd"):
        a = int(alg[-1]) + 2
        flops = 2.0 * (9 * a + 3 * a * a) * L.K * L.C
        rate = m.peak_flops / max(1.0, m.fma_units) * WEIGHT_TRANSFORM_EFFICIENCY
        compute = max(flops / (rate * threads), _shared_fma_floor(m, flops / rate, threads))
    # The unfused packed copy comes back from memory when the call's working
    # set does not stay in L3. Measured on the Zen 3 VM (1 thread, quiet; the
    # lead's issue-14 table), one-off minus prepared run minus preparation
    # alone: +0.67 ms for 4.2 MB packed (512x7x7->2048 1x1; 0.69 predicted),
    # +1.37 for 8.4 MB (1024x14x14->2048 1x1/2; 1.38), +2.0 for 9.4 MB
    # (512x7x7->512 3x3 direct; 1.55), +2.5 for the 16.8 MB Winograd F2 U
    # (2.75); 2048x7x7->512 1x1 paid nothing (its run is compute-bound).
    acts = F32 * L.N * (L.C * L.H * L.W + L.K * L.out_h * L.out_w)
    spills = not fused and m.level_of(footprint + acts) == "DRAM"
    reload = 2 * F32 * written / m.copy_bandwidth("DRAM") / threads if spills else 0.0
    return {"prepare": max(memory, issue, compute) + _sync(threads, 1), "reload": reload}


# --------------------------------------------------------------------------- selection
def winograd_rejection(mt: int, tolerance: Optional[float]) -> Optional[str]:
    """Why F(mt x mt, 3x3) may not run under a spec's tolerance (None: it may).
    Its documented error bound is the largest relative error measured on any
    build (models/winograd.py: WINOGRAD_REL_ERROR)."""
    bound = WINOGRAD_REL_ERROR[mt]
    if tolerance is not None and bound > tolerance:
        return f"its error bound {bound:g} (relative) exceeds the tolerance {tolerance:g}"
    return None


def applicable(L: Conv2dShape, tolerance: Optional[float] = None) -> Dict[str, Optional[str]]:
    """algorithm -> None if it can run the layer (within the relative error
    tolerance, when one is given), else why not."""
    wino = None
    if not (L.R == 3 and L.S == 3):
        wino = "needs a 3x3 kernel"
    elif L.stride_h != 1 or L.stride_w != 1 or L.dilation_h != 1 or L.dilation_w != 1:
        wino = "needs stride 1 and dilation 1"
    elif L.groups != 1:
        wino = "needs groups = 1"
    return {
        "direct": None if L.groups == 1 else "groups > 1 (the blocked kernel is written for one group)",
        "gemm-1x1": None if L.pointwise else "not a pointwise (1x1, stride 1, unpadded) layer",
        "im2col-gemm": None if not L.pointwise else "pointwise: the GEMM reads the input in place (gemm-1x1)",
        "winograd-f2": wino or winograd_rejection(2, tolerance),
        "winograd-f4": wino or winograd_rejection(4, tolerance),
        "depthwise": None if (L.groups > 1 and L.groups == L.C and L.K % L.C == 0)
        else "needs groups == C (a multiplier K/C per channel)",
    }


def direct_candidate_name(tile: Tuple[int, int], plain: bool) -> str:
    return f"direct {tile[0]}x{tile[1]}" + (" nchw-in" if plain else "")


def candidates(profile: HostProfile, L: Conv2dShape, threads: int, allow: Sequence[str] = ALGORITHMS,
               ctx: Context = NCHW, tolerance: Optional[float] = None, prepared: bool = True,
               scale: bool = False) -> List[Candidate]:
    """prepared=False: a one-off call, every estimate carries its "prepare"
    term (scale: the call folds a batch-norm scale)."""
    m = kernel_machine(profile)
    g = gemm_coefficients(profile)
    why_not = applicable(L, tolerance)
    out: List[Candidate] = []

    def add(name: str, terms: Dict[str, float]) -> None:
        if not prepared:
            alg = name.split()[0]
            plain, fused = False, False
            if alg == "direct":
                tile, plain = parse_direct_name(name)
                fused = direct_fused_prepare(m, L, tile, plain, direct_schedule(m, L, tile, plain, threads))
            terms = dict(terms, **prepare_terms(m, L, alg, threads, plain, scale, fused))
        out.append(Candidate(name, sum(terms.values()), terms))

    for alg in ALGORITHMS:
        reason = why_not[alg] or (None if alg in allow else "not allowed by the spec")
        if reason:
            out.append(Candidate(alg, float("inf"), {}, rejected=reason))
            continue
        if alg == "direct":
            for tile in direct_tiles(profile):
                add(direct_candidate_name(tile, False), estimate_direct(m, L, tile, False, threads, ctx))
                why = plain_input_rejection(m, L, tile, ctx)
                if why:
                    out.append(Candidate(direct_candidate_name(tile, True), float("inf"), {}, rejected=why))
                else:
                    add(direct_candidate_name(tile, True), estimate_direct(m, L, tile, True, threads, ctx))
        elif alg == "gemm-1x1":
            add(alg, estimate_gemm(m, g, L, threads, im2col=False, ctx=ctx))
        elif alg == "im2col-gemm":
            add(alg, estimate_gemm(m, g, L, threads, im2col=True, ctx=ctx))
        elif alg.startswith("winograd"):
            add(alg, estimate_winograd(m, int(alg[-1]), L, threads, ctx))
        elif alg == "depthwise":
            add(alg, estimate_depthwise(m, L, depthwise_ow_tile(profile), threads, ctx))
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


def parse_direct_name(name: str) -> Tuple[Tuple[int, int], bool]:
    """(tile, plain input) from a candidate name made by direct_candidate_name."""
    parts = name.split()
    n, kb = (int(v) for v in parts[1].split("x"))
    return (n, kb), len(parts) > 2 and parts[2] == "nchw-in"


def _direct_params(profile: HostProfile, L: Conv2dShape, name: str, threads: int) -> Dict[str, Param]:
    m = kernel_machine(profile)
    tile, plain = parse_direct_name(name)
    s = direct_schedule(m, L, tile, plain, threads)
    n, kb = tile
    return {
        "tile": Param(f"{n}x{kb}", f"{n} output columns x {kb} blocks of {m.lanes} channels: fits the vector "
                      "registers (direct_tiles); least predicted time for this layer's Wo and K edges"),
        "tile_index": Param(direct_tiles(profile).index(tile), "index in the build's direct tile table"),
        "input": Param("nchw" if plain else "blocked",
                       "plain NCHW, one channel per tap: no channel padding and no input conversion; "
                       "its input rows fit L1" if plain else
                       f"NCHW[{m.lanes}]c, {m.lanes} channels per tap (padded to whole blocks)"),
        "order": Param("groups-inner" if s.groups_inner else "groups-outer",
                       f"fewest bytes from beyond L2 ({s.l3_bytes / 1e6:.2f} MB per image, direct_schedule)"),
        "chunk": Param(s.chunk, "output columns per work item: a chunk's input rows fit half of L2"
                       if s.groups_inner else "a whole output row" if s.chunk == direct_geometry(m, L, tile, plain).cols
                       else "the row cut in one chunk per thread (fewer rows x groups than threads)"),
        "c_blocks": Param(s.cblocks, "reduction blocks of input channels: one block's weights and input stay "
                          "in L2 (partial sums kept in the output between blocks)" if s.cblocks > 1
                          else "the whole reduction at once"),
    }


def plan_layer(profile: HostProfile, L: Conv2dShape, *, isa_suffix: str, threads: int = 1,
               activations: Sequence[str] = ("none",), spec_name: Optional[str] = None,
               allow: Sequence[str] = ALGORITHMS, ctx: Context = NCHW,
               tolerance: Optional[float] = None, fixed_lanes_suffix: Optional[str] = None,
               prepared: bool = True) -> Plan:
    """isa_suffix names the GEMM-based kernels; fixed_lanes_suffix (default:
    isa_suffix) the direct, depthwise and Winograd kernels, which are built for
    the fixed-lanes view of the profile. prepared=False plans a one-off call
    (run + prepare)."""
    cands = candidates(profile, L, threads, allow, ctx, tolerance, prepared=prepared)
    fixed = fixed_lanes_profile(profile)
    best = choose(cands)
    alg = best.name.split()[0]
    params: Dict[str, Param] = {
        "algorithm": Param(alg, "least predicted time among the applicable algorithms (candidates below)"
                           + ("" if prepared else ", preparation of the weights included (a one-off call)")),
        "threads": Param(threads, "spec thread count, capped at the profile's cores"),
    }
    if tolerance is not None:
        params["tolerance"] = Param(tolerance, "the spec's largest relative error: refuses the algorithms whose "
                                    "error bound exceeds it (" + ", ".join(
                                        f"winograd-f{mt} {b:g}" for mt, b in sorted(WINOGRAD_REL_ERROR.items())) + ")")
    if alg == "direct":
        params.update(_direct_params(profile, L, best.name, threads))
    if alg == "depthwise":
        params["ow_tile"] = Param(depthwise_ow_tile(profile), "2 x FMA latency x units accumulators "
                                  f"(latency {fixed.fma_latency_cycles}, units {fixed.fma_per_cycle:g} of {fixed.isa})")
    shape = {"N": L.N, "C": L.C, "H": L.H, "W": L.W, "K": L.K, "R": L.R, "S": L.S, "stride_h": L.stride_h,
             "stride_w": L.stride_w, "pad_top": L.pad_top, "pad_left": L.pad_left, "pad_bottom": L.pad_bottom,
             "pad_right": L.pad_right, "dilation_h": L.dilation_h, "dilation_w": L.dilation_w,
             "groups": L.groups}
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
    """Every number the C++ port of this model needs (emitted into the registry)."""
    m = kernel_machine(profile)
    g = gemm_coefficients(profile)
    l1, l2 = m.cache(1), m.cache(2)
    return {
        "lanes": m.lanes, "fma_units": m.fma_units, "fma_latency": m.fma_latency, "hz": _hz(m),
        "peak_flops": m.peak_flops, "fma_thread_scaling": m.profile.fma_thread_scaling,
        "loads_per_cycle": LOADS_PER_CYCLE, "issue_jitter": ISSUE_JITTER,
        "sync_seconds": SYNC_SECONDS,
        "copy_cycles_per_element": COPY_CYCLES_PER_ELEMENT, "tile_overhead_cycles": TILE_OVERHEAD_CYCLES,
        "tap_overhead_cycles": TAP_OVERHEAD_CYCLES, "prepare_cycles_per_element": prepare_cycles_per_element(m),
        "call_overhead_cycles": CALL_OVERHEAD_CYCLES, "transform_efficiency": winograd_efficiencies(m)[0],
        "winograd_gemm_efficiency": winograd_efficiencies(m)[1],
        "gemm_mr": g.mr, "gemm_nr": g.nr, "gemm_kc": g.kc, "gemm_inv_eff_a": g.inv_eff_a,
        "gemm_inv_eff_b": g.inv_eff_b,
        "depthwise_ow_tile": depthwise_ow_tile(profile),
        "winograd_f2_error": WINOGRAD_REL_ERROR[2], "winograd_f4_error": WINOGRAD_REL_ERROR[4],
        "l1_bytes": l1.size_bytes, "l1_ways": l1.ways, "line_bytes": l1.line_bytes, "l2_bytes": l2.size_bytes,
        "l3_bytes": m.cache(3).size_bytes,
        "bw_l1": m.bandwidth("L1"), "bw_l2": m.bandwidth("L2"), "bw_l3": m.bandwidth("L3"),
        "bw_dram": m.bandwidth("DRAM"),
        "copy_bw_l1": m.copy_bandwidth("L1"), "copy_bw_l2": m.copy_bandwidth("L2"),
        "copy_bw_l3": m.copy_bandwidth("L3"), "copy_bw_dram": m.copy_bandwidth("DRAM"),
        "weight_transform_efficiency": WEIGHT_TRANSFORM_EFFICIENCY,
    }
