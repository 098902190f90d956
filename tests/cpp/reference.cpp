#include "reference.h"

#include <algorithm>
#include <cmath>

namespace kcheck {

double activation(double v, autoconfig::Activation a) {
  using autoconfig::Activation;
  switch (a) {
    case Activation::Relu: return std::max(v, 0.0);
    case Activation::Relu6: return std::min(std::max(v, 0.0), 6.0);
    case Activation::GeluTanh:
      return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case Activation::GeluErf: return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    default: return v;
  }
}

Reference gemm_reference(const autoconfig::GemmArgs& g) {
  Reference r;
  const size_t n = static_cast<size_t>(g.M * g.N);
  r.value.resize(n);
  r.pre.resize(n);
  r.mag.resize(n);
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      double acc = 0.0, mag = 0.0;
      for (int64_t k = 0; k < g.K; ++k) {
        const double t = static_cast<double>(g.A[i * g.rs_a + k * g.cs_a]) * g.B[k * g.rs_b + j * g.cs_b];
        acc += t;
        mag += std::fabs(t);
      }
      double v = g.alpha * acc;
      mag *= std::fabs(g.alpha);
      auto add = [&](double t) {
        v += t;
        mag += std::fabs(t);
      };
      if (g.c_in) add(static_cast<double>(g.beta) * g.c_in[i * g.ld_cin + j]);
      if (g.bias_col) add(g.bias_col[j]);
      if (g.bias_row) add(g.bias_row[i]);
      const size_t o = static_cast<size_t>(i * g.N + j);
      r.pre[o] = v;
      r.mag[o] = mag;
      r.value[o] = activation(v, g.act);
    }
  return r;
}

Reference conv_reference(const autoconfig::Conv2dArgs& a) {
  const int64_t Ho = autoconfig::conv2d_output_h(a), Wo = autoconfig::conv2d_output_w(a);
  const int64_t Cg = a.C / a.groups, Kg = a.K / a.groups;
  double lo = a.clip_lo, hi = a.clip_hi;
  if (a.act == autoconfig::Activation::Relu || a.act == autoconfig::Activation::Relu6) lo = std::max(lo, 0.0);
  if (a.act == autoconfig::Activation::Relu6) hi = std::min(hi, 6.0);
  Reference r;
  const size_t n = static_cast<size_t>(a.N * a.K * Ho * Wo);
  r.value.resize(n);
  r.pre.resize(n);
  r.mag.resize(n);
  for (int64_t b = 0; b < a.N; ++b)
    for (int64_t k = 0; k < a.K; ++k) {
      const int64_t g = k / Kg;
      const double scale = a.scale ? a.scale[k] : 1.0, shift = a.shift ? a.shift[k] : 0.0;
      const double bias = a.bias ? a.bias[k] : 0.0;
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = 0.0, mag = 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t rr = 0; rr < a.R; ++rr)
              for (int64_t s = 0; s < a.S; ++s) {
                const int64_t ih = oh * a.stride_h - a.pad_top + rr * a.dilation_h;
                const int64_t iw = ow * a.stride_w - a.pad_left + s * a.dilation_w;
                if (ih < 0 || ih >= a.H || iw < 0 || iw >= a.W) continue;
                const double t = static_cast<double>(a.x[((b * a.C + g * Cg + c) * a.H + ih) * a.W + iw]) *
                                 a.w[((k * Cg + c) * a.R + rr) * a.S + s];
                acc += t;
                mag += std::fabs(t);
              }
          const size_t o = static_cast<size_t>(((b * a.K + k) * Ho + oh) * Wo + ow);
          double v = scale * (acc + bias) + shift;
          mag = std::fabs(scale) * (mag + std::fabs(bias)) + std::fabs(shift);
          if (a.residual) {
            v += a.residual[o];
            mag += std::fabs(a.residual[o]);
          }
          r.pre[o] = v;
          r.mag[o] = mag;
          r.value[o] = std::min(std::max(v, lo), hi);
        }
    }
  return r;
}

}  // namespace kcheck
