"""The attention model in C++ (cpp_runtime/src/attention.cpp: the run-time
choice of attention()) and in Python (models/attention.py: the graph planner,
explain) must agree: same terms, same seconds, same choice, key block and
register tile, on shapes from one query to BERT-large and on odd sizes."""
from __future__ import annotations

import math

import pytest

from autoconfig.models import attention as attention_model

SHAPES = [  # B, H, S, Sk, D
    (1, 12, 384, 384, 64),
    (4, 12, 128, 128, 64),
    (1, 16, 512, 512, 64),
    (1, 12, 8, 8, 64),
    (1, 1, 1, 1, 1),
    (2, 3, 17, 29, 40),
    (1, 8, 77, 200, 96),
    (3, 5, 250, 7, 13),
]


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_cpp_mirror_agrees(ac, shape, threads):
    from autoconfig.runtime.info import host
    cpp = ac.attention_choice(*shape, threads=threads)
    py = attention_model.estimate(host(), attention_model.AttentionShape(*shape), cpp["threads"])
    assert cpp["key_block"] == py.key_block and cpp["tile_rows"] == py.tile.rows
    for side, terms in (("fused", py.fused), ("unfused", py.unfused)):
        got = dict(cpp[f"{side}_terms"])
        assert set(got) == set(terms), side
        for name, seconds in terms.items():
            assert math.isclose(got[name], seconds, rel_tol=1e-9, abs_tol=1e-15), f"{side} {name}"
    assert math.isclose(cpp["fused_s"], py.fused_s, rel_tol=1e-9)
    assert math.isclose(cpp["unfused_s"], py.unfused_s, rel_tol=1e-9)
    assert cpp["algorithm"] == py.algorithm
