"""RISC-V Vector code generation without a cross compiler: the rv64gcv target's
GEMM microkernels are vector-length agnostic RVV 1.0 (the __riscv_-prefixed
intrinsics, edges as vector lengths), its conv kernels come from the portable
fixed-lanes view, and the plan is explained next to x86.
tests/cpp/test_rvv_emulation.py compiles and runs the same code under qemu."""
from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoconfig import generate, probe
from autoconfig.codegen.isa import Rvv, fixed_lanes_isa_for_profile
from autoconfig.profile import fixed_lanes_profile

ROOT = Path(__file__).resolve().parents[2]


def render():
    specs = generate.load_specs([str(ROOT / "tests" / "cpp" / "specs")], use_defaults=False)
    return generate.render("rv64gcv", [probe.profile("rv64gcv")], specs)


def test_rvv_gemm_code():
    files, plans, sources = render()
    assert set(sources) == {"-march=rv64gcv", ""}
    ukernels = "\n".join(t for n, t in files.items() if re.search(r"ukernel_.*_rvv\.h$", n))
    for intrinsic in ("__riscv_vsetvlmax_e32m1()", "__riscv_vfmacc_vv_f32m1", "__riscv_vle32_v_f32m1",
                      "__riscv_vse32_v_f32m1", "rvv_vl("):
        assert intrinsic in ukernels, intrinsic
    vmath = files["include/f32_vmath_rvv.h"]
    assert "#include <riscv_vector.h>" in vmath and "static inline size_t rvv_vl(int64_t count)" in vmath
    assert '"v", nullptr' in files["kernel_registry_rv64gcv.cpp"]           # the hwcap the kernels need
    assert not re.search(r"vfloat32m1_t\s+\w+\s*\[", "\n".join(files.values()))   # sizeless: never in arrays
    assert not re.search(r"_mm\d*_|float32x4_t|svfloat32_t", "\n".join(files.values()))


def test_rvv_conv_kernels_come_from_the_portable_view():
    files, plans, _ = render()
    view = fixed_lanes_profile(probe.profile("rv64gcv"))
    assert (view.isa, view.vector_bits) == ("generic", 128)
    conv = files["conv_kernels_rv64gcv.cpp"]
    suffix = fixed_lanes_isa_for_profile(probe.profile("rv64gcv")).suffix
    assert f"f32_conv2d_direct_nchw4c_{suffix}" in conv and "vector_size" in files[f"include/f32_vmath_{suffix}.h"]
    for p in (p for p in plans if p.op == "conv2d"):
        assert p.kernel.endswith("_rvv" if p.algorithm in ("gemm-1x1", "im2col-gemm") else f"_{suffix}")


def test_rvv_assumed_length_is_a_power_of_two():
    assert Rvv(512).lanes == 16
    with pytest.raises(ValueError, match="power of two"):
        Rvv(384)


def test_plan_explain_puts_rvv_next_to_x86():
    r = subprocess.run([sys.executable, "-m", "autoconfig", "plan", "--target", "rv64gcv", "--explain"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "generic GEMM plan of rv64gcv next to x86-64-v4, x86-64-v3" in r.stdout
    prof = probe.profile("rv64gcv")
    assert f"(vector_bits={prof.vector_bits})" in r.stdout and "32 KiB" in r.stdout


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.skipif(platform.machine().lower() == "riscv64", reason="an RVV target is native here")
def test_native_build_of_an_rvv_target_names_the_toolchain_file(tmp_path):
    r = subprocess.run(["cmake", "-S", str(ROOT / "tests" / "cpp"), "-B", str(tmp_path / "b"),
                        "-DAUTOCONFIG_TARGET=rv64gcv", f"-DPython_EXECUTABLE={sys.executable}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "cmake/toolchains/riscv64-linux-gnu-clang.cmake" in "".join(r.stderr.split())
