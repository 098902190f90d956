"""Emits namespace `prepare`: the weight preparation of the direct and
Winograd kernels at memory speed (issue 14), with the batch-norm scale
folded in the same pass.

Both layouts keep B (= the ISA's lanes) consecutive output channels in the
lanes of a vector: NCHW[B]c weights u[group][tap][c][kb][lane], Winograd
U[xi][panel][c][k in panel]. So both are built the same way: B weight rows
(k0..k0+B-1, each C*R*S contiguous floats) are read B columns at a time and
transposed in registers (blocks::transpose_block), each column becomes one
vector over the B output channels, is multiplied by the B scales (a whole
block's rows are scaled on the way in, then transposed straight into place)
and (Winograd) transformed, and is stored where the kernel reads it. Every
packed float is written exactly once (channel and lane padding as zeros), so
the buffer needs no clearing first: one read of w, one write of u.

Work is cut into items a thread owns whole (direct: a group of KB output
blocks x a chunk of columns; Winograd: a panel of output channels x a chunk
of input channels); an item's source rows and destination lines fit half of
L1 (the `l1_bytes` of the profile), so each destination line is filled
while it is in L1 and leaves complete. Where the destinations of one step are
a multiple of 4 KiB apart (the Winograd planes of most real layers) they
would share one L1 set and be evicted half written, so the Winograd packer
stages a block of channels in L1 and copies it out plane by plane.

The replaced scalar packers (conv_direct.py, conv_winograd.py: pack_weights)
wrote one float per store with strides of a whole plane (Winograd: 36 planes
per (k, c), in double), after a memset of the whole buffer.
"""
from __future__ import annotations

from typing import List

from ..models.winograd import transform_matrices
from .conv_winograd import linear_combination
from .isa import Isa


