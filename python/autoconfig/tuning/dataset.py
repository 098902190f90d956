"""The tuning dataset: measured (task, config, machine, ISA) -> seconds records.

What is measured (One-Shot Tuner's two samplers, Ryu et al. CC 2022):
  tasks    prior-guided: layers of real networks (tuning/tasks.py), a few per
           family, weighted by how often the networks run them;
  configs  exploration-based: per task, the analytical model's top k of the
           whole space (where good configurations are), then the one-knob
           neighbours of the best measured so far (around the best), then a
           random share of the rest (coverage, so the predictor also sees what
           bad looks like).
Every (task, config) is measured with tuning.measure.measure (compiled in
batches, checked against a reference, best of repeats) under each ISA variant
this CPU runs; the HostProfile each variant was planned and measured with is
stored once per (machine, ISA), and the load average beside every batch,
since the machine may be shared while the data is collected.

One file holds the records of several machines (CPUs), each under a name of
its own (e.g. "zen4"), so one predictor is trained on all of them and a
machine can be held out (a CPU the predictor was not trained on).

File: JSON, gzip-compressed:
  {"format": "autoconfig-tuning-dataset", "version": 2,
   "machines": {name: {"profiles": {isa: HostProfile dict},
                       "metadata": {...}}},   # CPU, probe, commands, dates, ISAs absent and why
   "records": [{"machine": name, "task": Task dict, "network": str, "family": str, "isa": str,
                "config": Config dict, "seconds": float,
                "source": "analytical"|"neighbour"|"random"|"evaluation", "load1": float}, ...],
   "metadata": {...}}                          # about the file as a whole
Version 1 (one machine per file: "profiles" {isa: ...} and "metadata" at the
top, records without "machine") still loads, as one machine named
V1_MACHINE; `merge` names the machines of several files into one.

Regenerate (the shipped file: its metadata lists each machine's runs; a run
on one CPU, pinned to a core nothing else runs on):
  taskset -c 1 env PYTHONPATH=python python -m autoconfig.tuning.dataset collect --out zen5.json.gz \
      --machine zen5 --isa x86-64-v4,x86-64-v3,x86-64-v2 \
      --families resnet,mobilenet,densenet,inception,efficientnet \
      --per-family 20 --top 5 --neighbours 5 --random 3 --exhaustive 30 --repeats 5 --chunk 8
  taskset -c 1 env PYTHONPATH=python python -m autoconfig.tuning.dataset collect --out zen5.json.gz \
      --machine zen5 --isa x86-64-v4,x86-64-v3,x86-64-v2 --families bert,vit \
      --per-family 14 --top 5 --neighbours 4 --random 3 --exhaustive 30 --repeats 5 --chunk 6
  python -m autoconfig.tuning.dataset merge --out benchmarks/data/tuning_dataset.json.gz \
      benchmarks/data/tuning_dataset.json.gz zen5.json.gz
  (a rerun skips the (task, ISA) pairs already in --out for that machine)
After a change of the kernels one ISA variant runs, re-measure it (collect
--isa that variant into a new file, same arguments) and swap its records:
  python -m autoconfig.tuning.dataset replace --out D D new.json.gz [--drop zen4:x86-64-v2] --note "why"
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

FORMAT = "autoconfig-tuning-dataset"
VERSION = 2
V1_MACHINE = "host"       # the name a version-1 file's only machine loads under
# In the source tree, not in the wheel: the training side needs it, a build does not.
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "tuning_dataset.json.gz"


class DatasetError(ValueError):
    """A dataset file that cannot be used, with the reason."""


@dataclass
class Record:
    task: Dict[str, Any]
    network: str
    family: str
    isa: str
    config: Dict[str, Any]
    seconds: float
    source: str
    load1: float
    machine: str = V1_MACHINE


RECORD_KEYS = tuple(f.name for f in fields(Record))


@dataclass
class MachineData:
    """What a dataset knows of one machine: the profile of every ISA view it
    was measured under, and how and when it was measured."""
    profiles: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    metadata: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    machines: Dict[str, MachineData] = field(default_factory=dict)
    records: List[Record] = field(default_factory=list)
    metadata: Dict[str, Any] = field(default_factory=dict)

    def machine(self, name: str) -> MachineData:
        """The machine `name`, added empty when the dataset has none of that name."""
        return self.machines.setdefault(name, MachineData())

    def profile(self, machine: str, isa: str) -> Dict[str, Any]:
        return self.machines[machine].profiles[isa]

    def to_dict(self) -> Dict[str, Any]:
        return {"format": FORMAT, "version": VERSION,
                "machines": {k: asdict(m) for k, m in sorted(self.machines.items())},
                "records": [asdict(r) for r in self.records], "metadata": self.metadata}

    def save(self, path: Union[str, Path]) -> None:
        text = json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)
        tmp = Path(str(path) + ".tmp")
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
        os.replace(tmp, path)

    def groups(self) -> Dict[Tuple[str, str, str], List[Record]]:
        """Records by (task key, machine, isa): the unit a ranking is learned and judged on."""
        out: Dict[Tuple[str, str, str], List[Record]] = {}
        for r in self.records:
            out.setdefault((task_key(r.task), r.machine, r.isa), []).append(r)
        return out


def task_key(task: Dict[str, Any]) -> str:
    return json.dumps(task, sort_keys=True)


def _object(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _record(d: Any, where: str, machine: Optional[str]) -> Record:
    """records[i] of a file; `machine` given for version 1 (whose records name none)."""
    d = dict(_object(d, where))
    if machine is not None:
        d.setdefault("machine", machine)
    missing = [k for k in RECORD_KEYS if k not in d]
    if missing:
        raise DatasetError(f"{where}: missing key(s) {missing}")
    unknown = sorted(set(d) - set(RECORD_KEYS))
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown}")
    r = Record(**d)
    for key in ("task", "config"):
        _object(getattr(r, key), f"{where}.{key}")
    for key in ("network", "family", "isa", "source", "machine"):
        if not isinstance(getattr(r, key), str):
            raise DatasetError(f"{where}.{key}: expected a string, got {getattr(r, key)!r}")
    for key in ("seconds", "load1"):
        if isinstance(getattr(r, key), bool) or not isinstance(getattr(r, key), (int, float)):
            raise DatasetError(f"{where}.{key}: expected a number, got {getattr(r, key)!r}")
    if not r.seconds > 0:
        raise DatasetError(f"{where}.seconds: expected a time > 0, got {r.seconds!r}")
    return r


def _machine(d: Any, where: str) -> MachineData:
    d = _object(d, where)
    unknown = sorted(set(d) - {"profiles", "metadata"})
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown}")
    profiles = _object(d.get("profiles", {}), f"{where}.profiles")
    for isa, p in profiles.items():
        _object(p, f"{where}.profiles[{isa!r}]")
    return MachineData(dict(profiles), dict(_object(d.get("metadata", {}), f"{where}.metadata")))


def dataset_from_dict(d: Any) -> Dataset:
    """A dataset of either version; DatasetError names the key that is wrong."""
    d = _object(d, "file")
    if d.get("format") != FORMAT:
        raise DatasetError(f"format: expected {FORMAT!r}, got {d.get('format')!r}")
    version = d.get("version")
    if version == 1:
        if not isinstance(d.get("profiles"), dict):
            raise DatasetError("profiles: a version-1 file needs an object of ISA -> HostProfile")
        machines = {V1_MACHINE: _machine({"profiles": d["profiles"], "metadata": d.get("metadata", {})},
                                         f"machines[{V1_MACHINE!r}]")}
        meta: Dict[str, Any] = {}
        default_machine: Optional[str] = V1_MACHINE
    elif version == VERSION:
        machines = {k: _machine(m, f"machines[{k!r}]")
                    for k, m in _object(d.get("machines"), "machines").items()}
        meta = dict(_object(d.get("metadata", {}), "metadata"))
        default_machine = None
    else:
        raise DatasetError(f"version: this autoconfig reads versions 1 and {VERSION}, got {version!r}")
    recs = d.get("records")
    if not isinstance(recs, list):
        raise DatasetError(f"records: expected a list, got {type(recs).__name__}")
    records = [_record(r, f"records[{i}]", default_machine) for i, r in enumerate(recs)]
    for i, r in enumerate(records):
        if r.machine not in machines:
            raise DatasetError(f"records[{i}].machine: {r.machine!r} is not in machines {sorted(machines)}")
        if r.isa not in machines[r.machine].profiles:
            raise DatasetError(f"records[{i}].isa: machine {r.machine!r} has no profile for ISA {r.isa!r} "
                               f"(it has {sorted(machines[r.machine].profiles)})")
    return Dataset(machines, records, meta)


def load_dataset(path: Union[str, Path] = DEFAULT_PATH) -> Dataset:
    path = Path(path)
    try:
        d = json.loads(gzip.decompress(path.read_bytes()).decode())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not a gzip JSON tuning dataset: {e}") from None
    try:
        return dataset_from_dict(d)
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}") from None


def merge(parts: Sequence[Tuple[Optional[str], Dataset]]) -> Dataset:
    """One dataset of several: each part (new name or None, dataset); a part
    given a name must hold one machine, which takes that name. The same
    machine name twice is an error (two CPUs' records would mix)."""
    out = Dataset()
    for name, ds in parts:
        if name is not None:
            if len(ds.machines) != 1:
                raise DatasetError(f"a part named {name!r} must hold one machine, it holds {sorted(ds.machines)}")
            old = next(iter(ds.machines))
            ds = Dataset({name: ds.machines[old]},
                         [Record(**dict(asdict(r), machine=name)) for r in ds.records], ds.metadata)
        clash = sorted(set(ds.machines) & set(out.machines))
        if clash:
            raise DatasetError(f"machine(s) {clash} in two parts: name them apart (NAME=FILE)")
        out.machines.update(ds.machines)
        out.records += ds.records
        for k, v in ds.metadata.items():
            out.metadata.setdefault(k, v)
    return out


def replace_pairs(ds: Dataset, new: Dataset, drop: Sequence[Tuple[str, str]] = (),
                  note: str = "") -> Dataset:
    """`ds` with the records of every (machine, ISA) that `new` holds
    replaced by new's (re-measured after a change of the kernels that ran
    them), and the records of the `drop` (machine, ISA) pairs removed (measured
    with code since changed, on a CPU that cannot re-measure them); new's
    profiles of those pairs replace ds's, and `note` is appended to the
    metadata's "replaced" list."""
    pairs = {(r.machine, r.isa) for r in new.records}
    gone = pairs | set(drop)
    out = Dataset({k: MachineData(dict(m.profiles), dict(m.metadata)) for k, m in ds.machines.items()},
                  [r for r in ds.records if (r.machine, r.isa) not in gone] + list(new.records),
                  dict(ds.metadata))
    for machine, isa in sorted(pairs):
        out.machine(machine).profiles[isa] = new.machines[machine].profiles[isa]
    for machine, isa in drop:
        out.machines[machine].profiles.pop(isa, None)
    if note:
        out.metadata["replaced"] = list(out.metadata.get("replaced", [])) + [note]
    return out


# --------------------------------------------------------------------------- exploration-based sampling
def knob_distance(a, b) -> int:
    """Knobs two configs of one task set differently."""
    da, db = a.as_dict(), b.as_dict()
    return sum(1 for k in set(da) | set(db) if da.get(k) != db.get(k))


def neighbours(best, configs: Sequence, done: Dict, count: int, rng: random.Random) -> List:
    """Up to `count` unmeasured configs nearest to `best` (fewest knobs
    changed; ties broken at random)."""
    cands = [c for c in configs if c not in done and c != best]
    rng.shuffle(cands)
    cands.sort(key=lambda c: knob_distance(best, c))
    return cands[:count]


@dataclass
class SamplingPlan:
    """Configs measured per task: analytical top k, neighbours of the best so
    far (in two rounds: the second around the first's winner), random."""
    top: int = 6
    neighbour: int = 6
    random: int = 4

    def stages(self) -> List[Tuple[str, int]]:
        half = self.neighbour // 2
        return [("analytical", self.top), ("neighbour", half), ("neighbour", self.neighbour - half),
                ("random", self.random)]


@dataclass
class TaskState:
    """One (task, ISA) being sampled: its space, the model's order, what is measured."""
    layer: Any                      # tasks.LayerTask
    task: Any                       # space.Task
    isa: str
    configs: List
    order: List[int]                # config indices, best predicted first (the analytical choice first)
    done: Dict = field(default_factory=dict)      # config -> (seconds, source, load1)

    def next_configs(self, stage: str, count: int, rng: random.Random, exhaustive: int = 0) -> List:
        if stage == "analytical" and len(self.configs) <= exhaustive:
            count = len(self.configs)      # a small space is measured whole: its oracle is exact
        if count <= 0:
            return []
        if stage == "analytical":
            return [self.configs[i] for i in self.order if self.configs[i] not in self.done][:count]
        if stage == "neighbour":
            if not self.done:
                return []
            best = min(self.done, key=lambda c: self.done[c][0])
            return neighbours(best, self.configs, self.done, count, rng)
        rest = [c for c in self.configs if c not in self.done]
        return rng.sample(rest, min(count, len(rest)))


# --------------------------------------------------------------------------- collection
def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_profile(ds: Dataset, machine: str):
    """The machine's probed profile: the one stored in the dataset when it is
    being extended (the ISA views must not change between runs), else probed
    now (this CPU must then be that machine)."""
    from ..probe import profile as probe_profile
    from ..profile import HostProfile
    meta = ds.machine(machine).metadata
    if "host_profile" in meta:
        return HostProfile.from_dict(meta["host_profile"])
    p = probe_profile(None)
    meta["host_profile"] = p.to_dict()
    return p


def absent_isas(host) -> Dict[str, str]:
    """The ISA variants this machine cannot run, and why (recorded in the metadata)."""
    from .space import ISA_VIEWS, SpaceError, profile_for_isa
    out = {}
    for isa in ISA_VIEWS:
        try:
            profile_for_isa(host, isa)
        except SpaceError as e:
            out[isa] = str(e)
    return out


def _measure_pairs(pairs: List[Tuple[Any, Any]], host, isa: str, repeats: int,
                   log: Callable[[str], None]) -> List[Optional[float]]:
    """measure() over all pairs; when a batch fails, the pairs one by one, a
    failing one recorded as None (and logged) so the others still count."""
    from .measure import MeasureError, measure
    try:
        return list(measure(pairs, host, repeats=repeats, isa=isa))
    except MeasureError as e:
        log(f"  batch failed ({str(e)[:200]}); measuring one by one")
    out: List[Optional[float]] = []
    for p in pairs:
        try:
            out.append(measure([p], host, repeats=repeats, isa=isa)[0])
        except MeasureError as e:
            log(f"  skipped {p[0].key()} {p[1].name()}: {str(e)[:300]}")
            out.append(None)
    return out


def collect(out: Path, isas: Sequence[str], per_family: int, seed: int, plan: SamplingPlan,
            repeats: int, threads: int, families: Optional[Sequence[str]] = None, chunk: int = 6,
            exhaustive: int = 40, log: Callable[[str], None] = print, machine: str = V1_MACHINE) -> Dataset:
    """Measure a prior-guided sample of tasks under each ISA (the whole
    space of a task with at most `exhaustive` configs), `chunk` tasks at
    a time (their candidates share compiled batches), on this CPU, recorded
    as `machine`; the file is saved after every chunk, so a long collection
    can be stopped and its file used, and a rerun skips the (task, ISA) pairs
    of that machine already in it."""
    from . import tasks as task_mod
    from .space import Task, analytical_config, profile_for_isa, space
    from .features import model_predictions

    rng = random.Random(seed)
    sample = task_mod.sample_tasks(per_family, seed=seed, families=families or task_mod.FAMILIES)
    ds = load_dataset(out) if out.exists() else Dataset()
    host = host_profile(ds, machine)
    have = {(task_key(r.task), r.isa) for r in ds.records if r.machine == machine}
    meta = ds.machine(machine).metadata
    meta.update({
        "cpu": cpu_name(), "machine": platform.machine(), "cores": os.cpu_count(),
        "command": "python -m autoconfig.tuning.dataset " + " ".join(sys.argv[1:]),
        "sampling": asdict(plan), "repeats": repeats, "threads": threads, "seed": seed,
        "per_family": per_family, "exhaustive_below": exhaustive})
    meta["isas"] = sorted(set(meta.get("isas", [])) | set(isas))
    meta["isas_absent"] = absent_isas(host)
    meta.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    profiles = {isa: profile_for_isa(host, isa) for isa in isas}
    for isa, p in profiles.items():
        ds.machine(machine).profiles[isa] = p.to_dict()
    todo = [(lt, isa) for lt in sample for isa in isas
            if (task_key(Task(lt.op, lt.shape, threads).to_dict()), isa) not in have]
    log(f"{len(sample)} tasks sampled, {len(todo)} (task, ISA) pairs to measure")
    for start in range(0, len(todo), chunk):
        t0 = time.time()
        states = []
        for lt, isa in todo[start:start + chunk]:
            task = Task(lt.op, lt.shape, threads)
            configs = space(task, profiles[isa])
            predicted = model_predictions(task, configs, profiles[isa])
            chosen = analytical_config(task, profiles[isa])
            order = sorted(range(len(configs)), key=lambda i: (configs[i] != chosen, predicted[i]))
            states.append(TaskState(lt, task, isa, configs, order))
        for stage, count in plan.stages():
            for isa in isas:
                picks = [(st, c) for st in states if st.isa == isa for c in st.next_configs(stage, count, rng, exhaustive)]
                if not picks:
                    continue
                load = load_average()
                secs = _measure_pairs([(st.task, c) for st, c in picks], host, isa, repeats, log)
                for (st, c), sec in zip(picks, secs):
                    st.done[c] = (sec, stage, load)
        for st in states:
            for c, (sec, src, load) in st.done.items():
                if sec is not None:
                    ds.records.append(Record(st.task.to_dict(), st.layer.network, st.layer.family, st.isa,
                                             c.to_dict(), float(sec), src, load, machine))
        meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ds.save(out)
        log(f"[{min(start + chunk, len(todo))}/{len(todo)}] {time.time() - t0:.0f} s, load {load_average():.2f}, "
            f"{len(ds.records)} records: " + "; ".join(
                f"{st.isa} {st.layer.network} {st.task.shape.label()}" for st in states))
    return ds


def summary(ds: Dataset) -> str:
    groups = ds.groups()
    lines = [f"{len(ds.records)} records, {len(groups)} (task, machine, ISA) groups, "
             f"machines {sorted(ds.machines)}"]
    for name, m in sorted(ds.machines.items()):
        recs = [r for r in ds.records if r.machine == name]
        fams: Dict[str, int] = {}
        for r in recs:
            fams[r.family] = fams.get(r.family, 0) + 1
        loads = sorted(r.load1 for r in recs if r.load1 >= 0)
        lines += [
            f"machine {name}: {len(recs)} records, {sum(1 for k in groups if k[1] == name)} groups, "
            f"ISAs {sorted(m.profiles)}",
            "  records per family: " + ", ".join(f"{k} {v}" for k, v in sorted(fams.items())),
            f"  load average (1 min) during collection: min {loads[0] if loads else 0:.2f}, "
            f"median {loads[len(loads) // 2] if loads else 0:.2f}, max {loads[-1] if loads else 0:.2f}",
        ] + [f"  {k}: {v}" for k, v in sorted(m.metadata.items()) if k != "host_profile"]
    return "\n".join(lines + [f"{k}: {v}" for k, v in sorted(ds.metadata.items())])


def parse_part(text: str) -> Tuple[Optional[str], Path]:
    """`NAME=FILE` or `FILE` (a merge argument)."""
    name, sep, path = text.partition("=")
    return (name, Path(path)) if sep else (None, Path(text))


def main(argv: Optional[Iterable[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoconfig.tuning.dataset", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="measure a prior-guided task sample (appends to --out)")
    c.add_argument("--out", type=Path, default=DEFAULT_PATH)
    c.add_argument("--machine", default=V1_MACHINE, help="the name this CPU's records and profiles take in --out")
    c.add_argument("--isa", default="x86-64-v3,x86-64-v2", help="comma-separated ISA variants to measure under")
    c.add_argument("--per-family", type=int, default=6, help="tasks drawn per network family")
    c.add_argument("--families", default="", help="comma-separated families (default: all)")
    c.add_argument("--top", type=int, default=6)
    c.add_argument("--neighbours", type=int, default=6)
    c.add_argument("--random", type=int, default=4)
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--chunk", type=int, default=6, help="tasks whose candidates share compiled batches")
    c.add_argument("--exhaustive", type=int, default=40, help="measure the whole space of tasks with at most this "
                   "many configs (their oracle is then exact)")
    s = sub.add_parser("summary", help="print what a dataset holds")
    s.add_argument("path", type=Path, nargs="?", default=DEFAULT_PATH)
    m = sub.add_parser("merge", help="several datasets' machines in one file (version 2)")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("parts", nargs="+", help="FILE (its machines keep their names) or NAME=FILE (a file of one "
                   "machine, which takes that name)")
    r = sub.add_parser("replace", help="re-measured (machine, ISA) pairs replace a dataset's records of them")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("base", type=Path, help="the dataset whose records are replaced")
    r.add_argument("new", type=Path, help="a dataset of the re-measured (machine, ISA) pairs")
    r.add_argument("--drop", default="", help="comma-separated MACHINE:ISA pairs whose records are removed "
                   "(measured with code since changed, on a CPU not at hand)")
    r.add_argument("--note", default="", help="why, appended to the metadata's 'replaced' list")
    a = ap.parse_args(argv)
    if a.cmd == "replace":
        drop = [tuple(p.split(":", 1)) for p in a.drop.split(",") if p]
        out = replace_pairs(load_dataset(a.base), load_dataset(a.new), drop, a.note)
        out.save(a.out)
        print(f"{a.out}: {len(out.records)} records of machines {sorted(out.machines)}")
        return 0
    if a.cmd == "summary":
        print(summary(load_dataset(a.path)))
        return 0
    if a.cmd == "merge":
        parts = [(name, load_dataset(path)) for name, path in map(parse_part, a.parts)]
        merged = merge(parts)
        merged.save(a.out)
        print(f"{a.out}: {len(merged.records)} records of machines {sorted(merged.machines)}")
        return 0
    fams = [f for f in a.families.split(",") if f] or None
    collect(a.out, [i for i in a.isa.split(",") if i], a.per_family, a.seed,
            SamplingPlan(a.top, a.neighbours, a.random), a.repeats, a.threads, fams, a.chunk, a.exhaustive,
            machine=a.machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
