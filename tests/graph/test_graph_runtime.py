"""End to end through the C++ executor: ONNX -> import -> passes -> plan ->
.acmodel -> autoconfig.load -> run, against onnxruntime. Skips until the
executor (autoconfig.load, cpp_runtime autoconfig::Model) is built in."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import graph_cases  # noqa: E402


@pytest.fixture(scope="module")
def runtime():
    import autoconfig
    if autoconfig._ext is None:
        pytest.skip("autoconfig is not built/installed")
    try:
        load = autoconfig.load
    except AttributeError:
        pytest.skip("autoconfig.load (the C++ executor) is not in this build yet")
    return autoconfig, load


def _compile(model, tmp_path, name, layouts="auto"):
    from autoconfig.graph.pipeline import compile_onnx, write_outputs
    import autoconfig
    p = compile_onnx(model, autoconfig.host(), name=name, layouts=layouts)
    return write_outputs(p, str(tmp_path), name)[0]


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("layouts", ["auto", "blocked"])
@pytest.mark.parametrize("c", [c for c in graph_cases.CASES if c.oracle == "onnxruntime"],
                         ids=[c.id for c in graph_cases.CASES if c.oracle == "onnxruntime"])
def test_case_through_the_executor(runtime, c, layouts, tmp_path):
    """The planner's layouts, and every activation that can be nchw{B}c forced
    blocked (to_layout, blocked elementwise / pool / concat, views)."""
    _, load = runtime
    model = c.model()
    feeds = c.feeds(np.random.default_rng(7))
    path = _compile(model, tmp_path, c.id, layouts)
    m = load(path)
    got = m.run(None, feeds)
    for a, b in zip(got, _ort(model, feeds)):
        scale = max(1.0, float(np.abs(b).max()))
        assert np.abs(np.asarray(a) - b).max() / scale <= 1e-4, c.id


@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_light_model_through_the_executor(runtime, name, tmp_path):
    from test_graph_import import light, randomize_weights
    _, load = runtime
    model = randomize_weights(onnx.load(light(name)))
    path = _compile(model, tmp_path, name)
    m = load(path)
    weights = {t.name for t in model.graph.initializer}
    data = next(i for i in model.graph.input if i.name not in weights)   # older models list weights as inputs
    shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    y = m(x)
    want = _ort(model, {data.name: x})[0]
    tol = 1e-3 if any(n["attrs"].get("algorithm") == "winograd-f4"
                      for n in __import__("autoconfig.graph.acmodel", fromlist=["read"]).read(path).header["nodes"]) \
        else 1e-4
    assert np.abs(np.asarray(y) - want).max() / np.abs(want).max() <= tol
    assert os.path.getsize(path) > 0
