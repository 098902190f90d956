"""Converters for the ops that move data without arithmetic: Concat, Split,
Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Pad, plus ReduceMean and
the ops dropped at inference (Dropout, Identity). On constant inputs they
fold (numpy) instead of emitting a node."""
from __future__ import annotations


from typing import List, Sequence

import numpy as np

from ..shapes import numel
from ._util import ints, norm_axis, versioned


def _reshape_to(cx, shape: Sequence[int]) -> None:
    shape = tuple(int(d) for d in shape)
    if cx.is_const(0):
        cx.set_value(0, cx.const(0).reshape(shape))
        return
    if numel(shape) != numel(cx.shape(0)):
        raise cx.fail(f"cannot reshape {cx.shape(0)} to {shape}")
    cx.emit("reshape", [cx.input(0)], out_shapes=[shape], kind=cx.kind(0))


def concat(cx) -> None:
    ins = [i for i in range(cx.n_inputs()) if cx.has_input(i)]
    rank = len(cx.shape(ins[0]))
    axis = norm_axis(cx, int(_required(cx, "axis")), rank)
    if cx.all_const():
        cx.set_value(0, np.concatenate([cx.const(i) for i in ins], axis=axis))
        return
    ins = [i for i in ins if numel(cx.shape(i)) > 0 or len(ins) == 1]   # empty pieces add nothing
    cx.emit("concat", [cx.input(i) for i in ins], {"axis": axis}, kind=cx.kind(ins[0]))


def _required(cx, name: str):
    v = cx.attr(name)
    if v is None:
        raise cx.fail(f"attribute {name} is required")
    return v


