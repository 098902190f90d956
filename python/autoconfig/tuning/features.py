"""Feature vectors the predictor ranks configurations by.

One row per (task, config, HostProfile), FEATURES columns, the same for every
op (GEMM columns are 0 for a conv task and the other way round), all finite:

  hw_*     the HostProfile: lanes, vector registers, FMA latency and units,
           clock, peak, L1/L2/L3 size (log2 KiB), ways and line, L1..DRAM
           bandwidths, cores, FMA thread scaling. A predictor trained on one
           register file and vector width can then be asked about another
           (a held-out ISA).
  task_*   the task: op, threads, log2 of the GEMM M, N, K (a conv's: the GEMM
           it lowers to), log2 flops; conv C, H, W, K, R, S, stride, pads,
           groups, output size, depthwise and pointwise flags.
  knob_*   the config: GEMM tile (mr, nr, vectors, accumulators, registers
           left), kc / mc / nc and their log2 ratio to the model's blocking
           for that tile and order (models/gemm.kc_for, mc_for, nc_for), the
           loop order, the thread grid, edge waste of the tile on M and N, k
           and n blocks, whether A is read in place (models/gemm.a_in_place,
           the rule gemm_run follows: no packing, rows a stride apart);
           conv algorithm (one-hot), direct tile, plain input,
           work order, reduction blocks, edge waste on the output columns
           and channel blocks.
  model_*  the analytical model's named terms for this config (models/gemm.py
           estimate() for its tile and loop order; models/conv.py candidates()
           for its algorithm and direct tile): log10 of the predicted seconds,
           its log2 ratio to the best prediction among the task's configs
           and log2(1 + its rank) in the model's order of them (the model's
           own ranking, by margin and by place), the fraction of peak it predicts, and
           each named term as a share of the sum. The trees then learn where
           and by how much the model is wrong (its residual), as Halide's
           autoscheduler learns coefficients of hand-derived terms.

Build-time cost (the predictor configures every spec task with these): the
model's estimates are computed once per (tile, loop order) or candidate, by
the models' own functions, and broadcast over the configs that share them;
the knob columns are numpy arrays over the whole space. space_features()
reads a GEMM space as its blocks (space.gemm_blocks: one per tile and loop
order), so its ~2,000 configs become columns without a Config object each;
feature_matrix() over a list of Configs (training, the dataset) gives the
same matrix (tests/build/test_tuning_predictor.py checks both agree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..models import conv as conv_model
from ..models import gemm as gemm_model
from ..models.machine import Machine
from ..profile import HostProfile
from ..vocabulary import CONV_ALGORITHMS
from .space import BlockConfigs, GemmBlock, conv_candidates, gemm_blocks, space

HW_FEATURES = ("hw_lanes", "hw_vregs", "hw_fma_latency", "hw_fma_units", "hw_freq_ghz", "hw_peak_gflops",
               "hw_l1_log2kib", "hw_l1_ways", "hw_l2_log2kib", "hw_l2_ways", "hw_l3_log2kib", "hw_l3_ways",
               "hw_line_bytes", "hw_bw_l1", "hw_bw_l2", "hw_bw_l3", "hw_bw_dram", "hw_cores",
               "hw_fma_thread_scaling")
TASK_FEATURES = ("task_is_gemm", "task_threads", "task_log2_m", "task_log2_n", "task_log2_k", "task_log2_flops",
                 "task_c", "task_h", "task_w", "task_k", "task_r", "task_s", "task_stride", "task_pads",
                 "task_groups", "task_out_h", "task_out_w", "task_depthwise", "task_pointwise")
GEMM_KNOB_FEATURES = ("knob_gemv", "knob_mr", "knob_nr", "knob_nv", "knob_acc", "knob_regs_left",
                      "knob_log2_kc", "knob_log2_mc", "knob_log2_nc", "knob_kc_vs_model", "knob_mc_vs_model",
                      "knob_nc_vs_model", "knob_a_panel_in_l1", "knob_grid_m", "knob_grid_n",
                      "knob_m_waste", "knob_n_waste", "knob_k_blocks", "knob_n_blocks", "knob_m_blocks",
                      "knob_kc_l1_ways", "knob_mc_l2_share", "knob_nc_l3_share", "knob_a_in_place")
GEMM_KNOB_ORDER = ("grid", "kc", "loop_order", "mc", "mr", "nc", "nr")     # space.GEMM_KNOBS, sorted
CONV_KNOB_FEATURES = tuple(f"knob_alg_{a.replace('-', '_')}" for a in CONV_ALGORITHMS) + (
    "knob_tile_n", "knob_tile_kb", "knob_plain_input", "knob_groups_inner", "knob_log2_c_blocks",
    "knob_col_waste", "knob_kblock_waste", "knob_log2_channels_per_block", "knob_cblocks_vs_model",
    "knob_traffic_vs_model", "knob_traffic_vs_time", "knob_partial_sums_share")
# The analytical models' term names (models/gemm.py estimate, models/conv.py
# estimate_*); any other name is counted in model_term_other.
TERM_NAMES = ("compute", "calls", "a_stream", "b_stream", "pack_a", "pack_b", "c_io", "sync", "stall",
              "to_blocked", "from_blocked", "gemm", "input_transform", "output_transform", "gather", "scatter",
              "im2col")
MODEL_FEATURES = ("model_log10_s", "model_vs_best", "model_rank", "model_peak_fraction", "model_tile_eff") + tuple(
    f"model_term_{t}" for t in TERM_NAMES) + ("model_term_other",)
FEATURES: Tuple[str, ...] = HW_FEATURES + TASK_FEATURES + GEMM_KNOB_FEATURES + CONV_KNOB_FEATURES + MODEL_FEATURES
COLUMN = {name: i for i, name in enumerate(FEATURES)}


def _log2(v: float) -> float:
    return math.log2(max(v, 1e-30))


def hw_row(profile: HostProfile) -> List[float]:
    m = Machine(profile)
    c1, c2, c3 = m.cache(1), m.cache(2), m.cache(3)
    return [m.lanes, m.vregs, m.fma_latency, m.fma_units, profile.freq_ghz, profile.peak_gflops_per_core,
            _log2(c1.size_bytes / 1024), c1.ways, _log2(c2.size_bytes / 1024), c2.ways,
            _log2(c3.size_bytes / 1024), c3.ways, c1.line_bytes,
            m.bandwidth("L1") / 1e9, m.bandwidth("L2") / 1e9, m.bandwidth("L3") / 1e9, m.bandwidth("DRAM") / 1e9,
            profile.cores, profile.fma_thread_scaling]


def task_row(task) -> List[float]:
    s = task.shape
    if task.op == "gemm":
        M, N, K = s.M, s.N, s.K
        return [1.0, task.threads, _log2(M), _log2(N), _log2(K), _log2(2.0 * M * N * K)] + [0.0] * 13
    g = s.gemm_shape()
    depthwise = s.groups > 1 and s.groups == s.C
    return [0.0, task.threads, _log2(g.M), _log2(g.N), _log2(g.K), _log2(s.flops),
            s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.pad_top + s.pad_left + s.pad_bottom + s.pad_right,
            s.groups, s.out_h, s.out_w, float(depthwise), float(s.pointwise)]


def _term_columns(terms: Dict[str, float]) -> List[float]:
    total = sum(abs(v) for v in terms.values()) or 1.0
    known = [abs(terms.get(t, 0.0)) / total for t in TERM_NAMES]
    other = sum(abs(v) for k, v in terms.items() if k not in TERM_NAMES) / total
    return known + [other]


def _gemm_columns(task, configs: Sequence, profile: HostProfile, out: np.ndarray) -> np.ndarray:
    """Fills the GEMM knob and model columns of `configs`; returns each config's predicted seconds."""
    m = Machine(profile)
    M, N, K = task.shape.M, task.shape.N, task.shape.K
    first = COLUMN["model_peak_fraction"]
    if configs[0].get("path") == "gemv":           # M == 1: one config, gemm_run's row-streaming path
        e = gemm_model.estimate_gemv(m, N, K, task.threads)
        out[:, COLUMN["knob_gemv"]] = 1.0
        out[:, first:first + 2 + len(TERM_NAMES) + 1] = (
            [2.0 * M * N * K / (e.seconds * m.peak_flops * max(1, e.threads)), 1.0] + _term_columns(e.terms))
        return np.full(len(configs), e.seconds)
    # the knob values in one pass: Config keeps its knobs sorted by name
    # space() builds every GEMM config with the same knobs; the first one's names and every length are checked
    names = tuple(n for n, _ in configs[0].knobs)
    if names != GEMM_KNOB_ORDER or any(len(c.knobs) != len(GEMM_KNOB_ORDER) for c in configs):
        raise ValueError(f"GEMM configs: expected the knobs {GEMM_KNOB_ORDER}, got {names}")
    grid_s, kc_l, order_l, mc_l, mr_l, nc_l, nr_l = zip(*[[v for _, v in c.knobs] for c in configs])
    keys = list(zip(mr_l, nr_l, order_l))
    distinct = sorted(set(keys))
    index = {key: j for j, key in enumerate(distinct)}
    grids = {g: [int(v) for v in str(g).split("x")] for g in set(grid_s)}
    knobs = _GemmKnobs(np.array([index[key] for key in keys]), *(np.array(v, dtype=np.float64)
                                                                  for v in (kc_l, mc_l, nc_l)),
                       np.array([grids[g] for g in grid_s], dtype=np.float64))
    return _gemm_fill(task, m, distinct, knobs, out)


