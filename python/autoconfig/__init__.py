"""autoconfig: host-tuned CPU kernels generated ahead of time.

Runtime API (needs the compiled extension, i.e. an installed wheel):
    matmul, gemm, conv2d, prepare_conv2d, to_blocked, BlockedTensor, host, explain, build_info
Generator modules (need only PyYAML): spec, probe, models, codegen, generate.

The generator runs on any CPU. The first use of the runtime API (any name
above, ``autoconfig._ext`` or ``import autoconfig.api``) loads the extension
and checks that this CPU has the ISA the kernels were generated for, raising
ImportError otherwise (never SIGILL).
"""
__version__ = "0.1.0"

_API = ("matmul", "gemm", "host", "explain", "build_info", "ACTIVATIONS")
_CONV_API = ("conv2d", "prepare_conv2d", "PreparedConv2d", "CONV_ALGORITHMS", "BlockedTensor", "to_blocked",
             "block_size", "layout_conversions")
__all__ = list(_API + _CONV_API)


def __getattr__(name):
    # Loaded on first use, not at import: the generator (spec, probe, plan)
    # must run without NumPy and on a CPU lacking the build's ISA, where
    # loading the kernels raises the guard's ImportError.
    if name == "_ext":
        from ._isa_guard import ext   # raises ImportError on a CPU lacking the build's ISA
        globals()["_ext"] = ext
        return ext
    if name in _API or name in _CONV_API:
        from . import api, conv_api
        value = getattr(api if name in _API else conv_api, name)
        globals()[name] = value      # later lookups skip this hook
        return value
    raise AttributeError(f"module 'autoconfig' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API + _CONV_API))
