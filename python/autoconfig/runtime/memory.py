"""Which arrays the kernels can read or write in place, and the copies made otherwise.

Kernels take strides in elements and, for C-like operands (out, residual, c),
a contiguous last axis with rows at a positive stride. An input that overlaps
an output is copied first (or the result goes to a new array), except the
exact aliases a kernel supports (residual is out).
"""
from __future__ import annotations

import numpy as np


def element_strided(x: np.ndarray) -> np.ndarray:
    """x, or a copy when its byte strides are not multiples of 4 (possible
    with np.lib.stride_tricks)."""
    for s in x.strides:
        if s % 4:
            return np.ascontiguousarray(x)
    return x


def rows_in_place(x: np.ndarray) -> bool:
    """Whether the GEMM kernel can read or write the 2-D x (out, residual, c)
    where it is: strides in whole elements, a contiguous last axis and rows
    that follow each other at a positive stride of at least a row (ldc >= N).
    Negative and zero (broadcast) strides are not."""
    M, N = x.shape
    s0, s1 = x.strides
    if s0 % 4 or s1 % 4:
        return False
    if N > 1 and s1 != 4:
        return False
    return M <= 1 or s0 >= 4 * max(N, 1)


def gemm_operand(x: np.ndarray) -> np.ndarray:
    """x, or a contiguous copy when the GEMM kernel cannot read it in place."""
    return x if rows_in_place(x) else np.ascontiguousarray(x)


def overlaps(x, y) -> bool:
    """Whether x and y may share memory: their byte ranges intersect. Bounds
    only (np.shares_memory's exact answer can take exponential time), so two
    interleaved views that never touch the same element count as overlapping."""
    return x is not None and y is not None and x.size > 0 and y.size > 0 and np.may_share_memory(x, y)


def same_view(x: np.ndarray, y: np.ndarray) -> bool:
    """x and y are the same elements in the same order (an exact alias, such as
    residual=out), whatever view objects hold them."""
    return (x.shape == y.shape and x.strides == y.strides
            and x.__array_interface__["data"][0] == y.__array_interface__["data"][0])


def unshared(x, out: np.ndarray):
    """x, or a copy of it when it overlaps out: an input the kernel reads
    while it writes out must be read as it was before the call."""
    return x.copy() if overlaps(x, out) else x


def view_2d(x: np.ndarray, M: int, N: int):
    """x as an (M, N) view without copying, or None when that needs a copy."""
    if x.ndim == 2:
        return x
    try:
        return np.reshape(x, (M, N), copy=False)
    except TypeError:  # NumPy < 2.1 has no copy= on reshape
        v = x.view()
        try:
            v.shape = (M, N)
        except AttributeError:
            return None
        return v
    except ValueError:
        return None
