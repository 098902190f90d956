"""Speed-up of autoconfig.matmul from 1 to N threads, measured in one process.

    python benchmarks/thread_scaling.py [--size 2048] [--threads 2] [--repeat 7]

Calls with 1 thread and with N threads alternate (one untimed call before each
timed one, so the pool's threads are awake), and the best of --repeat samples
of each is kept: a burst of load from other processes on a shared machine
then hits both alike instead of one whole series.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import autoconfig
from autoconfig.cli import INT32_MAX, MAX_REPEAT, available_cpus, bounded_int


def best_seconds(a, b, out, threads_list, repeat):
    best = {t: float("inf") for t in threads_list}
    for _ in range(repeat):
        for t in threads_list:
            autoconfig.matmul(a, b, out=out, threads=t)
            start = time.perf_counter()
            autoconfig.matmul(a, b, out=out, threads=t)
            best[t] = min(best[t], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=bounded_int(1, lambda: INT32_MAX, "the kernels' largest dimension"),
                        default=2048, help="square matrix size (default 2048)")
    parser.add_argument("--threads", type=bounded_int(2, available_cpus, "the CPUs this process may run on"),
                        default=2, help="thread count compared to 1 (default 2)")
    parser.add_argument("--repeat", type=bounded_int(1, lambda: MAX_REPEAT, "more samples only lengthen the run"),
                        default=7, help="samples per thread count (default 7)")
    args = parser.parse_args()

    n = args.size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    best = best_seconds(a, b, out, (1, args.threads), args.repeat)
    flops = 2.0 * n**3
    for t, seconds in best.items():
        print(f"{n}x{n}x{n} threads={t}: {seconds * 1e3:8.1f} ms  {flops / seconds / 1e9:6.1f} GFLOPS")
    print(f"speed-up {args.threads} threads / 1 thread: {best[1] / best[args.threads]:.2f}x")


if __name__ == "__main__":
    main()
