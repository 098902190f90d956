"""Converters for the elementwise ops: activations, Clip, the broadcasting
arithmetic (Add, Sub, Mul, Div, Sum)."""
from __future__ import annotations

import math

import numpy as np

from ._util import versioned


def unary(op: str):
    def convert(cx) -> None:
        cx.emit(op, [cx.input(0)])
    convert.__name__ = op
    return convert


def leaky_relu(cx) -> None:
    cx.emit("leaky_relu", [cx.input(0)], {"alpha": float(cx.attr("alpha", 0.01))})


def hard_sigmoid(cx) -> None:
    cx.emit("hard_sigmoid", [cx.input(0)], {"alpha": float(cx.attr("alpha", 0.2)),
                                            "beta": float(cx.attr("beta", 0.5))})


def _bound(v):
    """JSON null for an unbounded side."""
    v = float(v)
    return None if math.isinf(v) or abs(v) >= 3.4e38 else v


def _emit_clip(cx, lo, hi) -> None:
    cx.emit("clip", [cx.input(0)], {"min": _bound(lo), "max": _bound(hi)})


def clip_v6(cx) -> None:
    _emit_clip(cx, cx.attr("min", -math.inf), cx.attr("max", math.inf))


def clip_v11(cx) -> None:
    lo = cx.const(1, "min").reshape(-1)[0] if cx.has_input(1) else -math.inf
    hi = cx.const(2, "max").reshape(-1)[0] if cx.has_input(2) else math.inf
    for i in (1, 2):
        if cx.has_input(i) and cx.const(i).size != 1:
            raise cx.fail(f"input {i} must be a scalar")
    _emit_clip(cx, lo, hi)


_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def binary(op: str):
    def convert(cx) -> None:
        if cx.all_const():
            a, b = cx.const(0), cx.const(1)
            if op == "div" and np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
                cx.set_value(0, (a // b).astype(np.result_type(a, b)))   # shape arithmetic
            else:
                cx.set_value(0, _NUMPY[op](a, b).astype(np.result_type(a, b)))
            return
        cx.emit(op, [cx.input(0), cx.input(1)])
    convert.__name__ = op
    return convert


def sum_(cx) -> None:
    ins = [i for i in range(cx.n_inputs()) if cx.has_input(i)]
    if not ins:
        raise cx.fail("Sum needs at least one input")
    if len(ins) == 1:
        cx.alias(0, ins[0])
        return
    if cx.all_const():
        v = cx.const(ins[0])
        for i in ins[1:]:
            v = v + cx.const(i)
        cx.set_value(0, v)
        return
    acc = cx.input(ins[0])
    for k, i in enumerate(ins[1:], 1):
        last = k == len(ins) - 1
        out = None if last else [cx.temp(f"sum{k}")]
        acc = cx.emit("add", [acc, cx.input(i)], outputs=out)[0]


CONVERTERS = {
    "Relu": unary("relu"), "Sigmoid": unary("sigmoid"), "Tanh": unary("tanh"),
    "HardSwish": unary("hard_swish"),
    "LeakyRelu": leaky_relu, "HardSigmoid": hard_sigmoid,
    "Clip": versioned({6: clip_v6, 11: clip_v11}),
    "Add": binary("add"), "Sub": binary("sub"), "Mul": binary("mul"), "Div": binary("div"),
    "Sum": sum_,
}
