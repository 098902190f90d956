"""The tuning stage without measuring: the configuration space, the search's
strategy (with a stand-in measurement), tuning logs, the selectors and the
generator's AUTOCONFIG_SELECTOR / AUTOCONFIG_TUNING_LOG options."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoconfig import probe
from autoconfig.shapes import Conv2dShape, GemmShape
from autoconfig.tuning import search as search_mod
from autoconfig.tuning.log import LogError, TuningLog
from autoconfig.tuning.selectors import SelectorError, select
from autoconfig.tuning.space import (Config, SpaceError, Task, analytical_config, check_config, isa_name, plan_for,
                                     profile_for_isa, space)

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("x86-64-v4", "x86-64-v3", "armv8-neon")


def pad(p):
    return dict(pad_top=p, pad_left=p, pad_bottom=p, pad_right=p)


TASKS = [
    Task("gemm", GemmShape(128, 768, 768), 2),
    Task("gemm", GemmShape(13, 29, 41), 1),        # primes
    Task("gemm", GemmShape(997, 7, 64), 2),        # tall and skinny
    Task("gemm", GemmShape(1, 100, 30), 1),        # gemv
    Task("conv2d", Conv2dShape(64, 56, 56, 64, 3, 3, **pad(1)), 1),
    Task("conv2d", Conv2dShape(3, 224, 224, 64, 7, 7, stride_h=2, stride_w=2, **pad(3)), 2),
    Task("conv2d", Conv2dShape(32, 112, 112, 32, 3, 3, groups=32, **pad(1)), 1),
    Task("conv2d", Conv2dShape(256, 14, 14, 1024, 1, 1), 1),
    Task("conv2d", Conv2dShape(17, 11, 5, 3, 3, 3, dilation_h=2, **pad(2)), 1, tolerance=1e-6),
]


@pytest.fixture(scope="module", params=TARGETS)
def profile(request):
    return probe.profile(request.param)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.label())
def test_analytical_config_is_in_the_space_and_plans_the_models_kernel(task, profile):
    configs = space(task, profile)
    assert len(configs) == len(set(configs)) > 0
    a = analytical_config(task, profile)
    assert a in configs
    model = select(task, profile, "analytical")
    plan = plan_for(task, a, profile)
    assert plan.kernel == model.kernel and plan.algorithm == model.algorithm
    for name in ("mr", "nr", "kc", "mc", "nc", "loop_order", "tile", "input", "order", "c_blocks", "chunk"):
        if name in model.params:
            assert plan.value(name) == model.value(name), name
    assert plan.params[next(iter(plan.params))].why


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.label())
def test_every_config_plans_and_round_trips(task, profile):
    for c in space(task, profile):
        assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c
        check_config(task, c, profile)
    sample = space(task, profile)[::401] or space(task, profile)
    for c in sample:
        p = plan_for(task, c, profile, why="searched: test")
        assert any(v.why == "searched: test" for v in p.params.values())
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_gemm_space_respects_the_register_file_and_the_threads():
    prof = probe.profile("x86-64-v3")         # 16 registers, 8 lanes
    task = Task("gemm", GemmShape(64, 64, 64), 6)
    configs = space(task, prof)
    for c in configs:
        nv = c.get("nr") // 8
        assert c.get("nr") % 8 == 0 and c.get("mr") * nv + nv + 1 <= 16
        tm, tn = map(int, c.get("grid").split("x"))
        assert tm * tn == 6
        assert c.get("kc") % 8 == 0 and c.get("mc") % c.get("mr") == 0 and c.get("nc") % c.get("nr") == 0
    assert {c.get("grid") for c in configs} == {"1x6", "2x3", "3x2", "6x1"}
    assert {c.get("loop_order") for c in configs} == {"a-panel-in-L1", "b-panel-in-L1"}


def test_conv_space_holds_only_applicable_algorithms():
    prof = probe.profile("x86-64-v3")
    dw = Task("conv2d", Conv2dShape(32, 9, 9, 32, 3, 3, groups=32, **pad(1)), 1)
    assert {c.get("algorithm") for c in space(dw, prof)} == {"depthwise", "im2col-gemm"}
    strict = Task("conv2d", Conv2dShape(16, 9, 9, 16, 3, 3, **pad(1)), 1, tolerance=1e-6)
    algs = {c.get("algorithm") for c in space(strict, prof)}
    assert "winograd-f4" not in algs and {"winograd-f2", "direct", "im2col-gemm"} <= algs
    loose = Task("conv2d", Conv2dShape(16, 9, 9, 16, 3, 3, **pad(1)), 1)
    assert {"winograd-f2", "winograd-f4"} <= {c.get("algorithm") for c in space(loose, prof)}


@pytest.mark.parametrize("bad, message", [
    (Config.make("gemm", mr=7, nr=16, kc=64, mc=7, nc=16, loop_order="b-panel-in-L1", grid="1x1"), "vector registers"),
    (Config.make("gemm", mr=4, nr=12, kc=64, mc=4, nc=12, loop_order="b-panel-in-L1", grid="1x1"), "multiple of 8"),
    (Config.make("gemm", mr=4, nr=16, kc=60, mc=4, nc=16, loop_order="b-panel-in-L1", grid="1x1"), "kc=60"),
    (Config.make("gemm", mr=4, nr=16, kc=64, mc=4, nc=16, loop_order="sideways", grid="1x1"), "loop_order"),
    (Config.make("gemm", mr=4, nr=16, kc=64, mc=4, nc=16, loop_order="b-panel-in-L1", grid="2x2"), "factorization"),
    (Config.make("gemm", mr=4, nr=16), "missing GEMM knob"),
    (Config.make("gemm", path="gemv"), "needs M = 1"),
    (Config.make("conv2d", algorithm="direct"), "conv2d"),
])
def test_invalid_configs_are_refused_by_name(bad, message):
    prof = probe.profile("x86-64-v3")
    task = Task("gemm", GemmShape(32, 32, 32), 1)
    with pytest.raises(SpaceError, match=message):
        plan_for(task, bad, prof)


def test_invalid_tasks_and_isa_views():
    with pytest.raises(SpaceError, match="Task.op"):
        Task("pool", GemmShape(1, 1, 1))
    with pytest.raises(SpaceError, match="Conv2dShape"):
        Task("conv2d", GemmShape(1, 1, 1))
    with pytest.raises(SpaceError, match="Task.threads"):
        Task("gemm", GemmShape(1, 1, 1), 0)
    v3 = probe.profile("x86-64-v3")
    with pytest.raises(SpaceError, match="lacks avx512f"):
        profile_for_isa(v3, "x86-64-v4")
    v2 = profile_for_isa(v3, "x86-64-v2")
    assert (v2.isa, v2.vector_bits, isa_name(v2)) == ("generic", 128, "x86-64-v2")
    assert v2.caches == v3.caches and profile_for_isa(v3, "x86-64-v3") is v3


# --------------------------------------------------------------------------- search
def fake_measure(calls):
    """Deterministic stand-in: seconds from the config's name (no timing)."""
    def measure(pairs, prof):
        calls.append(list(pairs))
        return [1.0 + (sum(map(ord, c.name())) % 101) / 100.0 for _, c in pairs]
    return measure


