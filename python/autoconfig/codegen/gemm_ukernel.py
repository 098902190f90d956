"""Emits the GEMM register-tile microkernel for one ISA and tile mr x nr.

The microkernel multiplies an MR-row panel of packed A (row r at a + r*KC)
by a k-major B panel (row k at b + k*ldb: ldb = NR when packed, B's row
stride when read in place) into MR x NR accumulators kept
in registers, then stores the tile through the fused epilogue
(alpha/beta, bias, activation) with lane masks on the right edge and a row
count on the bottom edge.

Scalable ISAs (SVE) get the same tile from _emit_scalable: NR is fixed at
generation time (the packing layout depends on it) but the vector length is
not, so the tile's columns are covered at run time by passes of svcntw()-wide
predicated vectors (see _emit_scalable).
"""
from __future__ import annotations

from .isa import Isa


# k steps left when the C tile is prefetched into L1: enough to cover a miss
# to L3 (~100 ns) at a few cycles per step for any tile.
C_PREFETCH_K = 32


def _row_line_offsets(nr: int) -> list:
    """Float offsets that touch every 64-byte line of an nr-float C row at any
    alignment: one per 16 floats plus the last float (a row of user memory
    need not start on a line, and then it spans one line more)."""
    return list(range(0, nr, 16)) + [nr - 1]


def ukernel_name(isa: Isa, mr: int, nr: int) -> str:
    return f"f32_gemm_ukernel_{mr}x{nr}_{isa.suffix}"


def emit_ukernel(isa: Isa, mr: int, nr: int) -> str:
    return _emit_simd(isa, mr, nr) if isa.fixed_lanes else _emit_scalable(isa, mr, nr)


def _emit_simd(isa: Isa, mr: int, nr: int) -> str:
    if nr % isa.lanes:
        raise ValueError(f"nr={nr} is not a multiple of the {isa.suffix} vector ({isa.lanes} lanes)")
    nv = nr // isa.lanes
    L = isa.lanes
    name = ukernel_name(isa, mr, nr)
    acc = [[f"c{i}_{j}" for j in range(nv)] for i in range(mr)]
    o = []
    o.append(f"struct {name} {{")
    o.append(f"  static constexpr int MR = {mr}, NR = {nr};")
    o.append("  // KC > 0: A packed with row stride KC (a compile-time constant, so one")
    o.append("  // base register addresses every row); KC == 0: A read in place, row stride lda.")
    o.append("  template <int KC, int ACT>")
    o.append("  static void run(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,")
    o.append("                  float* __restrict c, int64_t ldc, int mrows, int ncols,")
    o.append("                  const TileEpilogue& ep, int64_t lda = 0) {")
    o.append("    const int64_t LDA = KC > 0 ? KC : lda;")
    for i in range(mr):
        o.append("    " + " ".join(f"{isa.vtype} {acc[i][j]} = {isa.zero()};" for j in range(nv)))
    # The C tile is read by the epilogue. Prefetched into L1 at the start it
    # would be lost to the A/B streams that fill L1 during the k loop, so it
    # goes to L2 first and into L1 only for the last C_PREFETCH_K steps.
    o.append(f"    const int64_t k_main = kc > {C_PREFETCH_K} ? kc - {C_PREFETCH_K} : 0;")
    o.append("    int64_t k = 0;")
    # Start C on its way to L2 now (it may be in DRAM); L2 has the sets to
    # hold a tall tile even when ldc is a multiple of the L1 way size.
    o.append("    for (int r = 0; r < mrows; ++r) {")
    for off in _row_line_offsets(nr):
        o.append(f"      {isa.prefetch_l2(f'c + r * ldc + {off}')}")
    o.append("    }")
    body = []
    for j in range(nv):
        body.append(f"      const {isa.vtype} b{j} = {isa.load_b(f'b + {j * L}')};")
    for i in range(mr):
        body.append(f"      {{ const {isa.vtype} av = {isa.broadcast(f'a[{i} * LDA]')};")
        body.append("        " + " ".join(f"{acc[i][j]} = {isa.fma('av', f'b{j}', acc[i][j])};" for j in range(nv)) + " }")
    body.append("      a += 1;")
    body.append("      b += ldb;")
    o.append("#pragma GCC unroll 4")
    o.append("    for (; k < k_main; ++k) {")
    o += body
    o.append("    }")
    o.append("    for (int r = 0; r < mrows; ++r) {")
    for off in _row_line_offsets(nr):
        o.append(f"      {isa.prefetch(f'c + r * ldc + {off}')}")
    o.append("    }")
    o.append("#pragma GCC unroll 4")
    o.append("    for (; k < kc; ++k) {")
    o += body
    o.append("    }")
    # Epilogue. A full-width tile uses plain loads and stores: masked ones
    # cost several times more on some cores (AVX2 vmaskmov on AMD Zen), and
    # all but the right-edge tiles are full. The bottom edge is a row count.
    o.append(f"    const {isa.vtype} valpha = {isa.set1('ep.alpha')};")
    o.append(f"    const {isa.vtype} vbeta = {isa.set1('ep.beta')};")
    o.append("    if (ncols == NR) {")
    o += _store_rows(isa, mr, nv, acc, lambda j, p: isa.loadu(p), lambda j, p, v: isa.storeu(p, v), "      ")
    o.append("    } else {")
    for j in range(nv):
        o.append("      " + isa.mask_decl(f"m{j}", f"ncols - {j * L}"))
    o += _store_rows(isa, mr, nv, acc, lambda j, p: isa.masked_load(f"m{j}", p),
                     lambda j, p, v: isa.masked_store(f"m{j}", p, v), "      ")
    o.append("    }")
    o.append("  }")
    o.append("};")
    return "\n".join(o) + "\n"


