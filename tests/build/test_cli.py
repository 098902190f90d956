"""The command line: probe, plan, bench."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


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


# Issue 12: a zero or negative count ran and printed inf/nan with exit code 0.
@pytest.mark.parametrize("args,fragment", [
    (("--repeat", "0"), "argument --repeat: expected an integer from 1 to 1000"),
    (("--repeat", "-2"), "argument --repeat: expected an integer from 1 to 1000"),
    (("--repeat", "1000000000"), "argument --repeat: expected an integer from 1 to 1000"),
    (("--repeat", "1.5"), "argument --repeat: expected an integer, got '1.5'"),
    (("--threads", "0"), "argument --threads: expected an integer from 1 to"),
    (("--threads", "-1"), "argument --threads: expected an integer from 1 to"),
    (("--threads", "100000"), "(the CPUs this process may run on), got 100000"),
    (("--threads", "two"), "argument --threads: expected an integer, got 'two'"),
    (("--shape", "0x64x64"), "argument --shape: expected MxNxK with positive integers"),
    (("--shape", "64x-64x64"), "argument --shape: expected MxNxK with positive integers"),
    (("--shape", "64x64x4294967296"), "argument --shape: expected M, N, K <= 2147483647"),
    (("--shape", "10000000x10000000x1"), "needs 745058.1 GiB for its matrices; this machine has"),
    (("--op", "conv2d", "--net", ""), "argument --net: expected a spec kernel name prefix"),
    (("--op", "conv2d", "--threads", "0"), "argument --threads"),
])
def test_bench_rejects_bad_numbers(args, fragment):
    r = run("bench", "--no-torch", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_bench_unknown_net_lists_the_nets():
    """--net resnet18 printed an empty table and exited 0."""
    r = run("bench", "--op", "conv2d", "--net", "resnet18", "--no-torch")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert "no conv2d spec kernel's name starts with 'resnet18'" in r.stderr
    assert "the nets are mobilenetv2, resnet50" in r.stderr and "resnet50_conv_bn_relu" in r.stderr


def test_bench_without_shapes_is_an_error(tmp_path):
    """Specs without a GEMM shape (and no --shape) would time nothing."""
    (tmp_path / "conv.yaml").write_text("version: 1\nkernels:\n  - {name: c, op: conv2d, dtype: float32}\n")
    r = subprocess.run([sys.executable, "-m", "autoconfig", "bench", "--no-torch"], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, AUTOCONFIG_DEFAULT_SPECS=str(tmp_path)))
    assert r.returncode == 2 and "no matmul or gemm shapes to time: pass --shape MxNxK" in r.stderr


def test_plan_deeply_nested_target_file(tmp_path):
    """json recurses per level: 100000 levels gave 'maximum recursion depth exceeded' and no file."""
    f = tmp_path / "deep.json"
    f.write_text("[" * 100000 + "]" * 100000)
    r = run("plan", "--target", str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == f"autoconfig: {f}: JSON nested too deeply to be a target file (at most 4 levels)"
