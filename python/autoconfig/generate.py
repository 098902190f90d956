"""Build-time generator: specs + HostProfile -> plans -> C++ sources.

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
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import probe as probe_mod
from . import spec as spec_mod
from .codegen.gemm import (ACTIVATIONS, emit_entry, emit_ukernel_header, emit_vmath_header,
                           ukernel_header_name, vmath_header_name)
from .codegen.isa import isa_for_profile
from .codegen.registry import emit_registry, emit_variants, isa_level, variant_id
from .models import gemm as gemm_model
from .plan import Plan, plans_to_json
from .profile import HostProfile

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


def gemm_plans(profile: HostProfile, specs) -> Tuple[Plan, List[Plan]]:
    """The generic plan and the shape-specialized ones.

    A shape gets one plan per thread count its spec lists (capped at the
    profile's cores); plans that come out identical share one kernel, and the
    registry maps each (shape, threads) to its kernel."""
    isa = isa_for_profile(profile)
    generic = gemm_model.plan_generic(profile, isa_suffix=isa.suffix)
    # One entry per distinct shape; activations and thread counts of several specs merge.
    shapes: Dict[Tuple[int, int, int], Dict] = {}
    for s in specs:
        if s.op not in ("matmul", "gemm", "conv2d"):
            continue
        for sh in s.shapes:
            if s.op == "conv2d":
                sh = sh.gemm_shape()   # conv2d runs as one GEMM per image and group
            key = (sh.M, sh.N, sh.K)
            entry = shapes.setdefault(key, {"acts": set(), "specs": [], "op": s.op, "threads": set()})
            entry["acts"].update(s.activations)
            entry["specs"].append(s.name)
            entry["threads"].update(min(max(1, profile.cores), t) for t in s.threads)
    specialized: List[Plan] = []
    for (M, N, K), e in sorted(shapes.items()):
        acts = [a for a in ACTIVATIONS if a in e["acts"]]
        variants: List[Plan] = []
        per_t = {t: gemm_model.plan_shape(profile, M, N, K, isa_suffix=isa.suffix, activations=acts,
                                          spec_name=",".join(e["specs"]), op=e["op"], threads=t)
                 for t in sorted(e["threads"])}
        fastest = min(per_t, key=lambda t: per_t[t].predicted_s)
        for t, p in per_t.items():
            p.params["threads"].value = t
            p.params["default_threads"] = gemm_model.Param(
                fastest, "threads=None runs the spec thread count with the least predicted time: "
                + ", ".join(f"{k}: {v.predicted_s * 1e6:.1f} us" for k, v in per_t.items()))
            twin = next((v for v in variants if gemm_model.same_kernel(v, p)), None)
            if twin is not None:
                twin.notes.append(f"also serves {t} thread(s): the {t}-thread plan has the same tile and blocking")
                twin.params.setdefault("also_threads", gemm_model.Param([], "thread counts sharing this kernel"))
                twin.params["also_threads"].value.append(t)
                continue
            variants.append(p)
        if len(variants) > 1:
            for v in variants:
                v.kernel += f"_t{v.value('threads')}"
        specialized += variants
    return generic, specialized


def render(target: str, profiles: List[HostProfile], specs) -> Tuple[Dict[str, str], List[Plan], Dict[str, List[str]]]:
    """All generated files as {relative path: text}, the plans, and the
    sources to compile with their ISA flags ({flags: [files]})."""
    files: Dict[str, str] = {}
    sources: Dict[str, List[str]] = {}
    all_plans: List[Plan] = []
    for profile in profiles:
        isa = isa_for_profile(profile)
        generic, specialized = gemm_plans(profile, specs)
        plans = [generic] + specialized
        files[f"include/{vmath_header_name(isa)}"] = emit_vmath_header(isa)
        flags = ";".join(profile.compile_flags)
        for p in plans:
            mr, nr = p.value("mr"), p.value("nr")
            files[f"include/{ukernel_header_name(isa, mr, nr)}"] = emit_ukernel_header(isa, mr, nr)
            name = f"{p.kernel}.cpp"
            files[name] = emit_entry(isa, p)
            sources.setdefault(flags, []).append(name)
        reg = f"gemm_registry_{variant_id(profile)}.cpp"
        files[reg] = emit_registry(profile, generic, specialized, plans)
        sources.setdefault("", []).append(reg)
        all_plans += plans
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
             cxx: Optional[str] = None, reprobe: bool = False) -> List[Plan]:
    specs = load_specs(spec_dirs, use_default_specs)     # raises SpecError before anything is written
    profiles = get_profiles(target, out, cxx, reprobe)
    files, plans, sources = render(target, profiles, specs)
    spec_files = sorted({s.file for s in specs})
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
    args = ap.parse_args(argv)
    try:
        plans = generate(Path(args.out).resolve(), args.target, split_dirs(args.specs),
                         not args.no_default_specs, args.cxx, args.reprobe)
    except spec_mod.SpecError as e:
        print(f"autoconfig: spec error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError) as e:
        print(f"autoconfig: {e}", file=sys.stderr)
        return 2
    print(f"autoconfig: generated {len(plans)} GEMM kernels into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
