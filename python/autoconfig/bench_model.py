"""`autoconfig bench --model model.onnx`: one network end to end, ours
against onnxruntime and OpenVINO (optional peers, `[bench]`), in one process.

- Ours: import + plan (build stage, timed as "plan"), then the executor's
  load + weight preparation from the .acmodel bytes (timed as "load").
- onnxruntime: ORT_ENABLE_ALL, intra_op_num_threads = threads,
  inter_op_num_threads = 1, sequential execution.
- OpenVINO: CPU, PERFORMANCE_HINT = LATENCY, INFERENCE_NUM_THREADS = threads.
Latency: `runs` rounds; every round times one inference of each engine, in a
rotating order (a burst of load from other processes hits them alike), each
preceded by untimed calls that wake its thread pool (bench.warm_seconds) and,
with several threads, by a pause that lets a peer's spinning pool go quiet
(PEER_PAUSE_S). Best and median per engine. Correctness: max |y - y_ort| /
max |y_ort|. Profile: the executor's measured ms per node beside the plan's
predicted ms (`--plot FILE` draws both as bars, matplotlib optional).
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .bench import render_table, warm_seconds

# Seconds of sleep around a peer's sample when threads > 1: onnxruntime's
# and OpenVINO's pools spin after a run (onnxruntime: allow_spinning, about
# 10 ms by default) and would slow whichever engine runs next on 2 cores.
PEER_PAUSE_S = {"onnxruntime": 0.02, "openvino": 0.02}


@dataclass
class EngineResult:
    name: str
    version: str
    samples: List[float] = field(default_factory=list)
    load_s: Optional[float] = None
    error: Optional[float] = None          # max |y - y_ort| / max |y_ort|

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class NodeTime:
    name: str
    op: str
    threads: int
    algorithm: str
    predicted_ms: float
    measured_ms: Optional[float]


@dataclass
class ModelBench:
    model: str
    input_shape: Tuple[int, ...]
    threads: int
    cpu: str
    plan_s: float
    engines: List[EngineResult]
    nodes: List[NodeTime]
    predicted_ms: float
    notes: List[str] = field(default_factory=list)
    memory: Optional[Dict[str, int]] = None    # ours after load: Model.memory()

    def engine(self, name: str) -> Optional[EngineResult]:
        return next((e for e in self.engines if e.name == name), None)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- engines
def _ours(path: str, input_shape, threads: int, layouts: str = "auto"):
    from . import model_onnx
    from .graph import acmodel
    from .graph.pipeline import compile_onnx
    from .runtime.info import host
    t0 = time.perf_counter()
    plan = compile_onnx(path, host(), input_shape=input_shape, threads=threads,
                        name=os.path.splitext(os.path.basename(path))[0], layouts=layouts)
    data = acmodel.to_bytes(plan.graph)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = model_onnx.load_bytes(data, threads=threads)
    return model, plan, plan_s, time.perf_counter() - t0


def _onnxruntime(path: str, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return (lambda feeds: sess.run(None, feeds)[0]), time.perf_counter() - t0, ort.__version__


def _openvino(path: str, threads: int):
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    t0 = time.perf_counter()
    # float32 like us and onnxruntime: on CPUs with avx512_bf16 or AMX OpenVINO
    # otherwise computes in bfloat16 by default (errors ~4e-3, about 2x faster).
    compiled = core.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                                "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    load = time.perf_counter() - t0

    def run(feeds):
        request.infer(feeds)
        return request.get_output_tensor(0).data
    return run, load, ov.__version__.split("-")[0]


def round_robin(fns: Dict[str, Callable[[], object]], runs: int, threads: int,
                pauses: Optional[Dict[str, float]] = None) -> Dict[str, List[float]]:
    """`runs` timed inferences of each engine, one per engine per round,
    the order rotating every round; untimed calls first (warm_seconds)."""
    warm = warm_seconds(threads)
    pauses = pauses if pauses is not None else (PEER_PAUSE_S if threads > 1 else {})
    for fn in fns.values():          # first calls: allocation, page faults, pool start
        fn()
        fn()
    out: Dict[str, List[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, pause = fns[name], pauses.get(name, 0.0)
            if pause:
                time.sleep(pause)
            t0 = time.perf_counter()
            fn()
            while time.perf_counter() - t0 < warm:
                fn()
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
            if pause:
                time.sleep(pause)
    return out


def _profile_ms(prof) -> Dict[str, float]:
    """The executor's profile as {node name: ms}, whatever shape it comes in
    (a dict, a list of (name, ms), of dicts, or of records)."""
    if prof is None:
        return {}
    if isinstance(prof, dict):
        if "nodes" in prof:
            return _profile_ms(prof["nodes"])
        return {str(k): float(v if not isinstance(v, dict) else v.get("ms", v.get("measured_ms", 0.0)))
                for k, v in prof.items()}
    out = {}
    for item in prof:
        if isinstance(item, (tuple, list)):
            out[str(item[0])] = float(item[1])
        elif isinstance(item, dict):
            out[str(item["name"])] = float(item.get("ms", item.get("measured_ms", item.get("seconds", 0.0) * 1e3)))
        else:
            ms = getattr(item, "ms", None)
            if ms is None:
                ms = getattr(item, "measured_ms", None)
            if ms is None:
                ms = getattr(item, "seconds", 0.0) * 1e3
            out[str(getattr(item, "name"))] = float(ms)
    return out


def make_feeds(g, seed: int = 0) -> Dict[str, np.ndarray]:
    """Inputs for a planned graph: float32 inputs standard normal; int64 ones
    made up as a tokenizer would: a mask all ones, token types zeros, ids
    uniform in [0, 100) (every vocabulary is larger)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype == "int64":
            low = name.lower()
            if "mask" in low:
                feeds[name] = np.ones(t.shape, np.int64)
            elif "type" in low:
                feeds[name] = np.zeros(t.shape, np.int64)
            else:
                feeds[name] = rng.integers(0, 100, t.shape, dtype=np.int64)
        else:
            feeds[name] = rng.standard_normal(t.shape).astype(np.float32)
    return feeds