@pytest.mark.parametrize("budget", [1, 5, 16, 40])
def test_search_starts_from_the_models_candidates_and_keeps_its_budget(budget):
    prof = probe.profile("x86-64-v3")
    tasks = [TASKS[0], TASKS[4], TASKS[2]]
    calls = []
    results = search_mod.search_many(tasks, prof, budget, measure_fn=fake_measure(calls))
    first = calls[0]
    for task, r in zip(tasks, results):
        measured = [c for c, _ in r.history]
        assert len(measured) == len(set(measured)) == min(budget, len(space(task, prof)))
        seeds = search_mod.model_ranked(task, prof)
        assert seeds[0] == analytical_config(task, prof)
        round1 = [c for t, c in first if t == task]
        assert round1 == seeds[:len(round1)] and len(round1) >= 1
        assert r.best_seconds == min(s for _, s in r.history)
        assert all(c in set(space(task, prof)) for c in measured)
    # one measurement call per round serves every task
    assert all(len({t.key() for t, _ in call}) >= 1 for call in calls)
    again = search_mod.search_many(tasks, prof, budget, measure_fn=fake_measure([]))
    assert [r.history for r in again] == [r.history for r in results]


def test_search_explores_neighbours_of_the_best():
    prof = probe.profile("x86-64-v3")
    task = TASKS[0]
    calls = []
    r = search_mod.search(task, prof, 24, measure_fn=fake_measure(calls), first_round=4, round_size=4)
    measured = {c: s for c, s in r.history}
    for rnd in calls[1:]:
        before = [c for c, _ in r.history[:r.history.index((rnd[0][1], measured[rnd[0][1]]))]]
        best = min(before, key=lambda c: (measured[c], c.name()))
        assert search_mod.distance(best, rnd[0][1]) <= 2
    with pytest.raises(ValueError, match="budget"):
        search_mod.search(task, prof, 0, measure_fn=fake_measure([]))


