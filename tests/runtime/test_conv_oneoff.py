"""One-off conv2d() calls (issue 14): the weights prepared in the call equal
the weights a prepared layer keeps (bit for bit, every algorithm, with a
folded batch-norm), a weight array changed in place is always seen (no
cache), and the model charges the preparation to the one-off choice only,
the same way in Python and in C++."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference import assert_close, conv_ref, conv_tol

from autoconfig.models import conv as conv_model
from autoconfig.spec import Conv2dShape

ALGORITHMS = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")
# As tests/test_conv2d.py: Winograd transforms amplify rounding.
WINOGRAD_TOL_FACTOR = {"winograd-f2": 8.0, "winograd-f4": 100.0}

LAYERS = [
    # N, C, H, W, K, R, S, strides, pads, dilations, groups
    (1, 32, 19, 37, 48, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # Winograd-eligible, odd sizes
    (2, 17, 9, 11, 33, 3, 3, (1, 1), (0, 2, 1, 0), (1, 1), 1),     # partial channel blocks (K and C)
    (1, 3, 23, 23, 20, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),     # stem-like: plain input, C = 3
    (1, 40, 14, 14, 72, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # pointwise
    (1, 24, 29, 31, 24, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 24),   # depthwise
    (1, 16, 7, 7, 48, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 16),     # depthwise, multiplier 3
    (1, 130, 6, 6, 70, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # many channels: several work items
]


def _applies(layer, alg) -> bool:
    return conv_model.applicable(_shape(layer))[alg] is None


def _shape(layer) -> Conv2dShape:
    N, C, H, W, K, R, S, (sh, sw), (pt, pl, pb, pr), (dh, dw), g = layer
    return Conv2dShape(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride_h=sh, stride_w=sw, pad_top=pt, pad_left=pl,
                       pad_bottom=pb, pad_right=pr, dilation_h=dh, dilation_w=dw, groups=g)


def _tensors(layer, seed=0):
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    scale = (rng.random(K, dtype=np.float32) + 0.5).astype(np.float32)
    shift = rng.standard_normal(K, dtype=np.float32)
    return x, w, b, scale, shift


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("layer", LAYERS, ids=[f"L{i}" for i in range(len(LAYERS))])
def test_oneoff_equals_prepared(ac, layer, alg, threads):
    """conv2d() prepares the weights in the call; prepare_conv2d() once: the
    same pass (batch-norm scale folded in), so the same bits."""
    if not _applies(layer, alg):
        pytest.skip(f"{alg} does not apply")
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    x, w, b, scale, shift = _tensors(layer)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, activation="relu", algorithm=alg,
              threads=threads)
    for bn in (False, True):
        extra = dict(scale=scale, shift=shift) if bn else {}
        y1 = ac.conv2d(x, w, b, **extra, **kw)
        layer_ = ac.prepare_conv2d(w, b, input_shape=(C, H, W), **extra, **kw)
        assert layer_.algorithm == alg
        y2 = layer_(x)
        np.testing.assert_array_equal(y1, y2)
        ref = conv_ref(x, w, b, strides, pads, dil, groups, scale=scale if bn else None,
                       shift=shift if bn else None, activation="relu")
        w_bn = w * scale[:, None, None, None] if bn else w
        assert_close(y1, ref, conv_tol(x, w_bn, ref, groups) * WINOGRAD_TOL_FACTOR.get(alg, 1.0), f"{alg} bn={bn}")


# Prime channel counts and sizes: partial output and input channel blocks,
# several packer work items (groups of output blocks x chunks of columns or
# channels) to share among 1, 2 and 3 threads, a 1x1 layer with more channels
# than one item's columns, a plain-input (stem-like) layer; and Winograd
# layers whose transform planes (C x K rounded up to the lanes) are a multiple
# of 4 KiB apart, the ones the packer stages through L1 (conv_prepare.py:
# kAliasBytes), one of them with a partial last panel of output channels.
PACKER_LAYERS = [
    (1, 37, 11, 13, 41, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 131, 5, 7, 67, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 263, 3, 3, 29, 3, 3, (2, 2), (1, 0, 1, 0), (1, 1), 1),
    (1, 3, 17, 19, 23, 5, 5, (2, 2), (2, 2, 2, 2), (1, 1), 1),
    (1, 32, 9, 10, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 128, 6, 7, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("alg", ["direct", "winograd-f2", "winograd-f4"])
@pytest.mark.parametrize("layer", PACKER_LAYERS, ids=[f"P{i}" for i in range(len(PACKER_LAYERS))])
def test_threaded_packers(ac, layer, alg, threads):
    """The weight packers split their work among the call's threads: every
    packed float written once whatever the thread count, so a one-off call
    equals the prepared layer (packed on the same threads) and the float64
    reference, with and without a folded batch-norm scale."""
    if not _applies(layer, alg):
        pytest.skip(f"{alg} does not apply")
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    x, w, b, scale, shift = _tensors(layer, seed=threads)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, algorithm=alg, threads=threads)
    for bn in (False, True):
        extra = dict(scale=scale, shift=shift) if bn else {}
        y1 = ac.conv2d(x, w, b, **extra, **kw)
        y2 = ac.prepare_conv2d(w, b, input_shape=(C, H, W), **extra, **kw)(x)
        np.testing.assert_array_equal(y1, y2)
        ref = conv_ref(x, w, b, strides, pads, dil, groups, scale=scale if bn else None,
                       shift=shift if bn else None)
        w_bn = w * scale[:, None, None, None] if bn else w
        assert_close(y1, ref, conv_tol(x, w_bn, ref, groups) * WINOGRAD_TOL_FACTOR.get(alg, 1.0),
                     f"{alg} threads={threads} bn={bn}")


# Layers whose one-off direct call packs group by group in the run (the
# model's direct_fused_prepare): 1x1, 3x3, stride 2, plain input, prime
# channel counts (partial input and output blocks), and a deep 1x1 run in
# reduction blocks (each block of a group packed before its sweep).
FUSED_LAYERS = [
    (1, 131, 7, 7, 67, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 37, 11, 13, 41, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 64, 15, 15, 83, 3, 3, (2, 2), (1, 0, 1, 0), (1, 1), 1),
    (1, 96, 14, 14, 130, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),
    (1, 3, 23, 23, 20, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),
    # input (1.6 MB) well over half of L2 (512 KiB on Zen 3, 1 MiB on Zen 4): reduction blocks
    (1, 2039, 14, 14, 67, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
]


def _direct_choice(ac, layer, threads):
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    return ac._ext.conv2d_choice(N, C, H, W, K, R, S, list(strides), list(pads), list(dil), groups, threads,
                                 [1 << conv_model.ALGORITHMS.index("direct"), -1, -1, -1, -1], 0.0, 0, 0,
                                 prepared=False, scale=True)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layer", FUSED_LAYERS, ids=[f"F{i}" for i in range(len(FUSED_LAYERS))])
def test_fused_oneoff_equals_prepared(ac, layer, threads):
    """The fused one-off path packs each group (of each reduction block) into
    the thread's scratch with the packer's own code: the same bits as the
    weights a prepared layer packs whole, with bias, folded batch-norm,
    residual and relu."""
    choice = _direct_choice(ac, layer, threads)
    assert choice["pack_groups"], choice
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    x, w, b, scale, shift = _tensors(layer, seed=threads)
    Ho = (H + pads[0] + pads[2] - R) // strides[0] + 1
    Wo = (W + pads[1] + pads[3] - S) // strides[1] + 1
    res = np.random.default_rng(7).standard_normal((N, K, Ho, Wo), dtype=np.float32)
    # Both calls run the variant the one-off chose (a prepared layer may prefer another).
    variant = conv_model.direct_candidate_name(conv_model.direct_tiles(ac.host())[choice["tile"]],
                                               choice["plain_input"])
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, activation="relu", algorithm=variant,
              threads=threads)
    y1 = ac.conv2d(x, w, b, scale=scale, shift=shift, residual=res, **kw)
    layer_ = ac.prepare_conv2d(w, b, input_shape=(C, H, W), scale=scale, shift=shift, **kw)
    np.testing.assert_array_equal(y1, layer_(x, residual=res))
    ref = conv_ref(x, w, b, strides, pads, dil, groups, scale=scale, shift=shift, activation="relu", residual=res)
    assert_close(y1, ref, conv_tol(x, w * scale[:, None, None, None], ref, groups), f"threads={threads}")


def _at_line_offset(w: np.ndarray, floats: int) -> np.ndarray:
    """A copy of w whose first float sits `floats` floats past a 64-byte boundary."""
    buf = np.empty(w.size + 16, dtype=np.float32)
    start = ((floats * 4 - buf.ctypes.data % 64) % 64) // 4
    out = buf[start:start + w.size].reshape(w.shape)
    out[...] = w
    assert out.ctypes.data % 64 == floats * 4
    return out


# Weight rows a whole number of 64-byte lines apart (C*R*S a multiple of 16):
# the direct packer follows the line grid when they start mid-line
# (conv_prepare.py, direct_items). A deep 1x1 layer with a partial last output
# block (packed fused in reduction blocks), a plain-input 3x3 layer (one
# channel per tap) and a blocked-input 3x3 layer (steps across channel blocks).
LINE_GRID_LAYERS = [
    ((1, 1024, 3, 5, 72, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1), None),
    ((1, 32, 9, 9, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1), True),
    ((1, 48, 9, 9, 40, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1), False),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", LINE_GRID_LAYERS, ids=["1x1", "plain3x3", "blocked3x3"])
def test_direct_packer_any_weight_alignment(ac, case, threads):
    """Weights starting at every float of a line pack to the same floats: the
    one-off and the prepared layer give the bits of 64-byte aligned weights,
    and the float64 reference."""
    layer, plain = case
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    x, w, b, scale, shift = _tensors(layer, seed=threads)
    tile = conv_model.direct_tiles(ac.host())[0]
    alg = "direct" if plain is None else conv_model.direct_candidate_name(tile, plain)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, algorithm=alg, threads=threads)
    want = ac.conv2d(x, _at_line_offset(w, 0), b, scale=scale, shift=shift, **kw)
    ref = conv_ref(x, w, b, strides, pads, dil, groups, scale=scale, shift=shift)
    assert_close(want, ref, conv_tol(x, w * scale[:, None, None, None], ref, groups), f"threads={threads}")
    for floats in range(1, 16):
        wo = _at_line_offset(w, floats)
        np.testing.assert_array_equal(ac.conv2d(x, wo, b, scale=scale, shift=shift, **kw), want, f"offset {floats}")
        np.testing.assert_array_equal(ac.conv2d(x, wo, b, **kw),
                                      ac.conv2d(x, _at_line_offset(w, 0), b, **kw), f"offset {floats}, no scale")
        layer_ = ac.prepare_conv2d(wo, b, input_shape=(C, H, W), scale=scale, shift=shift, **kw)
        np.testing.assert_array_equal(layer_(x), want, f"prepared, offset {floats}")


def test_fused_path_covers_reduction_blocks(ac):
    """The deep 1x1 layer of FUSED_LAYERS runs in reduction blocks, so the
    per-block packing is exercised, not only whole groups."""
    assert _direct_choice(ac, FUSED_LAYERS[-1], 1)["cblocks"] > 1


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_oneoff_sees_weights_changed_in_place(ac, alg):
    """No cache between one-off calls: changing w (and scale) in place between
    two calls changes the second result exactly as a fresh call would."""
    layer = LAYERS[0] if alg not in ("gemm-1x1", "depthwise") else LAYERS[3] if alg == "gemm-1x1" else LAYERS[4]
    if not _applies(layer, alg):
        pytest.skip(f"{alg} does not apply")
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    x, w, b, scale, shift = _tensors(layer)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, algorithm=alg, threads=1)
    first = ac.conv2d(x, w, b, scale=scale, shift=shift, **kw)
    w[0] += 1.0            # same array, same address, new values
    w[-1, ..., -1] *= -3.0
    scale[1] = 2.0
    second = ac.conv2d(x, w, b, scale=scale, shift=shift, **kw)
    fresh = ac.conv2d(x, w.copy(), b, scale=scale.copy(), shift=shift, **kw)
    np.testing.assert_array_equal(second, fresh)
    assert not np.array_equal(first, second)


LAYERS_MODEL = [
    # N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, groups
    (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 1024, 14, 14, 2048, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1),
    (1, 144, 56, 56, 144, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 144),
    (1, 17, 9, 11, 33, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1),
]
FIELDS = ("N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
          "pad_right", "dilation_h", "dilation_w", "groups")


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("prepared", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("L", LAYERS_MODEL, ids=[f"M{i}" for i in range(len(LAYERS_MODEL))])
def test_prepare_term_same_in_python_and_cpp(ac, L, threads, prepared, scale):
    """models/conv.py and cpp_runtime/src/conv_model.cpp: one-off estimates
    carry the same "prepare" term; a prepared layer's carry none."""
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    cpp = ac._ext.conv2d_choice(N, C, H, W, K, R, S, [sh, sw], [pt, pl, pb, pr], [dh, dw], g, threads,
                                [0xFFFFFFFF, -1, -1, -1, -1], 0.0, 0, 0, prepared=prepared, scale=scale)
    layer = Conv2dShape(**dict(zip(FIELDS, L)))
    cands = conv_model.candidates(ac.host(), layer, threads, prepared=prepared, scale=scale)
    py, prep = {}, {}
    for c in cands:
        if c.rejected is None:
            alg = c.name.split()[0]
            if c.predicted_s < py.get(alg, math.inf):
                py[alg] = c.predicted_s
                prep[alg] = c.terms.get("prepare")
    for alg, est in cpp["estimates"].items():
        if est < 0:
            assert alg not in py
            continue
        assert est == pytest.approx(py[alg], rel=1e-9), alg
        if prepared:
            assert prep[alg] is None
        else:
            assert prep[alg] == pytest.approx(cpp["prepare"][alg], rel=1e-9), alg
    if not cpp["planned"]:
        best = min(py, key=py.get)
        assert cpp["algorithm"] == best


