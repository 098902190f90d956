"""Plan: the planner's output for one kernel, as plain data.

A Plan names the algorithm, every numeric parameter with the model term (or
HostProfile field) it came from, the predicted time and the candidates that
lost, so `autoconfig plan --explain` can say why.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class Param:
    value: Any
    why: str            # the model term or profile field it comes from


@dataclass
class Candidate:
    name: str                     # e.g. "tile 6x64"
    predicted_s: float
    terms: Dict[str, float]       # named parts of the estimate
    chosen: bool = False
    rejected: Optional[str] = None  # reason it could not be used


@dataclass
class Plan:
    op: str                       # matmul | gemm | conv2d
    kernel: str                   # C++ entry point name
    algorithm: str                # e.g. "blis-gemm"
    isa: str
    shape: Optional[Dict[str, int]]   # None for the generic (any shape) kernel
    params: Dict[str, Param]
    predicted_s: Optional[float]      # None for generic plans
    predicted_terms: Dict[str, float] = field(default_factory=dict)
    candidates: List[Candidate] = field(default_factory=list)
    activations: List[str] = field(default_factory=list)
    spec: Optional[str] = None        # spec kernel name that asked for it
    notes: List[str] = field(default_factory=list)

    def value(self, name: str) -> Any:
        return self.params[name].value

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        d = dict(d)
        d["params"] = {k: Param(**v) for k, v in d["params"].items()}
        d["candidates"] = [Candidate(**c) for c in d.get("candidates", [])]
        return cls(**d)

    def explain(self) -> str:
        """Human-readable account of the choice."""
        lines = []
        order = ("M", "N", "K")
        where = "any shape" if self.shape is None else ", ".join(
            f"{k}={self.shape[k]}" for k in sorted(self.shape, key=lambda k: (order.index(k) if k in order else 99, k)))
        lines.append(f"{self.kernel}  [{self.op}, {where}]")
        lines.append(f"  algorithm: {self.algorithm} on {self.isa}")
        for name, p in self.params.items():
            lines.append(f"  {name:>8} = {p.value!s:<8} <- {p.why}")
        if self.predicted_s is not None:
            terms = ", ".join(f"{k}={v * 1e6:.1f}us" for k, v in self.predicted_terms.items())
            lines.append(f"  predicted: {self.predicted_s * 1e6:.1f} us ({terms})")
        if self.candidates:
            lines.append("  candidates (best first):")
            for c in sorted(self.candidates, key=lambda c: (c.rejected is not None, c.predicted_s)):
                mark = "*" if c.chosen else " "
                if c.rejected:
                    lines.append(f"   {mark} {c.name:<16} rejected: {c.rejected}")
                else:
                    detail = ", ".join(f"{k}={v:.3g}" for k, v in c.terms.items())
                    lines.append(f"   {mark} {c.name:<16} {c.predicted_s * 1e6:10.1f} us  ({detail})")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


def plans_to_json(plans: List[Plan]) -> str:
    return json.dumps([p.to_dict() for p in plans], indent=1, sort_keys=True)


def plans_from_json(text: str) -> List[Plan]:
    return [Plan.from_dict(d) for d in json.loads(text)]
