"""Emits the C++ for GEMM plans: one header per (ISA, register tile) holding
the microkernel, one translation unit per plan holding its entry point."""
from __future__ import annotations


from ..models.gemm import LOOP_ORDER_ENUM
from ..plan import Plan
from ..vocabulary import ACTIVATIONS
from .common import file_header
from .gemm_ukernel import emit_ukernel, ukernel_name
from .isa import Isa

ACT_ENUM = {"none": "None", "relu": "Relu", "relu6": "Relu6", "gelu_tanh": "GeluTanh", "gelu_erf": "GeluErf"}


def vmath_header_name(isa: Isa) -> str:
    return f"f32_vmath_{isa.suffix}.h"


def emit_vmath_header(isa: Isa) -> str:
    inc = "\n".join(f"#include <{h}>" for h in isa.includes)
    return (file_header(f"{vmath_header_name(isa)}: epilogue math (activations) for {isa.suffix}.")
            + "#pragma once\n" + inc + "\n\nnamespace autoconfig {\nnamespace detail {\nnamespace {\n"
            + isa.vector_math() + "\n}  // namespace\n}  // namespace detail\n}  // namespace autoconfig\n")


def ukernel_header_name(isa: Isa, mr: int, nr: int) -> str:
    return ukernel_name(isa, mr, nr) + ".h"


def emit_ukernel_header(isa: Isa, mr: int, nr: int) -> str:
    return (file_header(f"{ukernel_header_name(isa, mr, nr)}: {mr}x{nr} fp32 register-tile microkernel for {isa.suffix}.",
                        [f"A: MR={mr} row panel, row r at a + r*KC; B: k-major NR={nr} panel, row k at b + k*ldb.",
                         "Epilogue fused into the store: alpha/beta, row and column bias, activation;",
                         "lane masks on the right edge, a row count on the bottom edge."])
            + "#pragma once\n#include <cstdint>\n\n#include \"autoconfig/detail/gemm_driver.h\"\n"
            + f"#include \"{vmath_header_name(isa)}\"\n\n"
            + "namespace autoconfig {\nnamespace detail {\nnamespace {\n\n"
            + emit_ukernel(isa, mr, nr)
            + "\n}  // namespace\n}  // namespace detail\n}  // namespace autoconfig\n")


def entry_symbol(plan: Plan) -> str:
    return plan.kernel


def prepared_entry_symbol(plan: Plan) -> str:
    """The entry reading a B packed ahead (PreparedGemmB); the plain entry calls it with none."""
    return plan.kernel + "_prepared_b"


def _in_place_a_fields(plan: Plan) -> str:
    """GemmBlocking's a-panel-in-L1 in-place A fields, when the plan has them."""
    if "direct_a_panel_bytes" not in plan.params:
        return ""
    return (f", {plan.value('direct_a_panel_bytes')}, {plan.value('l1_way_bytes')}, "
            f"{plan.value('direct_a_lines_per_set')}")


def prepared_kc(plan: Plan) -> int:
    """Deepest k block of a prepared B (the layout PreparedGemmB packs)."""
    return plan.value("prepared_kc") if "prepared_kc" in plan.params else plan.value("kc")


def _prepared_blocking(plan: Plan) -> str:
    """GemmBlocking for a B prepared ahead: the plan's prepared_* choice, or
    the per-call blocking when the plan has none (tuning candidates); the
    thread grid is chosen per call for its loop order."""
    if "prepared_loop_order" not in plan.params:
        order, kc, mc, nc = plan.value("loop_order"), plan.value("kc"), plan.value("mc"), plan.value("nc")
    else:
        order, kc = plan.value("prepared_loop_order"), plan.value("prepared_kc")
        mc, nc = plan.value("prepared_mc"), plan.value("prepared_nc")
    in_place = _in_place_a_fields(plan) if order == plan.value("loop_order") else ""
    return (f"{{{kc}, {mc}, {nc}, 0, 0, {plan.value('direct_a_bytes')}, {LOOP_ORDER_ENUM[order]}"
            f"{in_place}}}")


def emit_entry(isa: Isa, plan: Plan) -> str:
    mr, nr = plan.value("mr"), plan.value("nr")
    kc, mc, nc = plan.value("kc"), plan.value("mc"), plan.value("nc")
    grid = plan.params.get("grid")
    tm, tn = (int(x) for x in grid.value.split("x")) if grid else (0, 0)
    ukr = ukernel_name(isa, mr, nr)
    body = [
        "#include <cstdint>",
        "",
        "#include \"autoconfig/detail/gemm_driver.h\"",
        f"#include \"{ukernel_header_name(isa, mr, nr)}\"",
        "",
        "namespace autoconfig {",
        "namespace detail {",
        "",
        f"void {prepared_entry_symbol(plan)}(const GemmArgs& g, int threads, const float* prepared_b) {{",
        f"  static constexpr GemmBlocking kPerCall{{{kc}, {mc}, {nc}, {tm}, {tn}, {plan.value('direct_a_bytes')}, "
        f"{LOOP_ORDER_ENUM[plan.value('loop_order')]}{_in_place_a_fields(plan)}}};",
        f"  static constexpr GemmBlocking kPrepared{_prepared_blocking(plan)};",
        "  const GemmBlocking& kBlocking = prepared_b ? kPrepared : kPerCall;",
        "  switch (g.act) {",
    ]
    for a in plan.activations:
        body.append(f"    case Activation::{ACT_ENUM[a]}:")
        body.append(f"      gemm_run<{mr}, {nr}, {kc}, {ACTIVATIONS.index(a)}, {ukr}>(g, kBlocking, threads, prepared_b);")
        body.append("      return;")
    body += [
        "    default:",
        "      return;  // the dispatcher only routes activations listed in the registry",
        "  }",
        "}",
        "",
        f"void {entry_symbol(plan)}(const GemmArgs& g, int threads) {{ {prepared_entry_symbol(plan)}(g, threads, nullptr); }}",
        "",
        "}  // namespace detail",
        "}  // namespace autoconfig",
    ]
    title = f"{entry_symbol(plan)}.cpp: fp32 GEMM, " + (
        "any shape" if plan.shape is None else "M={M} N={N} K={K}".format(**plan.shape))
    return file_header(title, ["Plan:"] + ["  " + l for l in plan.explain().splitlines()]) + "\n".join(body) + "\n"


def act_mask(plan: Plan) -> int:
    m = 0
    for a in plan.activations:
        m |= 1 << ACTIVATIONS.index(a)
    return m