# --------------------------------------------------------------------------- logs and selectors
def make_log(prof, task, config, seconds=1e-3, isa=None):
    log = TuningLog()
    log.add(task, config, seconds, 5, prof, isa or isa_name(prof))
    return log


def test_log_round_trip_and_best(tmp_path):
    prof = probe.profile("x86-64-v3")
    task = TASKS[0]
    configs = space(task, prof)[:3]
    log = TuningLog()
    for i, c in enumerate(configs):
        log.add(task, c, 3e-3 - i * 1e-3, 5, prof, "x86-64-v3")
    path = tmp_path / "t.json"
    log.save(path)
    back = TuningLog.load(path)
    assert [r.to_dict() for r in back.records] == [r.to_dict() for r in log.records]
    assert back.best(task).config == configs[2] and back.best(task, prof).seconds == pytest.approx(1e-3)
    assert len(back.profiles) == 1 and back.tasks() == [task]
    merged = back.merge(make_log(prof, TASKS[1], space(TASKS[1], prof)[0]))
    assert len(merged.records) == 4 and set(merged.best_per_task()) == {TASKS[0].key(), TASKS[1].key()}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not an autoconfig tuning log"),
    ('{"format": "autoconfig-tuning-log", "version": 99, "profiles": {}, "records": []}', "version 99"),
    ('{"format": "autoconfig-tuning-log", "version": 1, "profiles": {}, "records": [{"task": {}}]}',
     "missing field"),
])
def test_corrupt_or_foreign_logs_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(LogError, match=message):
        TuningLog.load(path)
    with pytest.raises(LogError, match="cannot be read"):
        TuningLog.load(tmp_path / "missing.json")


def test_search_selector_uses_the_log_and_falls_back_with_a_note():
    prof = probe.profile("x86-64-v3")
    task, other = TASKS[0], TASKS[1]
    a = analytical_config(task, prof)
    pick = next(c for c in space(task, prof) if c.get("mr") != a.get("mr"))
    log = make_log(prof, task, pick, seconds=2e-4)
    plan = select(task, prof, "search", log=log)
    assert plan.value("mr") == pick.get("mr") and "searched" in plan.params["mr"].why
    assert plan.predicted_s == pytest.approx(2e-4)
    fallback = select(other, prof, "search", log=log)
    assert fallback.kernel == select(other, prof, "analytical").kernel
    assert any("no measurement" in n and "analytical" in n for n in fallback.notes)
    v2 = profile_for_isa(prof, "x86-64-v2")
    wrong_isa = select(task, v2, "search", log=log)
    assert any("only on x86-64-v3" in n for n in wrong_isa.notes)
    with pytest.raises(SelectorError, match="needs a tuning log"):
        select(task, prof, "search")
    with pytest.raises(SelectorError, match="unknown selector 'best'"):
        select(task, prof, "best")
    with pytest.raises(SelectorError, match="'predictor:0': K must be a positive integer"):
        select(task, prof, "predictor:0")
    assert select(task, prof, "random").kernel == select(task, prof, "random").kernel


