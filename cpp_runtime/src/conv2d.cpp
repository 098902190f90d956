// conv2d: argument checks, batch-norm folding, and dispatch to the algorithm
// the analytical model (or the spec's plan) chose for the layer:
//   direct       generated NCHW[B]c kernel; NCHW converted in and out here
//   gemm-1x1     pointwise layers: W_g [K/G x C/G] times X_g [C/G x H*W], no copy
//   im2col-gemm  patch matrix in per-thread scratch, then the GEMM
//   winograd-f2/f4              generated kernels on NCHW
//   depthwise                   generated kernel on channel blocks, NCHW or NCHW[B]c
// The epilogue (bias, folded batch-norm, residual, activation, clip) is fused
// into each kernel's store (for GEMM: per output channel = per GEMM row).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/conv_model.h"
#include "autoconfig/detail/registry.h"
#include "autoconfig/detail/runtime.h"

namespace autoconfig {
namespace {

std::string i2s(int64_t v) { return std::to_string(v); }

bool is_pointwise(const Conv2dArgs& a) {
  return a.R == 1 && a.S == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_top == 0 && a.pad_left == 0 &&
         a.pad_bottom == 0 && a.pad_right == 0;
}

// The layer's shapes and attributes; with_data: also the tensors of a call.
Status validate(const Conv2dArgs& a, bool with_data = true) {
  const std::string p = "conv2d: ";
  if (a.N < 0 || a.C < 1 || a.H < 1 || a.W < 1)
    return Status::Error(p + "input must be N x C x H x W with N >= 0 and C, H, W >= 1 (got " + i2s(a.N) + "x" +
                         i2s(a.C) + "x" + i2s(a.H) + "x" + i2s(a.W) + ")");
  if (a.K < 1 || a.R < 1 || a.S < 1) return Status::Error(p + "weights must have K, R, S >= 1");
  if (a.groups < 1) return Status::Error(p + "groups must be >= 1, got " + i2s(a.groups));
  if (a.C % a.groups || a.K % a.groups)
    return Status::Error(p + "channels C=" + i2s(a.C) + " and K=" + i2s(a.K) + " must be divisible by groups=" +
                         i2s(a.groups));
  if (a.stride_h < 1 || a.stride_w < 1) return Status::Error(p + "strides must be >= 1");
  if (a.dilation_h < 1 || a.dilation_w < 1) return Status::Error(p + "dilations must be >= 1");
  if (a.pad_top < 0 || a.pad_left < 0 || a.pad_bottom < 0 || a.pad_right < 0)
    return Status::Error(p + "pads must be >= 0");
  if (conv2d_output_h(a) < 1 || conv2d_output_w(a) < 1)
    return Status::Error(p + "output size " + i2s(conv2d_output_h(a)) + "x" + i2s(conv2d_output_w(a)) +
                         " is empty: the dilated kernel is larger than the padded input");
  if (!a.w) return Status::Error(p + "w must not be null");
  if (with_data && a.N > 0 && (!a.x || !a.y)) return Status::Error(p + "x and y must not be null");
  if (a.act != Activation::None && a.act != Activation::Relu && a.act != Activation::Relu6)
    return Status::Error(p + "activation must be none, relu or relu6 (got " + activation_name(a.act) +
                         "); use clip_lo/clip_hi for clip");
  if (!(a.clip_lo <= a.clip_hi)) return Status::Error(p + "clip_lo must be <= clip_hi");
  if (a.threads < 0) return Status::Error(p + "threads must be >= 0");
  if (a.direct_tile < -1 || a.direct_input < -1 || a.direct_input > 1 || a.direct_order < -1 || a.direct_order > 1 ||
      a.direct_cblocks == 0 || a.direct_cblocks < -1)
    return Status::Error(p + "direct_tile, direct_input (0, 1), direct_order (0, 1) and direct_cblocks (>= 1) must "
                             "be -1 (the model's choice) or a valid value");
  if (const detail::Registry* r = detail::active_registry(); r && a.direct_tile >= r->conv->direct.tile_count)
    return Status::Error(p + "direct_tile " + i2s(a.direct_tile) + " is not in this build's table of " +
                         i2s(r->conv->direct.tile_count) + " tiles");
  if (!(a.tolerance >= 0.0f)) return Status::Error(p + "tolerance must be >= 0 (0: no limit)");
  for (ConvLayout l : {a.x_layout, a.y_layout})
    if (l != ConvLayout::NCHW && l != ConvLayout::Blocked)
      return Status::Error(p + "x_layout and y_layout must be ConvLayout::NCHW or ConvLayout::Blocked");
  return Status::Ok();
}

// cols[(c*R + r)*S + s][oh*Wo + ow] = x[c][oh*sh - pt + r*dh][ow*sw - pl + s*dw] (0 outside).
void im2col(const float* x, int64_t C, int64_t H, int64_t W, const Conv2dArgs& a, int64_t Ho, int64_t Wo,
            float* cols) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < a.R; ++r)
      for (int64_t s = 0; s < a.S; ++s) {
        float* dst = cols + ((c * a.R + r) * a.S + s) * Ho * Wo;
        const float* src = x + c * H * W;
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * a.stride_h - a.pad_top + r * a.dilation_h;
          float* d = dst + oh * Wo;
          if (ih < 0 || ih >= H) {
            std::memset(d, 0, sizeof(float) * Wo);
            continue;
          }
          const float* row = src + ih * W;
          const int64_t iw0 = -a.pad_left + s * a.dilation_w;
          if (a.stride_w == 1 && iw0 >= 0 && iw0 + Wo <= W) {
            std::memcpy(d, row + iw0, sizeof(float) * Wo);
            continue;
          }
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t iw = ow * a.stride_w + iw0;
            d[ow] = (iw >= 0 && iw < W) ? row[iw] : 0.0f;
          }
        }
      }
}

}  // namespace

