// exp for the executor's loops: plain float code the vectorizer turns into
// SIMD (libm's expf is a call it cannot vectorize without -ffast-math).
// Cephes' range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial
// for e^r and 2^n built in the exponent bits: about 2 ulp over the range.
#pragma once
#include <cstdint>
#include <cstring>

namespace autoconfig {
namespace model {
// Internal linkage: the baseline operators and every variant's loops
// (loops_impl.h) each keep their own copy, compiled with their own flags.
namespace {

inline float exp_approx(float x) {
  const bool nan = x != x;
  float xc = nan ? 0.0f : x;
  xc = xc < -87.0f ? -87.0f : xc;
  xc = xc > 88.0f ? 88.0f : xc;
  // round(xc / ln2) with the 1.5 * 2^23 trick (round to nearest, no libm call)
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  float y = er * two_n;
  y = x < -87.0f ? 0.0f : y;
  y = x > 88.0f ? __builtin_inff() : y;
  return nan ? x : y;
}

}  // namespace
}  // namespace model
}  // namespace autoconfig
