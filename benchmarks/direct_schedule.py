"""The direct kernel's schedule knobs on one layer, measured round-robin in one
process: pixel order (rows / flat), inner reduction blocks, and, for one-off
conv2d() calls, the whole re-layout against packing per group in the kernel
(issue 14's small-output ResNet-50 layers). Beside them: the model's own
choice and the other algorithms, so the numbers behind models/conv.py's
inner_blocks() and pack_groups_terms() can be taken again.

    python benchmarks/direct_schedule.py [--layer C,H,W,K,R,stride,pad] [--oneoff]
                                         [--threads 1] [--rounds 30] [--cpu-time]
                                         [--variant "direct 6x2 flat inner=18 group-pack" ...]

Default layer: 512x7x7->512 3x3 (ResNet-50's last 3x3). Every variant runs
once per round (one untimed call first); min, 20th percentile and median
over --rounds. --cpu-time takes the process CPU time instead of the wall
clock (1 thread only): on a machine shared with other jobs it drops the time
the process waits for a CPU, though not the caches the others evict.
"""
from __future__ import annotations

import argparse
import os
import time

DEFAULT_VARIANTS = {
    False: ["", "direct 4x3 rows inner=1", "direct 4x3 rows inner=4", "direct 6x2 rows inner=1",
            "direct 6x2 flat inner=1", "direct 6x2 flat inner=4", "winograd-f2", "im2col-gemm"],
    True: ["", "direct 6x2 flat cblocks=1 inner=1 group-pack", "direct 6x2 flat cblocks=1 inner=18 group-pack",
           "direct 4x3 rows cblocks=1 inner=1 group-pack", "direct 4x3 rows whole-pack", "winograd-f2",
           "im2col-gemm"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="512,7,7,512,3,1,1", help="C,H,W,K,R,stride,pad (square kernel and pads)")
    ap.add_argument("--oneoff", action="store_true", help="time conv2d() calls (weights prepared in the call)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--cpu-time", action="store_true", help="process CPU time instead of the wall clock (1 thread)")
    ap.add_argument("--variant", action="append", help="an algorithm= value (repeatable; '' = the model's choice)")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time measures one thread's work: use it with --threads 1")
    import numpy as np
    import autoconfig
    C, H, W, K, R, s, p = (int(v) for v in args.layer.split(","))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C, R, R), dtype=np.float32) * 0.1
    b = rng.standard_normal(K, dtype=np.float32)
    geo = dict(strides=s, pads=p, activation="relu", threads=args.threads)
    fns = {}
    for v in (args.variant if args.variant is not None else DEFAULT_VARIANTS[args.oneoff]):
        alg = v or None
        try:
            if args.oneoff:
                autoconfig.conv2d(x, w, b, algorithm=alg, **geo)
                fns[v] = (lambda alg=alg: autoconfig.conv2d(x, w, b, algorithm=alg, **geo))
            else:
                layer = autoconfig.prepare_conv2d(w, b, input_shape=(C, H, W), algorithm=alg, **geo)
                fns[v] = (lambda layer=layer: layer(x))
        except ValueError as e:
            print(f"{v or 'model'}: skipped ({e})")
    clock = time.process_time if args.cpu_time else time.perf_counter
    samples = {v: [] for v in fns}
    for _ in range(args.rounds):
        for v, f in fns.items():
            f()
            t0 = clock()
            f()
            samples[v].append(clock() - t0)
    flops = 2.0 * K * C * R * R * ((H + 2 * p - R) // s + 1) * ((W + 2 * p - R) // s + 1)
    print(f"{C}x{H}x{W}->{K} {R}x{R}/{s} pad {p}, {'one-off conv2d()' if args.oneoff else 'prepared layer'}, "
          f"{args.threads} thread(s), {args.rounds} rounds, {'CPU' if args.cpu_time else 'wall'} time; "
          f"load {os.getloadavg()[0]:.2f}")
    for v, ts in samples.items():
        ts.sort()
        print(f"  {v or 'model':50s} min {ts[0] * 1e3:7.3f} ms  p20 {ts[len(ts) // 5] * 1e3:7.3f}  "
              f"median {ts[len(ts) // 2] * 1e3:7.3f}  ({flops / ts[0] / 1e9:.1f} GFLOPS at min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
