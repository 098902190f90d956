"""ISA descriptions for the emitters: the only place that knows intrinsics.

Each ISA gives the C++ spelling of the handful of vector operations the
microkernels and epilogues need (load, masked load/store, broadcast, FMA, the
activation functions). Loops, packing and threading never look in here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

from ..profile import fixed_lanes_profile


def _dst_param(offsets: bool) -> str:
    """The last parameter of a transpose_fn: the row stride, or the rows' offsets."""
    return "const int64_t* __restrict off" if offsets else "int64_t dst_stride"


def _dst_row(j, offsets: bool) -> str:
    """Where row j (an int or a C++ expression) of a transposed block starts, past dst."""
    return f"off[{j}]" if offsets else f"{j} * dst_stride"


@dataclass(frozen=True)
class Isa:
    key: str            # profile isa: avx512 | avx2 | neon | sve | rvv | generic
    suffix: str         # kernel-name suffix, XNNPACK style
    lanes: int          # float32 lanes per vector (scalable ISAs: the lanes the plan assumes)
    vtype: str          # C++ vector type
    includes: List[str]
    # False for scalable vectors (SVE, RVV): the lane count is a run-time value
    # (lanes_expr()), so an emitter may not unroll or index by `lanes`, keep
    # vectors in arrays or struct members, or assume nr % lanes == 0 covers a
    # tile. Emitters that need fixed lanes plan and emit for
    # profile.fixed_lanes_profile() (fixed_lanes_isa_for_profile()).
    fixed_lanes: bool = True

    def lanes_expr(self) -> str:
        """C++ expression (int64_t) of the lanes per vector at run time."""
        return f"int64_t({self.lanes})"

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
    def clamp(self, v: str, lo: str, hi: str) -> str:
        """min(max(v, lo), hi) for vectors v, lo, hi that keeps NaN: a NaN in v
        stays NaN, as in numpy and ONNX (x86 max/min return their second operand
        when either is NaN; RVV's vfmax/vfmin return the number)."""
        raise NotImplementedError
    def max_keep_nan(self, a: str, v: str) -> str:
        """Lane-wise max(a, v) that is NaN where v is NaN (a NaN in a alone may
        be dropped): the row max and the exp flush of softmax use it."""
        raise NotImplementedError

    def prefetch(self, ptr: str) -> str:
        """Into L1, for writing."""
        return f"__builtin_prefetch({ptr}, 1, 3);"

    def prefetch_l2(self, ptr: str) -> str:
        """Into L2 (not L1)."""
        return f"__builtin_prefetch({ptr}, 1, 2);"

    def transpose_fn(self, name: str, offsets: bool = False) -> str:
        """C++ definition of `static inline void name(const float* src, int64_t src_stride,
        float* dst, int64_t dst_stride)`: dst[j*dst_stride + i] = src[i*src_stride + j] for
        i, j < lanes (a lanes x lanes block; any alignment). offsets: the last parameter is
        `const int64_t* off` instead and column j goes to dst + off[j] (destinations that
        are not evenly spaced). This scalar loop is the fallback; ISAs with shuffles
        transpose in registers."""
        return (f"static inline void {name}(const float* __restrict src, int64_t src_stride,\n"
                f"                        float* __restrict dst, {_dst_param(offsets)}) {{\n"
                f"  for (int i = 0; i < {self.lanes}; ++i)\n"
                f"    for (int j = 0; j < {self.lanes}; ++j) dst[{_dst_row('j', offsets)} + i] = "
                f"src[i * src_stride + j];\n"
                f"}}\n")
    def vector_math(self) -> str: raise NotImplementedError


