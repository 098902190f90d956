"""Runtime API over the compiled kernels: matmul, gemm, host, explain
(conv2d and the blocked layout: conv_api.py).

Inputs are checked here so a bad argument raises a TypeError/ValueError that
names it; the kernels then run with the GIL released. Arrays of any strides
are accepted; they are passed without copying whenever the kernel can read
them in place (any strides for a and b, a contiguous last axis for out,
residual and c).
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

from ._isa_guard import ext as _ext
from .plan import Plan, plans_from_json
from .profile import HostProfile

ACTIVATIONS = ("none", "relu", "relu6", "gelu_tanh", "gelu_erf")
_ACT_ALIASES = {None: "none", "gelu": "gelu_erf"}
_FAST_ACT = {None: 0, **{n: i for i, n in enumerate(ACTIVATIONS)}, "gelu": 4}
_ND = np.ndarray


def _require_ext():
    if _ext is None:
        raise RuntimeError("autoconfig's compiled kernels are not built in this tree: "
                           "install the package (pip install .) to use the runtime API")
    return _ext


def _activation_code(activation) -> int:
    try:
        name = _ACT_ALIASES.get(activation, activation)
    except TypeError:  # unhashable
        name = None
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation: expected None or one of {', '.join(ACTIVATIONS)} "
                         f"(or 'gelu' = gelu_erf), got {activation!r}")
    return ACTIVATIONS.index(name)


def _threads_arg(threads) -> int:
    if threads is None:
        return 0
    if type(threads) is int and threads >= 1:   # fast path for the common case
        return threads
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads: expected None or an integer >= 1, got {threads!r}")
    return int(threads)


_F32 = np.dtype(np.float32)


def _f32_array(x, name: str, ndim: Optional[int] = None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32, got {type(x).__name__}")
    if x.dtype != _F32:
        raise TypeError(f"{name}: expected dtype float32, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}")
    return x


def _element_strided(x: np.ndarray) -> np.ndarray:
    """Kernels take strides in elements: a view whose byte strides are not
    multiples of 4 (possible with np.lib.stride_tricks) is copied."""
    for s in x.strides:
        if s % 4:
            return np.ascontiguousarray(x)
    return x


def _row_contiguous(x: np.ndarray) -> np.ndarray:
    """Last axis contiguous (what the kernel needs for C-like operands)."""
    if x.shape[-1] > 1 and x.strides[-1] != 4:
        return np.ascontiguousarray(x)
    return _element_strided(x)


def _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, act, threads, out2, out_is_new):
    ext = _require_ext()
    if out2.size == 0:
        return
    target = out2
    if not out_is_new:
        # The kernel writes out while reading a and b: never let them overlap;
        # it also needs out's rows contiguous.
        if (out2.shape[1] > 1 and out2.strides[1] != 4) or out2.strides[0] % 4 \
                or np.may_share_memory(out2, a2) or np.may_share_memory(out2, b2):
            target = np.empty(out2.shape, dtype=np.float32)
            if c_in is not None and np.may_share_memory(c_in, out2):
                c_in = c_in.copy()
    ext.gemm(_element_strided(a2), _element_strided(b2), target, c_in, bias_col, bias_row,
             float(alpha), float(beta), act, threads)
    if target is not out2:
        out2[...] = target


def matmul(a, b, *, bias=None, activation=None, residual=None, out=None, threads=None):
    """out = activation(a @ b + bias + residual).

    a: (..., M, K) float32; leading axes are flattened into M (b is shared).
    b: (K, N) float32. bias: (N,) float32. residual: same shape as the result
    (may be `out` itself for an in-place residual add). activation: None,
    'relu', 'relu6', 'gelu_tanh', 'gelu_erf' (alias 'gelu').
    threads: None (the plan's choice for this shape) or a count >= 1.
    """
    # Fast path: the compiled module takes two 2-D float32 arrays, an optional
    # bias and `out` as they are, or returns None for anything unusual; the
    # checked path below then handles it (or explains what is wrong).
    if residual is None and _ext is not None and (threads is None or (type(threads) is int and threads > 0)):
        act = _FAST_ACT.get(activation) if (activation is None or type(activation) is str) else None
        if act is not None:
            r = _ext.matmul_fast(a, b, bias, out, act, threads or 0)
            if r is not None:
                return r
    a = _f32_array(a, "a")
    b = _f32_array(b, "b", 2)
    if a.ndim < 2:
        raise ValueError(f"a: expected at least 2 dimensions (..., M, K), got shape {a.shape}")
    K = a.shape[-1]
    if b.shape[0] != K:
        raise ValueError(f"b: expected {K} rows to match a's last axis (a.shape={a.shape}), got b.shape={b.shape}")
    N = b.shape[1]
    act = _activation_code(activation)
    t = _threads_arg(threads)
    out_shape = a.shape[:-1] + (N,)
    a2 = a.reshape(-1, K) if a.ndim > 2 else a
    M = a2.shape[0]
    bias_col = None
    if bias is not None:
        bias = _f32_array(bias, "bias")
        if bias.shape != (N,):
            raise ValueError(f"bias: expected shape ({N},), got {bias.shape}")
        bias_col = np.ascontiguousarray(bias)
    c_in = None
    if residual is not None:
        residual = _f32_array(residual, "residual")
        if residual.shape != out_shape:
            raise ValueError(f"residual: expected shape {out_shape}, got {residual.shape}")
        c_in = _row_contiguous(residual.reshape(M, N))
    out_is_new = out is None
    if out_is_new:
        out = np.empty(out_shape, dtype=np.float32)
    else:
        out = _f32_array(out, "out")
        if out.shape != out_shape:
            raise ValueError(f"out: expected shape {out_shape}, got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
    out2 = _view_2d(out, M, N)
    if out2 is None:  # leading axes not mergeable in place: compute, then copy in
        tmp = np.empty((M, N), dtype=np.float32)
        _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, tmp, True)
        out[...] = tmp.reshape(out_shape)
        return out
    _run_gemm(a2, b, c_in, 1.0, bias_col, None, 1.0, act, t, out2, out_is_new)
    return out


def _finite_f32(v) -> bool:
    """v stays finite as a float32 (1e39 passes math.isfinite but becomes inf)."""
    try:
        f = float(v)
    except OverflowError:   # an int past the double range
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(f)))


def _view_2d(x: np.ndarray, M: int, N: int):
    """x as an (M, N) view without copying, or None when that needs a copy."""
    if x.ndim == 2:
        return x
    try:
        return np.reshape(x, (M, N), copy=False)
    except TypeError:  # NumPy < 2.1 has no copy= on reshape
        v = x.view()
        try:
            v.shape = (M, N)
        except AttributeError:
            return None
        return v
    except ValueError:
        return None


def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, trans_a=False, trans_b=False, out=None, threads=None):
    """ONNX Gemm: Y = alpha * A' @ B' + beta * C, A' = A.T if trans_a, B' = B.T if trans_b.

    c is optional and unidirectionally broadcastable to (M, N): a scalar,
    (N,), (1, N), (M, 1), (1, 1) or (M, N). Returns Y (float32, (M, N)).
    """
    a = _f32_array(a, "a", 2)
    b = _f32_array(b, "b", 2)
    for name, v in (("alpha", alpha), ("beta", beta)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not _finite_f32(v):
            raise ValueError(f"{name}: expected a finite real number (finite in float32: "
                             f"|{name}| <= {float(np.finfo(np.float32).max):.7g}), got {v!r}")
    for name, v in (("trans_a", trans_a), ("trans_b", trans_b)):
        if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
            raise ValueError(f"{name}: expected a bool, got {v!r}")
    a2 = a.T if trans_a else a
    b2 = b.T if trans_b else b
    M, K = a2.shape
    if b2.shape[0] != K:
        raise ValueError(f"b: op(b) has {b2.shape[0]} rows but op(a) has {K} columns "
                         f"(a.shape={a.shape}, trans_a={bool(trans_a)}, b.shape={b.shape}, trans_b={bool(trans_b)})")
    N = b2.shape[1]
    t = _threads_arg(threads)
    c_in = bias_col = bias_row = None
    if c is not None:
        if isinstance(c, numbers.Real) and not isinstance(c, bool):
            c = np.float32(c)
        if isinstance(c, np.floating):
            c = np.asarray(c, dtype=np.float32)
        c = _f32_array(c, "c")
        cs = c.shape
        if c.ndim > 2 or (c.ndim == 2 and cs[0] not in (1, M)) or (c.ndim >= 1 and cs[-1] not in (1, N)):
            raise ValueError(f"c: expected a shape broadcastable to ({M}, {N}) "
                             f"(scalar, ({N},), (1, {N}), ({M}, 1) or ({M}, {N})), got {cs}")
        # Also for beta = 0: ONNX's formula gives 0 * C, NaN where C is NaN or infinite.
        if c.ndim == 2 and cs == (M, N) and (M > 1 or N == 1):
            c_in = _row_contiguous(c)
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf = NaN, as the formula says
                if c.ndim == 2 and cs[1] == 1 and cs[0] == M and M > 1:
                    bias_row = np.ascontiguousarray(c[:, 0] * np.float32(beta), dtype=np.float32)
                else:
                    bias_col = np.ascontiguousarray(np.broadcast_to(c.reshape(-1) * np.float32(beta), (N,)),
                                                    dtype=np.float32)
    out_is_new = out is None
    if out_is_new:
        out = np.empty((M, N), dtype=np.float32)
    else:
        out = _f32_array(out, "out", 2)
        if out.shape != (M, N):
            raise ValueError(f"out: expected shape ({M}, {N}), got {out.shape}")
        if not out.flags.writeable:
            raise ValueError("out: array is read-only")
    _run_gemm(a2, b2, c_in, beta, bias_col, bias_row, alpha, 0, t, out, out_is_new)
    return out


def host() -> HostProfile:
    """The HostProfile the kernels in this build were planned for."""
    return HostProfile.from_json(_require_ext().host_profile_json())


def plans():
    """Every plan compiled into this build."""
    return plans_from_json(_require_ext().plans_json())


def build_info() -> dict:
    ext = _require_ext()
    return {"isa": ext.build_isa(), "target": ext.build_target(),
            "required_features": list(ext.required_features()),
            "cpu_features": list(ext.cpu_features()),
            "variants": list(ext.build_variants())}


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
    dilations=.., groups=..): every algorithm's estimate and the choice."""
    if op == "conv2d":
        from .conv_api import explain_conv2d
        return explain_conv2d(N=1 if N is None else N, K=K, threads=threads, **conv)
    if conv:
        raise TypeError(f"explain({op!r}): unexpected arguments {sorted(conv)}")
    if op not in ("matmul", "gemm"):
        raise ValueError(f"op: expected 'matmul', 'gemm' or 'conv2d', got {op!r}")
    for name, v in (("M", M), ("N", N), ("K", K)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    act = _activation_code(activation)
    t = _threads_arg(threads)
    choice = _require_ext().gemm_choice(int(M), int(N), int(K), act, t)
    by_kernel = {p.kernel: p for p in plans()}
    plan = by_kernel[choice["kernel"]]
    notes = []
    if not choice["specialized"]:
        from .models import gemm as gemm_model
        prof = host()
        mr, nr = plan.value("mr"), plan.value("nr")
        tile = gemm_model.Tile(mr, nr, nr // max(1, prof.lanes_f32))
        est = gemm_model.estimate(gemm_model.Machine(prof), tile, int(M), int(N), int(K), choice["threads"],
                                  plan.value("loop_order"))
        notes.append("no kernel specialized for this shape (add it to a spec to get one); "
                     f"the generic kernel runs with kc={est.kc}, mc={est.mc}, nc={est.nc}, "
                     f"grid {est.grid[0]}x{est.grid[1]}")
        notes.append(f"model estimate for this shape: {est.seconds * 1e6:.1f} us ("
                     + ", ".join(f"{k}={v * 1e6:.1f}us" for k, v in est.terms.items()) + ")")
    return Explanation(plan, choice["kernel"], choice["threads"], choice["specialized"], notes)
