"""ONNX model -> Graph (IR) in the executor vocabulary (FORMAT.md).

The only module of autoconfig that imports `onnx` (the optional extra
`autoconfig[onnx]`). Each ONNX node goes through its converter
(converters.CONVERTERS, versioned by the model's opset, 9 to 21), which
either folds it into a constant (shape arithmetic, ConstantOfShape, weights
built at run time in old models), drops it (Dropout, Identity), or emits
executor nodes whose output shapes come from shapes.py. Anything outside the
supported set raises ImportError_ naming the node, its op type and what is
supported; attributes a converter did not read are refused the same way.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import shapes as shape_rules
from .ir import Graph, Node, Tensor

# Opsets 22-25 changed none of the supported ops beyond widening their types
# (onnx.defs schemas of onnx 1.23: same attributes, inputs and outputs; Cast 24
# adds round_mode, refused like any attribute a converter does not read), and
# ONNX's own node tests are stamped with them.
MIN_OPSET, MAX_OPSET = 9, 25


class ImportError_(ValueError):
    """The model cannot be imported (unsupported op or attribute, bad file, bad shape)."""


InputShapes = Union[None, Sequence[int], Mapping[str, Sequence[int]]]


def _onnx():
    try:
        import onnx
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise ImportError_("importing ONNX models needs the onnx package: pip install 'autoconfig[onnx]'") from e
    return onnx


def load_model(path_or_model: Any):
    """An onnx.ModelProto from a path, bytes or a ModelProto; a clear error for a bad file."""
    onnx = _onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    try:
        if isinstance(path_or_model, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(path_or_model))
            where = "the given bytes"
        else:
            where = os.fspath(path_or_model)
            if not os.path.isfile(where):
                raise ImportError_(f"{where}: no such file")
            model = onnx.load(where)
    except ImportError_:
        raise
    except Exception as e:  # protobuf DecodeError and friends
        raise ImportError_(f"{where}: not a valid ONNX model ({type(e).__name__}: {e})") from e
    if not model.HasField("graph") or not model.graph.node:
        raise ImportError_(f"{where}: not a valid ONNX model (no graph or no nodes)")
    return model


class Ctx:
    """What a converter sees of one ONNX node: its inputs (constant values or
    IR tensors), its attributes, and ways to emit IR nodes or folded constants."""

    def __init__(self, imp: "Importer", node, opset: int):
        self.imp = imp
        self.onnx_node = node
        self.opset = opset
        self.name = imp.unique_node_name(node.name or (node.output[0] if node.output else node.op_type))
        self.op_type = node.op_type
        self.inputs: List[str] = list(node.input)
        self.outputs: List[str] = list(node.output)
        self._attrs = {a.name: a for a in node.attribute}
        self._read: set = set()
        self._emitted = 0

    # ---- errors
    def fail(self, what: str) -> ImportError_:
        return ImportError_(f"node {self.name!r} ({self.op_type}, opset {self.opset}): {what}")

    # ---- attributes
    def attr(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        a = self._attrs.get(name)
        if a is None:
            return default
        onnx = _onnx()
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        return v

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def unread_attrs(self) -> List[str]:
        return sorted(set(self._attrs) - self._read)

    # ---- inputs
    def n_inputs(self) -> int:
        return len(self.inputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self.imp.resolve(self.inputs[i]) in self.imp.values

    def all_const(self) -> bool:
        return all(self.is_const(i) for i in range(len(self.inputs)) if self.has_input(i))

    def const(self, i: int, what: str = "") -> np.ndarray:
        if not self.has_input(i):
            raise self.fail(f"input {i}{' (' + what + ')' if what else ''} is missing")
        name = self.imp.resolve(self.inputs[i])
        if name not in self.imp.values:
            raise self.fail(f"input {i} ({what + ', ' if what else ''}tensor {self.inputs[i]!r}) must be a constant "
                            f"(an initializer, a bound input or foldable at import); it is computed at run time")
        return self.imp.values[name]

    def shape(self, i: int) -> Tuple[int, ...]:
        name = self.imp.resolve(self.inputs[i])
        if name in self.imp.values:
            return tuple(int(d) for d in self.imp.values[name].shape)
        return self.imp.g.tensors[name].shape

    def kind(self, i: int) -> str:
        """What input i holds: 'f' (float), 'i' (integers) or 'b' (booleans). The
        executor stores all three as float32 (FORMAT.md, "Element types"); the
        importer tracks them for Cast, integer Div and the logical ops."""
        name = self.imp.resolve(self.inputs[i])
        if name in self.imp.values:
            k = self.imp.values[name].dtype.kind
            return "b" if k == "b" else "i" if k in "iu" else "f"
        return self.imp.kinds.get(name, "f")

    def is_int64_input(self, i: int) -> bool:
        """Input i is an int64 graph input itself (only gather and cast read those)."""
        name = self.imp.resolve(self.inputs[i])
        t = self.imp.g.tensors.get(name)
        return t is not None and t.dtype == "int64"

    def input(self, i: int, raw: bool = False) -> str:
        """The IR tensor of input i ("" when absent); constants become graph
        constants. An int64 graph input is read through one cast to float32
        (emitted once) unless raw (gather's indices, cast: they read int64)."""
        if not self.has_input(i):
            return ""
        name = self.imp.materialize(self.inputs[i], self)
        if raw or not self.is_int64_input(i):
            return name
        if name not in self.imp.float_copies:
            out = self.imp.g.fresh_name(f"{name}.float")
            self.imp.g.add_tensor(Tensor(out, self.imp.g.tensors[name].shape))
            self.imp.kinds[out] = "i"
            self.imp.g.nodes.append(Node(self.imp.unique_node_name(f"{name}.cast"), "cast", [name], [out],
                                         {"to": "int"}, fused=[]))
            self.imp.float_copies[name] = out
        return self.imp.float_copies[name]

    # ---- outputs
    def output_used(self, i: int) -> bool:
        return i < len(self.outputs) and self.outputs[i] != "" and self.imp.is_used(self.outputs[i])

    def set_value(self, i: int, value: Any) -> None:
        """Output i is a constant known at import (folded)."""
        self.imp.values[self.outputs[i]] = np.asarray(value)

    def alias(self, i: int, source_input: int = 0) -> None:
        """Output i is input `source_input` unchanged (Identity, Dropout at inference)."""
        src = self.imp.resolve(self.inputs[source_input])
        self.imp.aliases[self.outputs[i]] = src

    def emit(self, op: str, inputs: Sequence[str], attrs: Optional[Dict[str, Any]] = None,
             out_shapes: Optional[Sequence[Sequence[int]]] = None,
             outputs: Optional[Sequence[str]] = None, kind: str = "f") -> List[str]:
        """Append an executor node. outputs default to the ONNX node's; shapes
        come from shapes.py unless given (split, reshape); kind: what the outputs
        hold ('f', 'i', 'b': see kind()). Returns the output names."""
        attrs = dict(attrs or {})
        g = self.imp.g
        if outputs is None:
            outputs = [o for o in self.outputs if o][:1] if out_shapes is None else [o for o in self.outputs if o]
        if out_shapes is None:
            in_shapes = [g.tensors[i].shape if i else None for i in inputs]
            try:
                out_shapes = shape_rules.infer(op, in_shapes, attrs)
            except shape_rules.ShapeError as e:
                raise self.fail(str(e)) from e
        outputs = list(outputs)
        for o, s in zip(outputs, out_shapes):
            if o in g.tensors:
                raise self.fail(f"output {o!r} is already defined (ONNX requires each tensor to be written once)")
            g.add_tensor(Tensor(o, tuple(int(d) for d in s)))
            if kind != "f":
                self.imp.kinds[o] = kind
        # the first node takes the ONNX node's name; more (a Sum chain) get numbered ones
        node_name = self.name if not self._emitted else self.imp.unique_node_name(f"{self.name}.{self._emitted}")
        self._emitted += 1
        g.nodes.append(Node(node_name, op, list(inputs), outputs, attrs, fused=[]))
        return outputs

    def temp(self, base: str) -> str:
        return self.imp.g.fresh_name(f"{self.outputs[0]}.{base}")


class Importer:
    def __init__(self, model, input_shapes: InputShapes = None, name: Optional[str] = None,
                 constants: Optional[Mapping[str, Any]] = None):
        self.model = model
        self.opset = self._opset(model)
        g = model.graph
        self.g = Graph(name or g.name or "model")
        self.values: Dict[str, np.ndarray] = {}     # ONNX name -> constant value (any dtype)
        self.aliases: Dict[str, str] = {}          # ONNX name -> the name it stands for
        self._materialized: Dict[str, str] = {}
        self.kinds: Dict[str, str] = {}            # activation -> 'i' / 'b' when not float (Ctx.kind)
        self.float_copies: Dict[str, str] = {}     # int64 input -> its float32 copy (Ctx.input)
        onnx = _onnx()
        for init in g.initializer:
            try:
                self.values[init.name] = onnx.numpy_helper.to_array(init)
            except Exception as e:
                raise ImportError_(f"initializer {init.name!r}: cannot read its data ({e})") from e
        names = {i.name for i in g.input}
        for cname, value in (constants or {}).items():
            if cname not in names:
                raise ImportError_(f"constant given for {cname!r}, which is not a graph input")
            self.values[cname] = np.asarray(value)
        self._node_names: set = set()
        self.g.reserved.update(self.values)
        self.g.reserved.update(i.name for i in g.input)
        self.g.reserved.update(o for n in g.node for o in n.output)
        self._uses: Dict[str, int] = {}
        for n in g.node:
            for i in n.input:
                self._uses[i] = self._uses.get(i, 0) + 1
        for o in g.output:
            self._uses[o.name] = self._uses.get(o.name, 0) + 1
        self._set_inputs(input_shapes)

    @staticmethod
    def _opset(model) -> int:
        opset = None
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                opset = o.version
        if opset is None:
            raise ImportError_("the model imports no default-domain opset")
        if not MIN_OPSET <= opset <= MAX_OPSET:
            raise ImportError_(f"opset {opset} is outside the supported {MIN_OPSET}..{MAX_OPSET}")
        return opset

    def _set_inputs(self, input_shapes: InputShapes) -> None:
        onnx = _onnx()
        real = [i for i in self.model.graph.input if i.name not in self.values]   # older models list initializers
        if not real:
            raise ImportError_("the model has no (non-initializer) input")
        if input_shapes is not None and not isinstance(input_shapes, Mapping):
            input_shapes = {real[0].name: input_shapes}
        input_shapes = dict(input_shapes or {})
        unknown = set(input_shapes) - {i.name for i in real}
        if unknown:
            raise ImportError_(f"input shape given for {sorted(unknown)}; the model's inputs are "
                               f"{[i.name for i in real]}")
        for vi in real:
            tt = vi.type.tensor_type
            if tt.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, 0):
                raise ImportError_(f"input {vi.name!r} has element type "
                                   f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; only float32 and int64 "
                                   f"inputs are supported")
            declared = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if vi.name in input_shapes:
                shape = tuple(int(d) for d in input_shapes[vi.name])
                if declared and (len(declared) != len(shape) or any(
                        d is not None and d > 0 and d != s for d, s in zip(declared, shape))):
                    raise ImportError_(f"input {vi.name!r}: shape {shape} does not match the model's {declared}")
            else:
                if not declared or any(d is None or d <= 0 for d in declared):
                    raise ImportError_(f"input {vi.name!r} has shape {declared} with unknown dimensions: "
                                       f"give its shape (--input-shape / input_shape=)")
                shape = tuple(declared)
            if min(shape, default=1) < 1:
                raise ImportError_(f"input {vi.name!r}: shape {shape} must be positive")
            int64 = tt.elem_type == onnx.TensorProto.INT64
            self.g.add_tensor(Tensor(vi.name, shape, "input", dtype="int64" if int64 else "float32"))
            if int64:
                self.kinds[vi.name] = "i"
            self.g.inputs.append(vi.name)

    def unique_node_name(self, name: str) -> str:
        out, k = name, 1
        while out in self._node_names:
            out, k = f"{name}#{k}", k + 1
        self._node_names.add(out)
        return out

    # ---- name resolution
    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def is_used(self, name: str) -> bool:
        return self._uses.get(name, 0) > 0

    def materialize(self, onnx_name: str, cx: Ctx) -> str:
        name = self.resolve(onnx_name)
        if name in self.values:
            if name not in self._materialized:
                v = self.values[name]
                if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
                        or v.dtype == np.bool_):
                    raise cx.fail(f"constant {name!r} has type {v.dtype}, not a number")
                tname = self.g.fresh_name(name)
                self.g.constant(tname, v.astype(np.float32))
                self._materialized[name] = tname
            return self._materialized[name]
        if name not in self.g.tensors:
            raise cx.fail(f"input {onnx_name!r} is not produced by any earlier node, initializer or graph input")
        return name

    # ---- the walk
    def run(self) -> Graph:
        from .converters import CONVERTERS, converter_for
        for node in self.model.graph.node:
            cx = Ctx(self, node, self.opset)
            if node.domain not in ("", "ai.onnx"):
                raise cx.fail(f"operator domain {node.domain!r} is not supported (only the default ONNX domain)")
            conv = converter_for(node.op_type, self.opset)
            if conv is None:
                raise cx.fail(f"operator {node.op_type} is not supported; supported: "
                              f"{', '.join(sorted(CONVERTERS))}")
            for i in node.input:
                if i and self.resolve(i) not in self.values and self.resolve(i) not in self.g.tensors:
                    raise cx.fail(f"input {i!r} is not produced by any earlier node, initializer or graph input")
            conv(cx)
            extra = cx.unread_attrs()
            if extra:
                raise cx.fail(f"attribute(s) {', '.join(extra)} not supported for {node.op_type}")
        self._finish_outputs()
        self.g.check()
        return self.g

    def _finish_outputs(self) -> None:
        g = self.g
        producers = g.producers()
        renamed: Dict[str, str] = {}
        for vo in self.model.graph.output:
            if vo.name in g.outputs:
                raise ImportError_(f"graph output {vo.name!r} is listed twice")
            name = self.resolve(vo.name)
            name = renamed.get(name, name)
            if name in self.values:
                src = self.materialize(vo.name, _OutputCtx(vo.name))
                self._copy_output(vo.name, src)
            elif name == vo.name:
                pass
            elif name in producers and name not in g.outputs and name not in g.inputs:
                self._rename(name, vo.name)
                renamed[name] = vo.name
            else:
                self._copy_output(vo.name, name)
            g.tensors[vo.name].kind = "output"
            g.outputs.append(vo.name)

    def _copy_output(self, out: str, src: str) -> None:
        g = self.g
        g.add_tensor(Tensor(out, g.tensors[src].shape))
        g.nodes.append(Node(self.unique_node_name(f"{out}.copy"), "reshape", [src], [out]))

    def _rename(self, old: str, new: str) -> None:
        g = self.g
        t = g.tensors.pop(old)
        t.name = new
        g.tensors[new] = t
        for n in g.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]


class _OutputCtx:
    def __init__(self, name: str):
        self.name = name

    def fail(self, what: str) -> ImportError_:
        return ImportError_(f"graph output {self.name!r}: {what}")


def import_onnx(model: Any, input_shape: InputShapes = None, *, name: Optional[str] = None,
                constants: Optional[Mapping[str, Any]] = None) -> Graph:
    """Read an ONNX model (path, bytes or ModelProto) into a Graph in the
    executor vocabulary: shapes inferred for `input_shape` (a shape for the
    first input or {name: shape}), constants folded, Dropout/Identity dropped.
    `constants` binds graph inputs to values known at import (they fold like
    initializers: a shape fed as an input, BatchNormalization statistics).
    No optimization passes yet (see graph.passes)."""
    m = load_model(model)
    if name is None and isinstance(model, (str, os.PathLike)):
        name = os.path.splitext(os.path.basename(os.fspath(model)))[0]
    return Importer(m, input_shape, name, constants).run()
