"""Emits conv_kernels_<variant>.cpp: the convolution kernels of one variant.

One translation unit per variant, compiled with its ISA flags, holding
  - the direct convolution in the channel-blocked layout NCHW[B]c (B = the
    ISA's float lanes) with an N x KB register tile: N output columns times
    KB blocks of B output channels, the reduction over C x R x S kept in
    registers so every output is stored once, with the epilogue fused;
  - the depthwise convolution, vectorized over channels: each block of B
    output channels is gathered into a padded H x W x B tile and every tap is
    one vector FMA per output column;
  - Winograd F(2x2,3x3) and F(4x4,3x3) (codegen/conv_winograd.py);
  - the ConvKernels table the runtime dispatches through.
Tiles come from the conv plan (models/conv.py); the vector operations from
the Isa, so the same emitter serves every fixed-lanes ISA.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from .common import file_header
from .conv_winograd import emit_winograd
from .gemm import vmath_header_name
from .isa import Isa

# Register tiles (N output columns, KB channel blocks) the direct kernel is
# compiled for; the model picks one per layer (models/conv.py: direct_tiles).
Tile = Tuple[int, int]


def direct_kernel_name(isa: Isa) -> str:
    return f"f32_conv2d_direct_nchw{isa.lanes}c_{isa.suffix}"


def depthwise_kernel_name(isa: Isa) -> str:
    return f"f32_conv2d_depthwise_nchw{isa.lanes}c_{isa.suffix}"


def _direct_tile(isa: Isa) -> str:
    """The register tile as a template over (N, KB): GCC keeps the fully
    unrolled accumulator arrays in registers."""
    V = isa.vtype
    return f'''
// N output columns x KB blocks of B output channels, all C x R x S taps.
// x: padded blocked input at (ih0, iw0) of channel block 0; u: packed weights
// of output block kb0; y: blocked output at (kb0, oh, ow0).
template <int N, int KB>
static inline void tile(const float* __restrict x, const DirectArgs& a, const float* __restrict u,
                        float* __restrict y, const float* __restrict res, const float* __restrict bias) {{
  {V} acc[N][KB];
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n)
#pragma GCC unroll 8
    for (int kb = 0; kb < KB; ++kb) acc[n][kb] = {isa.zero()};
  for (int64_t cb = 0; cb < a.cblocks; ++cb) {{
    const int cn = a.C - cb * B < B ? static_cast<int>(a.C - cb * B) : B;
    for (int64_t r = 0; r < a.R; ++r) {{
      for (int64_t s = 0; s < a.S; ++s) {{
        const float* xp = x + cb * a.x_cb + r * a.x_dh + s * a.x_dw;
        const float* up = u + ((cb * a.R + r) * a.S + s) * B * B;
        for (int c = 0; c < cn; ++c) {{
          {V} w[KB];
#pragma GCC unroll 8
          for (int kb = 0; kb < KB; ++kb) w[kb] = {isa.loadu("up + kb * a.u_kb + c * B")};
#pragma GCC unroll 32
          for (int n = 0; n < N; ++n) {{
            const {V} xv = {isa.broadcast("xp[n * a.x_sw + c]")};
#pragma GCC unroll 8
            for (int kb = 0; kb < KB; ++kb) acc[n][kb] = {isa.fma("xv", "w[kb]", "acc[n][kb]")};
          }}
        }}
      }}
    }}
  }}
  const {V} lo = {isa.set1("a.lo")}, hi = {isa.set1("a.hi")};
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb) {{
    const {V} bv = bias ? {isa.loadu("bias + kb * B")} : {isa.zero()};
#pragma GCC unroll 32
    for (int n = 0; n < N; ++n) {{
      {V} v = {isa.add("acc[n][kb]", "bv")};
      if (res) v = {isa.add("v", isa.loadu("res + kb * a.y_kb + n * B"))};
      v = {isa.min(isa.max("v", "lo"), "hi")};
      {isa.storeu("y + kb * a.y_kb + n * B", "v")}
    }}
  }}
}}
'''


def _direct_dispatch(tiles: Sequence[Tile]) -> str:
    """run_row(): one output row of one KB group, walking the row with the
    widest tile and finishing with a narrower one (a switch over the
    remainder, so every call has compile-time N and KB)."""
    o = ["// One output row (oh) for output blocks [kb0, kb0 + kbn), kbn <= the tile's KB.",
         "template <int NT, int KB>",
         "static void row(const float* x, const DirectArgs& a, const float* u, float* y, const float* res,",
         "                const float* bias) {",
         "  int64_t ow = 0;",
         "  for (; ow + NT <= a.Wo; ow += NT)",
         "    tile<NT, KB>(x + ow * a.x_sw, a, u, y + ow * B, res ? res + ow * B : nullptr, bias);",
         "  const int rest = static_cast<int>(a.Wo - ow);",
         "  if (rest == 0) return;",
         "  x += ow * a.x_sw;",
         "  y += ow * B;",
         "  if (res) res += ow * B;",
         "  switch (rest) {"]
    nmax = max(n for n, _ in tiles)
    for n in range(1, nmax):
        o.append(f"    case {n}: if ({n} < NT) tile<({n} < NT ? {n} : 1), KB>(x, a, u, y, res, bias); return;")
    o += ["    default: return;", "  }", "}", ""]
    o.append("using RowFn = void (*)(const float*, const DirectArgs&, const float*, float*, const float*, const float*);")
    o.append("// [tile index][kbn - 1]: the row function for a tile with kbn <= KB live blocks.")
    kbmax = max(kb for _, kb in tiles)
    o.append(f"constexpr int kTiles = {len(tiles)}, kMaxKB = {kbmax};")
    o.append(f"constexpr int kTileN[kTiles] = {{{', '.join(str(n) for n, _ in tiles)}}};")
    o.append(f"constexpr int kTileKB[kTiles] = {{{', '.join(str(kb) for _, kb in tiles)}}};")
    o.append("const RowFn kRows[kTiles][kMaxKB] = {")
    for n, kb in tiles:
        fns = [f"&row<{n}, {k}>" if k <= kb else "nullptr" for k in range(1, kbmax + 1)]
        o.append("    {" + ", ".join(fns) + "},")
    o.append("};")
    return "\n".join(o) + "\n"


def _direct_common() -> str:
    return r'''
struct DirectArgs {
  int64_t C, R, S, Ho, Wo;
  int64_t cblocks;
  int64_t x_cb, x_row, x_sh, x_sw, x_dh, x_dw;   // input strides (floats) per block, row, tap, column
  int64_t u_kb;                                  // weights per output block
  int64_t y_kb;                                  // output floats per output block (Ho * Wo * B)
  float lo, hi;
};

int64_t packed_weights_floats(int64_t K, int64_t C, int64_t R, int64_t S) {
  return ((K + B - 1) / B) * ((C + B - 1) / B) * R * S * B * B;
}

// u[kb][cb][r][s][c][k]: for one input channel and tap, B consecutive output
// channels (one vector); channels past K or C are zero.
void pack_weights(const float* w, int64_t K, int64_t C, int64_t R, int64_t S, float* u) {
  const int64_t CB = (C + B - 1) / B, RS = R * S;
  std::memset(u, 0, sizeof(float) * packed_weights_floats(K, C, R, S));
  for (int64_t k = 0; k < K; ++k) {
    float* uk = u + (k / B) * CB * RS * B * B + k % B;
    for (int64_t c = 0; c < C; ++c) {
      float* uc = uk + (c / B) * RS * B * B + (c % B) * B;
      const float* wc = w + (k * C + c) * RS;
      for (int64_t t = 0; t < RS; ++t) uc[t * B * B] = wc[t];
    }
  }
}
'''


def _direct_run() -> str:
    return r'''
struct DirectJob {
  const DirectArgs* a;
  const float* x;     // padded blocked input
  const float* u;
  const float* bias;  // padded to whole blocks, or null
  const float* res;
  float* y;
  int64_t K;
  int64_t sh;         // input rows per output row, in floats (stride_h * row)
  int tile;
};

void direct_thread(void* ctx, int tid, int nthreads) {
  const DirectJob& j = *static_cast<const DirectJob*>(ctx);
  const DirectArgs& a = *j.a;
  const int KBT = kTileKB[j.tile];
  const int64_t kblocks = (j.K + B - 1) / B, groups = (kblocks + KBT - 1) / KBT;
  // Work items: (group of KBT output blocks, output row); a thread takes a contiguous run
  // so it reuses the group's weights (L2) across rows.
  const int64_t items = groups * a.Ho;
  const int64_t lo = items * tid / nthreads, hi = items * (tid + 1) / nthreads;
  for (int64_t it = lo; it < hi; ++it) {
    const int64_t g = it / a.Ho, oh = it % a.Ho;
    const int64_t kb0 = g * KBT;
    const int kbn = static_cast<int>(kblocks - kb0 < KBT ? kblocks - kb0 : KBT);
    const int64_t yoff = kb0 * a.y_kb + oh * a.Wo * B;
    kRows[j.tile][kbn - 1](j.x + oh * j.sh, a, j.u + kb0 * a.u_kb, j.y + yoff, j.res ? j.res + yoff : nullptr,
                            j.bias ? j.bias + kb0 * B : nullptr);
  }
}

// x: padded blocked input (cblocks x Hp x Wp x B, Hp/Wp include the pads),
// y: blocked output (kblocks x Ho x Wo x B); res: null or like y; bias: null
// or kblocks*B floats. Geometry g gives C, K, R, S, strides, dilations and
// Ho, Wo; H and W are the padded sizes here.
void run(const ConvGeometry& g, const float* x, const float* u, const ConvEpilogue& ep, float* y, int tile,
         int threads) {
  DirectArgs a;
  a.C = g.C; a.R = g.R; a.S = g.S; a.Ho = g.Ho; a.Wo = g.Wo;
  a.cblocks = (g.C + B - 1) / B;
  a.x_row = g.W * B;
  a.x_cb = g.H * g.W * B;
  a.x_sh = g.stride_h * a.x_row;
  a.x_sw = g.stride_w * B;
  a.x_dh = g.dilation_h * a.x_row;
  a.x_dw = g.dilation_w * B;
  a.u_kb = a.cblocks * g.R * g.S * B * B;
  a.y_kb = g.Ho * g.Wo * B;
  a.lo = ep.lo;
  a.hi = ep.hi;
  DirectJob j{&a, x, u, ep.bias, ep.residual, y, g.K, a.x_sh, tile < 0 || tile >= kTiles ? 0 : tile};
  parallel_run(threads < 1 ? 1 : threads, &direct_thread, &j);
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
        int64_t w = 0;
        for (; w + B <= j.W; w += B) transpose_block(in + w, HW, out + w * B, B);
        for (; w < j.W; ++w)
          for (int c = 0; c < B; ++c) out[w * B + c] = in[c * HW + w];
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
    int64_t p = 0;
    if (kn == B)
      for (; p + B <= P; p += B) transpose_block(s + p * B, B, d + p, P);
    for (; p < P; ++p)
      for (int i = 0; i < kn; ++i) d[i * P + p] = s[p * B + i];
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
    return ("namespace direct {\n"
            f"constexpr int B = {isa.lanes};\n"
            + isa.transpose_fn("transpose_block")
            + _direct_common() + _direct_tile(isa) + "\n" + _direct_dispatch(tiles) + _direct_run() + _layout()
            + "}  // namespace direct\n")


def emit_depthwise(isa: Isa, ow_tile: int) -> str:
    V = isa.vtype
    return f'''namespace depthwise {{
constexpr int B = {isa.lanes};
constexpr int kOwTile = {ow_tile};   // output columns per register tile (plan: depthwise ow_tile)
{isa.transpose_fn("transpose_block")}
struct Args {{
  int64_t R, S, Ho, Wo, Wp;            // Wp: padded input width
  int64_t sh, sw, dh, dw;
}};

// N output columns of one output row of one channel block: acc[n] += x * w per tap.
template <int N>
static inline void tile(const float* __restrict xb, const float* __restrict wb, const Args& a, int64_t oh,
                        int64_t ow, float* __restrict ob) {{
  {V} acc[N];
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n) acc[n] = {isa.zero()};
  for (int64_t r = 0; r < a.R; ++r) {{
    const float* xr = xb + ((oh * a.sh + r * a.dh) * a.Wp + ow * a.sw) * B;
    for (int64_t s = 0; s < a.S; ++s) {{
      const {V} w = {isa.loadu("wb + (r * a.S + s) * B")};
      const float* xs = xr + s * a.dw * B;
#pragma GCC unroll 32
      for (int n = 0; n < N; ++n) acc[n] = {isa.fma(isa.loadu("xs + n * a.sw * B"), "w", "acc[n]")};
    }}
  }}
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n) {isa.storeu("ob + (oh * a.Wo + ow + n) * B", "acc[n]")}
}}

static void block(const float* xb, const float* wb, const Args& a, float* ob) {{
  for (int64_t oh = 0; oh < a.Ho; ++oh) {{
    int64_t ow = 0;
    for (; ow + kOwTile <= a.Wo; ow += kOwTile) tile<kOwTile>(xb, wb, a, oh, ow, ob);
    for (; ow < a.Wo; ++ow) tile<1>(xb, wb, a, oh, ow, ob);
  }}
}}

struct Job {{
  const ConvGeometry* g;
  int64_t mult;
  const float* x;
  const float* w;
  const ConvEpilogue* ep;
  float* y;
}};

// One block of B output channels k0..k0+B-1 (input channel k / mult each):
// gather its input planes into a zero-padded Hp x Wp x B tile, run the taps,
// scatter back to NCHW through the epilogue.
static void thread_fn(void* ctx, int tid, int nthreads) {{
  const Job& j = *static_cast<const Job*>(ctx);
  const ConvGeometry& g = *j.g;
  const int64_t Hp = g.H + g.pad_top + g.pad_bottom, Wp = g.W + g.pad_left + g.pad_right;
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  const int64_t K = g.K, kblocks = (K + B - 1) / B;
  float* xb = thread_scratch(kScratchConv0, static_cast<size_t>(Hp * Wp * B + P * B + g.R * g.S * B));
  float* ob = xb + Hp * Wp * B;
  float* wb = ob + P * B;
  Args a{{g.R, g.S, g.Ho, g.Wo, Wp, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w}};
  const int64_t lo = kblocks * tid / nthreads, hi = kblocks * (tid + 1) / nthreads;
  for (int64_t kb = lo; kb < hi; ++kb) {{
    const int64_t k0 = kb * B;
    const int kn = static_cast<int>(K - k0 < B ? K - k0 : B);
    std::memset(xb, 0, sizeof(float) * Hp * Wp * B);
    std::memset(wb, 0, sizeof(float) * g.R * g.S * B);
    // Channels of a full block with multiplier 1 are B consecutive planes: transpose.
    const bool planes = kn == B && j.mult == 1;
    for (int64_t h = 0; h < g.H && planes; ++h) {{
      float* d = xb + ((h + g.pad_top) * Wp + g.pad_left) * B;
      const float* s = j.x + k0 * HW + h * g.W;
      int64_t w = 0;
      for (; w + B <= g.W; w += B) transpose_block(s + w, HW, d + w * B, B);
      for (; w < g.W; ++w)
        for (int i = 0; i < B; ++i) d[w * B + i] = s[i * HW + w];
    }}
    for (int i = 0; i < kn; ++i) {{
      const float* src = j.x + ((k0 + i) / j.mult) * HW;
      for (int64_t h = 0; h < g.H && !planes; ++h) {{
        float* d = xb + ((h + g.pad_top) * Wp + g.pad_left) * B + i;
        const float* s = src + h * g.W;
        for (int64_t w = 0; w < g.W; ++w) d[w * B] = s[w];
      }}
      for (int64_t t = 0; t < g.R * g.S; ++t) wb[t * B + i] = j.w[(k0 + i) * g.R * g.S + t];
    }}
    block(xb, wb, a, ob);
    float* dst = j.y + k0 * P;
    int64_t p = 0;
    if (kn == B)
      for (; p + B <= P; p += B) transpose_block(ob + p * B, B, dst + p, P);
    for (; p < P; ++p)
      for (int i = 0; i < kn; ++i) dst[i * P + p] = ob[p * B + i];
    for (int i = 0; i < kn; ++i) {{
      float* d = dst + i * P;
      const float bias = j.ep->bias ? j.ep->bias[k0 + i] : 0.0f;
      const float* res = j.ep->residual ? j.ep->residual + (k0 + i) * P : nullptr;
      const float lo_v = j.ep->lo, hi_v = j.ep->hi;
      for (int64_t q = 0; q < P; ++q) {{
        float v = d[q] + bias + (res ? res[q] : 0.0f);
        v = v < lo_v ? lo_v : v;
        d[q] = v > hi_v ? hi_v : v;
      }}
    }}
  }}
}}

void run(const ConvGeometry& g, int64_t multiplier, const float* x, const float* w, const ConvEpilogue& ep,
         float* y, int threads) {{
  Job j{{&g, multiplier, x, w, &ep, y}};
  const int64_t kblocks = (g.K + B - 1) / B;
  int t = threads < 1 ? 1 : threads;
  if (t > kblocks) t = static_cast<int>(kblocks);
  parallel_run(t, &thread_fn, &j);
}}
}}  // namespace depthwise
'''


def _winograd_parts(isa: Isa, l1_bytes: int, l2_bytes: int, vregs: int) -> Tuple[str, List[str]]:
    """Winograd F(2x2,3x3) and F(4x4,3x3) code (blocked for the profile's caches) and their table rows."""
    code = "\n".join(emit_winograd(isa, m, l1_bytes=l1_bytes, l2_bytes=l2_bytes, vector_registers=vregs)
                     for m in (2, 4))
    rows = [f"{{{m}, &winograd_f{m}::packed_weights_floats, &winograd_f{m}::pack_weights, &winograd_f{m}::run}}"
            for m in (2, 4)]
    return code, rows


def conv_tu_name(variant: str) -> str:
    return f"conv_kernels_{variant}.cpp"


def emit_conv_kernels(isa: Isa, variant: str, tiles: Sequence[Tile], dw_ow_tile: int,
                      plan_lines: Sequence[str], l1_bytes: int, l2_bytes: int, vregs: int) -> str:
    """The variant's conv translation unit (compiled with its ISA flags).
    isa has fixed lanes: a scalable variant passes its fixed-lanes view."""
    if not isa.fixed_lanes:
        raise ValueError(f"the conv kernels need a fixed lane count (arrays of {isa.vtype}, NCHW[B]c blocks); "
                         f"emit them for the fixed-lanes view of {isa.suffix} (codegen.isa.fixed_lanes_isa_for_profile)")
    head = file_header(
        f"{conv_tu_name(variant)}: convolution kernels of variant {variant} ({isa.suffix}).",
        [f"{direct_kernel_name(isa)}: register tiles (columns x channel blocks) "
         + ", ".join(f"{n}x{kb}" for n, kb in tiles) + " (models/conv.py: direct_tiles)",
         f"{depthwise_kernel_name(isa)}: {dw_ow_tile} output columns per tile (models/conv.py: depthwise_ow_tile)"]
        + list(plan_lines))
    o = [head,
         "#include <algorithm>\n#include <cmath>\n#include <cstdint>\n#include <cstring>\n",
         '#include "autoconfig/detail/conv_kernels.h"',
         '#include "autoconfig/detail/runtime.h"',
         f'#include "{vmath_header_name(isa)}"\n',
         "namespace autoconfig {\nnamespace detail {\nnamespace {\n",
         emit_direct(isa, tiles), emit_depthwise(isa, dw_ow_tile)]
    code, rows = _winograd_parts(isa, l1_bytes, l2_bytes, vregs)
    o.append(code)
    o.append("}  // namespace\n")
    o.append(f"namespace variant_{variant} {{")
    o.append("extern const ConvKernels kConvKernels;")
    o.append("const ConvKernels kConvKernels = {")
    o.append(f'    "{isa.suffix}",')
    o.append("    {direct::B, direct::kTiles, direct::kTileN, direct::kTileKB, &direct::packed_weights_floats,")
    o.append("     &direct::pack_weights, &direct::to_blocked, &direct::from_blocked, &direct::run},")
    o.append("    {&depthwise::run},")
    o.append(f"    {rows[0]},")
    o.append(f"    {rows[1]},")
    o.append("};")
    o.append(f"}}  // namespace variant_{variant}")
    o.append("\n}  // namespace detail\n}  // namespace autoconfig")
    return "\n".join(o) + "\n"
