"""The executor's exp-based activations (sigmoid, silu, tanh, exp) and the
hard ones (hard_sigmoid, hard_swish) in the ISA's own intrinsics, for the x86
variants.

The executor's loops (cpp_runtime/src/model/loops_impl.h) are plain C++ the
vectorizer compiles per variant. For the exp family that code is slow: GCC
if-converts the range and NaN selects by masking every instruction of the
polynomial (AVX-512: 1.1-1.3 cycles per float on the Zen 5; AVX2: not
vectorized at all, 9 cycles per float), and tanh is libm's, a call per float
(40 cycles); under AVX2 even hard_swish's clamps ran at 2 cycles per float.
EfficientNet spent a third of its time in its 49 SiLUs. These
loops use the vector_math header's v_exp (the GEMM epilogue's) instead:
0.34 cycles per float for exp, 0.5 with the divide of sigmoid and silu,
measured in a stand-alone loop on the Zen 5.

The results keep the plain loops' edge semantics, so the variants agree:
exp is +inf above 88 and 0 below -87 (v_exp clamps its argument to that
range; the blends restore the ends), NaN stays NaN; sigmoid = 1 / (1 + e^-x),
silu = x / (1 + e^-x) (-inf gives NaN, as x * sigmoid(x) does), tanh =
1 - 2 / (1 + e^2x), with Cephes' odd polynomial below |x| = 0.625 where that
form would cancel; hard_sigmoid = min(1, max(0, a x + b)) and hard_swish =
x * min(1, max(0, x / 6 + 1/2)), with the operands ordered so NaN stays NaN
(x86 max / min return their second operand when either is NaN).

Other ISAs return "" and keep the plain loops (their v_exp has no blends in
the Isa interface yet)."""
from __future__ import annotations

from typing import Dict

from .isa import Isa

# Per ISA: how to spell what the loop needs beyond the Isa interface.
_X86: Dict[str, Dict[str, str]] = {
    "avx512": {
        "V": "__m512", "set1": "_mm512_set1_ps", "zero": "_mm512_setzero_ps()", "add": "_mm512_add_ps",
        "sub": "_mm512_sub_ps", "mul": "_mm512_mul_ps", "div": "_mm512_div_ps", "fma": "_mm512_fmadd_ps",
        "loadu": "_mm512_loadu_ps", "storeu": "_mm512_storeu_ps", "abs": "_mm512_abs_ps({x})",
        "max": "_mm512_max_ps", "min": "_mm512_min_ps",
        # where(c, a, b): a where the comparison c holds, else b
        "where_gt": "_mm512_mask_blend_ps(_mm512_cmp_ps_mask({x}, {c}, _CMP_GT_OQ), {b}, {a})",
        "where_lt": "_mm512_mask_blend_ps(_mm512_cmp_ps_mask({x}, {c}, _CMP_LT_OQ), {b}, {a})",
        "where_nan": "_mm512_mask_blend_ps(_mm512_cmp_ps_mask({x}, {x}, _CMP_UNORD_Q), {b}, {a})",
        "tail_load": "_mm512_maskz_loadu_ps(lane_mask(int(n - i)), x + i)",
        "tail_store": "_mm512_mask_storeu_ps(y + i, lane_mask(int(n - i)), v)",
    },
    "avx2": {
        "V": "__m256", "set1": "_mm256_set1_ps", "zero": "_mm256_setzero_ps()", "add": "_mm256_add_ps",
        "sub": "_mm256_sub_ps", "mul": "_mm256_mul_ps", "div": "_mm256_div_ps", "fma": "_mm256_fmadd_ps",
        "loadu": "_mm256_loadu_ps", "storeu": "_mm256_storeu_ps",
        "max": "_mm256_max_ps", "min": "_mm256_min_ps",
        "abs": "_mm256_andnot_ps(_mm256_set1_ps(-0.0f), {x})",
        "where_gt": "_mm256_blendv_ps({b}, {a}, _mm256_cmp_ps({x}, {c}, _CMP_GT_OQ))",
        "where_lt": "_mm256_blendv_ps({b}, {a}, _mm256_cmp_ps({x}, {c}, _CMP_LT_OQ))",
        "where_nan": "_mm256_blendv_ps({b}, {a}, _mm256_cmp_ps({x}, {x}, _CMP_UNORD_Q))",
        "tail_load": "_mm256_maskload_ps(x + i, lane_mask(int(n - i)))",
        "tail_store": "_mm256_maskstore_ps(y + i, lane_mask(int(n - i)), v)",
    },
}


def has_activation_loops(isa: Isa) -> bool:
    return isa.key in _X86


