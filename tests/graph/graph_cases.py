"""Small ONNX models built with onnx.helper, one per operator / attribute /
opset variant the importer supports: the single list the op tests run
(tests/graph/test_graph_ops.py). Each case: id, opset, nodes, inputs {name: shape},
initializers {name: array}, outputs. Values are seeded per case."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

onnx = __import__("pytest").importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


@dataclass
class Case:
    id: str
    opset: int
    nodes: list
    inputs: Dict[str, Sequence[int]]
    inits: Dict[str, np.ndarray] = field(default_factory=dict)
    outputs: Optional[List[str]] = None
    inits_as_inputs: bool = False        # list initializers among graph inputs (older exporters)
    positive_inputs: bool = False
    oracle: str = "onnxruntime"          # or "onnx-reference" where onnxruntime refuses the case

    def model(self):
        outs = self.outputs or [self.nodes[-1].output[0]]
        inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in self.inputs.items()]
        inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in self.inits.items()]
        if self.inits_as_inputs:
            inputs += [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype),
                                                     list(np.asarray(v).shape)) for n, v in self.inits.items()]
        g = helper.make_graph(self.nodes, self.id, inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="tests")
        m.ir_version = 7 if self.opset <= 12 else (8 if self.opset <= 15 else 9 if self.opset <= 18 else 10)
        return m

    def feeds(self, rng) -> Dict[str, np.ndarray]:
        out = {}
        for n, s in self.inputs.items():
            x = rng.standard_normal(s).astype(np.float32)
            out[n] = np.abs(x) + 0.1 if self.positive_inputs else x
        return out


def N(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs if isinstance(outs, list) else [outs], name=name or f"{op.lower()}_{outs}",
                            **attrs)


def _r(seed, *shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _i64(*v):
    return np.asarray(v, dtype=np.int64)


X4 = {"x": (1, 4, 7, 9)}
CASES: List[Case] = []


def case(*args, **kw):
    CASES.append(Case(*args, **kw))


# ---- Conv: every attribute
for op_set in (9, 21):
    case(f"conv_basic_o{op_set}", op_set, [N("Conv", ["x", "w", "b"], "y")], X4,
         {"w": _r(1, 6, 4, 3, 3), "b": _r(2, 6)})
case("conv_pads_strides_dil", 13, [N("Conv", ["x", "w"], "y", pads=[1, 2, 0, 3], strides=[2, 1], dilations=[1, 2],
                                     kernel_shape=[3, 3])], {"x": (2, 4, 11, 12)}, {"w": _r(3, 5, 4, 3, 3)})
case("conv_groups", 11, [N("Conv", ["x", "w", "b"], "y", group=2, pads=[1, 1, 1, 1])], {"x": (1, 4, 6, 6)},
     {"w": _r(4, 6, 2, 3, 3), "b": _r(5, 6)})
case("conv_depthwise", 11, [N("Conv", ["x", "w"], "y", group=4, strides=[2, 2], pads=[1, 1, 1, 1])], X4,
     {"w": _r(6, 4, 1, 3, 3)})
for mode in ("SAME_UPPER", "SAME_LOWER", "VALID"):
    case(f"conv_autopad_{mode.lower()}", 11, [N("Conv", ["x", "w"], "y", auto_pad=mode, strides=[2, 2])],
         {"x": (1, 3, 8, 7)}, {"w": _r(7, 2, 3, 4, 3)})
case("conv_same_upper_dilated", 18, [N("Conv", ["x", "w"], "y", auto_pad="SAME_UPPER", dilations=[2, 2])],
     {"x": (1, 3, 9, 8)}, {"w": _r(8, 2, 3, 2, 3)}, oracle="onnx-reference")   # onnxruntime refuses it
case("conv_same_lower_o18", 18, [N("Conv", ["x", "w"], "y", auto_pad="SAME_LOWER")],
     {"x": (1, 3, 9, 8)}, {"w": _r(8, 2, 3, 2, 4)})
case("conv_1x1_inits_as_inputs", 9, [N("Conv", ["x", "w", "b"], "y")], X4, {"w": _r(9, 8, 4, 1, 1), "b": _r(10, 8)},
     inits_as_inputs=True)

# ---- Gemm, MatMul
case("gemm_o9", 9, [N("Gemm", ["a", "b", "c"], "y", alpha=0.5, beta=2.0, transB=1)], {"a": (3, 5)},
     {"b": _r(11, 4, 5), "c": _r(12, 4)})
case("gemm_transa_o11_noc", 11, [N("Gemm", ["a", "b"], "y", transA=1)], {"a": (5, 3)}, {"b": _r(13, 5, 4)})
case("gemm_c_scalar_o13", 13, [N("Gemm", ["a", "b", "c"], "y")], {"a": (2, 3)},
     {"b": _r(14, 3, 4), "c": _r(15, 1)})
case("gemm_c_matrix", 13, [N("Gemm", ["a", "b", "c"], "y", transA=1, transB=1)], {"a": (3, 2)},
     {"b": _r(16, 4, 3), "c": _r(17, 2, 4)})
case("matmul_2d", 13, [N("MatMul", ["a", "b"], "y")], {"a": (3, 5)}, {"b": _r(18, 5, 4)})
case("matmul_3d_activation_b", 13, [N("MatMul", ["a", "b"], "y")], {"a": (2, 3, 5), "b": (5, 4)})

# ---- BatchNormalization
bn_p = {"s": _r(19, 4), "bb": _r(20, 4), "m": _r(21, 4), "v": np.abs(_r(22, 4)) + 0.5}
for op_set in (9, 15):
    case(f"batchnorm_unfused_o{op_set}", op_set, [N("BatchNormalization", ["x", "s", "bb", "m", "v"], "y",
                                                    epsilon=1e-3)], X4, bn_p)
case("batchnorm_2d_input", 9, [N("BatchNormalization", ["x", "s", "bb", "m", "v"], "y")], {"x": (3, 4)}, bn_p)

# ---- activations
for op, kw, o in (("Relu", {}, 9), ("Sigmoid", {}, 9), ("Tanh", {}, 13), ("LeakyRelu", {}, 9),
                  ("LeakyRelu", {"alpha": 0.3}, 16), ("HardSigmoid", {}, 9),
                  ("HardSigmoid", {"alpha": 0.1, "beta": 0.4}, 9), ("HardSwish", {}, 14)):
    case(f"{op.lower()}{'_' + '_'.join(kw) if kw else ''}_o{o}", o, [N(op, ["x"], "y", **kw)], {"x": (2, 3, 4, 5)})
case("clip_attr_o9", 9, [N("Clip", ["x"], "y", min=-0.5, max=0.7)], {"x": (2, 3, 4)})
case("clip_attr_default_o10", 10, [N("Clip", ["x"], "y", min=0.0)], {"x": (2, 3, 4)})
case("clip_inputs_o11", 11, [N("Clip", ["x", "lo", "hi"], "y")], {"x": (2, 3, 4)},
     {"lo": np.float32(-0.2), "hi": np.float32(0.3)})
case("clip_max_only_o13", 13, [N("Clip", ["x", "", "hi"], "y")], {"x": (2, 3, 4)}, {"hi": np.float32(0.3)})
case("clip_none_o21", 21, [N("Clip", ["x"], "y")], {"x": (2, 3, 4)})

# ---- broadcasting arithmetic
for op in ("Add", "Sub", "Mul", "Div"):
    case(f"{op.lower()}_channel_const", 13, [N(op, ["x", "c"], "y")], X4, {"c": np.abs(_r(23, 4, 1, 1)) + 0.5})
    case(f"{op.lower()}_const_first", 9, [N(op, ["c", "x"], "y")], X4, {"c": np.abs(_r(24, 1, 4, 1, 1)) + 0.5},
         positive_inputs=op == "Div")
    case(f"{op.lower()}_both_broadcast", 14, [N(op, ["a", "b"], "y")], {"a": (1, 3, 1, 5), "b": (2, 1, 4, 1)},
         positive_inputs=op == "Div")
case("add_scalar", 13, [N("Add", ["x", "c"], "y")], X4, {"c": np.float32(0.25)})
case("mul_row_vector", 13, [N("Mul", ["x", "c"], "y")], X4, {"c": _r(25, 9)})
case("sum_three", 13, [N("Sum", ["a", "b", "c"], "y")], {"a": (2, 3, 4), "b": (3, 4), "c": (2, 1, 1)})
case("sum_one", 9, [N("Sum", ["a"], "s"), N("Relu", ["s"], "y")], {"a": (2, 3)})

# ---- structure
case("concat_axis1", 9, [N("Concat", ["a", "b"], "y", axis=1)], {"a": (1, 2, 3, 3), "b": (1, 5, 3, 3)})
case("concat_negative_axis_o11", 11, [N("Concat", ["a", "b", "c"], "y", axis=-1)],
     {"a": (2, 3, 1), "b": (2, 3, 4)}, {"c": _r(26, 2, 3, 2)})
case("split_equal_o9", 9, [N("Split", ["x"], ["p", "q"], axis=1)], {"x": (1, 4, 3, 3)}, outputs=["p", "q"])
case("split_attr_o11", 11, [N("Split", ["x"], ["p", "q", "r"], axis=-1, split=[1, 3, 5])], X4,
     outputs=["p", "q", "r"])
case("split_input_o13", 13, [N("Split", ["x", "s"], ["p", "q"], axis=1)], X4, {"s": _i64(3, 1)}, outputs=["p", "q"])
case("split_num_outputs_o18", 18, [N("Split", ["x"], ["p", "q", "r"], axis=3, num_outputs=3)], X4,
     outputs=["p", "q", "r"])
for ax in (0, 1, 2, -1):
    case(f"flatten_axis{ax}", 13 if ax < 0 else 9, [N("Flatten", ["x"], "y", axis=ax)], {"x": (2, 3, 4, 5)})
case("reshape_zero_minus1", 13, [N("Reshape", ["x", "s"], "y")], X4, {"s": _i64(0, -1, 9)})
case("reshape_allowzero_o14", 14, [N("Reshape", ["x", "s"], "y", allowzero=0)], X4, {"s": _i64(0, 0, -1)})
case("reshape_shape_chain", 9, [
    N("Shape", ["x"], "sh"), N("Gather", ["sh", "i0"], "n", axis=0), N("Unsqueeze", ["n"], "nu", axes=[0]),
    N("Concat", ["nu", "m1"], "target", axis=0), N("Reshape", ["x", "target"], "y")],
    X4, {"i0": np.asarray(0, dtype=np.int64), "m1": _i64(-1)})
case("reshape_constant_of_shape_weights", 9, [
    N("ConstantOfShape", ["ws"], "w", value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.125])),
    N("Conv", ["x", "w"], "y")], X4, {"ws": _i64(3, 4, 1, 1)})
case("channel_shuffle", 13, [N("Reshape", ["x", "s1"], "a"), N("Transpose", ["a"], "b", perm=[0, 2, 1, 3, 4]),
                             N("Reshape", ["b", "s2"], "y")], {"x": (1, 6, 3, 4)},
     {"s1": _i64(1, 2, 3, 3, 4), "s2": _i64(1, 6, 3, 4)})
case("transpose_default_perm", 9, [N("Transpose", ["x"], "y")], {"x": (2, 3, 4)})
case("squeeze_attr_o11", 11, [N("Squeeze", ["x"], "y", axes=[0, -1])], {"x": (1, 3, 4, 1)})
case("squeeze_all_o9", 9, [N("Squeeze", ["x"], "y")], {"x": (1, 3, 1, 4)})
case("squeeze_input_o13", 13, [N("Squeeze", ["x", "ax"], "y")], {"x": (1, 3, 1, 4)}, {"ax": _i64(2)})
case("unsqueeze_attr_o9", 9, [N("Unsqueeze", ["x"], "y", axes=[0, 3])], {"x": (3, 4)})
case("unsqueeze_input_o13", 13, [N("Unsqueeze", ["x", "ax"], "y")], {"x": (3, 4)}, {"ax": _i64(-1, 0)})

# ---- pooling
case("maxpool_pads_strides_o9", 9, [N("MaxPool", ["x"], "y", kernel_shape=[3, 2], pads=[1, 0, 1, 1],
                                      strides=[2, 2])], {"x": (1, 3, 9, 8)})
case("maxpool_ceil_dilations_o12", 12, [N("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2],
                                          ceil_mode=1, dilations=[1, 2], pads=[1, 1, 0, 0])], {"x": (1, 2, 10, 11)})
case("maxpool_ceil_o10", 10, [N("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
     {"x": (1, 2, 8, 8)})
case("maxpool_same_upper", 11, [N("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2],
                                  auto_pad="SAME_UPPER")], {"x": (1, 2, 8, 7)})
for cip in (0, 1):
    case(f"avgpool_pads_cip{cip}_o9", 9, [N("AveragePool", ["x"], "y", kernel_shape=[3, 3], pads=[1, 1, 2, 0],
                                            strides=[2, 1], count_include_pad=cip)], {"x": (1, 2, 7, 6)})
    case(f"avgpool_ceil_cip{cip}_o11", 11, [N("AveragePool", ["x"], "y", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                              strides=[2, 2], ceil_mode=1, count_include_pad=cip)],
         {"x": (1, 2, 8, 9)})
for op in ("MaxPool", "AveragePool"):      # the last window would start in the end padding: dropped
    case(f"{op.lower()}_ceil_last_window_in_padding", 11, [N(op, ["x"], "y", kernel_shape=[3, 3], strides=[3, 3],
                                                            pads=[1, 1, 1, 1], ceil_mode=1)], {"x": (1, 2, 5, 5)})
case("avgpool_dilations_o19", 19, [N("AveragePool", ["x"], "y", kernel_shape=[2, 2], dilations=[2, 2],
                                     pads=[1, 1, 1, 1])], {"x": (1, 2, 7, 7)})
case("avgpool_same_lower", 11, [N("AveragePool", ["x"], "y", kernel_shape=[3, 2], strides=[2, 2],
                                  auto_pad="SAME_LOWER")], {"x": (1, 2, 7, 8)})
case("global_avg_pool", 9, [N("GlobalAveragePool", ["x"], "y")], X4)
case("global_max_pool", 9, [N("GlobalMaxPool", ["x"], "y")], X4)

# ---- softmax family, LRN, Pad, ReduceMean
for op in ("Softmax", "LogSoftmax"):
    case(f"{op.lower()}_axis1_flatten_o11", 11, [N(op, ["x"], "y", axis=1)], {"x": (2, 3, 4)})
    case(f"{op.lower()}_axis1_o13", 13, [N(op, ["x"], "y", axis=1)], {"x": (2, 3, 4)})
    case(f"{op.lower()}_default_o9", 9, [N(op, ["x"], "y")], {"x": (2, 3, 4)})
    case(f"{op.lower()}_default_o13", 13, [N(op, ["x"], "y")], {"x": (2, 3, 4)})
case("lrn", 9, [N("LRN", ["x"], "y", size=3, alpha=2e-4, beta=0.75, bias=1.0)], {"x": (1, 6, 3, 3)})
# (an even LRN size has no oracle here: onnxruntime accepts odd sizes only, and
# onnx.reference's LRN loops over the batch axis instead of the channels)
case("lrn_size5", 13, [N("LRN", ["x"], "y", size=5, alpha=1e-3, beta=0.5, bias=2.0)], {"x": (1, 7, 2, 3)})
case("pad_attr_o9", 9, [N("Pad", ["x"], "y", pads=[0, 0, 1, 2, 0, 1, 0, 3], value=0.5)], X4)
case("pad_inputs_o13", 13, [N("Pad", ["x", "p", "v"], "y")], X4,
     {"p": _i64(0, 1, 2, 0, 0, 0, 1, 1), "v": np.float32(-1.0)})
case("pad_axes_o18", 18, [N("Pad", ["x", "p", "", "ax"], "y")], X4, {"p": _i64(1, 2, 0, 3), "ax": _i64(2, -1)})
case("reduce_mean_keep_o13", 13, [N("ReduceMean", ["x"], "y", axes=[2, 3])], X4)
case("reduce_mean_nokeep_o11", 11, [N("ReduceMean", ["x"], "y", axes=[-1, -2], keepdims=0)], X4)
case("reduce_mean_input_o18", 18, [N("ReduceMean", ["x", "ax"], "y", keepdims=1)], X4, {"ax": _i64(2, 3)})

# ---- dropped and constant ops
case("dropout_o9", 9, [N("Dropout", ["x"], "d", ratio=0.3), N("Relu", ["d"], "y")], {"x": (2, 3)})
case("dropout_o13", 13, [N("Dropout", ["x", "r"], "d"), N("Relu", ["d"], "y")], {"x": (2, 3)},
     {"r": np.float32(0.5)})
case("identity_output", 13, [N("Relu", ["x"], "r"), N("Identity", ["r"], "y")], {"x": (2, 3)})
case("two_outputs_one_tensor", 13, [N("Relu", ["x"], "r"), N("Identity", ["r"], "y"), N("Identity", ["r"], "z")],
     {"x": (2, 3)}, outputs=["y", "z"])
case("output_also_read", 13, [N("Relu", ["x"], "y"), N("Sigmoid", ["y"], "z")], {"x": (2, 3)}, outputs=["y", "z"])
case("identity_of_input", 13, [N("Identity", ["x"], "y")], {"x": (2, 3)})
case("constant_value", 9, [N("Constant", [], "c", value=numpy_helper.from_array(_r(27, 3), "c")),
                           N("Add", ["x", "c"], "y")], {"x": (2, 3)})
case("constant_value_floats_o13", 13, [N("Constant", [], "c", value_floats=[1.0, 2.0, 3.0]),
                                       N("Mul", ["x", "c"], "y")], {"x": (2, 3)})
case("constant_of_shape_add", 9, [N("ConstantOfShape", ["s"], "c", value=helper.make_tensor(
    "v", TensorProto.FLOAT, [1], [1.5])), N("Add", ["x", "c"], "y")], {"x": (2, 3)}, {"s": _i64(2, 3)})

# ---- fusion patterns (the passes)
w8, b8 = _r(30, 8, 4, 3, 3, scale=0.3), _r(31, 8)
bn8 = {"s8": _r(32, 8), "b8": _r(33, 8), "m8": _r(34, 8), "v8": np.abs(_r(35, 8)) + 0.5}
case("fuse_conv_bn_relu", 9, [N("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1]),
                              N("BatchNormalization", ["c", "s8", "b8", "m8", "v8"], "n"), N("Relu", ["n"], "y")],
     X4, {"w": w8, "b": b8, **bn8})
case("fuse_conv_bn_residual_relu", 13, [
    N("Conv", ["x", "w"], "c", pads=[1, 1, 1, 1]), N("BatchNormalization", ["c", "s8", "b8", "m8", "v8"], "n"),
    N("Conv", ["x", "w2"], "d"), N("Add", ["n", "d"], "a"), N("Relu", ["a"], "y")],
    X4, {"w": w8, "w2": _r(36, 8, 4, 1, 1), **bn8})
case("fuse_conv_relu6_clip_o11", 11, [N("Conv", ["x", "w", "b"], "c"), N("Clip", ["c", "lo", "hi"], "y")], X4,
     {"w": w8, "b": b8, "lo": np.float32(0), "hi": np.float32(6)})
case("fuse_conv_clip_o9", 9, [N("Conv", ["x", "w", "b"], "c"), N("Clip", ["c"], "y", min=-0.5, max=0.5)], X4,
     {"w": w8, "b": b8})
case("fuse_conv_mul_add_consts", 13, [N("Conv", ["x", "w"], "c"), N("Mul", ["c", "k"], "m"),
                                      N("Add", ["m", "k2"], "y")], X4,
     {"w": w8, "k": _r(37, 8, 1, 1), "k2": _r(38, 1, 8, 1, 1)})
case("no_fuse_two_consumers", 13, [N("Conv", ["x", "w", "b"], "c"), N("Relu", ["c"], "r"),
                                   N("Add", ["c", "r"], "y")], X4, {"w": w8, "b": b8})
case("no_fuse_broadcast_add", 13, [N("Conv", ["x", "w", "b"], "c", strides=[2, 2]), N("Add", ["c", "z"], "y")],
     {"x": (1, 4, 7, 9), "z": (1, 8, 1, 1)}, {"w": w8, "b": b8})
case("fuse_gemm_relu", 13, [N("Gemm", ["a", "b", "c"], "g", transB=1), N("Relu", ["g"], "y")], {"a": (2, 5)},
     {"b": _r(39, 4, 5), "c": _r(40, 4)})
case("se_block", 13, [N("GlobalAveragePool", ["x"], "p"), N("Conv", ["p", "w1", "b1"], "q"), N("Relu", ["q"], "r"),
                      N("Conv", ["r", "w2", "b2"], "s"), N("HardSigmoid", ["s"], "t"), N("Mul", ["x", "t"], "y")],
     X4, {"w1": _r(41, 2, 4, 1, 1), "b1": _r(42, 2), "w2": _r(43, 4, 2, 1, 1), "b2": _r(44, 4)})

# ---- SiLU (x * Sigmoid(x)) recognised as one node (passes/fuse_silu.py), and an EfficientNet block:
# expand 1x1 + SiLU, depthwise 3x3 + SiLU, squeeze-and-excitation with SiLU and a sigmoid gate,
# project 1x1 + residual, on 32 channels so the planner keeps them blocked
case("silu_after_conv", 13, [N("Conv", ["x", "w", "b"], "c"), N("Sigmoid", ["c"], "s"), N("Mul", ["c", "s"], "y")],
     X4, {"w": w8, "b": b8})
case("silu_operands_swapped", 14, [N("Sigmoid", ["x"], "s"), N("Mul", ["s", "x"], "y")], {"x": (2, 3, 5, 7)})
case("no_silu_sigmoid_also_read", 13, [N("Sigmoid", ["x"], "s"), N("Mul", ["x", "s"], "m"), N("Add", ["m", "s"], "y")],
     {"x": (2, 3, 4)})
case("no_silu_sigmoid_of_another", 13, [N("Sigmoid", ["x"], "s"), N("Mul", ["z", "s"], "y")],
     {"x": (2, 3, 4), "z": (2, 3, 4)})
case("efficientnet_block", 13, [
    N("Conv", ["x", "we", "be"], "e"), N("Sigmoid", ["e"], "es"), N("Mul", ["e", "es"], "ea"),
    N("Conv", ["ea", "wd", "bd"], "d", group=64, pads=[1, 1, 1, 1]), N("Sigmoid", ["d"], "ds"),
    N("Mul", ["d", "ds"], "da"),
    N("GlobalAveragePool", ["da"], "p"), N("Conv", ["p", "w1", "b1"], "q"), N("Sigmoid", ["q"], "qs"),
    N("Mul", ["q", "qs"], "qa"), N("Conv", ["qa", "w2", "b2"], "g"), N("Sigmoid", ["g"], "gs"),
    N("Mul", ["da", "gs"], "se"),
    N("Conv", ["se", "wp", "bp"], "pr"), N("Add", ["pr", "x"], "y")],
    {"x": (1, 32, 9, 11)},
    {"we": _r(45, 64, 32, 1, 1, scale=0.2), "be": _r(46, 64), "wd": _r(47, 64, 1, 3, 3, scale=0.3),
     "bd": _r(48, 64), "w1": _r(49, 8, 64, 1, 1, scale=0.2), "b1": _r(50, 8), "w2": _r(51, 64, 8, 1, 1, scale=0.3),
     "b2": _r(52, 64), "wp": _r(53, 32, 64, 1, 1, scale=0.2), "bp": _r(54, 32)})

# ---- a pre-activation batch-norm + relu before a conv (DenseNet): one channel_affine with relu
case("bn_relu_before_conv", 13, [N("BatchNormalization", ["x", "s", "bb", "m", "v"], "a"), N("Relu", ["a"], "r"),
                                 N("Conv", ["r", "w", "b"], "y", pads=[1, 1, 1, 1])], X4, {**bn_p, "w": w8, "b": b8})
case("bn_relu_both_read", 13, [N("BatchNormalization", ["x", "s", "bb", "m", "v"], "a"), N("Relu", ["a"], "r"),
                               N("Add", ["a", "r"], "y")], X4, bn_p)
case("bn_relu_then_scale", 13, [N("BatchNormalization", ["x", "s", "bb", "m", "v"], "a"), N("Relu", ["a"], "r"),
                                N("Mul", ["r", "k"], "y")], X4, {**bn_p, "k": _r(55, 4, 1, 1)})

# ---- grouped 3x3 convolutions as in RegNet (16 channels per group) and ResNeXt (4 per group): the planner
# may run them as one direct conv per group, or per 16 / 8 lanes' worth of groups with block-diagonal weights
gw16 = _r(56, 64, 16, 3, 3, scale=0.2)
case("grouped_regnet_block", 13, [N("Conv", ["x", "wa", "ba"], "a"), N("Relu", ["a"], "ar"),
                                  N("Conv", ["ar", "wg", "bg"], "g", group=4, pads=[1, 1, 1, 1]), N("Relu", ["g"], "gr"),
                                  N("Conv", ["gr", "wc", "bc"], "c"), N("Add", ["c", "x"], "y")],
     {"x": (1, 32, 12, 14)},
     {"wa": _r(57, 64, 32, 1, 1, scale=0.2), "ba": _r(58, 64), "wg": gw16, "bg": _r(59, 64),
      "wc": _r(60, 32, 64, 1, 1, scale=0.2), "bc": _r(61, 32)})
case("grouped_resnext_4_per_group", 13, [N("Conv", ["x", "wg", "bg"], "y", group=8, pads=[1, 1, 1, 1],
                                           strides=[2, 2])],
     {"x": (1, 32, 13, 13)}, {"wg": _r(62, 32, 4, 3, 3, scale=0.3), "bg": _r(63, 32)})
