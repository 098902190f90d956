"""Target files (a full profile or {"base": <built-in>, "override": {...}})
and AUTOCONFIG_PROFILE_OVERRIDE: every field checked, errors naming the file
and the field."""
from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..profile import CacheLevel, HostProfile, with_copy_bandwidth
from .host import BANDWIDTH_LEVELS
from .sysfs import _parse_size
from .targets import BUILTIN_TARGETS, ISA_TABLE, KNOWN_ISAS, _builtin, _peak

_FIELD_NAMES = tuple(f.name for f in fields(HostProfile))
_CACHE_FIELDS = tuple(f.name for f in fields(CacheLevel))


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_field(where: str, name: str, v: Any) -> Any:
    """Validate (and normalize) one HostProfile field from JSON."""
    def bad(expected: str):
        return ValueError(f"{where}: field '{name}': expected {expected}, got {v!r}")

    if name in ("name", "arch"):
        if not isinstance(v, str) or not v:
            raise bad("a non-empty string")
        return v
    if name == "isa":
        if v not in ISA_TABLE:
            raise bad("one of " + ", ".join(KNOWN_ISAS))
        return v
    if name in ("features", "compile_flags", "notes"):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad("a list of strings")
        return [x.lower() for x in v] if name == "features" else list(v)
    if name == "vector_bits":
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 32 and v % 32 == 0):
            raise bad("a positive multiple of 32")
        return v
    if name in ("vector_registers", "cores"):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise bad("a positive integer")
        return v
    if name in ("fma_latency_cycles", "fma_per_cycle", "freq_ghz", "peak_gflops_per_core"):
        if not (_is_num(v) and v > 0):
            raise bad("a positive number")
        return float(v)
    if name == "measured":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if name == "fma_thread_scaling":
        if not (_is_num(v) and 0 < v <= 1):
            raise bad("a number in (0, 1]")
        return float(v)
    if name == "fma_per_cycle_by_key":
        if not isinstance(v, dict) or not all(isinstance(k, str) and _is_num(x) and x > 0 for k, x in v.items()):
            raise bad("an object {probe FMA key: FMAs per cycle > 0}")
        return {k: float(x) for k, x in v.items()}
    if name in ("bandwidth_gbps", "copy_bandwidth_gbps"):
        if not isinstance(v, dict):
            raise bad("an object {level: GB/s}")
        out = {}
        for k, g in v.items():
            if k not in BANDWIDTH_LEVELS:
                raise ValueError(f"{where}: field '{name}.{k}': unknown level; "
                                 f"allowed: {', '.join(BANDWIDTH_LEVELS)}")
            if not (_is_num(g) and g > 0):
                raise ValueError(f"{where}: field '{name}.{k}': expected a positive number, got {g!r}")
            out[k] = float(g)
        return out
    if name == "caches":
        if not isinstance(v, list):
            raise bad("a list of cache objects")
        out = []
        for i, c in enumerate(v):
            p = f"caches[{i}]"
            if isinstance(c, CacheLevel):
                out.append(c)
                continue
            if not isinstance(c, dict):
                raise ValueError(f"{where}: field '{p}': expected an object, got {c!r}")
            unknown = sorted(set(c) - set(_CACHE_FIELDS))
            if unknown:
                raise ValueError(f"{where}: field '{p}.{unknown[0]}': unknown; allowed: {', '.join(_CACHE_FIELDS)}")
            for req in ("level", "size_bytes"):
                if req not in c:
                    raise ValueError(f"{where}: field '{p}.{req}': missing")
            cc = dict(c)
            if isinstance(cc["size_bytes"], str):  # "48K", "2M" allowed in hand-written files
                try:
                    cc["size_bytes"] = _parse_size(cc["size_bytes"])
                except ValueError:
                    raise ValueError(f"{where}: field '{p}.size_bytes': bad size {c['size_bytes']!r}") from None
            for k in ("level", "size_bytes", "line_bytes", "ways", "shared_by"):
                if k in cc and not (isinstance(cc[k], int) and not isinstance(cc[k], bool) and cc[k] >= 1):
                    raise ValueError(f"{where}: field '{p}.{k}': expected a positive integer, got {cc[k]!r}")
            if not 1 <= cc["level"] <= 4:
                raise ValueError(f"{where}: field '{p}.level': expected 1..4, got {cc['level']!r}")
            if "source" in cc and not isinstance(cc["source"], str):
                raise ValueError(f"{where}: field '{p}.source': expected a string")
            cc.setdefault("source", "target")
            out.append(CacheLevel(**cc))
        levels = [c.level for c in out]
        if len(set(levels)) != len(levels):
            raise ValueError(f"{where}: field 'caches': duplicate level in {levels}")
        return sorted(out, key=lambda c: c.level)
    raise ValueError(f"{where}: field '{name}': unknown; allowed: {', '.join(_FIELD_NAMES)}")


