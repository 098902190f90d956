"""Emits gemm_registry.cpp: the table the dispatcher searches, and the build's facts."""
from __future__ import annotations

from typing import List

from ..plan import Plan, plans_to_json
from ..profile import HostProfile
from .common import cpp_string_literal, file_header
from .gemm import act_mask, entry_symbol

# Each pool thread must have at least this much work (at peak) before the
# generic kernel adds it: thread wake-up and barriers cost a few microseconds.
MIN_SECONDS_PER_THREAD = 50e-6


def required_features(profile: HostProfile) -> List[str]:
    by_isa = {
        "avx512": ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"],
        "avx2": ["avx2", "fma"],
        "generic": [],
    }
    return by_isa.get(profile.isa, [])


def emit_registry(profile: HostProfile, generic: Plan, specialized: List[Plan], all_plans: List[Plan]) -> str:
    o = [file_header("gemm_registry.cpp: kernels in this build and the facts they were generated from.",
                     [f"target={profile.name} isa={profile.isa} specialized GEMM entries={len(specialized)}"])]
    o.append('#include "autoconfig/detail/registry.h"\n')
    o.append("namespace autoconfig {\nnamespace detail {\n")
    for p in [generic] + specialized:
        o.append(f"void {entry_symbol(p)}(const GemmArgs& g, int threads);")
    o.append("")
    o.append(f"const GemmKernel kGemmGeneric = {{0, 0, 0, {act_mask(generic)}u, 0, true, &{entry_symbol(generic)}, \"{generic.kernel}\"}};")
    o.append("const GemmKernel kGemmSpecialized[] = {")
    rows = 0
    for p in specialized:
        s = p.shape
        counts = [p.value("threads")] + (p.value("also_threads") if "also_threads" in p.params else [])
        for t in counts:
            default = "true" if t == p.value("default_threads") else "false"
            o.append(f"    {{{s['M']}, {s['N']}, {s['K']}, {act_mask(p)}u, {t}, {default}, &{entry_symbol(p)}, \"{p.kernel}\"}},")
            rows += 1
    if not specialized:
        o.append("    {0, 0, 0, 0u, 0, false, nullptr, \"\"},  // none: keeps the array non-empty")
    o.append("};")
    o.append(f"const int kGemmSpecializedCount = {rows};")
    o.append(f"const double kPeakFlopsPerCore = {profile.peak_gflops_per_core * 1e9:.6g};")
    o.append(f"const double kMinSecondsPerThread = {MIN_SECONDS_PER_THREAD:g};")
    o.append(f"const char* const kBuildIsa = \"{profile.isa}\";")
    o.append(f"const char* const kBuildTarget = \"{profile.name}\";")
    feats = required_features(profile)
    o.append("const char* const kRequiredFeatures[] = {" + ", ".join(f'"{f}"' for f in feats) + (", " if feats else "") + "nullptr};")
    o.append(f"const int kRequiredFeatureCount = {len(feats)};")
    o.append("const char* const kHostProfileJson =\n" + cpp_string_literal(profile.to_json()) + ";")
    o.append("const char* const kPlansJson =\n" + cpp_string_literal(plans_to_json(all_plans)) + ";")
    o.append("\n}  // namespace detail\n}  // namespace autoconfig")
    return "\n".join(o) + "\n"
