"""The package's import graph: no cycle, and the runtime never imports a build stage.

Reads the sources with ast (nothing is imported or run): every import
statement counts, including those inside functions, since a lazy import is
still a dependency. An edge goes to the module imported (`from . import x`
names the submodule x when there is one, else the package); the parent
packages an import initialises are not edges (every module would otherwise
depend on autoconfig/__init__, which imports runtime.guard). The public
names autoconfig/__init__ loads on first use (its _EXPORTS table) are edges.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "python" / "autoconfig"
ROOT = "autoconfig"

# Build stages (each may have become a subpackage): the runtime imports none of them.
BUILD_STAGES = ("spec", "probe", "models", "codegen", "generate", "tuning", "graph")
# Plain data shared by every stage; the runtime may import these and only these.
SHARED_DATA = ("plan", "profile", "vocabulary", "shapes", "isa_table")
RUNTIME = "runtime"


def module_files(package_dir: Path = PACKAGE_DIR) -> Dict[str, Path]:
    """Dotted module name -> file, for every .py under the package."""
    mods = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join([ROOT] + parts)] = path
    return mods


def _is_package(name: str, mods: Dict[str, Path]) -> bool:
    return mods[name].name == "__init__.py"


def _resolve(name: str, mods: Dict[str, Path]) -> Optional[str]:
    """The longest prefix of a dotted name that is one of the package's modules."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in mods:
            return candidate
    return None


def imports_of(module: str, mods: Dict[str, Path]) -> Set[str]:
    """The package's modules that `module` imports, anywhere in its source."""
    tree = ast.parse(mods[module].read_text(), filename=str(mods[module]))
    package = module if _is_package(module, mods) else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from origin import x`: x is a submodule or a name defined in origin
            targets = [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for t in targets:
            resolved = _resolve(t, mods)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found | _lazy_exports(tree, module, mods)


def _lazy_exports(tree: ast.Module, module: str, mods: Dict[str, Path]) -> Set[str]:
    """The package's __init__ imports its public names on first use, by name,
    from the table _EXPORTS = {"matmul": "runtime.gemm", ...}: edges too."""
    if module != ROOT:
        return set()
    found = set()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            for v in node.value.values:
                resolved = _resolve(f"{ROOT}.{ast.literal_eval(v)}", mods)
                if resolved is not None:
                    found.add(resolved)
    return found


def import_graph(package_dir: Path = PACKAGE_DIR) -> Dict[str, Set[str]]:
    mods = module_files(package_dir)
    return {m: imports_of(m, mods) for m in mods}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    state: Dict[str, int] = {}   # 1: on the current path, 2: done
    path: List[str] = []

    def visit(m: str) -> Optional[List[str]]:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def _top(module: str) -> str:
    """The first component under the package: autoconfig.models.conv -> models."""
    return module.split(".")[1] if "." in module else ""


def layer_violations(graph: Dict[str, Set[str]]) -> List[str]:
    """Runtime -> anything but the runtime and shared data; shared data -> anything but shared data."""
    bad = []
    for m, deps in sorted(graph.items()):
        if _top(m) == RUNTIME:
            allowed = (RUNTIME,) + SHARED_DATA
            what = "the runtime imports only itself and shared data"
        elif _top(m) in SHARED_DATA:
            allowed = SHARED_DATA
            what = "shared data imports only shared data"
        else:
            continue
        for d in sorted(deps):
            if _top(d) not in allowed:
                stage = " (a build stage)" if _top(d) in BUILD_STAGES else ""
                bad.append(f"{m} imports {d}{stage}: {what}")
    return bad


def test_the_package_is_found():
    graph = import_graph()
    assert f"{ROOT}.{RUNTIME}.gemm" in graph, "tests/package/test_imports.py looks for the runtime in the wrong place"
    assert graph[f"{ROOT}.{RUNTIME}.gemm"], "the import walk found no imports at all"


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_runtime_imports_no_build_stage():
    bad = layer_violations(import_graph())
    assert not bad, "\n".join(bad)


def test_one_bridge_from_runtime_to_models():
    """Only autoconfig.explanation imports both the runtime and a build stage
    (tools such as bench and cli excepted: they sit above everything)."""
    # model_onnx (load_onnx: import + plan + load in memory) and onnx_backend over it compose the
    # graph build stage with the executor as the CLI does; bench_model is the tool behind bench --model.
    tools = {f"{ROOT}.{m}" for m in ("cli", "bench", "bench_conv", "bench_model", "plan_compare", "__main__",
                                     "model_onnx", "onnx_backend", "sequence_model")}
    bridges = [m for m, deps in import_graph().items()
               if m not in tools and _top(m) not in (RUNTIME,)
               and any(_top(d) == RUNTIME and d != f"{ROOT}.{RUNTIME}.guard" for d in deps)
               and any(_top(d) in BUILD_STAGES for d in deps)]
    assert bridges == [f"{ROOT}.explanation"]


def test_the_walk_sees_lazy_imports_and_cycles():
    """The checker itself: a function-level import is an edge, and a cycle through it is reported."""
    graph = {"autoconfig.a": {"autoconfig.b"}, "autoconfig.b": {"autoconfig.a"}}
    assert find_cycle(graph) == ["autoconfig.a", "autoconfig.b", "autoconfig.a"]
    mods = module_files()
    assert f"{ROOT}.probe" in imports_of(f"{ROOT}.cli", mods)   # imported inside cmd_probe()


def test_the_walk_sees_the_lazy_public_names():
    """autoconfig/__init__ imports each public name's module on first use (by a string)."""
    deps = imports_of(ROOT, module_files())
    assert {f"{ROOT}.runtime.gemm", f"{ROOT}.runtime.conv", f"{ROOT}.explanation"} <= deps
