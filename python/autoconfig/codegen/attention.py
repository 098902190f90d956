"""Emits attention_kernels_<variant>.cpp: the transformer kernels of one variant.

One translation unit per variant, compiled with its ISA flags, holding
  - the fused scaled-dot-product attention (the flash-attention idea on a
    CPU): per (batch, head, query chunk) K^T and V are packed once, in
    panels of the register tile's columns; per register
    tile of query rows the keys are walked in blocks whose scores stay in L1,
    with a running max and sum per row (online softmax) and the output
    accumulators rescaled when the max grows;
  - softmax over rows (the unfused sequence's middle step) and LayerNorm over
    rows (the second pass of GEMM + LayerNorm, on rows still in cache);
  - the AttentionKernels table the runtime dispatches through.
Register tile and key block come from models/attention.py; the vector
operations from the Isa, so the same emitter serves every fixed-lanes ISA.
"""
from __future__ import annotations

from typing import Dict

from ..models import attention as attention_model
from ..profile import fixed_lanes_profile
from .common import file_header
from .gemm import emit_vmath_header, vmath_header_name
from .isa import Isa, fixed_lanes_isa_for_profile
from .registry import variant_id


def attention_tu_name(variant: str) -> str:
    return f"attention_kernels_{variant}.cpp"


def fused_kernel_name(isa: Isa, rows: int, cols: int) -> str:
    return f"f32_attention_fused_{rows}x{cols}_{isa.suffix}"


# exp(d) for d <= 0 as softmax needs it: v_exp clamps its argument at -87
# (e^-87 = 1.65e-38) so it never returns 0; results at or below that clamp are
# flushed to 0 by subtracting FLUSH (a change far below the resolution of the
# row sum, which is >= 1), so masked keys (-inf, or -1e4 below the max) weigh
# exactly 0 as in the unfused softmax. The last max keeps a NaN of d (v_exp's
# clamp drops it on x86).
FLUSH = "1.7e-38f"


def _tile(isa: Isa, mr: int, nv: int) -> str:
    V = isa.vtype
    masks = "\n".join(f"    {isa.mask_decl(f'm{j}', f'cols - {j} * L')}" for j in range(nv))
    loads = "\n".join(
        f"      const {V} b{j} = (FULL ? {isa.loadu(f'bk + {j} * L')} : {isa.masked_load(f'm{j}', f'bk + {j} * L')});"
        for j in range(nv))
    fmas = "\n".join(f"        acc[r][{j}] = {isa.fma('ar', f'b{j}', f'acc[r][{j}]')};" for j in range(nv))
    def old_c(j: int) -> str:
        return f"(FULL ? {isa.loadu(f'cr + {j} * L')} : {isa.masked_load(f'm{j}', f'cr + {j} * L')})"
    rescale = "\n".join(f"        acc[r][{j}] = {isa.fma('al', old_c(j), f'acc[r][{j}]')};" for j in range(nv))
    stores = "\n".join(
        f"      if (FULL) {{ {isa.storeu(f'cr + {j} * L', f'acc[r][{j}]')} }} else {{ {isa.masked_store(f'm{j}', f'cr + {j} * L', f'acc[r][{j}]')} }}"
        for j in range(nv))
    return f'''// c[r][0:cols] = alpha[r] * c[r][0:cols] (when alpha) + sum_k a[r*lda + k] * b[k*ldb + 0:cols]
// for r < R; cols <= NR (FULL: cols == NR). Both products of attention run
// through it: scores = Q K^T (b = K^T packed) and O = P V (b = V in place).
template <int R, bool FULL>
static inline void tile(const float* __restrict a, int64_t lda, const float* __restrict b, int64_t ldb, int64_t K,
                        float* __restrict c, int64_t ldc, int cols, const float* __restrict alpha) {{
  {V} acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = {isa.zero()};
{masks if nv else ""}
  (void)cols;
  for (int64_t k = 0; k < K; ++k) {{
    const float* bk = b + k * ldb;
{loads}
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {{
      const {V} ar = {isa.broadcast("a[r * lda + k]")};
{fmas}
    }}
  }}
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {{
    float* cr = c + r * ldc;
    if (alpha) {{
      const {V} al = {isa.set1("alpha[r]")};
{rescale}
    }}
{stores}
  }}
}}

// The first `rows` (1..MR) rows through tile<rows, FULL>.
template <bool FULL>
static void tile_rows(int rows, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t K, float* c,
                      int64_t ldc, int cols, const float* alpha) {{
  switch (rows) {{
{chr(10).join(f"    case {r}: tile<{r}, FULL>(a, lda, b, ldb, K, c, ldc, cols, alpha); break;" for r in range(1, mr + 1))}
    default: break;
  }}
}}
'''


