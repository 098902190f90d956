"""Configurations of the search space compute correctly: a sample of GEMM
configs (every register-tile width, both loop orders, blockings below and
above the model's, every thread grid) and whole conv spaces, generated,
compiled and run by autoconfig.tuning.measure, whose driver checks each
result against a double-precision reference before timing it (a wrong
result raises MeasureError). Shapes include 1, primes and tall/skinny ones.

The measurement build is cached under AUTOCONFIG_TUNING_CACHE (default here:
build/tuning-cache in the source tree), so a second run compiles only new
candidates. Independent of the installed wheel: the runtime sources come
from the source tree."""
import os
import shutil
from pathlib import Path

import pytest

from autoconfig import probe
from autoconfig.shapes import Conv2dShape, GemmShape
from autoconfig.tuning import measure as measure_mod
from autoconfig.tuning.measure import MeasureError, measure
from autoconfig.tuning.space import Task, analytical_config, profile_for_isa, space

REPO = Path(__file__).resolve().parents[2]
CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = [pytest.mark.cpp_check, pytest.mark.skipif(CXX is None, reason="no C++ compiler")]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """This machine at its own ISA (a target profile of it: nothing to measure
    for planning), with the sources and cache of this checkout."""
    os.environ.setdefault("AUTOCONFIG_SOURCE_DIR", str(REPO))
    os.environ.setdefault("AUTOCONFIG_TUNING_CACHE", str(REPO / "build" / "tuning-cache"))
    feats = set(probe.profile(None, quick=True).features)
    name = "x86-64-v3" if {"avx2", "fma"} <= feats else "generic"
    prof = probe.profile(name)
    prof.cores = max(1, min(2, len(os.sched_getaffinity(0))))
    return prof


def pad(p):
    return dict(pad_top=p, pad_left=p, pad_bottom=p, pad_right=p)


def gemm_sample(task, prof, n=6):
    """A few configs, each compiled (the slow part): the model's choice, then
    the tallest tile of the narrowest width, the widest tile, and a middle
    width, alternating the loop order and the smallest / largest blocking."""
    configs = space(task, prof)
    widths = sorted({c.get("nr") for c in configs})
    out = [analytical_config(task, prof)]
    picks = [(widths[0], max), (widths[-1], min), (widths[len(widths) // 2], max)]
    for i, (nr, tall) in enumerate(picks * 2):
        group = [c for c in configs if c.get("nr") == nr]
        mr = tall(c.get("mr") for c in group)
        order = ("b-panel-in-L1", "a-panel-in-L1")[i % 2]
        cands = [c for c in group if c.get("mr") == mr and c.get("loop_order") == order] or group
        key = lambda c: (c.get("kc"), c.get("mc"), c.get("nc"), c.get("grid"))  # noqa: E731
        c = (min if i < len(picks) else max)(cands, key=key)
        if c not in out:
            out.append(c)
    return out[:n]


def test_gemm_configs_compute_correctly(host):
    tasks = [Task("gemm", GemmShape(13, 29, 41), 1),           # primes: every edge
             Task("gemm", GemmShape(97, 5, 300), host.cores),  # tall and skinny, several k blocks
             Task("gemm", GemmShape(1, 37, 19), 1)]            # M = 1: the gemv path
    pairs = [(tasks[0], c) for c in gemm_sample(tasks[0], host)] + [(tasks[1], c) for c in gemm_sample(tasks[1], host, 2)]
    pairs.append((tasks[2], space(tasks[2], host)[0]))
    seconds = measure(pairs, host, repeats=1)
    assert len(seconds) == len(pairs) and all(s > 0 for s in seconds)
    assert {c.get("loop_order") for _, c in pairs[:-1]} == {"a-panel-in-L1", "b-panel-in-L1"}


def test_conv_spaces_compute_correctly(host):
    tasks = [Task("conv2d", Conv2dShape(19, 9, 11, 21, 3, 3, **pad(1)), 1),           # primes: every algorithm of a 3x3
             Task("conv2d", Conv2dShape(3, 23, 17, 10, 5, 5, stride_h=2, stride_w=2, **pad(2)), host.cores),
             Task("conv2d", Conv2dShape(8, 7, 7, 16, 3, 3, dilation_h=2, dilation_w=2, **pad(2)), 1),
             Task("conv2d", Conv2dShape(12, 6, 5, 12, 3, 3, groups=12, **pad(1)), 1),   # depthwise
             Task("conv2d", Conv2dShape(40, 7, 7, 24, 1, 1), 1)]                        # pointwise: gemm-1x1
    pairs = [(t, c) for t in tasks for c in space(t, host)]
    algorithms = {c.get("algorithm") for _, c in pairs}
    assert algorithms == {"direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise"}
    assert {c.get("input") for _, c in pairs} >= {"blocked", "nchw"}
    assert {c.get("order") for _, c in pairs} >= {"groups-outer", "groups-inner"}
    seconds = measure(pairs, host, repeats=1)
    assert len(seconds) == len(pairs) and all(s > 0 for s in seconds)


def test_other_isa_variant_computes_correctly(host):
    if host.isa != "avx2":
        pytest.skip("needs an AVX2 host to measure its x86-64-v2 variant beside it")
    v2 = profile_for_isa(host, "x86-64-v2")
    task = Task("gemm", GemmShape(17, 23, 31), 1)
    pairs = [(task, c) for c in gemm_sample(task, v2, 1)]
    pairs.append((Task("conv2d", Conv2dShape(5, 8, 8, 7, 3, 3, **pad(1)), 1), Config_direct(v2)))
    assert all(s > 0 for s in measure(pairs, host, isa="x86-64-v2", repeats=1))


def Config_direct(prof):
    task = Task("conv2d", Conv2dShape(5, 8, 8, 7, 3, 3, **pad(1)), 1)
    return next(c for c in space(task, prof) if c.get("algorithm") == "direct")


def test_a_wrong_result_is_an_error_not_a_time(host, monkeypatch):
    monkeypatch.setattr(measure_mod, "CHECK_TOLERANCE", -1.0)   # no result can pass
    task = Task("gemm", GemmShape(13, 29, 41), 1)
    with pytest.raises(MeasureError, match=r"(?s)wrong results.*relative error"):
        measure([(task, analytical_config(task, host))], host, repeats=1)
