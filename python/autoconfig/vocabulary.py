"""Operator vocabularies: the names every stage shares (spec, models, codegen, runtime).

Plain data at the bottom of the package: no imports from autoconfig. The
order of each tuple is part of the interface where noted (it matches an enum
or a bit mask in cpp_runtime).
"""
from typing import Dict, Optional, Tuple

# GEMM epilogue activations, in the order of autoconfig::Activation.
ACTIVATIONS: Tuple[str, ...] = ("none", "relu", "relu6", "gelu_tanh", "gelu_erf")
# Names the Python API also accepts for them.
ACTIVATION_ALIASES: Dict[Optional[str], str] = {None: "none", "gelu": "gelu_erf"}
# Activations a conv2d epilogue applies (a clip may follow them).
CONV_ACTIVATIONS: Tuple[str, ...] = ("none", "relu", "relu6")

# conv2d algorithms, in the bit order of Conv2dArgs::algorithms.
CONV_ALGORITHMS: Tuple[str, ...] = ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")
# conv2d activation layouts, in the order of autoconfig::ConvLayout.
CONV_LAYOUTS: Tuple[str, ...] = ("nchw", "blocked")
