"""Cost kernels against hand calculations, plus invariants (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arch.efficiency import efficiency_for
from kernels import layout as L
from kernels.cost import collective_time, op_costs, stage_totals, tile_wave_util
from kernels.pack import pack_design, pack_ops, resolve_precision
from workloads.graph import build_graph
from workloads.ops import OpKind
from workloads.parallel import Parallelism
from workloads.quant import get_quant

IDEAL = {
    "gemm_16bit": 1.0,
    "gemm_8bit": 1.0,
    "attention": 1.0,
    "memory": 1.0,
    "kernel_overhead_s": 0.0,
    "roofline_exponent": 100.0,
    "collective_bus": 1.0,
}


def _tiny_decode(tiny_model):
    return build_graph(
        tiny_model,
        phase="decode",
        batch=1,
        seq_len=1,
        context_len=10,
        parallelism=Parallelism(),
        quant=get_quant("bf16"),
    )


def _ideal_design(tiny_system, **cols):
    d = pack_design(tiny_system, efficiency_for("test-family", overrides=IDEAL))
    for k, v in cols.items():
        d[getattr(L, k)] = v
    return d


def test_tiny_decode_memory_bound_step(tiny_model, tiny_system):
    """Tiny model decode, batch 1, context 10, on the tiny chip (10 GB/s HBM), ideal efficiency,
    activations and vector work made free: the step streams 180,224 B of weights plus 3,072 B of
    KV cache (tests/workloads/test_graph.py) = 183,296 B / 1e10 B/s = 18.3296 us. The matrix work,
    185,856 FLOPs at 1 TFLOP/s = 0.186 us, hides under the memory time (hard roofline)."""
    g = _tiny_decode(tiny_model)
    p = pack_ops(g)
    d = _ideal_design(tiny_system, BW_ACT=1e30, VPEAK=1e30)
    total = stage_totals(*p.args, p.count, p.stage, p.n_stages, d[None, :])[0, 0, L.T_TOTAL]
    assert total == pytest.approx(18.3296e-6, rel=1e-9)


def test_tiny_decode_compute_only(tiny_model, tiny_system):
    """With memory made free the same step is 185,856 FLOPs / 1e12 FLOP/s = 185.856 ns."""
    g = _tiny_decode(tiny_model)
    p = pack_ops(g)
    d = _ideal_design(tiny_system, BW_ACT=1e30, BW_WEIGHTS=1e30, BW_KV=1e30, VPEAK=1e30)
    total = stage_totals(*p.args, p.count, p.stage, p.n_stages, d[None, :])[0, 0, L.T_TOTAL]
    assert total == pytest.approx(185.856e-9, rel=1e-9)


def test_ring_allreduce_hand_calc(tiny_system):
    """Ring, 4 chips, 1 MB, 100 GB/s per direction, 1 us per step, efficiency 1, no direct
    algorithms: 2 (n-1) alpha + 2 (n-1)/n S / B = 6 us + 15 us = 21 us."""
    d = _ideal_design(tiny_system, DIRECT_ALGOS=0.0, UP_LAT=1e-6)
    assert collective_time(OpKind.ALLREDUCE, 1e6, 4, d) == pytest.approx(21e-6)
    d[L.DIRECT_ALGOS] = 1.0  # two-shot: 2 alpha + the same bytes = 17 us
    assert collective_time(OpKind.ALLREDUCE, 1e6, 4, d) == pytest.approx(17e-6)
    assert collective_time(OpKind.ALLREDUCE, 1e6, 1, d) == 0.0


def test_fully_connected_uses_only_group_links(tiny_system):
    """MI300X-style board: 7 links, 448 GB/s aggregate, one link per peer. Two chips share one
    64 GB/s link (more topologies: tests/kernels/test_collectives.py)."""
    d = _ideal_design(tiny_system, UP_TOPO=L.TOPO_FULLY, UP_LINKS=7, UP_BW=448e9, UP_LAT=0.0,
                      UP_LINKS_PER_PEER=1)  # fmt: skip
    t2 = collective_time(OpKind.ALLREDUCE, 64e9, 2, d)  # 2 x 1/2 x 64 GB / 64 GB/s = 1 s
    assert t2 == pytest.approx(1.0)


def test_tile_wave_util():
    """8192^3 on 132 SMs: the best tile of the menu wastes little. M=64 on 128-row tiles picks a
    64-row tile. Weight-stationary 128x128 array with K=N=64 fills a quarter."""
    assert tile_wave_util(8192, 8192, 8192, 1, 132, 128, 256, 0) > 0.95
    assert tile_wave_util(64, 4096, 4096, 1, 132, 128, 256, 0) > 0.9
    assert tile_wave_util(1, 64, 64, 1, 1, 128, 128, 1) == pytest.approx(0.25)
    assert tile_wave_util(10, 10, 10, 1, 1, 1, 1, 0) == 1.0


def test_precision_fallback():
    from arch.presets import load_chip

    assert resolve_precision(load_chip("a100-80gb"), "fp8") == "int8"
    assert resolve_precision(load_chip("h100-sxm"), "fp4") == "fp8"
    assert resolve_precision(load_chip("b200"), "fp4") == "fp4"


def test_stage_totals_equal_sum_of_op_costs(tiny_model, tiny_system):
    g = _tiny_decode(tiny_model)
    p = pack_ops(g)
    d = pack_design(tiny_system, efficiency_for("test-family"))
    per_op = op_costs(*p.args, d)
    totals = stage_totals(*p.args, p.count, p.stage, p.n_stages, np.stack([d, d]))
    assert totals[0, 0, L.T_TOTAL] == pytest.approx((per_op[:, L.T_TOTAL] * p.count).sum())
    assert totals[1, 0, L.T_TOTAL] == totals[0, 0, L.T_TOTAL]


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(1.0, 100.0),
    col=st.sampled_from(["BW_WEIGHTS", "BW_KV", "BW_ACT", "PEAK0", "VPEAK", "UP_BW"]),
)
def test_more_bandwidth_or_flops_never_slower(tiny_model, tiny_system, scale, col):
    g = build_graph(
        tiny_model,
        phase="decode",
        batch=8,
        seq_len=1,
        context_len=100,
        parallelism=Parallelism(tp=2),
        quant=get_quant("bf16"),
    )
    from arch.chip import System

    sys2 = System(chip=tiny_system.chip, count=2)
    p = pack_ops(g)
    base = pack_design(sys2, efficiency_for("test-family"))
    faster = base.copy()
    if col == "PEAK0":
        faster[L.PEAK0 : L.PEAK0 + 9] *= scale
    else:
        faster[getattr(L, col)] *= scale
    out = stage_totals(*p.args, p.count, p.stage, p.n_stages, np.stack([base, faster]))
    assert out[1, 0, L.T_TOTAL] <= out[0, 0, L.T_TOTAL] * (1 + 1e-12)
