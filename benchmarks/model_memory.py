"""Resident memory of a whole network after load: autoconfig's executor
against onnxruntime, each engine in a fresh process (Linux: /proc/self/status).

    python benchmarks/model_memory.py /tmp/bm/bert.onnx /tmp/bm/resnet50.onnx [--sequence 128]
                                      [--python OTHER_VENV/bin/python] [--markdown]

Per model it plans an .acmodel once (this interpreter's autoconfig, into a
temporary directory), then measures, each in its own process:
  autoconfig         autoconfig.load(path): the executor maps the file
  autoconfig-bytes   autoconfig.load(bytes): the in-memory loader (load_onnx's path)
  onnxruntime        InferenceSession(path), CPU provider, default options
Columns: RSS after load and its peak (VmHWM) during the load, both less the
process's RSS before loading (Python, numpy and the engine's import), the RSS
after one run, and Model.memory()'s total. --python runs the autoconfig rows
again with another interpreter (e.g. a build of main) on the same files, and
checks its outputs are bit-identical to this one's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys
import numpy as np

def status():
    d = {}
    for line in open("/proc/self/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "VmHWM"):
            d[k] = int(v.split()[0]) * 1024
    return d

def feeds(names, shapes, dtypes):
    rng = np.random.default_rng(0)
    out = {}
    for n, s, dt in zip(names, shapes, dtypes):
        if dt == "int64":
            out[n] = (np.ones(s, np.int64) if "mask" in n else np.zeros(s, np.int64) if "type" in n
                      else rng.integers(0, 1000, size=s).astype(np.int64))
        else:
            out[n] = rng.standard_normal(s).astype(np.float32)
    return out

engine, path, onnx_path, out, seq = sys.argv[1:6]
mem = None
if engine.startswith("autoconfig"):
    import autoconfig
    before = status()
    m = autoconfig.load(open(path, "rb").read() if engine.endswith("bytes") else path)
    loaded = status()
    y = m.run(None, feeds(m.input_names, m.input_shapes, m.input_dtypes))
    mem = m.memory() if hasattr(m, "memory") else None
else:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    before = status()
    s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    loaded = status()
    ins = s.get_inputs()
    shapes = [[1, int(seq)] if "int64" in i.type else [d if isinstance(d, int) else 1 for d in i.shape] for i in ins]
    y = s.run(None, feeds([i.name for i in ins], shapes, ["int64" if "int64" in i.type else "float32" for i in ins]))
ran = status()
np.save(out, np.asarray(y[0]))
print(json.dumps({"load": loaded["VmRSS"] - before["VmRSS"], "peak": loaded["VmHWM"] - before["VmRSS"],
                  "run": ran["VmRSS"] - before["VmRSS"], "memory": mem}))
"""


def measure(python: str, engine: str, acmodel: str, onnx_path: str, out: str, seq: int) -> dict:
    r = subprocess.run([python, "-c", CHILD, engine, acmodel, onnx_path, out, str(seq)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--sequence", type=int, default=128, help="a transformer's sequence length")
    ap.add_argument("--python", help="another interpreter whose autoconfig rows are measured too (A/B)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    import numpy as np

    from autoconfig.model_onnx import compile_bytes, sequence_shapes
    mib = lambda b: f"{b / 2**20:.0f}"   # noqa: E731
    rows = [["model", "engine", "python", "after load MiB", "peak MiB", "after a run MiB", "memory() MiB"]]
    with tempfile.TemporaryDirectory() as tmp:
        for path in a.models:
            name = os.path.splitext(os.path.basename(path))[0]
            acm = os.path.join(tmp, name + ".acmodel")
            with open(acm, "wb") as f:
                f.write(compile_bytes(path, input_shape=sequence_shapes(path, a.sequence), name=name))
            runs = [(sys.executable, e) for e in ("autoconfig", "autoconfig-bytes", "onnxruntime")]
            if a.python:
                runs += [(a.python, e) for e in ("autoconfig", "autoconfig-bytes")]
            outs = {}
            for py, engine in runs:
                out = os.path.join(tmp, f"{name}-{len(outs)}.npy")
                r = measure(py, engine, acm, path, out, a.sequence)
                outs[(py, engine)] = np.load(out)
                mem = r["memory"]
                rows.append([name, engine, "this" if py == sys.executable else py, mib(r["load"]), mib(r["peak"]),
                             mib(r["run"]), "-" if not mem else mib(mem["total"])])
            if a.python:
                same = all(np.array_equal(outs[(sys.executable, e)].view(np.uint8), outs[(a.python, e)].view(np.uint8))
                           for e in ("autoconfig", "autoconfig-bytes"))
                print(f"{name}: outputs of this and {a.python} bit-identical: {same}")
    if a.markdown:
        print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
        for r in rows[1:]:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))


if __name__ == "__main__":
    main()
