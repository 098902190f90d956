"""conv2d (ONNX Conv, float32) over the compiled kernels, and prepared
layers (weights folded and re-laid out once) that read and write NCHW or the
channel-blocked layout NCHW[B]c (blocked.py).

Arguments are checked here (conv_args.py for the layer) so a bad one raises a
TypeError/ValueError that names it; the kernels then run with the GIL released.
"""
from __future__ import annotations

import numpy as np

from .blocked import BlockedTensor, convert_to_blocked, empty_blocked
from .checks import f32_array, is_int, threads_arg
from .conv_args import (LAYER_INT_MAX, algorithm_choice, channel_vector, conv_epilogue, conv_layer, layout_arg,
                        layout_code, tolerance_arg)
from .guard import require_ext
from .memory import overlaps, unshared


def _conv_outputs(out_shape, residual, out, inputs):
    """Checks residual and out against out_shape; returns (contiguous residual or None,
    the array the kernel writes): out itself when it is C-contiguous and overlaps
    none of inputs (every array the kernel reads) nor the residual, else a new
    array (copied into out afterwards), so that every input is read as it was."""
    if residual is not None:
        residual = f32_array(residual, "residual", 4)
        if residual.shape != out_shape:
            raise ValueError(f"residual: expected shape {out_shape}, got {residual.shape}")
        residual = np.ascontiguousarray(residual)
    if out is not None:
        out = f32_array(out, "out", 4)
        if out.shape != out_shape:
            raise ValueError(f"out: expected shape {out_shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
        if out.flags.c_contiguous and not any(overlaps(out, a) for a in (*inputs, residual)):
            return residual, out
    return residual, np.empty(out_shape, dtype=np.float32)


def conv2d(x, w, bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1,
           scale=None, shift=None, activation=None, residual=None, out=None, threads=None, algorithm=None,
           tolerance=None):
    """2-D convolution, ONNX Conv semantics, NCHW float32.

    x: (N, C, H, W); w: (K, C/groups, R, S); bias, scale, shift: (K,).
    pads: (top, left, bottom, right) or one int; strides, dilations: int or pair.
    out = activation(scale * (conv(x, w) + bias) + shift + residual), activation None,
    'relu', 'relu6' or ('clip', lo, hi); scale/shift are a folded batch-norm.
    Depthwise (groups == C) and channel multipliers (K = m * C) are groups like any other.
    algorithm: None lets the analytical model choose (see explain("conv2d", ...));
    a name from CONV_ALGORITHMS (or a list of names) restricts the choice.
    tolerance: the largest relative error (max|y - exact| / max|exact|) the result
    may carry; algorithms whose documented error bound exceeds it (Winograd) are
    not chosen. None: no limit.
    Blocked activations (BlockedTensor) go through prepare_conv2d(..., layout="blocked").
    """
    if isinstance(x, BlockedTensor):
        raise TypeError("x: conv2d() takes NCHW arrays; run blocked activations through "
                        "prepare_conv2d(..., input_layout='blocked')")
    x = f32_array(x, "x", 4)
    w = f32_array(w, "w", 4)
    N = x.shape[0]
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = conv_layer(x.shape, w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = conv_epilogue(activation)
    choice = algorithm_choice(algorithm)
    tol = tolerance_arg(tolerance)
    t = threads_arg(threads)
    bias = channel_vector(bias, "bias", K)
    scale = channel_vector(scale, "scale", K)
    shift = channel_vector(shift, "shift", K)
    residual, target = _conv_outputs((N, K, Ho, Wo), residual, out, (x, w, bias, scale, shift))
    if N > 0:
        require_ext().conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), target, bias, scale, shift,
                              residual, [sh, sw], [pt, pl, pb, pr], [dh, dw], int(groups), act, clip_lo, clip_hi,
                              t, choice, tol)
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