int64_t conv2d_output_h(const Conv2dLayer& a) {
  return (a.H + a.pad_top + a.pad_bottom - a.dilation_h * (a.R - 1) - 1) / std::max<int64_t>(a.stride_h, 1) + 1;
}

int64_t conv2d_output_w(const Conv2dLayer& a) {
  return (a.W + a.pad_left + a.pad_right - a.dilation_w * (a.S - 1) - 1) / std::max<int64_t>(a.stride_w, 1) + 1;
}

namespace {

using detail::ConvAlgorithm;
constexpr float kInf = __builtin_inff();

std::atomic<uint64_t> g_layout_conversions{0};
void count_conversion() { g_layout_conversions.fetch_add(1, std::memory_order_relaxed); }

// threads = 0: the rule gemm() uses (detail::default_threads) for the layer's flops.
int conv_threads(const Conv2dArgs& a) {
  if (a.threads > 0) return a.threads;
  const detail::Registry* r = detail::active_registry();
  const double flops = 2.0 * std::max<int64_t>(a.N, 1) * a.K * conv2d_output_h(a) * conv2d_output_w(a) *
                       (a.C / a.groups) * a.R * a.S;
  return r ? detail::default_threads(*r, flops) : 1;
}

// The epilogue's clamp: activation then clip.
void clamp_range(const Conv2dArgs& a, float* lo, float* hi) {
  float l = -kInf, h = kInf;
  if (a.act == Activation::Relu) l = 0.0f;
  if (a.act == Activation::Relu6) { l = 0.0f; h = 6.0f; }
  *lo = std::max(l, a.clip_lo);
  *hi = std::min(h, a.clip_hi);
}

bool is_clip(const Conv2dArgs& a) { return a.clip_lo > -kInf || a.clip_hi < kInf; }

// The algorithms that read w itself (the others read only pack_for's layout).
bool reads_w(ConvAlgorithm alg) {
  return alg == ConvAlgorithm::Gemm1x1 || alg == ConvAlgorithm::Im2colGemm || alg == ConvAlgorithm::Depthwise;
}

// Folded batch-norm: bias and shift folded into one row bias; with copy_w, the
// weights copied into w_out with their rows scaled (without it w_out stays
// empty: direct and Winograd multiply the scale in while packing).
void fold(const Conv2dArgs& a, bool copy_w, std::vector<float>* w_out, std::vector<float>* bias_out) {
  const int64_t CRS = (a.C / a.groups) * a.R * a.S;
  w_out->clear();
  if (copy_w) {
    w_out->reserve(static_cast<size_t>(a.K * CRS));
    for (int64_t k = 0; k < a.K; ++k) {  // a row is scaled while it is in L1: one pass over w
      w_out->insert(w_out->end(), a.w + k * CRS, a.w + (k + 1) * CRS);
      if (a.scale)
        for (float* r = w_out->data() + k * CRS; r < w_out->data() + (k + 1) * CRS; ++r) *r *= a.scale[k];
    }
  }
  bias_out->clear();
  if (a.bias || a.scale || a.shift) {
    bias_out->resize(static_cast<size_t>(a.K));
    for (int64_t k = 0; k < a.K; ++k) {
      const float b = a.bias ? a.bias[k] : 0.0f;
      (*bias_out)[k] = (a.scale ? a.scale[k] * b : b) + (a.shift ? a.shift[k] : 0.0f);
    }
  }
}

detail::ConvGeometry geometry(const Conv2dArgs& a) {
  return detail::ConvGeometry{a.C, a.H, a.W, a.K, a.R, a.S, a.stride_h, a.stride_w, a.pad_top, a.pad_left,
                              a.pad_bottom, a.pad_right, a.dilation_h, a.dilation_w,
                              conv2d_output_h(a), conv2d_output_w(a)};
}

// Floats of the weight layout the algorithm reads (0: it reads w itself).
int64_t packed_floats(const detail::ConvChoice& ch, const Conv2dArgs& a, const detail::ConvKernels& k) {
  if (ch.algorithm == ConvAlgorithm::Direct)
    return k.direct.packed_weights_floats(a.K, a.C, a.R, a.S, ch.direct.plain_input ? 1 : k.direct.block);
  if (ch.algorithm == ConvAlgorithm::WinogradF2) return k.winograd_f2.packed_weights_floats(a.K, a.C);
  if (ch.algorithm == ConvAlgorithm::WinogradF4) return k.winograd_f4.packed_weights_floats(a.K, a.C);
  return 0;
}

// Weights in the layout the algorithm reads, into packed (packed_floats()
// floats; every one written), the batch-norm scale (K or null) multiplied in
// the same pass, on `threads` threads; bias padded to whole blocks for direct.
// The direct kernel's bias: K values padded to whole blocks (empty without a bias).
void block_bias(const Conv2dArgs& a, const detail::ConvKernels& k, const float* bias, std::vector<float>* out) {
  out->clear();
  if (!bias) return;
  const int64_t B = k.direct.block;
  out->assign(static_cast<size_t>((a.K + B - 1) / B * B), 0.0f);
  std::copy(bias, bias + a.K, out->begin());
}

void pack_for(const detail::ConvChoice& ch, const Conv2dArgs& a, const detail::ConvKernels& k, const float* w,
              const float* scale, const float* bias, int threads, float* packed, std::vector<float>* bias_blocked) {
  bias_blocked->clear();
  if (ch.algorithm == ConvAlgorithm::Direct) {
    const int cb = ch.direct.plain_input ? 1 : k.direct.block;
    k.prepare.direct(w, scale, a.K, a.C, a.R, a.S, k.direct.tile_kb[ch.direct.tile], cb, packed, threads);
    block_bias(a, k, bias, bias_blocked);
  } else if (ch.algorithm == ConvAlgorithm::WinogradF2) {
    k.prepare.winograd_f2(w, scale, a.K, a.C, packed, threads);
  } else if (ch.algorithm == ConvAlgorithm::WinogradF4) {
    k.prepare.winograd_f4(w, scale, a.K, a.C, packed, threads);
  }
}

void clamp_all(float* y, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
}

// GEMM paths (gemm-1x1, im2col-gemm) on one NCHW image: w folded K x C/G x R x S, row_bias K or null.
Status run_gemm(const Conv2dArgs& a, const float* x, float* y, const float* residual, const float* w,
                const float* row_bias, int threads) {
  const int64_t Ho = conv2d_output_h(a), Wo = conv2d_output_w(a), P = Ho * Wo;
  const int64_t G = a.groups, Cg = a.C / G, Kg = a.K / G, CRS = Cg * a.R * a.S;
  const bool pointwise = is_pointwise(a);
  const bool clip = is_clip(a);
  float* cols = pointwise ? nullptr : detail::thread_scratch(detail::kScratchConv0, static_cast<size_t>(CRS * P));
  for (int64_t g = 0; g < G; ++g) {
    const float* xg = x + g * Cg * a.H * a.W;
    const float* b = xg;
    if (!pointwise) {
      im2col(xg, Cg, a.H, a.W, a, Ho, Wo, cols);
      b = cols;
    }
    GemmArgs gm;
    gm.M = Kg;
    gm.N = P;
    gm.K = CRS;
    gm.A = w + g * Kg * CRS;
    gm.rs_a = CRS;
    gm.cs_a = 1;
    gm.B = b;
    gm.rs_b = P;
    gm.cs_b = 1;
    gm.C = y + g * Kg * P;
    gm.ldc = P;
    if (residual) {
      gm.c_in = residual + g * Kg * P;
      gm.ld_cin = P;
      gm.beta = 1.0f;
    }
    gm.bias_row = row_bias ? row_bias + g * Kg : nullptr;
    gm.act = clip ? Activation::None : a.act;
    gm.threads = threads;
    Status st = gemm(gm);
    if (!st.ok()) return st;
    if (clip) {
      float lo, hi;
      clamp_range(a, &lo, &hi);
      clamp_all(gm.C, Kg * P, lo, hi);
    }
  }
  return Status::Ok();
}

// dst (C x (H+pt+pb) x (W+pl+pr) x cb) <- src (C/cb x H x W x cb) with zeros around: cb = 1
// for plain NCHW, B for a blocked tensor (C rounded up to whole blocks).
void pad_planes(const float* src, int64_t planes, int64_t H, int64_t W, int64_t cb, int64_t pt, int64_t pl,
                int64_t pb, int64_t pr, float* dst) {
  const int64_t Wp = W + pl + pr, row = W * cb;
  for (int64_t c = 0; c < planes; ++c) {
    float* d = dst + c * (H + pt + pb) * Wp * cb;
    std::memset(d, 0, sizeof(float) * pt * Wp * cb);
    for (int64_t h = 0; h < H; ++h) {
      float* dr = d + (pt + h) * Wp * cb;
      std::memset(dr, 0, sizeof(float) * pl * cb);
      std::memcpy(dr + pl * cb, src + (c * H + h) * row, sizeof(float) * row);
      std::memset(dr + (pl + W) * cb, 0, sizeof(float) * pr * cb);
    }
    std::memset(d + (pt + H) * Wp * cb, 0, sizeof(float) * pb * Wp * cb);
  }
}

// Direct on one image. x: NCHW or blocked (a.x_layout); y and residual: NCHW or blocked (a.y_layout).
// gw (or null): the weights are packed group by group on the way (run_fused), packed is unused.
void run_direct(const Conv2dArgs& a, const detail::DirectSchedule& s, const detail::ConvKernels& k, const float* x,
                float* y, const float* residual, const float* packed, const detail::DirectGroupWeights* gw,
                const float* bias_blocked, float lo, float hi, int threads) {
  const int64_t B = k.direct.block;
  detail::ConvGeometry gb = geometry(a);
  const int64_t P = gb.Ho * gb.Wo;
  const bool pointwise = is_pointwise(a);
  if (pointwise) {  // one row of H*W columns: wider tiles, fewer edges
    gb.H = 1; gb.W = a.H * a.W; gb.Ho = 1; gb.Wo = P;
  }
  const int64_t Hp = gb.H + gb.pad_top + gb.pad_bottom, Wp = gb.W + gb.pad_left + gb.pad_right;
  const bool pads = Hp != gb.H || Wp != gb.W;
  const int64_t cblocks = (a.C + B - 1) / B, kblocks = (a.K + B - 1) / B;
  const float* xin = x;
  if (s.plain_input) {
    if (pads) {
      float* xp = detail::thread_scratch(detail::kScratchConv0, static_cast<size_t>(a.C * Hp * Wp));
      pad_planes(x, a.C, gb.H, gb.W, 1, gb.pad_top, gb.pad_left, gb.pad_bottom, gb.pad_right, xp);
      xin = xp;
    }
  } else if (a.x_layout == ConvLayout::Blocked) {
    if (pads) {
      float* xp = detail::thread_scratch(detail::kScratchConv0, static_cast<size_t>(cblocks * Hp * Wp * B));
      pad_planes(x, cblocks, gb.H, gb.W, B, gb.pad_top, gb.pad_left, gb.pad_bottom, gb.pad_right, xp);
      xin = xp;
    }
  } else {
    float* xb = detail::thread_scratch(detail::kScratchConv0, static_cast<size_t>(cblocks * Hp * Wp * B));
    k.direct.to_blocked(x, a.C, gb.H, gb.W, gb.pad_top, gb.pad_left, gb.pad_bottom, gb.pad_right, xb, threads);
    count_conversion();
    xin = xb;
  }
  gb.H = Hp;
  gb.W = Wp;
  gb.pad_top = gb.pad_left = gb.pad_bottom = gb.pad_right = 0;
  if (a.y_layout == ConvLayout::Blocked) {  // residual and clamp in the kernel's store
    detail::ConvEpilogue ep{bias_blocked, residual, lo, hi};
    if (gw)
      k.direct.run_fused(gb, xin, *gw, ep, y, s, threads);
    else
      k.direct.run(gb, xin, packed, ep, y, s, threads);
    // Lanes past K multiply zero weights: a NaN or inf input leaves NaN there,
    // which the next layer's zero weights would spread to every channel.
    if (const int64_t kn = a.K % B) {
      float* last = y + (kblocks - 1) * P * B;
      for (int64_t p = 0; p < P; ++p) std::fill(last + p * B + kn, last + (p + 1) * B, 0.0f);
    }
    return;
  }
  float* yb = detail::thread_scratch(detail::kScratchConv1, static_cast<size_t>(kblocks * P * B));
  // An NCHW residual is added on the way back to NCHW, so the clamp waits for it.
  detail::ConvEpilogue ep{bias_blocked, nullptr, residual ? -kInf : lo, residual ? kInf : hi};
  if (gw)
    k.direct.run_fused(gb, xin, *gw, ep, yb, s, threads);
  else
    k.direct.run(gb, xin, packed, ep, yb, s, threads);
  count_conversion();
  if (residual)
    k.direct.from_blocked(yb, a.K, P, residual, lo, hi, y, threads);
  else
    k.direct.from_blocked(yb, a.K, P, nullptr, -kInf, kInf, y, threads);
}

// An NCHW algorithm (GEMM, Winograd) on one NCHW image.
Status run_nchw(const Conv2dArgs& a, ConvAlgorithm alg, const detail::ConvKernels& k, const float* x, float* y,
                const float* residual, const float* w, const float* bias, const float* packed, int threads) {
  if (alg == ConvAlgorithm::Gemm1x1 || alg == ConvAlgorithm::Im2colGemm)
    return run_gemm(a, x, y, residual, w, bias, threads);
  const detail::ConvGeometry g = geometry(a);
  detail::ConvEpilogue ep;
  clamp_range(a, &ep.lo, &ep.hi);
  ep.bias = bias;
  ep.residual = residual;
  switch (alg) {
    case ConvAlgorithm::WinogradF2: k.winograd_f2.run(g, x, packed, ep, y, threads); break;
    case ConvAlgorithm::WinogradF4: k.winograd_f4.run(g, x, packed, ep, y, threads); break;
    default: return Status::Error("conv2d: internal error: unknown algorithm");
  }
  return Status::Ok();
}

// The chosen algorithm with prepared weights: w folded, bias folded (K or
// null), packed / bias_blocked as pack_for() made them. Tensors in the
// layouts a.x_layout / a.y_layout; an NCHW algorithm on blocked tensors
// converts around itself (direct and depthwise read and write both layouts).
// gw (or null): direct packs its weights group by group on the way.
Status run_algorithm(const Conv2dArgs& a, const detail::ConvChoice& ch, const float* w, const float* bias,
                     const float* packed, const float* bias_blocked, int threads,
                     const detail::DirectGroupWeights* gw = nullptr) {
  const detail::Registry* r = detail::active_registry();
  const detail::ConvKernels& k = *r->conv;
  const int64_t B = k.direct.block;
  const int64_t Ho = conv2d_output_h(a), Wo = conv2d_output_w(a), P = Ho * Wo;
  const bool x_blocked = a.x_layout == ConvLayout::Blocked, y_blocked = a.y_layout == ConvLayout::Blocked;
  const int64_t in_size = (x_blocked ? (a.C + B - 1) / B * B : a.C) * a.H * a.W;
  const int64_t out_size = (y_blocked ? (a.K + B - 1) / B * B : a.K) * P;
  float lo, hi;
  clamp_range(a, &lo, &hi);
  for (int64_t n = 0; n < a.N; ++n) {
    const float* x = a.x + n * in_size;
    float* y = a.y + n * out_size;
    const float* res = a.residual ? a.residual + n * out_size : nullptr;
    if (ch.algorithm == ConvAlgorithm::Direct) {
      run_direct(a, ch.direct, k, x, y, res, packed, gw, bias_blocked, lo, hi, threads);
      continue;
    }
    if (ch.algorithm == ConvAlgorithm::Depthwise) {  // works on channel blocks: any layout, no conversion
      const detail::ConvEpilogue ep{bias, res, lo, hi};
      k.depthwise.run(geometry(a), a.K / a.C, x, x_blocked, w, ep, y, y_blocked, threads);
      continue;
    }
    if (x_blocked) {
      float* xn = detail::thread_scratch(detail::kScratchLayoutIn, static_cast<size_t>(a.C * a.H * a.W));
      k.direct.from_blocked(x, a.C, a.H * a.W, nullptr, -kInf, kInf, xn, threads);
      count_conversion();
      x = xn;
    }
    float* yn = y;
    if (y_blocked) {
      yn = detail::thread_scratch(detail::kScratchLayoutOut, static_cast<size_t>(a.K * P));
      if (res) {
        float* rn = detail::thread_scratch(detail::kScratchLayoutRes, static_cast<size_t>(a.K * P));
        k.direct.from_blocked(res, a.K, P, nullptr, -kInf, kInf, rn, threads);
        count_conversion();
        res = rn;
      }
    }
    Status st = run_nchw(a, ch.algorithm, k, x, yn, res, w, bias, packed, threads);
    if (!st.ok()) return st;
    if (y_blocked) {
      k.direct.to_blocked(yn, a.K, Ho, Wo, 0, 0, 0, 0, y, threads);
      count_conversion();
    }
  }
  return Status::Ok();
}

detail::ConvContext context_of(const Conv2dArgs& a) {
  detail::ConvContext c;
  c.in_blocked = a.x_layout == ConvLayout::Blocked;
  c.out_blocked = a.y_layout == ConvLayout::Blocked;
  return c;
}

}  // namespace

