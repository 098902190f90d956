"""The .acmodel writer and reader (graph/FORMAT.md): layout of the file,
round trip of the graph and weights, CRC-32, and the reader's refusals."""
import json
import struct

import numpy as np
import pytest

from autoconfig.graph import acmodel
from autoconfig.graph.ir import Graph, Node, Tensor
from autoconfig.graph.planner import plan_arena


def small_graph():
    g = Graph("tiny")
    g.add_tensor(Tensor("x", (1, 2, 4, 4), "input"))
    g.inputs.append("x")
    g.constant("w", np.arange(3 * 2 * 3 * 3, dtype=np.float32).reshape(3, 2, 3, 3) / 10)
    g.constant("b", np.array([0.5, -1.0, 2.0], np.float32))
    g.add_tensor(Tensor("c", (1, 3, 4, 4)))
    g.add_tensor(Tensor("y", (1, 3, 1, 1), "output"))
    g.outputs.append("y")
    g.nodes.append(Node("conv1", "conv", ["x", "w", "b", ""], ["c"],
                        {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1,
                         "activation": "relu", "clip": [None, 6.0]}, fused=["relu1"], threads=1,
                        predicted_ms=0.01, why="test"))
    g.nodes.append(Node("pool", "global_avg_pool", ["c"], ["y"]))
    return g


def test_checksum_is_crc32_ieee():
    assert acmodel.checksum(b"") == 0
    assert acmodel.checksum(b"123456789") == 0xCBF43926   # the CRC-32 check value


def test_file_layout_matches_format_md(tmp_path):
    g = small_graph()
    path = tmp_path / "tiny.acmodel"
    size = acmodel.write(g, str(path))
    data = path.read_bytes()
    assert len(data) == size
    magic, version, flags, hlen, blen = struct.unpack_from("<8sIIQQ", data, 0)
    assert (magic, version, flags) == (b"ACMODEL\0", 1, 0)
    p = -(-(32 + hlen) // 64) * 64
    assert data[32 + hlen:p] == b"\0" * (p - 32 - hlen)
    assert p + blen + 8 == len(data) and blen % 64 == 0
    assert struct.unpack_from("<Q", data, p + blen)[0] == acmodel.checksum(data[:p + blen])
    header = json.loads(data[32:32 + hlen])
    assert header["format"] == "acmodel" and header["version"] == 1 and header["name"] == "tiny"
    assert header["inputs"] == ["x"] and header["outputs"] == ["y"]
    kinds = {t["name"]: t for t in header["tensors"]}
    assert kinds["x"]["kind"] == "input" and kinds["x"]["layout"] == "nchw"
    assert kinds["c"]["kind"] == "intermediate" and kinds["c"]["arena"] == 0
    assert header["arena_floats"] >= 48
    for name in ("w", "b"):
        t = kinds[name]
        assert t["offset"] % 64 == 0 and t["bytes"] == 4 * int(np.prod(t["shape"]))
        blob = np.frombuffer(data, "<f4", t["bytes"] // 4, p + t["offset"]).reshape(t["shape"])
        np.testing.assert_array_equal(blob, g.tensors[name].data)
    conv = header["nodes"][0]
    assert conv["attrs"]["clip"] == [None, 6.0] and conv["fused"] == ["relu1"] and conv["threads"] == 1
    assert conv["inputs"] == ["x", "w", "b", ""]


def test_reader_round_trip(tmp_path):
    g = small_graph()
    path = str(tmp_path / "tiny.acmodel")
    acmodel.write(g, path)
    m = acmodel.read(path)
    np.testing.assert_array_equal(m.constant("w"), g.tensors["w"].data)
    assert [n["op"] for n in m.header["nodes"]] == ["conv", "global_avg_pool"]


def test_reader_refuses_damaged_files(tmp_path):
    data = acmodel.to_bytes(small_graph())

    def err(blob):
        with pytest.raises(acmodel.FormatError) as e:
            acmodel.from_bytes(bytes(blob))
        return str(e.value)

    assert "too short" in err(data[:20])
    assert "magic" in err(b"XXMODEL\0" + data[8:])
    bad_version = bytearray(data)
    bad_version[8] = 2
    assert "version 2" in err(bad_version)
    assert "past the end" in err(data[:-100])
    flipped = bytearray(data)
    flipped[-20] ^= 1
    assert "checksum" in err(flipped)


def test_writer_places_intermediates_when_unplanned_and_refuses_nan():
    g = small_graph()
    assert g.tensors["c"].arena is None
    acmodel.to_bytes(g)
    assert g.tensors["c"].arena == 0
    g.nodes[0].attrs["alpha"] = float("nan")
    with pytest.raises(acmodel.FormatError):
        acmodel.to_bytes(g)


def test_arena_reuses_dead_buffers():
    g = Graph("chain")
    g.add_tensor(Tensor("x", (1, 1000), "input"))
    g.inputs.append("x")
    prev = "x"
    for i in range(4):
        out = f"t{i}" if i < 3 else "y"
        g.add_tensor(Tensor(out, (1, 1000), "output" if i == 3 else "intermediate"))
        g.nodes.append(Node(f"r{i}", "relu", [prev], [out]))
        prev = out
    g.outputs.append("y")
    floats = plan_arena(g)
    # t0 and t2 never live at once: two buffers are enough for three tensors
    assert floats == 2 * 1008
    assert g.tensors["t0"].arena == g.tensors["t2"].arena != g.tensors["t1"].arena


def test_vocabulary_matches_format_md_and_the_shape_rules():
    import re
    from pathlib import Path

    from autoconfig.graph import shapes
    from autoconfig.graph.ir import EXECUTOR_OPS
    md = (Path(acmodel.__file__).parent / "FORMAT.md").read_text()
    table = md[md.index("## Ops"):]
    listed = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            listed.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    assert listed == set(EXECUTOR_OPS)
    assert set(shapes.RULES) == set(EXECUTOR_OPS)


def test_writer_refuses_an_op_outside_the_vocabulary():
    g = small_graph()
    g.nodes[1].op = "fft"
    with pytest.raises(acmodel.FormatError, match="vocabulary"):
        acmodel.to_bytes(g)
