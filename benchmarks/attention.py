"""Attention alone: autoconfig's fused kernel against the unfused sequence of
our own kernels, and against onnxruntime, measured round-robin in one process.

    python benchmarks/attention.py [--heads 12] [--seq 384] [--dim 64] [--batch 1] [--layernorm]
                                   [--threads 1,2] [--repeat 20] [--markdown]

Engines, all on the same float32 inputs (Q, K, V read in place from one packed
(B, S, 3*H*D) projection, BERT's (B, 1, 1, S) padding mask with its last 10%
masked, O written with its heads merged):
  fused     autoconfig.attention(..., algorithm="fused")
  unfused   autoconfig.attention(..., algorithm="unfused"): autoconfig gemm
            (Q K^T), softmax rows, gemm (P V), head by head: the sequence a
            graph of MatMul, Mul, Add, Softmax, MatMul runs on our kernels
  ort-mha   onnxruntime's com.microsoft MultiHeadAttention contrib op (Q, K,
            V as (B, S, H*D)), when the installed wheel has it
  ort-graph onnxruntime on the unfused ONNX graph (ORT_ENABLE_ALL)
  torch     torch.nn.functional.scaled_dot_product_attention, when installed
With --layernorm it times GEMM + bias + residual + LayerNorm instead
(autoconfig.gemm_layernorm fused vs unfused, BERT-base's two shapes per layer
at --seq rows: 768 x 768 and 3072 x 768), against onnxruntime on MatMul, Add,
Add, LayerNormalization (ORT_ENABLE_ALL).
Every engine runs once per round, each thread count in turn (one untimed call
before each timed one); best and median over --repeat rounds. The model's
predicted times (autoconfig.attention_choice) are printed beside the measured.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import autoconfig


def _ort_session(model_bytes, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def ort_engines(B, H, S, D, threads):
    """{name: callable(q3, k3, v3, mask, mask_mha)} for onnxruntime, or {} without it."""
    try:
        import onnxruntime  # noqa: F401
        from onnx import TensorProto, helper
    except ImportError:
        return {}
    hd = H * D
    out = {}
    # MultiHeadAttention (com.microsoft): query/key/value (B, S, H*D), attention_bias (B or 1, H or 1, S, S)
    mha = helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "", "bias"], ["o"], domain="com.microsoft",
                           num_heads=H, scale=1.0 / np.sqrt(D))
    g = helper.make_graph([mha], "mha", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [B, S, hd])
                                         for n in ("q", "k", "v")]
                          + [helper.make_tensor_value_info("bias", TensorProto.FLOAT, [B, 1, S, S])],
                          [helper.make_tensor_value_info("o", TensorProto.FLOAT, [B, S, hd])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    try:
        sess = _ort_session(m.SerializeToString(), threads)
        out["ort-mha"] = lambda q, k, v, mask, bias: sess.run(None, {"q": q, "k": k, "v": v, "bias": bias})[0]
    except Exception as e:  # the wheel may lack the contrib op
        print(f"# onnxruntime MultiHeadAttention unavailable: {type(e).__name__}: {str(e).splitlines()[0]}")
    # the unfused graph an exporter writes, on (B, S, H*D) inputs with the head split / merge
    shp = helper.make_tensor("shp", TensorProto.INT64, [4], [B, S, H, D])
    mshp = helper.make_tensor("mshp", TensorProto.INT64, [3], [B, S, hd])
    sc = helper.make_tensor("sc", TensorProto.FLOAT, [], [1.0 / np.sqrt(D)])
    nodes = []
    for n in ("q", "k", "v"):
        nodes.append(helper.make_node("Reshape", [n, "shp"], [n + "r"]))
        nodes.append(helper.make_node("Transpose", [n + "r"], [n + "t"],
                                      perm=[0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]))
    nodes += [helper.make_node("MatMul", ["qt", "kt"], ["s"]), helper.make_node("Mul", ["s", "sc"], ["ss"]),
              helper.make_node("Add", ["ss", "mask"], ["sm"]), helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "vt"], ["o4"]),
              helper.make_node("Transpose", ["o4"], ["ot"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ot", "mshp"], ["o"])]
    g = helper.make_graph(nodes, "unfused", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [B, S, hd])
                                             for n in ("q", "k", "v")]
                          + [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [B, 1, 1, S])],
                          [helper.make_tensor_value_info("o", TensorProto.FLOAT, [B, S, hd])],
                          initializer=[shp, mshp, sc])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess2 = _ort_session(m.SerializeToString(), threads)
    out["ort-graph"] = lambda q, k, v, mask, bias: sess2.run(None, {"q": q, "k": k, "v": v, "mask": mask})[0]
    return out


def torch_engine(threads):
    try:
        import torch
    except ImportError:
        return None

    def run(qh, kh, vh, mask):
        torch.set_num_threads(threads)
        with torch.no_grad():
            return torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
    return run


def layernorm_engines(M, N, K, threads, rng):
    a = rng.standard_normal((M, K), dtype=np.float32)
    w = (rng.standard_normal((K, N), dtype=np.float32) / np.sqrt(K)).astype(np.float32)
    bias, gamma, beta = (rng.standard_normal(N, dtype=np.float32) for _ in range(3))
    res = rng.standard_normal((M, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)
    eng = {}
    for t in threads:
        for alg in ("fused", "unfused"):
            eng[(alg, t)] = (lambda t=t, alg=alg: autoconfig.gemm_layernorm(
                a, w, gamma, beta, bias=bias, residual=res, out=out, threads=t, algorithm=alg))
        try:
            from onnx import TensorProto, helper, numpy_helper
        except ImportError:
            continue
        nodes = [helper.make_node("MatMul", ["a", "w"], ["y"]), helper.make_node("Add", ["y", "bias"], ["yb"]),
                 helper.make_node("Add", ["yb", "res"], ["yr"]),
                 helper.make_node("LayerNormalization", ["yr", "gamma", "beta"], ["o"], axis=-1, epsilon=1e-5)]
        g = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                            for n, s in (("a", [M, K]), ("res", [M, N]))],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, [M, N])],
                              initializer=[numpy_helper.from_array(x, n) for x, n in
                                           ((w, "w"), (bias, "bias"), (gamma, "gamma"), (beta, "beta"))])
        sess = _ort_session(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), t)
        eng[("ort-graph", t)] = lambda sess=sess: sess.run(None, {"a": a, "res": res})
    return eng


def run_rounds(engines, repeat):
    times = {key: [] for key in engines}
    for _ in range(repeat):
        for key, fn in engines.items():
            fn()
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def main_layernorm(args, threads) -> None:
    rng = np.random.default_rng(0)
    for K, N in ((768, 768), (3072, 768)):
        M = args.batch * args.seq
        times = run_rounds(layernorm_engines(M, N, K, threads, rng), args.repeat)
        print(f"# GEMM {M}x{N}x{K} + bias + residual + LayerNorm, {args.repeat} rounds; load "
              f"{os.getloadavg()[0]:.2f}")
        for t in threads:
            c = autoconfig.gemm_layernorm_choice(M, N, K, threads=t)
            fused_best = min(times[("fused", t)])
            for (name, tt), ts in times.items():
                if tt == t:
                    pred = c.get(f"{name}_s")
                    print(f"  threads {t} {name:>10}: best {min(ts) * 1e3:7.3f} ms  median "
                          f"{statistics.median(ts) * 1e3:7.3f} ms  fused speed-up {min(ts) / fused_best:.2f}x"
                          + (f"  predicted {pred * 1e3:.3f} ms" if pred else ""))
            print(f"  model's choice at {t} thread(s): {c['algorithm']} (block rows {c['block_rows']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=20, help="rounds (default 20, at least 20 for the figures)")
    ap.add_argument("--no-peers", action="store_true", help="only autoconfig fused vs unfused")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--layernorm", action="store_true", help="time GEMM + bias + residual + LayerNorm instead")
    args = ap.parse_args()
    B, H, S, D = args.batch, args.heads, args.seq, args.dim
    threads = [int(t) for t in args.threads.split(",")]
    if args.layernorm:
        main_layernorm(args, threads)
        return
    rng = np.random.default_rng(0)
    hd = H * D
    qkv = rng.standard_normal((B, S, 3 * hd), dtype=np.float32)
    q, k, v = (qkv[..., i * hd:(i + 1) * hd].reshape(B, S, H, D).transpose(0, 2, 1, 3) for i in range(3))
    q3, k3, v3 = (np.ascontiguousarray(qkv[..., i * hd:(i + 1) * hd]) for i in range(3))
    mask = np.zeros((B, 1, 1, S), np.float32)
    mask[..., S - S // 10:] = -10000.0
    bias = np.ascontiguousarray(np.broadcast_to(mask, (B, 1, S, S)))
    merged = np.empty((B, S, hd), np.float32)
    o = merged.reshape(B, S, H, D).transpose(0, 2, 1, 3)

    engines = {}   # (name, threads) -> callable
    for t in threads:
        engines[("fused", t)] = lambda t=t: autoconfig.attention(q, k, v, mask, threads=t, out=o, algorithm="fused")
        engines[("unfused", t)] = lambda t=t: autoconfig.attention(q, k, v, mask, threads=t, out=o,
                                                                   algorithm="unfused")
        if not args.no_peers:
            for name, fn in ort_engines(B, H, S, D, t).items():
                engines[(name, t)] = lambda fn=fn: fn(q3, k3, v3, mask, bias)
            te = torch_engine(t)
            if te is not None:
                import torch
                qh, kh, vh = (torch.from_numpy(np.ascontiguousarray(x)) for x in (q, k, v))
                tm = torch.from_numpy(mask)
                engines[("torch", t)] = lambda te=te, qh=qh, kh=kh, vh=vh, tm=tm: te(qh, kh, vh, tm)

    # correctness of every engine against the fused result (heads merged)
    engines[("fused", threads[0])]()
    ref = merged.copy()
    for (name, t), fn in engines.items():
        r = fn()
        r = merged if r is None or r is o else (r.numpy() if hasattr(r, "numpy") else r)
        if r.shape != ref.shape:
            r = r.transpose(0, 2, 1, 3).reshape(B, S, hd) if r.ndim == 4 else r
        err = float(np.max(np.abs(r - ref)))
        if err > 1e-3:
            print(f"# warning: {name} t={t} differs from fused by {err:.3g}")

    times = run_rounds(engines, args.repeat)

    load = os.getloadavg()[0]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"# attention B={B} H={H} S={S} D={D}, mask (B,1,1,S), {args.repeat} rounds; {cpu}; "
          f"load {load:.2f} at the end")
    sep = "|" if args.markdown else " "
    head = ["threads", "engine", "best ms", "median ms", "fused speed-up (best)", "predicted ms"]
    print(sep.join(f"{h:>22}" for h in head) if not args.markdown else "| " + " | ".join(head) + " |")
    if args.markdown:
        print("|" + "---|" * len(head))
    for t in threads:
        fused_best = min(times[("fused", t)])
        choice = autoconfig.attention_choice(B, H, S, S, D, threads=t)
        pred = {"fused": choice["fused_s"], "unfused": choice["unfused_s"]}
        for (name, tt), ts in times.items():
            if tt != t:
                continue
            row = [str(t), name, f"{min(ts) * 1e3:.2f}", f"{statistics.median(ts) * 1e3:.2f}",
                   f"{min(ts) / fused_best:.2f}x", f"{pred[name] * 1e3:.2f}" if name in pred else "-"]
            print(sep.join(f"{c:>22}" for c in row) if not args.markdown else "| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
