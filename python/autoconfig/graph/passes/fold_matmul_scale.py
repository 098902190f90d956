"""Fold a multiplication or division by a scalar constant into the matmul
producing the other operand (attention's 1/sqrt(d) after Q.K^T) as the
GEMM's alpha, when the matmul feeds only it and has no bias, residual or
activation yet (alpha scales the product alone)."""
from __future__ import annotations

from ..ir import Graph
from ._match import replace_output, sole_consumer


def fold_matmul_scale(g: Graph) -> bool:
    changed = False
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
