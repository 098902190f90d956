"""Load the compiled extension and refuse to run on a CPU lacking its ISA.

The extension's module init is compiled for the baseline ISA; only kernel
functions use the wider ISA, and none runs before this check. Tests simulate
an older CPU with AUTOCONFIG_FAKE_CPU_FEATURES (read only by the check).
"""
from __future__ import annotations

import importlib

# The extension is installed next to the package's __init__ (autoconfig/_autoconfig_ext).
_EXT_NAME = __package__.rpartition(".")[0] + "._autoconfig_ext"

try:
    ext = importlib.import_module(_EXT_NAME)
except ModuleNotFoundError as e:  # source tree without a build: generator-only use
    if e.name != _EXT_NAME:
        raise
    ext = None

if ext is not None:
    _why = ext.isa_error()   # empty when a variant of this build runs here
    if _why:
        raise ImportError(_why)


def require_ext():
    """The extension, or a RuntimeError saying how to get it."""
    if ext is None:
        raise RuntimeError("autoconfig's compiled kernels are not built in this tree: "
                           "install the package (pip install .) to use the runtime API")
    return ext
