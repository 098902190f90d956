"""C++ engines: autoconfig as a CMake subproject (add_subdirectory and
FetchContent) and as an installed package (find_package), with the engine's
own spec, no Python at run time, and spec errors stopping the build."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "examples" / "cpp_engine"
ENGINE_INSTALLED = REPO / "examples" / "cpp_engine_installed"
CMAKE = shutil.which("cmake")

pytestmark = [
    pytest.mark.cpp_check,
    pytest.mark.skipif(CMAKE is None, reason="cmake not installed"),
    # Under AUTOCONFIG_MAX_ISA the Python tests re-run one portable build per
    # variant; the C++ build these tests make would be the same each time.
    pytest.mark.skipif(bool(os.environ.get("AUTOCONFIG_MAX_ISA")),
                       reason="C++ engine builds do not depend on AUTOCONFIG_MAX_ISA"),
]


def target_of_installed_build() -> str:
    """Build the C++ side for the same target as the installed wheel, so each
    CI build flavour (host, x86-64-v3, generic) is exercised from C++ too."""
    try:
        import autoconfig
        return autoconfig.build_info()["target"].split(":")[0]   # portable:x86-64-v3 -> portable
    except Exception:
        return "host"


def cmake(*args, cwd=None, check=True):
    r = subprocess.run([CMAKE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"cmake {' '.join(map(str, args))} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def configure_build(src: Path, build: Path, *defs: str):
    cmake("-S", src, "-B", build, f"-DPython_EXECUTABLE={sys.executable}", *defs)
    cmake("--build", build, "-j", "2")


def run_engine(exe: Path) -> str:
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all layers match the reference" in r.stdout
    return r.stdout


def assert_no_python_linked(exe: Path):
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("ldd not available")
    out = subprocess.run([ldd, str(exe)], capture_output=True, text=True).stdout
    assert "python" not in out.lower(), out


def test_subproject_engine(tmp_path):
    build = tmp_path / "build"
    configure_build(ENGINE, build, f"-DAUTOCONFIG_TARGET={target_of_installed_build()}")
    out = run_engine(build / "tiny_engine")
    # the engine's own spec took effect: its layers ran shape-specialized kernels
    assert "_m4_n512_k256 (specialized" in out and "_m4_n256_k512 (specialized" in out
    gen = build / "autoconfig" / "generated"
    assert list(gen.glob("*_m4_n512_k256*.cpp")), "the engine's spec did not produce its fc1 kernel"
    # its conv layers are planned into the build (conv3x3, depthwise, conv1x1), each with the model's algorithm
    conv_tu = "\n".join(p.read_text() for p in gen.glob("conv_kernels_*.cpp"))
    for layer in ("8x12x12 -> 16 3x3/1 g1", "16x12x12 -> 16 3x3/2 g16", "16x6x6 -> 32 1x1/1 g1"):
        assert f"engine_cnn_block: {layer}" in conv_tu, f"the engine's conv layer {layer} was not planned"
    assert "conv3x3+bn" in out and "depthwise/2" in out and "conv1x1" in out
    # ... and only its own: the embedded default specs were replaced
    assert not list((build / "autoconfig" / "generated").glob("*_m1024_n1024_k1024*.cpp"))
    assert_no_python_linked(build / "tiny_engine")
    check_run_acmodel(build / "run_acmodel", tmp_path)
    check_run_acmodel_int64(build / "run_acmodel", tmp_path)


def check_run_acmodel(exe: Path, tmp_path: Path):
    """The engine's .acmodel runner (autoconfig::Model, no Python) agrees with
    the Python runner on a small CNN, and a corrupted file is an error, not a crash."""
    import numpy as np
    sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))   # the runtime tests' small CNN
    from test_model_runtime import small_cnn
    path, x, ref = small_cnn(tmp_path)
    x.tofile(tmp_path / "x.bin")
    r = subprocess.run([str(exe), path, "--input", str(tmp_path / "x.bin"), "--output", str(tmp_path / "y.bin"),
                        "--profile", "--threads", "2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "output prob [2, 10]" in r.stdout and "conv1" in r.stdout and "memory: " in r.stdout
    y = np.fromfile(tmp_path / "y.bin", dtype=np.float32).reshape(2, 10)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) <= 1e-4
    try:
        import autoconfig
        np.testing.assert_allclose(y, autoconfig.load(path)(x), rtol=1e-5, atol=1e-7)
    except ImportError:
        pass
    assert_no_python_linked(exe)
    data = bytearray(Path(path).read_bytes())
    data[100] ^= 0xFF
    (tmp_path / "bad.acmodel").write_bytes(bytes(data))
    r = subprocess.run([str(exe), str(tmp_path / "bad.acmodel")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr, r.stdout + r.stderr


def check_run_acmodel_int64(exe: Path, tmp_path: Path):
    """A transformer encoder's int64 inputs (token ids and attention mask, with
    padding) from raw int64 files: the C++ runner agrees with the Python runner
    of the same .acmodel, and with onnxruntime where it is installed."""
    import numpy as np
    onnx = pytest.importorskip("onnx")
    sys.path.insert(0, str(Path(__file__).parents[1] / "graph"))   # the graph tests' tiny encoder
    import transformer_cases as tc
    from autoconfig.cli import main
    onnx.save(tc.encoder(layers=1, max_len=16), str(tmp_path / "enc.onnx"))
    assert main(["import-onnx", str(tmp_path / "enc.onnx"), "-o", str(tmp_path),
                 "--input-shape", "input_ids=2,7", "--input-shape", "attention_mask=2,7"]) == 0
    path = tmp_path / "enc.acmodel"
    feeds = tc.feeds(2, 7, pad=2)
    names = ["input_ids", "attention_mask"]
    for n in names:
        feeds[n].tofile(tmp_path / f"{n}.bin")
    r = subprocess.run([str(exe), str(path), *sum((["--input", str(tmp_path / f"{n}.bin")] for n in names), []),
                        "--output", str(tmp_path / "h.bin")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "input  input_ids [2, 7] int64" in r.stdout and "output last_hidden_state [2, 7, 32]" in r.stdout
    y = np.fromfile(tmp_path / "h.bin", dtype=np.float32).reshape(2, 7, 32)
    import autoconfig
    np.testing.assert_allclose(y, autoconfig.load(str(path))(*(feeds[n] for n in names)), rtol=1e-5, atol=1e-6)
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
        ref = sess.run(None, feeds)[0]
        assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) <= 1e-4
    except ImportError:
        pass
    # a float file where the model wants int64 is refused by its size, naming the input
    np.zeros((2, 7), np.float32).tofile(tmp_path / "f.bin")
    r = subprocess.run([str(exe), str(path), "--input", str(tmp_path / "f.bin"), "--input",
                        str(tmp_path / "attention_mask.bin")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot read input 0 (int64)" in r.stderr, r.stdout + r.stderr
    # no --input: ids and mask all ones, a valid input for any vocabulary
    r = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "output last_hidden_state [2, 7, 32]" in r.stdout, r.stdout + r.stderr


def test_fetchcontent_engine(tmp_path):
    build = tmp_path / "build"
    configure_build(ENGINE, build, "-DTINY_ENGINE_USE_FETCHCONTENT=ON",
                    f"-DAUTOCONFIG_TARGET={target_of_installed_build()}")
    run_engine(build / "tiny_engine")


def test_installed_package_find_package(tmp_path):
    prefix = tmp_path / "prefix"
    configure_build(REPO, tmp_path / "lib", f"-DCMAKE_INSTALL_PREFIX={prefix}",
                    f"-DAUTOCONFIG_SPECS={ENGINE / 'specs'}", "-DAUTOCONFIG_DEFAULT_SPECS=OFF",
                    f"-DAUTOCONFIG_TARGET={target_of_installed_build()}")
    cmake("--install", tmp_path / "lib")
    assert (prefix / "include" / "autoconfig" / "autoconfig.h").is_file()
    assert (prefix / "share" / "autoconfig" / "plans.json").is_file()
    assert (prefix / "lib" / "cmake" / "autoconfig" / "autoconfigConfig.cmake").is_file()
    build = tmp_path / "engine"
    cmake("-S", ENGINE_INSTALLED, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}")
    cmake("--build", build)
    run_engine(build / "tiny_engine")
    assert_no_python_linked(build / "tiny_engine")


def test_engine_spec_error_stops_configure(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (ENGINE / "specs" / "tiny_engine.yaml").read_text().replace("{M: 4, N: 512, K: 256}", "{M: 4, N: 512, K: -256}")
    (specs / "tiny_engine.yaml").write_text(text)
    r = cmake("-S", ENGINE, "-B", tmp_path / "build", f"-DPython_EXECUTABLE={sys.executable}",
              f"-DAUTOCONFIG_SPECS={specs}", "-DAUTOCONFIG_TARGET=generic", check=False)
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "tiny_engine.yaml:" in err and "kernels[0].shapes[0].K" in err and "positive integer" in err


def test_engine_deeply_nested_spec_names_the_file(tmp_path):
    """A spec nested 2000 levels deep once stopped the build with 'maximum
    recursion depth exceeded' and no file: it gets the usual file:line: key: reason."""
    specs = tmp_path / "specs"
    specs.mkdir()
    deep = "[" * 2000 + "]" * 2000
    (specs / "deep.yaml").write_text(f"version: 1\nkernels:\n  - {{name: k, op: matmul, dtype: float32, "
                                     f"shapes: [{{M: {deep}, N: 1, K: 1}}]}}\n")
    r = cmake("-S", ENGINE, "-B", tmp_path / "build", f"-DPython_EXECUTABLE={sys.executable}",
              f"-DAUTOCONFIG_SPECS={specs}", "-DAUTOCONFIG_TARGET=generic", check=False)
    assert r.returncode != 0
    err = " ".join((r.stdout + r.stderr).split())     # CMake wraps long messages
    assert f"{specs / 'deep.yaml'}:3: kernels[0].shapes[0].M[0][0]" in err, err[-3000:]
    assert "nested more than 32 levels deep" in err and "recursion" not in err


def test_missing_pyyaml_is_explained(tmp_path):
    """A Python without PyYAML: configure stops and says what to install."""
    venv = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("venv not available")
    py = venv / "bin" / "python"
    r = cmake("-S", ENGINE, "-B", tmp_path / "build", f"-DPython_EXECUTABLE={py}", check=False)
    assert r.returncode != 0
    assert "PyYAML" in r.stdout + r.stderr and "pip install pyyaml" in r.stdout + r.stderr
