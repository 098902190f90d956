"""Export the benchmark networks to ONNX: torchvision ResNet-50, ResNet-18,
MobileNetV2 and SqueezeNet 1.1 with random weights and randomized
BatchNorm statistics (so a folded batch-norm is not the identity), batch 1,
3 x 224 x 224, float32.

    python benchmarks/export_models.py [-o benchmarks/models] [--opset 17] [--seed 0] [--only resnet50,...] [--zoo]

--zoo exports, instead, architectures beyond the four the acceptance names
(ZOO: squeeze-and-excitation with SiLU, hard-swish, grouped and 5x5 depthwise
convolutions, dense concatenation, 1x7 / 7x1 factorized convolutions), to see
how the operator set and the planner hold on graphs they were not built
around: `python benchmarks/models.py DIR/*.onnx`.

Needs torch and torchvision (only here: `pip install torch==2.14.1
torchvision==0.29.1`); writes OUT/<name>.onnx and prints each file's size.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

MODELS = {"resnet50": "resnet50", "resnet18": "resnet18", "mobilenet_v2": "mobilenet_v2",
          "squeezenet1_1": "squeezenet1_1"}
ZOO = {name: name for name in (
    "efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet1_0", "shufflenet_v2_x1_0",
    "regnet_x_400mf", "regnet_y_400mf", "resnext50_32x4d", "densenet121", "googlenet", "inception_v3",
    "convnext_tiny", "alexnet", "vgg11_bn", "efficientnet_v2_s")}
# constructor arguments and input size where the defaults do not export as a plain classifier
ZOO_ARGS = {"googlenet": {"aux_logits": False, "init_weights": True},
            "inception_v3": {"aux_logits": False, "init_weights": True}}
ZOO_SIZE = {"inception_v3": 299}


def randomize(model, seed: int):
    """Random weights (torchvision's init with weights=None), then every
    BatchNorm's statistics and affine parameters drawn at random, scaled so
    activations stay of order 1 through 50 layers."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
    return model.eval()


def import_torchvision():
    """torchvision, even when its compiled ops do not load against this torch
    (a CUDA torchvision wheel beside the CPU torch: its _C.so needs libc10_cuda).
    Its import then fails registering fake kernels for ops that do not exist;
    the model definitions need none of them, so that one module is skipped."""
    try:
        import torchvision
        return torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    import torchvision
    print("note: torchvision's compiled ops do not load with this torch; "
          "exporting with its model definitions only", file=sys.stderr)
    return torchvision


def export(name: str, out_dir: str, opset: int, seed: int) -> str:
    import torch
    torchvision = import_torchvision()
    torch.manual_seed(seed)
    arch = MODELS.get(name) or ZOO[name]
    model = randomize(getattr(torchvision.models, arch)(weights=None, **ZOO_ARGS.get(name, {})), seed)
    size = ZOO_SIZE.get(name, 224)
    x = torch.randn(1, 3, size, size)
    path = os.path.join(out_dir, f"{name}.onnx")
    tmp = f"{path}.tmp{os.getpid()}"
    kw = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    try:
        torch.onnx.export(model, (x,), tmp, dynamo=False, **kw)     # the TorchScript exporter: no onnxscript needed
    except TypeError:
        torch.onnx.export(model, (x,), tmp, **kw)
    os.replace(tmp, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(os.path.dirname(__file__), "models"))
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(list(MODELS) + list(ZOO)))
    ap.add_argument("--zoo", action="store_true", help="export the ZOO architectures instead of the four")
    args = ap.parse_args()
    known = {**MODELS, **ZOO}
    names = args.only.split(",") if args.only else list(ZOO if args.zoo else MODELS)
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown model(s) {unknown}; known: {list(known)}", file=sys.stderr)
        return 2
    try:
        import torch  # noqa: F401
        import_torchvision()
    except ImportError as e:
        # say which import failed: torchvision's own imports (e.g. Pillow) fail here too
        print(f"needs torch and torchvision ({e}): pip install torch==2.14.1 torchvision==0.29.1 pillow",
              file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)
    for n in names:
        path = export(n, args.output, args.opset, args.seed)
        print(f"{path}: {os.path.getsize(path) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
