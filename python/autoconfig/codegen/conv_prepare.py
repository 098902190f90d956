"""Emits namespace `prepare`: the weight preparation of the direct and
Winograd kernels at memory speed (issue 14), with the batch-norm scale
folded in the same pass.

Both layouts keep B (= the ISA's lanes) consecutive output channels in the
lanes of a vector: NCHW[B]c weights u[group][tap][c][kb][lane], Winograd
U[xi][panel][c][k in panel]. So both are built the same way: B weight rows
(k0..k0+B-1, each C*R*S contiguous floats) are read B columns at a time and
transposed in registers (blocks::transpose_block), each column becomes one
vector over the B output channels, is multiplied by the B scales and
(Winograd) transformed, and is stored where the kernel reads it. Every
packed float is written exactly once (channel and lane padding as zeros), so
the buffer needs no clearing first: one read of w, one write of u.

Work is cut into items a thread owns whole (direct: a group of KB output
blocks x a chunk of columns; Winograd: a panel of output channels x a chunk
of input channels); an item's source rows and destination lines fit half of
L1 (the `l1_bytes` of the profile), so each destination line is filled
while it is in L1 and leaves complete.

The replaced scalar packers (conv_direct.py, conv_winograd.py: pack_weights)
wrote one float per store with strides of a whole plane (Winograd: 36 planes
per (k, c), in double), after a memset of the whole buffer.
"""
from __future__ import annotations

from typing import List

from ..models.winograd import transform_matrices
from .conv_winograd import linear_combination
from .isa import Isa


def _common(isa: Isa, l1_bytes: int) -> str:
    V = isa.vtype
    return f'''
constexpr int B = blocks::B;
constexpr int64_t kL1Bytes = {l1_bytes};   // profile: L1 data cache; an item's lines fit half of it

// col[i*B + lane] = w[(k0 + lane) * ld + j0 + i] * scale[k0 + lane] for i < B:
// B columns of B weight rows as B vectors over output channels; lanes past kn
// and columns past n are zero.
static inline void columns(const float* __restrict w, int64_t ld, int64_t k0, int kn, int64_t j0, int64_t n,
                           const float* __restrict scale, float* __restrict col) {{
  if (kn == B && j0 + B <= n) {{
    blocks::transpose_block(w + k0 * ld + j0, ld, col, B);
  }} else {{
    for (int i = 0; i < B; ++i)
      for (int l = 0; l < B; ++l) col[i * B + l] = l < kn && j0 + i < n ? w[(k0 + l) * ld + j0 + i] : 0.0f;
  }}
  if (!scale) return;
  float sv[B];
  for (int l = 0; l < B; ++l) sv[l] = l < kn ? scale[k0 + l] : 0.0f;
  const {V} s = {isa.loadu("sv")};
  for (int i = 0; i < B; ++i) {isa.storeu("col + i * B", isa.mul(isa.loadu("col + i * B"), "s"))}
}}
'''


