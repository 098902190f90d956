"""Build a HostProfile: probe this machine, or read a target (built-in or JSON).

Host profiles come from three sources, each decision recorded in `notes`:

* cpu features, FMA latency/throughput, core clock, a read-bandwidth curve and
  a copy-bandwidth curve (bytes read + written: what a weight re-layout can
  reach) measured by the small C++ program `autoconfig_probe`
  (cpp_runtime/probe/probe_main.cpp, compiled here on demand);
* cache sizes from sysfs, sanity-checked against the bandwidth curve (VMs
  often expose the host socket's L3 as if it were theirs);
* an optional override file (AUTOCONFIG_PROFILE_OVERRIDE) for machines whose
  data is wrong anyway.

Targets (`x86-64-v4`, `x86-64-v3`, `generic`, `armv8-neon`, `armv8-sve`, `rv64gcv`, or a JSON file)
measure nothing: they describe a class of machine for cross-builds.

    python -m autoconfig.probe [--target T] [--json] [--quick] [--cxx CXX]

One module per job, in the order data flows:

    targets.py      the built-in targets (each number with its source)
    sysfs.py        what Linux says: caches from sysfs, the SVE vector length
    measurement.py  the probe program: compile, run, re-run on implausible readings
    host.py         the host profile from the measurements (ISA, peak, caches, bandwidth)
    overrides.py    target files and AUTOCONFIG_PROFILE_OVERRIDE, every field checked
    entry.py        profile(), summary() and the command line

Everything below is importable from `autoconfig.probe` as before the split.
"""
from __future__ import annotations

from ..profile import CacheLevel, HostProfile
from . import entry, host, measurement, overrides, sysfs, targets
from .entry import main, profile, summary
from .host import (ASSUMED_FMA_LATENCY, BANDWIDTH_LEVELS, DEFAULT_CACHES, L3_FASTER_THAN_DRAM,
                   L3_MEASURED_CAP, L3_SYSFS_IMPLAUSIBLE, ROUND_TOLERANCE, _bandwidth_curve, _bw_at,
                   _check_l3, _fma_thread_scaling, _fmt_bytes, _host_profile, _normalize_arch,
                   _round_if_close, choose_isa)
from .measurement import (FMA_LATENCY_PLAUSIBLE, _implausible_fma_latencies, _measure, _pkg_dir,
                          _plausible_fma_latency, _probe_sources, compile_probe, run_probe_binary)
from .overrides import (_CACHE_FIELDS, _FIELD_NAMES, _apply_override, _check_field, _host_override,
                        _is_num, _load_json, _target_from_file)
from .sysfs import (SVE_DEFAULT_VL_FILE, _count_cpu_list, _parse_size, _read, read_sve_vector_bits,
                    read_sysfs_caches)
from .targets import (_X86_BASE, _X86_V3, BUILTIN_TARGETS, ISA_TABLE, KNOWN_ISAS, MULTI_TARGETS, KiB, MiB, _builtin,
                      _peak, _target_profile, available_targets)

