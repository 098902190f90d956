"""conv2d (ONNX Conv, float32) over the compiled kernels, prepared layers,
and the channel-blocked activation layout NCHW[B]c that a network can keep
between layers.

Arguments are checked here so a bad one raises a TypeError/ValueError that
names it; the kernels then run with the GIL released.
"""
from __future__ import annotations

import math
import numbers
from typing import List

import numpy as np

from .api import (_ACT_ALIASES, ACTIVATIONS, Explanation, _f32_array, _require_ext, _threads_arg, host)

CONV_ALGORITHMS = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")
LAYOUTS = ("nchw", "blocked")
_CONV_ACTS = ("none", "relu", "relu6")
_ANY = 0xFFFFFFFF


# --------------------------------------------------------------------------- blocked layout
def block_size() -> int:
    """B of the layout NCHW[B]c in this build: the vector lanes of the running variant."""
    return int(_require_ext().conv2d_block())


def layout_conversions() -> int:
    """Activation tensors conv2d calls converted between NCHW and NCHW[B]c so
    far in this process (to_blocked / to_nchw called by you are not counted)."""
    return int(_require_ext().conv2d_layout_conversions())


class BlockedTensor:
    """Activations in the channel-blocked layout NCHW[B]c.

    data: float32 array of shape (N, ceil(C/B), H, W, B), B = block_size():
    channel c lives in block c // B, lane c % B; lanes past C hold finite
    values (zeros from to_blocked). shape: the logical (N, C, H, W).
    Made by to_blocked() or returned by a layer prepared with
    layout="blocked"; such a layer takes it as input without converting."""

    __slots__ = ("data", "shape")

    def __init__(self, data: np.ndarray, channels: int):
        data = _f32_array(data, "data", 5)
        B = block_size()
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
            raise ValueError(f"channels: expected an integer >= 1, got {channels!r}")
        if data.shape[4] != B or data.shape[1] != math.ceil(channels / B):
            raise ValueError(f"data: expected shape (N, {math.ceil(channels / B)}, H, W, {B}) for {channels} "
                             f"channels in blocks of {B}, got {data.shape}")
        if not data.flags.c_contiguous:
            raise ValueError("data: expected a C-contiguous array")
        self.data = data
        self.shape = (data.shape[0], int(channels), data.shape[2], data.shape[3])

    @property
    def block(self) -> int:
        return self.data.shape[4]

    def to_nchw(self, threads=None) -> np.ndarray:
        """The same activations as an NCHW array (a conversion)."""
        return self._to_nchw(_threads_arg(threads))

    def _to_nchw(self, threads: int) -> np.ndarray:
        N, C, H, W = self.shape
        out = np.empty((N, C, H, W), dtype=np.float32)
        if N:
            _require_ext().conv2d_from_blocked(self.data, out, N, C, H, W, threads)
        return out

    numpy = to_nchw

    def __repr__(self) -> str:
        return f"BlockedTensor(shape={self.shape}, block={self.block})"


def _empty_blocked(N: int, C: int, H: int, W: int) -> BlockedTensor:
    B = block_size()
    return BlockedTensor(np.empty((N, math.ceil(C / B), H, W, B), dtype=np.float32), C)


def to_blocked(x, threads=None) -> BlockedTensor:
    """x (N, C, H, W) float32 -> the same activations in NCHW[B]c (a conversion)."""
    return _to_blocked(x, "x", _threads_arg(threads))


def _to_blocked(x, name: str, threads: int) -> BlockedTensor:
    x = np.ascontiguousarray(_f32_array(x, name, 4))
    N, C, H, W = x.shape
    if min(C, H, W) < 1:
        raise ValueError(f"{name}: expected C, H, W >= 1, got shape {x.shape}")
    t = _empty_blocked(N, C, H, W)
    if N:
        _require_ext().conv2d_to_blocked(x, t.data, N, C, H, W, threads)
    return t


# --------------------------------------------------------------------------- argument checks
def _is_int(e) -> bool:
    # type(e) is int first: the ABC check costs ~1 us per value, a one-off conv2d() makes ~8 of them.
    t = type(e)
    if t is int:
        return True
    return t not in (tuple, list) and isinstance(e, numbers.Integral) and not isinstance(e, bool)


def _int_pair(v, name: str, minimum: int):
    if _is_int(v):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(_is_int(e) for e in v):
        raise ValueError(f"{name}: expected an int or a pair of ints, got {v!r}")
    if min(v) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {tuple(v)}")
    return [int(e) for e in v]


def _channel_vector(v, name: str, K: int):
    if v is None:
        return None
    v = _f32_array(v, name)
    if v.shape != (K,):
        raise ValueError(f"{name}: expected shape ({K},) (one value per output channel), got {v.shape}")
    return np.ascontiguousarray(v)


