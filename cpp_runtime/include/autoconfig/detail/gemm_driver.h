// GEMM loops, packing and threading, written once and parameterized by the
// plan's constants. Only the microkernel (passed in as UKR) is ISA-specific.
//
// Included by generated translation units, each compiled with its own ISA
// flags. Everything here has internal linkage (anonymous namespace) so two TUs
// built for different ISAs never share an inline function.
#pragma once
#include <cstdint>
#include <cstring>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/runtime.h"

namespace autoconfig {
namespace detail {
namespace {

// What the microkernel does with its accumulators when it stores a tile:
//   c = alpha * acc + beta * cin            (cin == nullptr: c = alpha * acc)
//   if final: c = act(c + bias_row[i] + bias_col[j])
struct TileEpilogue {
  float alpha;
  float beta;
  const float* cin;
  int64_t ld_cin;
  const float* bias_col;  // already offset to the tile's first column
  const float* bias_row;  // already offset to the tile's first row
  bool final;
};

// Which micro-panel stays in L1 while the other operand streams past it; the
// model picks the order from the cache sizes (models/gemm.py: LoopOrder).
//   kAPanelInL1: pc (kc) > jc (nc, B block in L2) > ic (mc, A block in L3)
//                > ir (A micro-panel in L1) > jr (B micro-panels from L2)
//   kBPanelInL1: pc (kc) > jc (nc, B block in L3) > ic (mc, A block in L2)
//                > jr (B micro-panel in L1) > ir (A micro-panels from L2)
// Either way a thread's A block is packed once per k block when its rows fit
// one block, else once per (B block, A block). The second order is the BLIS
// one; the first keeps the B micro-panels in L2 when L2 is large.
enum LoopOrder : int { kAPanelInL1 = 0, kBPanelInL1 = 1 };

// Cache blocking and thread grid of one plan. kc is sized so an A micro-panel
// plus a B micro-panel fit L1; mc and nc by the loop order (see above).
struct GemmBlocking {
  int64_t kc, mc, nc;     // upper bounds; kc and nc are balanced at run time
  int tm, tn;             // threads along M and along N (0: choose at run time)
  int64_t direct_a_bytes; // row-major A up to this size is read in place, not packed
  int order;              // LoopOrder
  // kAPanelInL1 only: a larger row-major A, up to direct_a_panel_bytes, is
  // read in place too when an A micro-panel's rows spread over the L1 sets:
  // at most direct_a_lines_per_set of its lines in any set of an L1 way of
  // l1_way_bytes (models/gemm.py: a_in_place). The panel then stays in
  // L1 for its sweep over the B block, so its copy would buy nothing.
  int64_t direct_a_panel_bytes = 0;
  int64_t l1_way_bytes = 4096;
  int direct_a_lines_per_set = 0;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

// Most cache lines that rows of kc floats, rows floats apart (lda), put in
// one set of an L1 way of way_bytes (the same count as models/gemm.py:
// lines_per_l1_set). Rows that alias (lda a multiple of the way size) all land
// in the same sets; rows that spread out share none.
inline int lines_per_l1_set(int64_t lda, int64_t kc, int rows, int64_t way_bytes) {
  constexpr int64_t kLine = 64, kMaxSets = 512;
  const int64_t sets = min_i64(kMaxSets, max_i64(1, way_bytes / kLine));
  int count[kMaxSets] = {};
  int worst = 0;
  for (int r = 0; r < rows; ++r) {
    const int64_t first = r * lda * static_cast<int64_t>(sizeof(float)) / kLine;
    const int64_t last = (r * lda + kc) * static_cast<int64_t>(sizeof(float)) - 1;
    for (int64_t l = first; l <= last / kLine; ++l) {
      const int c = ++count[l % sets];
      if (c > worst) worst = c;
    }
  }
  return worst;
}

// Thread grid tm x tn == t minimising the busiest thread's micro-tiles
// (the same rule as models/gemm.py: thread_grid()).
inline void choose_grid(int64_t M, int64_t N, int mr, int nr, int t, int order, int* tm, int* tn) {
  const int64_t mt = ceil_div(M, mr), nt = ceil_div(N, nr);
  // With the A micro-panel in L1 every thread sweeps its whole A block once
  // per B block, packing it first: a row group's A panel weighs like a tile.
  const int64_t a_weight = order == kAPanelInL1 ? 4 : 1;
  int64_t best = -1;
  for (int a = 1; a <= t; ++a) {
    if (t % a) continue;
    const int b = t / a;
    // Busiest thread's tiles, plus its share of packing (B is packed
    // cooperatively, A by each row group).
    const int64_t tiles = ceil_div(mt, a) * ceil_div(nt, b);
    const int64_t cost = tiles * 4 + ceil_div(nt, t) + a_weight * ceil_div(mt, a);
    if (best < 0 || cost < best) { best = cost; *tm = a; *tn = b; }
  }
}

// Prefetches the first lines of a row segment of n floats, at most
// max_lines of them (a few are enough for the hardware prefetcher to take
// over a stream that is read in order).
inline void prefetch_row_start(const float* row, int64_t n, int64_t max_lines = 4) {
  const char* p = reinterpret_cast<const char*>(row);
  const int64_t lines = min_i64(max_lines, ceil_div(n * static_cast<int64_t>(sizeof(float)), 64));
  for (int64_t l = 0; l < lines; ++l) __builtin_prefetch(p + l * 64, 0, 3);
}

// Packs rows [i0, i0+mc) x k-range [p0, p0+kc) of op(A) as MR-row panels:
// panel p, row r holds kc consecutive k values at dst + p*MR*KC + r*KC.
// Row-major A is a memcpy per row; rows past M are zero.
template <int MR, int KC>
void pack_a(const float* A, int64_t rs, int64_t cs, int64_t i0, int64_t mc, int64_t p0,
            int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < mc; ip += MR) {
    const int64_t rows = min_i64(MR, mc - ip);
    float* panel = dst + ip * KC;
    for (int r = 0; r < MR; ++r) {
      float* d = panel + r * KC;
      if (r >= rows) {
        std::memset(d, 0, sizeof(float) * kc);
        continue;
      }
      const float* s = A + (i0 + ip + r) * rs + p0 * cs;
      if (cs == 1) {
        // The same row of the next panel lies in another page, where the
        // hardware prefetcher does not follow, and is copied too soon for
        // the prefetcher to ramp up: ask for all of it now (KC floats are
        // at most a few dozen lines).
        if (ip + MR + r < mc) prefetch_row_start(s + MR * rs, kc, KC);
        std::memcpy(d, s, sizeof(float) * kc);
      } else {
        for (int64_t k = 0; k < kc; ++k) d[k] = s[k * cs];
      }
    }
  }
}

// Packs k-range [p0, p0+kc) x columns [j0, j0+nc) of op(B) as NR-column
// panels, k-major: panel q holds row k at dst + q*KC*NR + k*NR. Columns past
// the block are zero.
template <int NR, int KC>
void pack_b_panel(const float* B, int64_t rs, int64_t cs, int64_t p0, int64_t kc, int64_t j0,
                  int64_t cols, float* d) {
  const float* s = B + p0 * rs + j0 * cs;
  if (cs == 1 && cols == NR) {
    for (int64_t k = 0; k < kc; ++k) std::memcpy(d + k * NR, s + k * rs, sizeof(float) * NR);
    return;
  }
  if (cols < NR) {
    for (int64_t k = 0; k < kc; ++k) std::memset(d + k * NR + cols, 0, sizeof(float) * (NR - cols));
  }
  if (rs == 1) {
    // Transposed B (column k-contiguous): read along k, write strided.
    for (int64_t j = 0; j < cols; ++j) {
      const float* sj = s + j * cs;
      for (int64_t k = 0; k < kc; ++k) d[k * NR + j] = sj[k];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t j = 0; j < cols; ++j) d[k * NR + j] = s[k * rs + j * cs];
  }
}

// Equal k blocks no larger than KC, a multiple of 8 where K allows (the
// k loop of gemm_run and the layout of a prepared B share it).
inline int64_t balanced_kc(int64_t K, int64_t KC) {
  const int64_t kblocks = ceil_div(K, KC);
  return min_i64(KC, round_up(ceil_div(K, kblocks), 8));
}

// Floats of B (K x N) prepared for a kernel of NR-column panels.
inline int64_t prepared_b_floats(int64_t K, int64_t N, int nr) { return K * round_up(N, nr); }

// Packs all of op(B) (K x N) once, in the order gemm_thread reads it: k
// blocks of balanced_kc(K, KC) rows, each a run of NR-column k-major panels
// covering N (columns past N zero). Block pc starts at pc * round_up(N, NR)
// and its panel q at + q * kc * NR, so any nc block (a multiple of NR) of
// it is already the packed kc x nc block the loops expect.
inline void pack_b_prepared(const float* B, int64_t rs, int64_t cs, int64_t K, int64_t N, int nr, int64_t KC,
                            float* dst) {
  const int64_t kstep = balanced_kc(K, KC), np = round_up(N, nr);
  for (int64_t pc = 0; pc < K; pc += kstep) {
    const int64_t kc = min_i64(kstep, K - pc);
    for (int64_t j0 = 0; j0 < N; j0 += nr) {
      float* d = dst + pc * np + j0 * kc;
      const int64_t cols = min_i64(nr, N - j0);
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = B + (pc + k) * rs + j0 * cs;
        float* dk = d + k * nr;
        for (int64_t j = 0; j < cols; ++j) dk[j] = s[j * cs];
        for (int64_t j = cols; j < nr; ++j) dk[j] = 0.f;
      }
    }
  }
}

template <int MR, int NR, int KC, int ACT, class UKR>
struct GemmJob {
  const GemmArgs* g;
  GemmBlocking blk;
  int tm, tn;
  int64_t kc_step;       // balanced k block (<= KC)
  int64_t nc;            // columns per jc block
  float* packed_b[2];    // double-buffered, shared by all threads
  const float* prepared_b;  // all of B packed ahead (pack_b_prepared), or null
  bool direct_b;         // read full B panels in place (row-major B, little reuse)
  bool direct_a;         // read A micro-panels in place (row-major A, see GemmBlocking)
  Barrier* barrier;
};

// Prefetches into L2 a few row segments (rows x row_floats floats, `stride`
// floats apart) that the next micro-panel will read, spread over the
// microkernel calls before it: the next packed B micro-panel (one row) while
// the current one is in use (kBPanelInL1), the source rows of the next A
// micro-panel while the current one sweeps the B block (kAPanelInL1). Set up
// once per panel: no division per line.
struct RowsPrefetch {
  const char* base = nullptr;
  int64_t stride_bytes = 0, lines_per_row = 0, rows = 0, per_call = 0;
  int64_t row = 0, line = 0;   // next line to fetch