def _direct(isa: Isa) -> str:
    return f'''
struct DirectJob {{
  const float* w;
  const float* scale;
  float* u;
  int64_t K, C, RS, cb, KB, kblocks, cols, chunk, chunks;
}};

// Item = (group of KB output blocks, chunk of columns j = c*RS + t, c < ceil(C/cb)*cb):
// for each block kb of the group, B columns at a time: transpose, scale, store
// each column's vector at u[g][tap][c % cb][kb][.] (direct::pack_weights' layout).
static void direct_thread(void* ctx, int tid, int nthreads) {{
  const DirectJob& j = *static_cast<const DirectJob*>(ctx);
  const int64_t groups = (j.kblocks + j.KB - 1) / j.KB, items = groups * j.chunks;
  const int64_t ld = j.C * j.RS, n = j.C * j.RS, taps = j.cols / j.cb;
  // One channel per tap (cb = 1) or one tap per channel (1x1): column j's vector
  // lands at (j * kbn + kb) * B, a uniform stride.
  const bool uniform = j.cb == 1 || j.RS == 1;
  alignas(64) float col[B * B];
  // Otherwise (blocked input, R*S > 1) whole channel blocks, B*RS columns, per step.
  std::vector<float> blk(uniform ? 0 : static_cast<size_t>(B * B * j.RS));
  for (int64_t it = items * tid / nthreads; it < items * (tid + 1) / nthreads; ++it) {{
    const int64_t g = it / j.chunks, j0 = (it % j.chunks) * j.chunk;
    const int64_t j1 = j0 + j.chunk < j.cols ? j0 + j.chunk : j.cols;
    const int64_t kbn = j.kblocks - g * j.KB < j.KB ? j.kblocks - g * j.KB : j.KB;
    float* ug = j.u + g * j.KB * taps * j.cb * B;
    for (int64_t kb = 0; kb < kbn; ++kb) {{
      const int64_t k0 = (g * j.KB + kb) * B;
      const int kn = static_cast<int>(j.K - k0 < B ? j.K - k0 : B);
      if (!uniform) {{
        for (int64_t jb = j0; jb < j1; jb += B * j.RS) {{   // j0, j1: whole channel blocks
          for (int64_t q = 0; q < j.RS; ++q) columns(j.w, ld, k0, kn, jb + q * B, n, j.scale, blk.data() + q * B * B);
          // Tap t of channel cr of this block: d + (t * B + cr) * kbn * B.
          float* d = ug + (jb * kbn + kb) * B;
          for (int cr = 0; cr < B; ++cr)
            for (int64_t t = 0; t < j.RS; ++t)
              {isa.storeu("d + (t * B + cr) * kbn * B", isa.loadu("blk.data() + (cr * j.RS + t) * B"))}
        }}
        continue;
      }}
      for (int64_t jj = j0; jj < j1; jj += B) {{
        // Column jj + i goes to ug + ((jj + i) * kbn + kb) * B.
        if (kn == B && jj + B <= n && jj + B <= j1 && !j.scale) {{
          blocks::transpose_block(j.w + k0 * ld + jj, ld, ug + (jj * kbn + kb) * B, kbn * B);   // straight into place
          continue;
        }}
        columns(j.w, ld, k0, kn, jj, n, j.scale, col);
        const int m = static_cast<int>(j1 - jj < B ? j1 - jj : B);
        for (int i = 0; i < m; ++i) {isa.storeu("ug + ((jj + i) * kbn + kb) * B", isa.loadu("col + i * B"))}
      }}
    }}
  }}
}}

// direct::pack_weights (same layout, same arguments) times scale (K values or
// null), on `threads` pool threads; every float of u is written.
void direct_weights(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int KB, int cb,
                    float* u, int threads) {{
  DirectJob j;
  j.w = w;
  j.scale = scale;
  j.u = u;
  j.K = K;
  j.C = C;
  j.RS = R * S;
  j.cb = cb;
  j.KB = KB;
  j.kblocks = (K + B - 1) / B;
  j.cols = (C + cb - 1) / cb * cb * j.RS;
  // Columns per item: its KB*B source row pieces and destination lines in half of L1.
  const int64_t fit = kL1Bytes / 2 / (2 * int64_t(sizeof(float)) * KB * B);
  const int64_t step = cb == 1 || j.RS == 1 ? B : B * j.RS;   // direct_thread's step: columns or channel blocks
  j.chunk = fit > step ? fit / step * step : step;
  j.chunks = (j.cols + j.chunk - 1) / j.chunk;
  const int64_t items = (j.kblocks + KB - 1) / KB * j.chunks;
  parallel_run(static_cast<int>(threads < 1 ? 1 : threads < items ? threads : items), &direct_thread, &j);
}}
'''


