"""explain(): what runs for a call, and why — the one bridge from the runtime to the models.

The runtime (autoconfig.runtime) asks the extension which kernel a call runs;
the reasons behind it are the models' estimates, which this module recomputes
with the same formulas the build used. Nothing in runtime/ imports this
module or the models (tests/package/test_imports.py keeps it so). The module is not
named explain.py: that would shadow the function autoconfig.explain.
"""
from __future__ import annotations

from typing import Sequence

from .codegen.isa import fixed_lanes_isa_for_profile, isa_for_profile
from .models import attention as attention_model
from .models import conv as conv_model
from .models import gemm as gemm_model
from .plan import Plan
from .runtime.checks import activation_code, fits_int64, is_int, positive_int, threads_arg
from .runtime.conv_args import LAYER_INT_MAX, algorithm_choice, conv_layer, layout_arg, layout_code, tolerance_arg
from .runtime.guard import require_ext
from .runtime.info import host, plans


class Explanation:
    """What runs for a call, and why: the plan, plus run-time decisions."""

    def __init__(self, plan: Plan, kernel: str, threads: int, specialized: bool, notes: Sequence[str]):
        self.plan = plan
        self.kernel = kernel
        self.threads = threads
        self.specialized = specialized
        self.notes = list(notes)

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "threads": self.threads, "specialized": self.specialized,
                "notes": self.notes, "plan": self.plan.to_dict()}

    def __str__(self) -> str:
        head = [f"runs {self.kernel} with {self.threads} thread(s) "
                f"({'shape-specialized' if self.specialized else 'generic'} kernel)"]
        return "\n".join(head + [f"note: {n}" for n in self.notes] + [self.plan.explain()])

    __repr__ = __str__


