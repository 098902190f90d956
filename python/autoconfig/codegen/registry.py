"""Emits kernel_registry_<variant>.cpp: the variant's kernel table the dispatcher
searches (GEMM entries, conv plans, the conv model's coefficients), and the
build's facts."""
from __future__ import annotations

from typing import Dict, List

from ..isa_table import FLAG_FEATURES
from ..plan import Plan, plans_to_json
from ..profile import HostProfile
from .common import cpp_string_literal, file_header
from .gemm import act_mask, entry_symbol, prepared_entry_symbol, prepared_kc

# Each pool thread must have at least this much work (at peak) before the
# generic kernel adds it: thread wake-up and barriers cost a few microseconds.
MIN_SECONDS_PER_THREAD = 50e-6




def required_features(profile: HostProfile) -> List[str]:
    feats: List[str] = []
    for flag in profile.compile_flags:
        needed = FLAG_FEATURES.get(flag)
        if needed is None:
            raise ValueError(f"compile flag {flag!r} of target {profile.name} has no known cpu feature; "
                             f"known: {', '.join(sorted(FLAG_FEATURES))}")
        feats += [f for f in needed if f not in feats]
    return feats


def isa_level(profile: HostProfile) -> int:
    """x86-64 micro-architecture level of the code (AUTOCONFIG_MAX_ISA compares it).

    Levels are an x86-64 notion: Arm and RISC-V builds hold one variant, at level 1."""
    req = set(required_features(profile))
    if "avx512f" in req:
        return 4
    if "avx2" in req:
        return 3
    if "sse4_2" in req:
        return 2
    return 1


def variant_id(profile: HostProfile) -> str:
    return "".join(c if c.isalnum() else "_" for c in profile.name)


def registry_tu_name(vid: str) -> str:
    """The translation unit of a variant's kernel table (all families' kernels, not only GEMM's)."""
    return f"kernel_registry_{vid}.cpp"


# ConvModel fields, in declaration order (cpp_runtime/include/autoconfig/detail/conv_model.h).
CONV_MODEL_FIELDS = ("lanes", "fma_units", "fma_latency", "hz", "peak_flops", "fma_thread_scaling", "loads_per_cycle",
                     "issue_jitter",
                     "sync_seconds", "copy_cycles_per_element", "tile_overhead_cycles", "tap_overhead_cycles",
                     "call_overhead_cycles", "transform_efficiency", "winograd_gemm_efficiency", "gemm_mr",
                     "gemm_nr", "gemm_kc", "gemm_inv_eff_a", "gemm_inv_eff_b", "depthwise_ow_tile",
                     "winograd_f2_error", "winograd_f4_error", "l1_bytes", "l1_ways",
                     "line_bytes", "l2_bytes", "l3_bytes", "bw_l1", "bw_l2", "bw_l3", "bw_dram",
                     "prepare_cycles_per_element", "copy_bw_l1", "copy_bw_l2", "copy_bw_l3", "copy_bw_dram",
                     "weight_transform_efficiency")
CONV_ALGORITHM_ENUM = {"direct": "Direct", "gemm-1x1": "Gemm1x1", "im2col-gemm": "Im2colGemm",
                       "winograd-f2": "WinogradF2", "winograd-f4": "WinogradF4", "depthwise": "Depthwise"}


def _conv_rows(conv_plans: List[Plan]) -> List[str]:
    rows = []
    for p in conv_plans:
        s = p.shape
        dims = ", ".join(str(s[k]) for k in ("C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top",
                                              "pad_left", "pad_bottom", "pad_right", "dilation_h", "dilation_w",
                                              "groups"))
        if p.algorithm == "direct":
            direct = (f"{{{p.value('tile_index')}, {str(p.value('input') == 'nchw').lower()}, {p.value('chunk')}, "
                      f"{str(p.value('order') == 'groups-inner').lower()}, {p.value('c_blocks')}}}")
        else:
            direct = "{}"
        rows.append(f"    {{{dims}, {p.value('threads')}, ConvAlgorithm::{CONV_ALGORITHM_ENUM[p.algorithm]}, {direct}}},"
                    f"  // {p.spec}")
    return rows


def _prepared_fields(p: Plan) -> str:
    """GemmKernel's prepared-B entry and the layout it reads (tile width, deepest k block)."""
    return f"&{prepared_entry_symbol(p)}, {p.value('nr')}, {prepared_kc(p)}"