def _softmax(isa: Isa) -> str:
    V = isa.vtype
    return f'''// The row's scores become p = exp(x - ref) with x = scale * s + mask and ref
// the running max (0 while every score so far is -inf, so those weigh 0 and
// do not turn into NaN); m and l are the row's running max and sum, alpha the
// factor the output accumulated so far must be scaled by.
static inline {V} softmax_exp({V} d) {{
  const {V} p = {isa.max_keep_nan(isa.zero(), isa.sub("v_exp(d)", isa.set1(FLUSH)))};
  return {isa.max_keep_nan("p", "d")};   // d <= 0 <= p, so this is p, or NaN where d is NaN
}}

static inline float scalar_softmax_exp(float d) {{
  return d != d ? d : (d <= -87.0f ? 0.0f : std::exp(d));
}}

static inline float hmax(const {V} v) {{
  alignas(64) float t[L];
  {isa.storeu("t", "v")}
  float m = t[0];
  for (int i = 1; i < L; ++i) m = t[i] > m ? t[i] : m;
  return m;
}}

static inline float hsum(const {V} v) {{
  alignas(64) float t[L];
  {isa.storeu("t", "v")}
  float s = 0.0f;
  for (int i = 0; i < L; ++i) s += t[i];
  return s;
}}

static void online_row(float* __restrict s, int64_t n, float scale, const float* __restrict mask, float* m, float* l,
                       float* alpha) {{
  const {V} vs = {isa.set1("scale")};
  {V} vmax = {isa.set1("-__builtin_inff()")};
  int64_t j = 0;
  for (; j + L <= n; j += L) {{
    {V} x = {isa.mul(isa.loadu("s + j"), "vs")};
    if (mask) x = {isa.add("x", isa.loadu("mask + j"))};
    {isa.storeu("s + j", "x")}
    vmax = {isa.max_keep_nan("vmax", "x")};
  }}
  float mb = hmax(vmax);
  for (; j < n; ++j) {{
    float x = s[j] * scale;
    if (mask) x += mask[j];
    s[j] = x;
    mb = x > mb ? x : mb;
  }}
  // A NaN score may be dropped from the max: its own exp below is NaN, so the row is NaN anyway.
  const float mnew = mb > *m ? mb : *m;
  const float ref = mnew == -__builtin_inff() ? 0.0f : mnew;
  *alpha = *m == -__builtin_inff() ? 0.0f : std::exp(*m - mnew);
  const {V} vref = {isa.set1("ref")};
  {V} vsum = {isa.zero()};
  for (j = 0; j + L <= n; j += L) {{
    const {V} p = softmax_exp({isa.sub(isa.loadu("s + j"), "vref")});
    {isa.storeu("s + j", "p")}
    vsum = {isa.add("vsum", "p")};
  }}
  float sum = hsum(vsum);
  for (; j < n; ++j) {{
    const float p = scalar_softmax_exp(s[j] - ref);
    s[j] = p;
    sum += p;
  }}
  *l = *l * *alpha + sum;
  *m = mnew;
}}

void softmax_rows(float* s, int64_t ld, int64_t rows, int64_t cols, float scale, const float* mask, int64_t mask_ld) {{
  for (int64_t r = 0; r < rows; ++r) {{
    float* row = s + r * ld;
    float m = -__builtin_inff(), l = 0.0f, alpha;
    online_row(row, cols, scale, mask ? mask + r * mask_ld : nullptr, &m, &l, &alpha);
    const float inv = 1.0f / l;   // l = 0 (every score -inf): 0 * inf = NaN, as the unfused graph gives
    const {V} vinv = {isa.set1("inv")};
    int64_t j = 0;
    for (; j + L <= cols; j += L) {isa.storeu("row + j", isa.mul(isa.loadu("row + j"), "vinv"))}
    for (; j < cols; ++j) row[j] *= inv;
  }}
}}
'''


