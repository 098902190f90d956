"""matmul and gemm over the compiled kernels.

Inputs are checked here so a bad argument raises a TypeError/ValueError that
names it; the kernels then run with the GIL released. Arrays of any strides
are accepted; they are passed without copying whenever the kernel can read
them in place (any strides for a and b; for out, residual and c a contiguous
last axis and rows at a positive stride). Inputs overlapping out are read as
they were before the call (memory.py).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..vocabulary import ACTIVATIONS
from .checks import INT32_MAX, activation_code, f32_array, finite_real, flag, threads_arg, writable_out
from .guard import ext as _ext
from .guard import require_ext
from .memory import element_strided, gemm_operand, overlaps, rows_in_place, same_view, unshared, view_2d

# Activation codes of the fast path (names and the None/'gelu' aliases; anything else takes the checked path).
_FAST_ACT = {None: 0, **{n: i for i, n in enumerate(ACTIVATIONS)}, "gelu": ACTIVATIONS.index("gelu_erf")}


def _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, act, threads, out2, out_is_new):
    ext = require_ext()
    if out2.size == 0:
        return
    target = out2
    if not out_is_new:
        if not rows_in_place(out2) or overlaps(out2, a2) or overlaps(out2, b2):
            # The kernel writes rows at a positive stride while it reads a and b
            # (packing them a panel at a time): compute into a new array, copy in.
            target = np.empty(out2.shape, dtype=np.float32)
        else:
            # The epilogue reads these while out is written: they must be read as
            # they were, unless c_in is out itself (an in-place residual add).
            if c_in is not None and overlaps(c_in, out2) and not same_view(c_in, out2):
                c_in = c_in.copy()
            bias_col = unshared(bias_col, out2)
            bias_row = unshared(bias_row, out2)
    ext.gemm(element_strided(a2), element_strided(b2), target, c_in, bias_col, bias_row,
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
    if residual is None and _ext is not None and (threads is None or (type(threads) is int
                                                       and 0 < threads <= INT32_MAX)):
        act = _FAST_ACT.get(activation) if (activation is None or type(activation) is str) else None
        if act is not None:
            r = _ext.matmul_fast(a, b, bias, out, act, threads or 0)
            if r is not None:
                return r
    a = f32_array(a, "a")
    b = f32_array(b, "b", 2)
    if a.ndim < 2:
        raise ValueError(f"a: expected at least 2 dimensions (..., M, K), got shape {a.shape}")
    K = a.shape[-1]
    if b.shape[0] != K:
        raise ValueError(f"b: expected {K} rows to match a's last axis (a.shape={a.shape}), got b.shape={b.shape}")
    N = b.shape[1]
    act = activation_code(activation)
    t = threads_arg(threads)
    out_shape = a.shape[:-1] + (N,)
    a2 = a.reshape(-1, K) if a.ndim > 2 else a
    M = a2.shape[0]
    bias_col = None
    if bias is not None:
        bias = f32_array(bias, "bias")
        if bias.shape != (N,):
            raise ValueError(f"bias: expected shape ({N},), got {bias.shape}")
        bias_col = np.ascontiguousarray(bias)
    c_in = None
    if residual is not None:
        residual = f32_array(residual, "residual")
        if residual.shape != out_shape:
            raise ValueError(f"residual: expected shape {out_shape}, got {residual.shape}")
        c_in = gemm_operand(residual.reshape(M, N))
    out_is_new = out is None
    out = np.empty(out_shape, dtype=np.float32) if out_is_new else writable_out(out, "out", out_shape)
    out2 = view_2d(out, M, N)
    if out2 is None:  # leading axes not mergeable in place: compute, then copy in
        tmp = np.empty((M, N), dtype=np.float32)
        _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, tmp, True)
        out[...] = tmp.reshape(out_shape)
        return out
    _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, out2, out_is_new)
    return out


def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, trans_a=False, trans_b=False, out=None, threads=None):
    """ONNX Gemm: Y = alpha * A' @ B' + beta * C, A' = A.T if trans_a, B' = B.T if trans_b.

    c is optional and unidirectionally broadcastable to (M, N): a scalar,
    (N,), (1, N), (M, 1), (1, 1) or (M, N). Returns Y (float32, (M, N)).
    """
    a = f32_array(a, "a", 2)
    b = f32_array(b, "b", 2)
    alpha = finite_real(alpha, "alpha")
    beta = finite_real(beta, "beta")
    trans_a = flag(trans_a, "trans_a")
    trans_b = flag(trans_b, "trans_b")
    a2 = a.T if trans_a else a
    b2 = b.T if trans_b else b
    M, K = a2.shape
    if b2.shape[0] != K:
        raise ValueError(f"b: op(b) has {b2.shape[0]} rows but op(a) has {K} columns "
                         f"(a.shape={a.shape}, trans_a={trans_a}, b.shape={b.shape}, trans_b={trans_b})")
    N = b2.shape[1]
    t = threads_arg(threads)
    c_in = bias_col = bias_row = None
    if c is not None:
        if isinstance(c, numbers.Real) and not isinstance(c, bool):
            c = np.float32(c)
        if isinstance(c, np.floating):
            c = np.asarray(c, dtype=np.float32)
        c = f32_array(c, "c")
        cs = c.shape
        if c.ndim > 2 or (c.ndim == 2 and cs[0] not in (1, M)) or (c.ndim >= 1 and cs[-1] not in (1, N)):
            raise ValueError(f"c: expected a shape broadcastable to ({M}, {N}) "
                             f"(scalar, ({N},), (1, {N}), ({M}, 1) or ({M}, {N})), got {cs}")
        # Also for beta = 0: ONNX's formula gives 0 * C, NaN where C is NaN or infinite.
        if c.ndim == 2 and cs == (M, N) and (M > 1 or N == 1):
            c_in = gemm_operand(c)
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf = NaN, as the formula says
                if c.ndim == 2 and cs[1] == 1 and cs[0] == M and M > 1:
                    bias_row = np.ascontiguousarray(c[:, 0] * np.float32(beta), dtype=np.float32)
                else:
                    bias_col = np.ascontiguousarray(np.broadcast_to(c.reshape(-1) * np.float32(beta), (N,)),
                                                    dtype=np.float32)
    out_is_new = out is None
    out = np.empty((M, N), dtype=np.float32) if out_is_new else writable_out(out, "out", (M, N))
    _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, 0, t, out, out_is_new)
    return out
