"""torchvision ResNet-50, ResNet-18, MobileNetV2 and SqueezeNet 1.1 with
random weights and randomized BatchNorm statistics (benchmarks/export_models.py),
against onnxruntime: the planned graph run from its storage by the float64
reference (layouts, views, arena), and through the C++ executor where it is
built in (max |y - y_ort| / max |y_ort| <= 1e-4, 1e-3 where the plan uses
Winograd F(4x4)). Runs only where torch and torchvision are installed."""
import importlib.util
import os
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:     # imported by the export script, which
    pytest.skip("torchvision is not installed", allow_module_level=True)  # copes with a CUDA build of it
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import graph_reference  # noqa: E402
from autoconfig import probe  # noqa: E402
from autoconfig.graph import acmodel, planner  # noqa: E402
from autoconfig.graph.onnx_import import import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402

NETS = ["squeezenet1_1", "mobilenet_v2", "resnet18", "resnet50"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "export_models.py")
    spec = importlib.util.spec_from_file_location("export_models", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["export_models"] = mod
    spec.loader.exec_module(mod)
    out = str(tmp_path_factory.mktemp("tv"))
    return {n: mod.export(n, out, 17, 0) for n in NETS}


def _ort(path, x):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _x():
    return np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)


@pytest.mark.parametrize("name", NETS)
def test_planned_storage_matches_onnxruntime(exported, name):
    g = import_onnx(exported[name])
    run_passes(g)
    planner.plan(g, probe.profile("x86-64-v4"), threads=2)
    x = _x()
    got = graph_reference.run(g, {g.inputs[0]: x}, storage=True)[0]
    want = _ort(exported[name], x)
    assert float(want.std()) > 1e-4, "random BN statistics should spread the outputs"
    assert np.abs(got - want).max() / np.abs(want).max() <= 1e-4
    acmodel.from_bytes(acmodel.to_bytes(g))


@pytest.mark.parametrize("name", NETS)
def test_executor_matches_onnxruntime(exported, name):
    import autoconfig
    if autoconfig._ext is None or not hasattr(autoconfig, "load"):
        pytest.skip("autoconfig.load (the C++ executor) is not in this build")
    from autoconfig.model_onnx import compile_bytes, load_bytes
    data = compile_bytes(exported[name])
    winograd = any(n["attrs"].get("algorithm") == "winograd-f4" for n in acmodel.from_bytes(data).header["nodes"])
    x = _x()
    y = np.asarray(load_bytes(data)(x))
    want = _ort(exported[name], x)
    assert np.abs(y.reshape(want.shape) - want).max() / np.abs(want).max() <= (1e-3 if winograd else 1e-4)