class PreparedConv2d:
    """A conv layer whose weights are folded (batch-norm) and re-laid out or
    transformed (direct, Winograd) once, for the algorithm the model chose for
    its input and output layouts; calling it runs only the convolution. Made
    by prepare_conv2d()."""

    def __init__(self, handle, input_shape, output_chw, threads: int, input_layout: str, layout: str):
        self._handle = handle
        self.input_shape = input_shape            # (C, H, W)
        self.output_shape = output_chw            # (K, Ho, Wo)
        self.input_layout = input_layout          # the layout the layer reads without converting
        self.layout = layout                      # the layout of its output (and residual)
        self._threads = threads

    @property
    def algorithm(self) -> str:
        return self._handle.algorithm

    def _input(self, x, threads):
        if isinstance(x, BlockedTensor):
            if x.shape[1:] != self.input_shape:
                raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.input_shape))}) as prepared, "
                                 f"got {x.shape}")
            return x.data if self.input_layout == "blocked" else x._to_nchw(threads)
        x = f32_array(x, "x", 4)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.input_shape))}) as prepared, "
                             f"got {x.shape}")
        return convert_to_blocked(x, "x", threads).data if self.input_layout == "blocked" else np.ascontiguousarray(x)

    def _blocked_outputs(self, N, residual, out, x_data, threads):
        """(x data, residual data or None, the BlockedTensor written): an input
        that overlaps out (x, residual, in any part) is copied first."""
        K, Ho, Wo = self.output_shape
        if residual is not None:
            if not isinstance(residual, BlockedTensor):
                residual = convert_to_blocked(residual, "residual", threads)
            if residual.shape != (N, K, Ho, Wo):
                raise ValueError(f"residual: expected shape {(N, K, Ho, Wo)}, got {residual.shape}")
        res_data = None if residual is None else residual.data
        if out is None:
            return x_data, res_data, empty_blocked(N, K, Ho, Wo)
        if not isinstance(out, BlockedTensor):
            raise TypeError(f"out: a layer with layout='blocked' writes a BlockedTensor, got {type(out).__name__}")
        if out.shape != (N, K, Ho, Wo):
            raise ValueError(f"out: expected shape {(N, K, Ho, Wo)}, got {out.shape}")
        if not out.data.flags.writeable:
            raise ValueError("out: array is read-only")
        return unshared(x_data, out.data), unshared(res_data, out.data), out

    def __call__(self, x, *, residual=None, out=None, threads=None):
        """y = the layer applied to x: an (N, C, H, W) array or a BlockedTensor
        (converted when it is not in input_layout). residual and out are
        arrays for layout 'nchw', BlockedTensors for layout 'blocked' (an
        NCHW residual is converted); the result is of that layout too."""
        t = self._threads if threads is None else threads_arg(threads)
        xd = self._input(x, t)
        N = xd.shape[0]
        K, Ho, Wo = self.output_shape
        if self.layout == "blocked":
            xd, res_data, target = self._blocked_outputs(N, residual, out, xd, t)
            if N > 0:
                self._handle.run(xd, N, target.data, res_data, t)
            return target
        if isinstance(residual, BlockedTensor):
            residual = residual._to_nchw(t)
        if out is not None and isinstance(out, BlockedTensor):
            raise TypeError("out: a layer with layout='nchw' writes an array, got a BlockedTensor")
        residual, target = _conv_outputs((N, K, Ho, Wo), residual, out, (xd,))
        if N > 0:
            self._handle.run(xd, N, target, residual, t)
        if out is not None and target is not out:
            out[...] = target
            return out
        return target


def prepare_conv2d(w, bias=None, *, input_shape, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1,
                   scale=None, shift=None, activation=None, threads=None, algorithm=None, tolerance=None,
                   layout="nchw", input_layout=None) -> PreparedConv2d:
    """Prepare a conv layer once for inputs of shape (N, *input_shape), input_shape = (C, H, W);
    the arguments mean what they mean for conv2d(). layout ('nchw' or 'blocked')
    is the layout of the output (and residual); input_layout (default: layout)
    the layout the layer reads without converting. The returned object runs
    the layer: prepared(x, residual=None, out=None, threads=None)."""
    w = f32_array(w, "w", 4)
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(is_int(v) and 1 <= v <= LAYER_INT_MAX for v in input_shape)):
        raise ValueError(f"input_shape: expected (C, H, W) integers in 1..{LAYER_INT_MAX}, got {input_shape!r}")
    layout = layout_arg(layout, "layout")
    input_layout = layout if input_layout is None else layout_arg(input_layout, "input_layout")
    C, H, W = (int(v) for v in input_shape)
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = conv_layer((1, C, H, W), w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = conv_epilogue(activation)
    choice = algorithm_choice(algorithm)
    tol = tolerance_arg(tolerance)
    t = threads_arg(threads)
    handle = require_ext().prepare_conv2d(
        np.ascontiguousarray(w), channel_vector(bias, "bias", K), channel_vector(scale, "scale", K),
        channel_vector(shift, "shift", K), C, H, W, [sh, sw], [pt, pl, pb, pr], [dh, dw], int(groups), act,
        clip_lo, clip_hi, t, choice, tol, layout_code(input_layout), layout_code(layout))
    return PreparedConv2d(handle, (C, H, W), (K, Ho, Wo), t, input_layout, layout)
