"""Prior-guided task sampling: the layer shapes of real networks.

One-Shot Tuner (Ryu et al., CC 2022) trains its predictor on tasks drawn from
the distribution the compiler will meet, not on random shapes. This module
writes that distribution down: the convolution layers of ResNet, MobileNet,
DenseNet, Inception and EfficientNet networks at their ImageNet resolutions,
and the GEMMs of BERT-base/large, DistilBERT and ViT encoders at several
sequence lengths. Every layer is tagged with its network and its family, so a
whole family can be held out of training and used to test.

The generators follow the architectures as published (and as torchvision
defines them: batch 1, the stride on the 3x3 conv of a ResNet bottleneck),
written out here from the layer tables of the papers:
  ResNet (He et al. 2016), MobileNet v1 (Howard et al. 2017) and v2 (Sandler
  et al. 2018), DenseNet-121/169 (Huang et al. 2017), Inception v3 (Szegedy et
  al. 2016, 299x299 input), EfficientNet-B0 (Tan and Le 2019), BERT (Devlin et
  al. 2019), DistilBERT (Sanh et al. 2019), ViT-B/16, ViT-L/16 (Dosovitskiy et
  al. 2021). Pooling, SE gates on 1x1 maps and classifier heads are left out
  of the conv lists (they are GEMVs or not convolutions); the transformer
  lists hold the projections, the FFN and the per-head attention products.

Plain data and arithmetic only: this module imports no build stage.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple, Union

from ..shapes import Conv2dShape, GemmShape

Shape = Union[GemmShape, Conv2dShape]


@dataclass(frozen=True)
class LayerTask:
    """One distinct layer of a network: its op ("gemm" | "conv2d"), shape,
    how often the network runs it, and the network and family it comes from."""
    op: str
    shape: Shape
    network: str
    family: str
    count: int = 1

    def key(self) -> Tuple:
        return (self.op, self.shape)


def conv(C: int, H: int, W: int, K: int, R: int, S: int = 0, stride: int = 1, pad: Union[int, Tuple[int, int]] = -1,
         groups: int = 1) -> Conv2dShape:
    """A batch-1 conv; pad -1 means "same" (R//2, S//2); a pair pads (rows, columns)."""
    S = S or R
    if pad == -1:
        pad = (R // 2, S // 2)
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    return Conv2dShape(C=C, H=H, W=W, K=K, R=R, S=S, stride_h=stride, stride_w=stride,
                       pad_top=ph, pad_bottom=ph, pad_left=pw, pad_right=pw, groups=groups)


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


# --------------------------------------------------------------------------- ResNet
RESNET_BLOCKS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
                 "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3))}


def resnet(name: str, size: int = 224) -> List[Conv2dShape]:
    kind, blocks = RESNET_BLOCKS[name]
    layers = [conv(3, size, size, 64, 7, stride=2, pad=3)]
    h = _out(_out(size, 7, 2, 3), 3, 2, 1)          # stem conv, then 3x3/2 max-pool
    c = 64
    for stage, n in enumerate(blocks):
        width = 64 << stage
        out = width * 4 if kind == "bottleneck" else width
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            ho = _out(h, 3, stride, 1)
            if kind == "bottleneck":
                layers += [conv(c, h, h, width, 1), conv(width, h, h, width, 3, stride=stride),
                           conv(width, ho, ho, out, 1)]
            else:
                layers += [conv(c, h, h, width, 3, stride=stride), conv(width, ho, ho, width, 3)]
            if stride != 1 or c != out:
                layers.append(conv(c, h, h, out, 1, stride=stride, pad=0))
            c, h = out, ho
    return layers


# --------------------------------------------------------------------------- MobileNet
def mobilenet_v1(size: int = 224, alpha: float = 1.0) -> List[Conv2dShape]:
    def ch(c: int) -> int:
        return int(c * alpha)
    # (output channels, stride) of each depthwise-separable block
    table = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers = [conv(3, size, size, ch(32), 3, stride=2, pad=1)]
    h, c = _out(size, 3, 2, 1), ch(32)
    for k, s in table:
        layers.append(conv(c, h, h, c, 3, stride=s, pad=1, groups=c))
        h = _out(h, 3, s, 1)
        layers.append(conv(c, h, h, ch(k), 1))
        c = ch(k)
    return layers


def _divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of MobileNet v2 / EfficientNet (torchvision's _make_divisible)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(size: int = 224, alpha: float = 1.0) -> List[Conv2dShape]:
    # expansion t, output channels c, repeats n, first stride s (Sandler et al., Table 2)
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    c = _divisible(32 * alpha)
    layers = [conv(3, size, size, c, 3, stride=2, pad=1)]
    h = _out(size, 3, 2, 1)
    for t, k, n, s in table:
        out = _divisible(k * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            if t != 1:
                layers.append(conv(c, h, h, hidden, 1))
            layers.append(conv(hidden, h, h, hidden, 3, stride=stride, pad=1, groups=hidden))
            h = _out(h, 3, stride, 1)
            layers.append(conv(hidden, h, h, out, 1))
            c = out
    layers.append(conv(c, h, h, _divisible(1280 * max(1.0, alpha)), 1))
    return layers


# --------------------------------------------------------------------------- DenseNet
DENSENET_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32)}


def densenet(name: str, size: int = 224, growth: int = 32, bn_size: int = 4) -> List[Conv2dShape]:
    layers = [conv(3, size, size, 64, 7, stride=2, pad=3)]
    h = _out(_out(size, 7, 2, 3), 3, 2, 1)
    c = 64
    blocks = DENSENET_BLOCKS[name]
    for i, n in enumerate(blocks):
        for _ in range(n):
            layers += [conv(c, h, h, bn_size * growth, 1), conv(bn_size * growth, h, h, growth, 3)]
            c += growth
        if i < len(blocks) - 1:                    # transition: 1x1 halving channels, 2x2 average pool
            layers.append(conv(c, h, h, c // 2, 1))
            c, h = c // 2, h // 2
    return layers


# --------------------------------------------------------------------------- Inception v3
def inception_v3(size: int = 299) -> List[Conv2dShape]:
    L: List[Conv2dShape] = []
    h = _out(size, 3, 2, 0)                        # 149
    L.append(conv(3, size, size, 32, 3, stride=2, pad=0))
    L.append(conv(32, h, h, 32, 3, pad=0))
    h = _out(h, 3, 1, 0)                           # 147
    L.append(conv(32, h, h, 64, 3, pad=1))
    h = _out(h, 3, 2, 0)                           # 73 (max-pool)
    L.append(conv(64, h, h, 80, 1))
    L.append(conv(80, h, h, 192, 3, pad=0))
    h = _out(_out(h, 3, 1, 0), 3, 2, 0)            # 71 -> 35 (max-pool)
    c = 192
    for pool_features in (32, 64, 64):             # InceptionA x3 at 35x35
        L += [conv(c, h, h, 64, 1), conv(c, h, h, 48, 1), conv(48, h, h, 64, 5, pad=2),
              conv(c, h, h, 64, 1), conv(64, h, h, 96, 3), conv(96, h, h, 96, 3), conv(c, h, h, pool_features, 1)]
        c = 64 + 64 + 96 + pool_features
    ho = _out(h, 3, 2, 0)                          # InceptionB: 35 -> 17
    L += [conv(c, h, h, 384, 3, stride=2, pad=0), conv(c, h, h, 64, 1), conv(64, h, h, 96, 3),
          conv(96, h, h, 96, 3, stride=2, pad=0)]
    c, h = 384 + 96 + c, ho                        # 768
    for c7 in (128, 160, 160, 192):                # InceptionC x4 at 17x17
        L += [conv(c, h, h, 192, 1), conv(c, h, h, c7, 1), conv(c7, h, h, c7, 1, 7, pad=(0, 3)),
              conv(c7, h, h, 192, 7, 1, pad=(3, 0)), conv(c7, h, h, c7, 7, 1, pad=(3, 0)),
              conv(c7, h, h, c7, 1, 7, pad=(0, 3)), conv(c7, h, h, 192, 1, 7, pad=(0, 3)), conv(c, h, h, 192, 1)]
    ho = _out(h, 3, 2, 0)                          # InceptionD: 17 -> 8
    L += [conv(c, h, h, 192, 1), conv(192, h, h, 320, 3, stride=2, pad=0), conv(192, h, h, 192, 1, 7, pad=(0, 3)),
          conv(192, h, h, 192, 7, 1, pad=(3, 0)), conv(192, h, h, 192, 3, stride=2, pad=0)]
    c, h = 320 + 192 + c, ho                       # 1280
    for _ in range(2):                             # InceptionE x2 at 8x8
        L += [conv(c, h, h, 320, 1), conv(c, h, h, 384, 1), conv(384, h, h, 384, 1, 3, pad=(0, 1)),
              conv(384, h, h, 384, 3, 1, pad=(1, 0)), conv(c, h, h, 448, 1), conv(448, h, h, 384, 3),
              conv(c, h, h, 192, 1)]
        c = 320 + 768 + 768 + 192                  # 2048
    return L


# --------------------------------------------------------------------------- EfficientNet
# expansion, kernel, first stride, input channels, output channels, repeats (Tan and Le, Table 1)
EFFICIENTNET_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                   (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def efficientnet_b0(size: int = 224) -> List[Conv2dShape]:
    layers = [conv(3, size, size, 32, 3, stride=2, pad=1)]
    h = _out(size, 3, 2, 1)
    for t, k, s, cin, cout, n in EFFICIENTNET_B0:
        c = cin
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            if t != 1:
                layers.append(conv(c, h, h, hidden, 1))
            layers.append(conv(hidden, h, h, hidden, k, stride=stride, pad=k // 2, groups=hidden))
            h = _out(h, k, stride, k // 2)
            layers.append(conv(hidden, h, h, cout, 1))
            c = cout
    layers.append(conv(320, h, h, 1280, 1))
    return layers


# --------------------------------------------------------------------------- transformers
@dataclass(frozen=True)
class Encoder:
    hidden: int
    heads: int
    ffn: int


ENCODERS = {"bert-base": Encoder(768, 12, 3072), "bert-large": Encoder(1024, 16, 4096),
            "distilbert": Encoder(768, 12, 3072), "vit-b16": Encoder(768, 12, 3072),
            "vit-l16": Encoder(1024, 16, 4096)}


def encoder_gemms(e: Encoder, seq: int) -> List[GemmShape]:
    """One encoder layer at sequence length seq, batch 1: fused QKV, the
    attention output projection, the two FFN matmuls, and one head's scores
    (Q K^T) and context (P V) products."""
    d = e.hidden // e.heads
    return [GemmShape(seq, 3 * e.hidden, e.hidden), GemmShape(seq, e.hidden, e.hidden),
            GemmShape(seq, e.ffn, e.hidden), GemmShape(seq, e.hidden, e.ffn),
            GemmShape(seq, seq, d), GemmShape(seq, d, seq)]


BERT_SEQUENCES = (32, 64, 128, 256, 384)
# ViT-B/16 and ViT-L/16: 196 patches + the class token at 224x224, 577 at 384x384
VIT_SEQUENCES = (197, 577)


def _transformer(name: str, seqs: Sequence[int]) -> List[GemmShape]:
    out: List[GemmShape] = []
    for s in seqs:
        out += encoder_gemms(ENCODERS[name], s)
    if name.startswith("vit"):                     # patch embedding: 16x16x3 patches -> hidden
        out.append(GemmShape(seqs[0] - 1, ENCODERS[name].hidden, 16 * 16 * 3))
    return out


# --------------------------------------------------------------------------- registry
# network -> (family, op, generator)
NETWORKS: Dict[str, Tuple[str, str, Callable[[], List[Shape]]]] = {
    "resnet18": ("resnet", "conv2d", lambda: resnet("resnet18")),
    "resnet34": ("resnet", "conv2d", lambda: resnet("resnet34")),
    "resnet50": ("resnet", "conv2d", lambda: resnet("resnet50")),
    "resnet101": ("resnet", "conv2d", lambda: resnet("resnet101")),
    "mobilenet_v1": ("mobilenet", "conv2d", mobilenet_v1),
    "mobilenet_v2": ("mobilenet", "conv2d", mobilenet_v2),
    "mobilenet_v2_0.5": ("mobilenet", "conv2d", lambda: mobilenet_v2(alpha=0.5)),
    "densenet121": ("densenet", "conv2d", lambda: densenet("densenet121")),
    "densenet169": ("densenet", "conv2d", lambda: densenet("densenet169")),
    "inception_v3": ("inception", "conv2d", inception_v3),
    "efficientnet_b0": ("efficientnet", "conv2d", efficientnet_b0),
    "bert-base": ("bert", "gemm", lambda: _transformer("bert-base", BERT_SEQUENCES)),
    "bert-large": ("bert", "gemm", lambda: _transformer("bert-large", BERT_SEQUENCES)),
    "distilbert": ("bert", "gemm", lambda: _transformer("distilbert", BERT_SEQUENCES)),
    "vit-b16": ("vit", "gemm", lambda: _transformer("vit-b16", VIT_SEQUENCES)),
    "vit-l16": ("vit", "gemm", lambda: _transformer("vit-l16", VIT_SEQUENCES)),
}
FAMILIES: Tuple[str, ...] = tuple(sorted({f for f, _, _ in NETWORKS.values()}))


def network_layers(network: str) -> List[LayerTask]:
    """The distinct layers of one network, in first-use order, with their counts."""
    if network not in NETWORKS:
        raise ValueError(f"network: unknown {network!r}; known: {sorted(NETWORKS)}")
    family, op, make = NETWORKS[network]
    counts: Dict[Shape, int] = {}
    for shape in make():
        counts[shape] = counts.get(shape, 0) + 1
    return [LayerTask(op, s, network, family, n) for s, n in counts.items()]


def all_layers(families: Sequence[str] = FAMILIES) -> List[LayerTask]:
    """Every distinct (op, shape) over the networks of `families`, tagged with
    the first network (in NETWORKS order) that has it. A shape two families
    share belongs to the first one, so holding a family out never leaks one
    of its shapes into training through another family."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"families: unknown {unknown}; known: {list(FAMILIES)}")
    seen: Dict[Tuple, LayerTask] = {}
    for net, (family, _, _) in NETWORKS.items():
        for t in network_layers(net):
            if t.key() in seen:
                prev = seen[t.key()]
                seen[t.key()] = LayerTask(prev.op, prev.shape, prev.network, prev.family, prev.count + t.count)
            else:
                seen[t.key()] = t
    return [t for t in seen.values() if t.family in families]


def sample_tasks(per_family: int, seed: int = 0, families: Sequence[str] = FAMILIES,
                 max_flops: float = 4e9) -> List[LayerTask]:
    """Prior-guided sample: up to per_family distinct layers of each family,
    drawn with probability proportional to how often the networks run them
    (a layer repeated 23 times in ResNet-101 is met 23 times as often), among
    layers below max_flops (keeps the collection's measurements short)."""
    rng = random.Random(seed)
    out: List[LayerTask] = []
    layers = all_layers(families)
    for fam in families:
        pool = [t for t in layers if t.family == fam and t.shape.flops <= max_flops]
        chosen: List[LayerTask] = []
        while pool and len(chosen) < per_family:
            pick = rng.choices(range(len(pool)), weights=[t.count for t in pool])[0]
            chosen.append(pool.pop(pick))
        out += chosen
    return out
