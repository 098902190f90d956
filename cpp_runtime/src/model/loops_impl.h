// The executor's inner loops (loops.h), for one kernel variant: included by
// that variant's generated conv_kernels_<variant>.cpp, so the vectorizer
// compiles them with the variant's ISA flags. Everything here has internal
// linkage (an unnamed namespace): each variant's copy stays its own, and no
// baseline caller can be linked to an AVX2 copy by the one-definition rule.
//
// Plain C++ for the vectorizer: unit-stride inner loops, lane counts as
// template constants where they are the conv blocks' (4, 8, 16), selects
// written so that a NaN operand falls through to the result, as numpy
// (relu is `x < 0 ? 0 : x`; max keeps a NaN from either side).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/loops.h"
#include "model/vmath.h"

namespace autoconfig {
namespace detail {
namespace {
namespace model_loops_impl {

constexpr float kInf = __builtin_inff();

inline float max_nan(float acc, float v) {
  const float m = v > acc ? v : acc;
  return v != v ? v : m;
}

template <class F>
inline void map(const float* __restrict x, float* y, int64_t n, const F& f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// x and y may be the same buffer (an in-place activation): no __restrict on y.
void unary(UnaryKind k, const float* x, float* y, int64_t n, float a, float b) {
  switch (k) {
    case UnaryKind::Relu: map(x, y, n, [](float v) { return v < 0.0f ? 0.0f : v; }); break;
    case UnaryKind::LeakyRelu: map(x, y, n, [a](float v) { return v < 0.0f ? a * v : v; }); break;
    case UnaryKind::Clip:
      map(x, y, n, [a, b](float v) {
        v = v < a ? a : v;
        return v > b ? b : v;
      });
      break;
    case UnaryKind::Sigmoid: map(x, y, n, [](float v) { return 1.0f / (1.0f + model::exp_approx(-v)); }); break;
    case UnaryKind::Silu: map(x, y, n, [](float v) { return v / (1.0f + model::exp_approx(-v)); }); break;
    case UnaryKind::HardSigmoid:
      map(x, y, n, [a, b](float v) {
        float t = a * v + b;
        t = t < 0.0f ? 0.0f : t;
        return t > 1.0f ? 1.0f : t;
      });
      break;
    case UnaryKind::HardSwish:
      map(x, y, n, [](float v) {
        float t = v * (1.0f / 6.0f) + 0.5f;
        t = t < 0.0f ? 0.0f : t;
        t = t > 1.0f ? 1.0f : t;
        return v * t;
      });
      break;
    case UnaryKind::Tanh: map(x, y, n, [](float v) { return std::tanh(v); }); break;
    case UnaryKind::Erf: map(x, y, n, [](float v) { return model::erf_approx(v); }); break;
    case UnaryKind::Sqrt: map(x, y, n, [](float v) { return std::sqrt(v); }); break;
    case UnaryKind::Exp: map(x, y, n, [](float v) { return model::exp_approx(v); }); break;
    case UnaryKind::Neg: map(x, y, n, [](float v) { return -v; }); break;
    case UnaryKind::Reciprocal: map(x, y, n, [](float v) { return 1.0f / v; }); break;
    case UnaryKind::GeluErf: map(x, y, n, [](float v) { return model::gelu_erf(v); }); break;
    case UnaryKind::GeluTanh: map(x, y, n, [](float v) { return model::gelu_tanh(v); }); break;
  }
}

template <class F>
inline void zip(const float* a, int64_t ia, const float* b, int64_t ib, float* y, int64_t n, const F& f) {
  if (ia && ib) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (ia) {
    const float s = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], s);
  } else if (ib) {
    const float s = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(s, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

void binary(BinaryKind k, const float* a, int64_t ia, const float* b, int64_t ib, float* y, int64_t n) {
  switch (k) {
    case BinaryKind::Add: zip(a, ia, b, ib, y, n, [](float u, float v) { return u + v; }); break;
    case BinaryKind::Sub: zip(a, ia, b, ib, y, n, [](float u, float v) { return u - v; }); break;
    case BinaryKind::Mul: zip(a, ia, b, ib, y, n, [](float u, float v) { return u * v; }); break;
    case BinaryKind::Div: zip(a, ia, b, ib, y, n, [](float u, float v) { return u / v; }); break;
    case BinaryKind::Pow:
      zip(a, ia, b, ib, y, n, [](float u, float v) { return v == 2.0f ? u * u : std::pow(u, v); });
      break;
    case BinaryKind::Equal: zip(a, ia, b, ib, y, n, [](float u, float v) { return u == v ? 1.0f : 0.0f; }); break;
    case BinaryKind::Less: zip(a, ia, b, ib, y, n, [](float u, float v) { return u < v ? 1.0f : 0.0f; }); break;
    case BinaryKind::Greater: zip(a, ia, b, ib, y, n, [](float u, float v) { return u > v ? 1.0f : 0.0f; }); break;
    // NaN propagates (numpy's maximum / minimum)
    case BinaryKind::Max: zip(a, ia, b, ib, y, n, [](float u, float v) { return u != u || u > v ? u : v; }); break;
    case BinaryKind::Min: zip(a, ia, b, ib, y, n, [](float u, float v) { return u != u || u < v ? u : v; }); break;
  }
}

// A blocked pixel of LC lanes as one GCC/Clang vector (lowered to the
// variant's registers): the NaN-keeping max of a whole pixel is a compare and
// two blends, which the vectorizer does not find in the unrolled lane loop
// (it leaves one scalar compare-and-move per lane).
// (Loads and stores are memcpy in place: no vector crosses a call, so the
// baseline variant's build has no vector ABI to warn about.)
template <int LC>
struct Pixel {
  typedef float type __attribute__((vector_size(LC * sizeof(float))));
};

// Output rows [r0, r1) of a pool whose planes hold LC lanes per pixel (4, 8, 16).
template <int LC, bool MAX>
void pool_rows_v(const PoolShape& s, const float* __restrict x, float* __restrict y, int64_t r0, int64_t r1) {
  using V = typename Pixel<LC>::type;
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t p = row / s.Ho, oh = row % s.Ho;
    const PoolWindow& h = s.wh[oh];
    const float* xp = x + p * s.H * s.W * LC;
    float* yp = y + (p * s.Ho + oh) * s.Wo * LC;
    for (int64_t ow = 0; ow < s.Wo; ++ow) {
      const PoolWindow& w = s.ww[ow];
      V acc = V{} + (MAX ? -kInf : 0.0f);
      for (int64_t kh = h.k0; kh < h.k1; ++kh) {
        const float* xr = xp + (h.start + kh * s.dh) * s.W * LC;
        for (int64_t kw = w.k0; kw < w.k1; ++kw) {
          V v;
          std::memcpy(&v, xr + (w.start + kw * s.dw) * LC, sizeof v);
          if (MAX) {
            const V m = v > acc ? v : acc;
            acc = v != v ? v : m;  // a NaN tap wins, as max_nan
          } else {
            acc += v;
          }
        }
      }
      if (!MAX) {
        const int64_t n = s.include_pad ? h.count_pad * w.count_pad : (h.k1 - h.k0) * (w.k1 - w.k0);
        acc *= n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
      }
      std::memcpy(yp + ow * LC, &acc, sizeof acc);
    }
  }
}

// Output columns [a, b) of one output row, a window at a time. LC: the lane
// count as a constant (0: s.L at run time); MAX: max or average.
template <int LC, bool MAX>
void pool_cols_t(const PoolShape& s, const float* __restrict x, float* __restrict y, int64_t row, int64_t a,
                 int64_t b) {
  const int64_t L = LC > 0 ? LC : s.L;
  // exactly LC floats when the lane count is a constant: the accumulator then
  // lives in a register instead of on the stack (a store and reload per tap)
  float acc[LC > 0 ? LC : 64];
  const int64_t p = row / s.Ho, oh = row % s.Ho;
  const PoolWindow& h = s.wh[oh];
  const float* xp = x + p * s.H * s.W * L;
  float* yp = y + (p * s.Ho + oh) * s.Wo * L;
  for (int64_t ow = a; ow < b; ++ow) {
    const PoolWindow& w = s.ww[ow];
    for (int64_t l = 0; l < L; ++l) acc[l] = MAX ? -kInf : 0.0f;
    for (int64_t kh = h.k0; kh < h.k1; ++kh) {
      const float* xr = xp + (h.start + kh * s.dh) * s.W * L;
      for (int64_t kw = w.k0; kw < w.k1; ++kw) {
        const float* xv = xr + (w.start + kw * s.dw) * L;
        for (int64_t l = 0; l < L; ++l) acc[l] = MAX ? max_nan(acc[l], xv[l]) : acc[l] + xv[l];
      }
    }
    float* yv = yp + ow * L;
    if (MAX) {
      for (int64_t l = 0; l < L; ++l) yv[l] = acc[l];
    } else {
      const int64_t n = s.include_pad ? h.count_pad * w.count_pad : (h.k1 - h.k0) * (w.k1 - w.k0);
      const float inv = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
      for (int64_t l = 0; l < L; ++l) yv[l] = acc[l] * inv;
    }
  }
}

template <int LC, bool MAX>
void pool_rows_t(const PoolShape& s, const float* x, float* y, int64_t r0, int64_t r1) {
  for (int64_t row = r0; row < r1; ++row) pool_cols_t<LC, MAX>(s, x, y, row, 0, s.Wo);
}

// nchw (one lane per pixel): the interior columns [c0, c1) of each output row
// as vector loops over the outputs, one tap at a time (stride SW as a
// constant: 1 and 2 load and deinterleave; 0: s.sw at run time, scalar);
// pool_cols_t keeps the edge columns, a window at a time. That loop costs some 20
// cycles per output of a 3 x 3 window: DenseNet-121's 3x3/2 max pool of
// 64 x 112 x 112 took 3 ms of its 27.
template <int SW, bool MAX>
void pool_rows_plain(const PoolShape& s, const float* __restrict x, float* __restrict y, int64_t r0, int64_t r1) {
  constexpr int64_t kChunk = 256;
  const int64_t sw = SW > 0 ? SW : s.sw;
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t p = row / s.Ho, oh = row % s.Ho;
    const PoolWindow& h = s.wh[oh];
    pool_cols_t<1, MAX>(s, x, y, row, 0, s.c0);
    const float* xp = x + p * s.H * s.W;
    float* yp = y + (p * s.Ho + oh) * s.Wo;
    const int64_t n = s.include_pad ? h.count_pad * s.kw : (h.k1 - h.k0) * s.kw;
    const float inv = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
    for (int64_t o0 = s.c0; o0 < s.c1; o0 += kChunk) {
      const int64_t m = std::min(kChunk, s.c1 - o0);
      float acc[kChunk];
      for (int64_t i = 0; i < m; ++i) acc[i] = MAX ? -kInf : 0.0f;
      for (int64_t kh = h.k0; kh < h.k1; ++kh) {
        const float* xr = xp + (h.start + kh * s.dh) * s.W + s.ww[o0].start;
        for (int64_t kw = 0; kw < s.kw; ++kw) {
          const float* xt = xr + kw * s.dw;
          if (MAX) {
            for (int64_t i = 0; i < m; ++i) acc[i] = max_nan(acc[i], xt[i * sw]);
          } else {
            for (int64_t i = 0; i < m; ++i) acc[i] += xt[i * sw];
          }
        }
      }
      float* yr = yp + o0;
      if (MAX) {
        for (int64_t i = 0; i < m; ++i) yr[i] = acc[i];
      } else {
        for (int64_t i = 0; i < m; ++i) yr[i] = acc[i] * inv;
      }
    }
    pool_cols_t<1, MAX>(s, x, y, row, s.c1, s.Wo);
  }
}

template <bool MAX>
void pool_rows_nchw(const PoolShape& s, const float* x, float* y, int64_t r0, int64_t r1) {
  if (s.c1 <= s.c0) return pool_rows_t<1, MAX>(s, x, y, r0, r1);
  if (s.sw == 1) return pool_rows_plain<1, MAX>(s, x, y, r0, r1);
  if (s.sw == 2) return pool_rows_plain<2, MAX>(s, x, y, r0, r1);
  return pool_rows_plain<0, MAX>(s, x, y, r0, r1);
}

void pool_rows(const PoolShape& s, const float* x, float* y, int64_t r0, int64_t r1) {
  switch (s.L) {
    case 1: return s.max ? pool_rows_nchw<true>(s, x, y, r0, r1) : pool_rows_nchw<false>(s, x, y, r0, r1);
    case 4: return s.max ? pool_rows_v<4, true>(s, x, y, r0, r1) : pool_rows_v<4, false>(s, x, y, r0, r1);
    case 8: return s.max ? pool_rows_v<8, true>(s, x, y, r0, r1) : pool_rows_v<8, false>(s, x, y, r0, r1);
    case 16: return s.max ? pool_rows_v<16, true>(s, x, y, r0, r1) : pool_rows_v<16, false>(s, x, y, r0, r1);
    default: return s.max ? pool_rows_t<0, true>(s, x, y, r0, r1) : pool_rows_t<0, false>(s, x, y, r0, r1);
  }
}

template <int LC, bool MAX>
void reduce_lanes(const float* __restrict x, int64_t HW, int64_t L_run, float* __restrict res) {
  const int64_t L = LC > 0 ? LC : L_run;
  float acc[LC > 0 ? LC : 64];  // as pool_cols_t: a register when L is a constant
  for (int64_t l = 0; l < L; ++l) acc[l] = MAX ? -kInf : 0.0f;
  for (int64_t i = 0; i < HW; ++i) {
    const float* v = x + i * L;
    for (int64_t l = 0; l < L; ++l) acc[l] = MAX ? max_nan(acc[l], v[l]) : acc[l] + v[l];
  }
  for (int64_t l = 0; l < L; ++l) res[l] = acc[l];
}

// One plane of one lane: eight partial results, a reduction the vectorizer keeps in one register.
template <bool MAX>
float reduce_plane(const float* __restrict x, int64_t HW) {
  float a[8];
  for (int j = 0; j < 8; ++j) a[j] = MAX ? -kInf : 0.0f;
  int64_t i = 0;
  for (; i + 8 <= HW; i += 8)
    for (int j = 0; j < 8; ++j) a[j] = MAX ? max_nan(a[j], x[i + j]) : a[j] + x[i + j];
  for (; i < HW; ++i) a[0] = MAX ? max_nan(a[0], x[i]) : a[0] + x[i];
  if (MAX) {
    float m = a[0];
    for (int j = 1; j < 8; ++j) m = max_nan(m, a[j]);
    return m;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

void global_pool(bool max, const float* x, int64_t HW, int64_t L, float* res) {
  if (L == 1) {
    res[0] = max ? reduce_plane<true>(x, HW) : reduce_plane<false>(x, HW);
  } else {
    switch (L) {
      case 4: max ? reduce_lanes<4, true>(x, HW, L, res) : reduce_lanes<4, false>(x, HW, L, res); break;
      case 8: max ? reduce_lanes<8, true>(x, HW, L, res) : reduce_lanes<8, false>(x, HW, L, res); break;
      case 16: max ? reduce_lanes<16, true>(x, HW, L, res) : reduce_lanes<16, false>(x, HW, L, res); break;
      default: max ? reduce_lanes<0, true>(x, HW, L, res) : reduce_lanes<0, false>(x, HW, L, res);
    }
  }
  if (!max) {
    const float inv = HW > 0 ? 1.0f / static_cast<float>(HW) : 0.0f;
    for (int64_t l = 0; l < L; ++l) res[l] *= inv;
  }
}

}  // namespace model_loops_impl

// The table a variant's Registry points to.
constexpr ModelLoops kModelLoopsTable = {&model_loops_impl::unary, &model_loops_impl::binary,
                                         &model_loops_impl::pool_rows, &model_loops_impl::global_pool};

}  // namespace
}  // namespace detail
}  // namespace autoconfig
