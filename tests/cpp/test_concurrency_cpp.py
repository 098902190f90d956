"""The thread pool under concurrent callers, from C++: tests/cpp/stress built
with AddressSanitizer + UndefinedBehaviorSanitizer and with ThreadSanitizer,
run with 4 caller threads mixing GEMM, one-off and prepared conv2d calls and
per-call thread counts 1/2/3/0. Every result must equal, bit for bit, the
result of the same call made by one caller alone, and the sanitizers must
report nothing (a report makes the program exit non-zero).
AUTOCONFIG_STRESS_SECONDS sets the run time (default 8 s per sanitizer).
Needs cmake and a compiler with the sanitizer runtimes (gcc: libasan, libtsan)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulation import CMAKE, REPO, _cmake

SECONDS = float(os.environ.get("AUTOCONFIG_STRESS_SECONDS", "8"))

pytestmark = [pytest.mark.cpp_check, pytest.mark.skipif(CMAKE is None, reason="cmake not installed")]


def build(sanitizer: str, root: Path) -> Path:
    out = root / sanitizer
    # generic: portable C++ kernels, the same pool and drivers as every ISA, and a quick build.
    _cmake("-S", str(REPO / "tests" / "cpp" / "stress"), "-B", str(out), f"-DAUTOCONFIG_STRESS_SANITIZER={sanitizer}",
           "-DAUTOCONFIG_TARGET=generic", f"-DPython_EXECUTABLE={sys.executable}")
    _cmake("--build", str(out), "-j", "2")
    return out / "concurrency_stress"


@pytest.mark.parametrize("sanitizer", ["address", "thread"])
def test_concurrent_callers_clean_under_sanitizer(sanitizer, tmp_path_factory):
    exe = build(sanitizer, tmp_path_factory.mktemp("stress"))
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66", ASAN_OPTIONS="halt_on_error=1 exitcode=66",
               UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1")
    r = subprocess.run([str(exe), "--seconds", str(SECONDS), "--callers", "4"], capture_output=True, text=True,
                       timeout=SECONDS * 10 + 120, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"exit {r.returncode}:\n{out[-6000:]}"
    assert "Sanitizer" not in out, out[-6000:]
    m = re.search(r"^(\d+) passed, (\d+) failed$", r.stdout, re.M)
    assert m and int(m.group(2)) == 0, out[-3000:]
    assert int(m.group(1)) > 50, f"too few calls to say anything:\n{out}"
