"""conv2d's arguments besides its tensors: the layer's geometry, the epilogue,
the algorithm choice, the error tolerance and the layouts, checked and turned
into what the extension takes."""
from __future__ import annotations

import numbers
from typing import List

import numpy as np

from ..vocabulary import ACTIVATION_ALIASES, ACTIVATIONS, CONV_ACTIVATIONS, CONV_ALGORITHMS, CONV_LAYOUTS
from .checks import INT32_MAX, f32_array, is_int
from .guard import require_ext

ANY_ALGORITHM = 0xFFFFFFFF   # Conv2dArgs::algorithms: every algorithm may be chosen
# The largest size, stride, pad, dilation or group count of a layer: the C++
# side multiplies a few of them in int64_t (padded sizes, element counts).
LAYER_INT_MAX = INT32_MAX


def _int_range(values, name: str, minimum: int):
    if min(values) < minimum or max(values) > LAYER_INT_MAX:
        raise ValueError(f"{name}: expected values >= {minimum} (at most {LAYER_INT_MAX}), got {tuple(values)}")


def int_pair(v, name: str, minimum: int):
    if is_int(v):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(is_int(e) for e in v):
        raise ValueError(f"{name}: expected an int or a pair of ints, got {v!r}")
    _int_range(v, name, minimum)
    return [int(e) for e in v]


def channel_vector(v, name: str, K: int):
    """bias, scale or shift: None or a contiguous (K,) float32 vector."""
    if v is None:
        return None
    v = f32_array(v, name)
    if v.shape != (K,):
        raise ValueError(f"{name}: expected shape ({K},) (one value per output channel), got {v.shape}")
    return np.ascontiguousarray(v)


def _direct_variant(text: str) -> List[int]:
    """[tile index, input, order, reduction blocks] of "direct [NxKB]
    [blocked-in|nchw-in] [groups-outer|groups-inner] [cblocks=N]" (-1 where
    not given: the model's choice; cblocks implies groups-outer)."""
    tile, inp, order, cblocks = -1, -1, -1, -1
    tiles = [tuple(t) for t in require_ext().conv2d_direct_tiles()]
    for tok in text.split()[1:]:
        if tok in ("blocked-in", "nchw-in"):
            inp = ("blocked-in", "nchw-in").index(tok)
        elif tok in ("groups-outer", "groups-inner"):
            order = ("groups-outer", "groups-inner").index(tok)
        elif tok.startswith("cblocks="):
            value = tok[len("cblocks="):]
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"algorithm: {text!r}: {tok!r}: expected cblocks=N with N >= 1")
            cblocks = int(value)
        else:
            try:
                n, kb = (int(v) for v in tok.split("x"))
            except ValueError:
                n = kb = None
            if (n, kb) not in tiles:
                raise ValueError(f"algorithm: {text!r}: {tok!r} is not one of this build's direct tiles "
                                 f"({', '.join(f'{a}x{b}' for a, b in tiles)}), blocked-in, nchw-in, "
                                 "groups-outer, groups-inner or cblocks=N")
            tile = tiles.index((n, kb))
    if cblocks > 0 and order == 1:
        raise ValueError(f"algorithm: {text!r}: reduction blocks (cblocks) run groups-outer only")
    return [tile, inp, order, cblocks]


def algorithm_choice(algorithm) -> List[int]:
    """[algorithm mask, direct tile, direct input, direct order, direct reduction
    blocks] from None (the model chooses), one name, or a list of names to
    choose among; a direct name may pin the variant, e.g. "direct 6x2 nchw-in"
    (explain's candidate names)."""
    if algorithm is None:
        return [ANY_ALGORITHM, -1, -1, -1, -1]
    names = [algorithm] if isinstance(algorithm, str) else list(algorithm) if isinstance(algorithm, (list, tuple)) \
        else None
    if names is None:
        raise ValueError(f"algorithm: expected None, a name or a list of names, got {algorithm!r}")
    mask, direct = 0, [-1, -1, -1, -1]
    for n in names:
        base = n.split()[0] if isinstance(n, str) and n.split() else n
        if base not in CONV_ALGORITHMS or (base != "direct" and n != base):
            raise ValueError(f"algorithm: expected one of {', '.join(CONV_ALGORITHMS)} (or a list of them; "
                             f"'direct' may name a variant such as 'direct nchw-in'), got {n!r}")
        mask |= 1 << CONV_ALGORITHMS.index(base)
        if base == "direct":
            direct = _direct_variant(n)
    if not mask:
        raise ValueError("algorithm: the list is empty")
    return [mask] + direct


