"""Model compiler, build stage: ONNX -> IR -> passes -> plan -> .acmodel.

    ir          Tensor, Node, Graph (dataclasses, readable printing)
    onnx_import import_onnx(): ONNX -> IR in the executor vocabulary (the only user of `onnx`)
    converters  the table of ONNX op converters, by family, versioned by opset
    shapes      shape rules of the executor ops
    passes      graph rewrites, one per file, ordered by passes.PASSES
    planner     per node: algorithm, threads, predicted time and why; the arena by liveness
    acmodel     the .acmodel writer and a reader (FORMAT.md)
    layer_spec  the conv/GEMM layers as a kernels_spec YAML

Nothing here imports the runtime extension.
"""
from .ir import EXECUTOR_OPS, Graph, Node, Tensor  # noqa: E402,F401
from .onnx_import import ImportError_, import_onnx  # noqa: E402,F401  (onnx itself is imported on first use)
from .passes import PASSES, run_passes  # noqa: E402,F401
