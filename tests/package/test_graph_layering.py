"""The graph package is a build stage: it imports no runtime module (the
extension, runtime/, explanation, bench), and only onnx_import.py imports onnx
(an optional extra). Checked on the source, without importing it."""
import ast
from pathlib import Path

GRAPH = Path(__file__).resolve().parents[2] / "python" / "autoconfig" / "graph"
RUNTIME = {"runtime", "api", "conv_api", "_autoconfig_ext", "_isa_guard", "bench", "bench_conv", "explanation"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield base
            for a in node.names:
                yield f"{base}.{a.name}" if base else a.name


def test_graph_imports_no_runtime_and_onnx_only_in_the_importer():
    files = sorted(GRAPH.rglob("*.py"))
    assert files
    for f in files:
        for name in _imports(f):
            parts = set(name.split("."))
            assert not parts & RUNTIME, f"{f.relative_to(GRAPH)} imports {name} (a runtime module)"
            if name.split(".")[0] == "onnx" or name == "onnx":
                assert f.name == "onnx_import.py", f"{f.relative_to(GRAPH)} imports onnx"


def test_importer_imports_onnx_lazily():
    src = (GRAPH / "onnx_import.py").read_text()
    top = [n for n in ast.parse(src).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(isinstance(n, ast.Import) and any(a.name == "onnx" for a in n.names) for n in top)
