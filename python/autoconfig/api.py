"""Runtime API over the compiled kernels: matmul, gemm, host, explain.

Inputs are checked here so a bad argument raises a TypeError/ValueError that
names it; the kernels then run with the GIL released. Arrays of any strides
are accepted; they are passed without copying whenever the kernel can read
them in place (any strides for a and b, a contiguous last axis for out,
residual and c).
"""
from __future__ import annotations

import json
import numbers
from typing import Optional, Sequence

import numpy as np

from ._isa_guard import ext as _ext
from .plan import Plan, plans_from_json
from .profile import HostProfile

ACTIVATIONS = ("none", "relu", "relu6", "gelu_tanh", "gelu_erf")
_ACT_ALIASES = {None: "none", "gelu": "gelu_erf"}
_FAST_ACT = {None: 0, **{n: i for i, n in enumerate(ACTIVATIONS)}, "gelu": 4}
_ND = np.ndarray


def _require_ext():
    if _ext is None:
        raise RuntimeError("autoconfig's compiled kernels are not built in this tree: "
                           "install the package (pip install .) to use the runtime API")
    return _ext


def _activation_code(activation) -> int:
    try:
        name = _ACT_ALIASES.get(activation, activation)
    except TypeError:  # unhashable
        name = None
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation: expected None or one of {', '.join(ACTIVATIONS)} "
                         f"(or 'gelu' = gelu_erf), got {activation!r}")
    return ACTIVATIONS.index(name)


def _threads_arg(threads) -> int:
    if threads is None:
        return 0
    if type(threads) is int and threads >= 1:   # fast path for the common case
        return threads
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads: expected None or an integer >= 1, got {threads!r}")
    return int(threads)


_F32 = np.dtype(np.float32)


def _f32_array(x, name: str, ndim: Optional[int] = None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32, got {type(x).__name__}")
    if x.dtype != _F32:
        raise TypeError(f"{name}: expected dtype float32, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}")
    return x


def _element_strided(x: np.ndarray) -> np.ndarray:
    """Kernels take strides in elements: a view whose byte strides are not
    multiples of 4 (possible with np.lib.stride_tricks) is copied."""
    for s in x.strides:
        if s % 4:
            return np.ascontiguousarray(x)
    return x


def _row_contiguous(x: np.ndarray) -> np.ndarray:
    """Last axis contiguous (what the kernel needs for C-like operands)."""
    if x.shape[-1] > 1 and x.strides[-1] != 4:
        return np.ascontiguousarray(x)
    return _element_strided(x)


def _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, act, threads, out2, out_is_new):
    ext = _require_ext()
    if out2.size == 0:
        return
    target = out2
    if not out_is_new:
        # The kernel writes out while reading a and b: never let them overlap;
        # it also needs out's rows contiguous.
        if (out2.shape[1] > 1 and out2.strides[1] != 4) or out2.strides[0] % 4 \
                or np.may_share_memory(out2, a2) or np.may_share_memory(out2, b2):
            target = np.empty(out2.shape, dtype=np.float32)
            if c_in is not None and np.may_share_memory(c_in, out2):
                c_in = c_in.copy()
    ext.gemm(_element_strided(a2), _element_strided(b2), target, c_in, bias_col, bias_row,
             float(alpha), float(beta), act, threads)
    if target is not out2:
        out2[...] = target


