"""Fold the additive attention mask into the softmax reading it:
softmax(x + mask) over the last axis -> softmax(x, mask), the mask
broadcast to x inside the kernel (no scores-sized temporary), when the Add
feeds only the softmax and its output has x's shape."""
from __future__ import annotations

from ..ir import Graph
from ..shapes import ShapeError, broadcast
from ._match import sole_consumer


def fuse_softmax_mask(g: Graph) -> bool:
    changed = False
    for sm in [n for n in g.nodes if n.op == "softmax" and len(n.inputs) == 1]:
        producers = g.producers()
        add = producers.get(sm.inputs[0])
        y = g.tensors[sm.inputs[0]].shape
        if (add is None or add.op != "add" or sole_consumer(g, add.outputs[0]) is not sm
                or sm.attrs.get("flatten") or sm.attrs.get("axis") != len(y) - 1):
            continue
        for xi in (0, 1):
            x, m = add.inputs[xi], add.inputs[1 - xi]
            try:
                ok = g.tensors[x].shape == y and broadcast(g.tensors[m].shape, y) == y
            except ShapeError:
                ok = False
            if ok:
                sm.inputs = [x, m]
                sm.fused.insert(0, add.name)
                g.nodes.remove(add)
                g.tensors.pop(add.outputs[0], None)
                changed = True
                break
    return changed
