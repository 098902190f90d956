"""The entry points: profile() (host or target), summary() and the command line."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from ..profile import HostProfile
from .host import BANDWIDTH_LEVELS, _fmt_bytes, _host_profile
from .measurement import _measure, _pkg_dir, compile_probe
from .overrides import _host_override, _target_from_file
from .targets import BUILTIN_TARGETS, _builtin

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
    if prof.copy_bandwidth_gbps:
        lines.append("  copy bandwidth per core (read + written): " + ", ".join(
            f"{k} {prof.copy_bandwidth_gbps[k]:g} GB/s" for k in BANDWIDTH_LEVELS if k in prof.copy_bandwidth_gbps))
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
