"""Which arrays the kernels can read or write in place, and the copies made otherwise.

Kernels take strides in elements and, for C-like operands (out, residual, c),
a contiguous last axis.
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


def row_contiguous(x: np.ndarray) -> np.ndarray:
    """x, or a copy when its last axis is not contiguous."""
    if x.shape[-1] > 1 and x.strides[-1] != 4:
        return np.ascontiguousarray(x)
    return element_strided(x)


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
