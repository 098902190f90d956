"""load_onnx: an ONNX model straight to a runnable Model, in memory.

A tool above both stages, as the CLI is: the graph build stage (import,
passes, plan, .acmodel writer) plans the network for this build's
HostProfile, and the .acmodel bytes go to the C++ executor's in-memory
loader (runtime/model.py), so nothing touches the disk. `onnx` is needed here (to import), never by `load`.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional


def compile_bytes(model: Any, *, input_shape=None, threads: Optional[int] = None,
                  constants: Optional[Mapping[str, Any]] = None, tolerance: Optional[float] = None,
                  name: Optional[str] = None, layouts: str = "auto") -> bytes:
    """The planned .acmodel of an ONNX model (path, bytes or ModelProto) for this build."""
    from .graph import acmodel
    from .graph.pipeline import compile_onnx
    from .runtime.info import host
    p = compile_onnx(model, host(), input_shape=input_shape, threads=threads, tolerance=tolerance,
                     name=name or "model", constants=constants, layouts=layouts)
    return acmodel.to_bytes(p.graph)


def load_bytes(data: bytes, *, threads: Optional[int] = None):
    """A Model from .acmodel bytes (the executor's in-memory loader)."""
    from .runtime.model import load
    return load(data, threads=threads)


def is_sequence_model(model: Any) -> bool:
    """An int64 input of rank >= 2 whose axis 1 is open: token ids (a transformer encoder)."""
    from onnx import TensorProto

    from .graph.onnx_import import load_model
    m = load_model(model)
    inits = {i.name for i in m.graph.initializer}
    for vi in m.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if (vi.name not in inits and vi.type.tensor_type.elem_type == TensorProto.INT64 and len(dims) >= 2
                and not (dims[1].HasField("dim_value") and dims[1].dim_value > 0)):
            return True
    return False


def sequence_shapes(model: Any, sequence: int, batch: int = 1) -> Optional[dict]:
    """A transformer's input shapes at one sequence length ({name: [batch,
    sequence]} for its inputs), or None for a model without open token-id inputs."""
    if not is_sequence_model(model):
        return None
    from .graph.onnx_import import load_model
    m = load_model(model)
    inits = {i.name for i in m.graph.initializer}
    return {vi.name: [batch, sequence] for vi in m.graph.input if vi.name not in inits}


def load_onnx(model: Any, *, input_shape=None, threads: Optional[int] = None,
              constants: Optional[Mapping[str, Any]] = None, tolerance: Optional[float] = None,
              layouts: str = "auto", max_sequence: Optional[int] = None):
    """Import, plan and load an ONNX model (a path, its bytes or a
    ModelProto) in memory; returns a Model (`model(x)`, `model.run(names,
    feeds)`). input_shape: the first input's shape, or {name: shape}, where
    the model leaves it open. threads caps the threads of every node.
    constants: graph inputs bound to values at import (a shape fed as an
    input, Clip bounds). tolerance: the largest relative error a conv
    algorithm may carry (refuses Winograd F(4x4) above its bound). layouts:
    "auto" (the planner's NCHW[B]c choice), "nchw" or "blocked".

    A transformer encoder (token ids: an int64 input with an open sequence
    axis) given no input_shape loads as a SequenceModel: planned per
    sequence-length bucket up to max_sequence (default 512) on first use,
    callable with any length (sequence_model.py)."""
    name = None
    if isinstance(model, (str, os.PathLike)):
        name = os.path.splitext(os.path.basename(os.fspath(model)))[0]
    if input_shape is None and constants is None and is_sequence_model(model):
        from .sequence_model import SequenceModel
        return SequenceModel(model, max_sequence=max_sequence, threads=threads, tolerance=tolerance, name=name)
    data = compile_bytes(model, input_shape=input_shape, threads=threads, constants=constants,
                         tolerance=tolerance, name=name, layouts=layouts)
    return load_bytes(data, threads=threads)
