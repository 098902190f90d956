"""Arm code generation without a cross compiler: what the generator emits for
armv8-neon and armv8-sve (names, intrinsics, flags, the fixed-lanes rule for
SVE conv kernels), and `autoconfig plan --explain` on an Arm target next to
the x86 ones, every differing parameter traced to the profile field it read.
tests/cpp/test_arm_emulation.py compiles and runs the same code under qemu."""
from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoconfig import generate, probe
from autoconfig.codegen.conv import emit_conv_kernels
from autoconfig.codegen.isa import fixed_lanes_isa_for_profile, isa_for
from autoconfig.models import conv as conv_model
from autoconfig.models import gemm as gemm_model
from autoconfig.profile import fixed_lanes_profile

ROOT = Path(__file__).resolve().parents[2]

CHECK_SPECS = ROOT / "tests" / "cpp" / "specs"


def render(target: str):
    specs = generate.load_specs([str(CHECK_SPECS)], use_defaults=False)
    return generate.render(target, [probe.profile(target)], specs)


def text_of(files, pattern: str) -> str:
    return "\n".join(t for name, t in files.items() if re.search(pattern, name))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "autoconfig", *args], capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- generated code
def test_neon_code():
    files, plans, sources = render("armv8-neon")
    assert set(sources) == {"-march=armv8-a", ""}           # kernels get the Arm flags, the registry none
    gemm = text_of(files, r"^f32_gemm_.*_neon_.*\.cpp$|ukernel_.*_neon\.h$")
    assert "vfmaq_f32" in gemm and "#include <arm_neon.h>" in text_of(files, r"f32_vmath_neon\.h$")
    conv = files["conv_kernels_armv8_neon.cpp"]
    assert "f32_conv2d_direct_nchw4c_neon" in conv and "float32x4_t acc[N][KB]" in conv
    assert not re.search(r"_mm\d*_|__m\d+|sv[a-z]+_f32", "\n".join(files.values()))   # no x86, no SVE
    assert '"asimd", nullptr' in files["kernel_registry_armv8_neon.cpp"]                 # required hwcap


def test_sve_gemm_is_vector_length_agnostic_and_conv_uses_the_neon_view():
    files, plans, sources = render("armv8-sve")
    assert set(sources) == {"-march=armv8-a+sve", ""}
    ukernels = text_of(files, r"ukernel_.*_sve\.h$")
    for intrinsic in ("svcntw()", "svwhilelt_b32", "svmla_f32_x", "svld1_f32", "svst1_f32"):
        assert intrinsic in ukernels
    # the conv kernels are emitted for NEON: fixed lanes, arrays of accumulators
    conv = files["conv_kernels_armv8_sve.cpp"]
    assert '#include "f32_vmath_neon.h"' in conv and "f32_conv2d_direct_nchw4c_neon" in conv
    assert "include/f32_vmath_neon.h" in files
    # sizeless SVE vectors never appear in arrays or as members (GCC rejects both)
    assert not re.search(r"svfloat32_t\s+\w+\s*\[", "\n".join(files.values()))
    assert '"sve", nullptr' in files["kernel_registry_armv8_sve.cpp"]
    # conv plans name the kernels they run: NEON for the fixed-lanes algorithms, SVE for the GEMM-based ones
    for p in (p for p in plans if p.op == "conv2d"):
        want = "_sve" if p.algorithm in ("gemm-1x1", "im2col-gemm") else "_neon"
        assert p.kernel.endswith(want), (p.algorithm, p.kernel)


def test_conv_emitter_refuses_a_scalable_isa():
    with pytest.raises(ValueError, match="fixed lane count"):
        emit_conv_kernels(isa_for("sve"), "v", [(4, 1)], 8, [], 32 << 10, 1 << 20, 32)


def test_fixed_lanes_view():
    sve = probe.profile("armv8-sve")
    view = fixed_lanes_profile(sve)
    assert (view.isa, view.vector_bits, view.vector_registers) == ("neon", 128, sve.vector_registers)
    assert view.fma_per_cycle * view.vector_bits == sve.fma_per_cycle * sve.vector_bits   # same flops per cycle
    assert view.caches == sve.caches and fixed_lanes_isa_for_profile(sve).suffix == "neon"
    for name in ("armv8-neon", "x86-64-v3", "generic"):
        p = probe.profile(name)
        assert fixed_lanes_profile(p) is p


def test_sve_conv_model_reads_the_view_the_kernels_are_built_for():
    sve = probe.profile("armv8-sve")
    view = fixed_lanes_profile(sve)
    coef, view_coef = conv_model.model_coefficients(sve), conv_model.model_coefficients(view)
    assert coef["lanes"] == 4 and conv_model.direct_tiles(sve) == conv_model.direct_tiles(view)
    for k in ("lanes", "fma_units", "hz", "peak_flops", "depthwise_ow_tile"):
        assert coef[k] == view_coef[k], k
    # ... but the GEMM terms are the SVE GEMM's: its generic plan's tile and kc, not the view's
    sve_gemm = gemm_model.plan_generic(sve, isa_suffix="x")
    assert (coef["gemm_mr"], coef["gemm_nr"], coef["gemm_kc"]) == tuple(sve_gemm.value(k) for k in ("mr", "nr", "kc"))
    assert (coef["gemm_mr"], coef["gemm_nr"], coef["gemm_kc"]) != (view_coef["gemm_mr"], view_coef["gemm_nr"],
                                                                    view_coef["gemm_kc"])


