"""`autoconfig bench --op conv2d`: the round-robin sampler and a small end-to-end run."""
from __future__ import annotations

import subprocess
import sys

from autoconfig.bench import best_times
from autoconfig.bench_conv import ConvRow


def test_best_times_samples_round_robin():
    """Every round samples each function once (an untimed call, then the
    timed one), starting one further along each round, after one warm-up and
    one calibration call each: load from other processes hits all alike."""
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("ours", "gemm", "torch")}
    best = best_times(fns, repeat=3, min_sample_s=0.0)
    assert set(best) == set(fns) and all(v >= 0 for v in best.values())
    assert calls[:6] == ["ours", "ours", "gemm", "gemm", "torch", "torch"]
    rounds = [["ours", "gemm", "torch"], ["gemm", "torch", "ours"], ["torch", "ours", "gemm"]]
    assert calls[6:] == [name for order in rounds for name in order for _ in range(2)]


def test_choice_is_judged_against_the_measured_best():
    row = ConvRow("s", "l", 1, "direct", 1e-3, 1e-3, 0.0, 1.0, 1.0, None,
                  measured={"direct": 1.05e-3, "gemm-1x1": 1.0e-3})
    assert row.best_measured == "gemm-1x1" and row.choice_ok
    row.measured["direct"] = 1.2e-3
    assert not row.choice_ok


def test_bench_conv_small_net(ac):
    r = subprocess.run([sys.executable, "-m", "autoconfig", "bench", "--op", "conv2d", "--net",
                        "mobilenetv2_projection_residual", "--check-model", "--repeat", "1", "--no-torch"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "model check: choice is the measured best on" in r.stdout
    # one row per layer in the main table and in the one-off preparation table
    assert r.stdout.count("mobilenetv2_projection_residual") == 10
    assert "one-off weight preparation" in r.stdout and "ms at bandwidth" in r.stdout
    assert "re-layout ms" in r.stdout and "re-layout / bandwidth" in r.stdout