def _apply_override(base: HostProfile, override: dict, where: str) -> HostProfile:
    """Merge `override` into a copy of `base`: scalars and lists replace
    (caches given as a list replace all levels), bandwidth_gbps and
    copy_bandwidth_gbps merge per level (a level whose read bandwidth is
    overridden without its copy bandwidth gets the copy derived from the new
    read value: profile.with_copy_bandwidth), notes append. ISA-derived fields follow a changed isa unless given;
    the peak follows the clock/units/width unless given."""
    if not isinstance(override, dict):
        raise ValueError(f"{where}: field 'override': expected an object, got {type(override).__name__}")
    d = base.to_dict()
    d["caches"] = [CacheLevel(**c) for c in d["caches"]]
    checked = {}
    for k, v in override.items():
        if k not in _FIELD_NAMES:
            raise ValueError(f"{where}: field '{k}': unknown; allowed: {', '.join(_FIELD_NAMES)}")
        checked[k] = _check_field(where, k, v)
    notes = list(d["notes"])
    if "isa" in checked and checked["isa"] != base.isa:
        spec = ISA_TABLE[checked["isa"]]
        for k in ("vector_bits", "vector_registers", "compile_flags"):
            if k not in checked:
                d[k] = copy.copy(spec[k])
    for k, v in checked.items():
        if k == "bandwidth_gbps":
            d[k] = {**d[k], **v}
            d["copy_bandwidth_gbps"] = {lvl: g for lvl, g in d["copy_bandwidth_gbps"].items()
                                        if lvl not in v or lvl in checked.get("copy_bandwidth_gbps", {})}
        elif k == "copy_bandwidth_gbps":
            d[k] = {**d[k], **v}
        elif k == "notes":
            notes.extend(v)
        else:
            d[k] = v
    if "peak_gflops_per_core" not in checked and any(
            k in checked for k in ("freq_ghz", "fma_per_cycle", "vector_bits", "isa")):
        d["peak_gflops_per_core"] = _peak(d["freq_ghz"], d["fma_per_cycle"], d["vector_bits"])
        notes.append(f"peak recomputed as freq x FMA/cycle x lanes x 2 = {d['peak_gflops_per_core']:g} GFLOPS")
    if checked:
        notes.append(f"override from {where}: " + ", ".join(sorted(checked)))
    d["notes"] = notes
    return with_copy_bandwidth(HostProfile(**d))


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: cannot read target file ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:   # json recurses per nesting level
        raise ValueError(f"{path}: JSON nested too deeply to be a target file (at most 4 levels)") from None


def _target_from_file(path: Path) -> HostProfile:
    where = str(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if "base" in data or "override" in data:
        extra = sorted(set(data) - {"base", "override"})
        if extra:
            raise ValueError(f"{where}: field '{extra[0]}': unknown next to 'base'/'override' "
                             f"(put profile fields inside 'override')")
        base_name = data.get("base")
        if not isinstance(base_name, str):
            raise ValueError(f"{where}: field 'base': expected a built-in target name "
                             f"({', '.join(BUILTIN_TARGETS)}), got {base_name!r}")
        if base_name not in BUILTIN_TARGETS:
            raise ValueError(f"{where}: field 'base': unknown target {base_name!r}; "
                             f"built-in targets: {', '.join(BUILTIN_TARGETS)}")
        override = data.get("override", {})
        if not isinstance(override, dict):
            raise ValueError(f"{where}: field 'override': expected an object, got {override!r}")
        override = dict(override)
        prof = _apply_override(_builtin(base_name), override, where)
        if "name" not in override:
            prof.name = path.stem
        prof.measured = False
        prof.notes.insert(0, f"target file {where} (base {base_name})")
        return prof
    # a full HostProfile
    missing = [f.name for f in fields(HostProfile) if f.name not in data and
               f.default is MISSING and f.default_factory is MISSING]
    for k in data:
        if k not in _FIELD_NAMES:
            raise ValueError(f"{where}: field '{k}': unknown; allowed: {', '.join(_FIELD_NAMES)}")
    if missing:
        raise ValueError(f"{where}: field '{missing[0]}': missing (a full profile needs "
                         f"{', '.join(missing)}; or use {{\"base\": ..., \"override\": ...}})")
    d = {k: _check_field(where, k, v) for k, v in data.items()}
    d.setdefault("compile_flags", list(ISA_TABLE[d["isa"]]["compile_flags"]))
    prof = HostProfile(**d)
    prof.measured = False
    prof.notes = [f"target file {where}"] + list(prof.notes)
    return with_copy_bandwidth(prof)


def _host_override(prof: HostProfile) -> HostProfile:
    env = os.environ.get("AUTOCONFIG_PROFILE_OVERRIDE")
    if not env:
        return prof
    path = Path(env)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "override" in data or "base" in data:
        extra = sorted(set(data) - {"base", "override"})
        if extra:
            raise ValueError(f"{path}: field '{extra[0]}': unknown next to 'override'")
        if data.get("base", "host") != "host":
            raise ValueError(f"{path}: field 'base': AUTOCONFIG_PROFILE_OVERRIDE applies to the host "
                             f"profile; use 'host' or leave it out (got {data['base']!r})")
        data = data.get("override", {})
    prof = _apply_override(prof, data, str(path))
    prof.name = "host"
    return prof
