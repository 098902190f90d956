"""autoconfig.attention (fused and unfused) against a float64 NumPy reference,
and its NaN/Inf behaviour against the unfused ONNX graph under onnxruntime.

Shapes include S = 1, primes, tall and skinny score matrices and D in
{32, 64, 80}; small key blocks force the fused kernel's online softmax to
rescale across blocks. Q, K, V are also read in place from a packed
projection (B, S, 3*H*D) and O written with its heads merged (B, S, H*D)."""
from __future__ import annotations

import math

import numpy as np
import pytest

F64 = np.float64


def attention_ref(q, k, v, mask=None, scale=None):
    q, k, v = q.astype(F64), k.astype(F64), v.astype(F64)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("...id,...jd->...ij", q, k) * scale
    if mask is not None:
        s = s + mask.astype(F64)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("...ij,...jd->...id", p, v)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def check(got, want, tol=2e-5):
    assert got.shape == want.shape
    err = np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))
    assert err <= tol, f"relative error {err:.3g}"


# (B, H, S, Sk, D)
SHAPES = [(1, 1, 1, 1, 32), (1, 2, 7, 13, 64), (2, 3, 17, 5, 80), (1, 1, 1, 37, 64), (1, 2, 31, 97, 32),
          (2, 1, 43, 3, 64), (1, 3, 128, 128, 64), (1, 1, 5, 300, 80)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("algorithm,key_block", [("fused", None), ("fused", 16), ("unfused", None), (None, None)])
def test_matches_float64(ac, shape, algorithm, key_block):
    B, H, S, Sk, D = shape
    rng = np.random.default_rng(sum(shape))
    q, k, v = rand(rng, B, H, S, D), rand(rng, B, H, Sk, D), rand(rng, B, H, Sk, D)
    for threads in (1, 2):
        got = ac.attention(q, k, v, threads=threads, algorithm=algorithm, key_block=key_block)
        check(got, attention_ref(q, k, v))


@pytest.mark.parametrize("algorithm,key_block", [("fused", None), ("fused", 8), ("unfused", None)])
def test_padding_masks(ac, algorithm, key_block):
    """BERT's extended mask (B, 1, 1, Sk): 0 for tokens, -10000 (or the float32
    minimum, or -inf) for padding; a full (B, H, S, Sk) mask; a (S, Sk) causal one."""
    B, H, S, D = 2, 3, 19, 64
    rng = np.random.default_rng(7)
    q, k, v = rand(rng, B, H, S, D), rand(rng, B, H, S, D), rand(rng, B, H, S, D)
    lengths = [19, 11]
    for fill in (-10000.0, float(np.finfo(np.float32).min), -np.inf):
        mask = np.zeros((B, 1, 1, S), np.float32)
        for b, n in enumerate(lengths):
            mask[b, ..., n:] = fill
        got = ac.attention(q, k, v, mask, algorithm=algorithm, key_block=key_block)
        check(got, attention_ref(q, k, v, mask))
    full = rand(rng, B, H, S, S)
    check(ac.attention(q, k, v, full, algorithm=algorithm, key_block=key_block), attention_ref(q, k, v, full))
    causal = np.triu(np.full((S, S), -np.inf, np.float32), 1)
    check(ac.attention(q, k, v, causal, scale=0.3, algorithm=algorithm, key_block=key_block),
          attention_ref(q, k, v, causal, 0.3))


def _skip_cases(rng):
    """(name, q, k, v, mask, scale): masks whose padded keys the fused kernel
    may skip, and ones where it must not (its score bound fails, or the mask
    has values between the padding and the tokens)."""
    B, H, S, Sk, D = 2, 3, 37, 70, 32
    q, k, v = rand(rng, B, H, S, D), rand(rng, B, H, Sk, D), rand(rng, B, H, Sk, D)
    scale = 1.0 / math.sqrt(D)
    pad = np.zeros((B, 1, 1, Sk), np.float32)
    pad[0, ..., 50:] = -10000.0
    pad[1, ..., 9:] = -10000.0
    yield "bert-tail", q, k, v, pad, scale
    yield "bert-head", q, k, v, np.ascontiguousarray(pad[..., ::-1]), scale   # padding walked first
    yield "finfo-min", q, k, v, np.where(pad < 0, np.finfo(np.float32).min, 0).astype(np.float32), scale
    yield "neg-inf", q, k, v, np.where(pad < 0, -np.inf, 0).astype(np.float32), scale
    full = rand(rng, B, H, S, Sk)
    for r in range(S):   # every row its own padding (after 1 to Sk - 1 tokens), one fully masked row
        n = 1 + (r * 7) % (Sk - 1)
        full[:, :, r, n:] = -10000.0 + full[:, :, r, n:]
    full[1, 2, 5, :] = -np.inf
    yield "per-row", q, k, v, full, scale
    yield "large-scores", q * 300.0, k * 300.0, v, pad, scale   # |scores| beyond the padding: no skip
    mid = pad.copy()
    mid[..., 20:30] = -5000.0 + 100.0 * rand(rng, 1, 1, 1, 10)   # between padding and tokens: no skip
    yield "middle-values", q, k, v, mid, scale
    v1 = v.copy()
    v1[0, 0, 60, 3] = np.inf                  # a non-finite value behind padding: NaN as unskipped
    yield "inf-v-padded", q, k, v1, pad, scale
    k1 = k.copy()
    k1[1, 1, 40, 0] = np.nan                  # a NaN key behind padding
    yield "nan-k-padded", q, k1, v, pad, scale


@pytest.mark.parametrize("key_block", [None, 8, 16])
def test_skipping_zero_weight_keys_keeps_the_bits(ac, key_block):
    """The fused kernel skips key blocks whose softmax weight is provably 0:
    bit for bit the result of walking every key, and near float64."""
    rng = np.random.default_rng(17)
    for name, q, k, v, mask, scale in _skip_cases(rng):
        for threads in (1, 2):
            run = dict(scale=scale, threads=threads, algorithm="fused", key_block=key_block)
            got = ac.attention(q, k, v, mask, skip_zero_keys=True, **run)
            walked = ac.attention(q, k, v, mask, skip_zero_keys=False, **run)
            np.testing.assert_array_equal(got.view(np.uint32), walked.view(np.uint32), err_msg=name)
            if name == "large-scores":   # softmax of |scores| ~ 1e3 is float32's rounding of them
                continue
            want = attention_ref(q, k, v, mask, scale)
            fin = np.isfinite(want)
            assert np.array_equal(fin, np.isfinite(got)), name
            check(got[fin], want[fin], tol=1e-4)


@pytest.mark.parametrize("algorithm", ["fused", "unfused"])
def test_packed_projection_in_place(ac, algorithm):
    """Q, K, V as strided views of one (B, S, 3*H*D) projection, O written into
    a (B, S, H*D) buffer: the layout a transformer layer holds, no head copies."""
    B, S, H, D = 2, 23, 4, 32
    rng = np.random.default_rng(3)
    qkv = rand(rng, B, S, 3 * H * D)
    q, k, v = (qkv[..., i * H * D:(i + 1) * H * D].reshape(B, S, H, D).transpose(0, 2, 1, 3) for i in range(3))
    merged = np.full((B, S, H * D), np.nan, np.float32)
    out = merged.reshape(B, S, H, D).transpose(0, 2, 1, 3)
    r = ac.attention(q, k, v, out=out, algorithm=algorithm)
    assert r is out
    want = attention_ref(q, k, v)
    check(merged, want.transpose(0, 2, 1, 3).reshape(B, S, H * D))


def test_shapes_of_lower_rank_and_empty(ac):
    rng = np.random.default_rng(5)
    q, k, v = rand(rng, 9, 32), rand(rng, 11, 32), rand(rng, 11, 32)
    check(ac.attention(q, k, v), attention_ref(q, k, v))
    q3, k3, v3 = rand(rng, 2, 9, 64), rand(rng, 2, 4, 64), rand(rng, 2, 4, 64)
    check(ac.attention(q3, k3, v3), attention_ref(q3, k3, v3))
    # no keys: softmax over nothing times an empty V is 0, as np.matmul gives
    z = ac.attention(rand(rng, 1, 1, 3, 8), np.zeros((1, 1, 0, 8), np.float32), np.zeros((1, 1, 0, 8), np.float32))
    assert z.shape == (1, 1, 3, 8) and not z.any()


def test_model_choice_is_explained(ac):
    c = ac.attention_choice(1, 12, 384, 384, 64, threads=1)
    assert c["algorithm"] in ("fused", "unfused")
    assert c["fused_s"] > 0 and c["unfused_s"] > 0
    assert {"compute", "softmax", "stream"} <= {k for k, _ in c["fused_terms"]}
    assert {"gemm1", "scores", "gemm2"} <= {k for k, _ in c["unfused_terms"]}
    assert ac.attention_choice(1, 12, 384, 384, 64, algorithm="unfused")["algorithm"] == "unfused"
    text = str(ac.explain("attention", H=12, S=384, D=64, threads=1))
    assert f"1 thread(s): {c['algorithm']}" in text and "unfused: gemm1" in text and "run-time choice" in text


def test_model_charges_the_keys_walked(ac):
    """A padding mask's skipped keys leave the fused form's products and
    softmax (not its packing of K^T, nor the unfused form)."""
    from autoconfig.models import attention as am
    from autoconfig.runtime.info import host
    s = am.AttentionShape(1, 12, 384, 384, 64)
    # a quarter of the keys skipped: whole register tiles even of 64 columns (AVX-512's 4 x 16)
    full, part = am.estimate(host(), s, 1), am.estimate(host(), s, 1, walked_keys=384 - 96)
    for term in ("compute", "calls", "softmax"):
        assert part.fused[term] < full.fused[term], term
    assert part.fused["pack"] == full.fused["pack"] and part.unfused == full.unfused


@pytest.mark.parametrize("call,match", [
    (lambda ac, q: ac.attention(q.astype(np.float64), q, q), "q: expected dtype float32"),
    (lambda ac, q: ac.attention(q, q[..., :5, :], q), "v: expected k's shape"),
    (lambda ac, q: ac.attention(q, q[..., :16], q[..., :16]), "k: expected shape"),
    (lambda ac, q: ac.attention(q, q, q, np.zeros((3, 3), np.float32)), "mask: shape"),
    (lambda ac, q: ac.attention(q, q, q, algorithm="flash"), "algorithm: expected"),
    (lambda ac, q: ac.attention(q, q, q, scale=float("nan")), "scale: expected a finite"),
    (lambda ac, q: ac.attention(q, q, q, threads=0), "threads: expected"),
    (lambda ac, q: ac.attention(q, q, q, key_block=0), "key_block: expected"),
    (lambda ac, q: ac.attention(q, q, q, skip_zero_keys=1), "skip_zero_keys: expected a bool"),
    (lambda ac, q: ac.attention(q, q, q, out=np.zeros((2, 2), np.float32)), "out: expected shape"),
    (lambda ac, q: ac.attention(q[0, 0, 0], q, q), "q: expected 2 to 4 dimensions"),
])
def test_bad_arguments_name_themselves(ac, call, match):
    q = np.zeros((1, 2, 8, 32), np.float32)
    with pytest.raises((TypeError, ValueError), match=match):
        call(ac, q)


# --------------------------------------------------------------------------- NaN / Inf vs onnxruntime
def _ort_unfused(q, k, v, mask, scale):
    """The unfused graph an exporter writes: MatMul(Q, Transpose(K)), Mul by
    the scale, Add the mask, Softmax, MatMul with V."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    shape = list(q.shape)
    kshape = list(k.shape)
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Mul", ["s", "scale"], ["ss"]),
             helper.make_node("Add", ["ss", "mask"], ["sm"]),
             helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["o"])]
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("k", TensorProto.FLOAT, kshape),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, kshape),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, list(mask.shape))],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, shape)],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # the graph as written
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"q": q, "k": k, "v": v, "mask": mask})[0]


def _nonfinite_cases(rng):
    B, H, S, D = 1, 2, 11, 32
    q, k, v = rand(rng, B, H, S, D), rand(rng, B, H, S, D), rand(rng, B, H, S, D)
    mask = np.zeros((B, 1, S, S), np.float32)
    yield "clean", q, k, v, mask
    q1 = q.copy()
    q1[0, 1, 3, 5] = np.nan                    # a NaN query element: its row's scores are NaN
    yield "nan-q", q1, k, v, mask
    k1 = k.copy()
    k1[0, 0, 9, 0] = np.nan                    # a NaN key: every row's score at that key
    yield "nan-k", q, k1, v, mask
    v1 = v.copy()
    v1[0, 0, 2, 7] = np.inf                    # an infinite value: column 7 of every row of head 0
    yield "inf-v", q, k, v1, mask
    m1 = mask.copy()
    m1[0, 0, 4, :] = -np.inf                   # a fully masked row: NaN
    m1[0, 0, 6, 8:] = -np.inf                  # a partly masked row: finite
    yield "masked-rows", q, k, v, m1
    m2 = mask.copy()
    m2[0, 0, 2, 3] = np.inf                    # +inf score: inf - inf in the softmax, the row is NaN
    m2[0, 0, 5, 0] = np.nan
    yield "inf-nan-mask", q, k, v, m2
    k2 = k.copy()
    k2[0, 1, 1, :] = 1e30                      # scores overflow to +-inf
    yield "overflow", q, k2, v, mask


@pytest.mark.parametrize("algorithm,key_block", [("fused", None), ("fused", 8), ("unfused", None)])
def test_nonfinite_like_onnxruntime(ac, algorithm, key_block):
    rng = np.random.default_rng(11)
    for name, q, k, v, mask in _nonfinite_cases(rng):
        scale = 1.0 / math.sqrt(q.shape[-1])
        want = _ort_unfused(q, k, v, mask, scale)
        got = ac.attention(q, k, v, mask, scale=scale, algorithm=algorithm, key_block=key_block)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name}: NaN pattern")
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want), err_msg=f"{name}: +inf pattern")
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want), err_msg=f"{name}: -inf pattern")
        fin = np.isfinite(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-4, atol=1e-5, err_msg=name)
