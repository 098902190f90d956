"""Built-in targets: named classes of machine for cross-builds (nothing is
measured). Their ISA facts (flags, registers) come from isa_table.py."""
from __future__ import annotations

from typing import Dict, List, Tuple

from ..isa_table import ISA_TABLE, KNOWN_ISAS  # noqa: F401  (autoconfig.probe.ISA_TABLE, KNOWN_ISAS)
from ..profile import CacheLevel, HostProfile, with_copy_bandwidth

KiB = 1 << 10
MiB = 1 << 20

def _peak(freq_ghz: float, fma_per_cycle: float, vector_bits: int) -> float:
    """fp32 GFLOPS of one core: clock x FMA units x lanes x 2 flops."""
    return round(freq_ghz * fma_per_cycle * (vector_bits // 32) * 2, 3)

# --------------------------------------------------------------------------- built-in targets
def _target_profile(name: str, *, arch: str, isa: str, features: List[str], bits: int, vregs: int,
                    freq: float, units: float, caches: List[Tuple[int, int]], ways: List[int],
                    bandwidth: Dict[str, float], flags: List[str], note: str) -> HostProfile:
    """A built-in target: FMA latency 4 everywhere it is used here; caches
    given as (level, bytes) with their ways; nothing is measured."""
    return with_copy_bandwidth(HostProfile(
        name=name, arch=arch, isa=isa, features=features, vector_bits=bits, vector_registers=vregs,
        fma_latency_cycles=4.0, fma_per_cycle=units, freq_ghz=freq,
        peak_gflops_per_core=_peak(freq, units, bits), cores=4,
        caches=[CacheLevel(lvl, size, 64, w, 1, "target") for (lvl, size), w in zip(caches, ways)],
        bandwidth_gbps=dict(bandwidth), compile_flags=list(flags), measured=False,
        notes=[f"built-in target {name}: {note} (numbers documented in autoconfig/probe.py)",
               "cores=4 is a placeholder: a target cannot know the deployment's core count"]))


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
