"""Graph planner (per-node algorithm, threads, predicted time, why; the arena),
the layer spec YAML and the CLI (import-onnx, plan-model --explain)."""
import os

import pytest

onnx = pytest.importorskip("onnx")

from autoconfig import probe, spec  # noqa: E402
from autoconfig.cli import main  # noqa: E402
from autoconfig.graph import acmodel, planner  # noqa: E402
from autoconfig.graph.layer_spec import layer_spec_yaml  # noqa: E402
from autoconfig.graph.onnx_import import import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402
from autoconfig.graph.planner import lifetimes, reshape_views, storage_floats, views  # noqa: E402
from autoconfig.vocabulary import CONV_ALGORITHMS  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
TARGET = "x86-64-v4"


def light(name):
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not shipped with this onnx")
    return path


@pytest.fixture(scope="module")
def profile():
    return probe.profile(TARGET)


@pytest.fixture(scope="module")
def resnet(profile):
    g = import_onnx(light("resnet50"))
    run_passes(g)
    return planner.plan(g, profile)


def test_every_node_planned(resnet, profile):
    g = resnet.graph
    for n in g.nodes:
        assert 1 <= n.threads <= profile.cores, n.name
        assert n.predicted_ms is not None and n.predicted_ms >= 0 and n.why
        if n.op == "conv":
            assert n.attrs["algorithm"] in CONV_ALGORITHMS
            assert n.predicted_ms > 0 and "rule allows" in n.why and "model:" in n.why
    assert resnet.total_ms == pytest.approx(sum(n.predicted_ms for n in g.nodes))
    # graph inputs and outputs NCHW; some activations kept blocked (nchw16c on this target)
    assert all(g.tensors[x].layout == "nchw" for x in g.inputs + g.outputs)
    assert {t.layout for t in g.tensors.values() if t.kind != "constant"} == {"nchw", "nchw16c"}


def _check_arena(g, arena_floats):
    life = lifetimes(g)
    shared = views(g)
    items = [(g.tensors[n].arena, storage_floats(g.tensors[n]), *life[n], n) for n in life]
    for i, (o1, s1, a1, b1, n1) in enumerate(items):
        assert o1 % 16 == 0 or n1 in shared
        assert o1 + s1 <= arena_floats
        r1, off1 = shared.get(n1, (n1, 0))
        assert o1 == g.tensors[r1].arena + off1
        for o2, s2, a2, b2, n2 in items[i + 1:]:
            if r1 == shared.get(n2, (n2, 0))[0]:
                continue                           # views of one root: placed by their offsets
            elif not (b1 < a2 or b2 < a1):       # both alive at some node
                assert o1 + s1 <= o2 or o2 + s2 <= o1, (n1, n2)
    return sum(storage_floats(g.tensors[n]) for n in life)


def test_arena_never_overlaps_live_tensors(resnet):
    total = _check_arena(resnet.graph, resnet.arena_floats)
    assert resnet.arena_floats < total / 5          # reuse is what the arena is for


def test_reshape_views_share_space_and_cost_nothing(profile):
    g = import_onnx(light("shufflenet"))
    run_passes(g)
    p = planner.plan(g, profile)
    _check_arena(g, p.arena_floats)
    views = reshape_views(g)
    assert len(views) == 33          # every reshape of the channel shuffles and the classifier
    for n in g.nodes:
        if n.op == "reshape":
            assert g.tensors[n.outputs[0]].arena == g.tensors[n.inputs[0]].arena
            assert n.predicted_ms == 0 and "view" in n.why


def test_thread_cap_and_small_work(profile):
    g = import_onnx(light("squeezenet"))
    run_passes(g)
    p = planner.plan(g, profile, threads=1)
    assert {n.threads for n in g.nodes} == {1} and p.cores == 1
    planner.plan(g, profile)
    soft = next(n for n in g.nodes if n.op == "softmax")
    assert soft.threads == 1 and "work 1" in soft.why        # 1000 elements: below one thread's worth


@pytest.mark.parametrize("case_id, groups_per_conv", [("grouped_regnet_block", 1), ("grouped_resnext_4_per_group", 4)])
def test_grouped_convs_run_direct_per_group(profile, case_id, groups_per_conv):
    # x86-64-v4 (16 lanes): 16 channels per group are whole blocks; 4 per group run 4 groups at a time
    import graph_cases
    g = import_onnx(next(c for c in graph_cases.CASES if c.id == case_id).model())
    run_passes(g)
    planner.plan(g, profile)
    conv = next(n for n in g.nodes if n.op == "conv" and n.attrs.get("groups", 1) > 1)
    assert conv.attrs["algorithm"] == "direct"
    assert f"({groups_per_conv} group(s) each)" in conv.why


def test_tolerance_refuses_winograd(profile):
    g = import_onnx(light("squeezenet"))
    run_passes(g)
    planner.plan(g, profile)
    assert any(n.attrs.get("algorithm") == "winograd-f4" for n in g.nodes)
    planner.plan(g, profile, tolerance=1e-5)      # F(4x4) bound 1.7e-5, F(2x2) 7e-7
    assert not any(n.attrs.get("algorithm") == "winograd-f4" for n in g.nodes)


