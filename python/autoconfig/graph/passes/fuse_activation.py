"""Fuse an activation into the conv or gemm producing its input, when that
producer feeds only it:
  conv: relu -> activation relu; clip(0, 6) -> relu6; any other clip (or a
        clip after a relu) -> the clip [lo, hi] applied after the activation;
  gemm: relu -> relu; clip(0, 6) -> relu6 (a gemm has no clip).
A relu after a clip, or a second clip, stays a node."""
from __future__ import annotations

from typing import Optional, Tuple

from ..ir import Graph, Node
from ._match import replace_output, sole_consumer


def _bounds(n: Node) -> Optional[Tuple[float, float]]:
    if n.op == "relu":
        return (0.0, None)
    if n.op == "clip":
        return (n.attrs.get("min"), n.attrs.get("max"))
    return None


def _fuse(p: Node, act: Node) -> bool:
    lo, hi = _bounds(act)
    cur = p.attrs.get("activation", "none")
    if p.op == "gemm":
        if cur != "none":
            return False
        if act.op == "relu":
            p.attrs["activation"] = "relu"
        elif lo == 0.0 and hi == 6.0:
            p.attrs["activation"] = "relu6"
        else:
            return False
        return True
    if p.attrs.get("clip") is not None:
        return False
    if act.op == "relu":
        if cur != "none":
            return cur in ("relu", "relu6")      # idempotent: relu(relu(x)) == relu(x)
        p.attrs["activation"] = "relu"
        return True
    if cur == "none" and lo == 0.0 and hi == 6.0:
        p.attrs["activation"] = "relu6"
        return True
    if cur == "none" and lo == 0.0:
        p.attrs["activation"] = "relu"
        if hi is not None:
            p.attrs["clip"] = [None, hi]
        return True
    if lo is None and hi is None:
        return True
    p.attrs["clip"] = [lo, hi]
    return True


def fuse_activation(g: Graph) -> bool:
    changed = False
    for act in [n for n in g.nodes if n.op in ("relu", "clip")]:
        producers = g.producers()
        p = producers.get(act.inputs[0])
        if p is None or p.op not in ("conv", "gemm") or sole_consumer(g, act.inputs[0]) is not act:
            continue
        if _fuse(p, act):
            replace_output(g, p, act)
            changed = True
    return changed
