"""The conv model in C++ (run-time choice for layers no spec listed) and in
Python (models/conv.py: build-time plans, explain) must agree: same
estimates, same choice, on many layers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from autoconfig.models import conv as conv_model

LAYERS = [
    # N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, groups
    (1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1),
    (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 512, 7, 7, 2048, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 256, 14, 14, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1),
    (1, 96, 112, 112, 96, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 96),
    (1, 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 960),
    (2, 17, 9, 11, 33, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1),
    (1, 6, 12, 10, 9, 3, 3, 1, 2, 0, 1, 2, 0, 1, 1, 3),
    (1, 16, 7, 7, 48, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 16),
    (1, 8, 10, 10, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1),
    (3, 2, 5, 6, 4, 2, 3, 3, 2, 0, 2, 1, 0, 2, 1, 2),
]


def _cpp(ac, L, threads):
    N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, g = L
    return ac._ext.conv2d_choice(N, C, H, W, K, R, S, [sh, sw], [pt, pl, pb, pr], [dh, dw], g, threads, 0xFFFFFFFF)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("L", LAYERS, ids=[f"L{i}" for i in range(len(LAYERS))])
def test_cpp_and_python_models_agree(ac, L, threads):
    profile = ac.host()
    cpp = _cpp(ac, L, threads)
    cands = conv_model.candidates(profile, conv_model.Layer(*L), threads)
    py = {}
    for c in cands:
        if c.rejected is None:
            alg = c.name.split()[0]
            py[alg] = min(py.get(alg, math.inf), c.predicted_s)
    for alg, est in cpp["estimates"].items():
        if est < 0:
            assert alg not in py, f"{alg}: Python applies it, C++ does not"
            continue
        assert alg in py, f"{alg}: C++ applies it, Python does not"
        assert est == pytest.approx(py[alg], rel=1e-6), f"{alg} estimate"
    if not cpp["planned"]:
        best = min(py, key=py.get)
        assert cpp["algorithm"] == best


def test_model_rejects_with_reasons():
    L = conv_model.Layer(1, 8, 10, 10, 12, 1, 1, 2, 2)
    why = conv_model.applicable(L)
    assert why["winograd-f4"] == "needs a 3x3 kernel"
    assert "pointwise" in why["gemm-1x1"]
    assert why["im2col-gemm"] is None


def test_explain_conv2d(ac):
    e = ac.explain("conv2d", N=1, C=64, H=56, W=56, K=64, R=3, S=3, pads=1, threads=1)
    text = str(e)
    assert "winograd-f4" in text and "direct" in text and "im2col-gemm" in text
    assert e.plan.algorithm in ac.CONV_ALGORITHMS
    assert e.plan.algorithm == _cpp(ac, (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 1)["algorithm"]
