"""A test-only .acmodel writer, written from python/autoconfig/graph/FORMAT.md
(the build stage's writer lives in autoconfig.graph; these tests check the
executor against the format, not against that writer).

    g = GraphBuilder("tiny")
    x = g.input("x", (1, 3, 8, 8))
    w = g.const("w", np.ones((4, 3, 3, 3), np.float32))
    y = g.output("y", (1, 4, 6, 6))
    g.node("conv", [x, w], [y], strides=[1, 1], pads=[0, 0, 0, 0])
    data = g.to_bytes()
"""
from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

MAGIC = b"ACMODEL\0"


def crc32(data: bytes) -> int:
    """CRC-32, bit by bit from its definition (reflected polynomial 0xEDB88320):
    independent of zlib, which the real writer uses."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_entry(i: int) -> int:
    for _ in range(8):
        i = (0xEDB88320 ^ (i >> 1)) if i & 1 else i >> 1
    return i


_CRC_TABLE = [_crc_entry(i) for i in range(256)]


def pack(header: Any, blobs: bytes, *, magic: bytes = MAGIC, version: int = 1, flags: int = 0,
         checksum: Optional[int] = None) -> bytes:
    """The file: preamble, header JSON (a dict is dumped; a str/bytes is taken as is),
    zero padding to 64, the blob section, the CRC-32 checksum."""
    if isinstance(header, dict):
        text = json.dumps(header).encode()
    elif isinstance(header, str):
        text = header.encode()
    else:
        text = bytes(header)
    body = magic + struct.pack("<IIQQ", version, flags, len(text), len(blobs)) + text
    body += b"\0" * ((-len(body)) % 64)
    body += blobs
    return body + struct.pack("<Q", crc32(body) if checksum is None else checksum)


def blocked_storage(shape: Sequence[int], block: int) -> int:
    n, c, h, w = shape
    return n * (-(-c // block)) * h * w * block


class GraphBuilder:
    def __init__(self, name: str = "test"):
        self.name = name
        self.tensors: List[dict] = []
        self.nodes: List[dict] = []
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.blobs = bytearray()
        self.arena = 0        # bump allocation: no reuse unless a test asks for an offset

    def _add(self, t: dict) -> str:
        self.tensors.append(t)
        return t["name"]

    def input(self, name: str, shape) -> str:
        self.inputs.append(name)
        return self._add({"name": name, "shape": list(shape), "kind": "input", "layout": "nchw"})

    def output(self, name: str, shape) -> str:
        self.outputs.append(name)
        return self._add({"name": name, "shape": list(shape), "kind": "output", "layout": "nchw"})

    def const(self, name: str, value) -> str:
        a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        self.blobs += b"\0" * ((-len(self.blobs)) % 64)
        off = len(self.blobs)
        self.blobs += a.tobytes()
        return self._add({"name": name, "shape": list(a.shape), "kind": "constant", "offset": off,
                          "bytes": a.nbytes})

    def inter(self, name: str, shape, layout: str = "nchw", arena: Optional[int] = None) -> str:
        block = int(layout[4:-1]) if layout != "nchw" else 0
        floats = blocked_storage(shape, block) if block else int(np.prod(shape, dtype=np.int64))
        if arena is None:
            arena = self.arena
            self.arena += floats + (-floats) % 16
        else:
            self.arena = max(self.arena, arena + floats)
        return self._add({"name": name, "shape": list(shape), "kind": "intermediate", "layout": layout,
                          "arena": arena})

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], *, name: Optional[str] = None,
             threads: int = 0, **attrs) -> dict:
        n = {"name": name or f"{op}_{len(self.nodes)}", "op": op, "inputs": list(inputs), "outputs": list(outputs),
             "attrs": attrs, "threads": threads, "predicted_ms": 0.0, "fused": [], "why": "test"}
        self.nodes.append(n)
        return n

    def header(self) -> Dict[str, Any]:
        return {"format": "acmodel", "version": 1, "name": self.name, "producer": "tests/runtime/acmodel_writer.py",
                "inputs": list(self.inputs), "outputs": list(self.outputs), "arena_floats": self.arena,
                "tensors": self.tensors, "nodes": self.nodes}

    def to_bytes(self, header: Optional[dict] = None) -> bytes:
        return pack(self.header() if header is None else header, bytes(self.blobs))

    def save(self, path) -> str:
        with open(path, "wb") as f:
            f.write(self.to_bytes())
        return str(path)
