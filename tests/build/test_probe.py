"""Tests of autoconfig.probe: sysfs parsing, targets, target files, the L3
sanity check, the probe program and one real host profile."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG_DIR = ROOT / "python" / "autoconfig"
KiB, MiB = 1 << 10, 1 << 20


def _load_modules():
    """autoconfig.probe / autoconfig.profile; if the package __init__ cannot be
    imported (e.g. it needs a compiled extension that is not built), load the
    two modules from their files under a private package name instead."""
    if str(ROOT / "python") not in sys.path:
        sys.path.insert(0, str(ROOT / "python"))
    try:
        from autoconfig import probe, profile  # noqa: WPS433
        return probe, profile
    except ImportError:
        name = "_autoconfig_probe_under_test"
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(PKG_DIR)]
        sys.modules[name] = pkg
        mods = []
        for mod in ("profile", "probe"):
            path = PKG_DIR / mod / "__init__.py" if (PKG_DIR / mod).is_dir() else PKG_DIR / f"{mod}.py"
            spec = importlib.util.spec_from_file_location(f"{name}.{mod}", path)
            m = importlib.util.module_from_spec(spec)
            sys.modules[f"{name}.{mod}"] = m
            spec.loader.exec_module(m)
            mods.append(m)
        return mods[1], mods[0]


probe, profile_mod = _load_modules()
HostProfile, CacheLevel = profile_mod.HostProfile, profile_mod.CacheLevel

AVX512_FEATURES = ["sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma",
                   "f16c", "bmi1", "bmi2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]


# --------------------------------------------------------------------------- sysfs
def _write_index(root: Path, i: int, level, ctype, size, ways, shared, line=64):
    d = root / f"index{i}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{ctype}\n")
    (d / "size").write_text(f"{size}\n")
    (d / "ways_of_associativity").write_text(f"{ways}\n")
    (d / "shared_cpu_list").write_text(f"{shared}\n")
    (d / "coherency_line_size").write_text(f"{line}\n")


def _fake_vm_sysfs(root: Path) -> Path:
    """The layout of this project's KVM guest: L3 300 MiB shared by 2 vCPUs."""
    _write_index(root, 0, 1, "Data", "48K", 12, "0")
    _write_index(root, 1, 1, "Instruction", "32K", 8, "0")
    _write_index(root, 2, 2, "Unified", "2048K", 16, "0")
    _write_index(root, 3, 3, "Unified", "307200K", 20, "0-1")
    (root / "uevent").write_text("")
    return root


def test_read_sysfs_caches(tmp_path):
    caches = probe.read_sysfs_caches(_fake_vm_sysfs(tmp_path / "cache"))
    assert [c.level for c in caches] == [1, 2, 3]          # instruction cache skipped
    l1, l2, l3 = caches
    assert (l1.size_bytes, l1.ways, l1.shared_by, l1.line_bytes) == (48 * KiB, 12, 1, 64)
    assert (l2.size_bytes, l2.ways, l2.shared_by) == (2 * MiB, 16, 1)
    assert (l3.size_bytes, l3.ways, l3.shared_by) == (150 * MiB, 20, 2)  # per core
    assert all(c.source == "sysfs" for c in caches)


def test_read_sysfs_caches_sharing_lists_and_missing(tmp_path):
    root = tmp_path / "cache"
    _write_index(root, 0, 1, "Data", "32K", 8, "0,8")          # SMT pair
    _write_index(root, 1, 2, "Unified", "1M", 16, "0,8")
    _write_index(root, 2, 3, "Unified", "32768K", 16, "0-7,16-23")
    caches = probe.read_sysfs_caches(root)
    assert [(c.level, c.size_bytes, c.shared_by) for c in caches] == [
        (1, 16 * KiB, 2), (2, 512 * KiB, 2), (3, 2 * MiB, 16)]
    assert probe.read_sysfs_caches(tmp_path / "does-not-exist") == []


def test_size_and_cpu_list_parsers():
    assert probe._parse_size("48K") == 48 * KiB
    assert probe._parse_size("2048K") == 2 * MiB
    assert probe._parse_size("300M") == 300 * MiB
    assert probe._parse_size("65536") == 65536
    assert probe._count_cpu_list("0-3,8,10-11") == 7
    assert probe._count_cpu_list("5") == 1


