"""Operator specs: which kernels to generate, read from YAML (format version 1).

A spec says *what* to build (operator, dtype, fused epilogues, optional
concrete shapes to specialize), never *how*. Example::

    version: 1
    kernels:
      - name: square_gemm          # identifier, unique across all loaded files
        op: matmul                 # matmul | gemm
        dtype: float32             # only float32 for now
        activations: [none, relu]  # optional, default [none]
        bias: true                 # optional, default true
        residual: false            # optional, default false
        threads: [1, 2]            # optional, default [1]
        shapes:                    # optional concrete shapes
          - {M: 64, N: 64, K: 64}
          - {M: 128, N: 768, K: 3072, trans_b: true}   # trans_a/trans_b: op gemm only

A conv2d kernel (``op: conv2d``, shapes ``{C, H, W, K, R, S, stride_h, ...}``)
may also say ``tolerance: 1e-5``: the largest relative error
(max|y - exact| / max|exact|) its results may carry; the model then refuses
the algorithms whose documented error bound exceeds it (Winograd).

Validation is strict: unknown keys, wrong types (a YAML boolean is not an
integer, ``64.0`` and ``"64"`` are not integers either), impossible values,
duplicates and missing keys all raise :class:`SpecError`, which carries the
file, the 1-based line of the offending node, the key path
(``kernels[2].shapes[0].M``) and a reason saying what was found and what is
allowed. Sizes are checked against what the kernels hold (every operand
within 2**48 bytes, a conv's lowered GEMM within the GEMM limits) and nesting
against a spec's depth (PyYAML would otherwise recurse out of stack). Loading
either returns every spec or raises: nothing half-done.

Per-operator shape keys live in one table, ``_OPS``: supporting a new
operator means adding a shape dataclass (in shapes.py, shared with the
models), one ``_OpSchema`` entry (its shape fields) and one cross-field
validator. The activation names come from vocabulary.py.

This module needs PyYAML only (no numpy): the generator runs from CMake.
Command line: ``python -m autoconfig.spec [--json] [FILE_OR_DIR...]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .shapes import Conv2dShape, GemmShape
from .vocabulary import ACTIVATIONS, CONV_ACTIVATIONS

__all__ = [
    "SPEC_VERSION", "DTYPES", "ACTIVATIONS", "OPS", "SpecError", "GemmShape", "OpSpec",
    "load_file", "load_dirs", "load", "default_spec_dir", "load_default", "main",
]

SPEC_VERSION = 1
INT32_MAX = 2**31 - 1          # largest M/N/K (and thread count) a spec may ask for
# Largest operand (or scratch matrix) a spec may describe, in bytes: a
# process's address space on x86-64 (2**47 with 4-level paging), AArch64 and
# RISC-V Sv48 is at most 2**48, so a larger operand can never be allocated.
# Far below 2**63 (ptrdiff_t), it also keeps the runtime's derived sizes
# (layouts padded to the vector width, packed panels) in int64.
MAX_OPERAND_BYTES = 2**48
DTYPES: Dict[str, int] = {"float32": 4}   # dtype -> bytes per element

PathLike = Union[str, "os.PathLike[str]"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TAG = "tag:yaml.org,2002:"
_T_INT, _T_BOOL, _T_FLOAT = _TAG + "int", _TAG + "bool", _TAG + "float"
_T_STR, _T_NULL, _T_MERGE = _TAG + "str", _TAG + "null", _TAG + "merge"
_SCALARS = yaml.constructor.SafeConstructor()   # only its stateless scalar constructors are used
_DOC = "<document>"
_REQUIRED = object()


# --------------------------------------------------------------------------- errors

class SpecError(Exception):
    """A spec file is unreadable or invalid.

    ``str(err)`` is ``"{file}:{line}: {key_path}: {reason}"``; ``line`` is
    1-based (0 when the problem is the path itself, e.g. a missing file).
    """

    def __init__(self, file: str, line: int, key_path: str, reason: str):
        super().__init__(str(file), int(line), key_path, reason)
        self.file = str(file)
        self.line = int(line)
        self.key_path = key_path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key_path}: {self.reason}"


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Ctx:
    """Where we are: the file being parsed (for error messages)."""

    def __init__(self, file: str):
        self.file = file

    def error(self, where: Union[Node, int], key_path: str, reason: str) -> SpecError:
        line = where if isinstance(where, int) else _line(where)
        return SpecError(self.file, line, key_path or _DOC, reason)


def _join(path: str, key: str) -> str:
    if not _IDENTIFIER.match(key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(node: Node) -> str:
    """What a node is, for 'got ...' in error reasons."""
    if isinstance(node, MappingNode):
        return "a mapping" if node.value else "an empty mapping"
    if isinstance(node, SequenceNode):
        return "a list" if node.value else "an empty list"
    tag, text = node.tag, node.value
    if tag == _T_INT:
        return str(_SCALARS.construct_yaml_int(node))
    if tag == _T_BOOL:
        return f"boolean {text}"
    if tag == _T_FLOAT:
        return f"float {text}"
    if tag == _T_NULL:
        return "null" if text else "an empty value (null)"
    if tag == _T_STR:
        return f"string {_short(text)!r}"
    return f"a value tagged {tag!r}"


def _int_of(node: Node) -> Optional[int]:
    """The integer a node holds, or None if it is not a YAML integer (bools are not)."""
    if isinstance(node, ScalarNode) and node.tag == _T_INT:
        return _SCALARS.construct_yaml_int(node)
    return None


def _str_of(node: Node) -> Optional[str]:
    if isinstance(node, ScalarNode) and node.tag == _T_STR:
        return node.value
    return None


def _suggest(key: str, allowed: Sequence[str]) -> Optional[str]:
    for a in allowed:
        if a.lower() == key.lower():
            return a
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    return close[0] if close else None


# --------------------------------------------------------------------------- fields

# A field parser gets (value node, key path, ctx, values parsed so far in this
# mapping) and returns the Python value or raises via ctx.error.
Parser = Callable[[Node, str, _Ctx, Dict[str, Any]], Any]


@dataclass(frozen=True)
class _Field:
    name: str
    parse: Parser
    default: Any = _REQUIRED      # _REQUIRED, or an immutable default value


def _parse_mapping(node: Node, path: str, ctx: _Ctx, fields: Sequence[_Field],
                   hint: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, Any]:
    """Check a mapping's keys against `fields` and parse the values in field order."""
    if not isinstance(node, MappingNode):
        raise ctx.error(node, path, f"expected a mapping, got {_describe(node)}")
    by_name = {f.name: f for f in fields}
    allowed = sorted(by_name)
    seen: Dict[str, Tuple[Node, Node]] = {}
    for knode, vnode in node.value:
        if isinstance(knode, ScalarNode) and knode.tag == _T_MERGE:
            raise ctx.error(knode, path, "YAML merge keys ('<<') are not supported; write the keys out")
        key = _str_of(knode)
        if key is None:
            raise ctx.error(knode, path, f"expected a string key, got {_describe(knode)}; "
                                         f"allowed: {', '.join(allowed)}")
        kpath = _join(path, key)
        if key in seen:
            raise ctx.error(knode, kpath, f"duplicate key {key!r} (first at line {_line(seen[key][0])})")
        if key not in by_name:
            reason = f"unknown key {key!r}; allowed: {', '.join(allowed)}"
            extra = hint(key) if hint else None
            if extra is None:
                guess = _suggest(key, allowed)
                extra = f"did you mean {guess!r}?" if guess else None
            raise ctx.error(knode, kpath, reason + (f"; {extra}" if extra else ""))
        seen[key] = (knode, vnode)
    for f in fields:
        if f.default is _REQUIRED and f.name not in seen:
            raise ctx.error(node, _join(path, f.name), f"missing required key {f.name!r}")
    values: Dict[str, Any] = {}
    for f in fields:
        if f.name in seen:
            values[f.name] = f.parse(seen[f.name][1], _join(path, f.name), ctx, values)
        else:
            values[f.name] = f.default
    return values


