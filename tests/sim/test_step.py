import numpy as np
import pytest

from arch.efficiency import efficiency_for
from kernels import layout as L
from sim.step import analytic_step
from workloads.graph import build_graph
from workloads.parallel import Parallelism
from workloads.quant import get_quant


def test_step_is_sum_of_ops(tiny_model, tiny_system):
    g = build_graph(
        tiny_model,
        phase="decode",
        batch=2,
        seq_len=1,
        context_len=20,
        parallelism=Parallelism(),
        quant=get_quant("bf16"),
    )
    st = analytic_step(g, tiny_system, efficiency_for("test-family"))
    assert st.total_s == pytest.approx(float((st.per_op[:, L.T_TOTAL] * g.count).sum()))
    assert sum(st.shares.values()) == pytest.approx(1.0)
    assert st.bound in ("compute", "memory", "interconnect", "overhead")


def test_pipeline_bound_by_slowest_stage_times_microbatches(tiny_model, tiny_chip):
    """Two stages, two micro-batches: max(sum of stages, 2 x slowest)."""
    from arch.chip import System

    sys2 = System(chip=tiny_chip, count=2)
    g = build_graph(
        tiny_model,
        phase="decode",
        batch=2,
        seq_len=1,
        context_len=20,
        parallelism=Parallelism(pp=2),
        quant=get_quant("bf16"),
    )
    one = analytic_step(g, sys2, efficiency_for("test-family"), microbatches=1)
    two = analytic_step(g, sys2, efficiency_for("test-family"), microbatches=2)
    assert one.total_s == pytest.approx(one.stage_s.sum())
    assert two.total_s == pytest.approx(max(two.stage_s.sum(), 2 * np.max(two.stage_s)))
