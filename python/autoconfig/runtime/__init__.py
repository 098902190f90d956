"""The runtime API: NumPy and the compiled extension, nothing of the generator.

    guard      loads the extension; refuses a CPU lacking the build's ISA
    checks     public argument checks (each error names its argument)
    memory     what the kernels can read or write in place: strides, overlap, copies
    gemm       matmul, gemm
    attention  attention (fused or unfused) and gemm_layernorm (GEMM + residual + LayerNorm)
    conv_args  conv2d's layer geometry, epilogue and algorithm arguments
    blocked    the NCHW[B]c activation layout (BlockedTensor)
    conv       conv2d and prepared conv layers
    info       host(), plans(), build_info(): what this build was planned for

Modules here import only each other and the package's shared data (plan,
profile, vocabulary); autoconfig.explanation is the one bridge to the models
(tests/package/test_imports.py keeps it so). This __init__ imports nothing: the
generator imports the guard without NumPy.
"""
