"""Load the compiled extension and refuse to run on a CPU lacking its ISA.

The extension's module init is compiled for the baseline ISA; only kernel
functions use the wider ISA, and none runs before this check. Tests simulate
an older CPU with AUTOCONFIG_FAKE_CPU_FEATURES (read only by the check).
"""
from __future__ import annotations

import importlib

try:
    ext = importlib.import_module(__package__ + "._autoconfig_ext")
except ModuleNotFoundError as e:  # source tree without a build: generator-only use
    if e.name != __package__ + "._autoconfig_ext":
        raise
    ext = None

if ext is not None:
    _why = ext.isa_error()   # empty when a variant of this build runs here
    if _why:
        raise ImportError(_why)