# --------------------------------------------------------------------------- the generator
SPEC = """version: 1
kernels:
  - name: tuned_gemm
    op: matmul
    dtype: float32
    threads: [1]
    shapes:
      - {M: 64, N: 96, K: 80}
  - name: tuned_conv
    op: conv2d
    dtype: float32
    threads: [1]
    shapes:
      - {C: 16, H: 14, W: 14, K: 32, R: 3, S: 3, pad_top: 1, pad_left: 1, pad_bottom: 1, pad_right: 1}
"""


def run_generate(tmp_path, *extra, out="gen"):
    spec = tmp_path / "spec"
    spec.mkdir(exist_ok=True)
    (spec / "s.yaml").write_text(SPEC)
    out = tmp_path / out
    r = subprocess.run([sys.executable, "-m", "autoconfig.generate", "--out", str(out), "--target", "x86-64-v3",
                        "--no-default-specs", "--specs", str(spec), *extra],
                       capture_output=True, text=True, cwd=REPO / "python")
    return r, out


def test_a_tuning_log_changes_the_generated_plan(tmp_path):
    prof = probe.profile("x86-64-v3")
    gemm = Task("gemm", GemmShape(64, 96, 80), 1)
    conv = Task("conv2d", Conv2dShape(16, 14, 14, 32, 3, 3, **pad(1)), 1)
    ga, ca = analytical_config(gemm, prof), analytical_config(conv, prof)
    gpick = next(c for c in space(gemm, prof) if c.get("mr") != ga.get("mr") and c.get("kc") != ga.get("kc"))
    cpick = next(c for c in space(conv, prof) if c.get("algorithm") == "direct" and c != ca)
    log = make_log(prof, gemm, gpick)
    log = log.merge(make_log(prof, conv, cpick))
    log.save(tmp_path / "tuning.json")

    r0, out0 = run_generate(tmp_path)
    assert r0.returncode == 0, r0.stderr
    r1, out1 = run_generate(tmp_path, "--selector", "search", "--tuning-log", str(tmp_path / "tuning.json"),
                            out="gen-search")
    assert r1.returncode == 0, r1.stderr
    plans = {p["spec"]: p for p in json.loads((out1 / "plans.json").read_text()) if p["spec"]}
    g = plans["tuned_gemm"]
    assert (g["params"]["mr"]["value"], g["params"]["kc"]["value"]) == (gpick.get("mr"), gpick.get("kc"))
    assert g["params"]["kc"]["why"].startswith("searched")
    c = plans["tuned_conv"]
    assert c["algorithm"] == "direct" and c["params"]["tile"]["value"] == cpick.get("tile")
    assert (c["params"]["order"]["value"], c["params"]["c_blocks"]["value"]) == (cpick.get("order"), cpick.get("c_blocks"))
    kernel = f"f32_gemm_{gpick.get('mr')}x{gpick.get('nr')}_avx2_m64_n96_k80.cpp"
    assert (out1 / kernel).exists() and f"gemm_run<{gpick.get('mr')}, {gpick.get('nr')}, {gpick.get('kc')}," in (
        out1 / kernel).read_text()
    reg = (out1 / "kernel_registry_x86_64_v3.cpp").read_text()
    assert reg != (out0 / "kernel_registry_x86_64_v3.cpp").read_text()