def _common(isa: Isa, l1_bytes: int, line_bytes: int) -> str:
    V = isa.vtype
    return f'''
constexpr int B = blocks::B;
constexpr int64_t kL1Bytes = {l1_bytes};   // profile: L1 data cache; an item's lines fit half of it
constexpr int64_t kLineBytes = {line_bytes};   // profile: L1 line
// Addresses this many bytes apart share an L1 set: the 4 KiB way of the L1D
// of the x86 and Arm cores we target (32 KiB 8-way, 48 KiB 12-way).
constexpr int64_t kAliasBytes = 4096;

// dst[i * dst_stride + lane] = w[(k0 + lane) * ld + j0 + i] * scale[k0 + lane]
// for i, lane < B (a whole block; scale may be null): the rows are scaled on
// the way in (one multiply per float, as the scalar packers did), then
// transposed straight to dst.
static inline void scaled_block(const float* __restrict w, int64_t ld, int64_t k0, int64_t j0,
                                const float* __restrict scale, float* __restrict dst, int64_t dst_stride) {{
  if (!scale) {{
    blocks::transpose_block(w + k0 * ld + j0, ld, dst, dst_stride);
    return;
  }}
  alignas(64) float rows[B * B];
  for (int l = 0; l < B; ++l)
    {isa.storeu("rows + l * B", isa.mul(isa.loadu("w + (k0 + l) * ld + j0"), isa.set1("scale[k0 + l]")))}
  blocks::transpose_block(rows, B, dst, dst_stride);
}}

// transpose_block with column i stored at dst + off[i]: the blocked-input
// layout puts the B columns of one step at B uneven places (direct_items).
{isa.transpose_fn("transpose_to", offsets=True)}
// scaled_block with column i stored at dst + off[i] (transpose_to).
static inline void scaled_block_to(const float* __restrict w, int64_t ld, int64_t k0, int64_t j0,
                                   const float* __restrict scale, float* __restrict dst,
                                   const int64_t* __restrict off) {{
  if (!scale) {{
    transpose_to(w + k0 * ld + j0, ld, dst, off);
    return;
  }}
  alignas(64) float rows[B * B];
  for (int l = 0; l < B; ++l)
    {isa.storeu("rows + l * B", isa.mul(isa.loadu("w + (k0 + l) * ld + j0"), isa.set1("scale[k0 + l]")))}
  transpose_to(rows, B, dst, off);
}}

// col[i*B + lane] = w[(k0 + lane) * ld + j0 + i] * scale[k0 + lane] for i < B:
// B columns of B weight rows as B vectors over output channels; lanes past kn
// and columns past n are zero.
static inline void columns(const float* __restrict w, int64_t ld, int64_t k0, int kn, int64_t j0, int64_t n,
                           const float* __restrict scale, float* __restrict col) {{
  if (kn == B && j0 + B <= n) {{
    scaled_block(w, ld, k0, j0, scale, col, B);
    return;
  }}
  for (int i = 0; i < B; ++i)
    for (int l = 0; l < B; ++l) col[i * B + l] = l < kn && j0 + i < n ? w[(k0 + l) * ld + j0 + i] : 0.0f;
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
  float* u;           // where column col0 of group g0 lands
  int64_t g0, col0;   // 0, 0 for the whole layout; direct_group(): its group, its first column
  int64_t col1;       // columns packed: [col0, col1)
  int64_t K, C, RS, cb, KB, kblocks, cols, chunk, chunks;
}};

// Item = (group of KB output blocks, chunk of columns j = c*RS + t, c < ceil(C/cb)*cb):
// for each block kb of the group, B columns at a time: transpose, scale, store
// each column's vector at u[g][tap][c % cb][kb][.] (direct::pack_weights' layout).
static void direct_items(const DirectJob& j, int64_t it0, int64_t it1) {{
  const int64_t ld = j.C * j.RS, n = j.C * j.RS, taps = j.cols / j.cb;
  // One channel per tap (cb = 1) or one tap per channel (1x1): column j's vector
  // lands at (j * kbn + kb) * B, a uniform stride.
  const bool uniform = j.cb == 1 || j.RS == 1;
  alignas(64) float col[B * B];
  for (int64_t it = it0; it < it1; ++it) {{
    const int64_t g = it / j.chunks, j0c = (it % j.chunks) * j.chunk;
    const int64_t j0 = j0c > j.col0 ? j0c : j.col0, j1 = j0c + j.chunk < j.col1 ? j0c + j.chunk : j.col1;
    if (j0 >= j1) continue;
    const int64_t kbn = j.kblocks - g * j.KB < j.KB ? j.kblocks - g * j.KB : j.KB;
    float* ug = j.u + (g - j.g0) * j.KB * taps * j.cb * B;
    // The blocks kb outside the columns: B source rows at a time (rows C*RS*4
    // bytes apart share an L1 set when that is a multiple of 4 KiB; B of them
    // fit its ways, KB*B would not: 2.2x slower for 2048->512 1x1 on Zen 3).
    for (int64_t kb = 0; kb < kbn; ++kb) {{
      const int64_t k0 = (g * j.KB + kb) * B;
      const int kn = static_cast<int>(j.K - k0 < B ? j.K - k0 : B);
      if (!uniform) {{
        // Blocked input, R*S > 1: whole channel blocks (B*RS columns) per step;
        // column m = q*B + i of a block is channel cr = m / RS, tap t = m % RS,
        // and goes to d + (t * B + cr) * kbn * B = d + off[i] for the B columns
        // of step q. Whole blocks are transposed straight there (no round trip
        // through `col`, no index arithmetic per float); the B offsets of a step
        // are computed with it (no table per call: direct_group runs per group
        // inside the conv's own loop).
        for (int64_t jb = j0; jb < j1; jb += B * j.RS) {{   // j0, j1: whole channel blocks
          float* d = ug + ((jb - j.col0) * kbn + kb) * B;
          if (kn == B && jb + B * j.RS <= n) {{
            // The next channel block's row pieces, prefetched non-temporal: w
            // is read once, so its lines need not displace the slice and the
            // input a fused run keeps in L2. One-off 512x14x14->512 3x3/2 paid
            // 0.44-0.51 ms over the prepared run instead of 0.65-0.75, its
            // packing alone 1.1x as fast (Zen 4, 1 thread, per-call minimum,
            // A/B in alternating processes); no gain on the 1x1 path below.
            // (A prefetch never faults: a partial last channel block may point
            // past the row.)
            const int64_t next = jb + B * j.RS < n ? jb + B * j.RS : jb;
            for (int64_t q = 0; q < j.RS; ++q) {{
              int64_t off[B];
              // Column q*B + i is channel cr, tap t: stepped, not divided (a
              // run-time divisor: 2B integer divisions per step were most of
              // the step; 128 and 256 channels packed 1.3x as fast without).
              int64_t cr = q * B / j.RS, t = q * B % j.RS;
              for (int i = 0; i < B; ++i) {{
                off[i] = (t * B + cr) * kbn * B;
                if (++t == j.RS) {{
                  t = 0;
                  ++cr;
                }}
              }}
              for (int l = 0; l < B; ++l) __builtin_prefetch(j.w + (k0 + l) * ld + next + q * B, 0, 0);
              scaled_block_to(j.w, ld, k0, jb + q * B, j.scale, d, off);
            }}
            continue;
          }}
          for (int64_t q = 0; q < j.RS; ++q) {{
            columns(j.w, ld, k0, kn, jb + q * B, n, j.scale, col);
            int64_t cr = q * B / j.RS, t = q * B % j.RS;
            for (int i = 0; i < B; ++i) {{
              {isa.storeu("d + (t * B + cr) * kbn * B", isa.loadu("col + i * B"))}
              if (++t == j.RS) {{
                t = 0;
                ++cr;
              }}
            }}
          }}
        }}
        continue;
      }}
      // Column jj + i goes to ug + ((jj + i - col0) * kbn + kb) * B.
      // Rows a whole number of lines apart that start mid-line (numpy's large
      // arrays start 16 bytes into a page): the blocks follow the line grid
      // (the first and the last overlap their neighbours and store the same
      // floats twice), so each block reads B whole lines. Off the grid, a block
      // reads two lines per row and the next block the second one again, by
      // then evicted when the rows share an L1 set (a multiple of 4 KiB apart:
      // B rows in an 8-way set): 1024x14x14->512 1x1 packed at 32 GB/s, on the
      // grid 61 (Zen 4, AVX-512, 1 thread; read + written bytes).
      const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(j.w + k0 * ld + j0) % kLineBytes);
      const int64_t grid = j0 + (kLineBytes - mis) / int64_t(sizeof(float));
      if (kn == B && ld * int64_t(sizeof(float)) % kLineBytes == 0 && mis && mis % int64_t(sizeof(float)) == 0 &&
          grid + B <= j1 && j1 <= n) {{
        int64_t jj = j0;
        for (; jj < grid; jj += B)
          scaled_block(j.w, ld, k0, jj, j.scale, ug + ((jj - j.col0) * kbn + kb) * B, kbn * B);
        for (jj = grid; jj + B <= j1; jj += B)
          scaled_block(j.w, ld, k0, jj, j.scale, ug + ((jj - j.col0) * kbn + kb) * B, kbn * B);
        if (jj < j1) scaled_block(j.w, ld, k0, j1 - B, j.scale, ug + ((j1 - B - j.col0) * kbn + kb) * B, kbn * B);
        continue;
      }}
      for (int64_t jj = j0; jj < j1; jj += B) {{
        if (kn == B && jj + B <= n && jj + B <= j1) {{
          scaled_block(j.w, ld, k0, jj, j.scale, ug + ((jj - j.col0) * kbn + kb) * B, kbn * B);   // straight into place
          continue;
        }}
        columns(j.w, ld, k0, kn, jj, n, j.scale, col);
        const int m = static_cast<int>(j1 - jj < B ? j1 - jj : B);
        for (int i = 0; i < m; ++i) {isa.storeu("ug + ((jj + i - j.col0) * kbn + kb) * B", isa.loadu("col + i * B"))}
      }}
    }}
  }}
}}

static void direct_thread(void* ctx, int tid, int nthreads) {{
  const DirectJob& j = *static_cast<const DirectJob*>(ctx);
  const int64_t items = (j.kblocks + j.KB - 1) / j.KB * j.chunks;
  direct_items(j, items * tid / nthreads, items * (tid + 1) / nthreads);
}}

static DirectJob direct_job(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int KB,
                            int cb, float* u) {{
  DirectJob j;
  j.w = w;
  j.scale = scale;
  j.u = u;
  j.g0 = 0;
  j.col0 = 0;
  j.K = K;
  j.C = C;
  j.RS = R * S;
  j.cb = cb;
  j.KB = KB;
  j.kblocks = (K + B - 1) / B;
  j.cols = (C + cb - 1) / cb * cb * j.RS;
  // Columns per item: the B source row pieces one block kb reads (direct_items
  // takes the blocks of a group one after the other) in half of L1, when a
  // vector fills a line (each store completes its line); narrower vectors
  // also keep the destination lines the KB blocks of a column share. Long
  // pieces keep each row's stream going: 1x1 layers (64 -> 256 columns) packed
  // 1.1-1.3x as fast (Zen 4, AVX-512, 1 thread).
  const int64_t fit = int64_t(sizeof(float)) * B >= kLineBytes
                          ? kL1Bytes / 2 / (int64_t(sizeof(float)) * B)
                          : kL1Bytes / 2 / (2 * int64_t(sizeof(float)) * KB * B);
  const int64_t step = cb == 1 || j.RS == 1 ? B : B * j.RS;   // direct_thread's step: columns or channel blocks
  j.chunk = fit > step ? fit / step * step : step;
  if (cb > 1 && j.RS > 1) j.chunk = j.cols;   // direct_group's comment
  j.chunks = (j.cols + j.chunk - 1) / j.chunk;
  j.col1 = j.cols;
  return j;
}}

// direct::pack_weights (same layout, same arguments) times scale (K values or
// null), on `threads` pool threads; every float of u is written.
void direct_weights(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int KB, int cb,
                    float* u, int threads) {{
  DirectJob j = direct_job(w, scale, K, C, R, S, KB, cb, u);
  const int64_t items = (j.kblocks + KB - 1) / KB * j.chunks;
  parallel_run(static_cast<int>(threads < 1 ? 1 : threads < items ? threads : items), &direct_thread, &j);
}}

// Group `group` of direct_weights' layout alone, channel groups [c0, c1) (of
// cb channels; the kernel's reduction block), into dst: the same floats that
// start at u + group * KB * taps * cb * B + c0 * RS * cb * kbn * B there. On
// the calling thread: a one-off call packs each group just before the thread
// computes it (direct::run_fused), so the slice is read from L2.
// Blocked input with R*S > 1: one item spans all the columns, so each block kb
// reads its B source rows from end to end (B long streams) and the slice's
// lines are completed in L2, where the run reads them. direct_job's chunks
// of one channel block (B*RS columns, sized for L1) restart KB*B row pieces of
// B*RS*4 bytes per chunk: on the Zen 3 VM (1 thread, under load, A/B in one
// process) that took 1.4-2x as long for 512x7x7->512 3x3. For 1x1 and plain
// input the L1 chunks stay: whole rows were 1.0-1.2x slower there.
void direct_group(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int KB, int cb,
                  int64_t group, int64_t c0, int64_t c1, float* dst) {{
  DirectJob j = direct_job(w, scale, K, C, R, S, KB, cb, dst);
  j.g0 = group;
  j.col0 = c0 * cb * j.RS;
  j.col1 = c1 * cb * j.RS < j.cols ? c1 * cb * j.RS : j.cols;
  direct_items(j, group * j.chunks, (group + 1) * j.chunks);
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
            body.append("          " + isa.storeu(f"uc + {i * a + jx} * stride", e))
    body_s = "\n".join(body)
    return f'''
