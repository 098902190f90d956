"""Time autoconfig.conv2d against torch.nn.functional.conv2d (oneDNN) on
ResNet-50 / MobileNetV2 layers at batch 1, 224x224.

    python benchmarks/conv_layers.py [--threads 1] [--repeat 7] [--net resnet50|mobilenetv2|all]

Prints: layer, GFLOPS ours, ms ours, ms torch, ratio (torch / ours, > 1: ours faster).
Needs torch (pip install torch); pins every library to --threads.
"""
from __future__ import annotations

import argparse
import math
import sys

# layer: (name, C, H, W, K, R, S, stride, pad, groups)
RESNET50 = [
    ("conv1", 3, 224, 224, 64, 7, 7, 2, 3, 1),
    ("res2_1x1a", 64, 56, 56, 64, 1, 1, 1, 0, 1),
    ("res2_3x3", 64, 56, 56, 64, 3, 3, 1, 1, 1),
    ("res2_1x1b", 64, 56, 56, 256, 1, 1, 1, 0, 1),
    ("res3_3x3", 128, 28, 28, 128, 3, 3, 1, 1, 1),
    ("res3_1x1b", 128, 28, 28, 512, 1, 1, 1, 0, 1),
    ("res4_3x3", 256, 14, 14, 256, 3, 3, 1, 1, 1),
    ("res4_1x1b", 256, 14, 14, 1024, 1, 1, 1, 0, 1),
    ("res5_3x3", 512, 7, 7, 512, 3, 3, 1, 1, 1),
    ("res5_1x1b", 512, 7, 7, 2048, 1, 1, 1, 0, 1),
]
MOBILENETV2_DW = [
    ("dw_112", 32, 112, 112, 32, 3, 3, 1, 1, 32),
    ("dw_56s2", 96, 112, 112, 96, 3, 3, 2, 1, 96),
    ("dw_56", 144, 56, 56, 144, 3, 3, 1, 1, 144),
    ("dw_28", 192, 28, 28, 192, 3, 3, 1, 1, 192),
    ("dw_14", 384, 14, 14, 384, 3, 3, 1, 1, 384),
    ("dw_7", 960, 7, 7, 960, 3, 3, 1, 1, 960),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from autoconfig.cli import MAX_REPEAT, available_cpus, bounded_int   # loads neither numpy nor the kernels
    ap.add_argument("--threads", type=bounded_int(1, available_cpus, "the CPUs this process may run on"), default=1)
    ap.add_argument("--repeat", type=bounded_int(1, lambda: MAX_REPEAT, "more samples only lengthen the run"),
                    default=7)
    ap.add_argument("--net", choices=["resnet50", "mobilenetv2", "all"], default="all")
    args = ap.parse_args()
    from autoconfig.bench import best_times, pin_threads, pinned_torch
    pin_threads(args.threads)   # before numpy and torch load their thread pools
    import numpy as np
    import autoconfig
    torch = pinned_torch(args.threads)
    if torch is None:
        print("torch is not installed: pip install torch", file=sys.stderr)
        return 2
    layers = {"resnet50": RESNET50, "mobilenetv2": MOBILENETV2_DW, "all": RESNET50 + MOBILENETV2_DW}[args.net]
    rng = np.random.default_rng(0)
    print(f"{'layer':<12} {'ours GFLOPS':>11} {'ours ms':>9} {'torch ms':>9} {'vs torch':>8}")
    ratios = []
    for name, C, H, W, K, R, S, stride, pad, groups in layers:
        x = rng.standard_normal((1, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        with torch.no_grad():
            times = best_times({
                "ours": lambda: autoconfig.conv2d(x, w, b, strides=stride, pads=pad, groups=groups,
                                                  activation="relu", threads=args.threads),
                "torch": lambda: torch.relu(torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)),
            }, args.repeat)
        ours, theirs = times["ours"], times["torch"]
        Ho = (H + 2 * pad - R) // stride + 1
        Wo = (W + 2 * pad - S) // stride + 1
        flops = 2.0 * K * Ho * Wo * (C // groups) * R * S
        ratios.append(theirs / ours)
        print(f"{name:<12} {flops / ours / 1e9:11.1f} {ours * 1e3:9.3f} {theirs * 1e3:9.3f} {theirs / ours:7.2f}x")
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"geometric mean vs torch: {gm:.2f}x over {len(ratios)} layers ({args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
