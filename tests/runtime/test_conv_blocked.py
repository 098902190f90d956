"""Activations kept in the channel-blocked layout NCHW[B]c across conv layers:
round trips, results equal to the NCHW path (float64 reference), no layout
conversion between layers that read and write the blocked layout, the
conversions an NCHW algorithm pays in that layout, and argument errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reference import assert_close, conv_ref, conv_tol


def _blocked_ref(x: np.ndarray, B: int) -> np.ndarray:
    """NCHW -> (N, ceil(C/B), H, W, B) with zero lanes past C, written independently."""
    N, C, H, W = x.shape
    out = np.zeros((N, math.ceil(C / B) * B, H, W), np.float32)
    out[:, :C] = x
    return out.reshape(N, math.ceil(C / B), B, H, W).transpose(0, 1, 3, 4, 2).copy()


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 16, 4, 4), (1, 21, 9, 2), (0, 8, 3, 3)])
def test_round_trip(ac, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape, dtype=np.float32)
    t = ac.to_blocked(x)
    B = ac.block_size()
    assert t.block == B and t.shape == shape
    assert t.data.shape == (shape[0], math.ceil(shape[1] / B), shape[2], shape[3], B)
    np.testing.assert_array_equal(t.data, _blocked_ref(x, B))
    np.testing.assert_array_equal(t.to_nchw(), x)
    np.testing.assert_array_equal(t.numpy(threads=2), x)


def _net(rng):
    """Three layers: 3x3 pad 1 (+bn, relu), 1x1 (relu6), 3x3 stride 2 (residual-free), 1x1 with residual."""
    def w(K, C, R):
        return rng.standard_normal((K, C, R, R), dtype=np.float32) / math.sqrt(C * R * R)
    return [
        dict(w=w(24, 5, 3), b=rng.standard_normal(24, dtype=np.float32), pads=1, strides=1,
             scale=rng.uniform(0.5, 1.5, 24).astype(np.float32), shift=rng.standard_normal(24, dtype=np.float32),
             activation="relu"),
        dict(w=w(16, 24, 1), b=None, pads=0, strides=1, scale=None, shift=None, activation="relu6"),
        dict(w=w(20, 16, 3), b=rng.standard_normal(20, dtype=np.float32), pads=(0, 1, 1, 0), strides=2,
             scale=None, shift=None, activation=None),
        dict(w=w(20, 20, 1), b=None, pads=0, strides=1, scale=None, shift=None, activation="relu"),
    ]


def _prepare(ac, net, shape, algorithm, layouts):
    layers = []
    C, H, W = shape
    for spec, (inl, outl) in zip(net, layouts):
        layer = ac.prepare_conv2d(spec["w"], spec["b"], input_shape=(C, H, W), strides=spec["strides"],
                                  pads=spec["pads"], scale=spec["scale"], shift=spec["shift"],
                                  activation=spec["activation"], algorithm=algorithm, input_layout=inl,
                                  layout=outl)
        layers.append(layer)
        C, H, W = layer.output_shape
    return layers


def _reference(net, x):
    y = x
    outs = []
    for i, spec in enumerate(net):
        pads = spec["pads"] if isinstance(spec["pads"], tuple) else (spec["pads"],) * 4
        res = outs[-1] if i == 3 else None
        y = conv_ref(y, spec["w"], spec["b"], (spec["strides"],) * 2, pads, scale=spec["scale"],
                     shift=spec["shift"], activation=spec["activation"], residual=res).astype(np.float32)
        outs.append(y)
    return y


BLOCKED_CHAIN = [("nchw", "blocked"), ("blocked", "blocked"), ("blocked", "blocked"), ("blocked", "nchw")]


@pytest.mark.parametrize("algorithm", [None, "direct", ["im2col-gemm", "gemm-1x1"]], ids=["model", "direct", "gemm"])
@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_chain_matches_nchw(ac, algorithm, threads):
    rng = np.random.default_rng(2)
    net = _net(rng)
    x = rng.standard_normal((2, 5, 11, 13), dtype=np.float32)
    nchw = _prepare(ac, net, (5, 11, 13), algorithm, [("nchw", "nchw")] * 4)
    blocked = _prepare(ac, net, (5, 11, 13), algorithm, BLOCKED_CHAIN)
    y0 = nchw[0](x, threads=threads)
    y1 = nchw[1](y0, threads=threads)
    y2 = nchw[2](y1, threads=threads)
    want = nchw[3](y2, residual=y2, threads=threads)
    b0 = blocked[0](x, threads=threads)
    assert isinstance(b0, ac.BlockedTensor) and b0.shape == y0.shape
    b1 = blocked[1](b0, threads=threads)
    b2 = blocked[2](b1, threads=threads)
    got = blocked[3](b2, residual=y2, threads=threads)
    assert isinstance(got, np.ndarray)
    ref = _reference(net, x)
    tol = conv_tol(y2, net[3]["w"], ref, 1) * 8
    assert_close(got, ref, tol, f"blocked chain ({algorithm})")
    assert_close(want, ref, tol, f"nchw chain ({algorithm})")
    assert_close(b2.to_nchw(), y2, 1e-4 * (1 + np.abs(y2)), "intermediate")


def test_direct_chain_converts_nothing_between_layers(ac):
    """Direct layers reading and writing NCHW[B]c: one conversion into the
    first layer's kernel layout... and none after it."""
    rng = np.random.default_rng(3)
    net = _net(rng)
    x = rng.standard_normal((1, 5, 11, 13), dtype=np.float32)
    layers = _prepare(ac, net, (5, 11, 13), "direct", [("blocked", "blocked")] * 4)
    assert all(layer.algorithm == "direct" for layer in layers)
    t = ac.to_blocked(x)                      # the caller's conversion: not counted
    before = ac.layout_conversions()
    b0 = layers[0](t)
    b1 = layers[1](b0)
    b2 = layers[2](b1)
    b3 = layers[3](b2, residual=b2)
    assert ac.layout_conversions() == before
    assert_close(b3.to_nchw(), _reference(net, x), conv_tol(x, net[3]["w"], _reference(net, x), 1) * 8,
                 "direct blocked chain")


