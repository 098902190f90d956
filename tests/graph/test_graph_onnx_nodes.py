"""ONNX's own node tests (onnx.backend.test.case.node.collect_testcases: the
cases with their inputs and expected outputs, in memory) through the importer,
the passes and the float64 reference interpreter.

- Every id listed in graph_node_tests.yaml (by op) must pass: adding an op =
  a converter + a runtime kernel + its node-test ids there.
- Every case whose ops all have converters either passes or is refused with
  ImportError_ naming the node: never a wrong answer, never a crash.
Inputs a case feeds at run time that the importer needs as constants (a shape
for Reshape, BatchNormalization statistics, Clip bounds) are bound at import
(import_onnx(constants=...)), as a backend does at its first run. Tolerances
are onnx.backend.test's defaults (rtol 1e-3, atol 1e-7): some expected
outputs are printed to 4 digits.

`python tests/graph/test_graph_onnx_nodes.py` rewrites graph_node_tests.yaml from
the passing cases.
"""
import os
import re
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
from onnx.backend.test.case.node import collect_testcases  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import graph_reference  # noqa: E402
from autoconfig.graph.converters import CONVERTERS  # noqa: E402
from autoconfig.graph.onnx_import import ImportError_, import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402

YAML = os.path.join(os.path.dirname(__file__), "graph_node_tests.yaml")
# Ops that only fold at import: a case made of them alone tests numpy, not us.
IMPORT_ONLY = {"Constant", "ConstantOfShape", "Shape", "Gather", "Cast", "Slice", "Identity"}
MUST_BE_CONSTANT = re.compile(r"tensor '([^']+)'\) must be a constant")


def _cases():
    out = []
    for c in collect_testcases():
        ops = {n.op_type for n in c.model.graph.node}
        if ops <= set(CONVERTERS) and not ops <= IMPORT_ONLY and all(n.domain in ("", "ai.onnx")
                                                                   for n in c.model.graph.node):
            out.append(c)
    return out


def run_case(c):
    """'pass', or ('refused', message); raises AssertionError on a wrong answer."""
    inits = {i.name for i in c.model.graph.initializer}
    names = [i.name for i in c.model.graph.input if i.name not in inits]
    for inputs, outputs in c.data_sets:
        values = dict(zip(names, inputs))
        bound = {n: v for n, v in values.items() if np.asarray(v).dtype != np.float32}
        while True:
            feeds = {n: v for n, v in values.items() if n not in bound}
            try:
                g = import_onnx(c.model, {n: np.asarray(v).shape for n, v in feeds.items()}, constants=bound)
                break
            except ImportError_ as e:
                m = MUST_BE_CONSTANT.search(str(e))
                if m and m.group(1) in values and m.group(1) not in bound:
                    bound[m.group(1)] = values[m.group(1)]
                    continue
                return ("refused", str(e))
        run_passes(g)
        got = graph_reference.run(g, feeds)
        assert len(got) == len(outputs)
        for k, (a, b) in enumerate(zip(got, outputs)):
            b = np.asarray(b)
            assert a.shape == b.shape, f"{c.name} output {k}: shape {a.shape} vs expected {b.shape}"
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-7, err_msg=f"{c.name} output {k}")
    return "pass"


CASES = _cases()


def _listed():
    with open(YAML) as f:
        return yaml.safe_load(f)["node_tests"]


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_node_case_passes_or_is_refused(c):
    listed = {i for ids in _listed().values() for i in ids}
    r = run_case(c)
    if c.name in listed:
        assert r == "pass", f"{c.name} is listed in graph_node_tests.yaml but was refused: {r[1]}"
    else:
        assert r == "pass" or (r[0] == "refused" and r[1]), r      # an ImportError_ with its reason


def test_every_listed_id_exists():
    names = {c.name for c in CASES}
    missing = [i for ids in _listed().values() for i in ids if i not in names]
    assert not missing, f"graph_node_tests.yaml lists cases this onnx does not have: {missing}"


def main():
    by_op, counts = defaultdict(list), Counter()
    for c in CASES:
        r = run_case(c)
        counts["pass" if r == "pass" else "refused"] += 1
        if r == "pass":
            ops = sorted({n.op_type for n in c.model.graph.node} - IMPORT_ONLY) or ["Identity"]
            by_op[ops[0]].append(c.name)
    with open(YAML, "w") as f:
        f.write("# ONNX node tests (onnx.backend.test.case.node) that the importer + passes must pass,\n"
                "# by operator; written by `python tests/graph/test_graph_onnx_nodes.py` "
                f"(onnx {onnx.__version__}: {counts['pass']} pass, {counts['refused']} refused).\n")
        yaml.safe_dump({"node_tests": {k: sorted(v) for k, v in sorted(by_op.items())}}, f, sort_keys=False)
    print(dict(counts))


if __name__ == "__main__":
    main()
