"""Outputs that overlap inputs, and arrays of any strides (negative, zero):
every result equals the float64 reference computed from copies of the inputs
taken before the call; nothing is refused that the README accepts.

Policy (README): an input that overlaps an output is read as it was before
the call (the runtime copies it, or writes the result to a new array and
copies that in); `residual is out` (matmul) and `c is out` (gemm) run in place.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import assert_close, conv_ref, conv_tol, gemm_ref, matmul_ref, tolerance

f32 = np.float32


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=f32)


# --------------------------------------------------------------------------- matmul / gemm: overlap
@pytest.mark.parametrize("shift", [1, -1, 3])
def test_matmul_residual_partly_overlapping_out(ac, shift):
    """Issue 12: buf = f32(65, 96); matmul(a, b, residual=buf[:-1], out=buf[1:]) gave 6048 of 6144 wrong."""
    rng = np.random.default_rng(0)
    a, b = rand(rng, 64, 80), rand(rng, 80, 96)
    buf = rand(rng, 64 + abs(shift), 96)
    residual, out = (buf[:64], buf[shift:]) if shift > 0 else (buf[-shift:], buf[:64])
    want = matmul_ref(a, b, residual=residual.copy())
    got = ac.matmul(a, b, residual=residual, out=out)
    assert got is out
    assert_close(out, want, tolerance(a, b, 80), "residual overlapping out")


def test_matmul_residual_partly_overlapping_out_3d(ac):
    rng = np.random.default_rng(1)
    a, b = rand(rng, 2, 32, 40), rand(rng, 40, 48)
    buf = rand(rng, 2 * 32 * 48 + 5)
    residual = buf[:2 * 32 * 48].reshape(2, 32, 48)
    out = buf[5:].reshape(2, 32, 48)
    want = matmul_ref(a.reshape(-1, 40), b, residual=residual.reshape(-1, 48).copy()).reshape(2, 32, 48)
    ac.matmul(a, b, residual=residual, out=out)
    assert_close(out, want, tolerance(a.reshape(-1, 40), b, 40).reshape(2, 32, 48))


def test_matmul_in_place_residual_still_in_place(ac):
    rng = np.random.default_rng(2)
    a, b = rand(rng, 64, 64), rand(rng, 64, 96)
    r = rand(rng, 64, 96)
    want = matmul_ref(a, b, residual=r.copy(), activation_name="relu")
    got = ac.matmul(a, b, residual=r, out=r, activation="relu")
    assert got is r
    assert_close(r, want, tolerance(a, b, 64))


def test_matmul_bias_inside_out(ac):
    """bias is a row of out: the kernel must read the bias as it was."""
    rng = np.random.default_rng(3)
    a, b = rand(rng, 48, 64), rand(rng, 64, 80)
    out = rand(rng, 48, 80)
    bias = out[7]
    want = matmul_ref(a, b, bias=bias.copy())
    ac.matmul(a, b, bias=bias, out=out)
    assert_close(out, want, tolerance(a, b, 64))


def test_matmul_out_overlapping_a(ac):
    rng = np.random.default_rng(4)
    buf = rand(rng, 40, 100)
    a, out = buf[:, :50], buf[:, 30:80]
    b = rand(rng, 50, 50)
    want = matmul_ref(a.copy(), b)
    ac.matmul(a, b, out=out)
    assert_close(out, want, tolerance(a, b, 50))


@pytest.mark.parametrize("shift", [1, -1])
def test_gemm_c_partly_overlapping_out(ac, shift):
    """Issue 12: gemm(a, b, buf[:-1], out=buf[1:])."""
    rng = np.random.default_rng(5)
    a, b = rand(rng, 64, 80), rand(rng, 80, 96)
    buf = rand(rng, 65, 96)
    c, out = (buf[:-1], buf[1:]) if shift > 0 else (buf[1:], buf[:-1])
    want = gemm_ref(a, b, c.copy(), alpha=0.5, beta=2.0)
    got = ac.gemm(a, b, c, alpha=0.5, beta=2.0, out=out)
    assert got is out
    assert_close(out, want, 2 * tolerance(a, b, 80) + 1e-5 * np.abs(want))


def test_gemm_c_is_out(ac):
    rng = np.random.default_rng(6)
    a, b = rand(rng, 32, 40), rand(rng, 40, 24)
    c = rand(rng, 32, 24)
    want = gemm_ref(a, b, c.copy(), beta=-1.0)
    ac.gemm(a, b, c, beta=-1.0, out=c)
    assert_close(c, want, tolerance(a, b, 40) + 1e-6 * np.abs(want))


@pytest.mark.parametrize("c_shape", [(24,), (32, 1)])
def test_gemm_broadcast_c_inside_out(ac, c_shape):
    rng = np.random.default_rng(7)
    a, b = rand(rng, 32, 40), rand(rng, 40, 24)
    out = rand(rng, 32, 24)
    c = out[3] if c_shape == (24,) else out[:, 5:6]
    want = gemm_ref(a, b, c.copy(), beta=0.5)
    ac.gemm(a, b, c, beta=0.5, out=out)
    assert_close(out, want, tolerance(a, b, 40) + 1e-6 * np.abs(want))


# --------------------------------------------------------------------------- matmul / gemm: any strides
def _reversed(x):
    return np.ascontiguousarray(x[::-1])[::-1]   # same values, negative row stride


def test_matmul_reversed_out(ac):
    """Issue 12: out=np.zeros((5, 3), 'f4')[::-1] gave 'gemm: ldc=-3 must be >= N=3'."""
    rng = np.random.default_rng(8)
    a, b = rand(rng, 5, 4), rand(rng, 4, 3)
    out = np.zeros((5, 3), f32)[::-1]
    assert ac.matmul(a, b, out=out) is out
    assert_close(out, matmul_ref(a, b), tolerance(a, b, 4))
    big_a, big_b = rand(rng, 70, 90), rand(rng, 90, 50)
    out = np.zeros((70, 50), f32)[::-1]
    ac.matmul(big_a, big_b, out=out, threads=2)
    assert_close(out, matmul_ref(big_a, big_b), tolerance(big_a, big_b, 90))


@pytest.mark.parametrize("kind", ["reversed", "broadcast row", "broadcast column", "reversed columns",
                                  "strided rows", "short row stride"])
def test_matmul_residual_any_strides(ac, kind):
    """Issue 12: residual=...[::-1] and residual=np.broadcast_to(v, (5, 3))."""
    rng = np.random.default_rng(9)
    M, K, N = 5, 4, 3
    a, b = rand(rng, M, K), rand(rng, K, N)
    v = rand(rng, M, N)
    residual = {"reversed": _reversed(v),
                "broadcast row": np.broadcast_to(v[0], (M, N)),
                "broadcast column": np.broadcast_to(v[:, :1], (M, N)),
                "reversed columns": np.ascontiguousarray(v[:, ::-1])[:, ::-1],
                "strided rows": np.repeat(v, 3, axis=0)[::3],
                "short row stride": np.lib.stride_tricks.as_strided(v.reshape(-1), (M, N), (8, 4))}[kind]
    want = matmul_ref(a, b, residual=residual.copy())
    assert_close(ac.matmul(a, b, residual=residual), want, tolerance(a, b, K))
    out = np.zeros((M, N), f32)[::-1]
    assert_close(ac.matmul(a, b, residual=residual, out=out), want, tolerance(a, b, K))


@pytest.mark.parametrize("kind", ["reversed", "broadcast", "reversed out"])
def test_gemm_any_strides(ac, kind):
    """Issue 12: c=...[::-1]; the output and c of any strides."""
    rng = np.random.default_rng(10)
    M, K, N = 6, 5, 4
    a, b = rand(rng, M, K), rand(rng, K, N)
    v = rand(rng, M, N)
    c = {"reversed": _reversed(v), "broadcast": np.broadcast_to(v[1], (M, N)), "reversed out": v}[kind]
    out = np.zeros((M, N), f32)[::-1] if kind == "reversed out" else None
    want = gemm_ref(a, b, c.copy(), alpha=1.5, beta=0.5)
    got = ac.gemm(a, b, c, alpha=1.5, beta=0.5, out=out)
    assert out is None or got is out
    assert_close(got, want, 2 * tolerance(a, b, K) + 1e-6 * np.abs(want))


@pytest.mark.parametrize("kind", ["reversed a", "reversed b", "broadcast a", "broadcast b", "reversed 3-D out"])
def test_matmul_inputs_any_strides(ac, kind):
    rng = np.random.default_rng(11)
    a, b = rand(rng, 2, 6, 5), rand(rng, 5, 7)
    out = None
    if kind == "reversed a":
        a = np.ascontiguousarray(a[:, ::-1, ::-1])[:, ::-1, ::-1]
    elif kind == "reversed b":
        b = np.ascontiguousarray(b[::-1, ::-1])[::-1, ::-1]
    elif kind == "broadcast a":
        a = np.broadcast_to(a[:1, :1], a.shape)
    elif kind == "broadcast b":
        b = np.broadcast_to(b[:, :1], b.shape)
    else:
        out = np.zeros((2, 6, 7), f32)[::-1, ::-1]
    want = matmul_ref(a.reshape(-1, 5), b).reshape(2, 6, 7)
    got = ac.matmul(a, b, out=out)
    assert out is None or got is out
    assert_close(got, want, tolerance(a.reshape(-1, 5), b, 5).reshape(2, 6, 7))


# --------------------------------------------------------------------------- conv2d
CONV = dict(strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), groups=1)


def _conv_inputs(seed, N=2, C=8, H=6, W=7, K=8):
    rng = np.random.default_rng(seed)
    return rand(rng, N, C, H, W), rand(rng, K, C, 3, 3) * f32(0.3), rand(rng, K), rng


@pytest.mark.parametrize("algorithm", [None, "direct", "im2col-gemm", "winograd-f2"])
def test_conv2d_residual_partly_overlapping_out(ac, algorithm):
    x, w, bias, rng = _conv_inputs(12)
    shape = (2, 8, 6, 7)
    n = int(np.prod(shape))
    buf = rand(rng, n + 7)
    residual, out = buf[:n].reshape(shape), buf[7:].reshape(shape)
    want = conv_ref(x, w, bias, residual=residual.copy(), activation="relu", **CONV)
    got = ac.conv2d(x, w, bias, residual=residual, out=out, activation="relu", algorithm=algorithm, **CONV)
    assert got is out
    assert_close(out, want, conv_tol(x, w, want, 1))


def test_conv2d_epilogue_vectors_inside_out(ac):
    """bias, scale and shift are rows of a C-contiguous out (K = W = 7)."""
    x, w, _, rng = _conv_inputs(13, K=7)
    out = rand(rng, 2, 7, 6, 7)
    bias, scale, shift = out[0, 0, 0], out[1, 2, 3], out[0, 1, 2]
    want = conv_ref(x, w, bias.copy(), scale=scale.copy(), shift=shift.copy(), **CONV)
    assert ac.conv2d(x, w, bias, scale=scale, shift=shift, out=out, **CONV) is out
    assert_close(out, want, conv_tol(x, w, want, 1))


@pytest.mark.parametrize("kind", ["reversed out", "reversed residual", "broadcast residual"])
def test_conv2d_any_strides(ac, kind):
    x, w, bias, rng = _conv_inputs(14)
    v = rand(rng, 2, 8, 6, 7)
    residual = {"reversed out": v, "reversed residual": np.ascontiguousarray(v[..., ::-1])[..., ::-1],
                "broadcast residual": np.broadcast_to(v[:1, :, :1], v.shape)}[kind]
    out = np.zeros(v.shape, f32)[:, ::-1, ::-1] if kind == "reversed out" else None
    want = conv_ref(x, w, bias, residual=residual.copy(), **CONV)
    got = ac.conv2d(x, w, bias, residual=residual, out=out, **CONV)
    assert out is None or got is out
    assert_close(got, want, conv_tol(x, w, want, 1))
    layer = ac.prepare_conv2d(w, bias, input_shape=(8, 6, 7), **CONV)
    out2 = None if out is None else np.zeros(v.shape, f32)[::-1]
    got = layer(np.ascontiguousarray(x[:, ::-1])[:, ::-1], residual=residual, out=out2)
    assert_close(got, want, conv_tol(x, w, want, 1))


def test_prepared_nchw_residual_partly_overlapping_out(ac):
    x, w, bias, rng = _conv_inputs(15)
    layer = ac.prepare_conv2d(w, bias, input_shape=(8, 6, 7), **CONV)
    shape = (2, 8, 6, 7)
    n = int(np.prod(shape))
    buf = rand(rng, n + 3)
    residual, out = buf[3:].reshape(shape), buf[:n].reshape(shape)
    want = conv_ref(x, w, bias, residual=residual.copy(), **CONV)
    assert layer(x, residual=residual, out=out) is out
    assert_close(out, want, conv_tol(x, w, want, 1))


def _blocked_views(ac, shape, offsets, rng):
    """BlockedTensors of logical `shape` at the given float offsets in one buffer."""
    N, C, H, W = shape
    B = ac.block_size()
    dims = (N, -(-C // B), H, W, B)
    n = int(np.prod(dims))
    buf = rand(rng, n + max(offsets))
    return [ac.BlockedTensor(buf[o:o + n].reshape(dims), C) for o in offsets]


@pytest.mark.parametrize("offsets", [(0, 5), (5, 0), (0, 0)], ids=["out after", "out before", "same"])
def test_prepared_blocked_residual_sharing_out(ac, offsets):
    """Issue 12: blocked prepared layers whose residual and out share a buffer."""
    x, w, bias, rng = _conv_inputs(16)
    layer = ac.prepare_conv2d(w, bias, input_shape=(8, 6, 7), activation="relu", layout="blocked", **CONV)
    residual, out = _blocked_views(ac, (2, 8, 6, 7), offsets, rng)
    r = rand(rng, 2, 8, 6, 7)
    residual.data[...] = ac.to_blocked(r).data
    want = conv_ref(x, w, bias, residual=r, activation="relu", **CONV)
    got = layer(ac.to_blocked(x), residual=residual, out=out)
    assert got is out
    assert_close(out.to_nchw(), want, conv_tol(x, w, want, 1))


@pytest.mark.parametrize("offsets", [(0, 3), (0, 0)], ids=["partly", "same"])
def test_prepared_blocked_x_sharing_out(ac, offsets):
    """out overlapping x: once refused ('out: must not overlap x'), now read as it was."""
    x, w, bias, rng = _conv_inputs(17)
    layer = ac.prepare_conv2d(w, bias, input_shape=(8, 6, 7), layout="blocked", **CONV)
    xb, out = _blocked_views(ac, (2, 8, 6, 7), offsets, rng)
    xb.data[...] = ac.to_blocked(x).data
    want = conv_ref(x, w, bias, **CONV)
    assert layer(xb, out=out) is out
    assert_close(out.to_nchw(), want, conv_tol(x, w, want, 1))
