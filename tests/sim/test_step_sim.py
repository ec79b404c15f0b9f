"""The SimPy step simulation against the analytic sum and its own invariants."""

import json

import pytest

from sim.evaluate import resolve_workload
from sim.step import analytic_step
from sim.step_sim import exposed_times, time_step, to_chrome_trace

CONFIGS = [  # system, model, quant, tp, pp, batch per micro-batch, phase
    ("h100-sxm:8", "llama-3.1-70b", "fp8", 8, 1, 16, "decode"),
    ("h100-sxm:8", "llama-3.1-70b", "fp8", 2, 4, 4, "decode"),
    ("h100-sxm:8", "mixtral-8x7b", "bf16", 8, 1, 8, "prefill"),
    ("cerebras-wse3:1", "llama-3.1-70b", "bf16", 1, 1, 4, "decode"),  # weights streamed
    ("groq-lpu:64", "llama-3.1-8b", "fp8", 8, 8, 1, "decode"),  # SRAM pipeline
]


def _setup(system, model, quant, tp, pp, batch, phase):
    w = resolve_workload(
        system=system, model=model, quant=quant, tp=tp, pp=pp, input_len=512, output_len=64
    )
    plan = w.plan(batch * pp)  # a step of pp micro-batches of `batch` sequences
    seq, ctx = (1, 512) if phase == "decode" else (512, 0)
    g = w.graph(phase, batch, seq, ctx)  # one micro-batch of `batch` sequences
    return w, plan, g


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"{c[0]}-{c[1]}-pp{c[4]}" for c in CONFIGS])
def test_without_overlap_equals_the_analytic_sum(cfg):
    w, plan, g = _setup(*cfg)
    a = analytic_step(g, w.system, w.eff, plan)
    s = time_step(g, w.system, w.eff, plan, overlap=False)
    assert s.total_s == pytest.approx(a.total_s, rel=1e-9)


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"{c[0]}-{c[1]}-pp{c[4]}" for c in CONFIGS])
@pytest.mark.parametrize("micro", [1, 2, 4])
def test_overlap_between_busiest_resource_and_serial_sum(cfg, micro):
    w, plan, g = _setup(*cfg)
    serial = time_step(g, w.system, w.eff, plan, overlap=False, microbatches=micro).total_s
    s = time_step(g, w.system, w.eff, plan, overlap=True, microbatches=micro)
    busiest = max(
        sum(b - a for _, st, c, _, a, b in s.timeline if st == stage and c == cls)
        for stage in {e[1] for e in s.timeline}
        for cls in ("engine", "link", "stream")
    )
    assert busiest * (1 - 1e-12) <= s.total_s <= serial * (1 + 1e-12)


def test_pipeline_fill_shows_the_bubble():
    """PP4 with 4 micro-batches: a GPipe flow takes (m + p - 1) stage times when stages are
    equal, more than the steady-state m x stage the analytic formula charges."""
    w, plan, g = _setup("h100-sxm:8", "llama-3.1-70b", "fp8", 2, 4, 4, "decode")
    a = analytic_step(g, w.system, w.eff, plan, microbatches=4)
    s = time_step(g, w.system, w.eff, plan, microbatches=4)
    stage = float(a.stage_s.max())
    assert s.total_s > a.total_s
    assert s.total_s == pytest.approx((4 + 4 - 1) * stage, rel=0.12)


def test_weight_streaming_overlaps_the_engine():
    """Cerebras with weights in MemoryX: two micro-batches let streaming overlap compute, so the
    step is shorter than two serial passes and the stream port is the busiest resource."""
    w, plan, g = _setup("cerebras-wse3:1", "llama-3.1-70b", "bf16", 1, 1, 4, "decode")
    assert plan.weights_in == "capacity"
    one = time_step(g, w.system, w.eff, plan, overlap=False).total_s
    s = time_step(g, w.system, w.eff, plan, microbatches=2)
    assert s.total_s < 2 * one
    assert s.busy_s["stream"] == max(s.busy_s.values())


def test_exposed_time_by_hand():
    """engine 0-3, link 2-5: engine exposed 2, link exposed 2, both busy 3."""
    tl = [("a", 0, "engine", 0, 0.0, 3.0), ("b", 0, "link", 0, 2.0, 5.0)]
    busy, exposed = exposed_times(tl)
    assert busy["engine"] == pytest.approx(3.0) and busy["link"] == pytest.approx(3.0)
    assert exposed["engine"] == pytest.approx(2.0) and exposed["link"] == pytest.approx(2.0)


def test_chrome_trace_is_valid_json_with_complete_events():
    w, plan, g = _setup("h100-sxm:8", "llama-3.1-70b", "fp8", 8, 1, 16, "decode")
    s = time_step(g, w.system, w.eff, plan, microbatches=2)
    doc = json.loads(json.dumps(to_chrome_trace({"decode": s})))
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == len(s.timeline)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in xs)
    assert max(e["ts"] + e["dur"] for e in xs) == pytest.approx(s.total_s * 1e6)
