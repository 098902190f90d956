"""Tensors that live inside another tensor's arena space (no copy):

  reshape views   a reshape between two NCHW intermediates: the output is
                  the input's floats (same arena offset, FORMAT.md `reshape`)
  concat slices   a concat on axis 1 with N = 1 whose inputs are all
                  intermediates in its output's layout (nchw, or nchw{B}c
                  with every C a multiple of B), each read by the concat
                  alone (the executor lets a slice and the whole be alive
                  together only at the concat): each producer writes its
                  input straight into a channel slice of the output
                  (`view_of`, `channel_offset`; the concat gets
                  `in_place: true` and does nothing). With N = 1 a channel
                  slice [c, c + C) is contiguous in both layouts, at float
                  offset c x H x W from the output's start.

views(g) resolves both to root tensors: name -> (root, float offset), which
the arena planner places once with the union of the members' lifetimes.
"""
from __future__ import annotations

from typing import Dict, Tuple

from .ir import Graph, Node
from .layout import block_of


def reshape_views(g: Graph) -> Dict[str, str]:
    """reshape outputs that live in their input's arena space (output -> the
    tensor that owns the space)."""
    root: Dict[str, str] = {}
    for n in g.nodes:
        if n.op == "reshape":
            x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
            if x.kind == y.kind == "intermediate" and x.layout == y.layout == "nchw":
                root[y.name] = root.get(x.name, x.name)
    return root


def in_place_reason(g: Graph, n: Node, reshaped: Dict[str, str], sliced: Dict[str, str]) -> str:
    """'' when concat n can be written in place, else why not."""
    y = g.tensors[n.outputs[0]]
    if n.attrs.get("axis") != 1 or len(y.shape) != 4 or y.shape[0] != 1:
        return "not a channel concat of one image"
    if y.kind != "intermediate" or y.name in sliced:
        return "its output is not a plain intermediate"
    b = block_of(y.layout)
    producers = g.producers()
    if len(set(n.inputs)) != len(n.inputs):
        return "an input appears twice"
    for i in n.inputs:
        t = g.tensors[i]
        if t.kind != "intermediate" or t.layout != y.layout:
            return f"input {i!r} is not an intermediate in {y.layout}"
        if b and t.shape[1] % b:
            return f"input {i!r} has {t.shape[1]} channels, not a multiple of {b}"
        if i in reshaped or i in sliced:
            return f"input {i!r} already shares another tensor's space"
        p = producers.get(i)
        if p is None or p.op == "concat":
            return f"input {i!r} is not written by a node of its own"
        if g.uses(i) != 1:
            # the executor lets a view and its root be alive together only at the concat
            return f"input {i!r} is read by other nodes too"
    return ""


def concat_slices(g: Graph) -> Dict[str, Tuple[str, int]]:
    """Mark the concats written in place (attrs in_place, the inputs'
    view_of / channel_offset); returns input -> (concat output, channel offset)."""
    reshaped = reshape_views(g)
    sliced: Dict[str, str] = {}
    out: Dict[str, Tuple[str, int]] = {}
    for t in g.tensors.values():
        t.view_of, t.channel_offset = None, 0
    for n in g.nodes:
        if n.op != "concat":
            continue
        n.attrs.pop("in_place", None)
        if in_place_reason(g, n, reshaped, sliced):
            continue
        n.attrs["in_place"] = True
        c = 0
        for i in n.inputs:
            t = g.tensors[i]
            t.view_of, t.channel_offset = n.outputs[0], c
            sliced[i] = n.outputs[0]
            out[i] = (n.outputs[0], c)
            c += t.shape[1]
    return out


def views(g: Graph) -> Dict[str, Tuple[str, int]]:
    """Every view tensor -> (root tensor owning the space, float offset in it)."""
    direct: Dict[str, Tuple[str, int]] = {y: (x, 0) for y, x in reshape_views(g).items()}
    for t in g.tensors.values():
        if getattr(t, "view_of", None):
            h, w = t.shape[2], t.shape[3]
            direct[t.name] = (t.view_of, t.channel_offset * h * w)
    out: Dict[str, Tuple[str, int]] = {}
    for name in direct:
        root, off = name, 0
        while root in direct:
            r, o = direct[root]
            root, off = r, off + o
        out[name] = (root, off)
    return out
