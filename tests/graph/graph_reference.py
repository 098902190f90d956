"""Float64 numpy interpreter of the executor vocabulary (graph/FORMAT.md),
written for the tests from the ONNX operator definitions; independent of the
importer, the passes and the C++ executor. Plain loops where they keep the
semantics obvious (pooling windows), vectorized where the tensors are big."""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
from reference import conv_ref, softmax_ref


def _act(y, name):
    if name in (None, "none"):
        return y
    if name == "relu":
        return np.maximum(y, 0)
    if name == "relu6":
        return np.minimum(np.maximum(y, 0), 6)
    if name == "gelu_tanh":
        return 0.5 * y * (1 + np.tanh(math.sqrt(2 / math.pi) * (y + 0.044715 * y ** 3)))
    if name == "gelu_erf":
        from math import erf
        return 0.5 * y * (1 + np.vectorize(erf)(y / math.sqrt(2)))
    raise ValueError(name)


def _clip(y, lo, hi):
    return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def conv(x, w, b, r, a):
    # the runtime tests' float64 convolution; bias, residual and activations are
    # added here in the executor's order (activation, then clip)
    y = conv_ref(x, w, strides=a["strides"], pads=a["pads"], dilations=a["dilations"], groups=a["groups"])
    k = w.shape[0]
    if b is not None:
        y += b.reshape(1, k, 1, 1)
    if r is not None:
        y += r
    y = _act(y, a.get("activation"))
    if a.get("clip") is not None:
        y = _clip(y, *a["clip"])
    return y


