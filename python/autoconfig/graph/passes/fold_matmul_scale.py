"""Fold a multiplication or division by a scalar constant into a matmul's
alpha:
  after it   the attention's 1/sqrt(d) after Q.K^T, when the matmul feeds only
             it and has no bias, residual or activation yet (alpha scales the
             product alone);
  before it  a scalar multiplying an operand (torch's scaled_dot_product_attention
             exports sqrt(scale) on Q and on K^T), when the Mul feeds only the
             matmul: alpha (c A) B = (alpha c) A B whatever the epilogue, and the
             operand's transpose can then be read in place (fold_matmul_transpose)."""
from __future__ import annotations

from ..ir import Graph
from ._match import replace_output, sole_consumer


def _scalar(g: Graph, name: str):
    if not g.is_constant(name) or g.tensors[name].size != 1:
        return None
    return float(g.tensors[name].data.reshape(-1)[0])


def fold_operand_scale(g: Graph) -> bool:
    changed = False
    for mm in [n for n in g.nodes if n.op == "matmul"]:
        producers = g.producers()
        for i in (0, 1):
            mul = producers.get(mm.inputs[i])
            if mul is None or mul.op != "mul" or sole_consumer(g, mul.outputs[0]) is not mm:
                continue
            for xi in (0, 1):
                c = _scalar(g, mul.inputs[1 - xi])
                x = mul.inputs[xi]
                if c is None or g.tensors[x].shape != g.tensors[mul.outputs[0]].shape:
                    continue
                mm.attrs["alpha"] = mm.attrs.get("alpha", 1.0) * c
                mm.inputs[i] = x
                mm.fused.append(mul.name)
                g.nodes.remove(mul)
                g.tensors.pop(mul.outputs[0], None)
                changed = True
                break
    return changed


def fold_matmul_scale(g: Graph) -> bool:
    changed = fold_operand_scale(g)
    for n in [n for n in g.nodes if n.op in ("mul", "div")]:
        producers = g.producers()
        for xi in ((0, 1) if n.op == "mul" else (0,)):
            mm, c = producers.get(n.inputs[xi]), n.inputs[1 - xi]
            if (mm is None or mm.op != "matmul" or not g.is_constant(c) or g.tensors[c].size != 1
                    or len(mm.inputs) > 2 or mm.attrs.get("activation", "none") != "none"
                    or sole_consumer(g, mm.outputs[0]) is not n
                    or g.tensors[n.outputs[0]].shape != g.tensors[mm.outputs[0]].shape):
                continue
            v = float(g.tensors[c].data.reshape(-1)[0])
            if n.op == "div" and v == 0:
                continue
            mm.attrs["alpha"] = mm.attrs.get("alpha", 1.0) * (v if n.op == "mul" else 1.0 / v)
            replace_output(g, mm, n)
            changed = True
            break
    return changed