def matmul(a, b, *, bias=None, activation=None, residual=None, out=None, threads=None):
    """out = activation(a @ b + bias + residual).

    a: (..., M, K) float32; leading axes are flattened into M (b is shared).
    b: (K, N) float32. bias: (N,) float32. residual: same shape as the result
    (may be `out` itself for an in-place residual add). activation: None,
    'relu', 'relu6', 'gelu_tanh', 'gelu_erf' (alias 'gelu').
    threads: None (the plan's choice for this shape) or a count >= 1.
    """
    # Fast path: the compiled module takes two 2-D float32 arrays, an optional
    # bias and `out` as they are, or returns None for anything unusual; the
    # checked path below then handles it (or explains what is wrong).
    if residual is None and _ext is not None and (threads is None or (type(threads) is int and threads > 0)):
        act = _FAST_ACT.get(activation) if (activation is None or type(activation) is str) else None
        if act is not None:
            r = _ext.matmul_fast(a, b, bias, out, act, threads or 0)
            if r is not None:
                return r
    a = _f32_array(a, "a")
    b = _f32_array(b, "b", 2)
    if a.ndim < 2:
        raise ValueError(f"a: expected at least 2 dimensions (..., M, K), got shape {a.shape}")
    K = a.shape[-1]
    if b.shape[0] != K:
        raise ValueError(f"b: expected {K} rows to match a's last axis (a.shape={a.shape}), got b.shape={b.shape}")
    N = b.shape[1]
    act = _activation_code(activation)
    t = _threads_arg(threads)
    out_shape = a.shape[:-1] + (N,)
    a2 = a.reshape(-1, K) if a.ndim > 2 else a
    M = a2.shape[0]
    bias_col = None
    if bias is not None:
        bias = _f32_array(bias, "bias")
        if bias.shape != (N,):
            raise ValueError(f"bias: expected shape ({N},), got {bias.shape}")
        bias_col = np.ascontiguousarray(bias)
    c_in = None
    if residual is not None:
        residual = _f32_array(residual, "residual")
        if residual.shape != out_shape:
            raise ValueError(f"residual: expected shape {out_shape}, got {residual.shape}")
        c_in = _row_contiguous(residual.reshape(M, N))
    out_is_new = out is None
    if out_is_new:
        out = np.empty(out_shape, dtype=np.float32)
    else:
        out = _f32_array(out, "out")
        if out.shape != out_shape:
            raise ValueError(f"out: expected shape {out_shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
    out2 = _view_2d(out, M, N)
    if out2 is None:  # leading axes not mergeable in place: compute, then copy in
        tmp = np.empty((M, N), dtype=np.float32)
        _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, tmp, True)
        out[...] = tmp.reshape(out_shape)
        return out
    _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, out2, out_is_new)
    return out


def _view_2d(x: np.ndarray, M: int, N: int):
    """x as an (M, N) view without copying, or None when that needs a copy."""
    if x.ndim == 2:
        return x
    try:
        return np.reshape(x, (M, N), copy=False)
    except TypeError:  # NumPy < 2.1 has no copy= on reshape
        v = x.view()
        try:
            v.shape = (M, N)
        except AttributeError:
            return None
        return v
    except ValueError:
        return None


