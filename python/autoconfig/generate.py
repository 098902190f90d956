"""Build-time generator: specs + HostProfile -> plans -> C++ sources.

Orchestration only: for each variant's profile, every operator family of
FAMILIES plans (models/spec_plans.py and the models) and emits (codegen/);
then the registry, the variants table, plans.json and the CMake list.

CMake runs it at configure time with the source tree on PYTHONPATH:
    python -m autoconfig.generate --out <build>/generated --target host --cxx <compiler>
It writes into a staging directory and only then replaces changed files, so a
spec error leaves the previous output untouched; unchanged files keep their
timestamps, so a reconfigure recompiles only what changed.
Only PyYAML is needed (no NumPy).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import probe as probe_mod
from . import spec as spec_mod
from .codegen.gemm import (emit_entry, emit_ukernel_header, emit_vmath_header,
                           ukernel_header_name, vmath_header_name)
from .codegen.attention import attention_tu_name, attention_unit
from .codegen.conv import cache_arguments, conv_tu_name, emit_conv_kernels
from .codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
from .codegen.registry import emit_registry, emit_variants, isa_level, registry_tu_name, variant_id
from .models import conv as conv_model
from .models import spec_plans
from .plan import Plan, plans_to_json
from .profile import HostProfile, fixed_lanes_profile
from .tuning.selectors import SpecPlanners
from .vocabulary import ACTIVATIONS  # noqa: F401  (generate.ACTIVATIONS, as before)

GENERATOR_DIR = Path(__file__).resolve().parent


def split_dirs(text: Optional[str]) -> List[str]:
    if not text:
        return []
    out = []
    for part in text.replace(";", os.pathsep).replace("|", os.pathsep).split(os.pathsep):
        part = part.strip()
        if part:
            out.append(part)
    return out


def load_specs(extra_dirs: Sequence[str], use_defaults: bool) -> List["spec_mod.OpSpec"]:
    dirs: List[Path] = []
    if use_defaults:
        dirs.append(spec_mod.default_spec_dir())
    for d in extra_dirs:
        p = Path(d)
        if not p.exists():
            raise spec_mod.SpecError(str(p), 0, "(spec folder)", "does not exist")
        dirs.append(p)
    return spec_mod.load_dirs(dirs)


def get_profiles(target: str, out: Path, cxx: Optional[str], reprobe: bool) -> List[HostProfile]:
    """The profiles of the build's variants: one for host or a single target,
    several for a multi-variant target such as `portable`.

    The host profile is cached in the build tree: re-measuring on every
    reconfigure would let timing noise change the plans."""
    if target in probe_mod.MULTI_TARGETS:
        return [probe_mod.profile(t) for t in probe_mod.MULTI_TARGETS[target]]
    cache = out / "host_profile.json"
    if target in ("", "host") and cache.exists() and not reprobe:
        cached = HostProfile.from_json(cache.read_text())
        if cached.name == "host":
            return [cached]
    return [probe_mod.profile(None if target in ("", "host") else target, cxx=cxx)]


# --------------------------------------------------------------------------- operator families
def conv_plans(profile: HostProfile, specs, planners: Optional[SpecPlanners] = None) -> List[Plan]:
    """The conv layer plans of `profile`'s variant (models/spec_plans.py);
    planners: a selector's (AUTOCONFIG_SELECTOR), None for the model's."""
    extra = {"plan_layer": planners.plan_layer} if planners else {}
    return spec_plans.conv_plans(profile, specs, isa_for_profile(profile).suffix,
                                 fixed_lanes_isa_for_profile(profile).suffix, **extra)


def gemm_plans(profile: HostProfile, specs, convs: Sequence[Plan] = (),
               planners: Optional[SpecPlanners] = None) -> Tuple[Plan, List[Plan]]:
    """The generic GEMM plan and the shape-specialized ones (models/spec_plans.py)."""
    extra = {"plan_shape": planners.plan_shape} if planners else {}
    return spec_plans.gemm_plans(profile, specs, isa_for_profile(profile).suffix, convs, **extra)


def selector_planners(selector: str, tuning_log: Optional[str]) -> Optional[SpecPlanners]:
    """The planners of AUTOCONFIG_SELECTOR (None: the analytical model, the
    default, whose output stays exactly what it was); the option names and
    what they expect are in every error."""
    from .tuning.log import LogError, TuningLog
    from .tuning.selectors import SelectorError
    selector = selector or "analytical"
    try:
        SpecPlanners.check(selector)
    except SelectorError as e:
        raise ValueError(f"AUTOCONFIG_SELECTOR (--selector): {e}") from None
    log = None
    if tuning_log:
        try:
            log = TuningLog.load(tuning_log)
        except LogError as e:
            raise ValueError(f"AUTOCONFIG_TUNING_LOG (--tuning-log): {e}; expected a log written by "
                             "`autoconfig tune`") from None
    elif selector.partition(":")[0] == "search":
        raise ValueError("AUTOCONFIG_SELECTOR=search needs AUTOCONFIG_TUNING_LOG (--tuning-log): the path of a "
                         "tuning log written by `autoconfig tune`")
    if selector == "analytical":
        return None
    return SpecPlanners(selector, log)


@dataclass
class Emitted:
    """What a family emits for one variant: {relative path: text}, and the
    sources among them to compile with the variant's ISA flags, in order."""
    files: Dict[str, str] = field(default_factory=dict)
    sources: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Family:
    """One operator family: how its plans come from the specs, and how they
    become C++. `needs` names the families whose plans its planning reads."""
    name: str
    plan: Callable[[HostProfile, Sequence, Dict[str, List[Plan]], Optional[SpecPlanners]], List[Plan]]
    emit: Callable[[HostProfile, List[Plan]], Emitted]
    needs: Tuple[str, ...] = ()