class Avx512(Isa):
    def __init__(self):
        super().__init__("avx512", "avx512f", 16, "__m512", ["immintrin.h"])

    def transpose_fn(self, name, offsets=False):
        # unpack ps, unpack pd: 4x4 transposes inside each 128-bit lane; then two
        # rounds of shuffle_f32x4 move the 128-bit lanes into place. 64 shuffles.
        o = [f"static inline void {name}(const float* __restrict src, int64_t src_stride,",
             f"                        float* __restrict dst, {_dst_param(offsets)}) {{"]
        o += [f"  const __m512 r{i} = _mm512_loadu_ps(src + {i} * src_stride);" for i in range(16)]
        for i in range(8):
            o.append(f"  const __m512 t{2 * i} = _mm512_unpacklo_ps(r{2 * i}, r{2 * i + 1}), "
                     f"t{2 * i + 1} = _mm512_unpackhi_ps(r{2 * i}, r{2 * i + 1});")
        pd = lambda op, a, b: (f"_mm512_castpd_ps(_mm512_{op}_pd(_mm512_castps_pd({a}), "  # noqa: E731
                               f"_mm512_castps_pd({b})))")
        for i in range(4):
            a0, a1, b0, b1 = f"t{4 * i}", f"t{4 * i + 1}", f"t{4 * i + 2}", f"t{4 * i + 3}"
            o.append(f"  const __m512 q{4 * i} = {pd('unpacklo', a0, b0)};")
            o.append(f"  const __m512 q{4 * i + 1} = {pd('unpackhi', a0, b0)};")
            o.append(f"  const __m512 q{4 * i + 2} = {pd('unpacklo', a1, b1)};")
            o.append(f"  const __m512 q{4 * i + 3} = {pd('unpackhi', a1, b1)};")
        # q{4i+j}, 128-bit lane l: column 4l+j of rows 4i..4i+3.
        for j in range(4):
            o.append(f"  const __m512 s{j} = _mm512_shuffle_f32x4(q{j}, q{4 + j}, 0x88), "
                     f"s{4 + j} = _mm512_shuffle_f32x4(q{j}, q{4 + j}, 0xDD);")
            o.append(f"  const __m512 u{j} = _mm512_shuffle_f32x4(q{8 + j}, q{12 + j}, 0x88), "
                     f"u{4 + j} = _mm512_shuffle_f32x4(q{8 + j}, q{12 + j}, 0xDD);")
            o.append(f"  _mm512_storeu_ps(dst + {_dst_row(j, offsets)}, _mm512_shuffle_f32x4(s{j}, u{j}, 0x88));")
            o.append(f"  _mm512_storeu_ps(dst + {_dst_row(8 + j, offsets)}, _mm512_shuffle_f32x4(s{j}, u{j}, 0xDD));")
            o.append(f"  _mm512_storeu_ps(dst + {_dst_row(4 + j, offsets)}, _mm512_shuffle_f32x4(s{4 + j}, u{4 + j}, 0x88));")
            o.append(f"  _mm512_storeu_ps(dst + {_dst_row(12 + j, offsets)}, _mm512_shuffle_f32x4(s{4 + j}, u{4 + j}, 0xDD));")
        return "\n".join(o) + "\n}\n"

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
    # maxps/minps return the second operand when either is NaN: v goes second.
    def clamp(self, v, lo, hi): return f"_mm512_min_ps({hi}, _mm512_max_ps({lo}, {v}))"
    def max_keep_nan(self, a, v): return f"_mm512_max_ps({a}, {v})"

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
  // e^u past 88 overflows: +inf there (v_exp clamps), so v = -inf gives NaN as the formula does.
  const __m512 d = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, _mm512_set1_ps(88.0f), _CMP_GT_OQ),
                                        _mm512_add_ps(_mm512_set1_ps(1.0f), v_exp(u)),
                                        _mm512_set1_ps(__builtin_inff()));
  return _mm512_div_ps(v, d);
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
  // maxps/minps return the second operand when either is NaN: v goes second so relu(NaN) = NaN.
  if (ACT == 1) return _mm512_max_ps(_mm512_setzero_ps(), v);
  if (ACT == 2) return _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(_mm512_setzero_ps(), v));
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
'''


class Avx2(Isa):
    def __init__(self):
        super().__init__("avx2", "avx2", 8, "__m256", ["immintrin.h"])

    def transpose_fn(self, name, offsets=False):
        # unpack ps, shuffle ps: 4x4 transposes inside each 128-bit lane; then
        # permute2f128 pairs the lanes. 24 shuffles.
        o = [f"static inline void {name}(const float* __restrict src, int64_t src_stride,",
             f"                        float* __restrict dst, {_dst_param(offsets)}) {{"]
        o += [f"  const __m256 r{i} = _mm256_loadu_ps(src + {i} * src_stride);" for i in range(8)]
        for i in range(4):
            o.append(f"  const __m256 t{2 * i} = _mm256_unpacklo_ps(r{2 * i}, r{2 * i + 1}), "
                     f"t{2 * i + 1} = _mm256_unpackhi_ps(r{2 * i}, r{2 * i + 1});")
        for i in range(2):
            a0, a1, b0, b1 = f"t{4 * i}", f"t{4 * i + 1}", f"t{4 * i + 2}", f"t{4 * i + 3}"
            o.append(f"  const __m256 q{4 * i} = _mm256_shuffle_ps({a0}, {b0}, 0x44);")
            o.append(f"  const __m256 q{4 * i + 1} = _mm256_shuffle_ps({a0}, {b0}, 0xEE);")
            o.append(f"  const __m256 q{4 * i + 2} = _mm256_shuffle_ps({a1}, {b1}, 0x44);")
            o.append(f"  const __m256 q{4 * i + 3} = _mm256_shuffle_ps({a1}, {b1}, 0xEE);")
        # q{4i+j}, 128-bit lane l: column 4l+j of rows 4i..4i+3.
        for j in range(4):
            o.append(f"  _mm256_storeu_ps(dst + {_dst_row(j, offsets)}, _mm256_permute2f128_ps(q{j}, q{4 + j}, 0x20));")
            o.append(f"  _mm256_storeu_ps(dst + {_dst_row(4 + j, offsets)}, _mm256_permute2f128_ps(q{j}, q{4 + j}, 0x31));")
        return "\n".join(o) + "\n}\n"

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
    # maxps/minps return the second operand when either is NaN: v goes second.
    def clamp(self, v, lo, hi): return f"_mm256_min_ps({hi}, _mm256_max_ps({lo}, {v}))"
    def max_keep_nan(self, a, v): return f"_mm256_max_ps({a}, {v})"

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
  // e^u past 88 overflows: +inf there (v_exp clamps), so v = -inf gives NaN as the formula does.
  const __m256 d = _mm256_blendv_ps(_mm256_add_ps(_mm256_set1_ps(1.0f), v_exp(u)), _mm256_set1_ps(__builtin_inff()),
                                    _mm256_cmp_ps(u, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
  return _mm256_div_ps(v, d);
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
  // maxps/minps return the second operand when either is NaN: v goes second so relu(NaN) = NaN.
  if (ACT == 1) return _mm256_max_ps(_mm256_setzero_ps(), v);
  if (ACT == 2) return _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(_mm256_setzero_ps(), v));
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
    def clamp(self, v, lo, hi): return f"vf_clamp({v}, {lo}, {hi})"
    # a > v is false when either is NaN: v (with its NaN) is returned.
    def max_keep_nan(self, a, v): return f"({a} > {v} ? {a} : {v})"

    def vector_math(self) -> str:
        L = self.lanes
        set1_lanes = ", ".join(["x"] * L)
        return f'''
