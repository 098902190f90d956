"""Converters for the neural-network ops: Conv, Gemm, MatMul,
BatchNormalization, pooling, LRN, Softmax / LogSoftmax."""
from __future__ import annotations

import numpy as np

from ._util import ints, norm_axis, versioned, window_attrs


def conv(cx) -> None:
    w = cx.const(1, "weights")
    x_shape = cx.shape(0)
    if w.ndim != 4:
        raise cx.fail(f"only 2-D convolutions are supported (weights of shape {tuple(w.shape)})")
    kernel = ints(cx.attr("kernel_shape", list(w.shape[2:])))
    if kernel != list(w.shape[2:]):
        raise cx.fail(f"kernel_shape {kernel} does not match the weights {tuple(w.shape)}")
    groups = int(cx.attr("group", 1))
    attrs = window_attrs(cx, x_shape, kernel)
    attrs.update(groups=groups, activation="none")
    bias = ""
    if cx.has_input(2):
        cx.const(2, "bias")
        bias = cx.input(2)
    cx.emit("conv", [cx.input(0), cx.input(1), bias, ""], attrs)


def _gemm(cx, c_required: bool) -> None:
    alpha = float(cx.attr("alpha", 1.0))
    beta = float(cx.attr("beta", 1.0))
    ta, tb = int(cx.attr("transA", 0)), int(cx.attr("transB", 0))
    if c_required and not cx.has_input(2):
        raise cx.fail("input C is required before opset 11")
    c = cx.input(2) if cx.has_input(2) else ""
    cx.emit("gemm", [cx.input(0), cx.input(1), c],
            {"alpha": alpha, "beta": beta, "trans_a": ta, "trans_b": tb, "activation": "none"})


def gemm_v9(cx) -> None:
    _gemm(cx, True)


def gemm_v11(cx) -> None:
    _gemm(cx, False)


def matmul(cx) -> None:
    a, b = cx.shape(0), cx.shape(1)
    if len(b) < 2 or len(a) < 2:
        raise cx.fail(f"MatMul is supported for operands of rank 2 or more (numpy batch broadcasting); "
                      f"got {a} and {b}")
    if cx.all_const():
        cx.set_value(0, np.matmul(cx.const(0), cx.const(1)))
        return
    cx.emit("matmul", [cx.input(0), cx.input(1)])


def layer_norm(cx) -> None:
    shape = cx.shape(0)
    axis = norm_axis(cx, int(cx.attr("axis", -1)), len(shape))
    eps = float(cx.attr("epsilon", 1e-5))
    if int(cx.attr("stash_type", 1)) != 1:
        raise cx.fail("stash_type other than 1 (float32) is not supported")
    for i in (1, 2):
        if cx.output_used(i):
            raise cx.fail(f"output {i} (mean / inverse standard deviation) is used; only Y is supported")
    n = int(np.prod(shape[axis:]))
    for i, what in ((1, "scale"), (2, "B")):
        if cx.has_input(i) and int(np.prod(cx.shape(i))) not in (1, n):
            raise cx.fail(f"{what} of shape {cx.shape(i)} must hold the {n} normalized elements")
    ins = [cx.input(0), cx.input(1)] + ([cx.input(2)] if cx.has_input(2) else [])
    cx.emit("layer_norm", ins, {"axis": axis, "epsilon": eps})


def batch_norm(cx) -> None:
    eps = float(cx.attr("epsilon", 1e-5))
    cx.attr("momentum")
    if int(cx.attr("spatial", 1)) != 1:
        raise cx.fail("spatial=0 is not supported")
    if int(cx.attr("training_mode", 0)) != 0:
        raise cx.fail("training_mode=1 is not supported (inference only)")
    for i in range(1, len(cx.outputs)):
        if cx.output_used(i):
            raise cx.fail(f"output {i} (training statistics) is used; only inference is supported")
    scale, bias, mean, var = (cx.const(i, n).astype(np.float64) for i, n in
                              enumerate(("scale", "B", "mean", "var"), 1))
    x_shape = cx.shape(0)
    if len(x_shape) < 2 or any(v.shape != (x_shape[1],) for v in (scale, bias, mean, var)):
        raise cx.fail(f"scale/B/mean/var must have C={x_shape[1] if len(x_shape) > 1 else '?'} values")
    s = scale / np.sqrt(var + eps)
    g = cx.imp.g
    sname, bname = g.fresh_name(f"{cx.name}.scale"), g.fresh_name(f"{cx.name}.shift")
    g.constant(sname, s)
    g.constant(bname, bias - mean * s)
    cx.emit("channel_affine", [cx.input(0), sname, bname])


