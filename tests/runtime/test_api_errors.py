"""Bad input raises TypeError/ValueError naming the argument; never a crash."""
from __future__ import annotations

import numpy as np
import pytest

f32 = np.float32


def A(*s):
    return np.ones(s, dtype=f32)


CASES = [
    # (callable, exception, fragment of the message)
    (lambda ac: ac.matmul([[1.0]], A(1, 1)), TypeError, "a: expected a numpy.ndarray"),
    (lambda ac: ac.matmul(A(2, 2).astype(np.float64), A(2, 2)), TypeError, "a: expected dtype float32, got float64"),
    (lambda ac: ac.matmul(A(2, 2), A(2, 2).astype(np.int32)), TypeError, "b: expected dtype float32"),
    (lambda ac: ac.matmul(A(3), A(3, 2)), ValueError, "a: expected at least 2 dimensions"),
    (lambda ac: ac.matmul(A(2, 3), A(3)), ValueError, "b: expected a 2-D array"),
    (lambda ac: ac.matmul(A(2, 3), A(4, 2)), ValueError, "b: expected 3 rows"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), bias=A(3)), ValueError, "bias: expected shape (4,)"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), bias=np.ones(4)), TypeError, "bias: expected dtype float32"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), residual=A(4, 2)), ValueError, "residual: expected shape (2, 4)"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), activation="swish"), ValueError, "activation: expected None or one of"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), activation=3), ValueError, "activation:"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), threads=0), ValueError, "threads: expected None or an integer >= 1"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), threads=-2), ValueError, "threads:"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), threads=True), ValueError, "threads:"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), threads=1.5), ValueError, "threads:"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), out=A(4, 2)), ValueError, "out: expected shape (2, 4)"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), out=np.ones((2, 4))), TypeError, "out: expected dtype float32"),
    (lambda ac: ac.gemm(A(2, 3), A(2, 4)), ValueError, "b: op(b) has 2 rows but op(a) has 3 columns"),
    (lambda ac: ac.gemm(A(3, 2), A(3, 4), trans_a=False), ValueError, "trans_a=False"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), A(3, 4)), ValueError, "c: expected a shape broadcastable to (2, 4)"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), A(5)), ValueError, "c: expected a shape broadcastable"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), A(1, 1, 1)), ValueError, "c: expected a shape broadcastable"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), np.ones((2, 4))), TypeError, "c: expected dtype float32"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), alpha=float("nan")), ValueError, "alpha: expected a finite real"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), beta="1"), ValueError, "beta: expected a finite real"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), trans_b="yes"), ValueError, "trans_b: expected a bool"),
    (lambda ac: ac.gemm(A(2, 3, 1), A(3, 4)), ValueError, "a: expected a 2-D array"),
    (lambda ac: ac.explain("conv9d", M=1, N=1, K=1), ValueError, "op: expected 'matmul', 'gemm', 'conv2d' or 'attention'"),
    (lambda ac: ac.explain("matmul", M=0, N=1, K=1), ValueError, "M: expected a positive integer"),
]


@pytest.mark.parametrize("call,exc,fragment", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_arguments(ac, call, exc, fragment):
    with pytest.raises(exc) as info:
        call(ac)
    assert fragment in str(info.value)


def test_read_only_out(ac):
    out = np.zeros((2, 4), dtype=f32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out: array is read-only"):
        ac.matmul(A(2, 3), A(3, 4), out=out)


def A4(*s):
    return np.ones(s, dtype=f32)


BIG = 2 ** 31        # one past the C++ int a thread count is
HUGE = 2 ** 63       # one past int64, the C++ type of every size

# Issue 12: integers outside what the C++ side takes gave nanobind's "incompatible function arguments" dump.
RANGE_CASES = [
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), threads=BIG), "threads: expected None or an integer >= 1"),
    (lambda ac: ac.matmul(A(2, 3), A(3, 4), residual=A(2, 4), threads=np.int64(BIG)), "threads:"),
    (lambda ac: ac.gemm(A(2, 3), A(3, 4), threads=HUGE), "threads:"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), threads=BIG), "threads:"),
    (lambda ac: ac.prepare_conv2d(A4(2, 3, 3, 3), input_shape=(3, 5, 5), threads=BIG), "threads:"),
    (lambda ac: ac.prepare_conv2d(A4(2, 3, 3, 3), input_shape=(3, 5, 5))(A4(1, 3, 5, 5), threads=BIG), "threads:"),
    (lambda ac: ac.to_blocked(A4(1, 3, 5, 5), threads=BIG), "threads:"),
    (lambda ac: ac.to_blocked(A4(1, 3, 5, 5)).to_nchw(threads=HUGE), "threads:"),
    (lambda ac: ac.explain("matmul", M=HUGE, N=1, K=1), "M: expected a positive integer"),
    (lambda ac: ac.explain("matmul", M=1, N=HUGE, K=1), "N: expected a positive integer"),
    (lambda ac: ac.explain("gemm", M=1, N=1, K=HUGE), "K: expected a positive integer"),
    (lambda ac: ac.explain("matmul", M=2 ** 40, N=2 ** 40, K=1), f"M, N: the result's M*N = {2 ** 80} elements"),
    (lambda ac: ac.explain("matmul", M=1, N=1, K=1, threads=BIG), "threads:"),
    (lambda ac: ac.explain("conv2d", C=HUGE, H=5, W=5, K=2, R=3, S=3), "C: expected a positive integer"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=5, K=2, R=3, S=3, N=HUGE), "N: expected"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=BIG, K=2, R=3, S=3), "W: expected a positive integer"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=5, K=2, R=3, S=3, strides=HUGE), "strides: expected values"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=5, K=2, R=3, S=3, pads=(0, 0, 0, HUGE)), "pads: expected values"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=5, K=2, R=3, S=3, dilations=(BIG, 1)), "dilations: expected"),
    (lambda ac: ac.explain("conv2d", C=3, H=5, W=5, K=2, R=3, S=3, groups=HUGE), "groups: expected an integer"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), strides=(1, HUGE)), "strides: expected values"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), pads=BIG), "pads: expected values"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), dilations=HUGE), "dilations: expected"),
    (lambda ac: ac.conv2d(A4(1, 3, 5, 5), A4(2, 3, 3, 3), groups=HUGE), "groups: expected an integer"),
    (lambda ac: ac.prepare_conv2d(A4(2, 3, 3, 3), input_shape=(3, 5, HUGE)), "input_shape: expected (C, H, W)"),
    (lambda ac: ac.BlockedTensor(ac.to_blocked(A4(1, 3, 5, 5)).data, HUGE), "channels: expected an integer"),
]


@pytest.mark.parametrize("call,fragment", RANGE_CASES, ids=[f"{i}-{c[1][:30]}" for i, c in enumerate(RANGE_CASES)])
def test_integer_out_of_range(ac, call, fragment):
    with pytest.raises(ValueError) as info:
        call(ac)
    assert fragment in str(info.value)
    assert "incompatible function arguments" not in str(info.value)


def test_largest_thread_count_and_sizes_pass_the_checks(ac):
    """The bounds are the C++ types, not smaller: explain takes K >= 2**31."""
    e = ac.explain("matmul", M=4, N=4, K=2 ** 31)
    assert e.kernel