def test_nchw_path_converts_and_is_counted(ac):
    """The same direct layer on NCHW tensors converts its input and output;
    an NCHW algorithm (Winograd) in a blocked context converts around itself."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 16, 10, 10), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32) * 0.1
    res = rng.standard_normal((1, 16, 10, 10), dtype=np.float32)
    direct = ac.prepare_conv2d(w, input_shape=(16, 10, 10), pads=1, algorithm="direct blocked-in")
    before = ac.layout_conversions()
    direct(x)
    assert ac.layout_conversions() == before + 2
    wino = ac.prepare_conv2d(w, input_shape=(16, 10, 10), pads=1, algorithm="winograd-f2", layout="blocked")
    before = ac.layout_conversions()
    got = wino(ac.to_blocked(x), residual=ac.to_blocked(res))
    assert ac.layout_conversions() == before + 3          # input, residual, output
    want = conv_ref(x, w, pads=(1, 1, 1, 1), residual=res)
    assert_close(got.to_nchw(), want, conv_tol(x, w, want, 1) * 8, "winograd in blocked layout")


def test_blocked_context_changes_the_choice(ac):
    """The model charges NCHW algorithms the conversions a blocked context
    needs, so a layer can flip to direct when activations stay blocked."""
    C, H, W, K = 64, 56, 56, 64
    kw = dict(C=C, H=H, W=W, K=K, R=3, S=3, pads=1, threads=1)
    nchw = ac.explain("conv2d", **kw).plan
    blocked = ac.explain("conv2d", layout="blocked", **kw).plan
    cand = {c.name: c for c in blocked.candidates}
    base = {c.name: c for c in nchw.candidates}
    assert cand["winograd-f4"].predicted_s > base["winograd-f4"].predicted_s
    direct = [n for n in cand if n.startswith("direct") and cand[n].rejected is None]
    assert all(cand[n].predicted_s < base[n].predicted_s for n in direct)


def test_blocked_errors(ac):
    B = ac.block_size()
    w = np.ones((4, 3, 3, 3), np.float32)
    layer = ac.prepare_conv2d(w, input_shape=(3, 6, 6), layout="blocked")
    with pytest.raises(ValueError, match="layout: expected one of nchw, blocked"):
        ac.prepare_conv2d(w, input_shape=(3, 6, 6), layout="nhwc")
    with pytest.raises(ValueError, match="input_layout: expected one of nchw, blocked"):
        ac.prepare_conv2d(w, input_shape=(3, 6, 6), input_layout="NCHW8c")
    with pytest.raises(ValueError, match=r"data: expected shape \(N, 1, H, W, %d\)" % B):
        ac.BlockedTensor(np.zeros((1, 2, 6, 6, B), np.float32), 3)
    with pytest.raises(ValueError, match="channels: expected an integer >= 1"):
        ac.BlockedTensor(np.zeros((1, 1, 6, 6, B), np.float32), 0)
    with pytest.raises(TypeError, match="data: expected dtype float32"):
        ac.BlockedTensor(np.zeros((1, 1, 6, 6, B), np.float64), 3)
    with pytest.raises(ValueError, match="as prepared"):
        layer(ac.to_blocked(np.zeros((1, 3, 7, 6), np.float32)))
    with pytest.raises(TypeError, match="writes a BlockedTensor"):
        layer(np.zeros((1, 3, 6, 6), np.float32), out=np.zeros((1, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 4, 4, 4\)"):
        layer(np.zeros((1, 3, 6, 6), np.float32), out=ac.to_blocked(np.zeros((1, 4, 5, 4), np.float32)))
    with pytest.raises(ValueError, match=r"residual: expected shape \(1, 4, 4, 4\)"):
        layer(np.zeros((1, 3, 6, 6), np.float32), residual=np.zeros((1, 4, 4, 5), np.float32))
    with pytest.raises(TypeError, match="conv2d\\(\\) takes NCHW arrays"):
        ac.conv2d(ac.to_blocked(np.zeros((1, 3, 6, 6), np.float32)), w)
    nchw_layer = ac.prepare_conv2d(w, input_shape=(3, 6, 6))
    with pytest.raises(TypeError, match="writes an array"):
        nchw_layer(np.zeros((1, 3, 6, 6), np.float32), out=ac.to_blocked(np.zeros((1, 4, 4, 4), np.float32)))


def test_blocked_out_in_place(ac):
    """A blocked out and residual may be the same tensor (in-place residual add)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 6, 6), dtype=np.float32)
    w = rng.standard_normal((8, 8, 1, 1), dtype=np.float32)
    acc = rng.standard_normal((1, 8, 6, 6), dtype=np.float32)
    want = conv_ref(x, w, residual=acc, activation="relu")
    layer = ac.prepare_conv2d(w, input_shape=(8, 6, 6), activation="relu", layout="blocked")
    t = ac.to_blocked(acc)
    r = layer(ac.to_blocked(x), residual=t, out=t)
    assert r is t
    assert_close(t.to_nchw(), want, 1e-4, "in-place blocked residual")


