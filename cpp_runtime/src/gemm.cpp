// GEMM entry point: argument checks, degenerate shapes, dispatch to the
// shape-specialized kernel when the build has one, the generic one otherwise.
#include <cmath>
#include <cstdio>
#include <string>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/gemm_driver.h"
#include "autoconfig/detail/registry.h"
#include "autoconfig/detail/runtime.h"

namespace autoconfig {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Relu6: return "relu6";
    case Activation::GeluTanh: return "gelu_tanh";
    case Activation::GeluErf: return "gelu_erf";
  }
  return "unknown";
}

namespace {

using detail::GemmKernel;

std::string fmt(const char* f, long long a, long long b = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

Status validate(const GemmArgs& g) {
  if (g.M < 0 || g.N < 0 || g.K < 0)
    return Status::Error("gemm: M, N, K must be >= 0 (got M=" + std::to_string(g.M) + ", N=" +
                         std::to_string(g.N) + ", K=" + std::to_string(g.K) + ")");
  const int act = static_cast<int>(g.act);
  if (act < 0 || act >= kNumActivations) return Status::Error(fmt("gemm: unknown activation %lld", act));
  if (g.M == 0 || g.N == 0) return Status::Ok();
  if (!g.C) return Status::Error("gemm: C is null");
  if (g.ldc < g.N) return Status::Error(fmt("gemm: ldc=%lld must be >= N=%lld", g.ldc, g.N));
  if (g.K > 0 && (!g.A || (!g.B && !g.prepared_b))) return Status::Error("gemm: A or B is null with K > 0");
  if (g.c_in && g.ld_cin < g.N) return Status::Error(fmt("gemm: ld_cin=%lld must be >= N=%lld", g.ld_cin, g.N));
  if (g.threads < 0) return Status::Error(fmt("gemm: threads=%lld must be >= 0", g.threads));
  return Status::Ok();
}

// The entry planned for this shape and thread count; for threads = 0 the
// shape's default entry; for an unplanned thread count the default entry too
// (its tile and blocking still fit the shape; the grid is chosen per call).
const GemmKernel* find_specialized(const detail::Registry& r, const GemmArgs& g) {
  const unsigned bit = 1u << static_cast<int>(g.act);
  const GemmKernel* fallback = nullptr;
  for (int i = 0; i < r.specialized_count; ++i) {
    const GemmKernel& k = r.specialized[i];
    if (k.M != g.M || k.N != g.N || k.K != g.K || !(k.act_mask & bit)) continue;
    if (g.threads > 0 && k.threads == g.threads) return &k;
    if (k.is_default) {
      if (g.threads <= 0) return &k;
      fallback = &k;
    }
  }
  return fallback;
}

#ifndef AUTOCONFIG_DEFAULT_THREADS
#define AUTOCONFIG_DEFAULT_THREADS 0
#endif

int threads_for(const detail::Registry& r, const GemmArgs& g, const GemmKernel& k) {
  if (g.threads > 0) return g.threads;
  if (AUTOCONFIG_DEFAULT_THREADS > 0) return AUTOCONFIG_DEFAULT_THREADS;  // the build's AUTOCONFIG_THREADS
  if (k.threads > 0) return k.threads;
  return detail::default_threads(r, 2.0 * g.M * g.N * g.K);
}

float apply_activation(float v, Activation a) {
  switch (a) {
    case Activation::Relu: return v < 0.f ? 0.f : v;   // NaN stays NaN
    case Activation::Relu6: return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case Activation::GeluTanh:
      return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case Activation::GeluErf: return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f));
    default: return v;
  }
}

// K == 0: the product is empty, only the epilogue remains.
void epilogue_only(const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i) {
    for (int64_t j = 0; j < g.N; ++j) {
      float v = 0.f;
      if (g.c_in) v += g.beta * g.c_in[i * g.ld_cin + j];
      if (g.bias_col) v += g.bias_col[j];
      if (g.bias_row) v += g.bias_row[i];
      g.C[i * g.ldc + j] = apply_activation(v, g.act);
    }
  }
}

}  // namespace

namespace detail {

int default_threads(const Registry& r, double flops) {
  if (AUTOCONFIG_DEFAULT_THREADS > 0) return AUTOCONFIG_DEFAULT_THREADS;
  int t = static_cast<int>(flops / (r.peak_flops_per_core * r.min_seconds_per_thread));
  const int cpus = available_cpus();
  if (t > cpus) t = cpus;
  return t < 1 ? 1 : t;
}

}  // namespace detail