def _gemm_block_columns(task, blocks: Sequence[GemmBlock], profile: HostProfile, out: np.ndarray) -> np.ndarray:
    """_gemm_columns for the configs of `blocks` (space.gemm_blocks) in their
    order: row r of block b is its config r - start(b), whose kc / mc / nc /
    grid indices are the digits of that number in the block's radices (the
    nesting GemmBlock.config() undoes), read from per-block value tables."""
    sizes = np.array([(len(b.kcs), len(b.mcs), len(b.ncs), len(b.grids)) for b in blocks])
    counts = sizes.prod(axis=1)
    which = np.repeat(np.arange(len(blocks)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    n_kc, n_mc, n_nc, n_grid = (sizes[which, i] for i in range(4))
    g, rest = local % n_grid, local // n_grid
    n, rest = rest % n_nc, rest // n_nc
    mi, k = rest % n_mc, rest // n_mc

    def table(lists) -> np.ndarray:
        t = np.zeros((len(lists), max(len(v) for v in lists)))
        for i, v in enumerate(lists):
            t[i, :len(v)] = v
        return t
    parsed = {text: [int(v) for v in text.split("x")] for b in blocks for text in b.grids}
    grid = np.stack([table([[parsed[text][axis] for text in b.grids] for b in blocks])[which, g]
                     for axis in (0, 1)], axis=1)
    knobs = _GemmKnobs(which, table([b.kcs for b in blocks])[which, k], table([b.mcs for b in blocks])[which, mi],
                       table([b.ncs for b in blocks])[which, n], grid)
    return _gemm_fill(task, Machine(profile), [(b.tile.mr, b.tile.nr, b.order) for b in blocks], knobs, out)


def _lines_per_l1_set(m: Machine, lda: int, kc: int, rows: int) -> int:
    """models/gemm.lines_per_l1_set in numpy (the same count, ~50x faster on deep kc)."""
    line = m.cache(1).line_bytes
    sets = max(1, m.l1_way_bytes() // line)
    r = np.arange(rows)
    first, last = r * lda * 4 // line, ((r * lda + kc) * 4 - 1) // line
    lines = np.concatenate([np.arange(f, e + 1) for f, e in zip(first, last)])
    return int(np.bincount(lines % sets).max())


def _a_in_place(m: Machine, distinct: Sequence[Tuple[int, int, str]], which: np.ndarray, kc: np.ndarray,
                M: int, K: int) -> np.ndarray:
    """models/gemm.a_in_place of each row (its tile and order: distinct[which], its kc), as 0/1."""
    a_bytes = M * K * 4
    if a_bytes <= gemm_model.direct_a_bytes(m):
        return np.ones(len(which))
    out = np.zeros(len(which))
    if a_bytes > gemm_model.direct_a_panel_bytes(m):
        return out
    limit = gemm_model.direct_a_lines_per_set(m)
    a_panel = np.array([d[2] == gemm_model.A_PANEL_IN_L1 for d in distinct])[which]
    rows = np.nonzero(a_panel)[0]
    pairs, inverse = np.unique(np.stack([which[rows], kc[rows]]), axis=1, return_inverse=True)
    fits = np.array([_lines_per_l1_set(m, K, int(c), distinct[int(w)][0]) <= limit for w, c in pairs.T])
    out[rows] = fits[inverse.ravel()]
    return out


@dataclass
class _GemmKnobs:
    """The knob columns of a set of GEMM configs: `which` indexes the
    distinct (mr, nr, loop order) of each row; the rest are the row's knobs."""
    which: np.ndarray
    kc: np.ndarray
    mc: np.ndarray
    nc: np.ndarray
    grid: np.ndarray          # (rows, 2): threads along M, along N


def _gemm_fill(task, m: Machine, distinct: Sequence[Tuple[int, int, str]], k: _GemmKnobs,
               out: np.ndarray) -> np.ndarray:
    """Fills the knob and model columns; one model estimate per distinct (tile,
    loop order), shared by its kc / mc / nc / grid variants. Returns seconds."""
    M, N, K = task.shape.M, task.shape.N, task.shape.K
    flops = 2.0 * M * N * K
    first = COLUMN["model_peak_fraction"]
    model_rows, seconds, blocking = [], [], []
    for mr, nr, order in distinct:
        t = gemm_model.Tile(mr, nr, nr // m.lanes)
        e = gemm_model.estimate(m, t, M, N, K, task.threads, order)
        eff, _ = gemm_model.tile_efficiency(m, t, e.kc, ldc=N)
        kc0 = gemm_model.kc_for(m, t, order)
        blocking.append((kc0, gemm_model.mc_for(m, t, kc0, order), gemm_model.nc_for(m, t, kc0, order)))
        model_rows.append([flops / (e.seconds * m.peak_flops * max(1, e.threads)), eff] + _term_columns(e.terms))
        seconds.append(e.seconds)
    j = k.which
    out[:, first:first + len(model_rows[0])] = np.asarray(model_rows)[j]
    kc0, mc0, nc0 = (np.asarray(blocking, dtype=np.float64)[j, i] for i in range(3))
    mr = np.array([d[0] for d in distinct], dtype=np.float64)[j]
    nr = np.array([d[1] for d in distinct], dtype=np.float64)[j]
    a_panel = np.array([d[2] == gemm_model.A_PANEL_IN_L1 for d in distinct], dtype=np.float64)[j]
    kc, mc, nc, grid = k.kc, k.mc, k.nc, k.grid
    nv = nr / m.lanes
    in_place = _a_in_place(m, distinct, j, kc, M, K)
    l2, l3 = m.cache(2).size_bytes, m.cache(3).size_bytes
    for name, v in (("knob_mr", mr), ("knob_nr", nr), ("knob_nv", nv), ("knob_acc", mr * nv),
                    ("knob_regs_left", m.vregs - mr * nv - nv - 1
                     - np.where(nv > 1, m.product_registers(2), 0)), ("knob_log2_kc", np.log2(kc)),
                    ("knob_log2_mc", np.log2(mc)), ("knob_log2_nc", np.log2(nc)),
                    ("knob_kc_vs_model", np.log2(kc / kc0)), ("knob_mc_vs_model", np.log2(mc / mc0)),
                    ("knob_nc_vs_model", np.log2(nc / nc0)), ("knob_a_panel_in_l1", a_panel),
                    ("knob_grid_m", grid[:, 0]), ("knob_grid_n", grid[:, 1]),
                    ("knob_m_waste", (np.ceil(M / mr) * mr - M) / M),
                    ("knob_n_waste", (np.ceil(N / nr) * nr - N) / N),
                    ("knob_k_blocks", np.ceil(K / kc)), ("knob_n_blocks", np.ceil(N / nc)),
                    ("knob_m_blocks", np.ceil(M / mc)),
                    ("knob_kc_l1_ways", kc * (mr + nr) * 4 / m.l1_way_bytes()), ("knob_a_in_place", in_place),
                    ("knob_mc_l2_share", mc * kc * 4 / l2), ("knob_nc_l3_share", nc * kc * 4 / l3)):
        out[:, COLUMN[name]] = v
    return np.asarray(seconds)[j]


def direct_traffic(m: Machine, L, tile: Tuple[int, int], plain: bool, inner: bool, nb: int,
                   g=None) -> Tuple[float, float]:
    """(bytes from beyond L2, of which partial sums) of the direct kernel with
    a forced work order and reduction block count: the terms
    models/conv.direct_schedule() minimises over, for one schedule.
    g: models/conv.direct_geometry(m, L, tile, plain) when the caller has it."""
    n, kb = tile
    if g is None:
        g = conv_model.direct_geometry(m, L, tile, plain)
    half_l2 = m.cache(2).size_bytes / 2
    cpad = g.taps // (L.R * L.S) * g.cb
    rows_in = (L.R - 1) * L.dilation_h + 1
    rows_read = g.in_h if L.pointwise else min(g.in_h, g.rows * rows_in)
    x_bytes = cpad * rows_read * g.in_w * 4
    w_all = g.kblocks * m.lanes * cpad * L.R * L.S * 4
    if inner:
        per_col = cpad * rows_in * L.stride_w * 4
        chunk = int(max(1, min(g.cols, (half_l2 // per_col) // n * n)))
        return x_bytes + (w_all * g.rows * math.ceil(g.cols / chunk) if w_all > half_l2 else w_all), 0.0
    w_group = kb * m.lanes * cpad * L.R * L.S * 4
    y_bytes = g.kblocks * m.lanes * g.rows * g.cols * 4
    w = w_all if w_group / nb <= half_l2 else w_all * g.rows
    x = x_bytes if x_bytes / nb <= half_l2 else x_bytes * g.groups
    y = (nb - 1) * 2 * y_bytes if y_bytes > half_l2 else 0.0
    return w + x + y, y


def _conv_columns(task, configs: Sequence, profile: HostProfile, out: np.ndarray) -> np.ndarray:
    L = task.shape
    m = conv_model.kernel_machine(profile)
    cands = {c.name: c for c in conv_candidates(task, profile)}
    n = len(configs)
    pred = np.empty(n)
    first = COLUMN["model_peak_fraction"]
    per_tile: Dict[Tuple[int, int, bool], tuple] = {}       # the direct tile's geometry and model schedule
    kblocks = math.ceil(L.K / m.lanes)
    for i, c in enumerate(configs):
        k = c.as_dict()
        alg = k["algorithm"]
        out[i, COLUMN[f"knob_alg_{alg.replace('-', '_')}"]] = 1.0
        if alg == "direct":
            tn, kb = (int(v) for v in str(k["tile"]).split("x"))
            plain = k["input"] == "nchw"
            if (tn, kb, plain) not in per_tile:
                g = conv_model.direct_geometry(m, L, (tn, kb), plain)
                per_tile[tn, kb, plain] = (g, conv_model.direct_schedule(m, L, (tn, kb), plain, task.threads),
                                           conv_model.direct_candidate_name((tn, kb), plain))
            g, model, name = per_tile[tn, kb, plain]
            out[i, COLUMN["knob_tile_n"]] = tn
            out[i, COLUMN["knob_tile_kb"]] = kb
            out[i, COLUMN["knob_plain_input"]] = float(plain)
            out[i, COLUMN["knob_groups_inner"]] = float(k["order"] == "groups-inner")
            out[i, COLUMN["knob_log2_c_blocks"]] = _log2(k["c_blocks"])
            out[i, COLUMN["knob_col_waste"]] = (math.ceil(L.out_w / tn) * tn - L.out_w) / L.out_w
            out[i, COLUMN["knob_kblock_waste"]] = (math.ceil(kblocks / kb) * kb - kblocks) / kblocks
            inner, nb = k["order"] == "groups-inner", k["c_blocks"]
            cpad = g.taps // (L.R * L.S) * g.cb
            out[i, COLUMN["knob_log2_channels_per_block"]] = _log2(cpad / nb)
            out[i, COLUMN["knob_cblocks_vs_model"]] = _log2(nb / model.cblocks)
            traffic, partial = direct_traffic(m, L, (tn, kb), plain, inner, nb, g)
            out[i, COLUMN["knob_traffic_vs_model"]] = _log2(max(traffic, 1.0) / max(model.l3_bytes, 1.0))
            out[i, COLUMN["knob_partial_sums_share"]] = partial / max(traffic, 1.0)
            cand = cands.get(name)
            if cand is not None and cand.rejected is None:
                seconds = traffic / conv_model._beyond_l2_bandwidth(m, model.footprint)
                out[i, COLUMN["knob_traffic_vs_time"]] = math.log2(1.0 + seconds / cand.predicted_s)
        else:
            name = alg
        cand = cands.get(name)
        if cand is None or cand.rejected is not None or not math.isfinite(cand.predicted_s):
            # the model has no estimate (a config outside its candidates): the worst one, no terms
            pred[i] = float("nan")
            continue
        pred[i] = cand.predicted_s
        eff = 0.0
        out[i, first:first + 2 + len(TERM_NAMES) + 1] = (
            [L.flops / (cand.predicted_s * m.peak_flops * task.threads), eff] + _term_columns(cand.terms))
    if np.isnan(pred).any():
        worst = np.nanmax(pred) if np.isfinite(pred).any() else 1.0
        pred = np.where(np.isnan(pred), worst * 2, pred)
    return pred


def _matrix(task, n: int, profile: HostProfile, fill) -> np.ndarray:
    """The (n, len(FEATURES)) matrix: hardware and task columns, then
    fill(out) -> predicted seconds for the knob and model columns."""
    x = np.zeros((n, len(FEATURES)))
    x[:, :len(HW_FEATURES)] = hw_row(profile)
    x[:, len(HW_FEATURES):len(HW_FEATURES) + len(TASK_FEATURES)] = task_row(task)
    if n == 0:
        return x
    pred = np.maximum(fill(x), 1e-12)
    x[:, COLUMN["model_log10_s"]] = np.log10(pred)
    x[:, COLUMN["model_vs_best"]] = np.log2(pred / pred.min())
    rank = np.empty(n)
    rank[np.argsort(pred, kind="stable")] = np.arange(n)
    x[:, COLUMN["model_rank"]] = np.log2(1.0 + rank)
    return x


def feature_matrix(task, configs: Sequence, profile: HostProfile) -> np.ndarray:
    """(len(configs), len(FEATURES)) float64, finite."""
    columns = _gemm_columns if task.op == "gemm" else _conv_columns
    return _matrix(task, len(configs), profile, lambda out: columns(task, configs, profile, out))


def space_features(task, profile: HostProfile) -> Tuple[np.ndarray, Sequence]:
    """(feature_matrix(task, space(task, profile), profile), the space as a
    sequence), a GEMM space built as arrays from its blocks, whose Configs
    are made only when indexed."""
    if task.op == "gemm" and task.shape.M > 1:
        blocks = gemm_blocks(task, profile)
        configs = BlockConfigs(blocks)
        return _matrix(task, len(configs), profile,
                       lambda out: _gemm_block_columns(task, blocks, profile, out)), configs
    configs = space(task, profile)
    return feature_matrix(task, configs, profile), configs


def model_predictions(task, configs: Sequence, profile: HostProfile) -> np.ndarray:
    """The analytical model's predicted seconds of each config (the estimate
    its model_* columns describe)."""
    return 10.0 ** feature_matrix(task, configs, profile)[:, COLUMN["model_log10_s"]]
