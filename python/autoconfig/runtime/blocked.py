"""The channel-blocked activation layout NCHW[B]c that a network can keep
between conv layers: BlockedTensor and the conversions to and from NCHW."""
from __future__ import annotations

import math

import numpy as np

from .checks import INT32_MAX, f32_array, is_int, threads_arg
from .guard import require_ext


def block_size() -> int:
    """B of the layout NCHW[B]c in this build: the vector lanes of the running variant."""
    return int(require_ext().conv2d_block())


def layout_conversions() -> int:
    """Activation tensors conv2d calls converted between NCHW and NCHW[B]c so
    far in this process (to_blocked / to_nchw called by you are not counted)."""
    return int(require_ext().conv2d_layout_conversions())


class BlockedTensor:
    """Activations in the channel-blocked layout NCHW[B]c.

    data: float32 array of shape (N, ceil(C/B), H, W, B), B = block_size():
    channel c lives in block c // B, lane c % B; lanes past C hold finite
    values (zeros from to_blocked). shape: the logical (N, C, H, W).
    Made by to_blocked() or returned by a layer prepared with
    layout="blocked"; such a layer takes it as input without converting."""

    __slots__ = ("data", "shape")

    def __init__(self, data: np.ndarray, channels: int):
        data = f32_array(data, "data", 5)
        B = block_size()
        if not is_int(channels) or not 1 <= channels <= INT32_MAX:
            raise ValueError(f"channels: expected an integer >= 1 (at most {INT32_MAX}), got {channels!r}")
        if data.shape[4] != B or data.shape[1] != math.ceil(channels / B):
            raise ValueError(f"data: expected shape (N, {math.ceil(channels / B)}, H, W, {B}) for {channels} "
                             f"channels in blocks of {B}, got {data.shape}")
        if not data.flags.c_contiguous:
            raise ValueError("data: expected a C-contiguous array")
        self.data = data
        self.shape = (data.shape[0], int(channels), data.shape[2], data.shape[3])

    @property
    def block(self) -> int:
        return self.data.shape[4]

    def to_nchw(self, threads=None) -> np.ndarray:
        """The same activations as an NCHW array (a conversion)."""
        return self._to_nchw(threads_arg(threads))

    def _to_nchw(self, threads: int) -> np.ndarray:
        N, C, H, W = self.shape
        out = np.empty((N, C, H, W), dtype=np.float32)
        if N:
            require_ext().conv2d_from_blocked(self.data, out, N, C, H, W, threads)
        return out

    numpy = to_nchw

    def __repr__(self) -> str:
        return f"BlockedTensor(shape={self.shape}, block={self.block})"


def empty_blocked(N: int, C: int, H: int, W: int) -> BlockedTensor:
    B = block_size()
    return BlockedTensor(np.empty((N, math.ceil(C / B), H, W, B), dtype=np.float32), C)


def to_blocked(x, threads=None) -> BlockedTensor:
    """x (N, C, H, W) float32 -> the same activations in NCHW[B]c (a conversion)."""
    return convert_to_blocked(x, "x", threads_arg(threads))


def convert_to_blocked(x, name: str, threads: int) -> BlockedTensor:
    """to_blocked for an argument called `name`, with a checked thread count."""
    x = np.ascontiguousarray(f32_array(x, name, 4))
    N, C, H, W = x.shape
    if min(C, H, W) < 1:
        raise ValueError(f"{name}: expected C, H, W >= 1, got shape {x.shape}")
    t = empty_blocked(N, C, H, W)
    if N:
        require_ext().conv2d_to_blocked(x, t.data, N, C, H, W, threads)
    return t
