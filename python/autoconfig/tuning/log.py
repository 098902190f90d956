"""Tuning logs: every measurement, with the machine it ran on, as JSON.

    {"format": "autoconfig-tuning-log", "version": 1,
     "profiles": {"<hash>": HostProfile dict, ...},
     "records": [{"task": Task dict, "config": Config dict, "seconds": float,
                  "repeats": int, "profile": "<hash>", "isa": "x86-64-v3",
                  "timestamp": "2026-12-07T01:23:45Z", "autoconfig": "0.1.0"}, ...]}

A profile is stored once and named by the hash of its JSON. `best()` is the
fastest record per task key, among the records of one profile hash when
given. A file that is not a log, a log of another format version, or a record
missing a field is refused with an error naming the file and what is wrong.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from ..profile import HostProfile
from .space import Config, SpaceError, Task

FORMAT = "autoconfig-tuning-log"
VERSION = 1
RECORD_FIELDS = ("task", "config", "seconds", "repeats", "profile", "isa", "timestamp", "autoconfig")


class LogError(ValueError):
    """A tuning log that cannot be read: names the file and the problem."""


def profile_hash(profile: HostProfile) -> str:
    return hashlib.sha256(profile.to_json().encode()).hexdigest()[:16]


def _version() -> str:
    from .. import __version__
    return __version__


@dataclass(frozen=True)
class Record:
    task: Task
    config: Config
    seconds: float
    repeats: int
    profile: str            # profile_hash of the HostProfile it ran on
    isa: str                # the variant measured: x86-64-v3, x86-64-v2, ...
    timestamp: str
    autoconfig: str

    def to_dict(self) -> Dict[str, Any]:
        return {"task": self.task.to_dict(), "config": self.config.to_dict(), "seconds": self.seconds,
                "repeats": self.repeats, "profile": self.profile, "isa": self.isa, "timestamp": self.timestamp,
                "autoconfig": self.autoconfig}


@dataclass
class TuningLog:
    profiles: Dict[str, HostProfile] = field(default_factory=dict)
    records: List[Record] = field(default_factory=list)

    def add(self, task: Task, config: Config, seconds: float, repeats: int, profile: HostProfile, isa: str) -> Record:
        h = profile_hash(profile)
        self.profiles.setdefault(h, profile)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = Record(task, config, float(seconds), int(repeats), h, isa, stamp, _version())
        self.records.append(r)
        return r

    def merge(self, other: "TuningLog") -> "TuningLog":
        """Both logs' records (this one's first) and profiles, in a new log."""
        out = TuningLog(dict(self.profiles), list(self.records))
        out.profiles.update(other.profiles)
        out.records += other.records
        return out

    def for_task(self, task: Task, profile: Optional[HostProfile] = None) -> List[Record]:
        h = profile_hash(profile) if profile is not None else None
        key = task.key()
        return [r for r in self.records if r.task.key() == key and (h is None or r.profile == h)]

    def best(self, task: Task, profile: Optional[HostProfile] = None) -> Optional[Record]:
        """The fastest record of `task` (on `profile` when given), None if there is none."""
        rs = self.for_task(task, profile)
        return min(rs, key=lambda r: r.seconds) if rs else None

    def best_per_task(self, profile: Optional[HostProfile] = None) -> Dict[str, Record]:
        h = profile_hash(profile) if profile is not None else None
        out: Dict[str, Record] = {}
        for r in self.records:
            if h is not None and r.profile != h:
                continue
            k = r.task.key()
            if k not in out or r.seconds < out[k].seconds:
                out[k] = r
        return out

    def tasks(self) -> List[Task]:
        seen: Dict[str, Task] = {}
        for r in self.records:
            seen.setdefault(r.task.key(), r.task)
        return list(seen.values())

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> Dict[str, Any]:
        return {"format": FORMAT, "version": VERSION,
                "profiles": {h: p.to_dict() for h, p in sorted(self.profiles.items())},
                "records": [r.to_dict() for r in self.records]}

    def save(self, path) -> None:
        """Written atomically (a temporary file, then renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, d: Any, where: str = "tuning log") -> "TuningLog":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise LogError(f"{where}: not an autoconfig tuning log (expected \"format\": \"{FORMAT}\")")
        if d.get("version") != VERSION:
            raise LogError(f"{where}: tuning log format version {d.get('version')!r}; this autoconfig "
                           f"({_version()}) reads version {VERSION} (re-run autoconfig tune)")
        profiles_d, records_d = d.get("profiles"), d.get("records")
        if not isinstance(profiles_d, dict) or not isinstance(records_d, list):
            raise LogError(f"{where}: expected \"profiles\" to be an object and \"records\" a list")
        log = cls()
        for h, p in profiles_d.items():
            try:
                log.profiles[h] = HostProfile.from_dict(p)
            except (TypeError, ValueError) as e:
                raise LogError(f"{where}: profiles[{h!r}]: {e}") from None
        for i, r in enumerate(records_d):
            missing = [f for f in RECORD_FIELDS if not isinstance(r, dict) or f not in r]
            if missing:
                raise LogError(f"{where}: records[{i}]: missing field(s) {missing}")
            if r["profile"] not in log.profiles:
                raise LogError(f"{where}: records[{i}]: profile {r['profile']!r} is not in \"profiles\"")
            try:
                seconds = float(r["seconds"])
                if not seconds > 0:
                    raise ValueError(f"seconds must be > 0, got {r['seconds']!r}")
                log.records.append(Record(Task.from_dict(r["task"]), Config.from_dict(r["config"]), seconds,
                                          int(r["repeats"]), r["profile"], str(r["isa"]), str(r["timestamp"]),
                                          str(r["autoconfig"])))
            except (SpaceError, TypeError, ValueError) as e:
                raise LogError(f"{where}: records[{i}]: {e}") from None
        return log

    @classmethod
    def load(cls, path) -> "TuningLog":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise LogError(f"tuning log {path}: cannot be read ({e.strerror or e})") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise LogError(f"tuning log {path}: not valid JSON ({e})") from None
        return cls.from_dict(d, f"tuning log {path}")


def merge_all(logs: Iterable[TuningLog]) -> TuningLog:
    out = TuningLog()
    for lg in logs:
        out = out.merge(lg)
    return out
