"""The predictor's inputs and its selector: task sampling (tuning/tasks.py),
features (tuning/features.py), exploration-based sampling (tuning/dataset.py),
and the shipped model as the "predictor" selector (tuning/predictor.py)."""
import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from autoconfig.probe.targets import _builtin
from autoconfig.shapes import Conv2dShape, GemmShape
from autoconfig.tuning import features as F
from autoconfig.tuning import tasks as T
from autoconfig.tuning.dataset import SamplingPlan, TaskState, knob_distance, neighbours
from autoconfig.tuning.space import Config, Task, check_config, profile_for_isa, space

V3 = _builtin("x86-64-v3")
V2 = profile_for_isa(V3, "x86-64-v2")


# --------------------------------------------------------------------------- tasks
def macs(network):
    return sum(t.shape.flops * t.count for t in T.network_layers(network)) / 2


@pytest.mark.parametrize("network, published", [
    ("resnet50", 4.09e9), ("resnet18", 1.81e9), ("mobilenet_v2", 0.300e9), ("densenet121", 2.87e9),
    ("mobilenet_v1", 0.569e9), ("efficientnet_b0", 0.39e9)])
def test_networks_have_their_published_size(network, published):
    # multiply-adds of the conv layers (classifier, pooling and SE gates excluded) against the papers'
    # totals: ResNet (He et al.), MobileNet v1/v2, DenseNet-121, EfficientNet-B0 (Tan and Le, 0.39B)
    assert macs(network) == pytest.approx(published, rel=0.03)


def test_layers_are_valid_and_tagged():
    layers = T.all_layers()
    assert {t.family for t in layers} == set(T.FAMILIES)
    assert len({t.key() for t in layers}) == len(layers)         # a shape belongs to one family
    for t in layers:
        if t.op == "conv2d":
            assert t.shape.out_h >= 1 and t.shape.out_w >= 1 and t.shape.C % t.shape.groups == 0
        else:
            assert min(t.shape.M, t.shape.N, t.shape.K) >= 1
    # Inception v3 ends at 8x8 with 2048 channels; BERT-large's FFN at sequence 384
    assert Conv2dShape(2048, 8, 8, 192, 1, 1) in {t.shape for t in T.network_layers("inception_v3")}
    assert GemmShape(384, 4096, 1024) in {t.shape for t in T.network_layers("bert-large")}


MODELS_DIR = os.environ.get("AUTOCONFIG_ONNX_MODELS") or str(Path(__file__).resolve().parents[2] / "benchmarks" / "models")


@pytest.mark.parametrize("network", ["resnet18", "resnet50", "mobilenet_v2"])
def test_networks_match_torchvision_export(network):
    """The generators against torchvision's own definitions, exported to ONNX
    by benchmarks/export_models.py (skipped when they were not exported;
    AUTOCONFIG_ONNX_MODELS names another folder): the same distinct conv
    layers, each as often."""
    path = os.path.join(MODELS_DIR, f"{network}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} not exported (python benchmarks/export_models.py)")
    onnx = pytest.importorskip("onnx")
    m = onnx.shape_inference.infer_shapes(onnx.load(path))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(m.graph.value_info) + list(m.graph.input)}
    weights = {i.name: list(i.dims) for i in m.graph.initializer}
    exported = {}
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        _, C, H, W = dims[n.input[0]]
        K, _, R, S = weights[n.input[1]]
        st, p = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
        shape = Conv2dShape(C, H, W, K, R, S, stride_h=st[0], stride_w=st[1], pad_top=p[0], pad_left=p[1],
                            pad_bottom=p[2], pad_right=p[3], groups=a.get("group", 1))
        exported[shape] = exported.get(shape, 0) + 1
    assert exported == {t.shape: t.count for t in T.network_layers(network)}


def test_sample_tasks_deterministic_and_by_family():
    a = T.sample_tasks(3, seed=5)
    assert a == T.sample_tasks(3, seed=5)
    assert sorted({t.family for t in a}) == sorted(T.FAMILIES)
    assert all(sum(1 for t in a if t.family == f) == 3 for f in T.FAMILIES)
    only = T.sample_tasks(2, seed=1, families=["vit"])
    assert {t.family for t in only} == {"vit"} and len(only) == 2
    with pytest.raises(ValueError, match="families: unknown"):
        T.sample_tasks(1, families=["lenet"])


