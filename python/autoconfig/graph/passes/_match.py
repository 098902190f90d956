"""Pattern helpers the passes share."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Graph, Node


def sole_consumer(g: Graph, tensor: str) -> Optional[Node]:
    """The only node reading `tensor`, if exactly one does and it is not a graph output."""
    if tensor in g.outputs:
        return None
    readers = [n for n in g.nodes if tensor in n.inputs]
    if len(readers) != 1 or readers[0].inputs.count(tensor) != 1:
        return None
    return readers[0]


def plain_conv(n: Optional[Node]) -> bool:
    """A conv with nothing applied after the convolution and bias yet."""
    return (n is not None and n.op == "conv" and n.attrs.get("activation", "none") == "none"
            and n.attrs.get("clip") is None and not (len(n.inputs) > 3 and n.inputs[3]))


def per_channel(g: Graph, name: str, channels: int, rank: int) -> Optional[np.ndarray]:
    """A constant that broadcasts along axis 1 only (scalar, (C,1,1), (1,C,1,1), ...)
    of a rank-`rank` tensor with `channels` channels, as a length-C vector; else None."""
    if not g.is_constant(name):
        return None
    v = g.tensors[name].data
    if v.ndim > rank:
        return None
    full = (1,) * (rank - v.ndim) + v.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] not in (1, channels):
        return None
    return np.broadcast_to(v.reshape(-1), (channels,)).astype(np.float64)


def replace_output(g: Graph, producer: Node, absorbed: Node) -> None:
    """`producer` now writes what `absorbed` wrote; `absorbed` leaves the graph."""
    old = producer.outputs[0]
    producer.outputs = list(absorbed.outputs)
    producer.fused += [absorbed.name] + absorbed.fused
    g.nodes.remove(absorbed)
    if not any(old in n.inputs for n in g.nodes) and old not in g.outputs:
        g.tensors.pop(old, None)


def replace_subgraph(g: Graph, nodes, fused: Node, at: Node) -> None:
    """`fused` takes the place of `at` (one of `nodes`) and `nodes` leave the
    graph with the tensors only they passed between them (not `fused`'s outputs)."""
    g.nodes.insert(g.nodes.index(at), fused)
    for n in nodes:
        g.nodes.remove(n)
        for o in n.outputs:
            if o not in fused.outputs:
                g.tensors.pop(o, None)


def new_constant(g: Graph, base: str, value: np.ndarray) -> str:
    name = g.fresh_name(base)
    g.constant(name, value)
    return name
