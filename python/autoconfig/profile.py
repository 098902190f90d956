"""HostProfile: everything the planner may know about a machine.

It is plain data (serializes to JSON) so a profile can be saved in the wheel,
diffed between hosts, or written by hand as a target file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Dict, List, Optional, Tuple

from .isa_table import SCALABLE_ISAS as _SCALABLE_ISAS

# A profile without a measured copy curve (saved before the probe measured
# one, a built-in target, a hand-written file) gets copy bandwidth = this x
# its read bandwidth, per level (both count bytes moved: a copy counts what it
# reads plus what it writes). In the caches a copy moves as many bytes per
# cycle as a read: one load and one store port against two load ports (L1),
# and the victim L3 of Zen 3 takes the clean lines evicted by a read as it
# takes the dirty ones of a copy. Beyond the last cache an ordinary store
# reads its line first (write-allocate), so a copy moves 3 lines per 2
# counted: 2/3. Measured by autoconfig_probe on the AMD EPYC Zen 3 VM (best of
# 4 runs, load 4.5): copy / read 1.01 at 16 KiB, 0.95 at 256 KiB, 1.04 at
# 4 MiB, 0.67 at 256 MiB.
COPY_FROM_READ = {"L1": 1.0, "L2": 1.0, "L3": 1.0, "DRAM": 2.0 / 3.0}


@dataclass
class CacheLevel:
    level: int                 # 1, 2, 3
    size_bytes: int            # usable by one core (sysfs size / sharing, sanity-checked)
    line_bytes: int = 64
    ways: int = 8
    shared_by: int = 1         # logical CPUs sharing this cache
    source: str = "sysfs"      # sysfs | target | default | measured


@dataclass
class HostProfile:
    name: str                          # "host" or the target's name
    arch: str                          # x86_64 | aarch64 | riscv64
    isa: str                           # codegen ISA: avx512 | avx2 | generic | neon | sve | rvv
    features: List[str]                # cpu features the code may use (lower-case, cpuid names)
    vector_bits: int                   # SIMD register width used by the codegen ISA
    vector_registers: int              # architectural vector registers of that ISA
    fma_latency_cycles: float          # dependent-FMA latency
    fma_per_cycle: float               # vector FMAs issued per cycle (FMA units)
    freq_ghz: float                    # core clock while running FMAs
    peak_gflops_per_core: float        # fp32, from the measured FMA rate (or target data)
    cores: int                         # logical CPUs this process may use
    caches: List[CacheLevel] = field(default_factory=list)
    bandwidth_gbps: Dict[str, float] = field(default_factory=dict)  # L1/L2/L3/DRAM read GB/s per core
    # L1/L2/L3/DRAM copy GB/s per core (bytes read + bytes written, the working
    # set being source + destination): what a weight re-layout can reach
    copy_bandwidth_gbps: Dict[str, float] = field(default_factory=dict)
    compile_flags: List[str] = field(default_factory=list)          # flags for kernels of this ISA
    measured: bool = False             # True when micro-benchmarks ran on this machine
    # FMA throughput with all cores busy / (cores x one core's): 1 when each
    # core has its own FMA units, about 1/2 when the "cores" are two SMT
    # threads of one physical core (measured; 1 for targets)
    fma_thread_scaling: float = 1.0
    # Vector FMAs per cycle the probe measured for each vector ISA of the CPU,
    # by autoconfig_probe FMA key (avx512, avx2, sse, neon): what another ISA
    # variant's code issues here (tuning.space.profile_for_isa). A Zen 4 core
    # issues two 256-bit FMAs a cycle but one 512-bit (double-pumped), so its
    # AVX2 code has the same peak as its AVX-512 code. Empty for targets: the
    # narrower code is then assumed to issue as many FMAs as fma_per_cycle.
    fma_per_cycle_by_key: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)                  # sanity-check decisions, sources

    # -- convenience -----------------------------------------------------
    @property
    def lanes_f32(self) -> int:
        return max(1, self.vector_bits // 32)

    def cache(self, level: int) -> Optional[CacheLevel]:
        for c in self.caches:
            if c.level == level:
                return c
        return None

    # -- serialization -----------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "HostProfile":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"HostProfile: unknown field(s) {unknown}; allowed: {sorted(known)}")
        d = dict(d)
        d["caches"] = [c if isinstance(c, CacheLevel) else CacheLevel(**c) for c in d.get("caches", [])]
        return with_copy_bandwidth(cls(**d))

    @classmethod
    def from_json(cls, text: str) -> "HostProfile":
        return cls.from_dict(json.loads(text))


def with_copy_bandwidth(profile: HostProfile) -> HostProfile:
    """`profile` itself when it has a copy bandwidth per level of its read
    bandwidth; else the missing levels derived as COPY_FROM_READ[level] x read,
    with a note saying so (in place: the profile is the caller's fresh object)."""
    missing = [k for k in profile.bandwidth_gbps if k not in profile.copy_bandwidth_gbps]
    if not missing:
        return profile
    profile.copy_bandwidth_gbps = dict(profile.copy_bandwidth_gbps)
    for k in missing:
        profile.copy_bandwidth_gbps[k] = round(COPY_FROM_READ.get(k, 1.0) * profile.bandwidth_gbps[k], 2)
    profile.notes = list(profile.notes) + [
        f"copy bandwidth not measured for {', '.join(missing)}: the read bandwidth x "
        + ", ".join(f"{k} {COPY_FROM_READ.get(k, 1.0):.2g}" for k in missing)
        + " (profile.COPY_FROM_READ: write-allocate beyond the caches)"]
    return profile


# Scalable (vector-length agnostic) ISAs, and the fixed-width code every CPU
# with them also runs, with its width in bits: the ISA table's fixed_lanes.
SCALABLE_ISAS: Dict[str, Tuple[str, int]] = _SCALABLE_ISAS


def fixed_lanes_profile(profile: HostProfile) -> HostProfile:
    """The view of `profile` that code needing its lane count at generation
    time is planned and emitted for (arrays of vectors, NCHW[lanes]c layouts:
    the convolution kernels). Fixed-width profiles are their own view.

    A scalable profile maps to the fixed-width ISA of SCALABLE_ISAS, so that
    code runs at any vector length of the scalable ISA. The FMA units scale by
    vector_bits / fixed width so the peak stays the core's (Neoverse V1: two
    256-bit SVE pipes are the four 128-bit ASIMD pipes paired)."""
    if profile.isa not in SCALABLE_ISAS:
        return profile
    isa, bits = SCALABLE_ISAS[profile.isa]
    scale = profile.vector_bits / bits
    return replace(profile, isa=isa, vector_bits=bits, fma_per_cycle=profile.fma_per_cycle * scale,
                   notes=list(profile.notes) + [
                       f"fixed-lanes view of this {profile.isa} profile: {isa} ({bits}-bit), which runs at any "
                       f"{profile.isa} vector length; FMA units x {scale:g} keep the peak"])
