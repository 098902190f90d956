"""The predictor's configure step keeps its picks: every default spec task's
pick, the top 8 predictor:8 measures, the number of configs ranked, the top
score (exact) and the plan (its JSON's hash) equal the ones frozen from the
per-config implementation (data/make_predictor_picks.py made them; re-run it
only when the picks are meant to change)."""
import gzip
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import make_predictor_picks as frozen  # noqa: E402

EXPECTED = json.loads(gzip.decompress(frozen.OUT.read_bytes()))


@pytest.mark.parametrize("name", frozen.PROFILES)
def test_picks_equal_the_frozen_ones(name):
    got = frozen.picks_for(name)
    want = EXPECTED[name]
    assert [r["task"] for r in got] == [r["task"] for r in want]
    for g, w in zip(got, want):
        assert g == w, g["task"]
