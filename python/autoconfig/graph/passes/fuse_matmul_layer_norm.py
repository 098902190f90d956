"""GEMM + bias + residual + LayerNorm as one `matmul_layer_norm` node: a
layer_norm over the last axis whose input is a matmul with a constant 2-D
weight (bias and residual already in its epilogue, fuse_matmul_bias /
fuse_residual), read only by it. The planner decides per node whether the
fused kernel (row blocks normalized while in cache) or the GEMM then a
LayerNorm pass runs (models/attention.py: gemm_layernorm_terms)."""
from __future__ import annotations

from ..ir import Graph, Node
from ._match import sole_consumer


def fuse_matmul_layer_norm(g: Graph) -> bool:
    changed = False
    for ln in [n for n in g.nodes if n.op == "layer_norm"]:
        x = ln.inputs[0]
        rank = len(g.tensors[x].shape)
        mm = g.producers().get(x)
        if (mm is None or mm.op != "matmul" or sole_consumer(g, x) is not ln
                or ln.attrs.get("axis", -1) not in (-1, rank - 1)
                or mm.attrs.get("activation", "none") != "none" or mm.attrs.get("alpha", 1.0) != 1.0
                or any(mm.attrs.get(p) for p in ("perm_a", "perm_b", "perm_y"))
                or len(g.tensors[mm.inputs[1]].shape) != 2 or not g.is_constant(mm.inputs[1])):
            continue
        N = g.tensors[mm.inputs[1]].shape[1]
        gamma = ln.inputs[1]
        beta = ln.inputs[2] if len(ln.inputs) > 2 else ""
        if g.tensors[gamma].size != N or (beta and g.tensors[beta].size != N):
            continue                                # a scalar scale or bias: left unfused
        ins = list(mm.inputs) + [""] * (4 - len(mm.inputs))
        node = Node(f"{ln.name}.matmul", "matmul_layer_norm", ins[:4] + [gamma, beta], list(ln.outputs),
                    {"epsilon": float(ln.attrs.get("epsilon", 1e-5)), "algorithm": "auto"},
                    fused=[mm.name] + mm.fused + [ln.name] + ln.fused)
        g.nodes[g.nodes.index(ln)] = node
        g.nodes.remove(mm)
        g.tensors.pop(x, None)
        changed = True
    return changed