def test_explain_lists_every_node_and_the_total(resnet):
    text = planner.explain(resnet)
    lines = text.splitlines()
    assert "threads" not in lines[0] and "arena" in lines[0]
    assert any(line.startswith("node") and "algorithm" in line and "thr" in line for line in lines)
    assert lines[-1].startswith("network total:") and "GFLOP" in lines[-1]
    assert sum(1 for line in lines if " conv " in line) == 53


def test_layer_spec_loads_as_a_kernels_spec(resnet, tmp_path):
    text = layer_spec_yaml(resnet.graph)
    path = tmp_path / "resnet.yaml"
    path.write_text(text)
    specs = spec.load_file(path)
    names = {s.name for s in specs}
    assert "light_resnet50_conv_relu" in names and "light_resnet50_conv_relu_residual" in names
    convs = {(s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h) for k in specs if k.op == "conv2d" for s in k.shapes}
    assert len(convs) >= 20
    gemm = [k for k in specs if k.op == "gemm"]
    assert gemm and gemm[0].shapes[0].M == 1 and gemm[0].shapes[0].N == 1000


def test_cli_import_onnx_and_plan_model(tmp_path, capsys):
    model = light("squeezenet")
    assert main(["import-onnx", model, "-o", str(tmp_path), "--target", TARGET, "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "light_squeezenet.acmodel" in out
    am = acmodel.read(str(tmp_path / "light_squeezenet.acmodel"))
    ops = [n["op"] for n in am.header["nodes"]]
    assert am.header["name"] == "light_squeezenet" and len(ops) - ops.count("to_layout") == 39
    assert all(n["threads"] <= 2 for n in am.header["nodes"])
    assert spec.load_file(tmp_path / "light_squeezenet.yaml")
    assert main(["plan-model", model, "--explain", "--target", TARGET, "--input-shape", "1,3,224,224"]) == 0
    out = capsys.readouterr().out
    assert "network total:" in out and "algorithm" in out and "no optimization" in out
    assert main(["plan-model", str(tmp_path / "light_squeezenet.acmodel"), "--why"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model light_squeezenet") and out[-1].startswith("n") and "rule allows" in out[-1]
    assert any(line.startswith("network total:") for line in out)


def test_cli_reports_bad_models(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    assert main(["plan-model", str(bad), "--target", TARGET]) == 2
    assert "not a valid ONNX model" in capsys.readouterr().err
    assert main(["plan-model", light("squeezenet"), "--target", TARGET, "--input-shape", "1,3,a"]) == 2
    assert "--input-shape" in capsys.readouterr().err


def test_dlfusion_knobs_given_threads_and_no_fusion():
    """The options the DLFusion comparison plans with (benchmarks/dlfusion.py):
    given per-node thread counts replace the rule's choice (capped at the
    cores) and keep the node list; fusion=False leaves every conv, activation
    and Add a node of its own; all_threads puts every node on all cores."""
    import dataclasses

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from autoconfig.graph.pipeline import compile_onnx
    prof = dataclasses.replace(probe.profile(TARGET), cores=4)
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((32, 16, 3, 3)), "w2": rng.standard_normal((16, 32, 1, 1)),
             "s": rng.uniform(0.5, 1.5, 32), "b": rng.standard_normal(32), "m": rng.standard_normal(32),
             "v": rng.uniform(0.5, 1.5, 32)}
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]), N("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"]),
             N("Relu", ["n1"], ["r1"]), N("Conv", ["r1", "w2"], ["c2"]), N("Add", ["c2", "x"], ["a"]),
             N("Relu", ["a"], ["y"])]
    g = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 28, 28])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    path = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    planned = compile_onnx(path, prof)
    names = [n.name for n in planned.graph.nodes]
    given = {n: (3 if i % 2 else 9) for i, n in enumerate(names)}
    forced = compile_onnx(path, prof, node_threads=given)
    assert [n.name for n in forced.graph.nodes] == names
    for n in forced.graph.nodes:
        assert n.threads == min(4, given[n.name]) and "given" in n.why, n.name
    unfused = compile_onnx(path, prof, fusion=False)
    assert all(n.attrs.get("activation", "none") == "none" and (len(n.inputs) < 4 or not n.inputs[3])
               for n in unfused.graph.nodes if n.op == "conv")
    assert unfused.graph.count("relu") > 0 and unfused.graph.count("add") > 0
    assert planned.graph.count("relu") == 0 and planned.graph.count("add") == 0
    assert unfused.graph.count("channel_affine") == 0           # the folds still run
    everywhere = compile_onnx(path, prof, optimize=False, layouts="nchw", all_threads=True)
    assert all(n.threads == 4 for n in everywhere.graph.nodes)
    assert everywhere.graph.count("channel_affine") > 0
    assert everywhere.total_ms > planned.total_ms