# --------------------------------------------------------------------------- plan --explain
def explain_rows(out: str, targets):
    """{row label: [value per target]} of the comparison table."""
    block = out[out.index("generic GEMM plan of"):]
    rows = {}
    for line in block.splitlines()[2:]:
        if not line.startswith("  ") or line.startswith("   "):
            break
        label = re.match(r"  (.+?)\s{2,}", line).group(1)
        rows[label] = re.split(r"\s{2,}", line.strip())[1:]
    assert all(len(v) == len(targets) for v in rows.values()), rows
    return rows


def why_lines(out: str, param: str, target: str) -> str:
    block = out[out.index("why they differ"):]
    m = re.search(rf"^  {param}:\n((?:    .*\n?)+)", block, re.M)
    assert m, f"no reasons for {param}"
    return next(line for line in m.group(1).splitlines() if line.split()[0] == target)


def test_plan_explain_puts_arm_next_to_x86_and_traces_every_difference():
    r = run_cli("plan", "--target", "armv8-neon", "--explain")
    assert r.returncode == 0, r.stderr
    targets = ["armv8-neon", "x86-64-v4", "x86-64-v3"]
    rows = explain_rows(r.stdout, targets)
    for row in ("GEMM tile mr x nr", "mc", "nc"):
        arm, v4, v3 = rows[row]
        assert arm != v4 and arm != v3, (row, rows[row])
    assert len(set(rows["kc"])) >= 2, rows["kc"]   # the A-panel order's cap may give two targets one kc
    arm = probe.profile("armv8-neon")
    l1, l2 = arm.cache(1), arm.cache(2)
    mr, nr = (int(x) for x in rows["GEMM tile mr x nr"][0].split()[0].split("x"))
    assert f"{arm.vector_registers} vector registers" in why_lines(r.stdout, "mr", "armv8-neon")
    assert f"latency {arm.fma_latency_cycles:g} x {arm.fma_per_cycle:g} units" in why_lines(r.stdout, "mr", "armv8-neon")
    assert f"{nr // arm.lanes_f32} x {arm.lanes_f32} lanes (vector_bits={arm.vector_bits})" in why_lines(r.stdout, "nr", "armv8-neon")
    assert f"of {l1.ways} L1 ways ({l1.size_bytes >> 10} KiB" in why_lines(r.stdout, "kc", "armv8-neon")
    assert f"half of L2 ({l2.size_bytes >> 10} KiB" in why_lines(r.stdout, "nc", "armv8-neon")
    # the x86 columns trace to their own profiles
    v3 = probe.profile("x86-64-v3")
    assert f"{v3.vector_registers} vector registers" in why_lines(r.stdout, "mr", "x86-64-v3")


def test_plan_follows_the_profile_fields_of_a_user_arm_core(tmp_path):
    """A JSON profile of another Arm core: a smaller L1 and register file move
    kc and the tile, as their reasons say."""
    core = tmp_path / "little-core.json"
    core.write_text(json.dumps({"base": "armv8-neon", "override": {
        "vector_registers": 16,
        "caches": [{"level": 1, "size_bytes": 32768, "ways": 4}, {"level": 2, "size_bytes": 262144, "ways": 8},
                   {"level": 3, "size_bytes": 1048576, "ways": 16}]}}))
    r = run_cli("plan", "--target", str(core), "--explain", "--compare", "armv8-neon")
    assert r.returncode == 0, r.stderr
    rows = explain_rows(r.stdout, ["little-core", "armv8-neon"])
    assert rows["vector_bits x registers"] == ["128 x 16", "128 x 32"]
    assert rows["GEMM tile mr x nr"][0] != rows["GEMM tile mr x nr"][1]
    assert int(rows["kc"][0]) < int(rows["kc"][1])
    assert "16 vector registers" in why_lines(r.stdout, "mr", "little-core")
    assert "(32 KiB" in why_lines(r.stdout, "kc", "little-core")


def test_plan_compare_defaults():
    for args, shown in ((("--target", "x86-64-v3"), False), (("--target", "armv8-sve", "--compare", "none"), False),
                        (("--target", "x86-64-v3", "--compare", "armv8-neon"), True)):
        r = run_cli("plan", *args, "--explain", "--no-default-specs")
        assert r.returncode == 0, r.stderr
        assert ("generic GEMM plan of" in r.stdout) == shown, args


# --------------------------------------------------------------------------- build configuration
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.skipif(platform.machine().lower() in ("aarch64", "arm64"), reason="an Arm target is native here")
def test_native_build_of_an_arm_target_names_the_toolchain_file(tmp_path):
    r = subprocess.run(["cmake", "-S", str(ROOT / "tests" / "cpp"), "-B", str(tmp_path / "b"),
                        "-DAUTOCONFIG_TARGET=armv8-neon", f"-DPython_EXECUTABLE={sys.executable}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "cmake/toolchains/aarch64-linux-gnu.cmake" in "".join(r.stderr.split())