def _pool_out(size, k, s, p0, p1, d, ceil):
    span = d * (k - 1) + 1
    if not ceil:
        return (size + p0 + p1 - span) // s + 1
    out = -(-(size + p0 + p1 - span) // s) + 1
    if (out - 1) * s >= size + p0:
        out -= 1
    return out


def pool(x, a, kind):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    ceil = a.get("ceil_mode", 0)
    oh = _pool_out(h, kh, sh, pt, pb, dh, ceil)
    ow = _pool_out(w, kw, sw, pl, pr, dw, ceil)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = [i * sh - pt + u * dh for u in range(kh)]
            cols = [j * sw - pl + v * dw for v in range(kw)]
            vr = [r for r in rows if 0 <= r < h]
            vc = [q for q in cols if 0 <= q < w]
            if kind == "max":
                y[:, :, i, j] = x[:, :, vr][:, :, :, vc].max(axis=(2, 3)) if vr and vc else -np.inf
                continue
            s = x[:, :, vr][:, :, :, vc].sum(axis=(2, 3)) if vr and vc else 0.0
            if a.get("count_include_pad", 0):
                # window clipped to the padded extent (ONNX: pads count, the ceil overhang does not)
                nr = sum(1 for r in rows if -pt <= r < h + pb)
                nc = sum(1 for q in cols if -pl <= q < w + pr)
                cnt = nr * nc
            else:
                cnt = len(vr) * len(vc)
            y[:, :, i, j] = s / cnt
    return y


softmax = softmax_ref


def lrn(x, a):
    c = x.shape[1]
    size = a["size"]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    sq = x * x
    acc = np.zeros_like(x)
    for ch in range(c):
        acc[:, ch] = sq[:, max(0, ch - lo):min(c, ch + hi + 1)].sum(axis=1)
    return x / (a["bias"] + a["alpha"] / size * acc) ** a["beta"]


def run_node(op, ins, a, out_shapes):
    x = ins[0]
    if op == "conv":
        return [conv(x, ins[1], ins[2] if len(ins) > 2 else None, ins[3] if len(ins) > 3 else None, a)]
    if op == "gemm":
        A = x.T if a["trans_a"] else x
        B = ins[1].T if a["trans_b"] else ins[1]
        y = a["alpha"] * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a["beta"] * ins[2]
        return [_act(y, a.get("activation"))]
    if op == "matmul":
        a_ = x.transpose(a["perm_a"]) if a.get("perm_a") else x
        b_ = ins[1].transpose(a["perm_b"]) if a.get("perm_b") else ins[1]
        y = a.get("alpha", 1.0) * (a_ @ b_)
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2]
        if a.get("perm_y"):
            y = y.transpose(a["perm_y"])
        if len(ins) > 3 and ins[3] is not None:
            y = y + ins[3]
        return [_act(y, a.get("activation"))]
    if op == "attention":
        H, D = a["heads"], a["head_size"]

        def logical(t, name):       # FORMAT.md: [B, rows, width] at an offset, or a permuted [B, H, rows, D]
            if t.ndim == 3:
                off = a.get(f"{name}_offset", 0)
                return t[:, :, off:off + H * D].reshape(t.shape[0], t.shape[1], H, D).transpose(0, 2, 1, 3)
            return t.transpose(a.get(f"{name}_perm") or (0, 1, 2, 3))
        q, k, v = logical(x, "q"), logical(ins[1], "k"), logical(ins[2], "v")
        s = a["scale"] * (q @ k.transpose(0, 1, 3, 2))
        if len(ins) > 3 and ins[3] is not None:
            s = s + ins[3]
        o = softmax(s, 3, False, False) @ v
        if a.get("y_perm"):
            return [o.transpose(np.argsort(a["y_perm"]))]
        return [o.transpose(0, 2, 1, 3).reshape(o.shape[0], o.shape[2], H * D)]
    if op == "matmul_layer_norm":
        y = x @ ins[1]
        for extra in (ins[2], ins[3]):
            if extra is not None:
                y = y + extra
        mean = y.mean(axis=-1, keepdims=True)
        y = (y - mean) / np.sqrt(((y - mean) ** 2).mean(axis=-1, keepdims=True) + a.get("epsilon", 1e-5)) * ins[4]
        return [y + ins[5] if len(ins) > 5 and ins[5] is not None else y]
    if op == "layer_norm":
        axes = tuple(range(a.get("axis", -1) % x.ndim, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1].reshape(x.shape[axes[0]:] if ins[1].size > 1
                                                                               else ())
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2].reshape(x.shape[axes[0]:] if ins[2].size > 1 else ())
        return [y]
    if op == "gather":
        idx = ins[1].astype(np.int64)
        ax = a.get("axis", 0)
        idx = np.where(idx < 0, idx + x.shape[ax], idx)
        return [np.take(x, idx, axis=ax)]
    if op == "cast":
        to = a["to"]
        return [x.astype(np.float64) if to == "float32" else (x != 0).astype(np.float64) if to == "bool"
                else np.trunc(x)]
    if op == "where":
        return [np.where(x != 0, ins[1], ins[2])]
    if op == "expand":
        return [np.broadcast_to(x, out_shapes[0]).copy()]
    if op == "gelu":
        return [_act(x, "gelu_tanh" if a.get("approximate") == "tanh" else "gelu_erf")]
    simple = {
        "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
        "silu": lambda v: v / (1 + np.exp(-v)),
        "hard_swish": lambda v: v * np.clip(v / 6 + 0.5, 0, 1),
        "leaky_relu": lambda v: np.where(v >= 0, v, a.get("alpha", 0) * v),
        "hard_sigmoid": lambda v: np.clip(a.get("alpha", 0) * v + a.get("beta", 0), 0, 1),
        "clip": lambda v: _clip(v, a.get("min"), a.get("max")),
        "global_avg_pool": lambda v: v.mean(axis=(2, 3), keepdims=True),
        "global_max_pool": lambda v: v.max(axis=(2, 3), keepdims=True),
        "to_layout": lambda v: v,
        "erf": lambda v: np.vectorize(math.erf)(v) if v.size else v, "sqrt": np.sqrt, "exp": np.exp,
        "neg": np.negative, "reciprocal": lambda v: 1.0 / v,
    }
    if op in simple:
        return [simple[op](x)]
    binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
              "max": np.maximum, "min": np.minimum, "equal": lambda u, v: (u == v) * 1.0,
              "less": lambda u, v: (u < v) * 1.0, "greater": lambda u, v: (u > v) * 1.0}
    if op in binary:
        return [np.broadcast_to(binary[op](x, ins[1]), out_shapes[0])]
    if op == "channel_affine":
        sh = (1, -1) + (1,) * (x.ndim - 2)
        y = x * ins[1].reshape(sh) + ins[2].reshape(sh)
        return [np.maximum(y, 0) if a.get("relu") else y]
    if op == "concat":
        return [np.concatenate(ins, axis=a["axis"])]
    if op == "split":
        sizes = [s[a["axis"]] for s in out_shapes]
        return np.split(x, np.cumsum(sizes)[:-1], axis=a["axis"])
    if op == "max_pool":
        return [pool(x, a, "max")]
    if op == "avg_pool":
        return [pool(x, a, "avg")]
    if op == "reshape":
        return [x.reshape(out_shapes[0])]
    if op == "transpose":
        return [x.transpose(a["perm"])]
    if op in ("softmax", "log_softmax"):
        x = a.get("scale", 1.0) * x
        if len(ins) > 1 and ins[1] is not None:
            x = x + ins[1]
        return [softmax(x, a["axis"], a["flatten"], op == "log_softmax")]
    if op == "lrn":
        return [lrn(x, a)]
    if op == "pad":
        r = x.ndim
        p = a["pads"]
        return [np.pad(x, [(p[i], p[i + r]) for i in range(r)], constant_values=a["value"])]
    if op == "reduce_mean":
        return [x.mean(axis=tuple(a["axes"]), keepdims=bool(a["keepdims"]))]
    raise NotImplementedError(op)


