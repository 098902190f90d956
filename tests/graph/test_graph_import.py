"""ONNX import: the light models shipped in the onnx package (structure after
the passes; numerics against onnxruntime with random weights in place of
their ConstantOfShape fills), and the errors a model outside the supported
set gets."""
import glob
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graph_reference  # noqa: E402
from autoconfig.graph.onnx_import import ImportError_, import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def light(name):
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not shipped with this onnx")
    return path


def imported(name):
    g = import_onnx(light(name))
    changes = run_passes(g)
    return g, changes


def residual_convs(g):
    return sum(1 for n in g.nodes if n.op == "conv" and n.inputs[3])


# ---------------------------------------------------------------- structure
def test_resnet50_structure():
    g, changes = imported("resnet50")
    assert g.ops() == {"conv": 53, "max_pool": 1, "avg_pool": 1, "reshape": 1, "gemm": 1, "softmax": 1}
    assert residual_convs(g) == 16
    assert changes["fold_batchnorm"] and changes["fuse_residual"] and changes["fuse_activation"]
    convs = [n for n in g.nodes if n.op == "conv"]
    # every conv carries its batch-norm; 49 relus fused (16 after a residual add)
    assert all(any("bn" in f or f for f in n.fused) for n in convs)
    assert sum(1 for n in convs if n.attrs["activation"] == "relu") == 49
    assert g.tensors[g.outputs[0]].shape == (1, 1000)
    assert g.tensors[g.inputs[0]].shape == (1, 3, 224, 224)


@pytest.mark.parametrize("name, ops", [
    ("squeezenet", {"conv": 26, "max_pool": 3, "concat": 8, "global_avg_pool": 1, "softmax": 1}),
    ("inception_v1", {"conv": 57, "max_pool": 13, "lrn": 2, "concat": 9, "avg_pool": 1, "reshape": 1, "gemm": 1,
                      "softmax": 1}),
    ("vgg19", {"conv": 16, "max_pool": 5, "reshape": 1, "gemm": 3, "softmax": 1}),
    ("bvlc_alexnet", {"conv": 5, "lrn": 2, "max_pool": 3, "reshape": 1, "gemm": 3, "softmax": 1}),
    ("zfnet512", {"conv": 5, "lrn": 2, "max_pool": 3, "reshape": 1, "gemm": 3, "softmax": 1}),
    ("inception_v2", {"conv": 69, "max_pool": 5, "avg_pool": 8, "concat": 10, "reshape": 1, "gemm": 1,
                      "softmax": 1}),
    ("shufflenet", {"conv": 49, "max_pool": 1, "reshape": 33, "transpose": 16, "avg_pool": 4, "concat": 3,
                    "relu": 3, "gemm": 1, "softmax": 1}),
    ("densenet121", {"conv": 121, "max_pool": 1, "channel_affine": 62, "concat": 58, "avg_pool": 3,
                     "global_avg_pool": 1}),
])
def test_light_model_structure(name, ops):
    g, _ = imported(name)
    assert g.ops() == ops
    # no constant is left that no node reads, and no shape-only constant survives
    read = {i for n in g.nodes for i in n.inputs}
    assert all(t.name in read for t in g.constants())
    g.check()


def test_vgg19_fuses_relu_into_gemm_and_shufflenet_residuals():
    g, _ = imported("vgg19")
    assert [n.attrs["activation"] for n in g.nodes if n.op == "gemm"] == ["relu", "relu", "none"]
    g, _ = imported("shufflenet")
    assert residual_convs(g) == 13