def _parse_list(node: Node, path: str, ctx: _Ctx, what: str, item: Parser,
                values: Dict[str, Any], allow_empty: bool = False,
                dedupe: Optional[Callable[[Any], str]] = None) -> tuple:
    """A YAML list whose items are parsed by `item`; duplicates rejected if `dedupe` names them."""
    if not isinstance(node, SequenceNode):
        raise ctx.error(node, path, f"expected a list of {what}, got {_describe(node)}")
    if not node.value and not allow_empty:
        raise ctx.error(node, path, f"expected a non-empty list of {what}, got an empty list")
    out: List[Any] = []
    first: Dict[Any, int] = {}
    for i, inode in enumerate(node.value):
        ipath = f"{path}[{i}]"
        v = item(inode, ipath, ctx, values)
        if dedupe is not None:
            if v in first:
                leaf = path.rsplit(".", 1)[-1]
                raise ctx.error(inode, ipath, f"duplicate {dedupe(v)} (same as {leaf}[{first[v]}])")
            first[v] = i
        out.append(v)
    return tuple(out)


def _positive_int(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> int:
    v = _int_of(node)
    if v is None:
        raise ctx.error(node, path, f"expected a positive integer, got {_describe(node)}")
    if v <= 0:
        raise ctx.error(node, path, f"expected a positive integer, got {v}")
    if v > INT32_MAX:
        raise ctx.error(node, path, f"expected a positive integer <= {INT32_MAX} (2**31-1), got {v}")
    return v


def _nonnegative_int(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> int:
    v = _int_of(node)
    if v is None or v < 0:
        raise ctx.error(node, path, f"expected an integer >= 0, got {v if v is not None else _describe(node)}")
    if v > INT32_MAX:
        raise ctx.error(node, path, f"expected an integer <= {INT32_MAX} (2**31-1), got {v}")
    return v


def _boolean(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> bool:
    if isinstance(node, ScalarNode) and node.tag == _T_BOOL:
        return bool(_SCALARS.construct_yaml_bool(node))
    raise ctx.error(node, path, f"expected a boolean (true or false), got {_describe(node)}")


def _choice(what: str, allowed: Sequence[str]) -> Parser:
    def parse(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> str:
        v = _str_of(node)
        if v is None:
            raise ctx.error(node, path, f"expected {what} name ({', '.join(allowed)}), got {_describe(node)}")
        if v not in allowed:
            raise ctx.error(node, path, f"unknown {what} {v!r}; allowed: {', '.join(allowed)}")
        return v
    return parse


# --------------------------------------------------------------------------- shapes

def _describe_shape(shape: Any) -> str:
    parts = []
    for f in dataclasses.fields(shape):
        v = getattr(shape, f.name)
        if f.default is dataclasses.MISSING or v != f.default:
            parts.append(f"{f.name}={str(v).lower() if isinstance(v, bool) else v}")
    return ", ".join(parts)


# A shape validator gets (shape, the kernel's parsed values, fail) and calls
# fail(reason, key=None) to reject it; key names the offending shape key.
ShapeCheck = Callable[[Any, Dict[str, Any], Callable[..., None]], None]


def _check_size(what: str, factors: str, elements: int, kernel: Dict[str, Any],
                fail: Callable[..., None]) -> None:
    """Reject an operand of `elements` elements larger than MAX_OPERAND_BYTES."""
    nbytes = elements * DTYPES[kernel["dtype"]]
    if nbytes > MAX_OPERAND_BYTES:
        fail(f"{what} ({factors}) would take {nbytes} bytes; the limit is 2**48 (256 TiB, "
             f"a 64-bit process's address space)")


def _check_gemm_shape(shape: GemmShape, kernel: Dict[str, Any], fail: Callable[..., None]) -> None:
    for operand, (rn, rows), (cn, cols) in (("A", ("M", shape.M), ("K", shape.K)),
                                            ("B", ("K", shape.K), ("N", shape.N)),
                                            ("C", ("M", shape.M), ("N", shape.N))):
        _check_size(f"operand {operand}", f"{rn} x {cn} = {rows} x {cols}", rows * cols, kernel, fail)


def _check_conv_shape(shape: Conv2dShape, kernel: Dict[str, Any], fail: Callable[..., None]) -> None:
    bad = [a for a in kernel.get("activations", ()) if a not in CONV_ACTIVATIONS]
    if bad:
        fail(f"conv2d supports the activations {', '.join(CONV_ACTIVATIONS)}; this kernel lists {', '.join(bad)}")
    if shape.C % shape.groups:
        fail(f"input channels C={shape.C} are not divisible by groups={shape.groups}", "groups")
    if shape.K % shape.groups:
        fail(f"output channels K={shape.K} are not divisible by groups={shape.groups}", "groups")
    if shape.out_h < 1 or shape.out_w < 1:
        fail(f"the output would be {shape.out_h}x{shape.out_w}: the dilated {shape.R}x{shape.S} kernel does "
             f"not fit the padded {shape.H}x{shape.W} input")
    s, cg = shape, shape.C // shape.groups
    _check_size("input x", f"N x C x H x W = {s.N} x {s.C} x {s.H} x {s.W}", s.N * s.C * s.H * s.W, kernel, fail)
    _check_size("weights w", f"K x C/groups x R x S = {s.K} x {cg} x {s.R} x {s.S}", s.K * cg * s.R * s.S,
                kernel, fail)
    _check_size("output y", f"N x K x out_h x out_w = {s.N} x {s.K} x {s.out_h} x {s.out_w}",
                s.N * s.K * s.out_h * s.out_w, kernel, fail)
    # The planner lowers a conv to GEMMs (conv2d.cpp's im2col / 1x1 paths):
    # their sizes must be ones a GEMM spec could ask for.
    g = s.gemm_shape()
    for dim, value, meaning in (("N", g.N, f"output pixels out_h x out_w = {s.out_h} x {s.out_w}"),
                                ("K", g.K, f"patch size C/groups x R x S = {cg} x {s.R} x {s.S}")):
        if value > INT32_MAX:
            fail(f"the lowered GEMM's {dim} ({meaning}) is {value}; the limit is {INT32_MAX} (2**31-1)")
    _check_size("the im2col patch matrix", f"C/groups*R*S x out_h*out_w = {g.K} x {g.N}", g.K * g.N, kernel, fail)


@dataclass(frozen=True)
class _OpSchema:
    shape_type: type                  # frozen dataclass built from the shape fields
    shape_fields: Tuple[_Field, ...]  # keys allowed in each entry of `shapes`
    check_shape: ShapeCheck           # cross-field validation of one shape


_GEMM_DIMS = (_Field("M", _positive_int), _Field("N", _positive_int), _Field("K", _positive_int))

# One entry per operator. Adding an op = a shape dataclass + an entry + a validator.
_OPS: Dict[str, _OpSchema] = {
    "matmul": _OpSchema(GemmShape, _GEMM_DIMS, _check_gemm_shape),
    "gemm": _OpSchema(GemmShape, _GEMM_DIMS + (_Field("trans_a", _boolean, False),
                                               _Field("trans_b", _boolean, False)),
                      _check_gemm_shape),
}
_CONV_FIELDS = (
    _Field("C", _positive_int), _Field("H", _positive_int), _Field("W", _positive_int),
    _Field("K", _positive_int), _Field("R", _positive_int), _Field("S", _positive_int),
    _Field("N", _positive_int, 1),
    _Field("stride_h", _positive_int, 1), _Field("stride_w", _positive_int, 1),
    _Field("pad_top", _nonnegative_int, 0), _Field("pad_left", _nonnegative_int, 0),
    _Field("pad_bottom", _nonnegative_int, 0), _Field("pad_right", _nonnegative_int, 0),
    _Field("dilation_h", _positive_int, 1), _Field("dilation_w", _positive_int, 1),
    _Field("groups", _positive_int, 1),
)
_OPS["conv2d"] = _OpSchema(Conv2dShape, _CONV_FIELDS, _check_conv_shape)
OPS: Tuple[str, ...] = tuple(sorted(_OPS))


def _shape_key_hint(op: str) -> Callable[[str], Optional[str]]:
    def hint(key: str) -> Optional[str]:
        owners = sorted(o for o, s in _OPS.items() if o != op and any(f.name == key for f in s.shape_fields))
        if owners:
            return f"{key!r} is only allowed when op is {' or '.join(owners)} (this kernel's op is {op!r})"
        return None
    return hint


def _parse_shapes(node: Node, path: str, ctx: _Ctx, kernel: Dict[str, Any]) -> tuple:
    op = kernel["op"]
    schema = _OPS[op]
    hint = _shape_key_hint(op)

    def one(inode: Node, ipath: str, ctx: _Ctx, _values: Dict[str, Any]) -> Any:
        vals = _parse_mapping(inode, ipath, ctx, schema.shape_fields, hint)
        shape = schema.shape_type(**vals)

        def fail(reason: str, key: Optional[str] = None) -> None:
            where, where_path = inode, ipath
            if key is not None:
                for knode, vnode in inode.value:
                    if _str_of(knode) == key:
                        where, where_path = vnode, _join(ipath, key)
            raise ctx.error(where, where_path, reason)

        schema.check_shape(shape, kernel, fail)
        return shape

    return _parse_list(node, path, ctx, f"{op} shapes (mappings)", one, kernel, allow_empty=True,
                       dedupe=lambda s: f"shape {_describe_shape(s)}")


# --------------------------------------------------------------------------- kernels

@dataclass(frozen=True)
class OpSpec:
    """One validated kernel entry of a spec file."""
    name: str
    op: str
    dtype: str
    activations: tuple
    bias: bool
    residual: bool
    threads: tuple
    shapes: tuple        # of GemmShape (matmul, gemm); the op's shape type in general
    file: str
    line: int            # 1-based line of the kernel's mapping in `file`
    tolerance: Optional[float] = None   # conv2d: largest relative error allowed (None: any algorithm)

    def to_dict(self) -> dict:
        """Plain JSON-able data (lists, dicts, str, int, bool)."""
        return {
            "name": self.name, "op": self.op, "dtype": self.dtype,
            "activations": list(self.activations), "bias": self.bias, "residual": self.residual,
            "threads": list(self.threads),
            "shapes": [dataclasses.asdict(s) for s in self.shapes],
            "file": self.file, "line": self.line, "tolerance": self.tolerance,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "OpSpec":
        """Inverse of to_dict (trusted input: no validation beyond the op lookup)."""
        shape_type = _OPS[d["op"]].shape_type
        return cls(name=d["name"], op=d["op"], dtype=d["dtype"],
                   activations=tuple(d["activations"]), bias=bool(d["bias"]),
                   residual=bool(d["residual"]), threads=tuple(d["threads"]),
                   shapes=tuple(shape_type(**s) for s in d["shapes"]),
                   file=d["file"], line=int(d["line"]), tolerance=d.get("tolerance"))

    def summary(self) -> str:
        labels = [getattr(s, "label", lambda s=s: _describe_shape(s))() for s in self.shapes]
        shown = ", ".join(labels[:4]) + (f", +{len(labels) - 4} more" if len(labels) > 4 else "")
        return (f"{self.name}: {self.op} {self.dtype} activations={','.join(self.activations)} "
                f"bias={'yes' if self.bias else 'no'} residual={'yes' if self.residual else 'no'} "
                f"threads={','.join(map(str, self.threads))} shapes={len(self.shapes)}"
                + (f" tolerance={self.tolerance:g}" if self.tolerance is not None else "")
                + (f" [{shown}]" if labels else "") + f"  ({self.file}:{self.line})")


def _parse_name(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> str:
    v = _str_of(node)
    if v is None or not _IDENTIFIER.match(v):
        raise ctx.error(node, path, f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got {_describe(node)}")
    return v


def _parse_activations(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> tuple:
    item = _choice("activation", ACTIVATIONS)
    return _parse_list(node, path, ctx, f"activations (subset of {', '.join(ACTIVATIONS)})", item,
                       values, dedupe=lambda a: f"activation {a!r}")


def _parse_threads(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> tuple:
    return _parse_list(node, path, ctx, "thread counts (positive integers)", _positive_int, values,
                       dedupe=lambda t: f"thread count {t}")


# A plain (unquoted) scalar in scientific notation without a dot, such as
# 1e-4, is a string to YAML 1.1; read it as the number it was meant to be.
_PLAIN_FLOAT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+\Z")
TOLERANCE_OPS = ("conv2d",)


def _parse_tolerance(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> float:
    """Largest relative error (max|y - exact| / max|exact|) the kernel's
    results may carry: algorithms whose documented error bound exceeds it are
    not chosen (conv2d's Winograd variants)."""
    if values.get("op") not in TOLERANCE_OPS:
        raise ctx.error(node, path, f"'tolerance' is only allowed when op is {' or '.join(TOLERANCE_OPS)} "
                                    f"(its Winograd algorithms trade accuracy for speed); this kernel's op is "
                                    f"{values.get('op')!r}")
    v: Optional[float] = None
    if isinstance(node, ScalarNode):
        if node.tag == _T_FLOAT:
            v = float(_SCALARS.construct_yaml_float(node))
        elif node.tag == _T_INT:
            v = float(_SCALARS.construct_yaml_int(node))
        elif node.tag == _T_STR and node.style is None and _PLAIN_FLOAT.match(node.value):
            v = float(node.value)
    if v is None:
        raise ctx.error(node, path, f"expected a number such as 1e-4 (a relative error), got {_describe(node)}")
    if not 0.0 < v < 1.0:
        raise ctx.error(node, path, f"expected a relative error between 0 and 1 (exclusive), got {v:g}")
    return v


_KERNEL_FIELDS: Tuple[_Field, ...] = (
    _Field("name", _parse_name),
    _Field("op", _choice("op", OPS)),
    _Field("dtype", _choice("dtype", tuple(DTYPES))),
    _Field("activations", _parse_activations, ("none",)),
    _Field("bias", _boolean, True),
    _Field("residual", _boolean, False),
    _Field("threads", _parse_threads, (1,)),
    _Field("tolerance", _parse_tolerance, None),   # after op: only some ops take it
    _Field("shapes", _parse_shapes, ()),      # after op and dtype: its schema depends on them
)


def _parse_version(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> int:
    v = _int_of(node)
    if v is None:
        raise ctx.error(node, path, f"expected the integer {SPEC_VERSION}, got {_describe(node)}")
    if v != SPEC_VERSION:
        raise ctx.error(node, path, f"unsupported spec version {v}; supported: {SPEC_VERSION}")
    return v


def _parse_kernels(node: Node, path: str, ctx: _Ctx, values: Dict[str, Any]) -> tuple:
    def one(inode: Node, ipath: str, ctx: _Ctx, _values: Dict[str, Any]) -> OpSpec:
        k = _parse_mapping(inode, ipath, ctx, _KERNEL_FIELDS)
        return OpSpec(file=ctx.file, line=_line(inode), **k)
    return _parse_list(node, path, ctx, "kernels (mappings)", one, values)


_TOP_FIELDS: Tuple[_Field, ...] = (
    _Field("version", _parse_version),
    _Field("kernels", _parse_kernels),
)


# --------------------------------------------------------------------------- loading

# A spec is 6 nodes deep (document, kernels, kernel, shapes, shape, value).
# PyYAML composes nodes recursively: a file nested a few hundred levels deep
# exhausts Python's stack (RecursionError, no file named). Far deeper than any
# spec, far shallower than the stack.
MAX_DEPTH = 32


class _TooDeep(Exception):
    def __init__(self, line: int, key_path: str):
        super().__init__(line, key_path)
        self.line, self.key_path = line, key_path


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing at MAX_DEPTH nested nodes, naming the
    line and key path where the limit was crossed."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._path: List[str] = []    # one entry per node being composed

    def compose_node(self, parent: Optional[Node], index: Any) -> Node:
        if parent is None:
            step = ""                  # the document's root
        elif isinstance(index, int):
            step = f"[{index}]"        # a list item
        elif isinstance(index, ScalarNode):   # a mapping value under a plain key
            key = str(index.value)
            step = f".{key}" if _IDENTIFIER.match(key) else f"[{key!r}]"
        else:
            step = ".<key>"            # a mapping key (or a value under a complex key)
        if len(self._path) >= MAX_DEPTH:
            steps = self._path + [step]
            path = "".join(steps[:8]).lstrip(".") + "..."   # where it went deep; the rest repeats
            raise _TooDeep(self.peek_event().start_mark.line + 1, path)
        self._path.append(step)
        try:
            return super().compose_node(parent, index)
        finally:
            self._path.pop()


def _compose(text: str, ctx: _Ctx) -> Optional[Node]:
    try:
        return yaml.compose(text, Loader=_DepthLimitedLoader)
    except _TooDeep as e:
        raise ctx.error(e.line, e.key_path, f"YAML nested more than {MAX_DEPTH} levels deep; a spec needs 6 "
                                            f"(document, kernels, kernel, shapes, shape, value)") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        reason = f"YAML syntax error: {e.problem or e.context or 'invalid YAML'}"
        if e.problem and e.context:
            where = f" at line {e.context_mark.line + 1}" if e.context_mark is not None else ""
            if e.problem.startswith("but "):     # e.g. "expected a single document ..., but found another"
                reason = f"YAML syntax error: {e.context}{where}, {e.problem}"
            else:
                reason += f" ({e.context}{where})"
        raise ctx.error(mark.line + 1 if mark is not None else 1, _DOC, reason) from None
    except yaml.reader.ReaderError as e:
        line = text[: max(0, e.position)].count("\n") + 1
        ch = e.character if isinstance(e.character, str) else chr(e.character)
        raise ctx.error(line, _DOC, f"YAML error: unacceptable character U+{ord(ch):04X}: {e.reason}") from None
    except yaml.YAMLError as e:       # pragma: no cover - other PyYAML errors carry no position
        raise ctx.error(1, _DOC, f"YAML error: {e}") from None


def _load_file(path: Path, seen: Dict[str, Tuple[str, int]]) -> List[OpSpec]:
    """Parse one file; `seen` maps kernel names already loaded to (file, line) and is updated."""
    ctx = _Ctx(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ctx.error(0, "<file>", "no such file") from None
    except OSError as e:
        raise ctx.error(0, "<file>", f"cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ctx.error(line, _DOC, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})") from None

    root = _compose(text, ctx)
    expected = "a mapping with keys 'version' and 'kernels'"
    if root is None:
        raise ctx.error(1, _DOC, f"empty spec file; expected {expected}")
    if not isinstance(root, MappingNode):
        raise ctx.error(root, _DOC, f"expected {expected} at the top level, got {_describe(root)}")
    # The version decides how to read the rest: check it before anything else.
    for knode, vnode in root.value:
        if _str_of(knode) == "version":
            _parse_version(vnode, "version", ctx, {})
            break
    kernels: tuple = _parse_mapping(root, "", ctx, _TOP_FIELDS)["kernels"]

    # Names: unique within the file and across everything loaded with it.
    new: Dict[str, Tuple[str, int]] = {}
    seq = next(v for k, v in root.value if _str_of(k) == "kernels")
    for i, (spec, knode) in enumerate(zip(kernels, seq.value)):
        name_node = next(v for k, v in knode.value if _str_of(k) == "name")
        prev = new.get(spec.name) or seen.get(spec.name)
        if prev is not None:
            pfile, pline = prev
            where = f"line {pline}" if pfile == ctx.file else f"{pfile}:{pline}"
            raise ctx.error(name_node, f"kernels[{i}].name",
                            f"duplicate kernel name {spec.name!r} (first defined at {where}); "
                            f"names must be unique across all spec files")
        new[spec.name] = (ctx.file, _line(name_node))
    seen.update(new)
    return list(kernels)


def load_file(path: PathLike) -> List[OpSpec]:
    """Load and validate one spec file. Raises SpecError."""
    return _load_file(Path(path), {})


def _spec_files(p: Path) -> List[Path]:
    if p.is_dir():
        files = sorted((q for q in p.iterdir()
                        if q.suffix in (".yaml", ".yml") and not q.name.startswith(".") and q.is_file()),
                       key=lambda q: q.name)
        if not files:
            raise SpecError(str(p), 0, "<dir>", "no *.yaml or *.yml spec files in directory")
        return files
    if p.is_file():
        return [p]
    raise SpecError(str(p), 0, "<path>", "no such file or directory")


def load_dirs(dirs: Union[PathLike, Iterable[PathLike]]) -> List[OpSpec]:
    """Load every *.yaml / *.yml file of each directory (files sorted by name,
    directories in the order given; a plain file path is loaded as is).

    Kernel names must be unique across all of them. Returns all specs or raises SpecError.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    files: List[Path] = []
    done = set()
    for d in dirs:
        for f in _spec_files(Path(d)):
            key = f.resolve()
            if key not in done:          # the same file reached twice is loaded once
                done.add(key)
                files.append(f)
    seen: Dict[str, Tuple[str, int]] = {}
    specs: List[OpSpec] = []
    for f in files:
        specs.extend(_load_file(f, seen))
    return specs


def default_spec_dir() -> Path:
    """The built-in kernels_spec/: $AUTOCONFIG_DEFAULT_SPECS, else the copy shipped
    in the package (wheel), else the source checkout's top-level kernels_spec/."""
    env = os.environ.get("AUTOCONFIG_DEFAULT_SPECS")
    if env:
        return Path(env)
    shipped = Path(__file__).parent / "kernels_spec"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "kernels_spec"


def load_default() -> List[OpSpec]:
    return load_dirs([default_spec_dir()])


def load(paths: Optional[Union[PathLike, Iterable[PathLike]]] = None) -> List[OpSpec]:
    """load_dirs(paths), or the default specs when paths is None."""
    return load_default() if paths is None else load_dirs(paths)


# --------------------------------------------------------------------------- CLI

def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoconfig.spec",
                                 description="Validate autoconfig operator spec files.")
    ap.add_argument("paths", nargs="*", metavar="FILE_OR_DIR",
                    help="spec files or directories of *.yaml/*.yml (default: the built-in kernels_spec/)")
    ap.add_argument("--json", action="store_true", help="print the validated specs as JSON")
    args = ap.parse_args(argv)
    try:
        specs = load_dirs(args.paths) if args.paths else load_default()
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([s.to_dict() for s in specs], indent=2))
    else:
        for s in specs:
            print(s.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
