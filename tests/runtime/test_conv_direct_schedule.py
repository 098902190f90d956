"""The direct kernel's pixel order and inner reduction blocks (issue 14's
small-output layers): a flat schedule runs its register tiles over all
Ho*Wo output pixels, across rows, through a pixel table; inner blocks cut a
work item's reduction so a sub-block's weights stay in L1 across its tiles.
Each is forced here on shapes with 1, primes, strides, pads, dilation and
partial channel blocks, and compared with the float64 reference (with the
epilogues), between one-off and prepared calls, and between layouts."""
from __future__ import annotations

import numpy as np
import pytest

from reference import assert_close, conv_ref, conv_tol

LAYERS = [
    # N, C, H, W, K, R, S, strides, pads, dilations
    (1, 37, 7, 7, 41, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),      # 7x7 output, prime channels
    (2, 19, 13, 11, 29, 3, 3, (2, 2), (1, 0, 1, 2), (1, 1)),    # stride 2, uneven pads, two images
    (1, 67, 14, 14, 23, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1)),    # 1x1 stride 2 (ResNet downsample shape)
    (1, 8, 1, 29, 17, 1, 3, (1, 1), (0, 1, 0, 1), (1, 1)),      # one output row, tall/skinny
    (1, 1, 5, 5, 1, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1)),        # one channel in and out
    (1, 13, 11, 9, 10, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)),     # dilation 2
    (1, 9, 3, 3, 12, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1)),       # a 1x1 output
]
IDS = [f"C{L[1]}H{L[2]}W{L[3]}K{L[4]}R{L[5]}s{L[7][0]}" for L in LAYERS]


def _variants(ac):
    tiles = [f"{n}x{kb}" for n, kb in ac._ext.conv2d_direct_tiles()]
    return [f"direct {t} blocked-in {p}" for t in tiles
            for p in ("flat", "rows inner=2", "flat inner=3", "flat inner=99", "flat cblocks=2 inner=2")]


def _tensors(layer, seed):
    N, C, H, W, K, R, S, strides, pads, dil = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C, R, S), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    scale = (rng.random(K, dtype=np.float32) + 0.5).astype(np.float32)
    shift = rng.standard_normal(K, dtype=np.float32)
    res = rng.standard_normal(conv_ref(x, w, None, strides, pads, dil).shape, dtype=np.float32)
    return x, w, b, scale, shift, res


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_flat_and_inner_blocks_match_reference(ac, layer):
    """Every tile with flat pixels and inner blocks (more than the channel
    groups, too), batch-norm, residual and relu6, at 1 and 2 threads; the
    one-off call and the prepared layer give the same bits."""
    N, C, H, W, K, R, S, strides, pads, dil = layer
    x, w, b, scale, shift, res = _tensors(layer, 23)
    want = conv_ref(x, w, b, strides, pads, dil, scale=scale, shift=shift, residual=res, activation="relu6")
    tol = conv_tol(x, w * scale[:, None, None, None], want, 1) * 1.5
    kw = dict(strides=strides, pads=pads, dilations=dil, scale=scale, shift=shift, activation="relu6")
    for variant in _variants(ac):
        for threads in (1, 2):
            got = ac.conv2d(x, w, b, residual=res, algorithm=variant, threads=threads, **kw)
            assert_close(got, want, tol, f"{variant} threads={threads}")
            layer_ = ac.prepare_conv2d(w, b, input_shape=(C, H, W), algorithm=variant, threads=threads, **kw)
            np.testing.assert_array_equal(layer_(x, residual=res), got, err_msg=f"{variant} prepared")


@pytest.mark.parametrize("layer", LAYERS[:3], ids=IDS[:3])
def test_flat_on_blocked_activations(ac, layer):
    """A flat schedule reading and writing NCHW[B]c (the network layout, the
    residual blocked too) and clip as the activation."""
    N, C, H, W, K, R, S, strides, pads, dil = layer
    x, w, b, _, _, res = _tensors(layer, 29)
    want = conv_ref(x, w, b, strides, pads, dil, residual=res)
    want = np.clip(want, -0.5, 2.0)
    tiles = [f"{n}x{kb}" for n, kb in ac._ext.conv2d_direct_tiles()]
    for t in tiles:
        layer_ = ac.prepare_conv2d(w, b, input_shape=(C, H, W), strides=strides, pads=pads, dilations=dil,
                                   activation=("clip", -0.5, 2.0), layout="blocked",
                                   algorithm=f"direct {t} flat inner=2")
        got = layer_(ac.to_blocked(x), residual=ac.to_blocked(res)).to_nchw()
        assert_close(got, want, conv_tol(x, w, want, 1) * 1.5, f"{t} blocked")