@pytest.mark.parametrize("case_id, ops", [
    ("silu_after_conv", {"conv": 1, "silu": 1}),
    ("silu_operands_swapped", {"silu": 1}),
    ("no_silu_sigmoid_also_read", {"sigmoid": 1, "mul": 1, "add": 1}),
    ("no_silu_sigmoid_of_another", {"sigmoid": 1, "mul": 1}),
    # the squeeze-and-excitation gate stays a sigmoid and a per-channel multiply; every SiLU is one node
    ("efficientnet_block", {"conv": 5, "silu": 3, "sigmoid": 1, "mul": 1, "global_avg_pool": 1}),
    # DenseNet's pre-activation batch-norm + relu: one channel_affine (relu: true); a constant scale
    # after the relu must not fold into it, and a batch-norm whose output is read twice keeps its relu
    ("bn_relu_before_conv", {"channel_affine": 1, "conv": 1}),
    ("bn_relu_then_scale", {"channel_affine": 1, "mul": 1}),
    ("bn_relu_both_read", {"channel_affine": 1, "relu": 1, "add": 1}),
])
def test_silu_and_batchnorm_relu_fuse_where_nothing_else_reads_the_first(case_id, ops):
    import graph_cases
    case = next(c for c in graph_cases.CASES if c.id == case_id)
    g = import_onnx(case.model())
    run_passes(g)
    assert g.ops() == ops
    g.check()


# ---------------------------------------------------------------- numerics
def randomize_weights(model, seed=0):
    """Replace each ConstantOfShape fill by random values of the same shape,
    scaled for its consumer (He for conv/gemm weights, near 1 for scales and
    variances), so a light model computes something worth comparing."""
    rng = np.random.default_rng(seed)
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = {}
    for n in g.node:
        for k, i in enumerate(n.input):
            consumers.setdefault(i, (n, k))
    keep = []
    for n in g.node:
        if n.op_type != "ConstantOfShape":
            keep.append(n)
            continue
        shape = tuple(int(d) for d in inits[n.input[0]])
        out = n.output[0]
        c, k = consumers.get(out, (None, 0))
        while c is not None and c.op_type == "Unsqueeze":
            c, k = consumers.get(c.output[0], (None, 0))
        op = c.op_type if c is not None else ""
        if op == "Conv" and k == 1:
            v = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif op == "Gemm" and k == 1:
            trans_b = any(a.name == "transB" and a.i for a in c.attribute)
            v = rng.standard_normal(shape) * np.sqrt(1.0 / shape[1 if trans_b else 0])
        elif (op == "BatchNormalization" and k in (1, 4)) or op == "Mul":
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.standard_normal(shape) * 0.1
        g.initializer.append(numpy_helper.from_array(v.astype(np.float32), out))
    del g.node[:]
    g.node.extend(keep)
    return model


# VGG-19 (39 GFLOP in float64) is left out for time: its ops are AlexNet's.
@pytest.mark.parametrize("name", ["resnet50", "squeezenet", "inception_v1", "bvlc_alexnet", "shufflenet"])
def test_light_model_numerics_against_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    model = randomize_weights(onnx.load(light(name)))
    g = import_onnx(model, name=name)
    run_passes(g)
    x = np.random.default_rng(1).standard_normal(g.tensors[g.inputs[0]].shape).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    want = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, {g.inputs[0]: x})[0]
    got = graph_reference.run(g, {g.inputs[0]: x})[0]
    assert got.shape == want.shape
    assert float(want.std()) > 1e-5, "random weights should spread the outputs"
    err = float(np.abs(got - want).max() / np.abs(want).max())
    assert err <= 1e-4, f"{name}: max |y - y_ort| / max |y_ort| = {err:.2e}"


