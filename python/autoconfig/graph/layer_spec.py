"""The conv and GEMM layers of a planned graph as a kernels_spec YAML
(spec.py, format version 1; the style of kernels_spec/conv_resnet50.yaml),
so a build (`-C cmake.define.AUTOCONFIG_SPECS=DIR`) specializes kernels for
exactly these layers. One kernel entry per (op, epilogue): conv2d entries
by activation, bias and residual; Gemm entries by transposes and bias;
MatMul entries; each with the distinct shapes and the planned thread counts.
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

from .ir import Graph
from .planner import conv_layer, gemm_call_shape

_CONV_KEYS = ("C", "H", "W", "K", "R", "S", "N", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
              "pad_right", "dilation_h", "dilation_w", "groups")
_DEFAULTS = {"N": 1, "stride_h": 1, "stride_w": 1, "pad_top": 0, "pad_left": 0, "pad_bottom": 0, "pad_right": 0,
             "dilation_h": 1, "dilation_w": 1, "groups": 1}


def _ident(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_").lower() or "model"
    return s if s[0].isalpha() else f"m_{s}"


def _flow(d: Dict[str, object]) -> str:
    return "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in d.items()) + "}"


def layer_spec_yaml(g: Graph) -> str:
    model = _ident(g.name)
    groups: Dict[Tuple, Dict] = {}
    for n in g.nodes:
        if n.op == "conv":
            L = conv_layer(g, n)
            shape = {k: getattr(L, k) for k in _CONV_KEYS if getattr(L, k) != _DEFAULTS.get(k)}
            residual = len(n.inputs) > 3 and bool(n.inputs[3])
            bias = bool(n.inputs[2])
            act = n.attrs.get("activation", "none")
            key = ("conv2d", act, bias, residual, False, False)
            name = f"{model}_conv_{act}" + ("_residual" if residual else "") + ("" if bias else "_nobias")
        elif n.op in ("gemm", "matmul"):
            m, nn, k = gemm_call_shape(g, n)
            ta = bool(n.attrs.get("trans_a", 0))
            tb = bool(n.attrs.get("trans_b", 0))
            shape = {"M": m, "N": nn, "K": k}
            if n.op == "gemm":
                if ta:
                    shape["trans_a"] = True
                if tb:
                    shape["trans_b"] = True
            bias = bool(n.inputs[2:3] and n.inputs[2])
            residual = n.op == "matmul" and len(n.inputs) > 3 and bool(n.inputs[3])
            act = n.attrs.get("activation", "none")
            key = (n.op, act, bias, residual, ta, tb)
            name = f"{model}_{n.op}_{act}" + ("_residual" if residual else "") + ("" if bias else "_nobias")
        else:
            continue
        entry = groups.setdefault(key, {"name": name, "shapes": [], "threads": set(), "layers": []})
        if shape not in entry["shapes"]:
            entry["shapes"].append(shape)
        entry["threads"].add(max(1, n.threads or 1))
        entry["layers"].append(n.name)
    lines: List[str] = [f"# The conv and GEMM layers of {g.name} (autoconfig import-onnx), with their fused",
                        "# epilogues and the planner's thread counts: build with them to specialize kernels.",
                        "version: 1", "kernels:"]
    if not groups:
        lines[-1] = "kernels: []"
    for (op, act, bias, residual, _, _), e in groups.items():
        lines.append(f"  - name: {e['name']}")
        lines.append(f"    op: {op}")
        lines.append("    dtype: float32")
        lines.append(f"    activations: [{act}]")
        lines.append(f"    bias: {'true' if bias else 'false'}")
        if residual:
            lines.append("    residual: true")
        lines.append(f"    threads: [{', '.join(str(t) for t in sorted(e['threads']))}]")
        lines.append(f"    # {len(e['layers'])} layer(s)")
        lines.append("    shapes:")
        lines.extend(f"      - {_flow(s)}" for s in e["shapes"])
    return "\n".join(lines) + "\n"
