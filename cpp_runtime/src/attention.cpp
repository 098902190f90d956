// Attention and GEMM + LayerNorm entry points: argument checks, the model's
// choice between the fused kernels and the unfused sequences (the formulas of
// python/autoconfig/models/attention.py, evaluated with the variant's emitted
// coefficients), and the unfused sequences themselves (autoconfig gemm,
// softmax rows, gemm; gemm, LayerNorm rows).
#include "autoconfig/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>

#include "autoconfig/detail/registry.h"
#include "autoconfig/detail/runtime.h"

namespace autoconfig {

const char* attention_algorithm_name(AttentionAlgorithm a) {
  switch (a) {
    case AttentionAlgorithm::Auto: return "auto";
    case AttentionAlgorithm::Fused: return "fused";
    case AttentionAlgorithm::Unfused: return "unfused";
  }
  return "unknown";
}

namespace {

using detail::AttentionKernels;
using detail::ConvModel;
using Terms = std::vector<std::pair<std::string, double>>;

constexpr double kF32 = 4.0;
// models/attention.py constants (the ones the emitted coefficients do not carry).
constexpr double kSoftmaxVectorOps = 28.0;
constexpr double kLayerNormVectorOps = 10.0;
constexpr double kVectorOpsPerCycle = 2.0;
constexpr double kItemsPerThread = 4.0;
constexpr double kLoadsPerCycle = 2.0;

double cdiv(double a, double b) { return std::ceil(a / b); }
double total(const Terms& t) {
  double s = 0;
  for (const auto& kv : t) s += kv.second;
  return s;
}

double level_bw(const ConvModel& m, double nbytes) {
  if (nbytes <= m.l1_bytes / 2) return m.bw_l1;
  if (nbytes <= m.l2_bytes / 2) return m.bw_l2;
  return nbytes <= m.l3_bytes / 2 ? m.bw_l3 : m.bw_dram;
}
double beyond_l2_bw(const ConvModel& m, double nbytes) {
  if (nbytes <= m.l2_bytes / 2) return m.bw_l2;
  return nbytes <= m.l3_bytes / 2 ? m.bw_l3 : m.bw_dram;
}
double copy_s(const ConvModel& m, double elements, double t) { return elements * m.copy_cycles_per_element / m.hz / t; }
double sync_s(const ConvModel& m, double t, double regions) { return t > 1 ? regions * m.sync_seconds : 0.0; }
double shared_fma_floor(const ConvModel& m, double full_rate_seconds, double t) {
  return full_rate_seconds / (t <= 1 ? 1.0 : std::max(1.0, t * m.fma_thread_scaling));
}

struct GemmTerms {
  double compute, calls, c_io, pack;
};

// models/attention.py: gemm_terms.
GemmTerms gemm_terms(const ConvModel& m, double M, double N, double K, double t) {
  const double mt = cdiv(M, m.gemm_mr), nt = cdiv(N, m.gemm_nr);
  const double tt = std::max(1.0, std::min(t, mt * nt));
  const double busiest = cdiv(mt * nt, tt);
  const double k_blocks = cdiv(K, m.gemm_kc);
  const double kc = std::max(1.0, std::min(cdiv(K, k_blocks), m.gemm_kc));
  const double eff = 1.0 / (m.gemm_inv_eff_a + m.gemm_inv_eff_b / kc);
  const double full = 2.0 * mt * nt * m.gemm_mr * m.gemm_nr * K / m.peak_flops;
  GemmTerms g;
  g.compute = std::max(2.0 * busiest * m.gemm_mr * m.gemm_nr * K / (m.peak_flops * eff), shared_fma_floor(m, full, tt));
  g.calls = busiest * k_blocks * m.call_overhead_cycles / m.hz;
  const double c_bytes = M * N * kF32;
  g.c_io = 2.0 * c_bytes * k_blocks / beyond_l2_bw(m, c_bytes);
  g.pack = copy_s(m, 2.0 * K * N, t);
  return g;
}

double softmax_cycles(const ConvModel& m) { return kSoftmaxVectorOps / kVectorOpsPerCycle / m.lanes; }

// models/attention.py: query_chunks.
double query_chunks(const AttentionArgs& a, const AttentionKernels& k, double threads) {
  const double heads = double(a.B) * double(a.H);
  const double want = heads < threads * kItemsPerThread ? cdiv(threads * kItemsPerThread, heads) : 1.0;
  return std::max(1.0, std::min(want, cdiv(double(a.S), k.tile_rows)));
}

// models/attention.py: fused_terms.
// walked: keys per query row the kernel walks (AttentionKernels::walked_keys).
Terms fused_terms(const ConvModel& m, const AttentionKernels& k, int64_t kb, const AttentionArgs& a, double threads,
                  double walked) {
  const double chunks = query_chunks(a, k, threads);
  const double items = double(a.B) * double(a.H) * chunks;
  const double busiest = cdiv(items, std::min(threads, items));
  const double rows = cdiv(double(a.S), chunks);
  const double tiles = cdiv(rows, k.tile_rows);
  const double S = double(a.S), Skw = walked, D = double(a.D), nr = k.tile_cols;
  const double sp = tiles * k.tile_rows, skp = cdiv(Skw, nr) * nr, dp = cdiv(D, nr) * nr;
  const double nv = nr / m.lanes;
  const double fma_cycles = k.tile_rows * nv / m.fma_units;
  const double load_cycles = (k.tile_rows + nv) / kLoadsPerCycle;
  const double eff = fma_cycles / std::max(fma_cycles, load_cycles);
  const double flops = 2.0 * sp * skp * D + 2.0 * sp * Skw * dp;
  const double blocks = cdiv(Skw, double(kb));
  const double calls = tiles * (skp / nr + blocks * dp / nr);
  const double head_bytes = 2.0 * double(a.Sk) * D * kF32;
  const double compute = flops / (m.peak_flops * eff);
  const double call_s = calls * m.call_overhead_cycles / m.hz;
  const double stream = tiles * (skp * D + Skw * dp) * kF32 / level_bw(m, head_bytes);
  const double tt = std::min(threads, items);
  (void)S;
  return {{"compute", std::max(busiest * compute, shared_fma_floor(m, items * compute, tt))},
          {"calls", busiest * call_s},
          {"stream", busiest * std::max(0.0, stream - compute - call_s)},
          {"softmax", busiest * sp * Skw * softmax_cycles(m) / m.hz},
          {"pack", busiest * copy_s(m, 2.0 * double(a.Sk) * D, 1)},
          {"sync", sync_s(m, tt, 1)}};
}

// models/attention.py: unfused_terms.
Terms unfused_terms(const ConvModel& m, const AttentionArgs& a, double threads) {
  const double heads = double(a.B) * double(a.H), S = double(a.S), Sk = double(a.Sk), D = double(a.D);
  const GemmTerms g1 = gemm_terms(m, S, Sk, D, threads), g2 = gemm_terms(m, S, D, Sk, threads);
  const double score_bytes = S * Sk * kF32;
  return {{"gemm1", heads * (g1.compute + g1.calls + g1.c_io)},
          {"softmax", heads * S * Sk * softmax_cycles(m) / m.hz / threads},
          {"scores", heads * 3.0 * score_bytes / level_bw(m, score_bytes) / threads},
          {"gemm2", heads * (g2.compute + g2.calls + g2.c_io)},
          {"pack", heads * (g1.pack + g2.pack + copy_s(m, 2.0 * S * Sk, threads))},
          {"sync", sync_s(m, threads, 3 * heads)}};
}

std::string fmt(const char* f, long long a, long long b = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

// Shapes, counts and choices (attention_choice needs no tensors).
Status validate_shape(const AttentionArgs& a) {
  if (a.B < 0 || a.H < 0 || a.S < 0 || a.Sk < 0 || a.D < 0)
    return Status::Error("attention: B, H, S, Sk, D must be >= 0 (got B=" + std::to_string(a.B) +
                         ", H=" + std::to_string(a.H) + ", S=" + std::to_string(a.S) + ", Sk=" + std::to_string(a.Sk) +
                         ", D=" + std::to_string(a.D) + ")");
  if (a.threads < 0) return Status::Error(fmt("attention: threads=%lld must be >= 0", a.threads));
  if (a.key_block < 0) return Status::Error(fmt("attention: key_block=%lld must be >= 0", a.key_block));
  const int alg = static_cast<int>(a.algorithm);
  if (alg < 0 || alg > 2)
    return Status::Error(fmt("attention: unknown algorithm %lld (0 auto, 1 fused, 2 unfused)", alg));
  return Status::Ok();
}

Status validate(const AttentionArgs& a) {
  Status st = validate_shape(a);
  if (!st.ok()) return st;
  if (a.B == 0 || a.H == 0 || a.S == 0 || a.D == 0) return Status::Ok();
  if (!a.o) return Status::Error("attention: o is null");
  if (a.o_row < a.D)
    return Status::Error(fmt("attention: o_row=%lld must be >= D=%lld (output rows may not overlap)", a.o_row, a.D));
  if (a.Sk == 0) return Status::Ok();
  if (!a.q || !a.k || !a.v) return Status::Error("attention: q, k or v is null");
  return Status::Ok();
}

int64_t key_block_of(const AttentionArgs& a, const AttentionKernels& k) {
  int64_t kb = a.key_block > 0 ? a.key_block : k.key_block;
  kb = (kb + k.tile_cols - 1) / k.tile_cols * k.tile_cols;  // whole register tiles
  return kb;
}

AttentionChoice choose(const detail::Registry& r, const AttentionArgs& a) {
  AttentionChoice c;
  const AttentionKernels& k = *r.attention;
  const ConvModel& m = *r.conv_model;
  c.key_block = key_block_of(a, k);
  c.tile_rows = k.tile_rows;
  const int cpus = detail::available_cpus();
  const int lo = a.threads > 0 ? a.threads : 1, hi = a.threads > 0 ? a.threads : cpus;
  const double walked = double(k.walked_keys(a, c.key_block));
  double best = -1;
  for (int t = lo; t <= hi; ++t) {
    Terms f = fused_terms(m, k, c.key_block, a, t, walked), u = unfused_terms(m, a, t);
    const double fs = total(f), us = total(u);
    const bool fused =
        a.algorithm == AttentionAlgorithm::Fused || (a.algorithm == AttentionAlgorithm::Auto && fs <= us);
    const double mine = fused ? fs : us;
    if (best < 0 || mine < best) {
      best = mine;
      c.algorithm = fused ? "fused" : "unfused";
      c.threads = t;
      c.fused_s = fs;
      c.unfused_s = us;
      c.fused_terms = std::move(f);
      c.unfused_terms = std::move(u);
    }
  }
  return c;
}

struct SoftmaxJob {
  const AttentionKernels* k;
  float* s;
  int64_t rows, cols;
  float scale;
  const float* mask;
  int64_t mask_ld;
};

void softmax_job(void* ctx, int tid, int nthreads) {
  const SoftmaxJob& j = *static_cast<const SoftmaxJob*>(ctx);
  const int64_t per = (j.rows + nthreads - 1) / nthreads;
  const int64_t r0 = tid * per, r1 = std::min(j.rows, r0 + per);
  if (r0 < r1)
    j.k->softmax_rows(j.s + r0 * j.cols, j.cols, r1 - r0, j.cols, j.scale, j.mask ? j.mask + r0 * j.mask_ld : nullptr,
                      j.mask_ld);
}

// What a graph of MatMul, Mul, Add, Softmax, MatMul runs, head by head: the
// score matrix of a head is written, normalized and read back.
Status unfused(const AttentionKernels& k, const AttentionArgs& a, int threads) {
  float* s = detail::thread_scratch(detail::kScratchAttnS, static_cast<size_t>(a.S * a.Sk));
  if (!s) return Status::Error("attention: out of memory for the score matrix");
  for (int64_t b = 0; b < a.B; ++b) {
    for (int64_t h = 0; h < a.H; ++h) {
      GemmArgs g1;
      g1.M = a.S;
      g1.N = a.Sk;
      g1.K = a.D;
      g1.A = a.q + b * a.q_batch + h * a.q_head;
      g1.rs_a = a.q_row;
      g1.B = a.k + b * a.k_batch + h * a.k_head;  // K^T: a stride swap
      g1.rs_b = 1;
      g1.cs_b = a.k_row;
      g1.C = s;
      g1.ldc = a.Sk;
      g1.threads = threads;
      Status st = gemm(g1);
      if (!st.ok()) return st;
      const float* mask = a.mask ? a.mask + b * a.mask_batch + h * a.mask_head : nullptr;
      SoftmaxJob job{&k, s, a.S, a.Sk, a.scale, mask, a.mask_row};
      detail::parallel_run(static_cast<int>(std::min<int64_t>(threads, a.S)), &softmax_job, &job);
      GemmArgs g2;
      g2.M = a.S;
      g2.N = a.D;
      g2.K = a.Sk;
      g2.A = s;
      g2.rs_a = a.Sk;
      g2.B = a.v + b * a.v_batch + h * a.v_head;
      g2.rs_b = a.v_row;
      g2.C = a.o + b * a.o_batch + h * a.o_head;
      g2.ldc = a.o_row;
      g2.threads = threads;
      st = gemm(g2);
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

}  // namespace

AttentionChoice attention_choice(const AttentionArgs& a) {
  const detail::Registry* r = detail::active_registry();
  if (!r || !validate_shape(a).ok() || a.B * a.H * a.S * a.Sk * a.D == 0) return {};
  return choose(*r, a);
}

Status attention(const AttentionArgs& a) {
  Status st = validate(a);
  if (!st.ok() || a.B == 0 || a.H == 0 || a.S == 0 || a.D == 0) return st;
  const detail::Registry* r = detail::active_registry();
  if (!r) return check_isa();
  if (a.Sk == 0) {  // softmax over no keys times an empty V: zeros, as the unfused graph gives
    for (int64_t b = 0; b < a.B; ++b)
      for (int64_t h = 0; h < a.H; ++h)
        for (int64_t i = 0; i < a.S; ++i) std::fill_n(a.o + b * a.o_batch + h * a.o_head + i * a.o_row, a.D, 0.0f);
    return Status::Ok();
  }
  const AttentionChoice c = choose(*r, a);
  if (c.algorithm == "fused") {
    r->attention->fused(a, c.key_block, c.threads);
    return Status::Ok();
  }
  return unfused(*r->attention, a, c.threads);
}

// ---------------------------------------------------------------- GEMM + LayerNorm
namespace {

// Shapes, counts and choices (gemm_layernorm_choice needs no tensors).
Status validate_ln_shape(const GemmArgs& g, const LayerNormEpilogue& ln) {
  if (g.M < 0 || g.N < 0 || g.K < 0)
    return Status::Error("gemm_layernorm: M, N, K must be >= 0 (got M=" + std::to_string(g.M) +
                         ", N=" + std::to_string(g.N) + ", K=" + std::to_string(g.K) + ")");
  if (g.M == 0 || g.N == 0) return Status::Ok();
  if (!ln.gamma) return Status::Error("gemm_layernorm: gamma is null (N values expected)");
  if (!(ln.epsilon >= 0.0f)) return Status::Error("gemm_layernorm: epsilon must be >= 0");
  const int alg = static_cast<int>(ln.algorithm);
  if (alg < 0 || alg > 2) return Status::Error(fmt("gemm_layernorm: unknown algorithm %lld", alg));
  if (g.threads < 0) return Status::Error(fmt("gemm_layernorm: threads=%lld must be >= 0", g.threads));
  return Status::Ok();
}

Status validate_ln(const GemmArgs& g, const LayerNormEpilogue& ln) {
  Status st = validate_ln_shape(g, ln);
  if (!st.ok() || g.M == 0 || g.N == 0) return st;
  if (!g.C) return Status::Error("gemm_layernorm: C is null");
  if (g.ldc < g.N) return Status::Error(fmt("gemm_layernorm: ldc=%lld must be >= N=%lld", g.ldc, g.N));
  if (g.K > 0 && (!g.A || (!g.B && !g.prepared_b))) return Status::Error("gemm_layernorm: A or B is null with K > 0");
  return Status::Ok();
}

// models/attention.py: layernorm_block_rows and gemm_layernorm_terms.
int64_t block_rows(const ConvModel& m, int64_t M, int64_t N, int threads) {
  const int64_t mr = static_cast<int64_t>(m.gemm_mr);
  int64_t rows = static_cast<int64_t>(std::floor(m.l2_bytes / 2 / (double(N) * kF32)));
  rows = std::min<int64_t>(rows, static_cast<int64_t>(cdiv(double(M), threads)));
  return rows >= mr ? std::max(mr, rows / mr * mr) : mr;
}

GemmLayerNormChoice choose_ln(const detail::Registry& r, const GemmArgs& g, const LayerNormEpilogue& ln) {
  const ConvModel& m = *r.conv_model;
  GemmLayerNormChoice c;
  const int t = g.threads > 0 ? g.threads : detail::default_threads(r, 2.0 * g.M * g.N * g.K);
  const double M = double(g.M), N = double(g.N), K = double(g.K);
  const double lnc = kLayerNormVectorOps / kVectorOpsPerCycle / m.lanes / m.hz;
  const double y_bytes = M * N * kF32;
  GemmTerms gt = gemm_terms(m, M, N, K, t);
  // A B prepared ahead is copied by neither form (models/attention.py: gemm_layernorm_terms).
  if (g.prepared_b) gt.pack = 0.0;
  c.unfused_s = gt.compute + gt.calls + gt.c_io + gt.pack + M * N * lnc / t + 2.0 * y_bytes / level_bw(m, y_bytes) / t +
                sync_s(m, t, 2);
  c.block_rows = block_rows(m, g.M, g.N, t);
  const double blocks = cdiv(M, double(c.block_rows));
  const double tt = std::min(double(t), blocks), busiest = cdiv(blocks, tt);
  const double rows = double(c.block_rows);
  GemmTerms gb = gemm_terms(m, rows, N, K, 1);
  if (g.prepared_b) gb.pack = 0.0;
  c.fused_s = std::max(busiest * (gb.compute + gb.calls + gb.c_io), shared_fma_floor(m, blocks * gb.compute, tt)) +
              busiest * gb.pack + busiest * (rows * N * lnc + 2.0 * rows * N * kF32 / m.bw_l2) + sync_s(m, tt, 1);
  const bool fused = ln.algorithm == AttentionAlgorithm::Fused ||
                     (ln.algorithm == AttentionAlgorithm::Auto && c.fused_s <= c.unfused_s);
  c.algorithm = fused ? "fused" : "unfused";
  c.threads = fused ? static_cast<int>(tt) : t;
  return c;
}

struct LnJob {
  const AttentionKernels* k;
  const GemmArgs* g;
  const LayerNormEpilogue* ln;
  int64_t rows;    // per block (fused) or per thread (unfused pass)
  bool with_gemm;  // fused: each block's GEMM first
  std::atomic<int> failed{0};
};

void ln_job(void* ctx, int tid, int nthreads) {
  LnJob& j = *static_cast<LnJob*>(ctx);
  const GemmArgs& g = *j.g;
  const int64_t blocks = (g.M + j.rows - 1) / j.rows;
  for (int64_t blk = tid; blk < blocks; blk += nthreads) {
    const int64_t r0 = blk * j.rows, n = std::min(j.rows, g.M - r0);
    if (j.with_gemm) {
      GemmArgs gb = g;
      gb.M = n;
      gb.A = g.A ? g.A + r0 * g.rs_a : nullptr;
      gb.C = g.C + r0 * g.ldc;
      if (g.c_in) gb.c_in = g.c_in + r0 * g.ld_cin;
      if (g.bias_row) gb.bias_row = g.bias_row + r0;
      gb.threads = 1;
      if (!gemm(gb).ok()) j.failed.store(1);
    }
    j.k->layernorm_rows(g.C + r0 * g.ldc, g.ldc, n, g.N, j.ln->gamma, j.ln->beta, j.ln->epsilon);
  }
}

}  // namespace

GemmLayerNormChoice gemm_layernorm_choice(const GemmArgs& g, const LayerNormEpilogue& ln) {
  const detail::Registry* r = detail::active_registry();
  if (!r || !validate_ln_shape(g, ln).ok() || g.M == 0 || g.N == 0) return {};
  return choose_ln(*r, g, ln);
}

Status gemm_layernorm(const GemmArgs& g, const LayerNormEpilogue& ln) {
  Status st = validate_ln(g, ln);
  if (!st.ok() || g.M == 0 || g.N == 0) return st;
  const detail::Registry* r = detail::active_registry();
  if (!r) return check_isa();
  const GemmLayerNormChoice c = choose_ln(*r, g, ln);
  LnJob job;
  job.k = r->attention;
  job.g = &g;
  job.ln = &ln;
  if (c.algorithm == "fused") {
    job.rows = c.block_rows;
    job.with_gemm = true;
    detail::parallel_run(c.threads, &ln_job, &job);
    if (job.failed.load()) return gemm(g);  // the same arguments fail the same way: report gemm's message
    return Status::Ok();
  }
  GemmArgs gt = g;
  gt.threads = c.threads;
  st = gemm(gt);
  if (!st.ok()) return st;
  job.rows = (g.M + c.threads - 1) / c.threads;
  job.with_gemm = false;
  detail::parallel_run(c.threads, &ln_job, &job);
  return Status::Ok();
}

}  // namespace autoconfig
