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
from typing import Any, Dict, List, Tuple

import numpy as np

import zlib
from .ir import EXECUTOR_OPS, Graph

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
            if t.kind == "intermediate":
                entry["arena"] = int(t.arena)
        tensors.append(entry)
    header = {"format": "acmodel", "version": VERSION, "name": g.name, "producer": PRODUCER,
              "inputs": list(g.inputs), "outputs": list(g.outputs), "arena_floats": int(g.arena_floats),
              "tensors": tensors, "nodes": [_node_json(n) for n in g.nodes]}
    return header, blobs


def to_bytes(g: Graph) -> bytes:
    header, blobs = header_and_blobs(g)
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
    ready = {name for name, t in known.items() if t["kind"] in ("input", "constant")}
    for node in header["nodes"]:
        if node["op"] not in EXECUTOR_OPS:
            raise fail(f"node {node['name']!r}: unknown op {node['op']!r}")
        for i in node["inputs"]:
            if i and i not in ready:
                raise fail(f"node {node['name']!r} reads {i!r} before it is produced")
        ready.update(node["outputs"])
    return AcModel(header, blob)


def read(path: str) -> AcModel:
    with open(path, "rb") as f:
        return from_bytes(f.read(), os.fspath(path))
