"""The generic GEMM plan of several profiles side by side (`autoconfig plan
--explain --compare`): the profile fields the models read, the register tile
and blocking each profile gets, and for every parameter that differs, the
reason each plan records, which names the profile field it came from."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from .models import conv as conv_model
from .models import gemm as gemm_model
from .plan import Plan
from .profile import HostProfile, fixed_lanes_profile

# Plan parameters shown, in the order the model derives them.
BLOCKING_PARAMS = ("mr", "nr", "loop_order", "kc", "mc", "nc")
# Compared with when a non-x86 (Arm, RISC-V) profile is explained: what does
# the model do differently there than on x86?
DEFAULT_X86_REFERENCES = ("x86-64-v4", "x86-64-v3")


def default_references(profile: HostProfile) -> List[str]:
    return list(DEFAULT_X86_REFERENCES) if profile.arch != "x86_64" else []


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def _cache(p: HostProfile, level: int) -> str:
    c = p.cache(level)
    return "-" if c is None else f"{_size(c.size_bytes)} {c.ways}-way"


def _tile_vectors(p: HostProfile, plan: Plan) -> str:
    """The register tile as the register file holds it: rows x vectors per row."""
    return f"{plan.value('mr')} x {plan.value('nr') // p.lanes_f32} vectors"


def _rows(p: HostProfile, plan: Plan) -> List[Tuple[str, str]]:
    """(row label, this profile's value) in table order."""
    tiles = conv_model.direct_tiles(p)
    return [
        ("isa", p.isa),
        ("vector_bits x registers", f"{p.vector_bits} x {p.vector_registers}"),
        ("FMA latency x units", f"{p.fma_latency_cycles:g} x {p.fma_per_cycle:g}"),
        ("L1", _cache(p, 1)),
        ("L2", _cache(p, 2)),
        ("L3 per core", _cache(p, 3)),
        ("GEMM tile mr x nr", f"{plan.value('mr')}x{plan.value('nr')} ({_tile_vectors(p, plan)})"),
        ("loop order", plan.value("loop_order")),
        ("kc", str(plan.value("kc"))),
        ("mc", str(plan.value("mc"))),
        ("nc", str(plan.value("nc"))),
        # columns x channel blocks of the conv kernels' lanes (a scalable profile's fixed-lanes view)
        ("conv direct tiles", " ".join(f"{n}x{kb}" for n, kb in tiles) + f" ({fixed_lanes_profile(p).lanes_f32} lanes)"),
    ]


def compare(profiles: Sequence[HostProfile], isa_suffixes: Sequence[str]) -> str:
    """Text of the comparison; profiles[0] is the one being explained."""
    plans = [gemm_model.plan_generic(p, isa_suffix=s) for p, s in zip(profiles, isa_suffixes)]
    table = [_rows(p, plan) for p, plan in zip(profiles, plans)]
    labels = [label for label, _ in table[0]]
    names = [p.name for p in profiles]
    w0 = max(len(s) for s in labels) + 2
    widths = [max(len(n), *(len(v) for _, v in col)) + 2 for n, col in zip(names, table)]
    out = [f"generic GEMM plan of {names[0]} next to " + ", ".join(names[1:]) + ":",
           ("  " + " " * w0 + "".join(n.ljust(w) for n, w in zip(names, widths))).rstrip()]
    for i, label in enumerate(labels):
        out.append(("  " + label.ljust(w0) + "".join(col[i][1].ljust(w) for col, w in zip(table, widths))).rstrip())
    # The tile differs when its register layout does (16 columns are 4 NEON
    # vectors but 2 AVX2 ones): then both mr's and nr's reasons are shown.
    tile_differs = len({_tile_vectors(p, plan) for p, plan in zip(profiles, plans)}) > 1
    differing = [k for k in BLOCKING_PARAMS
                 if len({plan.value(k) for plan in plans}) > 1 or (tile_differs and k in ("mr", "nr"))]
    if differing:
        out.append("why they differ (each plan's reason, naming the profile field it read):")
    for k in differing:
        out.append(f"  {k}:")
        for name, plan in zip(names, plans):
            out.append(f"    {name:<{max(map(len, names))}}  {plan.value(k)!s:>5} <- {plan.params[k].why}")
    return "\n".join(out)
