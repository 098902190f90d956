"""Arm builds under emulation: the C++ kernel check (tests/cpp) cross-built
with cmake/toolchains/aarch64-linux-gnu.cmake for armv8-neon and armv8-sve and
run under qemu-aarch64 against its double-precision reference loops (GEMM with
every epilogue and edge shape, conv2d through every algorithm).

NEON runs on a Cortex-A72 (Advanced SIMD only); SVE at 128, 256 and 512 bits
(several passes per tile, the plan's own 256, one wide pass); the SVE build on
the Cortex-A72 must refuse cleanly through check_isa (exit 2, no SIGILL).

Needs cmake, g++-aarch64-linux-gnu and qemu-user (CI installs them; skipped
with the reason otherwise). One build per target and session, in a temporary
folder or, when AUTOCONFIG_ARM_BUILD_DIR is set, in <that>/<target> (kept,
so a second run only re-checks the build). About two minutes on 2 cores.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK_SRC = REPO / "tests" / "cpp"
TOOLCHAIN = REPO / "cmake" / "toolchains" / "aarch64-linux-gnu.cmake"
SYSROOT = "/usr/aarch64-linux-gnu"
CMAKE = shutil.which("cmake")
CROSS_CXX = shutil.which("aarch64-linux-gnu-g++")
QEMU = shutil.which("qemu-aarch64")
NEON_ONLY_CPU = "cortex-a72"   # ARMv8.0-A: Advanced SIMD, no SVE


def _missing() -> str:
    tools = {"cmake": CMAKE, "aarch64-linux-gnu-g++ (apt install g++-aarch64-linux-gnu)": CROSS_CXX,
             "qemu-aarch64 (apt install qemu-user)": QEMU}
    return ", ".join(name for name, path in tools.items() if path is None)


pytestmark = [
    pytest.mark.arm_emulation,
    pytest.mark.skipif(bool(_missing()), reason=f"Arm emulation needs {_missing()}"),
]


def _cmake(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([CMAKE, *args], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise AssertionError(f"cmake {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def cross_build(target: str, build: Path) -> Path:
    """The kernel check for an Arm target (Release; configure re-runs the
    generator, the build recompiles only what changed)."""
    _cmake("-S", str(CHECK_SRC), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
           f"-DAUTOCONFIG_TARGET={target}", f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release")
    _cmake("--build", str(build), "-j", "2")
    return build / "kernel_check"


def run_under_qemu(exe: Path, cpu: str) -> subprocess.CompletedProcess:
    return subprocess.run([QEMU, "-L", SYSROOT, "-cpu", cpu, str(exe)], capture_output=True, text=True, timeout=600)


def case_counts(out: str) -> dict:
    """{'total': n, 'failed': n, <section>: n} from kernel_check's summary."""
    m = re.search(r"^kernel_check: (\d+) cases, (\d+) failed$", out, re.M)
    assert m, f"no summary line in the output:\n{out[-3000:]}"
    counts = {"total": int(m.group(1)), "failed": int(m.group(2))}
    counts.update({s: int(n) for s, n in re.findall(r"^  (\w+)\s+(\d+) cases$", out, re.M)})
    return counts


def assert_all_passed(r: subprocess.CompletedProcess, isa: str) -> dict:
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"kernel_check exited with {r.returncode}:\n{out[-6000:]}"
    assert re.search(rf"^build: target \S+, isa {isa},", r.stdout, re.M), r.stdout[:500]
    counts = case_counts(r.stdout)
    assert counts["failed"] == 0
    for section in ("gemm", "conv", "prepared"):
        assert counts.get(section, 0) > 0, f"no {section} cases ran:\n{r.stdout[-2000:]}"
    return counts


@pytest.fixture(scope="session")
def arm_builds(tmp_path_factory):
    """target -> kernel_check executable, each built once per session on first use."""
    root = os.environ.get("AUTOCONFIG_ARM_BUILD_DIR")
    base = Path(root).resolve() if root else tmp_path_factory.mktemp("arm")
    built = {}

    def get(target: str) -> Path:
        if target not in built:
            built[target] = cross_build(target, base / target)
        return built[target]
    return get


@pytest.fixture(scope="session")
def neon_counts(arm_builds):
    r = run_under_qemu(arm_builds("armv8-neon"), NEON_ONLY_CPU)
    return assert_all_passed(r, "neon")


def test_neon_build_passes_on_a_neon_only_cpu(neon_counts):
    assert neon_counts["total"] == neon_counts["gemm"] + neon_counts["conv"] + neon_counts["prepared"]


@pytest.mark.parametrize("vector_bits", [128, 256, 512])
def test_sve_build_passes_at_vector_length(arm_builds, neon_counts, vector_bits):
    r = run_under_qemu(arm_builds("armv8-sve"), f"max,sve{vector_bits}=on")
    counts = assert_all_passed(r, "sve")
    # the kernels really ran at that length ...
    assert f"sve vector length: {vector_bits} bits" in r.stdout, r.stdout[:500]
    # ... through the same cases as the NEON build
    assert counts == neon_counts


def test_sve_build_refuses_a_cpu_without_sve(arm_builds):
    r = run_under_qemu(arm_builds("armv8-sve"), NEON_ONLY_CPU)
    assert r.returncode == 2, f"expected check_isa's refusal (exit 2), got {r.returncode}:\n{r.stdout}{r.stderr}"
    assert "this CPU lacks: sve" in r.stderr
    assert "AUTOCONFIG_TARGET=armv8-neon" in r.stderr     # what to build instead
    assert "cpu features: [asimd,neon]" in r.stdout       # hwcaps as the kernel reports them


def test_cross_build_refuses_the_host_target(tmp_path):
    r = subprocess.run([CMAKE, "-S", str(CHECK_SRC), "-B", str(tmp_path / "b"), f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                        "-DAUTOCONFIG_TARGET=host", f"-DPython_EXECUTABLE={sys.executable}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "AUTOCONFIG_TARGET=host measures the build machine" in " ".join(r.stderr.split())
