"""Fuse an activation into the conv, gemm or matmul producing its input,
when that producer feeds only it:
  conv: relu -> activation relu; clip(0, 6) -> relu6; any other clip (or a
        clip after a relu) -> the clip [lo, hi] applied after the activation;
  gemm, matmul: relu -> relu; clip(0, 6) -> relu6 (no clip); gelu ->
        gelu_erf / gelu_tanh (the GEMM epilogues compute ONNX's formulas:
        erf to 1.5e-7 absolute, the tanh form exactly; tests/graph compare);
  channel_affine (an unfused batch-norm): relu -> relu: true (DenseNet's
        pre-activation batch-norm + relu, one pass over the tensor, not two).
A relu after a clip, or a second clip, stays a node."""
from __future__ import annotations

from typing import Optional, Tuple

from ..ir import Graph, Node
from ._match import replace_output, sole_consumer


GELU_EPILOGUE = {"none": "gelu_erf", "tanh": "gelu_tanh"}


def _bounds(n: Node) -> Optional[Tuple[float, float]]:
    if n.op == "relu":
        return (0.0, None)
    if n.op == "clip":
        return (n.attrs.get("min"), n.attrs.get("max"))
    return None


def _fuse(p: Node, act: Node) -> bool:
    if p.op == "channel_affine":
        if act.op != "relu" or p.attrs.get("relu"):
            return False
        p.attrs["relu"] = True
        return True
    cur = p.attrs.get("activation", "none")
    if act.op == "gelu":
        if p.op not in ("gemm", "matmul") or cur != "none":
            return False
        p.attrs["activation"] = GELU_EPILOGUE[act.attrs.get("approximate", "none")]
        return True
    lo, hi = _bounds(act)
    if p.op in ("gemm", "matmul"):
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
    for act in [n for n in g.nodes if n.op in ("relu", "clip", "gelu")]:
        producers = g.producers()
        p = producers.get(act.inputs[0])
        if (p is None or p.op not in ("conv", "gemm", "matmul", "channel_affine")
                or sole_consumer(g, act.inputs[0]) is not act):
            continue
        if _fuse(p, act):
            replace_output(g, p, act)
            changed = True
    return changed
