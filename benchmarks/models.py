"""End-to-end latency of whole networks: autoconfig against onnxruntime and
OpenVINO (each at the same thread count, round-robin in one process; see
autoconfig/bench_model.py for how), at 1 and 2 threads, batch 1; a
transformer (bert.onnx, distilbert.onnx) at sequence length --sequence
(default 128: BERT-base seq 128 batch 1), its token ids made up.

    python benchmarks/export_models.py                  # once: benchmarks/models/*.onnx (needs torch)
    python benchmarks/export_transformers.py --out benchmarks/models   # bert, distilbert, vit
    python benchmarks/models.py [--models DIR | FILE.onnx ...] [--threads 1,2] [--runs 20]
                                [--markdown] [--profile] [--out FILE.md]

Prints, per model and thread count, the latency table (best and median,
speed-up = peer / ours, load time, max relative error against onnxruntime),
then one summary table of the speed-ups; --profile adds the per-node
measured vs predicted table. The CPU is named in every table: results are
only comparable within one run.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

ORDER = ("resnet50", "resnet18", "mobilenet_v2", "squeezenet1_1", "bert", "distilbert", "vit")


def _models(args):
    if args.files:
        return args.files
    found = sorted(glob.glob(os.path.join(args.models, "*.onnx")))
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(found, key=lambda p: (rank.get(os.path.splitext(os.path.basename(p))[0], len(ORDER)), p))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="ONNX files (default: every .onnx in --models)")
    ap.add_argument("--models", default=os.path.join(os.path.dirname(__file__), "models"))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sequence", type=int, default=128, help="transformers: sequence length (batch 1)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also the per-node profile (the 15 slowest nodes)")
    ap.add_argument("--out", default=None, help="also write the output to this file")
    args = ap.parse_args()
    paths = _models(args)
    if not paths:
        print(f"no models: run benchmarks/export_models.py first (looked in {args.models})", file=sys.stderr)
        return 2
    counts = [int(t) for t in args.threads.split(",")]
    from autoconfig import bench
    bench.pin_threads(max(counts))
    from autoconfig import bench_model
    from autoconfig.bench import render_table
    out, summary = [], []
    for path in paths:
        for t in counts:
            b = bench_model.run(path, threads=t, runs=max(20, args.runs), sequence=args.sequence)
            chunk = [bench_model.format_latency(b, args.markdown), ""]
            if args.profile:
                chunk += [bench_model.format_profile(b, args.markdown, top=15), ""]
            print("\n".join(chunk), flush=True)
            out += chunk
            ours = b.engine("autoconfig")
            shape = "x".join(map(str, b.input_shape))
            row = [f"{b.model} {shape}", str(t), f"{ours.best * 1e3:.2f}"]
            for peer in ("onnxruntime", "openvino"):
                e = b.engine(peer)
                row += ["-", "-"] if e is None else [f"{e.best * 1e3:.2f}", f"{e.best / ours.best:.2f}x"]
            row.append("-" if ours.error is None else f"{ours.error:.1e}")
            summary.append(row)
    head = ["model", "thr", "ours ms", "onnxruntime ms", "vs ort", "openvino ms", "vs ov", "max rel err"]
    table = render_table(head, summary, args.markdown)
    table.append(f"best of {max(20, args.runs)} runs each, round-robin in one process, on {bench_model.cpu_name()}; "
                 "vs = peer / ours (> 1: ours is faster)")
    print("\n".join(table))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(out + table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