def test_oneoff_charges_the_winograd_transform(ac):
    """The 512x512x3x3 layer at 7x7: its F(4x4) transform (36/9 = 4x the
    weights written, plus the arithmetic) costs more than the run, so the
    one-off estimate of winograd-f4 carries it and exceeds the prepared one."""
    L = LAYERS_MODEL[1]
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    args = (N, C, H, W, K, R, S, [sh, sw], [pt, pl, pb, pr], [dh, dw], g, 1, [0xFFFFFFFF, -1, -1, -1, -1])
    prepared = ac._ext.conv2d_choice(*args, prepared=True)
    oneoff = ac._ext.conv2d_choice(*args, prepared=False)
    # The rest of the one-off estimate is "reload" (the packed copy read back
    # from memory: the 37.7 MB F4 U with w does not stay in L3).
    best = {}
    for c in conv_model.candidates(ac.host(), Conv2dShape(**dict(zip(FIELDS, L))), 1, prepared=False):
        alg = c.name.split()[0]
        if c.rejected is None and c.predicted_s < best.get(alg, (math.inf,))[0]:
            best[alg] = (c.predicted_s, c.terms["reload"])
    for alg in ("direct", "winograd-f4"):
        assert oneoff["estimates"][alg] == pytest.approx(prepared["estimates"][alg] + oneoff["prepare"][alg]
                                                         + best[alg][1])
    assert oneoff["prepare"]["winograd-f4"] > oneoff["prepare"]["direct"] > 0
    assert oneoff["prepare"]["im2col-gemm"] == 0.0


