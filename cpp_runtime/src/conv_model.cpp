// Run-time port of python/autoconfig/models/conv.py (same formulas, same
// coefficient names; the numbers come from the generated registry).
#include <algorithm>
#include <cmath>
#include <limits>

#include "autoconfig/detail/conv_model.h"
#include "autoconfig/detail/registry.h"

namespace autoconfig {
namespace detail {

const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::Direct: return "direct";
    case ConvAlgorithm::Gemm1x1: return "gemm-1x1";
    case ConvAlgorithm::Im2colGemm: return "im2col-gemm";
    case ConvAlgorithm::WinogradF2: return "winograd-f2";
    case ConvAlgorithm::WinogradF4: return "winograd-f4";
    case ConvAlgorithm::Depthwise: return "depthwise";
    default: return "unknown";
  }
}

namespace {

double cdiv(double a, double b) { return std::ceil(a / b); }

struct Geo {
  double N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, G, Ho, Wo;
  bool pointwise;
};

Geo geo_of(const Conv2dArgs& a) {
  Geo g{double(a.N), double(a.C), double(a.H), double(a.W), double(a.K), double(a.R), double(a.S),
        double(a.stride_h), double(a.stride_w), double(a.pad_top), double(a.pad_left), double(a.pad_bottom),
        double(a.pad_right), double(a.dilation_h), double(a.dilation_w), double(a.groups),
        double(conv2d_output_h(a)), double(conv2d_output_w(a)), false};
  g.pointwise = a.R == 1 && a.S == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_top == 0 && a.pad_left == 0 &&
                a.pad_bottom == 0 && a.pad_right == 0;
  if (g.N < 1) g.N = 1;
  return g;
}

double sync(const ConvModel& m, double t, double barriers) { return t > 1 ? barriers * m.sync_seconds : 0.0; }

// models/conv.py: _shared_fma_floor.
double shared_fma_floor(const ConvModel& m, double full_rate_seconds, double t) {
  const double cores_worth = t <= 1 ? 1.0 : std::max(1.0, t * m.fma_thread_scaling);
  return full_rate_seconds / cores_worth;
}
double copy_s(const ConvModel& m, double elements, double t) { return elements * m.copy_cycles_per_element / m.hz / t; }

// models/conv.py: Machine.level_of + bandwidth (a working set in half of a cache level).
double level_bw(const ConvModel& m, double nbytes) {
  if (nbytes <= m.l1_bytes / 2) return m.bw_l1;
  if (nbytes <= m.l2_bytes / 2) return m.bw_l2;
  return nbytes <= m.l3_bytes / 2 ? m.bw_l3 : m.bw_dram;
}

// models/conv.py: Machine.copy_bandwidth at the level of a working set.
double level_copy_bw(const ConvModel& m, double nbytes) {
  if (nbytes <= m.l1_bytes / 2) return m.copy_bw_l1;
  if (nbytes <= m.l2_bytes / 2) return m.copy_bw_l2;
  return nbytes <= m.l3_bytes / 2 ? m.copy_bw_l3 : m.copy_bw_dram;
}

// models/conv.py: _layout_seconds.
double layout_copy_s(const ConvModel& m, double elements, double t) {
  if (elements <= 0) return 0.0;
  return std::max(copy_s(m, elements, t), 2 * 4 * elements / level_bw(m, 4 * elements));
}

// Bandwidth of the level holding a working set (models/conv.py: _beyond_l2_bandwidth).
double beyond_l2_bw(const ConvModel& m, double footprint) {
  if (footprint <= m.l2_bytes / 2) return m.bw_l2;
  return footprint <= m.l3_bytes / 2 ? m.bw_l3 : m.bw_dram;
}

double step_cycles(const ConvModel& m, double n, double kb) {
  const double acc = n * kb, cover = m.fma_latency * m.fma_units;
  const double jitter = acc >= cover ? m.issue_jitter * cover / acc : 0.0;
  return std::max({acc / m.fma_units, (n + kb) / m.loads_per_cycle, m.fma_latency}) * (1.0 + jitter);
}

// models/conv.py: direct_geometry.
struct DirectGeo {
  double cb, taps, rows, cols, in_h, in_w, kblocks, groups, last_kb, cpad;
};

DirectGeo direct_geo(const ConvModel& m, const Geo& L, double kb, bool plain) {
  DirectGeo d;
  d.cb = plain ? 1 : m.lanes;
  const double cgroups = cdiv(L.C, d.cb);
  d.cpad = cgroups * d.cb;
  d.kblocks = cdiv(L.K, m.lanes);
  d.groups = cdiv(d.kblocks, kb);
  if (L.pointwise) {
    d.rows = 1; d.cols = L.Ho * L.Wo; d.in_h = 1; d.in_w = L.H * L.W;
  } else {
    d.rows = L.Ho; d.cols = L.Wo; d.in_h = L.H + L.pt + L.pb; d.in_w = L.W + L.pl + L.pr;
  }
  d.taps = cgroups * L.R * L.S;
  d.last_kb = d.kblocks - (d.groups - 1) * kb;
  return d;
}

// models/conv.py: plain_input_rejection (false: rejected).
bool plain_input_fits(const ConvModel& m, const Geo& L, double n, double kb) {
  const double span = ((n - 1) * L.sw + (L.S - 1) * L.dw + 1) * 4;
  const double need = L.C * L.R * (cdiv(span, m.line_bytes) + 1) * m.line_bytes + kb * m.lanes * L.C * L.R * L.S * 4;
  const double usable = std::floor(m.l1_bytes * (m.l1_ways - 1) / m.l1_ways);
  return need <= usable;
}

// models/conv.py: direct_schedule.
struct Schedule {
  bool groups_inner;
  double chunk, cblocks, l3_bytes, footprint;
};

// order: -1 the model's choice, 0 groups outer, 1 groups inner.
Schedule direct_schedule(const ConvModel& m, const Geo& L, double n, double kb, bool plain, double threads,
                         int order) {
  const DirectGeo d = direct_geo(m, L, kb, plain);
  const double half_l2 = m.l2_bytes / 2;
  const double cgroups = d.cpad / d.cb;
  const double rows_in = (L.R - 1) * L.dh + 1;
  const double rows_read = L.pointwise ? d.in_h : std::min(d.in_h, d.rows * rows_in);
  const double x = d.cpad * rows_read * d.in_w * 4;
  const double w_all = d.kblocks * m.lanes * d.cpad * L.R * L.S * 4;
  const double w_group = kb * m.lanes * d.cpad * L.R * L.S * 4;
  const double y = d.kblocks * m.lanes * d.rows * d.cols * 4;
  const double footprint = x + w_all;
  const double outer_chunk =
      d.rows * d.groups < threads ? std::min(d.cols, cdiv(cdiv(d.cols, threads), n) * n) : d.cols;
  Schedule best{false, outer_chunk, 1, -1, footprint};
  for (double nb = 1;; nb = std::min(nb * 2, cgroups)) {
    const double w_traffic = w_group / nb <= half_l2 ? w_all : w_all * d.rows;
    const double x_traffic = x / nb <= half_l2 ? x : x * d.groups;
    const double y_traffic = y > half_l2 ? (nb - 1) * 2 * y : 0.0;
    const double total = w_traffic + x_traffic + y_traffic;
    if (best.l3_bytes < 0 || total < best.l3_bytes) best = {false, outer_chunk, nb, total, footprint};
    if (nb >= cgroups) break;
  }
  const double per_col = d.cpad * rows_in * L.sw * 4;
  double chunk = std::max(1.0, std::min(d.cols, std::floor(std::floor(half_l2 / per_col) / n) * n));
  double chunks = cdiv(d.cols, chunk);
  // Equal chunks; one-row layers in a multiple of the threads (models/conv.py: direct_schedule).
  if (threads > 1 && d.rows == 1) chunks = cdiv(chunks, threads) * threads;
  chunk = std::min(chunk, cdiv(cdiv(d.cols, chunks), n) * n);
  chunks = cdiv(d.cols, chunk);
  const double inner = x + (w_all > half_l2 ? w_all * d.rows * chunks : w_all);
  if (order == 1 || (order < 0 && inner < best.l3_bytes)) return {true, chunk, 1, inner, footprint};
  return best;
}

double direct_s(const ConvModel& m, const Geo& L, double n, double kb, bool plain, double threads,
                const ConvContext& ctx, const Schedule& s) {
  const DirectGeo d = direct_geo(m, L, kb, plain);
  auto tile_cycles = [&](double nn, double kbn) {
    return d.taps * (d.cb * step_cycles(m, nn, kbn) + m.tap_overhead_cycles) + s.cblocks * m.tile_overhead_cycles +
           (s.cblocks - 1) * nn * kbn / m.loads_per_cycle;
  };
  auto row_cycles = [&](double kbn) {
    const double q = std::floor(d.cols / n), rem = d.cols - q * n;
    return q * tile_cycles(n, kbn) + (rem > 0 ? tile_cycles(rem, kbn) : 0.0);
  };
  const double chunks = cdiv(d.cols, s.chunk);
  const double items = d.rows * chunks * d.groups;
  const double t = std::max(1.0, std::min(threads, items));
  const double share = cdiv(items, t) / items;
  const double cycles = d.rows * ((d.groups - 1) * row_cycles(kb) + row_cycles(d.last_kb));
  const double fma_cycles = d.rows * d.cols * d.kblocks * d.taps * d.cb / m.fma_units;
  const double compute = std::max(L.N * cycles * share / m.hz, shared_fma_floor(m, L.N * fma_cycles / m.hz, t));
  const double w_block = kb * m.lanes * d.cpad * L.R * L.S * 4 / s.cblocks;
  const double tiles = d.rows * cdiv(d.cols, n) * d.groups;
  const double x_tile = d.cpad * L.R * n * L.sw * 4;
  const double l2_bytes = tiles * (x_tile + (w_block > m.l1_bytes / 2 ? w_block * s.cblocks : 0.0));
  // Private L2 per thread; beyond L2 the threads share the bandwidth.
  const double streams = std::max(L.N * l2_bytes * share / m.bw_l2,
                                  L.N * s.l3_bytes / beyond_l2_bw(m, s.footprint));
  double total = compute + std::max(0.0, streams - compute);
  const bool pads = L.pt + L.pl + L.pb + L.pr > 0;
  double conv_in = 0.0;
  if (plain) {
    if (pads && !L.pointwise) conv_in = L.N * L.C * d.in_h * d.in_w;
  } else if (!ctx.in_blocked || (pads && !L.pointwise)) {
    conv_in = L.N * d.cpad * d.in_h * d.in_w;
  }
  const double ct = std::max(1.0, std::min(t, cdiv(L.C, m.lanes)));
  total += layout_copy_s(m, conv_in, ct);
  total += layout_copy_s(m, ctx.out_blocked ? 0.0 : L.N * L.K * L.Ho * L.Wo, t);
  return total + sync(m, t, 3 * L.N);
}

// models/conv.py: _layout_terms (an NCHW algorithm called on blocked tensors).
double layout_s(const ConvModel& m, const Geo& L, double threads, const ConvContext& ctx) {
  double s = 0.0;
  if (ctx.in_blocked) s += layout_copy_s(m, L.N * L.C * L.H * L.W, threads);
  if (ctx.out_blocked) s += layout_copy_s(m, L.N * L.K * L.Ho * L.Wo, threads);
  return s;
}

double gemm_s(const ConvModel& m, const Geo& L, double threads, bool im2col, const ConvContext& ctx) {
  const double Cg = std::floor(L.C / L.G), Kg = std::floor(L.K / L.G), P = L.Ho * L.Wo;
  const double depth = Cg * L.R * L.S;
  const double mt = cdiv(Kg, m.gemm_mr), nt = cdiv(P, m.gemm_nr);
  const double t = std::max(1.0, std::min(threads, mt * nt));
  const double busiest = cdiv(mt * nt, t);
  const double k_blocks = cdiv(depth, m.gemm_kc);
  const double kc = std::max(1.0, std::min(cdiv(depth, k_blocks), m.gemm_kc));
  const double eff = 1.0 / (m.gemm_inv_eff_a + m.gemm_inv_eff_b / kc);
  const double compute =
      std::max(2.0 * busiest * m.gemm_mr * m.gemm_nr * depth / (m.peak_flops * eff),
               shared_fma_floor(m, 2.0 * mt * nt * m.gemm_mr * m.gemm_nr * depth / m.peak_flops, t));
  const double calls = busiest * k_blocks * m.call_overhead_cycles / m.hz;
  const double c_bytes = Kg * P * 4;
  const double c_io = 2.0 * c_bytes * k_blocks / beyond_l2_bw(m, c_bytes);
  const double reps = L.N * L.G;
  double total = reps * (compute + calls + c_io + copy_s(m, 2.0 * depth * P, threads));
  if (im2col) total += reps * copy_s(m, depth * P, 1);
  return total + sync(m, threads, reps * 2) + layout_s(m, L, threads, ctx);
}

double winograd_s(const ConvModel& m, const Geo& L, double mt, double threads, const ConvContext& ctx) {
  const double a = mt + 2;
  const double tiles = cdiv(L.Ho, mt) * cdiv(L.Wo, mt);
  const double t = std::max(1.0, std::min(threads, tiles));
  const double peak = m.peak_flops * t;
  auto work = [&](double flops, double efficiency) {
    return std::max(L.N * flops / (peak * efficiency), shared_fma_floor(m, L.N * flops / m.peak_flops, t));
  };
  const double gemm = work(2.0 * a * a * L.C * L.K * tiles, m.winograd_gemm_efficiency);
  const double u_bytes = 4.0 * a * a * L.C * L.K;
  const double u_stream = L.N * u_bytes / beyond_l2_bw(m, u_bytes) / t;
  const double in_t = 2.0 * (a * a * a * 2) * L.C * tiles;
  const double out_t = 2.0 * (a * a * mt + a * mt * mt) * L.K * tiles;
  return gemm + std::max(0.0, u_stream - gemm) + work(in_t, m.transform_efficiency) +
         work(out_t, m.transform_efficiency) + sync(m, t, 2 * L.N) + layout_s(m, L, threads, ctx);
}

double depthwise_s(const ConvModel& m, const Geo& L, double threads, const ConvContext& ctx) {
  const double B = m.lanes, ow = m.depthwise_ow_tile;
  const double kblocks = cdiv(L.K, B);
  const double t = std::max(1.0, std::min(threads, kblocks));
  const double share = cdiv(kblocks, t);
  const double per_tap = std::max(1.0 / m.fma_units, 1.0 / m.loads_per_cycle);
  const double q = std::floor(L.Wo / ow), rem = L.Wo - q * ow;
  const double row =
      (q * std::max(ow * per_tap, m.fma_latency) + (rem > 0 ? std::max(rem * per_tap, m.fma_latency) : 0.0)) * L.R *
          L.S +
      (q + (rem > 0 ? 1 : 0)) * m.tile_overhead_cycles;
  const double fma_cycles = kblocks * L.Ho * L.Wo * L.R * L.S / m.fma_units;
  const double compute = std::max(L.N * share * L.Ho * row / m.hz, shared_fma_floor(m, L.N * fma_cycles / m.hz, t));
  // Channel blocks in either layout, no conversion (models/conv.py: estimate_depthwise).
  const double Hp = L.H + L.pt + L.pb, Wp = L.W + L.pl + L.pr;
  // read in place, pads skipped (no gather), when rows are a register tile wide or unpadded
  const bool pads = Hp != L.H || Wp != L.W;
  const bool in_place = ctx.in_blocked && L.K == L.C && (L.Wo >= ow || !pads);
  const double gather = in_place ? 0.0 : L.N * share * B * Hp * Wp * m.copy_cycles_per_element / m.hz;
  const double scatter = ctx.out_blocked ? 0.0 : L.N * share * B * L.Ho * L.Wo * m.copy_cycles_per_element / m.hz;
  return compute + gather + scatter + sync(m, t, L.N);
}

// models/conv.py: direct_fused_prepare.
bool fused_prepare(const ConvModel& m, const Geo& L, double kb, bool plain, const DirectSchedule& s) {
  const DirectGeo d = direct_geo(m, L, kb, plain);
  const double group_bytes = kb * m.lanes * d.taps * d.cb * 4;
  return L.N <= 1 && !s.groups_inner && group_bytes / std::max<double>(1.0, double(s.cblocks)) <= m.l2_bytes / 2;
}

// (floats read, floats written) by alg's weight preparation (models/conv.py: prepare_bytes).
void prepare_floats(const ConvModel& m, const Geo& L, ConvAlgorithm alg, bool plain, bool scale, double* read,
                    double* written) {
  const double B = m.lanes, w = L.K * std::floor(L.C / L.G) * L.R * L.S;
  *read = w;
  *written = scale ? w : 0.0;
  if (alg == ConvAlgorithm::Direct) {
    const double cb = plain ? 1 : B;
    *written = cdiv(L.K, B) * B * cdiv(L.C, cb) * cb * L.R * L.S;
  } else if (alg == ConvAlgorithm::WinogradF2 || alg == ConvAlgorithm::WinogradF4) {
    const double a = alg == ConvAlgorithm::WinogradF2 ? 4 : 6;
    *written = a * a * L.C * cdiv(L.K, B) * B;
  }
}

// models/conv.py: prepare_terms, "reload": the unfused packed copy read back from memory when
// the call's working set spills L3.
double reload_s(const ConvModel& m, const Geo& L, ConvAlgorithm alg, double t, bool plain, bool scale, bool fused) {
  double read, written;
  prepare_floats(m, L, alg, plain, scale, &read, &written);
  if (written <= 0 || fused) return 0.0;
  const double acts = 4 * L.N * (L.C * L.H * L.W + L.K * L.Ho * L.Wo);
  return 4 * (read + written) + acts > m.l3_bytes / 2 ? 2 * 4 * written / m.copy_bw_dram / t : 0.0;
}

// models/conv.py: prepare_terms, "prepare" (alg's weight preparation; plain: direct with plain
// input; scale: a batch-norm scale is folded; fused: direct packs group by group).
double prepare_s(const ConvModel& m, const Geo& L, ConvAlgorithm alg, double t, bool plain, bool scale,
                 bool fused = false) {
  const double B = m.lanes, w = L.K * std::floor(L.C / L.G) * L.R * L.S;
  double written = scale ? w : 0.0, flops = 0.0;
  if (alg == ConvAlgorithm::Direct) {
    const double cb = plain ? 1 : B;
    written = cdiv(L.K, B) * B * cdiv(L.C, cb) * cb * L.R * L.S;
  } else if (alg == ConvAlgorithm::WinogradF2 || alg == ConvAlgorithm::WinogradF4) {
    const double a = alg == ConvAlgorithm::WinogradF2 ? 4 : 6;
    written = a * a * L.C * cdiv(L.K, B) * B;
    flops = 2.0 * (9 * a + 3 * a * a) * L.K * L.C;
  }
  if (written <= 0) return 0.0;
  const double footprint = 4 * (w + written);
  // Bytes read + written at the copy bandwidth (write-allocate included); the
  // threads share the bytes as they share the issue (one core's bandwidth each).
  // Fused: w read from its level, the packed slice written into L2.
  const double memory =
      (fused ? 4 * w / level_bw(m, 4 * w) + 4 * written / m.copy_bw_l2 : footprint / level_copy_bw(m, footprint)) / t;
  const double issue = written * m.prepare_cycles_per_element / m.hz / t;
  double compute = 0.0;
  // The weight transform runs at a fraction of one FMA unit's rate (models/conv.py:
  // WEIGHT_TRANSFORM_EFFICIENCY): its shuffles and stores do not scale with the units.
  const double transform_flops = m.peak_flops / std::max(1.0, m.fma_units) * m.weight_transform_efficiency;
  if (flops > 0) compute = std::max(flops / (transform_flops * t), shared_fma_floor(m, flops / transform_flops, t));
  return std::max(memory, std::max(issue, compute)) + sync(m, t, 1);
}

const ConvPlanEntry* find_plan(const Registry& r, const Conv2dArgs& a, int threads) {
  const ConvPlanEntry* fallback = nullptr;
  for (int i = 0; i < r.conv_plan_count; ++i) {
    const ConvPlanEntry& e = r.conv_plans[i];
    if (e.C != a.C || e.H != a.H || e.W != a.W || e.K != a.K || e.R != a.R || e.S != a.S || e.sh != a.stride_h ||
        e.sw != a.stride_w || e.pt != a.pad_top || e.pl != a.pad_left || e.pb != a.pad_bottom ||
        e.pr != a.pad_right || e.dh != a.dilation_h || e.dw != a.dilation_w || e.groups != a.groups)
      continue;
    if (e.threads == threads) return &e;
    if (!fallback) fallback = &e;
  }
  return fallback;
}

}  // namespace