def _store_rows(isa: Isa, mr: int, nv: int, acc, load, store, indent: str,
                col=None, cin: str = "ep.cin", bias_col: str = "ep.bias_col") -> list:
    """The epilogue of rows 0..mrows-1: c = act(alpha*acc + beta*cin + biases).
    load(j, ptr) / store(j, ptr, v) spell vector j's access (plain, masked or
    predicated); col(j) is vector j's column offset; cin and bias_col name the
    (possibly null) pointers to the tile's first C_in column and bias."""
    col = col or (lambda j: str(j * isa.lanes))
    o = []
    for i in range(mr):
        guard = "" if i == 0 else f"if (mrows > {i}) "
        o.append(f"{indent}{guard}{{")
        o.append(f"{indent}  float* crow = c + {i} * ldc;")
        o.append(f"{indent}  const float* cin_row = {cin} ? {cin} + {i} * ep.ld_cin : nullptr;")
        o.append(f"{indent}  const {isa.vtype} brow = ep.bias_row ? {isa.set1(f'ep.bias_row[{i}]')} : {isa.zero()};")
        for j in range(nv):
            v = f"v{j}"
            o.append(f"{indent}  {isa.vtype} {v} = {isa.mul(acc[i][j], 'valpha')};")
            o.append(f"{indent}  if (cin_row) {v} = {isa.fma('vbeta', load(j, f'cin_row + {col(j)}'), v)};")
            o.append(f"{indent}  if (ep.final) {{")
            o.append(f"{indent}    {v} = {isa.add(v, 'brow')};")
            o.append(f"{indent}    if ({bias_col}) {v} = {isa.add(v, load(j, f'{bias_col} + {col(j)}'))};")
            o.append(f"{indent}    {v} = v_activation<ACT>({v});")
            o.append(f"{indent}  }}")
            o.append(f"{indent}  {store(j, f'crow + {col(j)}', v)}")
        o.append(f"{indent}}}")
    return o


