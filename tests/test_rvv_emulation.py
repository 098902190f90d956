"""RISC-V Vector 1.0 under emulation: the C++ kernel check (tests/cpp)
cross-built for rv64gcv with clang-16 (GCC 12 has no <riscv_vector.h>) and
Debian's riscv64 cross libraries (cmake/toolchains/riscv64-linux-gnu-clang.cmake),
run under qemu-riscv64 at VLEN 128, 256 (the profile's) and 512, and refused
through check_isa on a core without V. Needs cmake, clang-16,
g++-riscv64-linux-gnu and qemu-user (skipped with the reason otherwise).
"""
from __future__ import annotations

import pytest

from emulation import assert_all_passed, builder, missing_tools, run

SYSROOT = "/usr/riscv64-linux-gnu"
TOOLCHAIN = "riscv64-linux-gnu-clang.cmake"
MISSING = missing_tools({"cmake": "cmake", "clang-16 (apt install clang-16)": "clang++-16",
                         "riscv64-linux-gnu-g++ (apt install g++-riscv64-linux-gnu)": "riscv64-linux-gnu-g++",
                         "qemu-riscv64 (apt install qemu-user)": "qemu-riscv64"})

pytestmark = [pytest.mark.emulation, pytest.mark.skipif(bool(MISSING), reason=f"RVV emulation needs {MISSING}")]


def qemu(exe, cpu: str):
    return run(["qemu-riscv64", "-L", SYSROOT, "-cpu", cpu, str(exe)])


@pytest.fixture(scope="session")
def rvv_check(tmp_path_factory):
    return builder(tmp_path_factory, TOOLCHAIN)("rv64gcv")


@pytest.fixture(scope="session")
def counts_at_256(rvv_check):
    return assert_all_passed(qemu(rvv_check, "rv64,v=true,vlen=256,vext_spec=v1.0"), "rvv", 256)


def test_rvv_build_passes_at_the_profile_vlen(counts_at_256):
    assert counts_at_256["failed"] == 0


@pytest.mark.parametrize("vlen", [128, 512])
def test_rvv_build_passes_at_other_vlen(rvv_check, counts_at_256, vlen):
    counts = assert_all_passed(qemu(rvv_check, f"rv64,v=true,vlen={vlen},vext_spec=v1.0"), "rvv", vlen)
    assert counts == counts_at_256    # the same cases


def test_rvv_build_refuses_a_core_without_v(rvv_check):
    r = qemu(rvv_check, "rv64,v=false")
    assert r.returncode == 2, f"expected check_isa's refusal (exit 2), got {r.returncode}:\n{r.stdout}{r.stderr}"
    assert "this CPU lacks: v" in r.stderr and "AUTOCONFIG_TARGET=generic" in r.stderr
