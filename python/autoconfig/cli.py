"""Command line: autoconfig probe | plan | bench | import-onnx | plan-model (also python -m autoconfig)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

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


# Numeric options are checked by argparse, which names the option and exits
# with 2: a zero or negative count used to run and print inf/nan.
MAX_REPEAT = 1000      # samples per measurement; the best of a few already settles, more only lengthen the run
INT32_MAX = 2**31 - 1  # largest M, N, K the kernels take (the spec limit)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def bounded_int(lo: int, hi: Callable[[], int], why_hi: str) -> Callable[[str], int]:
    """An argparse type: an integer from lo to hi() (argparse prefixes the option's name)."""
    def integer(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        top = hi()
        if not lo <= v <= top:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo} to {top} ({why_hi}), got {v}")
        return v
    return integer


def _memory_bytes() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _parse_shape(text: str):
    try:
        parts = [int(x, 10) for x in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected MxNxK with positive integers, got {text!r}")
    if max(parts) > INT32_MAX:
        raise argparse.ArgumentTypeError(f"expected M, N, K <= {INT32_MAX} (2**31-1), got {text!r}")
    M, N, K = parts
    # bench holds A, B, our C and numpy's C as float32 at once
    need, have = 4 * (M * K + K * N + 2 * M * N), _memory_bytes()
    if have is not None and need > have:
        raise argparse.ArgumentTypeError(f"{text} needs {need / 2**30:.1f} GiB for its matrices; this machine has "
                                         f"{have / 2**30:.1f} GiB of memory")
    return tuple(parts)


def _parse_net(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a spec kernel name prefix such as resnet50, got an empty string")
    return text


def _check_net(net: Optional[str]) -> None:
    """--net must select at least one conv layer: say which exist otherwise."""
    from . import bench_conv
    from . import spec as spec_mod
    if net is None or bench_conv.default_layers(net):
        return
    names = sorted(s.name for s in spec_mod.load_default() if s.op == "conv2d" and s.shapes)
    nets = sorted({n.split("_")[0] for n in names})
    raise ValueError(f"--net {net}: no conv2d spec kernel's name starts with {net!r}; the nets are "
                     f"{', '.join(nets) or '(none)'} and the kernels {', '.join(names) or '(none)'}")


def cmd_bench(args) -> int:
    from . import bench
    if args.model:
        bench.pin_threads(args.threads)   # before numpy and the peers create their pools
        return _bench_model(args)
    # Check the selection before loading the kernels: it needs none.
    if args.op == "conv2d":
        _check_net(args.net)
    elif args.check_model or args.net:
        raise ValueError("--check-model and --net apply to --op conv2d")
    shapes = None
    if args.op == "matmul":
        shapes = args.shape or bench.default_shapes()
        if not shapes:
            raise ValueError("the specs have no matmul or gemm shapes to time: pass --shape MxNxK")
    bench.pin_threads(args.threads)   # before numpy / torch create their pools
    try:
        from .runtime.info import host   # loads the kernels: refused on a CPU lacking the build's ISA
        host()
    except ImportError as e:       # the guard's message already starts with "autoconfig: "
        msg = str(e)
        print(msg if msg.startswith("autoconfig: ") else f"autoconfig: {msg}", file=sys.stderr)
        return 1
    build_peak = host().peak_gflops_per_core
    peak = bench.measured_peak_gflops(host().isa) or build_peak
    if args.op == "conv2d":
        from . import bench_conv
        rows = bench_conv.run_conv(args.threads, args.repeat, args.check_model, use_torch=not args.no_torch,
                                   net=args.net, peak_gflops=peak)
        print(bench_conv.format_conv_table(rows, args.markdown, peak))
        return 0
    rows = bench.run_matmul(shapes, args.threads, args.repeat, use_torch=not args.no_torch, peak_gflops=peak)
    print(bench.format_table(rows, args.markdown, peak, build_peak))
    return 0


def _bench_model(args) -> int:
    from . import bench_model
    peers = [] if args.no_peers else ["onnxruntime", "openvino"]
    b = bench_model.run(args.model, threads=args.threads, runs=max(20, args.runs),
                        input_shape=_input_shapes(args.input_shape), peers=peers, layouts=args.layouts,
                        sequence=args.sequence)
    print(bench_model.format_latency(b, args.markdown))
    print()
    print(bench_model.format_profile(b, args.markdown, top=args.top))
    if args.plot:
        bench_model.plot_profile(b, args.plot)
        print(f"wrote {args.plot}")
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
                        threads=args.threads, tolerance=args.tolerance, compare=compare, layouts=args.layouts)


def cmd_import_onnx(args) -> int:
    from .graph import planner
    from .graph.pipeline import write_outputs
    name = args.name or Path(args.model).stem
    if args.sequence_buckets:
        return _import_buckets(args, name)
    p = _compile_model(args)
    am, spec = write_outputs(p, args.output, name)
    print(f"wrote {am} ({Path(am).stat().st_size} bytes) and {spec}")
    print(f"{len(p.graph.nodes)} nodes, arena {p.arena_floats} floats, predicted {p.total_ms:.3f} ms "
          f"on {p.profile_name} ({p.cores} core(s))")
    if args.explain:
        print(planner.explain(p))
    return 0


def _import_buckets(args, name: str) -> int:
    """One .acmodel per sequence-length bucket (FORMAT.md, "Sequence length"): DIR/<name>.s<L>.acmodel."""
    from .graph.pipeline import compile_onnx, write_outputs
    from .model_onnx import sequence_shapes
    from .sequence_model import buckets
    if args.input_shape:
        raise ValueError("--sequence-buckets gives the input shapes itself: drop --input-shape")
    if sequence_shapes(args.model, 1) is None:
        raise ValueError(f"{args.model}: --sequence-buckets needs a transformer (an int64 token input with an "
                         f"open sequence axis)")
    profile = _model_profile(args)
    for length in buckets(args.sequence_buckets):
        p = compile_onnx(args.model, profile, input_shape=sequence_shapes(args.model, length, args.batch),
                         threads=args.threads, tolerance=args.tolerance, layouts=args.layouts)
        am, _ = write_outputs(p, args.output, f"{name}.s{length}")
        print(f"wrote {am}: batch {args.batch}, sequence {length}, predicted {p.total_ms:.3f} ms")
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
    p.add_argument("--layouts", choices=["auto", "nchw", "blocked"], default="auto",
                   help="activation layouts: the planner's choice of NCHW[B]c (auto), NCHW everywhere, or "
                        "every activation that can be blocked")


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

    p = sub.add_parser("bench", help="time our kernels against numpy (and PyTorch when installed), "
                                     "or (--model) a network against onnxruntime and OpenVINO")
    p.add_argument("--threads", type=bounded_int(1, available_cpus, "the CPUs this process may run on"),
                   default=1, help="threads for every library (default 1)")
    p.add_argument("--repeat", default=5,
                   type=bounded_int(1, lambda: MAX_REPEAT, "more samples only lengthen the run"),
                   help=f"samples per measurement; the best is kept (1 to {MAX_REPEAT})")
    p.add_argument("--shape", type=_parse_shape, action="append", metavar="MxNxK",
                   help="shape to time (repeatable; default: the embedded spec shapes)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument("--op", choices=["matmul", "conv2d"], default="matmul",
                   help="matmul (the spec GEMM shapes) or conv2d (the spec ResNet-50 / MobileNetV2 layers)")
    p.add_argument("--check-model", action="store_true",
                   help="conv2d: also time every applicable algorithm and report whether the model chose the best")
    p.add_argument("--net", type=_parse_net, default=None,
                   help="conv2d: only spec kernels whose name starts with this (resnet50, ...)")
    p.add_argument("--model", default=None, metavar="MODEL.onnx",
                   help="time a whole network end to end against onnxruntime and OpenVINO (when installed)")
    p.add_argument("--runs", default=20, type=bounded_int(20, lambda: 100000, "fewer runs give no median worth reading"),
                   help="--model: timed inferences per engine (at least 20)")
    p.add_argument("--input-shape", action="append", metavar="[NAME=]1,3,224,224",
                   help="--model: input shape where the model leaves it open")
    p.add_argument("--sequence", type=bounded_int(1, lambda: 1 << 20, "a sequence length"), default=128,
                   help="--model: a transformer's sequence length (its int64 token inputs, batch 1; "
                        "ids made up in [0, 100), mask all ones)")
    p.add_argument("--plot", default=None, metavar="FILE", help="--model: bar chart of the per-node profile")
    p.add_argument("--top", type=bounded_int(1, lambda: 100000, "a count of nodes"), default=None,
                   help="--model: show the N slowest nodes of the profile")
    p.add_argument("--no-peers", action="store_true", help="--model: time ours only")
    p.add_argument("--layouts", choices=["auto", "nchw", "blocked"], default="auto",
                   help="--model: activation layouts to plan (see plan-model --layouts)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("import-onnx", help="import, plan and write DIR/<name>.acmodel and DIR/<name>.yaml")
    _model_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--name", default=None, help="file name stem (default: the model file's)")
    p.add_argument("--explain", action="store_true", help="also print the plan per node")
    p.add_argument("--sequence-buckets", type=bounded_int(1, lambda: 1 << 20, "a sequence length"), default=None,
                   metavar="MAX", help="a transformer: one DIR/<name>.s<L>.acmodel per sequence-length bucket "
                                       "L = 1, 2, 4, ... up to MAX (C++ engines pad to the bucket, mask 0)")
    p.add_argument("--batch", type=bounded_int(1, lambda: 1 << 20, "a batch size"), default=1,
                   help="with --sequence-buckets: the batch size planned")
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
