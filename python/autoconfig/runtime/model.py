"""Run a planned network: ``autoconfig.load(path)`` -> :class:`Model`.

The executor is C++ (``autoconfig::Model``, cpp_runtime/src/model), shared
with C++ engines; this module only checks arguments (naming the input that
is wrong), allocates the outputs and releases the GIL while the network runs.

    model = autoconfig.load("resnet50.acmodel")
    y = model(x)                                   # a tuple when there are several outputs
    (y,) = model.run(None, {"data": x})            # like onnxruntime's InferenceSession.run
    for row in model.profile(x): print(row)        # measured ms per node
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .guard import ext as _ext

__all__ = ["Model", "load"]


def _require_ext():
    if _ext is None:
        raise ImportError("autoconfig.load needs the compiled extension (install the package: pip install .)")
    return _ext


class Model:
    """A loaded ``.acmodel``: weights prepared, arena allocated, ready to run.

    ``threads``: the default for every call: None/0 = the plan's per-node
    thread counts capped at this process's CPUs; n > 0 = every node capped at n.
    """

    def __init__(self, impl, threads: Optional[int] = None, path: Optional[str] = None):
        self._impl = impl
        self._threads = self._check_threads(threads)
        self.path = path

    # ---- description ----
    @property
    def name(self) -> str:
        return self._impl.name

    @property
    def input_names(self) -> List[str]:
        return list(self._impl.input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._impl.output_names)

    @property
    def input_shapes(self) -> List[Tuple[int, ...]]:
        return [tuple(s) for s in self._impl.input_shapes]

    @property
    def input_dtypes(self) -> List[str]:
        """'float32' or 'int64' (token ids, attention masks) per input."""
        return list(self._impl.input_dtypes)

    @property
    def output_shapes(self) -> List[Tuple[int, ...]]:
        return [tuple(s) for s in self._impl.output_shapes]

    @property
    def nodes(self) -> List[dict]:
        """Per node in execution order: name, op, threads (the plan's; 0 = the run's), algorithm (conv)."""
        return list(self._impl.nodes)

    @property
    def header(self) -> dict:
        """The file's header JSON (the plan, with its per-node explanation)."""
        return json.loads(self._impl.header_json)

    def memory(self) -> Dict[str, int]:
        """Bytes the loaded model holds, by kind: ``arena`` (activations),
        ``prepared`` (what the ops made at load: packed GEMM operands, folded
        and packed conv weights), ``constants`` (the file's constants still
        read at run time, e.g. an embedding table), ``total`` (their sum) and
        ``released`` (the file's constants freed after preparation, not in
        the total). The kernels' per-thread scratch is not included."""
        return dict(self._impl.memory())

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}{list(s)}" for n, s in zip(self.input_names, self.input_shapes))
        outs = ", ".join(f"{n}{list(s)}" for n, s in zip(self.output_names, self.output_shapes))
        return f"<autoconfig.Model {self.name!r}: {ins} -> {outs}, {len(self.nodes)} nodes>"

    # ---- running ----
    @staticmethod
    def _check_threads(threads) -> int:
        if threads is None:
            return 0
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"threads must be None or an integer >= 0, got {threads!r}")
        return int(threads)

    def _inputs(self, xs: Sequence) -> List[np.ndarray]:
        names, shapes = self.input_names, self.input_shapes
        if len(xs) != len(names):
            raise TypeError(f"the model takes {len(names)} input(s) ({', '.join(names)}), got {len(xs)}")
        out = []
        for name, shape, dtype, x in zip(names, shapes, self.input_dtypes, xs):
            a = np.asarray(x)
            if a.dtype != np.dtype(dtype):
                if a.dtype.kind not in "fiub":
                    raise TypeError(f"input '{name}': dtype {a.dtype} is not numeric ({dtype} expected)")
                if dtype == "int64" and a.dtype.kind in "iub":
                    a = a.astype(np.int64)     # any integer or boolean array: the values are what count
                else:
                    raise TypeError(f"input '{name}': dtype {a.dtype}, expected {dtype} "
                                    f"(convert with .astype(np.{dtype}))")
            if tuple(a.shape) != tuple(shape):
                raise ValueError(f"input '{name}': shape {tuple(a.shape)}, the model expects {tuple(shape)}")
            out.append(np.ascontiguousarray(a))
        return out

    def _outputs(self) -> List[np.ndarray]:
        return [np.empty(s, dtype=np.float32) for s in self.output_shapes]

    def __call__(self, *xs, threads: Optional[int] = None):
        """Run on positional inputs (in input_names order): the output, or a tuple of them."""
        ins = self._inputs(xs)
        outs = self._outputs()
        t = self._threads if threads is None else self._check_threads(threads)
        self._impl.run(ins, outs, t)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, np.ndarray],
            threads: Optional[int] = None) -> List[np.ndarray]:
        """onnxruntime's InferenceSession.run: the outputs named (None: all), as a list."""
        if not isinstance(input_feed, Mapping):
            raise TypeError("input_feed must be a dict {input name: array}")
        names = self.input_names
        unknown = [k for k in input_feed if k not in names]
        if unknown:
            raise ValueError(f"unknown input(s) {unknown}; the model's inputs are {names}")
        missing = [n for n in names if n not in input_feed]
        if missing:
            raise ValueError(f"missing input(s) {missing}; the model's inputs are {names}")
        wanted = self.output_names if output_names is None else list(output_names)
        for n in wanted:
            if n not in self.output_names:
                raise ValueError(f"unknown output '{n}'; the model's outputs are {self.output_names}")
        ins = self._inputs([input_feed[n] for n in names])
        outs = self._outputs()
        t = self._threads if threads is None else self._check_threads(threads)
        self._impl.run(ins, outs, t)
        by_name = dict(zip(self.output_names, outs))
        return [by_name[n] for n in wanted]

    def profile(self, *xs, threads: Optional[int] = None, repeat: int = 1) -> List[dict]:
        """Run and measure every node: [{name, op, algorithm, threads, ms, predicted_ms}] in
        execution order (ms: the best of `repeat` runs)."""
        ins = self._inputs(xs)
        outs = self._outputs()
        t = self._threads if threads is None else self._check_threads(threads)
        best = None
        for _ in range(max(1, int(repeat))):
            ms = self._impl.run_profiled(ins, outs, t)
            best = list(ms) if best is None else [min(a, b) for a, b in zip(best, ms)]
        planned = {n.get("name"): n for n in self.header.get("nodes", []) if isinstance(n, dict)}
        rows = []
        for node, m in zip(self.nodes, best):
            p = planned.get(node["name"], {})
            rows.append(dict(node, ms=m, predicted_ms=p.get("predicted_ms")))
        return rows


def load(path: Union[str, os.PathLike, bytes], *, threads: Optional[int] = None) -> Model:
    """Load an ``.acmodel`` file (or its bytes): validated, weights prepared once.

    Raises ValueError naming what is wrong with a malformed, truncated or
    corrupted file; FileNotFoundError when the path does not exist."""
    ext = _require_ext()
    if isinstance(path, (bytes, bytearray, memoryview)):
        return Model(ext.model_load_bytes(bytes(path)), threads)
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such file")
    return Model(ext.model_load(p), threads, path=p)