typedef float vf __attribute__((vector_size({4 * L})));
constexpr int kLanes = {L};

static inline vf vf_load(const float* p) {{ vf v; std::memcpy(&v, p, sizeof v); return v; }}
// One initializer of kLanes copies: GCC 12 lowers it to a load and one shuffle
// (movss + shufps). A lane-by-lane loop became movss + kLanes dependent
// insertps wherever the scalar's neighbours were not provably readable (an A
// row read in place, Winograd's GEMM rows): on the Zen 5 VM, x86-64-v2,
// 197x2304x768 with a 6x8 tile and A in place took 132.9 ms, 16.5 with this.
static inline vf vf_set1(float x) {{ return vf{{{set1_lanes}}}; }}
static inline void vf_store(float* p, vf v) {{ std::memcpy(p, &v, sizeof v); }}
// Comparisons with NaN are false, so a NaN in v is kept.
static inline vf vf_clamp(vf v, vf lo, vf hi) {{ return v < lo ? lo : (v > hi ? hi : v); }}
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
  if (ACT == 1) return v < 0.0f ? 0.0f : v;   // NaN stays NaN
  if (ACT == 2) return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
  if (ACT == 3) return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  if (ACT == 4) return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
  return v;
}}

// exp lane by lane (libm: exp(-inf) = 0, NaN stays NaN).
static inline vf v_exp(vf x) {{
  for (int i = 0; i < kLanes; ++i) x[i] = std::exp(x[i]);
  return x;
}}

