"""The graph IR: tensors, nodes in the executor's op vocabulary (FORMAT.md),
and the graph that holds them. Plain dataclasses; numpy only for constants.

A Graph keeps its nodes in a valid execution order (every input produced
before it is read); passes that rewrite it keep that order. Shapes are known
for every tensor (import infers them for the given input shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

KINDS = ("input", "output", "constant", "intermediate")
# The executor's op vocabulary (FORMAT.md, "Ops"; tests/graph/test_graph_acmodel.py
# checks the two agree).
EXECUTOR_OPS = ("conv", "gemm", "matmul", "relu", "sigmoid", "silu", "tanh", "hard_swish", "leaky_relu",
                "hard_sigmoid",
                "clip", "add", "sub", "mul", "div", "channel_affine", "concat", "split", "max_pool", "avg_pool",
                "global_avg_pool", "global_max_pool", "reshape", "transpose", "softmax", "log_softmax", "lrn", "pad",
                "reduce_mean", "to_layout",
                # transformers (issue 17): FORMAT.md "Ops", second table
                "erf", "sqrt", "exp", "neg", "reciprocal", "gelu", "pow", "equal", "less", "greater", "max", "min",
                "where", "expand", "gather", "cast", "layer_norm",
                # fused transformer ops (issue 17): FORMAT.md "Ops", fused table
                "attention", "matmul_layer_norm")
# The ops the executor must also run on nchw{B}c tensors (FORMAT.md,
# "Blocked tensors"; tests/test_graph_layout.py checks the two agree).
BLOCKED_UNARY = ("relu", "clip", "leaky_relu", "sigmoid", "silu", "hard_sigmoid", "hard_swish", "tanh")
BLOCKED_POOLS = ("max_pool", "avg_pool", "global_avg_pool")
BLOCKED_OPS = ("conv", "to_layout") + BLOCKED_UNARY + ("add", "mul") + BLOCKED_POOLS + ("concat",)


@dataclass
class Tensor:
    name: str
    shape: Tuple[int, ...]
    kind: str = "intermediate"           # one of KINDS
    data: Optional[np.ndarray] = None    # float32 values of a constant
    layout: str = "nchw"
    arena: Optional[int] = None          # float offset in the arena (intermediates, set by the planner)
    view_of: Optional[str] = None        # a channel slice of this tensor (in-place concat, set by the planner)
    channel_offset: int = 0              # first channel of the slice in view_of
    dtype: str = "float32"               # "int64" for an int64 input; every other tensor holds float32

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        extra = f" @{self.arena}" if self.arena is not None else ""
        if self.view_of:
            extra += f" (channels {self.channel_offset}.. of {self.view_of})"
        return f"{self.name}: {self.kind} {dims} {self.layout if self.kind != 'constant' else ''}{extra}".rstrip()


@dataclass
class Node:
    name: str
    op: str
    inputs: List[str]                    # "" = absent optional input
    outputs: List[str]
    attrs: Dict[str, Any] = field(default_factory=dict)
    fused: List[str] = field(default_factory=list)   # source nodes folded or fused into this one
    # Plan (set by the planner).
    threads: int = 0
    predicted_ms: Optional[float] = None
    why: str = ""
    layout: str = ""                     # "in -> out" layouts, for explain

    def __str__(self) -> str:
        attrs = ", ".join(f"{k}={_fmt(v)}" for k, v in self.attrs.items())
        fused = f"  (+{', '.join(self.fused)})" if self.fused else ""
        return (f"{', '.join(self.outputs)} = {self.op}({', '.join(i or '-' for i in self.inputs)})"
                f"{'  ' + attrs if attrs else ''}  # {self.name}{fused}")


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


@dataclass
class Graph:
    name: str
    tensors: Dict[str, Tensor] = field(default_factory=dict)
    nodes: List[Node] = field(default_factory=list)
    inputs: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    arena_floats: int = 0
    reserved: Set[str] = field(default_factory=set, repr=False)   # names fresh_name must avoid (the source model's)

    # ---- building
    def add_tensor(self, t: Tensor) -> Tensor:
        self.tensors[t.name] = t
        return t

    def constant(self, name: str, value: np.ndarray) -> Tensor:
        value = np.ascontiguousarray(value, dtype=np.float32)
        return self.add_tensor(Tensor(name, tuple(int(d) for d in value.shape), "constant", value))

    def fresh_name(self, base: str) -> str:
        if base not in self.tensors and base not in self.reserved:
            return base
        i = 1
        while f"{base}.{i}" in self.tensors or f"{base}.{i}" in self.reserved:
            i += 1
        return f"{base}.{i}"

    # ---- queries
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def is_constant(self, name: str) -> bool:
        return bool(name) and self.tensors[name].kind == "constant"

    def producers(self) -> Dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> Dict[str, List[Node]]:
        out: Dict[str, List[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}")

    def count(self, op: str) -> int:
        return sum(1 for n in self.nodes if n.op == op)

    def ops(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out

    def uses(self, name: str) -> int:
        """How many node inputs and graph outputs read this tensor."""
        return sum(1 for n in self.nodes for i in n.inputs if i == name) + self.outputs.count(name)

    def constants(self) -> Iterable[Tensor]:
        return (t for t in self.tensors.values() if t.kind == "constant")

    def check(self) -> None:
        """Every input defined before use, every tensor known (a pass's post-condition)."""
        ready = {n for n, t in self.tensors.items() if t.kind in ("input", "constant")}
        for n in self.nodes:
            for i in n.inputs:
                if i and i not in ready:
                    raise ValueError(f"node {n.name!r} ({n.op}) reads {i!r} before it is produced")
            for o in n.outputs:
                if o not in self.tensors:
                    raise ValueError(f"node {n.name!r} writes unknown tensor {o!r}")
                ready.add(o)
        for o in self.outputs:
            if o not in ready:
                raise ValueError(f"graph output {o!r} is never produced")

    def __str__(self) -> str:
        lines = [f"graph {self.name}"]
        for name in self.inputs:
            lines.append(f"  input  {self.tensors[name]}")
        consts = list(self.constants())
        if consts:
            floats = sum(t.size for t in consts)
            lines.append(f"  {len(consts)} constants, {floats} floats")
        for n in self.nodes:
            shapes = ", ".join("x".join(map(str, self.tensors[o].shape)) for o in n.outputs)
            lines.append(f"  {n}  -> {shapes}")
        for name in self.outputs:
            lines.append(f"  output {self.tensors[name]}")
        return "\n".join(lines)
