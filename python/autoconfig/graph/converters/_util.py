"""Helpers shared by the converter families."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np


class Versioned:
    """Converters by the opset that introduced their semantics."""

    def __init__(self, table: Dict[int, Callable]):
        self.table = dict(sorted(table.items()))

    def at(self, opset: int) -> Optional[Callable]:
        best = None
        for since, fn in self.table.items():
            if since <= opset:
                best = fn
        return best


def versioned(table: Dict[int, Callable]) -> Versioned:
    return Versioned(table)


def norm_axis(cx, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise cx.fail(f"{what} {axis} is out of range for a rank-{rank} input")
    return axis + rank if axis < 0 else axis


def ints(v) -> List[int]:
    return [int(x) for x in np.asarray(v).reshape(-1)]


def window_attrs(cx, x_shape: Sequence[int], kernel: Sequence[int], *, dilations_ok: bool = True) -> Dict:
    """strides, pads (top, left, bottom, right) and dilations of a 2-D
    sliding window (Conv, MaxPool, AveragePool), auto_pad resolved."""
    if len(x_shape) != 4 or len(kernel) != 2:
        raise cx.fail(f"only 2-D windows on N x C x H x W inputs are supported (input {tuple(x_shape)}, "
                      f"kernel {list(kernel)})")
    strides = ints(cx.attr("strides", [1, 1]))
    dil = ints(cx.attr("dilations", [1, 1])) if dilations_ok else [1, 1]
    pads = ints(cx.attr("pads", [0, 0, 0, 0]))
    auto_pad = cx.attr("auto_pad", "NOTSET")
    if len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
        raise cx.fail(f"strides {strides}, dilations {dil}, pads {pads}: expected 2, 2 and 4 values")
    if min(strides) < 1 or min(dil) < 1 or min(pads) < 0 or min(kernel) < 1:
        raise cx.fail(f"kernel {list(kernel)}, strides {strides}, dilations {dil}, pads {pads}: "
                      "need positive kernel/strides/dilations and non-negative pads")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for ax in range(2):
            size = x_shape[2 + ax]
            out = -(-size // strides[ax])
            total = max(0, (out - 1) * strides[ax] + dil[ax] * (kernel[ax] - 1) + 1 - size)
            small, big = total // 2, total - total // 2
            begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
            pads[ax], pads[ax + 2] = begin, end
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad != "NOTSET":
        raise cx.fail(f"auto_pad {auto_pad!r} is not supported (NOTSET, SAME_UPPER, SAME_LOWER, VALID)")
    return {"strides": strides, "pads": pads, "dilations": dil}