@pytest.mark.parametrize("args, message", [
    (["--selector", "fastest"], "AUTOCONFIG_SELECTOR (--selector): unknown selector 'fastest'"),
    (["--selector", "predictor:x"], "selector 'predictor:x': K must be a positive integer"),
    (["--selector", "search"], "AUTOCONFIG_SELECTOR=search needs AUTOCONFIG_TUNING_LOG"),
    (["--selector", "search", "--tuning-log", "{tmp}/missing.json"], "AUTOCONFIG_TUNING_LOG (--tuning-log): tuning log"),
    (["--selector", "search", "--tuning-log", "{tmp}/corrupt.json"], "not valid JSON"),
])
def test_generator_refuses_bad_selector_options(tmp_path, args, message):
    (tmp_path / "corrupt.json").write_text('{"format": "autoconfig-tuning-log", "vers')
    r, out = run_generate(tmp_path, *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (out / "plans.json").exists()


# --------------------------------------------------------------------------- the tools (stand-in measurement)
def test_tasks_from_an_onnx_model_and_from_specs(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from autoconfig.tuning_tools import tasks_from_args
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    w2 = numpy_helper.from_array(np.ones((16, 8, 1, 1), np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["z"]),
             helper.make_node("Conv", ["z", "w2"], ["out"])]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 12, 12])], [w, w2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "tiny.onnx")
    prof = probe.profile("x86-64-v3")
    tasks = tasks_from_args(None, str(tmp_path / "tiny.onnx"), prof, threads=[1])
    assert sorted((t.shape.C, t.shape.K, t.shape.R, t.threads) for t in tasks) == [(3, 8, 3, 1), (8, 16, 1, 1)]
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "s.yaml").write_text(SPEC)
    tasks = tasks_from_args([str(tmp_path / "spec")], None, prof, threads=[1, 2], match="gemm")
    assert [(t.op, t.threads) for t in tasks] == [("gemm", 1), ("gemm", 2)]
    with pytest.raises(ValueError, match="exactly one of --spec"):
        tasks_from_args(None, None, prof)
    with pytest.raises(ValueError, match="no conv2d or GEMM task"):
        tasks_from_args([str(tmp_path / "spec")], None, prof, match="nothing")


def test_compare_selectors_reports_every_selector_against_the_oracle(tmp_path, monkeypatch):
    from autoconfig import tuning_tools
    calls = []
    monkeypatch.setattr(tuning_tools, "measure", lambda pairs, prof, repeats: fake_measure(calls)(pairs, prof))
    # predictor:K measures its top K itself (tuning.measure.measure): the same stand-in, its calls kept apart
    from autoconfig.tuning import measure as measure_mod
    monkeypatch.setattr(measure_mod, "measure", lambda pairs, prof, repeats=5, isa=None: fake_measure([])(pairs, prof))
    prof = probe.profile("x86-64-v3")
    tasks = [Task("gemm", GemmShape(64, 96, 80), 1), Task("conv2d", Conv2dShape(16, 14, 14, 32, 3, 3, **pad(1)), 1)]
    log = TuningLog()
    results = tuning_tools.compare(tasks, prof, budgets=(4, 16), oracle_budget=32, exhaustive_max=64, log=log,
                                   progress=None)
    measured = [(t.key(), c) for call in calls for t, c in call]
    assert len(measured) == len(set(measured)) == len(log.records)      # each config measured once
    out = json.loads(tuning_tools.results_json(results))
    assert [r["layer"] for r in out] == [t.label() for t in tasks]
    assert out[0]["oracle"].startswith("search of 32") and out[1]["oracle"].startswith("exhaustive")
    for r in out:
        assert set(r["selectors"]) == {"analytical", "random", "search:4", "search:16", "predictor", "predictor:8"}
        for v in r["selectors"].values():
            assert r["oracle_ms"] <= v["ms"] and v["configure_s"] >= 0
    # the exhaustive oracle is the whole space's best
    assert out[1]["oracle_ms"] == pytest.approx(1e3 * min(
        s for (k, _), s in zip(measured, fake_measure([])([(t, c) for call in calls for t, c in call], prof))
        if k == tasks[1].key()))
    ratios = tuning_tools.geomean_ratios(results)
    assert all(0 < v <= 1 for v in ratios.values())
    assert "geomean oracle/chosen" in tuning_tools.format_results(results, prof, markdown=True)
