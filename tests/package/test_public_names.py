"""No public name lost: autoconfig exports what it exported before the runtime/ split."""
from __future__ import annotations

# dir(autoconfig) public names on 7506f3a (before runtime/), where each lived then.
PUBLIC_BEFORE_RUNTIME_SPLIT = (
    "ACTIVATIONS", "BlockedTensor", "CONV_ALGORITHMS", "PreparedConv2d", "block_size", "build_info", "conv2d",
    "explain", "gemm", "host", "layout_conversions", "matmul", "prepare_conv2d", "to_blocked",
)


def test_every_public_name_is_still_exported(ac):
    names = {n for n in dir(ac) if not n.startswith("_")}
    assert set(PUBLIC_BEFORE_RUNTIME_SPLIT) <= names
    assert set(PUBLIC_BEFORE_RUNTIME_SPLIT) <= set(ac.__all__)
    for n in PUBLIC_BEFORE_RUNTIME_SPLIT:
        assert getattr(ac, n) is not None, n


def test_exported_values_are_unchanged(ac):
    assert ac.ACTIVATIONS == ("none", "relu", "relu6", "gelu_tanh", "gelu_erf")
    assert ac.CONV_ALGORITHMS == ("direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise")
    assert callable(ac.explain) and ac.explain.__module__ == "autoconfig.explanation"
    assert ac.__version__ == "0.1.0"
