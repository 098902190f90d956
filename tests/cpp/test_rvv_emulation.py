"""RISC-V Vector 1.0 under emulation: the C++ kernel check (tests/cpp)
cross-built for rv64gcv with clang-16 (GCC 12 has no <riscv_vector.h>) and
Debian's riscv64 cross libraries (cmake/toolchains/riscv64-linux-gnu-clang.cmake),
run under qemu-riscv64 at VLEN 128, 256 (the profile's) and 512, and refused
through check_isa on a core without V; the runs go side by side, one per CPU.
Needs cmake, clang-16, g++-riscv64-linux-gnu and qemu-user (skipped with the
reason otherwise).
"""
from __future__ import annotations

import pytest

from emulation import assert_all_passed, builder, missing_tools, run_all

SYSROOT = "/usr/riscv64-linux-gnu"
TOOLCHAIN = "riscv64-linux-gnu-clang.cmake"
MISSING = missing_tools({"cmake": "cmake", "clang-16 (apt install clang-16)": "clang++-16",
                         "riscv64-linux-gnu-g++ (apt install g++-riscv64-linux-gnu)": "riscv64-linux-gnu-g++",
                         "qemu-riscv64 (apt install qemu-user)": "qemu-riscv64"})

pytestmark = [pytest.mark.emulation, pytest.mark.skipif(bool(MISSING), reason=f"RVV emulation needs {MISSING}")]


VLENS = (128, 256, 512)
PROFILE_VLEN = 256


@pytest.fixture(scope="session")
def rvv_runs(tmp_path_factory):
    """The build, then every run at once: each VLEN, and a core without V ("refused")."""
    exe = str(builder(tmp_path_factory, TOOLCHAIN)("rv64gcv"))
    cmds = {vlen: ["qemu-riscv64", "-L", SYSROOT, "-cpu", f"rv64,v=true,vlen={vlen},vext_spec=v1.0", exe]
            for vlen in VLENS}
    cmds["refused"] = ["qemu-riscv64", "-L", SYSROOT, "-cpu", "rv64,v=false", exe]
    return run_all(cmds)


@pytest.fixture(scope="session")
def counts_at_256(rvv_runs):
    return assert_all_passed(rvv_runs[PROFILE_VLEN], "rvv", PROFILE_VLEN)


def test_rvv_build_passes_at_the_profile_vlen(counts_at_256):
    assert counts_at_256["failed"] == 0


@pytest.mark.parametrize("vlen", [v for v in VLENS if v != PROFILE_VLEN])
def test_rvv_build_passes_at_other_vlen(rvv_runs, counts_at_256, vlen):
    counts = assert_all_passed(rvv_runs[vlen], "rvv", vlen)
    assert counts == counts_at_256    # the same cases


def test_rvv_build_refuses_a_core_without_v(rvv_runs):
    r = rvv_runs["refused"]
    assert r.returncode == 2, f"expected check_isa's refusal (exit 2), got {r.returncode}:\n{r.stdout}{r.stderr}"
    assert "this CPU lacks: v" in r.stderr and "AUTOCONFIG_TARGET=generic" in r.stderr
