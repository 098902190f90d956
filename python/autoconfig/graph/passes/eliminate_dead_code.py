"""Remove nodes none of whose outputs is read (by a node or as a graph
output), and tensors nothing refers to (folded-away weights)."""
from __future__ import annotations

from ..ir import Graph


def eliminate_dead_code(g: Graph) -> bool:
    changed = False
    live = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs):
            keep.append(n)
            live.update(i for i in n.inputs if i)
        else:
            changed = True
    g.nodes = keep[::-1]
    referenced = set(g.inputs) | set(g.outputs)
    for n in g.nodes:
        referenced.update(n.inputs)
        referenced.update(n.outputs)
    for name in [t for t in g.tensors if t not in referenced]:
        del g.tensors[name]
        changed = True
    return changed
