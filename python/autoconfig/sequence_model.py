"""SequenceModel: a transformer encoder that takes any sequence length up to a
maximum, planned per sequence-length bucket.

A planned model (.acmodel) has fixed shapes. An encoder's sequence length
varies per call, so the model is planned per bucket, the powers of two up to
`max_sequence` (and `max_sequence` itself), each bucket the first time a call
needs it (planning BERT-base takes seconds; later calls reuse the plan), and
for each batch size seen.

A call of length L runs the smallest bucket B >= L: every sequence input is
padded from L to B with zeros (token id 0, attention mask 0, token type 0)
and every output's sequence axis is sliced back to L. For an encoder whose
attention takes the mask this is exact: a masked key gets the additive mask
(-10000 or the float minimum), its softmax weight is 0 to float precision
(exp underflows), so it adds nothing to any real token's context; positions
0..L-1 keep their position embeddings; every other op works per token. The
padded rows' own outputs are cut off. A model with no mask input is planned
at each exact length instead (padding would change its results).

Which axes are the sequence: the axis of the first int64 input whose ONNX
dimension is symbolic and not the batch (axis 0), named by its dim_param;
every input and output dimension with that dim_param is padded / sliced. An
output declared without names has its sequence axes found as the axes whose
planned size is the bucket where the input's is (declared unknown).

C++ engines do the same with one .acmodel per bucket (`autoconfig
import-onnx model.onnx -o DIR --sequence-buckets 512`): pad the inputs
with zeros to the bucket's length, run, and read the first L positions of
each sequence axis (FORMAT.md, "Sequence length").
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_MAX_SEQUENCE = 512      # BERT's max_position_embeddings


def buckets(max_sequence: int) -> List[int]:
    """1, 2, 4, ... below max_sequence, then max_sequence."""
    out, b = [], 1
    while b < max_sequence:
        out.append(b)
        b *= 2
    return out + [max_sequence]


def bucket_for(length: int, max_sequence: int) -> int:
    for b in buckets(max_sequence):
        if b >= length:
            return b
    raise ValueError(f"sequence length {length} exceeds the maximum {max_sequence}")


def _dims(vi) -> List[Any]:
    """Declared dims: int, a dim_param name, or None."""
    out = []
    for d in vi.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


class SequenceModel:
    """Call as model(input_ids, attention_mask[, token_type_ids]) (the ONNX
    inputs in order, batch x length, any integer dtype) or model.run(names,
    feeds); outputs are float32 arrays with the call's length."""

    def __init__(self, model: Any, *, max_sequence: Optional[int] = None, threads: Optional[int] = None,
                 tolerance: Optional[float] = None, name: Optional[str] = None):
        from .graph.onnx_import import load_model
        self._proto = load_model(model)
        self._threads = threads
        self._tolerance = tolerance
        self.name = name or self._proto.graph.name or "model"
        g = self._proto.graph
        inits = {i.name for i in g.initializer}
        self._inputs = [vi for vi in g.input if vi.name not in inits]
        self.input_names = [vi.name for vi in self._inputs]
        self.output_names = [vo.name for vo in g.output]
        self._seq_param, self._in_axes = self._sequence_axes()
        self._out_declared = {vo.name: _dims(vo) for vo in g.output}
        fixed = [d for vi in self._inputs if vi.name in self._in_axes
                 for d in [_dims(vi)[self._in_axes[vi.name]]] if isinstance(d, int) and d > 0]
        self.max_sequence = int(max_sequence or (fixed[0] if fixed else DEFAULT_MAX_SEQUENCE))
        if self.max_sequence < 1:
            raise ValueError(f"max_sequence must be >= 1, got {max_sequence}")
        self.masked = any("mask" in n.lower() for n in self._in_axes)
        self._plans: Dict[Tuple[int, int], Any] = {}

    def _sequence_axes(self) -> Tuple[Optional[str], Dict[str, int]]:
        from onnx import TensorProto
        for vi in self._inputs:
            dims = _dims(vi)
            if vi.type.tensor_type.elem_type == TensorProto.INT64 and len(dims) >= 2 \
                    and not (isinstance(dims[1], int) and dims[1] > 0):
                param = dims[1] if isinstance(dims[1], str) else None
                axes = {}
                for other in self._inputs:
                    od = _dims(other)
                    if param is not None and param in od:
                        axes[other.name] = od.index(param)
                    elif param is None and other.type.tensor_type.elem_type == TensorProto.INT64 and len(od) >= 2:
                        axes[other.name] = 1
                return param, axes
        raise ValueError("not a sequence model: no int64 input of rank >= 2 with an open sequence axis (axis 1)")

    # ---- planning
    def planned(self) -> List[Tuple[int, int]]:
        """(batch, bucket) pairs planned so far."""
        return sorted(self._plans)

    def memory(self) -> Dict[str, int]:
        """Model.memory() summed over the buckets loaded so far (each bucket
        holds its own prepared weights). The ONNX model kept to plan new
        buckets is not included."""
        total: Dict[str, int] = {}
        for m in self._plans.values():
            for k, v in m.memory().items():
                total[k] = total.get(k, 0) + v
        return total

    def plan_for(self, batch: int, length: int):
        """The loaded Model for this batch and bucket (planned now if new)."""
        from .graph import acmodel
        from .graph.pipeline import compile_onnx
        from .runtime.info import host
        from .runtime.model import load
        key = (batch, length)
        if key not in self._plans:
            shapes = {}
            for vi in self._inputs:
                dims = _dims(vi)
                shape = []
                for a, d in enumerate(dims):
                    if self._in_axes.get(vi.name) == a:
                        shape.append(length)
                    elif isinstance(d, int) and d > 0:
                        shape.append(d)
                    elif a == 0:
                        shape.append(batch)
                    else:
                        raise ValueError(f"input {vi.name!r}: dimension {a} ({d!r}) is open and not the batch "
                                         f"or the sequence")
                shapes[vi.name] = shape
            p = compile_onnx(self._proto, host(), input_shape=shapes, threads=self._threads,
                             tolerance=self._tolerance, name=f"{self.name}.s{length}")
            self._plans[key] = load(acmodel.to_bytes(p.graph), threads=self._threads)
        return self._plans[key]

    def _out_axes(self, name: str, shape: Sequence[int], bucket: int) -> List[int]:
        dims = self._out_declared.get(name, [])
        if self._seq_param is not None and self._seq_param in dims:
            return [a for a, d in enumerate(dims) if d == self._seq_param]
        return [a for a, s in enumerate(shape) if a > 0 and s == bucket
                and not (a < len(dims) and isinstance(dims[a], int) and dims[a] > 0)]

    # ---- running
    def __call__(self, *xs, threads: Optional[int] = None):
        if len(xs) != len(self.input_names):
            raise TypeError(f"the model takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), "
                            f"got {len(xs)}")
        outs = self._run(dict(zip(self.input_names, xs)), threads)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, Any],
            threads: Optional[int] = None) -> List[np.ndarray]:
        """onnxruntime's InferenceSession.run."""
        missing = [n for n in self.input_names if n not in input_feed]
        unknown = [n for n in input_feed if n not in self.input_names]
        if missing or unknown:
            raise ValueError(f"inputs: missing {missing}, unknown {unknown}; the model's are {self.input_names}")
        outs = dict(zip(self.output_names, self._run(input_feed, threads)))
        wanted = self.output_names if output_names is None else list(output_names)
        for n in wanted:
            if n not in outs:
                raise ValueError(f"unknown output '{n}'; the model's outputs are {self.output_names}")
        return [outs[n] for n in wanted]

    def _run(self, feed: Dict[str, Any], threads: Optional[int]) -> List[np.ndarray]:
        arrays = {n: np.asarray(v) for n, v in feed.items()}
        lengths = set()
        for n, ax in self._in_axes.items():
            a = arrays[n]
            if a.ndim <= ax:
                raise ValueError(f"input '{n}': shape {a.shape} has no sequence axis {ax}")
            lengths.add(a.shape[ax])
        batches = {arrays[n].shape[0] for n in self.input_names if arrays[n].ndim}
        if len(lengths) != 1 or len(batches) != 1:
            raise ValueError(f"inputs disagree on the batch {sorted(batches)} or the sequence length {sorted(lengths)}: "
                             + ", ".join(f"{n} {arrays[n].shape}" for n in self.input_names))
        (length,), (batch,) = lengths, batches
        if not 1 <= length <= self.max_sequence:
            raise ValueError(f"sequence length {length} is outside 1..{self.max_sequence} (max_sequence)")
        bucket = bucket_for(length, self.max_sequence) if self.masked else length
        m = self.plan_for(batch, bucket)
        padded = []
        for n, dtype in zip(self.input_names, m.input_dtypes):
            a = arrays[n]
            if a.dtype.kind not in "iub" and dtype == "int64":
                raise TypeError(f"input '{n}': dtype {a.dtype}, expected integers")
            a = a.astype(np.dtype(dtype), copy=False)
            ax = self._in_axes.get(n)
            if ax is not None and bucket != length:
                pad = [(0, 0)] * a.ndim
                pad[ax] = (0, bucket - length)
                a = np.pad(a, pad)          # zeros: token 0, mask 0 (masked), type 0
            padded.append(a)
        outs = m(*padded, threads=threads)
        outs = list(outs) if isinstance(outs, tuple) else [outs]
        result = []
        for name, y in zip(self.output_names, outs):
            if bucket != length:
                idx = [slice(None)] * y.ndim
                for ax in self._out_axes(name, y.shape, bucket):
                    idx[ax] = slice(0, length)
                y = np.ascontiguousarray(y[tuple(idx)])
            result.append(y)
        return result

    def __repr__(self) -> str:
        return (f"<autoconfig.SequenceModel {self.name!r}: {', '.join(self.input_names)} -> "
                f"{', '.join(self.output_names)}, sequence up to {self.max_sequence}, planned {self.planned()}>")
