"""ISA descriptions for the emitters: the only place that knows intrinsics.

Each ISA gives the C++ spelling of the handful of vector operations the
microkernels and epilogues need (load, masked load/store, broadcast, FMA, the
activation functions). Loops, packing and threading never look in here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List


@dataclass(frozen=True)
class Isa:
    key: str            # profile isa: avx512 | avx2 | generic
    suffix: str         # kernel-name suffix, XNNPACK style
    lanes: int          # float32 lanes per vector
    vtype: str          # C++ vector type
    includes: List[str]

    # The emitters call these; subclasses spell them.
    def zero(self) -> str: raise NotImplementedError
    def load(self, ptr: str) -> str: raise NotImplementedError
    def load_b(self, ptr: str) -> str: raise NotImplementedError   # B rows: aligned when packed, not in place
    def broadcast(self, ptr_expr: str) -> str: raise NotImplementedError
    def fma(self, a: str, b: str, c: str) -> str: raise NotImplementedError
    def mask_decl(self, name: str, count_expr: str) -> str: raise NotImplementedError
    def masked_load(self, mask: str, ptr: str) -> str: raise NotImplementedError
    def masked_store(self, mask: str, ptr: str, v: str) -> str: raise NotImplementedError
    def mul(self, a: str, b: str) -> str: raise NotImplementedError
    def add(self, a: str, b: str) -> str: raise NotImplementedError
    def set1(self, x: str) -> str: raise NotImplementedError
    def loadu(self, ptr: str) -> str: raise NotImplementedError    # any alignment
    def storeu(self, ptr: str, v: str) -> str: raise NotImplementedError  # any alignment; a statement
    def sub(self, a: str, b: str) -> str: raise NotImplementedError
    def max(self, a: str, b: str) -> str: raise NotImplementedError
    def min(self, a: str, b: str) -> str: raise NotImplementedError
    def prefetch(self, ptr: str) -> str:
        """Into L1, for writing."""
        return f"__builtin_prefetch({ptr}, 1, 3);"

    def prefetch_l2(self, ptr: str) -> str:
        """Into L2 (not L1)."""
        return f"__builtin_prefetch({ptr}, 1, 2);"
    def vector_math(self) -> str: raise NotImplementedError


class Avx512(Isa):
    def __init__(self):
        super().__init__("avx512", "avx512f", 16, "__m512", ["immintrin.h"])

    def prefetch_l2(self, ptr): return f"_mm_prefetch(reinterpret_cast<const char*>({ptr}), _MM_HINT_T1);"
    def zero(self): return "_mm512_setzero_ps()"
    def load(self, ptr): return f"_mm512_load_ps({ptr})"
    def load_b(self, ptr): return f"_mm512_loadu_ps({ptr})"
    def broadcast(self, ptr_expr): return f"_mm512_set1_ps({ptr_expr})"
    def fma(self, a, b, c): return f"_mm512_fmadd_ps({a}, {b}, {c})"
    def mask_decl(self, name, count_expr):
        return (f"const __mmask16 {name} = lane_mask({count_expr});")
    def masked_load(self, mask, ptr): return f"_mm512_maskz_loadu_ps({mask}, {ptr})"
    def masked_store(self, mask, ptr, v): return f"_mm512_mask_storeu_ps({ptr}, {mask}, {v});"
    def mul(self, a, b): return f"_mm512_mul_ps({a}, {b})"
    def add(self, a, b): return f"_mm512_add_ps({a}, {b})"
    def set1(self, x): return f"_mm512_set1_ps({x})"
    def loadu(self, ptr): return f"_mm512_loadu_ps({ptr})"
    def storeu(self, ptr, v): return f"_mm512_storeu_ps({ptr}, {v});"
    def sub(self, a, b): return f"_mm512_sub_ps({a}, {b})"
    def max(self, a, b): return f"_mm512_max_ps({a}, {b})"
    def min(self, a, b): return f"_mm512_min_ps({a}, {b})"

    def vector_math(self) -> str:
        return r'''
// Mask of the first `count` lanes (count may be <= 0 or >= 16).
static inline __mmask16 lane_mask(int count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1u);
}

// exp(x): x = n*ln2 + r, |r| <= ln2/2, e^r by its degree-6 Taylor polynomial
// (relative error ~1.2e-7), 2^n applied exactly with scalef.
static inline __m512 v_exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v * sigmoid(2u), u = sqrt(2/pi) (v + 0.044715 v^3).
static inline __m512 v_gelu_tanh(__m512 v) {
  const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
  const __m512 u = _mm512_mul_ps(_mm512_fmadd_ps(v3, _mm512_set1_ps(0.044715f), v),
                                 _mm512_set1_ps(-1.5957691216057308f));  // -2*sqrt(2/pi)
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), v_exp(u)));
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd extension.
static inline __m512 v_erf(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                 _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = v_exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  const __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  // copy the sign of x
  return _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(y),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000u)))));
}

static inline __m512 v_gelu_erf(__m512 v) {
  const __m512 e = v_erf(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)));
  return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

template <int ACT>
static inline __m512 v_activation(__m512 v) {
  if (ACT == 1) return _mm512_max_ps(v, _mm512_setzero_ps());
  if (ACT == 2) return _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.0f));
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
'''


class Avx2(Isa):
    def __init__(self):
        super().__init__("avx2", "avx2", 8, "__m256", ["immintrin.h"])

    def prefetch_l2(self, ptr): return f"_mm_prefetch(reinterpret_cast<const char*>({ptr}), _MM_HINT_T1);"
    def zero(self): return "_mm256_setzero_ps()"
    def load(self, ptr): return f"_mm256_load_ps({ptr})"
    def load_b(self, ptr): return f"_mm256_loadu_ps({ptr})"
    def broadcast(self, ptr_expr): return f"_mm256_broadcast_ss(&{ptr_expr})"
    def fma(self, a, b, c): return f"_mm256_fmadd_ps({a}, {b}, {c})"
    def mask_decl(self, name, count_expr):
        return f"const __m256i {name} = lane_mask({count_expr});"
    def masked_load(self, mask, ptr): return f"_mm256_maskload_ps({ptr}, {mask})"
    def masked_store(self, mask, ptr, v): return f"_mm256_maskstore_ps({ptr}, {mask}, {v});"
    def mul(self, a, b): return f"_mm256_mul_ps({a}, {b})"
    def add(self, a, b): return f"_mm256_add_ps({a}, {b})"
    def set1(self, x): return f"_mm256_set1_ps({x})"
    def loadu(self, ptr): return f"_mm256_loadu_ps({ptr})"
    def storeu(self, ptr, v): return f"_mm256_storeu_ps({ptr}, {v});"
    def sub(self, a, b): return f"_mm256_sub_ps({a}, {b})"
    def max(self, a, b): return f"_mm256_max_ps({a}, {b})"
    def min(self, a, b): return f"_mm256_min_ps({a}, {b})"

    def vector_math(self) -> str:
        return r'''
// All-ones in the first `count` lanes (count may be <= 0 or >= 8).
static inline __m256i lane_mask(int count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// exp(x): x = n*ln2 + r, |r| <= ln2/2, e^r by its degree-6 Taylor polynomial,
// 2^n built in the exponent field (n is clamped to the normal range).
static inline __m256 v_exp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // Split 2^n in two factors so n down to -126*2 stays representable.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h = _mm256_srai_epi32(ni, 1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline __m256 v_gelu_tanh(__m256 v) {
  const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
  const __m256 u = _mm256_mul_ps(_mm256_fmadd_ps(v3, _mm256_set1_ps(0.044715f), v),
                                 _mm256_set1_ps(-1.5957691216057308f));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), v_exp(u)));
}

static inline __m256 v_erf(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                 _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = v_exp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  return _mm256_or_ps(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), sign);
}

static inline __m256 v_gelu_erf(__m256 v) {
  const __m256 e = v_erf(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f)));
  return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)), _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
}

template <int ACT>
static inline __m256 v_activation(__m256 v) {
  if (ACT == 1) return _mm256_max_ps(v, _mm256_setzero_ps());
  if (ACT == 2) return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f));
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
'''


class Portable(Isa):
    """GCC/Clang vector extensions: plain C++ the compiler lowers to whatever
    SIMD the baseline has (SSE2 on x86-64, NEON on AArch64), scalar otherwise."""

    def __init__(self, lanes: int = 4, suffix: str = "scalar"):
        super().__init__("generic", suffix, lanes, "vf", ["cmath", "cstring"])

    def zero(self): return "vf{}"
    def load(self, ptr): return f"vf_load({ptr})"
    def load_b(self, ptr): return f"vf_load({ptr})"
    def broadcast(self, ptr_expr): return f"vf_set1({ptr_expr})"
    def fma(self, a, b, c): return f"({c} + {a} * {b})"
    def mask_decl(self, name, count_expr): return f"const int {name} = {count_expr};"
    def masked_load(self, mask, ptr): return f"vf_load_n({ptr}, {mask})"
    def masked_store(self, mask, ptr, v): return f"vf_store_n({ptr}, {mask}, {v});"
    def mul(self, a, b): return f"({a} * {b})"
    def add(self, a, b): return f"({a} + {b})"
    def set1(self, x): return f"vf_set1({x})"
    def loadu(self, ptr): return f"vf_load({ptr})"
    def storeu(self, ptr, v): return f"vf_store({ptr}, {v});"
    def sub(self, a, b): return f"({a} - {b})"
    def max(self, a, b): return f"vf_max({a}, {b})"
    def min(self, a, b): return f"vf_min({a}, {b})"

    def vector_math(self) -> str:
        L = self.lanes
        return f'''
typedef float vf __attribute__((vector_size({4 * L})));
constexpr int kLanes = {L};

static inline vf vf_load(const float* p) {{ vf v; std::memcpy(&v, p, sizeof v); return v; }}
static inline vf vf_set1(float x) {{ vf v; for (int i = 0; i < kLanes; ++i) v[i] = x; return v; }}
static inline void vf_store(float* p, vf v) {{ std::memcpy(p, &v, sizeof v); }}
static inline vf vf_max(vf a, vf b) {{ return a > b ? a : b; }}
static inline vf vf_min(vf a, vf b) {{ return a < b ? a : b; }}
// The first `count` lanes (count may be <= 0 or >= kLanes); the rest are zero.
static inline vf vf_load_n(const float* p, int count) {{
  vf v{{}};
  if (count >= kLanes) return vf_load(p);
  for (int i = 0; i < count; ++i) v[i] = p[i];
  return v;
}}
static inline void vf_store_n(float* p, int count, vf v) {{
  if (count >= kLanes) {{ std::memcpy(p, &v, sizeof v); return; }}
  for (int i = 0; i < count; ++i) p[i] = v[i];
}}

template <int ACT>
static inline float s_activation(float v) {{
  if (ACT == 1) return v > 0.0f ? v : 0.0f;
  if (ACT == 2) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  if (ACT == 3) return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  if (ACT == 4) return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
  return v;
}}

template <int ACT>
static inline vf v_activation(vf v) {{
  if (ACT == 0) return v;
  for (int i = 0; i < kLanes; ++i) v[i] = s_activation<ACT>(v[i]);
  return v;
}}
'''


def isa_for_profile(profile) -> Isa:
    """The emitter for a profile: its ISA, and for portable code the baseline
    its flags allow (named so variants of one build never share a symbol)."""
    if profile.isa == "generic" and "-msse4.2" in profile.compile_flags:
        return Portable(lanes=max(1, profile.vector_bits // 32), suffix="sse42")
    if profile.isa == "generic":
        return Portable(lanes=max(1, profile.vector_bits // 32))
    return isa_for(profile.isa)


def isa_for(key: str) -> Isa:
    if key == "avx512":
        return Avx512()
    if key == "avx2":
        return Avx2()
    if key == "generic":
        return Portable()
    raise ValueError(f"no code generator for isa {key!r}; known: avx512, avx2, generic")
