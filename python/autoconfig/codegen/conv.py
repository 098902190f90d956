"""Emits conv_kernels_<variant>.cpp: the convolution kernels of one variant.

One translation unit per variant, compiled with its ISA flags, holding
  - the direct convolution with output in the channel-blocked layout
    NCHW[B]c (B = the ISA's float lanes) and the layout conversions
    (codegen/conv_direct.py);
  - the depthwise convolution, vectorized over channels: each block of B
    output channels is gathered into a padded H x W x B tile and every tap is
    one vector FMA per output column;
  - Winograd F(2x2,3x3) and F(4x4,3x3) (codegen/conv_winograd.py);
  - the ConvKernels table the runtime dispatches through;
  - the .acmodel executor's inner loops (cpp_runtime/src/model/loops_impl.h,
    compiled here so they get the variant's ISA flags) and their table, the
    exp-based activations in the ISA's intrinsics where it has them
    (codegen/activation_loops.py).
Tiles come from the conv plan (models/conv.py); the vector operations from
the Isa, so the same emitter serves every fixed-lanes ISA.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from .activation_loops import emit_activation_loops, has_activation_loops
from .common import file_header
from .conv_direct import Tile, direct_kernel_name, emit_direct
from .conv_prepare import emit_prepare, prepare_table_row
from .conv_winograd import emit_winograd
from .gemm import vmath_header_name
from .isa import Isa

def depthwise_kernel_name(isa: Isa) -> str:
    return f"f32_conv2d_depthwise_nchw{isa.lanes}c_{isa.suffix}"


def emit_blocks(isa: Isa) -> str:
    """namespace blocks { ... }: moves between B channel planes (NCHW) and a
    channel block (NCHW[B]c), shared by the direct and depthwise kernels."""
    return f'''namespace blocks {{
constexpr int B = {isa.lanes};
{isa.transpose_fn("transpose_block")}
// B planes of stride `plane` (n positions each) -> n positions x B channels.
inline void planes_to_block(const float* __restrict src, int64_t plane, int64_t n, float* __restrict dst) {{
  int64_t w = 0;
  for (; w + B <= n; w += B) transpose_block(src + w, plane, dst + w * B, B);
  for (; w < n; ++w)
    for (int i = 0; i < B; ++i) dst[w * B + i] = src[i * plane + w];
}}

// The first kn channels of P positions x B channels -> kn planes of P positions.
inline void block_to_planes(const float* __restrict src, int kn, int64_t P, float* __restrict dst) {{
  int64_t p = 0;
  if (kn == B)
    for (; p + B <= P; p += B) transpose_block(src + p * B, B, dst + p, P);
  for (; p < P; ++p)
    for (int i = 0; i < kn; ++i) dst[i * P + p] = src[p * B + i];
}}
}}  // namespace blocks
'''


def emit_depthwise(isa: Isa, ow_tile: int) -> str:
    V = isa.vtype
    rest_cases = "\n".join(f"      case {n}: padded_tile<{n}, SW>(xb, wb, a, oh, ow, ob); break;"
                           for n in range(1, ow_tile))
    rest_in_place = "\n".join(f"      case {n}: tile_in_place<{n}, SW>(x, wb, a, oh, ow, r0, r1, ob); break;"
                               for n in range(1, ow_tile))
    return f'''namespace depthwise {{
constexpr int B = blocks::B;
constexpr int kOwTile = {ow_tile};   // output columns per register tile (plan: depthwise ow_tile)
struct Args {{
  int64_t R, S, Ho, Wo, Wp;            // Wp: padded input width
  int64_t sh, sw, dh, dw;
  int64_t H, W, pt, pl;                // the unpadded input and its top / left pads (in_place)
  const float* bias;                   // B values (the block's bias, zero past K)
  float lo, hi;                        // the clamp, applied here unless a residual comes later
}};

// N output columns of one output row of one channel block: acc[n] += x * w
// over the taps of rows [r0, r1), then bias and the clamp as they are stored
// at out. x0: the input under tap (0, 0) of the first column; rows of the
// input are `row` positions apart. SW: the column stride when it is 1 or 2
// (0: a.sw at run time); known at compile time, each load of a tap is a
// constant offset from xs, so the loads issue with no address arithmetic.
template <int N, int SW>
__attribute__((always_inline)) static inline void tile(const float* __restrict x0, int64_t row,
                                                       const float* __restrict wb, const Args& a, int64_t r0,
                                                       int64_t r1, float* __restrict out) {{
  const int64_t sw = SW > 0 ? SW : a.sw;
  {V} acc[N];
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n) acc[n] = {isa.zero()};
  for (int64_t r = r0; r < r1; ++r) {{
    const float* xr = x0 + r * a.dh * row * B;
    for (int64_t s = 0; s < a.S; ++s) {{
      const {V} w = {isa.loadu("wb + (r * a.S + s) * B")};
      const float* xs = xr + s * a.dw * B;
#pragma GCC unroll 32
      for (int n = 0; n < N; ++n) acc[n] = {isa.fma(isa.loadu("xs + n * sw * B"), "w", "acc[n]")};
    }}
  }}
  const {V} bv = {isa.loadu("a.bias")}, lo = {isa.set1("a.lo")}, hi = {isa.set1("a.hi")};
#pragma GCC unroll 32
  for (int n = 0; n < N; ++n) {isa.storeu("out + n * B", isa.clamp(isa.add("acc[n]", "bv"), "lo", "hi"))}
}}

// N columns from the zero-padded Hp x Wp x B tile xb: every tap row.
template <int N, int SW>
static inline void padded_tile(const float* xb, const float* wb, const Args& a, int64_t oh, int64_t ow, float* ob) {{
  tile<N, SW>(xb + (oh * a.sh * a.Wp + ow * a.sw) * B, a.Wp, wb, a, 0, a.R, ob + (oh * a.Wo + ow) * B);
}}

// Output row by row: whole tiles of kOwTile columns, then one narrower tile.
template <int SW>
static void padded_block(const float* xb, const float* wb, const Args& a, float* ob) {{
  for (int64_t oh = 0; oh < a.Ho; ++oh) {{
    int64_t ow = 0;
    for (; ow + kOwTile <= a.Wo; ow += kOwTile) padded_tile<kOwTile, SW>(xb, wb, a, oh, ow, ob);
    switch (a.Wo - ow) {{
{rest_cases}
      default: break;
    }}
  }}
}}

// In place: the taps read the unpadded H x W x B block itself, so no padded
// copy is written and read back (on MobileNetV2 the copy cost more than the
// taps). Rows [r0, r1) of the taps fall inside the image for output row oh;
// columns are all inside for the interior tiles, checked per tap at the edges.
template <int N, int SW>
static inline void tile_in_place(const float* x, const float* wb, const Args& a, int64_t oh, int64_t ow, int64_t r0,
                                 int64_t r1, float* ob) {{
  tile<N, SW>(x + ((oh * a.sh - a.pt) * a.W + ow * a.sw - a.pl) * B, a.W, wb, a, r0, r1, ob + (oh * a.Wo + ow) * B);
}}

// ceil(p / q) for q > 0 and any sign of p.
// q is a dilation or stride: 1 in nearly every layer, where no division is
// issued (two of them per output row and per edge column otherwise).
static inline int64_t ceil_div_signed(int64_t p, int64_t q) {{
  if (q == 1) return p;
  return p >= 0 ? (p + q - 1) / q : -((-p) / q);
}}

// One output column whose taps may fall left or right of the image: the taps
// [s0, s1) inside it, in two accumulator chains (an edge column has few taps,
// so one chain would wait on the FMA latency).
static inline void edge_in_place(const float* __restrict x, const float* __restrict wb, const Args& a, int64_t oh,
                                 int64_t ow, int64_t r0, int64_t r1, float* __restrict ob) {{
  const int64_t left = ow * a.sw - a.pl;                    // input column of tap s: left + s * dw
  const int64_t s0 = std::min<int64_t>(a.S, std::max<int64_t>(0, ceil_div_signed(-left, a.dw)));
  const int64_t s1 = std::max<int64_t>(s0, std::min<int64_t>(a.S, ceil_div_signed(a.W - left, a.dw)));
  {V} acc0 = {isa.zero()}, acc1 = {isa.zero()};
  for (int64_t r = r0; r < r1; ++r) {{
    const float* xr = x + ((oh * a.sh + r * a.dh - a.pt) * a.W + left) * B;
    const float* wr = wb + r * a.S * B;
    int64_t s = s0;
    for (; s + 1 < s1; s += 2) {{
      acc0 = {isa.fma(isa.loadu("xr + s * a.dw * B"), isa.loadu("wr + s * B"), "acc0")};
      acc1 = {isa.fma(isa.loadu("xr + (s + 1) * a.dw * B"), isa.loadu("wr + (s + 1) * B"), "acc1")};
    }}
    if (s < s1) acc0 = {isa.fma(isa.loadu("xr + s * a.dw * B"), isa.loadu("wr + s * B"), "acc0")};
  }}
  const {V} bv = {isa.loadu("a.bias")}, lo = {isa.set1("a.lo")}, hi = {isa.set1("a.hi")};
  {isa.storeu("ob + (oh * a.Wo + ow) * B", isa.clamp(isa.add(isa.add("acc0", "acc1"), "bv"), "lo", "hi"))}
}}

template <int SW>
static void in_place_block(const float* x, const float* wb, const Args& a, float* ob) {{
  // Interior columns [c0, c1): every tap column inside [0, W).
  const int64_t c0 = std::min<int64_t>(a.Wo, std::max<int64_t>(0, ceil_div_signed(a.pl, a.sw)));
  const int64_t last = a.W - 1 + a.pl - (a.S - 1) * a.dw;   // ow * sw <= last
  const int64_t c1 = last < 0 ? c0 : std::max<int64_t>(c0, std::min<int64_t>(a.Wo, last / a.sw + 1));
  for (int64_t oh = 0; oh < a.Ho; ++oh) {{
    const int64_t top = oh * a.sh - a.pt;                   // input row of tap r: top + r * dh
    const int64_t r0 = std::min<int64_t>(a.R, std::max<int64_t>(0, ceil_div_signed(-top, a.dh)));
    const int64_t r1 = std::max<int64_t>(r0, std::min<int64_t>(a.R, ceil_div_signed(a.H - top, a.dh)));
    for (int64_t ow = 0; ow < c0; ++ow) edge_in_place(x, wb, a, oh, ow, r0, r1, ob);
    // The interior in tiles of equal widths (8 8 8 2 -> 7 7 6 6): a narrow
    // last tile would have too few accumulator chains to cover the FMA latency.
    const int64_t tiles = (c1 - c0 + kOwTile - 1) / kOwTile;
    for (int64_t i = 0, ow = c0; i < tiles; ++i) {{
      const int64_t n = (c1 - c0) / tiles + (i < (c1 - c0) % tiles ? 1 : 0);
      switch (n) {{
{rest_in_place}
      case kOwTile: tile_in_place<kOwTile, SW>(x, wb, a, oh, ow, r0, r1, ob); break;
      default: break;
      }}
      ow += n;
    }}
    for (int64_t ow = c1; ow < a.Wo; ++ow) edge_in_place(x, wb, a, oh, ow, r0, r1, ob);
  }}
}}

// One channel block: in place (x the unpadded block) or from the padded tile x.
template <int SW>
static void block_sw(bool in_place, const float* x, const float* wb, const Args& a, float* ob) {{
  if (in_place) in_place_block<SW>(x, wb, a, ob);
  else padded_block<SW>(x, wb, a, ob);
}}

// The column stride as a template argument where it is 1 or 2 (tile).
static void block(bool in_place, const float* x, const float* wb, const Args& a, float* ob) {{
  if (a.sw == 1) block_sw<1>(in_place, x, wb, a, ob);
  else if (a.sw == 2) block_sw<2>(in_place, x, wb, a, ob);
  else block_sw<0>(in_place, x, wb, a, ob);
}}

struct Job {{
  const ConvGeometry* g;
  int64_t mult;
  const float* x;
  bool x_blocked;                      // x is ceil(C/B) x H x W x B instead of C x H x W
  const float* w;
  const ConvEpilogue* ep;
  float* y;
  bool y_blocked;                      // y and ep->residual are ceil(K/B) x Ho x Wo x B
}};

// The block's input as an Hp x Wp x B tile with zero pads, in xb; returns the
// tile, which is the input itself when it is blocked, unpadded and the
// multiplier is 1 (nothing to copy). Only the pads of xb are cleared: the
// gather writes every interior element.
static const float* gather(const Job& j, int64_t k0, int kn, float* xb) {{
  const ConvGeometry& g = *j.g;
  const int64_t Wp = g.W + g.pad_left + g.pad_right, HW = g.H * g.W;
  const bool pads = g.pad_top || g.pad_left || g.pad_bottom || g.pad_right;
  if (j.x_blocked && j.mult == 1 && !pads) return j.x + k0 * HW;
  std::memset(xb, 0, sizeof(float) * g.pad_top * Wp * B);
  std::memset(xb + (g.pad_top + g.H) * Wp * B, 0, sizeof(float) * g.pad_bottom * Wp * B);
  for (int64_t h = 0; h < g.H; ++h) {{
    float* row = xb + (h + g.pad_top) * Wp * B;
    std::memset(row, 0, sizeof(float) * g.pad_left * B);
    std::memset(row + (g.pad_left + g.W) * B, 0, sizeof(float) * g.pad_right * B);
  }}
  if (j.x_blocked && j.mult == 1) {{   // the block's rows, already H x W x B: copied between the pads
    for (int64_t h = 0; h < g.H; ++h)
      std::memcpy(xb + ((h + g.pad_top) * Wp + g.pad_left) * B, j.x + ((k0 / B) * g.H + h) * g.W * B,
                  sizeof(float) * g.W * B);
    return xb;
  }}
  // Channels of a full block with multiplier 1 are B consecutive planes: transpose.
  if (!j.x_blocked && kn == B && j.mult == 1) {{
    for (int64_t h = 0; h < g.H; ++h) {{
      float* d = xb + ((h + g.pad_top) * Wp + g.pad_left) * B;
      blocks::planes_to_block(j.x + k0 * HW + h * g.W, HW, g.W, d);
    }}
    return xb;
  }}
  for (int64_t h = 0; h < g.H; ++h) {{
    float* d = xb + ((h + g.pad_top) * Wp + g.pad_left) * B;
    for (int i = 0; i < B; ++i) {{
      if (i >= kn) {{
        for (int64_t w = 0; w < g.W; ++w) d[w * B + i] = 0.0f;
        continue;
      }}
      const int64_t c = (k0 + i) / j.mult;   // the input channel of output channel k0 + i
      const float* src = j.x_blocked ? j.x + ((c / B) * HW + h * g.W) * B + c % B : j.x + c * HW + h * g.W;
      const int64_t step = j.x_blocked ? B : 1;
      for (int64_t w = 0; w < g.W; ++w) d[w * B + i] = src[w * step];
    }}
  }}
  return xb;
}}

// ob[q] = min(max(ob[q] + r[q], lo), hi) over n floats: a residual in ob's layout.
static void add_residual(float* __restrict ob, const float* __restrict r, int64_t n, float lo, float hi) {{
  for (int64_t q = 0; q < n; ++q) {{
    const float v = ob[q] + r[q];
    ob[q] = v < lo ? lo : (v > hi ? hi : v);
  }}
}}

// One block of B output channels k0..k0+B-1 (input channel k / mult each):
// its input as a zero-padded Hp x Wp x B tile (gather), the taps with the
// bias and, without a residual, the clamp fused into the stores; a blocked y
// is written in place, an NCHW one through a tile transposed back. A
// residual is added, then clamped, after the taps. Lanes past K have zero
// weights and bias and read padded (finite) or zero inputs: they stay finite.
static void thread_fn(void* ctx, int tid, int nthreads) {{
  const Job& j = *static_cast<const Job*>(ctx);
  const ConvGeometry& g = *j.g;
  const int64_t Hp = g.H + g.pad_top + g.pad_bottom, Wp = g.W + g.pad_left + g.pad_right;
  const int64_t P = g.Ho * g.Wo;
  const int64_t K = g.K, kblocks = (K + B - 1) / B;
  float* xb = thread_scratch(kScratchConv0, static_cast<size_t>(Hp * Wp * B + P * B + g.R * g.S * B + B));
  float* tile_out = xb + Hp * Wp * B;
  float* wb = tile_out + P * B;
  float* bb = wb + g.R * g.S * B;
  const bool res = j.ep->residual != nullptr;
  Args a{{g.R, g.S, g.Ho, g.Wo, Wp, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.H, g.W, g.pad_top,
         g.pad_left, bb, res ? -__builtin_inff() : j.ep->lo, res ? __builtin_inff() : j.ep->hi}};
  // A blocked input with multiplier 1 is read where it is (block_in_place),
  // unless rows are narrower than a register tile: there the two edge columns
  // cost more than copying the small padded tile (measured on the Zen 4 VM,
  // MobileNetV2's 960-channel 7x7: 0.028 ms in place, 0.025 copied).
  const bool in_place = j.x_blocked && j.mult == 1 && g.Wo >= kOwTile;
  const int64_t lo = kblocks * tid / nthreads, hi = kblocks * (tid + 1) / nthreads;
  for (int64_t kb = lo; kb < hi; ++kb) {{
    const int64_t k0 = kb * B;
    const int kn = static_cast<int>(K - k0 < B ? K - k0 : B);
    const float* xt = in_place ? j.x + k0 * g.H * g.W : gather(j, k0, kn, xb);
    for (int i = 0; i < B; ++i) {{
      bb[i] = i < kn && j.ep->bias ? j.ep->bias[k0 + i] : 0.0f;
      for (int64_t t = 0; t < g.R * g.S; ++t) wb[t * B + i] = i < kn ? j.w[(k0 + i) * g.R * g.S + t] : 0.0f;
    }}
    if (j.y_blocked) {{
      float* ob = j.y + k0 * P;
      block(in_place, xt, wb, a, ob);
      if (res) add_residual(ob, j.ep->residual + k0 * P, P * B, j.ep->lo, j.ep->hi);
      continue;
    }}
    block(in_place, xt, wb, a, tile_out);
    float* dst = j.y + k0 * P;
    blocks::block_to_planes(tile_out, kn, P, dst);
    for (int i = 0; i < kn && res; ++i) add_residual(dst + i * P, j.ep->residual + (k0 + i) * P, P, j.ep->lo, j.ep->hi);
  }}
}}

void run(const ConvGeometry& g, int64_t multiplier, const float* x, bool x_blocked, const float* w,
         const ConvEpilogue& ep, float* y, bool y_blocked, int threads) {{
  Job j{{&g, multiplier, x, x_blocked, w, &ep, y, y_blocked}};
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


def cache_arguments(profile) -> Dict[str, int]:
    """emit_conv_kernels' cache and register sizes from the profile the conv
    kernels are built for (its fixed-lanes view): l1_bytes, l2_bytes, vregs,
    line_bytes, with the usual sizes where the profile lists no cache."""
    l1, l2 = profile.cache(1), profile.cache(2)
    return {"l1_bytes": l1.size_bytes if l1 else 32 << 10, "l2_bytes": l2.size_bytes if l2 else 1 << 20,
            "vregs": profile.vector_registers, "line_bytes": l1.line_bytes if l1 else 64}


def emit_conv_kernels(isa: Isa, variant: str, tiles: Sequence[Tile], dw_ow_tile: int,
                      plan_lines: Sequence[str], l1_bytes: int, l2_bytes: int, vregs: int,
                      line_bytes: int = 64) -> str:
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
         "#include <algorithm>\n#include <cmath>\n#include <cstdint>\n#include <cstring>\n#include <vector>\n",
         '#include "autoconfig/detail/conv_kernels.h"',
         '#include "autoconfig/detail/runtime.h"',
         '#include "model/loops_impl.h"   // the executor\'s loops, compiled here with this variant\'s flags',
         f'#include "{vmath_header_name(isa)}"\n',
         "namespace autoconfig {\nnamespace detail {\nnamespace {\n",
         emit_blocks(isa), emit_direct(isa, tiles), emit_depthwise(isa, dw_ow_tile)]
    code, rows = _winograd_parts(isa, l1_bytes, l2_bytes, vregs)
    o.append(code)
    o.append(emit_prepare(isa, l1_bytes, line_bytes))
    o.append(emit_activation_loops(isa))
    o.append("}  // namespace\n")
    o.append(f"namespace variant_{variant} {{")
    o.append("extern const ConvKernels kConvKernels;")
    o.append("const ConvKernels kConvKernels = {")
    o.append(f'    "{isa.suffix}",')
    o.append("    {direct::B, direct::kTiles, direct::kTileN, direct::kTileKB, &direct::packed_weights_floats,")
    o.append("     &direct::pack_weights, &direct::to_blocked, &direct::from_blocked, &direct::run, &direct::run_fused},")
    o.append("    {&depthwise::run},")
    o.append(f"    {rows[0]},")
    o.append(f"    {rows[1]},")
    o.append(f"    {prepare_table_row()},")
    o.append("};")
    o.append("extern const ModelLoops kModelLoops;")
    o.append("const ModelLoops kModelLoops = " + ("kVariantModelLoops;" if has_activation_loops(isa) else "kModelLoopsTable;"))
    o.append(f"}}  // namespace variant_{variant}")
    o.append("\n}  // namespace detail\n}  // namespace autoconfig")
    return "\n".join(o) + "\n"
