"""The converter table: ONNX op type -> converter (TVM style, versioned).

A converter is `def conv(cx: Ctx) -> None`: it reads the node through the
Ctx and either folds it (cx.set_value), drops it (cx.alias) or emits executor
nodes (cx.emit). Where ONNX changed an op's semantics between opsets 9 and 21
the entry is `versioned({since: converter, ...})`: the converter of the
greatest `since` not above the model's opset runs.

Adding an op = a converter here + a runtime kernel (cpp_runtime) + its ONNX
node-test ids (tests/graph/test_graph_onnx_nodes.py).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from . import constants, elementwise, indexing, nn, structure
from ._util import Versioned

Converter = Callable[..., None]

CONVERTERS: Dict[str, object] = {}
for _family in (nn, elementwise, structure, indexing, constants):
    overlap = set(CONVERTERS) & set(_family.CONVERTERS)
    assert not overlap, f"converter defined twice: {overlap}"
    CONVERTERS.update(_family.CONVERTERS)


def converter_for(op_type: str, opset: int) -> Optional[Converter]:
    c = CONVERTERS.get(op_type)
    if isinstance(c, Versioned):
        return c.at(opset)
    return c
