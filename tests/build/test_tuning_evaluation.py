"""benchmarks/evaluate_predictor.py's same-batch re-timing: which configs it
re-times, how it pairs the rounds, and how it scores from the new times alone
(measure() replaced by a table, so nothing compiles)."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate_predictor.py"


@pytest.fixture(scope="module")
def ev():
    # the script puts the source tree first on sys.path; the package under
    # test is imported before it and the path restored after
    import autoconfig.tuning.dataset  # noqa: F401
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("evaluate_predictor", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path[:] = saved
    return mod


def _group(machine, op, isa="x86-64-v4", family="bert"):
    return SimpleNamespace(machine=machine, isa=isa, family=family, task=SimpleNamespace(op=op))


def test_same_batch_retimes_the_compared_configs_side_by_side(ev, monkeypatch):
    groups = [_group("zen5", "gemm"), _group("zen5", "gemm", family="vit"), _group("zen4", "gemm"),
              _group("zen5", "conv2d")]
    # dataset times: "o*" is each group's fastest measured config (a lucky batch)
    times = {0: {"o0": 1.0, "a0": 1.3, "x": 2.0}, 1: {"o1": 2.0, "p1": 2.6}, 2: {"o2": 1.0}, 3: {"o3": 1.0}}
    rows = [{"index": 0, "group": groups[0], "picks": {"analytical": "a0", "predictor": "p0"}},
            {"index": 1, "group": groups[1], "picks": {"analytical": "o1", "predictor": "p1"}},
            {"index": 2, "group": groups[2], "picks": {"analytical": "o2", "predictor": "o2"}},
            {"index": 3, "group": groups[3], "picks": {"analytical": "o3", "predictor": "o3"}}]
    # re-timed side by side, round 1 and round 2: x, third in the dataset, is the fastest now
    table = [{"o0": 1.2, "a0": 1.25, "x": 1.3, "p0": 1.1, "o1": 2.0, "p1": 2.1},
             {"o0": 1.15, "a0": 1.3, "x": 1.05, "p0": 1.2, "o1": 2.2, "p1": 2.2}]
    calls = []

    def fake_measure(pairs, host, isa, repeats, log):
        calls.append((isa, [c for _, c in pairs]))
        return [table[len(calls) - 1][c] for _, c in pairs]
    monkeypatch.setattr(ev.ds_mod, "_measure_pairs", fake_measure)
    out = ev.same_batch(rows, groups, times, host=None, here="zen5", ops=["gemm"], rounds=2, log=lambda m: None)

    # only zen5 GEMM groups; each group's fastest measured configs (up to 5), analytical
    # config and pick once (o1 is both the oracle's config and the analytical pick);
    # round 2 in reverse order
    assert calls == [("x86-64-v4", ["o0", "a0", "x", "p0", "o1", "p1"]),
                     ("x86-64-v4", ["p1", "o1", "p0", "x", "a0", "o0"])]
    assert [r["index"] for r in out] == [0, 1]
    assert out[0]["seconds"] == {"analytical": 1.25, "predictor": 1.1, "oracle": 1.15}
    assert out[1]["seconds"] == {"analytical": 2.0, "predictor": 2.1, "oracle": 2.0}
    assert [r["best"] for r in out] == [1.05, 2.0]

    text = ev.same_batch_summary(out)
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()[2:]}
    # bert: x (1.05) is now the fastest, so neither the old oracle config nor the pick is 1.0
    assert lines["bert"] == ["1", f"{1.05 / 1.25:.3f}", f"{1.05 / 1.1:.3f}", "0"]
    assert lines["vit"] == ["1", "1.000", f"{2.0 / 2.1:.3f}", "1"]
    assert lines["all"][2] == f"{math.sqrt(1.05 / 1.1 * 2.0 / 2.1):.3f}"

    # top=1: only the dataset's fastest stands for the oracle
    calls.clear()
    ev.same_batch(rows[:1], groups, times, host=None, here="zen5", ops=["gemm"], rounds=1, log=lambda m: None, top=1)
    assert calls == [("x86-64-v4", ["o0", "a0", "p0"])]


def test_same_batch_skips_a_group_whose_oracle_config_failed(ev, monkeypatch):
    groups = [_group("zen5", "gemm")]
    rows = [{"index": 0, "group": groups[0], "picks": {"analytical": "a", "predictor": "p"}}]
    monkeypatch.setattr(ev.ds_mod, "_measure_pairs", lambda pairs, *args: [None if c == "o" else 1.0 for _, c in pairs])
    out = ev.same_batch(rows, groups, {0: {"o": 1.0, "a": 1.2}}, host=None, here="zen5", ops=["gemm"], rounds=1,
                        log=lambda m: None)
    assert out == []
