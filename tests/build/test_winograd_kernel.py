"""Winograd F(2x2,3x3) / F(4x4,3x3) kernels (codegen/conv_winograd.py) against a
float64 NumPy convolution.

Each ISA the host can run (avx512, avx2, generic) gets one standalone shared
library per session: the ISA's vmath header, both emitted kernels inside the
namespaces the generated translation unit opens, and a C-ABI wrapper, compiled
with cpp_runtime/src/runtime.cpp and loaded through ctypes. No build of the
package is needed.

Tolerance: Winograd's error is relative to the magnitudes that meet in a
tile's transforms, not to the result (which may cancel to ~0) nor to one
output's receptive field (an edge output of a tile inherits the rounding of
its whole 6x6 patch, amplified by A^T's coefficients up to 8). So each output
is compared within rtol * max over its channel of sum|x||w| (the float64
magnitude of the terms of one output) + 1e-6 (1 + |bias| + |residual|).
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

from autoconfig.codegen.conv_winograd import WINOGRAD_INCLUDES, emit_winograd  # noqa: E402
from autoconfig.codegen.gemm import emit_vmath_header, vmath_header_name  # noqa: E402
from autoconfig.codegen.isa import isa_for  # noqa: E402

ISA_FLAGS = {
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-mavx2"],
    "avx2": ["-mavx2", "-mfma"],
    "generic": [],
}
# Worst observed |error| / max_channel(sum|x||w|) over 300 random shapes of the
# test grid: 3.2e-7 (F2), 4.2e-6 (F4); about 5x margin.
RTOL = {2: 2e-6, 4: 2e-5}


def host_isas():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        flags = []
    isas = ["generic"]
    if {"avx2", "fma"} <= set(flags):
        isas.insert(0, "avx2")
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags):
        isas.insert(0, "avx512")
    return isas


_WRAPPER = """
extern "C" {{
int64_t wino_f{m}_packed_floats(int64_t K, int64_t C) {{
  return autoconfig::detail::winograd_f{m}::packed_weights_floats(K, C);
}}
void wino_f{m}_pack(const float* w, int64_t K, int64_t C, float* u) {{
  autoconfig::detail::winograd_f{m}::pack_weights(w, K, C, u);
}}
void wino_f{m}_run(int64_t C, int64_t H, int64_t W, int64_t K, int64_t pt, int64_t pl, int64_t pb, int64_t pr,
                   const float* x, const float* u, const float* bias, const float* residual, float lo, float hi,
                   float* y, int threads) {{
  autoconfig::detail::ConvGeometry g{{C, H, W, K, 3, 3, 1, 1, pt, pl, pb, pr, 1, 1, H + pt + pb - 2, W + pl + pr - 2}};
  autoconfig::detail::ConvEpilogue ep{{bias, residual, lo, hi}};
  autoconfig::detail::winograd_f{m}::run(g, x, u, ep, y, threads);
}}
}}
"""


def translation_unit(isa, emit_kwargs=None) -> str:
    """Includes and namespaces as the generated conv TU has them, both kernels, the C ABI."""
    includes = ["algorithm", "cmath", "cstdint", "cstring"] + list(WINOGRAD_INCLUDES)
    src = "".join(f"#include <{h}>\n" for h in includes)
    src += ('#include "autoconfig/detail/conv_kernels.h"\n#include "autoconfig/detail/runtime.h"\n'
            f'#include "{vmath_header_name(isa)}"\n\n'
            "namespace autoconfig {\nnamespace detail {\nnamespace {\n")
    for m in (2, 4):
        src += emit_winograd(isa, m, **(emit_kwargs or {}))
    src += "}  // namespace\n}  // namespace detail\n}  // namespace autoconfig\n"
    src += ('extern "C" void wino_transpose(const float* s, int64_t ss, float* d, int64_t ds) {\n'
            "  autoconfig::detail::winograd_f4::transpose_block(s, ss, d, ds);\n}\n")
    return src + "".join(_WRAPPER.format(m=m) for m in (2, 4))


class WinogradLib:
    """The compiled kernels of one ISA, called through ctypes."""

    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)
        f, i64, i = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        for m in (2, 4):
            getattr(self.lib, f"wino_f{m}_packed_floats").restype = i64
            getattr(self.lib, f"wino_f{m}_packed_floats").argtypes = [i64, i64]
            getattr(self.lib, f"wino_f{m}_pack").argtypes = [f, i64, i64, f]
            getattr(self.lib, f"wino_f{m}_run").argtypes = [i64] * 8 + [f, f, f, f, ctypes.c_float,
                                                                        ctypes.c_float, f, i]

    def transpose(self, lanes: int) -> np.ndarray:
        """The ISA's lanes x lanes block transpose of a strided source into a strided destination."""
        src = np.arange(lanes * (lanes + 3), dtype=np.float32).reshape(lanes, lanes + 3)
        dst = np.full((lanes, lanes + 5), -1.0, np.float32)
        self.lib.wino_transpose(ctypes.c_void_p(src.ctypes.data), lanes + 3, ctypes.c_void_p(dst.ctypes.data),
                                lanes + 5)
        return src, dst

    def pack(self, m: int, w: np.ndarray) -> np.ndarray:
        K, C = w.shape[:2]
        w = np.ascontiguousarray(w, dtype=np.float32)
        u = np.empty(getattr(self.lib, f"wino_f{m}_packed_floats")(K, C), np.float32)
        getattr(self.lib, f"wino_f{m}_pack")(w.ctypes.data, K, C, u.ctypes.data)
        return u

    def run(self, m, x, u, K, pads, bias=None, residual=None, lo=-np.inf, hi=np.inf, threads=1, out=None):
        C, H, W = x.shape
        pt, pl, pb, pr = pads
        Ho, Wo = H + pt + pb - 2, W + pl + pr - 2
        y = out if out is not None else np.empty((K, Ho, Wo), np.float32)
        ptr = lambda a: None if a is None else a.ctypes.data  # noqa: E731
        getattr(self.lib, f"wino_f{m}_run")(C, H, W, K, pt, pl, pb, pr, ptr(x), ptr(u), ptr(bias), ptr(residual),
                                            lo, hi, ptr(y), threads)
        return y


