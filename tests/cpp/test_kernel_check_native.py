"""The C++ kernel check (tests/cpp) built for this machine with a target
whose caches are tiny (an x86-64-v3 core with 8 KiB L1, 32 KiB L2, 64 KiB
L3): kc, mc and nc become small, so the check's GEMM shapes cross many k, A
and B blocks, and the model picks both loop orders (the generic kernel keeps
the B micro-panel in L1, the plans of 131x140x400 the A micro-panel, with
k blocks deep enough that K = 400 still takes two). The host build's own plans rarely leave one block,
so this is where the blocked loop nests meet their double-precision reference.
Needs cmake and an AVX2+FMA CPU; about a minute on 2 cores.
"""
from __future__ import annotations

import json
import math
import platform
import subprocess
from pathlib import Path

import pytest

from emulation import CMAKE, assert_all_passed, cross_build

TINY_CACHES = {
    "base": "x86-64-v3",
    "override": {
        "name": "x86-64-v3-tiny-caches",
        "caches": [
            {"level": 1, "size_bytes": 8 << 10, "line_bytes": 64, "ways": 8, "shared_by": 1, "source": "target"},
            {"level": 2, "size_bytes": 32 << 10, "line_bytes": 64, "ways": 8, "shared_by": 1, "source": "target"},
            {"level": 3, "size_bytes": 64 << 10, "line_bytes": 64, "ways": 16, "shared_by": 1, "source": "target"},
        ],
    },
}


def cpu_has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


pytestmark = [
    pytest.mark.cpp_check,
    pytest.mark.skipif(CMAKE is None, reason="cmake not installed"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not cpu_has_avx2_fma(),
                       reason="the tiny-cache target is an x86-64-v3 (AVX2+FMA) core"),
]


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-caches")
    target = root / "tiny_caches.json"
    target.write_text(json.dumps(TINY_CACHES))
    exe = cross_build(None, str(target), root / "build")
    plans = json.loads((root / "build" / "autoconfig" / "generated" / "plans.json").read_text())
    return exe, {p["kernel"]: p for p in plans if p["op"] in ("matmul", "gemm")}


def blocks(plan, M, N, K):
    v = lambda name: plan["params"][name]["value"]   # noqa: E731
    return math.ceil(K / v("kc")), math.ceil(M / v("mc")), math.ceil(N / v("nc"))


def test_tiny_caches_plan_both_loop_orders_across_blocks(tiny_build):
    _, plans = tiny_build
    orders = {p["params"]["loop_order"]["value"] for p in plans.values()}
    assert orders == {"a-panel-in-L1", "b-panel-in-L1"}, orders
    generic = next(p for p in plans.values() if p["shape"] is None)
    assert generic["params"]["kc"]["value"] < 150 and generic["params"]["nc"]["value"] < 140
    for p in plans.values():
        if p["shape"] == {"M": 131, "N": 140, "K": 400}:
            k_blocks, m_blocks, n_blocks = blocks(p, 131, 140, 400)
            assert k_blocks >= 2 and n_blocks >= 2, p["kernel"]


def test_kernel_check_passes_with_tiny_caches(tiny_build):
    exe, _ = tiny_build
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    counts = assert_all_passed(r, "avx2")
    assert counts["failed"] == 0
