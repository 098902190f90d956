"""Emits the direct convolution of one variant: output in the channel-blocked
layout NCHW[B]c (B = the ISA's float lanes), input either blocked too or
plain NCHW, and the NCHW <-> NCHW[B]c conversions.

The register tile is N output columns x KB blocks of B output channels. The
reduction runs over a table of taps, each tap one (input channel block, r, s)
of the blocked input, or one (input channel, r, s) of the plain input, so
the innermost loop has compile-time trip counts and displacements (CB = B or
1 input channels per tap) and no address arithmetic beyond one table load:
per input channel it loads KB weight vectors, broadcasts N input values and
issues N*KB FMAs. Weights are packed per group of KB output blocks, tap by
tap, in the order the tile reads them, so the weight stream is sequential.

Work items are (output row, column chunk, group of KB output blocks); the
plan orders them groups-outer (a group's weights stay in L2 while the input
streams) or groups-inner (a chunk's input stays in L2 while every group's
weights stream), and may split the reduction into blocks of input channels
(partial sums kept in the output, the epilogue on the last block) so a
block's weights stay in L2 and its input is reused by every group:
models/conv.py picks the order and the blocks with the least traffic.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from .isa import Isa

# Register tiles (N output columns, KB channel blocks) the direct kernel is
# compiled for (models/conv.py: direct_tiles).
Tile = Tuple[int, int]


def direct_kernel_name(isa: Isa) -> str:
    return f"f32_conv2d_direct_nchw{isa.lanes}c_{isa.suffix}"


def _common() -> str:
    return r'''
// One reduction block of a layer: the taps [0, ntaps) of `taps`; the first
// block starts from zero, the others add to the partial sums in y; only the
// last applies the epilogue.
struct DirectArgs {
  const int64_t* taps;   // input offset (floats) of each tap
  int64_t ntaps;
  int64_t xs;            // input floats between neighbouring output columns (stride_w * CB)
  int64_t y_kb;          // output floats per output block (Ho * Wo * B)
  float lo, hi;
  bool accumulate;       // start from y (an earlier reduction block's partial sums)
  bool finish;           // last block: bias, residual, clamp
};

int64_t packed_weights_floats(int64_t K, int64_t C, int64_t R, int64_t S, int cb) {
  return ((K + B - 1) / B) * B * ((C + cb - 1) / cb) * cb * R * S;
}

// Group g of KB output blocks (kbn <= KB live in the last group) starts at
// g * KB * taps * cb * B; inside it u[tap][c][kb][lane], tap = (c / cb, r, s).
// Channels past K or C are zero.
void pack_weights(const float* w, int64_t K, int64_t C, int64_t R, int64_t S, int KB, int cb, float* u) {
  const int64_t kblocks = (K + B - 1) / B, RS = R * S, taps = ((C + cb - 1) / cb) * RS;
  std::memset(u, 0, sizeof(float) * packed_weights_floats(K, C, R, S, cb));
  for (int64_t k = 0; k < K; ++k) {
    const int64_t g = k / B / KB, kb = (k / B) % KB;
    const int64_t kbn = kblocks - g * KB < KB ? kblocks - g * KB : KB;
    float* ug = u + g * KB * taps * cb * B;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) {
        const int64_t tap = (c / cb) * RS + t;
        ug[((tap * cb + c % cb) * kbn + kb) * B + k % B] = w[(k * C + c) * RS + t];
      }
  }
}
'''


def _tile(isa: Isa) -> str:
    V = isa.vtype
    return f'''
// N output columns x KB output blocks over all taps. x: input of output column
// 0 of the tile; u: the group's packed weights; y: output block 0 at column 0;
// res: like y or null; bias: KB * B values or null. SW > 0: the layer's
// stride_w as a constant (the input column offsets become displacements);
// SW = 0: any stride, one pointer per column set up per tap (a run-time
// stride left in the innermost loop makes GCC spill every column offset).
template <int N, int KB, int CB, int SW>
static inline void tile(const float* __restrict x, const DirectArgs& a, const float* __restrict u,
                        float* __restrict y, const float* __restrict res, const float* __restrict bias) {{
  {V} acc[N][KB];
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n)
#pragma GCC unroll 8
    for (int kb = 0; kb < KB; ++kb) acc[n][kb] = a.accumulate ? {isa.loadu("y + kb * a.y_kb + n * B")} : {isa.zero()};
  const int64_t xs = SW > 0 ? SW * CB : a.xs;
  for (int64_t t = 0; t < a.ntaps; ++t, u += CB * KB * B) {{
    const float* xp = x + a.taps[t];
    const float* xn[N];
#pragma GCC unroll 32
    for (int n = 0; n < N; ++n) xn[n] = xp + n * xs;
#pragma GCC unroll 16
    for (int c = 0; c < CB; ++c) {{
      {V} w[KB];
#pragma GCC unroll 8
      for (int kb = 0; kb < KB; ++kb) w[kb] = {isa.loadu("u + (c * KB + kb) * B")};
#pragma GCC unroll 32
      for (int n = 0; n < N; ++n) {{
        const {V} xv = {isa.broadcast("(SW > 0 ? xp + n * SW * CB : xn[n])[c]")};
#pragma GCC unroll 8
        for (int kb = 0; kb < KB; ++kb) acc[n][kb] = {isa.fma("xv", "w[kb]", "acc[n][kb]")};
      }}
    }}
  }}
  if (!a.finish) {{
#pragma GCC unroll 8
    for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 32
      for (int n = 0; n < N; ++n) {isa.storeu("y + kb * a.y_kb + n * B", "acc[n][kb]")}
    return;
  }}
  const {V} lo = {isa.set1("a.lo")}, hi = {isa.set1("a.hi")};
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb) {{
    const {V} bv = bias ? {isa.loadu("bias + kb * B")} : {isa.zero()};
#pragma GCC unroll 32
    for (int n = 0; n < N; ++n) {{
      {V} v = {isa.add("acc[n][kb]", "bv")};
      if (res) v = {isa.add("v", isa.loadu("res + kb * a.y_kb + n * B"))};
      v = {isa.clamp("v", "lo", "hi")};
      {isa.storeu("y + kb * a.y_kb + n * B", "v")}
    }}
  }}
}}
'''


# The kernel's input variants: (channels per tap, compile-time stride_w or 0
# for any). Blocked input reads B channels per tap, where one pointer per
# column set up per tap is as fast as constant offsets; plain input reads one
# channel per tap, where that set-up would cost as much as the tap itself, so
# the strides of common layers (1, 2) get their own code.
INPUT_VARIANTS = (("B", 0), ("1", 0), ("1", 1), ("1", 2))


def _dispatch(tiles: Sequence[Tile]) -> str:
    """cols(): output columns [ow0, ow1) of one row for one group, the widest
    tile first and one narrower tile for the rest (a switch, so every tile has
    compile-time N and KB); the table kCols[tile][kbn - 1][input variant]."""
    nmax = max(n for n, _ in tiles)
    kbmax = max(kb for _, kb in tiles)
    o = ["template <int NT, int KB, int CB, int SW>",
         "static void cols(const float* x, const DirectArgs& a, const float* u, float* y, const float* res,",
         "                 const float* bias, int64_t ow0, int64_t ow1) {",
         "  int64_t ow = ow0;",
         "  for (; ow + NT <= ow1; ow += NT)",
         "    tile<NT, KB, CB, SW>(x + ow * a.xs, a, u, y + ow * B, res ? res + ow * B : nullptr, bias);",
         "  const int rest = static_cast<int>(ow1 - ow);",
         "  if (rest == 0) return;",
         "  x += ow * a.xs;",
         "  y += ow * B;",
         "  if (res) res += ow * B;",
         "  switch (rest) {"]
    for n in range(1, nmax):
        o.append(f"    case {n}: if ({n} < NT) tile<({n} < NT ? {n} : 1), KB, CB, SW>(x, a, u, y, res, bias); return;")
    o += ["    default: return;", "  }", "}", ""]
    o.append("using ColsFn = void (*)(const float*, const DirectArgs&, const float*, float*, const float*, const float*,")
    o.append("                        int64_t, int64_t);")
    o.append(f"constexpr int kTiles = {len(tiles)}, kMaxKB = {kbmax};")
    o.append(f"constexpr int kTileN[kTiles] = {{{', '.join(str(n) for n, _ in tiles)}}};")
    o.append(f"constexpr int kTileKB[kTiles] = {{{', '.join(str(kb) for _, kb in tiles)}}};")
    o.append("// [tile][kbn - 1][input variant: " + ", ".join(f"{i}: CB={cb} SW={sw}" for i, (cb, sw) in
                                                        enumerate(INPUT_VARIANTS)) + "]")
    o.append(f"constexpr int kInputVariants = {len(INPUT_VARIANTS)};")
    o.append("const ColsFn kCols[kTiles][kMaxKB][kInputVariants] = {")
    for n, kb in tiles:
        fns = ["{" + ", ".join(f"&cols<{n}, {k}, {cb}, {sw}>" for cb, sw in INPUT_VARIANTS) + "}" if k <= kb
               else "{" + ", ".join("nullptr" for _ in INPUT_VARIANTS) + "}" for k in range(1, kbmax + 1)]
        o.append("    {" + ", ".join(fns) + "},")
    o.append("};")
    o.append("// The variant for an input layout and stride_w.")
    o.append("static int input_variant(bool plain, int64_t stride_w) {")
    o.append("  if (!plain) return 0;")
    o.append("  return stride_w == 1 ? 2 : stride_w == 2 ? 3 : 1;")
    o.append("}")
    return "\n".join(o) + "\n"


def _run() -> str:
    return r'''
struct DirectJob {
  const DirectArgs* a;
  const DirectSchedule* s;
  const float* x;     // padded input
  const float* u;
  const DirectGroupWeights* gw;  // non-null: u is unused, each thread packs its groups (run_fused)
  const float* bias;  // whole blocks, or null
  const float* res;
  float* y;
  int64_t kblocks, groups, Ho, Wo, chunks, x_row, u_group;
  int64_t cgroups, RS, cb;  // input channel groups (blocks of B, or channels), taps per group, channels per tap
  int variant;        // input_variant()
};

// A thread owns a contiguous range of (group, row chunk) items, ordered as
// the schedule says, and sweeps it once per reduction block: every output
// tile is finished by the thread that started it.
void direct_thread(void* ctx, int tid, int nthreads) {
  const DirectJob& j = *static_cast<const DirectJob*>(ctx);
  const int KB = kTileKB[j.s->tile];
  const int64_t rowchunks = j.Ho * j.chunks, items = rowchunks * j.groups;
  const int64_t lo = items * tid / nthreads, hi = items * (tid + 1) / nthreads;
  const int64_t nblocks = j.s->cblocks < 1 ? 1 : j.s->cblocks;
  float* own = j.gw ? j.gw->scratch + tid * j.gw->slice_floats : nullptr;
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    int64_t packed = -1;   // the group whose block blk is in `own`
    const int64_t c0 = j.cgroups * blk / nblocks, c1 = j.cgroups * (blk + 1) / nblocks;
    if (c0 == c1) continue;
    DirectArgs a = *j.a;
    a.taps += c0 * j.RS;
    a.ntaps = (c1 - c0) * j.RS;
    a.accumulate = c0 > 0;
    a.finish = c1 == j.cgroups;
    for (int64_t it = lo; it < hi; ++it) {
      int64_t g, rc;
      if (j.s->groups_inner) { rc = it / j.groups; g = it % j.groups; }
      else { g = it / rowchunks; rc = it % rowchunks; }
      const int64_t oh = rc / j.chunks, ow0 = (rc % j.chunks) * j.s->chunk;
      const int64_t ow1 = ow0 + j.s->chunk < j.Wo ? ow0 + j.s->chunk : j.Wo;
      const int64_t kb0 = g * KB;
      const int kbn = static_cast<int>(j.kblocks - kb0 < KB ? j.kblocks - kb0 : KB);
      const int64_t yoff = kb0 * a.y_kb + oh * j.Wo * B;
      const float* u = j.u ? j.u + g * j.u_group + c0 * j.RS * j.cb * kbn * B : own;
      if (own && g != packed) {
        j.gw->pack(j.gw->w, j.gw->scale, j.gw->K, j.gw->C, j.gw->R, j.gw->S, KB, static_cast<int>(j.cb), g, c0, c1, own);
        packed = g;
      }
      kCols[j.s->tile][kbn - 1][j.variant](
          j.x + oh * j.x_row, a, u, j.y + yoff,
          j.res ? j.res + yoff : nullptr, j.bias ? j.bias + kb0 * B : nullptr, ow0, ow1);
    }
  }
}

// x: the padded input, blocked (ceil(C/B) x H x W x B) or plain (C x H x W)
// as s.plain_input says; g.H, g.W are the padded sizes (pads 0 here). y: the
// blocked output (ceil(K/B) x Ho x Wo x B); res: null or like y; bias: null or
// ceil(K/B)*B values; u: pack_weights(..., kTileKB[s.tile], s.plain_input ? 1 : B).
static void launch(const ConvGeometry& g, const float* x, const float* u, const DirectGroupWeights* gw,
                   const ConvEpilogue& ep, float* y, const DirectSchedule& s, int threads) {
  const int cb = s.plain_input ? 1 : B;
  const int64_t cgroups = (g.C + cb - 1) / cb, RS = g.R * g.S;
  std::vector<int64_t> taps(static_cast<size_t>(cgroups * RS));
  for (int64_t c = 0; c < cgroups; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t q = 0; q < g.S; ++q)
        taps[(c * g.R + r) * g.S + q] = c * g.H * g.W * cb + (r * g.dilation_h * g.W + q * g.dilation_w) * cb;
  DirectArgs a{taps.data(), cgroups * RS, g.stride_w * cb, g.Ho * g.Wo * B, ep.lo, ep.hi, false, true};
  const int tile = s.tile < 0 || s.tile >= kTiles ? 0 : s.tile;
  DirectSchedule sched = s;
  sched.tile = tile;
  if (sched.chunk < 1 || sched.chunk > g.Wo) sched.chunk = g.Wo;
  if (sched.cblocks < 1 || sched.cblocks > cgroups) sched.cblocks = sched.cblocks < 1 ? 1 : cgroups;
  DirectJob j;
  j.a = &a;
  j.s = &sched;
  j.x = x;
  j.u = u;
  j.gw = gw;
  j.bias = ep.bias;
  j.res = ep.residual;
  j.y = y;
  j.kblocks = (g.K + B - 1) / B;
  j.groups = (j.kblocks + kTileKB[tile] - 1) / kTileKB[tile];
  j.Ho = g.Ho;
  j.Wo = g.Wo;
  j.chunks = (g.Wo + sched.chunk - 1) / sched.chunk;
  j.x_row = g.stride_h * g.W * cb;
  j.u_group = static_cast<int64_t>(kTileKB[tile]) * a.ntaps * cb * B;
  j.cgroups = cgroups;
  j.RS = RS;
  j.cb = cb;
  j.variant = input_variant(s.plain_input, g.stride_w);
  const int64_t items = j.groups * j.Ho * j.chunks;
  parallel_run(static_cast<int>(threads < 1 ? 1 : (threads < items ? threads : items)), &direct_thread, &j);
}

void run(const ConvGeometry& g, const float* x, const float* u, const ConvEpilogue& ep, float* y,
         const DirectSchedule& s, int threads) {
  launch(g, x, u, nullptr, ep, y, s, threads);
}

// run() packing each group's weights just before computing it, into the
// thread's own slice of w.scratch (w.slice_floats >= KB * taps * cb * B).
void run_fused(const ConvGeometry& g, const float* x, const DirectGroupWeights& w, const ConvEpilogue& ep, float* y,
               const DirectSchedule& s, int threads) {
  launch(g, x, nullptr, &w, ep, y, s, threads);
}
'''


def _layout() -> str:
    return r'''
struct LayoutJob {
  const float* src;
  float* dst;
  int64_t C, H, W, pt, pl, pb, pr;      // to_blocked
  const float* res;
  float lo, hi;                          // from_blocked
};

// One channel block per item: B planes interleaved into (padded) rows of B lanes.
void to_blocked_thread(void* ctx, int tid, int nthreads) {
  const LayoutJob& j = *static_cast<const LayoutJob*>(ctx);
  const int64_t Hp = j.H + j.pt + j.pb, Wp = j.W + j.pl + j.pr, HW = j.H * j.W;
  const int64_t cblocks = (j.C + B - 1) / B;
  const int64_t lo = cblocks * tid / nthreads, hi = cblocks * (tid + 1) / nthreads;
  for (int64_t cb = lo; cb < hi; ++cb) {
    float* d = j.dst + cb * Hp * Wp * B;
    const int cn = j.C - cb * B < B ? static_cast<int>(j.C - cb * B) : B;
    std::memset(d, 0, sizeof(float) * j.pt * Wp * B);
    std::memset(d + (j.pt + j.H) * Wp * B, 0, sizeof(float) * j.pb * Wp * B);
    for (int64_t h = 0; h < j.H; ++h) {
      float* row = d + (j.pt + h) * Wp * B;
      std::memset(row, 0, sizeof(float) * j.pl * B);
      std::memset(row + (j.pl + j.W) * B, 0, sizeof(float) * j.pr * B);
      float* out = row + j.pl * B;
      const float* in = j.src + cb * B * HW + h * j.W;
      if (cn == B) {
        blocks::planes_to_block(in, HW, j.W, out);
      } else {
        for (int64_t w = 0; w < j.W; ++w)
          for (int c = 0; c < B; ++c) out[w * B + c] = c < cn ? in[c * HW + w] : 0.0f;
      }
    }
  }
}

void to_blocked(const float* x, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
                float* xb, int threads) {
  LayoutJob j{x, xb, C, H, W, pt, pl, pb, pr, nullptr, 0.0f, 0.0f};
  const int64_t cblocks = (C + B - 1) / B;
  parallel_run(static_cast<int>(threads < cblocks ? threads : cblocks), &to_blocked_thread, &j);
}

// Clamps rows of y (after adding the residual): contiguous, so the compiler vectorizes it.
void epilogue_rows(float* y, const float* res, int64_t rows, int64_t P, float lo, float hi) {
  for (int64_t k = 0; k < rows; ++k) {
    float* d = y + k * P;
    const float* r = res ? res + k * P : nullptr;
    if (r)
      for (int64_t p = 0; p < P; ++p) d[p] += r[p];
    for (int64_t p = 0; p < P; ++p) {
      const float v = d[p] < lo ? lo : d[p];
      d[p] = v > hi ? hi : v;
    }
  }
}

// One output block of B channels per item: B x B transposes back to planes,
// then the epilogue on the block's rows while they are in cache.
void from_blocked_thread(void* ctx, int tid, int nthreads) {
  const LayoutJob& j = *static_cast<const LayoutJob*>(ctx);
  const int64_t P = j.W, kblocks = (j.C + B - 1) / B;
  const bool clamp = j.res || j.lo > -__builtin_inff() || j.hi < __builtin_inff();
  const int64_t lo = kblocks * tid / nthreads, hi = kblocks * (tid + 1) / nthreads;
  for (int64_t kb = lo; kb < hi; ++kb) {
    const int64_t k0 = kb * B;
    const int kn = j.C - k0 < B ? static_cast<int>(j.C - k0) : B;
    const float* s = j.src + kb * P * B;
    float* d = j.dst + k0 * P;
    blocks::block_to_planes(s, kn, P, d);
    if (clamp) epilogue_rows(d, j.res ? j.res + k0 * P : nullptr, kn, P, j.lo, j.hi);
  }
}

void from_blocked(const float* yb, int64_t K, int64_t P, const float* residual, float lo, float hi, float* y,
                  int threads) {
  LayoutJob j{yb, y, K, 0, P, 0, 0, 0, 0, residual, lo, hi};
  const int64_t kblocks = (K + B - 1) / B;
  parallel_run(static_cast<int>(threads < kblocks ? threads : kblocks), &from_blocked_thread, &j);
}
'''


def emit_direct(isa: Isa, tiles: Sequence[Tile]) -> str:
    """namespace direct { ... }: the kernel, its tables and the layout conversions."""
    return ("namespace direct {\n"
            "constexpr int B = blocks::B;\n"
            + _common() + _tile(isa) + "\n" + _dispatch(tiles) + _run() + _layout()
            + "}  // namespace direct\n")
