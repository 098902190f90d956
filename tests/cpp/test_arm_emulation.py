"""Arm builds under emulation: the C++ kernel check (tests/cpp) cross-built
with cmake/toolchains/aarch64-linux-gnu.cmake for armv8-neon and armv8-sve and
run under qemu-aarch64 against its double-precision reference loops (GEMM with
every epilogue and edge shape, conv2d through every algorithm).

NEON runs on a Cortex-A72 (Advanced SIMD only); SVE at 128, 256 and 512 bits
(several passes per tile, the plan's own 256, one wide pass); the SVE build on
the Cortex-A72 must refuse cleanly through check_isa (exit 2, no SIGILL).
Needs cmake, g++-aarch64-linux-gnu and qemu-user (CI installs them; skipped
with the reason otherwise). About two minutes on 2 cores (tests/emulation.py);
the qemu runs go side by side, one per CPU.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from emulation import CHECK_SRC, CMAKE, TOOLCHAINS, assert_all_passed, builder, missing_tools, run_all

SYSROOT = "/usr/aarch64-linux-gnu"
NEON_ONLY_CPU = "cortex-a72"   # ARMv8.0-A: Advanced SIMD, no SVE
TOOLCHAIN = "aarch64-linux-gnu.cmake"
SVE_BITS = (128, 256, 512)
MISSING = missing_tools({"cmake": "cmake", "aarch64-linux-gnu-g++ (apt install g++-aarch64-linux-gnu)":
                         "aarch64-linux-gnu-g++", "qemu-aarch64 (apt install qemu-user)": "qemu-aarch64"})

pytestmark = [pytest.mark.emulation, pytest.mark.skipif(bool(MISSING), reason=f"Arm emulation needs {MISSING}")]


def qemu_cmd(exe, cpu: str):
    return ["qemu-aarch64", "-L", SYSROOT, "-cpu", cpu, str(exe)]


@pytest.fixture(scope="session")
def arm_runs(tmp_path_factory):
    """Both builds, then every run at once: NEON on a Cortex-A72, SVE at each
    vector length, SVE on the Cortex-A72 ("refused")."""
    build = builder(tmp_path_factory, TOOLCHAIN)
    neon, sve = build("armv8-neon"), build("armv8-sve")
    cmds = {"neon": qemu_cmd(neon, NEON_ONLY_CPU), "refused": qemu_cmd(sve, NEON_ONLY_CPU)}
    cmds.update({bits: qemu_cmd(sve, f"max,sve{bits}=on") for bits in SVE_BITS})
    return run_all(cmds)


@pytest.fixture(scope="session")
def neon_counts(arm_runs):
    return assert_all_passed(arm_runs["neon"], "neon")


def test_neon_build_passes_on_a_neon_only_cpu(neon_counts):
    assert neon_counts["failed"] == 0


@pytest.mark.parametrize("vector_bits", SVE_BITS)
def test_sve_build_passes_at_vector_length(arm_runs, neon_counts, vector_bits):
    counts = assert_all_passed(arm_runs[vector_bits], "sve", vector_bits)
    assert counts == neon_counts    # the same cases as the NEON build


def test_sve_build_refuses_a_cpu_without_sve(arm_runs):
    r = arm_runs["refused"]
    assert r.returncode == 2, f"expected check_isa's refusal (exit 2), got {r.returncode}:\n{r.stdout}{r.stderr}"
    assert "this CPU lacks: sve" in r.stderr
    assert "AUTOCONFIG_TARGET=armv8-neon" in r.stderr     # what to build instead
    assert "cpu features: [asimd,neon]" in r.stdout       # hwcaps as the kernel reports them


def test_cross_build_refuses_the_host_target(tmp_path):
    r = subprocess.run([CMAKE, "-S", str(CHECK_SRC), "-B", str(tmp_path / "b"),
                        f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAINS / TOOLCHAIN}", "-DAUTOCONFIG_TARGET=host",
                        f"-DPython_EXECUTABLE={sys.executable}"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "AUTOCONFIG_TARGET=host measures the build machine" in " ".join(r.stderr.split())
