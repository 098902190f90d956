"""conv2d against the float64 reference (reference.conv_ref): every ONNX Conv
attribute and epilogue, every algorithm and direct variant, odd shapes, and
argument errors."""
from __future__ import annotations

import numpy as np
import pytest

from reference import activation as act_ref
from reference import assert_close, conv_ref, conv_tol


LAYERS = [
    # N, C, H, W, K, R, S, strides, pads, dilations, groups
    (1, 3, 17, 19, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 8, 9, 7, 16, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # pointwise, batch 2
    (1, 8, 10, 10, 12, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),     # strided 1x1
    (1, 6, 11, 13, 6, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 6),      # depthwise
    (1, 4, 9, 9, 8, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 4),        # depthwise, multiplier 2
    (1, 6, 12, 10, 9, 3, 3, (1, 2), (0, 1, 2, 0), (1, 1), 3),      # grouped, asymmetric pads
    (1, 5, 15, 15, 7, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),      # 5x5
    (1, 4, 13, 11, 5, 7, 1, (1, 1), (3, 0, 3, 0), (1, 1), 1),      # 7x1
    (1, 4, 11, 13, 5, 1, 7, (1, 1), (0, 3, 0, 3), (1, 1), 1),      # 1x7
    (1, 3, 16, 16, 4, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),      # dilation 2
    (2, 1, 8, 1, 3, 3, 1, (1, 1), (1, 0, 1, 0), (1, 1), 1),        # C = 1, W = 1
    (1, 3, 23, 23, 16, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),     # ResNet stem shape (small)
    (3, 2, 5, 6, 4, 2, 3, (3, 2), (0, 2, 1, 0), (2, 1), 2),        # everything odd at once
    # channel counts that fill and overflow whole vector blocks (16 lanes on AVX-512, 8 on AVX2)
    (1, 32, 19, 37, 48, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # 3x3 s1: Winograd-eligible, odd sizes
    (2, 17, 9, 11, 33, 3, 3, (1, 1), (0, 2, 1, 0), (1, 1), 1),     # asymmetric pads, partial blocks
    (1, 40, 14, 14, 72, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # pointwise, odd block counts
    (1, 24, 29, 31, 24, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 24),   # depthwise s2, 1.5 blocks
    (1, 32, 16, 17, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 32),   # depthwise s1, full blocks
    (1, 16, 7, 7, 48, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 16),     # depthwise, multiplier 3
    (1, 64, 7, 7, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),      # ResNet res5-like small spatial
]

ALGORITHMS = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")


def applicable(layer, alg):
    """Independent statement of where each algorithm applies (models/conv.py: applicable)."""
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    if alg == "direct":
        return groups == 1
    pointwise = R == S == 1 and strides == (1, 1) and pads == (0, 0, 0, 0)
    if alg == "gemm-1x1":
        return pointwise
    if alg == "im2col-gemm":
        return not pointwise      # a pointwise layer is its own patch matrix: gemm-1x1
    if alg.startswith("winograd"):
        return R == S == 3 and strides == (1, 1) and dil == (1, 1) and groups == 1
    if alg == "depthwise":
        return groups > 1 and groups == C and K % C == 0
    return True


# Winograd trades exactness for multiplies: F(4x4,3x3) transforms amplify
# rounding by ~10-100x (documented in README); F(2x2,3x3) by a few.
WINOGRAD_TOL_FACTOR = {"winograd-f2": 8.0, "winograd-f4": 100.0}


@pytest.mark.parametrize("layer", LAYERS, ids=[f"L{i}" for i in range(len(LAYERS))])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv_layers(ac, layer, threads):
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(hash(layer) % 2**32)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    got = ac.conv2d(x, w, b, strides=strides, pads=pads, dilations=dil, groups=groups, threads=threads)
    want = conv_ref(x, w, b, strides, pads, dil, groups)
    assert got.shape == want.shape
    assert_close(got, want, conv_tol(x, w, want, groups), f"layer {layer}")


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("layer", LAYERS, ids=[f"L{i}" for i in range(len(LAYERS))])
def test_every_algorithm(ac, layer, alg):
    """Each algorithm, forced, on every layer it applies to; a clear error elsewhere."""
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    kw = dict(strides=strides, pads=pads, dilations=dil, groups=groups, activation="relu", algorithm=alg)
    if not applicable(layer, alg):
        with pytest.raises(ValueError, match="none of the requested algorithms applies"):
            ac.conv2d(x, w, b, **kw)
        return
    for threads in (1, 2):
        got = ac.conv2d(x, w, b, threads=threads, **kw)
        want = conv_ref(x, w, b, strides, pads, dil, groups, activation="relu")
        tol = conv_tol(x, w, want, groups) * WINOGRAD_TOL_FACTOR.get(alg, 1.0)
        assert_close(got, want, tol, f"{alg} {layer} threads={threads}")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_epilogues(ac, alg):
    """bias + folded batch-norm + residual + relu6 / clip through each algorithm's own epilogue."""
    rng = np.random.default_rng(11)
    for layer in LAYERS:
        if not applicable(layer, alg):
            continue
        N, C, H, W, K, R, S, strides, pads, dil, groups = layer
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        sc = rng.uniform(0.5, 1.5, K).astype(np.float32)
        sh = rng.standard_normal(K, dtype=np.float32)
        shape = conv_ref(x, w, None, strides, pads, dil, groups).shape
        res = rng.standard_normal(shape, dtype=np.float32)
        tolf = WINOGRAD_TOL_FACTOR.get(alg, 1.0) * 1.5
        for act in ("relu6", ("clip", -0.5, 2.0), None):
            got = ac.conv2d(x, w, b, strides=strides, pads=pads, dilations=dil, groups=groups, scale=sc, shift=sh,
                            residual=res, activation=act, algorithm=alg)
            want = conv_ref(x, w, b, strides, pads, dil, groups, sc, sh, None, res)
            want = np.clip(want, -0.5, 2.0) if isinstance(act, tuple) else act_ref(want, act)
            assert_close(got, want, conv_tol(x, w, want, groups) * tolf, f"{alg} {layer} act={act}")


def test_tolerance_refuses_winograd(ac):
    """tolerance= keeps the result within a relative error: Winograd variants
    whose documented bound exceeds it are not chosen, and forcing one fails."""
    rng = np.random.default_rng(19)
    x = rng.standard_normal((1, 16, 12, 12), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    layer = ac.prepare_conv2d(w, input_shape=(16, 12, 12), pads=1, tolerance=1e-5,
                              algorithm=["winograd-f4", "winograd-f2"])
    assert layer.algorithm == "winograd-f2"
    want = conv_ref(x, w, pads=(1, 1, 1, 1))
    assert_close(layer(x), want, conv_tol(x, w, want, 1) * WINOGRAD_TOL_FACTOR["winograd-f2"], "f2 under 1e-5")
    with pytest.raises(ValueError, match="none of the requested algorithms applies to this layer within the "
                                         "tolerance"):
        ac.conv2d(x, w, pads=1, algorithm="winograd-f4", tolerance=1e-5)
    for bad in (0, 1.0, -1e-3, "1e-4", True):
        with pytest.raises(ValueError, match="tolerance: expected None or a relative error between 0 and 1"):
            ac.conv2d(x, w, pads=1, tolerance=bad)


def direct_variants(ac):
    """Every direct variant of this build: tile x input layout x work order."""
    tiles = [f"{n}x{kb}" for n, kb in ac._ext.conv2d_direct_tiles()]
    return [f"direct {t} {i} {o}" for t in tiles for i in ("blocked-in", "nchw-in")
            for o in ("groups-outer", "groups-inner", "cblocks=2", "cblocks=3")]


@pytest.mark.parametrize("layer", [L for L in LAYERS if L[-1] == 1], ids=lambda L: f"C{L[1]}K{L[4]}R{L[5]}S{L[6]}")
def test_every_direct_variant(ac, layer):
    """Each register tile, input layout (NCHW[B]c or plain NCHW) and work order
    of the direct kernel, forced, with the epilogue (bias, residual, relu6)."""
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(17)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    res = rng.standard_normal(conv_ref(x, w, None, strides, pads, dil).shape, dtype=np.float32)
    want = conv_ref(x, w, b, strides, pads, dil, residual=res, activation="relu6")
    for variant in direct_variants(ac):
        for threads in (1, 2):
            got = ac.conv2d(x, w, b, strides=strides, pads=pads, dilations=dil, residual=res, activation="relu6",
                            algorithm=variant, threads=threads)
            assert_close(got, want, conv_tol(x, w, want, 1) * 1.5, f"{variant} {layer} threads={threads}")


@pytest.mark.parametrize("layer", LAYERS[-7:], ids=[f"L{i}" for i in range(len(LAYERS) - 7, len(LAYERS))])
def test_prepared_layer(ac, layer):
    """prepare_conv2d folds and re-lays out the weights once; calls then match conv2d."""
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(13)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    sc = rng.uniform(0.5, 1.5, K).astype(np.float32)
    layer_fn = ac.prepare_conv2d(w, b, input_shape=(C, H, W), strides=strides, pads=pads, dilations=dil,
                                 groups=groups, scale=sc, activation="relu")
    assert layer_fn.algorithm in ALGORITHMS
    w_copy = w.copy()
    w[...] = 0          # the prepared copy must not depend on the caller's array any more
    got = layer_fn(x)
    want = conv_ref(x, w_copy, b, strides, pads, dil, groups, sc, None, "relu")
    tol = conv_tol(x, w_copy, want, groups) * WINOGRAD_TOL_FACTOR.get(layer_fn.algorithm, 1.0) * 1.5
    assert_close(got, want, tol, f"prepared {layer} ({layer_fn.algorithm})")
    res = rng.standard_normal(want.shape, dtype=np.float32)
    got = layer_fn(x, residual=res, threads=2)
    want = conv_ref(x, w_copy, b, strides, pads, dil, groups, sc, None, "relu", res)
    assert_close(got, want, tol, f"prepared+residual {layer}")
    with pytest.raises(ValueError, match="as prepared"):
        layer_fn(np.zeros((1, C, H + 1, W), np.float32))


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_conv_epilogues(ac, activation, bn, residual):
    rng = np.random.default_rng(3)
    for layer in (LAYERS[0], LAYERS[1], LAYERS[3]):
        N, C, H, W, K, R, S, strides, pads, dil, groups = layer
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        sc = rng.uniform(0.5, 1.5, K).astype(np.float32) if bn else None
        sh = rng.standard_normal(K, dtype=np.float32) if bn else None
        want_shape = conv_ref(x, w, None, strides, pads, dil, groups).shape
        res = rng.standard_normal(want_shape, dtype=np.float32) if residual else None
        got = ac.conv2d(x, w, b, strides=strides, pads=pads, dilations=dil, groups=groups, scale=sc, shift=sh,
                        activation=activation, residual=res)
        want = conv_ref(x, w, b, strides, pads, dil, groups, sc, sh, activation, res)
        assert_close(got, want, conv_tol(x, w, want, groups) * 1.5, f"{layer} act={activation} bn={bn} res={residual}")


def test_conv_out_and_in_place_residual(ac):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 8, 6, 6), dtype=np.float32)
    w = rng.standard_normal((8, 8, 1, 1), dtype=np.float32)
    acc = rng.standard_normal((1, 8, 6, 6), dtype=np.float32)
    want = conv_ref(x, w, residual=acc, activation="relu")
    r = ac.conv2d(x, w, residual=acc, out=acc, activation="relu")
    assert r is acc
    assert_close(acc, want, 1e-4, "in-place residual")


def test_conv_noncontiguous_input(ac):
    rng = np.random.default_rng(5)
    big = rng.standard_normal((2, 6, 20, 20), dtype=np.float32)
    x = big[:, ::2, 1::2, ::-1]
    w = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    assert_close(ac.conv2d(x, w, pads=1), conv_ref(x, w, pads=(1, 1, 1, 1)), 1e-4, "strided x")


def test_conv_batch_zero(ac):
    y = ac.conv2d(np.zeros((0, 3, 5, 5), np.float32), np.zeros((2, 3, 3, 3), np.float32))
    assert y.shape == (0, 2, 3, 3)


A4 = lambda *s: np.ones(s, np.float32)  # noqa: E731

ERRORS = [
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5).astype(np.float64), A4(2, 3, 3, 3)), TypeError, "x: expected dtype float32"),
    (lambda ac: ac.conv2d(A4(3, 5, 5), A4(2, 3, 3, 3)), ValueError, "x: expected a 4-D array"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 2, 3, 3)), ValueError, "w: expected shape (K, C/groups, R, S)"),
    (lambda ac: ac.conv2d(A4(1, 6, 5, 5), A4(4, 2, 3, 3), groups=4), ValueError, "input channels C=6 are not divisible by groups=4"),
    (lambda ac: ac.conv2d(A4(1, 4, 5, 5), A4(6, 1, 3, 3), groups=4), ValueError, "output channels K=6 are not divisible"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), groups=0), ValueError, "groups: expected an integer >= 1"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), pads=(-1, 0, 0, 0)), ValueError, "pads: expected values >= 0"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), pads=(1, 1)), ValueError, "pads: expected (top, left, bottom, right)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), strides=0), ValueError, "strides: expected values >= 1"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), dilations=(1, 0)), ValueError, "dilations: expected values >= 1"),
    (lambda ac: ac.conv2d(A4(1, 3, 2, 2), A4(2, 3, 3, 3)), ValueError, "output size would be 0x0"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), A4(3)), ValueError, "bias: expected shape (2,)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), scale=A4(5)), ValueError, "scale: expected shape (2,)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), residual=A4(1, 2, 5, 5)), ValueError, "residual: expected shape (1, 2, 3, 3)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), activation="gelu_erf"), ValueError, "activation: expected None, 'relu', 'relu6' or ('clip', lo, hi)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), activation=("clip", 2, 1)), ValueError, "needs numbers with lo <= hi"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="fft"), ValueError, "algorithm: expected one of direct"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="depthwise"), ValueError, "none of the requested algorithms applies"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="direct 99x1"), ValueError, "'99x1' is not one of this build's direct tiles"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="direct cblocks=0"), ValueError, "expected cblocks=N with N >= 1"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="direct groups-inner cblocks=2"), ValueError, "reduction blocks (cblocks) run groups-outer only"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm="winograd-f4 6x2"), ValueError, "'direct' may name a variant"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), algorithm=7), ValueError, "algorithm: expected None, a name or a list"),
    (lambda ac: ac.prepare_conv2d(A4(2, 3, 3, 3), input_shape=(3, 5)), ValueError, "input_shape: expected (C, H, W)"),
    (lambda ac: ac.prepare_conv2d(A4(2, 3, 3, 3), input_shape=(4, 5, 5)), ValueError, "w: expected shape (K, C/groups, R, S)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), out=A4(1, 2, 5, 5)), ValueError, "out: expected shape (1, 2, 3, 3)"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), threads=0), ValueError, "threads:"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_conv_errors(ac, call, exc, fragment):
    with pytest.raises(exc) as info:
        call(ac)
    assert fragment in str(info.value)


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def conv_layers(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 3))
    K = groups * draw(st.integers(1, 3))
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    H = draw(st.integers(max(1, dh * (R - 1) + 1 - pads[0] - pads[2]), 12))
    W = draw(st.integers(max(1, dw * (S - 1) + 1 - pads[1] - pads[3]), 12))
    return (draw(st.integers(1, 2)), C, H, W, K, R, S, (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
            pads, (dh, dw), groups)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=conv_layers(), act=st.sampled_from([None, "relu", "relu6"]), seed=st.integers(0, 2**31 - 1))
def test_conv_fuzz(ac, layer, act, seed):
    N, C, H, W, K, R, S, strides, pads, dil, groups = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    got = ac.conv2d(x, w, b, strides=strides, pads=pads, dilations=dil, groups=groups, activation=act)
    want = conv_ref(x, w, b, strides, pads, dil, groups, activation=act)
    assert_close(got, want, conv_tol(x, w, want, groups), f"fuzz {layer}")
