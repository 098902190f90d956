"""The generator: plans from targets, emitted C++ that compiles for every ISA,
atomic output (a bad spec leaves the previous output untouched)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autoconfig import generate, probe
from autoconfig.models import gemm as gemm_model

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "cpp_runtime" / "include"
CXX = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")

SPEC = """version: 1
kernels:
  - name: tiny
    op: matmul
    dtype: float32
    activations: [none, relu, gelu_erf]
    shapes:
      - {M: 5, N: 7, K: 9}
      - {M: 64, N: 64, K: 64}
"""


def write_spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("target", ["x86-64-v4", "x86-64-v3", "generic"])
def test_plans_differ_by_target_and_trace_to_profile(target):
    prof = probe.profile(target)
    m = gemm_model.Machine(prof)
    plan = gemm_model.plan_shape(prof, 512, 512, 512, isa_suffix="x")
    mr, nr, kc = plan.value("mr"), plan.value("nr"), plan.value("kc")
    assert nr % prof.lanes_f32 == 0
    nv = nr // prof.lanes_f32
    assert mr * nv + nv + 1 <= prof.vector_registers          # fits the register file
    l1 = prof.cache(1)
    if plan.value("loop_order") == gemm_model.B_PANEL_IN_L1:   # both micro-panels stay in L1
        assert m.ways_l1(kc * nr * 4) + m.ways_l1(kc * mr * 4) <= l1.ways - 1
    else:                                                       # the A micro-panel stays, B streams
        assert m.ways_l1(kc * mr * 4) <= (l1.ways - 1) // 2
    assert plan.value("mc") * kc * 4 <= prof.cache(2).size_bytes // 2 or plan.value("mc") <= 512
    assert "vector registers" in plan.params["mr"].why and "L1 ways" in plan.params["kc"].why


def test_register_tiles_respect_latency_and_registers():
    prof = probe.profile("x86-64-v4")
    m = gemm_model.Machine(prof)
    for t in gemm_model.register_tiles(m):
        assert t.mr * t.nv + t.nv + 1 <= prof.vector_registers
    big = gemm_model.plan_shape(prof, 2048, 2048, 2048, isa_suffix="x")
    acc = big.value("mr") * big.value("nr") // prof.lanes_f32
    assert acc >= prof.fma_latency_cycles * prof.fma_per_cycle   # latency hidden on large shapes


def test_two_operand_code_keeps_a_register_for_the_product():
    """x86-64-v2 (portable code, SSE): no FMA instruction, and mulps overwrites
    an operand, so a row with several B vectors needs one more register (4x12
    and 2x20 spill an accumulator: models/machine.py TWO_OPERAND_PRODUCT_REGISTERS);
    three-operand FMA code keeps the full register file."""
    v2 = gemm_model.Machine(probe.profile("x86-64-v2"))
    tiles = {t.name for t in gemm_model.register_tiles(v2)}
    for t in gemm_model.register_tiles(v2):
        assert t.mr * t.nv + t.nv + 1 + (t.nv > 1) <= 16
    assert "3x12" in tiles and "4x12" not in tiles and "14x4" in tiles and "6x8" in tiles
    v3 = gemm_model.Machine(probe.profile("x86-64-v3"))
    assert v3.product_registers(3) == 0 and "4x24" in {t.name for t in gemm_model.register_tiles(v3)}


def test_portable_broadcast_is_one_initializer():
    """vf_set1 is a vector initializer (movss + shufps under SSE), not a
    lane-by-lane loop (movss + 4 dependent insertps where GCC cannot read the
    scalar's neighbours: up to 8x slower GEMMs on x86-64-v2)."""
    from autoconfig.codegen.isa import Portable
    text = Portable(lanes=4, suffix="sse42").vector_math()
    assert "static inline vf vf_set1(float x) { return vf{x, x, x, x}; }" in text


def with_l2(prof, kib):
    caches = [dataclasses.replace(c, size_bytes=kib << 10) if c.level == 2 else c for c in prof.caches]
    return dataclasses.replace(prof, caches=caches)


def test_loop_order_follows_the_l2_size():
    """The same core with two L2 sizes: a big L2 holds a B block that every A
    micro-panel can sweep (A micro-panel in L1); a small one does not, and the
    BLIS order (B micro-panel in L1, A block in L2, everything packed once) wins."""
    prof = probe.profile("x86-64-v4")
    big = gemm_model.plan_shape(with_l2(prof, 2048), 2048, 2048, 2048, isa_suffix="x", threads=1)
    small = gemm_model.plan_shape(with_l2(prof, 256), 2048, 2048, 2048, isa_suffix="x", threads=1)
    assert big.value("loop_order") == gemm_model.A_PANEL_IN_L1
    assert small.value("loop_order") == gemm_model.B_PANEL_IN_L1
    # each plan's blocks are sized for the level its order keeps them in
    kc = small.value("kc")
    assert small.value("mc") * kc * 4 <= (256 << 10) // 2
    assert big.value("nc") * big.value("kc") * 4 <= (2048 << 10) // 2
    assert "L2" in small.params["mc"].why and "L2" in big.params["nc"].why
    assert "chosen by predicted time" in small.params["loop_order"].why
    names = {c.name for c in small.candidates}
    assert any(gemm_model.A_PANEL_IN_L1 in n for n in names) and any(gemm_model.B_PANEL_IN_L1 in n for n in names)


def test_a_panel_order_reads_spread_rows_in_place():
    """With the A micro-panel kept in L1, a row-major A of a few L2s is read
    in place when its rows spread over the L1 sets, so the plan drops A's copy
    (pack_a = 0) and the A micro-panel order wins; rows that alias (a row
    stride that is a multiple of the L1 way size, or nearly: 1000 floats) are
    packed as before and the BLIS order stays."""
    prof = probe.profile("x86-64-v3")
    m = gemm_model.Machine(prof)
    t = gemm_model.Tile(6, 16, 2)
    way = m.l1_way_bytes()
    assert gemm_model.lines_per_l1_set(m, way // 4, 256, 6) == 6        # every row in the same sets
    assert gemm_model.lines_per_l1_set(m, 1000, 256, 6) == 6
    assert gemm_model.lines_per_l1_set(m, 128, 128, 6) == 1             # 512-byte rows side by side
    assert gemm_model.lines_per_l1_set(m, 256, 256, 6) == 2

    spread = gemm_model.plan_shape(prof, 256, 256, 256, isa_suffix="x", threads=1)
    assert spread.value("loop_order") == gemm_model.A_PANEL_IN_L1
    # only the A micro-panel stays in L1: it may take half the panel ways, so
    # its k blocks are deeper than the BLIS order's (B and A panels in L1)
    kc = spread.value("kc")
    assert m.ways_l1(kc * 6 * 4) <= gemm_model.l1_ways_for_panels(m) // 2
    assert gemm_model.kc_for(m, t, gemm_model.B_PANEL_IN_L1) < kc <= gemm_model.A_PANEL_KC_CAP
    assert "half of" in spread.params["kc"].why
    assert spread.value("direct_a_panel_bytes") >= 256 * 256 * 4
    assert spread.value("l1_way_bytes") == way
    est = gemm_model.estimate(m, t, 256, 256, 256, 1, gemm_model.A_PANEL_IN_L1)
    assert est.terms["pack_a"] == 0.0 and gemm_model.estimate(
        m, t, 256, 256, 256, 1, gemm_model.B_PANEL_IN_L1).terms["pack_a"] > 0.0
    for n in (1000, 1024):
        aliasing = gemm_model.plan_shape(prof, n, n, n, isa_suffix="x", threads=1)
        assert not gemm_model.a_in_place(m, t, n, n, aliasing.value("kc"), gemm_model.A_PANEL_IN_L1)
    too_big = 2 * gemm_model.direct_a_panel_bytes(m) // (4 * 520)
    assert not gemm_model.a_in_place(m, t, too_big, 520, 256, gemm_model.A_PANEL_IN_L1)
    assert not gemm_model.a_in_place(m, t, 256, 256, 256, gemm_model.B_PANEL_IN_L1)

    from autoconfig.codegen import gemm as gemm_codegen
    from autoconfig.codegen.isa import isa_for_profile
    entry = gemm_codegen.emit_entry(isa_for_profile(prof), spread)
    assert (f"kAPanelInL1, {spread.value('direct_a_panel_bytes')}, {way}, "
            f"{spread.value('direct_a_lines_per_set')}}};") in entry


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_runtime_counts_l1_lines_like_the_model(tmp_path):
    """gemm_run() decides in-place A with the C++ twin of the model's count;
    both must agree or a plan's prediction describes a loop nest that does not run."""
    cases = [(lda, kc, rows, way) for lda in (1, 7, 64, 100, 128, 250, 256, 768, 1000, 1024, 1031, 2048)
             for kc in (8, 100, 256, 512) for rows in (1, 4, 6, 14) for way in (2048, 4096, 8192)]
    src = tmp_path / "count.cpp"
    src.write_text('#include <cstdio>\n#include "autoconfig/detail/gemm_driver.h"\n'
                   "int main() {\n  const long c[][4] = {" + ", ".join("{%d, %d, %d, %d}" % c for c in cases) + "};\n"
                   "  for (const auto& x : c) std::printf(\"%d\\n\", autoconfig::detail::lines_per_l1_set("
                   "x[0], x[1], static_cast<int>(x[2]), x[3]));\n}\n")
    exe = tmp_path / "count"
    r = subprocess.run([CXX, "-std=c++17", "-O1", f"-I{INCLUDE}", str(src), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    prof = probe.profile("x86-64-v3")
    for (lda, kc, rows, way), count in zip(cases, got):
        l1 = next(c for c in prof.caches if c.level == 1)
        l1 = dataclasses.replace(l1, size_bytes=way * l1.ways)
        m = gemm_model.Machine(dataclasses.replace(prof, caches=[l1] + [c for c in prof.caches if c.level != 1]))
        assert gemm_model.lines_per_l1_set(m, lda, kc, rows) == count, (lda, kc, rows, way)


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
@pytest.mark.parametrize("target", ["x86-64-v4", "x86-64-v3", "generic"])
def test_emitted_sources_compile(tmp_path, target):
    out = tmp_path / "gen"
    generate.generate(out, target, [str(write_spec(tmp_path / "specs"))], use_default_specs=False)
    prof = probe.profile(target)
    sources = sorted(out.glob("*.cpp"))
    assert any(s.name.endswith("_generic.cpp") for s in sources)
    assert any("_m64_n64_k64" in s.name for s in sources)
    for src in sources:
        text = src.read_text()
        assert text.startswith("// "), "generated files start with their plan"
        baseline = src.name.startswith("kernel_registry_") or src.name == "variants.cpp"
        flags = [] if baseline else prof.compile_flags
        # the include folders CMakeLists.txt gives the generated sources (the
        # conv units include the executor loops, cpp_runtime/src/model/loops_impl.h)
        r = subprocess.run([CXX, "-std=c++17", "-fsyntax-only", *flags, f"-I{INCLUDE}", f"-I{REPO / 'cpp_runtime' / 'src'}",
                            f"-I{out / 'include'}", str(src)], capture_output=True, text=True)
        assert r.returncode == 0, f"{src.name}:\n{r.stderr[:3000]}"


def test_bad_spec_leaves_previous_output(tmp_path):
    out = tmp_path / "gen"
    specs = write_spec(tmp_path / "specs")
    generate.generate(out, "x86-64-v3", [str(specs)], use_default_specs=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (specs / "tiny.yaml").write_text(SPEC.replace("M: 5", "M: -5"))
    rc = generate.main(["--out", str(out), "--target", "x86-64-v3", "--specs", str(specs), "--no-default-specs"])
    assert rc == 2
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_regeneration_keeps_unchanged_files(tmp_path):
    out = tmp_path / "gen"
    specs = write_spec(tmp_path / "specs")
    generate.generate(out, "x86-64-v3", [str(specs)], use_default_specs=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.cpp")}
    generate.generate(out, "x86-64-v3", [str(specs)], use_default_specs=False)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.cpp")}
    # dropping a shape removes its file
    (specs / "tiny.yaml").write_text(SPEC.replace("      - {M: 64, N: 64, K: 64}\n", ""))
    generate.generate(out, "x86-64-v3", [str(specs)], use_default_specs=False)
    assert not list(out.glob("*_m64_n64_k64.cpp"))


def test_cmake_fragment_lists_sources(tmp_path):
    out = tmp_path / "gen"
    generate.generate(out, "generic", [str(write_spec(tmp_path / "specs"))], use_default_specs=False)
    text = (out / "autoconfig_generated.cmake").read_text()
    assert "AUTOCONFIG_GENERATED_SOURCES" in text and "kernel_registry_generic.cpp" in text and "variants.cpp" in text
    assert "tiny.yaml" in text   # a spec change must re-run the generator


CONV_SPEC = """version: 1
kernels:
  - name: fast
    op: conv2d
    dtype: float32
    shapes:
      - {C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, pad_top: 1, pad_left: 1, pad_bottom: 1, pad_right: 1}
  - name: exact
    op: conv2d
    dtype: float32
    tolerance: 1e-5
    shapes:
      - {C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, pad_top: 1, pad_left: 1, pad_bottom: 1, pad_right: 1}
"""


def test_conv_plan_takes_the_strictest_tolerance(tmp_path):
    """A layer two specs list is planned once, under the stricter tolerance:
    F(4x4,3x3) (error bound 1.7e-5) is refused, and the plan says why."""
    from autoconfig import spec as spec_mod
    specs = spec_mod.load_dirs([write_spec(tmp_path / "specs", CONV_SPEC)])
    (plan,) = generate.conv_plans(probe.profile("x86-64-v3"), specs)
    assert plan.spec == "fast,exact"
    assert plan.value("tolerance") == 1e-5
    assert plan.algorithm != "winograd-f4"
    f4 = next(c for c in plan.candidates if c.name == "winograd-f4")
    assert f4.rejected == "its error bound 1.7e-05 (relative) exceeds the tolerance 1e-05"
    assert "exceeds the tolerance" in plan.explain()
    (loose,) = generate.conv_plans(probe.profile("x86-64-v3"), [s for s in specs if s.name == "fast"])
    assert "tolerance" not in loose.params
    assert next(c for c in loose.candidates if c.name == "winograd-f4").rejected is None


def test_prepared_b_blocking_and_estimate():
    """B prepared ahead (a layer's weights, PreparedGemmB): the estimate drops
    B's copy and the barrier per B block, and the plan carries the blocking
    its kernel then runs: the same tile, the B micro-panel in L1 (the next
    one prefetched from the prepared copy), a k block within the compiled KC;
    the entry emits it beside the per-call blocking and the registry row
    gives its k block (the prepared layout)."""
    prof = probe.profile("x86-64-v3")
    m = gemm_model.Machine(prof)
    plan = gemm_model.plan_shape(prof, 128, 3072, 768, isa_suffix="x", threads=2)
    t = gemm_model.Tile(plan.value("mr"), plan.value("nr"), plan.value("nr") // prof.lanes_f32)
    per_call = gemm_model.estimate(m, t, 128, 3072, 768, 2, plan.value("loop_order"))
    prepared = gemm_model.estimate(m, t, 128, 3072, 768, 2, gemm_model.B_PANEL_IN_L1, prepared_b=True,
                                   kc_limit=plan.value("kc"))
    assert prepared.terms["pack_b"] == 0.0 < per_call.terms["pack_b"]
    assert prepared.terms["sync"] < per_call.terms["sync"]
    assert prepared.kc <= plan.value("kc")
    assert plan.value("prepared_loop_order") == gemm_model.PREPARED_B_ORDER == gemm_model.B_PANEL_IN_L1
    kc = plan.value("prepared_kc")
    assert kc <= plan.value("kc")
    assert m.ways_l1(kc * t.nr * 4) + m.ways_l1(kc * t.mr * 4) <= gemm_model.l1_ways_for_panels(m)
    assert any(n.startswith("prepared B: ") for n in plan.notes)
    # M = 1 with a prepared B runs the register tile, not the row-streaming GEMV
    assert "pack_a" in gemm_model.estimate(m, t, 1, 768, 768, 1, gemm_model.B_PANEL_IN_L1, prepared_b=True).terms
    assert "pack_a" not in gemm_model.estimate(m, t, 1, 768, 768, 1, gemm_model.B_PANEL_IN_L1).terms

    from autoconfig.codegen import gemm as gemm_codegen
    from autoconfig.codegen.isa import isa_for_profile
    entry = gemm_codegen.emit_entry(isa_for_profile(prof), plan)
    assert (f"kPrepared{{{kc}, {plan.value('prepared_mc')}, {plan.value('prepared_nc')}, 0, 0, "
            f"{plan.value('direct_a_bytes')}, kBPanelInL1}};") in entry
    assert f"void {plan.kernel}(const GemmArgs& g, int threads) {{ {plan.kernel}_prepared_b(g, threads, nullptr); }}" \
        in entry
    assert gemm_codegen.prepared_kc(plan) == kc
    # a plan without a prepared blocking (a tuning candidate) reads a prepared B with its own
    bare = dataclasses.replace(plan, params={k: v for k, v in plan.params.items() if not k.startswith("prepared_")})
    assert gemm_codegen.prepared_kc(bare) == plan.value("kc")
    assert "kPrepared{" + f"{plan.value('kc')}, {plan.value('mc')}, {plan.value('nc')}, 0, 0" in \
        gemm_codegen.emit_entry(isa_for_profile(prof), bare)


def test_specialized_shapes_always_serve_the_plain_product(tmp_path):
    """A spec listing only GELU for a shape (the FFN's first matmul) still
    gets the plain product compiled in: an unfused matmul or a benchmark of
    that shape used to miss the registry row and run the generic kernel."""
    from autoconfig import spec as spec_mod
    from autoconfig.models import spec_plans
    folder = write_spec(tmp_path / "s", SPEC.replace("[none, relu, gelu_erf]", "[gelu_tanh, gelu_erf]"))
    _, specialized = spec_plans.gemm_plans(probe.profile("x86-64-v3"), spec_mod.load_dirs(folder), "x")
    assert specialized and all(p.activations == ["none", "gelu_tanh", "gelu_erf"] for p in specialized)
