"""Public argument checks shared by the runtime API.

Each raises a TypeError or ValueError whose message starts with the
argument's name and says what was expected, so the kernels only ever see
arguments they accept.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from ..vocabulary import ACTIVATION_ALIASES, ACTIVATIONS

F32 = np.dtype(np.float32)
# The C++ types integers end up in: a thread count is an int, a size an int64_t.
INT32_MAX = 2 ** 31 - 1
INT64_MAX = 2 ** 63 - 1


def f32_array(x, name: str, ndim: Optional[int] = None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32, got {type(x).__name__}")
    if x.dtype != F32:
        raise TypeError(f"{name}: expected dtype float32, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}")
    return x


def is_int(v) -> bool:
    """An integer that is not a bool (True is an int to Python, never a size to us)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def threads_arg(threads) -> int:
    """0 (the plan's choice) for None, else the count (a C++ int)."""
    if threads is None:
        return 0
    if type(threads) is int and 1 <= threads <= INT32_MAX:   # fast path for the common case
        return threads
    if not is_int(threads) or not 1 <= threads <= INT32_MAX:
        raise ValueError(f"threads: expected None or an integer >= 1 (at most {INT32_MAX}), got {threads!r}")
    return int(threads)


def positive_int(v, name: str, minimum: int = 1, maximum: int = INT64_MAX) -> int:
    """A size: an integer in [minimum, maximum] (by default what a C++ int64_t holds)."""
    if not is_int(v) or not minimum <= v <= maximum:
        raise ValueError(f"{name}: expected a positive integer (at most {maximum}), got {v!r}")
    return int(v)


def fits_int64(count: int, names: str, what: str) -> None:
    """A product of checked sizes (an element count) that the C++ side computes in int64_t."""
    if count > INT64_MAX:
        raise ValueError(f"{names}: {what} = {count} elements do not fit the C++ int64_t (at most {INT64_MAX})")


def activation_code(activation) -> int:
    """The index in ACTIVATIONS (autoconfig::Activation) of a GEMM activation name."""
    try:
        name = ACTIVATION_ALIASES.get(activation, activation)
    except TypeError:  # unhashable
        name = None
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation: expected None or one of {', '.join(ACTIVATIONS)} "
                         f"(or 'gelu' = gelu_erf), got {activation!r}")
    return ACTIVATIONS.index(name)


def _finite_f32(v) -> bool:
    """v stays finite as a float32 (1e39 passes math.isfinite but becomes inf)."""
    try:
        f = float(v)
    except OverflowError:   # an int past the double range
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(f)))


def finite_real(v, name: str) -> float:
    """A real number that is finite in float32, the type the kernels compute in."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not _finite_f32(v):
        raise ValueError(f"{name}: expected a finite real number (finite in float32: "
                         f"|{name}| <= {float(np.finfo(np.float32).max):.7g}), got {v!r}")
    return float(v)


def flag(v, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
        raise ValueError(f"{name}: expected a bool, got {v!r}")
    return bool(v)


def writable_out(out, name: str, shape) -> np.ndarray:
    """A caller's `out`: float32, of the result's shape, writable."""
    out = f32_array(out, name)
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out
