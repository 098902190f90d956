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
double copy_s(const ConvModel& m, double elements, double t) { return elements * m.copy_cycles_per_element / m.hz / t; }

double step_cycles(const ConvModel& m, double n, double kb) {
  return std::max({n * kb / m.fma_units, (n + kb) / m.loads_per_cycle, m.fma_latency});
}

double direct_s(const ConvModel& m, const Geo& L, double n, double kb, double threads) {
  const double B = m.lanes;
  // pointwise layers run as one row of Ho*Wo columns
  const double Ho = L.pointwise ? 1 : L.Ho, Wo = L.pointwise ? L.Ho * L.Wo : L.Wo;
  const double kblocks = cdiv(L.K, B), groups = cdiv(kblocks, kb);
  const double last_kb = kblocks - (groups - 1) * kb;
  const double q = std::floor(Wo / n), rem = Wo - q * n;
  const double taps = L.C * L.R * L.S;
  auto row = [&](double kbn) {
    double cyc = q * step_cycles(m, n, kbn) * taps + (rem > 0 ? step_cycles(m, rem, kbn) * taps : 0.0);
    return cyc + (q + (rem > 0 ? 1 : 0)) * m.tile_overhead_cycles;
  };
  const double items = groups * Ho;
  const double t = std::max(1.0, std::min(threads, items));
  const double per_image = Ho * ((groups - 1) * row(kb) + row(last_kb));
  const double compute = L.N * per_image * (cdiv(items, t) / items) / m.hz;
  const double Hp = L.H + L.pt + L.pb, Wp = L.W + L.pl + L.pr;
  const double to_blocked = copy_s(m, L.N * cdiv(L.C, B) * B * Hp * Wp, std::min(t, cdiv(L.C, B)));
  const double from_blocked = copy_s(m, L.N * L.K * L.Ho * L.Wo, t);
  return compute + to_blocked + from_blocked + sync(m, t, 3 * L.N);
}

double gemm_s(const ConvModel& m, const Geo& L, double threads, bool im2col) {
  const double Cg = std::floor(L.C / L.G), Kg = std::floor(L.K / L.G), P = L.Ho * L.Wo;
  const double depth = Cg * L.R * L.S;
  const double mt = cdiv(Kg, m.gemm_mr), nt = cdiv(P, m.gemm_nr);
  const double t = std::max(1.0, std::min(threads, mt * nt));
  const double busiest = cdiv(mt * nt, t);
  const double compute = 2.0 * busiest * m.gemm_mr * m.gemm_nr * depth / (m.peak_flops * m.gemm_efficiency);
  const double calls = busiest * cdiv(depth, m.gemm_kc) * m.call_overhead_cycles / m.hz;
  const double reps = L.N * L.G;
  double total = reps * (compute + calls + copy_s(m, 2.0 * depth * P, threads));
  if (im2col) total += reps * copy_s(m, depth * P, 1);
  return total + sync(m, threads, reps * 2);
}

double winograd_s(const ConvModel& m, const Geo& L, double mt, double threads) {
  const double a = mt + 2;
  const double tiles = cdiv(L.Ho, mt) * cdiv(L.Wo, mt);
  const double t = std::max(1.0, std::min(threads, tiles));
  const double peak = m.peak_flops * t;
  const double gemm = 2.0 * a * a * L.C * L.K * tiles;
  const double in_t = 2.0 * (a * a * a * 2) * L.C * tiles;
  const double out_t = 2.0 * (a * a * mt + a * mt * mt) * L.K * tiles;
  return L.N * (gemm / (peak * m.winograd_gemm_efficiency) + (in_t + out_t) / (peak * m.transform_efficiency)) +
         sync(m, t, 2 * L.N);
}

