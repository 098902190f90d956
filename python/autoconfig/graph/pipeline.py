"""The build stage end to end: ONNX -> import -> passes -> plan -> files.
What `autoconfig import-onnx` and `autoconfig plan-model` run."""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple

from ..profile import HostProfile
from . import acmodel, layer_spec, planner
from .onnx_import import InputShapes, import_onnx
from .passes import PASSES, UNFUSED, run_passes


# --layouts: what planner.plan's `layouts` takes for each.
LAYOUTS = {"auto": True, "nchw": False, "blocked": "blocked"}


def compile_onnx(model, profile: HostProfile, *, input_shape: InputShapes = None, threads: Optional[int] = None,
                 tolerance: Optional[float] = None, name: Optional[str] = None,
                 optimize: bool = True, compare: bool = False,
                 constants: Optional[Mapping[str, Any]] = None, layouts: str = "auto", fusion: bool = True,
                 all_threads: bool = False, node_threads: Optional[Mapping[str, int]] = None
                 ) -> planner.NetworkPlan:
    """compare: also plan the "no optimization" baseline (no passes, every node
    on all threads) and note the predicted speed-up (DLFusion's comparison).
    constants: graph inputs bound to values at import (import_onnx).
    layouts: "auto" (the planner's choice), "nchw" (no blocked tensor, no
    concat in place) or "blocked" (every activation that can be, is).
    optimize=False: no passes at all (batch-norms stay nodes); fusion=False:
    the folds but no fusion (every conv, activation and Add its own node).
    all_threads / node_threads: planner.plan's (every node on all cores;
    given counts per node name)."""
    if layouts not in LAYOUTS:
        raise ValueError(f"layouts: expected one of {', '.join(LAYOUTS)}, got {layouts!r}")
    g = import_onnx(model, input_shape, name=name, constants=constants)
    changes: Dict[str, int] = run_passes(g, PASSES if fusion else UNFUSED) if optimize else {}
    p = planner.plan(g, profile, threads=threads, tolerance=tolerance, layouts=LAYOUTS[layouts],
                     all_threads=all_threads, node_threads=node_threads)
    if changes:
        p.notes.append("passes: " + ", ".join(f"{k} x{v}" for k, v in changes.items() if v))
    if compare:
        base = planner.plan(import_onnx(model, input_shape, name=name, constants=constants), profile,
                            threads=threads, tolerance=tolerance, all_threads=True)
        p.notes.append(f"predicted: planned {p.total_ms:.3f} ms ({len(p.graph.nodes)} nodes) vs no optimization "
                       f"{base.total_ms:.3f} ms ({len(base.graph.nodes)} nodes, no fusion, every node on all "
                       f"{base.cores} thread(s)): {base.total_ms / p.total_ms:.2f}x")
    return p


def write_outputs(p: planner.NetworkPlan, out_dir: str, name: Optional[str] = None) -> Tuple[str, str]:
    """DIR/<name>.acmodel and DIR/<name>.yaml; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, name or p.graph.name)
    acmodel.write(p.graph, base + ".acmodel")
    text = layer_spec.layer_spec_yaml(p.graph)
    tmp = f"{base}.yaml.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, base + ".yaml")
    return base + ".acmodel", base + ".yaml"
