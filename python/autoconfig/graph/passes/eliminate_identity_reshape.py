"""Drop a reshape whose output has its input's shape (exporters emit them
around attention): its readers read the input instead, so a transpose after
it can reach the matmul before it (fold_matmul_transpose). A reshape writing
a graph output, or reading a graph input, stays (the output needs its own
buffer; an input is not in the arena)."""
from __future__ import annotations

from ..ir import Graph


def eliminate_identity_reshape(g: Graph) -> bool:
    changed = False
    for n in [n for n in g.nodes if n.op == "reshape"]:
        x, y = n.inputs[0], n.outputs[0]
        if (g.tensors[x].shape != g.tensors[y].shape or y in g.outputs or g.tensors[x].kind != "intermediate"):
            continue
        for m in g.nodes:
            m.inputs = [x if i == y else i for i in m.inputs]
        g.nodes.remove(n)
        g.tensors.pop(y, None)
        changed = True
    return changed
