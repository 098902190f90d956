"""Time the weight preparation of ResNet-50's 3x3 layers for each algorithm
that needs one (the direct kernel's NCHW[B]c re-layout, the Winograd F(2x2)
and F(4x4) transforms), whatever the model would choose, against the bytes
at the probe's copy bandwidth and a numpy copy of the same bytes (issue 14:
the 512x512x3x3 F(4x4) transform in <= 10 ms on one thread).

    python benchmarks/weight_transforms.py [--threads 1] [--repeat 20] [--scale]

Needs the package built (the packers are the generated ones). Prints, per
layer and algorithm, the best of --repeat calls of conv2d_prepare_weights'
re-layout (timed inside the call: fold + pack, no checks, no model), its
bytes read + written, their time at the copy bandwidth of the level they fit
in, the best numpy copy (bench_conv.memcpy_fn) and the two ratios.
"""
from __future__ import annotations

import argparse

import numpy as np

from autoconfig.bench_conv import memcpy_fn, prepare_reference
from autoconfig.cli import MAX_REPEAT, available_cpus, bounded_int
from autoconfig.runtime.guard import require_ext
from autoconfig.runtime.info import host
from autoconfig.spec import Conv2dShape
from autoconfig.vocabulary import CONV_ALGORITHMS

# (name, channels in = out, input size): ResNet-50's 3x3 stride-1 layers.
LAYERS = [("res2_3x3", 64, 56), ("res3_3x3", 128, 28), ("res4_3x3", 256, 14), ("res5_3x3", 512, 7)]
PREPARED = ("direct", "winograd-f2", "winograd-f4")
F4_BAR_MS = 10.0   # issue 14: 512x512x3x3 F(4x4) on one thread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=bounded_int(1, available_cpus, "the CPUs this process may use"), default=1)
    ap.add_argument("--repeat", type=bounded_int(1, lambda: MAX_REPEAT, "MAX_REPEAT"), default=20)
    ap.add_argument("--scale", action="store_true", help="fold a batch-norm scale in the same pass")
    args = ap.parse_args()
    ext, prof = require_ext(), host()
    rng = np.random.default_rng(0)
    print(f"{'layer':<10} {'algorithm':<12} {'MB':>6} {'re-layout ms':>13} {'ms at copy bw':>14} {'memcpy ms':>10} "
          f"{'/ bw':>6} {'/ memcpy':>9}")
    f4_bar = None
    for name, c, hw in LAYERS:
        sh = Conv2dShape(C=c, H=hw, W=hw, K=c, R=3, S=3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
        w = rng.standard_normal((c, c, 3, 3), dtype=np.float32)
        scale = (rng.random(c, dtype=np.float32) + 0.5) if args.scale else None
        for alg in PREPARED:
            mask = [1 << CONV_ALGORITHMS.index(alg), -1, -1, -1, -1]
            best = min(ext.conv2d_prepare_weights(w, scale, c, hw, hw, [1, 1], [1, 1, 1, 1], [1, 1], 1,
                                                  args.threads, mask) for _ in range(args.repeat))
            nbytes, bw_s = prepare_reference(prof, sh, alg, plain=False)
            copies: list = []
            copy = memcpy_fn(prof, sh, alg, False, copies)
            for _ in range(args.repeat):
                copy()
            mem = min(copies)
            print(f"{name:<10} {alg:<12} {nbytes / 1e6:>6.2f} {best * 1e3:>13.3f} {bw_s * 1e3:>14.3f} "
                  f"{mem * 1e3:>10.3f} {best / bw_s:>6.2f} {best / mem:>9.2f}")
            if (c, alg) == (512, "winograd-f4"):
                f4_bar = best * 1e3
    if f4_bar is not None:
        print(f"512x512x3x3 F(4x4) transform: {f4_bar:.2f} ms on {args.threads} thread(s) "
              f"(issue 14's bar: <= {F4_BAR_MS:g} ms on one thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
