"""host(), explain(), build facts and the ISA guard."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_host_profile(ac):
    h = ac.host()
    info = ac.build_info()
    assert h.isa == info["isa"]
    assert h.vector_bits in (128, 256, 512)
    assert h.peak_gflops_per_core > 0
    assert h.cache(1) is not None and h.cache(1).size_bytes >= 8 << 10


def test_explain_specialized_and_generic(ac):
    e = ac.explain("matmul", M=64, N=64, K=64)
    assert e.specialized and "_m64_n64_k64" in e.kernel
    assert "mr" in e.plan.params and e.plan.predicted_s > 0
    text = str(e)
    assert "shape-specialized" in text and "kc" in text
    g = ac.explain("matmul", M=61, N=67, K=71, threads=1)
    assert not g.specialized and g.kernel.endswith("_generic") and g.threads == 1
    assert any("generic kernel runs with kc=" in n for n in g.notes)


def test_every_compiled_plan_is_traceable(ac):
    from autoconfig.runtime.info import plans
    ps = plans()
    assert any(p.shape is None for p in ps)
    for p in ps:
        for name, param in p.params.items():
            assert param.why, f"{p.kernel}.{name} has no reason"


def _runs_on(variant, fake):
    return all(f in fake.split(",") for f in variant["required_features"])


_MATMUL = "import numpy as np; a = np.ones((2, 2), np.float32); "


# The guard runs on the runtime API's first use, not at `import autoconfig`
# (issue 12: the generator tools must work on any CPU): every way into the
# kernels raises its ImportError.
@pytest.mark.parametrize("fake", ["sse2,sse4_2", "avx2,fma,sse2"])
@pytest.mark.parametrize("code", [
    _MATMUL + "import autoconfig; autoconfig.matmul(a, a)",
    _MATMUL + "from autoconfig import conv2d",
    "import autoconfig.runtime.gemm",
    "import autoconfig; autoconfig.build_info()",
    "import autoconfig; autoconfig._ext",
])
def test_isa_guard_refuses_older_cpu(ac, fake, code):
    variants = ac.build_info()["variants"]
    if any(_runs_on(v, fake) for v in variants):
        pytest.skip(f"a variant of this build runs on {fake}")
    # the message names what the most modest variant needs
    missing = [f for f in variants[-1]["required_features"] if f not in fake.split(",")]
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES=fake)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 1, r.stderr
    assert "ImportError" in r.stderr
    for f in missing:
        assert f in r.stderr
    assert "AUTOCONFIG_TARGET" in r.stderr


def _older_cpu(ac) -> str:
    fake = "sse2"
    if any(_runs_on(v, fake) for v in ac.build_info()["variants"]):
        pytest.skip(f"a variant of this build runs on {fake}")
    return fake


@pytest.mark.parametrize("args", [
    ("-m", "autoconfig.spec"),
    ("-m", "autoconfig", "probe", "--target", "x86-64-v4", "--json"),
    ("-m", "autoconfig", "probe", "--quick"),
    ("-m", "autoconfig", "plan"),
    ("-m", "autoconfig", "plan", "--target", "armv8-neon", "--explain"),   # with plan_compare's table
    ("-c", "import autoconfig; print(autoconfig.__version__)"),
])
def test_generator_tools_run_on_older_cpu(ac, args):
    """spec, probe and plan load no kernels: a CPU lacking the build's ISA runs them."""
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES=_older_cpu(ac))
    r = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "ImportError" not in r.stderr


def test_generate_runs_on_older_cpu(ac, tmp_path):
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES=_older_cpu(ac))
    r = subprocess.run([sys.executable, "-m", "autoconfig.generate", "--out", str(tmp_path), "--target", "x86-64-v3"],
                       env=env, capture_output=True, text=True, timeout=600, cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr
    assert "generated" in r.stdout and (tmp_path / "plans.json").exists()


def test_bench_refuses_older_cpu_with_the_guard_message(ac):
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES=_older_cpu(ac))
    r = subprocess.run([sys.executable, "-m", "autoconfig", "bench", "--shape", "8x8x8", "--repeat", "1",
                        "--no-torch"], env=env, capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("autoconfig: ") and "cannot run here" in r.stderr and "AUTOCONFIG_TARGET" in r.stderr
    assert "Traceback" not in r.stderr


def test_isa_guard_accepts_superset(ac):
    feats = ",".join(ac.build_info()["required_features"] + ["sse2"])
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES=feats)
    r = subprocess.run([sys.executable, "-c", "import autoconfig, numpy as np; "
                        "print(autoconfig.matmul(np.ones((2,2),np.float32), np.ones((2,2),np.float32))[0,0])"],
                       env=env, capture_output=True, text=True, cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2.0"


def test_variant_selection_follows_cpu_and_cap(ac):
    """Each variant is chosen when the (faked) CPU has exactly its features,
    and AUTOCONFIG_MAX_ISA caps the choice among those the real CPU runs.
    Kernels run only for variants this CPU can execute: a faked AVX-512 CPU on
    an AVX2 machine selects the AVX-512 variant, whose code would fault here."""
    info = ac.build_info()
    variants = info["variants"]
    real = set(info["cpu_features"])
    assert sum(v["active"] for v in variants) == 1
    select = "import autoconfig; print(autoconfig.build_info()['isa'])"
    run_kernel = "; import numpy as np; a = np.ones((5, 7), np.float32); print(autoconfig.matmul(a, a.T)[0, 0])"

    def run(code, **env_changes):
        env = dict(os.environ)
        for k, v in env_changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              cwd=os.path.dirname(__file__))

    for v in variants:
        runs_here = set(v["required_features"]) <= real
        feats = ",".join(v["required_features"] + ["sse2"])
        r = run(select + (run_kernel if runs_here else ""), AUTOCONFIG_FAKE_CPU_FEATURES=feats,
                AUTOCONFIG_MAX_ISA=None)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ([v["isa"], "7.0"] if runs_here else [v["isa"]])
        if v["level"] >= 2:
            r = run(select + run_kernel, AUTOCONFIG_MAX_ISA=f"v{v['level']}", AUTOCONFIG_FAKE_CPU_FEATURES=None)
            allowed = [w for w in variants if w["level"] <= v["level"] and set(w["required_features"]) <= real]
            assert r.returncode == 0, r.stderr
            assert r.stdout.split() == [allowed[0]["isa"], "7.0"]


def test_bad_max_isa_value_is_explained(ac):
    env = dict(os.environ, AUTOCONFIG_MAX_ISA="v9000")
    # raised where the kernels are loaded (the runtime API's first use), not at `import autoconfig`
    r = subprocess.run([sys.executable, "-c", "import autoconfig; autoconfig.build_info()"], env=env,
                       capture_output=True, text=True, cwd=os.path.dirname(__file__))
    assert r.returncode == 1 and "AUTOCONFIG_MAX_ISA='v9000' is not one of v2, v3, v4" in r.stderr