def emit_activation_loops(isa: Isa) -> str:
    """C++ (inside the variant TU's unnamed namespace, after the vector_math
    header and loops_impl.h): `unary_loops`, the executor's unary entry for
    this variant, and `kVariantModelLoops`. "" for ISAs without them."""
    if not has_activation_loops(isa):
        return ""
    s = _X86[isa.key]
    V = s["V"]

    def where(kind: str, x: str, c: str, a: str, b: str) -> str:
        return s[kind].format(x=x, c=c, a=a, b=b)

    abs_x = s["abs"].format(x="x")
    return f"""
// ---- the executor's activations in intrinsics (codegen/activation_loops.py) ----
// exp(t) with the plain loops' ends: +inf above 88, 0 below -87, NaN kept (v_exp clamps).
static inline {V} exp_with_ends({V} t) {{
  {V} e = v_exp(t);
  e = {where("where_gt", "t", s["set1"] + "(88.0f)", s["set1"] + "(__builtin_inff())", "e")};
  e = {where("where_lt", "t", s["set1"] + "(-87.0f)", s["zero"], "e")};
  return {where("where_nan", "t", "t", "t", "e")};
}}

template <detail::UnaryKind K>
static inline {V} activation({V} x, {V} pa, {V} pb) {{
  using detail::UnaryKind;
  const {V} one = {s["set1"]}(1.0f);
  if (K == UnaryKind::HardSigmoid) return {s["min"]}(one, {s["max"]}({s["zero"]}, {s["fma"]}(pa, x, pb)));
  if (K == UnaryKind::HardSwish) {{
    const {V} t = {s["fma"]}(x, {s["set1"]}(1.0f / 6.0f), {s["set1"]}(0.5f));
    return {s["mul"]}(x, {s["min"]}(one, {s["max"]}({s["zero"]}, t)));   // a NaN x: t clamps to a number, x * t is NaN
  }}
  if (K == UnaryKind::Exp) return exp_with_ends(x);
  if (K == UnaryKind::Tanh) {{
    // 1 - 2 / (1 + e^2x); below |x| = 0.625, x + x^3 P(x^2) (Cephes tanhf), where the first form cancels
    const {V} big = {s["sub"]}(one, {s["div"]}({s["set1"]}(2.0f), {s["add"]}(one, exp_with_ends({s["add"]}(x, x)))));
    const {V} z = {s["mul"]}(x, x);
    {V} p = {s["set1"]}(-5.70498872745e-3f);
    p = {s["fma"]}(p, z, {s["set1"]}(2.06390887954e-2f));
    p = {s["fma"]}(p, z, {s["set1"]}(-5.37397155531e-2f));
    p = {s["fma"]}(p, z, {s["set1"]}(1.33314422036e-1f));
    p = {s["fma"]}(p, z, {s["set1"]}(-3.33332819422e-1f));
    const {V} small = {s["fma"]}({s["mul"]}(p, z), x, x);
    return {where("where_lt", abs_x, s["set1"] + "(0.625f)", "small", "big")};
  }}
  const {V} d = {s["add"]}(one, exp_with_ends({s["sub"]}({s["zero"]}, x)));
  return {s["div"]}(K == UnaryKind::Silu ? x : one, d);
}}

template <detail::UnaryKind K>
static void activation_loop(const float* x, float* y, int64_t n, float a, float b) {{
  const {V} pa = {s["set1"]}(a), pb = {s["set1"]}(b);
  int64_t i = 0;
  for (; i + {isa.lanes} <= n; i += {isa.lanes}) {s["storeu"]}(y + i, activation<K>({s["loadu"]}(x + i), pa, pb));
  if (i < n) {{
    const {V} v = activation<K>({s["tail_load"]}, pa, pb);
    {s["tail_store"]};
  }}
}}

// The executor's unary entry for this variant: these activations here, the rest in loops_impl.h.
static void unary_loops(detail::UnaryKind k, const float* x, float* y, int64_t n, float a, float b) {{
  using detail::UnaryKind;
  switch (k) {{
    case UnaryKind::Sigmoid: activation_loop<UnaryKind::Sigmoid>(x, y, n, a, b); return;
    case UnaryKind::Silu: activation_loop<UnaryKind::Silu>(x, y, n, a, b); return;
    case UnaryKind::Tanh: activation_loop<UnaryKind::Tanh>(x, y, n, a, b); return;
    case UnaryKind::Exp: activation_loop<UnaryKind::Exp>(x, y, n, a, b); return;
    case UnaryKind::HardSigmoid: activation_loop<UnaryKind::HardSigmoid>(x, y, n, a, b); return;
    case UnaryKind::HardSwish: activation_loop<UnaryKind::HardSwish>(x, y, n, a, b); return;
    default: detail::model_loops_impl::unary(k, x, y, n, a, b);
  }}
}}

constexpr detail::ModelLoops kVariantModelLoops = {{&unary_loops, kModelLoopsTable.binary, kModelLoopsTable.pool_rows,
                                                   kModelLoopsTable.global_pool}};
"""
