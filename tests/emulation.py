"""Helpers of the emulation tests (test_arm_emulation.py, test_rvv_emulation.py):
cross-build the C++ kernel check (tests/cpp) with a toolchain file, run it
under qemu-user, read its summary. One build per target and session, in a
temporary folder or, when AUTOCONFIG_EMULATION_BUILD_DIR is set, in
<that>/<target> (kept: a second run only re-checks the build)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Hashable, List, Optional, TypeVar

REPO = Path(__file__).resolve().parents[1]
CHECK_SRC = REPO / "tests" / "cpp"
TOOLCHAINS = REPO / "cmake" / "toolchains"
CMAKE = shutil.which("cmake")
K = TypeVar("K", bound=Hashable)


def missing_tools(tools: Dict[str, str]) -> str:
    """', '-joined descriptions of the tools (description -> program) not on PATH."""
    return ", ".join(what for what, prog in tools.items() if shutil.which(prog) is None)


def _cmake(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([CMAKE, *args], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise AssertionError(f"cmake {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def cross_build(toolchain: Optional[str], target: str, build: Path) -> Path:
    """The kernel check for `target` (Release); toolchain None builds for this
    machine. Configure re-runs the generator; the build recompiles only what changed."""
    cross = [f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAINS / toolchain}"] if toolchain else []
    _cmake("-S", str(CHECK_SRC), "-B", str(build), *cross,
           f"-DAUTOCONFIG_TARGET={target}", f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release")
    _cmake("--build", str(build), "-j", "2")
    return build / "kernel_check"


def builder(tmp_path_factory, toolchain: str) -> Callable[[str], Path]:
    """target -> kernel_check executable, built once per session on first use."""
    root = os.environ.get("AUTOCONFIG_EMULATION_BUILD_DIR")
    base = Path(root).resolve() if root else tmp_path_factory.mktemp("emulation")
    built: Dict[str, Path] = {}

    def get(target: str) -> Path:
        if target not in built:
            built[target] = cross_build(toolchain, target, base / target)
        return built[target]
    return get


def run(cmd: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def run_all(cmds: Dict[K, List[str]]) -> Dict[K, subprocess.CompletedProcess]:
    """run() of every command, as many at once as there are CPUs: qemu-user
    runs a program on one thread, so a second CPU would otherwise stay idle."""
    with ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)))) as pool:
        futures = {key: pool.submit(run, cmd) for key, cmd in cmds.items()}
        return {key: f.result() for key, f in futures.items()}


def case_counts(out: str) -> Dict[str, int]:
    """{'total': n, 'failed': n, <section>: n} from kernel_check's summary."""
    m = re.search(r"^kernel_check: (\d+) cases, (\d+) failed$", out, re.M)
    assert m, f"no summary line in the output:\n{out[-3000:]}"
    counts = {"total": int(m.group(1)), "failed": int(m.group(2))}
    counts.update({s: int(n) for s, n in re.findall(r"^  (\w+)\s+(\d+) cases$", out, re.M)})
    return counts


def assert_all_passed(r: subprocess.CompletedProcess, isa: str,
                      vector_bits: Optional[int] = None) -> Dict[str, int]:
    """Exit 0, the build's isa, every section ran, nothing failed; with
    vector_bits, the kernels ran at that vector length (the check prints it)."""
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"kernel_check exited with {r.returncode}:\n{out[-6000:]}"
    assert re.search(rf"^build: target \S+, isa {isa},", r.stdout, re.M), r.stdout[:500]
    if vector_bits is not None:
        assert re.search(rf"^\w+ vector length: {vector_bits} bits$", r.stdout, re.M), r.stdout[:500]
    counts = case_counts(r.stdout)
    assert counts["failed"] == 0
    sections = ("gemm", "conv", "prepared", "nonfinite", "model", "attention", "layernorm")
    for section in sections:
        assert counts.get(section, 0) > 0, f"no {section} cases ran:\n{r.stdout[-2000:]}"
    assert counts["total"] == sum(counts[s] for s in sections)
    return counts
