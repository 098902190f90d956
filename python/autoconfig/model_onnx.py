"""load_onnx: an ONNX model straight to a runnable Model, in memory.

The one runtime module that reaches into the build stage (graph/: import,
passes, plan, .acmodel writer), as `explain` does for the kernel models: it
plans the network for this build's HostProfile, serializes the .acmodel
bytes and hands them to the C++ executor's in-memory loader, so nothing
touches the disk. `onnx` is needed here (to import), never by `load`.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Mapping, Optional

# The executor's loader (cpp_runtime autoconfig::Model through the extension)
# for a file in memory, by the names the wrapper may give it, most specific first.
_BYTES_LOADERS = ("load_bytes", "loads", "load_from_bytes")


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
    """A Model from .acmodel bytes: the runtime's in-memory loader, or (an
    older extension without one) a private temporary file."""
    import importlib
    autoconfig = importlib.import_module(__package__)   # its public load(), wherever the executor defines it
    kw = {} if threads is None else {"threads": threads}
    for attr in _BYTES_LOADERS:
        fn = getattr(autoconfig, attr, None) or getattr(autoconfig._ext, attr, None)
        if fn is not None:
            return _call(fn, data, kw)
    load = getattr(autoconfig, "load", None)
    if load is None:
        raise RuntimeError("this autoconfig build has no model executor (autoconfig.load)")
    try:
        return _call(load, data, kw)            # a load() that takes bytes too
    except TypeError:
        pass
    fd, path = tempfile.mkstemp(suffix=".acmodel")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return _call(load, path, kw)
    finally:
        os.unlink(path)


def _call(fn, arg, kw):
    try:
        return fn(arg, **kw)
    except TypeError:
        if not kw:
            raise
        return fn(arg)          # a loader without threads=: the plan's per-node counts already cap them


def load_onnx(model: Any, *, input_shape=None, threads: Optional[int] = None,
              constants: Optional[Mapping[str, Any]] = None, tolerance: Optional[float] = None,
              layouts: str = "auto"):
    """Import, plan and load an ONNX model (a path, its bytes or a
    ModelProto) in memory; returns a Model (`model(x)`, `model.run(names,
    feeds)`). input_shape: the first input's shape, or {name: shape}, where
    the model leaves it open. threads caps the threads of every node.
    constants: graph inputs bound to values at import (a shape fed as an
    input, Clip bounds). tolerance: the largest relative error a conv
    algorithm may carry (refuses Winograd F(4x4) above its bound). layouts:
    "auto" (the planner's NCHW[B]c choice), "nchw" or "blocked"."""
    name = None
    if isinstance(model, (str, os.PathLike)):
        name = os.path.splitext(os.path.basename(os.fspath(model)))[0]
    data = compile_bytes(model, input_shape=input_shape, threads=threads, constants=constants,
                         tolerance=tolerance, name=name, layouts=layouts)
    return load_bytes(data, threads=threads)