# Depthwise in NCHW[B]c (MobileNet's inverted residual blocks stay blocked):
# every stride / pad / dilation the op allows, channels below, at and past a
# block, multipliers 1 and 2, each of the four layout pairs.
DEPTHWISE = [
    # C, H, W, mult, R, strides, pads (t, l, b, r), dilations
    (3, 7, 5, 1, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (13, 11, 9, 1, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (24, 10, 12, 1, 3, (1, 1), (0, 0, 0, 0), (1, 1)),
    (17, 9, 13, 1, 5, (1, 2), (2, 0, 1, 2), (1, 1)),
    (8, 12, 11, 1, 3, (2, 1), (2, 2, 2, 2), (2, 2)),
    (11, 8, 8, 2, 3, (1, 1), (1, 1, 1, 1), (1, 2)),
    (5, 6, 7, 3, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    # Rows at least a register tile wide: a blocked input is read in place,
    # taps outside the image skipped (interior tiles, edge columns, and rows
    # or columns whose taps all fall in the padding).
    (16, 20, 30, 1, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (20, 13, 37, 1, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (5, 9, 21, 1, 5, (1, 2), (2, 1, 2, 3), (1, 1)),
    (7, 6, 17, 1, 3, (1, 1), (3, 3, 3, 3), (1, 1)),
    (9, 10, 26, 1, 3, (1, 1), (2, 4, 1, 3), (2, 3)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layouts", [("blocked", "blocked"), ("blocked", "nchw"), ("nchw", "blocked")],
                         ids=["b-b", "b-n", "n-b"])
@pytest.mark.parametrize("case", DEPTHWISE, ids=[f"dw{i}" for i in range(len(DEPTHWISE))])
def test_depthwise_blocked_matches_reference(ac, case, layouts, threads):
    """Bias, folded batch-norm, relu6 and a residual, in blocked layouts, with
    no layout conversion counted: the kernel reads and writes channel blocks."""
    C, H, W, mult, R, strides, pads, dil = case
    K = C * mult
    rng = np.random.default_rng(C * 100 + H)
    x = rng.standard_normal((2, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, 1, R, R), dtype=np.float32) * 0.4
    b = rng.standard_normal(K, dtype=np.float32)
    scale = rng.uniform(0.5, 1.5, K).astype(np.float32)
    layer = ac.prepare_conv2d(w, b, input_shape=(C, H, W), strides=strides, pads=pads, dilations=dil, groups=C,
                              scale=scale, activation="relu6", algorithm="depthwise", input_layout=layouts[0],
                              layout=layouts[1])
    assert layer.algorithm == "depthwise"
    y_shape = (2, K) + tuple(layer.output_shape[1:])
    res = rng.standard_normal(y_shape, dtype=np.float32)
    xin = ac.to_blocked(x) if layouts[0] == "blocked" else x
    rin = ac.to_blocked(res) if layouts[1] == "blocked" else res
    before = ac.layout_conversions()
    got = layer(xin, residual=rin, threads=threads)
    assert ac.layout_conversions() == before
    got = got.to_nchw() if layouts[1] == "blocked" else got
    want = conv_ref(x, w, b, strides, pads, dil, groups=C, scale=scale, activation="relu6", residual=res)
    assert_close(got, want, 1e-5 * (1 + np.abs(want)), f"depthwise {case} {layouts}")
    if layouts[1] == "blocked":   # lanes past K stay finite (zeros from zero weights and bias, then the clamp)
        data = layer(xin, threads=threads).data
        assert np.isfinite(data).all()
