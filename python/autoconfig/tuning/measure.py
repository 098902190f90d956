"""Measures candidate configurations: generate, compile, check, time.

    measure(pairs, profile, *, repeats=5, isa=None) -> seconds per pair

Pairs are measured in batches. A batch is one generated translation unit of
GEMM entry points (one per GEMM candidate, emitted by codegen/gemm.py from
plan_for()'s Plan, so exactly what a build would compile), the batch's kernel
registry (with the analytical GEMM plan of every conv candidate that runs a
GEMM, as a build specializes it), and the timing driver measure_driver.cpp,
linked against a cached build of the runtime (cpp_runtime/src, the conv
kernels of the variant and its generic GEMM), compiled with the build's
flags (-O3 -fno-math-errno, the variant's ISA flags on the kernels). The
driver runs as a subprocess, so a candidate that crashes takes down only the
batch, and the error names it.

Each candidate runs once on random inputs (uniform in [-1, 1]) and is
compared with a double-precision reference (max |y - ref| / max |ref| within
CHECK_TOLERANCE, or 10x the documented Winograd bound): a wrong result raises
MeasureError (a wrong candidate is an error, not a time). Then it is timed:
each sample repeats the call for at least 2 ms, and the result is the best of
`repeats` samples (seconds per call). conv2d candidates are prepared layers
(PreparedConv2d: the weights re-laid out once, as a network runs them), batch
1. The driver pins itself and the pool threads it starts to the first
`threads` CPUs it may use.

`isa` measures another variant the same CPU runs (x86-64-v3, x86-64-v2,
generic; space.profile_for_isa): the configs must then come from
space(task, profile_for_isa(profile, isa)).

The runtime sources come from AUTOCONFIG_SOURCE_DIR/cpp_runtime when set,
else the wheel's copy (autoconfig/_runtime_src), else the source tree next to
this package. Builds are cached under AUTOCONFIG_TUNING_CACHE (default
~/.cache/autoconfig/tuning), keyed by the profile, the compiler and the
sources.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..codegen.attention import attention_tu_name, attention_unit
from ..codegen.conv import cache_arguments, conv_tu_name, emit_conv_kernels
from ..codegen.gemm import emit_entry, emit_ukernel_header, emit_vmath_header, ukernel_header_name, vmath_header_name
from ..codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
from ..codegen.registry import emit_registry, emit_variants, registry_tu_name, variant_id
from ..models import conv as conv_model
from ..models import gemm as gemm_model
from ..models.winograd import WINOGRAD_REL_ERROR
from ..plan import Param, Plan
from ..profile import HostProfile, fixed_lanes_profile
from ..vocabulary import CONV_ALGORITHMS
from .space import Config, Task, check_config, plan_for, profile_for_isa

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().with_name("measure_driver.cpp")
# max |y - ref| / max |ref| a plain dot-product algorithm may show on the
# driver's data: float32 sums of up to ~10^4 products of numbers in [-1, 1]
# stay near 1e-6 (measured: GEMM and direct 2e-7 .. 2e-6 at K <= 4608).
CHECK_TOLERANCE = 1e-4
WINOGRAD_MARGIN = 10.0          # Winograd: this many times its documented bound
BATCH = 24                       # candidates per compiled batch
BASE_FLAGS = ("-O3", "-fno-math-errno", "-std=c++17", "-pthread", "-DAUTOCONFIG_DEFAULT_THREADS=0")
RUNTIME_SOURCES = ("runtime.cpp", "gemm.cpp", "build_info.cpp", "conv2d.cpp", "conv_model.cpp", "cpu_features.cpp")
DRIVER_TIMEOUT_S = 1800


class MeasureError(RuntimeError):
    """A candidate that does not compile, crashes, or computes a wrong result."""


def runtime_source_dir() -> Path:
    env = os.environ.get("AUTOCONFIG_SOURCE_DIR")
    cands = ([Path(env) / "cpp_runtime"] if env else []) + [PACKAGE_DIR / "_runtime_src",
                                                             PACKAGE_DIR.parents[1] / "cpp_runtime"]
    for c in cands:
        if (c / "src" / "gemm.cpp").is_file() and (c / "include" / "autoconfig" / "autoconfig.h").is_file():
            return c
    raise MeasureError("autoconfig.tuning.measure needs the C++ runtime sources: looked in "
                       + ", ".join(str(c) for c in cands) + " (set AUTOCONFIG_SOURCE_DIR to a source checkout)")


def cache_root() -> Path:
    return Path(os.environ.get("AUTOCONFIG_TUNING_CACHE") or Path.home() / ".cache" / "autoconfig" / "tuning")


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        raise MeasureError("no C++ compiler found (set CXX)")
    return cxx


def _run(cmd: List[str], what: str, cwd: Optional[Path] = None) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        raise MeasureError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{r.stderr[-4000:]}")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# --------------------------------------------------------------------------- the cached base
def _base_key(profile: HostProfile, cxx: str, src: Path) -> str:
    h = hashlib.sha256()
    h.update(profile.to_json().encode())
    h.update(subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.encode())
    for p in sorted(list(src.rglob("*.h")) + list(src.rglob("*.cpp")) + list((PACKAGE_DIR / "codegen").glob("*.py"))
                    + list((PACKAGE_DIR / "models").glob("*.py")) + [DRIVER]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _generic_plan(profile: HostProfile) -> Plan:
    return gemm_model.plan_generic(profile, isa_suffix=isa_for_profile(profile).suffix)


def _base(profile: HostProfile, cxx: str) -> Path:
    """The runtime objects, the variant's conv kernels and its generic GEMM,
    compiled once per (profile, compiler, sources) into base/libbase.a."""
    src = runtime_source_dir()
    root = cache_root() / f"{variant_id(profile)}-{_base_key(profile, cxx, src)}"
    lib = root / "libbase.a"
    if lib.exists():
        return root
    gen = root / "gen"
    isa = isa_for_profile(profile)
    conv_isa, conv_profile = fixed_lanes_isa_for_profile(profile), fixed_lanes_profile(profile)
    vid = variant_id(profile)
    _write(gen / "include" / vmath_header_name(isa), emit_vmath_header(isa))
    _write(gen / "include" / vmath_header_name(conv_isa), emit_vmath_header(conv_isa))
    generic = _generic_plan(profile)
    mr, nr = generic.value("mr"), generic.value("nr")
    _write(gen / "include" / ukernel_header_name(isa, mr, nr), emit_ukernel_header(isa, mr, nr))
    _write(gen / "generic.cpp", emit_entry(isa, generic))
    _write(gen / conv_tu_name(vid), emit_conv_kernels(
        conv_isa, vid, conv_model.direct_tiles(profile), conv_model.depthwise_ow_tile(profile),
        ["autoconfig.tuning.measure base"],
        **cache_arguments(conv_profile)))
    # the registry points at the variant's attention kernels too
    attention = attention_unit(profile)
    for rel, text in attention.items():
        _write(gen / rel, text)
    inc = [f"-I{src / 'include'}", f"-I{src / 'src'}", f"-I{gen / 'include'}"]
    units = [(src / "src" / s, []) for s in RUNTIME_SOURCES]
    units += [(gen / "generic.cpp", list(profile.compile_flags)), (gen / conv_tu_name(vid), list(profile.compile_flags)),
              (gen / attention_tu_name(vid), list(profile.compile_flags))]
    (root / "obj").mkdir(parents=True, exist_ok=True)

    def compile_unit(unit: Tuple[Path, List[str]]) -> str:
        path, flags = unit
        obj = root / "obj" / (path.stem + ".o")
        _run([cxx, *BASE_FLAGS, *flags, *inc, "-c", str(path), "-o", str(obj)], f"compiling {path.name}")
        return str(obj)
    # one compiler per CPU this process may use, as for a batch's units: a
    # cold cache spends most of its compile time here
    with ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)))) as pool:
        objs = list(pool.map(compile_unit, units))
    tmp = root / "libbase.a.tmp"
    _run(["ar", "rcs", str(tmp), *objs], "archiving the runtime")
    os.replace(tmp, lib)
    return root


# --------------------------------------------------------------------------- a batch
def _tolerance(task: Task, config: Config) -> float:
    alg = config.get("algorithm", "")
    if alg.startswith("winograd"):
        return max(CHECK_TOLERANCE, WINOGRAD_MARGIN * WINOGRAD_REL_ERROR[int(alg[-1])])
    return CHECK_TOLERANCE


def _conv_job(task: Task, config: Config, profile: HostProfile) -> str:
    L = task.shape
    k = config.as_dict()
    alg = k["algorithm"]
    tile = input_ = order = cblocks = -1
    if alg == "direct":
        plan = plan_for(task, config, profile)
        tile = plan.value("tile_index")
        input_ = int(k["input"] == "nchw")
        order = int(k["order"] == "groups-inner")
        cblocks = k["c_blocks"] if order == 0 else -1
    dims = (L.C, L.H, L.W, L.K, L.R, L.S, L.stride_h, L.stride_w, L.pad_top, L.pad_left, L.pad_bottom,
            L.pad_right, L.dilation_h, L.dilation_w, L.groups)
    return " ".join(map(str, ("conv", *dims, task.threads, CONV_ALGORITHMS.index(alg), tile, input_, order,
                              cblocks, _tolerance(task, config))))


def _conv_gemm_plan(task: Task, profile: HostProfile) -> Plan:
    """The GEMM a build specializes for a conv layer run as a GEMM (spec_plans.gemm_plans)."""
    g = task.shape.gemm_shape()
    p = gemm_model.plan_shape(profile, g.M, g.N, g.K, isa_suffix=isa_for_profile(profile).suffix,
                              activations=["none"], threads=task.threads)
    p.params["threads"].value = task.threads
    p.params["default_threads"] = Param(task.threads, "the measured conv layer's thread count")
    return p


def _compiled(cxx: str, base: Path, path: Path, flags: List[str], inc: List[str]) -> str:
    """The object of `path`, compiled once per text and flags (cached in the
    base build): a batch recompiles only what changed, mostly its GEMM entries.
    Headers a file includes are keyed by the base (fixed) or by the text that
    names them (a ukernel header's name holds its tile and ISA)."""
    h = hashlib.sha256(path.read_bytes() + " ".join(flags).encode()).hexdigest()[:20]
    obj = base / "objcache" / f"{path.stem}-{h}.o"
    if not obj.exists():
        obj.parent.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_name(obj.name + f".{os.getpid()}.tmp")
        _run([cxx, *BASE_FLAGS, *flags, *inc, "-c", str(path), "-o", str(tmp)], f"compiling {path.name} of a batch")
        os.replace(tmp, obj)
    return str(obj)


def _measure_batch(pairs: Sequence[Tuple[Task, Config]], profile: HostProfile, repeats: int, cxx: str,
                   base: Path, work: Path) -> List[float]:
    isa = isa_for_profile(profile)
    src = runtime_source_dir()
    gen = work / "gen"
    if gen.exists():
        shutil.rmtree(gen)
    entries: List[str] = []
    headers: Dict[str, str] = {}
    jobs: List[str] = []
    specialized: Dict[Tuple[int, int, int, int], Plan] = {}
    names: List[str] = []
    for task, config in pairs:
        if task.op == "gemm":
            plan = plan_for(task, config, profile)
            # named by what it compiles, so the same candidate's object is reused across batches
            plan.kernel = "tune_gemm_" + hashlib.sha256(f"{task.key()} {config.name()}".encode()).hexdigest()[:16]
            plan.activations = ["none"]
            mr, nr = plan.value("mr"), plan.value("nr")
            headers[ukernel_header_name(isa, mr, nr)] = emit_ukernel_header(isa, mr, nr)
            jobs.append(f"gemm {len(names)} {task.shape.M} {task.shape.N} {task.shape.K} {task.threads} "
                        f"{_tolerance(task, config)}")
            if plan.kernel not in names:
                entries.append(plan.kernel)
                _write(gen / f"{plan.kernel}.cpp", emit_entry(isa, plan))
            names.append(plan.kernel)
        else:
            if config.get("algorithm") in ("gemm-1x1", "im2col-gemm"):
                g = task.shape.gemm_shape()
                key = (g.M, g.N, g.K, task.threads)
                if key not in specialized:
                    p = _conv_gemm_plan(task, profile)
                    p.kernel = "tune_conv_gemm_" + hashlib.sha256(repr(key).encode()).hexdigest()[:16]
                    specialized[key] = p
                    entries.append(p.kernel)
                    _write(gen / f"{p.kernel}.cpp", emit_entry(isa, p))
            jobs.append(_conv_job(task, config, profile))
    for p in specialized.values():
        headers[ukernel_header_name(isa, p.value("mr"), p.value("nr"))] = emit_ukernel_header(
            isa, p.value("mr"), p.value("nr"))
    for name, text in headers.items():
        _write(gen / "include" / name, text)
    _write(gen / "include" / vmath_header_name(isa), emit_vmath_header(isa))
    gemm_plans = [p for p in specialized.values()]
    table = ("#include \"autoconfig/autoconfig.h\"\n\nnamespace autoconfig {\nnamespace detail {\n"
             + "".join(f"void {n}(const GemmArgs& g, int threads);\n" for n in sorted(set(names)))
             + "using GemmEntryFn = void (*)(const GemmArgs& g, int threads);\n"
             + "extern const GemmEntryFn kTuneEntries[];\nextern const int kTuneEntryCount;\n"
             + "const GemmEntryFn kTuneEntries[] = {" + "".join(f"&{n}, " for n in names) + "nullptr};\n"
             + f"const int kTuneEntryCount = {len(names)};\n}}  // namespace detail\n}}  // namespace autoconfig\n")
    _write(gen / "tune_entries.cpp", table)
    generic = _generic_plan(profile)
    vid = variant_id(profile)
    _write(gen / registry_tu_name(vid), emit_registry(profile, generic, gemm_plans, [],
                                                      conv_model.model_coefficients(profile), []))
    _write(gen / "variants.cpp", emit_variants(profile.name, [profile]))
    inc = [f"-I{src / 'include'}", f"-I{src / 'src'}", f"-I{gen / 'include'}", f"-I{base / 'gen' / 'include'}"]
    units = [(gen / f"{e}.cpp", list(profile.compile_flags)) for e in entries]
    units += [(gen / "tune_entries.cpp", []), (gen / registry_tu_name(vid), []), (gen / "variants.cpp", []),
              (DRIVER, [])]
    with ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)))) as pool:
        objs = list(pool.map(lambda u: _compiled(cxx, base, u[0], u[1], inc), units))
    exe = gen / "measure_driver"
    _run([cxx, "-pthread", "-o", str(exe), *objs, str(base / "libbase.a")], "linking the batch's driver")
    jobs_file = gen / "jobs.txt"
    jobs_file.write_text("\n".join(jobs) + "\n")
    r = subprocess.run([str(exe), str(jobs_file), str(repeats)], capture_output=True, text=True,
                       timeout=DRIVER_TIMEOUT_S)
    results: Dict[int, Tuple[str, str]] = {}
    for line in r.stdout.splitlines():
        status, idx, rest = (line.split(" ", 2) + ["", ""])[:3]
        if idx.isdigit():
            results[int(idx)] = (status, rest)
    if r.returncode != 0 or len(results) < len(pairs):
        started = [int(s.split()[1]) for s in r.stderr.splitlines() if s.startswith("start ")]
        who = pairs[started[-1]] if started and started[-1] < len(pairs) else None
        what = f"{who[0].key()} with {who[1].name()}" if who else "before the first candidate"
        raise MeasureError(f"the timing driver stopped (exit {r.returncode}) running {what}:\n{r.stderr[-2000:]}")
    out, wrong = [], []
    for i, (task, config) in enumerate(pairs):
        status, rest = results[i]
        if status == "ok":
            out.append(float(rest))
        elif status == "wrong":
            wrong.append(f"{task.key()} with {config.name()}: relative error {rest} > {_tolerance(task, config):g}")
            out.append(float("nan"))
        else:
            raise MeasureError(f"{task.key()} with {config.name()}: {rest}")
    if wrong:
        raise MeasureError("wrong results (checked against a float64 reference):\n  " + "\n  ".join(wrong))
    return out


def measure(pairs: Sequence[Tuple[Task, Config]], profile: HostProfile, *, repeats: int = 5,
            isa: Optional[str] = None, batch: int = BATCH) -> List[float]:
    """Seconds per call of every (task, config) pair, best of `repeats`
    (see the module docstring). Raises MeasureError on a candidate that does
    not compile, crashes or computes a wrong result, and space.SpaceError on a
    config that is not in the task's space."""
    if repeats < 1:
        raise ValueError(f"repeats: expected a positive integer, got {repeats!r}")
    prof = profile_for_isa(profile, isa)
    pairs = list(pairs)
    for task, config in pairs:
        check_config(task, config, prof)
    if not pairs:
        return []
    cxx = _compiler()
    base = _base(prof, cxx)
    work = base / f"batch-{os.getpid()}"
    out: List[float] = []
    try:
        for i in range(0, len(pairs), batch):
            out += _measure_batch(pairs[i:i + batch], prof, repeats, cxx, base, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