def _pool(cx, op: str, *, ceil_ok: bool, dil_ok: bool, avg: bool) -> None:
    kernel = ints(cx.attr("kernel_shape"))
    if not kernel:
        raise cx.fail("kernel_shape is required")
    attrs = {"kernel": kernel}
    attrs.update(window_attrs(cx, cx.shape(0), kernel, dilations_ok=dil_ok))
    attrs["ceil_mode"] = int(cx.attr("ceil_mode", 0)) if ceil_ok else 0
    if avg:
        attrs["count_include_pad"] = int(cx.attr("count_include_pad", 0))
    else:
        if int(cx.attr("storage_order", 0)) != 0:
            raise cx.fail("storage_order=1 is not supported")
        if cx.output_used(1):
            raise cx.fail("the Indices output is not supported")
    cx.emit(op, [cx.input(0)], attrs)


def max_pool_v8(cx) -> None:
    _pool(cx, "max_pool", ceil_ok=False, dil_ok=False, avg=False)


def max_pool_v10(cx) -> None:
    _pool(cx, "max_pool", ceil_ok=True, dil_ok=True, avg=False)


def avg_pool_v7(cx) -> None:
    _pool(cx, "avg_pool", ceil_ok=False, dil_ok=False, avg=True)


def avg_pool_v10(cx) -> None:
    _pool(cx, "avg_pool", ceil_ok=True, dil_ok=False, avg=True)


def avg_pool_v19(cx) -> None:
    _pool(cx, "avg_pool", ceil_ok=True, dil_ok=True, avg=True)


def _global(op: str):
    def convert(cx) -> None:
        if len(cx.shape(0)) != 4:
            raise cx.fail(f"only N x C x H x W inputs are supported (got {cx.shape(0)})")
        cx.emit(op, [cx.input(0)])
    return convert


def lrn(cx) -> None:
    size = cx.attr("size")
    if size is None:
        raise cx.fail("attribute size is required")
    if len(cx.shape(0)) != 4:
        raise cx.fail(f"only N x C x H x W inputs are supported (got {cx.shape(0)})")
    cx.emit("lrn", [cx.input(0)], {"size": int(size), "alpha": float(cx.attr("alpha", 1e-4)),
                                   "beta": float(cx.attr("beta", 0.75)), "bias": float(cx.attr("bias", 1.0))})


def _softmax(op: str, default_axis: int, flatten: bool):
    def convert(cx) -> None:
        rank = len(cx.shape(0))
        axis = norm_axis(cx, int(cx.attr("axis", default_axis)), rank)
        cx.emit(op, [cx.input(0)], {"axis": axis, "flatten": flatten})
    return convert


CONVERTERS = {
    "Conv": conv,
    "Gemm": versioned({9: gemm_v9, 11: gemm_v11}),
    "MatMul": matmul,
    "BatchNormalization": batch_norm,
    "MaxPool": versioned({8: max_pool_v8, 10: max_pool_v10}),
    "AveragePool": versioned({7: avg_pool_v7, 10: avg_pool_v10, 19: avg_pool_v19}),
    "GlobalAveragePool": _global("global_avg_pool"),
    "GlobalMaxPool": _global("global_max_pool"),
    "LRN": lrn,
    "LayerNormalization": layer_norm,
    "Softmax": versioned({1: _softmax("softmax", 1, True), 13: _softmax("softmax", -1, False)}),
    "LogSoftmax": versioned({1: _softmax("log_softmax", 1, True), 13: _softmax("log_softmax", -1, False)}),
}
