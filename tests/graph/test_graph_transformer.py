"""Transformer encoders through the importer, the passes, the planner and the
C++ executor, against onnxruntime (max |y - y_ort| / max |y_ort| <= 1e-4).

- the hand-built BERT-style encoder of transformer_cases.py (CI: needs only
  onnx and onnxruntime): both GELU forms, both layer-norm forms, sequence 1, 7
  and 16, batch 1 and 3, with and without padding in the mask; the float64
  reference interpreter first (the importer alone), then the executor;
- the structure the passes leave (no transpose copies, the GELU and the bias
  in the GEMM epilogue, the mask in the softmax, layer norms recognised);
- SequenceModel: any length up to the maximum through the buckets, exact
  against onnxruntime at the unpadded length;
- a tiny BERT from transformers (2 layers, hidden 64, 4 heads), exported on
  the fly where torch and transformers are installed;
- errors: an unsupported node named, a token id outside the vocabulary.
"""
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.dirname(__file__))
import graph_reference  # noqa: E402
import transformer_cases as tc  # noqa: E402
from autoconfig.graph.onnx_import import ImportError_, import_onnx  # noqa: E402
from autoconfig.graph.passes import run_passes  # noqa: E402

TOL = 1e-4


def rel_err(y, ref):
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def ort_run(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def shapes_of(feeds):
    return {k: v.shape for k, v in feeds.items()}


FORMS = [("erf", "op"), ("tanh", "subgraph")]
SHAPES = [(1, 1, 0), (1, 7, 0), (1, 7, 3), (3, 16, 0), (3, 16, 5), (3, 7, 2)]   # batch, sequence, padding


@pytest.mark.parametrize("gelu,layer_norm", FORMS)
def test_reference_interpreter_matches_onnxruntime(gelu, layer_norm):
    """The importer and the passes alone (float64 reference interpreter)."""
    model = tc.encoder(gelu=gelu, layer_norm=layer_norm, layers=2)
    f = tc.feeds(3, 7, pad=2)
    g = import_onnx(model, shapes_of(f))
    run_passes(g)
    assert rel_err(graph_reference.run(g, f)[0], ort_run(model, f)[0]) <= TOL


@pytest.mark.parametrize("gelu,layer_norm", FORMS + [("erf", "subgraph"), ("tanh", "op")])
def test_passes_leave_the_fused_structure(gelu, layer_norm):
    model = tc.encoder(gelu=gelu, layer_norm=layer_norm, layers=2)
    g = import_onnx(model, shapes_of(tc.feeds(2, 8)))
    run_passes(g)
    ops = g.ops()
    assert "transpose" not in ops                 # Q, K^T, V and the merge read / written in place
    assert ops.get("layer_norm", 0) + ops.get("matmul_layer_norm", 0) == 5   # embeddings + 2 per layer
    for op in ("erf", "tanh", "pow", "sqrt", "reduce_mean", "div"):
        assert op not in ops, op
    # attention fused (fuse_attention): per layer Q.K^T, the masked softmax and P.V are one node
    # reading Q, K, V in place (q/k/v_perm) and writing the heads merged (y_perm)
    att = [n for n in g.nodes if n.op == "attention"]
    assert len(att) == 2 and "softmax" not in ops
    assert all(abs(n.attrs["scale"] - 1 / np.sqrt(8)) < 1e-6 and n.inputs[3] for n in att)   # scale, mask
    assert all(n.attrs["k_perm"] == [0, 2, 1, 3] and n.attrs["y_perm"] == [0, 2, 1, 3] for n in att)
    # GEMM + bias + residual + LayerNorm (fuse_matmul_layer_norm): the two per layer
    mln = [n for n in g.nodes if n.op == "matmul_layer_norm"]
    assert len(mln) == 4 and ops.get("layer_norm") == 1       # the embeddings' layer norm stays
    assert all(n.inputs[2] and n.inputs[3] for n in mln)      # bias and residual in the epilogue
    mm = [n for n in g.nodes if n.op == "matmul"]
    assert len(mm) == 8                                       # Q, K, V and the FFN's first, per layer
    acts = [n.attrs.get("activation") for n in mm if n.attrs.get("activation", "none") != "none"]
    assert acts == ["gelu_erf" if gelu == "erf" else "gelu_tanh"] * 2


def _ext_or_skip():
    try:
        from autoconfig.runtime.guard import ext
    except ImportError as e:  # pragma: no cover - depends on the build
        pytest.skip(f"extension not available: {e}")
    if ext is None:  # pragma: no cover
        pytest.skip("extension not built")


@pytest.mark.parametrize("gelu,layer_norm", FORMS)
def test_executor_matches_onnxruntime(gelu, layer_norm):
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    model = tc.encoder(gelu=gelu, layer_norm=layer_norm, layers=2)
    for batch, seq, pad in SHAPES:
        f = tc.feeds(batch, seq, pad=pad)
        m = load_onnx(model, input_shape=shapes_of(f))
        assert m.input_dtypes == ["int64", "int64"]
        y = m(f["input_ids"], f["attention_mask"])
        assert rel_err(y, ort_run(model, f)[0]) <= TOL, (batch, seq, pad)


def test_executor_threads_agree():
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    model = tc.encoder(layers=1, hidden=48, heads=3, ffn=96)
    f = tc.feeds(3, 13, pad=4)
    m = load_onnx(model, input_shape=shapes_of(f))
    ref = ort_run(model, f)[0]
    for t in (1, 2):
        assert rel_err(m(f["input_ids"], f["attention_mask"], threads=t), ref) <= TOL


def test_executor_keeps_the_embedding_and_releases_packed_weights():
    """After load the linear weights live on only as their packed copies; the
    word embedding table, read by a Gather at run time, is kept."""
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    hidden, vocab, ffn = 32, 50, 64
    model = tc.encoder(layers=1, hidden=hidden, vocab=vocab, ffn=ffn)
    f = tc.feeds(2, 11, pad=3)
    m = load_onnx(model, input_shape=shapes_of(f))
    mem = m.memory()
    assert mem["constants"] >= 4 * vocab * hidden
    assert mem["released"] >= 4 * 2 * hidden * ffn          # the FFN's two weights at least
    assert mem["prepared"] >= 4 * 2 * hidden * ffn          # ... as their packed copies
    assert mem["total"] == mem["arena"] + mem["prepared"] + mem["constants"]
    assert rel_err(m(f["input_ids"], f["attention_mask"]), ort_run(model, f)[0]) <= TOL


def test_sequence_model_memory_sums_its_buckets():
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    m = load_onnx(tc.encoder(layers=1, max_len=32), max_sequence=24)
    assert m.memory() == {}
    m(*tc.feeds(1, 5).values())
    one = m.memory()
    m(*tc.feeds(1, 20).values())
    two = m.memory()
    assert one["prepared"] > 0 and two["prepared"] > one["prepared"]
    assert two["total"] == two["arena"] + two["prepared"] + two["constants"]


def test_sequence_model_any_length_exact_against_unpadded_onnxruntime():
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    from autoconfig.sequence_model import SequenceModel, bucket_for, buckets
    assert buckets(24) == [1, 2, 4, 8, 16, 24]
    assert bucket_for(9, 24) == 16 and bucket_for(17, 24) == 24
    model = tc.encoder(layers=1, max_len=32)
    m = load_onnx(model, max_sequence=24)
    assert isinstance(m, SequenceModel) and m.masked
    for batch, seq, pad in [(1, 5, 0), (3, 7, 2), (3, 13, 0), (1, 24, 3)]:
        f = tc.feeds(batch, seq, pad=pad)
        y = m(f["input_ids"], f["attention_mask"])
        assert y.shape == (batch, seq, 32)
        assert rel_err(y, ort_run(model, f)[0]) <= TOL, (batch, seq, pad)
    assert m.planned() == [(1, 8), (1, 24), (3, 8), (3, 16)]
    (y2,) = m.run(None, tc.feeds(1, 6))                 # bucket 8 again: no new plan
    assert y2.shape == (1, 6, 32) and m.planned() == [(1, 8), (1, 24), (3, 8), (3, 16)]
    with pytest.raises(ValueError, match="outside 1..24"):
        m(*tc.feeds(1, 25).values())
    with pytest.raises(ValueError, match="disagree"):
        m(np.zeros((1, 5), np.int64), np.ones((1, 6), np.int64))


def test_a_token_id_outside_the_vocabulary_is_an_error_naming_the_node():
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    model = tc.encoder(layers=1, vocab=50)
    f = tc.feeds(1, 4)
    m = load_onnx(model, input_shape=shapes_of(f))
    f["input_ids"][0, 2] = 50
    with pytest.raises(RuntimeError, match=r"gather.*index 50.*outside \[-50, 50\)"):
        m(f["input_ids"], f["attention_mask"])
    with pytest.raises(TypeError, match="int64"):
        m(f["input_ids"].astype(np.float32), f["attention_mask"])


def test_an_unsupported_node_is_named():
    model = tc.encoder(layers=1)
    bad = onnx.helper.make_node("Det", ["last_hidden_state"], ["det"], name="the_det")
    model.graph.node.append(bad)
    with pytest.raises(ImportError_, match=r"node 'the_det' \(Det, opset 17\): operator Det is not supported; "
                                           r"supported: .*LayerNormalization"):
        import_onnx(model, shapes_of(tc.feeds(1, 4)))


# ---- a tiny BERT from transformers, where torch and transformers are installed

def _export_tiny_bert(tmp_path, attn="eager"):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    import export_transformers
    cfg = transformers.BertConfig(vocab_size=99, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=64)
    path = str(tmp_path / f"tiny_bert_{attn}.onnx")
    torch.manual_seed(0)
    export_transformers.export(transformers.BertModel(cfg), path, token_type_ids=True, attn=attn)
    return path


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_tiny_bert_from_transformers(tmp_path, attn):
    _ext_or_skip()
    from autoconfig.model_onnx import load_onnx
    path = _export_tiny_bert(tmp_path, attn)
    model = onnx.load(path)
    g = import_onnx(model, {n: (2, 8) for n in ("input_ids", "attention_mask", "token_type_ids")})
    run_passes(g)
    assert "transpose" not in g.ops() and "erf" not in g.ops()      # heads read in place, GELU in the GEMM
    rng = np.random.default_rng(3)
    seq_model = load_onnx(path, max_sequence=64)
    for batch, seq, pad in [(1, 1, 0), (1, 7, 0), (1, 16, 5), (3, 7, 3), (3, 16, 0), (3, 16, 6)]:
        f = tc.feeds(batch, seq, vocab=99, pad=pad, seed=seq)
        f["token_type_ids"] = rng.integers(0, 2, (batch, seq), dtype=np.int64)
        ref = ort_run(model, f)[0]
        planned = load_onnx(path, input_shape=shapes_of(f))
        assert rel_err(planned(*[f[n] for n in planned.input_names]), ref) <= TOL, (batch, seq, pad)
        assert rel_err(seq_model(*[f[n] for n in seq_model.input_names]), ref) <= TOL, (batch, seq, pad)
    if attn == "eager":   # the eager export's pattern: both attentions fused, the four GEMM + LayerNorms too
        g = import_onnx(model, shapes_of(f))
        run_passes(g)
        assert g.ops().get("attention") == 2 and g.ops().get("matmul_layer_norm") == 4


def test_tiny_vit_from_transformers(tmp_path):
    """A ViT encoder: the conv patch embedding, the class token Concat, then the same encoder layers."""
    _ext_or_skip()
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    import export_transformers
    from autoconfig.model_onnx import load_onnx
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                                 image_size=32, patch_size=8)
    path = export_transformers.export_vit(transformers.ViTModel(cfg, add_pooling_layer=False),
                                          str(tmp_path / "tiny_vit.onnx"))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0]
    y = load_onnx(path)(x)
    assert y.shape == (1, 17, 48) and rel_err(y, ref) <= TOL


def test_bucket_files_for_engines(tmp_path):
    """import-onnx --sequence-buckets writes one .acmodel per bucket; an engine pads to the
    bucket with zeros (mask 0), runs the file in the C++ executor and keeps the first L positions."""
    _ext_or_skip()
    import autoconfig
    from autoconfig.cli import main
    model = tc.encoder(layers=1, max_len=32)
    path = tmp_path / "enc.onnx"
    onnx.save(model, str(path))
    assert main(["import-onnx", str(path), "-o", str(tmp_path), "--sequence-buckets", "20", "--batch", "2"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.acmodel")) == [f"enc.s{n}.acmodel" for n in (1, 16, 2, 20, 4, 8)]
    m = autoconfig.load(str(tmp_path / "enc.s16.acmodel"))
    assert m.input_shapes == [(2, 16), (2, 16)] and m.input_dtypes == ["int64", "int64"]
    f = tc.feeds(2, 11, pad=3)
    padded = [np.pad(f[n], [(0, 0), (0, 5)]) for n in m.input_names]
    y = m(*padded)[:, :11]
    assert rel_err(y, ort_run(model, f)[0]) <= TOL