def build(isa_key: str, workdir: str, emit_kwargs=None, opt: str = "-O2") -> WinogradLib:
    """isa_key: avx512 | avx2 | generic."""
    isa = isa_for(isa_key)
    with open(os.path.join(workdir, vmath_header_name(isa)), "w") as f:
        f.write(emit_vmath_header(isa))
    tu = os.path.join(workdir, f"winograd_{isa_key}.cpp")
    with open(tu, "w") as f:
        f.write(translation_unit(isa, emit_kwargs))
    so = os.path.join(workdir, f"winograd_{isa_key}.so")
    cmd = (["g++", "-std=c++17", opt, "-shared", "-fPIC", "-pthread"] + ISA_FLAGS.get(isa_key, [])
           + ["-I", workdir, "-I", os.path.join(ROOT, "cpp_runtime", "include"),
              tu, os.path.join(ROOT, "cpp_runtime", "src", "runtime.cpp"), "-o", so])
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return WinogradLib(so)


def conv_ref(x, w, pads, bias=None, residual=None, lo=-np.inf, hi=np.inf):
    """float64 NCHW convolution, 3x3, stride 1; returns (y, sum|x||w| per output)."""
    pt, pl, pb, pr = pads
    C, H, W = x.shape
    K = w.shape[0]
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr)))
    Ho, Wo = H + pt + pb - 2, W + pl + pr - 2
    acc = np.zeros((K, Ho * Wo))
    mag = np.zeros((K, Ho * Wo))
    for r in range(3):
        for s in range(3):
            patch = xp[:, r:r + Ho, s:s + Wo].reshape(C, -1)
            wrs = w[:, :, r, s].astype(np.float64)
            acc += wrs @ patch
            mag += np.abs(wrs) @ np.abs(patch)
    y = acc.reshape(K, Ho, Wo)
    if bias is not None:
        y = y + bias.astype(np.float64)[:, None, None]
    if residual is not None:
        y = y + residual
    return np.minimum(np.maximum(y, lo), hi), mag.reshape(K, Ho, Wo)


@pytest.fixture(scope="module", params=host_isas())
def lib(request, tmp_path_factory):
    built = build(request.param, str(tmp_path_factory.mktemp(f"winograd_{request.param}")))
    built.lanes = isa_for(request.param).lanes
    return built


def test_transpose_block(lib):
    src, dst = lib.transpose(lib.lanes)
    n = lib.lanes
    np.testing.assert_array_equal(dst[:, :n], src[:, :n].T)
    assert (dst[:, n:] == -1).all()


EPILOGUES = {  # name: (bias, residual, lo, hi)
    "none": (False, False, -np.inf, np.inf),
    "bias": (True, False, -np.inf, np.inf),
    "residual": (False, True, -np.inf, np.inf),
    "bias_relu": (True, False, 0.0, np.inf),
    "residual_relu6": (False, True, 0.0, 6.0),
    "bias_residual_clip": (True, True, -1.0, 2.0),
    "bias_residual_relu": (True, True, 0.0, np.inf),
    "relu6": (False, False, 0.0, 6.0),
}


