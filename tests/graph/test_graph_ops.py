"""Every supported ONNX op / attribute / opset variant (tests/graph/graph_cases.py):
import (with and without the passes) and run through the float64 reference
interpreter of the executor vocabulary (tests/graph/graph_reference.py); compare
with onnxruntime. Then the structure the passes must leave."""
import numpy as np
import pytest

import graph_cases
import graph_reference

ort = pytest.importorskip("onnxruntime")

from autoconfig.graph.onnx_import import import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402

TOL = 1e-5


def _oracle(c, model, feeds):
    if c.oracle == "onnx-reference":
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, feeds)
    return _ort(model, feeds)


def _ort(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _close(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs onnxruntime {want.shape}"
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got - want).max()) / scale if want.size else 0.0
    assert err <= TOL, f"{what}: max error {err:.2e} relative to max |y| {scale:g}"


@pytest.mark.parametrize("c", graph_cases.CASES, ids=[c.id for c in graph_cases.CASES])
def test_op_matches_onnxruntime(c):
    model = c.model()
    feeds = c.feeds(np.random.default_rng(abs(hash(c.id)) % 2**32))
    want = _oracle(c, model, feeds)
    for optimize in (False, True):
        g = import_onnx(model)
        if optimize:
            run_passes(g)
        got = graph_reference.run(g, feeds)
        assert len(got) == len(want)
        for k, (a, b) in enumerate(zip(got, want)):
            _close(a, b, f"{c.id} output {k} ({'passes' if optimize else 'import only'})")


def _graph(case_id):
    c = next(c for c in graph_cases.CASES if c.id == case_id)
    g = import_onnx(c.model())
    run_passes(g)
    return g


def test_conv_bn_relu_is_one_node():
    g = _graph("fuse_conv_bn_relu")
    assert g.ops() == {"conv": 1}
    n = g.nodes[0]
    assert n.attrs["activation"] == "relu"
    assert n.fused == ["batchnormalization_n", "relu_y"]


def test_residual_add_and_relu_fuse_into_the_later_conv():
    g = _graph("fuse_conv_bn_residual_relu")
    assert g.ops() == {"conv": 2}
    main, last = g.nodes
    assert last.inputs[3] == main.outputs[0] and last.attrs["activation"] == "relu"
    assert last.fused == ["add_a", "relu_y"]
    assert main.fused == ["batchnormalization_n"] and main.attrs["activation"] == "none"


def test_clip_fusion():
    g = _graph("fuse_conv_relu6_clip_o11")
    assert g.ops() == {"conv": 1} and g.nodes[0].attrs["activation"] == "relu6"
    g = _graph("fuse_conv_clip_o9")
    assert g.ops() == {"conv": 1}
    assert g.nodes[0].attrs["activation"] == "none" and g.nodes[0].attrs["clip"] == [-0.5, 0.5]


def test_constant_mul_add_fold_into_conv():
    g = _graph("fuse_conv_mul_add_consts")
    assert g.ops() == {"conv": 1}
    assert g.nodes[0].fused == ["mul_m", "add_y"]


def test_no_fusion_when_the_producer_has_two_consumers_or_the_add_broadcasts():
    assert _graph("no_fuse_two_consumers").ops() == {"conv": 1, "relu": 1, "add": 1}
    assert _graph("no_fuse_broadcast_add").ops() == {"conv": 1, "add": 1}


def test_gemm_relu_and_se_block():
    g = _graph("fuse_gemm_relu")
    assert g.ops() == {"gemm": 1} and g.nodes[0].attrs["activation"] == "relu"
    g = _graph("se_block")
    assert g.ops() == {"global_avg_pool": 1, "conv": 2, "hard_sigmoid": 1, "mul": 1}


def test_unfused_batchnorm_is_a_channel_affine_and_dropout_identity_vanish():
    assert _graph("batchnorm_unfused_o9").ops() == {"channel_affine": 1}
    assert _graph("dropout_o13").ops() == {"relu": 1}
    assert _graph("identity_output").ops() == {"relu": 1}
    g = _graph("reshape_shape_chain")
    assert g.ops() == {"reshape": 1} and not any(t.kind == "constant" for t in g.tensors.values())


@pytest.mark.parametrize("c", graph_cases.CASES, ids=[c.id for c in graph_cases.CASES])
def test_shapes_agree_with_onnx_shape_inference(c):
    """Our shape rules (graph/shapes.py) against onnx.shape_inference, wherever
    it found a static shape. Where they disagree on purpose, onnxruntime and
    ONNX's reference (node test averagepool_2d_ceil_last_window_starts_on_pad)
    side with us: shape inference keeps a ceil_mode window that would start in
    the end padding."""
    if c.id.endswith("_ceil_last_window_in_padding"):
        pytest.skip("onnx.shape_inference keeps the window that starts in the padding (see docstring)")
    onnx = pytest.importorskip("onnx")
    model = c.model()
    inferred = onnx.shape_inference.infer_shapes(model)
    g = import_onnx(model)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims) or vi.name not in g.tensors:
            continue
        t = g.tensors[vi.name]
        if t.kind != "constant":
            assert t.shape == tuple(d.dim_value for d in dims), vi.name
