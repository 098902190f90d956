"""autoconfig::Model, the .acmodel executor: every op of FORMAT.md's vocabulary
against float64 numpy references, a small CNN end to end, the Python runner's
API and errors, and malformed files (each a clear error, never a crash).

Files are written by tests/runtime/acmodel_writer.py (from FORMAT.md, independent of
autoconfig.graph's writer)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import autoconfig
from acmodel_writer import GraphBuilder, pack
from reference import softmax_ref

RNG = np.random.default_rng(1234)


def rand(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


def rel_err(y, ref):
    ref = np.asarray(ref, dtype=np.float64)
    scale = max(np.max(np.abs(ref)), 1e-30) if ref.size else 1.0
    return float(np.max(np.abs(np.asarray(y, np.float64) - ref)) / scale) if ref.size else 0.0


def single(op, inputs, out_shape, consts=(), n_out=1, **attrs):
    """One node: inputs (name -> array) are graph inputs, or constants when named
    in consts; returns (model, ordered input arrays)."""
    g = GraphBuilder(op)
    names, feed = [], []
    for k, v in inputs.items():
        if v is None:
            names.append("")
        elif k in consts:
            names.append(g.const(k, v))
        else:
            names.append(g.input(k, np.shape(v)))
            feed.append(np.asarray(v, np.float32))
    shapes = out_shape if n_out > 1 else [out_shape]
    outs = [g.output(f"y{i}", s) for i, s in enumerate(shapes)]
    g.node(op, names, outs, **attrs)
    return autoconfig.load(g.to_bytes()), feed


def run1(op, inputs, out_shape, consts=(), **attrs):
    m, feed = single(op, inputs, out_shape, consts, **attrs)
    return m(*feed)


# ---------------------------------------------------------------- references (float64)

def conv_ref(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), groups=1):
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    N, _, H, W = x.shape
    K, Cg, R, S = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    Ho = (H + pads[0] + pads[2] - (R - 1) * dil[0] - 1) // strides[0] + 1
    Wo = (W + pads[1] + pads[3] - (S - 1) * dil[1] - 1) // strides[1] + 1
    y = np.zeros((N, K, Ho, Wo))
    Kg = K // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        for r in range(R):
            for s in range(S):
                win = xs[:, :, r * dil[0]: r * dil[0] + (Ho - 1) * strides[0] + 1: strides[0],
                         s * dil[1]: s * dil[1] + (Wo - 1) * strides[1] + 1: strides[1]]
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", win, w[g * Kg:(g + 1) * Kg, :, r, s])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def pool_ref(x, kind, k, s, p, d, ceil_mode, include_pad, out_hw):
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    y = np.zeros((N, C, Ho, Wo))
    x = x.astype(np.float64)
    for oh in range(Ho):
        for ow in range(Wo):
            hs, ws = oh * s[0] - p[0], ow * s[1] - p[1]
            rows = [hs + i * d[0] for i in range(k[0])]
            cols = [ws + j * d[1] for j in range(k[1])]
            vr = [r for r in rows if 0 <= r < H]
            vc = [c for c in cols if 0 <= c < W]
            win = x[:, :, vr][:, :, :, vc]
            if kind == "max":
                y[:, :, oh, ow] = np.max(win, axis=(2, 3))   # numpy: NaN propagates
            else:
                if include_pad:
                    n = sum(1 for r in rows if -p[0] <= r < H + p[2]) * sum(1 for c in cols if -p[1] <= c < W + p[3])
                else:
                    n = len(vr) * len(vc)
                y[:, :, oh, ow] = np.sum(win, axis=(2, 3)) / n
    return y


def pool_out(n, k, s, pb, pe, d, ceil_mode):
    span = n + pb + pe - ((k - 1) * d + 1)
    if not ceil_mode:
        return span // s + 1
    o = -(-span // s) + 1
    if (o - 1) * s >= n + pb:     # the last window would start in the end padding
        o -= 1
    return o


# ---------------------------------------------------------------- unary

UNARY = {
    "relu": (lambda x: np.maximum(x, 0), {}),
    "leaky_relu": (lambda x: np.where(x < 0, 0.07 * x, x), {"alpha": 0.07}),
    "clip": (lambda x: np.clip(x, -0.3, 0.45), {"min": -0.3, "max": 0.45}),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), {}),
    "silu": (lambda x: x * (1 / (1 + np.exp(-x))), {}),
    "hard_sigmoid": (lambda x: np.clip(0.3 * x + 0.4, 0, 1), {"alpha": 0.3, "beta": 0.4}),
    "hard_swish": (lambda x: x * np.clip(x / 6 + 0.5, 0, 1), {}),
    "tanh": (np.tanh, {}),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 7), (1, 13, 1, 31), (3, 1037)])
def test_unary(op, shape):
    ref, attrs = UNARY[op]
    x = rand(*shape, lo=-8, hi=8)
    y = run1(op, {"x": x}, shape, **attrs)
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=2e-6, atol=2e-7)


def test_unary_extremes_and_nan():
    x = np.array([np.nan, -np.inf, np.inf, -100, -88.5, -87.1, 0, 1e-8, 87.9, 88.5, 100, -0.0], np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for op, (ref, attrs) in UNARY.items():
            y = run1(op, {"x": x}, x.shape, **attrs)
            want = ref(x.astype(np.float64))
            assert np.isnan(y[0]), f"{op}(NaN) must be NaN"
            np.testing.assert_allclose(y[1:], want[1:], rtol=2e-6, atol=1e-30, err_msg=op)


def test_clip_unbounded_with_null():
    x = rand(4, 9, lo=-5, hi=5)
    np.testing.assert_array_equal(run1("clip", {"x": x}, x.shape, min=None, max=1.5), np.minimum(x, 1.5))
    np.testing.assert_array_equal(run1("clip", {"x": x}, x.shape, min=-0.5), np.maximum(x, -0.5))


# ---------------------------------------------------------------- binary

BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
SHAPES = [
    ((2, 3, 5, 7), (2, 3, 5, 7)),     # same shape
    ((2, 13, 5, 7), (1, 13, 1, 1)),   # per channel (SE block)
    ((1, 13, 5, 7), (13, 1, 1)),      # per channel, lower rank
    ((2, 3, 5, 7), ()),               # scalar
    ((2, 3, 5, 7), (1,)),
    ((3, 5), (2, 3, 5)),              # a broadcasts
    ((3, 1), (1, 4)),                 # both broadcast
    ((1, 1, 1), (1, 1, 1)),
    ((2, 1, 7), (2, 5, 1)),
    ((6, 1, 1, 11), (1, 3, 2, 1)),
    ((1,), (1031,)),
]


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("const_b", [False, True])
def test_binary_broadcast(op, sa, sb, const_b):
    a = rand(*sa)
    b = rand(*sb, lo=0.5, hi=2.0) if op == "div" else rand(*sb)
    ref = BINARY[op](a.astype(np.float64), b.astype(np.float64))
    y = run1(op, {"a": a, "b": b}, ref.shape, consts=("b",) if const_b else ())
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)


def test_binary_refuses_a_wrong_output_shape():
    with pytest.raises(ValueError, match="broadcast"):
        single("add", {"a": rand(2, 3), "b": rand(3)}, (2, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        single("add", {"a": rand(2, 3), "b": rand(2)}, (2, 3))


def test_channel_affine():
    x = rand(2, 7, 3, 5)
    s, t = rand(7), rand(7)
    ref = x.astype(np.float64) * s[None, :, None, None] + t[None, :, None, None]
    for consts in ((), ("s", "t")):
        np.testing.assert_allclose(run1("channel_affine", {"x": x, "s": s, "t": t}, x.shape, consts=consts), ref,
                                   rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- data movement

@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_concat_split(axis):
    parts = []
    for n in (1, 3, 2):
        shape = [2, 5, 3, 7]
        shape[axis] = n
        parts.append(rand(*shape))
    ref = np.concatenate(parts, axis)
    y = run1("concat", {f"x{i}": p for i, p in enumerate(parts)}, ref.shape, axis=axis)
    np.testing.assert_array_equal(y, ref)
    m, feed = single("split", {"x": ref}, [p.shape for p in parts], n_out=3, axis=axis)
    for got, want in zip(m(*feed), parts):
        np.testing.assert_array_equal(got, want)


def test_reshape_and_transpose():
    x = rand(2, 6, 5, 7)
    np.testing.assert_array_equal(run1("reshape", {"x": x}, (2, 210)), x.reshape(2, 210))
    for perm in ([0, 1, 2, 3], [0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 3, 2], [0, 3, 1, 2]):
        want = x.transpose(perm)
        np.testing.assert_array_equal(run1("transpose", {"x": x}, want.shape, perm=perm), want)
    np.testing.assert_array_equal(run1("transpose", {"x": x}, x.T.shape), x.T)   # default: reversed axes
    # channel shuffle: reshape (N, g, C/g, H, W) -> transpose (0, 2, 1, 3, 4) -> reshape
    y = x.reshape(2, 2, 3, 5, 7).transpose(0, 2, 1, 3, 4)
    np.testing.assert_array_equal(run1("transpose", {"x": x.reshape(2, 2, 3, 5, 7)}, y.shape, perm=[0, 2, 1, 3, 4]), y)


@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 3, 1], [0, 1, 0, 0, 1, 0, 2, 2], [0, 0, -1, 1, 0, 0, 2, -3],
                                  [1, 0, 0, 0, 0, 2, 0, 0]])
def test_pad(pads):
    x = rand(1, 3, 5, 7)
    R = 4
    xp = np.pad(x, [(max(pads[d], 0), max(pads[d + R], 0)) for d in range(R)], constant_values=-2.5)
    sl = tuple(slice(-min(pads[d], 0), xp.shape[d] + min(pads[d + R], 0)) for d in range(R))
    want = xp[sl]
    np.testing.assert_array_equal(run1("pad", {"x": x}, want.shape, pads=pads, value=-2.5), want)


# ---------------------------------------------------------------- pools

POOLS = [
    # kernel, strides, pads, dilations, ceil_mode, count_include_pad
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0, 0),
    ((3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1, 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0, 0),
    ((3, 2), (1, 2), (1, 0, 2, 1), (1, 1), 0, 1),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, 1),
    ((3, 3), (3, 3), (1, 1, 0, 0), (1, 1), 1, 0),
    ((2, 3), (1, 1), (0, 1, 0, 1), (2, 2), 0, 0),
    ((1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 0, 0),
    ((5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 0, 1),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k,s,p,d,ceil_mode,include_pad", POOLS)
@pytest.mark.parametrize("hw", [(7, 7), (1, 5), (13, 11), (4, 600)])   # 600: more interior columns than one chunk (loops_impl.h)
def test_pool(kind, k, s, p, d, ceil_mode, include_pad, hw):
    H, W = hw
    if H + p[0] + p[2] < (k[0] - 1) * d[0] + 1 or W + p[1] + p[3] < (k[1] - 1) * d[1] + 1:
        pytest.skip("window larger than the padded input")
    if kind == "max" and (p[0] >= k[0] or p[1] >= k[1]):
        pytest.skip("a window entirely in the padding")
    x = rand(2, 3, H, W)
    out_hw = (pool_out(H, k[0], s[0], p[0], p[2], d[0], ceil_mode), pool_out(W, k[1], s[1], p[1], p[3], d[1], ceil_mode))
    ref = pool_ref(x, kind, k, s, p, d, ceil_mode, include_pad, out_hw)
    attrs = dict(kernel=list(k), strides=list(s), pads=list(p), dilations=list(d), ceil_mode=ceil_mode)
    if kind == "avg":
        attrs["count_include_pad"] = include_pad
    y = run1(f"{kind}_pool", {"x": x}, ref.shape, **attrs)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)


def test_max_pool_propagates_nan():
    x = rand(1, 2, 6, 6)
    x[0, 0, 2, 3] = np.nan
    y = run1("max_pool", {"x": x}, (1, 2, 3, 3), kernel=[2, 2], strides=[2, 2])
    assert np.isnan(y[0, 0, 1, 1]) and np.isnan(y).sum() == 1
    g = run1("global_max_pool", {"x": x}, (1, 2, 1, 1))
    assert np.isnan(g[0, 0, 0, 0]) and not np.isnan(g[0, 1, 0, 0])


def test_pool_refuses_a_wrong_output_shape():
    with pytest.raises(ValueError, match="output height"):
        single("max_pool", {"x": rand(1, 1, 7, 7)}, (1, 1, 4, 3), kernel=[3, 3], strides=[2, 2])


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 5, 7, 3), (1, 17, 13, 1), (1, 3, 37)])
def test_global_pools(shape):
    x = rand(*shape)
    out = shape[:2] + (1,) * (len(shape) - 2)
    axes = tuple(range(2, len(shape)))
    np.testing.assert_allclose(run1("global_avg_pool", {"x": x}, out), x.astype(np.float64).mean(axis=axes, keepdims=True),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(run1("global_max_pool", {"x": x}, out), x.max(axis=axes, keepdims=True))


# ---------------------------------------------------------------- softmax, lrn, reduce_mean

@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis,flatten", [((2, 1000), 1, False), ((2, 1000), -1, False), ((1, 1), 1, False),
                                                ((2, 3, 5, 7), 1, False), ((2, 3, 5, 7), 2, False),
                                                ((2, 3, 5, 7), 1, True), ((2, 3, 5, 7), 0, True),
                                                ((3, 7, 11), 2, True)])
def test_softmax(op, shape, axis, flatten):
    x = rand(*shape, lo=-10, hi=10)
    y = run1(op, {"x": x}, shape, axis=axis, flatten=flatten)
    # log_softmax: x - max - log(sum) cancels terms of size ~10 (float32 ulp ~1e-6)
    atol = 4e-6 if op == "log_softmax" else 1e-7
    np.testing.assert_allclose(y, softmax_ref(x, axis % len(shape), flatten, op == "log_softmax"), rtol=3e-6, atol=atol)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 4])
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_lrn(size, beta):
    x = rand(2, 7, 3, 5, lo=-3, hi=3)
    alpha, bias = 1e-2, 1.5
    xd = x.astype(np.float64)
    sq = np.zeros_like(xd)
    C = x.shape[1]
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + (size - 1) - (size - 1) // 2)
        sq[:, c] = (xd[:, lo:hi + 1] ** 2).sum(axis=1)
    ref = xd / (bias + alpha / size * sq) ** beta
    y = run1("lrn", {"x": x}, x.shape, size=size, alpha=alpha, beta=beta, bias=bias)
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("axes,keep", [([2, 3], 1), ([2, 3], 0), ([-1], 1), ([1], 0), ([0, 2], 1), ([], 0), ([1, 3], 1)])
def test_reduce_mean(axes, keep):
    x = rand(2, 5, 3, 7)
    ax = tuple(axes) if axes else None
    ref = x.astype(np.float64).mean(axis=ax, keepdims=bool(keep))
    y = run1("reduce_mean", {"x": x}, np.shape(ref), axes=axes, keepdims=keep)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- conv, gemm, matmul

CONVS = [
    # N, C, H, W, K, R, S, strides, pads, dilations, groups
    (1, 3, 11, 13, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 5, 9, 7, 7, 3, 3, (2, 2), (0, 1, 2, 1), (1, 1), 1),
    (1, 16, 8, 8, 32, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 8, 10, 10, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 8),     # depthwise
    (1, 6, 9, 9, 4, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 2),       # grouped, dilated
    (1, 3, 17, 17, 5, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
]


def conv_model(x, w, b, strides, pads, dil, groups, residual=None, **attrs):
    g = GraphBuilder("conv")
    xi = g.input("x", x.shape)
    names = [xi, g.const("w", w), g.const("b", b) if b is not None else ""]
    feed = [x]
    if residual is not None:
        names.append(g.input("res", residual.shape))
        feed.append(residual)
    ref = conv_ref(x, w, b, strides, pads, dil, groups)
    y = g.output("y", ref.shape)
    g.node("conv", names, [y], strides=list(strides), pads=list(pads), dilations=list(dil), groups=groups, **attrs)
    return autoconfig.load(g.to_bytes()), feed, ref


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_conv(case, act):
    N, C, H, W, K, R, S, st, p, d, G = case
    x, w, b = rand(N, C, H, W), rand(K, C // G, R, S), rand(K)
    res = rand(N, K, *conv_ref(x, w, None, st, p, d, G).shape[2:]) if act != "none" else None
    m, feed, ref = conv_model(x, w, b, st, p, d, G, residual=res, activation=act)
    if res is not None:
        ref = ref + res
    ref = {"none": ref, "relu": np.maximum(ref, 0), "relu6": np.clip(ref, 0, 6)}[act]
    assert rel_err(m(*feed), ref) <= 1e-4


def test_conv_clip_and_no_bias():
    x, w = rand(1, 4, 6, 6), rand(3, 4, 3, 3)
    m, feed, ref = conv_model(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, activation="relu", clip=[None, 0.5])
    assert rel_err(m(*feed), np.clip(np.maximum(ref, 0), None, 0.5)) <= 1e-4


@pytest.mark.parametrize("algorithm", ["direct", "im2col-gemm", "winograd-f2", "winograd-f4", "gemm-1x1", "depthwise"])
def test_conv_algorithm_attr(algorithm):
    if algorithm == "gemm-1x1":
        case = (1, 16, 7, 9, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    elif algorithm == "depthwise":
        case = (1, 16, 9, 9, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 16)
    else:
        case = (1, 16, 12, 12, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    N, C, H, W, K, R, S, st, p, d, G = case
    x, w, b = rand(N, C, H, W), rand(K, C // G, R, S), rand(K)
    m, feed, ref = conv_model(x, w, b, st, p, d, G, algorithm=algorithm)
    assert m.nodes[0]["algorithm"] == algorithm
    assert rel_err(m(*feed), ref) <= (1e-3 if algorithm == "winograd-f4" else 1e-4)


@pytest.mark.parametrize("case", [
    # N, C, H, W, K, R, S, strides, pads, dilations, groups: channels per group 16 / 32 (whole blocks
    # of 8 and 16 lanes), then 3 per group (nchw only), a strided and a dilated one, two images
    (1, 32, 11, 9, 32, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 2),
    (2, 64, 7, 8, 128, 3, 3, (2, 2), (1, 0, 1, 2), (1, 1), 4),
    (1, 48, 9, 9, 48, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 3),
    (1, 6, 9, 9, 9, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 3),
    # groups narrower than a block: 8 and 4 channels per group run B / (C/G) at a time (block-diagonal
    # weights) where B is a multiple of that; 3 groups of 8 cannot pair up under 16 lanes
    (1, 32, 9, 10, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4),
    (1, 32, 8, 8, 32, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 8),
    (2, 24, 7, 7, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 3),
])
@pytest.mark.parametrize("blocked", [False, True])
def test_grouped_conv_as_direct_per_group(case, blocked):
    N, C, H, W, K, R, S, st, p, d, G = case
    B = autoconfig._ext.conv2d_block()
    Cg, Kg = C // G, K // G
    f = B // Cg if Cg % B and B % Cg == 0 and G % (B // Cg) == 0 else 1   # groups per conv (ops_linear.cpp)
    if blocked and (N != 1 or (Cg * f) % B or (Kg * f) % B):
        pytest.skip("blocked: one image, whole channel blocks per conv")
    x, w, b = rand(N, C, H, W), rand(K, C // G, R, S), rand(K)
    ref = conv_ref(x, w, b, st, p, d, G)
    res = rand(*ref.shape)
    lay = f"nchw{B}c" if blocked else "nchw"
    g = GraphBuilder("grouped")
    xi = g.input("x", x.shape)
    ri = g.input("res", res.shape)
    xb = g.inter("xb", x.shape, layout=lay)
    rb = g.inter("rb", res.shape, layout=lay)
    yb = g.inter("yb", ref.shape, layout=lay)
    y = g.output("y", ref.shape)
    g.node("to_layout", [xi], [xb], layout=lay)
    g.node("to_layout", [ri], [rb], layout=lay)
    g.node("conv", [xb, g.const("w", w), g.const("b", b), rb], [yb], strides=list(st), pads=list(p),
           dilations=list(d), groups=G, activation="relu", algorithm="direct")
    g.node("to_layout", [yb], [y], layout="nchw")
    m = autoconfig.load(g.to_bytes())
    assert next(n for n in m.nodes if n["op"] == "conv")["algorithm"] == "direct"
    assert rel_err(m(x, res), np.maximum(ref + res, 0)) <= 1e-4


def test_grouped_direct_refuses_groups_of_partial_blocks():
    B = autoconfig._ext.conv2d_block()
    C = 2 * (B + 1) if B > 1 else 2
    g = GraphBuilder("grouped_partial")
    xi = g.input("x", (1, C, 5, 5))
    xb = g.inter("xb", (1, C, 5, 5), layout=f"nchw{B}c")
    yb = g.inter("yb", (1, C, 5, 5), layout=f"nchw{B}c")
    y = g.output("y", (1, C, 5, 5))
    g.node("to_layout", [xi], [xb], layout=f"nchw{B}c")
    g.node("conv", [xb, g.const("w", rand(C, C // 2, 3, 3))], [yb], pads=[1, 1, 1, 1], groups=2, algorithm="direct")
    g.node("to_layout", [yb], [y], layout="nchw")
    with pytest.raises(ValueError, match="whole channel blocks per group"):
        autoconfig.load(g.to_bytes())


def test_conv_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm 'fft'"):
        conv_model(rand(1, 2, 5, 5), rand(2, 2, 3, 3), None, (1, 1), (0,) * 4, (1, 1), 1, algorithm="fft")


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (13,), (1, 13), (7, 1), (7, 13), (), (1, 1)])
@pytest.mark.parametrize("const_c", [True, False])
def test_gemm(ta, tb, c_shape, const_c):
    M, K, N = 7, 11, 13
    a = rand(K, M) if ta else rand(M, K)
    b = rand(N, K) if tb else rand(K, N)
    alpha, beta = 0.75, 1.25
    ref = alpha * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64))
    inputs = {"a": a, "b": b}
    if c_shape is not None:
        c = rand(*c_shape)
        inputs["c"] = c
        ref = ref + beta * c.astype(np.float64)
    y = run1("gemm", inputs, (M, N), consts=("b",) + (("c",) if const_c else ()), alpha=alpha, beta=beta,
             trans_a=ta, trans_b=tb)
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.parametrize("act", ["relu", "relu6", "gelu_tanh", "gelu_erf"])
def test_gemm_activation(act):
    import math
    a, b, c = rand(3, 17, lo=-3, hi=3), rand(17, 5, lo=-3, hi=3), rand(5)
    z = a.astype(np.float64) @ b + c
    erf = np.vectorize(math.erf)
    ref = {"relu": np.maximum(z, 0), "relu6": np.clip(z, 0, 6),
           "gelu_tanh": 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3))),
           "gelu_erf": 0.5 * z * (1 + erf(z / np.sqrt(2)))}[act]
    assert rel_err(run1("gemm", {"a": a, "b": b, "c": c}, (3, 5), consts=("b", "c"), activation=act), ref) <= 1e-4


@pytest.mark.parametrize("ashape", [(5,), (1, 5), (3, 5), (2, 3, 5), (2, 1, 4, 5)])
def test_matmul(ashape):
    a, b = rand(*ashape), rand(5, 7)
    ref = a.astype(np.float64) @ b
    for consts in (("b",), ()):
        assert rel_err(run1("matmul", {"a": a, "b": b}, ref.shape, consts=consts), ref) <= 1e-5


@pytest.mark.parametrize("M,K,N", [(2, 1, 3), (67, 131, 293), (301, 520, 47), (4, 700, 1031)])
@pytest.mark.parametrize("threads", [1, 2])
def test_constant_weights_packed_at_load(M, K, N, threads):
    """Constant GEMM/MatMul weights are packed once when the model loads
    (PreparedGemmB): every call reads that copy, through every epilogue the
    node fuses (bias + gelu, bias + residual), with B plain and transposed;
    a second input gives its own product (nothing of the first call kept)."""
    import math
    a, a2, w, bias, res = rand(M, K), rand(M, K), rand(K, N), rand(N), rand(M, N)
    erf = np.vectorize(math.erf)
    m, _ = single("matmul", {"a": a, "b": w, "bias": bias}, (M, N), consts=("b", "bias"), activation="gelu_erf")
    for x in (a, a2):
        z = x.astype(np.float64) @ w + bias
        assert rel_err(m(x, threads=threads), 0.5 * z * (1 + erf(z / np.sqrt(2)))) <= 1e-5
    m, _ = single("matmul", {"a": a, "b": w, "bias": bias, "residual": res}, (M, N), consts=("b", "bias"))
    assert rel_err(m(a, res, threads=threads), a.astype(np.float64) @ w + bias + res) <= 1e-5
    wt = np.ascontiguousarray(w.T)
    y = run1("gemm", {"a": a, "b": wt, "c": bias}, (M, N), consts=("b", "c"), trans_b=1, alpha=0.5)
    assert rel_err(y, 0.5 * (a.astype(np.float64) @ w) + bias) <= 1e-5


@pytest.mark.parametrize("ashape", [(5,), (3, 5), (2, 3, 5)])
def test_matmul_by_a_vector(ashape):
    a, b = rand(*ashape), rand(5)
    ref = a.astype(np.float64) @ b
    for consts in (("b",), ()):
        assert rel_err(run1("matmul", {"a": a, "b": b}, ref.shape, consts=consts), ref) <= 1e-5


# ---------------------------------------------------------------- layouts and the arena

def test_blocked_layout_through_conv_pool_and_back():
    B = autoconfig.block_size() if hasattr(autoconfig, "block_size") else autoconfig._ext.conv2d_block()
    lay = f"nchw{B}c"
    x, w1, w2 = rand(1, 5, 9, 9), rand(2 * B, 5, 3, 3), rand(B + 3, 2 * B, 1, 1)
    g = GraphBuilder("blocked")
    xi = g.input("x", x.shape)
    xb = g.inter("xb", x.shape, layout=lay)
    c1 = g.inter("c1", (1, 2 * B, 9, 9), layout=lay)
    r1 = g.inter("r1", (1, 2 * B, 9, 9), layout=lay)
    p1 = g.inter("p1", (1, 2 * B, 5, 5), layout=lay)
    c2 = g.inter("c2", (1, B + 3, 5, 5), layout=lay)
    gp = g.inter("gp", (1, B + 3, 1, 1))
    y = g.output("y", (1, B + 3, 5, 5))
    y2 = g.output("y2", (1, B + 3, 1, 1))
    g.node("to_layout", [xi], [xb], layout=lay)
    g.node("conv", [xb, g.const("w1", w1), "", ""], [c1], pads=[1, 1, 1, 1])
    g.node("relu", [c1], [r1])
    g.node("max_pool", [r1], [p1], kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    g.node("conv", [p1, g.const("w2", w2)], [c2])
    g.node("to_layout", [c2], [y], layout="nchw")
    g.node("global_avg_pool", [c2], [gp])
    g.node("relu", [gp], [y2])
    m = autoconfig.load(g.to_bytes())
    out, out2 = m(x)
    r = np.maximum(conv_ref(x, w1, pads=(1, 1, 1, 1)), 0)
    r = pool_ref(r, "max", (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0, 0, (5, 5))
    r = conv_ref(r.astype(np.float32), w2)
    assert rel_err(out, r) <= 1e-4
    assert rel_err(out2, np.maximum(r.mean(axis=(2, 3), keepdims=True), 0)) <= 1e-4


def test_in_place_ops_and_arena_reuse():
    x = rand(1, 4, 5, 5)
    g = GraphBuilder("inplace")
    xi = g.input("x", x.shape)
    a = g.inter("a", x.shape, arena=0)
    b = g.inter("b", x.shape, arena=0)        # relu in place
    c = g.inter("c", (1, 100), arena=0)       # reshape in place
    d = g.inter("d", (1, 100), arena=128)
    y = g.output("y", (1, 100))
    g.node("sigmoid", [xi], [a])
    g.node("relu", [a], [b])
    g.node("reshape", [b], [c])
    g.node("mul", [c, c], [d])
    g.node("softmax", [d], [y], axis=1)
    m = autoconfig.load(g.to_bytes())
    s = 1 / (1 + np.exp(-x.astype(np.float64).reshape(1, 100)))
    np.testing.assert_allclose(m(x), softmax_ref(s * s, 1, False, False), rtol=3e-6)


def test_arena_overlap_while_alive_is_refused():
    g = GraphBuilder("overlap")
    xi = g.input("x", (1, 2, 4, 4))
    a = g.inter("a", (1, 2, 4, 4), arena=0)
    b = g.inter("b", (1, 2, 4, 4), arena=8)   # overlaps a while a is still read below
    y = g.output("y", (1, 2, 4, 4))
    g.node("relu", [xi], [a])
    g.node("sigmoid", [a], [b])
    g.node("add", [a, b], [y])
    with pytest.raises(ValueError, match="share arena space"):
        autoconfig.load(g.to_bytes())
    g2 = GraphBuilder("conv_in_place")
    xi = g2.input("x", (1, 2, 4, 4))
    a = g2.inter("a", (1, 2, 4, 4), arena=0)
    b = g2.inter("b", (1, 2, 4, 4), arena=0)
    y = g2.output("y", (1, 2, 4, 4))
    g2.node("relu", [xi], [a])
    g2.node("conv", [a, g2.const("w", rand(2, 2, 1, 1))], [b])   # conv cannot run in place
    g2.node("relu", [b], [y])
    with pytest.raises(ValueError, match="share arena space"):
        autoconfig.load(g2.to_bytes())


def test_concat_in_place():
    x = rand(1, 3, 4, 4)
    g = GraphBuilder("concat_in_place")
    xi = g.input("x", x.shape)
    a = g.inter("a", (1, 3, 4, 4), arena=0)       # slice 0 of c
    b = g.inter("b", (1, 3, 4, 4), arena=48)      # slice 1 of c
    c = g.inter("c", (1, 6, 4, 4), arena=0)
    y = g.output("y", (1, 6, 4, 4))
    g.node("relu", [xi], [a])
    g.node("sigmoid", [xi], [b])
    g.node("concat", [a, b], [c], axis=1)
    g.node("tanh", [c], [y])
    xd = x.astype(np.float64)
    ref = np.tanh(np.concatenate([np.maximum(xd, 0), 1 / (1 + np.exp(-xd))], axis=1))
    np.testing.assert_allclose(autoconfig.load(g.to_bytes())(x), ref, rtol=3e-6)


# ---------------------------------------------------------------- a small CNN end to end

def small_cnn(tmp_path):
    x = rand(2, 3, 16, 16)
    w1, b1 = rand(8, 3, 3, 3) * 0.5, rand(8)
    w2, b2 = rand(12, 8, 3, 3) * 0.3, rand(12)
    fc, fcb = rand(10, 12 * 4 * 4) * 0.1, rand(10)
    g = GraphBuilder("small_cnn")
    xi = g.input("data", x.shape)
    c1 = g.inter("c1", (2, 8, 16, 16))
    p1 = g.inter("p1", (2, 8, 8, 8))
    c2 = g.inter("c2", (2, 12, 8, 8))
    p2 = g.inter("p2", (2, 12, 4, 4))
    f = g.inter("flat", (2, 192))
    z = g.inter("logits", (2, 10))
    y = g.output("prob", (2, 10))
    g.node("conv", [xi, g.const("w1", w1), g.const("b1", b1), ""], [c1], name="conv1", threads=1,
           pads=[1, 1, 1, 1], activation="relu")
    g.node("max_pool", [c1], [p1], name="pool1", kernel=[2, 2], strides=[2, 2])
    g.node("conv", [p1, g.const("w2", w2), g.const("b2", b2)], [c2], name="conv2", threads=2,
           pads=[1, 1, 1, 1], activation="relu")
    g.node("avg_pool", [c2], [p2], name="pool2", kernel=[2, 2], strides=[2, 2])
    g.node("reshape", [p2], [f], name="flatten")
    g.node("gemm", [f, g.const("fc", fc), g.const("fcb", fcb)], [z], name="fc", trans_b=1)
    g.node("softmax", [z], [y], name="softmax", axis=1)
    path = g.save(tmp_path / "small.acmodel")
    r = np.maximum(conv_ref(x, w1, b1, pads=(1, 1, 1, 1)), 0)
    r = pool_ref(r, "max", (2, 2), (2, 2), (0,) * 4, (1, 1), 0, 0, (8, 8))
    r = np.maximum(conv_ref(r.astype(np.float32), w2, b2, pads=(1, 1, 1, 1)), 0)
    r = pool_ref(r, "avg", (2, 2), (2, 2), (0,) * 4, (1, 1), 0, 0, (4, 4))
    r = r.reshape(2, -1) @ fc.T.astype(np.float64) + fcb
    return path, x, softmax_ref(r, 1, False, False)


def test_small_cnn_end_to_end(tmp_path):
    path, x, ref = small_cnn(tmp_path)
    m = autoconfig.load(path)
    assert m.input_names == ["data"] and m.output_names == ["prob"]
    assert m.input_shapes == [(2, 3, 16, 16)] and m.output_shapes == [(2, 10)]
    y = m(x)
    assert rel_err(y, ref) <= 1e-4
    for t in (1, 2, 3):
        np.testing.assert_array_equal(m(x, threads=t), m(x, threads=t))
        assert rel_err(m(x, threads=t), ref) <= 1e-4
    (y2,) = m.run(None, {"data": x})
    np.testing.assert_array_equal(y, y2)
    (y3,) = m.run(["prob"], {"data": x})
    np.testing.assert_array_equal(y, y3)
    prof = m.profile(x)
    assert [p["name"] for p in prof] == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc", "softmax"]
    assert all(p["ms"] >= 0 for p in prof) and prof[0]["algorithm"] and prof[0]["threads"] == 1
    assert m.header["name"] == "small_cnn"
    assert "small_cnn" in repr(m)


def test_several_outputs_return_a_tuple():
    x = rand(2, 3)
    m, feed = single("split", {"x": x}, [(2, 1), (2, 2)], n_out=2, axis=1)
    a, b = m(*feed)
    np.testing.assert_array_equal(a, x[:, :1])
    np.testing.assert_array_equal(b, x[:, 1:])
    (only,) = m.run(["y1"], {"x": x})
    np.testing.assert_array_equal(only, x[:, 1:])


# ---------------------------------------------------------------- Python API errors

def test_argument_errors(tmp_path):
    path, x, _ = small_cnn(tmp_path)
    m = autoconfig.load(path)
    with pytest.raises(ValueError, match=r"input 'data': shape \(2, 3, 16, 15\)"):
        m(x[..., :15])
    with pytest.raises(TypeError, match="input 'data': dtype float64"):
        m(x.astype(np.float64))
    with pytest.raises(TypeError, match="takes 1 input"):
        m(x, x)
    with pytest.raises(ValueError, match="missing input"):
        m.run(None, {})
    with pytest.raises(ValueError, match="unknown input"):
        m.run(None, {"data": x, "other": x})
    with pytest.raises(ValueError, match="unknown output 'nope'"):
        m.run(["nope"], {"data": x})
    with pytest.raises(ValueError, match="threads"):
        m(x, threads=-1)
    np.testing.assert_array_equal(m(np.asfortranarray(x)), m(x))      # any memory order is accepted
    with pytest.raises(FileNotFoundError):
        autoconfig.load(tmp_path / "missing.acmodel")
    with pytest.raises(ValueError):
        autoconfig.load(tmp_path)                      # a directory
    (tmp_path / "empty.acmodel").write_bytes(b"")
    with pytest.raises(ValueError, match="too short"):
        autoconfig.load(tmp_path / "empty.acmodel")


# ---------------------------------------------------------------- malformed files

def tiny_bytes():
    g = GraphBuilder("tiny")
    xi = g.input("x", (1, 2, 5, 5))
    h = g.inter("h", (1, 3, 5, 5))
    y = g.output("y", (1, 3))
    g.node("conv", [xi, g.const("w", rand(3, 2, 3, 3)), g.const("b", rand(3))], [h], pads=[1, 1, 1, 1],
           activation="relu")
    g.node("global_avg_pool", [h], [g.inter("gp", (1, 3, 1, 1))])
    g.node("reshape", ["gp"], [y])
    return g, g.to_bytes()


def load_error(data) -> str:
    with pytest.raises(ValueError) as e:
        autoconfig.load(bytes(data))
    return str(e.value)


def test_tiny_file_loads():
    _, data = tiny_bytes()
    m = autoconfig.load(data)
    assert m(rand(1, 2, 5, 5)).shape == (1, 3)


def test_truncated_at_every_offset():
    _, data = tiny_bytes()
    for n in list(range(80)) + list(range(80, len(data), 7)) + [len(data) - 1]:
        msg = load_error(data[:n])
        assert "truncated" in msg or "too short" in msg or "past the end" in msg, (n, msg)


def test_flipped_bytes_fail_the_checksum():
    _, data = tiny_bytes()
    for pos in range(32, len(data) - 8, 13):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        assert "checksum mismatch" in load_error(bad), pos
    bad = bytearray(data)
    bad[-1] ^= 1
    assert "checksum mismatch" in load_error(bad)


def test_preamble_errors():
    _, data = tiny_bytes()
    assert "bad magic" in load_error(b"NOTAMODL" + data[8:])
    assert "version 2" in load_error(data[:8] + struct.pack("<I", 2) + data[12:])
    assert "flags" in load_error(data[:12] + struct.pack("<I", 1) + data[16:])
    assert "unexpected bytes after the checksum" in load_error(data + b"\0")
    huge = data[:16] + struct.pack("<Q", 1 << 62) + data[24:]
    assert "past the end" in load_error(huge)


def header_error(mutate) -> str:
    g, _ = tiny_bytes()
    h = json.loads(json.dumps(g.header()))
    mutate(h)
    return load_error(pack(h, bytes(g.blobs)))


def test_bad_json():
    g, _ = tiny_bytes()
    for text, what in [("{", "unexpected end"), ("", "unexpected end"), ('{"a": [1, 2', "unexpected end"), ('{"format": "acmodel",}', "expected a string key"),
                       ("[1, 2]", "root is not an object"), ('{"a": 1} x', "after the JSON value"),
                       ('{"a": tru}', "invalid literal"), ('{"a": "\x01"}', "control character"),
                       ('{"a": 1, "a": 2}', "duplicate key"), ("[" * 200 + "]" * 200, "nested too deeply"),
                       ('{"a": 01}', "expected ',' or '}'"), ('{"a": "\\ud800"}', "surrogate")]:
        msg = load_error(pack(text, bytes(g.blobs)))
        assert "header JSON" in msg and what in msg, (text, msg)


@pytest.mark.parametrize("key", ["format", "version", "arena_floats", "tensors", "nodes", "inputs", "outputs"])
def test_missing_header_key(key):
    assert f"'{key}'" in header_error(lambda h: h.pop(key))


def test_header_errors():
    def tensor(h, name):
        return next(t for t in h["tensors"] if t["name"] == name)

    def node(h, i):
        return h["nodes"][i]

    cases = [
        (lambda h: tensor(h, "w").update(offset=1 << 20), "outside the"),
        (lambda h: tensor(h, "w").update(offset=4), "not 64-byte aligned"),
        (lambda h: tensor(h, "w").update(bytes=12), "float32 elements"),
        (lambda h: tensor(h, "w").pop("offset"), "'offset'"),
        (lambda h: tensor(h, "h").update(arena=10 ** 6), "runs past arena_floats"),
        (lambda h: tensor(h, "h").pop("arena"), "'arena'"),
        (lambda h: tensor(h, "h").update(shape=[1, -3, 5, 5]), "shape entries"),
        (lambda h: tensor(h, "h").update(shape="1x3"), "'shape'"),
        (lambda h: tensor(h, "h").update(kind="weird"), "kind 'weird'"),
        (lambda h: tensor(h, "h").update(layout="nhwc"), "layout 'nhwc'"),
        (lambda h: tensor(h, "x").update(layout="nchw8c"), "inputs, outputs and constants are nchw"),
        (lambda h: h["tensors"].append(dict(tensor(h, "h"))), "listed twice"),
        (lambda h: h.update(inputs=["nope"]), "not in the tensor table"),
        (lambda h: h.update(inputs=[]), "not listed in 'inputs'"),
        (lambda h: h.update(outputs=["h"]), "another kind"),
        (lambda h: h.update(arena_floats=-1), "'arena_floats'"),
        (lambda h: h.update(version=2), "version 2"),
        (lambda h: h.update(format="onnx"), "'format'"),
        (lambda h: node(h, 0).update(op="fft2d"), "unknown op 'fft2d'"),
        (lambda h: node(h, 0).pop("op"), "'op'"),
        (lambda h: node(h, 0).update(inputs=["x", "nope"]), "'nope' is not in the tensor table"),
        (lambda h: node(h, 0).update(outputs=["x"]), "kind input"),
        (lambda h: node(h, 0).update(threads=-2), "'threads'"),
        (lambda h: node(h, 0).update(attrs=[1]), "'attrs' must be an object"),
        (lambda h: node(h, 0)["attrs"].update(pads=[1, 1]), "pads 4"),
        (lambda h: node(h, 0)["attrs"].update(strides="2"), "'strides' must be an array"),
        (lambda h: node(h, 0)["attrs"].update(activation="swish"), "activation 'swish'"),
        (lambda h: node(h, 1).update(name=node(h, 0)["name"]), "appears twice"),
        (lambda h: h["nodes"].reverse(), "before any node produces it"),
        (lambda h: h["nodes"].pop(2), "'y' is not produced"),
        (lambda h: node(h, 2).update(outputs=["h"]), "already wrote"),
        (lambda h: tensor(h, "gp").update(shape=[1, 4, 1, 1]), "must be"),
        (lambda h: node(h, 1).update(inputs=[]), "takes 1 input"),
        (lambda h: node(h, 2).update(inputs=["gp", "", "x"]), "takes 1 to 2 inputs"),
    ]
    for mutate, what in cases:
        msg = header_error(mutate)
        assert what in msg, (what, msg)


def test_cycle_is_refused():
    g = GraphBuilder("cycle")
    xi = g.input("x", (1, 4))
    a, b = g.inter("a", (1, 4)), g.inter("b", (1, 4))
    y = g.output("y", (1, 4))
    g.node("add", [xi, b], [a])    # reads b, produced only by the next node
    g.node("relu", [a], [b])
    g.node("relu", [b], [y])
    assert "before any node produces it" in load_error(g.to_bytes())


def test_random_garbage_never_crashes():
    _, data = tiny_bytes()
    rng = np.random.default_rng(7)
    for i in range(200):
        bad = bytearray(data)
        n = int(rng.integers(1, 6))
        for pos in rng.integers(0, len(bad), size=n):
            bad[pos] = int(rng.integers(0, 256))
        if bytes(bad) == data:
            continue
        load_error(bad)
    # valid checksums over garbage headers
    for i in range(100):
        text = bytes(rng.integers(32, 127, size=int(rng.integers(0, 300))).astype(np.uint8))
        load_error(pack(text, b""))


@pytest.mark.parametrize("B", [4, 8, 3])
def test_blocked_ops_any_block(B):
    """The layout-agnostic ops on nchw{B}c storage with a block other than the
    conv kernels' (C not a multiple of B where the op allows it)."""
    lay, lay2 = f"nchw{B}c", f"nchw{2 * B}c"
    C = 2 * B
    x, x2 = rand(2, C, 7, 5), rand(2, C, 7, 5)
    s, t = rand(C), rand(C)
    g = GraphBuilder("blocked_any")
    xi, x2i = g.input("x", x.shape), g.input("x2", x2.shape)
    xb, x2b = g.inter("xb", x.shape, layout=lay), g.inter("x2b", x.shape, layout=lay)
    af = g.inter("af", x.shape, layout=lay)
    ad = g.inter("ad", x.shape, layout=lay)
    hs = g.inter("hs", x.shape, layout=lay)
    cc = g.inter("cc", (2, 2 * C, 7, 5), layout=lay)
    ap = g.inter("ap", (2, 2 * C, 4, 3), layout=lay)
    rb = g.inter("rb", (2, 2 * C, 4, 3), layout=lay2)
    y1 = g.output("y1", (2, 2 * C, 4, 3))
    y2 = g.output("y2", (2, 2 * C, 1, 1))
    g.node("to_layout", [xi], [xb], layout=lay)
    g.node("to_layout", [x2i], [x2b], layout=lay)
    g.node("channel_affine", [xb, g.const("s", s), g.const("t", t)], [af])
    g.node("add", [af, x2b], [ad])
    g.node("hard_swish", [ad], [hs])
    g.node("concat", [hs, x2b], [cc], axis=1)
    g.node("avg_pool", [cc], [ap], kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    g.node("to_layout", [ap], [rb], layout=lay2)
    g.node("to_layout", [rb], [y1], layout="nchw")
    g.node("global_max_pool", [cc], [y2])
    m = autoconfig.load(g.to_bytes())
    out1, out2 = m(x, x2)
    xd, x2d = x.astype(np.float64), x2.astype(np.float64)
    a = xd * s[None, :, None, None] + t[None, :, None, None] + x2d
    c = np.concatenate([a * np.clip(a / 6 + 0.5, 0, 1), x2d], axis=1)
    np.testing.assert_allclose(out1, pool_ref(c, "avg", (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0, 1, (4, 3)),
                               rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(out2, c.max(axis=(2, 3), keepdims=True), rtol=2e-6, atol=1e-6)


def test_blocked_layout_odd_channels_round_trip():
    x = rand(1, 5, 3, 4)
    g = GraphBuilder("odd")
    xi = g.input("x", x.shape)
    b = g.inter("b", x.shape, layout="nchw4c")
    r = g.inter("r", x.shape, layout="nchw4c")
    y = g.output("y", x.shape)
    gp = g.output("gp", (1, 5, 1, 1))
    g.node("to_layout", [xi], [b], layout="nchw4c")
    g.node("relu", [b], [r])
    g.node("to_layout", [r], [y], layout="nchw")
    g.node("global_avg_pool", [r], [gp])
    out, pooled = autoconfig.load(g.to_bytes())(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_allclose(pooled, np.maximum(x, 0).astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-6)
    # ops that take nchw only say so
    g2 = GraphBuilder("softmax_blocked")
    xi = g2.input("x", x.shape)
    b = g2.inter("b", x.shape, layout="nchw4c")
    y = g2.output("y", x.shape)
    g2.node("to_layout", [xi], [b], layout="nchw4c")
    g2.node("softmax", [b], [y], axis=1)
    with pytest.raises(ValueError, match="nchw4c: this op takes nchw"):
        autoconfig.load(g2.to_bytes())


def test_default_attributes():
    x = rand(3, 11, lo=-4, hi=4)
    np.testing.assert_allclose(run1("leaky_relu", {"x": x}, x.shape), np.where(x < 0, 0.01 * x, x), rtol=1e-6)
    np.testing.assert_allclose(run1("hard_sigmoid", {"x": x}, x.shape), np.clip(0.2 * x + 0.5, 0, 1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run1("softmax", {"x": x}, x.shape), softmax_ref(x, 1, False, False), rtol=3e-6)
    a, b = rand(4, 6), rand(6, 5)
    assert rel_err(run1("gemm", {"a": a, "b": b}, (4, 5)), a.astype(np.float64) @ b) <= 1e-5
    with pytest.raises(ValueError, match="attribute 'kernel' is missing"):
        single("max_pool", {"x": rand(1, 1, 4, 4)}, (1, 1, 4, 4))
    with pytest.raises(ValueError, match="attribute 'size' is missing"):
        single("lrn", {"x": rand(1, 3, 4, 4)}, (1, 3, 4, 4))


@pytest.mark.parametrize("B", [8, 16])
def test_blocked_binary_with_a_per_channel_vector(B):
    """add / mul on nchw{B}c with a per-channel operand (FORMAT.md, "Blocked
    tensors"): a (N or 1) x C x 1 x 1 activation in the layout, either
    operand order, and a constant of C floats (C a multiple of B)."""
    lay, C = f"nchw{B}c", 2 * B
    x, v, u = rand(2, C, 5, 3), rand(2, C, 1, 1), rand(1, C, 1, 1)
    k = rand(C, 1, 1)
    g = GraphBuilder("per_channel")
    xi, vi, ui = g.input("x", x.shape), g.input("v", v.shape), g.input("u", u.shape)
    xb, vb, ub = (g.inter(n + "b", t.shape, layout=lay) for n, t in (("x", x), ("v", v), ("u", u)))
    m1, m2, m3 = (g.inter(n, x.shape, layout=lay) for n in ("m1", "m2", "m3"))
    y = g.output("y", x.shape)
    for a, b in ((xi, xb), (vi, vb), (ui, ub)):
        g.node("to_layout", [a], [b], layout=lay)
    g.node("mul", [xb, vb], [m1])
    g.node("add", [ub, m1], [m2])
    g.node("mul", [m2, g.const("k", k)], [m3])
    g.node("to_layout", [m3], [y], layout="nchw")
    out = autoconfig.load(g.to_bytes())(x, v, u)
    want = (x.astype(np.float64) * v + u) * k[None]
    np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-6)
    # a constant of C floats with C not a multiple of B has no blocked storage: refused
    g2 = GraphBuilder("per_channel_odd")
    x3 = rand(1, B + 1, 2, 2)
    xi = g2.input("x", x3.shape)
    xb = g2.inter("xb", x3.shape, layout=lay)
    m = g2.inter("m", x3.shape, layout=lay)
    y = g2.output("y", x3.shape)
    g2.node("to_layout", [xi], [xb], layout=lay)
    g2.node("mul", [xb, g2.const("k", rand(B + 1, 1, 1))], [m])
    g2.node("to_layout", [m], [y], layout="nchw")
    with pytest.raises(ValueError, match="per-channel vector"):
        autoconfig.load(g2.to_bytes())