def conv_epilogue(activation):
    """(activation code, clip_lo, clip_hi) from None, 'relu', 'relu6' or ('clip', lo, hi)."""
    if isinstance(activation, tuple) and len(activation) == 3 and activation[0] == "clip":
        lo, hi = activation[1], activation[2]
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (lo, hi)) or not lo <= hi:
            raise ValueError(f"activation: ('clip', lo, hi) needs numbers with lo <= hi, got {activation!r}")
        return 0, float(lo), float(hi)
    name = ACTIVATION_ALIASES.get(activation, activation) if isinstance(activation, (str, type(None))) \
        else activation
    if name not in CONV_ACTIVATIONS:
        raise ValueError(f"activation: expected None, 'relu', 'relu6' or ('clip', lo, hi), got {activation!r}")
    return ACTIVATIONS.index(name), float("-inf"), float("inf")


def conv_layer(x_shape, w_shape, strides, pads, dilations, groups):
    """Checks a layer's geometry; returns (sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo)."""
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    if not is_int(groups) or not 1 <= groups <= LAYER_INT_MAX:
        raise ValueError(f"groups: expected an integer >= 1 (at most {LAYER_INT_MAX}), got {groups!r}")
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"x: expected C, H, W >= 1, got shape {tuple(x_shape)}")
    if K < 1 or R < 1 or S < 1:
        raise ValueError(f"w: expected K, R, S >= 1, got shape {tuple(w_shape)}")
    if max(C, H, W) > LAYER_INT_MAX:
        raise ValueError(f"x: expected C, H, W <= {LAYER_INT_MAX}, got shape {tuple(x_shape)}")
    if max(K, R, S) > LAYER_INT_MAX:
        raise ValueError(f"w: expected K, R, S <= {LAYER_INT_MAX}, got shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"groups: input channels C={C} are not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"groups: output channels K={K} are not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(f"w: expected shape (K, C/groups, R, S) = ({K}, {C // groups}, R, S) for C={C}, "
                         f"groups={groups}, got {tuple(w_shape)}")
    sh, sw = int_pair(strides, "strides", 1)
    dh, dw = int_pair(dilations, "dilations", 1)
    if is_int(pads):
        pads = (pads,) * 4
    if not isinstance(pads, (tuple, list)) or len(pads) != 4 or not all(is_int(e) for e in pads):
        raise ValueError(f"pads: expected (top, left, bottom, right) ints or one int, got {pads!r}")
    _int_range(pads, "pads", 0)
    pt, pl, pb, pr = (int(p) for p in pads)
    Ho = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"output size would be {Ho}x{Wo}: the kernel {R}x{S} (dilations {dh},{dw}) does not "
                         f"fit the padded input {H + pt + pb}x{W + pl + pr}")
    return sh, sw, (pt, pl, pb, pr), dh, dw, Ho, Wo


def tolerance_arg(v) -> float:
    """0.0 (no limit) or a relative error in (0, 1)."""
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 < v < 1.0:
        raise ValueError(f"tolerance: expected None or a relative error between 0 and 1 (exclusive), got {v!r}")
    return float(v)


def layout_arg(v, name: str) -> str:
    if v not in CONV_LAYOUTS:
        raise ValueError(f"{name}: expected one of {', '.join(CONV_LAYOUTS)}, got {v!r}")
    return v


def layout_code(layout: str) -> int:
    """autoconfig::ConvLayout of a checked layout name."""
    return CONV_LAYOUTS.index(layout)
