"""Time every weight re-layout of the default conv layers (ResNet-50 and
MobileNetV2 specs) for each algorithm that needs one: the direct kernel's
NCHW[B]c re-layout on every layer it applies to, the Winograd F(2x2) and
F(4x4) transforms on the 3x3 stride-1 layers, whatever the model would
choose. Each is judged against the time of its bytes at the probe's copy
bandwidth and a numpy copy of the same bytes (issue 14: re-layouts within 2x;
the 512x512x3x3 F(4x4) transform in <= 10 ms on one thread).

    python benchmarks/weight_transforms.py [--threads 1] [--repeat 20] [--scale] [--net resnet50]

Needs the package built (the packers are the generated ones). Prints one row
per (layer, algorithm): the best of --repeat calls of conv2d_prepare_weights'
re-layout (timed inside the call: fold + pack, no checks, no model), its
bytes read + written, their time at the copy bandwidth of the level they fit
in, the best numpy copy (bench_conv.memcpy_fn), the two ratios; then how many
of >= 0.25 MB are within 2x of each (smaller ones: the call's fixed cost).
"""
from __future__ import annotations

import argparse

import numpy as np

from autoconfig.bench_conv import LARGE_RELAYOUT_BYTES, _label, default_layers, memcpy_fn, prepare_reference
from autoconfig.cli import MAX_REPEAT, available_cpus, bounded_int
from autoconfig.models import conv as conv_model
from autoconfig.runtime.guard import require_ext
from autoconfig.runtime.info import host
from autoconfig.vocabulary import CONV_ALGORITHMS

PREPARED = ("direct", "winograd-f2", "winograd-f4")
F4_BAR_MS = 10.0   # issue 14: 512x512x3x3 F(4x4) on one thread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=bounded_int(1, available_cpus, "the CPUs this process may use"), default=1)
    ap.add_argument("--repeat", type=bounded_int(1, lambda: MAX_REPEAT, "MAX_REPEAT"), default=20)
    ap.add_argument("--scale", action="store_true", help="fold a batch-norm scale in the same pass")
    ap.add_argument("--net", default=None, help="only the specs whose name starts with this")
    args = ap.parse_args()
    ext, prof = require_ext(), host()
    rng = np.random.default_rng(0)
    print(f"{'layer':<26} {'algorithm':<12} {'MB':>6} {'re-layout ms':>13} {'ms at copy bw':>14} {'memcpy ms':>10} "
          f"{'/ bw':>6} {'/ memcpy':>9}")
    seen, results, f4_bar = set(), [], None
    for _, sh, _, _ in default_layers(args.net):
        why = conv_model.applicable(sh)
        w = None
        for alg in PREPARED:
            if why[alg] is not None or (sh, alg) in seen:
                continue
            seen.add((sh, alg))
            if w is None:
                w = rng.standard_normal((sh.K, sh.C // sh.groups, sh.R, sh.S), dtype=np.float32)
                scale = (rng.random(sh.K, dtype=np.float32) + 0.5) if args.scale else None
            mask = [1 << CONV_ALGORITHMS.index(alg), -1, -1, -1, -1]
            pads = [sh.pad_top, sh.pad_left, sh.pad_bottom, sh.pad_right]
            call = (w, scale, sh.C, sh.H, sh.W, [sh.stride_h, sh.stride_w], pads, [sh.dilation_h, sh.dilation_w],
                    sh.groups, args.threads, mask)
            # The plain-input variant is the direct kernel's choice for few channels (the stem).
            plain = alg == "direct" and ext.conv2d_choice(
                1, sh.C, sh.H, sh.W, sh.K, sh.R, sh.S, [sh.stride_h, sh.stride_w], pads,
                [sh.dilation_h, sh.dilation_w], sh.groups, args.threads, mask, prepared=False)["plain_input"]
            nbytes, bw_s = prepare_reference(prof, sh, alg, plain)
            copies: list = []
            copy = memcpy_fn(prof, sh, alg, plain, copies)
            # Interleaved, after one untimed call each: a burst of load from
            # other processes (or on the SMT sibling) hits both alike.
            ext.conv2d_prepare_weights(*call)
            copy()
            copies.clear()
            packs = []
            for _ in range(args.repeat):
                packs.append(ext.conv2d_prepare_weights(*call))
                copy()
            best, mem = min(packs), min(copies)
            results.append((alg, nbytes, best / bw_s, best / mem))
            print(f"{_label(sh):<26} {alg:<12} {nbytes / 1e6:>6.2f} {best * 1e3:>13.3f} {bw_s * 1e3:>14.3f} "
                  f"{mem * 1e3:>10.3f} {best / bw_s:>6.2f} {best / mem:>9.2f}")
            if (sh.C, sh.K, sh.R, sh.S, alg) == (512, 512, 3, 3, "winograd-f4"):
                f4_bar = best * 1e3
    for kind, pick in (("direct re-layouts", lambda a: a == "direct"),
                       ("Winograd transforms", lambda a: a.startswith("winograd"))):
        big = [r for r in results if pick(r[0]) and r[1] >= LARGE_RELAYOUT_BYTES]
        small = sum(1 for r in results if pick(r[0]) and r[1] < LARGE_RELAYOUT_BYTES)
        print(f"{args.threads} thread(s), {kind} of >= {LARGE_RELAYOUT_BYTES / 1e6:g} MB: "
              f"{sum(r[2] <= 2 for r in big)}/{len(big)} within 2x of the copy bandwidth, "
              f"{sum(r[3] <= 2 for r in big)}/{len(big)} within 2x of memcpy ({small} smaller ones not counted)")
    if f4_bar is not None:
        print(f"512x512x3x3 F(4x4) transform: {f4_bar:.2f} ms on {args.threads} thread(s) "
              f"(issue 14's bar: <= {F4_BAR_MS:g} ms on one thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
