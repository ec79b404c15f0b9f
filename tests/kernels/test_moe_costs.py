"""MoE costs in the kernels: dispatch fan-out, node-limited all-to-all, two-batch overlap, and a
small MoE layer costed by hand (grouped GEMM with per-expert tile padding)."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arch.chip import System
from arch.efficiency import efficiency_for
from arch.presets import load_chip
from kernels import layout as L
from kernels.cost import (
    collective_time,
    dispatch_fanout,
    hide_overlapped_comm,
    moe_alltoall_time,
    op_costs,
)
from kernels.pack import pack_design, pack_ops
from workloads.graph import build_graph
from workloads.model import MoESpec
from workloads.ops import OpKind
from workloads.parallel import Parallelism
from workloads.presets import load_model
from workloads.quant import get_quant

ALLTOALL = int(OpKind.ALLTOALL)


def _design(chip: str, n: int) -> np.ndarray:
    c = load_chip(chip)
    return pack_design(System(chip=c, count=n), efficiency_for(c.family))


def test_fanout_hand_values():
    """Top-2 of 8 experts, one per chip, 8 chips in one node: 8 (1 - C(7,2)/C(8,2)) = 8 (1 -
    21/28) = 2 chips. 16 experts on 16 chips in 2 nodes: chips 16 (1 - C(15,2)/C(16,2)) = 2,
    nodes 2 (1 - C(8,2)/C(16,2)) = 2 (1 - 28/120) = 1.5333. Limited to 1 node: 1 node, and
    8 (1 - C(7,2)/C(8,2)) = 2 chips of it."""
    assert dispatch_fanout(8.0, 2.0, 8.0, 8.0, 0.0) == pytest.approx((2.0, 1.0))
    assert dispatch_fanout(16.0, 2.0, 16.0, 8.0, 0.0) == pytest.approx((2.0, 1.5333333))
    assert dispatch_fanout(16.0, 2.0, 16.0, 8.0, 1.0) == pytest.approx((2.0, 1.0))


def test_in_node_dispatch_is_the_deduplicated_alltoall():
    """Inside a node, 8 experts per chip on 8 chips: a token reaches 8 (1 - C(56,8)/C(64,8))
    chips, and the all-to-all carries that many copies instead of top-k = 8."""
    d = _design("h100-sxm", 8)
    size = 4096 * 8 * 7168.0
    chips = 8 * (1 - math.comb(56, 8) / math.comb(64, 8))
    t, moved = moe_alltoall_time(size, 8, 8.0, 64.0, 0.0, d)
    assert t == pytest.approx(collective_time(ALLTOALL, size / 8 * chips, 8, d))
    assert moved == pytest.approx(size / 8 * chips * 7 / 8)


@pytest.mark.parametrize("group", [16, 32, 64, 128, 256])
def test_node_limited_dispatch_never_moves_more(group):
    """DeepSeek-V3 on H800 nodes of 8: at most 4 nodes per token moves no more bytes (and takes
    no longer) than unlimited routing, and fewer once the group spans more than 4 nodes."""
    d = _design("h800", group)
    size = 512 * 8 * 7168.0
    t_free, b_free = moe_alltoall_time(size, group, 8.0, 256.0, 0.0, d)
    t_lim, b_lim = moe_alltoall_time(size, group, 8.0, 256.0, 4.0, d)
    assert b_lim <= b_free + 1e-6 and t_lim <= t_free + 1e-15
    if group > 32:
        assert b_lim < b_free


def test_cross_node_dispatch_bounded_by_scale_out():
    """16 H800 in two nodes, 256 experts, top-8: a token reaches 2 (1 - C(128,8)/C(256,8))
    nodes, so the scale-out carries size/8 x that x 1/2 bytes per chip at 50 GB/s, far less
    than the whole payload (the old all-over-IB cost); the time is at least that transfer."""
    d = _design("h800", 16)
    size = 1024 * 8 * 7168.0
    nodes = 2 * (1 - math.comb(128, 8) / math.comb(256, 8))
    t, _ = moe_alltoall_time(size, 16, 8.0, 256.0, 0.0, d)
    ib = size / 8 * nodes / 2 / (d[L.OUT_BW] * d[L.EFF_BUS])
    assert t >= ib
    assert t < collective_time(ALLTOALL, size, 16, d)


def _window(busy, comm, other):
    """Ops of one overlapped layer: compute rows, all-to-alls, one TP all-reduce; the last
    all-to-all closes the window over every row before it."""
    order = np.array([int(OpKind.GEMM)] * len(busy) + [int(OpKind.ALLREDUCE)]
                     + [ALLTOALL] * len(comm))  # fmt: skip
    per = np.zeros((len(order), L.N_OUT))
    per[: len(busy), L.T_TOTAL] = busy
    per[len(busy), L.T_TOTAL] = per[len(busy), L.T_COMM] = other
    per[len(busy) + 1 :, L.T_COMM] = comm
    per[len(busy) + 1 :, L.T_TOTAL] = np.asarray(comm) + 1e-6  # launch overhead
    groups = np.zeros(len(order))
    groups[-1] = len(order) - 1
    return order, groups, per


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e-2), min_size=1, max_size=6),
    st.lists(st.floats(0.0, 1e-2), min_size=1, max_size=4),
    st.floats(0.0, 1e-3),
)
def test_overlap_between_max_and_serial(busy, comm, other):
    """Overlapped layer time is never above the serial sum and never below max(compute, comm)
    plus what cannot overlap (the all-reduce, launch overheads): exactly that max."""
    kind, groups, per = _window(busy, comm, other)
    serial = per[:, L.T_TOTAL].sum()
    hide_overlapped_comm(kind, groups, per)
    total = per[:, L.T_TOTAL].sum()
    fixed = other + 1e-6 * len(comm)
    assert total <= serial + 1e-12
    assert total >= max(sum(busy), sum(comm)) + fixed - 1e-12
    assert total == pytest.approx(max(sum(busy), sum(comm)) + fixed, rel=1e-9, abs=1e-15)


def test_two_batch_overlap_on_deepseek_prefill():
    """DeepSeek-V3 on 16 H800 (EP16 over two nodes), a prefill of 8 x 512: the overlapped
    graph does the same mean work as the plain one (a little more on the busiest rank: half the
    tokens sample a larger max/mean); costed, its all-to-alls shrink, never below zero, and the
    step is no slower than the same two micro-batches run serially."""
    m, q = load_model("deepseek-v3"), get_quant("fp8")
    par = Parallelism(tp=1, dp=16, ep=16)
    kw = {"phase": "prefill", "batch": 8, "seq_len": 512, "context_len": 0, "parallelism": par,
          "quant": q}  # fmt: skip
    plain, tbo = build_graph(m, **kw), build_graph(m, moe_overlap=True, **kw)
    assert plain.total("flops") <= tbo.total("flops") <= 1.01 * plain.total("flops")
    assert (tbo.groups[tbo.kind == ALLTOALL] > 0).sum() == 1  # one window (MoE layers folded)
    d = _design("h800", 16)
    over = op_costs(*pack_ops(tbo).args, d)
    serial = op_costs(*pack_ops(replace(tbo, groups=np.where(tbo.kind == ALLTOALL, 0.0,
                                                             tbo.groups))).args, d)  # fmt: skip
    a2a = tbo.kind == ALLTOALL
    assert np.all(over[a2a, L.T_COMM] <= serial[a2a, L.T_COMM] + 1e-15)
    assert np.all(over[a2a, L.T_COMM] >= 0.0)
    assert (over[:, L.T_TOTAL] * tbo.count).sum() <= (serial[:, L.T_TOTAL] * tbo.count).sum()


TINY_MOE = MoESpec(num_experts=4, top_k=2, expert_ffn_size=32)


def test_small_moe_layer_by_hand(tiny_model, tiny_system):
    """The tiny model (hidden 64) with 4 experts, top-2, expert FFN 32 (gated: up width 64),
    one chip, a decode step of 12 sequences, on a design with one unit and 16 x 16 tiles (menu
    down to 4 x 4):

    * pairs = 12 x 2 = 24; one rank, so no imbalance; touched experts = 4 (1 - (1/2)^12) =
      3.99902; M per expert = 24 / 3.99902 = 6.0015;
    * each expert's M pads to whole tile rows: 8 rows with 8- or 4-row tiles (16-row tiles
      pad to 16), N = 64 fills 16-wide tiles, so padding keeps 6.0015 / 8 = 0.7502; with 8-row
      tiles, 1 x 4 tiles per expert x 3.99902 experts = 15.996 tiles in 16 waves of the one
      unit: utilization 0.7502 x 15.996 / 16 = 0.7500;
    * experts.up FLOPs 2 x 24 x 64 x 64 = 196,608 at peak x eff x 0.7502: t = 196,608 /
      (peak eff 0.7502); weights 3.99902 x 64 x 64 x 2 B = 32,760 B.
    """
    model = tiny_model.model_copy(update={"moe": TINY_MOE})
    g = build_graph(model, phase="decode", batch=12, seq_len=1, context_len=10,
                    parallelism=Parallelism(), quant=get_quant("bf16"))  # fmt: skip
    up = g.names.index("experts.up")
    touched = 4 * (1 - 0.5**12)
    assert g.groups[up] == pytest.approx(touched)
    assert g.m[up] == pytest.approx(24 / touched)
    assert g.flops[up] == pytest.approx(196_608)
    assert g.weight_bytes[up] == pytest.approx(touched * 64 * 64 * 2)
    d = pack_design(tiny_system, efficiency_for(tiny_system.chip.family))
    d[L.UNITS], d[L.TILE_R], d[L.TILE_C], d[L.WEIGHT_STATIONARY] = 1.0, 16.0, 16.0, 0.0
    per = op_costs(*pack_ops(g).args, d)
    cls = d[L.LOW0 + g.precision[up]]
    eff = d[L.EFF_GEMM16] if cls < 0.5 else d[L.EFF_GEMM8]
    util = (24 / touched) / 8 * (4 * touched) / 16
    want = 196_608 / (d[L.PEAK0 + g.precision[up]] * eff * util) + g.vflops[up] / d[L.VPEAK]
    assert per[up, L.T_COMPUTE] == pytest.approx(want)
