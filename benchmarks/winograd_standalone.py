"""Time the generated Winograd kernels (F(2x2,3x3), F(4x4,3x3)) against
torch.nn.functional.conv2d (oneDNN) and torch im2col + GEMM (unfold + MKL
sgemm) on ResNet-50's 3x3 stride-1 layers at batch 1, one thread.

    python benchmarks/winograd_standalone.py [--isa avx512|avx2|generic] [--repeat 10]
                                             [--l1 BYTES] [--l2 BYTES] [--threads 1]

Builds the kernels standalone (as tests/build/test_winograd_kernel.py does: no
package build needed). Prints ms per layer (best of --repeat), GFLOPS of the
direct-convolution flop count, and the ratio torch / ours (> 1: ours faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from test_winograd_kernel import build  # noqa: E402

from autoconfig.cli import MAX_REPEAT, available_cpus, bounded_int  # noqa: E402

LAYERS = [("res2_3x3", 64, 56), ("res3_3x3", 128, 28), ("res4_3x3", 256, 14), ("res5_3x3", 512, 7)]


def best_ms(fn, repeat: int) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="avx512", choices=["avx512", "avx2", "generic"])
    ap.add_argument("--repeat", type=bounded_int(1, lambda: MAX_REPEAT, "more samples only lengthen the run"),
                    default=10)
    ap.add_argument("--threads", type=bounded_int(1, available_cpus, "the CPUs this process may run on"), default=1)
    cache = bounded_int(1024, lambda: 2**31 - 1, "bytes of one cache level")
    ap.add_argument("--l1", type=cache, default=32 * 1024, help="l1_bytes passed to emit_winograd")
    ap.add_argument("--l2", type=cache, default=2 * 1024 * 1024, help="l2_bytes passed to emit_winograd")
    ap.add_argument("--tile-block", type=bounded_int(0, lambda: 2**31 - 1, "an int in the generated code"), default=0,
                    help="fix the tiles per block (0: the model's choice)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        lib = build(args.isa, tmp, dict(l1_bytes=args.l1, l2_bytes=args.l2, tile_block=args.tile_block))
        print(f"isa={args.isa} threads={args.threads} l1={args.l1} l2={args.l2} (best of {args.repeat})")
        print(f"{'layer':10} {'shape':>14} {'torch ms':>9} {'im2col ms':>9} {'F2 ms':>7} {'F4 ms':>7} "
              f"{'F4 GF/s':>8} {'torch/F2':>8} {'torch/F4':>8} {'im2col/F4':>9}")
        for name, C, H in LAYERS:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((C, H, H), dtype=np.float32)
            w = rng.standard_normal((C, C, 3, 3), dtype=np.float32)
            xt, wt = torch.from_numpy(x)[None], torch.from_numpy(w)
            w2 = wt.reshape(C, -1)
            t_torch = best_ms(lambda: F.conv2d(xt, wt, padding=1), args.repeat)
            t_im2col = best_ms(lambda: w2 @ F.unfold(xt, 3, padding=1)[0], args.repeat)
            y = np.empty((C, H, H), np.float32)
            times = {}
            for m in (2, 4):
                u = lib.pack(m, w)
                times[m] = best_ms(lambda: lib.run(m, x, u, C, (1, 1, 1, 1), threads=args.threads, out=y),
                                   args.repeat)
            gflops = 2 * C * C * 9 * H * H / times[4] / 1e6
            print(f"{name:10} {f'{C}x{H}x{H}':>14} {t_torch:9.3f} {t_im2col:9.3f} {times[2]:7.3f} {times[4]:7.3f} "
                  f"{gflops:8.1f} {t_torch / times[2]:8.2f} {t_torch / times[4]:8.2f} {t_im2col / times[4]:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