Conv2dChoice conv2d_choice(const Conv2dArgs& a, bool prepared) {
  Conv2dChoice c;
  if (!validate(a, /*with_data=*/false).ok() || !detail::active_registry()) return c;
  const int threads = conv_threads(a);
  const detail::ConvChoice ch = detail::choose_conv(a, threads, a.algorithms, context_of(a), prepared);
  c.prepared = prepared;
  c.algorithm = detail::conv_algorithm_name(ch.algorithm);
  c.tile = ch.direct.tile;
  c.plain_input = ch.direct.plain_input;
  c.groups_inner = ch.direct.groups_inner;
  c.chunk = ch.direct.chunk;
  c.cblocks = ch.direct.cblocks;
  c.pack_groups = ch.algorithm == ConvAlgorithm::Direct && ch.fused_prepare;
  c.threads = threads;
  c.planned = ch.planned;
  for (int i = 0; i < static_cast<int>(ConvAlgorithm::Count); ++i) {
    c.estimates.emplace_back(detail::conv_algorithm_name(static_cast<ConvAlgorithm>(i)), ch.estimates[i]);
    c.prepare.emplace_back(detail::conv_algorithm_name(static_cast<ConvAlgorithm>(i)), ch.prepare[i]);
  }
  return c;
}

const char* conv2d_algorithm(const Conv2dArgs& a) {
  if (!validate(a, /*with_data=*/false).ok() || !detail::active_registry()) return "";
  return detail::conv_algorithm_name(
      detail::choose_conv(a, conv_threads(a), a.algorithms, context_of(a), /*prepared=*/false).algorithm);
}

