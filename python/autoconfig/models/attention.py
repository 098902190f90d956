"""Analytical model of scaled-dot-product attention and of GEMM + LayerNorm:
fused kernels against the unfused sequences of our own kernels.

Attention, O = softmax(scale * Q K^T + mask) V for B batches x H heads, Q of
S x D, K and V of Sk x D, on t threads.

Fused (codegen/attention.py): work items are (batch, head, query chunk); each
packs K^T and V of its head once (in panels of the tile's columns), then for
every register tile of mr query rows walks the keys in blocks of key_block,
keeping the tile's scores (mr x key_block) in L1 and updating a running max
and sum (online softmax), so the score matrix never leaves L1. Per item:
  compute = 2 * Sp * Skp * D + 2 * Sp * Sk * Dp flops / (peak * tile_eff)
            (Sp, Skp, Dp rounded up to the register tile; tile_eff: the
            microkernel's FMA cycles over its FMA or load cycles, whichever
            bound, per k step: mr broadcasts + nv vector loads per mr x nv FMAs)
  calls   = register-tile calls * CALL_OVERHEAD_CYCLES / clock
  stream  = query tiles * (K^T block + V block bytes) / bandwidth of the level
            K^T and V of one head live in (L2 when 2 * Sk * D * 4 fits half of it)
  softmax = Sp * Sk * SOFTMAX_CYCLES_PER_SCORE / clock
  pack    = 2 * Sk * D elements copied (COPY_CYCLES_PER_ELEMENT): K^T and V
            into panels of the tile's columns
  With a padding mask the kernel skips keys (whole blocks, or a block's
  tail) whose softmax weight is provably 0 (codegen/attention.py: kZeroGap): compute, calls, stream and
  softmax count the keys it walks (walked_keys, measured on the mask by the
  kernel's own test, AttentionKernels::walked_keys) instead of Sk; K^T and
  V are still packed whole.
  total   = busiest thread's items * (compute + calls + max(0, stream - compute
            - calls) + softmax + pack)
            + one barrier (SYNC_SECONDS) when t > 1
Unfused (what a graph of MatMul, Mul, Add, Softmax, MatMul runs: autoconfig
gemm per head, the softmax rows, gemm per head), per head:
  gemm1   = the GEMM S x Sk x D (models/conv.py's GEMM terms: compute at the
            generic kernel's efficiency, calls, C read and written per kc block)
  softmax = S * Sk * SOFTMAX_CYCLES_PER_SCORE / clock / t
  scores  = the score matrix (S * Sk * 4 bytes) read and written by the
            softmax and read again by the second GEMM's packing, from the level
            it lives in: this is the traffic fusion removes
  gemm2   = the GEMM S x D x Sk
  pack    = K^T and V packed by the GEMMs (2 * Sk * D elements), and the scores
            packed as A (S * Sk)
  sync    = three parallel regions per head (t > 1)
Both are evaluated with the numbers of models/conv.py's model_coefficients (the
dict the generator emits into the registry as ConvModel), so the C++ mirror in
cpp_runtime/src/attention.cpp computes the same seconds from the same
coefficients; tests/build/test_attention_model.py checks the two agree.

GEMM + bias + residual + LayerNorm, Y = LN(A B + bias + R) over rows of N:
  unfused = gemm(M, N, K, t) + layernorm pass (M * N * LAYERNORM_CYCLES_PER_ELEMENT
            / clock / t, Y read and written from the level M * N * 4 bytes
            live in) + one barrier
  fused   = row blocks of block_rows (block_rows * N * 4 within half of L2),
            one thread each: the busiest thread's blocks * (gemm(block_rows, N,
            K, 1) + B packed again for the block (K * N copied) + the block's
            layernorm from L2) + one barrier
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..profile import HostProfile
from .machine import CALL_OVERHEAD_CYCLES, LOADS_PER_CYCLE, Machine
from .conv import kernel_machine, model_coefficients

F32 = 4
# Query rows per register tile, at most: each row is one broadcast per k step
# and one softmax row; more rows than this make the score tile (rows x
# key_block) crowd L1 before they save loads.
MAX_TILE_ROWS = 8
# Vector ops per score of the softmax passes, counted in the emitted code
# (codegen/attention.py): the scale/mask/max pass (load, mul, add, store,
# max: 5) and the exp pass (load, sub, v_exp's 17 ops, flush 3, store, add:
# 23), issued at 2 vector ops per cycle (the FP pipes that take them on Zen 3,
# Skylake and Neoverse N1 alike), per lane.
SOFTMAX_VECTOR_OPS = 28.0
VECTOR_OPS_PER_CYCLE = 2.0
# LayerNorm, vector ops per element: the mean pass (load, add), the variance
# pass (load, sub, fma) and the normalizing pass (load, sub, mul, fma, store).
LAYERNORM_VECTOR_OPS = 10.0
# Work items per thread the fused attention aims at when a head's queries must
# be split to feed the threads (as XNNPACK aims at ~5 tiles per thread).
ITEMS_PER_THREAD = 4


@dataclass(frozen=True)
class AttentionTile:
    rows: int        # mr: query rows per register tile
    vectors: int     # nv: vectors per row of the tile
    lanes: int

    @property
    def cols(self) -> int:
        return self.vectors * self.lanes


def tile(profile: HostProfile) -> AttentionTile:
    """The register tile of both products: mr x nv accumulators, nv vector
    loads and one broadcast live at once (mr*nv + nv + 1 <= registers); the
    most FMAs per load (mr*nv / (mr + nv)) wins, nv in {1, 2, 4} so that the
    tile's columns divide the usual head sizes (32, 64, 128)."""
    m = kernel_machine(profile)
    best: Tuple[float, int, int] = (-1.0, 0, 0)
    for nv in (1, 2, 4):
        for mr in range(1, MAX_TILE_ROWS + 1):
            if mr * nv + nv + 1 > m.vregs:
                continue
            score = mr * nv / (mr + nv)
            if score > best[0] + 1e-9:
                best = (score, mr, nv)
    return AttentionTile(best[1], best[2], m.lanes)