def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, trans_a=False, trans_b=False, out=None, threads=None):
    """ONNX Gemm: Y = alpha * A' @ B' + beta * C, A' = A.T if trans_a, B' = B.T if trans_b.

    c is optional and unidirectionally broadcastable to (M, N): a scalar,
    (N,), (1, N), (M, 1), (1, 1) or (M, N). Returns Y (float32, (M, N)).
    """
    a = _f32_array(a, "a", 2)
    b = _f32_array(b, "b", 2)
    for name, v in (("alpha", alpha), ("beta", beta)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ValueError(f"{name}: expected a finite real number, got {v!r}")
    for name, v in (("trans_a", trans_a), ("trans_b", trans_b)):
        if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
            raise ValueError(f"{name}: expected a bool, got {v!r}")
    a2 = a.T if trans_a else a
    b2 = b.T if trans_b else b
    M, K = a2.shape
    if b2.shape[0] != K:
        raise ValueError(f"b: op(b) has {b2.shape[0]} rows but op(a) has {K} columns "
                         f"(a.shape={a.shape}, trans_a={bool(trans_a)}, b.shape={b.shape}, trans_b={bool(trans_b)})")
    N = b2.shape[1]
    t = _threads_arg(threads)
    c_in = bias_col = bias_row = None
    if c is not None:
        if isinstance(c, numbers.Real) and not isinstance(c, bool):
            c = np.float32(c)
        if isinstance(c, np.floating):
            c = np.asarray(c, dtype=np.float32)
        c = _f32_array(c, "c")
        cs = c.shape
        if c.ndim > 2 or (c.ndim == 2 and cs[0] not in (1, M)) or (c.ndim >= 1 and cs[-1] not in (1, N)):
            raise ValueError(f"c: expected a shape broadcastable to ({M}, {N}) "
                             f"(scalar, ({N},), (1, {N}), ({M}, 1) or ({M}, {N})), got {cs}")
        if beta != 0.0:
            if c.ndim == 2 and cs == (M, N) and (M > 1 or N == 1):
                c_in = _row_contiguous(c)
            elif c.ndim == 2 and cs[1] == 1 and cs[0] == M and M > 1:
                bias_row = np.ascontiguousarray(c[:, 0] * np.float32(beta), dtype=np.float32)
            else:
                bias_col = np.ascontiguousarray(np.broadcast_to(c.reshape(-1) * np.float32(beta), (N,)),
                                                dtype=np.float32)
    out_is_new = out is None
    if out_is_new:
        out = np.empty((M, N), dtype=np.float32)
    else:
        out = _f32_array(out, "out", 2)
        if out.shape != (M, N):
            raise ValueError(f"out: expected shape ({M}, {N}), got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
    _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, 0, t, out, out_is_new)
    return out


_CONV_ACTS = ("none", "relu", "relu6")


def _int_pair(v, name: str, minimum: int):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (v, v)
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v)):
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


CONV_ALGORITHMS = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")


def _conv_algorithms_mask(algorithm) -> int:
    """algorithm: None (the model chooses), one name, or a sequence of names to choose among."""
    if algorithm is None:
        return 0xFFFFFFFF
    names = [algorithm] if isinstance(algorithm, str) else list(algorithm)
    mask = 0
    for n in names:
        if n not in CONV_ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {', '.join(CONV_ALGORITHMS)} (or a list of them), got {n!r}")
        mask |= 1 << CONV_ALGORITHMS.index(n)
    if not mask:
        raise ValueError("algorithm: the list is empty")
    return mask


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
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
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
    if isinstance(pads, numbers.Integral) and not isinstance(pads, bool):
        pads = (pads,) * 4
    if (not isinstance(pads, (tuple, list)) or len(pads) != 4
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in pads)):
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


def conv2d(x, w, bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1,
           scale=None, shift=None, activation=None, residual=None, out=None, threads=None, algorithm=None):
    """2-D convolution, ONNX Conv semantics, NCHW float32.

    x: (N, C, H, W); w: (K, C/groups, R, S); bias, scale, shift: (K,).
    pads: (top, left, bottom, right) or one int; strides, dilations: int or pair.
    out = activation(scale * (conv(x, w) + bias) + shift + residual), activation None,
    'relu', 'relu6' or ('clip', lo, hi); scale/shift are a folded batch-norm.
    Depthwise (groups == C) and channel multipliers (K = m * C) are groups like any other.
    algorithm: None lets the analytical model choose (see explain("conv2d", ...));
    a name from CONV_ALGORITHMS (or a list of names) restricts the choice.
    """
    x = _f32_array(x, "x", 4)
    w = _f32_array(w, "w", 4)
    N = x.shape[0]
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = _conv_layer(x.shape, w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = _conv_epilogue(activation)
    mask = _conv_algorithms_mask(algorithm)
    t = _threads_arg(threads)
    bias = _channel_vector(bias, "bias", K)
    scale = _channel_vector(scale, "scale", K)
    shift = _channel_vector(shift, "shift", K)
    residual, target = _conv_outputs((N, K, Ho, Wo), residual, out, (x, w))
    if N > 0:
        _require_ext().conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), target, bias, scale, shift,
                              residual, [sh, sw], [pt, pl, pb, pr], [dh, dw], int(groups), act, clip_lo, clip_hi,
                              t, mask)
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