def check(lib, m, C, K, H, W, pads, epilogue, threads, rng):
    x = rng.standard_normal((C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C, 3, 3), dtype=np.float32)
    has_bias, has_res, lo, hi = EPILOGUES[epilogue]
    Ho, Wo = H + pads[0] + pads[2] - 2, W + pads[1] + pads[3] - 2
    bias = rng.standard_normal(K, dtype=np.float32) if has_bias else None
    res = rng.standard_normal((K, Ho, Wo), dtype=np.float32) if has_res else None
    got = lib.run(m, x, lib.pack(m, w), K, pads, bias, res, lo, hi, threads)
    want, mag = conv_ref(x, w, pads, bias, res, lo, hi)
    extra = (np.abs(bias)[:, None, None] if has_bias else 0) + (np.abs(res) if has_res else 0)
    channel_mag = mag.reshape(K, -1).max(axis=1)[:, None, None]
    tol = RTOL[m] * channel_mag + 1e-6 * (1 + extra)
    err = np.abs(got - want)
    bad = err > tol
    assert not bad.any(), (f"F({m}) C={C} K={K} H={H} W={W} pads={pads} {epilogue} threads={threads}: "
                           f"{bad.sum()} of {bad.size} outside tolerance, max err {err.max():.3g}, "
                           f"first at {np.argwhere(bad)[0].tolist()}")


def _cases(n, seed):
    """n random valid shapes from the brief's grid, every epilogue and both thread counts."""
    rng = np.random.default_rng(seed)
    sizes, chans = [1, 2, 3, 5, 7, 8, 13, 17, 56], [1, 3, 16, 17, 64]
    out = []
    while len(out) < n:
        H, W = rng.choice(sizes, 2)
        C, K = rng.choice(chans, 2)
        pads = tuple(int(p) for p in rng.integers(0, 3, 4))
        if H + pads[0] + pads[2] < 3 or W + pads[1] + pads[3] < 3:
            continue
        if H * W * C * K > 56 * 56 * 17 * 17:  # keep the float64 reference quick
            continue
        epi = list(EPILOGUES)[len(out) % len(EPILOGUES)]
        out.append((int(C), int(K), int(H), int(W), pads, epi, 1 + len(out) % 2))
    return out


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", _cases(80, 7), ids=lambda c: "C{}K{}_{}x{}_p{}{}{}{}_{}_t{}".format(
    c[0], c[1], c[2], c[3], *c[4], c[5], c[6]))
def test_random_shapes(lib, m, case):
    C, K, H, W, pads, epi, threads = case
    check(lib, m, C, K, H, W, pads, epi, threads, np.random.default_rng(hash(case) % 2**32))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("C,K,H,W,pads", [
    (1, 1, 1, 1, (1, 1, 1, 1)),          # 1x1 output from a 1x1 image
    (3, 1, 3, 3, (0, 0, 0, 0)),          # 1x1 output, no padding
    (17, 3, 7, 7, (1, 1, 1, 1)),         # partial tiles at both edges
    (16, 17, 2, 13, (2, 0, 0, 2)),       # asymmetric, pads larger than 1
    (64, 64, 56, 56, (1, 1, 1, 1)),      # ResNet res2 geometry
    (64, 64, 8, 17, (0, 2, 1, 0)),
    (130, 70, 14, 14, (1, 1, 1, 1)),     # C above the reduction block, K over several panels
])
@pytest.mark.parametrize("threads", [1, 2])
def test_edges_and_blocks(lib, m, C, K, H, W, pads, threads):
    check(lib, m, C, K, H, W, pads, "bias_residual_clip", threads, np.random.default_rng(C * 1000 + K))


@pytest.mark.parametrize("m", [2, 4])
def test_thread_count_does_not_change_results(lib, m):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 13, 17), dtype=np.float32)
    w = rng.standard_normal((48, 32, 3, 3), dtype=np.float32)
    u = lib.pack(m, w)
    one = lib.run(m, x, u, 48, (1, 1, 1, 1), threads=1)
    two = lib.run(m, x, u, 48, (1, 1, 1, 1), threads=2)
    np.testing.assert_array_equal(one, two)   # same blocks, same summation order


@pytest.mark.skipif(not os.environ.get("WINOGRAD_MEASURE_ERROR"), reason="set WINOGRAD_MEASURE_ERROR=1")
@pytest.mark.parametrize("m", [2, 4])
def test_measure_error(lib, m):
    """Prints max |y - y64| / max |y64| at C = K = 256, 14x14, N(0,1) data (WINOGRAD_REL_ERROR)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 14, 14), dtype=np.float32)
    w = rng.standard_normal((256, 256, 3, 3), dtype=np.float32)
    got = lib.run(m, x, lib.pack(m, w), 256, (1, 1, 1, 1))
    want, _ = conv_ref(x, w, (1, 1, 1, 1))
    print(f"\nF({m}) max relative error {np.abs(got - want).max() / np.abs(want).max():.3g}")


def test_scalable_isa_is_refused():
    """A vector-length-agnostic ISA has no lane count to block by: the generator
    emits Winograd for its fixed-lanes view (NEON for SVE) instead."""
    with pytest.raises(ValueError, match="fixed lane count"):
        emit_winograd(isa_for("sve"), 2)
