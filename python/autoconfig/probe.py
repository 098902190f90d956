"""Build a HostProfile: probe this machine, or read a target (built-in or JSON).

Host profiles come from three sources, each decision recorded in `notes`:

* cpu features, FMA latency/throughput, core clock and a read-bandwidth curve
  measured by the small C++ program `autoconfig_probe`
  (cpp_runtime/probe/probe_main.cpp, compiled here on demand);
* cache sizes from sysfs, sanity-checked against the bandwidth curve (VMs
  often expose the host socket's L3 as if it were theirs);
* an optional override file (AUTOCONFIG_PROFILE_OVERRIDE) for machines whose
  data is wrong anyway.

Targets (`x86-64-v4`, `x86-64-v3`, `generic`, `armv8-neon`, `armv8-sve`, `rv64gcv`, or a JSON file)
measure nothing: they describe a class of machine for cross-builds.

    python -m autoconfig.probe [--target T] [--json] [--quick] [--cxx CXX]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .profile import CacheLevel, HostProfile

KiB = 1 << 10
MiB = 1 << 20

# --------------------------------------------------------------------------- ISA table
# Per codegen ISA: register file, flags for the generated kernels, the probe's
# FMA measurement that gives its peak, and the cpu features it requires.
ISA_TABLE: Dict[str, Dict[str, Any]] = {
    "avx512": {
        "vector_bits": 512,
        "vector_registers": 32,
        "compile_flags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                          "-mavx2", "-mfma", "-mf16c"],
        "fma_key": "avx512",
        "requires": ["avx512f", "avx512bw", "avx512dq", "avx512vl"],
    },
    "avx2": {
        "vector_bits": 256,
        "vector_registers": 16,
        "compile_flags": ["-mavx2", "-mfma", "-mf16c"],
        "fma_key": "avx2",
        "requires": ["avx2", "fma"],
    },
    # Arm Advanced SIMD: baseline on AArch64 (128-bit, 32 registers V0-V31).
    # -march=armv8-a names that baseline explicitly, so the required feature
    # (asimd) follows from the flags like the x86 ones do.
    "neon": {
        "vector_bits": 128,
        "vector_registers": 32,
        "compile_flags": ["-march=armv8-a"],
        "fma_key": "neon",
        "requires": ["asimd"],
    },
    # Arm SVE: 32 registers Z0-Z31 of an implementation-defined length
    # (128..2048 bits). The kernels are vector-length agnostic; vector_bits is
    # the length the planner assumes for blocking (256: Neoverse V1).
    "sve": {
        "vector_bits": 256,
        "vector_registers": 32,
        "compile_flags": ["-march=armv8-a+sve"],
        "fma_key": "neon",
        "requires": ["sve"],
    },
    # RISC-V Vector 1.0: 32 registers v0-v31 of VLEN bits (128..65536). The
    # GEMM kernels are vector-length agnostic; vector_bits is the VLEN the
    # planner assumes for blocking. Compiled with clang >= 16 (GCC 12 has no
    # riscv_vector.h). No host probe measures it: name the rv64gcv target.
    "rvv": {
        "vector_bits": 256,
        "vector_registers": 32,
        "compile_flags": ["-march=rv64gcv"],
        "fma_key": "rvv",
        "requires": ["v"],
    },
    # Portable C++ code: the x86-64 baseline is SSE2 (128-bit, 16 xmm registers).
    "generic": {
        "vector_bits": 128,
        "vector_registers": 16,
        "compile_flags": [],
        "fma_key": "sse",
        "requires": [],
    },
}
KNOWN_ISAS = tuple(ISA_TABLE)

# Used when sysfs has no entry for a level.
DEFAULT_CACHES = {
    1: CacheLevel(1, 32 * KiB, 64, 8, 1, "default"),
    2: CacheLevel(2, 1 * MiB, 64, 16, 1, "default"),
    3: CacheLevel(3, 2 * MiB, 64, 16, 1, "default"),
}

# Sanity limits of the L3 check.
L3_SYSFS_IMPLAUSIBLE = 64 * MiB      # per core: more than any real core's share
L3_MEASURED_CAP = 32 * MiB           # largest L3 share we ever plan for
L3_FASTER_THAN_DRAM = 1.5            # an L3-resident working set reads >= 1.5x DRAM speed
ROUND_TOLERANCE = 0.25               # round latency / FMA units to an integer within this
# An FP FMA takes 3-6 cycles on every core we know, 8 as a mul+add pair; a
# reading outside this range is a stalled timing run, not the core.
FMA_LATENCY_PLAUSIBLE = (2.0, 16.0)
ASSUMED_FMA_LATENCY = 4.0

BANDWIDTH_LEVELS = ("L1", "L2", "L3", "DRAM")


def _peak(freq_ghz: float, fma_per_cycle: float, vector_bits: int) -> float:
    """fp32 GFLOPS of one core: clock x FMA units x lanes x 2 flops."""
    return round(freq_ghz * fma_per_cycle * (vector_bits // 32) * 2, 3)


# --------------------------------------------------------------------------- built-in targets
def _target_profile(name: str, *, arch: str, isa: str, features: List[str], bits: int, vregs: int,
                    freq: float, units: float, caches: List[Tuple[int, int]], ways: List[int],
                    bandwidth: Dict[str, float], flags: List[str], note: str) -> HostProfile:
    """A built-in target: FMA latency 4 everywhere it is used here; caches
    given as (level, bytes) with their ways; nothing is measured."""
    return HostProfile(
        name=name, arch=arch, isa=isa, features=features, vector_bits=bits, vector_registers=vregs,
        fma_latency_cycles=4.0, fma_per_cycle=units, freq_ghz=freq,
        peak_gflops_per_core=_peak(freq, units, bits), cores=4,
        caches=[CacheLevel(lvl, size, 64, w, 1, "target") for (lvl, size), w in zip(caches, ways)],
        bandwidth_gbps=dict(bandwidth), compile_flags=list(flags), measured=False,
        notes=[f"built-in target {name}: {note} (numbers documented in autoconfig/probe.py)",
               "cores=4 is a placeholder: a target cannot know the deployment's core count"])


_X86_BASE = ["sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "popcnt"]
_X86_V3 = _X86_BASE + ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2"]


def _builtin(name: str) -> HostProfile:
    if name == "x86-64-v4":
        # A Sapphire Rapids server core (Xeon Platinum 8480+, Golden Cove):
        #  - Intel 64 and IA-32 Architectures Optimization Reference Manual
        #    (Golden Cove): L1D 48 KiB 12-way, L2 2 MiB 16-way; SPR L3 is
        #    105 MiB / 56 cores = 1.875 MiB per core, 15-way.
        #  - Two 512-bit FMA units (ports 0 and 5) on Gold 6xxx / Platinum 8xxx,
        #    FMA latency 4 cycles (uops.info / Intel manual).
        #  - 2.5 GHz: roughly the all-core turbo of those parts under AVX-512.
        #  - Bandwidths: per-cycle rates autoconfig_probe measured on an SPR/EMR
        #    KVM guest (L1 ~108 B/cycle of the 128 B/cycle peak, L2 ~46 B/cycle)
        #    scaled to 2.5 GHz; L3 and DRAM are latency/concurrency bound, not
        #    clock bound, so the measured single-core values are kept.
        return _target_profile(
            name, arch="x86_64", isa="avx512",
            features=_X86_V3 + ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"],
            bits=512, vregs=32, freq=2.5, units=2.0,
            caches=[(1, 48 * KiB), (2, 2 * MiB), (3, 1920 * KiB)], ways=[12, 16, 15],
            bandwidth={"L1": 270.0, "L2": 115.0, "L3": 30.0, "DRAM": 18.0},
            flags=ISA_TABLE["avx512"]["compile_flags"], note="Sapphire-Rapids-like server core")
    if name == "x86-64-v3":
        # A Skylake-client core (Core i7-6700K .. Coffee Lake, the reference
        # AVX2+FMA core):
        #  - Intel Optimization Reference Manual (Skylake client): L1D 32 KiB
        #    8-way, L2 256 KiB 4-way, L3 2 MiB per core 16-way (8 MiB / 4 cores).
        #  - Two 256-bit FMA units (ports 0 and 1), latency 4 cycles.
        #  - 3.0 GHz: a sustained all-core clock of those parts.
        #  - Bandwidths (7-cpu.com Skylake figures, rounded): L1 two 32 B loads
        #    per cycle (~58 B/cycle sustained), L2 ~30 B/cycle, L3 ~15 B/cycle;
        #    DRAM ~20 GB/s for one core on dual-channel DDR4.
        return _target_profile(
            name, arch="x86_64", isa="avx2", features=list(_X86_V3),
            bits=256, vregs=16, freq=3.0, units=2.0,
            caches=[(1, 32 * KiB), (2, 256 * KiB), (3, 2 * MiB)], ways=[8, 4, 16],
            bandwidth={"L1": 175.0, "L2": 90.0, "L3": 45.0, "DRAM": 20.0},
            flags=ISA_TABLE["avx2"]["compile_flags"], note="Skylake-client-like AVX2 core")
    if name == "x86-64-v2":
        # A Nehalem/Westmere-class core, the oldest x86-64-v2 machines
        # (SSE4.2 + POPCNT, no AVX): 128-bit SSE, 16 xmm registers, one
        # 128-bit multiply and one add per cycle (no FMA: the portable code
        # issues mul+add pairs, counted here as one FMA-equivalent per cycle,
        # 8 flops/cycle); Intel Optimization Manual (Nehalem): L1D 32 KiB
        # 8-way, L2 256 KiB 8-way, L3 2 MiB per core 16-way; 2.5 GHz.
        return _target_profile(
            name, arch="x86_64", isa="generic", features=list(_X86_BASE),
            bits=128, vregs=16, freq=2.5, units=1.0,
            caches=[(1, 32 * KiB), (2, 256 * KiB), (3, 2 * MiB)], ways=[8, 8, 16],
            bandwidth={"L1": 60.0, "L2": 35.0, "L3": 20.0, "DRAM": 10.0},
            flags=["-msse4.2", "-mpopcnt"], note="Nehalem-class SSE4.2 core, portable codegen")
    if name == "generic":
        # Portable code for any x86-64 (SSE2 baseline: 128-bit, 16 registers) or
        # other CPU. Deliberately modest numbers: one 128-bit FMA (or mul+add)
        # per cycle, latency 4, 2.0 GHz; caches of a small core (L1D 32 KiB
        # 8-way, L2 256 KiB 8-way, L3 2 MiB/core 16-way); bandwidths ~ two
        # 16 B loads per cycle for L1 and typical single-core L2/L3/DRAM rates.
        return _target_profile(
            name, arch="x86_64", isa="generic", features=["sse2"],
            bits=128, vregs=16, freq=2.0, units=1.0,
            caches=[(1, 32 * KiB), (2, 256 * KiB), (3, 2 * MiB)], ways=[8, 8, 16],
            bandwidth={"L1": 50.0, "L2": 30.0, "L3": 20.0, "DRAM": 10.0},
            flags=[], note="portable 128-bit baseline")
    if name == "armv8-neon":
        # An Arm Neoverse N1 core (AWS Graviton2, Ampere Altra):
        #  - Arm Neoverse N1 TRM: L1D 64 KiB 4-way, private L2 1 MiB 8-way; the
        #    system-level cache is ~0.5-1 MiB per core (Graviton2: 32 MiB / 64).
        #  - Neoverse N1 Software Optimization Guide: two 128-bit ASIMD FMLA
        #    pipes, latency 4; 32 vector registers (Arm ARM: V0-V31).
        #  - 2.5 GHz (Graviton2). Bandwidths: two 16 B loads per cycle for L1,
        #    typical single-core L2/SLC/DRAM rates.
        return _target_profile(
            name, arch="aarch64", isa="neon", features=["asimd", "neon"],
            bits=128, vregs=32, freq=2.5, units=2.0,
            caches=[(1, 64 * KiB), (2, 1 * MiB), (3, 1 * MiB)], ways=[4, 8, 16],
            bandwidth={"L1": 70.0, "L2": 40.0, "L3": 25.0, "DRAM": 15.0},
            flags=ISA_TABLE["neon"]["compile_flags"], note="Neoverse-N1-like core, NEON codegen")
    if name == "armv8-sve":
        # An Arm Neoverse V1 core (AWS Graviton3), the reference 256-bit SVE core:
        #  - Arm Neoverse V1 TRM: L1D 64 KiB 4-way, private L2 1 MiB 8-way;
        #    Graviton3's system-level cache is 32 MiB / 64 cores = 0.5 MiB per core.
        #  - Neoverse V1 Software Optimization Guide: SVE vector length 256 bits,
        #    two 256-bit SVE FMLA pipes (the four 128-bit ASIMD pipes paired),
        #    FMLA latency 4; 32 Z registers (Arm ARM).
        #  - 2.6 GHz (Graviton3). Bandwidths: L1 two 32 B loads per cycle
        #    (~100 GB/s sustained), typical single-core L2/SLC/DRAM rates of V1
        #    parts.
        # The kernels run at any vector length; 256 bits only sizes the blocking.
        return _target_profile(
            name, arch="aarch64", isa="sve", features=["asimd", "neon", "sve"],
            bits=256, vregs=32, freq=2.6, units=2.0,
            caches=[(1, 64 * KiB), (2, 1 * MiB), (3, 512 * KiB)], ways=[4, 8, 16],
            bandwidth={"L1": 100.0, "L2": 50.0, "L3": 30.0, "DRAM": 20.0},
            flags=ISA_TABLE["sve"]["compile_flags"], note="Neoverse-V1-like core, vector-length-agnostic SVE codegen")
    if name == "rv64gcv":
        # A SpacemiT X60 core (SpacemiT K1 SoC: Banana Pi BPI-F3, Milk-V
        # Jupiter), a widely available RVV 1.0 core. From SpacemiT's K1
        # product brief: RV64GCV, VLEN 256, 32 KiB L1D per core, 512 KiB L2 per
        # cluster of 4 cores, no L3, 1.6 GHz; 32 vector registers (RVV spec).
        # Not published, assumed here: one VLEN-wide FMA per cycle of latency
        # 4, L1 8-way and L2 16-way; level 3 is the whole cluster L2 (what one
        # core gets when its neighbours are idle: the models want 3 levels).
        # Bandwidths: 16 B/cycle from L1, typical in-order-core L2 and
        # LPDDR4X single-core rates.
        # The GEMM kernels run at any VLEN; 256 bits only sizes the blocking.
        return _target_profile(
            name, arch="riscv64", isa="rvv", features=["a", "c", "d", "f", "i", "m", "v"],
            bits=256, vregs=32, freq=1.6, units=1.0,
            caches=[(1, 32 * KiB), (2, 128 * KiB), (3, 512 * KiB)], ways=[8, 16, 16],
            bandwidth={"L1": 25.0, "L2": 12.0, "L3": 8.0, "DRAM": 5.0},
            flags=ISA_TABLE["rvv"]["compile_flags"],
            note="SpacemiT-X60-like core, vector-length-agnostic RVV 1.0 codegen (clang >= 16)")
    raise ValueError(f"unknown target {name!r}; built-in targets: {', '.join(BUILTIN_TARGETS)} "
                     f"(or 'host', or a path to a JSON target file)")


BUILTIN_TARGETS: Tuple[str, ...] = ("x86-64-v4", "x86-64-v3", "x86-64-v2", "generic", "armv8-neon",
                                    "armv8-sve", "rv64gcv")
# Multi-variant builds: one wheel holding several targets, the best the CPU runs picked at load.
MULTI_TARGETS: Dict[str, Tuple[str, ...]] = {"portable": ("x86-64-v4", "x86-64-v3", "x86-64-v2")}


def available_targets() -> List[str]:
    """Names profile() accepts besides a JSON file path: 'host' and the built-ins."""
    return ["host", *BUILTIN_TARGETS]


# --------------------------------------------------------------------------- sysfs
def _parse_size(text: str) -> int:
    """'48K' -> 49152, '2048K', '300M', '1G', '65536' (bytes)."""
    t = str(text).strip().upper()
    if t.endswith("B") and len(t) > 1 and t[-2] in "KMG":
        t = t[:-1]
    if t.endswith("IB") and len(t) > 2:
        t = t[:-2]
    mult = 1
    if t and t[-1] in "KMG":
        mult = {"K": KiB, "M": MiB, "G": 1 << 30}[t[-1]]
        t = t[:-1]
    value = float(t)
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"bad size {text!r}")
    return int(round(value * mult))


def _count_cpu_list(text: str) -> int:
    """'0-1,4,6-7' -> 5."""
    n = 0
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            n += int(hi) - int(lo) + 1
        else:
            n += 1
    return n


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_sysfs_caches(root: Union[str, Path] = "/sys/devices/system/cpu/cpu0/cache") -> List[CacheLevel]:
    """Data and unified caches of one CPU from sysfs, sizes per sharing CPU.

    size_bytes = sysfs size / number of CPUs in shared_cpu_list (shared_by).
    Returns [] when the directory is missing; entries that cannot be parsed
    are skipped. One entry per level (the first data/unified one), sorted.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    by_level: Dict[int, CacheLevel] = {}
    for idx in sorted(root.glob("index*"), key=lambda p: (len(p.name), p.name)):
        ctype = (_read(idx / "type") or "").lower()
        if ctype not in ("data", "unified"):
            continue
        try:
            level = int(_read(idx / "level") or "")
            size = _parse_size(_read(idx / "size") or "")
        except ValueError:
            continue
        if size <= 0 or level in by_level:
            continue
        shared_by = 1
        cpu_list = _read(idx / "shared_cpu_list")
        if cpu_list:
            try:
                shared_by = max(1, _count_cpu_list(cpu_list))
            except ValueError:
                shared_by = 1
        else:
            cpu_map = _read(idx / "shared_cpu_map")
            if cpu_map:
                try:
                    shared_by = max(1, bin(int(cpu_map.replace(",", ""), 16)).count("1"))
                except ValueError:
                    shared_by = 1
        try:
            ways = int(_read(idx / "ways_of_associativity") or "0")
        except ValueError:
            ways = 0
        try:
            line = int(_read(idx / "coherency_line_size") or "64")
        except ValueError:
            line = 64
        line = line if line > 0 else 64
        if ways <= 0:  # 0 = fully associative (or unknown): treat as size / line ways
            ways = max(1, size // line)
        by_level[level] = CacheLevel(level=level, size_bytes=size // shared_by, line_bytes=line,
                                     ways=ways, shared_by=shared_by, source="sysfs")
    return [by_level[k] for k in sorted(by_level)]


# --------------------------------------------------------------------------- the probe program
def _pkg_dir() -> Path:
    return Path(__file__).resolve().parent


def _probe_sources() -> Tuple[List[Path], List[Path]]:
    """(.cpp files, include dirs) of the probe: autoconfig/_probe_src/ when the
    package ships them (flat or as probe/ + src/), else <repo>/cpp_runtime/."""
    roots = [_pkg_dir() / "_probe_src", Path(__file__).resolve().parents[2] / "cpp_runtime"]
    tried = []
    for root in roots:
        tried.append(str(root))
        main = next((p for p in (root / "probe_main.cpp", root / "probe" / "probe_main.cpp")
                     if p.is_file()), None)
        feats = next((p for p in (root / "cpu_features.cpp", root / "src" / "cpu_features.cpp")
                      if p.is_file()), None)
        if main is None or feats is None:
            continue
        cpps = [main]
        bench = main.parent / "probe_bench.cpp"
        if bench.is_file():
            cpps.append(bench)
        cpps.append(feats)
        incs = []
        for d in (main.parent, feats.parent):
            if d not in incs:
                incs.append(d)
        return cpps, incs
    raise RuntimeError("autoconfig probe sources (probe_main.cpp, cpu_features.cpp) not found in "
                       + " or ".join(tried))


def compile_probe(cxx: str, out_dir: Union[str, Path]) -> Path:
    """Compile autoconfig_probe with `cxx -O2 -std=c++17` into out_dir.

    `cxx` may carry a launcher or flags ("ccache g++"). A binary already in
    out_dir built from the same sources and command is reused.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cpps, incs = _probe_sources()
    exe = out_dir / "autoconfig_probe"
    cmd = [*shlex.split(cxx), "-O2", "-std=c++17", "-pthread", *[f"-I{d}" for d in incs],
           *[str(c) for c in cpps], "-o", str(exe)]
    if not cmd[0]:
        raise RuntimeError("compile_probe: empty compiler command")
    stamp = out_dir / "autoconfig_probe.cmd"
    stamp_text = json.dumps(cmd)
    newest_src = max(p.stat().st_mtime for d in incs for p in d.glob("*.[ch]*"))
    if (exe.is_file() and stamp.is_file() and stamp.read_text() == stamp_text
            and exe.stat().st_mtime >= newest_src):
        return exe
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as e:
        raise RuntimeError(f"compile_probe: compiler not found: {cmd[0]!r} ({e})") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"compile_probe: compiler timed out: {' '.join(cmd)}") from None
    if res.returncode != 0:
        raise RuntimeError(f"compile_probe: compiling the probe failed (exit {res.returncode}):\n"
                           f"  {' '.join(shlex.quote(c) for c in cmd)}\n{res.stderr.strip()}")
    stamp.write_text(stamp_text)
    return exe


def run_probe_binary(exe: Union[str, Path], quick: bool = False, *, bandwidth: bool = True,
                     timeout: float = 60.0) -> dict:
    """Run autoconfig_probe and return its JSON object."""
    cmd = [str(exe)] + (["--quick"] if quick else []) + ([] if bandwidth else ["--no-bandwidth"])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RuntimeError(f"probe binary not found: {exe}") from None
    except PermissionError as e:
        raise RuntimeError(f"probe binary not executable: {exe} ({e})") from None
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise RuntimeError(f"probe {exe} timed out after {timeout:g} s\n{err.strip()}") from None
    if res.returncode != 0:
        raise RuntimeError(f"probe {exe} failed (exit {res.returncode}):\n{res.stderr.strip()}")
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"probe {exe} printed invalid JSON ({e}):\n{res.stdout[:2000]}\n"
                           f"{res.stderr.strip()}") from None
    if not isinstance(data, dict):
        raise RuntimeError(f"probe {exe} printed {type(data).__name__}, expected a JSON object")
    return data


# --------------------------------------------------------------------------- host profile
def _normalize_arch(a: str) -> str:
    a = (a or "").lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(a, a)


# Linux exposes the SVE vector length new processes start with, in bytes
# (Documentation/arch/arm64/sve.rst); the kernels inherit it.
SVE_DEFAULT_VL_FILE = "/proc/sys/abi/sve_default_vector_length"


def read_sve_vector_bits(path: Union[str, Path] = SVE_DEFAULT_VL_FILE) -> Optional[int]:
    """The SVE vector length (bits) processes get on this Linux host, or None."""
    text = _read(Path(path))
    try:
        nbytes = int(text or "")
    except ValueError:
        return None
    return nbytes * 8 if 16 <= nbytes <= 256 and nbytes % 16 == 0 else None


def choose_isa(features: Sequence[str], sve_bits: Optional[int] = None) -> str:
    """The codegen ISA for a feature set (cpuid names on x86, hwcap names on Arm).

    SVE is chosen only when it is wider than NEON: at 128 bits it has the
    same lanes, and the NEON kernels need no predicates."""
    f = set(features)
    if "sve" in f and sve_bits is not None and sve_bits > ISA_TABLE["neon"]["vector_bits"]:
        return "sve"
    if all(x in f for x in ISA_TABLE["neon"]["requires"]):
        return "neon"
    if all(x in f for x in ISA_TABLE["avx512"]["requires"]):
        return "avx512"
    if all(x in f for x in ISA_TABLE["avx2"]["requires"]):
        return "avx2"
    return "generic"


def _round_if_close(x: float, what: str, notes: List[str]) -> float:
    r = round(x)
    if r >= 1 and abs(x - r) <= ROUND_TOLERANCE:
        if abs(x - r) > 1e-9:
            notes.append(f"{what}: measured {x:.3f}, rounded to {r}")
        return float(r)
    notes.append(f"{what}: measured {x:.3f}, kept (not within {ROUND_TOLERANCE} of an integer)")
    return float(x)


def _plausible_fma_latency(cycles: float) -> bool:
    return FMA_LATENCY_PLAUSIBLE[0] <= cycles <= FMA_LATENCY_PLAUSIBLE[1]


def _implausible_fma_latencies(meas: dict) -> List[str]:
    """The FMA kernels whose measured latency is outside FMA_LATENCY_PLAUSIBLE."""
    bad = []
    for key, fma in ((meas or {}).get("fma") or {}).items():
        try:
            lat = float(fma["latency_cycles"])
        except (KeyError, TypeError, ValueError):
            continue
        if not _plausible_fma_latency(lat):
            bad.append(f"{key} {lat:.2f} cycles")
    return bad


def _bandwidth_curve(meas: dict) -> List[Tuple[int, float]]:
    curve = []
    for e in meas.get("bandwidth") or []:
        try:
            b, g = int(e["bytes"]), float(e["gbps"])
        except (KeyError, TypeError, ValueError):
            continue
        if b > 0 and g > 0:
            curve.append((b, g))
    return sorted(curve)


def _bw_at(curve: List[Tuple[int, float]], nbytes: float) -> Tuple[int, float]:
    """The largest measured working set <= nbytes (else the smallest)."""
    fit = [c for c in curve if c[0] <= nbytes]
    return fit[-1] if fit else curve[0]


def _fmt_bytes(n: float) -> str:
    if n >= MiB:
        return f"{n / MiB:g} MiB"
    if n >= KiB:
        return f"{n / KiB:g} KiB"
    return f"{int(n)} B"


def _check_l3(caches: Dict[int, CacheLevel], curve: List[Tuple[int, float]],
              notes: List[str]) -> None:
    l3 = caches.get(3)
    if l3 is None or l3.source != "sysfs":
        return
    reason = None
    if l3.size_bytes > L3_SYSFS_IMPLAUSIBLE:
        reason = (f"sysfs L3 per core {_fmt_bytes(l3.size_bytes)} (shared by {l3.shared_by}) "
                  f"> {_fmt_bytes(L3_SYSFS_IMPLAUSIBLE)}: not this core's share (VM exposing the host socket?)")
    elif len(curve) >= 2:
        dram = curve[-1][1]
        size, bw = _bw_at(curve, l3.size_bytes / 2)
        if bw < L3_FASTER_THAN_DRAM * dram:
            reason = (f"a {_fmt_bytes(size)} working set (half the sysfs L3 per core) reads at "
                      f"{bw:.1f} GB/s, DRAM speed ({dram:.1f} GB/s)")
    if reason is None:
        return
    if len(curve) < 2:
        d = DEFAULT_CACHES[3]
        caches[3] = CacheLevel(3, d.size_bytes, l3.line_bytes, l3.ways, l3.shared_by, "default")
        notes.append(f"L3: {reason}; no bandwidth curve measured, using the default "
                     f"{_fmt_bytes(d.size_bytes)} per core")
        return
    dram = curve[-1][1]
    fast = [b for b, g in curve[:-1] if g >= L3_FASTER_THAN_DRAM * dram]
    l2 = caches.get(2)
    if not fast:
        d = DEFAULT_CACHES[3]
        caches[3] = CacheLevel(3, d.size_bytes, l3.line_bytes, l3.ways, l3.shared_by, "default")
        notes.append(f"L3: {reason}; no working set reads >= {L3_FASTER_THAN_DRAM}x DRAM "
                     f"({dram:.1f} GB/s), using the default {_fmt_bytes(d.size_bytes)} per core")
        return
    size = min(max(fast), L3_MEASURED_CAP)
    msg = (f"L3: {reason}; replaced by {_fmt_bytes(size)} per core, the largest measured working "
           f"set reading >= {L3_FASTER_THAN_DRAM}x DRAM bandwidth ({dram:.1f} GB/s)"
           + (f", capped at {_fmt_bytes(L3_MEASURED_CAP)}" if max(fast) > L3_MEASURED_CAP else ""))
    if l2 is not None and size <= l2.size_bytes:
        size = l2.size_bytes
        msg += f"; no plateau above L2, so set to the L2 size {_fmt_bytes(size)}"
    caches[3] = CacheLevel(3, int(size), l3.line_bytes, l3.ways, l3.shared_by, "measured")
    notes.append(msg)


def _host_profile(meas: dict, notes: List[str]) -> HostProfile:
    if not isinstance(meas, dict) or not isinstance(meas.get("features"), list):
        raise ValueError("measurements: expected a dict with a 'features' list (autoconfig_probe output)")
    try:
        freq = float(meas["freq_ghz"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("measurements: 'freq_ghz' missing or not a number") from None
    if not (freq > 0 and math.isfinite(freq)):
        raise ValueError(f"measurements: implausible freq_ghz {freq}")
    features = sorted({str(f).lower() for f in meas["features"]})
    arch = _normalize_arch(meas.get("arch") or platform.machine())

    sve_bits = read_sve_vector_bits() if arch == "aarch64" and "sve" in features else None
    isa = choose_isa(features, sve_bits)
    spec = ISA_TABLE[isa]
    vector_bits, vregs, fma_key = spec["vector_bits"], spec["vector_registers"], spec["fma_key"]
    if arch == "aarch64" and isa == "generic":
        vregs, fma_key = 32, "neon"  # AArch64 without hwcaps: still 32 x 128-bit registers
    notes.append(f"isa {isa}: features " + (", ".join(spec["requires"]) or "baseline") + " present")
    # The probe times 128-bit NEON FMAs. An SVE core issues the same flops
    # through fewer, wider pipes (Neoverse V1: 4 x 128-bit ASIMD = 2 x 256-bit
    # SVE), so the peak stays and the FMAs per cycle scale by 128 / VL.
    fma_width_scale = 1.0
    if isa == "sve":
        vector_bits = sve_bits
        fma_width_scale = ISA_TABLE["neon"]["vector_bits"] / sve_bits
        notes.append(f"SVE vector length {sve_bits} bits from {SVE_DEFAULT_VL_FILE}; "
                     f"peak taken from the NEON FMA rate (same pipes, wider vectors)")
    elif "sve" in features:
        notes.append(f"SVE present but no vector length wider than 128 bits in {SVE_DEFAULT_VL_FILE}: "
                     "NEON kernels (same lanes, no predicates)")

    fma = (meas.get("fma") or {}).get(fma_key)
    if isinstance(fma, dict) and all(k in fma for k in ("latency_cycles", "per_cycle", "gflops")):
        measured_latency = float(fma["latency_cycles"])
        if _plausible_fma_latency(measured_latency):
            latency = _round_if_close(measured_latency, f"FMA latency ({fma_key})", notes)
        else:
            latency = ASSUMED_FMA_LATENCY
            notes.append(f"FMA latency ({fma_key}): measured {measured_latency:.3f} cycles, outside "
                         f"the plausible {FMA_LATENCY_PLAUSIBLE[0]:g}-{FMA_LATENCY_PLAUSIBLE[1]:g}; "
                         f"assumed {ASSUMED_FMA_LATENCY:g}")
        units = _round_if_close(float(fma["per_cycle"]) * fma_width_scale, f"FMAs per cycle ({isa})", notes)
        peak = float(fma["gflops"])
        notes.append(f"peak {peak:.1f} GFLOPS/core: measured {fma_key} FMA rate "
                     f"({float(fma['per_cycle']) * fma_width_scale:.2f}/cycle at {freq:.2f} GHz x "
                     f"{vector_bits // 32} lanes x 2)")
        if fma.get("emulated"):
            notes.append(f"{fma_key}: no FMA unit, a mul+add pair was timed as one FMA")
    else:
        latency, units = 4.0, (2.0 if isa != "generic" else 1.0)
        peak = _peak(freq, units, vector_bits)
        notes.append(f"no {fma_key} FMA measurement: assumed latency 4, {units:g}/cycle, "
                     f"peak {peak:.1f} GFLOPS/core from the clock")

    # caches: sysfs, defaults for missing levels, then the L3 sanity check.
    caches = {c.level: c for c in read_sysfs_caches()}
    for lvl, d in DEFAULT_CACHES.items():
        if lvl not in caches:
            caches[lvl] = copy.copy(d)
            notes.append(f"L{lvl}: not in sysfs, default {_fmt_bytes(d.size_bytes)} {d.ways}-way")
    curve = _bandwidth_curve(meas)
    _check_l3(caches, curve, notes)

    bandwidth: Dict[str, float] = {}
    if curve:
        for lvl in (1, 2, 3):
            size, bw = _bw_at(curve, caches[lvl].size_bytes / 2)
            bandwidth[f"L{lvl}"] = round(bw, 2)
        bandwidth["DRAM"] = round(curve[-1][1], 2)
        notes.append("bandwidth: " + ", ".join(
            f"L{lvl}={bandwidth[f'L{lvl}']:g} GB/s @ {_fmt_bytes(_bw_at(curve, caches[lvl].size_bytes / 2)[0])}"
            for lvl in (1, 2, 3)) + f", DRAM={bandwidth['DRAM']:g} GB/s @ {_fmt_bytes(curve[-1][0])}")
    else:
        notes.append("bandwidth: not measured (models fall back to their defaults)")

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    scaling = _fma_thread_scaling(meas.get("fma_all_cpus"), fma_key, peak if isinstance(fma, dict) else None, notes)

    return HostProfile(
        name="host", arch=arch, isa=isa, features=features,
        vector_bits=vector_bits, vector_registers=vregs,
        fma_latency_cycles=latency, fma_per_cycle=units, freq_ghz=round(freq, 4),
        peak_gflops_per_core=round(peak, 3), cores=cores,
        caches=[caches[k] for k in sorted(caches)],
        bandwidth_gbps=bandwidth, compile_flags=list(spec["compile_flags"]),
        measured=bool(meas.get("fma") or curve), fma_thread_scaling=scaling, notes=notes)


def _fma_thread_scaling(all_cpus, fma_key: str, peak: Optional[float], notes: List[str]) -> float:
    """FMA throughput of all CPUs at once over the sum of their single rates,
    within [1/threads, 1]; 1 when it was not measured."""
    if not (isinstance(all_cpus, dict) and all_cpus.get("key") == fma_key and peak):
        return 1.0
    try:
        threads, gflops = int(all_cpus["threads"]), float(all_cpus["gflops"])
    except (KeyError, TypeError, ValueError):
        return 1.0
    if threads < 2 or not gflops > 0:
        return 1.0
    scaling = round(min(1.0, max(1.0 / threads, gflops / (threads * peak))), 2)
    notes.append(f"FMA throughput with all {threads} CPUs busy: {gflops:.1f} GFLOPS = {scaling:g} x "
                 f"{threads} x one CPU's" + (" (they share FMA units: SMT siblings)" if scaling < 0.8 else ""))
    return scaling


# --------------------------------------------------------------------------- target files / overrides
_FIELD_NAMES = tuple(f.name for f in fields(HostProfile))
_CACHE_FIELDS = tuple(f.name for f in fields(CacheLevel))


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_field(where: str, name: str, v: Any) -> Any:
    """Validate (and normalize) one HostProfile field from JSON."""
    def bad(expected: str):
        return ValueError(f"{where}: field '{name}': expected {expected}, got {v!r}")

    if name in ("name", "arch"):
        if not isinstance(v, str) or not v:
            raise bad("a non-empty string")
        return v
    if name == "isa":
        if v not in ISA_TABLE:
            raise bad("one of " + ", ".join(KNOWN_ISAS))
        return v
    if name in ("features", "compile_flags", "notes"):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad("a list of strings")
        return [x.lower() for x in v] if name == "features" else list(v)
    if name == "vector_bits":
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 32 and v % 32 == 0):
            raise bad("a positive multiple of 32")
        return v
    if name in ("vector_registers", "cores"):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise bad("a positive integer")
        return v
    if name in ("fma_latency_cycles", "fma_per_cycle", "freq_ghz", "peak_gflops_per_core"):
        if not (_is_num(v) and v > 0):
            raise bad("a positive number")
        return float(v)
    if name == "measured":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if name == "fma_thread_scaling":
        if not (_is_num(v) and 0 < v <= 1):
            raise bad("a number in (0, 1]")
        return float(v)
    if name == "bandwidth_gbps":
        if not isinstance(v, dict):
            raise bad("an object {level: GB/s}")
        out = {}
        for k, g in v.items():
            if k not in BANDWIDTH_LEVELS:
                raise ValueError(f"{where}: field 'bandwidth_gbps.{k}': unknown level; "
                                 f"allowed: {', '.join(BANDWIDTH_LEVELS)}")
            if not (_is_num(g) and g > 0):
                raise ValueError(f"{where}: field 'bandwidth_gbps.{k}': expected a positive number, got {g!r}")
            out[k] = float(g)
        return out
    if name == "caches":
        if not isinstance(v, list):
            raise bad("a list of cache objects")
        out = []
        for i, c in enumerate(v):
            p = f"caches[{i}]"
            if isinstance(c, CacheLevel):
                out.append(c)
                continue
            if not isinstance(c, dict):
                raise ValueError(f"{where}: field '{p}': expected an object, got {c!r}")
            unknown = sorted(set(c) - set(_CACHE_FIELDS))
            if unknown:
                raise ValueError(f"{where}: field '{p}.{unknown[0]}': unknown; allowed: {', '.join(_CACHE_FIELDS)}")
            for req in ("level", "size_bytes"):
                if req not in c:
                    raise ValueError(f"{where}: field '{p}.{req}': missing")
            cc = dict(c)
            if isinstance(cc["size_bytes"], str):  # "48K", "2M" allowed in hand-written files
                try:
                    cc["size_bytes"] = _parse_size(cc["size_bytes"])
                except ValueError:
                    raise ValueError(f"{where}: field '{p}.size_bytes': bad size {c['size_bytes']!r}") from None
            for k in ("level", "size_bytes", "line_bytes", "ways", "shared_by"):
                if k in cc and not (isinstance(cc[k], int) and not isinstance(cc[k], bool) and cc[k] >= 1):
                    raise ValueError(f"{where}: field '{p}.{k}': expected a positive integer, got {cc[k]!r}")
            if not 1 <= cc["level"] <= 4:
                raise ValueError(f"{where}: field '{p}.level': expected 1..4, got {cc['level']!r}")
            if "source" in cc and not isinstance(cc["source"], str):
                raise ValueError(f"{where}: field '{p}.source': expected a string")
            cc.setdefault("source", "target")
            out.append(CacheLevel(**cc))
        levels = [c.level for c in out]
        if len(set(levels)) != len(levels):
            raise ValueError(f"{where}: field 'caches': duplicate level in {levels}")
        return sorted(out, key=lambda c: c.level)
    raise ValueError(f"{where}: field '{name}': unknown; allowed: {', '.join(_FIELD_NAMES)}")


def _apply_override(base: HostProfile, override: dict, where: str) -> HostProfile:
    """Merge `override` into a copy of `base`: scalars and lists replace
    (caches given as a list replace all levels), bandwidth_gbps merges per
    level, notes append. ISA-derived fields follow a changed isa unless given;
    the peak follows the clock/units/width unless given."""
    if not isinstance(override, dict):
        raise ValueError(f"{where}: field 'override': expected an object, got {type(override).__name__}")
    d = base.to_dict()
    d["caches"] = [CacheLevel(**c) for c in d["caches"]]
    checked = {}
    for k, v in override.items():
        if k not in _FIELD_NAMES:
            raise ValueError(f"{where}: field '{k}': unknown; allowed: {', '.join(_FIELD_NAMES)}")
        checked[k] = _check_field(where, k, v)
    notes = list(d["notes"])
    if "isa" in checked and checked["isa"] != base.isa:
        spec = ISA_TABLE[checked["isa"]]
        for k in ("vector_bits", "vector_registers", "compile_flags"):
            if k not in checked:
                d[k] = copy.copy(spec[k])
    for k, v in checked.items():
        if k == "bandwidth_gbps":
            d[k] = {**d[k], **v}
        elif k == "notes":
            notes.extend(v)
        else:
            d[k] = v
    if "peak_gflops_per_core" not in checked and any(
            k in checked for k in ("freq_ghz", "fma_per_cycle", "vector_bits", "isa")):
        d["peak_gflops_per_core"] = _peak(d["freq_ghz"], d["fma_per_cycle"], d["vector_bits"])
        notes.append(f"peak recomputed as freq x FMA/cycle x lanes x 2 = {d['peak_gflops_per_core']:g} GFLOPS")
    if checked:
        notes.append(f"override from {where}: " + ", ".join(sorted(checked)))
    d["notes"] = notes
    return HostProfile(**d)


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read target file ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:   # json recurses per nesting level
        raise ValueError(f"{path}: JSON nested too deeply to be a target file (at most 4 levels)") from None


def _target_from_file(path: Path) -> HostProfile:
    where = str(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if "base" in data or "override" in data:
        extra = sorted(set(data) - {"base", "override"})
        if extra:
            raise ValueError(f"{where}: field '{extra[0]}': unknown next to 'base'/'override' "
                             f"(put profile fields inside 'override')")
        base_name = data.get("base")
        if not isinstance(base_name, str):
            raise ValueError(f"{where}: field 'base': expected a built-in target name "
                             f"({', '.join(BUILTIN_TARGETS)}), got {base_name!r}")
        if base_name not in BUILTIN_TARGETS:
            raise ValueError(f"{where}: field 'base': unknown target {base_name!r}; "
                             f"built-in targets: {', '.join(BUILTIN_TARGETS)}")
        override = data.get("override", {})
        if not isinstance(override, dict):
            raise ValueError(f"{where}: field 'override': expected an object, got {override!r}")
        override = dict(override)
        prof = _apply_override(_builtin(base_name), override, where)
        if "name" not in override:
            prof.name = path.stem
        prof.measured = False
        prof.notes.insert(0, f"target file {where} (base {base_name})")
        return prof
    # a full HostProfile
    missing = [f.name for f in fields(HostProfile) if f.name not in data and
               f.default is MISSING and f.default_factory is MISSING]
    for k in data:
        if k not in _FIELD_NAMES:
            raise ValueError(f"{where}: field '{k}': unknown; allowed: {', '.join(_FIELD_NAMES)}")
    if missing:
        raise ValueError(f"{where}: field '{missing[0]}': missing (a full profile needs "
                         f"{', '.join(missing)}; or use {{\"base\": ..., \"override\": ...}})")
    d = {k: _check_field(where, k, v) for k, v in data.items()}
    d.setdefault("compile_flags", list(ISA_TABLE[d["isa"]]["compile_flags"]))
    prof = HostProfile(**d)
    prof.measured = False
    prof.notes = [f"target file {where}"] + list(prof.notes)
    return prof


def _host_override(prof: HostProfile) -> HostProfile:
    env = os.environ.get("AUTOCONFIG_PROFILE_OVERRIDE")
    if not env:
        return prof
    path = Path(env)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "override" in data or "base" in data:
        extra = sorted(set(data) - {"base", "override"})
        if extra:
            raise ValueError(f"{path}: field '{extra[0]}': unknown next to 'override'")
        if data.get("base", "host") != "host":
            raise ValueError(f"{path}: field 'base': AUTOCONFIG_PROFILE_OVERRIDE applies to the host "
                             f"profile; use 'host' or leave it out (got {data['base']!r})")
        data = data.get("override", {})
    prof = _apply_override(prof, data, str(path))
    prof.name = "host"
    return prof


# --------------------------------------------------------------------------- entry points
def _measure(exe: Union[str, Path], quick: bool, notes: List[str]) -> dict:
    """Run the probe; once more if a latency reading is implausible (a shared
    host can stall a whole timing round)."""
    meas = run_probe_binary(exe, quick=quick)
    bad = _implausible_fma_latencies(meas)
    if bad:
        notes.append(f"probe re-run: implausible FMA latency ({', '.join(bad)})")
        meas = run_probe_binary(exe, quick=quick)
    return meas


def profile(target: Optional[str] = None, *, cxx: Optional[str] = None,
            probe_exe: Optional[str] = None, measurements: Optional[dict] = None,
            quick: bool = False) -> HostProfile:
    """HostProfile of this machine (target None / "host") or of a target.

    Host: measurements (autoconfig_probe output) are taken from `measurements`
    if given, else by running `probe_exe`, else by compiling the probe with
    `cxx` / $CXX / c++ in a temporary directory. AUTOCONFIG_PROFILE_OVERRIDE
    may name a JSON file whose fields replace the result.
    Target: a built-in name (BUILTIN_TARGETS) or a JSON file, either a full
    profile or {"base": <built-in>, "override": {field: value}}.
    """
    if target is not None and not isinstance(target, (str, os.PathLike)):
        raise ValueError(f"target: expected a name or a path, got {target!r}")
    target = None if target is None else os.fspath(target)
    if target in (None, "", "host"):
        notes: List[str] = []
        if measurements is None:
            installed = _pkg_dir() / "autoconfig_probe"   # shipped in the wheel
            if not probe_exe and not cxx and installed.is_file() and os.access(installed, os.X_OK):
                probe_exe = str(installed)
            if probe_exe:
                notes.append(f"measured by {probe_exe}")
                measurements = _measure(probe_exe, quick, notes)
            else:
                compiler = cxx or os.environ.get("CXX") or "c++"
                with tempfile.TemporaryDirectory(prefix="autoconfig_probe_") as tmp:
                    exe = compile_probe(compiler, tmp)
                    measurements = _measure(exe, quick, notes)
                notes.append(f"measured by autoconfig_probe compiled with {compiler}")
        else:
            notes.append("measurements given by the caller")
        if "seconds" in measurements:
            notes.append(f"probe ran {float(measurements['seconds']):.2f} s"
                         + (" (quick)" if measurements.get("quick") else ""))
        return _host_override(_host_profile(measurements, notes))
    if target in BUILTIN_TARGETS:
        return _builtin(target)
    path = Path(target)
    if path.suffix.lower() == ".json" or path.exists() or os.sep in target:
        if not path.is_file():
            raise ValueError(f"{target}: target file not found")
        return _target_from_file(path)
    raise ValueError(f"unknown target {target!r}; built-in targets: {', '.join(BUILTIN_TARGETS)} "
                     f"(or 'host', or a path to a JSON target file)")


def summary(prof: HostProfile) -> str:
    """Human-readable description of a profile."""
    lines = [
        f"{prof.name}: {prof.arch}, isa {prof.isa} ({prof.vector_bits}-bit x {prof.vector_registers} "
        f"registers), {'measured' if prof.measured else 'not measured'}",
        f"  clock {prof.freq_ghz:.2f} GHz, FMA latency {prof.fma_latency_cycles:g} cycles, "
        f"{prof.fma_per_cycle:g} FMA/cycle, peak {prof.peak_gflops_per_core:.1f} GFLOPS/core fp32, "
        f"{prof.cores} cores" + (f" (all busy: {prof.fma_thread_scaling:g} x their FMA rate)"
                                 if prof.fma_thread_scaling < 1 else ""),
    ]
    for c in prof.caches:
        lines.append(f"  L{c.level}: {_fmt_bytes(c.size_bytes):>10} per core, {c.ways}-way, "
                     f"{c.line_bytes} B lines, shared by {c.shared_by} ({c.source})")
    if prof.bandwidth_gbps:
        lines.append("  read bandwidth per core: " + ", ".join(
            f"{k} {prof.bandwidth_gbps[k]:g} GB/s" for k in BANDWIDTH_LEVELS if k in prof.bandwidth_gbps))
    lines.append(f"  compile flags: {' '.join(prof.compile_flags) or '(none)'}")
    lines.append(f"  features: {' '.join(prof.features)}")
    if prof.notes:
        lines.append("  notes:")
        lines.extend(f"    - {n}" for n in prof.notes)
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoconfig.probe",
                                 description="Probe this machine or show a target's HostProfile.")
    ap.add_argument("--target", default=None,
                    help=f"host (default), a built-in target ({', '.join(BUILTIN_TARGETS)}) or a JSON file")
    ap.add_argument("--json", action="store_true", help="print the HostProfile as JSON")
    ap.add_argument("--quick", action="store_true", help="shorter micro-benchmarks")
    ap.add_argument("--cxx", default=None, help="C++ compiler for the probe (default $CXX or c++)")
    ap.add_argument("--probe-exe", default=None, help="an already built autoconfig_probe")
    args = ap.parse_args(argv)
    try:
        prof = profile(args.target, cxx=args.cxx, probe_exe=args.probe_exe, quick=args.quick)
    except (ValueError, RuntimeError) as e:
        print(f"autoconfig.probe: error: {e}", file=sys.stderr)
        return 2
    print(prof.to_json() if args.json else summary(prof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
