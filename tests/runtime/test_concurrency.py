"""Concurrent Python callers on the shared thread pool (tests/runtime/concurrency_stress.py):
8 threads mixing matmul, gemm, one-off conv2d of every algorithm and
prepared layers, with thread counts 1/2/3/None; every result must equal the
single-caller result bit for bit. The stress runs in a child process so a hang
(the timeout) or a crash (the exit status) fails this test.
AUTOCONFIG_STRESS_SECONDS sets its length (default 10 s; >= 60 s to soak)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SECONDS = float(os.environ.get("AUTOCONFIG_STRESS_SECONDS", "10"))
SCRIPT = Path(__file__).with_name("concurrency_stress.py")


def test_eight_callers_mixed_ops_and_thread_counts():
    r = subprocess.run([sys.executable, str(SCRIPT), str(SECONDS), "8"], capture_output=True, text=True,
                       timeout=SECONDS * 4 + 120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"exit {r.returncode}:\n{out[-4000:]}"
    m = re.search(r"^(\d+) passed, (\d+) failed$", r.stdout, re.M)
    assert m and int(m.group(2)) == 0, out[-4000:]
    assert int(m.group(1)) > 100, f"too few calls to say anything:\n{out}"