namespace {

Status check_choice(const Conv2dArgs& a, const detail::ConvChoice& ch) {
  const unsigned bit = 1u << static_cast<int>(ch.algorithm);
  if (!(a.algorithms & bit) || ch.estimates[static_cast<int>(ch.algorithm)] < 0)
    return Status::Error(a.tolerance > 0 ? "conv2d: none of the requested algorithms applies to this layer "
                                           "within the tolerance " + std::to_string(a.tolerance)
                                         : "conv2d: none of the requested algorithms applies to this layer");
  return Status::Ok();
}

// Threads for a layout conversion of C channels (one block of B per item).
int layout_threads(int64_t C, int threads) {
  const detail::Registry* r = detail::active_registry();
  const int64_t blocks = (C + r->conv->direct.block - 1) / r->conv->direct.block;
  const int t = threads > 0 ? threads : detail::available_cpus();
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(t, blocks)));
}

Status check_layout_args(const float* src, int64_t N, int64_t C, int64_t H, int64_t W, const float* dst,
                         int threads, const char* fn) {
  const std::string p = std::string(fn) + ": ";
  if (N < 0 || C < 1 || H < 1 || W < 1)
    return Status::Error(p + "expected N >= 0 and C, H, W >= 1 (got " + i2s(N) + "x" + i2s(C) + "x" + i2s(H) + "x" +
                         i2s(W) + ")");
  if (N > 0 && (!src || !dst)) return Status::Error(p + "tensors must not be null");
  if (threads < 0) return Status::Error(p + "threads must be >= 0");
  if (!detail::active_registry()) return check_isa();
  return Status::Ok();
}

}  // namespace