def _direct_variant(text: str) -> List[int]:
    """[tile index, input, order, reduction blocks] of "direct [NxKB]
    [blocked-in|nchw-in] [groups-outer|groups-inner] [cblocks=N]" (-1 where
    not given: the model's choice; cblocks implies groups-outer)."""
    tile, inp, order, cblocks = -1, -1, -1, -1
    tiles = [tuple(t) for t in _require_ext().conv2d_direct_tiles()]
    for tok in text.split()[1:]:
        if tok in ("blocked-in", "nchw-in"):
            inp = ("blocked-in", "nchw-in").index(tok)
        elif tok in ("groups-outer", "groups-inner"):
            order = ("groups-outer", "groups-inner").index(tok)
        elif tok.startswith("cblocks="):
            value = tok[len("cblocks="):]
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"algorithm: {text!r}: {tok!r}: expected cblocks=N with N >= 1")
            cblocks = int(value)
        else:
            try:
                n, kb = (int(v) for v in tok.split("x"))
            except ValueError:
                n = kb = None
            if (n, kb) not in tiles:
                raise ValueError(f"algorithm: {text!r}: {tok!r} is not one of this build's direct tiles "
                                 f"({', '.join(f'{a}x{b}' for a, b in tiles)}), blocked-in, nchw-in, "
                                 "groups-outer, groups-inner or cblocks=N")
            tile = tiles.index((n, kb))
    if cblocks > 0 and order == 1:
        raise ValueError(f"algorithm: {text!r}: reduction blocks (cblocks) run groups-outer only")
    return [tile, inp, order, cblocks]


def _algorithm_choice(algorithm) -> List[int]:
    """[algorithm mask, direct tile, direct input, direct order] from None (the
    model chooses), one name, or a list of names to choose among; a direct
    name may pin the variant, e.g. "direct 6x2 nchw-in" (explain's candidate names)."""
    if algorithm is None:
        return [_ANY, -1, -1, -1, -1]
    names = [algorithm] if isinstance(algorithm, str) else list(algorithm) if isinstance(algorithm, (list, tuple)) \
        else None
    if names is None:
        raise ValueError(f"algorithm: expected None, a name or a list of names, got {algorithm!r}")
    mask, direct = 0, [-1, -1, -1, -1]
    for n in names:
        base = n.split()[0] if isinstance(n, str) and n.split() else n
        if base not in CONV_ALGORITHMS or (base != "direct" and n != base):
            raise ValueError(f"algorithm: expected one of {', '.join(CONV_ALGORITHMS)} (or a list of them; "
                             f"'direct' may name a variant such as 'direct nchw-in'), got {n!r}")
        mask |= 1 << CONV_ALGORITHMS.index(base)
        if base == "direct":
            direct = _direct_variant(n)
    if not mask:
        raise ValueError("algorithm: the list is empty")
    return [mask] + direct


def _conv_epilogue(activation):
    """(activation code, clip_lo, clip_hi) from None, 'relu', 'relu6' or ('clip', lo, hi)."""
    if isinstance(activation, tuple) and len(activation) == 3 and activation[0] == "clip":
        lo, hi = activation[1], activation[2]
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (lo, hi)) or not lo <= hi:
            raise ValueError(f"activation: ('clip', lo, hi) needs numbers with lo <= hi, got {activation!r}")
        return 0, float(lo), float(hi)
    name = _ACT_ALIASES.get(activation, activation) if isinstance(activation, (str, type(None))) else activation
    if name not in _CONV_ACTS:
        raise ValueError(f"activation: expected None, 'relu', 'relu6' or ('clip', lo, hi), got {activation!r}")
    return ACTIVATIONS.index(name), float("-inf"), float("inf")


