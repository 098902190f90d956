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


def _prep_row(threads, alg, nbytes, pack_s, bandwidth_s, memcpy_s):
    return ConvRow("s", "l", threads, alg, 1e-3, 1e-3, 0.0, 1.0, 1.0, None, oneoff_algorithm=alg,
                   prepare_bytes=nbytes, prepare_bandwidth_s=bandwidth_s, oneoff_pack_s=pack_s, memcpy_s=memcpy_s)


def test_prepare_summary_counts_large_relayouts_within_2x():
    """Only re-layouts of >= 0.25 MB count; each is judged against the copy
    bandwidth and the measured memcpy apart; Winograd transforms apart."""
    from autoconfig.bench_conv import LARGE_RELAYOUT_BYTES, format_prepare_table, prepare_summary
    assert LARGE_RELAYOUT_BYTES == 0.25e6
    rows = [_prep_row(1, "direct", 1e6, 2.0e-4, 1.0e-4, 1.5e-4),     # 2.0x bandwidth, 1.33x memcpy: both
            _prep_row(1, "direct", 4e6, 5.0e-4, 2.0e-4, 3.0e-4),     # 2.5x bandwidth, 1.67x memcpy
            _prep_row(1, "direct", 1e5, 9.0e-5, 1.0e-5, 1.0e-5),     # small: not counted
            _prep_row(1, "winograd-f4", 2e6, 9.0e-4, 1.0e-4, 2.0e-4),
            _prep_row(1, "gemm-1x1", 0.0, 0.0, 0.0, float("nan")),   # nothing to prepare
            _prep_row(2, "direct", 1e6, 3.0e-4, 1.0e-4, 1.0e-4)]
    lines = prepare_summary(rows)
    assert lines[0].startswith("1 thread(s), re-layouts (direct) of >= 0.25 MB: 1/2 within 2x of the copy "
                               "bandwidth, 2/2 within 2x of memcpy; 1 smaller")
    assert lines[1].startswith("1 thread(s), Winograd transforms of >= 0.25 MB: 0/1 within 2x of the copy "
                               "bandwidth, 0/1 within 2x of memcpy; 0 smaller")
    assert lines[2].startswith("2 thread(s), re-layouts (direct) of >= 0.25 MB: 0/1 within 2x of the copy "
                               "bandwidth, 0/1 within 2x of memcpy")
    table = format_prepare_table(rows, markdown=True)
    assert "| memcpy ms |" in table and "| re-layout / memcpy |" in table
    assert "0.10 MB (small)" in table and "| 1.67 |" in table and "| 2.50 |" in table


def test_prepare_summary_counts_per_group_packing_apart():
    """A direct one-off that packs per group inside the kernel reads and
    writes the same bytes as a whole re-layout: it is held against the same
    bandwidth, counted as a kind of its own and named in the table."""
    from autoconfig.bench_conv import format_prepare_table, prepare_summary
    grouped = _prep_row(1, "direct", 8e6, 9.0e-4, 3.0e-4, 4.0e-4)   # 3x bandwidth, 2.25x memcpy
    grouped.oneoff_pack_groups = True
    rows = [grouped, _prep_row(1, "direct", 1e6, 3.0e-4, 1.0e-4, 1.0e-4)]
    lines = prepare_summary(rows)
    assert lines[0].startswith("1 thread(s), re-layouts (direct) of >= 0.25 MB: 0/1 within 2x")
    assert lines[1].startswith("1 thread(s), per-group packings (direct, in the kernel) of >= 0.25 MB: 0/1 "
                               "within 2x of the copy bandwidth, 0/1 within 2x of memcpy")
    table = format_prepare_table(rows, markdown=True)
    assert "direct (packed per group in the kernel)" in table and "| 8.00 MB |" in table and "| 3.00 |" in table


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
    assert "memcpy ms" in r.stdout and "re-layout / memcpy" in r.stdout
    assert "memcpy: numpy.copyto on one thread" in r.stdout