def explain(op: str = "matmul", *, M: int = None, N: int = None, K: int = None, activation=None, threads=None,
            **conv) -> Explanation:
    """The plan and the reasons behind the kernel a call of this shape runs.

    matmul / gemm: explain("matmul", M=.., N=.., K=..).
    conv2d: explain("conv2d", N=1, C=.., H=.., W=.., K=.., R=.., S=.., strides=.., pads=..,
    dilations=.., groups=..): every algorithm's estimate and the choice.
    attention: explain("attention", B=1, H=.., S=.., Sk=.., D=..): fused vs unfused, term by term."""
    if op == "attention":
        return explain_attention(threads=threads, **conv)
    if op == "conv2d":
        return explain_conv2d(N=1 if N is None else N, K=K, threads=threads, **conv)
    if conv:
        raise TypeError(f"explain({op!r}): unexpected arguments {sorted(conv)}")
    if op not in ("matmul", "gemm"):
        raise ValueError(f"op: expected 'matmul', 'gemm', 'conv2d' or 'attention', got {op!r}")
    M, N, K = (positive_int(v, name) for name, v in (("M", M), ("N", N), ("K", K)))
    fits_int64(M * K, "M, K", "a's M*K")
    fits_int64(K * N, "K, N", "b's K*N")
    fits_int64(M * N, "M, N", "the result's M*N")
    act = activation_code(activation)
    t = threads_arg(threads)
    choice = require_ext().gemm_choice(M, N, K, act, t)
    plan = {p.kernel: p for p in plans()}[choice["kernel"]]
    notes = []
    if not choice["specialized"]:
        prof = host()
        mr, nr = plan.value("mr"), plan.value("nr")
        tile = gemm_model.Tile(mr, nr, nr // max(1, prof.lanes_f32))
        est = gemm_model.estimate(gemm_model.Machine(prof), tile, M, N, K, choice["threads"],
                                  plan.value("loop_order"))
        notes.append("no kernel specialized for this shape (add it to a spec to get one); "
                     f"the generic kernel runs with kc={est.kc}, mc={est.mc}, nc={est.nc}, "
                     f"grid {est.grid[0]}x{est.grid[1]}")
        notes.append(f"model estimate for this shape: {est.seconds * 1e6:.1f} us ("
                     + ", ".join(f"{k}={v * 1e6:.1f}us" for k, v in est.terms.items()) + ")")
    return Explanation(plan, choice["kernel"], choice["threads"], choice["specialized"], notes)


def explain_attention(B=1, H=None, S=None, Sk=None, D=None, threads=None) -> "attention_model.AttentionEstimate":
    """What autoconfig.attention runs for (B, H, S, Sk, D) (Sk None: S): the thread
    count and algorithm the run-time model picks, with both estimates' terms
    (models/attention.py; the C++ mirror agrees, tests/build/test_attention_model.py)."""
    Sk = S if Sk is None else Sk
    dims = [positive_int(v, name) for name, v in (("B", B), ("H", H), ("S", S), ("Sk", Sk), ("D", D))]
    choice = require_ext().attention_choice(*dims, threads_arg(threads))
    est = attention_model.estimate(host(), attention_model.AttentionShape(*dims), choice["threads"])
    est.notes.append(f"the run-time choice: {choice['algorithm']} on {choice['threads']} thread(s), "
                     f"key block {choice['key_block']}")
    return est


def explain_conv2d(N=1, C=None, H=None, W=None, K=None, R=None, S=None, strides=(1, 1), pads=(0, 0, 0, 0),
                   dilations=(1, 1), groups=1, threads=None, layout="nchw", input_layout=None,
                   tolerance=None, prepared=True) -> Explanation:
    """explain("conv2d", ...): the model's candidates, estimates and choice for a layer.
    prepared=True: for a prepared layer (prepare_conv2d), chosen by run time alone;
    prepared=False: for a one-off conv2d() call, whose estimates carry the
    weight preparation it pays every call (term "prepare"). The notes give the
    other mode's choice."""
    N = positive_int(N, "N", minimum=0, maximum=LAYER_INT_MAX)
    C, H, W, K, R, S = (positive_int(v, name, maximum=LAYER_INT_MAX) for name, v in
                        (("C", C), ("H", H), ("W", W), ("K", K), ("R", R), ("S", S)))
    layout = layout_arg(layout, "layout")
    input_layout = layout if input_layout is None else layout_arg(input_layout, "input_layout")
    g = groups if is_int(groups) and groups >= 1 else 1   # conv_layer reports a bad groups
    sh, sw, pads4, dh, dw, Ho, Wo = conv_layer((N, C, H, W), (K, C // g, R, S), strides, pads, dilations, groups)
    fits_int64(N * C * H * W, "N, C, H, W", "the input's N*C*H*W")
    fits_int64(N * K * Ho * Wo, "N, K, H, W, strides, pads", "the output's N*K*Ho*Wo")
    t = threads_arg(threads)
    tol = tolerance_arg(tolerance)
    prepared = bool(prepared)
    choices = {p: require_ext().conv2d_choice(N, C, H, W, K, R, S, [sh, sw], list(pads4), [dh, dw], int(groups), t,
                                              algorithm_choice(None), tol, layout_code(input_layout),
                                              layout_code(layout), prepared=p) for p in (True, False)}
    choice = choices[prepared]
    pt, pl, pb, pr = pads4
    layer = conv_model.Layer(C=C, H=H, W=W, K=K, R=R, S=S, N=max(1, N), stride_h=sh, stride_w=sw, pad_top=pt,
                             pad_left=pl, pad_bottom=pb, pad_right=pr, dilation_h=dh, dilation_w=dw,
                             groups=int(groups))
    ctx = conv_model.Context(in_blocked=input_layout == "blocked", out_blocked=layout == "blocked")
    prof = host()
    plan = conv_model.plan_layer(prof, layer, isa_suffix=isa_for_profile(prof).suffix, threads=choice["threads"],
                                 ctx=ctx, tolerance=tol or None,
                                 fixed_lanes_suffix=fixed_lanes_isa_for_profile(prof).suffix, prepared=prepared)
    run, prep, one = choices[True]["estimates"], choices[True]["prepare"], choices[False]["estimates"]
    notes = ["prepared layer (prepare_conv2d): " + choices[True]["algorithm"] + "; one-off conv2d(): "
             + choices[False]["algorithm"] + " (it pays the weight preparation every call)"
             + (": the same algorithm either way" if choices[False]["algorithm"] == choice["algorithm"]
                and choices[True]["algorithm"] == choice["algorithm"] else ""),
             "run + prepare ms (one-off estimate, with any reload): "
             + ", ".join(f"{a} {run[a] * 1e3:.3f} + {prep[a] * 1e3:.3f} ({one[a] * 1e3:.3f})"
                         for a in run if run[a] >= 0)]
    if not prepared and choice["algorithm"] == "direct":
        notes.append("one-off direct: " + ("each thread packs a group's weights just before computing it, "
                                           "into L2 (term prepare; no reload)" if choice["pack_groups"] else
                                           "all weights packed first, then the run (term reload when they spill L3)"))
    if choice["planned"]:
        notes.append("this layer is in a spec: the build carries its plan")
    else:
        notes.append("no spec lists this layer: the run-time model (the same formulas) chose it")
    if choice["algorithm"] != plan.algorithm:
        notes.append(f"the build's plan runs {choice['algorithm']} (planned for this build's spec thread count)")
    return Explanation(plan, plan.kernel, choice["threads"], choice["planned"], notes)