def _layernorm(isa: Isa) -> str:
    V = isa.vtype
    return f'''// Two passes over a row in cache for the mean and the (biased) variance of
// the deviations (no E[x^2] - E[x]^2 cancellation), a third to normalize.
void layernorm_rows(float* y, int64_t ld, int64_t rows, int64_t n, const float* gamma, const float* beta, float eps) {{
  for (int64_t r = 0; r < rows; ++r) {{
    float* row = y + r * ld;
    {V} vs = {isa.zero()};
    int64_t j = 0;
    for (; j + L <= n; j += L) vs = {isa.add("vs", isa.loadu("row + j"))};
    float sum = hsum(vs);
    for (; j < n; ++j) sum += row[j];
    const float mean = sum / static_cast<float>(n);
    const {V} vm = {isa.set1("mean")};
    {V} vq = {isa.zero()};
    for (j = 0; j + L <= n; j += L) {{
      const {V} d = {isa.sub(isa.loadu("row + j"), "vm")};
      vq = {isa.fma("d", "d", "vq")};
    }}
    float sq = hsum(vq);
    for (; j < n; ++j) sq += (row[j] - mean) * (row[j] - mean);
    const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
    const {V} vr = {isa.set1("rstd")};
    for (j = 0; j + L <= n; j += L) {{
      const {V} x = {isa.mul(isa.sub(isa.loadu("row + j"), "vm"), "vr")};
      const {V} g = {isa.mul("x", isa.loadu("gamma + j"))};
      {isa.storeu("row + j", f"(beta ? {isa.add('g', isa.loadu('beta + j'))} : g)")}
    }}
    for (; j < n; ++j) {{
      const float x = (row[j] - mean) * rstd * gamma[j];
      row[j] = beta ? x + beta[j] : x;
    }}
  }}
}}
'''


