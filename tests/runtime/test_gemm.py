"""matmul / gemm against float64 NumPy on shapes with 1, primes, tall/skinny,
K=1, every epilogue, transposes, alpha/beta, 1 and 2 threads, any strides."""
from __future__ import annotations

import numpy as np
import pytest

from reference import assert_close, gemm_ref, matmul_ref, tolerance

ACTS = [None, "relu", "relu6", "gelu_tanh", "gelu_erf"]

SHAPES = [
    (1, 1, 1), (1, 1, 7), (1, 17, 1), (13, 1, 5), (2, 3, 4),
    (7, 13, 31), (31, 29, 37), (97, 101, 103), (127, 131, 1),
    (1, 1000, 2048), (1, 1000, 1280), (32, 1000, 2048),     # classifier heads (specialized)
    (64, 64, 64), (128, 128, 128), (256, 256, 256),          # specialized squares
    (1000, 3, 5), (3, 1000, 17), (600, 7, 300), (5, 333, 999),  # tall / skinny
    (200, 300, 1),                                            # K = 1
    (130, 70, 600), (65, 129, 257),
]


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_shapes(ac, M, N, K, threads):
    rng = np.random.default_rng(M * 1000003 + N * 1009 + K)
    a, b = rand(rng, M, K), rand(rng, K, N)
    got = ac.matmul(a, b, threads=threads)
    assert got.dtype == np.float32 and got.shape == (M, N)
    assert_close(got, matmul_ref(a, b), tolerance(a, b, K), f"matmul {M}x{N}x{K} t={threads}")


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("use_residual", [False, True])
@pytest.mark.parametrize("M,N,K", [(7, 45, 19), (64, 64, 64), (128, 3072, 768), (33, 70, 513)])
def test_matmul_epilogues(ac, act, use_bias, use_residual, M, N, K):
    rng = np.random.default_rng(7)
    a, b = rand(rng, M, K) * 0.3, rand(rng, K, N) * 0.3
    bias = rand(rng, N) if use_bias else None
    res = rand(rng, M, N) if use_residual else None
    for threads in (1, 2):
        got = ac.matmul(a, b, bias=bias, activation=act, residual=res, threads=threads)
        want = matmul_ref(a, b, bias, act, res)
        # The activations are Lipschitz <= 1.13, and approximated to ~1e-6 relative.
        tol = tolerance(a, b, K) * 1.2 + 2e-6 * (1 + np.abs(want))
        assert_close(got, want, tol, f"act={act} bias={use_bias} residual={use_residual} t={threads}")


def test_activation_extremes(ac):
    """Large magnitudes must saturate cleanly (no NaN/inf from exp overflow)."""
    a = np.array([[1.0]], dtype=np.float32)
    vals = np.array([[-1e4, -100.0, -20.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 20.0, 100.0, 1e4]], dtype=np.float32)
    for act in ACTS:
        got = ac.matmul(a, vals, activation=act)
        want = matmul_ref(a, vals, None, act)
        assert np.all(np.isfinite(got)), act
        assert_close(got, want, 1e-6 * (1 + np.abs(want)) + 1e-6, f"act={act}")


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (17, 5, 9), (64, 64, 64), (128, 128, 64), (101, 67, 300)])
def test_gemm_transposes(ac, trans_a, trans_b, M, N, K):
    rng = np.random.default_rng(3)
    a = rand(rng, K, M) if trans_a else rand(rng, M, K)
    b = rand(rng, N, K) if trans_b else rand(rng, K, N)
    c = rand(rng, M, N)
    for threads in (1, 2):
        got = ac.gemm(a, b, c, alpha=0.75, beta=-1.5, trans_a=trans_a, trans_b=trans_b, threads=threads)
        want = gemm_ref(a, b, c, 0.75, -1.5, trans_a, trans_b)
        A = a.T if trans_a else a
        B = b.T if trans_b else b
        assert_close(got, want, tolerance(A, B, K) + 4e-7 * np.abs(c), f"gemm tA={trans_a} tB={trans_b}")


@pytest.mark.parametrize("cshape", ["scalar", "N", "1N", "M1", "11", "MN", "none"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (2.5, 0.0), (-1.0, 0.5), (0.0, 2.0)])
def test_gemm_c_broadcast(ac, cshape, alpha, beta):
    rng = np.random.default_rng(11)
    M, N, K = 23, 41, 17
    a, b = rand(rng, M, K), rand(rng, K, N)
    c = {"scalar": np.float32(1.25), "N": rand(rng, N), "1N": rand(rng, 1, N), "M1": rand(rng, M, 1),
         "11": rand(rng, 1, 1), "MN": rand(rng, M, N), "none": None}[cshape]
    got = ac.gemm(a, b, c, alpha=alpha, beta=beta)
    want = gemm_ref(a, b, c, alpha, beta)
    assert_close(got, want, tolerance(a, b, K) * max(1, abs(alpha)) + 1e-6, f"c={cshape}")


