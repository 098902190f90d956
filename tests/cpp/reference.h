// Plain double-precision loops written from the operator definitions
// (independent of autoconfig), each with the magnitude of the terms that
// meet in every output: the scale of its rounding error.
#pragma once
#include <cstdint>
#include <vector>

#include "autoconfig/autoconfig.h"

namespace kcheck {

struct Reference {
  std::vector<double> value;   // the exact result (up to double rounding)
  std::vector<double> pre;     // before the activation
  std::vector<double> mag;     // sum of |terms| of each output before the activation
};

double activation(double v, autoconfig::Activation a);

// C = act(alpha * op(A) op(B) + beta * C_in + bias_col[j] + bias_row[i]) with
// the strides of GemmArgs (c_in read before C is written); M x N row-major.
Reference gemm_reference(const autoconfig::GemmArgs& g);

// ONNX Conv, NCHW: act(scale * (conv + bias) + shift + residual) clipped.
// N x K x Ho x Wo.
Reference conv_reference(const autoconfig::Conv2dArgs& a);

}  // namespace kcheck
