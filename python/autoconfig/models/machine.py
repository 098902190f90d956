"""Machine terms shared by the operator models, all read from a HostProfile.

The few numbers that are not in the profile are named here, with the reason
they hold, so every parameter of a plan stays traceable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..profile import COPY_FROM_READ, CacheLevel, HostProfile

# Vector loads the core can issue per cycle. Two L1 load ports for full-width
# vectors is what every x86 core since Haswell and Neoverse N1 provide.
LOADS_PER_CYCLE = 2.0
# Scheduling jitter: with exactly latency x units independent FMA chains, any
# port conflict with a load stalls a chain; each step loses about this fraction
# of a latency period, divided by how many chains there are beyond the minimum.
# (Calibrated on L1-resident microkernel runs: 8 chains reach ~87% of the
# 24-chain rate on the AVX-512 machine this was developed on.)
ISSUE_JITTER = 0.15
# Fixed cost of one microkernel call besides its FMAs and C tile: call,
# pointer set-up, lane masks, prefetch loops (about 40 instructions).
CALL_OVERHEAD_CYCLES = 40.0
# Load-to-use latency of an L2 hit, cycles (Skylake..Sapphire Rapids: 14-16;
# Neoverse N1: 11). Charged where the model knows a line will miss L1.
L2_LATENCY_CYCLES = 16.0
# Waking a pool thread and passing one barrier costs a few microseconds on
# Linux (futex wake + cache-line ping-pong); the model charges this per barrier.
SYNC_SECONDS = 3e-6
# Bandwidths used when the profile has none (a target file without them).
DEFAULT_BW_GBPS = {"L1": 200.0, "L2": 80.0, "L3": 30.0, "DRAM": 10.0}
LEVELS = ("L1", "L2", "L3", "DRAM")
# Registers a register tile's multiply-adds need besides its accumulators,
# its B vectors and the broadcast, when a row multiplies the broadcast by
# several B vectors. With an FMA instruction (or a three-operand multiply):
# none. Portable code on x86-64 (the generic ISA, SSE: x86-64-v2) has neither:
# c + a * b is mulps + addps, and mulps overwrites an operand, so every product
# of a row but the last (which may overwrite the broadcast) goes through a
# copy. GCC 12 -O3 -msse4.2, GEMM microkernel 4x12 (12 accumulators + 3 B +
# 1 broadcast = 16 xmm): its k loop spills accumulators (28 stack accesses
# per 141 mulps; 3x12: 1 per 104; 2x16: 0). Zen 5 VM, x86-64-v2, 1 thread,
# 2026-12-07 21:24 (tuning.measure, best of 5): 64x1024x1024 at the model's
# blocking, 2x16 2.90 ms, 3x12 3.14, 4x12 4.64, 2x20 5.27 (1.1-1.2x the
# model's time for the first two, 1.8-2.0x for the two that spill).
TWO_OPERAND_PRODUCT_REGISTERS = 1


@dataclass(frozen=True)
class Machine:
    profile: HostProfile

    @property
    def lanes(self) -> int:
        return self.profile.lanes_f32

    @property
    def vregs(self) -> int:
        return self.profile.vector_registers

    def product_registers(self, vectors_per_row: int) -> int:
        """Registers a tile row's multiply-adds take beyond accumulators, B
        vectors and the broadcast (TWO_OPERAND_PRODUCT_REGISTERS)."""
        two_operand = self.profile.isa == "generic" and self.profile.arch == "x86_64"
        return TWO_OPERAND_PRODUCT_REGISTERS if two_operand and vectors_per_row > 1 else 0

    @property
    def fma_latency(self) -> float:
        return self.profile.fma_latency_cycles

    @property
    def fma_units(self) -> float:
        return self.profile.fma_per_cycle

    @property
    def peak_flops(self) -> float:
        """fp32 flop/s of one core."""
        return self.profile.peak_gflops_per_core * 1e9

    def cache(self, level: int) -> CacheLevel:
        c = self.profile.cache(level)
        if c is None:
            defaults = {1: CacheLevel(1, 32 << 10, 64, 8, 1, "default"),
                        2: CacheLevel(2, 1 << 20, 64, 16, 1, "default"),
                        3: CacheLevel(3, 2 << 20, 64, 16, 1, "default")}
            return defaults[level]
        return c

    def bandwidth(self, level: str) -> float:
        """Read bandwidth of one core from `level`, bytes/s."""
        bw = self.profile.bandwidth_gbps.get(level) or DEFAULT_BW_GBPS[level]
        return bw * 1e9

    def copy_bandwidth(self, level: str) -> float:
        """Copy bandwidth of one core at `level`, bytes read + written per
        second (the probe's copy curve; else COPY_FROM_READ x the read one)."""
        bw = self.profile.copy_bandwidth_gbps.get(level)
        return bw * 1e9 if bw else COPY_FROM_READ[level] * self.bandwidth(level)

    def level_of(self, nbytes: float) -> str:
        """The closest level a working set of nbytes fits in (half the cache, as usable)."""
        for lvl in (1, 2, 3):
            if nbytes <= self.cache(lvl).size_bytes / 2:
                return f"L{lvl}"
        return "DRAM"

    def l1_way_bytes(self) -> int:
        c = self.cache(1)
        return max(1, c.size_bytes // max(1, c.ways))

    def ways_l1(self, nbytes: int) -> int:
        return math.ceil(nbytes / self.l1_way_bytes())