def test_explain_shows_both_modes(ac):
    kw = dict(N=1, C=256, H=14, W=14, K=256, R=3, S=3, pads=1, threads=1)
    one = ac.explain("conv2d", prepared=False, **kw)
    prep = ac.explain("conv2d", prepared=True, **kw)
    assert all("prepare" in c.terms for c in one.plan.candidates if c.rejected is None)
    assert not any("prepare" in c.terms for c in prep.plan.candidates if c.rejected is None)
    text = str(one)
    assert "one-off conv2d()" in text and "prepared layer" in text and "run + prepare ms" in text
    assert all("reload" in c.terms for c in one.plan.candidates if c.rejected is None)


def test_explain_names_the_fused_path(ac):
    """512x7x7->512 3x3 one-off: direct packs group by group (its reload 0),
    Winograd F2 reads its 16.8 MB U back from memory (reload > 0)."""
    one = ac.explain("conv2d", C=512, H=7, W=7, K=512, R=3, S=3, pads=1, threads=1, prepared=False)
    cands = {c.name: c for c in one.plan.candidates if c.rejected is None}
    direct = min((c for n, c in cands.items() if n.startswith("direct")), key=lambda c: c.predicted_s)
    assert direct.terms["reload"] == 0.0
    if cands["winograd-f2"].terms["reload"] == 0.0:
        pytest.skip("this host's L3 holds the F2 weights and their transform")
    if one.plan.algorithm == "direct":
        assert "packs a group's weights just before computing it" in str(one)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("L", LAYERS_MODEL + [(1, 512, 7, 7, 2048, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1)],
                         ids=[f"M{i}" for i in range(len(LAYERS_MODEL) + 1)])
