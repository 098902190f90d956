"""Freeze the predictor's picks for every default spec task (the data
tests/build/test_predictor_picks.py compares against).

    PYTHONPATH=python python tests/build/data/make_predictor_picks.py

Made once from the per-config implementation (commit a49f5cf) before the
configure step was vectorised, so the fast path is held to the same picks.
Re-run it only when the picks are meant to change (a new shipped model, a
change of the models in models/ or of the space), and say so in the commit.

Per profile (the built-in x86-64-v4 and x86-64-v3 targets, and the v3 target
seen as x86-64-v2 code) and per task of tasks_from_specs(default specs):
  pick       the "predictor" selector's config (knobs)
  top8       the names of the ranked configs "predictor:8" measures, in order
  ranked     how many configs the model ranked (within MODEL_GUARD)
  score      the top score, as repr (exact)
  plan_sha   sha256 of the predictor plan's JSON (plan.to_dict(), sorted keys)
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("predictor_picks.json.gz")
PROFILES = ("x86-64-v4", "x86-64-v3", "x86-64-v3 as x86-64-v2")


def profiles():
    from autoconfig.probe.targets import _builtin
    from autoconfig.tuning.space import profile_for_isa
    return {"x86-64-v4": _builtin("x86-64-v4"), "x86-64-v3": _builtin("x86-64-v3"),
            "x86-64-v3 as x86-64-v2": profile_for_isa(_builtin("x86-64-v3"), "x86-64-v2")}


def plan_sha(plan) -> str:
    return hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True).encode()).hexdigest()


def picks_for(name: str) -> list:
    """The rows of one profile of PROFILES."""
    from autoconfig import spec
    from autoconfig.tuning import predictor
    from autoconfig.tuning.selectors import select
    from autoconfig.tuning.space import tasks_from_specs
    profile = profiles()[name]
    rows = []
    for task in tasks_from_specs(spec.load_dirs([spec.default_spec_dir()]), profile):
        configs, scores = predictor.rank(task, profile)
        plan = select(task, profile, "predictor")
        rows.append({"task": task.key(), "pick": configs[0].to_dict(), "top8": [c.name() for c in configs[:8]],
                     "ranked": len(configs), "score": repr(float(scores[0])), "plan_sha": plan_sha(plan)})
    return rows


def picks() -> dict:
    return {name: picks_for(name) for name in PROFILES}


def main() -> int:
    OUT.write_bytes(gzip.compress(json.dumps(picks(), indent=0, sort_keys=True).encode(), mtime=0))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