# ---------------------------------------------------------------- errors
def _model(nodes, inputs, inits=(), opset=13, outputs=("y",)):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                          [numpy_helper.from_array(v, n) for n, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _err(model, **kw):
    with pytest.raises(ImportError_) as e:
        import_onnx(model, **kw)
    return str(e.value)


def test_unsupported_op_names_node_type_and_supported_list():
    msg = _err(_model([helper.make_node("Det", ["x"], ["y"], name="my_det")], [("x", [2, 3])]))
    assert "my_det" in msg and "Det" in msg and "supported:" in msg and "Conv" in msg and "LRN" in msg


@pytest.mark.parametrize("node, inputs, inits, opset, expect", [
    (helper.make_node("Relu", ["x"], ["y"], name="r", foo=1), [("x", [2])], [], 13, "attribute(s) foo"),
    (helper.make_node("Pad", ["x"], ["y"], name="p", mode="reflect", pads=[1, 1]), [("x", [2])], [], 9,
     "mode 'reflect'"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="c1d"), [("x", [1, 2, 5])],
     [("w", np.ones((3, 2, 3), np.float32))], 13, "only 2-D"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="cw"), [("x", [1, 2, 5, 5]), ("w", [3, 2, 3, 3])], [], 13,
     "must be a constant"),
    (helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2]), [("x", [1, 1, 4, 4])], [],
     13, "Indices"),
    (helper.make_node("MaxPool", ["x"], ["y"], name="mp9", kernel_shape=[2, 2], dilations=[2, 2]),
     [("x", [1, 1, 4, 4])], [], 9, "dilations"),
    (helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean"], name="ln"), [("x", [2, 3])],
     [("s", np.ones(3, np.float32))], 17, "only Y is supported"),
    (helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), [("x", [4])],
     [("w", np.ones((4, 5), np.float32))], 13, "rank 2 or more"),
    (helper.make_node("Cast", ["x"], ["y"], name="cast", to=8), [("x", [2])], [], 13, "cast to type 8"),
    (helper.make_node("Gather", ["w", "x"], ["y"], name="gf"), [("x", [2])],
     [("w", np.ones((4, 5), np.float32))], 13, "indices must be integers"),
])
def test_unsupported_attribute_or_form(node, inputs, inits, opset, expect):
    outs = [o for o in node.output if o]
    msg = _err(_model([node], inputs, inits, opset, outputs=outs))
    assert node.name in msg and node.op_type in msg and expect in msg, msg


def test_training_outputs_and_custom_domain_refused():
    p = [(n, np.ones(2, np.float32)) for n in ("s", "b", "m", "v")]
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm"], name="bn")
    assert "training statistics" in _err(_model([bn], [("x", [1, 2, 3, 3])], p, 9, outputs=("y", "rm")))
    custom = helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example")
    m = _model([custom], [("x", [2])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    assert "com.example" in _err(m)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(os.urandom(64) + b"\xff" * 64)
    assert "not a valid ONNX model" in _err(str(bad))
    assert "no such file" in _err(str(tmp_path / "missing.onnx"))
    assert "not a valid ONNX model" in _err(b"")


def test_opset_range_and_input_shapes():
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    assert "opset 8" in _err(_model(relu, [("x", [2])], opset=8))
    sym = _model(relu, [("x", ["N", 3])])
    assert "--input-shape" in _err(sym)
    g = import_onnx(sym, (5, 3))
    assert g.tensors["y"].shape == (5, 3)
    assert "does not match" in _err(sym, input_shape=(5, 4))
    assert "input shape given for" in _err(sym, input_shape={"z": (1,)})
    int_in = helper.make_model(helper.make_graph(relu, "t", [helper.make_tensor_value_info("x", TensorProto.INT32, [2])],
                                                 [helper.make_tensor_value_info("y", TensorProto.INT32, [2])]),
                               opset_imports=[helper.make_opsetid("", 13)])
    assert "only float32 and int64" in _err(int_in)


def test_graph_prints_readably():
    g, _ = imported("squeezenet")
    text = str(g)
    assert text.startswith("graph light_squeezenet")
    assert "= conv(" in text and "activation=relu" in text and "-> 1x1000x1x1" in text
    assert len(text.splitlines()) == len(g.nodes) + 4


def test_every_light_model_imports():
    paths = sorted(glob.glob(os.path.join(LIGHT, "light_*.onnx")))
    if not paths:
        pytest.skip("no light models in this onnx")
    for p in paths:
        g = import_onnx(p)
        run_passes(g)
        assert g.nodes and all(g.tensors[o].shape for o in g.outputs)
