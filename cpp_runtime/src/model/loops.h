// The executor's inner loops, compiled once per kernel variant with its ISA
// flags (the generated conv_kernels_<variant>.cpp includes loops_impl.h) and
// reached through the active variant's Registry::model_loops, as the conv
// kernels are: the operators (ops_*.cpp, compiled at the baseline ISA) keep
// the checks, the shapes and the threading, and call these on their chunks,
// so a portable build runs AVX2 / AVX-512 loops where the CPU has them and
// never executes an instruction the CPU lacks.
#pragma once
#include <cstdint>

namespace autoconfig {
namespace detail {

// The kinds from Erf on run on plain (nchw / row-major) tensors only (ops_elementwise.cpp checks).
enum class UnaryKind : int {
  Relu,
  LeakyRelu,
  Clip,
  Sigmoid,
  Silu,
  HardSigmoid,
  HardSwish,
  Tanh,
  Erf,
  Sqrt,
  Exp,
  Neg,
  Reciprocal,
  GeluErf,
  GeluTanh
};
// The kinds after Div run on plain tensors only; comparisons give 1 or 0 (FORMAT.md: booleans are float32 0/1).
enum class BinaryKind : int { Add, Sub, Mul, Div, Pow, Equal, Less, Greater, Max, Min };

// Taps [k0, k1) of a pooling window that fall inside the input (start: the
// window's first input index, padding included), and the taps inside the
// padded extent (count_include_pad's divisor).
struct PoolWindow {
  int64_t start, k0, k1, count_pad;
};

// One pooling layer over planes of H x W pixels of L lanes (nchw: L = 1;
// nchw{B}c: L = B): window bounds per output row (wh) and column (ww).
struct PoolShape {
  int64_t H, W, Ho, Wo, L, dh, dw;
  const PoolWindow* wh;
  const PoolWindow* ww;
  bool max, include_pad;
  // The output columns [c0, c1) whose window lies wholly inside the row (kw
  // taps, all counted), at stride sw: nchw runs them as vector loops.
  int64_t c0 = 0, c1 = 0, kw = 0, sw = 0;
};

struct ModelLoops {
  // y[i] = f(x[i]), i < n; p0, p1: LeakyRelu's alpha, Clip's bounds, HardSigmoid's alpha and beta.
  void (*unary)(UnaryKind k, const float* x, float* y, int64_t n, float p0, float p1);
  // y[i] = a[i * ia] op b[i * ib], i < n; ia, ib are 0 (a scalar) or 1.
  void (*binary)(BinaryKind k, const float* a, int64_t ia, const float* b, int64_t ib, float* y, int64_t n);
  // Output rows [r0, r1) of planes x Ho rows (row = plane * Ho + oh).
  void (*pool_rows)(const PoolShape& s, const float* x, float* y, int64_t r0, int64_t r1);
  // res[l] = max (or mean) over HW pixels of L lanes, l < L (L <= 64).
  void (*global_pool)(bool max, const float* x, int64_t HW, int64_t L, float* res);
};

}  // namespace detail
}  // namespace autoconfig
