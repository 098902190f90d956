// conv2d on the GEMM kernels: 1x1 unit-stride layers are a GEMM per image and
// group (W_g [K/G x C/G] times X_g [C/G x H*W]) with no copy; every other layer
// unrolls the input patches (im2col) into per-thread scratch first. The
// epilogue (bias, folded batch-norm, residual, activation) is fused into the
// GEMM's store: per output channel = per GEMM row.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"
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
  if (static_cast<int>(a.act) < 0 || static_cast<int>(a.act) >= kNumActivations)
    return Status::Error(p + "unknown activation");
  if (a.threads < 0) return Status::Error(p + "threads must be >= 0");
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

int64_t conv2d_output_h(const Conv2dArgs& a) {
  return (a.H + a.pad_top + a.pad_bottom - a.dilation_h * (a.R - 1) - 1) / std::max<int64_t>(a.stride_h, 1) + 1;
}

int64_t conv2d_output_w(const Conv2dArgs& a) {
  return (a.W + a.pad_left + a.pad_right - a.dilation_w * (a.S - 1) - 1) / std::max<int64_t>(a.stride_w, 1) + 1;
}

const char* conv2d_algorithm(const Conv2dArgs& a) { return is_pointwise(a) ? "gemm-1x1" : "im2col-gemm"; }

namespace {

// Folded batch-norm: weight rows scaled, bias and shift folded into one row bias.
void fold(const Conv2dArgs& a, std::vector<float>* w_out, std::vector<float>* bias_out) {
  const int64_t CRS = (a.C / a.groups) * a.R * a.S;
  w_out->assign(a.w, a.w + a.K * CRS);
  if (a.scale)
    for (int64_t k = 0; k < a.K; ++k)
      for (int64_t i = 0; i < CRS; ++i) (*w_out)[k * CRS + i] *= a.scale[k];
  bias_out->clear();
  if (a.bias || a.scale || a.shift) {
    bias_out->resize(static_cast<size_t>(a.K));
    for (int64_t k = 0; k < a.K; ++k) {
      const float b = a.bias ? a.bias[k] : 0.0f;
      (*bias_out)[k] = (a.scale ? a.scale[k] * b : b) + (a.shift ? a.shift[k] : 0.0f);
    }
  }
}

// The convolution with weights already folded (w: K x C/G x R x S; row_bias: K or null).
Status run_folded(const Conv2dArgs& a, const float* w, const float* row_bias) {
  const int64_t Ho = conv2d_output_h(a), Wo = conv2d_output_w(a), P = Ho * Wo;
  const int64_t G = a.groups, Cg = a.C / G, Kg = a.K / G, CRS = Cg * a.R * a.S;
  const bool pointwise = is_pointwise(a);
  std::vector<float> cols;
  if (!pointwise) cols.resize(static_cast<size_t>(CRS * P));
  for (int64_t n = 0; n < a.N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const float* xg = a.x + (n * a.C + g * Cg) * a.H * a.W;
      const float* b = xg;
      if (!pointwise) {
        im2col(xg, Cg, a.H, a.W, a, Ho, Wo, cols.data());
        b = cols.data();
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
      gm.C = a.y + (n * a.K + g * Kg) * P;
      gm.ldc = P;
      if (a.residual) {
        gm.c_in = a.residual + (n * a.K + g * Kg) * P;
        gm.ld_cin = P;
        gm.beta = 1.0f;
      }
      gm.bias_row = row_bias ? row_bias + g * Kg : nullptr;
      gm.act = a.act;
      gm.threads = a.threads;
      Status st = gemm(gm);
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

}  // namespace

Status conv2d(const Conv2dArgs& a) {
  Status st = validate(a);
  if (!st.ok() || a.N == 0) return st;
  if (!a.scale && !a.shift && !a.bias) return run_folded(a, a.w, nullptr);
  std::vector<float> w, bias;
  fold(a, &w, &bias);
  return run_folded(a, w.data(), bias.empty() ? nullptr : bias.data());
}

Status PreparedConv2d::prepare(const Conv2dArgs& layer) {
  Status st = validate(layer, /*with_data=*/false);   // x and y come with run()
  if (!st.ok()) return st;
  layer_ = layer;
  fold(layer, &w_, &bias_);
  layer_.w = w_.data();
  layer_.bias = bias_.empty() ? nullptr : bias_.data();
  layer_.scale = layer_.shift = nullptr;
  layer_.x = nullptr;
  layer_.y = nullptr;
  layer_.residual = nullptr;
  ready_ = true;
  return Status::Ok();
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
  return run_folded(a, w_.data(), bias_.empty() ? nullptr : bias_.data());
}

}  // namespace autoconfig