# --------------------------------------------------------------------------- features
TASKS = [Task("gemm", GemmShape(1, 1000, 2048)), Task("gemm", GemmShape(7, 13, 29)),
         Task("gemm", GemmShape(97, 64, 768), threads=2), Task("gemm", GemmShape(384, 3, 1)),
         Task("conv2d", Conv2dShape(3, 31, 29, 64, 7, 7, stride_h=2, stride_w=2, pad_top=3, pad_left=3,
                                    pad_bottom=3, pad_right=3)),
         Task("conv2d", Conv2dShape(64, 14, 14, 64, 3, 3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)),
         Task("conv2d", Conv2dShape(160, 17, 17, 192, 7, 1, pad_top=3, pad_bottom=3)),
         Task("conv2d", Conv2dShape(96, 13, 13, 96, 3, 3, groups=96, pad_top=1, pad_left=1, pad_bottom=1,
                                    pad_right=1)),
         Task("conv2d", Conv2dShape(256, 7, 7, 1, 1, 1))]


@pytest.mark.parametrize("profile", [V3, V2], ids=["v3", "v2"])
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.key())
def test_features_finite_fixed_width(task, profile):
    configs = space(task, profile)
    x = F.feature_matrix(task, configs, profile)
    assert x.shape == (len(configs), len(F.FEATURES))
    assert np.all(np.isfinite(x))
    assert x[:, F.COLUMN["model_vs_best"]].min() == 0.0
    assert x[0, F.COLUMN["task_is_gemm"]] == (task.op == "gemm")
    assert x[0, F.COLUMN["hw_lanes"]] == profile.vector_bits // 32
    # every config of the space is told apart by its features
    assert len({row.tobytes() for row in x}) == len(configs)


V4 = _builtin("x86-64-v4")
SPACE_TASKS = [Task("gemm", GemmShape(7, 13, 29)), Task("gemm", GemmShape(97, 64, 768), threads=2),
               Task("gemm", GemmShape(384, 3, 1), threads=4), Task("gemm", GemmShape(2, 4099, 31), threads=3),
               Task("gemm", GemmShape(1, 1000, 2048)), Task("gemm", GemmShape(128, 3072, 768), threads=6)]


@pytest.mark.parametrize("profile", [V4, V3, V2], ids=["v4", "v3", "v2"])
@pytest.mark.parametrize("task", SPACE_TASKS + TASKS[4:6], ids=lambda t: t.key())
def test_space_features_equal_the_per_config_path(task, profile):
    """The predictor reads a GEMM space as blocks (space.gemm_blocks, knob
    columns by index arithmetic, Configs made on demand); the per-config path
    (feature_matrix over space()'s list, as training computes it) gives the
    same matrix bit for bit and the same configs in the same order."""
    x, configs = F.space_features(task, profile)
    full = space(task, profile)
    assert len(configs) == len(full)
    assert list(configs) == full
    assert np.array_equal(x, F.feature_matrix(task, full, profile))
    if task.op == "gemm" and task.shape.M > 1:
        from autoconfig.tuning.space import gemm_blocks
        blocks = gemm_blocks(task, profile)
        assert sum(len(b) for b in blocks) == len(full)
        assert configs[-1] == full[-1] and configs[1:4] == full[1:4] and configs[::97] == full[::97]
        # the space's fast Config constructor makes the same (equal, same hash) Config as Config.make
        for c in full[::53] + [configs[-1]]:
            made = Config.make("gemm", **c.as_dict())
            assert c == made and hash(c) == hash(made) and c.knobs == made.knobs
        with pytest.raises(IndexError, match="outside a space of"):
            configs[len(full)]


@pytest.mark.parametrize("task", TASKS[4:] + [Task("conv2d", Conv2dShape(64, 14, 14, 64, 3, 3, **{
    f"pad_{s}": 1 for s in ("top", "left", "bottom", "right")}), threads=2, tolerance=1e-6)], ids=lambda t: t.key())
def test_conv_candidates_are_the_models(task):
    """space.conv_candidates reads the analytical plan's candidates (one
    evaluation per layer): they must be what models.conv.candidates() gives
    for the task's threads and tolerance, none chosen."""
    from autoconfig.models import conv as conv_model
    from autoconfig.tuning.space import conv_candidates
    got = conv_candidates(task, V3)
    want = conv_model.candidates(V3, task.shape, task.threads, tolerance=task.tolerance)
    assert [(c.name, c.predicted_s, c.terms, c.rejected) for c in got] == [
        (c.name, c.predicted_s, c.terms, c.rejected) for c in want]
    assert not any(c.chosen for c in got)
    got[0].terms["changed"] = 1.0                       # copies: the memo is not touched
    assert "changed" not in conv_candidates(task, V3)[0].terms


def test_gemm_blocks_refuse_gemv():
    from autoconfig.tuning.space import SpaceError, gemm_blocks
    with pytest.raises(SpaceError, match="gemm_blocks: expected a GEMM task with M > 1"):
        gemm_blocks(Task("gemm", GemmShape(1, 64, 64)), V3)


