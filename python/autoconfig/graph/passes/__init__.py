"""Graph passes: one pass per file, one function `def name(g: Graph) -> bool`
(whether it changed the graph). PASSES is the only place that orders them;
run_passes() repeats the list until no pass changes anything.

Order: folds first (they only touch constants and remove nodes), then the
subgraph recognisers (GELU from its Erf formula, SiLU from x * Sigmoid(x),
layer normalization from its ReduceMean/Sub/Pow/Sqrt/Div form), the matmul folds (strided
transposes, the attention scale, the bias: in that order, as each needs the
matmul without the next), the softmax mask, then the residual fusion (which needs a conv with no activation yet), then the
activation fusion (which picks up the activation after a residual Add), and
dead code last. The transformer fusions come after what they build on:
attention after the transposes, the scale and the softmax mask are folded
(fuse_attention), GEMM + LayerNorm after the bias and residual are in the
matmul's epilogue (fuse_matmul_layer_norm).
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

from ..ir import Graph
from .eliminate_dead_code import eliminate_dead_code
from .eliminate_identity_reshape import eliminate_identity_reshape
from .fold_batchnorm import fold_batchnorm
from .fold_constant_mul_add import fold_constant_mul_add
from .fold_matmul_scale import fold_matmul_scale
from .fold_matmul_transpose import fold_matmul_transpose
from .fuse_activation import fuse_activation
from .fuse_attention import fuse_attention
from .fuse_gelu import fuse_gelu
from .fuse_layer_norm import fuse_layer_norm
from .fuse_matmul_bias import fuse_matmul_bias
from .fuse_matmul_layer_norm import fuse_matmul_layer_norm
from .fuse_residual import fuse_residual
from .fuse_silu import fuse_silu
from .fuse_softmax_mask import fuse_softmax_mask

Pass = Callable[[Graph], bool]

PASSES: Tuple[Pass, ...] = (
    fold_batchnorm,
    fold_constant_mul_add,
    fuse_gelu,
    fuse_silu,
    fuse_layer_norm,
    eliminate_identity_reshape,
    fold_matmul_transpose,
    fold_matmul_scale,
    fuse_matmul_bias,
    fuse_softmax_mask,
    fuse_attention,
    fuse_residual,
    fuse_activation,
    fuse_matmul_layer_norm,
    eliminate_dead_code,
)

# The same list without the fusions (folds and dead code only): every
# remaining node runs on its own (the DLFusion comparison's fusion knob).
UNFUSED: Tuple[Pass, ...] = tuple(p for p in PASSES if p not in (fuse_residual, fuse_activation))

MAX_ROUNDS = 20


def run_passes(g: Graph, passes: Tuple[Pass, ...] = PASSES) -> Dict[str, int]:
    """Run the passes in order until none changes the graph; returns how many
    rounds each pass changed something (for explain and tests)."""
    changes = {p.__name__: 0 for p in passes}
    for _ in range(MAX_ROUNDS):
        changed = False
        for p in passes:
            if p(g):
                changes[p.__name__] += 1
                changed = True
                g.check()
        if not changed:
            break
    return changes
