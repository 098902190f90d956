"""Layout planning: which activations stay in NCHW[B]c between layers, and
the to_layout nodes where an operator needs NCHW (FORMAT.md, "Blocked
tensors").

B is the build's conv block: the vector lanes of the conv kernels
(models/conv.kernel_machine(profile).lanes; the executor's conv2d_block()).

Which ops run blocked (runs_blocked): conv (input and output layouts chosen
independently; a residual is in the output's layout), to_layout, the unary
ops of BLOCKED_UNARY, add/mul of two same-shape activations or of an
activation and a per-channel vector, max_pool, avg_pool, global_avg_pool,
and concat on axis 1 when every input's C is a multiple of B. Everything
else reads and writes NCHW.

Layout groups: a non-conv op that runs blocked reads and writes one layout,
so its 4-D activations form one group (union-find); a conv ties its residual
to its output. A group is a decision: all NCHW, or all nchw{B}c. A group
holds 4-D intermediates only: graph inputs and outputs are NCHW (FORMAT.md),
so a blocked node converts the ones it reads or writes (to_layout).

Cost of a choice, the terms that depend on it (seconds, at the node's
largest thread count the planner's rule allows):
  conv      models/conv.candidates(ctx = Context(in_blocked, out_blocked)):
            the cheapest algorithm given both of its tensors' layouts (the
            conv model charges the conversions an NCHW algorithm needs)
  other     the node's NCHW time x storage / size (channel padding to B)
  to_layout one conversion (models/conv._layout_seconds) per member read by
            an op that needs NCHW, and per member written by one
Groups are decided one at a time in execution order, each the cheaper side
given the others, and swept again until nothing changes (coordinate
descent; convs couple the group they read with the group they write).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from ..models import conv as conv_model
from .ir import BLOCKED_OPS, BLOCKED_POOLS, BLOCKED_UNARY, Graph, Node, Tensor  # noqa: F401

MAX_SWEEPS = 4


def blocked(b: int) -> str:
    return f"nchw{b}c"


def block_of(layout: str) -> Optional[int]:
    """B of an nchw{B}c layout, None for nchw."""
    if layout.startswith("nchw") and layout.endswith("c") and layout[4:-1].isdigit():
        return int(layout[4:-1])
    return None


def _activation(g: Graph, name: str) -> bool:
    return bool(name) and g.tensors[name].kind != "constant"


def _per_channel(g: Graph, vec: str, full: Tensor, b: int) -> bool:
    """vec broadcasts over H and W only: a constant of C elements with C a
    multiple of B (its dense storage is then the blocked one), or a 4-D
    activation (1 or N) x C x 1 x 1."""
    v = g.tensors[vec]
    n, c = full.shape[0], full.shape[1]
    if v.kind == "constant":
        return v.shape in ((c, 1, 1), (1, c, 1, 1)) and c % b == 0
    return len(v.shape) == 4 and v.shape[1:] == (c, 1, 1) and v.shape[0] in (1, n)


def runs_blocked(g: Graph, n: Node, b: int) -> bool:
    """Whether the executor runs n on nchw{b}c tensors (FORMAT.md's list)."""
    if n.op in ("conv", "to_layout"):
        return True
    ins = [i for i in n.inputs if i]
    if not ins or any(len(g.tensors[o].shape) != 4 for o in n.outputs):
        return False
    if n.op in BLOCKED_UNARY or n.op in BLOCKED_POOLS:
        return len(g.tensors[ins[0]].shape) == 4
    if n.op in ("add", "mul"):
        y = g.tensors[n.outputs[0]]
        a, c = (g.tensors[i] for i in n.inputs)
        for full, other in ((a, c), (c, a)):
            if full.kind != "constant" and full.shape == y.shape:
                if (other.kind != "constant" and other.shape == y.shape) or _per_channel(g, other.name, y, b):
                    return True
        return False
    if n.op == "concat":
        return n.attrs["axis"] == 1 and all(
            _activation(g, i) and len(g.tensors[i].shape) == 4 and g.tensors[i].shape[1] % b == 0 for i in ins)
    return False


def tied_tensors(g: Graph, n: Node) -> List[str]:
    """The activations of n that must share one layout when n runs blocked."""
    if n.op == "conv":
        r = n.inputs[3] if len(n.inputs) > 3 else ""
        return [r, n.outputs[0]] if r else []
    if n.op == "to_layout":
        return []
    return [i for i in n.inputs if _activation(g, i)] + list(n.outputs)


def _inner(g: Graph, name: str) -> bool:
    return g.tensors[name].kind == "intermediate"


@dataclass
class Group:
    members: List[str]
    blocked: bool = False
    delta_s: float = 0.0            # predicted seconds of blocked minus NCHW (last evaluation)
    reason: str = ""


@dataclass
class LayoutPlan:
    block: int
    groups: List[Group] = field(default_factory=list)
    conversions: List[str] = field(default_factory=list)    # names of the to_layout nodes inserted

    def note(self, g: Graph) -> str:
        acts = [t for t in g.tensors.values() if t.kind != "constant" and len(t.shape) == 4]
        nb = sum(1 for t in acts if block_of(t.layout))
        ms = sum(g.node(c).predicted_ms or 0.0 for c in self.conversions)
        return (f"layout {blocked(self.block)}: {nb} of {len(acts)} 4-D activations blocked "
                f"({sum(1 for x in self.groups if x.blocked)} groups), {len(self.conversions)} to_layout "
                f"node(s), {ms:.3f} ms predicted")


def _groups(g: Graph, b: int) -> Tuple[Dict[str, int], Dict[str, int]]:
    """(intermediate -> group, node -> the group it runs in). Graph inputs
    and outputs join no group: a blocked node converts them (boundaries)."""
    parent: Dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t in g.tensors.values():
        if t.kind == "intermediate" and len(t.shape) == 4:
            find(t.name)
    for n in g.nodes:
        if runs_blocked(g, n, b):
            tied = [x for x in tied_tensors(g, n) if _inner(g, x)]
            for x in tied[1:]:
                parent[find(x)] = find(tied[0])
    roots: Dict[str, int] = {}
    gid = {name: roots.setdefault(find(name), len(roots)) for name in parent}
    node_gid = {}
    for n in g.nodes:
        if runs_blocked(g, n, b):
            tied = [x for x in tied_tensors(g, n) if _inner(g, x)]
            if tied:
                node_gid[n.name] = gid[tied[0]]
    return gid, node_gid


def boundaries(g: Graph, n: Node) -> List[str]:
    """n's tied graph inputs / outputs: converted when n runs blocked."""
    return [x for x in tied_tensors(g, n) if not _inner(g, x)]


def plan_layouts(g: Graph, b: int, node_seconds: Callable[[Node, bool, bool], float],
                 convert_seconds: Callable[[Tensor], float], force_blocked: bool = False) -> LayoutPlan:
    """Decide the layout of every activation and insert the to_layout nodes.
    node_seconds(n, in_blocked, out_blocked): n's predicted seconds with its
    input / output in those layouts (for a non-conv node only the NCHW time
    is asked); convert_seconds(t): one conversion of t. force_blocked: every
    group blocked whatever the model says (tests, executor coverage)."""
    gid, node_gid = _groups(g, b)
    groups: List[Group] = [Group([]) for _ in range(max(gid.values(), default=-1) + 1)]
    for name, i in gid.items():
        groups[i].members.append(name)
    producers, consumers = g.producers(), g.consumers()
    # what depends on each group: the nodes reading or writing a member, and the nodes running in it
    touching: Dict[int, List[Node]] = {i: [] for i in range(len(groups))}
    for n in g.nodes:
        acts = {gid[x] for x in list(n.inputs) + list(n.outputs) if x in gid}
        if n.name in node_gid:
            acts.add(node_gid[n.name])
        for i in acts:
            touching[i].append(n)
    nchw_base = {n.name: node_seconds(n, False, False) for n in g.nodes if n.op != "conv"}

    def layout_of(name: str, choice: Dict[int, bool]) -> bool:
        return choice[gid[name]] if name in gid else False

    def group_cost(i: int, choice: Dict[int, bool]) -> float:
        s = 0.0
        for n in touching[i]:
            if n.op == "conv":
                s += node_seconds(n, layout_of(n.inputs[0], choice), layout_of(n.outputs[0], choice))
            elif node_gid.get(n.name) == i:
                t = g.tensors[n.outputs[0]]
                pad = _storage(t, b) / max(1, t.size) if choice[i] else 1.0
                s += nchw_base[n.name] * pad
            if choice[i] and node_gid.get(n.name) == i:
                s += sum(convert_seconds(g.tensors[x]) for x in boundaries(g, n))
        if choice[i]:
            for name in groups[i].members:
                p = producers.get(name)
                if p is not None and not runs_blocked(g, p, b):
                    s += convert_seconds(g.tensors[name])
                if any(not runs_blocked(g, c, b) for c in consumers.get(name, [])):
                    s += convert_seconds(g.tensors[name])
        return s

    choice = {i: True for i in range(len(groups))}
    order = sorted(range(len(groups)), key=lambda i: min(
        (g.nodes.index(n) for n in touching[i]), default=len(g.nodes)))
    for _ in range(0 if force_blocked else MAX_SWEEPS):
        changed = False
        for i in order:
            on = group_cost(i, {**choice, i: True})
            off = group_cost(i, {**choice, i: False})
            groups[i].delta_s = on - off
            want = on < off
            if want != choice[i]:
                choice[i] = want
                changed = True
        if not changed:
            break
    plan = LayoutPlan(b, groups)
    for i, grp in enumerate(groups):
        grp.blocked = choice[i]
        if force_blocked:
            grp.reason = f"{len(grp.members)} tensor(s) blocked (forced)"
        else:
            grp.reason = (f"{len(grp.members)} tensor(s) {'blocked' if grp.blocked else 'NCHW'}: blocked "
                          f"{'saves' if grp.delta_s < 0 else 'costs'} {abs(grp.delta_s) * 1e3:.3f} ms predicted "
                          f"(conversions included)")
        for name in grp.members:
            g.tensors[name].layout = blocked(b) if grp.blocked else "nchw"
    _insert_conversions(g, b, gid, node_gid, groups, plan)
    sync_conversions(g)
    return plan


def sync_conversions(g: Graph) -> None:
    """A graph planned again keeps its earlier to_layout nodes: each converts
    to its output's layout as now planned (NCHW both sides: a copy)."""
    for n in g.nodes:
        if n.op == "to_layout":
            n.attrs["layout"] = g.tensors[n.outputs[0]].layout


def _storage(t: Tensor, b: int) -> int:
    shape = list(t.shape)
    shape[1] = -(-shape[1] // b) * b
    return math.prod(shape)


def _unique_node(g: Graph, base: str, taken: Set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}.{i}", i + 1
    taken.add(name)
    return name


def _insert_conversions(g: Graph, b: int, gid: Dict[str, int], node_gid: Dict[str, int], groups: List[Group],
                        plan: LayoutPlan) -> None:
    taken = {n.name for n in g.nodes}
    lay = blocked(b)
    for grp in groups:
        if not grp.blocked:
            continue
        for name in grp.members:
            t = g.tensors[name]
            producers, consumers = g.producers(), g.consumers()
            p = producers.get(name)
            if p is not None and not runs_blocked(g, p, b):
                # the NCHW-only producer writes a twin; to_layout fills the blocked tensor
                twin = g.add_tensor(Tensor(g.fresh_name(f"{name}.nchw_out"), t.shape))
                p.outputs[p.outputs.index(name)] = twin.name
                node = _conversion(g, taken, twin.name, name, lay,
                                   f"{p.op} {p.name!r} writes NCHW only; {grp.reason}")
                g.nodes.insert(g.nodes.index(p) + 1, node)
                plan.conversions.append(node.name)
            readers = [c for c in consumers.get(name, []) if not runs_blocked(g, c, b)]
            if readers:
                twin = g.add_tensor(Tensor(g.fresh_name(f"{name}.nchw"), t.shape))
                for c in readers:
                    c.inputs = [twin.name if i == name else i for i in c.inputs]
                first = min(g.nodes.index(c) for c in readers)
                ops = ", ".join(sorted({f"{c.op} {c.name!r}" for c in readers}))
                node = _conversion(g, taken, name, twin.name, "nchw", f"{ops} read(s) NCHW only; {grp.reason}")
                g.nodes.insert(first, node)
                plan.conversions.append(node.name)
    # graph inputs and outputs a blocked node reads or writes
    blocked_twin: Dict[str, str] = {}
    for n in list(g.nodes):
        i = node_gid.get(n.name)
        if i is None or not groups[i].blocked:
            continue
        why = f"graph inputs and outputs are NCHW; {groups[i].reason}"
        for x in boundaries(g, n):
            t = g.tensors[x]
            if x in n.outputs:
                twin = g.add_tensor(Tensor(g.fresh_name(f"{x}.blocked"), t.shape, layout=lay))
                n.outputs[n.outputs.index(x)] = twin.name
                node = _conversion(g, taken, twin.name, x, "nchw", f"{n.op} {n.name!r} writes it blocked; {why}")
                g.nodes.insert(g.nodes.index(n) + 1, node)
                blocked_twin[x] = twin.name
            else:
                if x not in blocked_twin:
                    twin = g.add_tensor(Tensor(g.fresh_name(f"{x}.blocked"), t.shape, layout=lay))
                    node = _conversion(g, taken, x, twin.name, lay, f"{n.op} {n.name!r} reads it blocked; {why}")
                    g.nodes.insert(g.nodes.index(n), node)
                    blocked_twin[x] = twin.name
                    plan.conversions.append(node.name)
                n.inputs = [blocked_twin[x] if v == x else v for v in n.inputs]
                continue
            plan.conversions.append(node.name)


def _conversion(g: Graph, taken: Set[str], x: str, y: str, layout: str, why: str) -> Node:
    n = Node(_unique_node(g, f"to_layout.{y}", taken), "to_layout", [x], [y], {"layout": layout})
    n.why = why
    return n


def conv_context(g: Graph, n: Node) -> conv_model.Context:
    return conv_model.Context(in_blocked=block_of(g.tensors[n.inputs[0]].layout) is not None,
                              out_blocked=block_of(g.tensors[n.outputs[0]].layout) is not None)
