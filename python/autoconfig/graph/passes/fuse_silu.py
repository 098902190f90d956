"""Recognise SiLU (swish) as exporters write it, x * Sigmoid(x) (either
operand order), and replace the two nodes by one `silu` node: one pass
over the tensor instead of three (the sigmoid's read and write, the
multiply's two reads and write). EfficientNet and its relatives put one
after nearly every convolution. It stays a node of its own after the conv
(the conv epilogue has no SiLU). The sigmoid must feed only the multiply."""
from __future__ import annotations

from ..ir import Graph, Node
from ._match import replace_subgraph, sole_consumer


def fuse_silu(g: Graph) -> bool:
    changed = False
    for sig in [n for n in g.nodes if n.op == "sigmoid"]:
        mul = sole_consumer(g, sig.outputs[0])
        if mul is None or mul.op != "mul" or len(mul.inputs) != 2:
            continue
        x = sig.inputs[0]
        other = mul.inputs[1] if mul.inputs[0] == sig.outputs[0] else mul.inputs[0]
        if other != x or g.tensors[x].shape != g.tensors[mul.outputs[0]].shape:
            continue
        silu = Node(f"{mul.name}.silu", "silu", [x], list(mul.outputs), {}, fused=[sig.name, mul.name])
        replace_subgraph(g, [sig, mul], silu, at=mul)
        changed = True
    return changed
