"""Matmuls that read one input with constant 2-D weights (attention's Q, K
and V projections) as one GEMM: the weights concatenated along N, the
biases likewise, and a `split` on the last axis giving each consumer its
part. The planner decides per group with the GEMM model (planner.py):

  T(separate) = sum over the matmuls of T_gemm(M, N_i, K)
  T(fused)    = T_gemm(M, sum N_i, K) + T(split: M x sum N_i floats read and written)

and fuses when T(fused) < T(separate): one GEMM packs the shared input once
and runs one parallel region instead of three, which pays for small M (short
sequences) and loses to the split's copy when the GEMMs are large enough to
run near peak on their own. The note says which way each group went.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

from .ir import Graph, Node, Tensor


def _candidate(g: Graph, n: Node) -> bool:
    """A matmul x @ W (+ bias) with nothing else fused: no permutation, residual or activation."""
    if n.op != "matmul" or len(n.inputs) > 3 or any(n.attrs.get(k) for k in ("perm_a", "perm_b", "perm_y")):
        return False
    if n.attrs.get("activation", "none") != "none" or n.attrs.get("alpha", 1.0) != 1.0:
        return False
    w = g.tensors[n.inputs[1]]
    return w.kind == "constant" and len(w.shape) == 2 and g.tensors[n.inputs[0]].kind != "constant"


def groups(g: Graph) -> List[List[Node]]:
    """Matmuls sharing their input (two or more), in graph order."""
    by_input: Dict[str, List[Node]] = {}
    for n in g.nodes:
        if _candidate(g, n):
            by_input.setdefault(n.inputs[0], []).append(n)
    return [ns for ns in by_input.values() if len(ns) > 1]


def fuse(g: Graph, ns: List[Node]) -> Node:
    """Replace the matmuls `ns` by one matmul and a split; returns the matmul."""
    ws = [g.tensors[n.inputs[1]].data for n in ns]
    biases = [g.tensors[n.inputs[2]].data.reshape(-1) if len(n.inputs) > 2 and n.inputs[2]
              else np.zeros(w.shape[1], np.float32) for n, w in zip(ns, ws)]
    x = ns[0].inputs[0]
    first = ns[0]
    wname = g.fresh_name(f"{first.name}.qkv.w")
    g.constant(wname, np.concatenate(ws, axis=1))
    inputs = [x, wname]
    if any(len(n.inputs) > 2 and n.inputs[2] for n in ns):
        bname = g.fresh_name(f"{first.name}.qkv.b")
        g.constant(bname, np.concatenate(biases))
        inputs.append(bname)
    shape = tuple(g.tensors[x].shape[:-1]) + (sum(w.shape[1] for w in ws),)
    out = g.fresh_name(f"{first.outputs[0]}.qkv")
    g.add_tensor(Tensor(out, shape))
    names = [n.name for n in ns]
    mm = Node(f"{first.name}.qkv", "matmul", inputs, [out], {}, fused=names + [f for n in ns for f in n.fused])
    split = Node(f"{first.name}.qkv.split", "split", [out], [o for n in ns for o in n.outputs],
                 {"axis": len(shape) - 1}, fused=[])
    at = g.nodes.index(first)
    for n in ns:
        g.nodes.remove(n)
        for w in n.inputs[1:]:
            if w and not any(w in m.inputs for m in g.nodes):
                g.tensors.pop(w, None)
    g.nodes[at:at] = [mm, split]
    return mm


def plan(g: Graph, gemm_seconds: Callable[[int, int, int], float],
         copy_seconds: Callable[[int], float]) -> List[str]:
    """Fuse the groups where the model says it pays; one note per group."""
    notes = []
    for ns in groups(g):
        x = g.tensors[ns[0].inputs[0]]
        m, k = x.size // x.shape[-1], x.shape[-1]
        widths = [g.tensors[n.inputs[1]].shape[1] for n in ns]
        separate = sum(gemm_seconds(m, w, k) for w in widths)
        fused = gemm_seconds(m, sum(widths), k) + copy_seconds(m * sum(widths))
        names = "/".join(n.name for n in ns)
        verdict: Tuple[str, bool] = ("one GEMM", True) if fused < separate else ("kept separate", False)
        notes.append(f"{len(ns)} matmuls of one input ({names}): {verdict[0]} (fused {fused * 1e3:.3f} ms "
                     f"incl. split vs separate {separate * 1e3:.3f} ms)")
        if verdict[1]:
            fuse(g, ns)
    return notes
