"""Recognise GELU written out, as exporters emit it, and replace the
subgraph by one `gelu` node; fuse_activation then moves it into the GEMM
producing x:
  erf form   x * 0.5 * (1 + erf(x / sqrt(2)))   (approximate none; the
             division also as a multiplication by 1/sqrt(2))
  tanh form  x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
             (approximate tanh: transformers' gelu_new; x^3 as Pow(x, 3))
either order of the two final multiplications. Every intermediate of the
subgraph must feed only the next node of the pattern."""
from __future__ import annotations

import math
from typing import Optional


from ..ir import Graph, Node
from ._match import replace_subgraph, sole_consumer

RTOL = 1e-4      # constants within 1e-4 of 1/sqrt(2), 1, 0.5: float32 exporters round them


def _scalar(g: Graph, name: str) -> Optional[float]:
    if not g.is_constant(name) or g.tensors[name].size != 1:
        return None
    return float(g.tensors[name].data.reshape(-1)[0])


def _close(v: Optional[float], want: float) -> bool:
    return v is not None and abs(v - want) <= RTOL * abs(want)


def _other(n: Node, name: str) -> str:
    return n.inputs[1] if n.inputs[0] == name else n.inputs[0]


def _erf_input(g: Graph, producers, erf: Node) -> Optional[str]:
    """x when erf reads x / sqrt(2) or x * (1/sqrt(2))."""
    p = producers.get(erf.inputs[0])
    if p is None or sole_consumer(g, p.outputs[0]) is not erf:
        return None
    if p.op == "div" and _close(_scalar(g, p.inputs[1]), math.sqrt(2)):
        return p.inputs[0]
    if p.op == "mul":
        for i in (0, 1):
            if _close(_scalar(g, p.inputs[i]), 1 / math.sqrt(2)):
                return p.inputs[1 - i]
    return None


def _tail(g: Graph, producers, add: Node, x: str, chain):
    """The multiplications by x and 0.5 after `add` = 1 + erf / tanh: (nodes, last) or None."""
    m1 = sole_consumer(g, add.outputs[0])
    if m1 is None or m1.op != "mul":
        return None
    p = _other(m1, add.outputs[0])
    chain = chain + [add, m1]
    if p == x:                      # (x * (1 + f)) * 0.5
        m2 = sole_consumer(g, m1.outputs[0])
        if m2 is None or m2.op != "mul" or not _close(_scalar(g, _other(m2, m1.outputs[0])), 0.5):
            return None
        return chain + [m2], m2
    half = producers.get(p)         # (x * 0.5) * (1 + f)
    if (half is not None and half.op == "mul" and x in half.inputs and sole_consumer(g, p) is m1
            and _close(_scalar(g, _other(half, x)), 0.5)):
        return [half] + chain, m1
    return None


def _plus_one(g: Graph, f: Node) -> Optional[Node]:
    add = sole_consumer(g, f.outputs[0])
    if add is None or add.op != "add" or not _close(_scalar(g, _other(add, f.outputs[0])), 1.0):
        return None
    return add


def _match_erf(g: Graph, producers, erf: Node):
    x = _erf_input(g, producers, erf)
    add = _plus_one(g, erf) if x is not None else None
    if add is None:
        return None
    t = _tail(g, producers, add, x, [producers[erf.inputs[0]], erf])
    return (x, "none") + t if t else None


def _sole_producer(g: Graph, producers, name: str, op: str) -> Optional[Node]:
    p = producers.get(name)
    return p if p is not None and p.op == op and sole_consumer(g, name) is not None else None


def _match_tanh(g: Graph, producers, tanh: Node):
    u = _sole_producer(g, producers, tanh.inputs[0], "mul")
    if u is None:
        return None
    k = next((i for i in (0, 1) if _close(_scalar(g, u.inputs[i]), math.sqrt(2 / math.pi))), None)
    inner = _sole_producer(g, producers, u.inputs[1 - k], "add") if k is not None else None
    if inner is None:
        return None
    for xi in (0, 1):
        x, c = inner.inputs[xi], inner.inputs[1 - xi]
        cm = _sole_producer(g, producers, c, "mul")
        if cm is None:
            continue
        j = next((i for i in (0, 1) if _close(_scalar(g, cm.inputs[i]), 0.044715)), None)
        cube = _sole_producer(g, producers, cm.inputs[1 - j], "pow") if j is not None else None
        if cube is None or cube.inputs[0] != x or _scalar(g, cube.inputs[1]) != 3.0:
            continue
        add = _plus_one(g, tanh)
        t = _tail(g, producers, add, x, [cube, cm, inner, u, tanh]) if add is not None else None
        if t:
            return (x, "tanh") + t
    return None


def fuse_gelu(g: Graph) -> bool:
    changed = False
    for f in [n for n in g.nodes if n.op in ("erf", "tanh")]:
        if f not in g.nodes:
            continue
        producers = g.producers()
        m = _match_erf(g, producers, f) if f.op == "erf" else _match_tanh(g, producers, f)
        if m is None:
            continue
        x, approximate, nodes, last = m
        gelu = Node(f"{last.name}.gelu", "gelu", [x], list(last.outputs), {"approximate": approximate},
                    fused=[n.name for n in nodes])
        replace_subgraph(g, nodes, gelu, at=last)
        changed = True
    return changed
