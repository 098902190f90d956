"""Read transposed operands in place: a `transpose` feeding a matmul's a or
b becomes the matmul's perm_a / perm_b (the GEMM's packing reads the strided
view: the per-head Q, K^T and V of attention are never copied), and a
transpose reading only a matmul's output, with the last axis kept last,
becomes its perm_y (the GEMM writes its rows where the transpose would put
them: the merge of the heads). The transpose node is dropped once nothing
else reads it (eliminate_dead_code)."""
from __future__ import annotations

from ..ir import Graph
from ._match import replace_output, sole_consumer


def _compose(outer, inner):
    """perm of transpose(transpose(x, inner), outer)."""
    return [inner[p] for p in outer] if inner else list(outer)


def fold_matmul_transpose(g: Graph) -> bool:
    changed = False
    producers = g.producers()
    for mm in [n for n in g.nodes if n.op == "matmul"]:
        for i, key in ((0, "perm_a"), (1, "perm_b")):
            t = producers.get(mm.inputs[i])
            if t is None or t.op != "transpose" or g.tensors[t.inputs[0]].kind == "constant":
                continue
            mm.attrs[key] = _compose(t.attrs["perm"], None) if not mm.attrs.get(key) else \
                _compose(mm.attrs[key], t.attrs["perm"])
            mm.inputs[i] = t.inputs[0]
            mm.fused.append(t.name)
            changed = True
        t = sole_consumer(g, mm.outputs[0])
        if (t is not None and t.op == "transpose" and t.attrs["perm"][-1] == len(t.attrs["perm"]) - 1
                and not mm.attrs.get("perm_y") and not (len(mm.inputs) > 3 and mm.inputs[3])):
            mm.attrs["perm_y"] = list(t.attrs["perm"])
            replace_output(g, mm, t)
            producers = g.producers()
            changed = True
    return changed
