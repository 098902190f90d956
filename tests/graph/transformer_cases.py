"""A BERT-style encoder built with onnx.helper in the form exporters emit
(torch.onnx for transformers 4.x; TF-style layer norms), for the tests that
run without torch: int64 input_ids and attention_mask, word + position
embeddings (a Gather on the ids, a Slice of a position table), the additive
mask from Unsqueeze / Cast / Sub / Mul, the heads split by Reshape (its shape
from a Shape / Gather / Unsqueeze / Concat chain) and Transpose, Q.K^T / sqrt(d)
+ mask -> Softmax -> .V, the heads merged, the output projection + residual
+ layer norm, and the FFN with GELU (Erf form, or the tanh form of
transformers' gelu_new) + residual + layer norm.

Layer norm is either the LayerNormalization op (opset 17) or the
ReduceMean / Sub / Pow / Sqrt / Div subgraph."""
from __future__ import annotations

import math

import numpy as np

onnx = __import__("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


class _Builder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.k = 0

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, value, base="c"):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def weight(self, *shape, scale=0.1, base="w"):
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), base)

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- pieces
    def layer_norm(self, x, hidden, form):
        gamma = self.const((1 + 0.1 * self.rng.standard_normal(hidden)).astype(np.float32), "gamma")
        beta = self.const((0.1 * self.rng.standard_normal(hidden)).astype(np.float32), "beta")
        if form == "op":
            return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12)
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        d = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Pow", [d, self.const(np.float32(2.0))])], axes=[-1], keepdims=1)
        s = self.op("Sqrt", [self.op("Add", [var, self.const(np.float32(1e-12))])])
        return self.op("Add", [self.op("Mul", [self.op("Div", [d, s]), gamma]), beta])

    def gelu(self, x, form):
        if form == "erf":
            e = self.op("Erf", [self.op("Div", [x, self.const(np.float32(math.sqrt(2)))])])
            return self.op("Mul", [self.op("Mul", [x, self.op("Add", [e, self.const(np.float32(1.0))])]),
                                   self.const(np.float32(0.5))])
        cube = self.op("Pow", [x, self.const(np.float32(3.0))])
        inner = self.op("Add", [x, self.op("Mul", [cube, self.const(np.float32(0.044715))])])
        t = self.op("Tanh", [self.op("Mul", [inner, self.const(np.float32(math.sqrt(2 / math.pi)))])])
        half = self.op("Mul", [x, self.const(np.float32(0.5))])
        return self.op("Mul", [half, self.op("Add", [t, self.const(np.float32(1.0))])])

    def linear(self, x, k, n):
        return self.op("Add", [self.op("MatMul", [x, self.weight(k, n)]), self.weight(n, scale=0.02, base="b")])

    def dim(self, x, axis):
        """x.shape[axis] as a 1-element int64 tensor (Shape -> Gather -> Unsqueeze)."""
        g = self.op("Gather", [self.op("Shape", [x]), self.const(np.int64(axis))], axis=0)
        return self.op("Unsqueeze", [g, self.const(np.array([0], np.int64))])


def encoder(*, hidden=32, heads=4, ffn=64, layers=1, vocab=50, max_len=32, gelu="erf", layer_norm="op",
            seed=0, opset=17):
    """The ModelProto: inputs input_ids, attention_mask (int64, batch x sequence,
    both dynamic), output last_hidden_state (batch x sequence x hidden)."""
    b = _Builder(np.random.default_rng(seed))
    d = hidden // heads
    ids, mask = "input_ids", "attention_mask"
    # embeddings: word (Gather on the ids) + position (a Slice of the table up to the sequence length)
    words = b.op("Gather", [b.weight(vocab, hidden, scale=0.5, base="word_emb"), ids], axis=0)
    seq = b.dim(ids, 1)
    pos_ids = b.op("Slice", [b.const(np.arange(max_len, dtype=np.int64)[None, :]), b.const(np.array([0], np.int64)),
                             seq, b.const(np.array([1], np.int64))])
    pos = b.op("Gather", [b.weight(max_len, hidden, scale=0.5, base="pos_emb"), pos_ids], axis=0)
    x = b.layer_norm(b.op("Add", [words, pos]), hidden, layer_norm)
    # additive mask: (1 - mask) * -10000, batch x 1 x 1 x sequence
    m = b.op("Unsqueeze", [b.op("Unsqueeze", [mask, b.const(np.array([1], np.int64))]), b.const(np.array([2], np.int64))])
    m = b.op("Mul", [b.op("Sub", [b.const(np.float32(1.0)), b.op("Cast", [m], to=TensorProto.FLOAT)]),
                     b.const(np.float32(-10000.0))])
    for _ in range(layers):
        batch = b.dim(x, 0)
        seq = b.dim(x, 1)
        split = b.op("Concat", [batch, seq, b.const(np.array([heads, d], np.int64))], axis=0)
        q, k, v = (b.op("Reshape", [b.linear(x, hidden, hidden), split]) for _ in range(3))
        q = b.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = b.op("Transpose", [v], perm=[0, 2, 1, 3])
        s = b.op("Div", [b.op("MatMul", [q, k]), b.const(np.float32(math.sqrt(d)))])
        p = b.op("Softmax", [b.op("Add", [s, m])], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
        merge = b.op("Concat", [batch, seq, b.const(np.array([hidden], np.int64))], axis=0)
        ctx = b.op("Reshape", [ctx, merge])
        x = b.layer_norm(b.op("Add", [b.linear(ctx, hidden, hidden), x]), hidden, layer_norm)
        h = b.gelu(b.linear(x, hidden, ffn), gelu)
        x = b.layer_norm(b.op("Add", [b.linear(h, ffn, hidden), x]), hidden, layer_norm)
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        b.nodes, "encoder",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def feeds(batch, seq, *, vocab=50, pad=0, seed=1):
    """input_ids and attention_mask; the last `pad` positions of every row but
    the first (of the one row when batch is 1) are padding (mask 0)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), np.int64)
    if pad:
        rows = slice(0, 1) if batch == 1 else slice(1, batch)
        mask[rows, seq - pad:] = 0
        ids[rows, seq - pad:] = 0
    return {"input_ids": ids, "attention_mask": mask}
