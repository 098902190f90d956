"""The probe program: compile autoconfig_probe (cpp_runtime/probe/), run it,
and check its readings (a re-run when a latency is implausible)."""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import List, Tuple, Union

# An FP FMA takes 3-6 cycles on every core we know, 8 as a mul+add pair; a
# reading outside this range is a stalled timing run, not the core.
FMA_LATENCY_PLAUSIBLE = (2.0, 16.0)


def _pkg_dir() -> Path:
    """The autoconfig package folder (where a wheel ships autoconfig_probe)."""
    return Path(__file__).resolve().parents[1]


def _probe_sources() -> Tuple[List[Path], List[Path]]:
    """(.cpp files, include dirs) of the probe: autoconfig/_probe_src/ when the
    package ships them (flat or as probe/ + src/), else <repo>/cpp_runtime/."""
    roots = [_pkg_dir() / "_probe_src", Path(__file__).resolve().parents[3] / "cpp_runtime"]
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

def _measure(exe: Union[str, Path], quick: bool, notes: List[str]) -> dict:
    """Run the probe; once more if a latency reading is implausible (a shared
    host can stall a whole timing round)."""
    meas = run_probe_binary(exe, quick=quick)
    bad = _implausible_fma_latencies(meas)
    if bad:
        notes.append(f"probe re-run: implausible FMA latency ({', '.join(bad)})")
        meas = run_probe_binary(exe, quick=quick)
    return meas
