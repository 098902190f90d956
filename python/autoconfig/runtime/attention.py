"""attention and gemm_layernorm over the compiled transformer kernels.

Arguments are checked here (each error names its argument); the kernels then
run with the GIL released. q, k, v and out are read and written in place
whenever their last axis is contiguous, whatever their other strides: the
heads of a packed projection (B, S, 3*H*D) are views the kernel reads as they
are, and `out` may be a (B, S, H*D) array seen as (B, H, S, D).
"""
from __future__ import annotations

import math

import numpy as np

from .checks import f32_array, finite_real, is_int, threads_arg, writable_out
from .guard import require_ext
from .memory import element_strided, gemm_operand, overlaps

# autoconfig::AttentionAlgorithm
_ALGORITHMS = {None: 0, "fused": 1, "unfused": 2}


def _algorithm(algorithm) -> int:
    try:
        return _ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise ValueError(f"algorithm: expected None (the model's choice), 'fused' or 'unfused', "
                         f"got {algorithm!r}") from None


def _as_4d(x: np.ndarray, name: str) -> np.ndarray:
    if not 2 <= x.ndim <= 4:
        raise ValueError(f"{name}: expected 2 to 4 dimensions ([B, [H,]] rows, D), got shape {x.shape}")
    return x.reshape((1,) * (4 - x.ndim) + x.shape) if x.ndim < 4 else x


def _last_contiguous(x: np.ndarray) -> np.ndarray:
    """x, or a copy when the kernel cannot read it in place (last axis not
    contiguous, or byte strides that are not whole elements)."""
    x = element_strided(x)
    if x.shape[-1] > 1 and x.strides[-1] != 4:
        return np.ascontiguousarray(x)
    return x


def attention(q, k, v, mask=None, scale=None, threads=None, *, out=None, algorithm=None, key_block=None,
              skip_zero_keys=True):
    """O = softmax(scale * q @ k^T + mask) @ v over the last two axes.

    q: (B, H, S, D) float32 (or (H, S, D), (S, D)); k and v: (B, H, Sk, D).
    mask: additive, broadcastable to (B, H, S, Sk) (BERT's extended mask is
    (B, 1, 1, Sk)); scale: None for 1/sqrt(D). NaN and Inf behave as in the
    unfused ONNX graph (MatMul, Mul, Add, Softmax, MatMul): a row holding a NaN
    or +inf score is NaN, a row whose scores are all -inf is NaN.
    threads: None (the model's choice) or a count >= 1. out: a writable array
    of q's shape whose last axis is contiguous (other strides free, e.g. a
    (B, S, H*D) buffer viewed as (B, H, S, D)). algorithm: None (the model's
    choice), 'fused' or 'unfused'. key_block: keys per block of the fused
    kernel's online softmax (None: the plan's). skip_zero_keys: the fused
    kernel skips key blocks whose softmax weight is provably exactly 0 (a
    padding mask far below the row's largest value; same result bits); False
    walks every key.
    """
    q = f32_array(q, "q")
    k = f32_array(k, "k")
    v = f32_array(v, "v")
    shape = q.shape
    q4, k4, v4 = _as_4d(q, "q"), _as_4d(k, "k"), _as_4d(v, "v")
    B, H, S, D = q4.shape
    if k.ndim != q.ndim or k4.shape[:2] != (B, H) or k4.shape[3] != D:
        raise ValueError(f"k: expected shape {shape[:-2] + ('Sk', D)} to match q {shape}, got {k.shape}")
    Sk = k4.shape[2]
    if v.shape != k.shape:
        raise ValueError(f"v: expected k's shape {k.shape}, got {v.shape}")
    alg = _algorithm(algorithm)
    t = threads_arg(threads)
    kb = 0
    if key_block is not None:
        if not is_int(key_block) or not 1 <= key_block <= 2 ** 31 - 1:
            raise ValueError(f"key_block: expected None or an integer >= 1, got {key_block!r}")
        kb = int(key_block)
    if not isinstance(skip_zero_keys, (bool, np.bool_)):
        raise ValueError(f"skip_zero_keys: expected a bool, got {skip_zero_keys!r}")
    if scale is None:
        scale = 1.0 / math.sqrt(D) if D > 0 else 1.0
    scale = finite_real(scale, "scale")
    mask4 = None
    if mask is not None:
        mask = f32_array(mask, "mask")
        if mask.ndim > 4:
            raise ValueError(f"mask: expected at most 4 dimensions, got shape {mask.shape}")
        try:
            mask4 = np.broadcast_to(mask, (B, H, S, Sk))
        except ValueError:
            raise ValueError(f"mask: shape {mask.shape} does not broadcast to (B, H, S, Sk) = "
                             f"{(B, H, S, Sk)}") from None
        mask4 = _last_contiguous(mask4) if mask4.strides[-1] != 0 or Sk <= 1 else np.ascontiguousarray(mask4)
    q4, k4, v4 = _last_contiguous(q4), _last_contiguous(k4), _last_contiguous(v4)
    out_is_new = out is None
    out = np.empty(shape, dtype=np.float32) if out_is_new else writable_out(out, "out", shape)
    if out.size == 0 or Sk == 0:   # no keys: softmax over nothing times an empty V is 0 (np.matmul's answer)
        out[...] = 0.0
        return out
    o4 = _as_4d(out, "out")
    target = o4
    if not out_is_new:
        rows_ok = o4.strides[-1] == 4 or D <= 1
        shared = any(overlaps(o4, x) for x in (q4, k4, v4, mask4))
        if not rows_ok or shared or any(s % 4 for s in o4.strides) or (S > 1 and o4.strides[2] < 4 * D):
            target = np.empty(o4.shape, dtype=np.float32)   # computed apart, then copied in
    require_ext().attention(q4, k4, v4, mask4, target, scale, t, alg, kb, bool(skip_zero_keys))
    if target is not o4:
        o4[...] = target
    return out


