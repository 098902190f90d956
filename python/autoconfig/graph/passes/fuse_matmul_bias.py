"""Fuse the Add of a bias vector (N values along the last axis, constant)
into the matmul before it: the GEMM adds it in its epilogue. The matmul must
feed only the Add and have no bias, residual, activation or perm_y yet
(the epilogue adds the bias before the residual and the activation)."""
from __future__ import annotations

from ..ir import Graph
from ._match import new_constant, replace_output, sole_consumer


def fuse_matmul_bias(g: Graph) -> bool:
    changed = False
    for add in [n for n in g.nodes if n.op == "add"]:
        producers = g.producers()
        for xi in (0, 1):
            mm, c = producers.get(add.inputs[xi]), add.inputs[1 - xi]
            if (mm is None or mm.op != "matmul" or len(mm.inputs) > 2 or mm.attrs.get("perm_y")
                    or mm.attrs.get("activation", "none") != "none" or not g.is_constant(c)
                    or sole_consumer(g, mm.outputs[0]) is not add):
                continue
            y = g.tensors[mm.outputs[0]].shape
            v = g.tensors[c].data
            if g.tensors[add.outputs[0]].shape != y or v.ndim > len(y) or any(d != 1 for d in v.shape[:-1]) \
                    or v.shape[-1:] != (y[-1],):
                continue
            mm.inputs.append(new_constant(g, f"{mm.name}.bias", v.reshape(-1)))
            replace_output(g, mm, add)
            changed = True
            break
    return changed
