"""Fuse a residual Add into the conv (or matmul) producing one of its operands:
conv(x) + r -> conv(x, residual=r), matmul(a, b, bias) + r -> matmul(a, b,
bias, r) (the GEMM adds r as its C input), when the producer has no activation or clip
yet (the executor applies act(conv + bias + residual)), feeds only the Add,
and the Add does not broadcast (r has the output's shape). The fused conv
takes the Add's place in the order (both operands exist there). When both
operands are such convs, the later one absorbs the Add."""
from __future__ import annotations

from ..ir import Graph
from ._match import plain_conv, replace_output, sole_consumer


def _plain_matmul(n) -> bool:
    return (n is not None and n.op == "matmul" and n.attrs.get("activation", "none") == "none"
            and not (len(n.inputs) > 3 and n.inputs[3]))


def fuse_residual(g: Graph) -> bool:
    changed = False
    for add in [n for n in g.nodes if n.op == "add"]:
        producers = g.producers()
        out_shape = g.tensors[add.outputs[0]].shape
        if add.inputs[0] == add.inputs[1]:
            continue
        best = None
        for xi in (0, 1):
            p = producers.get(add.inputs[xi])
            r = add.inputs[1 - xi]
            if ((plain_conv(p) or _plain_matmul(p)) and sole_consumer(g, add.inputs[xi]) is add
                    and g.tensors[add.inputs[xi]].shape == out_shape and g.tensors[r].shape == out_shape
                    and g.tensors[r].kind != "constant"):
                if best is None or g.nodes.index(p) > g.nodes.index(best[0]):
                    best = (p, r)
        if best is None:
            continue
        conv, r = best
        while len(conv.inputs) < (4 if conv.op == "conv" else 3):
            conv.inputs.append("")
        if conv.op == "matmul":
            conv.inputs = conv.inputs[:3] + [r]
        conv.inputs[3] = r
        g.nodes.remove(conv)
        g.nodes.insert(g.nodes.index(add), conv)
        replace_output(g, conv, add)
        changed = True
    return changed
