"""Python threads calling autoconfig at once (run as a program by
test_concurrency.py, so that a hang or a crash fails the test instead of the
test run).

Each caller picks calls at random (matmul, gemm, one-off conv2d through every
algorithm, prepared conv layers in NCHW and blocked layouts) with threads
drawn from 1, 2, 3 and None, and compares the result bit for bit with the
same call made by the main thread alone before the stress starts: a call's
partition of work depends only on its arguments and thread count, so its
result is deterministic. The GIL is released while kernels run, so the calls
overlap in the thread pool.

    python tests/runtime/concurrency_stress.py SECONDS CALLERS
prints 'N passed, N failed' and exits 1 on any mismatch or exception.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np

import autoconfig as ac

THREADS = (1, 2, 3, None)


def make_cases():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    cases = {}
    a, b, bias = f32(37, 19), f32(19, 45), f32(45)
    cases["matmul 37x45x19 relu"] = lambda t: ac.matmul(a, b, bias=bias, activation="relu", threads=t)
    a2, b2, r2 = f32(131, 400), f32(400, 140), f32(131, 140)
    cases["matmul 131x140x400 residual"] = lambda t: ac.matmul(a2, b2, residual=r2, threads=t)
    a3, b3, c3 = f32(67, 200), f32(129, 200), f32(129)
    cases["gemm 67x129x200 trans_b"] = lambda t: ac.gemm(a3, b3, c3, alpha=0.5, trans_b=True, threads=t)
    # The reproducer: strides (2, 1), pads (1, 2, 0, 1), dilations (1, 2), 2 groups.
    x, w = f32(2, 16, 17, 19), f32(24, 8, 3, 5)
    odd = dict(strides=(2, 1), pads=(1, 2, 0, 1), dilations=(1, 2), groups=2)
    cases["conv2d odd attributes"] = lambda t: ac.conv2d(x, w, threads=t, **odd)
    x3, w3, b3c = f32(1, 16, 14, 14), f32(32, 16, 3, 3), f32(32)
    for alg in ("direct", "im2col-gemm", "winograd-f2", "winograd-f4"):
        cases[f"conv2d 3x3 {alg}"] = (lambda alg: lambda t: ac.conv2d(x3, w3, b3c, pads=(1, 1, 1, 1),
                                                                       activation="relu", algorithm=alg, threads=t))(alg)
    x1, w1 = f32(1, 32, 9, 9), f32(16, 32, 1, 1)
    cases["conv2d 1x1 gemm-1x1"] = lambda t: ac.conv2d(x1, w1, algorithm="gemm-1x1", threads=t)
    xd, wd = f32(1, 24, 13, 13), f32(24, 1, 3, 3)
    cases["conv2d depthwise"] = lambda t: ac.conv2d(xd, wd, pads=(1, 1, 1, 1), groups=24, algorithm="depthwise",
                                                   threads=t)
    # One-off direct calls that pack each group in the kernel (the model's
    # direct_fused_prepare): every pool thread fills its own slice of the
    # calling thread's scratch while other callers run theirs.
    xg, wg, bg = f32(1, 64, 15, 15), f32(83, 64, 3, 3), f32(83)
    cases["conv2d direct packed per group, 3x3/2"] = lambda t: ac.conv2d(
        xg, wg, bg, strides=2, pads=(1, 0, 1, 0), activation="relu", algorithm="direct", threads=t)
    xp, wp = f32(1, 131, 7, 7), f32(67, 131, 1, 1)
    cases["conv2d direct packed per group, 1x1"] = lambda t: ac.conv2d(xp, wp, algorithm="direct", threads=t)
    layer = ac.prepare_conv2d(w3, b3c, input_shape=(16, 14, 14), pads=(1, 1, 1, 1), activation="relu6")
    cases["prepared 3x3"] = lambda t: layer(x3, threads=t)
    blocked = ac.prepare_conv2d(w3, b3c, input_shape=(16, 14, 14), pads=(1, 1, 1, 1), layout="blocked")
    xb = ac.to_blocked(x3)
    cases["prepared 3x3 blocked"] = lambda t: blocked(xb, threads=t).data
    return cases


def main(seconds: float, callers: int) -> int:
    cases = make_cases()
    names = sorted(cases)
    reference = {(n, t): cases[n](t).copy() for n in names for t in THREADS}
    passed, failed, errors = [0] * callers, [0] * callers, []
    deadline = time.monotonic() + seconds

    def caller(i: int) -> None:
        rng = np.random.default_rng(100 + i)
        try:
            while time.monotonic() < deadline:
                n, t = names[rng.integers(len(names))], THREADS[rng.integers(len(THREADS))]
                y = cases[n](t)
                if np.array_equal(y, reference[(n, t)], equal_nan=True):
                    passed[i] += 1
                else:
                    failed[i] += 1
                    if len(errors) < 10:
                        errors.append(f"caller {i}: {n}, threads {t}: result differs from the single-caller result")
        except Exception as e:   # noqa: BLE001 - reported, and the run fails
            failed[i] += 1
            errors.append(f"caller {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{callers} callers, {seconds:g} s, {len(names)} calls x {len(THREADS)} thread counts")
    print(f"{sum(passed)} passed, {sum(failed)} failed")
    return 0 if sum(failed) == 0 else 1


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2])))