# --------------------------------------------------------------------------- storage (FORMAT.md)
PAD_LANE = 3.0      # padded lanes of nchw{B}c hold finite values: a nonzero one, so a reader of them shows


def _block(layout):
    return int(layout[4:-1]) if layout != "nchw" else None


def pack(v, layout):
    """Logical NCHW values -> the flat floats of `layout` (nchw or nchw{B}c)."""
    b = _block(layout)
    if b is None:
        return v.reshape(-1)
    n, c, h, w = v.shape
    cb = -(-c // b)
    p = np.full((n, cb * b, h, w), PAD_LANE)
    p[:, :c] = v
    return p.reshape(n, cb, b, h, w).transpose(0, 1, 3, 4, 2).reshape(-1)


def unpack(flat, shape, layout):
    b = _block(layout)
    if b is None:
        return flat.reshape(shape)
    n, c, h, w = shape
    cb = -(-c // b)
    return flat.reshape(n, cb, h, w, b).transpose(0, 1, 4, 2, 3).reshape(n, cb * b, h, w)[:, :c]


def _floats(shape, layout):
    b = _block(layout)
    dims = list(shape)
    if b is not None:
        dims[1] = -(-dims[1] // b) * b
    return int(np.prod(dims)) if dims else 1


def run(graph, feeds: Dict[str, np.ndarray], storage: bool = False) -> List[np.ndarray]:
    """Evaluate an autoconfig.graph Graph in float64; returns its outputs in order.
    storage=True: intermediates live where the plan put them, as the executor
    keeps them: one arena (NaN until written), each tensor at its `arena`
    offset in its layout, views inside their roots, an in-place concat
    copying nothing. A wrong offset, overlap, layout or view shows as a
    wrong or NaN output."""
    env: Dict[str, np.ndarray] = {}
    arena = np.full(max(1, graph.arena_floats), np.nan) if storage else None

    def is_stored(name):
        return storage and graph.tensors[name].kind == "intermediate"

    def read(name):
        if not is_stored(name):
            return env[name]
        t = graph.tensors[name]
        return unpack(arena[t.arena:t.arena + _floats(t.shape, t.layout)], tuple(t.shape), t.layout)

    def write(name, v):
        if not is_stored(name):
            env[name] = v
            return
        t = graph.tensors[name]
        assert t.layout == "nchw" or len(t.shape) == 4, (name, t.layout)
        assert t.arena + _floats(t.shape, t.layout) <= graph.arena_floats, name
        arena[t.arena:t.arena + _floats(t.shape, t.layout)] = pack(v, t.layout)

    for name, t in graph.tensors.items():
        if t.kind == "constant":
            env[name] = t.data.astype(np.float64)
    for name in graph.inputs:
        env[name] = np.asarray(feeds[name], dtype=np.float64)
        assert env[name].shape == tuple(graph.tensors[name].shape)
    for n in graph.nodes:
        ins = [read(i) if i else None for i in n.inputs]
        outs = run_node(n.op, ins, n.attrs, [tuple(graph.tensors[o].shape) for o in n.outputs])
        for o, v in zip(n.outputs, outs):
            assert v.shape == tuple(graph.tensors[o].shape), (n.name, n.op, v.shape, graph.tensors[o].shape)
            if not (n.op == "concat" and n.attrs.get("in_place") and storage):
                write(o, v)
    return [read(o) for o in graph.outputs]