def test_fused_decision_same_in_python_and_cpp(ac, L, threads):
    """The one-off direct path (fused or whole packing first) is the model's
    direct_fused_prepare for the variant and schedule C++ chose, and only the
    whole packing pays "reload"."""
    if L[-1] != 1:
        pytest.skip("direct needs groups = 1")
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    layer = (N, C, H, W, K, R, S, (sh, sw), (pt, pl, pb, pr), (dh, dw), g)
    cpp = _direct_choice(ac, layer, threads)
    shape = Conv2dShape(**dict(zip(FIELDS, L)))
    prof = ac.host()
    m = conv_model.kernel_machine(prof)
    tile = conv_model.direct_tiles(prof)[cpp["tile"]]
    s = conv_model.direct_schedule(m, shape, tile, cpp["plain_input"], threads)
    assert cpp["pack_groups"] == conv_model.direct_fused_prepare(m, shape, tile, cpp["plain_input"], s)
    terms = conv_model.prepare_terms(m, shape, "direct", threads, cpp["plain_input"], True, cpp["pack_groups"])
    if cpp["pack_groups"]:
        assert terms["reload"] == 0.0


def test_reload_charged_when_the_packed_weights_spill_l3(ac):
    """The 16.8 MB Winograd F2 U of 512x7x7->512 3x3 (with w, 26 MB) cannot
    stay in L3 on the probed hosts: a one-off call reads it back from memory,
    so its "reload" term is the packed bytes' copy at the DRAM copy bandwidth."""
    shape = Conv2dShape(**dict(zip(FIELDS, LAYERS_MODEL[1])))
    m = conv_model.kernel_machine(ac.host())
    _, written = conv_model.prepare_bytes(m, shape, "winograd-f2")
    terms = conv_model.prepare_terms(m, shape, "winograd-f2", 1)
    if m.level_of(4 * (written + shape.K * shape.C * 9)) != "DRAM":
        pytest.skip("this host's L3 holds the layer's weights")
    assert terms["reload"] == pytest.approx(2 * 4 * written / m.copy_bandwidth("DRAM"))
