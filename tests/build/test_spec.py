"""Tests for the operator-spec loader (autoconfig.spec)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autoconfig import spec
from autoconfig.spec import GemmShape, OpSpec, SpecError

HEADER = "version: 1\nkernels:\n"


def kernel(body: str) -> str:
    """A file with one kernel whose mapping starts on line 3."""
    return HEADER + textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "  ")


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = kernel("""
    - name: k
      op: matmul
      dtype: float32
""")

# (id, file text, key_path, line, reason fragment)
MALFORMED = [
    ("empty-file", "", "<document>", 1, "empty spec file"),
    ("comments-only", "# nothing here\n\n", "<document>", 1, "empty spec file"),
    ("top-level-list", "- version: 1\n", "<document>", 1,
     "expected a mapping with keys 'version' and 'kernels' at the top level, got a list"),
    ("yaml-syntax", "version: 1\nkernels: [\n  {name: a,\n", "<document>", 4, "YAML syntax error"),
    ("yaml-tab", "version: 1\nkernels:\n\t- name: a\n", "<document>", 3, "YAML syntax error"),
    ("two-documents", "version: 1\nkernels: []\n---\nversion: 1\n", "<document>", 3,
     "expected a single document"),
    ("missing-version", "kernels:\n  - {name: a, op: matmul, dtype: float32}\n", "version", 1,
     "missing required key 'version'"),
    ("missing-kernels", "version: 1\n", "kernels", 1, "missing required key 'kernels'"),
    ("wrong-version", "kernels: []\nversion: 2\n", "version", 2, "unsupported spec version 2; supported: 1"),
    ("version-string", "version: '1'\nkernels: []\n", "version", 1, "expected the integer 1, got string '1'"),
    ("version-bool", "version: true\nkernels: []\n", "version", 1, "got boolean true"),
    ("unknown-top-key", "version: 1\nkernel:\n  - {name: a}\n", "kernel", 2,
     "unknown key 'kernel'; allowed: kernels, version; did you mean 'kernels'?"),
    ("empty-kernels", "version: 1\nkernels: []\n", "kernels", 2,
     "expected a non-empty list of kernels (mappings), got an empty list"),
    ("kernels-not-list", "version: 1\nkernels:\n  name: a\n", "kernels", 3,
     "expected a list of kernels (mappings), got a mapping"),
    ("kernel-not-mapping", HEADER + "  - square\n", "kernels[0]", 3, "expected a mapping, got string 'square'"),
    ("missing-name", kernel("""
        - op: matmul
          dtype: float32
     """), "kernels[0].name", 3, "missing required key 'name'"),
    ("missing-dtype", kernel("""
        - name: k
          op: matmul
     """), "kernels[0].dtype", 3, "missing required key 'dtype'"),
    ("unknown-kernel-key", kernel("""
        - name: k
          op: matmul
          dtype: float32
          actvations: [relu]
     """), "kernels[0].actvations", 6,
     "unknown key 'actvations'; allowed: activations, bias, dtype, name, op, residual, shapes, threads, tolerance; "
     "did you mean 'activations'?"),
    ("duplicate-key", kernel("""
        - name: k
          op: matmul
          dtype: float32
          op: gemm
     """), "kernels[0].op", 6, "duplicate key 'op' (first at line 4)"),
    ("bad-name", kernel("""
        - name: 3d-gemm
          op: matmul
          dtype: float32
     """), "kernels[0].name", 3, "expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got string '3d-gemm'"),
    ("name-int", kernel("""
        - name: 42
          op: matmul
          dtype: float32
     """), "kernels[0].name", 3, "got 42"),
    ("unknown-op", kernel("""
        - name: k
          op: conv3d
          dtype: float32
     """), "kernels[0].op", 4, "unknown op 'conv3d'; allowed: conv2d, gemm, matmul"),
    ("unknown-dtype", kernel("""
        - name: k
          op: matmul
          dtype: float16
     """), "kernels[0].dtype", 5, "unknown dtype 'float16'; allowed: float32"),
    ("unknown-activation", kernel("""
        - name: k
          op: matmul
          dtype: float32
          activations: [none, swish]
     """), "kernels[0].activations[1]", 6,
     "unknown activation 'swish'; allowed: none, relu, relu6, gelu_tanh, gelu_erf"),
    ("duplicate-activation", kernel("""
        - name: k
          op: matmul
          dtype: float32
          activations:
            - relu
            - none
            - relu
     """), "kernels[0].activations[2]", 9, "duplicate activation 'relu' (same as activations[0])"),
    ("activations-scalar", kernel("""
        - name: k
          op: matmul
          dtype: float32
          activations: relu
     """), "kernels[0].activations", 6, "expected a list of activations"),
    ("empty-activations", kernel("""
        - name: k
          op: matmul
          dtype: float32
          activations: []
     """), "kernels[0].activations", 6, "expected a non-empty list"),
    ("bias-string", kernel("""
        - name: k
          op: matmul
          dtype: float32
          bias: "yes"
     """), "kernels[0].bias", 6, "expected a boolean (true or false), got string 'yes'"),
    ("residual-int", kernel("""
        - name: k
          op: matmul
          dtype: float32
          residual: 1
     """), "kernels[0].residual", 6, "expected a boolean (true or false), got 1"),
    ("threads-zero", kernel("""
        - name: k
          op: matmul
          dtype: float32
          threads: [1, 0]
     """), "kernels[0].threads[1]", 6, "expected a positive integer, got 0"),
    ("threads-duplicate", kernel("""
        - name: k
          op: matmul
          dtype: float32
          threads: [2, 2]
     """), "kernels[0].threads[1]", 6, "duplicate thread count 2"),
    ("M-bool", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: true, N: 64, K: 64}
     """), "kernels[0].shapes[0].M", 7, "expected a positive integer, got boolean true"),
    ("M-float", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64.0, N: 64, K: 64}
     """), "kernels[0].shapes[0].M", 7, "expected a positive integer, got float 64.0"),
    ("N-string", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64, N: "64", K: 64}
     """), "kernels[0].shapes[0].N", 7, "expected a positive integer, got string '64'"),
    ("K-negative", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - M: 64
              N: 64
              K: -3
     """), "kernels[0].shapes[0].K", 9, "expected a positive integer, got -3"),
    ("K-null", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - M: 64
              N: 64
              K:
     """), "kernels[0].shapes[0].K", 9, "got an empty value (null)"),
    ("M-too-large", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64, N: 64, K: 64}
            - {M: 2147483648, N: 64, K: 64}
     """), "kernels[0].shapes[1].M", 8, "expected a positive integer <= 2147483647"),
    ("shape-missing-K", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64, N: 64}
     """), "kernels[0].shapes[0].K", 7, "missing required key 'K'"),
    ("shape-unknown-key", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64, N: 64, K: 64, m: 3}
     """), "kernels[0].shapes[0].m", 7, "unknown key 'm'; allowed: K, M, N; did you mean 'M'?"),
    ("trans-on-matmul", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 64, N: 64, K: 64, trans_a: false}
     """), "kernels[0].shapes[0].trans_a", 7, "'trans_a' is only allowed when op is gemm"),
    ("trans-not-bool", kernel("""
        - name: k
          op: gemm
          dtype: float32
          shapes:
            - {M: 64, N: 64, K: 64, trans_b: 1}
     """), "kernels[0].shapes[0].trans_b", 7, "expected a boolean (true or false), got 1"),
    ("shape-not-mapping", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - [64, 64, 64]
     """), "kernels[0].shapes[0]", 7, "expected a mapping, got a list"),
    ("duplicate-shape", kernel("""
        - name: k
          op: gemm
          dtype: float32
          shapes:
            - {M: 64, N: 32, K: 16}
            - {M: 8, N: 8, K: 8}
            - {M: 64, N: 32, K: 16, trans_a: false}
     """), "kernels[0].shapes[2]", 9, "duplicate shape M=64, N=32, K=16 (same as shapes[0])"),
    ("operand-too-large", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: 2147483647, N: 2147483647, K: 1}
     """), "kernels[0].shapes[0]", 7, "operand C (M x N = 2147483647 x 2147483647)"),
    ("operand-beyond-address-space", kernel("""
        - name: k
          op: gemm
          dtype: float32
          shapes:
            - {M: 16777216, N: 16777216, K: 1}
     """), "kernels[0].shapes[0]", 7, "operand C (M x N = 16777216 x 16777216) would take 1125899906842624 "
                                     "bytes; the limit is 2**48"),
    # PyYAML composes recursively: 2000 levels used to raise RecursionError.
    ("nested-2000-flow", kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes:
            - {M: %s, N: 1, K: 1}
     """) % ("[" * 2000 + "]" * 2000), "kernels[0].shapes[0].M[0][0]...", 7,
     "YAML nested more than 32 levels deep"),
    ("nested-2000-block", HEADER + "".join("  " * i + "  - a:\n" for i in range(2000)) + "  " * 2000 + "  1\n",
     "kernels[0].a[0].a[0].a...", 18, "YAML nested more than 32 levels deep"),
    ("nested-5000-one-line", "{" * 5000 + "}" * 5000, "<key>.<key>.<key>.<key>.<key>.<key>.<key>...", 1,
     "YAML nested more than 32 levels deep"),
    ("duplicate-name-in-file", kernel("""
        - {name: a, op: matmul, dtype: float32}
        - {name: b, op: matmul, dtype: float32}
        - {name: a, op: gemm, dtype: float32}
     """), "kernels[2].name", 5, "duplicate kernel name 'a' (first defined at line 3)"),
    ("error-in-third-kernel", kernel("""
        - {name: a, op: matmul, dtype: float32}
        - {name: b, op: matmul, dtype: float32}
        - name: c
          op: matmul
          dtype: float32
          shapes:
            - {M: 1, N: 2, K: 3}
            - {M: 1, N: 2, K: 0}
     """), "kernels[2].shapes[1].K", 10, "expected a positive integer, got 0"),
    ("merge-key", "base: &b {op: matmul, dtype: float32}\nversion: 1\nkernels:\n  - <<: *b\n    name: a\n",
     "base", 1, "unknown key 'base'"),
    ("merge-key-in-kernel", "version: 1\nkernels:\n  - <<: {op: matmul, dtype: float32}\n    name: a\n",
     "kernels[0]", 3, "merge keys ('<<') are not supported"),
    ("non-string-key", kernel("""
        - name: k
          op: matmul
          dtype: float32
          1: 2
     """), "kernels[0]", 6, "expected a string key, got 1"),
]


@pytest.mark.parametrize("text,key_path,line,fragment", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed(tmp_path, text, key_path, line, fragment):
    p = write(tmp_path, text)
    with pytest.raises(SpecError) as ei:
        spec.load_file(p)
    e = ei.value
    assert e.file == str(p)
    assert (e.key_path, e.line) == (key_path, line), str(e)
    assert fragment in e.reason, str(e)
    assert str(e) == f"{p}:{line}: {key_path}: {e.reason}"


def test_malformed_covers_enough_cases():
    assert len(MALFORMED) >= 14


def test_error_is_an_exception_with_fields():
    e = SpecError("a.yaml", 3, "kernels[0].op", "unknown op 'x'")
    assert isinstance(e, Exception)
    assert str(e) == "a.yaml:3: kernels[0].op: unknown op 'x'"
    import pickle
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.file, e2.line, e2.key_path, e2.reason) == (e.file, e.line, e.key_path, e.reason)


def test_defaults_and_full_parse(tmp_path):
    p = write(tmp_path, GOOD)
    (s,) = spec.load_file(p)
    assert s == OpSpec(name="k", op="matmul", dtype="float32", activations=("none",), bias=True,
                       residual=False, threads=(1,), shapes=(), file=str(p), line=3)

    p = write(tmp_path, kernel("""
        - name: full
          op: gemm
          dtype: float32
          activations: [none, relu, relu6, gelu_tanh, gelu_erf]
          bias: false
          residual: yes
          threads: [1, 2, 4]
          shapes:
            - {M: 1, N: 2, K: 3}
            - {M: 0x10, N: 2, K: 3, trans_a: true, trans_b: true}
     """), "full.yml")
    (s,) = spec.load_file(p)
    assert s.activations == ("none", "relu", "relu6", "gelu_tanh", "gelu_erf")
    assert (s.bias, s.residual, s.threads) == (False, True, (1, 2, 4))
    assert s.shapes == (GemmShape(1, 2, 3), GemmShape(16, 2, 3, True, True))
    assert all(type(v) is int for sh in s.shapes for v in (sh.M, sh.N, sh.K))


def test_load_default():
    specs = spec.load_default()
    by_name = {s.name: s for s in specs}
    assert len(by_name) == len(specs)
    assert {"square_gemm", "classifier_fc", "transformer_ffn_up", "transformer_ffn_down"} <= set(by_name)
    gemms = [s for s in specs if s.op in ("matmul", "gemm")]
    assert sum(len(s.shapes) for s in gemms) <= 20
    assert all(s.dtype == "float32" and s.op in ("matmul", "gemm", "conv2d") for s in specs)
    # every distinct conv layer of ResNet-50 (24 with their epilogues) and MobileNetV2 (30)
    convs = [s for s in specs if s.op == "conv2d"]
    assert sum(len(s.shapes) for s in convs if s.name.startswith("resnet50")) == 24
    assert sum(len(s.shapes) for s in convs if s.name.startswith("mobilenetv2")) == 30
    dw = by_name["mobilenetv2_depthwise_relu6"]
    assert all(sh.groups == sh.C == sh.K for sh in dw.shapes) and dw.activations == ("relu6",)
    assert by_name["resnet50_conv_bn_residual_relu"].residual
    squares = by_name["square_gemm"]
    assert [sh.M for sh in squares.shapes] == [64, 128, 256, 512, 1024, 2048]
    assert all(sh.M == sh.N == sh.K for sh in squares.shapes)
    assert squares.activations == ("none",) and squares.threads == (1, 2)
    up = by_name["transformer_ffn_up"]
    assert {"gelu_tanh", "gelu_erf"} <= set(up.activations) and up.bias
    assert GemmShape(128, 3072, 768) in up.shapes
    assert by_name["transformer_ffn_down"].residual
    assert GemmShape(128, 768, 3072) in by_name["transformer_ffn_down"].shapes
    all_shapes = {(sh.M, sh.N, sh.K) for s in gemms for sh in s.shapes}
    assert {(128, 2304, 768), (128, 768, 768), (1, 1000, 2048), (32, 1000, 2048),
            (1, 1000, 1280)} <= all_shapes
    assert "relu" in by_name["classifier_fc"].activations and by_name["classifier_fc"].bias
    # each default file starts with a comment saying what it covers
    for f in sorted(spec.default_spec_dir().glob("*.yaml")):
        assert f.read_text().startswith("#"), f


def test_default_spec_dir_env(tmp_path, monkeypatch):
    write(tmp_path, GOOD, "only.yaml")
    monkeypatch.setenv("AUTOCONFIG_DEFAULT_SPECS", str(tmp_path))
    assert spec.default_spec_dir() == tmp_path
    assert [s.name for s in spec.load_default()] == ["k"]
    monkeypatch.delenv("AUTOCONFIG_DEFAULT_SPECS")
    assert (spec.default_spec_dir() / "gemm_square.yaml").is_file()


def test_to_dict_round_trip():
    for s in spec.load_default():
        d = s.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert OpSpec.from_dict(json.loads(json.dumps(d))) == s
        keys = {"M", "N", "K", "trans_a", "trans_b"} if s.op != "conv2d" else {
            "C", "H", "W", "K", "R", "S", "N", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
            "pad_right", "dilation_h", "dilation_w", "groups"}
        assert d["shapes"] and set(d["shapes"][0]) == keys


def test_cross_file_duplicate_names(tmp_path):
    d1, d2 = tmp_path / "one", tmp_path / "two"
    d1.mkdir()
    d2.mkdir()
    write(d1, kernel("- {name: shared, op: matmul, dtype: float32}"), "a.yaml")
    second = write(d2, kernel("""
        - {name: other, op: matmul, dtype: float32}
        - op: gemm
          dtype: float32
          name: shared
     """), "b.yaml")
    assert [s.name for s in spec.load_file(second)] == ["other", "shared"]   # fine alone
    with pytest.raises(SpecError) as ei:
        spec.load_dirs([d1, d2])
    e = ei.value
    assert (e.file, e.line, e.key_path) == (str(second), 6, "kernels[1].name")
    assert f"duplicate kernel name 'shared' (first defined at {d1 / 'a.yaml'}:3)" in e.reason
    # also between two files of one directory
    write(d1, kernel("- {name: shared, op: gemm, dtype: float32}"), "b.yml")
    with pytest.raises(SpecError, match=r"b\.yml:3: kernels\[0\]\.name: duplicate kernel name 'shared'"):
        spec.load_dirs([d1])


def test_directory_loading_order(tmp_path):
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    for fname, name in (("c.yaml", "c1"), ("a.yml", "a1"), ("b.yaml", "b1")):
        write(d1, kernel(f"- {{name: {name}, op: matmul, dtype: float32}}"), fname)
    write(d1, "not: a spec\n", "notes.txt")               # ignored: not *.yaml / *.yml
    write(d1, "garbage: [\n", ".hidden.yaml")             # ignored: dot file
    write(d2, kernel("- {name: z0, op: matmul, dtype: float32}"), "0.yaml")
    specs = spec.load_dirs([d1, d2])
    assert [s.name for s in specs] == ["a1", "b1", "c1", "z0"]
    assert [Path(s.file).name for s in specs] == ["a.yml", "b.yaml", "c.yaml", "0.yaml"]
    assert [s.name for s in spec.load_dirs([d2, d1])] == ["z0", "a1", "b1", "c1"]
    # a single path, a file path, and the same directory twice
    assert [s.name for s in spec.load_dirs(str(d2))] == ["z0"]
    assert [s.name for s in spec.load_dirs([d1 / "b.yaml", d2])] == ["b1", "z0"]
    assert len(spec.load_dirs([d1, d1])) == 3


def test_load_dirs_all_or_nothing(tmp_path):
    write(tmp_path, kernel("- {name: a, op: matmul, dtype: float32}"), "a.yaml")
    write(tmp_path, kernel("- {name: b, op: matmul, dtype: float64}"), "b.yaml")
    with pytest.raises(SpecError) as ei:
        spec.load_dirs([tmp_path])
    assert ei.value.file == str(tmp_path / "b.yaml")


@pytest.mark.parametrize("make,key_path", [
    (lambda p: p / "missing", "<path>"),
    (lambda p: p, "<dir>"),                       # a directory without spec files
])
def test_bad_paths(tmp_path, make, key_path):
    with pytest.raises(SpecError) as ei:
        spec.load_dirs([make(tmp_path)])
    assert ei.value.key_path == key_path and ei.value.line == 0


def test_load_file_missing_and_not_utf8(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        spec.load_file(tmp_path / "nope.yaml")
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"version: 1\nkernels:\n  - name: \xff\n")
    with pytest.raises(SpecError) as ei:
        spec.load_file(p)
    assert ei.value.line == 3 and "not valid UTF-8" in ei.value.reason


def test_cli_main(tmp_path, capsys):
    good = write(tmp_path, kernel("""
        - name: k
          op: matmul
          dtype: float32
          shapes: [{M: 2, N: 3, K: 4}]
     """), "good.yaml")
    assert spec.main([str(good)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("k: matmul float32") and "2x3x4" in out[0]

    assert spec.main(["--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["shapes"][0]["K"] == 4

    assert spec.main([]) == 0                      # the defaults
    assert len(capsys.readouterr().out.strip().splitlines()) == len(spec.load_default())

    bad = write(tmp_path, kernel("- {name: k, op: matmul, dtype: f32}"), "bad.yaml")
    assert spec.main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"{bad}:3: kernels[0].dtype: unknown dtype 'f32'; allowed: float32"


def test_cli_module_subprocess(tmp_path):
    bad = write(tmp_path, kernel("- {name: k, op: matmul, dtype: float32, threads: [-1]}"))
    pkg_root = str(Path(spec.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root] + [os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "autoconfig.spec", str(bad)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip() == f"{bad}:3: kernels[0].threads[0]: expected a positive integer, got -1"


def test_cli_module_deep_nesting_is_one_line(tmp_path):
    """2000 levels: one `file:line: key.path: reason` line, not a RecursionError traceback."""
    bad = write(tmp_path, kernel("- {name: k, op: matmul, dtype: float32, shapes: [{M: %s, N: 1, K: 1}]}"
                                 % ("[" * 2000 + "]" * 2000)))
    pkg_root = str(Path(spec.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root] + [os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "autoconfig.spec", str(bad)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"{bad}:3: kernels[0].shapes[0].M[0][0]...: YAML nested more than 32 levels "
                                f"deep; a spec needs 6 (document, kernels, kernel, shapes, shape, value)")


# --------------------------------------------------------------------------- conv2d specs
CONV_OK = """version: 1
kernels:
  - name: stem
    op: conv2d
    dtype: float32
    activations: [relu]
    shapes:
      - {C: 3, H: 224, W: 224, K: 64, R: 7, S: 7, stride_h: 2, stride_w: 2, pad_top: 3, pad_left: 3, pad_bottom: 3, pad_right: 3}
      - {C: 32, H: 112, W: 112, K: 32, R: 3, S: 3, pad_top: 1, pad_left: 1, pad_bottom: 1, pad_right: 1, groups: 32}
"""


def test_conv_spec_loads_and_lowers_to_gemm(tmp_path):
    f = tmp_path / "conv.yaml"
    f.write_text(CONV_OK)
    (k,) = spec.load_file(f)
    stem, dw = k.shapes
    assert (stem.out_h, stem.out_w) == (112, 112) and stem.N == 1
    g = stem.gemm_shape()
    assert (g.M, g.N, g.K) == (64, 112 * 112, 3 * 7 * 7)
    g = dw.gemm_shape()
    assert (g.M, g.N, g.K) == (1, 112 * 112, 9)


@pytest.mark.parametrize("shape,path,fragment", [
    ("{C: 6, H: 8, W: 8, K: 4, R: 3, S: 3, groups: 4}", "kernels[0].shapes[0].groups", "C=6 are not divisible by groups=4"),
    ("{C: 3, H: 2, W: 2, K: 4, R: 3, S: 3}", "kernels[0].shapes[0]", "the output would be 0x0"),
    ("{C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, pad_top: -1}", "kernels[0].shapes[0].pad_top", "expected an integer >= 0"),
    ("{C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, M: 5}", "kernels[0].shapes[0]", "'M' is only allowed when op is"),
    # sizes the kernels cannot hold (issue 12): operands beyond 2**48 bytes, lowered GEMM dims beyond 2**31-1
    ("{C: 2147483647, H: 2147483647, W: 2147483647, K: 2147483647, R: 3, S: 3}", "kernels[0].shapes[0]",
     "input x (N x C x H x W = 1 x 2147483647 x 2147483647 x 2147483647) would take"),
    ("{C: 2147483647, H: 1, W: 1, K: 2147483647, R: 1, S: 1}", "kernels[0].shapes[0]",
     "weights w (K x C/groups x R x S = 2147483647 x 2147483647 x 1 x 1) would take"),
    ("{C: 1, H: 8, W: 8, K: 1, R: 1, S: 1, pad_top: 2147483647, pad_left: 2147483647}", "kernels[0].shapes[0]",
     "output y (N x K x out_h x out_w = 1 x 1 x 2147483655 x 2147483655) would take"),
    ("{C: 1, H: 65536, W: 65536, K: 1, R: 1, S: 1}", "kernels[0].shapes[0]",
     "the lowered GEMM's N (output pixels out_h x out_w = 65536 x 65536) is 4294967296; the limit is 2147483647"),
    ("{C: 1, H: 60000, W: 60000, K: 1, R: 30000, S: 30000}", "kernels[0].shapes[0]",
     "the im2col patch matrix (C/groups*R*S x out_h*out_w = 900000000 x 900060001) would take"),
    ("{C: 64, H: 224, W: 224, K: 64, R: 3, S: 3, N: 2147483647}", "kernels[0].shapes[0]",
     "input x (N x C x H x W = 2147483647 x 64 x 224 x 224) would take"),
])
def test_conv_spec_errors(tmp_path, shape, path, fragment):
    f = tmp_path / "conv.yaml"
    f.write_text(f"""version: 1
kernels:
  - name: c
    op: conv2d
    dtype: float32
    shapes:
      - {shape}
""")
    with pytest.raises(spec.SpecError) as info:
        spec.load_file(f)
    assert info.value.key_path.startswith(path) and fragment in str(info.value)


def test_conv_spec_rejects_gelu(tmp_path):
    f = tmp_path / "conv.yaml"
    f.write_text(CONV_OK.replace("activations: [relu]", "activations: [relu, gelu_tanh]"))
    with pytest.raises(spec.SpecError, match="conv2d supports the activations none, relu, relu6"):
        spec.load_file(f)


# --------------------------------------------------------------------------- conv2d tolerance
@pytest.mark.parametrize("text,value", [("1e-4", 1e-4), ("1.0e-5", 1e-5), ("0.001", 1e-3), ("2E-6", 2e-6)])
def test_conv_tolerance_parses(tmp_path, text, value):
    f = tmp_path / "conv.yaml"
    f.write_text(CONV_OK.replace("    activations: [relu]\n", f"    activations: [relu]\n    tolerance: {text}\n"))
    (k,) = spec.load_file(f)
    assert k.tolerance == pytest.approx(value)
    assert OpSpec.from_dict(json.loads(json.dumps(k.to_dict()))) == k
    assert f"tolerance={value:g}" in k.summary()


@pytest.mark.parametrize("text,fragment", [
    ("0", "expected a relative error between 0 and 1 (exclusive), got 0"),
    ("-1e-4", "expected a relative error between 0 and 1 (exclusive), got -0.0001"),
    ("1.5", "expected a relative error between 0 and 1 (exclusive), got 1.5"),
    ("'1e-4'", "expected a number such as 1e-4 (a relative error), got string '1e-4'"),
    ("true", "expected a number such as 1e-4 (a relative error), got boolean true"),
    ("[1e-4]", "expected a number such as 1e-4 (a relative error), got a list"),
    ("small", "expected a number such as 1e-4 (a relative error), got string 'small'"),
    (".inf", "expected a relative error between 0 and 1 (exclusive), got inf"),
])
def test_conv_tolerance_errors(tmp_path, text, fragment):
    f = tmp_path / "conv.yaml"
    f.write_text(CONV_OK.replace("    activations: [relu]\n", f"    activations: [relu]\n    tolerance: {text}\n"))
    with pytest.raises(spec.SpecError) as info:
        spec.load_file(f)
    assert info.value.key_path == "kernels[0].tolerance" and info.value.line == 7
    assert fragment in str(info.value)


def test_tolerance_only_for_conv(tmp_path):
    p = write(tmp_path, kernel("""
        - name: k
          op: matmul
          dtype: float32
          tolerance: 1e-4
     """))
    with pytest.raises(SpecError) as info:
        spec.load_file(p)
    assert str(info.value).endswith("kernels[0].tolerance: 'tolerance' is only allowed when op is conv2d (its "
                                    "Winograd algorithms trade accuracy for speed); this kernel's op is 'matmul'")

