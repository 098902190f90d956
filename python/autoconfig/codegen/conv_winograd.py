"""Emits the Winograd F(m x m, 3 x 3) convolution kernels (m = 2 or 4) for one ISA.

The emitted namespace `winograd_f{m}` implements detail::WinogradKernel
(conv_kernels.h): packed_weights_floats, pack_weights, run. The algorithm is a
tile-blocked, fused Winograd (see the header comment of the emitted code);
vector code is spelled only through the Isa methods, so one emitter serves
every fixed-length ISA (a scalable one is emitted from its fixed-lanes view:
see generate.render).

The mathematics (transform matrices, operation counts, error bounds) lives
in models/winograd.py, which the analytical model reads too.
"""
from __future__ import annotations

from fractions import Fraction as Fr
from typing import List, Optional, Sequence, Tuple

from ..isa_table import ISA
from ..models.winograd import WINOGRAD_REL_ERROR, transform_matrices, winograd_op_counts  # noqa: F401
from .common import comment_block
from .isa import Isa

# The generated translation unit already includes <algorithm> <cmath> <cstdint>
# <cstring>; these kernels need nothing more.
WINOGRAD_INCLUDES: List[str] = []

# Vector registers per ISA key, for the register tile (the ISA table's). An
# Isa may say so itself.
_VECTOR_REGISTERS = {k: r.vector_registers for k, r in ISA.items()}


# ---------------------------------------------------------------------------
# Emission helpers


def _fl(x: Fr) -> str:
    """A float literal, exact for the dyadic coefficients of these transforms."""
    return repr(float(x)) + "f"


def linear_combination(isa: Isa, coeffs: Sequence[Fr], inputs: Sequence[str]) -> str:
    """sum_j coeffs[j] * inputs[j] as one expression: +-1 cost an add/sub, the
    rest an FMA with a broadcast constant (shared with the weight packers,
    codegen/conv_prepare.py)."""
    terms = [(c, x) for c, x in zip(coeffs, inputs) if c != 0]
    if not terms:
        return isa.zero()
    terms.sort(key=lambda t: t[0] != 1)     # start from a +1 term when there is one
    c0, x0 = terms[0]
    expr = x0 if c0 == 1 else isa.mul(isa.set1(_fl(c0)), x0)
    for c, x in terms[1:]:
        if c == 1:
            expr = isa.add(expr, x)
        elif c == -1:
            expr = isa.sub(expr, x)
        else:
            expr = isa.fma(isa.set1(_fl(c)), x, expr)
    return expr


def _emit_apply(isa: Isa, matrix: Sequence[Sequence[Fr]], inputs: Sequence[str],
                outputs: Sequence[str]) -> List[str]:
    """Declarations outputs[i] = sum_j matrix[i][j] * inputs[j], as add/sub/FMA
    chains (coefficients +-1 cost no multiply)."""
    lines = []
    for out, row in zip(outputs, matrix):
        expr = linear_combination(isa, row, inputs)
        lines.append(f"const {isa.vtype} {out} = {expr};")
    return lines


def _register_tile(isa: Isa, vector_registers: int) -> Tuple[int, int]:
    """(MR tiles, NV vectors of output channels) of the GEMM register tile:
    the fewest loads per FMA, (MR + NV) / (MR * NV), among tiles whose
    accumulators, B vectors and one broadcast fit the register file. NV is a
    power of two so K = 64, 128, ... splits into whole panels."""
    if isa.lanes == 1:
        return 4, 4                              # scalar: 16 accumulators in GPR/FP registers
    best = None
    for nv in (1, 2, 4):
        mr = (vector_registers - nv - 1) // nv
        mr = min(mr, 8)
        if mr < 1:
            continue
        score = (mr + nv) / (mr * nv)
        if best is None or score < best[0]:
            best = (score, mr, nv)
    return best[1], best[2]


# ---------------------------------------------------------------------------
# The emitter


