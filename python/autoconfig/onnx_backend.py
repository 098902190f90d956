"""ONNX backend (onnx.backend.base.Backend) over autoconfig.load_onnx, so
onnx.backend.test.BackendTest can run ONNX's node tests through the importer,
the planner and the C++ executor.

A model is compiled at its first run, when the inputs' shapes and values are
known: inputs that are not float32 (shapes, axes) and inputs the importer
needs as constants (it says which: "... must be a constant") are bound at
import, as onnxruntime folds them; the rest are fed. A rep keeps one
compiled Model per (shapes, bound values). The executor's outputs are
float32 (booleans as 0 / 1, integers exact: graph/FORMAT.md, "Element
types"); the rep returns each in the type the graph declares.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

import numpy as np
from onnx.backend.base import Backend, BackendRep

MUST_BE_CONSTANT = re.compile(r"tensor '([^']+)'\) must be a constant")
# The node tests compare each element (rtol 1e-3, atol 1e-7), so a result
# near zero leaves no room for Winograd F(4x4)'s error (bound 1.7e-5 of the
# largest output): by default the backend plans within 1e-6 (F(2x2) stays).
TOLERANCE = 1e-6


class AutoconfigRep(BackendRep):
    def __init__(self, model, threads=None, tolerance=None):
        self.model = model
        self.threads = threads
        self.tolerance = tolerance
        inits = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in inits]
        from onnx import helper
        self.output_dtypes = [helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type)
                              if o.type.tensor_type.elem_type else np.dtype(np.float32) for o in model.graph.output]
        self._compiled: Dict[Tuple, Tuple[Any, List[str]]] = {}

    def _compile(self, values: Dict[str, np.ndarray]):
        from .graph.onnx_import import ImportError_
        from .model_onnx import load_onnx
        bound = {n: v for n, v in values.items() if v.dtype != np.float32}
        while True:
            feeds = [n for n in values if n not in bound]
            key = (tuple((n, values[n].shape) for n in feeds),
                   tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in sorted(bound.items())))
            if key in self._compiled:
                return self._compiled[key]
            try:
                m = load_onnx(self.model, input_shape={n: list(values[n].shape) for n in feeds}, threads=self.threads,
                              constants=bound, tolerance=self.tolerance)
            except ImportError_ as e:
                hit = MUST_BE_CONSTANT.search(str(e))
                if hit and hit.group(1) in values and hit.group(1) not in bound:
                    bound[hit.group(1)] = values[hit.group(1)]
                    continue
                raise
            self._compiled[key] = (m, feeds)
            return m, feeds

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            values = {n: np.asarray(v) for n, v in inputs.items()}
        else:
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            values = {n: np.asarray(v) for n, v in zip(self.input_names, inputs)}
        m, feeds = self._compile(values)
        # np.require keeps 0-d inputs 0-d (ascontiguousarray would make them 1-d)
        outs = m.run(None, {n: np.require(values[n], np.float32, "C") for n in feeds})
        return [_as_declared(np.asarray(o), t) for o, t in zip(outs, self.output_dtypes)]


def _as_declared(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A float32 output in the graph's declared type: bool from 0 / 1, integers rounded."""
    if dtype == np.bool_:
        return y != 0
    if np.issubdtype(dtype, np.integer):
        return np.rint(y).astype(dtype)
    return y.astype(dtype, copy=False)


class AutoconfigBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs):
        super().prepare(model, device, **kwargs)
        return AutoconfigRep(model, threads=kwargs.get("threads"), tolerance=kwargs.get("tolerance", TOLERANCE))

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = AutoconfigBackend.prepare
run_model = AutoconfigBackend.run_model
supports_device = AutoconfigBackend.supports_device