int conv2d_block() {
  const detail::Registry* r = detail::active_registry();
  return r ? r->conv->direct.block : 0;
}

uint64_t conv2d_layout_conversions() { return g_layout_conversions.load(std::memory_order_relaxed); }

std::vector<std::pair<int, int>> conv2d_direct_tiles() {
  std::vector<std::pair<int, int>> out;
  if (const detail::Registry* r = detail::active_registry())
    for (int i = 0; i < r->conv->direct.tile_count; ++i)
      out.emplace_back(r->conv->direct.tile_n[i], r->conv->direct.tile_kb[i]);
  return out;
}

Status conv2d_to_blocked(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, float* xb, int threads) {
  Status st = check_layout_args(x, N, C, H, W, xb, threads, "conv2d_to_blocked");
  if (!st.ok()) return st;
  const detail::DirectConvKernel& d = detail::active_registry()->conv->direct;
  const int64_t Cp = (C + d.block - 1) / d.block * d.block;
  for (int64_t n = 0; n < N; ++n)
    d.to_blocked(x + n * C * H * W, C, H, W, 0, 0, 0, 0, xb + n * Cp * H * W, layout_threads(C, threads));
  return Status::Ok();
}

Status conv2d_from_blocked(const float* xb, int64_t N, int64_t C, int64_t H, int64_t W, float* x, int threads) {
  Status st = check_layout_args(xb, N, C, H, W, x, threads, "conv2d_from_blocked");
  if (!st.ok()) return st;
  const detail::DirectConvKernel& d = detail::active_registry()->conv->direct;
  const int64_t Cp = (C + d.block - 1) / d.block * d.block;
  for (int64_t n = 0; n < N; ++n)
    d.from_blocked(xb + n * Cp * H * W, C, H * W, nullptr, -kInf, kInf, x + n * C * H * W,
                   layout_threads(C, threads));
  return Status::Ok();
}

