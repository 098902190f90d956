"""Converters for the elementwise ops: activations, Clip, Erf, Sqrt, Gelu,
the broadcasting arithmetic (Add, Sub, Mul, Div, Pow, Sum, Max, Min), the
comparisons and the logical ops (booleans are float32 0 / 1 in the
executor: And is mul, Or max, Not 1 - x)."""
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


_NUMPY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
          "max": np.maximum, "min": np.minimum}
_COMPARE = {"equal": np.equal, "less": np.less, "greater": np.greater, "less_equal": np.less_equal,
            "greater_equal": np.greater_equal}


def binary(op: str):
    def convert(cx) -> None:
        if cx.n_inputs() != 2:
            raise cx.fail(f"{cx.op_type} with {cx.n_inputs()} inputs: two are supported")
        if cx.all_const():
            a, b = cx.const(0), cx.const(1)
            if op == "div" and np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
                cx.set_value(0, np.trunc(a / b).astype(np.result_type(a, b)))   # ONNX: truncating
            else:
                cx.set_value(0, _NUMPY[op](a, b).astype(np.result_type(a, b)))
            return
        kinds = {cx.kind(0), cx.kind(1)}
        kind = "i" if kinds <= {"i", "b"} and "i" in kinds else "f"
        if op == "div" and kind == "i":
            # integer division truncates: the float quotient, then a cast to int
            q = cx.emit("div", [cx.input(0), cx.input(1)], outputs=[cx.temp("quotient")], kind="f")[0]
            cx.emit("cast", [q], {"to": "int"}, kind="i")
            return
        cx.emit(op, [cx.input(0), cx.input(1)], kind=kind)
    convert.__name__ = op
    return convert


def compare(op: str):
    """Equal / Less / Greater (and their -OrEqual forms as 1 - the opposite)."""
    def convert(cx) -> None:
        if cx.all_const():
            cx.set_value(0, _COMPARE[op](cx.const(0), cx.const(1)))
            return
        if op in ("less_equal", "greater_equal"):
            opposite = "greater" if op == "less_equal" else "less"
            y = cx.emit(opposite, [cx.input(0), cx.input(1)], outputs=[cx.temp(opposite)], kind="b")[0]
            cx.emit("sub", [_scalar(cx, 1.0), y], kind="b")
            return
        cx.emit(op, [cx.input(0), cx.input(1)], kind="b")
    convert.__name__ = op
    return convert


def _scalar(cx, v: float) -> str:
    g = cx.imp.g
    name = g.fresh_name(f"{cx.name}.{v:g}")
    g.constant(name, np.asarray(v, np.float32))
    return name


def logical(op: str):
    """And, Or, Not on booleans held as 0 / 1."""
    def convert(cx) -> None:
        if cx.all_const():
            f = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
            cx.set_value(0, np.logical_not(cx.const(0)) if op == "not" else f[op](cx.const(0), cx.const(1)))
            return
        if op == "not":
            cx.emit("sub", [_scalar(cx, 1.0), cx.input(0)], kind="b")
        elif op == "and":
            cx.emit("mul", [cx.input(0), cx.input(1)], kind="b")
        elif op == "or":
            cx.emit("max", [cx.input(0), cx.input(1)], kind="b")
        else:
            raise cx.fail("Xor is supported on constants only")
    convert.__name__ = op
    return convert


def fold_or_unary(op: str, fn):
    def convert(cx) -> None:
        if cx.is_const(0):
            cx.set_value(0, fn(cx.const(0)))
            return
        cx.emit(op, [cx.input(0)])
    convert.__name__ = op
    return convert


def is_nan(cx) -> None:
    """1 - (x == x): NaN is the one value not equal to itself."""
    if cx.is_const(0):
        cx.set_value(0, np.isnan(cx.const(0)))
        return
    same = cx.emit("equal", [cx.input(0), cx.input(0)], outputs=[cx.temp("self_equal")], kind="b")[0]
    cx.emit("sub", [_scalar(cx, 1.0), same], kind="b")


def gelu(cx) -> None:
    approx = cx.attr("approximate", "none")
    if approx not in ("none", "tanh"):
        raise cx.fail(f"approximate {approx!r} is not supported (none, tanh)")
    cx.emit("gelu", [cx.input(0)], {"approximate": approx})


def _erf(v):
    import math
    return np.vectorize(math.erf)(v).astype(v.dtype)


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
    "Pow": binary("pow"), "Max": binary("max"), "Min": binary("min"),
    "Sum": sum_,
    "Erf": fold_or_unary("erf", _erf), "Sqrt": fold_or_unary("sqrt", np.sqrt),
    "Exp": fold_or_unary("exp", np.exp), "Neg": fold_or_unary("neg", np.negative),
    "Reciprocal": fold_or_unary("reciprocal", np.reciprocal),
    "Gelu": gelu, "IsNaN": is_nan,
    "Equal": compare("equal"), "Less": compare("less"), "Greater": compare("greater"),
    "LessOrEqual": compare("less_equal"), "GreaterOrEqual": compare("greater_equal"),
    "And": logical("and"), "Or": logical("or"), "Not": logical("not"), "Xor": logical("xor"),
}
