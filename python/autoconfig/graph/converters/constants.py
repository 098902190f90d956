"""Converters for the ops evaluated at import only: Constant,
ConstantOfShape, and the shape arithmetic older exporters emit in front of
Reshape (Shape, Gather, Cast, Slice). Their inputs must be known at import
(initializers, folded values, or for Shape any tensor: shapes are static)."""
from __future__ import annotations

import numpy as np

from ._util import ints, norm_axis, versioned


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


def gather(cx) -> None:
    data = cx.const(0, "data")
    idx = np.asarray(cx.const(1, "indices")).astype(np.int64)
    axis = norm_axis(cx, int(cx.attr("axis", 0)), data.ndim)
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    cx.set_value(0, np.take(data, idx, axis=axis))


_CAST = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
         10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def cast(cx) -> None:
    to = int(cx.attr("to"))
    cx.attr("saturate")
    if to not in _CAST:
        raise cx.fail(f"cast to type {to} is not supported")
    if not cx.is_const(0):
        if to == 1:       # a float32 -> float32 cast on an activation is a no-op
            cx.alias(0)
            return
        raise cx.fail("Cast is supported on constants (folded at import) or to float32")
    cx.set_value(0, cx.const(0).astype(_CAST[to]))


def _slice(cx, data, starts, ends, axes, steps) -> None:
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    idx = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(cx, a, data.ndim, "axes")
        big = np.iinfo(np.int64).max
        idx[a] = slice(s, None if (st > 0 and e >= big // 2) or (st < 0 and e <= -big // 2) else e, st)
    cx.set_value(0, data[tuple(idx)])


def slice_v1(cx) -> None:
    a = cx.attr("axes")
    _slice(cx, cx.const(0, "data"), ints(cx.attr("starts")), ints(cx.attr("ends")),
           None if a is None else ints(a), None)


def slice_v10(cx) -> None:
    _slice(cx, cx.const(0, "data"), ints(cx.const(1, "starts")), ints(cx.const(2, "ends")),
           ints(cx.const(3, "axes")) if cx.has_input(3) else None,
           ints(cx.const(4, "steps")) if cx.has_input(4) else None)


CONVERTERS = {
    "Constant": constant,
    "ConstantOfShape": constant_of_shape,
    "Shape": versioned({1: shape_v1, 15: shape_v15}),
    "Gather": gather,
    "Cast": cast,
    "Slice": versioned({1: slice_v1, 10: slice_v10}),
}