def _fused(isa: Isa) -> str:
    V, zero = isa.vtype, isa.zero()
    loadx = isa.loadu('xr + d')
    vmax = isa.max_keep_nan('vm', isa.max_keep_nan(isa.sub(zero, 'v'), 'v'))
    vbad = isa.add('vbad', isa.mul('v', zero))
    return f'''// K^T in column panels of NR keys: panel p holds keys [p NR, p NR + NR) as D
// rows of NR contiguous floats (kt[p D NR + d NR + i]), so a score tile
// reads D * NR floats in a row rather than D lines ldk apart (which land in
// few L1 sets); keys n..ldk-1 are zero so score tiles are always whole.
static void pack_kt(const float* __restrict k, int64_t ks, int64_t n, int64_t D, float* __restrict kt, int64_t ldk) {{
  auto at = [&](int64_t j, int64_t d) -> float& {{ return kt[(j / NR) * D * NR + d * NR + j % NR]; }};
  int64_t j = 0;
  for (; j + L <= n; j += L) {{
    int64_t d = 0;
    for (; d + L <= D; d += L) transpose_block(k + j * ks + d, ks, &at(j, d), NR);
    for (; d < D; ++d)
      for (int i = 0; i < L; ++i) at(j + i, d) = k[(j + i) * ks + d];
  }}
  for (; j < n; ++j)
    for (int64_t d = 0; d < D; ++d) at(j, d) = k[j * ks + d];
  for (; j < ldk; ++j)
    for (int64_t d = 0; d < D; ++d) at(j, d) = 0.0f;
}}

// V in column panels of NR values: panel p holds columns [p NR, p NR + NR)
// of the n rows contiguously (vp[p n NR + j NR + c], columns D..ldd-1 zero).
// In place, V's rows sit a packed projection's row apart (3 H D floats: a
// stride that maps them to a few cache sets), so the P V tiles streamed it
// from beyond L2.
static void pack_v(const float* __restrict v, int64_t vs, int64_t n, int64_t D, float* __restrict vp, int64_t ldd) {{
  for (int64_t p = 0; p < ldd / NR; ++p) {{
    const int64_t d0 = p * NR, w = D - d0 < NR ? D - d0 : NR;
    float* dst = vp + p * n * NR;
    for (int64_t j = 0; j < n; ++j) {{
      std::memcpy(dst + j * NR, v + j * vs + d0, static_cast<size_t>(w) * sizeof(float));
      for (int64_t c = w; c < NR; ++c) dst[j * NR + c] = 0.0f;
    }}
  }}
}}

// Padding-mask skipping: a key block, or its tail, is skipped for a register
// tile of query rows when its softmax weight is provably exactly 0 in every
// row, so the result is bit-identical to walking it. With Bd >= |score| for
// every (query, key) (|scale| D max|q| max|k|, plus the float rounding of
// the dot products) and ref the row's largest mask value, a key whose mask
// is <= ref - 2 Bd - kZeroGap ("low") scores at least kZeroGap below the key
// holding ref. The row qualifies only when every other key's mask sits at
// least 2 Bd + kZeroGap above every low key's: then any low score is kZeroGap
// below any other, so walked after one its exp (clamped at -87, flushed to 0)
// is 0 and the max does not move (alpha 1); walked before all of them, the
// rescale alpha = exp(-kZeroGap) (0 in float below e^-104) erases it. Both
// need finite accumulators: V finite and Sk D max|v| below FLT_MAX.
constexpr double kZeroGap = 128.0;

// max |x| over rows [r0, r1) of D floats (row stride rs), or NaN when one is
// NaN or inf (x * 0 is NaN exactly then; the max alone may drop a NaN).
static float max_abs(const float* x, int64_t rs, int64_t r0, int64_t r1, int64_t D) {{
  {V} vm = {zero}, vbad = {zero};
  float m = 0.0f, bad = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {{
    const float* xr = x + r * rs;
    int64_t d = 0;
    for (; d + L <= D; d += L) {{
      const {V} v = {loadx};
      vm = {vmax};
      vbad = {vbad};
    }}
    for (; d < D; ++d) {{
      m = std::fabs(xr[d]) > m ? std::fabs(xr[d]) : m;
      bad += xr[d] * 0.0f;
    }}
  }}
  const float hm = hmax(vm);
  return hsum(vbad) + bad == 0.0f ? (hm > m ? hm : m) : __builtin_nanf("");
}}

// Bd for queries [q0, q1) of a head: |score| <= |scale| * D * max|q| * max|k|
// (plus the float rounding of a D-term dot product, D * 2^-24 of that), or
// NaN when a skip cannot be proven (Q, K or V not finite, or accumulators of
// Sk * max|v| that could overflow).
static double score_bound(const AttentionArgs& a, const float* Q, const float* K, const float* V, int64_t q0,
                          int64_t q1) {{
  const double qa = max_abs(Q, a.q_row, q0, q1, a.D), ka = max_abs(K, a.k_row, 0, a.Sk, a.D);
  const double va = max_abs(V, a.v_row, 0, a.Sk, a.D);
  if (!(va * double(a.Sk) * double(a.D) < 1e37)) return __builtin_nan("");
  const double b = std::fabs(double(a.scale)) * double(a.D) * qa * ka * (1.0 + double(a.D + 2) * 0x1p-23) + 1e-30;
  return b < 1e30 ? b : __builtin_nan("");
}}

// The row's cut: keys whose mask is <= cut are provably weightless (see
// kZeroGap); NaN (nothing is) when the row does not qualify.
static double row_cut(const float* mask, int64_t n, double bd) {{
  const double nan = __builtin_nan("");
  double ref = -__builtin_inf();
  for (int64_t j = 0; j < n; ++j)
    if (!(double(mask[j]) <= ref)) ref = mask[j];
  if (!std::isfinite(ref)) return nan;   // all -inf, +inf or NaN: walk everything
  const double gap = 2.0 * bd + kZeroGap;
  const double cut = ref - gap - 1e-6 * std::fabs(ref);
  double low = -__builtin_inf(), high = __builtin_inf();
  for (int64_t j = 0; j < n; ++j) {{
    const double x = mask[j];
    if (x <= cut) low = x > low ? x : low;
    else high = x < high ? x : high;
  }}
  // the float rounding of score + mask: a relative 2^-24 of each side's magnitude
  const double slack = 1e-6 * (std::fabs(low == -__builtin_inf() ? 0.0 : low) + std::fabs(high) + 2.0 * bd);
  return high - low >= gap + slack ? cut : nan;
}}

// Keys of [j0, j0 + n) to walk for the tile's rows: up to the last key that
// is not weightless in some row, rounded up to whole vectors (the trailing
// weightless keys only ever added exact zeros to the same vector lanes), or
// 0 when none is (the block is skipped).
static int64_t walked_prefix(const float* M, int64_t mask_row, const double* cut, int rows, int64_t j0, int64_t n) {{
  int64_t keep = 0;
  for (int r = 0; r < (mask_row == 0 ? 1 : rows); ++r) {{   // mask_row 0: every row shares the mask row
    const float* mr = M + r * mask_row + j0;
    const double c = cut[r];
    if (!(c == c)) return n;
    int64_t j = n;
    while (j > keep && double(mr[j - 1]) <= c) --j;
    keep = j;
  }}
  keep = (keep + L - 1) / L * L;
  return keep < n ? keep : n;
}}

int64_t walked_keys(const AttentionArgs& a, int64_t kb) {{
  if (!a.mask || !a.q || !a.k || !a.v || !a.skip_zero_keys || a.S == 0 || a.Sk == 0 || a.D == 0 || kb <= 0) return a.Sk;
  const double bd = score_bound(a, a.q, a.k, a.v, 0, a.S);
  if (!(bd == bd)) return a.Sk;
  const int rows = static_cast<int>(a.S < MR ? a.S : MR);
  double cut[MR];
  for (int r = 0; r < (a.mask_row == 0 ? 1 : rows); ++r) cut[r] = row_cut(a.mask + r * a.mask_row, a.Sk, bd);
  int64_t walked = 0;
  for (int64_t j0 = 0; j0 < a.Sk; j0 += kb) {{
    const int64_t n = a.Sk - j0 < kb ? a.Sk - j0 : kb;
    walked += walked_prefix(a.mask, a.mask_row, cut, rows, j0, n);
  }}
  return walked;
}}

struct Work {{
  const AttentionArgs* a;
  int64_t key_block, chunks, items;
}};

// One work item: queries [q0, q1) of head (b, h).
static void run_item(const AttentionArgs& a, int64_t b, int64_t h, int64_t q0, int64_t q1, int64_t kb) {{
  const int64_t D = a.D, Sk = a.Sk;
  const float* Q = a.q + b * a.q_batch + h * a.q_head;
  const float* K = a.k + b * a.k_batch + h * a.k_head;
  const float* Vv = a.v + b * a.v_batch + h * a.v_head;
  const float* M = a.mask ? a.mask + b * a.mask_batch + h * a.mask_head : nullptr;
  float* O = a.o + b * a.o_batch + h * a.o_head;
  const int64_t ldk = (Sk + NR - 1) / NR * NR;
  const int64_t ldd = (D + NR - 1) / NR * NR;
  float* kt = thread_scratch(kScratchAttnK, static_cast<size_t>(D * ldk + ldd * Sk));   // K^T, then V's panels
  float* vp = kt + D * ldk;
  float* s = thread_scratch(kScratchAttnS, static_cast<size_t>(MR * kb));
  float* acc = thread_scratch(kScratchAttnO, static_cast<size_t>(MR * ldd));
  if (!kt || !s || !acc) return;   // out of memory: attention() checked the sizes it could
  pack_kt(K, a.k_row, Sk, D, kt, ldk);
  pack_v(Vv, a.v_row, Sk, D, vp, ldd);
  const double bd = M && a.skip_zero_keys ? score_bound(a, Q, K, Vv, q0, q1) : __builtin_nan("");
  const bool skipping = bd == bd;
  double cut[MR];
  if (skipping && a.mask_row == 0) cut[0] = row_cut(M, Sk, bd);
  float m[MR], l[MR], alpha[MR];
  for (int64_t i0 = q0; i0 < q1; i0 += MR) {{
    const int rows = static_cast<int>(q1 - i0 < MR ? q1 - i0 : MR);
    for (int r = 0; r < rows; ++r) {{ m[r] = -__builtin_inff(); l[r] = 0.0f; }}
    if (skipping && a.mask_row != 0)
      for (int r = 0; r < rows; ++r) cut[r] = row_cut(M + (i0 + r) * a.mask_row, Sk, bd);
    bool first = true;   // the first block walked stores its products (no rescale of an empty accumulator)
    for (int64_t j0 = 0; j0 < Sk; j0 += kb) {{
      int64_t n = Sk - j0 < kb ? Sk - j0 : kb;
      if (skipping && (n = walked_prefix(M + i0 * a.mask_row, a.mask_row, cut, rows, j0, n)) == 0) continue;
      const int64_t npad = (n + NR - 1) / NR * NR;
      for (int64_t c0 = 0; c0 < npad; c0 += NR)
        tile_rows<true>(rows, Q + i0 * a.q_row, a.q_row, kt + (j0 + c0) * D, NR, D, s + c0, kb, NR, nullptr);
      for (int r = 0; r < rows; ++r)
        online_row(s + r * kb, n, a.scale, M ? M + (i0 + r) * a.mask_row + j0 : nullptr, &m[r], &l[r], &alpha[r]);
      // whole tiles: V's panels are zero past D, the accumulators ldd wide
      for (int64_t d0 = 0; d0 < ldd; d0 += NR)
        tile_rows<true>(rows, s, kb, vp + d0 * Sk + j0 * NR, NR, n, acc + d0, ldd, NR, first ? nullptr : alpha);
      first = false;
    }}
    for (int r = 0; r < rows; ++r) {{
      const float inv = 1.0f / l[r];   // l = 0 (every score -inf): 0 * inf = NaN, as the unfused graph gives
      const {isa.vtype} vinv = {isa.set1("inv")};
      const float* ar = acc + r * ldd;
      float* orow = O + (i0 + r) * a.o_row;
      int64_t d = 0;
      for (; d + L <= D; d += L) {isa.storeu("orow + d", isa.mul(isa.loadu("ar + d"), "vinv"))}
      for (; d < D; ++d) orow[d] = ar[d] * inv;
    }}
  }}
}}

static void fused_job(void* ctx, int tid, int nthreads) {{
  const Work& w = *static_cast<const Work*>(ctx);
  const AttentionArgs& a = *w.a;
  const int64_t per = (w.items + nthreads - 1) / nthreads;
  const int64_t begin = tid * per, end = begin + per < w.items ? begin + per : w.items;
  const int64_t rows = (a.S + w.chunks - 1) / w.chunks;
  for (int64_t it = begin; it < end; ++it) {{
    const int64_t chunk = it % w.chunks, bh = it / w.chunks;
    const int64_t q0 = chunk * rows, q1 = q0 + rows < a.S ? q0 + rows : a.S;
    if (q0 < q1) run_item(a, bh / a.H, bh % a.H, q0, q1, w.key_block);
  }}
}}

// Items: (batch, head, query chunk); one chunk per head unless batch x heads
// leave threads short of kItemsPerThread items (models/attention.py: query_chunks).
void fused(const AttentionArgs& a, int64_t key_block, int threads) {{
  const int64_t heads = a.B * a.H, tiles = (a.S + MR - 1) / MR;
  int64_t chunks = 1;
  if (heads < threads * kItemsPerThread) chunks = (threads * kItemsPerThread + heads - 1) / heads;
  if (chunks > tiles) chunks = tiles;
  if (chunks < 1) chunks = 1;
  Work w{{&a, key_block, chunks, heads * chunks}};
  int t = threads;
  if (t > w.items) t = static_cast<int>(w.items);
  parallel_run(t < 1 ? 1 : t, &fused_job, &w);
}}
'''


