"""autoconfig.gemm_layernorm: LayerNorm(a @ b + bias + residual) against a
float64 NumPy reference, fused (row blocks normalized while in cache) and
unfused (the GEMM, then a LayerNorm pass), on shapes with M = 1, primes, the
BERT-base output projections, and N = 1 (a row of one: all zeros + beta)."""
from __future__ import annotations

import numpy as np
import pytest

F64 = np.float64


def ref(a, b, gamma, beta=None, bias=None, residual=None, eps=1e-5):
    y = a.astype(F64) @ b.astype(F64)
    if bias is not None:
        y += bias
    if residual is not None:
        y += residual
    mean = y.mean(axis=-1, keepdims=True)
    var = ((y - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (y - mean) / np.sqrt(var + eps) * gamma
    return y + beta if beta is not None else y


SHAPES = [(1, 64, 32), (7, 17, 13), (131, 768, 64), (128, 768, 768), (3, 1, 5), (61, 97, 1)]


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("algorithm", ["fused", "unfused", None])
def test_matches_float64(ac, M, N, K, algorithm):
    rng = np.random.default_rng(M * 7 + N + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    gamma = rng.standard_normal(N).astype(np.float32)
    beta = rng.standard_normal(N).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    for threads in (1, 2):
        got = ac.gemm_layernorm(a, b, gamma, beta, bias=bias, residual=res, threads=threads, algorithm=algorithm)
        want = ref(a, b, gamma, beta, bias, res)
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    got = ac.gemm_layernorm(a, b, gamma, epsilon=1e-12, algorithm=algorithm)
    np.testing.assert_allclose(got, ref(a, b, gamma, eps=1e-12), rtol=2e-4, atol=2e-4)


def test_residual_may_be_out(ac):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((37, 64)).astype(np.float32)
    b = rng.standard_normal((64, 96)).astype(np.float32)
    gamma = np.ones(96, np.float32)
    res = rng.standard_normal((37, 96)).astype(np.float32)
    want = ref(a, b, gamma, residual=res)
    out = res.copy()
    r = ac.gemm_layernorm(a, b, gamma, residual=out, out=out)
    assert r is out
    np.testing.assert_allclose(out, want, rtol=2e-4, atol=2e-4)


def test_choice_is_explained(ac):
    c = ac.gemm_layernorm_choice(128, 768, 768, threads=2)
    assert c["algorithm"] in ("fused", "unfused") and c["fused_s"] > 0 and c["unfused_s"] > 0
    assert c["block_rows"] >= 1
    assert ac.gemm_layernorm_choice(128, 768, 768, algorithm="fused")["algorithm"] == "fused"


@pytest.mark.parametrize("kw,match", [
    ({"gamma": np.ones(5, np.float32)}, "gamma: expected shape"),
    ({"beta": np.ones(3, np.float64)}, "beta: expected dtype float32"),
    ({"epsilon": -1.0}, "epsilon: expected a number >= 0"),
    ({"residual": np.ones((2, 8), np.float32)}, "residual: expected shape"),
    ({"algorithm": "two-pass"}, "algorithm: expected"),
])
def test_bad_arguments_name_themselves(ac, kw, match):
    a, b = np.ones((4, 3), np.float32), np.ones((3, 8), np.float32)
    args = {"gamma": np.ones(8, np.float32), **kw}
    with pytest.raises((TypeError, ValueError), match=match):
        ac.gemm_layernorm(a, b, **args)
