"""`autoconfig bench --op conv2d [--check-model]`: every conv layer of the
embedded specs (ResNet-50, MobileNetV2 at batch 1), ours (weights prepared
once, prepare time reported apart) and ours one-off (conv2d() as a
torch.nn.functional.conv2d user calls it: weights prepared in every call)
against torch.nn.functional.conv2d (oneDNN) when installed; with
--check-model every applicable algorithm is timed too, to see whether the
model's choice is the measured best, and the one-off call's weight
preparation is timed alone against the model's prediction of it."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .bench import QUIET_S, best_times, peer_pauses, pinned_torch, render_table, warm_seconds
from .vocabulary import CONV_ALGORITHMS

# Within this factor of the measured best, a choice counts as right (issue 3's bar).
MODEL_TOLERANCE = 1.10


@dataclass
class ConvRow:
    spec: str
    layer: str
    threads: int
    algorithm: str
    predicted_s: float
    ours_s: float
    prepare_s: float
    gflops: float
    pct_peak: float
    torch_s: Optional[float]
    measured: Dict[str, float] = field(default_factory=dict)   # --check-model: algorithm -> seconds
    # The one-off conv2d() call: its algorithm (run + prepare), time, and its
    # weight preparation alone: measured, predicted, bytes read + written.
    oneoff_algorithm: str = ""
    oneoff_s: float = float("nan")
    oneoff_predicted_s: float = float("nan")
    oneoff_prepare_s: float = float("nan")
    oneoff_prepare_predicted_s: float = float("nan")
    prepare_bytes: float = 0.0
    prepare_bandwidth_s: float = 0.0   # prepare_bytes at the profile's copy bandwidth of the level they fit
    oneoff_measured: Dict[str, float] = field(default_factory=dict)   # --check-model: one-off, per algorithm
    oneoff_pack_s: float = float("nan")   # its fold + re-layout alone (no checks, no model), timed in C++
    # direct one-off packing each group of output blocks inside the kernel: no
    # whole re-layout before the run (its packing is in the one-off run time)
    oneoff_pack_groups: bool = False
    memcpy_s: float = float("nan")   # numpy copying the same bytes (memcpy_fn), best of the same samples

    @property
    def oneoff_best(self) -> Optional[str]:
        return min(self.oneoff_measured, key=self.oneoff_measured.get) if self.oneoff_measured else None

    @property
    def oneoff_choice_ok(self) -> Optional[bool]:
        if not self.oneoff_measured:
            return None
        return self.oneoff_measured[self.oneoff_algorithm] <= MODEL_TOLERANCE * min(self.oneoff_measured.values())

    @property
    def oneoff_vs_torch(self) -> Optional[float]:
        return None if self.torch_s is None else self.torch_s / self.oneoff_s

    @property
    def vs_torch(self) -> Optional[float]:
        return None if self.torch_s is None else self.torch_s / self.ours_s

    @property
    def best_measured(self) -> Optional[str]:
        return min(self.measured, key=self.measured.get) if self.measured else None

    @property
    def choice_ok(self) -> Optional[bool]:
        if not self.measured:
            return None
        return self.measured[self.algorithm] <= MODEL_TOLERANCE * min(self.measured.values())


def default_layers(net: Optional[str] = None):
    """(spec name, Conv2dShape, activation, residual) of the embedded conv specs."""
    from . import spec as spec_mod
    out = []
    seen = set()
    for s in spec_mod.load_dirs([spec_mod.default_spec_dir()]):
        if s.op != "conv2d" or (net and not s.name.startswith(net)):
            continue
        for sh in s.shapes:
            if (sh, s.residual) in seen:
                continue
            seen.add((sh, s.residual))
            out.append((s.name, sh, s.activations[-1], s.residual))
    return out


def _label(sh) -> str:
    g = f" g{sh.groups}" if sh.groups > 1 else ""
    return f"{sh.C}x{sh.H}x{sh.W}->{sh.K} {sh.R}x{sh.S}/{sh.stride_h}{g}"


def run_conv(threads: int, repeat: int, check_model: bool, use_torch: bool = True, net: Optional[str] = None,
             peak_gflops: Optional[float] = None, seed: int = 0) -> List[ConvRow]:
    import numpy as np
    from .explanation import explain
    from .runtime.conv import conv2d, prepare_conv2d
    from .runtime.guard import require_ext
    from .runtime.info import host
    torch = pinned_torch(threads) if use_torch else None
    peak = (peak_gflops or host().peak_gflops_per_core) * threads
    quiet = QUIET_S if threads > 1 else 0.0
    rng = np.random.default_rng(seed)
    rows = []
    for name, sh, act, residual in default_layers(net):
        act = None if act == "none" else act
        x = rng.standard_normal((1, sh.C, sh.H, sh.W), dtype=np.float32)
        w = rng.standard_normal((sh.K, sh.C // sh.groups, sh.R, sh.S), dtype=np.float32) * 0.1
        b = rng.standard_normal(sh.K, dtype=np.float32)
        pads = (sh.pad_top, sh.pad_left, sh.pad_bottom, sh.pad_right)
        kw = dict(input_shape=(sh.C, sh.H, sh.W), strides=(sh.stride_h, sh.stride_w), pads=pads,
                  dilations=(sh.dilation_h, sh.dilation_w), groups=sh.groups, activation=act, threads=threads)
        res = rng.standard_normal((1, sh.K, sh.out_h, sh.out_w), dtype=np.float32) if residual else None
        out = np.empty((1, sh.K, sh.out_h, sh.out_w), dtype=np.float32)
        t0 = time.perf_counter()
        layer = prepare_conv2d(w, b, **kw)
        prep = time.perf_counter() - t0
        ex = explain("conv2d", N=1, C=sh.C, H=sh.H, W=sh.W, K=sh.K, R=sh.R, S=sh.S,
                         strides=(sh.stride_h, sh.stride_w), pads=pads, dilations=(sh.dilation_h, sh.dilation_w),
                         groups=sh.groups, threads=threads)
        mine = [c for c in ex.plan.candidates if c.rejected is None and c.name.split()[0] == layer.algorithm]
        chosen = [c for c in mine if c.chosen]
        predicted = (chosen or sorted(mine, key=lambda c: c.predicted_s) or [None])[0]
        predicted = float("nan") if predicted is None else predicted.predicted_s
        geo = dict(strides=(sh.stride_h, sh.stride_w), pads=pads, dilations=(sh.dilation_h, sh.dilation_w),
                   groups=sh.groups)
        one = require_ext().conv2d_choice(
            1, sh.C, sh.H, sh.W, sh.K, sh.R, sh.S, [sh.stride_h, sh.stride_w], list(pads),
            [sh.dilation_h, sh.dilation_w], sh.groups, threads, [0xFFFFFFFF, -1, -1, -1, -1], prepared=False)
        one_alg = one["algorithm"]
        packs = []

        def prep_fn(w=w, sh=sh, pads=pads, packs=packs):
            packs.append(require_ext().conv2d_prepare_weights(
                w, None, sh.C, sh.H, sh.W, [sh.stride_h, sh.stride_w], list(pads), [sh.dilation_h, sh.dilation_w],
                sh.groups, threads, [0xFFFFFFFF, -1, -1, -1, -1]))
        # a direct one-off that packs per group inside the kernel reads w and
        # writes the packed layout's bytes all the same (a slice at a time):
        # held against the same bandwidth as a whole re-layout
        nbytes, bw_s = prepare_reference(host(), sh, one_alg, one["plain_input"])
        copies: List[float] = []
        prep_fns = {"prepare": prep_fn}
        if nbytes:
            prep_fns["memcpy"] = memcpy_fn(host(), sh, one_alg, one["plain_input"], copies)
        # Warmed like the runs below: with several threads the fused path's
        # packing runs on the pool, whose idle vCPU the hypervisor deschedules
        # (bench.WARM_S); back-to-back calls find it awake.
        prep_one = best_times(prep_fns, repeat, quiet_s=quiet, warm_s=warm_seconds(threads))["prepare"]
        pack_one = min(packs)
        fns = {"ours": lambda: layer(x, residual=res, out=out),
               "oneoff": lambda: conv2d(x, w, b, activation=act, residual=res, out=out, threads=threads,
                                                 **geo)}
        if check_model:
            for alg in CONV_ALGORITHMS:
                if alg == layer.algorithm or all(c.rejected for c in ex.plan.candidates if c.name.split()[0] == alg):
                    continue
                other = prepare_conv2d(w, b, algorithm=alg, **kw)
                fns[alg] = (lambda other=other: other(x, residual=res, out=out))
            for alg, est in one["estimates"].items():
                if est >= 0 and alg != one_alg:   # one-off calls of every other applicable algorithm
                    fns["oneoff " + alg] = (lambda alg=alg: conv2d(
                        x, w, b, activation=act, residual=res, out=out, threads=threads, algorithm=alg, **geo))
        if torch is not None:
            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
            tr = torch.from_numpy(res) if res is not None else None
            F = torch.nn.functional

            def torch_layer():
                y = F.conv2d(tx, tw, tb, (sh.stride_h, sh.stride_w), (sh.pad_top, sh.pad_left),
                             (sh.dilation_h, sh.dilation_w), sh.groups)
                if tr is not None:
                    y = y + tr
                if act == "relu":
                    y = torch.relu(y)
                elif act == "relu6":
                    y = torch.clamp(y, 0.0, 6.0)
                return y
            fns["torch"] = torch_layer
        with (torch.no_grad() if torch is not None else contextlib.nullcontext()):
            times = best_times(fns, repeat, quiet_s=quiet, pauses=peer_pauses(threads), warm_s=warm_seconds(threads))
        ours = times.pop("ours")
        oneoff = times.pop("oneoff")
        tt = times.pop("torch", None)
        measured, oneoff_measured = {}, {}
        if check_model:
            oneoff_measured = {k.split(" ", 1)[1]: times.pop(k) for k in list(times) if k.startswith("oneoff ")}
            oneoff_measured[one_alg] = oneoff
            measured = dict(times)
            measured[layer.algorithm] = ours
        rows.append(ConvRow(name, _label(sh), threads, layer.algorithm, predicted, ours, prep,
                            sh.flops / ours / 1e9, 100.0 * sh.flops / ours / 1e9 / peak, tt, measured,
                            one_alg, oneoff, one["estimates"][one_alg], prep_one, one["prepare"][one_alg],
                            nbytes, bw_s, oneoff_measured, oneoff_pack_s=pack_one,
                            memcpy_s=min(copies) if copies else float("nan"),
                            oneoff_pack_groups=bool(one.get("pack_groups"))))
    return rows


# Re-layouts moving fewer bytes than this are dominated by the fixed cost of
# the call (thread wake-up, item set-up), not by bandwidth: the summary line
# counts only the larger ones (issue 14's 2x bar is about memory speed).
LARGE_RELAYOUT_BYTES = 0.25e6


def prepare_reference(profile, sh, alg: str, plain: bool):
    """(bytes read + written by the one-off weight preparation of alg, seconds
    to move them at the profile's copy bandwidth of the level they fit in)."""
    from .models import conv as conv_model
    m = conv_model.kernel_machine(profile)
    read, written = conv_model.prepare_bytes(m, sh, alg, plain)
    nbytes = conv_model.F32 * (read + written)
    return nbytes, (nbytes / m.copy_bandwidth(m.level_of(nbytes)) if nbytes else 0.0)


def memcpy_fn(profile, sh, alg: str, plain: bool, out: List[float]):
    """A plain copy of the bytes the re-layout moves, one thread: numpy.copyto
    of a source of the weights' size into a destination of the packed size
    (in source-sized pieces when the packed weights are larger: Winograd's U,
    padded blocks). The arrays are made once and reused, as the timed
    re-layout reuses its weights, so both read a source of the same size from
    the same level. Each call appends its seconds to `out` (best of them: the re-layout
    is also the best single call)."""
    import numpy as np
    from .models import conv as conv_model
    read, written = conv_model.prepare_bytes(conv_model.kernel_machine(profile), sh, alg, plain)
    src = np.random.default_rng(0).standard_normal(int(read), dtype=np.float32)
    # The destination starts half a page from the source's page offset: two
    # arrays of one size come from mmap at the same offset, and a copy whose
    # loads and stores agree in their low 12 bits stalls on every load (4K
    # aliasing: 3-6x slower on the Zen 3 VM), which is not memory speed.
    raw = np.empty(int(written) + 1024, dtype=np.float32)
    shift = (src.ctypes.data + 2048 - raw.ctypes.data) % 4096 // 4
    dst = raw[shift:shift + int(written)]
    pieces = [(i, min(i + src.size, dst.size)) for i in range(0, dst.size, src.size)]

    def run():
        t0 = time.perf_counter()
        for a, b in pieces:
            np.copyto(dst[a:b], src[:b - a])
        out.append(time.perf_counter() - t0)
    return run


def _ratio(a: float, b: float) -> float:
    return a / b if b and b == b else float("nan")


def format_prepare_table(rows: List[ConvRow], markdown: bool) -> str:
    """The one-off call's weight preparation per layer: bytes, measured
    (the whole conv2d_prepare_weights call: checks, model choice, re-layout),
    the re-layout alone (fold + pack, timed inside the call), the time of its
    bytes at the probe's copy bandwidth, a numpy copy of them (memcpy_fn), the
    re-layout over both, and the model's prediction; then how many re-layouts
    of >= LARGE_RELAYOUT_BYTES are within 2x of each."""
    head = ["spec", "layer", "thr", "one-off algorithm", "bytes", "measured ms", "re-layout ms", "ms at bandwidth",
            "memcpy ms", "re-layout / bandwidth", "re-layout / memcpy", "predicted ms"]
    body = []
    for r in rows:
        vs_bw, vs_copy = _ratio(r.oneoff_pack_s, r.prepare_bandwidth_s), _ratio(r.oneoff_pack_s, r.memcpy_s)
        small = " (small)" if 0 < r.prepare_bytes < LARGE_RELAYOUT_BYTES else ""
        alg = r.oneoff_algorithm + (" (packed per group in the kernel)" if r.oneoff_pack_groups else "")
        body.append([r.spec, r.layer, str(r.threads), alg, f"{r.prepare_bytes / 1e6:.2f} MB{small}",
                     f"{r.oneoff_prepare_s * 1e3:.3f}", f"{r.oneoff_pack_s * 1e3:.3f}",
                     f"{r.prepare_bandwidth_s * 1e3:.3f}", "-" if r.memcpy_s != r.memcpy_s else
                     f"{r.memcpy_s * 1e3:.3f}", "-" if vs_bw != vs_bw else f"{vs_bw:.2f}",
                     "-" if vs_copy != vs_copy else f"{vs_copy:.2f}", f"{r.oneoff_prepare_predicted_s * 1e3:.3f}"])
    lines = render_table(head, body, markdown, align="<")
    lines.append("")
    lines += prepare_summary(rows)
    return "\n".join(lines)


def prepare_summary(rows: List[ConvRow]) -> List[str]:
    """Per thread count and kind (direct re-layout, Winograd transform): how
    many preparations of >= LARGE_RELAYOUT_BYTES are within 2x of the copy
    bandwidth and of the measured memcpy."""
    out = []
    for threads in sorted({r.threads for r in rows}):
        for kind, pick in (("re-layouts (direct)", lambda r: r.oneoff_algorithm == "direct" and not r.oneoff_pack_groups),
                           ("per-group packings (direct, in the kernel)",
                            lambda r: r.oneoff_algorithm == "direct" and r.oneoff_pack_groups),
                           ("Winograd transforms", lambda r: r.oneoff_algorithm.startswith("winograd"))):
            big = [r for r in rows if r.threads == threads and pick(r) and r.prepare_bytes >= LARGE_RELAYOUT_BYTES]
            small = [r for r in rows if r.threads == threads and pick(r) and 0 < r.prepare_bytes < LARGE_RELAYOUT_BYTES]
            if not big and not small:
                continue
            bw = sum(1 for r in big if _ratio(r.oneoff_pack_s, r.prepare_bandwidth_s) <= 2.0)
            cp = sum(1 for r in big if _ratio(r.oneoff_pack_s, r.memcpy_s) <= 2.0)
            out.append(f"{threads} thread(s), {kind} of >= {LARGE_RELAYOUT_BYTES / 1e6:g} MB: {bw}/{len(big)} "
                       f"within 2x of the copy bandwidth, {cp}/{len(big)} within 2x of memcpy; "
                       f"{len(small)} smaller ones (marked small) are dominated by the fixed cost of the call")
    out.append("memcpy: numpy.copyto on one thread, whatever the re-layout's thread count")
    return out


def _geomean(xs: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def format_conv_table(rows: List[ConvRow], markdown: bool, peak_gflops: float) -> str:
    has_torch = any(r.torch_s is not None for r in rows)
    check = any(r.measured for r in rows)
    head = ["spec", "layer", "thr", "algorithm", "predicted ms", "ours ms", "GFLOPS", "% peak", "prepare ms"]
    if has_torch:
        head += ["torch ms", "vs torch"]
    head += ["one-off algorithm", "one-off ms"] + (["one-off vs torch"] if has_torch else [])
    if check:
        head += ["measured best", "best ms", "choice", "one-off best", "one-off choice", "prep predicted ms",
                 "prep ms"]
    body = []
    for r in rows:
        cells = [r.spec, r.layer, str(r.threads), r.algorithm, f"{r.predicted_s * 1e3:.3f}", f"{r.ours_s * 1e3:.3f}",
                 f"{r.gflops:.1f}", f"{r.pct_peak:.1f}", f"{r.prepare_s * 1e3:.2f}"]
        if has_torch:
            cells += ["-" if r.torch_s is None else f"{r.torch_s * 1e3:.3f}",
                      "-" if r.vs_torch is None else f"{r.vs_torch:.2f}x"]
        cells += [r.oneoff_algorithm, f"{r.oneoff_s * 1e3:.3f}"]
        if has_torch:
            cells.append("-" if r.oneoff_vs_torch is None else f"{r.oneoff_vs_torch:.2f}x")
        if check:
            best = r.best_measured
            cells += [best, f"{r.measured[best] * 1e3:.3f}",
                      "best" if best == r.algorithm else ("within 10%" if r.choice_ok else "MISS"),
                      r.oneoff_best, "best" if r.oneoff_best == r.oneoff_algorithm else
                      ("within 10%" if r.oneoff_choice_ok else "MISS"),
                      f"{r.oneoff_prepare_predicted_s * 1e3:.3f}", f"{r.oneoff_prepare_s * 1e3:.3f}"]
        body.append(cells)
    lines = render_table(head, body, markdown, align="<")
    lines.append("")
    if has_torch:
        for net in ("resnet50", "mobilenetv2_depthwise", "mobilenetv2"):
            rs = [r.vs_torch for r in rows if r.spec.startswith(net) and r.vs_torch]
            if rs:
                lines.append(f"geometric mean vs torch, {net}: {_geomean(rs):.2f}x over {len(rs)} layers")
            rs = [r.oneoff_vs_torch for r in rows if r.spec.startswith(net) and r.oneoff_vs_torch]
            if rs:
                lines.append(f"geometric mean vs torch, one-off conv2d(), {net}: {_geomean(rs):.2f}x "
                             f"over {len(rs)} layers")
    if check:
        ok = sum(1 for r in rows if r.choice_ok)
        exact = sum(1 for r in rows if r.best_measured == r.algorithm)
        lines.append(f"model check: choice is the measured best on {exact}/{len(rows)} layers, within 10% of it "
                     f"on {ok}/{len(rows)} ({100.0 * ok / len(rows):.0f}%)")
        ok = sum(1 for r in rows if r.oneoff_choice_ok)
        exact = sum(1 for r in rows if r.oneoff_best == r.oneoff_algorithm)
        lines.append(f"model check, one-off conv2d() (run + prepare): choice is the measured best on {exact}/"
                     f"{len(rows)} layers, within 10% of it on {ok}/{len(rows)} ({100.0 * ok / len(rows):.0f}%)")
    lines.append(f"peak = {peak_gflops:.1f} GFLOPS/core x threads; ratios are torch time / ours (>1: ours faster); "
                 "ours excludes the one-time weight preparation (its own column); one-off is conv2d() with it")
    if check:
        lines += ["", "one-off weight preparation (conv2d_prepare_weights, best of the samples):",
                  format_prepare_table(rows, markdown)]
    return "\n".join(lines)
