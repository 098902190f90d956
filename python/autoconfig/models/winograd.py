"""Winograd F(m x m, 3 x 3) convolution, the mathematics (m = 2 or 4).

Plain data and arithmetic, shared by the analytical model (models/conv.py:
operation counts, the error bound a tolerance is checked against) and the
emitter (codegen/conv_winograd.py: the transform matrices it spells out as
vector code). Nothing here knows an ISA.
"""
from __future__ import annotations

import math
from fractions import Fraction as Fr
from typing import Dict, List, Sequence

# Transform matrices (Lavin & Gray, "Fast Algorithms for Convolutional Neural
# Networks", 2016): Y = A^T [(G g G^T) . (B^T d B)] A. Points 0, +-1 for F(2)
# and 0, +-1, +-2 for F(4) (the standard choices; F(4) with +-1/2 trades a few
# more multiplies for no accuracy gain in fp32 at these sizes).
_MATRICES = {
    2: dict(
        BT=[[1, 0, -1, 0],
            [0, 1, 1, 0],
            [0, -1, 1, 0],
            [0, 1, 0, -1]],
        G=[[1, 0, 0],
           [Fr(1, 2), Fr(1, 2), Fr(1, 2)],
           [Fr(1, 2), Fr(-1, 2), Fr(1, 2)],
           [0, 0, 1]],
        AT=[[1, 1, 1, 0],
            [0, 1, -1, -1]]),
    4: dict(
        BT=[[4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1]],
        G=[[Fr(1, 4), 0, 0],
           [Fr(-1, 6), Fr(-1, 6), Fr(-1, 6)],
           [Fr(-1, 6), Fr(1, 6), Fr(-1, 6)],
           [Fr(1, 24), Fr(1, 12), Fr(1, 6)],
           [Fr(1, 24), Fr(-1, 12), Fr(1, 6)],
           [0, 0, 1]],
        AT=[[1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1]]),
}

# Max relative error vs a float64 reference, max|y - y64| / max|y64|, for x
# and w drawn from N(0,1), C = K = 256, 14x14 input, pad 1, no epilogue;
# measured with WINOGRAD_MEASURE_ERROR=1 pytest tests/build/test_winograd_kernel.py
# -k measure_error. Values are the largest over the builds: avx512f gives
# 3.5e-7 (F2) and 4.8e-6 (F4) (its reduction block of 64 channels shortens the
# summation chains), avx2 6.9e-7 / 1.5e-5, portable 6.4e-7 / 1.7e-5. torch's
# fp32 conv2d (oneDNN) measures 2.8e-7 on the same data.
WINOGRAD_REL_ERROR = {2: 7e-7, 4: 1.7e-5}


def transform_matrices(m: int) -> Dict[str, List[List[Fr]]]:
    """B^T, G, A^T of F(m x m, 3 x 3) as exact fractions."""
    if m not in _MATRICES:
        raise ValueError(f"Winograd F({m}x{m},3x3) is not supported; m must be 2 or 4")
    return {k: [[Fr(x) for x in row] for row in v] for k, v in _MATRICES[m].items()}


# ---------------------------------------------------------------------------
# Op counts for the model


def _apply_cost(matrix: Sequence[Sequence[Fr]]) -> int:
    """Flops of one matrix-vector product as emitted: one add/sub per extra
    term, one multiply per coefficient other than +-1 (fused into an FMA when
    it is not the first term, still counted as two flops)."""
    flops = 0
    for row in matrix:
        terms = [c for c in row if c != 0]
        flops += len(terms) - 1 + sum(1 for c in terms if abs(c) != 1)
    return flops


def winograd_op_counts(m: int, C: int, K: int, Ho: int, Wo: int) -> dict:
    """Named flop counts of one image's F(m x m, 3 x 3) convolution."""
    mats = transform_matrices(m)
    a = m + 2
    tiles = math.ceil(Ho / m) * math.ceil(Wo / m)
    bt, at = _apply_cost(mats["BT"]), _apply_cost(mats["AT"])
    input_per_tile = 2 * a * bt                    # columns, then rows, of the a x a patch
    output_per_tile = (a + m) * at + 2 * m * m     # columns, rows, then bias and clamp
    return {
        "tiles": tiles,
        "input_transform": input_per_tile * C * tiles,
        "gemm": 2 * a * a * C * K * tiles,
        "output_transform": output_per_tile * K * tiles,
        "bytes_u": 4 * a * a * C * K,
    }