def _plan_gemm(profile: HostProfile, specs, planned: Dict[str, List[Plan]],
               planners: Optional[SpecPlanners] = None) -> List[Plan]:
    generic, specialized = gemm_plans(profile, specs, planned["conv2d"], planners)
    return [generic] + specialized           # the generic plan first: the registry relies on it


def _emit_gemm(profile: HostProfile, plans: List[Plan]) -> Emitted:
    isa = isa_for_profile(profile)
    out = Emitted()
    out.files[f"include/{vmath_header_name(isa)}"] = emit_vmath_header(isa)
    for p in plans:
        mr, nr = p.value("mr"), p.value("nr")
        out.files[f"include/{ukernel_header_name(isa, mr, nr)}"] = emit_ukernel_header(isa, mr, nr)
        name = f"{p.kernel}.cpp"
        out.files[name] = emit_entry(isa, p)
        out.sources.append(name)
    return out


def _plan_conv(profile: HostProfile, specs, planned: Dict[str, List[Plan]],
               planners: Optional[SpecPlanners] = None) -> List[Plan]:
    return conv_plans(profile, specs, planners)


def _emit_conv(profile: HostProfile, convs: List[Plan]) -> Emitted:
    """The rule for scalable ISAs (SVE): the conv kernels need the lane count
    at generation time (NCHW[B]c blocks, arrays of accumulators, which
    sizeless SVE types forbid), so they are planned and emitted for the
    profile's fixed-lanes view (fixed_lanes_profile: NEON)."""
    vid = variant_id(profile)
    conv_tu = conv_tu_name(vid)
    conv_isa, conv_profile = fixed_lanes_isa_for_profile(profile), fixed_lanes_profile(profile)
    out = Emitted()
    out.files[f"include/{vmath_header_name(conv_isa)}"] = emit_vmath_header(conv_isa)   # same as GEMM's unless scalable
    out.files[conv_tu] = emit_conv_kernels(
        conv_isa, vid, conv_model.direct_tiles(profile), conv_model.depthwise_ow_tile(profile),
        [f"spec layers planned for this variant: {len(convs)}"]
        + [f"  {p.spec}: {p.shape['C']}x{p.shape['H']}x{p.shape['W']} -> {p.shape['K']} "
           f"{p.shape['R']}x{p.shape['S']}/{p.shape['stride_h']} g{p.shape['groups']} t{p.value('threads')}: "
           f"{p.algorithm}" + (f" tile {p.value('tile')}" if "tile" in p.params else "")
           + f", predicted {p.predicted_s * 1e6:.1f} us" for p in convs],
        **cache_arguments(conv_profile))
    out.sources.append(conv_tu)
    return out


