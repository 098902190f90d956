"""BERT-base and DistilBERT (random weights, exported from transformers) at
sequence 8, 128 and 384, batch 1 and 4, with and without padding in the
mask, through the executor against onnxruntime (max relative error 1e-4).

Slow (minutes: two 400 MB models exported, 24 plans): runs with
AUTOCONFIG_SLOW=1 where torch and transformers are installed. Set
AUTOCONFIG_TRANSFORMERS_DIR to a folder holding bert.onnx and distilbert.onnx
(benchmarks/export_transformers.py --out DIR) to skip the export.

    AUTOCONFIG_SLOW=1 python -m pytest -q tests/graph/test_graph_transformers_large.py
"""
import os
import sys

import numpy as np
import pytest

if os.environ.get("AUTOCONFIG_SLOW") != "1":
    pytest.skip("slow (minutes): set AUTOCONFIG_SLOW=1", allow_module_level=True)
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CASES = [(s, b, pad) for s in (8, 128, 384) for b in (1, 4) for pad in (0, 1)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = os.environ.get("AUTOCONFIG_TRANSFORMERS_DIR")
    if folder and all(os.path.exists(os.path.join(folder, f"{n}.onnx")) for n in ("bert", "distilbert")):
        return folder
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    import export_transformers
    folder = str(tmp_path_factory.mktemp("transformers"))
    assert export_transformers.main(["--out", folder, "--models", "bert,distilbert"]) == 0
    return folder


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_large_encoder_matches_onnxruntime(models, name):
    from autoconfig.model_onnx import load_onnx
    path = os.path.join(models, f"{name}.onnx")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(0)
    errors = {}
    for seq, batch, pad in CASES:
        feeds = {"input_ids": rng.integers(0, 30522, (batch, seq), dtype=np.int64),
                 "attention_mask": np.ones((batch, seq), np.int64)}
        if pad:      # the last quarter of the last row (of the only row at batch 1) is padding
            feeds["attention_mask"][-1, seq - seq // 4:] = 0
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = (np.arange(seq)[None, :] >= seq // 2).astype(np.int64).repeat(batch, 0)
        ref = sess.run(None, feeds)[0]
        m = load_onnx(path, input_shape={k: v.shape for k, v in feeds.items()})
        y = m(*[feeds[n] for n in m.input_names])
        errors[(seq, batch, pad)] = float(np.abs(y - ref).max() / np.abs(ref).max())
    print(name, {k: f"{v:.1e}" for k, v in errors.items()})
    bad = {k: v for k, v in errors.items() if v > 1e-4}
    assert not bad, bad