ConvChoice choose_conv(const Conv2dArgs& a, int threads, unsigned allowed, ConvContext ctx, bool prepared) {
  ConvChoice c;
  const Registry* r = active_registry();
  if (!r) return c;
  const ConvModel& m = *r->conv_model;
  const ConvKernels& k = *r->conv;
  const Geo L = geo_of(a);
  const double t = threads < 1 ? 1 : threads;
  const double inf = std::numeric_limits<double>::infinity();
  for (double& e : c.estimates) e = -1.0;
  for (double& e : c.prepare) e = -1.0;
  const bool scale = a.scale != nullptr;
  // A one-off call pays the preparation with the run (models/conv.py: candidates(prepared=False)).
  auto charge = [&](ConvAlgorithm alg, bool plain, bool fused = false) {
    return prepared ? 0.0 : prepare_s(m, L, alg, t, plain, scale, fused) + reload_s(m, L, alg, t, plain, scale, fused);
  };
  auto within = [&](ConvAlgorithm alg) {
    const double bound = alg == ConvAlgorithm::WinogradF2 ? m.winograd_f2_error
                         : alg == ConvAlgorithm::WinogradF4 ? m.winograd_f4_error : 0.0;
    return !(a.tolerance > 0 && bound > a.tolerance);
  };
  auto ok = [&](ConvAlgorithm alg) { return ((allowed >> static_cast<int>(alg)) & 1u) && within(alg); };
  const bool wino = a.R == 3 && a.S == 3 && a.stride_h == 1 && a.stride_w == 1 && a.dilation_h == 1 &&
                    a.dilation_w == 1 && a.groups == 1;
  const bool dw = a.groups > 1 && a.groups == a.C && a.K % a.C == 0;
  if (a.groups == 1 && ok(ConvAlgorithm::Direct)) {
    // Candidates in the Python model's order: each tile blocked, then plain; the first minimum wins.
    double best = inf;
    // A variant the caller forces (Conv2dArgs::direct_*) skips the model's L1 rule for plain input.
    const bool forced_plain = a.direct_input == 1;
    for (int i = 0; i < k.direct.tile_count; ++i) {
      if (a.direct_tile >= 0 && a.direct_tile != i) continue;
      const double n = k.direct.tile_n[i], kb = k.direct.tile_kb[i];
      for (int plain = 0; plain < 2; ++plain) {
        if (a.direct_input >= 0 && a.direct_input != plain) continue;
        if (plain && (ctx.in_blocked || !(forced_plain || plain_input_fits(m, L, n, kb)))) continue;
        const Schedule sc =
            direct_schedule(m, L, n, kb, plain != 0, t, a.direct_cblocks > 0 ? 0 : a.direct_order);
        DirectSchedule ds;
        ds.groups_inner = sc.groups_inner;
        ds.cblocks = a.direct_cblocks > 0 ? a.direct_cblocks : static_cast<int64_t>(sc.cblocks);
        const bool fused = fused_prepare(m, L, kb, plain != 0, ds);
        const double s =
            direct_s(m, L, n, kb, plain != 0, t, ctx, sc) + charge(ConvAlgorithm::Direct, plain != 0, fused);
        if (s < best) {
          best = s;
          c.direct.tile = i;
          c.direct.plain_input = plain != 0;
          c.direct.groups_inner = sc.groups_inner;
          c.direct.chunk = static_cast<int64_t>(sc.chunk);
          c.direct.cblocks = a.direct_cblocks > 0 ? a.direct_cblocks : static_cast<int64_t>(sc.cblocks);
        }
      }
    }
    c.estimates[static_cast<int>(ConvAlgorithm::Direct)] = best;
  }
  if (L.pointwise && ok(ConvAlgorithm::Gemm1x1))
    c.estimates[static_cast<int>(ConvAlgorithm::Gemm1x1)] =
        gemm_s(m, L, t, false, ctx) + charge(ConvAlgorithm::Gemm1x1, false);
  if (!L.pointwise && ok(ConvAlgorithm::Im2colGemm))
    c.estimates[static_cast<int>(ConvAlgorithm::Im2colGemm)] =
        gemm_s(m, L, t, true, ctx) + charge(ConvAlgorithm::Im2colGemm, false);
  if (wino && k.winograd_f2.run && ok(ConvAlgorithm::WinogradF2))
    c.estimates[static_cast<int>(ConvAlgorithm::WinogradF2)] =
        winograd_s(m, L, 2, t, ctx) + charge(ConvAlgorithm::WinogradF2, false);
  if (wino && k.winograd_f4.run && ok(ConvAlgorithm::WinogradF4))
    c.estimates[static_cast<int>(ConvAlgorithm::WinogradF4)] =
        winograd_s(m, L, 4, t, ctx) + charge(ConvAlgorithm::WinogradF4, false);
  if (dw && ok(ConvAlgorithm::Depthwise))
    c.estimates[static_cast<int>(ConvAlgorithm::Depthwise)] =
        depthwise_s(m, L, t, ctx) + charge(ConvAlgorithm::Depthwise, false);
  const double direct_kb = k.direct.tile_kb[c.direct.tile];
  auto fill_prepare = [&] {
    c.fused_prepare = fused_prepare(m, L, direct_kb, c.direct.plain_input, c.direct);
    for (int i = 0; i < static_cast<int>(ConvAlgorithm::Count); ++i)
      if (c.estimates[i] >= 0) {
        const bool direct = i == static_cast<int>(ConvAlgorithm::Direct);
        c.prepare[i] = prepare_s(m, L, static_cast<ConvAlgorithm>(i), t, direct && c.direct.plain_input, scale,
                                 direct && c.fused_prepare);
      }
  };
  fill_prepare();

  double best = inf;
  for (int i = 0; i < static_cast<int>(ConvAlgorithm::Count); ++i) {
    if (c.estimates[i] >= 0 && c.estimates[i] < best) {
      best = c.estimates[i];
      c.algorithm = static_cast<ConvAlgorithm>(i);
    }
  }
  c.predicted_s = best;
  if (allowed == ~0u && !ctx.in_blocked && !ctx.out_blocked) {
    const ConvPlanEntry* e = find_plan(*r, a, threads);
    // One-off: the plan (made for prepared layers) holds while its algorithm stays the cheapest.
    if (e && within(e->algorithm) && (prepared || e->algorithm == c.algorithm)) {
      c.algorithm = e->algorithm;
      if (e->algorithm == ConvAlgorithm::Direct) {
        c.direct = e->direct;
        fill_prepare();  // the plan's schedule decides the fused path
      }
      c.predicted_s = c.estimates[static_cast<int>(e->algorithm)];
      c.planned = true;
    }
  }
  return c;
}

}  // namespace detail
}  // namespace autoconfig
