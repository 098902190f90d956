// exp for the executor's loops: plain float code the vectorizer turns into
// SIMD (libm's expf is a call it cannot vectorize without -ffast-math).
// Cephes' range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial
// for e^r and 2^n built in the exponent bits: about 2 ulp over the range.
#pragma once
#include <cstdint>
#include <cstring>

namespace autoconfig {
namespace model {

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

// erf: a Taylor series below |x| = 0.5 (relative error < 1e-7 there, where
// the next formula's absolute error would be large relative to erf's small
// values), Abramowitz & Stegun 7.1.26 above (absolute error < 1.5e-7, so
// relative < 3e-7 since erf >= 0.52 there). Both computed, one selected, so
// the loop stays vectorizable.
inline float erf_approx(float x) {
  const float x2 = x * x;
  float q = -1.0f / 1320.0f;
  q = q * x2 + 1.0f / 216.0f;
  q = q * x2 - 1.0f / 42.0f;
  q = q * x2 + 1.0f / 10.0f;
  q = q * x2 - 1.0f / 3.0f;
  q = q * x2 + 1.0f;
  const float small = 1.1283791670955126f * x * q;
  const float ax = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float big = 1.0f - p * t * exp_approx(-x2);
  const float signed_big = x < 0.0f ? -big : big;
  return ax < 0.5f ? small : signed_big;
}

// gelu with tanh: 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3)
inline float gelu_tanh(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return x / (1.0f + exp_approx(-2.0f * u));
}

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f)); }

}  // namespace model
}  // namespace autoconfig
