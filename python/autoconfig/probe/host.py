"""The host profile from the probe's measurements: the codegen ISA from the
cpu features, the FMA peak, the caches (sysfs, sanity-checked against the
bandwidth curve: VMs often expose the host socket's L3 as if it were theirs)."""
from __future__ import annotations

import copy
import math
import os
import platform
from typing import Dict, List, Optional, Sequence, Tuple

from ..profile import CacheLevel, HostProfile, with_copy_bandwidth
from . import sysfs
from .measurement import FMA_LATENCY_PLAUSIBLE, _plausible_fma_latency
from .sysfs import SVE_DEFAULT_VL_FILE, read_sve_vector_bits
from .targets import ISA_TABLE, KiB, MiB, _peak

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
ASSUMED_FMA_LATENCY = 4.0

BANDWIDTH_LEVELS = ("L1", "L2", "L3", "DRAM")


def _normalize_arch(a: str) -> str:
    a = (a or "").lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(a, a)


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


def _bandwidth_curve(meas: dict, key: str = "bandwidth") -> List[Tuple[int, float]]:
    """(working-set bytes, GB/s) of the probe's "bandwidth" (read) or
    "copy_bandwidth" curve, sorted; malformed entries dropped."""
    curve = []
    for e in meas.get(key) or []:
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

    by_key = _fma_rates_by_key(meas.get("fma"), fma_key, units if isinstance(fma, dict) else None, notes)

    # caches: sysfs, defaults for missing levels, then the L3 sanity check.
    caches = {c.level: c for c in sysfs.read_sysfs_caches()}
    for lvl, d in DEFAULT_CACHES.items():
        if lvl not in caches:
            caches[lvl] = copy.copy(d)
            notes.append(f"L{lvl}: not in sysfs, default {_fmt_bytes(d.size_bytes)} {d.ways}-way")
    curve = _bandwidth_curve(meas)
    _check_l3(caches, curve, notes)

    bandwidth = _per_level(curve, caches, "bandwidth", notes)
    if not curve:
        notes.append("bandwidth: not measured (models fall back to their defaults)")
    copy_bw = _per_level(_bandwidth_curve(meas, "copy_bandwidth"), caches, "copy bandwidth (read + written)", notes)

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    scaling = _fma_thread_scaling(meas.get("fma_all_cpus"), fma_key, peak if isinstance(fma, dict) else None, notes)

    return with_copy_bandwidth(HostProfile(
        name="host", arch=arch, isa=isa, features=features,
        vector_bits=vector_bits, vector_registers=vregs,
        fma_latency_cycles=latency, fma_per_cycle=units, freq_ghz=round(freq, 4),
        peak_gflops_per_core=round(peak, 3), cores=cores,
        caches=[caches[k] for k in sorted(caches)],
        bandwidth_gbps=bandwidth, copy_bandwidth_gbps=copy_bw, compile_flags=list(spec["compile_flags"]),
        measured=bool(meas.get("fma") or curve), fma_thread_scaling=scaling,
        fma_per_cycle_by_key=by_key, notes=notes))


def _fma_rates_by_key(fma: object, own_key: str, own_units: Optional[float], notes: List[str]) -> Dict[str, float]:
    """FMAs per cycle of every vector ISA the probe timed (its FMA readings by
    key), for the code of the narrower ISA variants this CPU also runs; the
    profile's own ISA keeps the rate its peak was taken from."""
    out: Dict[str, float] = {}
    for key, r in sorted((fma or {}).items() if isinstance(fma, dict) else []):
        if key == own_key:
            if own_units is not None:
                out[key] = own_units
        elif isinstance(r, dict) and isinstance(r.get("per_cycle"), (int, float)) and r["per_cycle"] > 0:
            out[key] = _round_if_close(float(r["per_cycle"]), f"FMAs per cycle ({key} code)", notes)
    return out


def _per_level(curve: List[Tuple[int, float]], caches: Dict[int, CacheLevel], what: str,
               notes: List[str]) -> Dict[str, float]:
    """GB/s per level of a measured curve: the largest working set within half
    of each cache (as the read bandwidth), the largest one for DRAM."""
    if not curve:
        return {}
    out = {f"L{lvl}": round(_bw_at(curve, caches[lvl].size_bytes / 2)[1], 2) for lvl in (1, 2, 3)}
    out["DRAM"] = round(curve[-1][1], 2)
    notes.append(f"{what}: " + ", ".join(
        f"L{lvl}={out[f'L{lvl}']:g} GB/s @ {_fmt_bytes(_bw_at(curve, caches[lvl].size_bytes / 2)[0])}"
        for lvl in (1, 2, 3)) + f", DRAM={out['DRAM']:g} GB/s @ {_fmt_bytes(curve[-1][0])}")
    return out


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
