"""The tuning dataset's file format (tuning/dataset.py): several machines in
one file, the single-machine version 1 still read, and malformed files
refused with the key that is wrong."""
import gzip
import json

import pytest

from autoconfig.probe.targets import _builtin
from autoconfig.tuning.dataset import (FORMAT, V1_MACHINE, Dataset, DatasetError, MachineData, Record, load_dataset,
                                       merge, replace_pairs, summary)
from autoconfig.tuning.features import FEATURES
from autoconfig.tuning.space import Task, profile_for_isa, space
from autoconfig.tuning.train import groups_of

V4 = _builtin("x86-64-v4")
TASK = {"op": "gemm", "shape": {"M": 64, "N": 64, "K": 64}, "threads": 1, "activations": ["none"],
        "tolerance": None}


def record(machine, isa, config, seconds, network="bert-base", family="bert"):
    return Record(TASK, network, family, isa, config, seconds, "analytical", 0.5, machine)


def two_configs(isa):
    task = Task.from_dict(TASK)
    return [c.to_dict() for c in space(task, profile_for_isa(V4, isa))[:2]]


def two_machines() -> Dataset:
    """zen4 and zen5 under x86-64-v4, the second CPU with twice the FMA units."""
    fast = V4.to_dict()
    fast["fma_per_cycle"] = 2.0 * V4.fma_per_cycle
    a, b = two_configs("x86-64-v4")
    ds = Dataset({"zen4": MachineData({"x86-64-v4": V4.to_dict()}, {"cpu": "Zen 4"}),
                  "zen5": MachineData({"x86-64-v4": fast}, {"cpu": "Zen 5"})},
                 [record("zen4", "x86-64-v4", a, 2e-5), record("zen4", "x86-64-v4", b, 3e-5),
                  record("zen5", "x86-64-v4", a, 1.5e-5), record("zen5", "x86-64-v4", b, 1e-5)],
                 {"note": "test"})
    return ds


def write(path, d):
    path.write_bytes(gzip.compress(json.dumps(d).encode()))


def test_round_trip_keeps_machines_records_and_metadata(tmp_path):
    ds = two_machines()
    ds.save(tmp_path / "d.json.gz")
    back = load_dataset(tmp_path / "d.json.gz")
    assert back == ds
    assert {k[1] for k in back.groups()} == {"zen4", "zen5"}       # one group per machine, same task


def test_groups_see_their_own_machines_profile():
    groups = {g.machine: g for g in groups_of(two_machines())}
    assert groups["zen4"].profile.fma_per_cycle == V4.fma_per_cycle
    assert groups["zen5"].profile.fma_per_cycle == 2.0 * V4.fma_per_cycle
    col = FEATURES.index("hw_fma_units")
    assert groups["zen5"].x[0, col] == 2.0 * groups["zen4"].x[0, col]
    # the same config is fastest on one machine and slowest on the other: times are not mixed
    assert groups["zen4"].seconds.tolist() == [2e-5, 3e-5] and groups["zen5"].seconds.tolist() == [1.5e-5, 1e-5]
    assert [g.machine for g in groups_of(two_machines(), machines=["zen5"])] == ["zen5"]


def test_version_1_file_loads_as_one_machine(tmp_path):
    a, _ = two_configs("x86-64-v4")
    rec = {k: v for k, v in record(V1_MACHINE, "x86-64-v4", a, 2e-5).__dict__.items() if k != "machine"}
    write(tmp_path / "v1.json.gz", {"format": FORMAT, "version": 1, "profiles": {"x86-64-v4": V4.to_dict()},
                                    "records": [rec], "metadata": {"cpu": "Zen 4"}})
    ds = load_dataset(tmp_path / "v1.json.gz")
    assert list(ds.machines) == [V1_MACHINE]
    assert ds.machines[V1_MACHINE].metadata == {"cpu": "Zen 4"}
    assert ds.records[0].machine == V1_MACHINE and ds.records[0].seconds == 2e-5
    assert "machine host: 1 records, 1 groups" in summary(ds)


def test_merge_names_single_machine_files_and_refuses_a_clash(tmp_path):
    one = Dataset({V1_MACHINE: MachineData({"x86-64-v4": V4.to_dict()}, {"cpu": "Zen 4"})},
                  [record(V1_MACHINE, "x86-64-v4", two_configs("x86-64-v4")[0], 2e-5)])
    both = merge([("zen4", one), (None, Dataset({"zen5": two_machines().machines["zen5"]},
                                                 two_machines().records[2:]))])
    assert sorted(both.machines) == ["zen4", "zen5"]
    assert [r.machine for r in both.records] == ["zen4", "zen5", "zen5"]
    with pytest.raises(DatasetError, match=r"\['zen4', 'zen5'\] in two parts"):
        merge([(None, both), (None, both)])
    with pytest.raises(DatasetError, match="must hold one machine"):
        merge([("x", both)])


def test_replace_swaps_the_remeasured_pairs_and_drops_the_stale_ones():
    ds = two_machines()
    a, _ = two_configs("x86-64-v4")
    new = Dataset({"zen5": MachineData({"x86-64-v4": ds.machines["zen5"].profiles["x86-64-v4"]})},
                  [record("zen5", "x86-64-v4", a, 0.5e-5)])
    out = replace_pairs(ds, new, note="kernels changed")
    assert [(r.machine, r.seconds) for r in out.records] == [("zen4", 2e-5), ("zen4", 3e-5), ("zen5", 0.5e-5)]
    assert out.metadata["replaced"] == ["kernels changed"] and out.metadata["note"] == "test"
    dropped = replace_pairs(ds, new, drop=[("zen4", "x86-64-v4")])
    assert [r.machine for r in dropped.records] == ["zen5"] and "x86-64-v4" not in dropped.machines["zen4"].profiles
    assert ds == two_machines()                    # the base is not edited


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("machines"), r"machines: expected an object"),
    (lambda d: d["machines"]["zen5"].update(profiles=[]), r"machines\['zen5'\]\.profiles: expected an object"),
    (lambda d: d["records"][1].pop("seconds"), r"records\[1\]: missing key\(s\) \['seconds'\]"),
    (lambda d: d["records"][2].update(machine="zen6"), r"records\[2\]\.machine: 'zen6' is not in machines"),
    (lambda d: d["records"][3].update(isa="x86-64-v2"), r"records\[3\]\.isa: machine 'zen5' has no profile"),
    (lambda d: d["records"][0].update(seconds="fast"), r"records\[0\]\.seconds: expected a number"),
    (lambda d: d["records"][0].update(speed=1), r"records\[0\]: unknown key\(s\) \['speed'\]"),
    (lambda d: d.update(version=3), r"version: this autoconfig reads versions 1 and 2, got 3"),
])
def test_malformed_file_names_the_key(tmp_path, edit, message):
    d = two_machines().to_dict()
    edit(d)
    write(tmp_path / "bad.json.gz", d)
    with pytest.raises(DatasetError, match=message) as e:
        load_dataset(tmp_path / "bad.json.gz")
    assert str(tmp_path / "bad.json.gz") in str(e.value)

