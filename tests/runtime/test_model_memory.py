"""What autoconfig::Model keeps after load: the constants an op packed or
copied are released, one still read at run time by another node is kept,
and Model.memory() accounts for it (files from tests/runtime/acmodel_writer.py)."""
from __future__ import annotations

import numpy as np
import pytest

import autoconfig
from acmodel_writer import GraphBuilder

RNG = np.random.default_rng(17)


def rand(*shape):
    return RNG.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def rel_err(y, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(y, np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-30))


def matmul_only(a, w, bias):
    g = GraphBuilder("matmul_only")
    x = g.input("a", a.shape)
    y = g.output("y", (a.shape[0], w.shape[1]))
    g.node("matmul", [x, g.const("w", w), g.const("bias", bias)], [y])
    return autoconfig.load(g.to_bytes())


def shared_weight(a, w, bias, second):
    """t = a @ w + bias (w packed at load), then `second` reads w again at
    run time: "add" (y = t + w) or "matmul" with one row (y = t[:1] @ w, the
    GEMV path, which streams w in place instead of packing it)."""
    g = GraphBuilder("shared_" + second)
    x = g.input("a", a.shape)
    wn = g.const("w", w)
    t = g.inter("t", (a.shape[0], w.shape[1]))
    g.node("matmul", [x, wn, g.const("bias", bias)], [t])
    if second == "add":
        g.node("add", [t, wn], [g.output("y", w.shape)])
    else:
        row = g.inter("row", (1, w.shape[0]))
        g.node("split", [t], [row, g.inter("rest", (a.shape[0] - 1, w.shape[0]))], axis=0)
        g.node("matmul", [row, wn], [g.output("y", (1, w.shape[1]))])
    return autoconfig.load(g.to_bytes())


def test_a_packed_weight_is_released():
    a, w, bias = rand(24, 40), rand(40, 56), rand(56)
    m = matmul_only(a, w, bias)
    mem = m.memory()
    # w lives on as its packed copy only; the bias is still read by the epilogue
    assert mem["released"] == w.nbytes
    assert mem["constants"] == bias.nbytes
    assert mem["prepared"] >= w.nbytes
    assert mem["total"] == mem["arena"] + mem["prepared"] + mem["constants"]
    assert rel_err(m(a), a.astype(np.float64) @ w + bias) <= 1e-5


@pytest.mark.parametrize("second", ["add", "matmul"])
def test_a_weight_shared_with_an_unprepared_op_is_kept(second):
    n = 32
    a, w, bias = rand(n, n), rand(n, n), rand(n)
    m = shared_weight(a, w, bias, second)
    t = a.astype(np.float64) @ w + bias
    ref = t + w if second == "add" else t[:1] @ w
    for _ in range(2):   # a second call reads the kept copy again
        assert rel_err(m(a), ref) <= 1e-5
    mem = m.memory()
    assert mem["released"] == 0
    assert mem["prepared"] > 0
    assert mem["arena"] >= 4 * n * n   # t
    # the same weights, not shared: w is released and the kept bytes shrink by it
    alone = matmul_only(a, w, bias).memory()
    assert mem["constants"] - alone["constants"] == w.nbytes


def test_conv_weights_and_bias_are_released():
    x, w, b = rand(1, 8, 6, 6), rand(16, 8, 1, 1), rand(16)
    g = GraphBuilder("conv")
    xi = g.input("x", x.shape)
    y = g.output("y", (1, 16, 6, 6))
    g.node("conv", [xi, g.const("w", w), g.const("b", b)], [y], strides=[1, 1], pads=[0, 0, 0, 0])
    m = autoconfig.load(g.to_bytes())
    mem = m.memory()
    assert mem["released"] == w.nbytes + b.nbytes
    assert mem["constants"] == 0
    assert mem["prepared"] >= w.nbytes
    ref = np.einsum("nchw,kc->nkhw", x.astype(np.float64), w[:, :, 0, 0]) + b[None, :, None, None]
    assert rel_err(m(x), ref) <= 1e-5


def test_an_unread_constant_is_released():
    """A constant no node reads (the writer left it in the table) is not kept."""
    a, w, bias = rand(4, 8), rand(8, 8), rand(8)
    g = GraphBuilder("unread")
    x = g.input("a", a.shape)
    g.const("unused", rand(1000))
    g.node("matmul", [x, g.const("w", w), g.const("bias", bias)], [g.output("y", (4, 8))])
    mem = autoconfig.load(g.to_bytes()).memory()
    assert mem["released"] == w.nbytes + 4000
    assert mem["constants"] == bias.nbytes
