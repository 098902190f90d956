"""Graph planner: for every node the algorithm, the thread count, the
predicted time and the reasons; then the activation arena by liveness.
Reads only the IR, the HostProfile and the operator models (models/conv.py,
models/gemm.py); records its choices on the nodes (FORMAT.md: threads,
predicted_ms, fused, why; conv attrs.algorithm) and on the graph
(arena_floats, each intermediate's arena offset).

Network time (nodes run one after another; a fused group is one node, so it
is one parallel region with one thread count, as DLFusion plans them):
  T_network = sum over nodes of T(node, t_node)
  T(conv, t)        = the conv model's cheapest applicable algorithm on t
                      threads, NCHW around the call (models/conv.candidates:
                      compute, streams, packing, layout conversion, sync)
  T(gemm/matmul, t) = models/gemm.plan_shape(M, N, K, threads=t); a batched
                      matmul (attention's per-head products) as one GEMM
                      of batch x M rows (the executor runs the batches on
                      separate threads, each GEMM on one)
  T(other, t)       = max(compute, memory) + sync, where
                        memory  = bytes read + written / (one core's bandwidth
                                  of the level they fit in [profile] x
                                  min(t, MEMORY_THREAD_GAIN[level]))
                        compute = elements x CYCLES_PER_ELEMENT[op] / clock / t
                        sync    = SYNC_SECONDS (models/machine.py) when t > 1

Cold weights: an inference reads every weight once, in the same order each
time, so weights stay in cache until the next inference only if all of them
fit; a cyclic sweep over more than the cache evicts each line before its next
use (LRU-like replacement). The network's weights in the layouts the kernels
read (network_weight_bytes) are compared with the L3 the run can use
(l3_for_weights); when they exceed it, every conv is costed with
Context(cold_weights=True) (models/conv.py: the term "cold_weights") and
every GEMM with constant weights reads them from DRAM (models/gemm.py:
estimate(cold_b=True), inside its max(compute, streams)).

Threads per node (the DLFusion knob, from operation count and channel size):
  t_ops      = ceil(flops / FLOPS_PER_THREAD): a thread is worth adding only
               for this much work (MLAS caps GEMM threads at one per 64K
               multiply-adds, DESIGN.md; 2 x 64K flops)
  t_pieces   = how many independent pieces the kernel splits (fewer pieces
               than threads leaves threads idle):
                 conv        max(ceil(K / lanes) output channel blocks, output rows)
                 gemm/matmul ceil(N / 16) x max(1, M / 6) (register tiles, about)
                 other       max(N x C planes, rows)
  t_max      = min(cores, t_ops, t_pieces)
  t_node     = the count in 1..t_max with the least predicted T(node, t)
The rule bounds the search and the model arbitrates inside it; `why` records
both.

Fusion decided here (it needs the cost model): matmuls sharing their input
(attention's Q, K, V projections) become one GEMM + a split where
T_gemm(M, sum N, K) + T(copy) < sum T_gemm(M, N_i, K) (projections.py).

Memory: every intermediate tensor lives in one arena. Its lifetime runs from
the node that writes it to the last node that reads it; tensors are placed
largest first, each at the smallest gap (best fit) among already placed
tensors whose lifetimes overlap, at ARENA_ALIGN_FLOATS alignment. A node's
output never shares space with its inputs (their lifetimes meet at the node).
A reshape between two NCHW intermediates is a view: it shares its input's
space (lifetimes merged) and costs nothing. Inputs, outputs and constants
are not in the arena.

Layout (layout.py): the 4-D activations that stay nchw{B}c between layers
(B = the conv kernels' lanes), decided per layout group by the conv model
(Context from the tensors' layouts) against the to_layout conversions an
NCHW-only op then needs; the conversions are nodes with their own time.
  T(to_layout, t)   = models/conv._layout_seconds(elements, t)
  T(other, t) on a blocked tensor reads and writes its padded storage.
A concat on channels of one image whose inputs can be written in place
(views.py) costs nothing: its producers write the slices of its output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from ..models import attention as attention_model
from ..models import conv as conv_model
from ..models import gemm as gemm_model
from ..models.machine import SYNC_SECONDS, Machine
from ..profile import HostProfile
from ..spec import Conv2dShape
from . import layout as layout_plan
from . import projections
from .ir import Graph, Node, Tensor
from .shapes import numel, permute
from .views import concat_slices, reshape_views, views  # noqa: F401  (reshape_views: for tests)

F32 = 4
# flops a thread must have before another is worth adding: MLAS caps GEMM
# threads at one per 64K multiply-adds (DESIGN.md, onnxruntime/MLAS).
FLOPS_PER_THREAD = 2 * 65536
# Memory-bound ops: threads on private L1/L2 add their cores' bandwidth;
# from shared L3 and DRAM they add less. Assumed, not measured yet (the
# bandwidth figures per level are the profile's, one core's): at most this
# many cores' worth per level.
MEMORY_THREAD_GAIN = {"L1": 2.0, "L2": 2.0, "L3": 1.5, "DRAM": 1.2}
# Cycles per output element of the ops with arithmetic beyond a load and a
# store. Estimates, not measured: a vectorized exp / log / divide costs some
# 10-20 cycles per vector of 8-16 lanes, about 1-2 cycles per element; LRN
# adds a power. Everything else: a few vector instructions per vector.
# tanh in the plain loops is libm's tanhf, a call per element: 21 cycles measured (AVX-512 build,
# Zen 5); their exp family is scalar under x86-64-v2 (14-16 cycles measured), above these figures.
CYCLES_PER_ELEMENT = {"sigmoid": 2.0, "silu": 2.0, "tanh": 20.0, "softmax": 2.0, "log_softmax": 2.0, "lrn": 3.0,
                      "hard_swish": 0.5, "hard_sigmoid": 0.5, "div": 0.5,
                      # erf and gelu: an exp and a divide plus a degree-5 polynomial; layer_norm:
                      # three passes over the row (mean, variance, normalize)
                      "erf": 2.5, "gelu": 3.0, "exp": 2.0, "pow": 2.0, "sqrt": 0.5, "layer_norm": 1.0}
DEFAULT_CYCLES_PER_ELEMENT = 0.25
# The activations the x86 variants run in the ISA's intrinsics (AVX2 and AVX-512;
# codegen/activation_loops.py): 0.66-0.74 (sigmoid), 0.50-0.58 (exp), 0.90-1.00 (tanh) and
# 0.17 (hard_swish) cycles per element measured through the executor on the Zen 5 (AVX-512),
# memory included (a 64 K-element and a 1.2 M-element tensor): the compute part a little
# below. AVX2 has half the lanes: 1.5 (sigmoid) and 2.1 (tanh) measured.
ACTIVATION_LOOP_CYCLES = {"avx512": {"sigmoid": 0.5, "silu": 0.5, "exp": 0.4, "tanh": 0.7, "hard_swish": 0.15,
                                     "hard_sigmoid": 0.15},
                          "avx2": {"sigmoid": 1.2, "silu": 1.2, "exp": 1.0, "tanh": 1.6, "hard_swish": 0.3,
                                   "hard_sigmoid": 0.3}}
ARENA_ALIGN_FLOATS = 16      # 64 bytes: a cache line, the blob alignment of FORMAT.md


@dataclass
class NetworkPlan:
    graph: Graph
    profile_name: str
    cores: int
    total_ms: float
    arena_floats: int
    notes: List[str] = field(default_factory=list)
    layout_conversions: int = 0          # to_layout nodes inserted
    in_place_concats: int = 0


# --------------------------------------------------------------------------- per-node costs
def conv_layer(g: Graph, n: Node) -> Conv2dShape:
    x = g.tensors[n.inputs[0]].shape
    w = g.tensors[n.inputs[1]].shape
    p, s, d = n.attrs["pads"], n.attrs["strides"], n.attrs["dilations"]
    return Conv2dShape(C=x[1], H=x[2], W=x[3], K=w[0], R=w[2], S=w[3], N=x[0], stride_h=s[0], stride_w=s[1],
                       pad_top=p[0], pad_left=p[1], pad_bottom=p[2], pad_right=p[3], dilation_h=d[0],
                       dilation_w=d[1], groups=n.attrs["groups"])


def gemm_mnk(g: Graph, n: Node) -> Tuple[int, int, int]:
    """(M, N, K) of the node's GEMM; a batched matmul counts its batch in M
    (the time model treats the per-batch GEMMs as one of batch x M rows)."""
    a, b = g.tensors[n.inputs[0]].shape, g.tensors[n.inputs[1]].shape
    if n.op == "gemm":
        m, k = a[::-1] if n.attrs["trans_a"] else a
        _, nn = b[::-1] if n.attrs["trans_b"] else b
        return m, nn, k
    a, b = permute(a, n.attrs.get("perm_a")), permute(b, n.attrs.get("perm_b"))
    y = g.tensors[n.outputs[0]]
    return y.size // max(1, b[-1]), b[-1], a[-1]


def gemm_call_shape(g: Graph, n: Node) -> Tuple[int, int, int]:
    """(M, N, K) of one GEMM call the executor makes for the node: a matmul
    whose b has batch dimensions (attention's per-head products) calls one
    GEMM per batch; with a 2-D b the batch folds into M."""
    m, nn, k = gemm_mnk(g, n)
    if n.op == "matmul":
        a = permute(g.tensors[n.inputs[0]].shape, n.attrs.get("perm_a"))
        if len(g.tensors[n.inputs[1]].shape) > 2:
            m = a[-2]
    return m, nn, k


def attention_shape(g: Graph, n: Node) -> attention_model.AttentionShape:
    """(B, H, S, Sk, D) of an attention node (FORMAT.md: rank-3 [B, rows, width]
    operands, or rank-4 ones permuted to the logical [B, H, rows, D])."""
    H, D = int(n.attrs["heads"]), int(n.attrs["head_size"])

    def rows(name: str, key: str) -> int:
        shape = g.tensors[name].shape
        return shape[1] if len(shape) == 3 else shape[list(n.attrs.get(key) or (0, 1, 2, 3))[2]]
    return attention_model.AttentionShape(g.tensors[n.inputs[0]].shape[0], H, rows(n.inputs[0], "q_perm"),
                                          rows(n.inputs[1], "k_perm"), D)


def flops(g: Graph, n: Node) -> float:
    out = sum(g.tensors[o].size for o in n.outputs)
    if n.op == "attention":
        s = attention_shape(g, n)
        return 4.0 * s.B * s.H * s.S * s.Sk * s.D
    if n.op == "matmul_layer_norm":
        return 2.0 * out * g.tensors[n.inputs[1]].shape[0]
    if n.op == "conv":
        return float(conv_layer(g, n).flops)
    if n.op in ("gemm", "matmul"):
        m, nn, k = gemm_mnk(g, n)
        return 2.0 * m * nn * k
    if n.op in ("max_pool", "avg_pool"):
        kh, kw = n.attrs["kernel"]
        return float(out * kh * kw)
    if n.op in ("global_avg_pool", "global_max_pool", "reduce_mean"):
        return float(g.tensors[n.inputs[0]].size)
    if n.op == "lrn":
        return float(out * (n.attrs["size"] + 4))
    return float(out)


def parallel_units(g: Graph, n: Node, lanes: int) -> Tuple[int, str]:
    """How many pieces the kernel can split the node's work into."""
    y = g.tensors[n.outputs[0]].shape
    if n.op == "conv":
        L = conv_layer(g, n)
        blocks = math.ceil(L.K / lanes)
        return max(blocks, L.out_h), f"{L.K} channels ({blocks} blocks of {lanes}), {L.out_h} rows"
    if n.op in ("gemm", "matmul"):
        m, nn, _ = gemm_mnk(g, n)
        return max(1, math.ceil(nn / 16) * max(1, m // 6)), f"{m}x{nn} output"
    if n.op == "attention":
        s = attention_shape(g, n)
        return s.B * s.H * math.ceil(s.S / 6), f"{s.B * s.H} heads x {s.S} queries"
    if n.op == "matmul_layer_norm":
        rows = g.tensors[n.outputs[0]].size // max(1, y[-1])
        return max(1, rows // 6), f"{rows} rows of {y[-1]}"
    if len(y) >= 2:
        c = y[1]
        rows = y[2] if len(y) > 2 else 1
        return max(1, y[0] * c, rows), f"{c} channels"
    return 1, "no channel axis"


def _other_seconds(m: Machine, g: Graph, n: Node, t: int) -> Dict[str, float]:
    nbytes = F32 * (sum(storage_floats(g.tensors[i]) for i in n.inputs if i)
                    + sum(storage_floats(g.tensors[o]) for o in n.outputs))
    if n.op == "gather":    # reads the rows it selects (an embedding lookup), not the whole table
        nbytes = F32 * (2 * g.tensors[n.outputs[0]].size + g.tensors[n.inputs[1]].size)
    level = m.level_of(nbytes)
    gain = min(t, MEMORY_THREAD_GAIN[level]) if t > 1 else 1.0
    hz = m.peak_flops / (2 * m.lanes * m.fma_units)
    elements = sum(g.tensors[o].size for o in n.outputs)
    if n.op in ("max_pool", "avg_pool", "global_avg_pool", "global_max_pool", "reduce_mean", "lrn"):
        elements = flops(g, n)
    cpe = CYCLES_PER_ELEMENT.get(n.op, DEFAULT_CYCLES_PER_ELEMENT)
    cpe = ACTIVATION_LOOP_CYCLES.get(m.profile.isa, {}).get(n.op, cpe)
    compute = elements * cpe / hz / t
    memory = nbytes / (m.bandwidth(level) * gain)
    return {"compute": compute, "memory": memory, "sync": SYNC_SECONDS if t > 1 else 0.0,
            "_level": level}


def l3_for_weights(m: Machine, cores: int) -> float:
    """Bytes of L3 the network's weights may keep between inferences: half of
    the per-core share of each core the run uses (up to the cores sharing the
    cache), as Machine.level_of counts a working set: the other half holds the
    activations passing through, which every inference sweeps in as well."""
    c = m.cache(3)
    return c.size_bytes * max(1, min(cores, c.shared_by)) / 2


def network_weight_bytes(g: Graph, m: Machine, conv_alg: Callable[[Node], str]) -> float:
    """Bytes of the constants the nodes read: a conv's weights in the layout
    its algorithm (conv_alg) reads (models/conv.weight_bytes, on the conv
    kernels' machine m), every other constant as stored (a packed GEMM B is
    its size)."""
    total = 0.0
    seen = set()
    for n in g.nodes:
        for i, name in enumerate(n.inputs):
            if not g.is_constant(name) or name in seen:
                continue
            seen.add(name)
            if n.op == "conv" and i == 1:
                total += conv_model.weight_bytes(m, conv_layer(g, n), conv_alg(n))
            else:
                total += F32 * g.tensors[name].size
    return total


def copy_seconds(m: Machine, floats: int, t: int) -> float:
    """A copy of `floats` floats (read and written) on t threads: the memory term of T(other)."""
    nbytes = 2 * F32 * floats
    level = m.level_of(nbytes)
    gain = min(t, MEMORY_THREAD_GAIN[level]) if t > 1 else 1.0
    return nbytes / (m.bandwidth(level) * gain) + (SYNC_SECONDS if t > 1 else 0.0)


class _Costs:
    def __init__(self, profile: HostProfile, tolerance: Optional[float], cold_weights: bool = False):
        self.profile = profile
        self.cold_weights = cold_weights   # the network's weights come from DRAM (module docstring)
        self.machine = Machine(profile)
        self.tolerance = tolerance
        self.kernel_machine = conv_model.kernel_machine(profile)
        self._gemm_cache: Dict[Tuple[int, int, int, int, bool], float] = {}
        self._conv_cache: Dict[Tuple[str, int, conv_model.Context], Tuple[float, str, str]] = {}
        self.views: Dict[str, str] = {}

    def node(self, g: Graph, n: Node, t: int) -> Tuple[float, str, str]:
        """(seconds, algorithm or '', a short reason) of n on t threads."""
        if n.op == "conv":
            return self.conv(g, n, t, layout_plan.conv_context(g, n))
        if n.op == "to_layout":
            x = g.tensors[n.inputs[0]]
            elements = max(storage_floats(x), storage_floats(g.tensors[n.outputs[0]]))
            return conv_model._layout_seconds(self.kernel_machine, elements, t), "", \
                f"{x.layout} -> {n.attrs['layout']}"
        if n.op == "concat" and n.attrs.get("in_place"):
            return 0.0, "", "in place: its producers write the slices of its output, no copy"
        return self._rest(g, n, t)

    def conv(self, g: Graph, n: Node, t: int, ctx: conv_model.Context) -> Tuple[float, str, str]:
        ctx = replace(ctx, cold_weights=self.cold_weights)
        key = (n.name, t, ctx)
        if key not in self._conv_cache:
            self._conv_cache[key] = self._conv(g, n, t, ctx)
        return self._conv_cache[key]

    def _conv(self, g: Graph, n: Node, t: int, ctx: conv_model.Context) -> Tuple[float, str, str]:
        L = conv_layer(g, n)
        cands = conv_model.candidates(self.profile, L, t, ctx=ctx, tolerance=self.tolerance)
        cands += self._grouped_direct(L, t, ctx)
        best = min((c for c in cands if c.rejected is None), key=lambda c: c.predicted_s)
        ok = sorted((c for c in cands if c.rejected is None), key=lambda c: c.predicted_s)
        runner = ok[1] if len(ok) > 1 else None
        cold = best.terms.get("cold_weights")
        why = f"{best.name} {best.predicted_s * 1e3:.3f} ms" + (
            f" (cold_weights {cold * 1e3:.3f} ms)" if cold else "") + (
            f" beats {runner.name} {runner.predicted_s * 1e3:.3f} ms" if runner else "")
        return best.predicted_s, best.name.split()[0], why

    def _grouped_direct(self, L, t: int, ctx: conv_model.Context) -> List[conv_model.Candidate]:
        """A grouped (not depthwise) conv as one direct conv per group on its
        channel slice (the executor's GroupedDirectConvOp, ops_linear.cpp):
        where every group holds whole channel blocks, G times the best direct
        estimate of one group's layer; groups narrower than a block (B a
        multiple of C/G) f = B / (C/G) at a time, as one conv with
        block-diagonal weights: G / f times the estimate of that f-times
        wider layer (f times the flops). The conv2d API's direct kernel is
        written for one group, so conv_model.candidates() offers only
        im2col-gemm (or gemm-1x1) for these layers: RegNet's and ResNeXt's."""
        G, B = L.groups, self.kernel_machine.lanes
        Cg, Kg = L.C // G, L.K // G
        if G == 1 or (G == L.C and L.K % L.C == 0):
            return []
        f = B // Cg if Cg % B and B % Cg == 0 and G % (B // Cg) == 0 else 1   # as ops_linear.cpp
        if (Cg * f) % B or (Kg * f) % B:
            return []
        G //= f
        one = replace(L, C=Cg * f, K=Kg * f, groups=1)
        direct = [c for c in conv_model.candidates(self.profile, one, t, allow=("direct",), ctx=ctx,
                                                   tolerance=self.tolerance)
                  if c.rejected is None and c.name.startswith("direct")]
        if not direct:
            return []
        best = min(direct, key=lambda c: c.predicted_s)
        return [conv_model.Candidate(f"{best.name} x{G} ({f} group(s) each)", G * best.predicted_s,
                                     {k: G * v for k, v in best.terms.items()})]

    def gemm(self, m: int, n: int, k: int, t: int, prepared_b: bool = False) -> float:
        """prepared_b: constant weights, which the executor packs once at load
        (a GEMV reads them in place); cold_weights: they come from DRAM."""
        key = (m, n, k, t, prepared_b)
        if key not in self._gemm_cache:
            p = gemm_model.plan_shape(self.profile, m, n, k, isa_suffix="graph", threads=t)
            cold = prepared_b and self.cold_weights
            if prepared_b and m > 1:
                s = gemm_model.prepared_estimate(self.profile, p, cold_b=cold).seconds
            elif cold:
                s = gemm_model.estimate_gemv(self.machine, n, k, t, cold_b=True).seconds
            else:
                s = p.predicted_s
            self._gemm_cache[key] = s
        return self._gemm_cache[key]

    def attention(self, g: Graph, n: Node, t: int) -> Tuple[float, str, str]:
        """models/attention.py: the fused kernel or the unfused sequence, the cheaper."""
        e = attention_model.estimate(self.profile, attention_shape(g, n), t)
        s = min(e.fused_s, e.unfused_s)
        other = "unfused" if e.algorithm == "fused" else "fused"
        return s, e.algorithm, (f"attention {e.algorithm} {s * 1e3:.3f} ms beats {other} "
                                f"{max(e.fused_s, e.unfused_s) * 1e3:.3f} ms (models/attention.py)")

    def matmul_layer_norm(self, g: Graph, n: Node, t: int) -> Tuple[float, str, str]:
        x, w = g.tensors[n.inputs[0]].shape, g.tensors[n.inputs[1]].shape
        M, K, N = int(math.prod(x[:-1])), w[0], w[1]
        c = conv_model.model_coefficients(self.profile)
        weights = g.tensors[n.inputs[1]].kind == "constant" and M > 1   # packed at load (ops_attention.cpp)
        fused, unfused, rows = attention_model.gemm_layernorm_terms(c, int(c["lanes"]), M, N, K, t, weights)
        fs, us = sum(fused.values()), sum(unfused.values())
        alg = "fused" if fs <= us else "unfused"
        return min(fs, us), alg, (f"GEMM {M}x{N}x{K} + LayerNorm {alg} {min(fs, us) * 1e3:.3f} ms (fused: row blocks "
                                  f"of {rows} in L2, {fs * 1e3:.3f} ms; unfused {us * 1e3:.3f} ms)")

    def _rest(self, g: Graph, n: Node, t: int) -> Tuple[float, str, str]:
        if n.op == "attention":
            return self.attention(g, n, t)
        if n.op == "matmul_layer_norm":
            return self.matmul_layer_norm(g, n, t)
        if n.op in ("gemm", "matmul"):
            m, nn, k = gemm_mnk(g, n)
            weights = g.tensors[n.inputs[1]].kind == "constant"
            cold = " from DRAM (cold_weights)" if weights and self.cold_weights else ""
            return self.gemm(m, nn, k, t, weights), "", f"GEMM {m}x{nn}x{k}" + (
                " (weights packed at load" + cold + ")" if weights and m > 1 else
                " (weights" + cold + ")" if cold else "")
        if n.op == "reshape" and n.outputs[0] in self.views:
            return 0.0, "", "a view: shares its input's arena space, no copy"
        terms = _other_seconds(self.machine, g, n, t)
        level = terms.pop("_level")
        s = max(terms["compute"], terms["memory"]) + terms["sync"]
        return s, "", f"{'memory' if terms['memory'] >= terms['compute'] else 'compute'}-bound ({level})"


# --------------------------------------------------------------------------- planning
def all_nchw(g: Graph) -> None:
    for t in g.tensors.values():
        if t.kind != "constant":
            t.layout = "nchw"
            t.view_of, t.channel_offset = None, 0


def choose_layouts(g: Graph, costs: _Costs, cores: int, force_blocked: bool = False) -> layout_plan.LayoutPlan:
    """nchw{B}c where the model says it pays (layout.py), to_layout nodes
    where an op needs NCHW. Costs at the largest thread count the rule
    allows each node."""
    all_nchw(g)
    b = costs.kernel_machine.lanes

    def node_seconds(n: Node, in_blocked: bool, out_blocked: bool) -> float:
        t = thread_limit(g, n, costs, cores)[0]
        if n.op == "conv":
            return costs.conv(g, n, t, conv_model.Context(in_blocked, out_blocked))[0]
        return costs.node(g, n, t)[0]

    def convert_seconds(x: Tensor) -> float:
        return conv_model._layout_seconds(costs.kernel_machine, padded_floats(x.shape, b), cores)

    return layout_plan.plan_layouts(g, b, node_seconds, convert_seconds, force_blocked)


def plan_cold_weights(g: Graph, costs: _Costs, cores: int) -> str:
    """Set costs.cold_weights when the network's weights exceed the L3 the
    run can use (module docstring); returns the note saying why. The
    constants as stored are a lower bound of every prepared layout; when they
    fit, each conv's weights are counted in the layout of its warm choice."""
    budget = l3_for_weights(costs.kernel_machine, cores)
    total = network_weight_bytes(g, costs.kernel_machine, lambda n: "gemm")
    if total <= budget:
        def warm_choice(n: Node) -> str:
            return costs.conv(g, n, thread_limit(g, n, costs, cores)[0], conv_model.Context(True, True))[1]
        total = network_weight_bytes(g, costs.kernel_machine, warm_choice)
    costs.cold_weights = total > budget
    return (f"weights {total / 2**20:.1f} MiB in the kernels' layouts "
            + (f"exceed the {budget / 2**20:.1f} MiB of L3 they may keep: each inference reads them from DRAM "
               "(convs: term cold_weights; constant-weight GEMMs: B from DRAM)" if costs.cold_weights else
               f"fit in the {budget / 2**20:.1f} MiB of L3 they may keep: costed warm"))


def thread_limit(g: Graph, n: Node, costs: _Costs, cores: int) -> Tuple[int, int, int, str]:
    """(t_max, t_ops, pieces, what the pieces are): the DLFusion rule's bound."""
    f = flops(g, n)
    units, unit_why = parallel_units(g, n, costs.profile.lanes_f32)
    t_ops = max(1, math.ceil(f / FLOPS_PER_THREAD))
    return max(1, min(cores, t_ops, units)), t_ops, units, unit_why


def plan_threads(g: Graph, n: Node, costs: _Costs, cores: int, all_threads: bool = False,
                 given: Optional[int] = None) -> None:
    """n's thread count: the DLFusion rule bounds it and the model picks
    inside; all_threads: every core; given: this count (capped at cores)."""
    f = flops(g, n)
    t_max, t_ops, units, unit_why = thread_limit(g, n, costs, cores)
    options = []
    fixed = cores if all_threads else (max(1, min(cores, given)) if given is not None else None)
    for t in ([fixed] if fixed is not None else range(1, t_max + 1)):
        s, alg, why = costs.node(g, n, t)
        options.append((s, t, alg, why))
    s, t, alg, why = min(options, key=lambda o: (o[0], o[1]))
    n.threads = t
    n.predicted_ms = s * 1e3
    if n.op in ("conv", "attention", "matmul_layer_norm"):
        n.attrs["algorithm"] = alg
    tried = ", ".join(f"{o[1]}t {o[0] * 1e3:.3f} ms" for o in options)
    if all_threads:
        n.why = f"{f / 1e6:.2f} MFLOP on all {cores} thread(s) (baseline: no per-node choice); {why}"
        return
    if given is not None:
        n.why = f"{f / 1e6:.2f} MFLOP on {t} thread(s), given (the rule would allow {t_max}); {why}"
        return
    before = f"{n.why}; " if n.op == "to_layout" and n.why and "rule allows" not in n.why else ""
    n.why = (f"{before}{f / 1e6:.2f} MFLOP, {unit_why}: rule allows {t_max} thread(s) "
             f"(cores {cores}, work {t_ops}, pieces {units}); model: {tried} -> {t}; {why}")


def lifetimes(g: Graph) -> Dict[str, Tuple[int, int]]:
    life: Dict[str, Tuple[int, int]] = {}
    for i, n in enumerate(g.nodes):
        for o in n.outputs:
            if g.tensors[o].kind == "intermediate":
                life[o] = (i, i)
        for x in n.inputs:
            if x in life:
                life[x] = (life[x][0], i)
    return life


def padded_floats(shape: Tuple[int, ...], b: int) -> int:
    """Floats of a tensor of this shape in nchw{b}c (C padded up to b)."""
    dims = list(shape)
    dims[1] = -(-dims[1] // b) * b
    return numel(dims)


def storage_floats(t: Tensor) -> int:
    """Floats a tensor occupies in its layout (nchw{B}c pads C up to B)."""
    b = layout_plan.block_of(t.layout)
    return padded_floats(t.shape, b) if b and len(t.shape) >= 2 else t.size


def plan_arena(g: Graph) -> int:
    """Offsets for every intermediate (greedy best fit by size over
    lifetimes; a view (reshape, concat slice) lives in its root's space at
    its offset and extends the root's lifetime); returns the arena size in
    floats."""
    life = lifetimes(g)
    shared = views(g)
    for y, (r, _) in shared.items():
        if y in life:
            a, b = life.pop(y)
            life[r] = (min(life[r][0], a), max(life[r][1], b)) if r in life else (a, b)
    order = sorted(life, key=lambda name: (-storage_floats(g.tensors[name]), life[name][0]))
    placed: List[Tuple[int, int, int, int]] = []     # (offset, size, first, last)
    top = 0
    for name in order:
        size = -(-max(1, storage_floats(g.tensors[name])) // ARENA_ALIGN_FLOATS) * ARENA_ALIGN_FLOATS
        a, b = life[name]
        busy = sorted((o, s) for o, s, f, l in placed if not (l < a or b < f))
        best = None
        cursor = 0
        for o, s in busy:
            gap = o - cursor
            if gap >= size and (best is None or gap < best[1]):
                best = (cursor, gap)
            cursor = max(cursor, o + s)
        offset = best[0] if best else cursor
        placed.append((offset, size, a, b))
        g.tensors[name].arena = offset
        top = max(top, offset + size)
    for y, (r, off) in shared.items():
        g.tensors[y].arena = g.tensors[r].arena + off
    g.arena_floats = top
    return top


def plan(g: Graph, profile: HostProfile, *, threads: Optional[int] = None,
         tolerance: Optional[float] = None, all_threads: bool = False, layouts: object = True,
         node_threads: Optional[Mapping[str, int]] = None) -> NetworkPlan:
    """Plan a graph (after passes) for a profile; `threads` caps the cores.
    all_threads: every node on all the cores (the "no optimization" baseline
    of the DLFusion comparison, as onnxruntime runs its ops) and NCHW.
    layouts=False: NCHW everywhere and no concat in place (for comparisons);
    "blocked": every activation that can be nchw{B}c is (tests).
    node_threads: {node name: thread count} replacing the rule's choice for
    the nodes it names (a measured search: benchmarks/dlfusion.py); the
    layouts are still chosen with the rule's counts, so the nodes (and
    their names) are the same whatever counts are given."""
    cores = max(1, min(profile.cores, threads or profile.cores))
    costs = _Costs(profile, tolerance)
    weights_note = plan_cold_weights(g, costs, cores)
    chosen = None
    fusion_notes = [] if all_threads else projections.plan(
        g, lambda m, n, k: min(costs.gemm(m, n, k, t, prepared_b=True) for t in range(1, cores + 1)),
        lambda floats: copy_seconds(costs.machine, floats, cores))
    if all_threads or not layouts:
        all_nchw(g)
        layout_plan.sync_conversions(g)
    else:
        chosen = choose_layouts(g, costs, cores, force_blocked=layouts == "blocked")
        concat_slices(g)
    costs.views = reshape_views(g)
    given = dict(node_threads or {})
    for n in g.nodes:
        plan_threads(g, n, costs, cores, all_threads, given.get(n.name))
        x = g.tensors[n.inputs[0]] if n.inputs and n.inputs[0] else None
        n.layout = f"{x.layout if x else '-'} -> {g.tensors[n.outputs[0]].layout}"
    arena = plan_arena(g)
    total = sum(n.predicted_ms or 0.0 for n in g.nodes)
    p = NetworkPlan(g, profile.name, cores, total, arena,
                    notes=[f"profile {profile.name}: {profile.isa}, {profile.peak_gflops_per_core:.1f} "
                           f"GFLOPS/core, {profile.cores} cores"])
    if chosen is not None:
        p.layout_conversions = g.count("to_layout")
        p.notes.append(chosen.note(g))
    p.notes.append(weights_note)
    p.notes += fusion_notes
    p.in_place_concats = sum(1 for n in g.nodes if n.op == "concat" and n.attrs.get("in_place"))
    if p.in_place_concats:
        p.notes.append(f"{p.in_place_concats} concat(s) written in place by their producers")
    return p


HEADER = f"{'node':<28} {'op':<16} {'fused':<28} {'algorithm':<12} {'layout':<19} {'thr':>3} {'ms':>9}"


def node_row(name: str, op: str, fused: List[str], algorithm: Optional[str], layout: str, threads: int,
             predicted_ms: Optional[float]) -> str:
    f = ",".join(fused)
    f = f if len(f) <= 27 else f[:24] + "..."
    return (f"{name[:27]:<28} {op:<16} {f:<28} {algorithm or '-':<12} {layout or '-':<19} {threads:>3} "
            f"{predicted_ms or 0:>9.3f}")


def explain(p: NetworkPlan) -> str:
    g = p.graph
    lines = [f"model {g.name}: planned for {p.profile_name} ({p.cores} core(s)); "
             f"arena {p.arena_floats} floats ({p.arena_floats * F32 / 2**20:.1f} MiB)"]
    lines += [f"  {note}" for note in p.notes]
    lines.append(HEADER)
    for n in g.nodes:
        lines.append(node_row(n.name, n.op, n.fused, n.attrs.get("algorithm"), n.layout, n.threads, n.predicted_ms))
    lines.append(f"network total: {p.total_ms:.3f} ms predicted ({len(g.nodes)} nodes, "
                 f"{sum(flops(g, n) for n in g.nodes) / 1e9:.2f} GFLOP)")
    return "\n".join(lines)


def explain_header(header: Dict) -> str:
    """The same table from an .acmodel's header (acmodel.read(path).header)."""
    nodes = header["nodes"]
    lines = [f"model {header['name']} ({header.get('producer', '?')}): arena {header['arena_floats']} floats "
             f"({header['arena_floats'] * F32 / 2**20:.1f} MiB)", HEADER]
    for n in nodes:
        lines.append(node_row(n["name"], n["op"], n.get("fused", []), n["attrs"].get("algorithm"),
                              n.get("layout", ""), n.get("threads", 0), n.get("predicted_ms")))
    total = sum(n.get("predicted_ms") or 0.0 for n in nodes)
    lines.append(f"network total: {total:.3f} ms predicted ({len(nodes)} nodes)")
    return "\n".join(lines)


def explain_node(n: Node) -> str:
    return f"{n.name} ({n.op}): {n.why}"
