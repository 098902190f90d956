"""The C++ kernel check (tests/cpp) built for this machine with a target
whose caches are tiny (an x86-64-v3 core with 8 KiB L1, 32 KiB L2, 64 KiB
L3): kc, mc and nc become small, so the check's GEMM shapes cross many k, A
and B blocks, and the model picks both loop orders (the generic kernel and the
two-thread plan of 131x140x150 keep the A micro-panel in L1, its one-thread
plan the B micro-panel). The host build's own plans rarely leave one block,
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

from autoconfig import probe
from autoconfig.models import gemm as gemm_model
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
    return exe, {p["kernel"]: p for p in plans if p["op"] in ("matmul", "gemm")}, target


def blocks(plan, M, N, K):
    v = lambda name: plan["params"][name]["value"]   # noqa: E731
    return math.ceil(K / v("kc")), math.ceil(M / v("mc")), math.ceil(N / v("nc"))


def test_tiny_caches_plan_both_loop_orders_across_blocks(tiny_build):
    _, plans, target_file = tiny_build
    orders = {p["params"]["loop_order"]["value"] for p in plans.values()}
    assert orders == {"a-panel-in-L1", "b-panel-in-L1"}, orders
    generic = next(p for p in plans.values() if p["shape"] is None)
    assert generic["params"]["kc"]["value"] < 150 and generic["params"]["nc"]["value"] < 140
    # The generic kernel keeps the A micro-panel in L1 and reads a small A in
    # place across k blocks: 61x71 (K > kc, a bottom edge) takes that path;
    # 131x150 (past direct_a_panel_bytes) is packed.
    params = {k: v["value"] for k, v in generic["params"].items()}
    assert params["loop_order"] == "a-panel-in-L1"
    machine = gemm_model.Machine(probe.profile(str(target_file)))
    tile = gemm_model.Tile(params["mr"], params["nr"], 1)

    def in_place(M, K):
        kc = gemm_model.balanced(K, params["kc"], gemm_model.KC_QUANTUM)   # gemm_run's k block
        return gemm_model.a_in_place(machine, tile, M, K, kc, gemm_model.A_PANEL_IN_L1)
    assert in_place(61, 71) and not in_place(131, 150)
    assert 71 > params["kc"]
    for p in plans.values():
        if p["shape"] == {"M": 131, "N": 140, "K": 150}:
            k_blocks, m_blocks, n_blocks = blocks(p, 131, 140, 150)
            assert k_blocks >= 2 and n_blocks >= 2, p["kernel"]


def test_kernel_check_passes_with_tiny_caches(tiny_build):
    exe, _, _ = tiny_build
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    counts = assert_all_passed(r, "avx2")
    assert counts["failed"] == 0
