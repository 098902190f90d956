"""The command line: probe, plan, bench."""
from __future__ import annotations

import json
import subprocess
import sys


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "autoconfig", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help():
    r = run("--help")
    assert r.returncode == 0 and "probe" in r.stdout and "bench" in r.stdout


def test_probe_target_json():
    r = run("probe", "--target", "x86-64-v3", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["isa"] == "avx2" and d["vector_bits"] == 256


def test_plan_explain_for_targets():
    outs = {}
    for t in ("x86-64-v4", "x86-64-v3", "generic"):
        r = run("plan", "--target", t, "--explain")
        assert r.returncode == 0, r.stderr
        assert "candidates" in r.stdout and "kc" in r.stdout
        outs[t] = r.stdout
    assert outs["x86-64-v4"] != outs["x86-64-v3"]


def test_plan_json_roundtrip():
    r = run("plan", "--target", "x86-64-v4", "--json")
    assert r.returncode == 0, r.stderr
    from autoconfig.plan import plans_from_json
    plans = plans_from_json(r.stdout)
    assert any(p.shape is None for p in plans)


def test_plan_bad_target():
    r = run("plan", "--target", "pentium-mmx")
    assert r.returncode == 2 and "pentium-mmx" in r.stderr


def test_bench_small(ac):
    r = run("bench", "--shape", "64x64x64", "--shape", "7x13x5", "--repeat", "2", "--no-torch", "--markdown")
    assert r.returncode == 0, r.stderr
    assert "| matmul | 64x64x64 |" in r.stdout and "vs numpy" in r.stdout


def test_bench_bad_shape():
    r = run("bench", "--shape", "64x64")
    assert r.returncode == 2 and "MxNxK" in r.stderr
