"""Export transformer encoders from `transformers` with random weights (built
from a config: no download) to ONNX with torch.onnx (the TorchScript
exporter, opset 17), for the model benchmarks and the correctness tests.

    python benchmarks/export_transformers.py [--out DIR] [--models bert,distilbert,vit]

writes DIR/bert.onnx (BERT-base: 12 layers, hidden 768, 12 heads, FFN 3072,
inputs input_ids, attention_mask, token_type_ids), DIR/distilbert.onnx
(6 layers, inputs input_ids, attention_mask), both int64 with dynamic batch
and sequence axes (named "batch" and "sequence"), output last_hidden_state;
and DIR/vit.onnx (a small ViT encoder: 224x224 images in 16x16 patches,
hidden 192, 12 layers, 3 heads; input pixel_values, batch 1). Needs torch
and transformers.
"""
from __future__ import annotations

import argparse
import os
import sys

SEQ_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _torch():
    import torch
    return torch


def export(model, path: str, *, token_type_ids: bool, attn: str = "eager", opset: int = 17,
           batch: int = 2, sequence: int = 8) -> str:
    """Export an encoder taking input_ids, attention_mask[, token_type_ids]
    (int64, batch x sequence, both axes dynamic) to `path`; returns it.
    attn: transformers' attention implementation ("eager": the explicit
    MatMul / Softmax graph; "sdpa": torch's scaled_dot_product_attention,
    which the exporter decomposes)."""
    torch = _torch()
    model.config._attn_implementation = attn
    model.eval()
    names = list(SEQ_INPUTS if token_type_ids else SEQ_INPUTS[:2])

    class Encoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *xs):
            return self.m(**dict(zip(names, xs))).last_hidden_state

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, sequence), generator=g)
    feeds = [ids, torch.ones(batch, sequence, dtype=torch.int64), torch.zeros(batch, sequence, dtype=torch.int64)]
    with torch.no_grad():
        torch.onnx.export(Encoder(model), tuple(feeds[:len(names)]), path, dynamo=False, opset_version=opset,
                          input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]})
    return path


def export_vit(model, path: str, opset: int = 17) -> str:
    torch = _torch()
    model.config._attn_implementation = "eager"
    model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(pixel_values=x).last_hidden_state

    x = torch.randn(1, 3, model.config.image_size, model.config.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.onnx.export(Encoder(model), (x,), path, dynamo=False, opset_version=opset,
                          input_names=["pixel_values"], output_names=["last_hidden_state"])
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--models", default="bert,distilbert,vit", help="comma-separated: bert, distilbert, vit")
    args = ap.parse_args(argv)
    torch = _torch()
    import transformers
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name in args.models.split(","):
        path = os.path.join(args.out, f"{name}.onnx")
        if name == "bert":
            export(transformers.BertModel(transformers.BertConfig(), add_pooling_layer=False), path,
                   token_type_ids=True)
        elif name == "distilbert":
            export(transformers.DistilBertModel(transformers.DistilBertConfig()), path, token_type_ids=False)
        elif name == "vit":
            cfg = transformers.ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                                         intermediate_size=768)
            export_vit(transformers.ViTModel(cfg, add_pooling_layer=False), path)
        else:
            print(f"unknown model {name!r} (bert, distilbert, vit)", file=sys.stderr)
            return 2
        print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