class PreparedConv2d:
    """A conv layer whose weights are folded (batch-norm) and re-laid out or
    transformed (direct, Winograd) once, for the algorithm the model chose;
    calling it runs only the convolution. Made by prepare_conv2d()."""

    def __init__(self, handle, input_shape, output_chw, threads: int):
        self._handle = handle
        self.input_shape = input_shape            # (C, H, W)
        self.output_shape = output_chw            # (K, Ho, Wo)
        self._threads = threads

    @property
    def algorithm(self) -> str:
        return self._handle.algorithm

    def __call__(self, x, *, residual=None, out=None, threads=None):
        x = _f32_array(x, "x", 4)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.input_shape))}) as prepared, "
                             f"got {x.shape}")
        residual, target = _conv_outputs((x.shape[0],) + self.output_shape, residual, out, (x,))
        t = self._threads if threads is None else _threads_arg(threads)
        if x.shape[0] > 0:
            self._handle.run(np.ascontiguousarray(x), target, residual, t)
        if out is not None and target is not out:
            out[...] = target
            return out
        return target


def prepare_conv2d(w, bias=None, *, input_shape, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1,
                   scale=None, shift=None, activation=None, threads=None, algorithm=None) -> PreparedConv2d:
    """Prepare a conv layer once for inputs of shape (N, *input_shape), input_shape = (C, H, W);
    the arguments mean what they mean for conv2d(). The returned object runs
    the layer: prepared(x, residual=None, out=None, threads=None)."""
    w = _f32_array(w, "w", 4)
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in input_shape)):
        raise ValueError(f"input_shape: expected (C, H, W) integers, got {input_shape!r}")
    C, H, W = (int(v) for v in input_shape)
    K = w.shape[0]
    sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo = _conv_layer((1, C, H, W), w.shape, strides, pads, dilations, groups)
    act, clip_lo, clip_hi = _conv_epilogue(activation)
    mask = _conv_algorithms_mask(algorithm)
    t = _threads_arg(threads)
    handle = _require_ext().prepare_conv2d(
        np.ascontiguousarray(w), _channel_vector(bias, "bias", K), _channel_vector(scale, "scale", K),
        _channel_vector(shift, "shift", K), C, H, W, [sh, sw], [pt, pl, pb, pr], [dh, dw], int(groups), act,
        clip_lo, clip_hi, t, mask)
    return PreparedConv2d(handle, (C, H, W), (K, Ho, Wo), t)


def host() -> HostProfile:
    """The HostProfile the kernels in this build were planned for."""
    return HostProfile.from_json(_require_ext().host_profile_json())


def plans():
    """Every plan compiled into this build."""
    return plans_from_json(_require_ext().plans_json())


def build_info() -> dict:
    ext = _require_ext()
    return {"isa": ext.build_isa(), "target": ext.build_target(),
            "required_features": list(ext.required_features()),
            "cpu_features": list(ext.cpu_features()),
            "variants": list(ext.build_variants())}


class Explanation:
    """What runs for a call, and why: the plan, plus run-time decisions."""

    def __init__(self, plan: Plan, kernel: str, threads: int, specialized: bool, notes: Sequence[str]):
        self.plan = plan
        self.kernel = kernel
        self.threads = threads
        self.specialized = specialized
        self.notes = list(notes)

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "threads": self.threads, "specialized": self.specialized,
                "notes": self.notes, "plan": self.plan.to_dict()}

    def __str__(self) -> str:
        head = [f"runs {self.kernel} with {self.threads} thread(s) "
                f"({'shape-specialized' if self.specialized else 'generic'} kernel)"]
        return "\n".join(head + [f"note: {n}" for n in self.notes] + [self.plan.explain()])

    __repr__ = __str__