  RowsPrefetch() = default;
  RowsPrefetch(const float* first, int64_t stride, int64_t nrows, int64_t row_floats, int64_t calls)
      : base(reinterpret_cast<const char*>(first)), stride_bytes(stride * static_cast<int64_t>(sizeof(float))),
        lines_per_row(ceil_div(row_floats * static_cast<int64_t>(sizeof(float)), 64)), rows(nrows),
        per_call(ceil_div(nrows * lines_per_row, max_i64(calls, 1))) {}   // lines_per_row is set first
  void step() {
    for (int64_t n = 0; n < per_call && row < rows; ++n) {
      __builtin_prefetch(base + row * stride_bytes + line * 64, 0, 2);
      if (++line == lines_per_row) { line = 0; ++row; }
    }
  }
};

template <int MR, int NR, int KC, int ACT, class UKR>
void gemm_thread(void* ctx, int tid, int nthreads) {
  auto& job = *static_cast<GemmJob<MR, NR, KC, ACT, UKR>*>(ctx);
  const GemmArgs& g = *job.g;
  const int64_t M = g.M, N = g.N, K = g.K;
  const int ti = tid / job.tn, tj = tid % job.tn;

  // This thread's rows: a contiguous run of MR-row micro-tiles.
  const int64_t mtiles = ceil_div(M, MR);
  const int64_t m_lo = min_i64(M, ceil_div(mtiles * ti, job.tm) * MR);
  const int64_t m_hi = min_i64(M, ceil_div(mtiles * (ti + 1), job.tm) * MR);
  // Equal A blocks no larger than the plan's mc.
  const int64_t m_range = max_i64(m_hi - m_lo, 1);
  const int64_t mc_max = round_up(ceil_div(m_range, ceil_div(m_range, job.blk.mc)), MR);
  float* packed_a = thread_scratch(kScratchPackA, static_cast<size_t>(mc_max * KC));
  float* edge_b = job.direct_b ? thread_scratch(kScratchEdgeB, static_cast<size_t>(KC * NR)) : nullptr;

  // When this thread's rows form a single A block, it is packed once per k
  // block and reused by every B block (the k loop is outside the n loop).
  const bool a_once = mc_max >= m_range;
  int buf = 0;
  for (int64_t pc = 0; pc < K; pc += job.kc_step) {
    const int64_t kc = min_i64(job.kc_step, K - pc);
    for (int64_t jc = 0; jc < N; jc += job.nc) {
      const int64_t nc = min_i64(job.nc, N - jc);
      const int64_t ntiles = ceil_div(nc, NR);
      const int64_t n_lo = ceil_div(ntiles * tj, job.tn), n_hi = ceil_div(ntiles * (tj + 1), job.tn);
      // Distance between the B micro-panels of this block: KC * NR in the
      // per-call buffers, kc * NR in a prepared B.
      const int64_t panel = job.prepared_b ? kc * NR : KC * NR;
      float* pw = job.packed_b[buf];  // this block's buffer when B is packed per call
      buf ^= 1;
      const float* pb = job.prepared_b ? job.prepared_b + pc * round_up(N, NR) + jc * kc : pw;
      if (!job.direct_b && !job.prepared_b) {
        // Cooperative packing of the kc x nc block of B: each thread a
        // contiguous run of panels.
        const int64_t q_lo = ntiles * tid / nthreads, q_hi = ntiles * (tid + 1) / nthreads;
        const int64_t full_hi = min_i64(q_hi, nc / NR);   // panels with NR real columns
        if (g.cs_b == 1 && q_lo < full_hi) {
          // Row-major B: walk B's rows in order (sequential reads) and deal
          // each row's NR-wide pieces out to the panels.
          // A group of kBPackRows rows is dealt out together, so each panel
          // receives kBPackRows*NR contiguous floats per visit instead of NR
          // (the panels lie KC*NR floats apart: a page or more each).
          constexpr int64_t kBPackRows = 8;
          // Lines asked for per row of the next group: all of a short row
          // (the A-panel order's B blocks are a few hundred floats wide, too
          // short for the hardware prefetcher to ramp up), the start of a long one.
          constexpr int64_t kBPackPrefetchLines = 16;
          const float* src = g.B + pc * g.rs_b + jc + q_lo * NR;
          const int64_t row_floats = (full_hi - q_lo) * NR;
          for (int64_t k0 = 0; k0 < kc; k0 += kBPackRows, src += kBPackRows * g.rs_b) {
            const int64_t rows = min_i64(kBPackRows, kc - k0);
            for (int64_t r = 0; r < rows && k0 + kBPackRows + r < kc; ++r)   // the next group's rows
              prefetch_row_start(src + (kBPackRows + r) * g.rs_b, row_floats, kBPackPrefetchLines);
            float* dst = pw + q_lo * KC * NR + k0 * NR;
            for (int64_t q = q_lo; q < full_hi; ++q, dst += KC * NR) {
              const float* s = src + (q - q_lo) * NR;
              for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * NR, s + r * g.rs_b, sizeof(float) * NR);
            }
          }
        } else {
          for (int64_t q = q_lo; q < full_hi; ++q)
            pack_b_panel<NR, KC>(g.B, g.rs_b, g.cs_b, pc, kc, jc + q * NR, NR, pw + q * KC * NR);
        }
        for (int64_t q = max_i64(q_lo, full_hi); q < q_hi; ++q)
          pack_b_panel<NR, KC>(g.B, g.rs_b, g.cs_b, pc, kc, jc + q * NR, min_i64(NR, nc - q * NR), pw + q * KC * NR);
        if (nthreads > 1) job.barrier->wait();
      }

      const bool first = pc == 0, final = pc + kc >= K;
      TileEpilogue ep;
      ep.alpha = g.alpha;
      ep.final = final;
      // One MR x NR tile of C: rows ic + ir, B panel q of this block.
      auto tile = [&](int64_t ic, int64_t ir, int64_t q) {
        const int64_t j = jc + q * NR;
        const int ncols = static_cast<int>(min_i64(NR, N - j));
        const float* bp = job.direct_b ? nullptr : pb + q * panel;
        int64_t ldb = NR;
        if (job.direct_b) {
          if (ncols == NR) {
            bp = g.B + pc * g.rs_b + j;
            ldb = g.rs_b;
          } else {  // a partial panel would read past B's rows: pack it
            pack_b_panel<NR, KC>(g.B, g.rs_b, g.cs_b, pc, kc, j, ncols, edge_b);
            bp = edge_b;
          }
        }
        const int64_t i = ic + ir;
        const int mrows = static_cast<int>(min_i64(MR, M - i));
        float* c = g.C + i * g.ldc + j;
        if (first) {
          ep.cin = g.c_in ? g.c_in + i * g.ld_cin + j : nullptr;
          ep.ld_cin = g.ld_cin;
          ep.beta = g.beta;
        } else {
          ep.cin = c;
          ep.ld_cin = g.ldc;
          ep.beta = 1.0f;
        }
        ep.bias_col = g.bias_col ? g.bias_col + j : nullptr;
        ep.bias_row = g.bias_row ? g.bias_row + i : nullptr;
        if (job.direct_a && mrows == MR) {
          // A small, row-major A: the micro-panel is read in place.
          const float* ap = g.A + i * g.rs_a + pc;
          if (final)
            UKR::template run<0, ACT>(kc, ap, bp, ldb, c, g.ldc, mrows, ncols, ep, g.rs_a);
          else
            UKR::template run<0, 0>(kc, ap, bp, ldb, c, g.ldc, mrows, ncols, ep, g.rs_a);
          return;
        }
        const float* ap = packed_a + ir * KC;
        if (job.direct_a) {  // the bottom edge: pack the few real rows (rest zero)
          // (once per sweep when the A micro-panel is the one kept in L1)
          if (job.blk.order != kAPanelInL1 || q == n_lo)
            pack_a<MR, KC>(g.A, g.rs_a, g.cs_a, i, mrows, pc, kc, packed_a);
          ap = packed_a;
        }
        if (final)
          UKR::template run<KC, ACT>(kc, ap, bp, ldb, c, g.ldc, mrows, ncols, ep);
        else
          UKR::template run<KC, 0>(kc, ap, bp, ldb, c, g.ldc, mrows, ncols, ep);
      };
      for (int64_t ic = m_lo; ic < m_hi; ic += mc_max) {
        const int64_t mc = min_i64(mc_max, m_hi - ic);
        const bool pack_block = !job.direct_a && (jc == 0 || !a_once);
        if (pack_block && job.blk.order == kBPanelInL1) pack_a<MR, KC>(g.A, g.rs_a, g.cs_a, ic, mc, pc, kc, packed_a);
        if (job.blk.order == kBPanelInL1) {
          // The B micro-panel (kc x NR) stays in L1 while the A micro-panels
          // of the L2-resident A block stream past it.
          const int64_t steps = ceil_div(mc, MR);
          for (int64_t q = n_lo; q < n_hi; ++q) {
            if (!job.direct_b && q + 1 < n_hi) {
              RowsPrefetch next(pb + (q + 1) * panel, 0, 1, kc * NR, steps);
              for (int64_t s = 0; s < steps; ++s) {
                next.step();
                tile(ic, s * MR, q);
              }
            } else {
              for (int64_t s = 0; s < steps; ++s) tile(ic, s * MR, q);
            }
          }
        } else {
          // The A micro-panel (MR x kc) stays in L1 while the B micro-panels
          // of the L2-resident B block stream past it. A block that needs
          // packing is packed a micro-panel at a time, right before its sweep,
          // while the sweep before fetches that panel's rows: a separate pass
          // over the block would wait on memory with no compute to overlap.
          for (int64_t ir = 0; ir < mc; ir += MR) {
            RowsPrefetch next_rows;
            if (pack_block) {
              pack_a<MR, KC>(g.A, g.rs_a, g.cs_a, ic + ir, min_i64(MR, mc - ir), pc, kc, packed_a + ir * KC);
              if (g.cs_a == 1 && ir + MR < mc)
                next_rows = RowsPrefetch(g.A + (ic + ir + MR) * g.rs_a + pc, g.rs_a, min_i64(MR, mc - ir - MR), kc,
                                         n_hi - n_lo);
            }
            for (int64_t q = n_lo; q < n_hi; ++q) {
              next_rows.step();
              tile(ic, ir, q);
            }
          }
        }
      }
      // The other buffer is free: every thread passed the barrier after using it.
    }
  }
  // A thread that leaves early must not let the next call's packing overwrite
  // a buffer still being read; parallel_run's join covers that.
}

// One output row (M == 1) with row-major B: y = a @ B is a sum of B's rows
// scaled by a[k]. Streaming B's rows in order reads it once, sequentially,
// at memory speed; a register tile would walk it column-panel by panel.
// Threads split N. The loops are plain C++ that the ISA flags vectorize.
struct GemvJob {
  const GemmArgs* g;
  int nthreads;
};

inline float gemv_activation(float v, int act) {
  switch (act) {
    case 1: return v < 0.f ? 0.f : v;   // NaN stays NaN
    case 2: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case 3: return 0.5f * v * (1.f + __builtin_tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case 4: return 0.5f * v * (1.f + __builtin_erff(v * 0.70710678118654752f));
    default: return v;
  }
}

inline void gemv_thread(void* ctx, int tid, int nthreads) {
  const GemmArgs& g = *static_cast<GemvJob*>(ctx)->g;
  constexpr int64_t kChunk = 1024;  // columns per pass: the accumulator row stays in L1
  const int64_t per = round_up(ceil_div(g.N, nthreads), 16);
  const int64_t j_lo = min_i64(g.N, per * tid), j_hi = min_i64(g.N, per * (tid + 1));
  alignas(64) float acc[kChunk];
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += kChunk) {
    const int64_t n = min_i64(kChunk, j_hi - j0);
    for (int64_t j = 0; j < n; ++j) acc[j] = 0.f;
    int64_t k = 0;
    for (; k + 4 <= g.K; k += 4) {
      const float a0 = g.A[k * g.cs_a], a1 = g.A[(k + 1) * g.cs_a];
      const float a2 = g.A[(k + 2) * g.cs_a], a3 = g.A[(k + 3) * g.cs_a];
      const float* b0 = g.B + k * g.rs_b + j0;
      const float* b1 = b0 + g.rs_b;
      const float* b2 = b1 + g.rs_b;
      const float* b3 = b2 + g.rs_b;
      for (int64_t j = 0; j < n; ++j) acc[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
    }
    for (; k < g.K; ++k) {
      const float a0 = g.A[k * g.cs_a];
      const float* b0 = g.B + k * g.rs_b + j0;
      for (int64_t j = 0; j < n; ++j) acc[j] += a0 * b0[j];
    }
    const int act = static_cast<int>(g.act);
    for (int64_t j = 0; j < n; ++j) {
      float v = g.alpha * acc[j];
      if (g.c_in) v += g.beta * g.c_in[j0 + j];
      if (g.bias_row) v += g.bias_row[0];
      if (g.bias_col) v += g.bias_col[j0 + j];
      g.C[j0 + j] = gemv_activation(v, act);
    }
  }
}

// Runs C = act(alpha*op(A)op(B) + beta*C_in + bias) with microkernel UKR.
// Preconditions (checked by the dispatcher): M, N, K >= 1, pointers valid.
// prepared_b: op(B) packed by pack_b_prepared for this NR and KC (the
// caller checked its N and K), read instead of g.B.
template <int MR, int NR, int KC, int ACT, class UKR>
void gemm_run(const GemmArgs& g, const GemmBlocking& blk, int threads, const float* prepared_b = nullptr) {
  int t = threads < 1 ? 1 : threads;
  if (g.M == 1 && g.cs_b == 1 && !prepared_b) {
    const int64_t slices = ceil_div(g.N, 16);
    if (t > slices) t = static_cast<int>(slices);
    GemvJob job{&g, t};
    parallel_run(t, &gemv_thread, &job);
    return;
  }
  // Never more threads than micro-tiles.
  const int64_t tiles = ceil_div(g.M, MR) * ceil_div(g.N, NR);
  if (t > tiles) t = static_cast<int>(tiles);
  int tm = blk.tm, tn = blk.tn;
  if (tm * tn != t) choose_grid(g.M, g.N, MR, NR, t, blk.order, &tm, &tn);

  GemmJob<MR, NR, KC, ACT, UKR> job;
  job.g = &g;
  job.blk = blk;
  job.tm = tm;
  job.tn = tn;
  // (the blocking's kc may be below the compiled KC: a prepared B's blocking)
  job.kc_step = balanced_kc(g.K, min_i64(KC, blk.kc));
  // Equal B blocks no larger than the plan's nc.
  job.nc = round_up(ceil_div(g.N, ceil_div(g.N, blk.nc)), NR);
  // Packing B pays only when each B panel is reused by several A panels;
  // with one row of micro-tiles per thread, row-major B is read in place.
  // Also when B is one panel wide and row-major: its rows are then already
  // the packed layout.
  // A prepared B is read as it is: already packed, no copy to save.
  job.prepared_b = prepared_b;
  job.direct_b = !prepared_b && g.cs_b == 1 && (ceil_div(g.M, MR) <= tm || (g.N == NR && g.rs_b == NR));
  const int64_t a_bytes = g.M * g.K * static_cast<int64_t>(sizeof(float));
  job.direct_a = g.cs_a == 1 &&
                 (a_bytes <= blk.direct_a_bytes ||
                  (blk.order == kAPanelInL1 && a_bytes <= blk.direct_a_panel_bytes &&
                   lines_per_l1_set(g.rs_a, job.kc_step, MR, blk.l1_way_bytes) <= blk.direct_a_lines_per_set));
  job.packed_b[0] = job.packed_b[1] = nullptr;
  if (!job.direct_b && !prepared_b) {
    // Double-buffered B lets threads pack the next block while others finish
    // the current one, with a single barrier per block.
    const int64_t b_floats = ceil_div(job.nc, NR) * NR * KC;
    float* pb = thread_scratch(kScratchPackB, static_cast<size_t>(2 * b_floats));
    job.packed_b[0] = pb;
    job.packed_b[1] = pb + b_floats;
  }
  Barrier barrier(t);
  job.barrier = &barrier;
  parallel_run(t, &gemm_thread<MR, NR, KC, ACT, UKR>, &job);
}

}  // namespace
}  // namespace detail
}  // namespace autoconfig