def _plan_attention(profile: HostProfile, specs, planned: Dict[str, List[Plan]],
                    planners: Optional[SpecPlanners] = None) -> List[Plan]:
    # One kernel for any shape, outside the tuning space (no selector applies);
    # fused vs unfused is chosen per call (models/attention.py).
    return []


def _emit_attention(profile: HostProfile, plans: List[Plan]) -> Emitted:
    """Fused attention, softmax and LayerNorm rows; like the conv kernels they
    keep arrays of vectors, so a scalable ISA gets its fixed-lanes view."""
    out = Emitted()
    out.files.update(attention_unit(profile))
    out.sources.append(attention_tu_name(variant_id(profile)))
    return out


# The families, in the order their kernels are emitted and listed (plans.json,
# the sources); each is planned after the families it needs. Adding an operator
# = a model, an emitter, and a Family here (plus its registry entries).
FAMILIES: Tuple[Family, ...] = (
    Family("gemm", _plan_gemm, _emit_gemm, needs=("conv2d",)),   # conv layers the model runs as a GEMM
    Family("conv2d", _plan_conv, _emit_conv),
    Family("attention", _plan_attention, _emit_attention),
)


def _planning_order(families: Sequence[Family]) -> List[Family]:
    done: List[Family] = []
    while len(done) < len(families):
        ready = [f for f in families if f not in done and all(n in {d.name for d in done} for n in f.needs)]
        if not ready:
            raise ValueError("operator families depend on each other in a cycle: "
                             + ", ".join(f"{f.name} needs {f.needs}" for f in families if f not in done))
        done.append(ready[0])
    return done


def render(target: str, profiles: List[HostProfile], specs, planners: Optional[SpecPlanners] = None
           ) -> Tuple[Dict[str, str], List[Plan], Dict[str, List[str]]]:
    """All generated files as {relative path: text}, the plans, and the
    sources to compile with their ISA flags ({flags: [files]}).

    The rule for scalable ISAs (SVE): the GEMM microkernels are emitted for the
    profile's own ISA (vector-length agnostic); the conv kernels need the lane
    count at generation time, so they are planned and emitted for the
    profile's fixed-lanes view (see _emit_conv). Both compile with the
    variant's flags: -march=armv8-a+sve includes Advanced SIMD."""
    files: Dict[str, str] = {}
    sources: Dict[str, List[str]] = {}
    all_plans: List[Plan] = []
    for profile in profiles:
        planned: Dict[str, List[Plan]] = {}
        for fam in _planning_order(FAMILIES):
            planned[fam.name] = fam.plan(profile, specs, planned, planners)
        flags = ";".join(profile.compile_flags)
        for fam in FAMILIES:
            emitted = fam.emit(profile, planned[fam.name])
            files.update(emitted.files)
            sources.setdefault(flags, []).extend(emitted.sources)
        gemm, convs = planned["gemm"], planned["conv2d"]
        reg = registry_tu_name(variant_id(profile))
        files[reg] = emit_registry(profile, gemm[0], gemm[1:], gemm + convs,
                                   conv_model.model_coefficients(profile), convs)
        sources.setdefault("", []).append(reg)
        all_plans += [p for fam in FAMILIES for p in planned[fam.name]]
    files["variants.cpp"] = emit_variants(target or "host", profiles)
    sources.setdefault("", []).append("variants.cpp")
    files["plans.json"] = plans_to_json(all_plans) + "\n"
    # the best variant's profile (the one planning tools default to)
    best = max(profiles, key=isa_level)
    files["host_profile.json"] = best.to_json() + "\n"
    return files, all_plans, sources


def cmake_list(items: Sequence[str]) -> str:
    return ";".join(str(i).replace("\\", "/").replace(";", "\\;") for i in items)


