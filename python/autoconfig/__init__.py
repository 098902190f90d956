"""autoconfig: host-tuned CPU kernels generated ahead of time.

Runtime API (needs the compiled extension, i.e. an installed wheel; runtime/):
    matmul, gemm, conv2d, prepare_conv2d, to_blocked, BlockedTensor, host, explain, build_info,
    load_onnx (an ONNX model imported and planned in memory, loaded into the executor; needs onnx)
Generator modules (need only PyYAML): spec, probe, models, codegen, generate.

The generator runs on any CPU. The first use of the runtime API (any name
above, ``autoconfig._ext`` or ``import autoconfig.runtime.gemm``) loads the extension
and checks that this CPU has the ISA the kernels were generated for, raising
ImportError otherwise (never SIGILL).
"""
import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it. The runtime API imports NumPy
# and the generator must run without it, so these load on first use.
_EXPORTS = {
    "matmul": "runtime.gemm", "gemm": "runtime.gemm",
    "host": "runtime.info", "build_info": "runtime.info",
    "explain": "explanation",
    "conv2d": "runtime.conv", "prepare_conv2d": "runtime.conv", "PreparedConv2d": "runtime.conv",
    "BlockedTensor": "runtime.blocked", "to_blocked": "runtime.blocked", "block_size": "runtime.blocked",
    "layout_conversions": "runtime.blocked",
    "ACTIVATIONS": "vocabulary", "CONV_ALGORITHMS": "vocabulary",
    "load": "runtime.model", "Model": "runtime.model",
    "load_onnx": "model_onnx", "SequenceModel": "sequence_model",
    "attention": "runtime.attention", "attention_choice": "runtime.attention",
    "gemm_layernorm": "runtime.attention", "gemm_layernorm_choice": "runtime.attention",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    # Loaded on first use, not at import: the generator (spec, probe, plan)
    # must run without NumPy and on a CPU lacking the build's ISA, where
    # loading the kernels raises the guard's ImportError.
    if name == "_ext":
        from .runtime.guard import ext   # raises ImportError on a CPU lacking the build's ISA
        globals()["_ext"] = ext
        return ext
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autoconfig' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value      # later lookups skip this hook
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