namespace {

// The kernel a prepared B was packed for.
const GemmKernel* prepared_kernel(const GemmArgs& g) {
  return static_cast<const GemmKernel*>(g.prepared_b->kernel_entry());
}

// A prepared B serves calls with its own N, K and activation (any M).
Status check_prepared(const GemmArgs& g) {
  const PreparedGemmB& p = *g.prepared_b;
  if (!p.ready()) return Status::Error("gemm: prepared_b was not prepared (call PreparedGemmB::prepare first)");
  if (p.N() != g.N || p.K() != g.K)
    return Status::Error("gemm: prepared_b holds a B of K=" + std::to_string(p.K()) + " x N=" + std::to_string(p.N()) +
                         ", the call has K=" + std::to_string(g.K) + " x N=" + std::to_string(g.N));
  if (p.act() != g.act)
    return Status::Error(std::string("gemm: prepared_b was prepared for activation ") + activation_name(p.act()) +
                         ", the call asks for " + activation_name(g.act));
  return Status::Ok();
}

}  // namespace

Status PreparedGemmB::prepare(const GemmArgs& g) {
  kernel_ = nullptr;
  packed_.clear();
  GemmArgs shape = g;
  shape.prepared_b = nullptr;
  if (g.M < 1 || g.N < 1 || g.K < 1)
    return Status::Error("PreparedGemmB::prepare: M, N, K must be >= 1 (got M=" + std::to_string(g.M) +
                         ", N=" + std::to_string(g.N) + ", K=" + std::to_string(g.K) + ")");
  if (!g.B) return Status::Error("PreparedGemmB::prepare: B is null");
  const int act = static_cast<int>(g.act);
  if (act < 0 || act >= kNumActivations)
    return Status::Error(fmt("PreparedGemmB::prepare: unknown activation %lld", act));
  if (g.threads < 0) return Status::Error(fmt("PreparedGemmB::prepare: threads=%lld must be >= 0", g.threads));
  const detail::Registry* r = detail::active_registry();
  if (!r) return check_isa();
  const GemmKernel* k = find_specialized(*r, shape);
  if (!k) k = r->generic;
  // 64 bytes of slack so the panels start on a cache line
  packed_.resize(static_cast<size_t>(detail::prepared_b_floats(g.K, g.N, k->nr)) + 16);
  offset_ = (64 - reinterpret_cast<uintptr_t>(packed_.data()) % 64) % 64 / sizeof(float);
  detail::pack_b_prepared(g.B, g.rs_b, g.cs_b, g.K, g.N, k->nr, k->kc, packed_.data() + offset_);
  N_ = g.N;
  K_ = g.K;
  act_ = g.act;
  kernel_ = k;
  return Status::Ok();
}

const char* PreparedGemmB::kernel() const { return kernel_ ? static_cast<const GemmKernel*>(kernel_)->name : ""; }

GemmChoice gemm_choice(const GemmArgs& g) {
  GemmChoice c;
  const detail::Registry* r = detail::active_registry();
  if (!r) return c;
  if (g.prepared_b && g.prepared_b->ready()) {
    const GemmKernel* k = prepared_kernel(g);
    c.kernel = k->name;
    c.specialized = k->M != 0;
    c.threads = threads_for(*r, g, *k);
    return c;
  }
  const GemmKernel* k = find_specialized(*r, g);
  c.specialized = k != nullptr;
  if (!k) k = r->generic;
  c.kernel = k->name;
  c.threads = threads_for(*r, g, *k);
  return c;
}

Status gemm(const GemmArgs& g) {
  Status s = validate(g);
  if (!s.ok() || g.M == 0 || g.N == 0) return s;
  const detail::Registry* r = detail::active_registry();
  if (!r) return check_isa();   // no variant of this build runs on this CPU
  if (g.K == 0) {
    epilogue_only(g);
    return Status::Ok();
  }
  if (g.prepared_b) {
    s = check_prepared(g);
    if (!s.ok()) return s;
    const GemmKernel* k = prepared_kernel(g);
    k->fn_prepared(g, threads_for(*r, g, *k), g.prepared_b->data());
    return Status::Ok();
  }
  const GemmKernel* k = find_specialized(*r, g);
  if (!k) k = r->generic;
  k->fn(g, threads_for(*r, g, *k));
  return Status::Ok();
}

}  // namespace autoconfig