# --------------------------------------------------------------------------- built-in targets
@pytest.mark.parametrize("name", probe.BUILTIN_TARGETS)
def test_builtin_targets_consistent(name):
    p = probe.profile(name)
    assert p.name == name and p.measured is False
    lanes = p.vector_bits // 32
    assert p.peak_gflops_per_core == pytest.approx(p.freq_ghz * p.fma_per_cycle * lanes * 2)
    spec = probe.ISA_TABLE[p.isa]
    # portable code may be compiled for a raised baseline (x86-64-v2: SSE4.2)
    assert p.compile_flags == spec["compile_flags"] or (p.isa == "generic" and p.compile_flags == ["-msse4.2", "-mpopcnt"])
    assert p.vector_bits == spec["vector_bits"]
    if p.arch == "x86_64":
        assert p.vector_registers == spec["vector_registers"]
        assert probe.choose_isa(p.features) == p.isa      # the features imply the ISA
    assert [c.level for c in p.caches] == [1, 2, 3]
    assert all(c.source == "target" and c.size_bytes > 0 and c.ways > 0 for c in p.caches)
    assert p.caches[0].size_bytes < p.caches[1].size_bytes
    bw = p.bandwidth_gbps
    assert list(bw) == ["L1", "L2", "L3", "DRAM"]
    assert bw["L1"] > bw["L2"] > bw["L3"] > bw["DRAM"] > 0
    assert p.fma_latency_cycles == 4
    assert HostProfile.from_json(p.to_json()) == p


def test_builtin_numbers():
    v4, v3, g = probe.profile("x86-64-v4"), probe.profile("x86-64-v3"), probe.profile("generic")
    assert (v4.isa, v4.vector_bits, v4.vector_registers, v4.fma_per_cycle) == ("avx512", 512, 32, 2)
    assert v4.cache(1).size_bytes == 48 * KiB and v4.cache(1).ways == 12
    assert v4.cache(2).size_bytes == 2 * MiB
    assert "-mavx512f" in v4.compile_flags and "-mfma" in v4.compile_flags
    assert (v3.isa, v3.vector_bits, v3.vector_registers) == ("avx2", 256, 16)
    assert v3.compile_flags == ["-mavx2", "-mfma", "-mf16c"]
    assert (g.isa, g.vector_bits, g.vector_registers, g.fma_per_cycle) == ("generic", 128, 16, 1)
    assert g.compile_flags == []
    assert (g.cache(1).size_bytes, g.cache(2).size_bytes, g.cache(3).size_bytes) == (
        32 * KiB, 256 * KiB, 2 * MiB)
    assert set(probe.BUILTIN_TARGETS) <= set(probe.available_targets())
    assert "host" in probe.available_targets()


def test_unknown_target_lists_builtins():
    with pytest.raises(ValueError) as e:
        probe.profile("x86-64-v9")
    for name in probe.BUILTIN_TARGETS:
        assert name in str(e.value)


# --------------------------------------------------------------------------- target files
def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_target_file_base_override_merge(tmp_path):
    f = _write_json(tmp_path / "mybox.json", {
        "base": "x86-64-v3",
        "override": {"freq_ghz": 4.0, "cores": 8,
                     "caches": [{"level": 1, "size_bytes": 49152, "ways": 12},
                                {"level": 2, "size_bytes": "1M", "ways": 16}],
                     "bandwidth_gbps": {"DRAM": 30}}})
    p = probe.profile(str(f))
    base = probe.profile("x86-64-v3")
    assert p.name == "mybox" and p.measured is False and p.isa == "avx2"
    assert p.freq_ghz == 4.0 and p.cores == 8
    assert p.peak_gflops_per_core == pytest.approx(4.0 * 2 * 8 * 2)      # recomputed
    assert [(c.level, c.size_bytes, c.ways) for c in p.caches] == [(1, 48 * KiB, 12), (2, MiB, 16)]
    assert p.bandwidth_gbps == {**base.bandwidth_gbps, "DRAM": 30.0}    # merged per level
    assert p.compile_flags == base.compile_flags
    assert any("mybox.json" in n for n in p.notes)


def test_target_file_isa_override_derives_fields(tmp_path):
    f = _write_json(tmp_path / "v4-as-avx2.json",
                    {"base": "x86-64-v4", "override": {"isa": "avx2", "name": "v4-avx2"}})
    p = probe.profile(f)
    assert p.name == "v4-avx2"
    assert (p.isa, p.vector_bits, p.vector_registers) == ("avx2", 256, 16)
    assert p.compile_flags == probe.ISA_TABLE["avx2"]["compile_flags"]
    assert p.peak_gflops_per_core == pytest.approx(2.5 * 2 * 8 * 2)
    assert p.cache(1).size_bytes == 48 * KiB                          # rest of the base kept


