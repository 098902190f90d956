"""Independent references for the tests: float64 NumPy, written without the
code under test. conv_ref: zero-padded input, one strided slice per kernel
tap, einsum per group."""
from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def activation(x: np.ndarray, name) -> np.ndarray:
    if name in (None, "none"):
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name in ("gelu_erf", "gelu"):
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    raise ValueError(name)


_activation = activation   # conv_ref's argument of that name shadows the function


def matmul_ref(a, b, bias=None, activation_name=None, residual=None):
    y = a.astype(np.float64) @ b.astype(np.float64)
    if bias is not None:
        y = y + bias.astype(np.float64)
    if residual is not None:
        y = y + residual.astype(np.float64)
    return activation(y, activation_name)


def gemm_ref(a, b, c=None, alpha=1.0, beta=1.0, trans_a=False, trans_b=False):
    A = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    B = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    y = alpha * (A @ B)
    if c is not None:
        y = y + beta * np.asarray(c, dtype=np.float64)
    return y


def tolerance(a, b, K: int, scale: float = 1.0):
    """Error bound that grows with K: K * eps32 * (|A| @ |B|), plus a floor."""
    eps = np.finfo(np.float32).eps
    mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    return 2.0 * max(K, 1) * eps * mag * scale + 1e-6


def assert_close(got, want, tol, what=""):
    got = np.asarray(got, dtype=np.float64)
    err = np.abs(got - want)
    bad = err > tol
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} entries off; first at {idx}: "
                             f"got {got[idx]!r}, want {want[idx]!r}, tol {np.broadcast_to(tol, got.shape)[idx]!r}")


def conv_ref(x, w, bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1,
             scale=None, shift=None, activation=None, residual=None):
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    Ho = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
    y = np.zeros((N, K, Ho, Wo))
    Kg = K // groups
    for r in range(R):
        for s in range(S):
            patch = xp[:, :, r * dh: r * dh + sh * (Ho - 1) + 1: sh, s * dw: s * dw + sw * (Wo - 1) + 1: sw]
            for g in range(groups):
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch[:, g * Cg:(g + 1) * Cg],
                                                       w[g * Kg:(g + 1) * Kg, :, r, s])
    if bias is not None:
        y += bias.astype(np.float64)[None, :, None, None]
    if scale is not None:
        y *= scale.astype(np.float64)[None, :, None, None]
    if shift is not None:
        y += shift.astype(np.float64)[None, :, None, None]
    if residual is not None:
        y += residual.astype(np.float64)
    return _activation(y, activation)


def conv_tol(x, w, want, groups):
    """K-proportional bound: taps per output times eps times |x| |w| magnitudes."""
    taps = w.shape[1] * w.shape[2] * w.shape[3]
    mag = np.abs(x).max() * np.abs(w).max() * taps
    return 4 * taps * np.finfo(np.float32).eps * mag + 1e-5 * (1 + np.abs(want))


def softmax_ref(x, axis, flatten, log):
    """Softmax / LogSoftmax over `axis` (flatten: ONNX opset < 13, over all axes from it on), in float64."""
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    if flatten:
        x = x.reshape(int(np.prod(shape[:axis])), -1)
        axis = 1
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    y = (x - m - np.log(s)) if log else e / s
    return y.reshape(shape)
