"""The conv model in C++ (run-time choice for layers no spec listed) and in
Python (models/conv.py: build-time plans, explain) must agree: same
estimates, same choice and direct schedule, on many layers and in both
activation layouts."""
from __future__ import annotations

import math

import pytest

from autoconfig.models import conv as conv_model
from autoconfig.spec import Conv2dShape

LAYERS = [
    # N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, groups
    (1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1),
    (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 512, 7, 7, 2048, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 256, 14, 14, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 256, 56, 56, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 1024, 14, 14, 2048, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
    (1, 512, 14, 14, 512, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),
    (1, 16, 112, 112, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 96, 112, 112, 96, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 96),
    (1, 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 960),
    (2, 17, 9, 11, 33, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1),
    (1, 6, 12, 10, 9, 3, 3, 1, 2, 0, 1, 2, 0, 1, 1, 3),
    (1, 16, 7, 7, 48, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 16),
    (1, 8, 10, 10, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
    (3, 2, 5, 6, 4, 2, 3, 3, 2, 0, 2, 1, 0, 2, 1, 2),
]
FIELDS = ("N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
          "pad_right", "dilation_h", "dilation_w", "groups")
CONTEXTS = {"nchw": conv_model.Context(), "blocked": conv_model.Context(True, True),
            "blocked-in": conv_model.Context(True, False), "blocked-out": conv_model.Context(False, True)}


def _shape(L) -> Conv2dShape:
    return Conv2dShape(**dict(zip(FIELDS, L)))


def _cpp(ac, L, threads, ctx=conv_model.Context()):
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    return ac._ext.conv2d_choice(N, C, H, W, K, R, S, [sh, sw], [pt, pl, pb, pr], [dh, dw], g, threads,
                                 [0xFFFFFFFF, -1, -1, -1, -1], 0.0, int(ctx.in_blocked), int(ctx.out_blocked))


@pytest.mark.parametrize("ctx", list(CONTEXTS), ids=list(CONTEXTS))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("L", LAYERS, ids=[f"L{i}" for i in range(len(LAYERS))])
def test_cpp_and_python_models_agree(ac, L, threads, ctx):
    profile = ac.host()
    context = CONTEXTS[ctx]
    cpp = _cpp(ac, L, threads, context)
    layer = _shape(L)
    cands = conv_model.candidates(profile, layer, threads, ctx=context)
    py = {}
    for c in cands:
        if c.rejected is None:
            alg = c.name.split()[0]
            py[alg] = min(py.get(alg, math.inf), c.predicted_s)
    for alg, est in cpp["estimates"].items():
        if est < 0:
            assert alg not in py, f"{alg}: Python applies it, C++ does not"
            continue
        assert alg in py, f"{alg}: C++ applies it, Python does not"
        assert est == pytest.approx(py[alg], rel=1e-9), f"{alg} estimate"
    if cpp["planned"]:
        return
    plan = conv_model.plan_layer(profile, layer, isa_suffix="x", threads=threads, ctx=context)
    assert cpp["algorithm"] == plan.algorithm
    if plan.algorithm == "direct":
        assert cpp["tile"] == plan.value("tile_index")
        assert cpp["plain_input"] == (plan.value("input") == "nchw")
        assert cpp["groups_inner"] == (plan.value("order") == "groups-inner")
        assert cpp["chunk"] == plan.value("chunk")
        assert cpp["cblocks"] == plan.value("c_blocks")


def test_model_rejects_with_reasons():
    why = conv_model.applicable(Conv2dShape(C=8, H=10, W=10, K=12, R=1, S=1, stride_h=2, stride_w=2))
    assert why["winograd-f4"] == "needs a 3x3 kernel"
    assert "pointwise" in why["gemm-1x1"]
    assert why["im2col-gemm"] is None
    why = conv_model.applicable(Conv2dShape(C=8, H=10, W=10, K=12, R=1, S=1))
    assert why["gemm-1x1"] is None and "gemm-1x1" in why["im2col-gemm"]


def test_plain_input_needs_l1_and_nchw(ac):
    """The plain-NCHW direct variant is offered for few channels (the stem),
    refused when a tile's input rows overflow L1 and when the input is blocked."""
    profile = ac.host()
    stem = _shape(LAYERS[0])
    wide = _shape(LAYERS[4])
    names = {c.name: c for c in conv_model.candidates(profile, stem, 1)}
    assert any(n.endswith("nchw-in") and c.rejected is None for n, c in names.items())
    for c in conv_model.candidates(profile, wide, 1):
        if c.name.endswith("nchw-in"):
            assert c.rejected and "exceed L1" in c.rejected
    for c in conv_model.candidates(profile, stem, 1, ctx=conv_model.Context(in_blocked=True)):
        if c.name.endswith("nchw-in"):
            assert c.rejected == "the input is already blocked"


def test_blocked_context_charges_conversions(ac):
    """An NCHW algorithm called on blocked tensors pays both conversions; the
    direct kernel, blocked on both sides, pays none."""
    profile = ac.host()
    layer = _shape(LAYERS[1])
    plain = {c.name: c for c in conv_model.candidates(profile, layer, 1)}
    blocked = {c.name: c for c in conv_model.candidates(profile, layer, 1, ctx=CONTEXTS["blocked"])}
    assert blocked["winograd-f4"].predicted_s > plain["winograd-f4"].predicted_s
    assert {"from_blocked", "to_blocked"} <= set(blocked["winograd-f4"].terms)
    direct = blocked["direct 6x2" if "direct 6x2" in blocked else next(n for n in blocked if n.startswith("direct"))]
    assert direct.terms["from_blocked"] == 0.0
    assert direct.predicted_s < plain[direct.name].predicted_s


def test_depthwise_reads_a_blocked_padded_input_in_place():
    """A blocked input with multiplier 1 is read in place, pads and all, when
    rows are at least a register tile wide: no gather; narrower rows, an NCHW
    input or a multiplier above 1 copy the padded tile."""
    from autoconfig import probe
    profile = probe.profile("x86-64-v4")
    m = conv_model.kernel_machine(profile)
    ow = conv_model.depthwise_ow_tile(profile)
    blocked = conv_model.Context(True, True)
    wide = Conv2dShape(C=96, H=112, W=112, K=96, R=3, S=3, stride_h=2, stride_w=2, pad_top=1, pad_left=1,
                       pad_bottom=1, pad_right=1, groups=96)
    assert wide.out_w >= ow
    assert conv_model.estimate_depthwise(m, wide, ow, 1, blocked)["gather"] == 0.0
    assert conv_model.estimate_depthwise(m, wide, ow, 1, conv_model.Context(False, True))["gather"] > 0.0
    narrow = Conv2dShape(C=960, H=7, W=7, K=960, R=3, S=3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1,
                         groups=960)
    assert narrow.out_w < ow
    assert conv_model.estimate_depthwise(m, narrow, ow, 1, blocked)["gather"] > 0.0
    doubled = Conv2dShape(C=48, H=56, W=56, K=96, R=3, S=3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1,
                          groups=48)
    assert conv_model.estimate_depthwise(m, doubled, ow, 1, blocked)["gather"] > 0.0


def test_explain_conv2d(ac):
    e = ac.explain("conv2d", N=1, C=64, H=56, W=56, K=64, R=3, S=3, pads=1, threads=1)
    text = str(e)
    assert "winograd-f4" in text and "direct" in text and "im2col-gemm" in text
    assert e.plan.algorithm in ac.CONV_ALGORITHMS
    assert e.plan.algorithm == _cpp(ac, (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 1)["algorithm"]


def test_tolerance_refuses_winograd_in_both_models(ac):
    """A tolerance below F(4x4,3x3)'s error bound refuses it in Python and in
    C++; F(2x2,3x3), with a smaller bound, stays."""
    L = LAYERS[1]
    why = conv_model.applicable(_shape(L), 1e-5)
    assert why["winograd-f4"] == "its error bound 1.7e-05 (relative) exceeds the tolerance 1e-05"
    assert why["winograd-f2"] is None
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    cpp = ac._ext.conv2d_choice(N, C, H, W, K, R, S, [sh, sw], [pt, pl, pb, pr], [dh, dw], g, 1,
                                [0xFFFFFFFF, -1, -1, -1, -1], 1e-5)
    assert cpp["estimates"]["winograd-f4"] < 0 and cpp["estimates"]["winograd-f2"] > 0
    assert cpp["algorithm"] != "winograd-f4"
    text = str(ac.explain("conv2d", C=C, H=H, W=W, K=K, R=R, S=S, pads=1, threads=1, tolerance=1e-5))
    assert "winograd-f4" in text and "exceeds the tolerance 1e-05" in text and "tolerance" in text


@pytest.mark.parametrize("target", ["x86-64-v4", "x86-64-v3", "x86-64-v2", "generic"])
def test_direct_tiles_fit_registers_and_cover_latency(target):
    """Accumulators, weight vectors and the broadcast fit the register file;
    more accumulators than FMA latency x units; no more loads than FMAs."""
    from autoconfig import probe
    p = probe.profile(target)
    tiles = conv_model.direct_tiles(p)
    assert tiles
    for n, kb in tiles:
        assert n * kb + kb + 1 <= p.vector_registers
        assert n * kb > p.fma_latency_cycles * p.fma_per_cycle
        assert n + kb <= n * kb and kb <= conv_model.MAX_TILE_BLOCKS
        assert n + 1 > (p.vector_registers - kb - 1) // kb or n == 28    # the widest n for its kb


def test_threads_sharing_fma_units_do_not_double_the_rate():
    """Two logical CPUs that are SMT siblings of one core (fma_thread_scaling
    1/2) cannot run FMA-bound work twice as fast: together they only fill the
    issue slots one thread leaves idle, so the model's 2-thread estimate of a
    compute-bound layer is its FMA work at one core's peak, while two real
    cores halve the 1-thread estimate."""
    import dataclasses
    from autoconfig import probe
    base = probe.profile("x86-64-v3")
    smt = dataclasses.replace(base, fma_thread_scaling=0.5)
    L = Conv2dShape(C=256, H=28, W=28, K=256, R=3, S=3, stride_h=2, stride_w=2, pad_top=1, pad_left=1,
                    pad_bottom=1, pad_right=1)

    def compute(profile, threads):
        c = next(c for c in conv_model.candidates(profile, L, threads) if c.name.startswith("direct"))
        return c.terms["compute"]
    assert compute(base, 2) == pytest.approx(compute(base, 1) / 2, rel=0.05)
    assert compute(smt, 1) == compute(base, 1)
    fma_work = 2.0 * L.K * L.out_h * L.out_w * L.C * L.R * L.S / (base.peak_gflops_per_core * 1e9)
    assert compute(smt, 2) == pytest.approx(fma_work, rel=0.02) and compute(smt, 2) < compute(smt, 1)
    assert conv_model.model_coefficients(smt)["fma_thread_scaling"] == 0.5


def test_prepare_charges_bytes_at_the_copy_bandwidth():
    """A re-layout costs (bytes read + bytes written) / the copy bandwidth of
    the level its source and destination fit in, never less: beyond the last
    cache too (the probe's copy curve includes write-allocate, nothing is added
    for it); the call's threads share the bytes. The read bandwidth plays no
    part (here made absurdly fast)."""
    from dataclasses import replace
    from autoconfig import probe
    from autoconfig.profile import COPY_FROM_READ
    base = probe.profile("x86-64-v3")
    prof = replace(base, bandwidth_gbps={k: 1e4 for k in base.bandwidth_gbps},
                   copy_bandwidth_gbps={"L1": 150.0, "L2": 60.0, "L3": 23.0, "DRAM": 9.0})
    m = conv_model.kernel_machine(prof)
    big = Conv2dShape(C=1024, H=14, W=14, K=2048, R=1, S=1)
    read, written = conv_model.prepare_bytes(m, big, "direct")
    assert (read, written) == (1024 * 2048, 1024 * 2048)
    assert m.level_of(conv_model.F32 * (read + written)) == "DRAM"
    want = conv_model.F32 * (read + written) / 9e9
    issue = written * conv_model.prepare_cycles_per_element(m) / conv_model._hz(m)
    assert want > issue
    assert conv_model.prepare_terms(m, big, "direct", 1)["prepare"] == pytest.approx(want, rel=1e-12)
    # Two threads each bring their share of the bytes (plus one barrier).
    assert conv_model.prepare_terms(m, big, "direct", 2)["prepare"] == pytest.approx(
        want / 2 + conv_model.SYNC_SECONDS, rel=1e-12)
    for small in (Conv2dShape(C=64, H=56, W=56, K=64, R=1, S=1), Conv2dShape(C=13, H=7, W=7, K=17, R=3, S=3)):
        read, written = conv_model.prepare_bytes(m, small, "direct")
        level = m.level_of(conv_model.F32 * (read + written))
        assert level != "DRAM"
        assert conv_model.prepare_terms(m, small, "direct", 1)["prepare"] >= (
            conv_model.F32 * (read + written) / m.copy_bandwidth(level))
    # A profile without a copy curve charges COPY_FROM_READ x its read bandwidth.
    bare = replace(base, copy_bandwidth_gbps={})
    mb = conv_model.kernel_machine(bare)
    assert mb.copy_bandwidth("DRAM") == pytest.approx(COPY_FROM_READ["DRAM"] * base.bandwidth_gbps["DRAM"] * 1e9)
    # The C++ mirror receives the copy bandwidths among its coefficients.
    c = conv_model.model_coefficients(prof)
    assert [c[f"copy_bw_{k}"] for k in ("l1", "l2", "l3", "dram")] == [150e9, 60e9, 23e9, 9e9]
