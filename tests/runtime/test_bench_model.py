"""autoconfig bench --model: the round-robin sampler, the profile reader and
the tables (no executor needed), then the command end to end where the
executor is built in."""
import os

import pytest

from autoconfig import bench_model
from autoconfig.bench_model import EngineResult, ModelBench, NodeTime


def test_round_robin_times_every_engine_each_round():
    calls = []
    fns = {name: (lambda n: (lambda: calls.append(n)))(name) for name in ("a", "b", "c")}
    out = bench_model.round_robin(fns, runs=20, threads=1, pauses={})
    assert {k: len(v) for k, v in out.items()} == {"a": 20, "b": 20, "c": 20}
    assert all(s >= 0 for v in out.values() for s in v)
    rounds = calls[6:]                      # after two first calls each; then per sample a warm call + the timed one
    assert len(rounds) == 20 * 3 * 2
    firsts = [rounds[i * 6] for i in range(4)]
    assert firsts == ["a", "b", "c", "a"]   # the order rotates every round


@pytest.mark.parametrize("prof", [
    {"c1": 1.5, "r": 0.5},
    [("c1", 1.5), ("r", 0.5)],
    [{"name": "c1", "ms": 1.5}, {"name": "r", "seconds": 0.0005}],
    {"nodes": [{"name": "c1", "measured_ms": 1.5}, {"name": "r", "ms": 0.5}]},
])
def test_profile_forms(prof):
    assert bench_model._profile_ms(prof) == pytest.approx({"c1": 1.5, "r": 0.5})


def _bench():
    e = [EngineResult("autoconfig", "0.1.0", [0.010, 0.012, 0.011] * 7, load_s=0.4, error=2e-6),
         EngineResult("onnxruntime", "1.x", [0.015, 0.016] * 10, load_s=0.2, error=0.0)]
    nodes = [NodeTime("c1", "conv", 2, "direct", 6.0, 7.0), NodeTime("r", "relu", 1, "", 0.5, None)]
    return ModelBench("m.onnx", (1, 3, 8, 8), 2, "cpu", 0.3, e, nodes, 6.5)


def test_tables():
    b = _bench()
    text = bench_model.format_latency(b, markdown=True)
    assert "| autoconfig |" in text and "1.50x" in text and "on cpu" in text and "load" in text
    prof = bench_model.format_profile(b, markdown=False)
    assert "c1" in prof and "1.17" in prof and "predicted 6.50 ms" in prof


def test_cli_bench_model_end_to_end(tmp_path, capsys):
    import autoconfig
    if autoconfig._ext is None or not hasattr(autoconfig, "load"):
        pytest.skip("autoconfig.load (the C++ executor) is not in this build")
    onnx = pytest.importorskip("onnx")
    from autoconfig.cli import main
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    if not os.path.exists(path):
        pytest.skip("no light squeezenet in this onnx")
    plot = tmp_path / "p.png"
    args = ["bench", "--model", path, "--threads", "1", "--runs", "20", "--top", "5"]
    try:
        import matplotlib  # noqa: F401
        args += ["--plot", str(plot)]
    except ImportError:
        pass
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "autoconfig" in out and "best ms" in out and "per-node total" in out