def _conv_block(c: int, k: int):
    """A 3x3 conv c -> k and a 1x1 conv k -> c on 1 x c x 28 x 28 (ONNX model)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((k, c, 3, 3)), "w2": rng.standard_normal((c, k, 1, 1))}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]), helper.make_node("Conv", ["r1", "w2"], ["y"])]
    g = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 28, 28])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v.astype(np.float32), n) for n, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_cold_weights_when_the_network_exceeds_l3(resnet, profile):
    """ResNet-50's ~100 MB of weights exceed any L3: every conv is costed
    with the cold_weights term, the FC's B comes from DRAM, and explain says
    so by name."""
    from autoconfig.models import conv as conv_model
    from autoconfig.graph.layout import conv_context
    text = planner.explain(resnet)
    assert "exceed" in text and "cold_weights" in text
    g = resnet.graph
    convs = [n for n in g.nodes if n.op == "conv"]
    assert all("cold_weights" in n.why for n in convs)
    n = convs[-1]
    ctx = conv_context(g, n)
    cold = conv_model.candidates(profile, planner.conv_layer(g, n), n.threads,
                                 ctx=conv_model.Context(ctx.in_blocked, ctx.out_blocked, cold_weights=True))
    warm = conv_model.candidates(profile, planner.conv_layer(g, n), n.threads, ctx=ctx)
    assert n.predicted_ms == pytest.approx(min(c.predicted_s for c in cold if c.rejected is None) * 1e3)
    assert n.predicted_ms > min(c.predicted_s for c in warm if c.rejected is None) * 1e3
    fc = next(n for n in g.nodes if n.op == "gemm")
    assert "from DRAM" in fc.why


def test_small_network_keeps_its_weights_warm(profile):
    from autoconfig.graph.pipeline import compile_onnx
    p = compile_onnx(_conv_block(16, 32), profile)
    assert any("fit in the" in note and "costed warm" in note for note in p.notes)
    assert not any("cold_weights" in n.why for n in p.graph.nodes)


def test_weight_bytes_count_the_layout_the_kernel_reads(profile):
    """Winograd F(4x4) stores 36/9 = 4x the 3x3 weights: the planner turns
    cold when the prepared bytes exceed its L3 budget even if the weights as
    stored fit."""
    from autoconfig.models import conv as conv_model
    m = conv_model.kernel_machine(profile)
    g = import_onnx(_conv_block(128, 128))
    raw = 4 * (128 * 128 * 9 + 128 * 128)

    def f4(n):
        return "winograd-f4" if planner.conv_layer(g, n).R == 3 else "direct"
    assert planner.network_weight_bytes(g, m, lambda n: "gemm") == raw
    assert planner.network_weight_bytes(g, m, f4) == 4 * (128 * 128 * 36 + 128 * 128)
    budget = planner.l3_for_weights(m, profile.cores)
    assert raw < budget < 4 * 128 * 128 * 36      # x86-64-v4: 1.9 MiB of L3 per core, half kept
    for choice, cold in ((f4, True), (lambda n: "direct", False)):
        costs = planner._Costs(profile, None)
        costs.conv = lambda g, n, t, ctx: (1e-3, choice(n), "")
        note = planner.plan_cold_weights(g, costs, profile.cores)
        assert costs.cold_weights == cold and ("exceed" in note) == cold, note


def test_cold_weights_term_is_the_weights_over_dram_bandwidth(profile):
    """The term models/conv.py adds: the weights in the algorithm's layout
    over the DRAM bandwidth, once per call (split among the threads for
    Winograd, whose U stream is); standalone calls (the default Context)
    have none, and no layer is cheaper cold than warm."""
    from autoconfig.models import conv as conv_model
    from autoconfig.spec import Conv2dShape
    m = conv_model.kernel_machine(profile)
    L = Conv2dShape(C=256, H=14, W=14, K=256, R=3, S=3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
    blocked, ctx = conv_model.Context(True, True), conv_model.Context(True, True, cold_weights=True)
    for c in conv_model.candidates(profile, L, 1):
        assert "cold_weights" not in c.terms
    for c in conv_model.candidates(profile, L, 2, ctx=ctx):
        if c.rejected is None:
            alg = c.name.split()[0]
            plain = alg == "direct" and conv_model.parse_direct_name(c.name)[1]
            expect = conv_model.weight_bytes(m, L, alg, plain) / m.bandwidth("DRAM") / (2 if "winograd" in alg else 1)
            assert c.terms["cold_weights"] == pytest.approx(expect), c.name
    for threads in (1, 2, 4):
        warm = {c.name: c.predicted_s for c in conv_model.candidates(profile, L, threads, ctx=blocked)}
        for c in conv_model.candidates(profile, L, threads, ctx=ctx):
            assert c.rejected is not None or c.predicted_s > warm[c.name], c.name
    assert conv_model.weight_bytes(m, L, "winograd-f4") == 4 * 36 * 256 * 256
    assert conv_model.weight_bytes(m, L, "gemm-1x1") == 4 * 9 * 256 * 256
