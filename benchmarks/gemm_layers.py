"""Transformer GEMM layers with constant weights: autoconfig's executor (the
weights packed once at load, PreparedGemmB) against onnxruntime (which
pre-packs its MatMul weights too), numpy and, when installed, torch, all on
the same inputs, round-robin in one process.

    python benchmarks/gemm_layers.py [--rows 8,16,128,384,512] [--threads 1]
                                     [--repeat 20] [--markdown]

One thread count per run (numpy's BLAS takes its thread count at import).

Layers (BERT-base, hidden 768): x[M, K] @ W[K, N] + b for (N, K) in
  768x768 (attention output), 2304x768 (fused QKV), 3072x768 (FFN up),
  768x3072 (FFN down)
with M = rows (tokens: the sequence buckets, 512 = 4 x 128). Each layer is a
one-node ONNX model (MatMul + Add), loaded with autoconfig.load_onnx (the
planner fuses the bias into the GEMM's epilogue) and with onnxruntime
(ORT_ENABLE_ALL, the same intra-op threads). numpy and torch compute
x @ W + b (two passes over the output; they do not pack ahead). The table
gives the best of --repeat rounds per engine, GFLOPS, % of the FMA peak the
bench measures at start (autoconfig.bench.measured_peak_gflops), and the ratio
of each peer's time to ours (> 1: ours is faster). Write `uptime` beside the
numbers: the machine may be shared.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable, Dict, List

LAYERS = ((768, 768), (2304, 768), (3072, 768), (768, 3072))


def layer_model(M: int, N: int, K: int, seed: int = 0) -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        f"layer_{M}x{N}x{K}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def ort_session(model: bytes, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def best_of(fns: Dict[str, Callable[[], object]], repeat: int) -> Dict[str, float]:
    """Round-robin: every engine once per round (an untimed call first)."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeat):
        for k, fn in fns.items():
            fn()
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="8,16,128,384,512")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    threads = args.threads
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # before numpy loads its BLAS
        os.environ[var] = str(threads)
    import numpy as np
    import onnx
    from onnx import numpy_helper

    import autoconfig
    from autoconfig.bench import measured_peak_gflops
    rows = [int(x) for x in args.rows.split(",")]
    peak = measured_peak_gflops(autoconfig.build_info()["isa"]) or autoconfig.host().peak_gflops_per_core
    try:
        import torch
    except ImportError:
        torch = None
    head = ["threads", "M", "N", "K", "ours ms", "GFLOPS", "% peak", "ort x", "numpy x", "torch x"]
    out: List[List[str]] = []
    if torch is not None:
        torch.set_num_threads(threads)
    for M in rows:
        for N, K in LAYERS:
            model = layer_model(M, N, K)
            ours = autoconfig.load_onnx(model, threads=threads)
            sess = ort_session(model, threads)
            x = np.random.default_rng(1).standard_normal((M, K)).astype(np.float32)
            init = {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(model).graph.initializer}
            w, b = init["w"], init["b"]
            y = np.empty((M, N), np.float32)
            fns = {"ours": lambda: ours(x, threads=threads),
                   "ort": lambda: sess.run(None, {"x": x}),
                   "numpy": lambda: np.add(np.matmul(x, w, out=y), b, out=y)}
            if torch is not None:
                tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
                fns["torch"] = lambda: torch.addmm(tb, tx, tw)
            ref = x.astype(np.float64) @ w.astype(np.float64) + b
            err = np.abs(np.asarray(ours(x)) - ref).max() / np.abs(ref).max()
            if err > 1e-5:
                raise SystemExit(f"{M}x{N}x{K}: relative error {err:.2e} against float64")
            t = best_of(fns, args.repeat)
            gf = 2.0 * M * N * K / t["ours"] / 1e9
            out.append([str(threads), str(M), str(N), str(K), f"{t['ours'] * 1e3:.3f}", f"{gf:.1f}",
                        f"{100 * gf / (peak * threads):.1f}", f"{t['ort'] / t['ours']:.2f}",
                        f"{t['numpy'] / t['ours']:.2f}",
                        f"{t['torch'] / t['ours']:.2f}" if "torch" in t else "-"])
            print(" ".join(out[-1]), flush=True)
    print(f"\npeak {peak:.1f} GFLOPS/core (measured at start), {autoconfig.build_info()['isa']}")
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in out:
            print("| " + " | ".join(r) + " |")
    else:
        print("  ".join(head))
        for r in out:
            print("  ".join(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
