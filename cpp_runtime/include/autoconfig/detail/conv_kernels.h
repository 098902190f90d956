// The convolution kernels of one variant, as the runtime sees them: plain
// function pointers (no template crosses the ISA boundary). Each variant's
// generated conv_kernels_<variant>.cpp defines one ConvKernels table.
#pragma once
#include <cstdint>

#include "autoconfig/autoconfig.h"

namespace autoconfig {
namespace detail {

// One image of one group's convolution: C input channels of H x W, K output
// channels of Ho x Wo, ONNX Conv attributes.
struct ConvGeometry {
  int64_t C, H, W;
  int64_t K, R, S;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left, pad_bottom, pad_right;
  int64_t dilation_h, dilation_w;
  int64_t Ho, Wo;
};

// Fused epilogue applied to every output element (batch-norm scale already
// folded into the weights, its shift into bias):
//   y[k][p] = min(max(acc + bias[k] + residual[k][p], lo), hi)
// relu is (0, +inf), relu6 (0, 6), clip (lo, hi), none (-inf, +inf).
struct ConvEpilogue {
  const float* bias;      // K values or null
  const float* residual;  // same layout as y, or null
  float lo, hi;
};

// Winograd F(m x m, 3 x 3): stride 1, dilation 1, groups 1, any pads.
struct WinogradKernel {
  int m;  // output tile edge: 2 or 4
  // Floats of the transformed weights for K x C filters.
  int64_t (*packed_weights_floats)(int64_t K, int64_t C);
  // u <- transform of w (K x C x 3 x 3); done once per weight tensor.
  void (*pack_weights)(const float* w, int64_t K, int64_t C, float* u);
  // y (K x Ho x Wo) <- conv of x (C x H x W), one image, NCHW, on `threads` pool threads.
  void (*run)(const ConvGeometry& g, const float* x, const float* u, const ConvEpilogue& ep, float* y,
              int threads);
};

// How the direct kernel runs one layer (the plan's parameters).
struct DirectSchedule {
  int tile = 0;               // index into tile_n / tile_kb: the register tile
  bool plain_input = false;   // input plain NCHW (one channel per tap) instead of NCHW[B]c
  int64_t chunk = 0;          // output columns per work item (0: a whole row)
  bool groups_inner = false;  // items (row chunk, output-block group) instead of (group, row chunk)
  int64_t cblocks = 1;        // reduction blocks of input channels (partial sums kept in y)
};

// A one-off call's direct weights, packed group by group (a group: the KB*B
// output channels one register tile computes, over all taps) by the thread
// about to compute the group, into its own slice of `scratch` (threads x
// slice_floats): the slice is then read from L2, and the weights cross memory
// once (DirectConvKernel::run_fused). With reduction blocks, a group's block
// is packed before the thread's sweep of that block. pack: ConvPrepare::direct_group.
struct DirectGroupWeights {
  const float* w;      // K x C x R x S, as the caller gave them
  const float* scale;  // K values (folded batch-norm) or null
  int64_t K, C, R, S;
  float* scratch;
  int64_t slice_floats;  // >= one group's packed floats of one reduction block
  void (*pack)(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int kb, int cb,
               int64_t group, int64_t c0, int64_t c1, float* dst);
};

// Direct convolution, output in the channel-blocked layout NCHW[B]c (B =
// vector lanes), input blocked too or plain NCHW (DirectSchedule::plain_input).
// run(): x is the zero-padded input (g.H, g.W are the padded sizes, pads 0):
// ceil(C/B) x H x W x B when blocked, C x H x W when plain; y the blocked
// output ceil(K/B) x Ho x Wo x B; ep.bias (if any) holds ceil(K/B)*B values
// and ep.residual (if any) is blocked like y; u comes from pack_weights with
// kb = tile_kb[s.tile] and cb = plain_input ? 1 : block.
// Any R, S, stride, dilation; groups 1.
struct DirectConvKernel {
  int block;  // B
  int tile_count;
  const int* tile_n;
  const int* tile_kb;
  int64_t (*packed_weights_floats)(int64_t K, int64_t C, int64_t R, int64_t S, int cb);
  void (*pack_weights)(const float* w, int64_t K, int64_t C, int64_t R, int64_t S, int kb, int cb, float* u);
  // xb <- x (C x H x W, NCHW) blocked, with pt/pb rows and pl/pr columns of zeros around.
  void (*to_blocked)(const float* x, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t pb,
                     int64_t pr, float* xb, int threads);
  // y (K x P, NCHW) <- min(max(yb + residual, lo), hi), yb blocked (ceil(K/B) x P x B).
  void (*from_blocked)(const float* yb, int64_t K, int64_t P, const float* residual, float lo, float hi,
                       float* y, int threads);
  void (*run)(const ConvGeometry& g, const float* x, const float* u, const ConvEpilogue& ep, float* y,
              const DirectSchedule& s, int threads);
  // run() with the weights packed per group on the way (DirectGroupWeights).
  void (*run_fused)(const ConvGeometry& g, const float* x, const DirectGroupWeights& w, const ConvEpilogue& ep,
                    float* y, const DirectSchedule& s, int threads);
};

// Depthwise (groups == C, K == C * multiplier) convolution, any R, S, strides,
// dilations, pads, one image. x is NCHW (C x H x W) or, x_blocked, NCHW[B]c
// (ceil(C/B) x H x W x B); y and ep.residual are NCHW or, y_blocked, NCHW[B]c:
// the kernel works on channel blocks, so blocked tensors need no conversion.
struct DepthwiseConvKernel {
  void (*run)(const ConvGeometry& g, int64_t multiplier, const float* x, bool x_blocked, const float* w,
              const ConvEpilogue& ep, float* y, bool y_blocked, int threads);
};

// Weight preparation at memory speed (codegen/conv_prepare.py): the layouts of
// DirectConvKernel::pack_weights and WinogradKernel::pack_weights, with the
// batch-norm scale (K values, or null) multiplied in, vectorized and on
// `threads` pool threads. Every float of u is written (u need not be cleared).
struct ConvPrepare {
  void (*direct)(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int kb, int cb,
                 float* u, int threads);
  void (*winograd_f2)(const float* w, const float* scale, int64_t K, int64_t C, float* u, int threads);
  void (*winograd_f4)(const float* w, const float* scale, int64_t K, int64_t C, float* u, int threads);
  // One group of direct()'s layout, channel groups [c0, c1) of cb channels (the floats at
  // u + group * kb * taps * cb * B + c0 * R * S * cb * kbn * B), into dst, on this thread.
  void (*direct_group)(const float* w, const float* scale, int64_t K, int64_t C, int64_t R, int64_t S, int kb, int cb,
                       int64_t group, int64_t c0, int64_t c1, float* dst);
};

struct ConvKernels {
  const char* isa_suffix;        // avx512f | avx2 | sse42 | scalar | neon | sve
  DirectConvKernel direct;
  DepthwiseConvKernel depthwise;
  WinogradKernel winograd_f2;
  WinogradKernel winograd_f4;
  ConvPrepare prepare;
};

}  // namespace detail
}  // namespace autoconfig