def _winograd(isa: Isa, m: int) -> str:
    V = isa.vtype
    G = transform_matrices(m)["G"]
    a = m + 2
    ns = f"winograd_f{m}"
    g_in = [f"g[{r * 3 + s}]" for r in range(3) for s in range(3)]
    body: List[str] = []
    # gg = G g (a x 3): row i, column s = sum_r G[i][r] g[r][s].
    for i in range(a):
        for s in range(3):
            body.append(f"          const {V} gg{i}_{s} = {linear_combination(isa, G[i], [g_in[r * 3 + s] for r in range(3)])};")
    # U = gg G^T (a x a): element (i, jx) = sum_s gg[i][s] G[jx][s]; stored at position xi = i*a + jx.
    for i in range(a):
        for jx in range(a):
            e = linear_combination(isa, G[jx], [f"gg{i}_{s}" for s in range(3)])
            body.append("          " + isa.storeu(f"uc + {i * a + jx} * plane", e))
    body_s = "\n".join(body)
    return f'''
struct WinoJob{m} {{
  const float* w;
  const float* scale;
  float* u;
  int64_t K, C, Kp, panels, cchunk, chunks;
}};

// Item = (panel of kNR output channels, chunk of input channels): per vector
// of B output channels, the chunk's 9 taps are transposed (9*B columns per B
// channels), scaled, and U = G g G^T is formed in registers, {a * a} stores per
// (vector, channel), one into each transform position xi.
static void {ns}_thread(void* ctx, int tid, int nthreads) {{
  const WinoJob{m}& j = *static_cast<const WinoJob{m}*>(ctx);
  const int64_t items = j.panels * j.chunks, ld = j.C * 9, n = j.C * 9, plane = j.C * j.Kp;
  alignas(64) float col[9 * B * B];
  for (int64_t it = items * tid / nthreads; it < items * (tid + 1) / nthreads; ++it) {{
    const int64_t panel = it / j.chunks, c0 = (it % j.chunks) * j.cchunk;
    const int64_t c1 = c0 + j.cchunk < j.C ? c0 + j.cchunk : j.C;
    const int64_t kp0 = panel * {ns}::kNR;
    const int64_t width = {ns}::kNR < j.Kp - kp0 ? {ns}::kNR : j.Kp - kp0;
    for (int64_t k0 = kp0; k0 < kp0 + width; k0 += B) {{
      const int kn = static_cast<int>(j.K - k0 < B ? j.K - k0 : B);
      for (int64_t cb = c0; cb < c1; cb += B) {{
        const int64_t cn = c1 - cb < B ? c1 - cb : B;
        for (int q = 0; q < 9; ++q) columns(j.w, ld, k0, kn, cb * 9 + q * B, n, j.scale, col + q * B * B);
        for (int64_t c = cb; c < cb + cn; ++c) {{
          const float* gc = col + (c - cb) * 9 * B;
          {V} g[9];
          for (int t = 0; t < 9; ++t) g[t] = {isa.loadu("gc + t * B")};
          float* uc = j.u + kp0 * j.C + c * width + (k0 - kp0);
{body_s}
        }}
      }}
    }}
  }}
}}

// {ns}::pack_weights (same layout) times scale (K values or null), in float,
// on `threads` pool threads; every float of u is written.
void {ns}_weights(const float* w, const float* scale, int64_t K, int64_t C, float* u, int threads) {{
  WinoJob{m} j;
  j.w = w;
  j.scale = scale;
  j.u = u;
  j.K = K;
  j.C = C;
  j.Kp = {ns}::round_up(K, B);
  j.panels = {ns}::ceil_div(j.Kp, {ns}::kNR);
  // Channels per item: the panel's source rows (kNR x 9 floats per channel)
  // and its {a * a} destination rows (kNR floats per channel) in half of L1.
  const int64_t fit = kL1Bytes / 2 / (int64_t(sizeof(float)) * {ns}::kNR * (9 + {a * a})) / B * B;
  j.cchunk = fit > B ? fit : B;
  j.chunks = {ns}::ceil_div(C, j.cchunk);
  const int64_t items = j.panels * j.chunks;
  parallel_run(static_cast<int>(threads < 1 ? 1 : threads < items ? threads : items), &{ns}_thread, &j);
}}
'''


def emit_prepare(isa: Isa, l1_bytes: int) -> str:
    """namespace prepare { direct_weights, winograd_f2_weights, winograd_f4_weights }
    (detail::ConvPrepare); emitted after namespaces blocks, direct and
    winograd_f2/f4 of the same translation unit, whose layouts it fills."""
    return ("namespace prepare {\n" + _common(isa, l1_bytes) + _direct(isa)
            + "".join(_winograd(isa, m) for m in (2, 4)) + "}  // namespace prepare\n")


def prepare_table_row() -> str:
    return "{&prepare::direct_weights, &prepare::winograd_f2_weights, &prepare::winograd_f4_weights}"
