"""Shape rules of the executor ops (FORMAT.md): output shapes from input
shapes and attributes. Written per op, independent of onnx.shape_inference;
the importer calls them as it emits each node, so every tensor has a shape.

`split` and `reshape` take their output shapes from the importer (the ONNX
node gives them); every other op is inferred here.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Sequence, Tuple

Shape = Tuple[int, ...]


class ShapeError(ValueError):
    pass


def broadcast(a: Sequence[int], b: Sequence[int]) -> Shape:
    """numpy broadcasting of two shapes."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"shapes {tuple(a)} and {tuple(b)} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def window_out(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int,
               ceil_mode: bool = False) -> int:
    """Output length of a sliding window (conv, pools). With ceil_mode the last
    window may hang over the end, but it must start inside the input or the
    begin padding (ONNX reference and onnxruntime since opset 19's fix; PyTorch)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad_begin + pad_end - span
    if room < 0:
        raise ShapeError(f"window of extent {span} does not fit an input of {size} padded by "
                         f"{pad_begin}+{pad_end}")
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _conv(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x, w = ins[0], ins[1]
    if len(x) != 4 or len(w) != 4:
        raise ShapeError(f"conv expects 4-D x and w, got {x} and {w}")
    n, c, h, wd = x
    k, cg, r, s = w
    g = a["groups"]
    if c % g or k % g or c // g != cg:
        raise ShapeError(f"conv: x has {c} channels, w {w} with groups={g}")
    st, p, d = a["strides"], a["pads"], a["dilations"]
    oh = window_out(h, r, st[0], p[0], p[2], d[0])
    ow = window_out(wd, s, st[1], p[1], p[3], d[1])
    if len(ins) > 2 and ins[2] and tuple(ins[2]) != (k,):
        raise ShapeError(f"conv bias has shape {ins[2]}, expected ({k},)")
    return [(n, k, oh, ow)]


def _pool(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    if len(x) != 4:
        raise ShapeError(f"pooling expects a 4-D input, got {x}")
    k, st, p, d = a["kernel"], a["strides"], a["pads"], a["dilations"]
    ceil = bool(a.get("ceil_mode", 0))
    return [(x[0], x[1], window_out(x[2], k[0], st[0], p[0], p[2], d[0], ceil),
             window_out(x[3], k[1], st[1], p[1], p[3], d[1], ceil))]


def _global_pool(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    if len(x) < 3:
        raise ShapeError(f"global pooling expects N x C x spatial, got {x}")
    return [tuple(x[:2]) + (1,) * (len(x) - 2)]


def _gemm(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    sa, sb = ins[0], ins[1]
    if len(sa) != 2 or len(sb) != 2:
        raise ShapeError(f"gemm expects 2-D a and b, got {sa} and {sb}")
    m, ka = sa[::-1] if a["trans_a"] else sa
    kb, n = sb[::-1] if a["trans_b"] else sb
    if ka != kb:
        raise ShapeError(f"gemm: inner dimensions differ ({ka} vs {kb})")
    if len(ins) > 2 and ins[2] is not None:
        if broadcast(ins[2], (m, n)) != (m, n):
            raise ShapeError(f"gemm: c of shape {ins[2]} does not broadcast to {(m, n)}")
    return [(m, n)]


def permute(shape: Sequence[int], perm) -> Shape:
    if not perm:
        return tuple(shape)
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"perm {perm} is not a permutation of {len(shape)} axes")
    return tuple(shape[p] for p in perm)


def _matmul(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    """numpy matmul of permute(a, perm_a) and permute(b, perm_b), the result
    permuted by perm_y (FORMAT.md); bias (N) and residual (y's shape) optional."""
    sa, sb = permute(ins[0], a.get("perm_a")), permute(ins[1], a.get("perm_b"))
    # numpy's vectors: a 1-D a is a row [1, K], a 1-D b a column [K, 1]; the added axis is dropped
    a_vec, b_vec = len(sa) == 1, len(sb) == 1
    if (a_vec or b_vec) and any(a.get(k) for k in ("perm_a", "perm_b", "perm_y")):
        raise ShapeError("matmul's perm_a, perm_b and perm_y need a and b of at least 2 dimensions")
    sa, sb = ((1,) + tuple(sa)) if a_vec else tuple(sa), (tuple(sb) + (1,)) if b_vec else tuple(sb)
    if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2]:
        raise ShapeError(f"matmul expects a (... x M x K) and b (... x K x N), got {sa} and {sb}")
    batch = broadcast(sa[:-2], sb[:-2])
    y = permute(tuple(batch) + (sa[-2], sb[-1]), a.get("perm_y"))
    y = y[:len(y) - 2] + (() if a_vec else (y[-2],)) + (() if b_vec else (y[-1],))
    if len(ins) > 2 and ins[2] and tuple(ins[2]) != (sb[-1],):
        raise ShapeError(f"matmul bias has shape {ins[2]}, expected ({sb[-1]},)")
    if len(ins) > 3 and ins[3] and tuple(ins[3]) != y:
        raise ShapeError(f"matmul residual has shape {ins[3]}, expected {y}")
    return [y]


