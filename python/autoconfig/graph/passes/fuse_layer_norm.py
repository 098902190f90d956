"""Recognise layer normalization written out, as older exporters emit it
(TF/Keras, torch before opset 17):
    mean = ReduceMean(x, last axes); d = x - mean; var = ReduceMean(d^2 or d*d)
    y = d / Sqrt(var + eps) [* gamma] [+ beta]
and replace it by one `layer_norm` node (axis = the first reduced axis,
epsilon, gamma and beta as its scale and bias: ones when absent). The two
ReduceMeans must reduce the same trailing axes with keepdims, and every
intermediate feed only the pattern."""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ..ir import Graph, Node
from ._match import new_constant, replace_subgraph, sole_consumer


def _const_scalar(g: Graph, name: str) -> Optional[float]:
    if not g.is_constant(name) or g.tensors[name].size != 1:
        return None
    return float(g.tensors[name].data.reshape(-1)[0])


def _other(n: Node, name: str) -> str:
    return n.inputs[1] if n.inputs[0] == name else n.inputs[0]


def _trailing_axes(g: Graph, n: Node) -> Optional[int]:
    """The first axis when n reduces the trailing axes of its input with keepdims, else None."""
    rank = len(g.tensors[n.inputs[0]].shape)
    axes = sorted(a % rank for a in n.attrs.get("axes", []))
    if not axes or axes != list(range(axes[0], rank)) or not n.attrs.get("keepdims", 1):
        return None
    return axes[0]


def _readers(g: Graph, name: str) -> List[Node]:
    return [n for n in g.nodes if name in n.inputs]


def _match(g: Graph, mean: Node):
    x = mean.inputs[0]
    axis = _trailing_axes(g, mean)
    sub = sole_consumer(g, mean.outputs[0])
    if axis is None or sub is None or sub.op != "sub" or sub.inputs != [x, mean.outputs[0]]:
        return None
    d = sub.outputs[0]
    readers = _readers(g, d)
    sq = next((n for n in readers if (n.op == "pow" and _const_scalar(g, n.inputs[1]) == 2.0)
               or (n.op == "mul" and n.inputs == [d, d])), None)
    div = next((n for n in readers if n.op == "div" and n.inputs[0] == d), None)
    if sq is None or div is None or len(readers) != 2 or d in g.outputs:
        return None
    var = sole_consumer(g, sq.outputs[0])
    if var is None or var.op != "reduce_mean" or _trailing_axes(g, var) != axis:
        return None
    add = sole_consumer(g, var.outputs[0])
    eps = _const_scalar(g, _other(add, var.outputs[0])) if add is not None and add.op == "add" else None
    sqrt = sole_consumer(g, add.outputs[0]) if eps is not None else None
    if sqrt is None or sqrt.op != "sqrt" or div.inputs[1] != sqrt.outputs[0] or sole_consumer(g, sqrt.outputs[0]) is not div:
        return None
    nodes = [mean, sub, sq, var, add, sqrt, div]
    last, gamma, beta = div, None, None
    n = sole_consumer(g, div.outputs[0])
    shape = g.tensors[x].shape[axis:]
    if n is not None and n.op == "mul" and g.is_constant(_other(n, div.outputs[0])):
        gamma = _other(n, div.outputs[0])
        nodes.append(n)
        last = n
        n = sole_consumer(g, n.outputs[0])
    if n is not None and n.op == "add" and g.is_constant(_other(n, last.outputs[0])):
        beta = _other(n, last.outputs[0])
        nodes.append(n)
        last = n
    for c in (gamma, beta):
        if c is not None and g.tensors[c].size not in (1, int(np.prod(shape))):
            return None
        if c is not None and len(g.tensors[c].shape) > len(shape) + 0 and any(
                d != 1 for d in g.tensors[c].shape[:-len(shape)]):
            return None
    return x, axis, eps, gamma, beta, nodes, last


def fuse_layer_norm(g: Graph) -> bool:
    changed = False
    for mean in [n for n in g.nodes if n.op == "reduce_mean"]:
        if mean not in g.nodes:
            continue
        m = _match(g, mean)
        if m is None:
            continue
        x, axis, eps, gamma, beta, nodes, last = m
        shape = g.tensors[x].shape[axis:]
        n_norm = int(np.prod(shape))
        scale = new_constant(g, f"{last.name}.scale", np.broadcast_to(
            g.tensors[gamma].data.reshape(-1) if gamma else np.ones(1, np.float32), (n_norm,)).copy())
        ins = [x, scale]
        if beta:
            ins.append(new_constant(g, f"{last.name}.bias", np.broadcast_to(
                g.tensors[beta].data.reshape(-1), (n_norm,)).copy()))
        ln = Node(f"{last.name}.layer_norm", "layer_norm", ins, list(last.outputs),
                  {"axis": axis, "epsilon": eps}, fused=[n.name for n in nodes])
        replace_subgraph(g, nodes, ln, at=last)
        changed = True
    return changed