struct WinoJob{m} {{
  const float* w;
  const float* scale;
  float* u;
  int64_t K, C, Kp, panels, cchunk, chunks;
}};

// Item = (panel of kNR output channels, chunk of input channels), B channels
// at a time: per vector of B output channels of the panel, the block's 9 taps
// are transposed (9*B columns per B channels) and scaled, and U = G g G^T is
// formed in registers and stored, one vector into each of the {a * a} planes.
// When the planes (C*Kp floats apart) are a multiple of kAliasBytes apart they
// all fall in one L1 set ({a * a} lines in an 8- or 12-way set: each line was
// evicted half written and read again for its other half; F4 took 1.5x as
// long on the Zen 3 VM): then the vectors go to `stage` ([xi][channel][panel
// width], in L1) and each plane gets the block's channels x width floats in
// one contiguous copy. (Staging costs a second store per vector: for planes
// that do not alias, straight stores are faster.)
static void {ns}_thread(void* ctx, int tid, int nthreads) {{
  const WinoJob{m}& j = *static_cast<const WinoJob{m}*>(ctx);
  constexpr int kXi = {a * a};
  constexpr int64_t kStage = B * {ns}::kNR;   // floats per plane in `stage`
  const int64_t items = j.panels * j.chunks, ld = j.C * 9, n = j.C * 9, plane = j.C * j.Kp;
  const bool staged = plane * int64_t(sizeof(float)) % kAliasBytes == 0;
  const int64_t stride = staged ? kStage : plane;
  alignas(64) float col[9 * B * B];
  alignas(64) float stage[kXi * kStage];
  for (int64_t it = items * tid / nthreads; it < items * (tid + 1) / nthreads; ++it) {{
    const int64_t panel = it / j.chunks, c0 = (it % j.chunks) * j.cchunk;
    const int64_t c1 = c0 + j.cchunk < j.C ? c0 + j.cchunk : j.C;
    const int64_t kp0 = panel * {ns}::kNR;
    const int64_t width = {ns}::kNR < j.Kp - kp0 ? {ns}::kNR : j.Kp - kp0;
    for (int64_t cb = c0; cb < c1; cb += B) {{
      const int64_t cn = c1 - cb < B ? c1 - cb : B;
      for (int64_t k0 = kp0; k0 < kp0 + width; k0 += B) {{
        const int kn = static_cast<int>(j.K - k0 < B ? j.K - k0 : B);
        for (int q = 0; q < 9; ++q) columns(j.w, ld, k0, kn, cb * 9 + q * B, n, j.scale, col + q * B * B);
        for (int64_t c = 0; c < cn; ++c) {{
          const float* gc = col + c * 9 * B;
          {V} g[9];
          for (int t = 0; t < 9; ++t) g[t] = {isa.loadu("gc + t * B")};
          float* uc = (staged ? stage : j.u + kp0 * j.C + cb * width) + c * width + (k0 - kp0);
{body_s}
        }}
      }}
      if (!staged) continue;
      // The block's channels are contiguous in every plane: cn * width floats.
      const int64_t run = cn * width;
      for (int xi = 0; xi < kXi; ++xi) {{
        const float* src = stage + xi * kStage;
        float* dst = j.u + xi * plane + kp0 * j.C + cb * width;
        for (int64_t e = 0; e < run; e += B) {isa.storeu("dst + e", isa.loadu("src + e"))}
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
  // and its {a * a} staged rows (kNR floats per channel) in half of L1.
  const int64_t fit = kL1Bytes / 2 / (int64_t(sizeof(float)) * {ns}::kNR * (9 + {a * a})) / B * B;
  j.cchunk = fit > B ? fit : B;
  j.chunks = {ns}::ceil_div(C, j.cchunk);
  const int64_t items = j.panels * j.chunks;
  parallel_run(static_cast<int>(threads < 1 ? 1 : threads < items ? threads : items), &{ns}_thread, &j);
}}
'''


def emit_prepare(isa: Isa, l1_bytes: int, line_bytes: int = 64) -> str:
    """namespace prepare { direct_weights, winograd_f2_weights, winograd_f4_weights, direct_group }
    (detail::ConvPrepare); emitted after namespaces blocks, direct and
    winograd_f2/f4 of the same translation unit, whose layouts it fills."""
    return ("namespace prepare {\n" + _common(isa, l1_bytes, line_bytes) + _direct(isa)
            + "".join(_winograd(isa, m) for m in (2, 4)) + "}  // namespace prepare\n")


def prepare_table_row() -> str:
    return ("{&prepare::direct_weights, &prepare::winograd_f2_weights, &prepare::winograd_f4_weights, "
            "&prepare::direct_group}")