namespace {

// What a one-off call has prepared: the choice (run + prepare), the folded
// bias and, for the algorithms that read w, the scaled copy of w (else empty:
// the packed weights carry the scale), and the packed weights in this
// thread's scratch.
struct OneOffWeights {
  detail::ConvChoice choice;
  int threads = 1;
  std::vector<float> w, bias, bias_blocked;
  float* packed = nullptr;
  bool fused = false;  // direct packs group by group in the run (choice.fused_prepare)
  detail::DirectGroupWeights group{};
  const float* weights(const Conv2dArgs& a) const { return w.empty() ? a.w : w.data(); }
  const float* row_bias() const { return bias.empty() ? nullptr : bias.data(); }
  const float* blocked_bias() const { return bias_blocked.empty() ? nullptr : bias_blocked.data(); }
};

// The per-group packing a fused direct run does (direct::run_fused), alone:
// the run's threads, each packing, block by block, the groups its work items
// touch (the run's split: items (group, row chunk) groups outermost, cut in
// equal contiguous ranges) into its own slice.
struct GroupPackJob {
  const Conv2dArgs* a;
  const detail::DirectGroupWeights* gw;
  int kb, cb;
  int64_t groups, rowchunks, cgroups, nblocks;
};

void group_pack_thread(void* ctx, int tid, int nthreads) {
  const GroupPackJob& j = *static_cast<const GroupPackJob*>(ctx);
  const int64_t items = j.groups * j.rowchunks;
  const int64_t lo = items * tid / nthreads, hi = items * (tid + 1) / nthreads;
  if (lo >= hi) return;
  float* own = j.gw->scratch + tid * j.gw->slice_floats;
  for (int64_t blk = 0; blk < j.nblocks; ++blk) {
    const int64_t c0 = j.cgroups * blk / j.nblocks, c1 = j.cgroups * (blk + 1) / j.nblocks;
    if (c0 == c1) continue;
    for (int64_t g = lo / j.rowchunks; g <= (hi - 1) / j.rowchunks; ++g)
      j.gw->pack(j.a->w, j.a->scale, j.a->K, j.a->C, j.a->R, j.a->S, j.kb, j.cb, g, c0, c1, own);
  }
}

// The fused direct path (ConvChoice::fused_prepare): one slice of scratch per
// thread for a group's packed weights of one reduction block, which run_fused
// fills just before the thread computes that block of the group.
// pack_seconds (or null): the time of the packing the run does, on the run's
// threads, each over its own groups (GroupPackJob); one thread packs them all
// one after the other at threads = 1.
Status prepare_fused(const Conv2dArgs& a, const detail::ConvKernels& k, OneOffWeights* p, double* pack_seconds) {
  const int64_t B = k.direct.block, cb = p->choice.direct.plain_input ? 1 : B;
  const int kb = k.direct.tile_kb[p->choice.direct.tile];
  const int64_t cgroups = (a.C + cb - 1) / cb;
  const int64_t nblocks = std::max<int64_t>(1, p->choice.direct.cblocks);
  // One group of one block: kb blocks of B output channels x the block's
  // channel groups (run_fused's [c0, c1) hold at most ceil(cgroups / nblocks))
  // x every tap; 64-byte slices (no shared lines).
  const int64_t group = int64_t{kb} * B * ((cgroups + nblocks - 1) / nblocks) * cb * a.R * a.S;
  const int64_t slice = (group + 15) / 16 * 16;
  float* scratch = detail::thread_scratch(detail::kScratchWeights, static_cast<size_t>(slice * p->threads));
  if (!scratch) return Status::Error("conv2d: out of memory for the packed weights");
  const auto t0 = std::chrono::steady_clock::now();
  fold(a, false, &p->w, &p->bias);
  block_bias(a, k, p->row_bias(), &p->bias_blocked);
  p->fused = true;
  p->group = detail::DirectGroupWeights{a.w, a.scale, a.K, a.C, a.R, a.S, scratch, slice, k.prepare.direct_group};
  if (pack_seconds) {
    // The run's work items (direct::launch): a pointwise layer is one row of H*W columns.
    const int64_t Ho = is_pointwise(a) ? 1 : conv2d_output_h(a);
    const int64_t Wo = is_pointwise(a) ? a.H * a.W : conv2d_output_w(a);
    const int64_t chunk = p->choice.direct.chunk < 1 || p->choice.direct.chunk > Wo ? Wo : p->choice.direct.chunk;
    GroupPackJob j;
    j.a = &a;
    j.gw = &p->group;
    j.kb = kb;
    j.cb = static_cast<int>(cb);
    j.groups = ((a.K + B - 1) / B + kb - 1) / kb;
    j.rowchunks = Ho * ((Wo + chunk - 1) / chunk);
    j.cgroups = cgroups;
    j.nblocks = std::min(nblocks, cgroups);  // as direct::launch clamps it
    const int64_t items = j.groups * j.rowchunks;
    detail::parallel_run(static_cast<int>(std::min<int64_t>(std::max(p->threads, 1), items)), &group_pack_thread, &j);
    *pack_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return Status::Ok();
}

// conv2d()'s prologue, shared with conv2d_prepare_weights() so the latter
// times exactly what a call pays: validate, choose by run + prepare, fold,
// pack. One pass over the caller's w, no cache: the packed weights live in
// this thread's scratch (grown once, reused by its later calls) and are
// rebuilt every call, so a w changed in place between calls is always seen.
// with_data: a.x and a.y are checked too; *skip is set when there is nothing
// to compute (N == 0), after validation. pack_seconds (or null): the time of
// the fold and pack alone, without the checks and the model's choice.
Status prepare_one_off(const Conv2dArgs& a, bool with_data, OneOffWeights* p, bool* skip,
                       double* pack_seconds = nullptr) {
  *skip = false;
  Status st = validate(a, with_data);
  if (!st.ok()) return st;
  if (with_data && a.N == 0) {
    *skip = true;
    return st;
  }
  if (!detail::active_registry()) return check_isa();
  p->threads = conv_threads(a);
  p->choice = detail::choose_conv(a, p->threads, a.algorithms, context_of(a), /*prepared=*/false);
  st = check_choice(a, p->choice);
  if (!st.ok()) return st;
  const detail::ConvKernels& k = *detail::active_registry()->conv;
  if (p->choice.algorithm == ConvAlgorithm::Direct && p->choice.fused_prepare)
    return prepare_fused(a, k, p, pack_seconds);
  const int64_t np = packed_floats(p->choice, a, k);
  p->packed = np ? detail::thread_scratch(detail::kScratchWeights, static_cast<size_t>(np)) : nullptr;
  if (np && !p->packed) return Status::Error("conv2d: out of memory for the packed weights");
  const auto t0 = std::chrono::steady_clock::now();
  fold(a, reads_w(p->choice.algorithm) && a.scale, &p->w, &p->bias);
  pack_for(p->choice, a, k, a.w, a.scale, p->row_bias(), p->threads, p->packed, &p->bias_blocked);
  if (pack_seconds) *pack_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

}  // namespace

Status conv2d(const Conv2dArgs& a) {
  OneOffWeights p;
  bool skip = false;
  Status st = prepare_one_off(a, /*with_data=*/true, &p, &skip);
  if (!st.ok() || skip) return st;
  return run_algorithm(a, p.choice, p.weights(a), p.row_bias(), p.packed, p.blocked_bias(), p.threads,
                       p.fused ? &p.group : nullptr);
}

Status conv2d_prepare_weights(const Conv2dArgs& a, double* pack_seconds) {
  OneOffWeights p;
  bool skip = false;
  return prepare_one_off(a, /*with_data=*/false, &p, &skip, pack_seconds);
}

Status PreparedConv2d::prepare(const Conv2dArgs& layer) {
  ready_ = false;
  Status st = validate(layer, /*with_data=*/false);   // x and y come with run()
  if (!st.ok()) return st;
  if (!detail::active_registry()) return check_isa();
  layer_ = layer;
  const detail::ConvChoice ch = detail::choose_conv(layer, conv_threads(layer), layer.algorithms, context_of(layer));
  st = check_choice(layer, ch);
  if (!st.ok()) return st;
  fold(layer, reads_w(ch.algorithm), &w_, &bias_);  // the layer keeps its own copy of what it reads
  algorithm_ = static_cast<int>(ch.algorithm);
  direct_tile_ = ch.direct.tile;
  direct_plain_ = ch.direct.plain_input;
  direct_groups_inner_ = ch.direct.groups_inner;
  direct_chunk_ = ch.direct.chunk;
  direct_cblocks_ = ch.direct.cblocks;
  const detail::ConvKernels& k = *detail::active_registry()->conv;
  packed_.resize(static_cast<size_t>(packed_floats(ch, layer, k)));
  pack_for(ch, layer, k, layer.w, layer.scale, bias_.empty() ? nullptr : bias_.data(), conv_threads(layer),
           packed_.data(), &bias_blocked_);
  // Only GEMM and depthwise read w (then w_ holds it); validate() wants it non-null.
  layer_.w = w_.empty() ? packed_.data() : w_.data();
  layer_.bias = bias_.empty() ? nullptr : bias_.data();
  layer_.scale = layer_.shift = nullptr;
  layer_.x = nullptr;
  layer_.y = nullptr;
  layer_.residual = nullptr;
  ready_ = true;
  return Status::Ok();
}

const char* PreparedConv2d::algorithm() const {
  return ready_ ? detail::conv_algorithm_name(static_cast<ConvAlgorithm>(algorithm_)) : "";
}

Status PreparedConv2d::run(const float* x, int64_t N, float* y, const float* residual, int threads) const {
  if (!ready_) return Status::Error("conv2d: PreparedConv2d::run before a successful prepare()");
  Conv2dArgs a = layer_;
  a.N = N;
  a.x = x;
  a.y = y;
  a.residual = residual;
  a.threads = threads;
  Status st = validate(a);
  if (!st.ok() || N == 0) return st;
  detail::ConvChoice ch;
  ch.algorithm = static_cast<ConvAlgorithm>(algorithm_);
  ch.direct.tile = direct_tile_;
  ch.direct.plain_input = direct_plain_;
  ch.direct.groups_inner = direct_groups_inner_;
  ch.direct.chunk = direct_chunk_;
  ch.direct.cblocks = direct_cblocks_;
  return run_algorithm(a, ch, w_.data(), bias_.empty() ? nullptr : bias_.data(), packed_.data(),
                       bias_blocked_.empty() ? nullptr : bias_blocked_.data(), conv_threads(a));
}

}  // namespace autoconfig
