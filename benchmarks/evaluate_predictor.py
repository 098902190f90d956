"""Held-out evaluation of the predictor against the analytical model and the search.

    python benchmarks/evaluate_predictor.py [--dataset D] [--splits networks,isa,machine]
                                            [--this-machine NAME [--measure-ops gemm,conv2d]
                                             [--same-batch ROUNDS [--same-batch-ops gemm]]] [--per-layer]

Needs LightGBM (pip install 'autoconfig[tuning]'): every split trains its own
model on its training side only.

Splits (each (task, machine, ISA) group of the dataset is one test case):
  held-out networks   leave one family out: for each family (resnet, mobilenet,
                      densenet, inception, efficientnet, bert, vit) a model
                      trained on the other families' groups (every machine and
                      ISA) ranks that family's layers; every group is tested once.
  held-out ISA        leave one ISA variant out: trained on the groups of the
                      others (e.g. x86-64-v2 + v3), tested on its groups
                      (x86-64-v4), for each variant the dataset has.
  held-out machine    leave one CPU out (a dataset of several machines): trained
                      on the other machines' groups, tested on its groups, each
                      ranked with the features of its own machine's profile:
                      one predictor serving a CPU it was not trained on.

Per test group, time of each selector's pick:
  oracle         the fastest measured config of the group: exact where the
                 whole space was measured (small conv spaces), otherwise the
                 best of the dataset's measurements (the analytical top k,
                 neighbours of the best, random ones) plus every config the
                 selectors below picked: an upper bound of the true best.
  analytical     the model's config (always measured by the collection).
  predictor      the split's model's top-ranked config (tuning.predictor.rank:
                 the configs the analytical model puts within 4x of its best).
  predictor:8    the fastest of its top 8.
  search@B       tuning.search at budget B, simulated on the dataset's times:
                 only on groups whose whole space was measured (elsewhere
                 its proposals have no time); marked with the group count.
The predictor's picks that the dataset lacks are measured now (measure.measure,
best of 5) and appended to the dataset as source "evaluation" (they then
serve later runs and the shipped model's training; a held-out side never
trains on its own records), but only for groups of --this-machine (the
dataset's name for the CPU this runs on: another CPU's times cannot be
measured here) whose op is in --measure-ops. Other picks the dataset lacks
are skipped: a group counts for a selector only when its pick has a time;
the tables give the group counts.
Score per selector: geomean over groups of oracle time / chosen time (1.0 =
always the best found).

Same-batch re-timing (--same-batch ROUNDS, groups of --this-machine whose op
is in --same-batch-ops): the held-out-network groups' --same-batch-top fastest
measured configs, analytical config and predictor pick are timed again side
by side (same_batch), and those groups are also scored on these times alone.
A group's oracle is a minimum over configs timed in one or several batches
(collection chunks, earlier evaluations), and on a shared VM the same config
differs between batches, and between draws, by more than the selectors do, so
the dataset-only score charges the selectors with the oracle's luckiest draw.
GEMM groups (sampled over several batches) by default; gemm,conv2d re-times
the conv groups too (whole small spaces timed in one chunk: still a minimum of
up to 30 draws).

Also: the time to configure every default spec layer (kernels_spec/) with the
shipped predictor on the probed profile of --this-machine (else of the
dataset's first machine) (bar: < 1 s), with the analytical model beside it.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from autoconfig.tuning import dataset as ds_mod  # noqa: E402
from autoconfig.tuning.predictor import rank  # noqa: E402
from autoconfig.tuning.space import Config, analytical_config, space  # noqa: E402
from autoconfig.tuning.train import Group, groups_of, train  # noqa: E402

BUDGETS = (16, 64, 256)
SELECTORS = ("analytical", "predictor", "predictor:8") + tuple(f"search@{b}" for b in BUDGETS)


def geomean(v: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def predictor_picks(ranker, groups: Sequence[Group], k: int = 8) -> List[List[Config]]:
    """The top k of each group as the predictor selector ranks them (predictor.rank)."""
    return [rank(g.task, g.profile, ranker)[0][:k] for g in groups]


def fill_in(ds: ds_mod.Dataset, groups: Sequence[Group], times: Dict[int, Dict[Config, float]],
            picks: Dict[int, List[Config]], here: Optional[str], measure_ops: Sequence[str], log) -> None:
    """Measures the picks that no group time covers in the groups of machine
    `here` (this CPU) whose op is in measure_ops, and adds them to `times`
    (group index -> config -> seconds) and the dataset."""
    if not here or not measure_ops:
        return
    host = ds_mod.host_profile(ds, here)
    need: Dict[str, List[Tuple[int, Config]]] = {}
    for i, cs in picks.items():
        if groups[i].machine != here or groups[i].task.op not in measure_ops:
            continue
        for c in cs:
            if c not in times[i]:
                need.setdefault(groups[i].isa, []).append((i, c))
    for isa, items in need.items():
        log(f"  measuring {len(items)} predictor picks the dataset lacks on {isa}")
        load = ds_mod.load_average()
        secs = ds_mod._measure_pairs([(groups[i].task, c) for i, c in items], host, isa, 5, log)
        for (i, c), s in zip(items, secs):
            if s is None:
                continue
            times[i][c] = s
            g = groups[i]
            ds.records.append(ds_mod.Record(g.task.to_dict(), g.network, g.family, isa, c.to_dict(), float(s),
                                            "evaluation", load, here))


def simulated_search(g: Group, times: Dict[Config, float], budget: int) -> Optional[float]:
    from autoconfig.tuning.search import search_many
    full = space(g.task, g.profile)
    if any(c not in times for c in full):
        return None

    def lookup(pairs, _profile):
        return [times[c] for _, c in pairs]
    return search_many([g.task], g.profile, budget, measure_fn=lookup)[0].best_seconds


def evaluate(ds, groups: Sequence[Group], times: Dict[int, Dict[Config, float]], tests: Sequence[int], ranker,
             here: Optional[str], measure_ops: Sequence[str], log):
    picks = dict(zip(tests, predictor_picks(ranker, [groups[i] for i in tests])))
    fill_in(ds, groups, times, picks, here, measure_ops, log)
    rows = []
    for i in tests:
        g, t = groups[i], times[i]
        pick = {"analytical": analytical_config(g.task, g.profile), "predictor": picks[i][0]}
        chosen = {name: t.get(c) for name, c in pick.items()}
        top8 = [t[c] for c in picks[i] if c in t]
        chosen["predictor:8"] = min(top8) if len(top8) == len(picks[i]) else None
        for b in BUDGETS:
            chosen[f"search@{b}"] = simulated_search(g, t, b)
        rows.append({"index": i, "group": g, "chosen": chosen, "space": len(space(g.task, g.profile)),
                     "picks": pick})
    return rows


def same_batch(rows, groups: Sequence[Group], times: Dict[int, Dict[Config, float]], host, here: str,
               ops: Sequence[str], rounds: int, log, top: int = 5) -> List[dict]:
    """Re-times side by side what a row's score compares: the group's `top`
    fastest measured configs (the oracle's among them), the analytical config
    and the predictor's pick, for the rows of machine `here` whose op is in `ops`:
    all of an ISA's in one measure() batch, `rounds` times (every other round
    in reverse order), best per config. A dataset time comes from whichever
    collection or evaluation batch measured it, and batches hours apart on a
    shared VM run at different speeds (clock, neighbours), so the oracle, a
    minimum over 12-60 configs from several batches, takes the luckiest
    batch's speed (the winner's curse) while a pick measured once does not
    (ten Zen 5 x86-64-v4 GEMM groups whose held-out pick the dataset put at
    0.80-0.95 of the oracle came out at 0.96-1.03 re-timed side by side).
    The dataset's fastest is re-timed with the next `top` - 1: had it only
    been lucky, one of those may now be faster, and the re-timed oracle (the
    fastest of everything re-timed) is not just the one config that won the
    draw. Returns one dict per re-timed row: its index and group, the
    re-timed seconds of the dataset's fastest config ("oracle") and of each
    selector's pick ("seconds"), and the fastest of everything re-timed for
    it ("best")."""
    items: Dict[str, List[Tuple[int, Config]]] = {}
    todo = []
    for r in rows:
        g, t = r["group"], times[r["index"]]
        if g.machine != here or g.task.op not in ops:
            continue
        fastest = sorted(t, key=t.get)[:max(1, top)]
        configs = fastest + [c for c in r["picks"].values() if c is not None]
        todo.append((r, fastest))
        for c in dict.fromkeys(configs):
            items.setdefault(g.isa, []).append((r["index"], c))
    retimed: Dict[Tuple[int, Config], float] = {}
    for isa, pairs in items.items():
        for k in range(rounds):
            order = pairs if k % 2 == 0 else pairs[::-1]
            log(f"  same-batch round {k + 1}/{rounds} on {isa}: {len(order)} configs")
            secs = ds_mod._measure_pairs([(groups[i].task, c) for i, c in order], host, isa, 5, log)
            for key, s in zip(order, secs):
                if s is not None:
                    retimed[key] = min(retimed.get(key, float("inf")), s)
    out = []
    for r, fastest in todo:
        i = r["index"]
        got = {name: retimed.get((i, c)) for name, c in r["picks"].items()}
        got["oracle"] = retimed.get((i, fastest[0]))
        if got["oracle"] is None:
            continue
        best = min(retimed[(i, c)] for c in fastest + list(r["picks"].values()) if (i, c) in retimed)
        out.append({"index": i, "group": r["group"], "seconds": got, "best": best})
    return out


def same_batch_summary(rows) -> str:
    """Per family: geomean of (fastest of the re-timed configs) / (re-timed pick)."""
    lines = ["| family | groups | analytical | predictor | the dataset's fastest still fastest |", "|---|---|---|---|---|"]
    fams = sorted({r["group"].family for r in rows})
    for fam in fams + ["all"]:
        sel = [r for r in rows if fam == "all" or r["group"].family == fam]
        scores = {}
        for name in ("analytical", "predictor"):
            vals = [r["best"] / r["seconds"][name] for r in sel if r["seconds"][name]]
            scores[name] = geomean(vals)
        kept = sum(1 for r in sel if r["seconds"]["oracle"] <= r["best"])
        lines.append(f"| {fam} | {len(sel)} | {scores['analytical']:.3f} | {scores['predictor']:.3f} | {kept} |")
    return "\n".join(lines)


def finish(rows, times) -> None:
    """The oracle and the measured count of each row, once every split's picks are measured."""
    for r in rows:
        t = times[r["index"]]
        r["oracle"], r["measured"] = min(t.values()), len(t)


