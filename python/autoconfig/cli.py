"""Command line: autoconfig probe | plan | bench | import-onnx | plan-model (also python -m autoconfig)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

PKG_DIR = Path(__file__).resolve().parent


def _installed_probe() -> Optional[str]:
    exe = PKG_DIR / "autoconfig_probe"
    return str(exe) if exe.exists() else None


def _build_profile():
    """The profile this build was planned with, if this is an installed build."""
    f = PKG_DIR / "_host_profile.json"
    if f.exists():
        from .profile import HostProfile
        return HostProfile.from_json(f.read_text())
    return None


def cmd_probe(args) -> int:
    from . import probe
    prof = probe.profile(args.target, probe_exe=None if args.target else _installed_probe(),
                         quick=args.quick)
    if args.json:
        print(prof.to_json())
    else:
        print(probe.summary(prof) if hasattr(probe, "summary") else prof.to_json())
    return 0


def cmd_plan(args) -> int:
    from . import generate, probe
    from .plan import plans_to_json
    specs = generate.load_specs(args.spec or [], not args.no_default_specs)
    if args.target:
        prof = probe.profile(args.target)
    else:
        prof = _build_profile() or probe.profile(None, probe_exe=_installed_probe())
    generic, specialized = generate.gemm_plans(prof, specs)
    plans = [generic] + specialized
    if args.json:
        print(plans_to_json(plans))
        return 0
    print(f"target {prof.name}: isa {prof.isa}, {prof.vector_bits}-bit x {prof.vector_registers} registers, "
          f"FMA latency {prof.fma_latency_cycles:g} x {prof.fma_per_cycle:g}/cycle, "
          f"peak {prof.peak_gflops_per_core:.1f} GFLOPS/core, {prof.cores} cores")
    if args.explain:
        for p in plans:
            print()
            print(p.explain())
        refs = _compare_targets(args.compare, prof)
        if refs:
            from . import plan_compare
            from .codegen.isa import isa_for_profile
            profiles = [prof] + [probe.profile(t) for t in refs]
            print()
            print(plan_compare.compare(profiles, [isa_for_profile(p).suffix for p in profiles]))
        return 0
    print(f"{'kernel':<46} {'tile':>7} {'kc':>5} {'mc':>5} {'nc':>5} {'threads':>8} {'predicted us':>13}")
    for p in plans:
        pred = "-" if p.predicted_s is None else f"{p.predicted_s * 1e6:.1f}"
        counts = [p.value("threads")] + (p.value("also_threads") if "also_threads" in p.params else [])
        thr = "any" if counts == [0] else ",".join(str(c) for c in counts)
        print(f"{p.kernel:<46} {p.value('mr'):>3}x{p.value('nr'):<3} {p.value('kc'):>5} {p.value('mc'):>5} "
              f"{p.value('nc'):>5} {thr:>8} {pred:>13}")
    return 0


def _compare_targets(arg: Optional[str], prof) -> List[str]:
    """--compare: a comma-separated list of targets, 'none', or (unset) the
    x86 references for a non-x86 profile (plan_compare.default_references)."""
    if arg is None:
        from . import plan_compare
        return plan_compare.default_references(prof)
    return [] if arg.strip() == "none" else [t.strip() for t in arg.split(",") if t.strip()]


def _parse_shape(text: str):
    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected MxNxK with positive integers, got {text!r}")
    return tuple(parts)


def cmd_bench(args) -> int:
    from . import bench
    bench.pin_threads(args.threads)   # before numpy / torch create their pools
    from .runtime.info import host
    build_peak = host().peak_gflops_per_core
    peak = bench.measured_peak_gflops(host().isa) or build_peak
    if args.op == "conv2d":
        from . import bench_conv
        rows = bench_conv.run_conv(args.threads, args.repeat, args.check_model, use_torch=not args.no_torch,
                                   net=args.net, peak_gflops=peak)
        print(bench_conv.format_conv_table(rows, args.markdown, peak))
        return 0
    if args.check_model or args.net:
        raise ValueError("--check-model and --net apply to --op conv2d")
    shapes = args.shape or bench.default_shapes()
    rows = bench.run_matmul(shapes, args.threads, args.repeat, use_torch=not args.no_torch, peak_gflops=peak)
    print(bench.format_table(rows, args.markdown, peak, build_peak))
    return 0


def _input_shapes(items):
    """--input-shape 1,3,224,224 (the first input) or NAME=1,3,224,224 (repeatable)."""
    if not items:
        return None
    out = {}
    for text in items:
        name, _, dims = text.rpartition("=")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            shape = []
        if not shape or min(shape) < 1:
            raise ValueError(f"--input-shape: expected [NAME=]D1,D2,... with positive integers, got {text!r}")
        out[name or None] = shape
    if None in out:
        if len(out) > 1:
            raise ValueError("--input-shape: name every input when giving more than one")
        return out[None]
    return out


def _model_profile(args):
    from . import probe
    if args.target:
        return probe.profile(args.target)
    return _build_profile() or probe.profile(None, probe_exe=_installed_probe())


def _compile_model(args, compare: bool = False):
    from .graph.pipeline import compile_onnx   # its ImportError_ is a ValueError: main() reports it
    return compile_onnx(args.model, _model_profile(args), input_shape=_input_shapes(args.input_shape),
                        threads=args.threads, tolerance=args.tolerance, compare=compare)


def cmd_import_onnx(args) -> int:
    from .graph import planner
    from .graph.pipeline import write_outputs
    p = _compile_model(args)
    name = args.name or Path(args.model).stem
    am, spec = write_outputs(p, args.output, name)
    print(f"wrote {am} ({Path(am).stat().st_size} bytes) and {spec}")
    print(f"{len(p.graph.nodes)} nodes, arena {p.arena_floats} floats, predicted {p.total_ms:.3f} ms "
          f"on {p.profile_name} ({p.cores} core(s))")
    if args.explain:
        print(planner.explain(p))
    return 0


def cmd_plan_model(args) -> int:
    from .graph import planner
    if args.model.endswith(".acmodel"):          # explain a planned file: no onnx needed
        from .graph import acmodel
        m = acmodel.read(args.model)
        print(planner.explain_header(m.header))
        if args.why:
            print()
            for n in m.header["nodes"]:
                print(f"{n['name']} ({n['op']}): {n.get('why', '')}")
        return 0
    p = _compile_model(args, compare=args.explain)
    if args.explain:
        print(planner.explain(p))
        if args.why:
            print()
            for n in p.graph.nodes:
                print(planner.explain_node(n))
    else:
        print(str(p.graph))
        print(f"network total: {p.total_ms:.3f} ms predicted")
    return 0


def _model_args(p) -> None:
    p.add_argument("model", help="the ONNX model file")
    p.add_argument("--input-shape", action="append", metavar="[NAME=]1,3,224,224",
                   help="shape of the (first or named) input when the model leaves it open (repeatable)")
    p.add_argument("--target", default=None,
                   help="plan for a built-in target or JSON file (default: this build's profile, else a probe)")
    p.add_argument("--threads", type=int, default=None, help="cap on threads per node (default: the cores)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest relative error a conv algorithm may carry (refuses Winograd above it)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="autoconfig", description=(
        "Ahead-of-time, host-tuned CPU kernels configured by analytical models."))
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("probe", help="measure this machine (ISA, caches, FMA peak, bandwidth)")
    p.add_argument("--json", action="store_true", help="print the HostProfile as JSON")
    p.add_argument("--target", default=None, help="show a built-in target or JSON file instead of probing")
    p.add_argument("--quick", action="store_true", help="shorter micro-benchmarks")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("plan", help="plan the kernels of the specs and say why")
    p.add_argument("--spec", action="append", metavar="PATH", help="extra spec folder (repeatable)")
    p.add_argument("--no-default-specs", action="store_true", help="skip the embedded specs")
    p.add_argument("--target", default=None,
                   help="plan for a built-in target or JSON file (default: this build's profile)")
    p.add_argument("--json", action="store_true", help="print the plans as JSON")
    p.add_argument("--explain", action="store_true", help="print every plan's parameters, terms and candidates")
    p.add_argument("--compare", default=None, metavar="T1,T2",
                   help="with --explain: the generic plan next to these targets' and why it differs "
                        "(default: x86-64-v4,x86-64-v3 for an Arm or RISC-V target, none otherwise; 'none' to skip)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("bench", help="time our kernels against numpy (and PyTorch when installed)")
    p.add_argument("--threads", type=int, default=1, help="threads for every library (default 1)")
    p.add_argument("--repeat", type=int, default=5, help="samples per measurement; the best is kept")
    p.add_argument("--shape", type=_parse_shape, action="append", metavar="MxNxK",
                   help="shape to time (repeatable; default: the embedded spec shapes)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument("--op", choices=["matmul", "conv2d"], default="matmul",
                   help="matmul (the spec GEMM shapes) or conv2d (the spec ResNet-50 / MobileNetV2 layers)")
    p.add_argument("--check-model", action="store_true",
                   help="conv2d: also time every applicable algorithm and report whether the model chose the best")
    p.add_argument("--net", default=None, help="conv2d: only spec kernels whose name starts with this (resnet50, ...)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("import-onnx", help="import, plan and write DIR/<name>.acmodel and DIR/<name>.yaml")
    _model_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--name", default=None, help="file name stem (default: the model file's)")
    p.add_argument("--explain", action="store_true", help="also print the plan per node")
    p.set_defaults(func=cmd_import_onnx)

    p = sub.add_parser("plan-model", help="import and plan an ONNX model (or read an .acmodel); "
                                          "print the graph or (--explain) the plan")
    _model_args(p)
    p.add_argument("--explain", action="store_true",
                   help="per node: fused into, algorithm, layout, threads, predicted ms; the network total")
    p.add_argument("--why", action="store_true", help="with --explain: every node's reasons")
    p.set_defaults(func=cmd_plan_model)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 1) is not None and getattr(args, "threads", 1) < 1:
        print("autoconfig: --threads must be >= 1", file=sys.stderr)
        return 2
    from .spec import SpecError
    try:
        return args.func(args)
    except SpecError as e:
        print(f"autoconfig: spec error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"autoconfig: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