def test_target_file_full_profile(tmp_path):
    d = probe.profile("x86-64-v4").to_dict()
    d["name"] = "sprbox"
    d["cores"] = 56
    p = probe.profile(str(_write_json(tmp_path / "spr.json", d)))
    assert p.name == "sprbox" and p.cores == 56 and p.measured is False
    assert p.caches == probe.profile("x86-64-v4").caches
    assert p.peak_gflops_per_core == d["peak_gflops_per_core"]


@pytest.mark.parametrize("content, field", [
    ({"base": "x86-64-v3", "override": {"freq_ghz": "fast"}}, "freq_ghz"),
    ({"base": "x86-64-v3", "override": {"cache_size": 5}}, "cache_size"),
    ({"base": "x86-64-v3", "override": {"isa": "sse9"}}, "isa"),
    ({"base": "x86-64-v3", "override": {"caches": [{"level": 1}]}}, "caches[0].size_bytes"),
    ({"base": "x86-64-v3", "override": {"caches": [{"level": 1, "size_bytes": 1, "assoc": 4}]}},
     "caches[0].assoc"),
    ({"base": "x86-64-v3", "override": {"bandwidth_gbps": {"L4": 3}}}, "bandwidth_gbps.L4"),
    ({"base": "x86-64-v3", "override": {"copy_bandwidth_gbps": {"L4": 3}}}, "copy_bandwidth_gbps.L4"),
    ({"base": "x86-64-v3", "override": {"copy_bandwidth_gbps": {"L3": -1}}}, "copy_bandwidth_gbps.L3"),
    ({"base": "x86-64-v3", "override": {"vector_registers": 0}}, "vector_registers"),
    ({"base": "pentium", "override": {}}, "base"),
    ({"base": "x86-64-v3", "extra": 1}, "extra"),
    ({"base": "x86-64-v3", "override": [1, 2]}, "override"),
    ({"name": "partial", "arch": "x86_64"}, "isa"),                     # full profile, missing field
    ({**probe.profile("generic").to_dict(), "turbo": True}, "turbo"),   # full profile, unknown field
])
def test_target_file_errors_name_file_and_field(tmp_path, content, field):
    f = _write_json(tmp_path / "bad.json", content)
    with pytest.raises(ValueError) as e:
        probe.profile(str(f))
    msg = str(e.value)
    assert str(f) in msg and f"'{field}'" in msg, msg


def test_target_file_syntax_error_and_missing(tmp_path):
    f = _write_json(tmp_path / "broken.json", '{"base": "x86-64-v3",')
    with pytest.raises(ValueError, match="broken.json.*line 1"):
        probe.profile(str(f))
    with pytest.raises(ValueError, match="not found"):
        probe.profile(str(tmp_path / "nope.json"))


# --------------------------------------------------------------------------- host profile from measurements
CURVE_VM = [(16 * KiB, 320.0), (32 * KiB, 318.0), (256 * KiB, 140.0), (1 * MiB, 135.0),
            (4 * MiB, 30.0), (16 * MiB, 29.5), (64 * MiB, 29.0), (256 * MiB, 18.0)]


def _measurements(features=AVX512_FEATURES, curve=CURVE_VM, fma=None):
    return {
        "arch": "x86_64", "features": list(features), "freq_ghz": 3.0,
        "fma": fma if fma is not None else {
            "avx512": {"latency_cycles": 4.03, "per_cycle": 1.9, "gflops": 182.4},
            "avx2": {"latency_cycles": 3.96, "per_cycle": 2.02, "gflops": 96.9},
            "sse": {"latency_cycles": 4.1, "per_cycle": 1.98, "gflops": 47.5}},
        "bandwidth": [{"bytes": b, "gbps": g} for b, g in curve],
        "logical_cpus": 2, "seconds": 1.2,
    }


REAL_READ_SYSFS = probe.read_sysfs_caches


@pytest.fixture
def vm_sysfs(tmp_path, monkeypatch):
    """profile() reads the fake VM tree instead of this host's sysfs."""
    root = _fake_vm_sysfs(tmp_path / "cache")
    monkeypatch.setattr(probe.sysfs, "read_sysfs_caches", lambda: REAL_READ_SYSFS(root))
    return root


