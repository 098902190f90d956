"""`autoconfig bench`: our kernels against numpy (OpenBLAS/MKL) and, when
installed, PyTorch, in one run, on the spec shapes.

Timing (best_times): the libraries are sampled round-robin, each sample
running the call enough times to last >= ~10 ms (at least once), and the best
of `repeat` samples is kept: machines here are shared and noisy, the best
sample is the least disturbed one, and a burst of load hits every library
alike. Thread counts of every library are pinned to the same value.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .isa_table import ISA


def pin_threads(n: int) -> None:
    """Must run before numpy/torch are imported to bind their BLAS pools."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(n)


# After a call, OpenBLAS and OpenMP pools keep their threads spinning for a
# while; timing the next library then measures a fight for the cores.
QUIET_S = 0.3
# With several threads, a peer library's pool keeps spinning after a call and
# would slow whichever library is sampled next on a 2-core machine, so its
# samples are fenced by a sleep longer than that spin: torch's OpenMP workers
# (GOMP_SPINCOUNT, milliseconds); OpenBLAS's server threads (2^28 cycles by
# default, about 0.1 s). Ours spin 300 us (runtime.cpp).
PEER_PAUSE_S = {"torch": 0.02, "numpy": 0.12}


def peer_pauses(threads: int) -> Dict[str, float]:
    return dict(PEER_PAUSE_S) if threads > 1 else {}


# Before a multi-threaded sample, calls run untimed for this long: a vCPU left
# idle (during a peer's pause) is descheduled by the hypervisor, and the first
# calls after it wait milliseconds for the pool's threads (measured here: three
# calls of 3-5 ms after 0.12 s of idle, then 40 us each).
WARM_S = 0.02


def warm_seconds(threads: int) -> float:
    return WARM_S if threads > 1 else 0.0


def _warm(fn: Callable[[], object], warm_s: float) -> None:
    """One untimed call, then more until warm_s has passed."""
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < warm_s:
        fn()


def best_times(fns: Dict[str, Callable[[], object]], repeat: int, min_sample_s: float = 0.01,
               quiet_s: float = 0.0, pauses: Optional[Dict[str, float]] = None,
               warm_s: float = 0.0) -> Dict[str, float]:
    """Best seconds per call of each function, sampled round-robin: every
    round times each function once (a sample averages enough calls to last
    min_sample_s), so a burst of load from other processes hits all of them
    alike and the comparisons between them stay fair on a shared machine.
    A function named in `pauses` gets that many seconds of sleep before and
    after its sample: another library's thread pool spins after a call and
    would steal the cores of whatever runs next. Rounds rotate the order
    and every sample is preceded by untimed calls: one, or as many as fill
    warm_s (waking the thread pools of a multi-threaded call)."""
    if quiet_s:
        time.sleep(quiet_s)
    inner = {}
    for name, fn in fns.items():
        _warm(fn, warm_s)  # page faults, pool start, packing buffers
        t0 = time.perf_counter()
        fn()
        inner[name] = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-7)))
    best = {name: float("inf") for name in fns}
    names = list(fns)
    for r in range(repeat):
        # Each round starts one further along, so no function always follows
        # a pause; untimed calls before each sample wake pools and caches.
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn = fns[name]
            pause = (pauses or {}).get(name, 0.0)
            if pause:
                time.sleep(pause)
            _warm(fn, warm_s)
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / inner[name])
            if pause:
                time.sleep(pause)
    return best


@dataclass
class Row:
    op: str
    shape: str
    threads: int
    kernel: str
    ours_s: float
    gflops: float
    pct_peak: float
    numpy_s: float
    torch_s: Optional[float]
    predicted_s: Optional[float]

    @property
    def vs_numpy(self) -> float:
        return self.numpy_s / self.ours_s

    @property
    def vs_torch(self) -> Optional[float]:
        return None if self.torch_s is None else self.torch_s / self.ours_s


# The probe FMA reading that gives each ISA's peak (the ISA table's).
_PROBE_KEY = {k: r.fma_key for k, r in ISA.items()}


