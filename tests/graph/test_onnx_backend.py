"""ONNX's backend test suite (onnx.backend.test.BackendTest) over
autoconfig.onnx_backend: the node tests of the supported ops, every id in
graph_node_tests.yaml (the ones the importer + reference pass), through the
importer, the planner and the C++ executor, compared by ONNX's runner
(rtol 1e-3, atol 1e-7). Skips while the executor (autoconfig.load) is not in
the build.

The pip package ships no node-test data, so the cases
(onnx.backend.test.case.node.collect_testcases, in memory) are written once
to a temporary folder in the layout BackendTest loads (model.onnx,
test_data_set_N/input_K.pb, output_K.pb) and the runner's loader is pointed
there for the node kind (other kinds: none)."""
import os
import tempfile

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")

import autoconfig  # noqa: E402

if autoconfig._ext is None or not hasattr(autoconfig, "load"):
    pytest.skip("autoconfig.load (the C++ executor) is not in this build", allow_module_level=True)

import onnx.backend.test.runner as runner  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx.backend.test.case.node import collect_testcases  # noqa: E402
from onnx.backend.test.loader import load_model_tests  # noqa: E402

from autoconfig.onnx_backend import AutoconfigBackend  # noqa: E402

YAML = os.path.join(os.path.dirname(__file__), "graph_node_tests.yaml")
with open(YAML) as f:
    LISTED = sorted({i for ids in yaml.safe_load(f)["node_tests"].values() for i in ids})


def _write_cases(root: str, names) -> None:
    for c in collect_testcases():
        if c.name not in names:
            continue
        d = os.path.join(root, "node", c.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(c.model.SerializeToString())
        inits = {i.name for i in c.model.graph.initializer}
        ins = [i.name for i in c.model.graph.input if i.name not in inits]
        outs = [o.name for o in c.model.graph.output]
        for k, (inputs, outputs) in enumerate(c.data_sets):
            ds = os.path.join(d, f"test_data_set_{k}")
            os.makedirs(ds, exist_ok=True)
            for j, (name, v) in enumerate(zip(ins, inputs)):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(np.asarray(v), name).SerializeToString())
            for j, (name, v) in enumerate(zip(outs, outputs)):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(np.asarray(v), name).SerializeToString())


DATA = tempfile.mkdtemp(prefix="autoconfig_node_tests_")
_write_cases(DATA, set(LISTED))
_original = runner.load_model_tests


def _node_tests_only(data_dir=None, kind=None):
    return load_model_tests(data_dir=DATA, kind="node") if kind == "node" else []


runner.load_model_tests = _node_tests_only
try:
    backend_test = runner.Runner(AutoconfigBackend, __name__)
finally:
    runner.load_model_tests = _original
for name in LISTED:
    backend_test.include(f"^{name}_cpu$")
globals().update(backend_test.test_cases)


def test_every_listed_case_is_in_the_suite():
    tests = {t for cls in backend_test.test_cases.values() for t in dir(cls) if t.startswith("test_")}
    missing = [n for n in LISTED if f"{n}_cpu" not in tests]
    assert not missing, missing
