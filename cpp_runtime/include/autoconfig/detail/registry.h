// The generated kernel registry. A build holds one or more variants (one per
// target: `portable` builds carry x86-64-v4, -v3 and -v2), each with its own
// kernels, plans and profile; the runtime picks the best one the CPU runs.
// Defined by the generated *_registry.cpp / variants.cpp, compiled at baseline ISA.
#pragma once
#include <cstdint>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/attention_kernels.h"
#include "autoconfig/detail/conv_kernels.h"
#include "autoconfig/detail/conv_model.h"

namespace autoconfig {
namespace detail {

struct ModelLoops;  // cpp_runtime/src/model/loops.h

using GemmEntryFn = void (*)(const GemmArgs& g, int threads);
// The same kernel reading a B packed ahead by pack_b_prepared (gemm_driver.h).
using GemmPreparedFn = void (*)(const GemmArgs& g, int threads, const float* prepared_b);

struct GemmKernel {
  int64_t M, N, K;        // 0 for the generic kernel
  unsigned act_mask;      // bit i set: Activation(i) is compiled in
  int threads;            // thread count the plan is for (0: decide per call)
  bool is_default;        // the shape's entry for threads = 0 (fastest predicted)
  GemmEntryFn fn;
  const char* name;
  GemmPreparedFn fn_prepared;
  int nr, kc;  // register tile width and deepest k block: the prepared B layout
};

struct Registry {
  const char* target;                 // x86-64-v3, host, ...
  const char* isa;                    // avx512 | avx2 | generic
  int level;                          // x86-64 micro-architecture level (4, 3, 2; 1: baseline)
  const char* const* required;        // cpu features the kernels execute
  int required_count;
  const GemmKernel* specialized;
  int specialized_count;
  const GemmKernel* generic;
  // Generic thread rule: one more thread per min_seconds_per_thread of work at peak.
  double peak_flops_per_core;
  double min_seconds_per_thread;
  const char* host_profile_json;
  const char* plans_json;
  // Convolution: the kernels, the model's coefficients, the spec layers' plans.
  const ConvKernels* conv;
  const ConvModel* conv_model;
  const ConvPlanEntry* conv_plans;
  int conv_plan_count;
  // The .acmodel executor's inner loops, compiled with the variant's flags
  // (cpp_runtime/src/model/loops.h; defined in conv_kernels_<variant>.cpp).
  const ModelLoops* model_loops;
  // Transformer kernels: fused attention, softmax and LayerNorm rows.
  const AttentionKernels* attention;
};

// Best first. Defined in the generated variants.cpp.
extern const Registry* const kVariants[];
extern const int kVariantCount;
extern const char* const kBuildTarget;   // what was asked for: host, portable, x86-64-v3, ...

// The variant this process runs: the first whose features the CPU has and
// whose level is <= AUTOCONFIG_MAX_ISA (v2|v3|v4) when that is set; nullptr if
// none (check_isa() then explains).
const Registry* active_registry();

// Threads for `flops` of work when the caller passed threads = 0 and no plan
// fixes them (gemm.cpp; gemm and conv2d share it): the build's
// AUTOCONFIG_THREADS if set, else one thread per min_seconds_per_thread of
// work at peak, at least one, capped at the CPUs this process may use.
int default_threads(const Registry& r, double flops);

}  // namespace detail
}  // namespace autoconfig