def _split(cx, sizes: List[int]) -> None:
    shape = cx.shape(0)
    axis = norm_axis(cx, int(cx.attr("axis", 0)), len(shape))
    n_out = len(cx.outputs)
    if not sizes:
        if shape[axis] % n_out and cx.opset < 18:
            raise cx.fail(f"axis {axis} of length {shape[axis]} does not split evenly in {n_out}")
        chunk = -(-shape[axis] // n_out)
        sizes = [min(chunk, shape[axis] - k * chunk) for k in range(n_out)]
    if len(sizes) != n_out or sum(sizes) != shape[axis] or min(sizes) < 0:
        raise cx.fail(f"split sizes {sizes} for {n_out} outputs of an axis of length {shape[axis]}")
    if cx.is_const(0):
        parts = np.split(cx.const(0), np.cumsum(sizes)[:-1], axis=axis)
        for k, p in enumerate(parts):
            cx.set_value(k, p)
        return
    outs = []
    for s in sizes:
        o = list(shape)
        o[axis] = s
        outs.append(o)
    cx.emit("split", [cx.input(0)], {"axis": axis}, out_shapes=outs)


def split_v2(cx) -> None:
    _split(cx, ints(cx.attr("split", [])))


def split_v13(cx) -> None:
    _split(cx, ints(cx.const(1, "split")) if cx.has_input(1) else [])


def split_v18(cx) -> None:
    n = cx.attr("num_outputs")
    if n is not None and int(n) != len(cx.outputs):
        raise cx.fail(f"num_outputs={n} but the node has {len(cx.outputs)} outputs")
    split_v13(cx)


def flatten(cx) -> None:
    shape = cx.shape(0)
    axis = int(cx.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise cx.fail(f"axis {axis} out of range for rank {len(shape)}")
    _reshape_to(cx, (numel(shape[:axis]), numel(shape[axis:])))


def reshape(cx) -> None:
    target = ints(cx.const(1, "shape"))
    allowzero = int(cx.attr("allowzero", 0)) if cx.opset >= 14 else 0
    src = cx.shape(0)
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(src):
                raise cx.fail(f"shape {target}: 0 at axis {i} copies a dimension the input {src} lacks")
            d = src[i]
        out.append(d)
    if out.count(-1) > 1:
        raise cx.fail(f"shape {target} has more than one -1")
    if -1 in out:
        known = numel([d for d in out if d != -1])
        if known == 0 or numel(src) % known:
            raise cx.fail(f"cannot reshape {src} to {target}")
        out[out.index(-1)] = numel(src) // known
    if min(out, default=0) < 0:
        raise cx.fail(f"shape {target} has a negative dimension")
    _reshape_to(cx, out)


def transpose(cx) -> None:
    rank = len(cx.shape(0))
    perm = ints(cx.attr("perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise cx.fail(f"perm {perm} is not a permutation of {rank} axes")
    if cx.is_const(0):
        cx.set_value(0, np.transpose(cx.const(0), perm))
        return
    cx.emit("transpose", [cx.input(0)], {"perm": perm}, kind=cx.kind(0))


def _squeeze(cx, axes: List[int]) -> None:
    shape = cx.shape(0)
    if not axes:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = sorted({norm_axis(cx, a, len(shape), "axes") for a in axes})
    for a in axes:
        if shape[a] != 1:
            raise cx.fail(f"axis {a} of {shape} has length {shape[a]}, not 1")
    _reshape_to(cx, [d for i, d in enumerate(shape) if i not in axes])


def squeeze_v1(cx) -> None:
    _squeeze(cx, ints(cx.attr("axes", [])))


def squeeze_v13(cx) -> None:
    _squeeze(cx, ints(cx.const(1, "axes")) if cx.has_input(1) else [])


def _unsqueeze(cx, axes: List[int]) -> None:
    shape = list(cx.shape(0))
    rank = len(shape) + len(axes)
    axes = sorted(norm_axis(cx, a, rank, "axes") for a in axes)
    if len(set(axes)) != len(axes):
        raise cx.fail(f"axes {axes} repeat")
    for a in axes:
        shape.insert(a, 1)
    _reshape_to(cx, shape)


def unsqueeze_v1(cx) -> None:
    _unsqueeze(cx, ints(_required(cx, "axes")))


def unsqueeze_v13(cx) -> None:
    _unsqueeze(cx, ints(cx.const(1, "axes")))


def _pad(cx, pads: List[int], mode: str, value: float, axes=None) -> None:
    rank = len(cx.shape(0))
    if mode != "constant":
        raise cx.fail(f"mode {mode!r} is not supported (constant)")
    if axes is not None:
        axes = [norm_axis(cx, a, rank, "axes") for a in axes]
        if len(pads) != 2 * len(axes):
            raise cx.fail(f"{len(pads)} pads for {len(axes)} axes")
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[a + rank] = pads[k], pads[k + len(axes)]
        pads = full
    if len(pads) != 2 * rank:
        raise cx.fail(f"{len(pads)} pads for a rank-{rank} input")
    if min(pads) < 0:
        raise cx.fail(f"negative pads {pads} (cropping) are not supported")
    cx.emit("pad", [cx.input(0)], {"pads": pads, "value": float(value)})


def pad_v2(cx) -> None:
    _pad(cx, ints(_required(cx, "pads")), cx.attr("mode", "constant"), cx.attr("value", 0.0))


def pad_v11(cx) -> None:
    value = cx.const(2, "constant_value").reshape(-1)[0] if cx.has_input(2) else 0.0
    axes = ints(cx.const(3, "axes")) if cx.has_input(3) else None
    _pad(cx, ints(cx.const(1, "pads")), cx.attr("mode", "constant"), value, axes)


def _reduce_mean(cx, axes, keepdims: int, noop_empty: int) -> None:
    shape = cx.shape(0)
    rank = len(shape)
    if axes is None or len(axes) == 0:
        if noop_empty:
            cx.alias(0)
            return
        axes = list(range(rank))
    axes = sorted({norm_axis(cx, a, rank, "axes") for a in axes})
    cx.emit("reduce_mean", [cx.input(0)], {"axes": axes, "keepdims": int(keepdims)})


def reduce_mean_v1(cx) -> None:
    a = cx.attr("axes")
    _reduce_mean(cx, None if a is None else ints(a), int(cx.attr("keepdims", 1)), 0)


def reduce_mean_v18(cx) -> None:
    axes = ints(cx.const(1, "axes")) if cx.has_input(1) else None
    _reduce_mean(cx, axes, int(cx.attr("keepdims", 1)), int(cx.attr("noop_with_empty_axes", 0)))


def identity(cx) -> None:
    if cx.is_const(0):
        cx.set_value(0, cx.const(0))
    else:
        cx.alias(0)


def dropout_v7(cx) -> None:
    cx.attr("ratio")
    _dropout(cx)


def dropout_v12(cx) -> None:
    cx.attr("seed")
    if cx.has_input(2) and bool(np.asarray(cx.const(2, "training_mode")).reshape(-1)[0]):
        raise cx.fail("training_mode=true is not supported (inference only)")
    _dropout(cx)


def _dropout(cx) -> None:
    if cx.output_used(1):
        raise cx.fail("the mask output is not supported")
    identity(cx)


CONVERTERS = {
    "Concat": concat,
    "Split": versioned({2: split_v2, 13: split_v13, 18: split_v18}),
    "Flatten": flatten,
    "Reshape": reshape,
    "Transpose": transpose,
    "Squeeze": versioned({1: squeeze_v1, 13: squeeze_v13}),
    "Unsqueeze": versioned({1: unsqueeze_v1, 13: unsqueeze_v13}),
    "Pad": versioned({2: pad_v2, 11: pad_v11}),
    "ReduceMean": versioned({1: reduce_mean_v1, 18: reduce_mean_v18}),
    "Identity": identity,
    "Dropout": versioned({7: dropout_v7, 12: dropout_v12}),
}