def _gather(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    d, i = ins
    ax = a.get("axis", 0)
    return [tuple(d[:ax]) + tuple(i) + tuple(d[ax + 1:])]


def _where(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    return [broadcast(broadcast(ins[0], ins[1]), ins[2])]


def _softmax(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    if len(ins) > 1 and ins[1] is not None and broadcast(ins[1], ins[0]) != tuple(ins[0]):
        raise ShapeError(f"softmax mask {ins[1]} does not broadcast to {ins[0]}")
    return [tuple(ins[0])]


def _same(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    return [tuple(ins[0])]


def _binary(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    return [broadcast(ins[0], ins[1])]


def _channel_affine(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    if len(x) < 2 or tuple(ins[1]) != (x[1],) or tuple(ins[2]) != (x[1],):
        raise ShapeError(f"channel_affine: x {x} with scale {ins[1]} and shift {ins[2]}")
    return [tuple(x)]


def _concat(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    ax = a["axis"]
    first = ins[0]
    total = 0
    for s in ins:
        if len(s) != len(first) or any(s[i] != first[i] for i in range(len(s)) if i != ax):
            raise ShapeError(f"concat on axis {ax}: shapes {[tuple(x) for x in ins]} differ elsewhere")
        total += s[ax]
    out = list(first)
    out[ax] = total
    return [tuple(out)]


def _transpose(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    perm = a["perm"]
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"transpose: perm {perm} is not a permutation of {len(x)} axes")
    return [tuple(x[p] for p in perm)]


def _pad(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    p = a["pads"]
    if len(p) != 2 * len(x):
        raise ShapeError(f"pad: {len(p)} pads for a rank-{len(x)} input")
    out = tuple(x[i] + p[i] + p[i + len(x)] for i in range(len(x)))
    if min(out) < 0:
        raise ShapeError(f"pad: negative output shape {out}")
    return [out]


def _reduce_mean(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    x = ins[0]
    axes = set(a["axes"])
    if a["keepdims"]:
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _given(ins: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    raise ShapeError("this op's output shapes come from the importer")


def _attention(s: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    """[B, S, heads x head_size] (rank-3 q), or the logical [B, H, S, D] laid
    out by y_perm (logical axis i is the output's axis y_perm[i])."""
    H, D = int(a["heads"]), int(a["head_size"])
    q = s[0]
    if len(q) == 3:
        B, S = q[0], q[1]
    else:
        qp = list(a.get("q_perm") or (0, 1, 2, 3))
        B, S = q[qp[0]], q[qp[2]]
    if not a.get("y_perm"):
        return [(B, S, H * D)]
    y = [0] * 4
    for i, d in enumerate((B, H, S, D)):
        y[list(a["y_perm"])[i]] = d
    return [tuple(y)]


def _matmul_layer_norm(s: List[Shape], a: Dict[str, Any]) -> List[Shape]:
    return [tuple(s[0][:-1]) + (s[1][1],)]


RULES: Dict[str, Callable[[List[Shape], Dict[str, Any]], List[Shape]]] = {
    "conv": _conv, "gemm": _gemm, "matmul": _matmul,
    "relu": _same, "sigmoid": _same, "silu": _same, "tanh": _same, "hard_swish": _same, "leaky_relu": _same,
    "hard_sigmoid": _same, "clip": _same, "softmax": _softmax, "log_softmax": _softmax, "lrn": _same,
    "erf": _same, "sqrt": _same, "exp": _same, "neg": _same, "reciprocal": _same, "gelu": _same,
    "cast": _same, "layer_norm": _same, "gather": _gather, "where": _where, "expand": _given,
    "pow": _binary, "equal": _binary, "less": _binary, "greater": _binary, "max": _binary, "min": _binary,
    "to_layout": _same,
    "add": _binary, "sub": _binary, "mul": _binary, "div": _binary,
    "channel_affine": _channel_affine, "concat": _concat, "split": _given,
    "max_pool": _pool, "avg_pool": _pool, "global_avg_pool": _global_pool, "global_max_pool": _global_pool,
    "reshape": _given, "transpose": _transpose, "pad": _pad, "reduce_mean": _reduce_mean,
    "attention": _attention, "matmul_layer_norm": _matmul_layer_norm,
}


def infer(op: str, in_shapes: List[Shape], attrs: Dict[str, Any]) -> List[Shape]:
    return RULES[op](in_shapes, attrs)


def numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape)) if shape else 1
