"""Fold a Mul, Add, Sub or Div by a per-channel constant (a scalar or a
vector along axis 1) into the conv or channel_affine that produces its
other operand, when that producer feeds only it. The output shape must be
the producer's (the constant does not broadcast the tensor up)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from ._match import new_constant, per_channel, plain_conv, replace_output, sole_consumer
from .fold_batchnorm import fold_affine_into_conv


def _as_affine(op: str, v: np.ndarray, const_first: bool):
    """(scale, shift) such that op(x, v) (or op(v, x)) == x * scale + shift; None if not affine in x."""
    if op == "mul":
        return v, np.zeros_like(v)
    if op == "add":
        return np.ones_like(v), v
    if op == "sub":
        return (-np.ones_like(v), v) if const_first else (np.ones_like(v), -v)
    if op == "div" and not const_first and np.all(v != 0):
        return 1.0 / v, np.zeros_like(v)
    return None


def fold_constant_mul_add(g: Graph) -> bool:
    changed = False
    for n in [n for n in g.nodes if n.op in ("mul", "add", "sub", "div")]:
        if n not in g.nodes:
            continue
        producers = g.producers()
        for xi in (0, 1):
            x, c = n.inputs[xi], n.inputs[1 - xi]
            p = producers.get(x)
            if p is None or not (plain_conv(p) or (p.op == "channel_affine" and not p.attrs.get("relu"))):
                continue
            shape = g.tensors[x].shape
            if g.tensors[n.outputs[0]].shape != shape or len(shape) < 2:
                continue
            v = per_channel(g, c, shape[1], len(shape))
            if v is None or sole_consumer(g, x) is not n:
                continue
            aff = _as_affine(n.op, v, const_first=(xi == 1))
            if aff is None:
                continue
            scale, shift = aff
            if p.op == "conv":
                if not g.is_constant(p.inputs[1]):
                    continue
                fold_affine_into_conv(g, p, scale, shift)
            else:
                s0 = g.tensors[p.inputs[1]].data.astype(np.float64)
                b0 = g.tensors[p.inputs[2]].data.astype(np.float64)
                p.inputs[1] = new_constant(g, f"{p.name}.scale", s0 * scale)
                p.inputs[2] = new_constant(g, f"{p.name}.shift", b0 * scale + shift)
            replace_output(g, p, n)
            changed = True
            break
    return changed