def _conv_layer(x_shape, w_shape, strides, pads, dilations, groups):
    """Checks a layer's geometry; returns (sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo)."""
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups: expected an integer >= 1, got {groups!r}")
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"x: expected C, H, W >= 1, got shape {tuple(x_shape)}")
    if K < 1 or R < 1 or S < 1:
        raise ValueError(f"w: expected K, R, S >= 1, got shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"groups: input channels C={C} are not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"groups: output channels K={K} are not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(f"w: expected shape (K, C/groups, R, S) = ({K}, {C // groups}, R, S) for C={C}, "
                         f"groups={groups}, got {tuple(w_shape)}")
    sh, sw = _int_pair(strides, "strides", 1)
    dh, dw = _int_pair(dilations, "dilations", 1)
    if _is_int(pads):
        pads = (pads,) * 4
    if not isinstance(pads, (tuple, list)) or len(pads) != 4 or not all(_is_int(e) for e in pads):
        raise ValueError(f"pads: expected (top, left, bottom, right) ints or one int, got {pads!r}")
    if min(pads) < 0:
        raise ValueError(f"pads: expected values >= 0, got {tuple(pads)}")
    pt, pl, pb, pr = (int(p) for p in pads)
    Ho = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"output size would be {Ho}x{Wo}: the kernel {R}x{S} (dilations {dh},{dw}) does not "
                         f"fit the padded input {H + pt + pb}x{W + pl + pr}")
    return sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo


def _tolerance_arg(v) -> float:
    """0.0 (no limit) or a relative error in (0, 1)."""
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 < v < 1.0:
        raise ValueError(f"tolerance: expected None or a relative error between 0 and 1 (exclusive), got {v!r}")
    return float(v)


def _layout_arg(v, name: str) -> str:
    if v not in LAYOUTS:
        raise ValueError(f"{name}: expected one of {', '.join(LAYOUTS)}, got {v!r}")
    return v


def _conv_outputs(out_shape, residual, out, inputs):
    """Checks residual and out against out_shape; returns (contiguous residual or None,
    the array the kernel writes): out itself when it is C-contiguous and overlaps
    none of inputs nor the residual, else a new array (copied into out afterwards)."""
    if residual is not None:
        residual = _f32_array(residual, "residual", 4)
        if residual.shape != out_shape:
            raise ValueError(f"residual: expected shape {out_shape}, got {residual.shape}")
        residual = np.ascontiguousarray(residual)
    if out is not None:
        out = _f32_array(out, "out", 4)
        if out.shape != out_shape:
            raise ValueError(f"out: expected shape {out_shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
        overlaps = [a for a in (*inputs, residual) if a is not None and np.may_share_memory(out, a)]
        if out.flags.c_contiguous and not overlaps:
            return residual, out
    return residual, np.empty(out_shape, dtype=np.float32)


# --------------------------------------------------------------------------- conv2d
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
    x = _f32_array(x, "x", 4)
    w = _f32_array(w, "w", 4)
    N = x.shape[0]
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = _conv_layer(x.shape, w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = _conv_epilogue(activation)
    choice = _algorithm_choice(algorithm)
    tol = _tolerance_arg(tolerance)
    t = _threads_arg(threads)
    bias = _channel_vector(bias, "bias", K)
    scale = _channel_vector(scale, "scale", K)
    shift = _channel_vector(shift, "shift", K)
    residual, target = _conv_outputs((N, K, Ho, Wo), residual, out, (x, w))
    if N > 0:
        _require_ext().conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), target, bias, scale, shift,
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
        x = _f32_array(x, "x", 4)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.input_shape))}) as prepared, "
                             f"got {x.shape}")
        return _to_blocked(x, "x", threads).data if self.input_layout == "blocked" else np.ascontiguousarray(x)

    def _blocked_outputs(self, N, residual, out, x_data, threads):
        K, Ho, Wo = self.output_shape
        if residual is not None:
            if not isinstance(residual, BlockedTensor):
                residual = _to_blocked(residual, "residual", threads)
            if residual.shape != (N, K, Ho, Wo):
                raise ValueError(f"residual: expected shape {(N, K, Ho, Wo)}, got {residual.shape}")
        if out is None:
            return residual, _empty_blocked(N, K, Ho, Wo)
        if not isinstance(out, BlockedTensor):
            raise TypeError(f"out: a layer with layout='blocked' writes a BlockedTensor, got {type(out).__name__}")
        if out.shape != (N, K, Ho, Wo):
            raise ValueError(f"out: expected shape {(N, K, Ho, Wo)}, got {out.shape}")
        if not out.data.flags.writeable:
            raise ValueError("out: array is read-only")
        if np.may_share_memory(out.data, x_data):
            raise ValueError("out: must not overlap x")
        return residual, out

    def __call__(self, x, *, residual=None, out=None, threads=None):
        """y = the layer applied to x: an (N, C, H, W) array or a BlockedTensor
        (converted when it is not in input_layout). residual and out are
        arrays for layout 'nchw', BlockedTensors for layout 'blocked' (an
        NCHW residual is converted); the result is of that layout too."""
        t = self._threads if threads is None else _threads_arg(threads)
        xd = self._input(x, t)
        N = xd.shape[0]
        K, Ho, Wo = self.output_shape
        if self.layout == "blocked":
            residual, target = self._blocked_outputs(N, residual, out, xd, t)
            if N > 0:
                self._handle.run(xd, N, target.data, None if residual is None else residual.data, t)
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
    w = _f32_array(w, "w", 4)
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in input_shape)):
        raise ValueError(f"input_shape: expected (C, H, W) integers, got {input_shape!r}")
    layout = _layout_arg(layout, "layout")
    input_layout = layout if input_layout is None else _layout_arg(input_layout, "input_layout")
    C, H, W = (int(v) for v in input_shape)
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = _conv_layer((1, C, H, W), w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = _conv_epilogue(activation)
    choice = _algorithm_choice(algorithm)
    tol = _tolerance_arg(tolerance)
    t = _threads_arg(threads)
    handle = _require_ext().prepare_conv2d(
        np.ascontiguousarray(w), _channel_vector(bias, "bias", K), _channel_vector(scale, "scale", K),
        _channel_vector(shift, "shift", K), C, H, W, [sh, sw], [pt, pl, pb, pr], [dh, dw], int(groups), act,
        clip_lo, clip_hi, t, choice, tol, LAYOUTS.index(input_layout), LAYOUTS.index(layout))
    return PreparedConv2d(handle, (C, H, W), (K, Ho, Wo), t, input_layout, layout)


# --------------------------------------------------------------------------- explain
def explain_conv2d(N=1, C=None, H=None, W=None, K=None, R=None, S=None, strides=(1, 1), pads=(0, 0, 0, 0),
                   dilations=(1, 1), groups=1, threads=None, layout="nchw", input_layout=None,
                   tolerance=None, prepared=True) -> Explanation:
    """explain("conv2d", ...): the model's candidates, estimates and choice for a layer.
    prepared=True: for a prepared layer (prepare_conv2d), chosen by run time alone;
    prepared=False: for a one-off conv2d() call, whose estimates carry the
    weight preparation it pays every call (term "prepare"). The notes give the
    other mode's choice."""
    for name, v in (("N", N), ("C", C), ("H", H), ("W", W), ("K", K), ("R", R), ("S", S)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < (0 if name == "N" else 1):
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    layout = _layout_arg(layout, "layout")
    input_layout = layout if input_layout is None else _layout_arg(input_layout, "input_layout")
    g = groups if isinstance(groups, numbers.Integral) and not isinstance(groups, bool) and groups >= 1 else 1
    sh, sw, pads4, dh, dw, Ho, Wo = _conv_layer((N, C, H, W), (K, C // g, R, S), strides, pads, dilations, groups)
    t = _threads_arg(threads)
    tol = _tolerance_arg(tolerance)
    prepared = bool(prepared)
    choices = {p: _require_ext().conv2d_choice(N, C, H, W, K, R, S, [sh, sw], list(pads4), [dh, dw], int(groups), t,
                                               _algorithm_choice(None), tol, LAYOUTS.index(input_layout),
                                               LAYOUTS.index(layout), prepared=p) for p in (True, False)}
    choice = choices[prepared]
    from .codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
    from .models import conv as conv_model
    pt, pl, pb, pr = pads4
    layer = conv_model.Layer(C=C, H=H, W=W, K=K, R=R, S=S, N=max(1, N), stride_h=sh, stride_w=sw, pad_top=pt,
                             pad_left=pl, pad_bottom=pb, pad_right=pr, dilation_h=dh, dilation_w=dw,
                             groups=int(groups))
    ctx = conv_model.Context(in_blocked=input_layout == "blocked", out_blocked=layout == "blocked")
    prof = host()
    plan = conv_model.plan_layer(prof, layer, isa_suffix=isa_for_profile(prof).suffix, threads=choice["threads"],
                                 ctx=ctx, tolerance=tol or None,
                                 fixed_lanes_suffix=fixed_lanes_isa_for_profile(prof).suffix, prepared=prepared)
    notes = []
    other = choices[not prepared]
    run, prep = choices[True]["estimates"], choices[True]["prepare"]
    notes.append("prepared layer (prepare_conv2d): " + choices[True]["algorithm"] + "; one-off conv2d(): "
                 + choices[False]["algorithm"] + " (it pays the weight preparation every call)")
    notes.append("run + prepare ms: " + ", ".join(
        f"{a} {run[a] * 1e3:.3f} + {prep[a] * 1e3:.3f}" for a in run if run[a] >= 0))
    if other["algorithm"] == choice["algorithm"]:
        notes[-2] += ": the same algorithm either way"
    if choice["planned"]:
        notes.append("this layer is in a spec: the build carries its plan")
    else:
        notes.append("no spec lists this layer: the run-time model (the same formulas) chose it")
    if choice["algorithm"] != plan.algorithm:
        notes.append(f"the build's plan runs {choice['algorithm']} (planned for this build's spec thread count)")
    return Explanation(plan, plan.kernel, choice["threads"], choice["planned"], notes)
