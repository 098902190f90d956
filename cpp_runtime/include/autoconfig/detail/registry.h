// The generated kernel registry: what the build contains and the facts of the
// build (ISA, target, profile and plans). Defined by the generated
// gemm_registry.cpp, compiled at baseline ISA.
#pragma once
#include <cstdint>

#include "autoconfig/autoconfig.h"

namespace autoconfig {
namespace detail {

using GemmEntryFn = void (*)(const GemmArgs& g, int threads);

struct GemmKernel {
  int64_t M, N, K;        // 0 for the generic kernel
  unsigned act_mask;      // bit i set: Activation(i) is compiled in
  int threads;            // thread count the plan is for (0: decide per call)
  bool is_default;        // the shape's entry for threads = 0 (fastest predicted)
  GemmEntryFn fn;
  const char* name;
};

extern const GemmKernel kGemmSpecialized[];
extern const int kGemmSpecializedCount;
extern const GemmKernel kGemmGeneric;

// Generic thread rule: one more thread per this many flops (work worth
// kMinSecondsPerThread at the measured per-core peak).
extern const double kPeakFlopsPerCore;
extern const double kMinSecondsPerThread;

extern const char* const kBuildIsa;
extern const char* const kBuildTarget;
extern const char* const kRequiredFeatures[];
extern const int kRequiredFeatureCount;
extern const char* const kHostProfileJson;
extern const char* const kPlansJson;

}  // namespace detail
}  // namespace autoconfig