def key_block(profile: HostProfile, t: AttentionTile) -> int:
    """Keys per block: the score tile (mr x key_block floats) in half of L1,
    the other half for the K^T and V lines streaming through; a multiple of
    the tile's columns."""
    l1 = kernel_machine(profile).cache(1).size_bytes
    kb = (l1 // 2) // (F32 * t.rows)
    return max(t.cols, kb // t.cols * t.cols)


def softmax_cycles_per_score(lanes: int) -> float:
    return SOFTMAX_VECTOR_OPS / VECTOR_OPS_PER_CYCLE / lanes


def layernorm_cycles_per_element(lanes: int) -> float:
    return LAYERNORM_VECTOR_OPS / VECTOR_OPS_PER_CYCLE / lanes


def _cdiv(a: float, b: float) -> float:
    return math.ceil(a / b)


def _level_bw(c: Dict[str, float], nbytes: float) -> float:
    if nbytes <= c["l1_bytes"] / 2:
        return c["bw_l1"]
    if nbytes <= c["l2_bytes"] / 2:
        return c["bw_l2"]
    return c["bw_l3"] if nbytes <= c["l3_bytes"] / 2 else c["bw_dram"]


def _beyond_l2_bw(c: Dict[str, float], nbytes: float) -> float:
    if nbytes <= c["l2_bytes"] / 2:
        return c["bw_l2"]
    return c["bw_l3"] if nbytes <= c["l3_bytes"] / 2 else c["bw_dram"]


def _copy_s(c: Dict[str, float], elements: float, t: float) -> float:
    return elements * c["copy_cycles_per_element"] / c["hz"] / t


def _sync(c: Dict[str, float], t: float, regions: float) -> float:
    return regions * c["sync_seconds"] if t > 1 else 0.0


def _shared_fma_floor(c: Dict[str, float], full_rate_seconds: float, t: float) -> float:
    """models/conv.py: _shared_fma_floor: t threads reach t * fma_thread_scaling
    cores' worth of FMA rate (less than t cores when logical CPUs share FMA units)."""
    return full_rate_seconds / (1.0 if t <= 1 else max(1.0, t * c["fma_thread_scaling"]))


def gemm_terms(c: Dict[str, float], M: float, N: float, K: float, t: float) -> Dict[str, float]:
    """The generic GEMM on t threads (models/conv.py: _gemm_seconds, in the
    coefficients' terms), plus packing B once (a read and a write per element)."""
    mt, nt = _cdiv(M, c["gemm_mr"]), _cdiv(N, c["gemm_nr"])
    tt = max(1.0, min(t, mt * nt))
    busiest = _cdiv(mt * nt, tt)
    k_blocks = _cdiv(K, c["gemm_kc"])
    kc = max(1.0, min(_cdiv(K, k_blocks), c["gemm_kc"]))
    eff = 1.0 / (c["gemm_inv_eff_a"] + c["gemm_inv_eff_b"] / kc)
    full = 2.0 * mt * nt * c["gemm_mr"] * c["gemm_nr"] * K / c["peak_flops"]
    compute = max(2.0 * busiest * c["gemm_mr"] * c["gemm_nr"] * K / (c["peak_flops"] * eff),
                  _shared_fma_floor(c, full, tt))
    c_bytes = M * N * F32
    return {"compute": compute, "calls": busiest * k_blocks * c["call_overhead_cycles"] / c["hz"],
            "c_io": 2.0 * c_bytes * k_blocks / _beyond_l2_bw(c, c_bytes), "pack": _copy_s(c, 2.0 * K * N, t)}


@dataclass(frozen=True)
class AttentionShape:
    B: int
    H: int
    S: int
    Sk: int
    D: int


def query_chunks(s: AttentionShape, t: AttentionTile, threads: int) -> int:
    """Query chunks per head (the fused kernel's split, attention_kernels): one
    unless batch x heads leave threads short of ITEMS_PER_THREAD items each."""
    heads = s.B * s.H
    want = _cdiv(threads * ITEMS_PER_THREAD, heads) if heads < threads * ITEMS_PER_THREAD else 1
    return int(max(1, min(want, _cdiv(s.S, t.rows))))


def fused_terms(c: Dict[str, float], t: AttentionTile, kb: int, s: AttentionShape,
                threads: int, walked_keys: Optional[int] = None) -> Dict[str, float]:
    """walked_keys: keys per query row the kernel walks (None: all Sk)."""
    skw = s.Sk if walked_keys is None else walked_keys
    chunks = query_chunks(s, t, threads)
    items = s.B * s.H * chunks
    busiest = _cdiv(items, min(threads, items))
    rows = _cdiv(s.S, chunks)
    tiles = _cdiv(rows, t.rows)
    sp, skp, dp = tiles * t.rows, _cdiv(skw, t.cols) * t.cols, _cdiv(s.D, t.cols) * t.cols
    fma_cycles = t.rows * t.vectors / c["fma_units"]
    load_cycles = (t.rows + t.vectors) / LOADS_PER_CYCLE
    eff = fma_cycles / max(fma_cycles, load_cycles)
    flops = 2.0 * sp * skp * s.D + 2.0 * sp * skw * dp
    blocks = _cdiv(skw, kb)
    calls = tiles * (skp / t.cols + blocks * dp / t.cols)
    head_bytes = 2.0 * s.Sk * s.D * F32
    compute = flops / (c["peak_flops"] * eff)
    call_s = calls * CALL_OVERHEAD_CYCLES / c["hz"]
    stream = tiles * (skp * s.D + skw * dp) * F32 / _level_bw(c, head_bytes)
    item = {
        "compute": compute,
        "calls": call_s,
        # the K^T and V lines stream while the FMAs run: only their excess counts
        "stream": max(0.0, stream - compute - call_s),
        "softmax": sp * skw * softmax_cycles_per_score(t.lanes) / c["hz"],
        "pack": _copy_s(c, 2.0 * s.Sk * s.D, 1),
    }
    terms = {k: busiest * v for k, v in item.items()}
    terms["compute"] = max(terms["compute"], _shared_fma_floor(c, items * compute, min(threads, items)))
    terms["sync"] = _sync(c, min(threads, items), 1)
    return terms


def unfused_terms(c: Dict[str, float], lanes: int, s: AttentionShape, threads: int) -> Dict[str, float]:
    heads = s.B * s.H
    g1 = gemm_terms(c, s.S, s.Sk, s.D, threads)
    g2 = gemm_terms(c, s.S, s.D, s.Sk, threads)
    score_bytes = s.S * s.Sk * F32
    return {
        "gemm1": heads * (g1["compute"] + g1["calls"] + g1["c_io"]),
        "softmax": heads * s.S * s.Sk * softmax_cycles_per_score(lanes) / c["hz"] / threads,
        "scores": heads * 3.0 * score_bytes / _level_bw(c, score_bytes) / threads,
        "gemm2": heads * (g2["compute"] + g2["calls"] + g2["c_io"]),
        "pack": heads * (g1["pack"] + g2["pack"] + _copy_s(c, 2.0 * s.S * s.Sk, threads)),
        "sync": _sync(c, threads, 3 * heads),
    }


@dataclass
class AttentionEstimate:
    shape: AttentionShape
    threads: int
    algorithm: str                       # fused | unfused
    fused_s: float
    unfused_s: float
    fused: Dict[str, float]
    unfused: Dict[str, float]
    tile: AttentionTile
    key_block: int
    notes: List[str] = field(default_factory=list)

    def explain(self) -> str:
        s = self.shape
        out = [f"attention B={s.B} H={s.H} S={s.S} Sk={s.Sk} D={s.D}, {self.threads} thread(s): "
               f"{self.algorithm} (fused {self.fused_s * 1e6:.1f} us vs unfused {self.unfused_s * 1e6:.1f} us, "
               f"{self.unfused_s / self.fused_s:.2f}x)",
               f"  fused: register tile {self.tile.rows}x{self.tile.cols}, key block {self.key_block} "
               f"(score tile {self.tile.rows * self.key_block * F32 // 1024} KiB in L1)"]
        for name, terms in (("fused", self.fused), ("unfused", self.unfused)):
            out.append(f"  {name}: " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in terms.items()) + " (us)")
        out += ["  " + n for n in self.notes]
        return "\n".join(out)

    __str__ = explain


def estimate(profile: HostProfile, s: AttentionShape, threads: int,
             walked_keys: Optional[int] = None) -> AttentionEstimate:
    c = model_coefficients(profile)
    t = tile(profile)
    kb = key_block(profile, t)
    f = fused_terms(c, t, kb, s, threads, walked_keys)
    u = unfused_terms(c, t.lanes, s, threads)
    fs, us = sum(f.values()), sum(u.values())
    notes = [f"the unfused score matrix is {s.S * s.Sk * F32 / 1024:.0f} KiB per head "
             f"(from {Machine(profile).level_of(s.S * s.Sk * F32)})"]
    return AttentionEstimate(s, threads, "fused" if fs <= us else "unfused", fs, us, f, u, t, kb, notes)


def best_threads(profile: HostProfile, s: AttentionShape, cpus: int) -> AttentionEstimate:
    """The thread count (1..cpus) of the least predicted time, for the algorithm chosen at it."""
    ests = [estimate(profile, s, t) for t in range(1, max(1, cpus) + 1)]
    return min(ests, key=lambda e: min(e.fused_s, e.unfused_s))


# --------------------------------------------------------------------------- GEMM + LayerNorm
def layernorm_block_rows(c: Dict[str, float], M: int, N: int, threads: int) -> int:
    """Rows per fused block: the block's output (rows x N floats) in half of
    L2, at least one GEMM register tile of rows, and at least `threads` blocks."""
    mr = int(c["gemm_mr"])
    rows = int(c["l2_bytes"] / 2 // (N * F32))
    rows = min(rows, int(_cdiv(M, threads)))
    return max(mr, rows // mr * mr) if rows >= mr else mr


def gemm_layernorm_terms(c: Dict[str, float], lanes: int, M: int, N: int, K: int,
                         threads: int, prepared_b: bool = False) -> Tuple[Dict[str, float], Dict[str, float], int]:
    """(fused terms, unfused terms, fused block rows). prepared_b: the weights
    were packed once ahead (the executor's constant W, PreparedGemmB), so
    neither form copies B: the fused form's row blocks no longer pack it once
    each (attention.cpp: choose_ln, the same rule)."""
    ln = layernorm_cycles_per_element(lanes) / c["hz"]
    y_bytes = M * N * F32
    g = gemm_terms(c, M, N, K, threads)
    if prepared_b:
        g["pack"] = 0.0
    unfused = {"gemm": g["compute"] + g["calls"] + g["c_io"] + g["pack"],
               "layernorm": M * N * ln / threads + 2.0 * y_bytes / _level_bw(c, y_bytes) / threads,
               "sync": _sync(c, threads, 2)}
    rows = layernorm_block_rows(c, M, N, threads)
    blocks = _cdiv(M, rows)
    t = min(threads, blocks)
    busiest = _cdiv(blocks, t)
    gb = gemm_terms(c, rows, N, K, 1)
    if prepared_b:
        gb["pack"] = 0.0
    fused = {"gemm": max(busiest * (gb["compute"] + gb["calls"] + gb["c_io"]),
                         _shared_fma_floor(c, blocks * gb["compute"], t)),
             "pack": busiest * gb["pack"],
             "layernorm": busiest * (rows * N * ln + 2.0 * rows * N * F32 / c["bw_l2"]),
             "sync": _sync(c, t, 1)}
    return fused, unfused, rows
