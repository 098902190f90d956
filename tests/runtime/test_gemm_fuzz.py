"""Property-based fuzzing of matmul/gemm against float64 NumPy."""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import assert_close, gemm_ref, matmul_ref, tolerance  # noqa: E402

dims = st.one_of(st.integers(1, 8), st.sampled_from([13, 17, 31, 47, 64, 97, 130]))
acts = st.sampled_from([None, "relu", "relu6", "gelu_tanh", "gelu_erf"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(M=dims, N=dims, K=dims, act=acts, bias=st.booleans(), residual=st.booleans(),
       threads=st.sampled_from([None, 1, 2]), transposed_b=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_matmul_fuzz(ac, M, N, K, act, bias, residual, threads, transposed_b, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((N, K), dtype=np.float32).T if transposed_b else rng.standard_normal((K, N), dtype=np.float32)
    bv = rng.standard_normal(N, dtype=np.float32) if bias else None
    rv = rng.standard_normal((M, N), dtype=np.float32) if residual else None
    got = ac.matmul(a, b, bias=bv, activation=act, residual=rv, threads=threads)
    want = matmul_ref(a, b, bv, act, rv)
    assert_close(got, want, tolerance(a, b, K) * 1.2 + 2e-6 * (1 + np.abs(want)), "fuzz")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(M=dims, N=dims, K=dims, ta=st.booleans(), tb=st.booleans(),
       alpha=st.floats(-2, 2, allow_nan=False), beta=st.floats(-2, 2, allow_nan=False),
       cshape=st.sampled_from(["none", "scalar", "N", "M1", "MN"]), seed=st.integers(0, 2**31 - 1))
def test_gemm_fuzz(ac, M, N, K, ta, tb, alpha, beta, cshape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    c = {"none": None, "scalar": np.float32(0.5), "N": rng.standard_normal(N, dtype=np.float32),
         "M1": rng.standard_normal((M, 1), dtype=np.float32),
         "MN": rng.standard_normal((M, N), dtype=np.float32)}[cshape]
    got = ac.gemm(a, b, c, alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    want = gemm_ref(a, b, c, alpha, beta, ta, tb)
    A = a.T if ta else a
    B = b.T if tb else b
    tol = tolerance(A, B, K) * max(1.0, abs(alpha)) + 1e-6 * (1 + np.abs(want))
    assert_close(got, want, tol, "gemm fuzz")