def test_l3_sanity_replaces_vm_socket_cache(vm_sysfs, monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    p = probe.profile(measurements=_measurements())
    assert p.name == "host" and p.measured
    l3 = p.cache(3)
    # 64 MiB still reads at 29 >= 1.5 x 18 GB/s -> 64 MiB, capped at 32 MiB.
    assert (l3.size_bytes, l3.source, l3.shared_by, l3.ways) == (32 * MiB, "measured", 2, 20)
    assert any("L3" in n and "150 MiB" in n and "32 MiB" in n for n in p.notes)
    assert p.cache(1).size_bytes == 48 * KiB and p.cache(2).size_bytes == 2 * MiB
    assert p.bandwidth_gbps == {"L1": 320.0, "L2": 135.0, "L3": 29.5, "DRAM": 18.0}
    assert p.isa == "avx512" and p.vector_bits == 512 and p.vector_registers == 32
    assert p.compile_flags == ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                               "-mavx2", "-mfma", "-mf16c"]
    assert p.fma_latency_cycles == 4.0 and p.fma_per_cycle == 2.0      # rounded, noted
    assert p.peak_gflops_per_core == pytest.approx(182.4)              # measured rate kept
    assert any("latency" in n and "4.030" in n for n in p.notes)
    assert p.cores == len(os.sched_getaffinity(0))


