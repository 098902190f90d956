"""The DLFusion comparison on this machine: the planned network against "no
optimization" and against a measured oracle, end to end, batch 1.

    python benchmarks/dlfusion.py [--models DIR | FILE.onnx ...] [--threads 2] [--runs 20]
                                  [--markdown] [--out FILE.md]

Configurations (all run by the same executor, same build, same process):
  no optimization  no passes (batch-norms stay nodes), no fusion, NCHW only,
                   every node on all the threads (as onnxruntime runs its ops)
  planned          the planner's choices: folds and fusions, NCHW[B]c layout
                   groups, threads per node from the DLFusion rule and the model
  oracle           a measured search over both knobs DLFusion plans jointly:
                   for each fusion scheme (the planner's fusions, or none: folds
                   only) every node is timed (model.profile, best of --repeat
                   runs) at every thread count 1..T, the fastest count is kept
                   per node, and the network with those counts is timed end to
                   end; the oracle is the faster scheme. Nodes run one after
                   another, so per node is the search's exact decomposition
                   up to cache effects between nodes (a reduced brute force,
                   as DLFusion's oracle). Layouts stay the planner's.
The three (and the oracle's other scheme) are timed round-robin (best and
median of --runs). speed-up = no optimization / planned; gap = planned /
oracle - 1 (> 0: the oracle is faster by that much).

Exported models: benchmarks/export_models.py (default: resnet50.onnx and
mobilenet_v2.onnx in --models).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Dict, List

DEFAULT_MODELS = ("resnet50.onnx", "mobilenet_v2.onnx")


def build(path: str, threads: int, **options):
    """(plan, loaded Model) for compile_onnx options (fusion, optimize,
    layouts, all_threads, node_threads)."""
    from autoconfig import model_onnx
    from autoconfig.graph import acmodel
    from autoconfig.graph.pipeline import compile_onnx
    from autoconfig.runtime.info import host
    name = os.path.splitext(os.path.basename(path))[0]
    plan = compile_onnx(path, host(), threads=threads, name=name, **options)
    return plan, model_onnx.load_bytes(acmodel.to_bytes(plan.graph), threads=threads)


def per_node_ms(model, x, threads: int, repeat: int) -> Dict[str, float]:
    return {row["name"]: row["ms"] for row in model.profile(x, threads=threads, repeat=repeat)}


def oracle_threads(path: str, x, threads: int, fusion: bool, repeat: int):
    """{node: fastest measured count}, {node: {count: ms}} for one fusion scheme."""
    names = [n.name for n in build(path, threads, fusion=fusion)[0].graph.nodes]
    times: Dict[str, Dict[int, float]] = {n: {} for n in names}
    for t in range(1, threads + 1):
        _, model = build(path, threads, fusion=fusion, node_threads={n: t for n in names})
        model(x)
        for n, ms in per_node_ms(model, x, threads, repeat).items():
            times[n][t] = ms
    return {n: min(ts, key=lambda t: (ts[t], t)) for n, ts in times.items()}, times


def compare(path: str, threads: int, runs: int, repeat: int) -> dict:
    import numpy as np
    from autoconfig import bench_model
    configs = {
        "no optimization": dict(optimize=False, layouts="nchw", all_threads=True),
        "planned": dict(),
    }
    g = build(path, threads)[0].graph
    x = np.random.default_rng(0).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    searched = {}
    for fusion in (True, False):
        best, _ = oracle_threads(path, x, threads, fusion, repeat)
        label = f"oracle ({'fused' if fusion else 'unfused'})"
        configs[label] = dict(fusion=fusion, node_threads=best)
        searched[label] = best
    built = {k: build(path, threads, **v) for k, v in configs.items()}
    fns = {k: (lambda m: (lambda: m(x)))(m) for k, (_, m) in built.items()}
    samples = bench_model.round_robin(fns, runs, threads, pauses={})
    best_ms = {k: min(v) * 1e3 for k, v in samples.items()}
    med_ms = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    oracle = min((k for k in best_ms if k.startswith("oracle")), key=best_ms.get)
    planned = built["planned"][0]
    o_threads = searched[oracle]
    differ = sum(1 for n in planned.graph.nodes if n.name in o_threads and o_threads[n.name] != n.threads)
    return dict(model=os.path.basename(path), threads=threads, best=best_ms, median=med_ms, oracle=oracle,
                predicted={k: p.total_ms for k, (p, _) in built.items()},
                nodes={k: len(p.graph.nodes) for k, (p, _) in built.items()},
                differ=differ, planned_nodes=len(planned.graph.nodes))


def render(results: List[dict], markdown: bool, cpu: str, runs: int) -> List[str]:
    from autoconfig.bench import render_table
    head = ["model", "thr", "no opt ms", "planned ms", "oracle ms", "oracle scheme", "planned vs no opt",
            "oracle vs no opt", "gap", "threads differ", "predicted planned / no opt ms"]
    rows = []
    for r in results:
        b, o = r["best"], r["oracle"]
        rows.append([r["model"], str(r["threads"]), f"{b['no optimization']:.2f}", f"{b['planned']:.2f}",
                     f"{b[o]:.2f}", o.split("(")[1].rstrip(")"),
                     f"{b['no optimization'] / b['planned']:.2f}x", f"{b['no optimization'] / b[o]:.2f}x",
                     f"{(b['planned'] / b[o] - 1) * 100:+.1f}%", f"{r['differ']} of {r['planned_nodes']}",
                     f"{r['predicted']['planned']:.2f} / {r['predicted']['no optimization']:.2f}"])
    lines = render_table(head, rows, markdown)
    lines.append(f"best of {runs} runs each, round-robin in one process, on {cpu}; gap = planned / oracle - 1; "
                 "threads differ: planned nodes whose oracle count differs")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="ONNX files (default: resnet50 and mobilenet_v2 in --models)")
    ap.add_argument("--models", default=os.path.join(os.path.dirname(__file__), "models"))
    ap.add_argument("--threads", type=int, default=2, help="the cores to plan for (the oracle tries 1..T per node)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5, help="profile runs per thread count (best per node)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    paths = args.files or [os.path.join(args.models, m) for m in DEFAULT_MODELS]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"missing {missing}: run benchmarks/export_models.py first", file=sys.stderr)
        return 2
    if args.threads < 1 or args.runs < 1 or args.repeat < 1:
        print("--threads, --runs and --repeat must be >= 1", file=sys.stderr)
        return 2
    from autoconfig import bench
    bench.pin_threads(args.threads)
    from autoconfig import bench_model
    results: List[dict] = []
    for p in paths:
        results.append(compare(p, args.threads, args.runs, args.repeat))
        r = results[-1]
        print(f"{r['model']}: " + ", ".join(f"{k} {v:.2f} ms (median {r['median'][k]:.2f})"
                                           for k, v in r["best"].items()), flush=True)
    lines = render(results, args.markdown, bench_model.cpu_name(), args.runs)
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