def _explain_conv2d(N=1, C=None, H=None, W=None, K=None, R=None, S=None, strides=(1, 1), pads=(0, 0, 0, 0),
                    dilations=(1, 1), groups=1, threads=None) -> "Explanation":
    for name, v in (("N", N), ("C", C), ("H", H), ("W", W), ("K", K), ("R", R), ("S", S)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < (0 if name == "N" else 1):
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    g = groups if isinstance(groups, numbers.Integral) and not isinstance(groups, bool) and groups >= 1 else 1
    sh, sw, pads4, dh, dw, Ho, Wo = _conv_layer((N, C, H, W), (K, C // g, R, S), strides, pads, dilations, groups)
    t = _threads_arg(threads)
    choice = _require_ext().conv2d_choice(N, C, H, W, K, R, S, [sh, sw], list(pads4), [dh, dw], int(groups), t,
                                          0xFFFFFFFF)
    from .models import conv as conv_model
    layer = conv_model.Layer(max(1, N), C, H, W, K, R, S, sh, sw, *pads4, dh, dw, int(groups))
    prof = host()
    from .codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
    plan = conv_model.plan_layer(prof, layer, isa_suffix=isa_for_profile(prof).suffix, threads=choice["threads"],
                                 fixed_lanes_suffix=fixed_lanes_isa_for_profile(prof).suffix)
    notes = []
    if choice["planned"]:
        notes.append("this layer is in a spec: the build carries its plan")
    else:
        notes.append("no spec lists this layer: the run-time model (the same formulas) chose it")
    if choice["algorithm"] != plan.algorithm:
        notes.append(f"the build's plan runs {choice['algorithm']} (planned for this build's spec thread count)")
    return Explanation(plan, plan.kernel, choice["threads"], choice["planned"], notes)


def explain(op: str = "matmul", *, M: int = None, N: int = None, K: int = None, activation=None, threads=None,
            **conv) -> Explanation:
    """The plan and the reasons behind the kernel a call of this shape runs.

    matmul / gemm: explain("matmul", M=.., N=.., K=..).
    conv2d: explain("conv2d", N=1, C=.., H=.., W=.., K=.., R=.., S=.., strides=.., pads=..,
    dilations=.., groups=..): every algorithm's estimate and the choice."""
    if op == "conv2d":
        return _explain_conv2d(N=1 if N is None else N, K=K, threads=threads, **conv)
    if conv:
        raise TypeError(f"explain({op!r}): unexpected arguments {sorted(conv)}")
    if op not in ("matmul", "gemm"):
        raise ValueError(f"op: expected 'matmul', 'gemm' or 'conv2d', got {op!r}")
    for name, v in (("M", M), ("N", N), ("K", K)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    act = _activation_code(activation)
    t = _threads_arg(threads)
    choice = _require_ext().gemm_choice(int(M), int(N), int(K), act, t)
    by_kernel = {p.kernel: p for p in plans()}
    plan = by_kernel[choice["kernel"]]
    notes = []
    if not choice["specialized"]:
        from .models import gemm as gemm_model
        prof = host()
        mr, nr = plan.value("mr"), plan.value("nr")
        tile = gemm_model.Tile(mr, nr, nr // max(1, prof.lanes_f32))
        est = gemm_model.estimate(gemm_model.Machine(prof), tile, int(M), int(N), int(K), choice["threads"],
                                  plan.value("loop_order"))
        notes.append("no kernel specialized for this shape (add it to a spec to get one); "
                     f"the generic kernel runs with kc={est.kc}, mc={est.mc}, nc={est.nc}, "
                     f"grid {est.grid[0]}x{est.grid[1]}")
        notes.append(f"model estimate for this shape: {est.seconds * 1e6:.1f} us ("
                     + ", ".join(f"{k}={v * 1e6:.1f}us" for k, v in est.terms.items()) + ")")
    return Explanation(plan, choice["kernel"], choice["threads"], choice["specialized"], notes)