def emit_cmake(out: Path, target: str, profiles: List[HostProfile], sources: Dict[str, List[str]],
               spec_files: List[str]) -> str:
    gen_inputs = sorted(str(p) for p in GENERATOR_DIR.rglob("*.py"))
    all_sources = [(out / f).as_posix() for files in sources.values() for f in files]
    lines = [
        "# Generated by autoconfig.generate: the sources to compile (each with the",
        "# ISA flags of its variant) and the inputs whose change re-runs the generator.",
        f'set(AUTOCONFIG_GENERATED_DIR "{out.as_posix()}")',
        f'set(AUTOCONFIG_ISA "{"+".join(p.isa for p in profiles)}")',
        f'set(AUTOCONFIG_GENERATED_SOURCES "{cmake_list(all_sources)}")',
        f'set(AUTOCONFIG_GENERATOR_INPUTS "{cmake_list(spec_files + gen_inputs)}")',
    ]
    for flags, files in sorted(sources.items()):
        if flags:
            srcs = " ".join(f'"{(out / f).as_posix()}"' for f in files)
            lines.append(f'set_source_files_properties({srcs}\n  PROPERTIES COMPILE_OPTIONS "{flags}")')
    return "\n".join(lines) + "\n"


def sync_tree(staging: Path, out: Path, keep: Sequence[str] = ()) -> None:
    """Make out hold exactly staging's files; rewrite only files whose text changed."""
    out.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(staging) for p in staging.rglob("*") if p.is_file()}
    for rel in wanted:
        src, dst = staging / rel, out / rel
        new = src.read_bytes()
        if dst.exists() and dst.read_bytes() == new:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        tmp.write_bytes(new)
        os.replace(tmp, dst)
    for p in sorted(out.rglob("*"), reverse=True):
        rel = p.relative_to(out)
        if p.is_file() and rel not in wanted and str(rel) not in keep:
            p.unlink()


def generate(out: Path, target: str = "host", spec_dirs: Sequence[str] = (), use_default_specs: bool = True,
             cxx: Optional[str] = None, reprobe: bool = False, selector: str = "analytical",
             tuning_log: Optional[str] = None) -> List[Plan]:
    specs = load_specs(spec_dirs, use_default_specs)     # raises SpecError before anything is written
    planners = selector_planners(selector, tuning_log)   # raises ValueError naming the option
    profiles = get_profiles(target, out, cxx, reprobe)
    files, plans, sources = render(target, profiles, specs, planners)
    spec_files = sorted({s.file for s in specs}) + ([str(Path(tuning_log).resolve())] if tuning_log else [])
    with tempfile.TemporaryDirectory(prefix="autoconfig-gen-") as tmp:
        staging = Path(tmp)
        for rel, text in files.items():
            p = staging / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        (staging / "autoconfig_generated.cmake").write_text(emit_cmake(out, target, profiles, sources, spec_files))
        sync_tree(staging, out)
    return plans


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoconfig.generate",
                                 description="Generate host-tuned C++ kernels from YAML specs.")
    ap.add_argument("--out", required=True, help="output folder (in the build tree)")
    ap.add_argument("--target", default="host",
                    help="host (probe this machine), a built-in target (x86-64-v4, x86-64-v3, x86-64-v2, generic), "
                         "portable (v4+v3+v2 variants, picked at load) or a JSON file")
    ap.add_argument("--specs", default="", help="extra spec folders, separated by ';' or the path separator")
    ap.add_argument("--no-default-specs", action="store_true", help="do not load the embedded kernels_spec/")
    ap.add_argument("--cxx", default=None, help="C++ compiler for the probe's micro-benchmarks")
    ap.add_argument("--reprobe", action="store_true", help="measure the host again even if a cached profile exists")
    ap.add_argument("--selector", default="analytical",
                    help="who picks each spec layer's kernel: analytical (default), search (needs --tuning-log), "
                         "random, or a registered selector (AUTOCONFIG_SELECTOR)")
    ap.add_argument("--tuning-log", default=None, help="tuning log written by `autoconfig tune` (AUTOCONFIG_TUNING_LOG)")
    args = ap.parse_args(argv)
    try:
        plans = generate(Path(args.out).resolve(), args.target, split_dirs(args.specs),
                         not args.no_default_specs, args.cxx, args.reprobe, args.selector, args.tuning_log or None)
    except spec_mod.SpecError as e:
        print(f"autoconfig: spec error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError) as e:
        print(f"autoconfig: {e}", file=sys.stderr)
        return 2
    n_conv = sum(1 for p in plans if p.op == "conv2d")
    print(f"autoconfig: generated {len(plans) - n_conv} GEMM kernels and {n_conv} conv layer plans into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
