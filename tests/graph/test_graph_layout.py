"""Layout planning (NCHW[B]c across layers, to_layout nodes) and concats
written in place: the planned graph run from its storage (arena offsets,
blocked layouts, views; tests/graph/graph_reference.py, storage=True) against the
unplanned graph, both in float64; then the structure (which tensors are
blocked, where the conversions are, which concats are views) and the
.acmodel fields the executor reads."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graph_cases  # noqa: E402
import graph_reference  # noqa: E402
from autoconfig import probe  # noqa: E402
from autoconfig.graph import acmodel, planner  # noqa: E402
from autoconfig.graph.ir import BLOCKED_OPS  # noqa: E402
from autoconfig.graph.onnx_import import import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402
from autoconfig.graph.views import views  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
B = {"x86-64-v4": 16, "x86-64-v3": 8}


@pytest.fixture(scope="module", params=list(B))
def profile(request):
    return probe.profile(request.param)


@pytest.fixture(scope="module")
def v4():
    return probe.profile("x86-64-v4")


def _planned(model, profile, layouts=True):
    g = import_onnx(model)
    run_passes(g)
    p = planner.plan(g, profile, layouts=layouts)
    return g, p


def _same(got, want, what):
    for a, b in zip(got, want):
        assert not np.isnan(a).any(), f"{what}: NaN (read arena space nothing wrote)"
        scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
        assert float(np.abs(a - b).max() if b.size else 0.0) / scale <= 1e-9, what


def _check_storage(model, feeds, profile, layouts, what):
    plain = import_onnx(model)
    run_passes(plain)
    want = graph_reference.run(plain, feeds)
    g, p = _planned(model, profile, layouts)
    _same(graph_reference.run(g, feeds, storage=True), want, what)
    data = acmodel.to_bytes(g)                      # the reader accepts what the planner wrote
    acmodel.from_bytes(data)
    _through_the_executor(data, g, feeds, want, what)
    return g, p


def _executor():
    import autoconfig
    try:
        return autoconfig.load, autoconfig.block_size()
    except (ImportError, AttributeError):
        return None, None


def _through_the_executor(data, g, feeds, want, what):
    """Where the executor is built in and the plan's B is its block: the same
    file through autoconfig.load (float32; 1e-3 with Winograd F(4x4), else 1e-4)."""
    load, block = _executor()
    blocks = {t.layout for t in g.tensors.values() if t.layout.startswith("nchw") and t.layout != "nchw"}
    if load is None or blocks - {f"nchw{block}c"}:
        return
    got = load(data).run(None, {k: np.asarray(v, np.float32) for k, v in feeds.items()})
    tol = 1e-3 if any(n.attrs.get("algorithm") == "winograd-f4" for n in g.nodes) else 1e-4
    for a, b in zip(got, want):
        scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
        assert float(np.abs(np.asarray(a) - b).max() if b.size else 0.0) / scale <= tol, f"{what} (executor)"


def test_blocked_ops_match_format_md():
    md = (Path(acmodel.__file__).parent / "FORMAT.md").read_text()
    table = md[md.index("## Blocked tensors"):md.index("## Views")]
    listed = set()
    for line in table.splitlines():
        if line.startswith("  | `"):
            listed.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    assert listed == set(BLOCKED_OPS)


@pytest.mark.parametrize("layouts", [True, "blocked"])
@pytest.mark.parametrize("c", graph_cases.CASES, ids=[c.id for c in graph_cases.CASES])
def test_case_runs_from_planned_storage(c, layouts, profile):
    feeds = c.feeds(np.random.default_rng(abs(hash(c.id)) % 2**32))
    _check_storage(c.model(), feeds, profile, layouts, f"{c.id} {layouts} {profile.name}")


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1", "shufflenet", "resnet50"])
@pytest.mark.parametrize("layouts", [True, "blocked"])
def test_light_model_runs_from_planned_storage(name, layouts, v4):
    from test_graph_import import randomize_weights
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not shipped with this onnx")
    model = randomize_weights(onnx.load(path))
    g0 = import_onnx(model)
    x = np.random.default_rng(3).standard_normal(g0.tensors[g0.inputs[0]].shape).astype(np.float32)
    g, p = _check_storage(model, {g0.inputs[0]: x}, v4, layouts, f"{name} {layouts}")
    blocked = [t for t in g.tensors.values() if t.layout == "nchw16c"]
    assert blocked and all(t.kind == "intermediate" and len(t.shape) == 4 for t in blocked)
    assert p.layout_conversions == g.count("to_layout")


# --------------------------------------------------------------------------- small graphs, structure
def _r(*shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


def _model(nodes, x_shape, inits, outs=("y",)):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


N = helper.make_node


def _feeds(shape):
    return {"x": np.random.default_rng(5).standard_normal(shape).astype(np.float32)}


def bottlenecks(n_images=1):
    """Pointwise bottlenecks with residuals, then a classifier: the model
    keeps them blocked (the direct kernel on blocked tensors beats the GEMM on
    NCHW here) and converts once, before the Flatten."""
    nodes, inits, x = [], {"w0": _r(256, 64, 1, 1, seed=1)}, "x"
    nodes.append(N("Conv", ["x", "w0"], ["a0"]))
    x = "a0"
    for i in range(3):
        inits[f"wa{i}"], inits[f"wb{i}"] = _r(64, 256, 1, 1, seed=2 + i), _r(256, 64, 1, 1, seed=9 + i)
        nodes += [N("Conv", [x, f"wa{i}"], [f"h{i}"]), N("Relu", [f"h{i}"], [f"hr{i}"]),
                  N("Conv", [f"hr{i}", f"wb{i}"], [f"o{i}"]), N("Add", [f"o{i}", x], [f"s{i}"]),
                  N("Relu", [f"s{i}"], [f"r{i}"])]
        x = f"r{i}"
    inits["wg"] = _r(10, 256 * 28 * 28, seed=20)
    nodes += [N("Flatten", [x], ["f"]), N("Gemm", ["f", "wg"], ["y"], transB=1)]
    return _model(nodes, (n_images, 64, 28, 28), inits)


def test_model_keeps_bottlenecks_blocked_and_converts_once(v4):
    model = bottlenecks()
    g, p = _check_storage(model, _feeds((1, 64, 28, 28)), v4, True, "bottlenecks")
    assert p.layout_conversions == 1
    conv = next(n for n in g.nodes if n.op == "to_layout")
    assert conv.attrs["layout"] == "nchw" and g.tensors[conv.inputs[0]].layout == "nchw16c"
    assert "reshape" in conv.why and "NCHW only" in conv.why and "saves" in conv.why
    convs = [n for n in g.nodes if n.op == "conv"]
    assert all(g.tensors[n.outputs[0]].layout == "nchw16c" for n in convs)
    assert g.tensors["x"].layout == "nchw" and convs[0].layout == "nchw -> nchw16c"
    assert "layout nchw16c" in " ".join(p.notes)
    # NCHW throughout predicts slower: the layout plan is worth its conversion
    _, flat = _planned(model, v4, layouts=False)
    assert p.total_ms < flat.total_ms


def inverted_residual(c=24, expand=6):
    """MobileNetV2's block: 1x1 expand + relu6, 3x3 depthwise + relu6, 1x1
    project, residual Add; a 1x1 conv before and after."""
    e = c * expand
    nodes = [N("Conv", ["x", "w0"], ["a"]), N("Conv", ["a", "we"], ["e0"]), N("Clip", ["e0", "lo", "hi"], ["e"]),
             N("Conv", ["e", "wd"], ["d0"], group=e, pads=[1, 1, 1, 1]), N("Clip", ["d0", "lo", "hi"], ["d"]),
             N("Conv", ["d", "wp"], ["p"]), N("Add", ["p", "a"], ["s"]), N("Conv", ["s", "w1"], ["y"])]
    inits = {"w0": _r(c, 16, 1, 1), "we": _r(e, c, 1, 1, seed=1), "wd": _r(e, 1, 3, 3, seed=2),
             "wp": _r(c, e, 1, 1, seed=3), "w1": _r(8, c, 1, 1, seed=4),
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    return _model(nodes, (1, 16, 28, 28), inits)


@pytest.mark.parametrize("c", [24, 20])
def test_inverted_residual_stays_blocked(profile, c):
    """The depthwise conv reads and writes NCHW[B]c, so the expanded tensors
    around it stay blocked with no to_layout (20 channels: a partial last
    block; the 24- or 20-channel residual group is the model's choice)."""
    g, p = _check_storage(inverted_residual(c), _feeds((1, 16, 28, 28)), profile, True, f"inverted residual {c}")
    lay = f"nchw{B[profile.name]}c"
    dw = next(n for n in g.nodes if n.op == "conv" and n.attrs["groups"] > 1)
    assert dw.attrs["algorithm"] == "depthwise"
    assert dw.layout == f"{lay} -> {lay}"
    assert p.layout_conversions == 0
    assert g.tensors[dw.inputs[0]].layout == g.tensors[dw.outputs[0]].layout == lay


def se_block(c=40):
    """Squeeze-and-excitation: the per-channel multiply by an activation
    vector; then a multiply by a per-channel constant."""
    nodes = [N("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]), N("Relu", ["c1"], ["r1"]),
             N("GlobalAveragePool", ["r1"], ["gp"]), N("Conv", ["gp", "w2"], ["s1"]), N("Relu", ["s1"], ["s2"]),
             N("Conv", ["s2", "w3"], ["s3"]), N("HardSigmoid", ["s3"], ["s"]), N("Mul", ["r1", "s"], ["m"]),
             N("MaxPool", ["m"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             N("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], strides=[1, 1]),
             N("Mul", ["ap", "k"], ["ak"]), N("Relu", ["ak"], ["cl"]), N("Conv", ["cl", "w4"], ["y"])]
    inits = {"w1": _r(c, 16, 3, 3), "w2": _r(8, c, 1, 1, seed=1), "w3": _r(c, 8, 1, 1, seed=2),
             "k": _r(1, c, 1, 1, seed=3), "w4": _r(8, c, 1, 1, seed=4)}
    return _model(nodes, (1, 16, 20, 20), inits)


@pytest.mark.parametrize("c", [40, 48])
def test_forced_blocked_se_block(profile, c):
    # 40 channels with B = 16: the last block carries padding lanes, and the per-channel
    # constant cannot be read as blocked storage: that multiply runs on NCHW
    g, p = _check_storage(se_block(c), _feeds((1, 16, 20, 20)), profile, "blocked", f"se block {c}")
    lay = f"nchw{B[profile.name]}c"
    for name in ("r1", "gp", "s", "m", "mp", "ap", "cl"):
        assert g.tensors[name].layout == lay, name
    assert g.tensors["y"].layout == "nchw"
    mul_k = next(n for n in g.nodes if n.op == "mul" and "k" in [i.split(".")[0] for i in n.inputs])
    if c % B[profile.name] == 0:
        assert p.layout_conversions == 0 and g.tensors[mul_k.outputs[0]].layout == lay
    else:
        assert p.layout_conversions == 2 and g.tensors[mul_k.outputs[0]].layout == "nchw"


def concat_model(n_images=1, k=32):
    nodes = [N("Conv", ["x", "w1"], ["a"]), N("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
             N("MaxPool", ["x"], ["c"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
             N("Concat", ["a", "b", "c"], ["cc"], axis=1), N("Relu", ["cc"], ["r"]), N("Conv", ["r", "w3"], ["y"])]
    inits = {"w1": _r(k, 16, 1, 1), "w2": _r(k, 16, 3, 3, seed=1), "w3": _r(8, 2 * k + 16, 1, 1, seed=2)}
    return _model(nodes, (n_images, 16, 9, 9), inits)


@pytest.mark.parametrize("layouts", [False, True, "blocked"])
def test_concat_in_place(layouts, v4):
    g, p = _check_storage(concat_model(), _feeds((1, 16, 9, 9)), v4, layouts, f"concat {layouts}")
    cc = next(n for n in g.nodes if n.op == "concat")
    if layouts is False:
        assert not cc.attrs.get("in_place") and p.in_place_concats == 0
        return
    assert cc.attrs["in_place"] and p.in_place_concats == 1 and cc.predicted_ms == 0
    out = g.tensors[cc.outputs[0]]
    shared = views(g)
    offsets = [0, 32, 64]
    for name, c in zip(cc.inputs, offsets):
        t = g.tensors[name]
        assert t.view_of == out.name and t.channel_offset == c and t.layout == out.layout
        assert shared[name] == (out.name, c * 81) and t.arena == out.arena + c * 81
    header = acmodel.from_bytes(acmodel.to_bytes(g)).header
    entry = {t["name"]: t for t in header["tensors"]}[cc.inputs[1]]
    assert entry["view_of"] == out.name and entry["channel_offset"] == 32
    assert {n["name"]: n for n in header["nodes"]}[cc.name]["attrs"]["in_place"] is True


def test_concat_not_in_place_for_two_images_or_unaligned_blocks(v4):
    g, p = _check_storage(concat_model(n_images=2), _feeds((2, 16, 9, 9)), v4, "blocked", "2 images")
    assert p.in_place_concats == 0 and not any(t.view_of for t in g.tensors.values())
    # 24 + 24 + 16 channels: not whole 16-blocks, so the concat runs on NCHW (converted around it)
    g, p = _check_storage(concat_model(k=24), _feeds((1, 16, 9, 9)), v4, "blocked", "unaligned")
    cc = next(n for n in g.nodes if n.op == "concat")
    assert all(g.tensors[x].layout == "nchw" for x in cc.inputs + cc.outputs)
    assert cc.attrs.get("in_place")          # NCHW with one image: still written in place


# --------------------------------------------------------------------------- what the reader refuses
def _header_with(g, edit):
    """The file's bytes with its header edited (framing and checksum redone)."""
    header, blobs = acmodel.header_and_blobs(g)
    edit(header)
    return acmodel.frame(header, blobs)


def _tensor(header, name):
    return next(t for t in header["tensors"] if t["name"] == name)


def test_reader_refuses_broken_views_and_layouts(v4):
    g, _ = _planned(concat_model(), v4, "blocked")
    cc = next(n for n in g.nodes if n.op == "concat")
    b_in = cc.inputs[1]
    acmodel.from_bytes(_header_with(g, lambda h: None))

    def shift(h):
        _tensor(h, b_in)["arena"] += 16
    with pytest.raises(acmodel.FormatError, match="is not .*'s"):
        acmodel.from_bytes(_header_with(g, shift))

    def odd_offset(h):
        _tensor(h, b_in)["channel_offset"] = 8
    with pytest.raises(acmodel.FormatError, match="channel slice"):
        acmodel.from_bytes(_header_with(g, odd_offset))

    def blocked_output(h):
        _tensor(h, "y")["layout"] = "nchw16c"
    with pytest.raises(acmodel.FormatError, match="only 4-D intermediates"):
        acmodel.from_bytes(_header_with(g, blocked_output))

    def two_blocks(h):
        _tensor(h, "r")["layout"] = "nchw8c"
    with pytest.raises(acmodel.FormatError, match="different blocks"):
        acmodel.from_bytes(_header_with(g, two_blocks))

    g, _ = _planned(bottlenecks(), v4, True)
    conv = next(n for n in g.nodes if n.op == "to_layout")

    def reshape_reads_blocked(h):
        _tensor(h, conv.outputs[0])["layout"] = "nchw16c"
    with pytest.raises(acmodel.FormatError, match="nchw only|attrs.layout"):
        acmodel.from_bytes(_header_with(g, reshape_reads_blocked))


def test_planning_twice_keeps_the_file_consistent(v4):
    model = se_block()
    g = import_onnx(model)
    run_passes(g)
    planner.plan(g, v4, layouts="blocked")
    planner.plan(g, v4, layouts=False)            # the earlier to_layout stays, as an NCHW copy
    acmodel.from_bytes(acmodel.to_bytes(g))
    planner.plan(g, v4)
    acmodel.from_bytes(acmodel.to_bytes(g))
    feeds = _feeds((1, 16, 20, 20))
    plain = import_onnx(model)
    run_passes(plain)
    _same(graph_reference.run(g, feeds, storage=True), graph_reference.run(plain, feeds), "planned twice")


def test_cli_layouts_option(tmp_path, capsys):
    from autoconfig.cli import main
    path = tmp_path / "b.onnx"
    path.write_bytes(bottlenecks().SerializeToString())
    for choice, blocked in (("auto", True), ("nchw", False), ("blocked", True)):
        assert main(["plan-model", str(path), "--explain", "--target", "x86-64-v4", "--layouts", choice]) == 0
        out = capsys.readouterr().out
        assert ("nchw16c" in out.split("node ", 1)[1]) == blocked, choice