def run(path: str, threads: int = 1, runs: int = 20, input_shape=None, peers: Sequence[str] = ("onnxruntime",
        "openvino"), seed: int = 0, layouts: str = "auto", sequence: int = 128) -> ModelBench:
    """sequence: a transformer's (int64 token inputs) length when input_shape is not given."""
    if input_shape is None:
        from .model_onnx import sequence_shapes
        input_shape = sequence_shapes(path, sequence)
    model, plan, plan_s, load_s = _ours(path, input_shape, threads, layouts)
    g = plan.graph
    shape = tuple(g.tensors[g.inputs[0]].shape)
    feeds = make_feeds(g, seed)
    xs = [feeds[n] for n in g.inputs]
    import autoconfig
    engines = [EngineResult("autoconfig", autoconfig.__version__, load_s=load_s)]
    fns: Dict[str, Callable[[], object]] = {"autoconfig": lambda: model(*xs)}
    first = model(*xs)
    outputs = {"autoconfig": np.asarray(first[0] if isinstance(first, tuple) else first)}
    makers = {"onnxruntime": _onnxruntime, "openvino": _openvino}
    notes = []
    for name in peers:
        made = makers[name](path, threads)
        if made is None:
            notes.append(f"{name} is not installed (pip install 'autoconfig[bench]')")
            continue
        fn, load, version = made
        engines.append(EngineResult(name, version, load_s=load))
        outputs[name] = np.array(fn(feeds))
        fns[name] = (lambda f: (lambda: f(feeds)))(fn)
    ref = outputs.get("onnxruntime")
    if ref is not None:
        scale = float(np.abs(ref).max()) or 1.0
        for e in engines:
            e.error = float(np.abs(outputs[e.name].reshape(ref.shape) - ref).max()) / scale
    samples = round_robin(fns, runs, threads)
    for e in engines:
        e.samples = samples[e.name]
    measured = {}
    if hasattr(model, "profile"):
        measured = _profile_ms(model.profile(*xs, repeat=5))   # best of 5 per node
    nodes = [NodeTime(n.name, n.op, n.threads, n.attrs.get("algorithm", "") or "", n.predicted_ms or 0.0,
                      measured.get(n.name)) for n in g.nodes]
    return ModelBench(os.path.basename(path), shape, threads, cpu_name(), plan_s, engines, nodes, plan.total_ms,
                      notes, memory=model.memory() if hasattr(model, "memory") else None)


