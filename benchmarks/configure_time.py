"""Time to configure: how long each selector takes to choose every default
spec task's config (issue 16: "predictor < 1 s, against the search's minutes").

    python benchmarks/configure_time.py [--profile host.json | --target x86-64-v3]
        [--selectors analytical,predictor,predictor:8] [--repeat 5] [--cprofile OUT.prof]

What is timed: select(task, profile, selector) for every task of
tasks_from_specs(default specs) (the conv layers and GEMM shapes of
kernels_spec/ at each thread count), i.e. the selector's whole configure
step (enumerating the space, features, ranking, planning the pick). Each
repetition runs in a fresh Python process, so no selector profits from
another's caches: the first call of a build is what a build pays. Loading
the specs, importing the package and the profile are not counted.

predictor:K measures its top K on this machine; those measurements (compile
+ run, seconds each) are not counted here: measure() is replaced by one that
reports equal times without compiling anything (so the first of the top K is
planned), and the line says so. Their cost is compare-selectors' business.

The profile: --profile FILE (a HostProfile JSON, e.g. a build's
host_profile.json), --target NAME (a built-in target, nothing measured), or
by default a probe of this machine (a few seconds, not counted).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_profile(profile_path, target):
    from autoconfig import probe
    from autoconfig.profile import HostProfile
    if profile_path:
        return HostProfile.from_json(Path(profile_path).read_text())
    return probe.profile(target or None)


def _equal_times(pairs, profile, **kwargs):
    """measure() stand-in for predictor:K: no compile, no run; equal times."""
    return [1.0] * len(pairs)


def run_once(selector: str, profile_path: str, cprofile: str = "") -> dict:
    """One fresh-process timing of `selector` over the default spec tasks."""
    from autoconfig import spec
    from autoconfig.profile import HostProfile
    from autoconfig.tuning import measure as measure_mod
    from autoconfig.tuning.selectors import check_selector, select
    from autoconfig.tuning.space import tasks_from_specs
    profile = HostProfile.from_json(Path(profile_path).read_text())
    check_selector(selector)                      # imports (and loads nothing of) the predictor module
    if ":" in selector:
        measure_mod.measure = _equal_times
    tasks = tasks_from_specs(spec.load_dirs([spec.default_spec_dir()]), profile)
    prof = None
    if cprofile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    plans = [select(t, profile, selector) for t in tasks]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.disable()
        prof.dump_stats(cprofile)
    return {"selector": selector, "seconds": seconds, "cpu_s": cpu, "tasks": len(tasks),
            "gemm_tasks": sum(t.op == "gemm" for t in tasks), "kernels": len({p.kernel for p in plans})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=None, help="HostProfile JSON to plan with")
    ap.add_argument("--target", default=None, help="a built-in target instead (x86-64-v3, x86-64-v4, ...)")
    ap.add_argument("--selectors", default="analytical,predictor,predictor:8")
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per selector; the best is reported")
    ap.add_argument("--cprofile", default="", help="write cProfile stats of the last run of each selector to "
                                                  "OUT.<selector>.prof")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)      # internal: the child process
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_once(args.one, args.profile, args.cprofile)))
        return 0
    if args.repeat < 1:
        ap.error("--repeat: expected a positive count")
    profile = _load_profile(args.profile, args.target)
    import tempfile
    with tempfile.TemporaryDirectory(prefix="autoconfig-cfgtime-") as tmp:
        path = Path(tmp) / "profile.json"
        path.write_text(profile.to_json())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python")] + [p for p in [env.get("PYTHONPATH")] if p])
        results = []
        for sel in args.selectors.split(","):
            runs = []
            for r in range(args.repeat):
                cmd = [sys.executable, __file__, "--one", sel, "--profile", str(path)]
                if args.cprofile and r == args.repeat - 1:
                    cmd += ["--cprofile", f"{args.cprofile}.{sel.replace(':', '_')}.prof"]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
            best = min(runs, key=lambda d: d["seconds"])
            best["runs_s"] = [round(d["seconds"], 4) for d in runs]
            best["best_cpu_s"] = min(d["cpu_s"] for d in runs)
            results.append(best)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"profile": profile.name, "isa": profile.isa, "load": load, "results": results}, indent=1))
        return 0
    print(f"time to configure the default spec tasks on {profile.name} ({profile.isa}, {profile.cores} cores); "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; best of {args.repeat} fresh processes "
          "(wall; the process's CPU time beside it, less sensitive to the load)")
    for d in results:
        note = " (measurements of the top K not taken: not counted)" if ":" in d["selector"] else ""
        print(f"  {d['selector']:<14} {d['seconds']:7.3f} s  (CPU {d['best_cpu_s']:.3f} s) for {d['tasks']} tasks "
              f"({d['gemm_tasks']} GEMM); wall of each run {d['runs_s']}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