def attention_choice(B, H, S, Sk, D, *, threads=None, algorithm=None, key_block=None) -> dict:
    """What attention() runs for this shape: the algorithm, threads, key
    block and the model's estimate of both algorithms with their terms."""
    from .checks import positive_int
    dims = [positive_int(x, n) for x, n in ((B, "B"), (H, "H"), (S, "S"), (Sk, "Sk"), (D, "D"))]
    kb = 0 if key_block is None else positive_int(key_block, "key_block", maximum=2 ** 31 - 1)
    return require_ext().attention_choice(*dims, threads_arg(threads), _algorithm(algorithm), kb)


def gemm_layernorm(a, b, gamma, beta=None, *, bias=None, residual=None, epsilon=1e-5, out=None, threads=None,
                   algorithm=None):
    """out = LayerNorm(a @ b + bias + residual) over the last axis, ONNX
    LayerNormalization: (x - mean) / sqrt(var + epsilon) * gamma + beta.

    a: (M, K), b: (K, N), gamma, beta, bias: (N,), residual: (M, N) float32.
    algorithm: None (the model's choice), 'fused' (row blocks normalized while
    in cache) or 'unfused' (the GEMM, then a LayerNorm pass).
    """
    a = f32_array(a, "a", 2)
    b = f32_array(b, "b", 2)
    M, K = a.shape
    if b.shape[0] != K:
        raise ValueError(f"b: expected {K} rows to match a's last axis (a.shape={a.shape}), got b.shape={b.shape}")
    N = b.shape[1]

    def vec(x, name):
        x = f32_array(x, name)
        if x.shape != (N,):
            raise ValueError(f"{name}: expected shape ({N},), got {x.shape}")
        return np.ascontiguousarray(x)

    gamma = vec(gamma, "gamma")
    beta = None if beta is None else vec(beta, "beta")
    bias = None if bias is None else vec(bias, "bias")
    if residual is not None:
        residual = f32_array(residual, "residual")
        if residual.shape != (M, N):
            raise ValueError(f"residual: expected shape ({M}, {N}), got {residual.shape}")
        residual = gemm_operand(residual)
    epsilon = finite_real(epsilon, "epsilon")
    if epsilon < 0:
        raise ValueError(f"epsilon: expected a number >= 0, got {epsilon!r}")
    alg = _algorithm(algorithm)
    t = threads_arg(threads)
    out_is_new = out is None
    out = np.empty((M, N), dtype=np.float32) if out_is_new else writable_out(out, "out", (M, N))
    target = out
    if not out_is_new and (any(overlaps(out, x) for x in (a, b, gamma, beta, bias, residual))
                           or (N > 1 and out.strides[1] != 4) or (M > 1 and out.strides[0] < 4 * N)):
        target = np.empty((M, N), dtype=np.float32)
    if M and N:
        require_ext().gemm_layernorm(element_strided(a), element_strided(b), target, residual, bias, gamma, beta,
                                     epsilon, t, alg)
    if target is not out:
        out[...] = target
    return out


def gemm_layernorm_choice(M, N, K, *, threads=None, algorithm=None) -> dict:
    """What gemm_layernorm() runs for this shape, with both estimates."""
    from .checks import positive_int
    dims = [positive_int(x, n) for x, n in ((M, "M"), (N, "N"), (K, "K"))]
    return require_ext().gemm_layernorm_choice(*dims, threads_arg(threads), _algorithm(algorithm))
