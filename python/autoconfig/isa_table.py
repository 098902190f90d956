"""The ISA table: every fact about a codegen ISA, one row each.

The probe (which ISA a host gets, its registers and flags, which FMA reading
gives its peak), the built-in targets, the registry (which cpu features a
compile flag requires), codegen (the fixed-lanes view of a scalable ISA, the
register file of an emitter) and bench (which FMA reading is the peak) all
read this table; none keeps a copy.

Plain data at the bottom of the package: no imports from autoconfig.

Adding an ISA (tests/build/test_isa_table.py checks the first four):
  1. a row in ISAS below: width, registers, compile flags, the cpu features a
     host needs, the probe's FMA key, the fixed-lanes view if it is scalable,
     and the built-in target(s) that select it;
  2. every compile flag of the row in FLAG_FEATURES (the cpu features the
     flag lets the compiler use: the load-time ISA check requires them);
  3. an emitter class in codegen/isa.py (the intrinsics), returned by
     codegen.isa.isa_for(key) and isa_for_profile();
  4. a built-in target in probe/targets.py (its numbers with their sources),
     listed in the row's `targets`;
  5. if a host can have it: the feature test in probe/host.py choose_isa(),
     the FMA kernel under the row's fma_key in cpp_runtime/probe/, and the
     feature names in cpp_runtime/src/cpu_features.cpp;
  6. a kernel check for it (tests/cpp; under qemu for another architecture).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class IsaRow:
    key: str                          # HostProfile.isa, codegen.isa.Isa.key
    vector_bits: int                  # SIMD width the planner assumes (scalable ISAs: for blocking)
    vector_registers: int             # architectural vector registers
    compile_flags: Tuple[str, ...]    # flags for the generated kernels of this ISA
    requires: Tuple[str, ...]         # cpu features a host needs for it (probe.choose_isa)
    fma_key: str                      # the autoconfig_probe FMA reading that gives its peak
    targets: Tuple[str, ...]          # built-in targets (probe/targets.py) that use it
    # Scalable (vector-length agnostic) ISAs: the fixed-width ISA every CPU
    # with it also runs, and that ISA's width in bits (profile.fixed_lanes_profile).
    fixed_lanes: Optional[Tuple[str, int]] = None


ISAS: Tuple[IsaRow, ...] = (
    IsaRow("avx512", 512, 32,
           ("-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"),
           ("avx512f", "avx512bw", "avx512dq", "avx512vl"), "avx512", ("x86-64-v4",)),
    IsaRow("avx2", 256, 16, ("-mavx2", "-mfma", "-mf16c"), ("avx2", "fma"), "avx2",
           ("x86-64-v3",)),
    # Arm Advanced SIMD: baseline on AArch64 (128-bit, 32 registers V0-V31).
    # -march=armv8-a names that baseline explicitly, so the required feature
    # (asimd) follows from the flags like the x86 ones do.
    IsaRow("neon", 128, 32, ("-march=armv8-a",), ("asimd",), "neon", ("armv8-neon",)),
    # Arm SVE: 32 registers Z0-Z31 of an implementation-defined length
    # (128..2048 bits). The kernels are vector-length agnostic; vector_bits is
    # the length the planner assumes for blocking (256: Neoverse V1). AArch64
    # mandates Advanced SIMD (128-bit NEON) on every SVE core: its fixed-lanes
    # view.
    IsaRow("sve", 256, 32, ("-march=armv8-a+sve",), ("sve",), "neon", ("armv8-sve",),
           fixed_lanes=("neon", 128)),
    # RISC-V Vector 1.0: 32 registers v0-v31 of VLEN bits (128..65536). The
    # GEMM kernels are vector-length agnostic; vector_bits is the VLEN the
    # planner assumes for blocking. Compiled with clang >= 16 (GCC 12 has no
    # riscv_vector.h). No host probe measures it: name the rv64gcv target.
    # RISC-V has no fixed-width SIMD, so its fixed-lanes view is portable C++
    # vectors of VLEN's minimum, 128 bits (the compiler lowers them to RVV or
    # scalar code).
    IsaRow("rvv", 256, 32, ("-march=rv64gcv",), ("v",), "rvv", ("rv64gcv",),
           fixed_lanes=("generic", 128)),
    # Portable C++ code: the x86-64 baseline is SSE2 (128-bit, 16 xmm registers).
    IsaRow("generic", 128, 16, (), (), "sse", ("generic", "x86-64-v2")),
)

ISA: Dict[str, IsaRow] = {r.key: r for r in ISAS}
KNOWN_ISAS: Tuple[str, ...] = tuple(ISA)

# The probe's view of the table (as autoconfig.probe.ISA_TABLE always was):
# per ISA, vector_bits, vector_registers, compile_flags, fma_key, requires.
ISA_TABLE: Dict[str, Dict[str, Any]] = {
    r.key: {"vector_bits": r.vector_bits, "vector_registers": r.vector_registers,
            "compile_flags": list(r.compile_flags), "fma_key": r.fma_key, "requires": list(r.requires)}
    for r in ISAS
}

# Scalable ISAs -> (fixed-width ISA, its bits): see IsaRow.fixed_lanes.
SCALABLE_ISAS: Dict[str, Tuple[str, int]] = {r.key: r.fixed_lanes for r in ISAS if r.fixed_lanes}

# What each compile flag lets the compiler emit: the CPU must have it. Names
# are those cpu_features.cpp reports (cpuid on x86, Linux hwcaps on AArch64).
FLAG_FEATURES: Dict[str, Tuple[str, ...]] = {
    "-mavx512f": ("avx512f",), "-mavx512bw": ("avx512bw",), "-mavx512dq": ("avx512dq",),
    "-mavx512vl": ("avx512vl",), "-mavx512cd": ("avx512cd",), "-mavx2": ("avx2",), "-mavx": ("avx",),
    "-mfma": ("fma",), "-mf16c": ("f16c",), "-msse4.2": ("sse4_2",), "-msse4.1": ("sse4_1",),
    "-mssse3": ("ssse3",), "-mpopcnt": ("popcnt",),
    # AArch64: Advanced SIMD is part of armv8-a; +sve adds the SVE instructions.
    "-march=armv8-a": ("asimd",), "-march=armv8-a+sve": ("asimd", "sve"),
    # RISC-V: the Linux hwcap letter of the V extension (RV64GC is the ABI baseline).
    "-march=rv64gcv": ("v",),
}
