"""Converters for the ops evaluated at import only: Constant,
ConstantOfShape, Shape and Range (the shape arithmetic exporters emit in
front of Reshape, Expand and the attention mask). Their inputs must be known
at import (initializers, folded values, or for Shape any tensor: shapes are
static for the planned input shapes)."""
from __future__ import annotations

import numpy as np

from ._util import ints, versioned


def constant(cx) -> None:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if cx.has_attr(key):
            v = cx.attr(key)
            dtype = np.int64 if key.startswith("value_int") else None
            cx.set_value(0, np.asarray(v, dtype=dtype) if dtype else np.asarray(v))
            return
    cx.attr("sparse_value")
    cx.attr("value_string")
    cx.attr("value_strings")
    raise cx.fail("only dense numeric values are supported (value, value_float(s), value_int(s))")


def constant_of_shape(cx) -> None:
    shape = ints(cx.const(0, "shape"))
    v = cx.attr("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    cx.set_value(0, np.full(shape, v[0], dtype=v.dtype))


def shape_v1(cx) -> None:
    cx.set_value(0, np.asarray(cx.shape(0), dtype=np.int64))


def shape_v15(cx) -> None:
    s = cx.shape(0)
    start, end = int(cx.attr("start", 0)), cx.attr("end")
    end = len(s) if end is None else int(end)
    cx.set_value(0, np.asarray(s, dtype=np.int64)[slice(start, end)])


def range_(cx) -> None:
    start, limit, delta = (cx.const(i, n).reshape(-1)[0] for i, n in enumerate(("start", "limit", "delta")))
    if delta == 0:
        raise cx.fail("delta is 0")
    cx.set_value(0, np.arange(start, limit, delta, dtype=np.result_type(start, limit, delta)))


CONVERTERS = {
    "Constant": constant,
    "ConstantOfShape": constant_of_shape,
    "Shape": versioned({1: shape_v1, 15: shape_v15}),
    "Range": range_,
}
