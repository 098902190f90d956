// The analytical conv model at run time: the formulas of
// python/autoconfig/models/conv.py, evaluated with the coefficients the
// generator emitted for the variant (so the two never disagree on a number;
// tests/build/test_conv_model.py checks they agree on the choice).
#pragma once
#include <cstdint>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/conv_kernels.h"

namespace autoconfig {
namespace detail {

enum class ConvAlgorithm : int { Direct = 0, Gemm1x1, Im2colGemm, WinogradF2, WinogradF4, Depthwise, Count };
const char* conv_algorithm_name(ConvAlgorithm a);

struct ConvModel {
  double lanes, fma_units, fma_latency, hz, peak_flops, fma_thread_scaling, loads_per_cycle, issue_jitter,
      sync_seconds;
  double copy_cycles_per_element, tile_overhead_cycles, tap_overhead_cycles, call_overhead_cycles;
  double transform_efficiency, winograd_gemm_efficiency;
  double gemm_mr, gemm_nr, gemm_kc, gemm_inv_eff_a, gemm_inv_eff_b;   // 1/efficiency = a + b / kc
  double depthwise_ow_tile;
  double winograd_f2_error, winograd_f4_error;   // documented relative error bounds
  double l1_bytes, l1_ways, line_bytes, l2_bytes, l3_bytes;
  double bw_l1, bw_l2, bw_l3, bw_dram;   // bytes/s
  double prepare_cycles_per_element;     // weight preparation issue cost (models/conv.py: prepare_terms)
  double copy_bw_l1, copy_bw_l2, copy_bw_l3, copy_bw_dram;  // copy bytes (read + written)/s: prepare_s
  double weight_transform_efficiency;                       // Winograd G g G^T at preparation, of one FMA unit
};

// A layer the spec listed, with the plan the generator chose for it.
struct ConvPlanEntry {
  int64_t C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, groups;
  int threads;              // the plan's thread count
  ConvAlgorithm algorithm;
  DirectSchedule direct;    // algorithm Direct: tile, input layout, work order
};

// The tensors around a call: NCHW, or NCHW[B]c (models/conv.py: Context).
struct ConvContext {
  bool in_blocked = false;
  bool out_blocked = false;
};

struct ConvChoice {
  ConvAlgorithm algorithm = ConvAlgorithm::Im2colGemm;
  DirectSchedule direct;    // the best direct variant (used when algorithm is Direct)
  double predicted_s = 0;
  bool planned = false;     // from a spec's plan (else the run-time model)
  double estimates[static_cast<int>(ConvAlgorithm::Count)] = {};  // best per algorithm; < 0: not applicable
  // The weight preparation of each algorithm's best variant (seconds; < 0: not
  // applicable); included in estimates for a one-off call (prepared = false).
  double prepare[static_cast<int>(ConvAlgorithm::Count)] = {};
  // Direct, one-off: each thread packs a group's weights just before computing
  // it (DirectConvKernel::run_fused) instead of packing them all first.
  bool fused_prepare = false;
};

// The choice for a layer: the spec's plan when the build has one for it (and
// the call is NCHW, as plans are), else the model. `allowed`: bit i set =
// ConvAlgorithm(i) may be chosen. prepared = false: a one-off conv2d() call,
// chosen by run + weight preparation (the plan's algorithm only when it is
// still the cheapest with its preparation charged).
ConvChoice choose_conv(const Conv2dArgs& a, int threads, unsigned allowed = ~0u, ConvContext ctx = {},
                       bool prepared = true);

}  // namespace detail
}  // namespace autoconfig