def summarize(rows) -> Dict[str, Tuple[float, int]]:
    out = {}
    for name in SELECTORS:
        vals = [r["oracle"] / r["chosen"][name] for r in rows if r["chosen"][name]]
        out[name] = (geomean(vals), len(vals))
    return out


def configure_time(selector: str, profile) -> Tuple[float, float, int]:
    """Seconds to select every default spec layer's config on `profile` (a
    probe the dataset holds), once the model file is loaded."""
    from autoconfig import spec as spec_mod
    from autoconfig.tuning.selectors import select
    from autoconfig.tuning.space import tasks_from_specs
    tasks = tasks_from_specs(spec_mod.load_dirs([ROOT / "kernels_spec"]), profile)
    select(tasks[0], profile, selector)           # model file loaded once, outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    for t in tasks:
        select(t, profile, selector)
    return time.perf_counter() - t0, time.process_time() - c0, len(tasks)


def table(title: str, results: Dict[str, Tuple[float, int]], total: int) -> str:
    lines = [f"**{title}** ({total} groups)", "", "| selector | geomean oracle / chosen | groups |", "|---|---|---|"]
    for name, (gm, n) in results.items():
        lines.append(f"| {name} | {gm:.3f} | {n} |")
    return "\n".join(lines)


def per_layer(rows) -> str:
    lines = ["| family | network | layer | machine | ISA | space | measured | oracle ms | analytical | predictor | "
             "predictor:8 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["group"].family, r["group"].network, r["group"].machine, r["group"].isa)):
        g, c = r["group"], r["chosen"]

        def cell(name):
            return f"{r['oracle'] / c[name]:.3f}" if c[name] else "-"
        lines.append(f"| {g.family} | {g.network} | {g.task.op} {g.task.shape.label()} | {g.machine} | {g.isa} | "
                     f"{r['space']} | "
                     f"{r['measured']} | {r['oracle'] * 1e3:.3f} | {cell('analytical')} | {cell('predictor')} | "
                     f"{cell('predictor:8')} |")
    return "\n".join(lines)


def by_column(rows, key: str, values: Sequence[str]) -> str:
    """The selectors' scores per value of a group attribute (family, machine, ISA)."""
    lines = [f"| {key} | groups | analytical | predictor | predictor:8 |", "|---|---|---|---|---|"]
    for v in values:
        s = summarize([r for r in rows if getattr(r["group"], key) == v])
        lines.append(f"| {v} | {s['predictor'][1]} | {s['analytical'][0]:.3f} | {s['predictor'][0]:.3f} | "
                     f"{s['predictor:8'][0]:.3f} ({s['predictor:8'][1]}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=ds_mod.DEFAULT_PATH)
    ap.add_argument("--splits", default="networks,isa,machine",
                    help="comma-separated: networks (leave a family out), isa, machine (leave a CPU out)")
    ap.add_argument("--this-machine", default="",
                    help="the dataset's name for this CPU: its groups' picks the dataset lacks are measured, and "
                    "its profile configures the spec layers (default: measure nothing)")
    ap.add_argument("--measure-ops", default="gemm,conv2d",
                    help="with --this-machine, measure the picks it lacks for these ops only (GEMM candidates compile)")
    ap.add_argument("--per-layer", action="store_true", help="print the per-layer table of held-out networks")
    ap.add_argument("--same-batch", type=int, default=0, metavar="ROUNDS",
                    help="with --this-machine, re-time side by side (ROUNDS rounds) the fastest measured configs, the "
                    "analytical config and the predictor's pick of its held-out-network groups whose op is in "
                    "--same-batch-ops")
    ap.add_argument("--same-batch-ops", default="gemm")
    ap.add_argument("--same-batch-top", type=int, default=5,
                    help="re-time this many of a group's fastest measured configs (the oracle's candidates)")
    ap.add_argument("--skip-configure", action="store_true")
    a = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)
    ops = [o for o in a.measure_ops.split(",") if o]
    splits = {s for s in a.splits.split(",") if s}
    unknown = splits - {"networks", "isa", "machine"}
    if unknown:
        ap.error(f"--splits: unknown {sorted(unknown)}")
    ds = ds_mod.load_dataset(a.dataset)
    if a.this_machine and a.this_machine not in ds.machines:
        ap.error(f"--this-machine: {a.this_machine!r} is not a machine of the dataset ({sorted(ds.machines)})")
    here = a.this_machine or None
    groups = groups_of(ds)
    families = sorted({g.family for g in groups})
    isas = sorted({g.isa for g in groups})
    machines = sorted({g.machine for g in groups})
    load0 = os.getloadavg()[0]
    t0 = time.time()
    cpus = "; ".join(f"{m}: {ds.machines[m].metadata.get('cpu')}" for m in machines)
    out = [f"Dataset: {a.dataset.name}, {len(ds.records)} records, {len(groups)} (task, machine, ISA) groups, "
           f"families {', '.join(families)}, ISAs {', '.join(isas)}, machines {cpus}; "
           f"measured now: {'groups of ' + here + ' (' + ','.join(ops) + ')' if here and ops else 'nothing'}."]
    times = {i: dict(zip(g.configs, g.seconds.tolist())) for i, g in enumerate(groups)}
    held_rows, held_out = [], []            # held_out: (title, rows) of the ISA and machine splits
    if "networks" in splits:
        for fam in families:
            train_g = [g for g in groups if g.family != fam]
            tests = [i for i, g in enumerate(groups) if g.family == fam]
            log(f"held-out family {fam}: train {len(train_g)} groups, test {len(tests)}")
            held_rows += evaluate(ds, groups, times, tests, train(train_g), here, ops, log)
    for kind, values in (("isa", isas), ("machine", machines)):
        if kind not in splits or len(values) < 2:
            continue
        for test in values:
            train_g = [g for g in groups if getattr(g, kind) != test]
            tests = [i for i, g in enumerate(groups) if getattr(g, kind) == test]
            log(f"held-out {kind} {test}: train {len(train_g)} groups, test {len(tests)}")
            title = f"Held-out {'ISA' if kind == 'isa' else kind}: trained on " \
                    f"{', '.join(v for v in values if v != test)}, tested on {test}"
            held_out.append((title, evaluate(ds, groups, times, tests, train(train_g), here, ops, log)))
    # the oracle of a group is the best over everything measured, the picks of every split included
    finish(held_rows, times)
    for _, rows in held_out:
        finish(rows, times)
    if held_rows:
        out.append(table("Held-out networks (leave one family out)", summarize(held_rows), len(held_rows)))
        out.append(by_column(held_rows, "family", families))
        if len(machines) > 1:
            out.append(by_column(held_rows, "machine", machines))
    for title, rows in held_out:
        out.append(table(title, summarize(rows), len(rows)))
        out.append(by_column(rows, "isa", sorted({r["group"].isa for r in rows})))
    if here and ops:
        ds.save(a.dataset)
    if a.same_batch and here and held_rows:
        sb_ops = [o for o in a.same_batch_ops.split(",") if o]
        sb = same_batch(held_rows, groups, times, ds_mod.host_profile(ds, here), here, sb_ops, a.same_batch, log,
                        a.same_batch_top)
        out.append(f"**Held-out networks, re-timed side by side** ({len(sb)} groups of {here}, ops "
                   f"{','.join(sb_ops)}, {a.same_batch} rounds, each group's {a.same_batch_top} fastest measured "
                   "configs and the picks; score: the fastest of the re-timed configs / the pick's re-timed time)"
                   "\n\n" + same_batch_summary(sb))
        retimed = {r["index"]: r for r in sb}
        vals = []
        for r in held_rows:
            if r["index"] in retimed:
                rt = retimed[r["index"]]
                if rt["seconds"]["predictor"]:
                    vals.append(rt["best"] / rt["seconds"]["predictor"])
            elif r["chosen"]["predictor"]:
                vals.append(r["oracle"] / r["chosen"]["predictor"])
        out.append(f"Held-out networks, predictor (zero measurements), with those groups scored on their re-timed "
                   f"configs and every other group as above: **{geomean(vals):.4f}** ({len(vals)} groups)")
    if a.per_layer and held_rows:
        out.append(per_layer(held_rows))
    if not a.skip_configure:
        profile = ds_mod.host_profile(ds, here or sorted(ds.machines)[0])
        lines = ["| selector | seconds to configure all default spec layers (wall) | CPU seconds | tasks |",
                 "|---|---|---|---|"]
        for sel in ("analytical", "predictor"):
            secs, cpu, n = configure_time(sel, profile)
            lines.append(f"| {sel} | {secs:.2f} | {cpu:.2f} | {n} |")
        out.append("\n".join(lines))
    out.append(f"Evaluation took {time.time() - t0:.0f} s; load average {load0:.2f} at start, "
               f"{os.getloadavg()[0]:.2f} at end.")
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