def test_model_inner_blocks_only_beyond_l2(ac):
    """512x7x7->512 3x3: prepared, a reduction block's weights fit half of L2
    (no inner blocks); a one-off call packing per group keeps one block, whose
    weights (hundreds of KB per group) do not, so it runs inner blocks. C++
    (conv2d_choice) and Python (plan_layer) agree on both schedules."""
    from autoconfig.models import conv as conv_model
    from autoconfig.spec import Conv2dShape
    L = Conv2dShape(C=512, H=7, W=7, K=512, R=3, S=3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
    half_l2 = ac.host().caches[1].size_bytes / 2
    for prepared in (True, False):
        plan = conv_model.plan_layer(ac.host(), L, isa_suffix="x", allow=["direct"], prepared=prepared)
        cpp = ac._ext.conv2d_choice(1, 512, 7, 7, 512, 3, 3, [1, 1], [1, 1, 1, 1], [1, 1], 1, 1,
                                    [1, -1, -1, -1, -1, -1, -1, -1], 0.0, 0, 0, prepared=prepared)
        assert cpp["inner_blocks"] == plan.value("inner_blocks")
        assert cpp["flat"] == (plan.value("pixels") == "flat")
        assert cpp["pack_groups"] == (plan.value("pack") == "groups")
        assert cpp["cblocks"] == plan.value("c_blocks")
        n, kb = ac._ext.conv2d_direct_tiles()[cpp["tile"]]
        w_block = kb * ac.block_size() * 512 * 9 * 4 / cpp["cblocks"]
        assert (cpp["inner_blocks"] > 1) == (w_block > half_l2), (prepared, w_block, cpp)


@pytest.mark.parametrize("algorithm, fragment", [
    ("direct nchw-in flat", "a flat schedule runs on blocked input (blocked-in), groups-outer"),
    ("direct groups-inner flat", "a flat schedule runs on blocked input (blocked-in), groups-outer"),
    ("direct inner=0", "expected inner=N with N >= 1"),
    ("direct inner=x", "expected inner=N with N >= 1"),
    ("direct diagonal", "inner=N, whole-pack or group-pack"),
    ("direct groups-inner group-pack", "group-pack runs groups-outer in one reduction block"),
    ("direct cblocks=2 group-pack", "group-pack runs groups-outer in one reduction block"),
])
def test_schedule_errors(ac, algorithm, fragment):
    x = np.ones((1, 3, 5, 5), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ac.conv2d(x, w, algorithm=algorithm)


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_group_packing_equals_whole_packing(ac, layer):
    """A one-off call whose kernel packs the weights group by group (each
    thread the groups it runs, batch-norm scale folded in) gives the bits of
    the whole re-layout and of the prepared layer, at 1, 2 and 3 threads,
    rows and flat, with and without inner blocks; and matches float64."""
    N, C, H, W, K, R, S, strides, pads, dil = layer
    x, w, b, scale, shift, res = _tensors(layer, 31)
    want = conv_ref(x, w, b, strides, pads, dil, scale=scale, shift=shift, residual=res, activation="relu")
    tol = conv_tol(x, w * scale[:, None, None, None], want, 1) * 1.5
    kw = dict(strides=strides, pads=pads, dilations=dil, scale=scale, shift=shift, activation="relu", residual=res)
    tiles = [f"{n}x{kb}" for n, kb in ac._ext.conv2d_direct_tiles()]
    for t in tiles:
        for sched in ("rows", "flat inner=2", "rows inner=3"):
            if sched.startswith("flat") and (R, S, strides, pads) == (1, 1, (1, 1), (0, 0, 0, 0)):
                continue
            for threads in (1, 2, 3):
                base = f"direct {t} blocked-in groups-outer cblocks=1 {sched}"
                whole = ac.conv2d(x, w, b, algorithm=base + " whole-pack", threads=threads, **kw)
                group = ac.conv2d(x, w, b, algorithm=base + " group-pack", threads=threads, **kw)
                np.testing.assert_array_equal(group, whole, err_msg=f"{base} threads={threads}")
                assert_close(group, want, tol, f"{base} group-pack threads={threads}")
        layer_ = ac.prepare_conv2d(w, b, input_shape=(C, H, W), strides=strides, pads=pads, dilations=dil,
                                   scale=scale, shift=shift, activation="relu",
                                   algorithm=f"direct {t} blocked-in groups-outer cblocks=1 rows group-pack")
        group = ac.conv2d(x, w, b, algorithm=f"direct {t} blocked-in groups-outer cblocks=1 rows group-pack", **kw)
        np.testing.assert_array_equal(layer_(x, residual=res), group, err_msg=f"{t} prepared")


def test_group_packing_sees_weights_changed_in_place(ac):
    """No cache: the kernel packs from w on every call."""
    x = np.random.default_rng(3).standard_normal((1, 16, 6, 6), dtype=np.float32)
    w = np.random.default_rng(4).standard_normal((24, 16, 3, 3), dtype=np.float32)
    alg = "direct groups-outer cblocks=1 group-pack"
    y1 = ac.conv2d(x, w, pads=1, algorithm=alg)
    w *= 2.0
    y2 = ac.conv2d(x, w, pads=1, algorithm=alg)
    np.testing.assert_allclose(y2, 2.0 * y1, rtol=1e-6, atol=1e-6)


def test_oneoff_model_packs_per_group_when_weights_exceed_the_cache(ac):
    """The one-off choice for ResNet-50's 1024->2048 1x1/2 downsample (8 MB of
    weights, more than half of L3 on the hosts measured): whatever the C++
    model picks, Python explains the same estimate; when it is direct, the
    estimate names the packing it charged."""
    from autoconfig.models import conv as conv_model
    from autoconfig.spec import Conv2dShape
    L = Conv2dShape(C=1024, H=14, W=14, K=2048, R=1, S=1, stride_h=2, stride_w=2)
    cpp = ac._ext.conv2d_choice(1, 1024, 14, 14, 2048, 1, 1, [2, 2], [0, 0, 0, 0], [1, 1], 1, 1,
                                [1, -1, -1, -1, -1, -1, -1, -1], 0.0, 0, 0, prepared=False)
    cands = [c for c in conv_model.candidates(ac.host(), L, 1, allow=["direct"], prepared=False) if not c.rejected]
    best = min(cands, key=lambda c: c.predicted_s)
    assert cpp["estimates"]["direct"] == pytest.approx(best.predicted_s, rel=1e-9)
    assert cpp["pack_groups"] == ("group-pack" in best.name)
    assert ("pack_groups" in best.terms) != ("prepare" in best.terms)