def emit_attention_kernels(isa: Isa, variant: str, rows: int, vectors: int, key_block: int,
                           items_per_thread: int, plan_lines=()) -> str:
    """The variant's attention translation unit (compiled with its ISA flags).
    isa has fixed lanes: a scalable variant passes its fixed-lanes view."""
    if not isa.fixed_lanes:
        raise ValueError(f"the attention kernels keep arrays of {isa.vtype}: emit them for the fixed-lanes view "
                         f"of {isa.suffix} (codegen.isa.fixed_lanes_isa_for_profile)")
    if not 1 <= rows <= 16:
        raise ValueError(f"attention tile rows must be in 1..16, got {rows}")
    cols = vectors * isa.lanes
    head = file_header(
        f"{attention_tu_name(variant)}: transformer kernels of variant {variant} ({isa.suffix}).",
        [f"{fused_kernel_name(isa, rows, cols)}: register tile {rows} query rows x {cols} columns "
         f"(models/attention.py: tile), key block {key_block} (models/attention.py: key_block)"]
        + list(plan_lines))
    o = [head,
         "#include <cmath>\n#include <cstdint>\n#include <cstring>\n",
         '#include "autoconfig/detail/attention_kernels.h"',
         '#include "autoconfig/detail/runtime.h"',
         f'#include "{vmath_header_name(isa)}"\n',
         "namespace autoconfig {\nnamespace detail {\nnamespace {\n",
         f"constexpr int L = {isa.lanes};",
         f"constexpr int MR = {rows};",
         f"constexpr int NV = {vectors};",
         "constexpr int NR = NV * L;",
         f"constexpr int64_t kKeyBlock = {key_block};",
         f"constexpr int64_t kItemsPerThread = {items_per_thread};\n",
         isa.transpose_fn("transpose_block"),
         _tile(isa, rows, vectors), _softmax(isa), _layernorm(isa), _fused(isa),
         "}  // namespace\n",
         f"namespace variant_{variant} {{",
         "extern const AttentionKernels kAttentionKernels;",
         f'const AttentionKernels kAttentionKernels = {{"{isa.suffix}", MR, NR, kKeyBlock, &fused, &walked_keys,',
         "                                              &softmax_rows, &layernorm_rows};",
         f"}}  // namespace variant_{variant}",
         "\n}  // namespace detail\n}  // namespace autoconfig"]
    return "\n".join(o) + "\n"


def attention_unit(profile) -> Dict[str, str]:
    """The variant's attention translation unit and the vmath header it
    includes ({relative path: text}), planned by models/attention.py. Like the
    conv kernels they keep arrays of vectors, so a scalable ISA gets its
    fixed-lanes view. The generator and the tuning harness both build it."""
    isa, fixed = fixed_lanes_isa_for_profile(profile), fixed_lanes_profile(profile)
    tile = attention_model.tile(fixed)
    kb = attention_model.key_block(fixed, tile)
    vid = variant_id(profile)
    l1 = fixed.cache(1).size_bytes if fixed.cache(1) else 0
    return {
        f"include/{vmath_header_name(isa)}": emit_vmath_header(isa),
        attention_tu_name(vid): emit_attention_kernels(
            isa, vid, tile.rows, tile.vectors, kb, attention_model.ITEMS_PER_THREAD,
            [f"planned for {fixed.name} ({fixed.isa}, {fixed.vector_registers} vector registers, L1 {l1} B)"]),
    }
