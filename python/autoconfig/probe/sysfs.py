"""What Linux says about this CPU: cache sizes from sysfs and the SVE vector
length from /proc (read, never measured)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Union

from ..profile import CacheLevel
from .targets import KiB, MiB

def _parse_size(text: str) -> int:
    """'48K' -> 49152, '2048K', '300M', '1G', '65536' (bytes)."""
    t = str(text).strip().upper()
    if t.endswith("B") and len(t) > 1 and t[-2] in "KMG":
        t = t[:-1]
    if t.endswith("IB") and len(t) > 2:
        t = t[:-2]
    mult = 1
    if t and t[-1] in "KMG":
        mult = {"K": KiB, "M": MiB, "G": 1 << 30}[t[-1]]
        t = t[:-1]
    value = float(t)
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"bad size {text!r}")
    return int(round(value * mult))


def _count_cpu_list(text: str) -> int:
    """'0-1,4,6-7' -> 5."""
    n = 0
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            n += int(hi) - int(lo) + 1
        else:
            n += 1
    return n


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_sysfs_caches(root: Union[str, Path] = "/sys/devices/system/cpu/cpu0/cache") -> List[CacheLevel]:
    """Data and unified caches of one CPU from sysfs, sizes per sharing CPU.

    size_bytes = sysfs size / number of CPUs in shared_cpu_list (shared_by).
    Returns [] when the directory is missing; entries that cannot be parsed
    are skipped. One entry per level (the first data/unified one), sorted.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    by_level: Dict[int, CacheLevel] = {}
    for idx in sorted(root.glob("index*"), key=lambda p: (len(p.name), p.name)):
        ctype = (_read(idx / "type") or "").lower()
        if ctype not in ("data", "unified"):
            continue
        try:
            level = int(_read(idx / "level") or "")
            size = _parse_size(_read(idx / "size") or "")
        except ValueError:
            continue
        if size <= 0 or level in by_level:
            continue
        shared_by = 1
        cpu_list = _read(idx / "shared_cpu_list")
        if cpu_list:
            try:
                shared_by = max(1, _count_cpu_list(cpu_list))
            except ValueError:
                shared_by = 1
        else:
            cpu_map = _read(idx / "shared_cpu_map")
            if cpu_map:
                try:
                    shared_by = max(1, bin(int(cpu_map.replace(",", ""), 16)).count("1"))
                except ValueError:
                    shared_by = 1
        try:
            ways = int(_read(idx / "ways_of_associativity") or "0")
        except ValueError:
            ways = 0
        try:
            line = int(_read(idx / "coherency_line_size") or "64")
        except ValueError:
            line = 64
        line = line if line > 0 else 64
        if ways <= 0:  # 0 = fully associative (or unknown): treat as size / line ways
            ways = max(1, size // line)
        by_level[level] = CacheLevel(level=level, size_bytes=size // shared_by, line_bytes=line,
                                     ways=ways, shared_by=shared_by, source="sysfs")
    return [by_level[k] for k in sorted(by_level)]


# Linux exposes the SVE vector length new processes start with, in bytes
# (Documentation/arch/arm64/sve.rst); the kernels inherit it.
SVE_DEFAULT_VL_FILE = "/proc/sys/abi/sve_default_vector_length"


def read_sve_vector_bits(path: Union[str, Path] = SVE_DEFAULT_VL_FILE) -> Optional[int]:
    """The SVE vector length (bits) processes get on this Linux host, or None."""
    text = _read(Path(path))
    try:
        nbytes = int(text or "")
    except ValueError:
        return None
    return nbytes * 8 if 16 <= nbytes <= 256 and nbytes % 16 == 0 else None