template <int ACT>
static inline vf v_activation(vf v) {{
  if (ACT == 0) return v;
  for (int i = 0; i < kLanes; ++i) v[i] = s_activation<ACT>(v[i]);
  return v;
}}
'''


class Neon(Isa):
    """Arm Advanced SIMD: 128-bit float32x4_t, 32 registers. Edges go through
    a 4-float stack buffer (NEON has no masked loads or stores)."""

    def __init__(self, suffix: str = "neon"):
        super().__init__("neon", suffix, 4, "float32x4_t", ["arm_neon.h"])

    def zero(self): return "vdupq_n_f32(0.0f)"
    def load(self, ptr): return f"vld1q_f32({ptr})"
    def load_b(self, ptr): return f"vld1q_f32({ptr})"
    def broadcast(self, ptr_expr): return f"vld1q_dup_f32(&{ptr_expr})"
    def fma(self, a, b, c): return f"vfmaq_f32({c}, {a}, {b})"
    def mask_decl(self, name, count_expr): return f"const int {name} = {count_expr};"
    def masked_load(self, mask, ptr): return f"neon_load_n({ptr}, {mask})"
    def masked_store(self, mask, ptr, v): return f"neon_store_n({ptr}, {mask}, {v});"
    def mul(self, a, b): return f"vmulq_f32({a}, {b})"
    def add(self, a, b): return f"vaddq_f32({a}, {b})"
    def set1(self, x): return f"vdupq_n_f32({x})"
    def loadu(self, ptr): return f"vld1q_f32({ptr})"
    def storeu(self, ptr, v): return f"vst1q_f32({ptr}, {v});"
    def sub(self, a, b): return f"vsubq_f32({a}, {b})"
    # FMAX/FMIN return NaN when either operand is NaN (FMAXNM would not).
    def clamp(self, v, lo, hi): return f"vminq_f32(vmaxq_f32({v}, {lo}), {hi})"
    def max_keep_nan(self, a, v): return f"vmaxq_f32({a}, {v})"

    def vector_math(self) -> str:
        return r"""
// The first `count` lanes (count may be <= 0 or >= 4); the other lanes read as zero.
static inline float32x4_t neon_load_n(const float* p, int count) {
  if (count >= 4) return vld1q_f32(p);
  float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < count; ++i) t[i] = p[i];
  return vld1q_f32(t);
}
static inline void neon_store_n(float* p, int count, float32x4_t v) {
  if (count >= 4) {
    vst1q_f32(p, v);
    return;
  }
  float t[4];
  vst1q_f32(t, v);
  for (int i = 0; i < count; ++i) p[i] = t[i];
}

// exp(x): x = n*ln2 + r, |r| <= ln2/2 (ln2 split in two for exactness), e^r
// by its degree-6 Taylor polynomial (relative error ~1.2e-7), 2^n built in
// the exponent field as two factors so n down to -126*2 stays representable.
static inline float32x4_t v_exp(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
  r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
  float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t h = vshrq_n_s32(ni, 1);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h, vdupq_n_s32(127)), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(ni, h), vdupq_n_s32(127)), 23));
  return vmulq_f32(vmulq_f32(p, s1), s2);
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v * sigmoid(2u), u = sqrt(2/pi) (v + 0.044715 v^3).
static inline float32x4_t v_gelu_tanh(float32x4_t v) {
  const float32x4_t v3 = vmulq_f32(vmulq_f32(v, v), v);
  const float32x4_t u = vmulq_f32(vfmaq_f32(v, v3, vdupq_n_f32(0.044715f)),
                                  vdupq_n_f32(-1.5957691216057308f));  // -2*sqrt(2/pi)
  // e^u past 88 overflows: +inf there (v_exp clamps), so v = -inf gives NaN as the formula does.
  const float32x4_t d = vbslq_f32(vcgtq_f32(u, vdupq_n_f32(88.0f)), vdupq_n_f32(__builtin_inff()),
                                  vaddq_f32(vdupq_n_f32(1.0f), v_exp(u)));
  return vdivq_f32(v, d);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd extension.
static inline float32x4_t v_erf(float32x4_t x) {
  const float32x4_t ax = vabsq_f32(x);
  const float32x4_t t = vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), ax, vdupq_n_f32(0.3275911f)));
  float32x4_t p = vdupq_n_f32(1.061405429f);
  p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
  p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
  p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
  p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
  p = vmulq_f32(p, t);
  const float32x4_t e = v_exp(vnegq_f32(vmulq_f32(ax, ax)));
  const float32x4_t y = vfmsq_f32(vdupq_n_f32(1.0f), p, e);
  // the sign bit from x, the rest from y (y >= 0)
  return vbslq_f32(vdupq_n_u32(0x80000000u), x, y);
}

static inline float32x4_t v_gelu_erf(float32x4_t v) {
  const float32x4_t e = v_erf(vmulq_f32(v, vdupq_n_f32(0.70710678118654752f)));
  return vmulq_f32(vmulq_f32(v, vdupq_n_f32(0.5f)), vaddq_f32(e, vdupq_n_f32(1.0f)));
}

template <int ACT>
static inline float32x4_t v_activation(float32x4_t v) {
  // FMAX/FMIN keep NaN (relu(NaN) = NaN); FMAXNM would not.
  if (ACT == 1) return vmaxq_f32(v, vdupq_n_f32(0.0f));
  if (ACT == 2) return vminq_f32(vmaxq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(6.0f));
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
"""


class Sve(Isa):
    """Arm SVE, vector-length agnostic: svfloat32_t holds svcntw() lanes, 4..64
    depending on the CPU. `lanes` is only what the plan assumed for blocking
    (the profile's vector_bits); code must use lanes_expr(). Edges are
    predicates (svwhilelt), so masked loads never touch memory past the edge.
    svfloat32_t is sizeless: no arrays of it, no struct members, no sizeof."""

    def __init__(self, assumed_bits: int = 256, suffix: str = "sve"):
        if assumed_bits < 128 or assumed_bits > 2048 or assumed_bits % 128:
            raise ValueError(f"SVE vector length must be a multiple of 128 bits in 128..2048, got {assumed_bits}")
        super().__init__("sve", suffix, assumed_bits // 32, "svfloat32_t", ["arm_sve.h"], fixed_lanes=False)

    def lanes_expr(self): return "int64_t(svcntw())"
    def zero(self): return "svdup_n_f32(0.0f)"
    def load(self, ptr): return f"svld1_f32(svptrue_b32(), {ptr})"
    def load_b(self, ptr): return f"svld1_f32(svptrue_b32(), {ptr})"
    def broadcast(self, ptr_expr): return f"svdup_n_f32({ptr_expr})"
    def fma(self, a, b, c): return f"svmla_f32_x(svptrue_b32(), {c}, {a}, {b})"
    def mask_decl(self, name, count_expr):
        return f"const svbool_t {name} = svwhilelt_b32(int64_t(0), int64_t({count_expr}));"
    def masked_load(self, mask, ptr): return f"svld1_f32({mask}, {ptr})"
    def masked_store(self, mask, ptr, v): return f"svst1_f32({mask}, {ptr}, {v});"
    def mul(self, a, b): return f"svmul_f32_x(svptrue_b32(), {a}, {b})"
    def add(self, a, b): return f"svadd_f32_x(svptrue_b32(), {a}, {b})"
    def set1(self, x): return f"svdup_n_f32({x})"
    def loadu(self, ptr): return f"svld1_f32(svptrue_b32(), {ptr})"
    def storeu(self, ptr, v): return f"svst1_f32(svptrue_b32(), {ptr}, {v});"
    def sub(self, a, b): return f"svsub_f32_x(svptrue_b32(), {a}, {b})"
    # FMAX/FMIN return NaN when either operand is NaN (svmaxnm would not).
    def clamp(self, v, lo, hi): return f"svmin_f32_x(svptrue_b32(), svmax_f32_x(svptrue_b32(), {v}, {lo}), {hi})"
    def max_keep_nan(self, a, v): return f"svmax_f32_x(svptrue_b32(), {a}, {v})"

    def vector_math(self) -> str:
        return r"""
// exp(x): x = n*ln2 + r, |r| <= ln2/2 (ln2 split in two for exactness), e^r
// by its degree-6 Taylor polynomial (relative error ~1.2e-7), 2^n applied
// exactly by FSCALE.
static inline svfloat32_t v_exp(svfloat32_t x) {
  const svbool_t pg = svptrue_b32();
  x = svmin_n_f32_x(pg, svmax_n_f32_x(pg, x, -87.0f), 88.0f);
  const svfloat32_t n = svrintn_f32_x(pg, svmul_n_f32_x(pg, x, 1.44269504088896341f));
  svfloat32_t r = svmls_n_f32_x(pg, x, n, 0.693145751953125f);
  r = svmls_n_f32_x(pg, r, n, 1.428606765330187045e-06f);
  svfloat32_t p = svdup_n_f32(1.0f / 720.0f);
  p = svmad_n_f32_x(pg, p, r, 1.0f / 120.0f);
  p = svmad_n_f32_x(pg, p, r, 1.0f / 24.0f);
  p = svmad_n_f32_x(pg, p, r, 1.0f / 6.0f);
  p = svmad_n_f32_x(pg, p, r, 0.5f);
  p = svmad_n_f32_x(pg, p, r, 1.0f);
  p = svmad_n_f32_x(pg, p, r, 1.0f);
  return svscale_f32_x(pg, p, svcvt_s32_f32_x(pg, n));
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v * sigmoid(2u), u = sqrt(2/pi) (v + 0.044715 v^3).
static inline svfloat32_t v_gelu_tanh(svfloat32_t v) {
  const svbool_t pg = svptrue_b32();
  const svfloat32_t v3 = svmul_f32_x(pg, svmul_f32_x(pg, v, v), v);
  const svfloat32_t u = svmul_n_f32_x(pg, svmla_n_f32_x(pg, v, v3, 0.044715f),
                                      -1.5957691216057308f);  // -2*sqrt(2/pi)
  // e^u past 88 overflows: +inf there (v_exp clamps), so v = -inf gives NaN as the formula does.
  const svfloat32_t d = svsel_f32(svcmpgt_n_f32(pg, u, 88.0f), svdup_n_f32(__builtin_inff()),
                                  svadd_n_f32_x(pg, v_exp(u), 1.0f));
  return svdiv_f32_x(pg, v, d);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd extension.
static inline svfloat32_t v_erf(svfloat32_t x) {
  const svbool_t pg = svptrue_b32();
  const svfloat32_t ax = svabs_f32_x(pg, x);
  const svfloat32_t t = svdivr_n_f32_x(pg, svmad_n_f32_x(pg, ax, svdup_n_f32(0.3275911f), 1.0f), 1.0f);
  svfloat32_t p = svdup_n_f32(1.061405429f);
  p = svmad_n_f32_x(pg, p, t, -1.453152027f);
  p = svmad_n_f32_x(pg, p, t, 1.421413741f);
  p = svmad_n_f32_x(pg, p, t, -0.284496736f);
  p = svmad_n_f32_x(pg, p, t, 0.254829592f);
  p = svmul_f32_x(pg, p, t);
  const svfloat32_t e = v_exp(svneg_f32_x(pg, svmul_f32_x(pg, ax, ax)));
  const svfloat32_t y = svmsb_n_f32_x(pg, p, e, 1.0f);   // 1 - p*e
  return svsel_f32(svcmplt_n_f32(pg, x, 0.0f), svneg_f32_x(pg, y), y);
}

static inline svfloat32_t v_gelu_erf(svfloat32_t v) {
  const svbool_t pg = svptrue_b32();
  const svfloat32_t e = v_erf(svmul_n_f32_x(pg, v, 0.70710678118654752f));
  return svmul_f32_x(pg, svmul_n_f32_x(pg, v, 0.5f), svadd_n_f32_x(pg, e, 1.0f));
}

template <int ACT>
static inline svfloat32_t v_activation(svfloat32_t v) {
  const svbool_t pg = svptrue_b32();
  // FMAX/FMIN keep NaN (relu(NaN) = NaN); svmaxnm would not.
  if (ACT == 1) return svmax_n_f32_x(pg, v, 0.0f);
  if (ACT == 2) return svmin_n_f32_x(pg, svmax_n_f32_x(pg, v, 0.0f), 6.0f);
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
"""


class Rvv(Isa):
    """RISC-V Vector 1.0, vector-length agnostic like SVE: vfloat32m1_t (LMUL 1)
    holds VLEN/32 lanes, VLEN read at run time (vsetvlmax); `lanes` is only
    what the plan assumed for blocking. Edges are vector lengths (a load or
    store of vl < VLMAX elements touches only those). Arithmetic runs at
    VLMAX: lanes past an edge hold don't-care values that are never stored.
    The types are sizeless, as SVE's: no arrays, no members, no sizeof.
    Intrinsics: the __riscv_-prefixed RVV C API (clang >= 16)."""

    _VL = "__riscv_vsetvlmax_e32m1()"

    def __init__(self, assumed_bits: int = 256, suffix: str = "rvv"):
        if assumed_bits < 128 or assumed_bits > 65536 or assumed_bits & (assumed_bits - 1):
            raise ValueError(f"RVV VLEN must be a power of two in 128..65536 bits, got {assumed_bits}")
        super().__init__("rvv", suffix, assumed_bits // 32, "vfloat32m1_t", ["riscv_vector.h"], fixed_lanes=False)

    def lanes_expr(self): return f"int64_t({self._VL})"
    def zero(self): return f"__riscv_vfmv_v_f_f32m1(0.0f, {self._VL})"
    def load(self, ptr): return f"__riscv_vle32_v_f32m1({ptr}, {self._VL})"
    def load_b(self, ptr): return self.load(ptr)
    def broadcast(self, ptr_expr): return f"__riscv_vfmv_v_f_f32m1({ptr_expr}, {self._VL})"
    def fma(self, a, b, c): return f"__riscv_vfmacc_vv_f32m1({c}, {a}, {b}, {self._VL})"
    def mask_decl(self, name, count_expr): return f"const size_t {name} = rvv_vl({count_expr});"
    def masked_load(self, mask, ptr): return f"__riscv_vle32_v_f32m1({ptr}, {mask})"
    def masked_store(self, mask, ptr, v): return f"__riscv_vse32_v_f32m1({ptr}, {v}, {mask});"
    def mul(self, a, b): return f"__riscv_vfmul_vv_f32m1({a}, {b}, {self._VL})"
    def add(self, a, b): return f"__riscv_vfadd_vv_f32m1({a}, {b}, {self._VL})"
    def set1(self, x): return self.broadcast(x)
    def loadu(self, ptr): return self.load(ptr)
    def storeu(self, ptr, v): return f"__riscv_vse32_v_f32m1({ptr}, {v}, {self._VL});"
    def sub(self, a, b): return f"__riscv_vfsub_vv_f32m1({a}, {b}, {self._VL})"
    # vfmax/vfmin return the number when one operand is NaN: compare and select instead.
    def clamp(self, v, lo, hi): return f"rvv_clamp({v}, {lo}, {hi})"
    # vfmax returns the number when one operand is NaN: compare (false with NaN) and select.
    def max_keep_nan(self, a, v):
        return f"__riscv_vmerge_vvm_f32m1({v}, {a}, __riscv_vmfgt_vv_f32m1_b32({a}, {v}, {self._VL}), {self._VL})"

    def vector_math(self) -> str:
        return r"""
// Elements of a vector holding `count` of them (count may be <= 0 or past
// VLMAX). Not vsetvl(count): for VLMAX < count < 2*VLMAX the spec lets that
// return less than VLMAX.
static inline size_t rvv_vl(int64_t count) {
  const size_t vlmax = __riscv_vsetvlmax_e32m1();
  return count <= 0 ? 0 : (static_cast<uint64_t>(count) < vlmax ? static_cast<size_t>(count) : vlmax);
}

// min(max(v, lo), hi) keeping NaN (comparisons with NaN are false; vfmax/vfmin return the number).
static inline vfloat32m1_t rvv_clamp(vfloat32m1_t v, vfloat32m1_t lo, vfloat32m1_t hi) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  v = __riscv_vmerge_vvm_f32m1(v, lo, __riscv_vmflt_vv_f32m1_b32(v, lo, vl), vl);
  return __riscv_vmerge_vvm_f32m1(v, hi, __riscv_vmfgt_vv_f32m1_b32(v, hi, vl), vl);
}

// exp(x): x = n*ln2 + r, |r| <= ln2/2 (ln2 split in two for exactness), e^r
// by its degree-6 Taylor polynomial (relative error ~1.2e-7), 2^n built in
// the exponent field as two factors so n down to -126*2 stays representable.
// n is rounded by the dynamic rounding mode: round to nearest even by default.
static inline vfloat32m1_t v_exp(vfloat32m1_t x) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  x = __riscv_vfmin_vf_f32m1(__riscv_vfmax_vf_f32m1(x, -87.0f, vl), 88.0f, vl);
  const vint32m1_t ni = __riscv_vfcvt_x_f_v_i32m1(__riscv_vfmul_vf_f32m1(x, 1.44269504088896341f, vl), vl);
  const vfloat32m1_t n = __riscv_vfcvt_f_x_v_f32m1(ni, vl);
  vfloat32m1_t r = __riscv_vfnmsac_vf_f32m1(x, 0.693145751953125f, n, vl);
  r = __riscv_vfnmsac_vf_f32m1(r, 1.428606765330187045e-06f, n, vl);
  vfloat32m1_t p = __riscv_vfmv_v_f_f32m1(1.0f / 720.0f, vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(1.0f / 120.0f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(1.0f / 24.0f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(1.0f / 6.0f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(0.5f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(1.0f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, r, __riscv_vfmv_v_f_f32m1(1.0f, vl), vl);
  const vint32m1_t h = __riscv_vsra_vx_i32m1(ni, 1, vl);
  const vfloat32m1_t s1 = __riscv_vreinterpret_v_i32m1_f32m1(__riscv_vsll_vx_i32m1(__riscv_vadd_vx_i32m1(h, 127, vl), 23, vl));
  const vfloat32m1_t s2 = __riscv_vreinterpret_v_i32m1_f32m1(
      __riscv_vsll_vx_i32m1(__riscv_vadd_vx_i32m1(__riscv_vsub_vv_i32m1(ni, h, vl), 127, vl), 23, vl));
  return __riscv_vfmul_vv_f32m1(__riscv_vfmul_vv_f32m1(p, s1, vl), s2, vl);
}

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v * sigmoid(2u), u = sqrt(2/pi) (v + 0.044715 v^3).
static inline vfloat32m1_t v_gelu_tanh(vfloat32m1_t v) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  const vfloat32m1_t v3 = __riscv_vfmul_vv_f32m1(__riscv_vfmul_vv_f32m1(v, v, vl), v, vl);
  const vfloat32m1_t u = __riscv_vfmul_vf_f32m1(__riscv_vfmacc_vf_f32m1(v, 0.044715f, v3, vl),
                                                -1.5957691216057308f, vl);  // -2*sqrt(2/pi)
  // e^u past 88 overflows: +inf there (v_exp clamps), so v = -inf gives NaN as the formula does.
  const vfloat32m1_t d = __riscv_vfmerge_vfm_f32m1(__riscv_vfadd_vf_f32m1(v_exp(u), 1.0f, vl), __builtin_inff(),
                                                   __riscv_vmfgt_vf_f32m1_b32(u, 88.0f, vl), vl);
  return __riscv_vfdiv_vv_f32m1(v, d, vl);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd extension.
static inline vfloat32m1_t v_erf(vfloat32m1_t x) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  const vfloat32m1_t ax = __riscv_vfabs_v_f32m1(x, vl);
  const vfloat32m1_t t = __riscv_vfrdiv_vf_f32m1(
      __riscv_vfmacc_vf_f32m1(__riscv_vfmv_v_f_f32m1(1.0f, vl), 0.3275911f, ax, vl), 1.0f, vl);
  vfloat32m1_t p = __riscv_vfmv_v_f_f32m1(1.061405429f, vl);
  p = __riscv_vfmadd_vv_f32m1(p, t, __riscv_vfmv_v_f_f32m1(-1.453152027f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, t, __riscv_vfmv_v_f_f32m1(1.421413741f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, t, __riscv_vfmv_v_f_f32m1(-0.284496736f, vl), vl);
  p = __riscv_vfmadd_vv_f32m1(p, t, __riscv_vfmv_v_f_f32m1(0.254829592f, vl), vl);
  p = __riscv_vfmul_vv_f32m1(p, t, vl);
  const vfloat32m1_t e = v_exp(__riscv_vfneg_v_f32m1(__riscv_vfmul_vv_f32m1(ax, ax, vl), vl));
  const vfloat32m1_t y = __riscv_vfnmsac_vv_f32m1(__riscv_vfmv_v_f_f32m1(1.0f, vl), p, e, vl);   // 1 - p*e
  return __riscv_vfsgnj_vv_f32m1(y, x, vl);   // |y| with the sign of x
}

static inline vfloat32m1_t v_gelu_erf(vfloat32m1_t v) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  const vfloat32m1_t e = v_erf(__riscv_vfmul_vf_f32m1(v, 0.70710678118654752f, vl));
  return __riscv_vfmul_vv_f32m1(__riscv_vfmul_vf_f32m1(v, 0.5f, vl), __riscv_vfadd_vf_f32m1(e, 1.0f, vl), vl);
}

template <int ACT>
static inline vfloat32m1_t v_activation(vfloat32m1_t v) {
  const size_t vl = __riscv_vsetvlmax_e32m1();
  // Compare and select: vfmax/vfmin would turn NaN into the bound.
  if (ACT == 1) return __riscv_vfmerge_vfm_f32m1(v, 0.0f, __riscv_vmflt_vf_f32m1_b32(v, 0.0f, vl), vl);
  if (ACT == 2) {
    const vfloat32m1_t r = __riscv_vfmerge_vfm_f32m1(v, 0.0f, __riscv_vmflt_vf_f32m1_b32(v, 0.0f, vl), vl);
    return __riscv_vfmerge_vfm_f32m1(r, 6.0f, __riscv_vmfgt_vf_f32m1_b32(r, 6.0f, vl), vl);
  }
  if (ACT == 3) return v_gelu_tanh(v);
  if (ACT == 4) return v_gelu_erf(v);
  return v;
}
"""


def isa_for_profile(profile) -> Isa:
    """The emitter for a profile: its ISA, and for portable code the baseline
    its flags allow (named so variants of one build never share a symbol)."""
    if profile.isa == "generic" and "-msse4.2" in profile.compile_flags:
        return Portable(lanes=max(1, profile.vector_bits // 32), suffix="sse42")
    if profile.isa == "generic":
        return Portable(lanes=max(1, profile.vector_bits // 32))
    if profile.isa == "sve":
        return Sve(assumed_bits=profile.vector_bits)
    if profile.isa == "rvv":
        return Rvv(assumed_bits=profile.vector_bits)
    return isa_for(profile.isa)


def fixed_lanes_isa_for_profile(profile) -> Isa:
    """The emitter for code that needs the lane count at generation time (the
    convolution kernels): the ISA of profile.fixed_lanes_profile(profile)."""
    return isa_for_profile(fixed_lanes_profile(profile))


def isa_for(key: str) -> Isa:
    if key == "avx512":
        return Avx512()
    if key == "avx2":
        return Avx2()
    if key == "neon":
        return Neon()
    if key == "sve":
        return Sve()
    if key == "rvv":
        return Rvv()
    if key == "generic":
        return Portable()
    raise ValueError(f"no code generator for isa {key!r}; known: avx512, avx2, neon, sve, rvv, generic")
