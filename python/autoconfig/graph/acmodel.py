"""The .acmodel file (FORMAT.md): writer, and a reader for tests and explain.

    write(g, path)  the planned graph: header JSON + 64-byte aligned float32 blobs + CRC-32
    read(path)      -> AcModel(header, blobs): checks what the C++ reader checks

The writer needs every intermediate placed in the arena (planner.plan or
planner.plan_arena); it places them itself when no plan did.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import zlib
from .ir import BLOCKED_OPS, EXECUTOR_OPS, Graph

MAGIC = b"ACMODEL\0"
VERSION = 1
ALIGN = 64
PREAMBLE = struct.Struct("<8sIIQQ")      # magic, version, flags, header length, blob section length
PRODUCER = "autoconfig 0.1.0"


class FormatError(ValueError):
    pass



def checksum(data) -> int:
    """The file's trailer: CRC-32 (IEEE 802.3 polynomial, zlib's) of bytes [0, P+B),
    zero-extended to 64 bits. zlib runs it in C at memory speed, with no compiler."""
    return zlib.crc32(data) & 0xFFFFFFFF

def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _node_json(n) -> Dict[str, Any]:
    out = {"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
           "attrs": dict(n.attrs), "threads": int(n.threads), "fused": list(n.fused)}
    if n.predicted_ms is not None:
        out["predicted_ms"] = round(float(n.predicted_ms), 6)
    if n.why:
        out["why"] = n.why
    if n.layout:
        out["layout"] = n.layout
    return out


def header_and_blobs(g: Graph) -> Tuple[Dict[str, Any], List[Tuple[int, bytes]]]:
    if any(t.kind == "intermediate" and t.arena is None for t in g.tensors.values()):
        from .planner import plan_arena
        plan_arena(g)
    for n in g.nodes:
        if n.op not in EXECUTOR_OPS:
            raise FormatError(f"node {n.name!r}: op {n.op!r} is not in the executor vocabulary")
    tensors = []
    blobs: List[Tuple[int, bytes]] = []
    offset = 0
    used = set(g.inputs) | set(g.outputs)
    for n in g.nodes:
        used.update(i for i in n.inputs if i)
        used.update(n.outputs)
    order = sorted(used, key=lambda name: (("input", "constant", "intermediate", "output").index(
        g.tensors[name].kind), name))
    order = [name for name in g.inputs] + [n for n in order if n not in g.inputs]
    for name in order:
        t = g.tensors[name]
        entry: Dict[str, Any] = {"name": name, "shape": [int(d) for d in t.shape], "kind": t.kind}
        if t.kind == "constant":
            data = np.ascontiguousarray(t.data, dtype="<f4").tobytes()
            entry.update(offset=offset, bytes=len(data))
            blobs.append((offset, data))
            offset = _align(offset + len(data))
        else:
            entry["layout"] = t.layout
            if t.dtype != "float32":
                entry["dtype"] = t.dtype
            if t.kind == "intermediate":
                entry["arena"] = int(t.arena)
                if t.view_of:
                    entry.update(view_of=t.view_of, channel_offset=int(t.channel_offset))
        tensors.append(entry)
    header = {"format": "acmodel", "version": VERSION, "name": g.name, "producer": PRODUCER,
              "inputs": list(g.inputs), "outputs": list(g.outputs), "arena_floats": int(g.arena_floats),
              "tensors": tensors, "nodes": [_node_json(n) for n in g.nodes]}
    return header, blobs


def to_bytes(g: Graph) -> bytes:
    return frame(*header_and_blobs(g))


def frame(header: Dict[str, Any], blobs: List[Tuple[int, bytes]]) -> bytes:
    """The file: preamble, header JSON, aligned blobs, checksum."""
    try:
        text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as e:
        raise FormatError(f"the header holds a non-finite number: {e}") from e
    blob_len = _align(max((o + len(d) for o, d in blobs), default=0))
    p = _align(PREAMBLE.size + len(text))
    out = bytearray(p + blob_len + 8)
    PREAMBLE.pack_into(out, 0, MAGIC, VERSION, 0, len(text), blob_len)
    out[PREAMBLE.size:PREAMBLE.size + len(text)] = text
    for o, d in blobs:
        out[p + o:p + o + len(d)] = d
    struct.pack_into("<Q", out, p + blob_len, checksum(memoryview(out)[:p + blob_len]))
    return bytes(out)


def write(g: Graph, path: str) -> int:
    """Write atomically; returns the file size."""
    data = to_bytes(g)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


@dataclass
class AcModel:
    header: Dict[str, Any]
    blob: bytes

    def tensor(self, name: str) -> Dict[str, Any]:
        for t in self.header["tensors"]:
            if t["name"] == name:
                return t
        raise KeyError(name)

    def constant(self, name: str) -> np.ndarray:
        t = self.tensor(name)
        return np.frombuffer(self.blob, "<f4", t["bytes"] // 4, t["offset"]).reshape(t["shape"])


REQUIRED = ("format", "version", "name", "inputs", "outputs", "arena_floats", "tensors", "nodes")


def from_bytes(data: bytes, where: str = "<bytes>") -> AcModel:
    def fail(what: str) -> FormatError:
        return FormatError(f"{where}: {what}")

    if len(data) < PREAMBLE.size + 8:
        raise fail(f"{len(data)} bytes: too short for an .acmodel")
    magic, version, flags, hlen, blen = PREAMBLE.unpack_from(data, 0)
    if magic != MAGIC:
        raise fail("bad magic (not an .acmodel file)")
    if version != VERSION:
        raise fail(f"format version {version}, this reader knows {VERSION}")
    p = _align(PREAMBLE.size + hlen)
    if p + blen + 8 > len(data):
        raise fail(f"header length {hlen} / blob length {blen} run past the end of the file ({len(data)} bytes)")
    (stored,) = struct.unpack_from("<Q", data, p + blen)
    if checksum(memoryview(data)[:p + blen]) != stored:
        raise fail("checksum mismatch (the file is corrupted or truncated)")
    try:
        header = json.loads(data[PREAMBLE.size:PREAMBLE.size + hlen].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(f"header JSON does not parse: {e}") from e
    for key in REQUIRED:
        if key not in header:
            raise fail(f"header lacks {key!r}")
    blob = data[p:p + blen]
    known = {}
    for t in header["tensors"]:
        n = int(np.prod(t["shape"])) if t["shape"] else 1
        if t["kind"] == "constant":
            if t["offset"] % ALIGN or t["offset"] + t["bytes"] > blen:
                raise fail(f"tensor {t['name']!r}: blob [{t['offset']}, +{t['bytes']}) outside the blob section")
            if t["bytes"] != 4 * n:
                raise fail(f"tensor {t['name']!r}: {t['bytes']} bytes for {n} elements")
        known[t["name"]] = t
    for t in header["tensors"]:
        why = _layout_error(t, known, header["arena_floats"])
        if why:
            raise fail(f"tensor {t['name']!r}: {why}")
    blocks = {_block(t["layout"]) for t in header["tensors"] if t.get("layout", "nchw") != "nchw"}
    if len(blocks) > 1:
        raise fail(f"blocked tensors with different blocks {sorted(blocks)}")
    ready = {name for name, t in known.items() if t["kind"] in ("input", "constant")}
    for node in header["nodes"]:
        if node["op"] not in EXECUTOR_OPS:
            raise fail(f"node {node['name']!r}: unknown op {node['op']!r}")
        why = _node_layout_error(node, known)
        if why:
            raise fail(f"node {node['name']!r} ({node['op']}): {why}")
        for i in node["inputs"]:
            if i and i not in ready:
                raise fail(f"node {node['name']!r} reads {i!r} before it is produced")
        ready.update(node["outputs"])
    return AcModel(header, blob)


def _block(layout: str) -> Optional[int]:
    if layout == "nchw":
        return None
    if layout.startswith("nchw") and layout.endswith("c") and layout[4:-1].isdigit() and int(layout[4:-1]) > 0:
        return int(layout[4:-1])
    raise ValueError(layout)


def _layout_error(t: Dict[str, Any], known: Dict[str, Dict[str, Any]], arena_floats: int) -> str:
    """What the C++ reader checks of a tensor's layout and view (FORMAT.md), '' if fine."""
    if t["kind"] == "constant":
        return ""
    try:
        b = _block(t.get("layout", "nchw"))
    except ValueError:
        return f"unknown layout {t.get('layout')!r}"
    if b and (t["kind"] != "intermediate" or len(t["shape"]) != 4):
        return f"layout {t['layout']} on a {t['kind']} of rank {len(t['shape'])} (only 4-D intermediates)"
    if t["kind"] == "intermediate":
        dims = list(t["shape"])
        if b:
            dims[1] = -(-dims[1] // b) * b
        floats = int(np.prod(dims)) if dims else 1
        if not (0 <= t.get("arena", -1) and t["arena"] + floats <= arena_floats):
            return f"arena [{t.get('arena')}, +{floats}) outside the arena ({arena_floats} floats)"
    if "view_of" not in t:
        return ""
    base = known.get(t["view_of"])
    if base is None or base["kind"] != "intermediate" or "view_of" in base:
        return f"view_of {t['view_of']!r} is not an intermediate that is not itself a view"
    s, bs, c = t["shape"], base["shape"], t.get("channel_offset", -1)
    if (len(s) != 4 or len(bs) != 4 or s[0] != 1 or bs[0] != 1 or s[2:] != bs[2:] or base["layout"] != t["layout"]
            or not 0 <= c <= bs[1] - s[1] or (b and (c % b or s[1] % b))):
        return f"not a channel slice of {t['view_of']!r} (shape {s} at channel {c} of {bs}, {t['layout']})"
    if t["arena"] != base["arena"] + c * s[2] * s[3]:
        return f"arena {t['arena']} is not {t['view_of']!r}'s {base['arena']} + {c} x {s[2]} x {s[3]}"
    return ""


def _node_layout_error(node: Dict[str, Any], known: Dict[str, Dict[str, Any]]) -> str:
    def lay(name: str) -> str:
        t = known.get(name)
        return t.get("layout", "nchw") if t and t["kind"] != "constant" else "nchw"
    acts = [x for x in list(node["inputs"]) + list(node["outputs"]) if x]
    if node["op"] not in BLOCKED_OPS:
        bad = [x for x in acts if lay(x) != "nchw"]
        return f"reads or writes {bad[0]!r} in {lay(bad[0])}, this op runs on nchw only" if bad else ""
    if node["op"] == "conv" and len(node["inputs"]) > 3 and node["inputs"][3]:
        if lay(node["inputs"][3]) != lay(node["outputs"][0]):
            return "its residual is not in its output's layout"
    if node["op"] == "to_layout" and lay(node["outputs"][0]) != node["attrs"].get("layout"):
        return f"attrs.layout {node['attrs'].get('layout')!r} is not its output's {lay(node['outputs'][0])!r}"
    return ""


def read(path: str) -> AcModel:
    with open(path, "rb") as f:
        return from_bytes(f.read(), os.fspath(path))