def emit_winograd(isa: Isa, m: int, l1_bytes: int = 32 * 1024, l2_bytes: int = 2 * 1024 * 1024,
                  vector_registers: Optional[int] = None, tile_block: Optional[int] = None) -> str:
    """C++ text of namespace winograd_f{m} (WinogradKernel's three functions) for isa.

    l1_bytes sizes the reduction block KC (one KC x NR panel of transformed
    weights stays in half of L1 while every tile group of a block streams past
    it); l2_bytes is the budget of the run-time tile-block choice (the
    transformed input/output of a block, and the transformed weights when they
    fit, in half of L2: the block's slices of Xp and y stream through L2 too,
    and on this 2 MiB-L2 machine a 3/4 budget measured ~10% slower on ResNet's
    56x56 layer). tile_block, when given, fixes the tiles per block
    instead (for an empirical search over it)."""
    mats = transform_matrices(m)
    if not isa.fixed_lanes:
        raise ValueError(f"Winograd needs a fixed lane count; emit it for the fixed-lanes view of {isa.suffix} "
                         "(codegen.isa.fixed_lanes_isa_for_profile)")
    regs = vector_registers or getattr(isa, "vector_registers", None) or _VECTOR_REGISTERS.get(isa.key, 16)
    mr, nv = _register_tile(isa, regs)
    L = isa.lanes
    nr = nv * L
    kc = max(8, (l1_bytes // 2) // (nr * 4))
    l2_usable = l2_bytes // 2
    a = m + 2
    p = _Params(isa=isa, m=m, a=a, L=L, mr=mr, nv=nv, nr=nr, kc=kc, l2_usable=l2_usable, mats=mats,
                tile_block=int(tile_block or 0))
    parts = [
        _header_comment(p, l1_bytes, l2_bytes, regs),
        f"namespace winograd_f{m} {{\n",
        _emit_constants(p),
        _emit_weight_packing(p),
        _emit_gemm_tiles(p),
        _emit_input_padding(p),
        _emit_input_transform(p),
        _emit_output_transform(p),
        _emit_work(p),
        _emit_output_segment(p),
        _emit_block_driver(p),
        _emit_run(p),
        f"}}  // namespace winograd_f{m}\n",
    ]
    return "\n".join(parts)


class _Params:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _header_comment(p: _Params, l1_bytes: int, l2_bytes: int, regs: int) -> str:
    m, a = p.m, p.a
    return comment_block([
        f"Winograd F({m}x{m}, 3x3) convolution, {p.isa.suffix} ({p.L} lanes). Fused, tile-blocked:",
        f"  1. x (NCHW) is copied once into Xp[C/{p.L}][Hp][Wp][{p.L}]: zero padding around it",
        "     (pads, plus the partial tiles at the bottom/right), channels in vector lanes",
        f"     ({p.L}x{p.L} in-register transposes).",
        f"  2. Each thread takes a range of the {m}x{m} output tiles (or, when tiles are few,",
        "     a range of output-channel panels) and walks it in blocks of TB tiles:",
        f"     a. V[xi][t][c] = (B^T d B)[xi] for the {a}x{a} input patch d of tile t, channel c,",
        f"        vectorized over channels ({a * a} positions xi);",
        "     b. for each xi: M[xi] (TB x K) = V[xi] (TB x C) . U[xi] (C x K), a register-tiled",
        f"        GEMM: {p.mr} tiles x {p.nv} vectors ({p.nr} output channels) of accumulators, C",
        f"        in blocks of KC = {p.kc};",
        "     c. y = A^T M A + bias per tile, vectorized over output channels, into the",
        f"        rows of a tile-row segment; {p.L}x{p.L} transposes turn them into rows of one",
        "        channel for the residual, the clamp (lo, hi) and the NCHW store.",
        f"  U[xi][K panel of {p.nr}][c][{p.nr}] = (G g G^T)[xi], K padded to the lanes ({p.L}).",
        f"Parameters: register tile {p.mr}x{p.nr} from {regs} vector registers (fewest loads per",
        f"FMA); KC = {p.kc}: a KC x {p.nr} weight panel in half of L1 ({l1_bytes} bytes);",
        f"TB chosen at run time to minimize the modelled L2-miss traffic with {p.l2_usable}",
        f"bytes (1/2 of L2 = {l2_bytes}) usable: U re-read per block when it does not stay",
        "in L2 with the block, V and M spilled when the block does not fit.",
    ])


def _emit_constants(p: _Params) -> str:
    consts = [
        ("int", "kM", p.m, "output tile edge"),
        ("int", "kA", p.a, "input tile edge, m + 2"),
        ("int", "kXi", p.a * p.a, "transform positions"),
        ("int", "kL", p.L, "lanes"),
        ("int", "kMR", p.mr, "register tile: tiles"),
        ("int", "kNV", p.nv, "register tile: vectors of output channels"),
        ("int", "kNR", p.nr, "output channels per weight panel"),
        ("int64_t", "kKC", p.kc, "reduction block (channels)"),
        ("double", "kL2Usable", f"{p.l2_usable}.0", "bytes of L2 for a tile block and U"),
        ("int64_t", "kFixedTileBlock", p.tile_block, "0: chosen by choose_tile_block"),
    ]
    lines = [f"constexpr {t} {n} = {v};".ljust(44) + f"// {c}" for t, n, v, c in consts]
    return "\n".join(lines + [
        "",
        "static inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }",
        "static inline int64_t ceil_div(int64_t v, int64_t by) { return (v + by - 1) / by; }",
        "",
    ])


def _emit_weight_packing(p: _Params) -> str:
    g = p.mats["G"]
    g_rows = ",\n    ".join("{" + ", ".join(repr(float(c)) for c in row) + "}" for row in g)
    return f"""// G of F({p.m}, 3): the weight transform, applied once per weight tensor in double.
static const double kG[kA][3] = {{
    {g_rows}}};

int64_t packed_weights_floats(int64_t K, int64_t C) {{ return int64_t(kXi) * C * round_up(K, kL); }}

// u[xi][panel][c][panel width]: panel n holds output channels [n*kNR, n*kNR + width),
// width = kNR except for the last panel (K rounded up to kL; padding is zero).
void pack_weights(const float* w, int64_t K, int64_t C, float* u) {{
  const int64_t Kp = round_up(K, kL);
  std::memset(u, 0, sizeof(float) * packed_weights_floats(K, C));
  for (int64_t k = 0; k < K; ++k) {{
    const int64_t panel = k / kNR, width = std::min<int64_t>(kNR, Kp - panel * kNR);
    for (int64_t c = 0; c < C; ++c) {{
      const float* g = w + (k * C + c) * 9;
      // Zero coefficients are skipped, not multiplied: 0 * inf would make a NaN
      // of an infinite weight in positions that do not depend on it.
      double gg[kA][3];  // G g
      for (int i = 0; i < kA; ++i)
        for (int s = 0; s < 3; ++s) {{
          gg[i][s] = 0.0;
          for (int r = 0; r < 3; ++r)
            if (kG[i][r] != 0.0) gg[i][s] += kG[i][r] * g[r * 3 + s];
        }}
      for (int i = 0; i < kA; ++i)
        for (int j = 0; j < kA; ++j) {{
          double v = 0.0;
          for (int s = 0; s < 3; ++s)
            if (kG[j][s] != 0.0) v += gg[i][s] * kG[j][s];
          u[(i * kA + j) * C * Kp + panel * kNR * C + c * width + (k - panel * kNR)] = float(v);
        }}
    }}
  }}
}}
"""


def _gemm_tile_name(r: int, v: int) -> str:
    return f"gemm_tile_{r}x{v}"


def _emit_gemm_tile(p: _Params, rows: int, nvec: int) -> str:
    isa, L = p.isa, p.L
    acc = [[f"c{i}_{j}" for j in range(nvec)] for i in range(rows)]
    o = [f"// mo[r][0, {nvec}*kL) (+)= sum_c a[r*lda + c] * b[c*ldb + (0, {nvec}*kL)], r < {rows}.",
         f"static void {_gemm_tile_name(rows, nvec)}(int64_t kc, const float* __restrict a, int64_t lda,",
         "    const float* __restrict b, int64_t ldb, float* __restrict mo, int64_t ldm, bool accumulate) {"]
    for i in range(rows):
        o.append(f"  const float* __restrict a{i} = a + {i} * lda;")
        o.append("  " + " ".join(f"{isa.vtype} {acc[i][j]} = {isa.zero()};" for j in range(nvec)))
    o.append("#pragma GCC unroll 4")
    o.append("  for (int64_t c = 0; c < kc; ++c) {")
    for j in range(nvec):
        o.append(f"    const {isa.vtype} b{j} = {isa.loadu(f'b + {j * L}')};")
    for i in range(rows):
        o.append(f"    {{ const {isa.vtype} av = {isa.broadcast(f'a{i}[c]')};")
        o.append("      " + " ".join(f"{acc[i][j]} = {isa.fma('av', f'b{j}', acc[i][j])};" for j in range(nvec)) + " }")
    o.append("    b += ldb;")
    o.append("  }")
    o.append("  if (accumulate) {")
    for i in range(rows):
        o.append("    " + " ".join(f"{acc[i][j]} = {isa.add(acc[i][j], isa.loadu(f'mo + {i} * ldm + {j * L}'))};"
                                   for j in range(nvec)))
    o.append("  }")
    for i in range(rows):
        o.append("  " + " ".join(isa.storeu(f"mo + {i} * ldm + {j * L}", acc[i][j]) for j in range(nvec)))
    o.append("}")
    return "\n".join(o) + "\n"


def _emit_gemm_tiles(p: _Params) -> str:
    fns = [_emit_gemm_tile(p, r, v) for r in range(1, p.mr + 1) for v in range(1, p.nv + 1)]
    table = ",\n    ".join("{" + ", ".join(_gemm_tile_name(r, v) for v in range(1, p.nv + 1)) + "}"
                           for r in range(1, p.mr + 1))
    return ("\n".join(fns)
            + "using GemmTile = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);\n"
            + "// [rows - 1][vectors - 1]: the full tile and every remainder of the block edges.\n"
            + f"static const GemmTile kGemmTiles[kMR][kNV] = {{\n    {table}}};\n")


def _emit_input_padding(p: _Params) -> str:
    return p.isa.transpose_fn("transpose_block") + """
// Rows [row_begin, row_end) of Xp (row index = channel block * Hp + padded row):
// channels in lanes, zero outside the image (pads and the partial-tile margin).
// kL x kL blocks (kL channels x kL columns) are transposed in registers; blocks
// at the channel or column edge go through a zero-filled copy.
static void pad_input_rows(const ConvGeometry& g, const float* x, float* xp, int64_t Hp, int64_t Wp,
                           int64_t row_begin, int64_t row_end) {
  alignas(64) float edge[kL * kL], edge_t[kL * kL];
  const int64_t HW = g.H * g.W;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t c0 = row / Hp * kL, ih = row % Hp - g.pad_top;
    float* dst = xp + row * Wp * kL;
    if (ih < 0 || ih >= g.H) {
      std::memset(dst, 0, sizeof(float) * Wp * kL);
      continue;
    }
    std::memset(dst, 0, sizeof(float) * g.pad_left * kL);
    std::memset(dst + (g.pad_left + g.W) * kL, 0, sizeof(float) * (Wp - g.pad_left - g.W) * kL);
    const float* src = x + (c0 * g.H + ih) * g.W;
    const int64_t channels = std::min<int64_t>(kL, g.C - c0);
    for (int64_t w0 = 0; w0 < g.W; w0 += kL) {
      const int64_t cols = std::min<int64_t>(kL, g.W - w0);
      float* out = dst + (g.pad_left + w0) * kL;
      if (channels == kL && cols == kL) {
        transpose_block(src + w0, HW, out, kL);
        continue;
      }
      std::memset(edge, 0, sizeof edge);
      for (int64_t l = 0; l < channels; ++l)
        for (int64_t j = 0; j < cols; ++j) edge[l * kL + j] = src[l * HW + w0 + j];
      transpose_block(edge, kL, edge_t, kL);
      std::memcpy(out, edge_t, sizeof(float) * cols * kL);
    }
  }
}
"""


def _emit_input_transform(p: _Params) -> str:
    isa, a = p.isa, p.a
    bt = p.mats["BT"]
    o = ["// v[xi * xi_stride] = (B^T d B)[xi] for kL channels, d[i][j] at d + i*row_stride + j*kL.",
         "// Columns first into tmp (L1), then rows: a+a short transforms instead of one a^2 x a^2.",
         "static inline void input_tile(const float* __restrict d, int64_t row_stride, float* __restrict v,",
         "                              int64_t xi_stride) {",
         "  alignas(64) float tmp[kXi * kL];",
         "  for (int j = 0; j < kA; ++j) {"]
    for i in range(a):
        o.append(f"    const {isa.vtype} d{i} = {isa.loadu(f'd + {i} * row_stride + j * kL')};")
    o += ["    " + l for l in _emit_apply(isa, bt, [f"d{i}" for i in range(a)], [f"t{i}" for i in range(a)])]
    for i in range(a):
        o.append("    " + isa.storeu(f"tmp + ({i} * kA + j) * kL", f"t{i}"))
    o.append("  }")
    o.append("  for (int i = 0; i < kA; ++i) {")
    for j in range(a):
        o.append(f"    const {isa.vtype} e{j} = {isa.loadu(f'tmp + (i * kA + {j}) * kL')};")
    o += ["    " + l for l in _emit_apply(isa, bt, [f"e{j}" for j in range(a)], [f"r{j}" for j in range(a)])]
    for j in range(a):
        o.append("    " + isa.storeu(f"v + (i * kA + {j}) * xi_stride", f"r{j}"))
    o.append("  }")
    o.append("}")
    return "\n".join(o) + "\n"


def _emit_output_transform(p: _Params) -> str:
    isa, a, m = p.isa, p.a, p.m
    at = p.mats["AT"]
    o = ["// out[r*out_row + s*kL + lane] = (A^T M A)[r][s] + bias, clamped to [lo, hi] when `clamp`;",
         "// M[xi] at mt + xi*xi_stride (kL output channels).",
         "static inline void output_tile(const float* __restrict mt, int64_t xi_stride, " + isa.vtype + " bias,",
         "                               bool clamp, float lo, float hi, float* __restrict out, int64_t out_row) {",
         "  alignas(64) float tmp[kM * kA * kL];",
         "  for (int j = 0; j < kA; ++j) {"]
    for i in range(a):
        o.append(f"    const {isa.vtype} q{i} = {isa.loadu(f'mt + ({i} * kA + j) * xi_stride')};")
    o += ["    " + l for l in _emit_apply(isa, at, [f"q{i}" for i in range(a)], [f"t{r}" for r in range(m)])]
    for r in range(m):
        o.append("    " + isa.storeu(f"tmp + ({r} * kA + j) * kL", f"t{r}"))
    o.append("  }")
    o.append(f"  const {isa.vtype} vlo = {isa.set1('lo')}, vhi = {isa.set1('hi')};")
    o.append("  for (int r = 0; r < kM; ++r) {")
    for j in range(a):
        o.append(f"    const {isa.vtype} e{j} = {isa.loadu(f'tmp + (r * kA + {j}) * kL')};")
    o += ["    " + l for l in _emit_apply(isa, at, [f"e{j}" for j in range(a)], [f"s{s}" for s in range(m)])]
    for s in range(m):
        o.append(f"    {isa.vtype} y{s} = {isa.add(f's{s}', 'bias')};")
        o.append(f"    if (clamp) y{s} = {isa.clamp(f'y{s}', 'vlo', 'vhi')};")
        o.append("    " + isa.storeu(f"out + r * out_row + {s} * kL", f"y{s}"))
    o.append("  }")
    o.append("}")
    return "\n".join(o) + "\n"


def _emit_work(p: _Params) -> str:
    return """// Everything a thread needs; Xp is shared, V, M and the output rows are the thread's scratch.
struct Work {
  const ConvGeometry* g;
  const float* x;
  const float* u;
  const ConvEpilogue* ep;
  float* y;
  float* xp;
  int64_t Hp, Wp, Cp, Kp;
  int64_t tiles_w, n_tiles, n_panels;
  int tile_parts, panel_parts;
};
"""


def _emit_output_segment(p: _Params) -> str:
    isa, vt = p.isa, p.isa.vtype
    return f"""// Tiles (th, tw .. tw + seg) of one tile row, output channels [pa*kNR, pb*kNR):
// A^T M A + bias into ob[r][column][kL] (channels in lanes; tile i's M row at
// mrow + i*Kp, xi stride mstride), then kL x kL transposes give rows of one
// channel for the residual, the clamp and a store (masked at the right edge).
static void output_segment(const Work& wk, int64_t th, int64_t tw, int64_t seg, const float* mrow,
                           int64_t mstride, int64_t pa, int64_t pb, float* ob) {{
  const ConvGeometry& g = *wk.g;
  const ConvEpilogue& ep = *wk.ep;
  const int64_t HoWo = g.Ho * g.Wo, Kp = wk.Kp;
  const int64_t ob_cols = round_up(seg * kM, kL);                    // floats per ob row: ob_cols * kL
  const int64_t rows = std::min<int64_t>(kM, g.Ho - th * kM);
  const int64_t cols = std::min<int64_t>(seg * kM, g.Wo - tw * kM);  // valid output columns
  const bool clamp_in_transform = ep.residual == nullptr;             // residual goes before the clamp
  const {vt} vlo = {isa.set1("ep.lo")}, vhi = {isa.set1("ep.hi")};
  alignas(64) float by_channel[kL * kL];
  const int64_t k_end = std::min<int64_t>(g.K, pb * kNR);
  for (int64_t k0 = pa * kNR; k0 < k_end; k0 += kL) {{
    {vt} bias = {isa.zero()};
    if (ep.bias) {{
      {isa.mask_decl("bias_mask", "int(g.K - k0)")}
      bias = {isa.masked_load("bias_mask", "ep.bias + k0")};
    }}
    for (int64_t i = 0; i < seg; ++i)
      output_tile(mrow + i * Kp + k0, mstride, bias, clamp_in_transform, ep.lo, ep.hi, ob + i * kM * kL,
                  ob_cols * kL);
    const int64_t channels = std::min<int64_t>(kL, g.K - k0);
    for (int64_t r = 0; r < rows; ++r) {{
      float* yrow = wk.y + k0 * HoWo + (th * kM + r) * g.Wo + tw * kM;
      const float* rrow = ep.residual ? ep.residual + (yrow - wk.y) : nullptr;
      for (int64_t w0 = 0; w0 < cols; w0 += kL) {{
        transpose_block(ob + (r * ob_cols + w0) * kL, kL, by_channel, kL);
        {isa.mask_decl("col_mask", "int(cols - w0)")}
        for (int64_t l = 0; l < channels; ++l) {{
          {vt} val = {isa.loadu("by_channel + l * kL")};
          if (rrow) val = {isa.clamp(isa.add("val", isa.masked_load("col_mask", "rrow + l * HoWo + w0")), "vlo", "vhi")};
          {isa.masked_store("col_mask", "yrow + l * HoWo + w0", "val")}
        }}
      }}
    }}
  }}
}}
"""


def _emit_block_driver(p: _Params) -> str:
    return """// Tiles per block: the fewest bytes expected to miss L2. Per block, U (the
// thread's panels) is re-read when it cannot stay in L2 next to the block's V
// and M; V and M are written and read back through L3 when they alone exceed
// L2. Ties go to the larger block (fewer passes over U).
static int64_t choose_tile_block(int64_t tiles, int64_t C, int64_t Cp, int64_t kcols) {
  if (kFixedTileBlock > 0) return std::min<int64_t>(kFixedTileBlock, tiles);
  const double u_bytes = 4.0 * kXi * C * kcols;
  const int64_t step = std::max<int64_t>(kMR, round_up(ceil_div(tiles, 256), kMR));
  int64_t best_tb = std::min<int64_t>(tiles, kMR);
  double best_cost = -1.0;
  for (int64_t tb = kMR;; tb += step) {
    tb = std::min(tb, tiles);
    const int64_t blocks = ceil_div(tiles, tb);
    const double vm_block = 4.0 * kXi * tb * (Cp + kcols);
    double cost = 0.0;
    if (u_bytes + vm_block > kL2Usable) cost += double(blocks - 1) * u_bytes;
    if (vm_block > kL2Usable) cost += 2.0 * vm_block * blocks;
    if (best_cost < 0.0 || cost <= best_cost) {
      best_cost = cost;
      best_tb = tb;
    }
    if (tb == tiles) break;
  }
  return best_tb;
}

// Tiles [t0, t0 + nt), output-channel panels [pa, pb): transform, multiply, transform back.
static void run_block(const Work& wk, int64_t t0, int64_t nt, int64_t pa, int64_t pb, float* v, float* mbuf,
                      float* ob) {
  const ConvGeometry& g = *wk.g;
  const int64_t Cp = wk.Cp, Kp = wk.Kp;
  // a. input transform, V[xi][t][Cp]
  for (int64_t cb = 0; cb < Cp / kL; ++cb) {
    for (int64_t t = 0; t < nt; ++t) {
      const int64_t th = (t0 + t) / wk.tiles_w, tw = (t0 + t) % wk.tiles_w;
      const float* d = wk.xp + ((cb * wk.Hp + th * kM) * wk.Wp + tw * kM) * kL;
      input_tile(d, wk.Wp * kL, v + t * Cp + cb * kL, nt * Cp);
    }
  }
  // b. M[xi][t][Kp] = V[xi] . U[xi] over the panels [pa, pb)
  for (int xi = 0; xi < kXi; ++xi) {
    const float* vx = v + xi * nt * Cp;
    const float* ux = wk.u + xi * g.C * Kp;
    float* mx = mbuf + xi * nt * Kp;
    for (int64_t panel = pa; panel < pb; ++panel) {
      const int64_t width = std::min<int64_t>(kNR, Kp - panel * kNR);
      const float* up = ux + panel * kNR * g.C;
      for (int64_t c0 = 0; c0 < g.C; c0 += kKC) {
        const int64_t kc = std::min<int64_t>(kKC, g.C - c0);
        for (int64_t t = 0; t < nt; t += kMR) {
          const int64_t rows = std::min<int64_t>(kMR, nt - t);
          kGemmTiles[rows - 1][width / kL - 1](kc, vx + t * Cp + c0, Cp, up + c0 * width, width,
                                               mx + t * Kp + panel * kNR, Kp, c0 > 0);
        }
      }
    }
  }
  // c. output transform and epilogue, one tile-row segment at a time
  for (int64_t t = t0; t < t0 + nt;) {
    const int64_t th = t / wk.tiles_w, tw = t % wk.tiles_w;
    const int64_t seg = std::min(wk.tiles_w - tw, t0 + nt - t);
    output_segment(wk, th, tw, seg, mbuf + (t - t0) * Kp, nt * Kp, pa, pb, ob);
    t += seg;
  }
}
"""


def _emit_run(p: _Params) -> str:
    return """static void pad_input_task(void* ctx, int tid, int nthreads) {
  const Work& wk = *static_cast<const Work*>(ctx);
  const int64_t rows = wk.Cp / kL * wk.Hp;
  pad_input_rows(*wk.g, wk.x, wk.xp, wk.Hp, wk.Wp, rows * tid / nthreads, rows * (tid + 1) / nthreads);
}

// Thread tid owns tile part tid / panel_parts and panel part tid % panel_parts.
static void winograd_task(void* ctx, int tid, int) {
  const Work& wk = *static_cast<const Work*>(ctx);
  if (tid >= wk.tile_parts * wk.panel_parts) return;
  const int tp = tid / wk.panel_parts, pp = tid % wk.panel_parts;
  const int64_t ta = wk.n_tiles * tp / wk.tile_parts, tb = wk.n_tiles * (tp + 1) / wk.tile_parts;
  const int64_t pa = wk.n_panels * pp / wk.panel_parts, pb = wk.n_panels * (pp + 1) / wk.panel_parts;
  if (ta == tb || pa == pb) return;
  const int64_t kcols = std::min(pb * kNR, wk.Kp) - pa * kNR;
  const int64_t block = choose_tile_block(tb - ta, wk.g->C, wk.Cp, kcols);
  const size_t v_floats = size_t(kXi) * block * wk.Cp, m_floats = size_t(kXi) * block * wk.Kp;
  const size_t ob_floats = size_t(kM) * round_up(wk.tiles_w * kM, kL) * kL;
  float* v = thread_scratch(kScratchConv0, v_floats + m_floats + ob_floats);
  for (int64_t t0 = ta; t0 < tb; t0 += block)
    run_block(wk, t0, std::min(block, tb - t0), pa, pb, v, v + v_floats, v + v_floats + m_floats);
}

void run(const ConvGeometry& g, const float* x, const float* u, const ConvEpilogue& ep, float* y, int threads) {
  Work wk;
  wk.g = &g;
  wk.x = x;
  wk.u = u;
  wk.ep = &ep;
  wk.y = y;
  const int64_t tiles_h = ceil_div(g.Ho, kM);
  wk.tiles_w = ceil_div(g.Wo, kM);
  wk.n_tiles = tiles_h * wk.tiles_w;
  wk.Hp = tiles_h * kM + 2;
  wk.Wp = wk.tiles_w * kM + 2;
  wk.Cp = round_up(g.C, kL);
  wk.Kp = round_up(g.K, kL);
  wk.n_panels = ceil_div(wk.Kp, kNR);
  threads = std::max(threads, 1);
  // Few tiles (small images): split output channels instead, each thread
  // reading only its share of U (the dominant traffic there).
  if (wk.n_tiles >= int64_t(threads) * 2 * kMR || wk.n_panels == 1) {
    wk.tile_parts = int(std::min<int64_t>(threads, wk.n_tiles));
    wk.panel_parts = 1;
  } else {
    wk.panel_parts = int(std::min<int64_t>(threads, wk.n_panels));
    wk.tile_parts = std::max(1, threads / wk.panel_parts);
  }
  wk.xp = thread_scratch(kScratchConv1, size_t(wk.Cp) * wk.Hp * wk.Wp);
  const int pad_threads = int(std::min<int64_t>(threads, wk.Cp / kL * wk.Hp));
  if (pad_threads > 1) parallel_run(pad_threads, pad_input_task, &wk);
  else pad_input_task(&wk, 0, 1);
  const int workers = wk.tile_parts * wk.panel_parts;
  if (workers > 1) parallel_run(workers, winograd_task, &wk);
  else winograd_task(&wk, 0, 1);
}
"""
