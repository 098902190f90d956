"""Task shapes: the plain data every stage shares (spec parses them, the
models plan them, generate and the registry key kernels by them, bench and
the runtime's explain build them).

Plain data at the bottom of the package: no imports from autoconfig.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GemmShape:
    """C[M,N] = op(A)[M,K] @ op(B)[K,N]; trans_* only for op 'gemm' (ONNX Gemm transA/transB)."""
    M: int
    N: int
    K: int
    trans_a: bool = False
    trans_b: bool = False

    @property
    def flops(self) -> int:
        return 2 * self.M * self.N * self.K

    def label(self) -> str:
        t = "".join(x for x, on in (("a", self.trans_a), ("b", self.trans_b)) if on)
        return f"{self.M}x{self.N}x{self.K}" + (f"(T{t})" if t else "")



@dataclass(frozen=True)
class Conv2dShape:
    """ONNX Conv on NCHW float32: x (N, C, H, W), w (K, C/groups, R, S)."""
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    N: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_top: int = 0
    pad_left: int = 0
    pad_bottom: int = 0
    pad_right: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1

    @property
    def out_h(self) -> int:
        return (self.H + self.pad_top + self.pad_bottom - self.dilation_h * (self.R - 1) - 1) // self.stride_h + 1

    @property
    def out_w(self) -> int:
        return (self.W + self.pad_left + self.pad_right - self.dilation_w * (self.S - 1) - 1) // self.stride_w + 1

    @property
    def pointwise(self) -> bool:
        return (self.R == 1 and self.S == 1 and self.stride_h == 1 and self.stride_w == 1
                and self.pad_top == self.pad_left == self.pad_bottom == self.pad_right == 0)

    def gemm_shape(self) -> "GemmShape":
        """The GEMM one image and group lowers to (runtime conv2d.cpp): rows are
        output channels, columns output pixels, depth the patch size."""
        return GemmShape(self.K // self.groups, self.out_h * self.out_w,
                         (self.C // self.groups) * self.R * self.S)

    @property
    def flops(self) -> int:
        return 2 * self.N * self.K * self.out_h * self.out_w * (self.C // self.groups) * self.R * self.S

    def label(self) -> str:
        g = f" g{self.groups}" if self.groups > 1 else ""
        return (f"{self.N}x{self.C}x{self.H}x{self.W} * {self.K}x{self.R}x{self.S} "
                f"s{self.stride_h},{self.stride_w}{g}")