def test_l3_sanity_dram_speed_at_sysfs_size(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    root = tmp_path / "cache"
    _write_index(root, 0, 1, "Data", "32K", 8, "0")
    _write_index(root, 1, 2, "Unified", "1M", 16, "0")
    _write_index(root, 2, 3, "Unified", "16M", 16, "0")          # plausible size ...
    monkeypatch.setattr(probe.sysfs, "read_sysfs_caches", lambda: REAL_READ_SYSFS(root))
    curve = [(16 * KiB, 300.0), (256 * KiB, 120.0), (1 * MiB, 100.0), (4 * MiB, 60.0),
             (16 * MiB, 19.0), (64 * MiB, 18.5), (256 * MiB, 18.0)]
    p = probe.profile(measurements=_measurements(curve=curve))
    # ... but 4 MiB (<= half of it) reads at 60 >= 27 GB/s, so it is kept
    assert p.cache(3).size_bytes == 16 * MiB and p.cache(3).source == "sysfs"
    # now 4 MiB reads at DRAM speed: replaced by the largest fast size (1 MiB),
    # which is no larger than L2 -> the L2 size.
    curve2 = [(16 * KiB, 300.0), (256 * KiB, 120.0), (1 * MiB, 100.0), (4 * MiB, 19.0),
              (16 * MiB, 18.5), (64 * MiB, 18.2), (256 * MiB, 18.0)]
    p2 = probe.profile(measurements=_measurements(curve=curve2))
    assert p2.cache(3).source == "measured" and p2.cache(3).size_bytes == 1 * MiB
    assert any("DRAM speed" in n for n in p2.notes)


def test_missing_caches_and_bandwidth_use_defaults(monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    monkeypatch.setattr(probe.sysfs, "read_sysfs_caches", lambda: [])
    m = _measurements(curve=[])
    p = probe.profile(measurements=m)
    assert [(c.level, c.size_bytes, c.ways, c.source) for c in p.caches] == [
        (1, 32 * KiB, 8, "default"), (2, 1 * MiB, 16, "default"), (3, 2 * MiB, 16, "default")]
    assert p.bandwidth_gbps == {}
    assert any("not in sysfs" in n for n in p.notes)


@pytest.mark.parametrize("features, isa, fma_key, bits, flags", [
    (["sse2", "avx", "avx2", "fma", "f16c"], "avx2", "avx2", 256, ["-mavx2", "-mfma", "-mf16c"]),
    (["sse2", "avx", "avx2"], "generic", "sse", 128, []),                  # no FMA -> not avx2
    (["sse2", "avx2", "fma", "avx512f"], "avx2", "avx2", 256, ["-mavx2", "-mfma", "-mf16c"]),  # no bw/dq/vl
])
def test_isa_choice(vm_sysfs, monkeypatch, features, isa, fma_key, bits, flags):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    m = _measurements(features=features)
    p = probe.profile(measurements=m)
    assert (p.isa, p.vector_bits, p.compile_flags) == (isa, bits, flags)
    assert p.vector_registers == 16
    assert p.peak_gflops_per_core == pytest.approx(m["fma"][fma_key]["gflops"])


def test_profile_override_env(vm_sysfs, tmp_path, monkeypatch):
    f = _write_json(tmp_path / "fix.json", {"override": {
        "cores": 1, "caches": [{"level": 1, "size_bytes": 49152, "ways": 12},
                               {"level": 2, "size_bytes": 2097152, "ways": 16},
                               {"level": 3, "size_bytes": 4194304, "ways": 16}]}})
    monkeypatch.setenv("AUTOCONFIG_PROFILE_OVERRIDE", str(f))
    p = probe.profile(measurements=_measurements())
    assert p.name == "host" and p.cores == 1 and p.measured
    assert p.cache(3).size_bytes == 4 * MiB
    assert any("fix.json" in n for n in p.notes)
    monkeypatch.setenv("AUTOCONFIG_PROFILE_OVERRIDE", str(_write_json(tmp_path / "b.json",
                                                                      {"override": {"cores": "x"}})))
    with pytest.raises(ValueError, match=r"b\.json.*'cores'"):
        probe.profile(measurements=_measurements())


# --------------------------------------------------------------------------- copy bandwidth
# A copy curve as the probe prints it: per working set (source + destination),
# GB/s of bytes read + written.
COPY_VM = [(16 * KiB, 250.0), (32 * KiB, 240.0), (256 * KiB, 120.0), (1 * MiB, 110.0),
           (4 * MiB, 21.0), (16 * MiB, 20.0), (64 * MiB, 19.0), (256 * MiB, 11.0)]


def test_copy_curve_per_level_and_round_trip(vm_sysfs, monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    m = _measurements()
    m["copy_bandwidth"] = [{"bytes": b, "gbps": g} for b, g in COPY_VM]
    p = probe.profile(measurements=m)
    # The read curve's levels: L1 48 KiB -> 16 KiB, L2 2 MiB -> 1 MiB, L3 32 MiB
    # (sanity-checked) -> 16 MiB, DRAM the largest size.
    assert p.copy_bandwidth_gbps == {"L1": 250.0, "L2": 110.0, "L3": 20.0, "DRAM": 11.0}
    assert p.bandwidth_gbps == {"L1": 320.0, "L2": 135.0, "L3": 29.5, "DRAM": 18.0}   # read curve untouched
    assert any(n.startswith("copy bandwidth (read + written): L1=250") for n in p.notes)
    assert not any("copy bandwidth not measured" in n for n in p.notes)
    q = HostProfile.from_json(p.to_json())
    assert q == p and q.copy_bandwidth_gbps == p.copy_bandwidth_gbps
    assert "copy bandwidth per core (read + written): L1 250 GB/s, L2 110 GB/s, L3 20 GB/s, DRAM 11 GB/s" \
        in probe.summary(p)


def test_profile_without_copy_curve_derives_it_with_a_note(vm_sysfs, monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    factor = profile_mod.COPY_FROM_READ
    assert set(factor) == {"L1", "L2", "L3", "DRAM"} and all(0 < f <= 1 for f in factor.values())
    assert factor["DRAM"] < 1          # write-allocate: 3 lines moved per 2 counted
    p = probe.profile(measurements=_measurements())      # an older probe: no copy curve
    assert p.copy_bandwidth_gbps == {k: round(factor[k] * g, 2) for k, g in p.bandwidth_gbps.items()}
    assert p.copy_bandwidth_gbps["DRAM"] == 12.0         # 2/3 x 18
    assert any("copy bandwidth not measured" in n and "COPY_FROM_READ" in n and "DRAM 0.67" in n
               for n in p.notes)
    # A profile saved before the field existed gets the same, noted once.
    d = p.to_dict()
    del d["copy_bandwidth_gbps"]
    d["notes"] = []
    q = HostProfile.from_dict(d)
    assert q.copy_bandwidth_gbps == p.copy_bandwidth_gbps
    assert sum("copy bandwidth not measured" in n for n in q.notes) == 1
    assert HostProfile.from_json(q.to_json()) == q
    # A profile without any bandwidth has none to derive.
    d["bandwidth_gbps"] = {}
    assert HostProfile.from_dict(d).copy_bandwidth_gbps == {}


def test_copy_bandwidth_in_targets_and_overrides(tmp_path):
    factor = profile_mod.COPY_FROM_READ
    for name in probe.BUILTIN_TARGETS:
        t = probe.profile(name)
        assert t.copy_bandwidth_gbps == {k: round(factor[k] * g, 2) for k, g in t.bandwidth_gbps.items()}, name
        assert any("copy bandwidth not measured" in n for n in t.notes)
    base = probe.profile("x86-64-v3")
    # A level whose read bandwidth is overridden gets its copy re-derived ...
    p = probe.profile(str(_write_json(tmp_path / "a.json", {"base": "x86-64-v3", "override": {
        "bandwidth_gbps": {"DRAM": 30}}})))
    assert p.copy_bandwidth_gbps == {**base.copy_bandwidth_gbps, "DRAM": 20.0}       # 2/3 x 30
    # ... unless the override gives it; copy levels alone merge per level.
    p = probe.profile(str(_write_json(tmp_path / "b.json", {"base": "x86-64-v3", "override": {
        "bandwidth_gbps": {"DRAM": 30}, "copy_bandwidth_gbps": {"DRAM": 25, "L1": 99}}})))
    assert p.copy_bandwidth_gbps == {**base.copy_bandwidth_gbps, "DRAM": 25.0, "L1": 99.0}
    assert p.bandwidth_gbps["DRAM"] == 30.0
    # A full profile file without the field: derived, with the note.
    d = base.to_dict()
    del d["copy_bandwidth_gbps"]
    d["notes"] = []
    p = probe.profile(str(_write_json(tmp_path / "full.json", d)))
    assert p.copy_bandwidth_gbps == base.copy_bandwidth_gbps
    assert any("copy bandwidth not measured" in n for n in p.notes)


# --------------------------------------------------------------------------- probe program
def test_run_probe_binary_errors(tmp_path):
    script = tmp_path / "failing_probe"
    script.write_text("#!/bin/sh\necho 'boom: no cpu' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RuntimeError, match="boom: no cpu"):
        probe.run_probe_binary(script)
    with pytest.raises(RuntimeError, match="not found"):
        probe.run_probe_binary(tmp_path / "missing_probe")
    garbage = tmp_path / "garbage_probe"
    garbage.write_text("#!/bin/sh\necho not-json\n")
    garbage.chmod(garbage.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RuntimeError, match="invalid JSON"):
        probe.run_probe_binary(garbage)


def test_implausible_fma_latency_is_not_planned_with(vm_sysfs, monkeypatch):
    # A stalled clock run once made the quick probe report 1 cycle of FMA latency.
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    m = _measurements()
    m["fma"]["avx512"]["latency_cycles"] = 1.02
    p = probe.profile(measurements=m)
    assert p.fma_latency_cycles == probe.ASSUMED_FMA_LATENCY
    assert any("1.020 cycles, outside the plausible" in n for n in p.notes), p.notes
    m["fma"]["avx512"]["latency_cycles"] = 40.0
    assert probe.profile(measurements=m).fma_latency_cycles == probe.ASSUMED_FMA_LATENCY


def test_probe_rerun_once_on_implausible_latency(vm_sysfs, tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    stalled, good = _measurements(), _measurements()
    stalled["fma"]["avx512"]["latency_cycles"] = 0.98
    good["fma"]["avx512"]["latency_cycles"] = 5.03
    (tmp_path / "first.json").write_text(json.dumps(stalled))
    (tmp_path / "second.json").write_text(json.dumps(good))
    runs = tmp_path / "runs"
    script = tmp_path / "fake_probe"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\n"
                      f"if [ $(wc -l < {runs}) -eq 1 ]; then cat {tmp_path / 'first.json'}; "
                      f"else cat {tmp_path / 'second.json'}; fi\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    p = probe.profile(probe_exe=str(script))
    assert runs.read_text().count("run") == 2
    assert p.fma_latency_cycles == 5.0                                  # the re-run's reading
    assert any("re-run" in n and "avx512 0.98 cycles" in n for n in p.notes), p.notes
    # a plausible first reading is taken as it is
    runs.unlink()
    (tmp_path / "first.json").write_text(json.dumps(good))
    assert probe.profile(probe_exe=str(script)).fma_latency_cycles == 5.0
    assert runs.read_text().count("run") == 1


def test_compile_probe_missing_compiler(tmp_path):
    with pytest.raises(RuntimeError, match="not found"):
        probe.compile_probe("no-such-compiler-xyz", tmp_path)


def _compiler():
    cxx = os.environ.get("CXX") or "c++"
    return cxx if shutil.which(cxx.split()[0]) else None


needs_cxx = pytest.mark.skipif(_compiler() is None, reason="no C++ compiler")


@pytest.fixture(scope="module")
def probe_exe(tmp_path_factory):
    if _compiler() is None:
        pytest.skip("no C++ compiler")
    return probe.compile_probe(_compiler(), tmp_path_factory.mktemp("probe"))


@needs_cxx
def test_probe_binary_quick_json(probe_exe):
    # Best of two runs: on a shared machine one run now and then stalls for
    # a second (seen: 1.43 and 1.51 s against a usual 0.36-0.45 s), and a
    # stall can hit a timing round (profile() re-runs the probe likewise).
    runs = []
    for _ in range(2):
        t0 = time.time()
        m = probe.run_probe_binary(probe_exe, quick=True)
        lat = [v["latency_cycles"] for v in m["fma"].values()]
        runs.append((time.time() - t0, m["seconds"], lat))
        if runs[-1][0] < 3.0 and runs[-1][1] < 1.5 and all(2.0 <= x <= 8.0 for x in lat):
            break
    assert runs[-1][0] < 3.0 and runs[-1][1] < 1.5, runs
    assert m["arch"] in ("x86_64", "aarch64")
    assert m["features"] == sorted(m["features"]) and m["features"]
    assert 0.5 < m["freq_ghz"] < 6.0
    assert m["logical_cpus"] >= 1
    for key, v in m["fma"].items():
        assert 2.0 <= v["latency_cycles"] <= 8.0, (key, v)
        assert 0.3 <= v["per_cycle"] <= 4.5, (key, v)
        assert v["gflops"] > 0
    sizes = [e["bytes"] for e in m["bandwidth"]]
    assert sizes == sorted(sizes) and sizes[0] == 16 * KiB and len(sizes) >= 6
    assert all(e["gbps"] > 0.5 for e in m["bandwidth"])
    assert m["bandwidth"][0]["gbps"] > m["bandwidth"][-1]["gbps"]      # L1 beats DRAM
    # The copy curve: the same working sets, bytes read + written per second.
    assert [e["bytes"] for e in m["copy_bandwidth"]] == sizes
    assert all(e["gbps"] > 0.5 for e in m["copy_bandwidth"])
    assert m["copy_bandwidth"][0]["gbps"] > m["copy_bandwidth"][-1]["gbps"]
    if m["arch"] == "x86_64":
        assert "sse2" in m["features"] and "sse" in m["fma"]
    if m["logical_cpus"] > 1:
        all_cpus = m["fma_all_cpus"]
        assert all_cpus["threads"] == m["logical_cpus"] and all_cpus["key"] in m["fma"]
        assert all_cpus["gflops"] > 0
    else:
        assert m["fma_all_cpus"] is None


@needs_cxx
def test_probe_binary_fake_features(probe_exe):
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("x86-64 feature names")
    env = dict(os.environ, AUTOCONFIG_FAKE_CPU_FEATURES="sse2,avx,avx2,fma,f16c")
    out = subprocess.run([str(probe_exe), "--quick", "--no-bandwidth"], capture_output=True,
                         text=True, env=env, timeout=30, check=True).stdout
    m = json.loads(out)
    assert m["features"] == ["avx", "avx2", "f16c", "fma", "sse2"]
    assert sorted(m["fma"]) == ["avx2", "sse"]                         # no avx512 run
    assert m["bandwidth"] == []
    assert m["copy_bandwidth"] == []


@needs_cxx
def test_profile_end_to_end_host(monkeypatch):
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    t0 = time.time()
    p = probe.profile(quick=True, cxx=_compiler())
    elapsed = time.time() - t0
    assert elapsed < 10.0
    assert p.name == "host" and p.measured
    assert 0.5 < p.freq_ghz < 6.0
    assert 2 <= p.fma_latency_cycles <= 8
    assert p.peak_gflops_per_core > 1
    assert [c.level for c in p.caches] == [1, 2, 3]
    assert p.cache(3).size_bytes <= 64 * MiB               # sanity check applied
    assert set(p.bandwidth_gbps) == {"L1", "L2", "L3", "DRAM"}
    assert p.bandwidth_gbps["L1"] > p.bandwidth_gbps["DRAM"]
    assert set(p.copy_bandwidth_gbps) == {"L1", "L2", "L3", "DRAM"}     # measured, not derived
    assert not any("copy bandwidth not measured" in n for n in p.notes)
    assert p.cores == len(os.sched_getaffinity(0))
    if p.isa == "avx512":
        assert p.peak_gflops_per_core > 20
        assert p.compile_flags[0] == "-mavx512f"
    assert HostProfile.from_json(p.to_json()) == p


def test_main_prints_target(capsys):
    assert probe.main(["--target", "x86-64-v3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "x86-64-v3" and d["isa"] == "avx2"
    assert probe.main(["--target", "generic"]) == 0
    assert "generic" in capsys.readouterr().out
    assert probe.main(["--target", "bogus"]) == 2
    assert "x86-64-v4" in capsys.readouterr().err


@pytest.mark.parametrize("gflops,scaling,smt", [(200.6, 0.55, True), (360.0, 0.99, False), (20.0, 0.5, True)])
def test_fma_thread_scaling_from_all_cpus_run(vm_sysfs, monkeypatch, gflops, scaling, smt):
    """Two logical CPUs that share one core's FMA units reach about one core's
    rate together; the profile records the ratio, clamped to [1/threads, 1]."""
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    m = _measurements()
    m["fma_all_cpus"] = {"key": "avx512", "threads": 2, "gflops": gflops}
    p = probe.profile(measurements=m)
    assert p.fma_thread_scaling == pytest.approx(scaling)
    assert any("all 2 CPUs busy" in n and ("SMT" in n) == smt for n in p.notes)
    assert probe.profile(measurements=_measurements()).fma_thread_scaling == 1.0     # not measured
    m["fma_all_cpus"] = {"key": "sse", "threads": 2, "gflops": 50.0}                 # another ISA's kernel
    assert probe.profile(measurements=m).fma_thread_scaling == 1.0


@pytest.mark.parametrize("value", [0, 1.5, "half", True])
def test_fma_thread_scaling_validated_in_target_files(tmp_path, value):
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"base": "x86-64-v3", "override": {"fma_thread_scaling": value}}))
    with pytest.raises(ValueError, match="fma_thread_scaling': expected a number in \\(0, 1\\]"):
        probe.profile(str(f))



def test_fma_rate_per_isa_recorded_for_narrower_views(vm_sysfs, monkeypatch):
    """A Zen 4 core issues one 512-bit FMA a cycle but two 256-bit ones: the
    profile keeps each timed rate, and the x86-64-v3 view of the AVX-512
    profile takes its peak from the AVX2 rate, not the AVX-512 one; the v2
    view (no FMA instruction) keeps the profile's own."""
    from autoconfig.tuning.space import profile_for_isa
    monkeypatch.delenv("AUTOCONFIG_PROFILE_OVERRIDE", raising=False)
    m = _measurements(fma={"avx512": {"latency_cycles": 4.0, "per_cycle": 0.99, "gflops": 95.0},
                           "avx2": {"latency_cycles": 4.0, "per_cycle": 1.98, "gflops": 95.0},
                           "sse": {"latency_cycles": 4.0, "per_cycle": 2.3, "gflops": 55.2}})
    p = probe.profile(measurements=m)
    assert (p.isa, p.fma_per_cycle) == ("avx512", 1.0)
    assert p.fma_per_cycle_by_key == {"avx512": 1.0, "avx2": 2.0, "sse": 2.3}
    assert any("FMAs per cycle (sse code): measured 2.300, kept" in n for n in p.notes)
    v3 = profile_for_isa(p, "x86-64-v3")
    assert (v3.fma_per_cycle, v3.peak_gflops_per_core) == (2.0, pytest.approx(3.0 * 2 * 8 * 2))
    # v2 code has no FMA instruction: the 128-bit FMA reading does not time its multiply + add pairs
    assert profile_for_isa(p, "x86-64-v2").fma_per_cycle == p.fma_per_cycle
    assert HostProfile.from_json(p.to_json()) == p
    # A profile without the readings (targets, older files) keeps its own rate for every view.
    q = probe.profile("x86-64-v4")
    assert q.fma_per_cycle_by_key == {}
    assert profile_for_isa(q, "x86-64-v3").fma_per_cycle == q.fma_per_cycle


@pytest.mark.parametrize("value", [{"avx2": 0}, {"avx2": "two"}, [2.0]])
def test_fma_rate_per_isa_validated_in_target_files(tmp_path, value):
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"base": "x86-64-v4", "override": {"fma_per_cycle_by_key": value}}))
    with pytest.raises(ValueError, match="fma_per_cycle_by_key': expected an object"):
        probe.profile(str(f))
