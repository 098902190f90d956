"""Converters for the ops that select, convert or broadcast: Gather, Slice,
Cast, Where, Expand. On constants they fold (the shape arithmetic of
exporters); on activations they emit `gather`, `cast`, `where`, `expand`
(a runtime Slice is a `gather` per sliced axis with the selected indices:
one kernel for embeddings, CLS-token picks and slices). Integers and
booleans computed at run time are float32 values in the executor (FORMAT.md,
"Element types"); Ctx.kind tracks what they stand for."""
from __future__ import annotations

import numpy as np

from .. import shapes as shape_rules
from ._util import ints, norm_axis, versioned


def gather(cx) -> None:
    axis_attr = int(cx.attr("axis", 0))
    if cx.all_const():
        data = cx.const(0, "data")
        idx = np.asarray(cx.const(1, "indices")).astype(np.int64)
        axis = norm_axis(cx, axis_attr, data.ndim)
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
        cx.set_value(0, np.take(data, idx, axis=axis))
        return
    shape = cx.shape(0)
    axis = norm_axis(cx, axis_attr, len(shape))
    if cx.kind(1) == "f":
        raise cx.fail("indices must be integers (an int64 input or integer arithmetic), not float")
    if cx.is_const(1):
        idx = np.asarray(cx.const(1, "indices")).astype(np.int64)
        if idx.size and (idx.min() < -shape[axis] or idx.max() >= shape[axis]):
            raise cx.fail(f"indices outside [-{shape[axis]}, {shape[axis]}) for axis {axis} of {shape}")
    cx.emit("gather", [cx.input(0), cx.input(1, raw=True)], {"axis": axis}, kind=cx.kind(0))


def _slice(cx, starts, ends, axes, steps) -> None:
    rank = len(cx.shape(0))
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise cx.fail(f"starts {starts}, ends {ends}, axes {axes}, steps {steps} differ in length")
    picks = []
    big = np.iinfo(np.int64).max
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(cx, a, rank, "axes")
        if st == 0:
            raise cx.fail("a step of 0")
        e = None if (st > 0 and e >= big // 2) or (st < 0 and e <= -big // 2) else e
        picks.append((a, slice(s, e, st)))
    if cx.is_const(0):
        idx = [slice(None)] * rank
        for a, sl in picks:
            idx[a] = sl
        cx.set_value(0, cx.const(0)[tuple(idx)])
        return
    shape = list(cx.shape(0))
    steps_needed = []
    for a, sl in picks:
        sel = np.arange(shape[a])[sl]
        if len(sel) != shape[a] or np.any(sel != np.arange(shape[a])):
            steps_needed.append((a, sel))
    if not steps_needed:
        cx.alias(0)
        return
    x = cx.input(0)
    g = cx.imp.g
    for k, (a, sel) in enumerate(steps_needed):
        cname = g.fresh_name(f"{cx.name}.indices{a}")
        g.constant(cname, sel.astype(np.float32))
        shape[a] = len(sel)
        last = k == len(steps_needed) - 1
        x = cx.emit("gather", [x, cname], {"axis": a}, out_shapes=[tuple(shape)],
                    outputs=None if last else [cx.temp(f"slice{a}")], kind=cx.kind(0))[0]


def slice_v1(cx) -> None:
    a = cx.attr("axes")
    _slice(cx, ints(cx.attr("starts")), ints(cx.attr("ends")), None if a is None else ints(a), None)


def slice_v10(cx) -> None:
    _slice(cx, ints(cx.const(1, "starts")), ints(cx.const(2, "ends")),
           ints(cx.const(3, "axes")) if cx.has_input(3) else None,
           ints(cx.const(4, "steps")) if cx.has_input(4) else None)


# ONNX TensorProto types -> numpy (folding) and the executor's cast target.
_CAST = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
         10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
_KIND = {np.float32: "f", np.float16: "f", np.float64: "f", np.bool_: "b"}


def cast(cx) -> None:
    to = int(cx.attr("to"))
    cx.attr("saturate")
    if to not in _CAST:
        raise cx.fail(f"cast to type {to} is not supported (numeric and bool types)")
    if cx.is_const(0):
        cx.set_value(0, cx.const(0).astype(_CAST[to]))
        return
    target = _KIND.get(_CAST[to], "i")
    source = cx.kind(0)
    if cx.is_int64_input(0):
        # the one place int64 data turns into float32 values
        cx.emit("cast", [cx.input(0, raw=True)], {"to": {"f": "float32", "b": "bool", "i": "int"}[target]},
                kind=target)
    elif target == source or (target == "f" and source in "ib") or (target == "i" and source == "b"):
        cx.alias(0)            # the float32 values already are the target's
    else:
        cx.emit("cast", [cx.input(0)], {"to": "bool" if target == "b" else "int"}, kind=target)


def where(cx) -> None:
    if cx.all_const():
        cx.set_value(0, np.where(cx.const(0).astype(bool), cx.const(1), cx.const(2)))
        return
    kind = cx.kind(1) if cx.kind(1) == cx.kind(2) else "f"
    cx.emit("where", [cx.input(0), cx.input(1), cx.input(2)], kind=kind)


def expand(cx) -> None:
    shape = ints(cx.const(1, "shape"))
    try:
        out = shape_rules.broadcast(cx.shape(0), shape)
    except shape_rules.ShapeError as e:
        raise cx.fail(str(e)) from e
    if cx.is_const(0):
        cx.set_value(0, np.broadcast_to(cx.const(0), out).copy())
    elif tuple(out) == tuple(cx.shape(0)):
        cx.alias(0)
    else:
        cx.emit("expand", [cx.input(0)], out_shapes=[out], kind=cx.kind(0))


CONVERTERS = {
    "Gather": gather,
    "Slice": versioned({1: slice_v1, 10: slice_v10}),
    "Cast": cast,
    "Where": where,
    "Expand": expand,
}
