"""autoconfig: host-tuned CPU kernels generated ahead of time.

Runtime API (needs the compiled extension, i.e. an installed wheel):
    matmul, gemm, conv2d, prepare_conv2d, to_blocked, BlockedTensor, host, explain, build_info
Generator modules (need only PyYAML): spec, probe, models, codegen, generate.

Importing the package checks that this CPU has the ISA the kernels were
generated for and raises ImportError otherwise (never SIGILL).
"""
from ._isa_guard import ext as _ext  # noqa: F401  (raises ImportError on a CPU lacking the build's ISA)

__version__ = "0.1.0"

_API = ("matmul", "gemm", "host", "explain", "build_info", "ACTIVATIONS")
_CONV_API = ("conv2d", "prepare_conv2d", "PreparedConv2d", "CONV_ALGORITHMS", "BlockedTensor", "to_blocked",
             "block_size", "layout_conversions")
_MODEL_API = ("load", "Model")
__all__ = list(_API + _CONV_API + _MODEL_API)


def __getattr__(name):
    # The runtime API imports NumPy; the generator must run without it.
    if name in _API or name in _CONV_API:
        from . import api, conv_api
        value = getattr(api if name in _API else conv_api, name)
        globals()[name] = value      # later lookups skip this hook
        return value
    if name in _MODEL_API:
        from . import model_runtime
        value = getattr(model_runtime, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autoconfig' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API + _CONV_API + _MODEL_API))