def test_gemm_python_scalar_c(ac):
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    got = ac.gemm(a, b, 2.0, beta=0.5)
    assert np.allclose(got, 5.0)


def test_noncontiguous_inputs(ac):
    rng = np.random.default_rng(5)
    big_a = rand(rng, 90, 140)
    big_b = rand(rng, 160, 130)
    a = big_a[3:80:2, 5:130:3]           # strided rows and columns
    b = big_b[::-2, 1::2][: a.shape[1]]  # negative row stride
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    for threads in (1, 2):
        got = ac.matmul(a, b, threads=threads)
        assert_close(got, matmul_ref(a, b), tolerance(a, b, a.shape[1]), "strided")
    af = np.asfortranarray(rand(rng, 37, 53))
    bf = np.asfortranarray(rand(rng, 53, 29))
    assert_close(ac.matmul(af, bf), matmul_ref(af, bf), tolerance(af, bf, 53), "fortran")


def test_out_argument(ac):
    rng = np.random.default_rng(9)
    a, b = rand(rng, 40, 30), rand(rng, 30, 50)
    out = np.full((40, 50), np.nan, dtype=np.float32)
    r = ac.matmul(a, b, out=out)
    assert r is out
    assert_close(out, matmul_ref(a, b), tolerance(a, b, 30), "out")
    # non-contiguous out: a column slice of a bigger array
    big = np.zeros((40, 120), dtype=np.float32)
    view = big[:, 10:110:2]
    ac.matmul(a, b, out=view)
    assert_close(view, matmul_ref(a, b), tolerance(a, b, 30), "strided out")
    assert np.all(big[:, :10] == 0)


def test_residual_in_place(ac):
    rng = np.random.default_rng(10)
    a, b = rand(rng, 64, 64), rand(rng, 64, 64)
    acc = rand(rng, 64, 64)
    want = matmul_ref(a, b, None, "relu", acc)
    ac.matmul(a, b, residual=acc, out=acc, activation="relu")
    assert_close(acc, want, tolerance(a, b, 64) * 1.2, "in-place residual")


def test_out_aliasing_input(ac):
    rng = np.random.default_rng(12)
    a = rand(rng, 48, 48)
    b = rand(rng, 48, 48)
    want = matmul_ref(a, b)
    ac.matmul(a, b, out=a)   # overwrites its own input: must still be right
    assert_close(a, want, tolerance(want.astype(np.float32), np.eye(48, dtype=np.float32), 48) + 1e-4, "aliased")


def test_batched_a(ac):
    rng = np.random.default_rng(13)
    a, b = rand(rng, 3, 5, 17), rand(rng, 17, 11)
    bias = rand(rng, 11)
    got = ac.matmul(a, b, bias=bias, activation="relu")
    want = matmul_ref(a.reshape(-1, 17), b, bias, "relu").reshape(3, 5, 11)
    assert got.shape == (3, 5, 11)
    assert_close(got, want, 1e-4, "batched")


def test_zero_sized(ac):
    a = np.zeros((0, 5), np.float32)
    b = np.zeros((5, 3), np.float32)
    assert ac.matmul(a, b).shape == (0, 3)
    a = np.zeros((4, 0), np.float32)
    b = np.zeros((0, 3), np.float32)
    bias = np.arange(3, dtype=np.float32)
    got = ac.matmul(a, b, bias=bias)
    assert np.array_equal(got, np.broadcast_to(bias, (4, 3)))


def test_repeated_calls_reuse_scratch(ac):
    """Alternating sizes must not corrupt the reused packing buffers."""
    rng = np.random.default_rng(14)
    for M, N, K in [(300, 300, 300), (5, 7, 9), (1024, 64, 700), (64, 1000, 33), (300, 300, 300)]:
        a, b = rand(rng, M, K), rand(rng, K, N)
        for t in (2, 1):
            assert_close(ac.matmul(a, b, threads=t), matmul_ref(a, b), tolerance(a, b, K), f"{M}x{N}x{K}")


def test_threads_more_than_cores(ac):
    rng = np.random.default_rng(15)
    a, b = rand(rng, 50, 60), rand(rng, 60, 70)
    assert_close(ac.matmul(a, b, threads=7), matmul_ref(a, b), tolerance(a, b, 60), "7 threads")