def test_ranked_configs_are_a_sequence():
    from autoconfig.tuning import predictor as P
    task = Task("gemm", GemmShape(97, 64, 768), threads=2)
    ranked, scores = P.rank(task, V3)
    listed = list(ranked)
    assert len(listed) == len(ranked) == len(scores) and len(set(listed)) == len(listed)
    assert ranked[0] == listed[0] and ranked[-1] == listed[-1] and ranked[:8] == listed[:8]
    assert ranked == listed and ranked != listed[::-1]
    assert set(listed) <= set(space(task, V3))


def test_feature_names_unique():
    assert len(set(F.FEATURES)) == len(F.FEATURES)


# --------------------------------------------------------------------------- sampling
def test_exploration_sampling():
    task = Task("gemm", GemmShape(64, 256, 128))
    configs = space(task, V3)
    rng = random.Random(0)
    st = TaskState(None, task, "x86-64-v3", configs, list(range(len(configs))))
    first = st.next_configs("analytical", 4, rng)
    assert first == configs[:4]
    for i, c in enumerate(first):
        st.done[c] = (float(4 - i), "analytical", 0.0)              # the 4th is the fastest
    near = st.next_configs("neighbour", 5, rng)
    assert all(c not in st.done for c in near) and len(near) == 5
    assert max(knob_distance(first[3], c) for c in near) <= min(
        knob_distance(first[3], c) for c in configs if c not in st.done and c not in near)
    rand = st.next_configs("random", 6, rng)
    assert len(set(rand)) == 6 and not set(rand) & set(st.done)
    small = TaskState(None, task, "x86-64-v3", configs[:10], list(range(10)))
    assert small.next_configs("analytical", 3, rng, exhaustive=10) == configs[:10]
    assert neighbours(configs[0], configs[:1], {}, 3, rng) == []
    assert [s for s, _ in SamplingPlan(6, 5, 2).stages()] == ["analytical", "neighbour", "neighbour", "random"]


# --------------------------------------------------------------------------- the shipped model and its selector
def test_shipped_predictor_ranks_deterministically():
    from autoconfig.tuning import predictor as P
    model = P.load_model(P.SHIPPED)
    assert model.features == list(F.FEATURES)
    task = Task("conv2d", Conv2dShape(128, 28, 28, 128, 3, 3, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1))
    a, sa = P.rank(task, V3, model)
    b, sb = P.rank(task, V3, model)
    assert a == b and np.array_equal(sa, sb)
    assert sorted(a, key=lambda c: c.name()) == sorted(space(task, V3), key=lambda c: c.name())
    assert np.all(np.diff(sa) <= 0)


def test_corrupt_predictor_refused(tmp_path, monkeypatch):
    from autoconfig.tuning import predictor as P
    from autoconfig.tuning.ranker import RankerFileError
    from autoconfig.tuning.selectors import select
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(P.SHIPPED.read_bytes()[:200])
    monkeypatch.setenv("AUTOCONFIG_PREDICTOR", str(bad))
    with pytest.raises(RankerFileError, match="bad.json.gz: not a readable"):
        select(TASKS[1], V3, "predictor")
    other = tmp_path / "other.json.gz"
    d = json.loads(gzip.decompress(P.SHIPPED.read_bytes()))
    d["features"] = d["features"][:-1] + ["a_feature_from_elsewhere"]
    other.write_bytes(gzip.compress(json.dumps(d).encode()))
    monkeypatch.setenv("AUTOCONFIG_PREDICTOR", str(other))
    with pytest.raises(RankerFileError, match="trained on other features.*a_feature_from_elsewhere.*retrain"):
        select(TASKS[1], V3, "predictor")


def test_predictor_plans_every_default_spec_layer():
    from autoconfig import spec as spec_mod
    from autoconfig.tuning.selectors import SelectorError, select
    from autoconfig.tuning.space import tasks_from_specs
    specs = spec_mod.load_dirs([Path(__file__).resolve().parents[2] / "kernels_spec"])
    tasks = tasks_from_specs(specs, V3)
    assert len(tasks) > 50
    for task in tasks:
        plan = select(task, V3, "predictor")
        assert plan.op in ("matmul", "conv2d")
        reasons = [p.why for p in plan.params.values()] + plan.notes     # the gemv path: one config, a note
        assert any(w.startswith("predictor: score") and "rank 1 of" in w for w in reasons), plan.explain()
        if plan.algorithm == "blis-gemm":
            k = {n: plan.value(n) for n in ("mr", "nr", "kc", "mc", "nc", "loop_order", "grid")}
            check_config(task, Config.make("gemm", **k), V3)
    with pytest.raises(SelectorError, match="K must be a positive integer"):
        select(tasks[0], V3, "predictor:zero")
