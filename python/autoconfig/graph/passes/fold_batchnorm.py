"""Fold a batch-norm (channel_affine, as imported) into the conv before it:
w'[k] = w[k] * scale[k], b'[k] = b[k] * scale[k] + shift[k]; when the conv's
output feeds only the batch-norm. A batch-norm after anything else stays a
channel_affine node."""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from ._match import new_constant, plain_conv, replace_output, sole_consumer


def fold_batchnorm(g: Graph) -> bool:
    changed = False
    producers = g.producers()
    for bn in [n for n in g.nodes if n.op == "channel_affine"]:
        conv = producers.get(bn.inputs[0])
        # a batch-norm already carrying a fused relu cannot fold into the conv: the relu would be lost
        if bn.attrs.get("relu") or not plain_conv(conv) or sole_consumer(g, conv.outputs[0]) is not bn:
            continue
        if not (g.is_constant(conv.inputs[1]) and g.is_constant(bn.inputs[1]) and g.is_constant(bn.inputs[2])):
            continue
        scale = g.tensors[bn.inputs[1]].data.astype(np.float64)
        shift = g.tensors[bn.inputs[2]].data.astype(np.float64)
        fold_affine_into_conv(g, conv, scale, shift)
        replace_output(g, conv, bn)
        producers = g.producers()
        changed = True
    return changed


def fold_affine_into_conv(g: Graph, conv, scale: np.ndarray, shift: np.ndarray) -> None:
    """conv(x) * scale[k] + shift[k] as one conv with new weights and bias."""
    w = g.tensors[conv.inputs[1]].data.astype(np.float64)
    k = w.shape[0]
    b = g.tensors[conv.inputs[2]].data.astype(np.float64) if conv.inputs[2] else np.zeros(k)
    conv.inputs[1] = new_constant(g, f"{conv.name}.w", w * scale.reshape(k, 1, 1, 1))
    conv.inputs[2] = new_constant(g, f"{conv.name}.b", b * scale + shift)
