"""Python threads calling kernels at once (the extension releases the GIL for
every call): each result equals the one computed alone. A short check; the
concurrency stress of issue 12 runs longer."""
from __future__ import annotations

import threading

import numpy as np


def test_python_threads_calling_kernels_concurrently(ac):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((96, 80), dtype=np.float32), rng.standard_normal((80, 72), dtype=np.float32)
    x = rng.standard_normal((2, 16, 17, 19), dtype=np.float32)
    w = rng.standard_normal((24, 8, 3, 5), dtype=np.float32)
    kw = dict(strides=(2, 1), pads=(1, 2, 0, 1), dilations=(1, 2), groups=2)
    layer = ac.prepare_conv2d(w, input_shape=(16, 17, 19), layout="blocked", **kw)
    want = {"matmul": ac.matmul(a, b, threads=1), "gemm": ac.gemm(a, b.T.copy(), trans_b=True, threads=1),
            "conv2d": ac.conv2d(x, w, threads=1, **kw), "prepared": layer(x, threads=1).to_nchw()}
    calls = {"matmul": lambda t: ac.matmul(a, b, threads=t),
             "gemm": lambda t: ac.gemm(a, b.T.copy(), trans_b=True, threads=t),
             "conv2d": lambda t: ac.conv2d(x, w, threads=t, **kw),
             "prepared": lambda t: layer(x, threads=t).to_nchw()}
    wrong, errors = [], []

    def caller(k):
        try:
            for i in range(40):
                op = list(calls)[(k + i) % len(calls)]
                y = calls[op]([1, 2, 3, None][(k + i) % 4])
                if not np.allclose(y, want[op], atol=1e-4, rtol=1e-4):
                    wrong.append((k, i, op))
        except Exception as e:  # reported below: a thread's exception would otherwise vanish
            errors.append(repr(e))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a calling thread hangs"
    assert not errors and not wrong, (errors, wrong)