double depthwise_s(const ConvModel& m, const Geo& L, double threads) {
  const double B = m.lanes, ow = m.depthwise_ow_tile;
  const double kblocks = cdiv(L.K, B);
  const double t = std::max(1.0, std::min(threads, kblocks));
  const double share = cdiv(kblocks, t);
  const double per_tap = std::max(1.0 / m.fma_units, 1.0 / m.loads_per_cycle);
  const double q = std::floor(L.Wo / ow), rem = L.Wo - q * ow;
  const double row = (q * std::max(ow * per_tap, m.fma_latency) + rem * std::max(per_tap, m.fma_latency)) * L.R * L.S +
                     (q + rem) * m.tile_overhead_cycles;
  const double compute = L.N * share * L.Ho * row / m.hz;
  const double Hp = L.H + L.pt + L.pb, Wp = L.W + L.pl + L.pr;
  const double gather = L.N * share * B * Hp * Wp * m.copy_cycles_per_element / m.hz;
  const double scatter = L.N * share * B * L.Ho * L.Wo * m.copy_cycles_per_element / m.hz;
  return compute + gather + scatter + sync(m, t, L.N);
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

ConvChoice choose_conv(const Conv2dArgs& a, int threads, unsigned allowed) {
  ConvChoice c;
  const Registry* r = active_registry();
  if (!r) return c;
  const ConvModel& m = *r->conv_model;
  const ConvKernels& k = *r->conv;
  const Geo L = geo_of(a);
  const double t = threads < 1 ? 1 : threads;
  const double inf = std::numeric_limits<double>::infinity();
  for (double& e : c.estimates) e = -1.0;
  auto ok = [&](ConvAlgorithm alg) { return (allowed >> static_cast<int>(alg)) & 1u; };
  const bool wino = a.R == 3 && a.S == 3 && a.stride_h == 1 && a.stride_w == 1 && a.dilation_h == 1 &&
                    a.dilation_w == 1 && a.groups == 1;
  const bool dw = a.groups > 1 && a.groups == a.C && a.K % a.C == 0;
  int best_tile = 0;
  if (a.groups == 1 && ok(ConvAlgorithm::Direct)) {
    double best = inf;
    for (int i = 0; i < k.direct.tile_count; ++i) {
      const double s = direct_s(m, L, k.direct.tile_n[i], k.direct.tile_kb[i], t);
      if (s < best) { best = s; best_tile = i; }
    }
    c.estimates[static_cast<int>(ConvAlgorithm::Direct)] = best;
  }
  if (L.pointwise && ok(ConvAlgorithm::Gemm1x1)) c.estimates[static_cast<int>(ConvAlgorithm::Gemm1x1)] = gemm_s(m, L, t, false);
  if (ok(ConvAlgorithm::Im2colGemm)) c.estimates[static_cast<int>(ConvAlgorithm::Im2colGemm)] = gemm_s(m, L, t, true);
  if (wino && k.winograd_f2.run && ok(ConvAlgorithm::WinogradF2))
    c.estimates[static_cast<int>(ConvAlgorithm::WinogradF2)] = winograd_s(m, L, 2, t);
  if (wino && k.winograd_f4.run && ok(ConvAlgorithm::WinogradF4))
    c.estimates[static_cast<int>(ConvAlgorithm::WinogradF4)] = winograd_s(m, L, 4, t);
  if (dw && ok(ConvAlgorithm::Depthwise)) c.estimates[static_cast<int>(ConvAlgorithm::Depthwise)] = depthwise_s(m, L, t);

  double best = inf;
  for (int i = 0; i < static_cast<int>(ConvAlgorithm::Count); ++i) {
    if (c.estimates[i] >= 0 && c.estimates[i] < best) {
      best = c.estimates[i];
      c.algorithm = static_cast<ConvAlgorithm>(i);
    }
  }
  c.tile = best_tile;
  c.predicted_s = best;
  if (allowed == ~0u) {
    if (const ConvPlanEntry* e = find_plan(*r, a, threads)) {
      c.algorithm = e->algorithm;
      c.tile = e->tile;
      c.predicted_s = c.estimates[static_cast<int>(e->algorithm)];
      c.planned = true;
    }
  }
  return c;
}

}  // namespace detail
}  // namespace autoconfig
