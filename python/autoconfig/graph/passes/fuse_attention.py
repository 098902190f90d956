"""Fuse scaled-dot-product attention into one `attention` node:

    scores = matmul(Q, K^T)            (alpha = the scale, from fold_matmul_scale)
    p      = softmax(scores [, mask])  (the mask from fuse_softmax_mask)
    y      = matmul(p, V)

where Q, K^T, V and y are the head split and merge read or written in place
(the perm_a / perm_b / perm_y of fold_matmul_transpose). The attention node
reads Q, K, V where the projections wrote them and writes y with its heads
merged, so the score matrix is never materialized when the planner picks the
fused kernel (models/attention.py decides, per node, fused or unfused: the
node's `algorithm`). Runs after the matmul folds and the softmax mask."""
from __future__ import annotations

from typing import List, Optional

from ..ir import Graph, Node
from ..shapes import ShapeError, broadcast
from ._match import sole_consumer

IDENTITY = [0, 1, 2, 3]


def _perm(n: Node, key: str) -> List[int]:
    return list(n.attrs.get(key) or IDENTITY)


def _plain(n: Optional[Node]) -> bool:
    """A matmul with nothing fused after the product (a scale alone is allowed)."""
    return (n is not None and n.op == "matmul" and len(n.inputs) == 2
            and n.attrs.get("activation", "none") == "none")


def _inverse(p: List[int]) -> List[int]:
    inv = [0] * len(p)
    for j, i in enumerate(p):
        inv[i] = j
    return inv


def fuse_attention(g: Graph) -> bool:
    changed = False
    for sm in [n for n in g.nodes if n.op == "softmax"]:
        x = sm.inputs[0]
        shape = g.tensors[x].shape
        if len(shape) != 4 or sm.attrs.get("flatten") or sm.attrs.get("axis", -1) not in (-1, 3):
            continue
        producers = g.producers()
        mm1, mm2 = producers.get(x), sole_consumer(g, sm.outputs[0])
        if (not _plain(mm1) or sole_consumer(g, mm1.outputs[0]) is not sm or mm1.attrs.get("perm_y")
                or not _plain(mm2) or mm2.inputs[0] != sm.outputs[0] or mm2.attrs.get("perm_a")
                or mm2.attrs.get("alpha", 1.0) != 1.0):
            continue
        q, k, v = mm1.inputs[0], mm1.inputs[1], mm2.inputs[1]
        if any(len(g.tensors[t].shape) != 4 or g.is_constant(t) for t in (q, k, v)):
            continue
        q_perm, pb, v_perm = _perm(mm1, "perm_a"), _perm(mm1, "perm_b"), _perm(mm2, "perm_b")
        k_perm = [pb[0], pb[1], pb[3], pb[2]]       # K = (K^T)^T: swap the last two logical axes
        y_perm = _inverse(_perm(mm2, "perm_y"))    # logical axis i of [B, H, S, D] is y's axis y_perm[i]
        if any(p[3] != 3 for p in (q_perm, k_perm, v_perm, y_perm)):
            continue                                # the kernel reads and writes rows of D contiguous floats
        B, H, S, Sk = shape
        D = g.tensors[q].shape[q_perm[3]]

        def logical(t: str, p: List[int]):
            return tuple(g.tensors[t].shape[i] for i in p)
        if (logical(q, q_perm) != (B, H, S, D) or logical(k, k_perm) != (B, H, Sk, D)
                or logical(v, v_perm) != (B, H, Sk, D) or logical(mm2.outputs[0], y_perm) != (B, H, S, D)):
            continue                                # batch broadcasting: left to the matmuls
        mask = sm.inputs[1] if len(sm.inputs) > 1 else ""
        if mask:
            try:
                if broadcast(g.tensors[mask].shape, shape) != shape or g.tensors[mask].shape[-1] != Sk:
                    continue
            except ShapeError:
                continue
        scale = float(mm1.attrs.get("alpha", 1.0)) * float(sm.attrs.get("scale", 1.0))
        node = Node(f"{sm.name}.attention", "attention", [q, k, v, mask], list(mm2.outputs),
                    {"heads": int(H), "head_size": int(D), "scale": scale, "q_perm": q_perm, "k_perm": k_perm,
                     "v_perm": v_perm, "y_perm": y_perm, "algorithm": "auto"},
                    fused=[mm1.name] + mm1.fused + [sm.name] + sm.fused + [mm2.name] + mm2.fused)
        at = g.nodes.index(mm2)
        g.nodes[at] = node
        for n in (mm1, sm):
            g.nodes.remove(n)
        for t in (mm1.outputs[0], sm.outputs[0]):
            g.tensors.pop(t, None)
        changed = True
    return changed