def pinned_torch(threads: int):
    """PyTorch with its intra-op pool set to `threads`, or None when it is not
    installed (it is an optional peer)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def measured_peak_gflops(isa: str) -> Optional[float]:
    """FMA peak of one core measured now (the clock of a shared machine drifts
    between build time and bench time), or None without the installed probe."""
    from pathlib import Path
    from . import probe
    exe = Path(__file__).resolve().parent / "autoconfig_probe"
    if not exe.is_file():
        return None
    best = None
    for _ in range(3):   # best of three short runs: a shared machine only ever slows a run down
        meas = probe.run_probe_binary(exe, quick=True, bandwidth=False)
        entry = meas.get("fma", {}).get(_PROBE_KEY.get(isa, ""))
        if entry:
            best = max(best or 0.0, float(entry["gflops"]))
    return best


def default_shapes() -> List[Tuple[int, int, int]]:
    from . import spec
    shapes = []
    for s in spec.load_default():
        if s.op in ("matmul", "gemm"):
            for sh in s.shapes:
                if (sh.M, sh.N, sh.K) not in shapes:
                    shapes.append((sh.M, sh.N, sh.K))
    return shapes


def run_matmul(shapes: Sequence[Tuple[int, int, int]], threads: int, repeat: int,
               use_torch: bool = True, seed: int = 0, peak_gflops: Optional[float] = None) -> List[Row]:
    import numpy as np
    from .explanation import explain
    from .runtime.gemm import matmul
    from .runtime.info import host
    torch = pinned_torch(threads) if use_torch else None
    peak = (peak_gflops or host().peak_gflops_per_core) * threads
    rng = np.random.default_rng(seed)
    rows = []
    for (M, N, K) in shapes:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        out = np.empty((M, N), dtype=np.float32)
        np_out = np.empty((M, N), dtype=np.float32)
        fns = {"ours": lambda: matmul(a, b, out=out, threads=threads),
               "numpy": lambda: np.matmul(a, b, out=np_out)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            to = torch.empty((M, N), dtype=torch.float32)
            fns["torch"] = lambda: torch.matmul(ta, tb, out=to)
        times = best_times(fns, repeat, quiet_s=QUIET_S if threads > 1 else 0.0, pauses=peer_pauses(threads),
                           warm_s=warm_seconds(threads))
        ours, ref, tt = times["ours"], times["numpy"], times.get("torch")
        ex = explain("matmul", M=M, N=N, K=K, threads=threads)
        pred = ex.plan.predicted_s if ex.specialized else None
        if pred is not None and ex.plan.value("threads") != threads:
            from .models import gemm as gm
            prof = host()
            t = gm.Tile(ex.plan.value("mr"), ex.plan.value("nr"), ex.plan.value("nr") // prof.lanes_f32)
            pred = gm.estimate(gm.Machine(prof), t, M, N, K, threads, ex.plan.value("loop_order")).seconds
        flops = 2.0 * M * N * K
        rows.append(Row("matmul", f"{M}x{N}x{K}", threads, ex.kernel, ours, flops / ours / 1e9,
                        100.0 * flops / ours / 1e9 / peak, ref, tt, pred))
    return rows


def render_table(head: List[str], body: List[List[str]], markdown: bool, align: str = ">") -> List[str]:
    """Rows as Markdown, or as plain columns padded to width (align: '>' right, '<' left)."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        return lines + ["| " + " | ".join(c) + " |" for c in body]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "  ".join("{:%s%d}" % (align, w) for w in widths)
    return [fmt.format(*head)] + [fmt.format(*c) for c in body]


def format_table(rows: List[Row], markdown: bool, peak_gflops: float, build_peak: Optional[float] = None) -> str:
    has_torch = any(r.torch_s is not None for r in rows)
    head = ["op", "shape (MxNxK)", "thr", "kernel", "ours ms", "GFLOPS", "% peak", "numpy ms", "vs numpy"]
    if has_torch:
        head += ["torch ms", "vs torch"]
    head += ["predicted ms"]
    body = []
    for r in rows:
        cells = [r.op, r.shape, str(r.threads), r.kernel, f"{r.ours_s * 1e3:.3f}", f"{r.gflops:.1f}",
                 f"{r.pct_peak:.1f}", f"{r.numpy_s * 1e3:.3f}", f"{r.vs_numpy:.2f}x"]
        if has_torch:
            cells += ["-" if r.torch_s is None else f"{r.torch_s * 1e3:.3f}",
                      "-" if r.vs_torch is None else f"{r.vs_torch:.2f}x"]
        cells += ["-" if r.predicted_s is None else f"{r.predicted_s * 1e3:.3f}"]
        body.append(cells)
    lines = render_table(head, body, markdown, align=">")
    lines.append("")
    note = f" (build-time probe: {build_peak:.1f})" if build_peak else ""
    lines.append(f"peak = FMA peak measured at the start of this run, {peak_gflops:.1f} GFLOPS/core{note}, "
                 "x threads; ratios are numpy (or torch) time / ours (>1: ours is faster)")
    return "\n".join(lines)