# --------------------------------------------------------------------------- output
def format_latency(b: ModelBench, markdown: bool) -> str:
    ours = b.engine("autoconfig")
    head = ["engine", "version", "best ms", "median ms", "speed-up (best)", "speed-up (median)", "load s", "max rel err"]
    body = []
    for e in b.engines:
        up = "-" if e is ours else f"{e.best / ours.best:.2f}x"
        upm = "-" if e is ours else f"{e.median / ours.median:.2f}x"
        body.append([e.name, e.version, f"{e.best * 1e3:.2f}", f"{e.median * 1e3:.2f}", up, upm,
                     "-" if e.load_s is None else f"{e.load_s:.2f}",
                     "-" if e.error is None else f"{e.error:.1e}"])
    lines = [f"{b.model}: input {'x'.join(map(str, b.input_shape))}, {b.threads} thread(s), "
             f"{len(ours.samples)} runs per engine round-robin, on {b.cpu}"]
    lines += render_table(head, body, markdown, align=">")
    lines.append(f"speed-up = peer time / ours (> 1: ours is faster); ours: plan {b.plan_s:.2f} s "
                 f"(import + plan, build stage), load {ours.load_s:.2f} s (executor load + weight preparation); "
                 f"predicted {b.predicted_ms:.2f} ms")
    if b.memory:
        lines.append(format_memory(b.memory))
    lines += b.notes
    return "\n".join(lines)


def format_memory(m: Dict[str, int]) -> str:
    """Model.memory() in MiB: what the executor holds after load."""
    mib = {k: v / 2**20 for k, v in m.items()}
    return (f"ours holds {mib['total']:.1f} MiB after load: arena {mib['arena']:.1f}, prepared weights "
            f"{mib['prepared']:.1f}, constants kept {mib['constants']:.1f} (released after preparation "
            f"{mib['released']:.1f})")


def format_profile(b: ModelBench, markdown: bool, top: Optional[int] = None) -> str:
    rows = b.nodes
    if not any(n.measured_ms is not None for n in rows):
        return "profile: this executor has no model.profile()"
    if top:
        rows = sorted(rows, key=lambda n: -(n.measured_ms or 0.0))[:top]
    head = ["node", "op", "algorithm", "thr", "predicted ms", "measured ms", "measured / predicted"]
    body = [[n.name, n.op, n.algorithm or "-", str(n.threads), f"{n.predicted_ms:.3f}",
             "-" if n.measured_ms is None else f"{n.measured_ms:.3f}",
             "-" if not n.measured_ms or not n.predicted_ms else f"{n.measured_ms / n.predicted_ms:.2f}"]
            for n in rows]
    total = sum(n.measured_ms or 0.0 for n in b.nodes)
    lines = render_table(head, body, markdown, align="<")
    lines.append(f"per-node total: measured {total:.2f} ms, predicted {b.predicted_ms:.2f} ms "
                 f"({len(b.nodes)} nodes{'' if not top else f'; the {top} slowest shown'})")
    return "\n".join(lines)


def plot_profile(b: ModelBench, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("--plot needs matplotlib (pip install matplotlib)") from e
    nodes = [n for n in b.nodes if n.measured_ms is not None or n.predicted_ms]
    xs = np.arange(len(nodes))
    fig, ax = plt.subplots(figsize=(max(8, len(nodes) * 0.12), 4.5))
    ax.bar(xs - 0.2, [n.predicted_ms for n in nodes], 0.4, label="predicted")
    ax.bar(xs + 0.2, [n.measured_ms or 0.0 for n in nodes], 0.4, label="measured")
    ax.set_ylabel("ms")
    ax.set_xlabel("node (execution order)")
    ax.set_title(f"{b.model}, {b.threads} thread(s), {b.cpu}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