def _emit_scalable(isa: Isa, mr: int, nr: int) -> str:
    """Vector-length-agnostic microkernel (isa.fixed_lanes is False).

    The plan's tile is mr x nr with nr = nv vectors of the lanes it assumed.
    At run time vl = lanes_expr(): a pass handles up to nv vectors of vl lanes
    per row, predicated to the columns left, and the kernel runs as many passes
    as the tile's columns need (vl smaller than assumed: several passes, each
    re-reading the L1-resident A panel; vl larger: one pass with fewer vectors).
    One pass function per vector count 1..nv keeps every accumulator a named
    local (sizeless vector types cannot live in arrays) and never spends FMAs on
    all-false vectors. B is read through the predicates too: a vector may reach
    past NR when vl does not divide it."""
    if nr % isa.lanes:
        raise ValueError(f"nr={nr} is not a multiple of the {isa.suffix} assumed vector ({isa.lanes} lanes)")
    nv = nr // isa.lanes
    name = ukernel_name(isa, mr, nr)
    o = [f"struct {name} {{",
         f"  static constexpr int MR = {mr}, NR = {nr};",
         f"  // Plan: {nv} vectors of {isa.lanes} lanes per row; the hardware's vector length decides the passes.",
         "  template <int KC, int ACT>",
         "  static void run(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,",
         "                  float* __restrict c, int64_t ldc, int mrows, int ncols,",
         "                  const TileEpilogue& ep, int64_t lda = 0) {",
         f"    const int64_t vl = {isa.lanes_expr()};",
         "    for (int r = 0; r < mrows; ++r)  // C to L2 now, to L1 near the end of each pass (see pass_*)",
         f"      for (int off = 0; off < ncols; off += 16) {isa.prefetch_l2('c + r * ldc + off')}",
         f"    for (int64_t j0 = 0; j0 < ncols; j0 += {nv} * vl) {{",
         "      const int left = ncols - static_cast<int>(j0);"]
    for n in range(nv, 0, -1):
        call = f"pass_{n}<KC, ACT>(kc, a, b, ldb, c, ldc, mrows, left, ep, j0, lda);"
        if n == 1:
            o.append(f"      {'else ' if nv > 1 else ''}{call}")
        else:
            o.append(f"      {'else ' if n < nv else ''}if (left > {n - 1} * vl) {call}")
    o.append("    }")
    o.append("  }")
    for n in range(1, nv + 1):
        o += _scalable_pass(isa, mr, n)
    o.append("};")
    return "\n".join(o) + "\n"


def _scalable_pass(isa: Isa, mr: int, nvec: int) -> list:
    """Columns [j0, j0 + ncols) of the tile (ncols <= nvec * vl) with nvec vectors per row."""
    acc = [[f"c{i}_{j}" for j in range(nvec)] for i in range(mr)]
    o = ["  template <int KC, int ACT>",
         f"  static void pass_{nvec}(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,",
         "                     float* __restrict c, int64_t ldc, int mrows, int ncols,",
         "                     const TileEpilogue& ep, int64_t j0, int64_t lda) {",
         "    const int64_t LDA = KC > 0 ? KC : lda;",
         f"    const int64_t vl = {isa.lanes_expr()};",
         "    b += j0;",
         "    c += j0;"]
    for j in range(nvec):
        o.append("    " + isa.mask_decl(f"m{j}", f"ncols - {j} * vl"))
    for i in range(mr):
        o.append("    " + " ".join(f"{isa.vtype} {acc[i][j]} = {isa.zero()};" for j in range(nvec)))
    body = []
    for j in range(nvec):
        body.append(f"      const {isa.vtype} b{j} = {isa.masked_load(f'm{j}', f'b + {j} * vl')};")
    for i in range(mr):
        body.append(f"      {{ const {isa.vtype} av = {isa.broadcast(f'a[{i} * LDA]')};")
        body.append("        " + " ".join(f"{acc[i][j]} = {isa.fma('av', f'b{j}', acc[i][j])};"
                                          for j in range(nvec)) + " }")
    body += ["      a += 1;", "      b += ldb;"]
    o.append(f"    const int64_t k_main = kc > {C_PREFETCH_K} ? kc - {C_PREFETCH_K} : 0;")
    o.append("    int64_t k = 0;")
    o.append("#pragma GCC unroll 4")
    o.append("    for (; k < k_main; ++k) {")
    o += body
    o.append("    }")
    o.append("    for (int r = 0; r < mrows; ++r) {  // the C rows the epilogue reads, into L1")
    o.append(f"      for (int off = 0; off < ncols; off += 16) {isa.prefetch('c + r * ldc + off')}")
    o.append(f"      {isa.prefetch('c + r * ldc + ncols - 1')}")
    o.append("    }")
    o.append("#pragma GCC unroll 4")
    o.append("    for (; k < kc; ++k) {")
    o += body
    o.append("    }")
    o.append(f"    const {isa.vtype} valpha = {isa.set1('ep.alpha')};")
    o.append(f"    const {isa.vtype} vbeta = {isa.set1('ep.beta')};")
    # This pass's columns start at j0 of the tile (c was advanced already).
    o.append("    const float* cin0 = ep.cin ? ep.cin + j0 : nullptr;")
    o.append("    const float* bcol = ep.bias_col ? ep.bias_col + j0 : nullptr;")
    o += _store_rows(isa, mr, nvec, acc, lambda j, p: isa.masked_load(f"m{j}", p),
                     lambda j, p, v: isa.masked_store(f"m{j}", p, v), "    ",
                     col=lambda j: f"{j} * vl", cin="cin0", bias_col="bcol")
    o.append("  }")
    return o