def emit_registry(profile: HostProfile, generic: Plan, specialized: List[Plan], all_plans: List[Plan],
                  conv_coefficients: Dict[str, float], conv_plans: List[Plan]) -> str:
    vid = variant_id(profile)
    feats = required_features(profile)
    o = [file_header(f"{registry_tu_name(vid)}: the kernels of variant {profile.name} and the facts they came from.",
                     [f"target={profile.name} isa={profile.isa} level={isa_level(profile)} "
                      f"specialized GEMM entries={len(specialized)}"])]
    o.append('#include "autoconfig/detail/registry.h"\n')
    o.append("namespace autoconfig {\nnamespace detail {\n")
    for p in [generic] + specialized:
        o.append(f"void {entry_symbol(p)}(const GemmArgs& g, int threads);")
        o.append(f"void {prepared_entry_symbol(p)}(const GemmArgs& g, int threads, const float* prepared_b);")
    o.append("")
    o.append(f"namespace variant_{vid} {{")
    o.append("namespace {")
    o.append(f"const GemmKernel kGeneric = {{0, 0, 0, {act_mask(generic)}u, 0, true, &{entry_symbol(generic)}, "
             f"\"{generic.kernel}\", {_prepared_fields(generic)}}};")
    o.append("const GemmKernel kSpecialized[] = {")
    rows = 0
    for p in specialized:
        s_ = p.shape
        counts = [p.value("threads")] + (p.value("also_threads") if "also_threads" in p.params else [])
        for t in counts:
            default = "true" if t == p.value("default_threads") else "false"
            o.append(f"    {{{s_['M']}, {s_['N']}, {s_['K']}, {act_mask(p)}u, {t}, {default}, &{entry_symbol(p)}, "
                     f"\"{p.kernel}\", {_prepared_fields(p)}}},")
            rows += 1
    if not rows:
        o.append("    {0, 0, 0, 0u, 0, false, nullptr, \"\", nullptr, 0, 0},  // none: keeps the array non-empty")
    o.append("};")
    o.append("const ConvModel kConvModel = {" + ", ".join(f"{conv_coefficients[k]!r}" for k in CONV_MODEL_FIELDS) + "};")
    crows = _conv_rows(conv_plans)
    o.append("const ConvPlanEntry kConvPlans[] = {")
    o += crows or ["    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ConvAlgorithm::Im2colGemm, {}},  // none"]
    o.append("};")
    o.append("const char* const kRequired[] = {" + "".join(f'"{f}", ' for f in feats) + "nullptr};")
    o.append("const char* const kProfileJson =\n" + cpp_string_literal(profile.to_json()) + ";")
    o.append("const char* const kPlansJson =\n" + cpp_string_literal(plans_to_json(all_plans)) + ";")
    o.append("}  // namespace")
    o.append("extern const ConvKernels kConvKernels;   // conv_kernels_<variant>.cpp")
    o.append("extern const ModelLoops kModelLoops;     // conv_kernels_<variant>.cpp")
    o.append("extern const AttentionKernels kAttentionKernels;   // attention_kernels_<variant>.cpp")
    o.append("extern const Registry kRegistry;")
    o.append(f"const Registry kRegistry = {{\"{profile.name}\", \"{profile.isa}\", {isa_level(profile)}, kRequired, {len(feats)},")
    o.append(f"                             kSpecialized, {rows}, &kGeneric,")
    o.append(f"                             {profile.peak_gflops_per_core * 1e9:.6g}, {MIN_SECONDS_PER_THREAD:g},")
    o.append("                             kProfileJson, kPlansJson,")
    o.append(f"                             &kConvKernels, &kConvModel, kConvPlans, {len(crows)}, &kModelLoops,")
    o.append("                             &kAttentionKernels};")
    o.append(f"}}  // namespace variant_{vid}")
    o.append("\n}  // namespace detail\n}  // namespace autoconfig")
    return "\n".join(o) + "\n"


def emit_variants(target: str, profiles: List[HostProfile]) -> str:
    """variants.cpp: the build's variants, best (highest level) first."""
    order = sorted(profiles, key=lambda p: -isa_level(p))
    o = [file_header("variants.cpp: the kernel variants of this build, best first.",
                     [f"build target={target}: " + ", ".join(f"{p.name} ({p.isa}, level {isa_level(p)})" for p in order)])]
    o.append('#include "autoconfig/detail/registry.h"\n')
    o.append("namespace autoconfig {\nnamespace detail {\n")
    for p in order:
        o.append(f"namespace variant_{variant_id(p)} {{ extern const Registry kRegistry; }}")
    o.append("const Registry* const kVariants[] = {" + ", ".join(f"&variant_{variant_id(p)}::kRegistry" for p in order) + "};")
    o.append(f"const int kVariantCount = {len(order)};")
    o.append(f"const char* const kBuildTarget = \"{target}\";")
    o.append("\n}  // namespace detail\n}  // namespace autoconfig")
    return "\n".join(o) + "\n"
