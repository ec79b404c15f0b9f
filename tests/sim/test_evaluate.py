"""The one evaluation path: hand-calculated energy, and every front door agreeing on one point."""

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from arch.chip import System
from arch.efficiency import efficiency_for
from arch.physical import ChipDesign
from explore.api.predict import predict
from explore.api.serve import ServeRequest, build
from explore.search.objectives import evaluate_point
from explore.search.space import load_space
from explore.search.sweep import sweep
from explore.tco import load_tco_scenario
from explore.tco.fleet import operate
from explore.validation.cases import build_cases
from kernels import layout as L
from kernels.pack import pack_design
from sim.evaluate import Workload, average_power_w, cost_run, evaluate, resolve_workload
from sim.metrics import summarize
from sim.serving import simulate_serving
from sim.step import analytic_step
from sim.stepmodel import AnalyticStepModel
from sim.traffic import ClosedLoop, Fixed
from workloads.parallel import Parallelism
from workloads.quant import get_quant

IDEAL = {"gemm_16bit": 1.0, "gemm_8bit": 1.0, "attention": 1.0, "memory": 1.0,
         "kernel_overhead_s": 0.0, "roofline_exponent": 100.0,
         "active_power_fraction": 0.5}  # fmt: skip
REL = 1e-6


def test_decode_step_energy_and_power_by_hand(tiny_model, tiny_system):
    """Tiny model, one decode token at context 10 on the tiny chip (1 pJ/FLOP matrix and vector,
    10 pJ/B HBM at 10 GB/s, idle 10 W, TDP 100 W), ideal efficiency, active power fraction 0.5.

    The step's ops (per-op columns of the op graph, tests/workloads/test_graph.py):
    matrix FLOPs 185,856; vector FLOPs 2 x (320 + 576 + 220 + 320 + 1,024) + 320 + 1,280 = 6,520;
    bytes: weights 180,224 + KV 3,072 + activations 2 x 4,096 + 256 + 384 + 640 + 2,048 = 11,520,
    194,816 B in all. Dynamic energy: (185,856 + 6,520) x 1 pJ + 194,816 x 10 pJ = 2.140536 uJ.
    Every op is memory-bound, so the step takes 194,816 B / 10 GB/s = 19.4816 us.
    Power floor max(10 W, 0.5 x 100 W) = 50 W; average power 50 W + 2.140536 uJ / 19.4816 us
    = 50.10987 W (below the 100 W TDP); energy per token = 50.10987 W x 19.4816 us = 976.2205 uJ.
    """
    w = Workload(system=tiny_system, model=tiny_model, quant=get_quant("bf16"),
                 par=Parallelism(), input_len=10, output_len=2,
                 eff=efficiency_for("test-family", overrides=IDEAL))  # fmt: skip
    step = w.decode(1, 10, w.plan(1))
    assert step.energy_j == pytest.approx(2.140536e-6, rel=1e-9)
    assert step.total_s == pytest.approx(19.4816e-6, rel=1e-9)
    power = average_power_w(step.energy_j, step.total_s, chips=1, floor_w=w.floor_w(),
                            tdp_w=100.0)  # fmt: skip
    assert power == pytest.approx(50.0 + 2.140536e-6 / 19.4816e-6, rel=1e-9)
    assert power * step.total_s == pytest.approx(976.2205e-6, rel=1e-6)


def test_decode_step_energy_counts_every_micro_batch():
    """A PP4 decode step of 8 sequences runs 4 micro-batches of 2 through the 4 stages: its
    energy is 4x that of one micro-batch's graph, in the analytic step and in the serving step
    model alike (the serving step model once dropped this factor)."""
    w = resolve_workload(system="h100-sxm:8", model="llama-3.1-70b", quant="fp8", tp=2, pp=4,
                         input_len=1024, output_len=64)  # fmt: skip
    plan = w.plan(8)
    sh = w.shape("decode", 8, 1, 1100)
    assert (sh.batch, sh.passes) == (2, 4)
    whole = w.decode(8, 1100, plan)
    one_micro = analytic_step(w.graph("decode", 2, 1, 1100), w.system, w.eff, plan)
    assert whole.energy_j == pytest.approx(4 * one_micro.energy_j, rel=1e-12)
    served = AnalyticStepModel(w, plan, exact=True).decode(8, 1100)
    assert served.energy_j == pytest.approx(whole.energy_j, rel=1e-12)


def test_a_precision_the_chip_cannot_run_is_one_clear_error(tiny_chip):
    """A matrix engine with fp32 only: fp8 falls back to int8, bf16 or fp16, none of which it
    has, so every front door (they all resolve through resolve_workload) refuses the run; bf16
    falls back to fp16, tf32 or fp32 and runs at fp32."""
    from arch.base import ConfigError
    from arch.chip import ComputeEngine

    fp32_only = ComputeEngine(peak_flops_per_s={"fp32": 1e12}, units=1, energy_j_per_flop=1e-12)
    chip = tiny_chip.model_copy(update={"matrix": fp32_only})
    with pytest.raises(ConfigError, match="supports none of fp8"):
        resolve_workload(system=System(chip=chip, count=1), model="tiny", quant="fp8",
                         input_len=8, output_len=2)  # fmt: skip
    w = resolve_workload(system=System(chip=chip, count=1), model="tiny", quant="bf16",
                         input_len=8, output_len=2)  # fmt: skip
    assert evaluate(w, 1).config["gemm_precision"] == "fp32"


# --------------------------------------------------------------------------- one point, six doors

CONFIGS = {  # name: (model, quant, tp, pp, ep, dp) on h100-sxm:8, batch 8 per replica
    "pp1": ("llama-3.1-70b", "fp8", 8, 1, 1, 1),
    "pp2": ("llama-3.1-70b", "fp8", 4, 2, 1, 1),
    "pp4": ("llama-3.1-70b", "fp8", 2, 4, 1, 1),
    "moe-ep": ("mixtral-8x7b", "bf16", 1, 1, 8, 8),
}
INPUT, OUTPUT, BATCH = 1024, 64, 8


def _predict(cfg, **kw):
    model, quant, tp, pp, ep, dp = cfg
    return predict("h100-sxm:8", model, quant, tp=tp, pp=pp, ep=ep, dp=dp, batch=BATCH,
                   input_len=INPUT, output_len=OUTPUT, **kw)  # fmt: skip


def _four(ttft, tpot, tokens_per_s, j_per_token):
    return np.array([ttft, tpot, tokens_per_s, j_per_token])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_search_objective_and_tco_fleet_equal_predict(name, tmp_path):
    cfg = CONFIGS[name]
    r = _predict(cfg)
    want = _four(r.ttft_s, r.tpot_s, r.output_tokens_per_s, r.energy_j_per_token)
    model, quant, tp, pp, ep, _ = cfg
    base = {
        "model": model,
        "chip": "h100-sxm",
        "quant": quant,
        "input_len": INPUT,
        "output_len": OUTPUT,
        "chips": 8,
        "tp": tp,
        "pp": pp,
        "ep": ep,
        "batch": BATCH,
    }
    m = evaluate_point(base, {}).metrics
    got = _four(m["ttft_s"], m["tpot_s"], m["tokens_per_s"], m["joules_per_token"])
    np.testing.assert_allclose(got, want, rtol=REL)
    path = tmp_path / "tco.toml"
    path.write_text(
        f'[scenario]\nmodel = "{model}"\ninput_len = {INPUT}\noutput_len = {OUTPUT}\n'
        "load_output_tokens_per_s = 1000\n"
        f'[[fleet]]\nname = "f"\nsystem = "h100-sxm:8"\nquant = "{quant}"\ntp = {tp}\n'
        f"pp = {pp}\nep = {ep}\ndp = {cfg[5]}\nprice_usd = 25000\n"
    )
    sc = load_tco_scenario(path)
    op = operate(sc, sc.fleets[0], batch=BATCH)
    got = [op.ttft_s, op.tpot_s, op.replica_tokens_per_s * cfg[5], op.busy_w]
    np.testing.assert_allclose(got, [r.ttft_s, r.tpot_s, r.output_tokens_per_s, r.power_w],
                               rtol=REL)  # fmt: skip


@pytest.mark.parametrize("name", list(CONFIGS))
def test_serving_step_model_equals_predict(name):
    """Closed loop, static batching, one batch per replica, steps costed exactly (no memo grid).
    Serve sums its decode steps one by one; predict takes Simpson's mean over the same contexts.
    With a hard roofline (exponent 100) every context-dependent op (decode attention) stays on
    the memory side, so the decode step is affine in context and Simpson's rule over an even
    number of tokens is exact: the two must agree to rounding. Any other difference is a rule
    written twice (micro-batching, step energy, power floor, prefill)."""
    cfg = CONFIGS[name]
    hard = {"roofline_exponent": 100.0}
    r = _predict(cfg, efficiency_overrides=hard)
    model, quant, tp, pp, ep, dp = cfg
    req = ServeRequest(system="h100-sxm:8", model=model, quant=quant, tp=tp, pp=pp, ep=ep, dp=dp,
                       input_len=Fixed(INPUT), output_len=Fixed(OUTPUT),
                       arrivals=ClosedLoop(BATCH * dp), requests=BATCH * dp,
                       scheduler="static", max_batch=BATCH)  # fmt: skip
    cfg_serve, sm = build(req)
    w = replace(sm.w, eff=efficiency_for(sm.w.system.chip.family, engine=sm.w.engine.name,
                                        overrides=hard))
    exact = AnalyticStepModel(w, w.plan(BATCH), exact=True)
    s = summarize(simulate_serving(cfg_serve, exact.step))
    got = _four(s["ttft_s"]["mean"], s["tpot_s"]["mean"], s["output_tokens_per_s"],
                s["energy_j_per_token"])  # fmt: skip
    want = _four(r.ttft_s, r.tpot_s, r.output_tokens_per_s, r.energy_j_per_token)
    np.testing.assert_allclose(got, want, rtol=REL)


@pytest.mark.parametrize("metric", ["e2e_latency_s", "throughput_output_tokens_per_s",
                                    "accelerator_power_w_avg"])  # fmt: skip
def test_validation_case_equals_predict(metric):
    """A validation row (TP8 on 8 H100, the row format of data/measurements.csv) predicts
    through the same path: its value is predict's."""
    row = {"id": "T1", "hardware": "H100 SXM", "model": "Llama-3.1-70B", "precision": "FP8",
           "metric": metric, "value": "1", "unit": "", "workload": "static batch",
           "input_len": str(INPUT), "output_len": str(OUTPUT),
           "batch_or_concurrency": str(BATCH), "n_chips": "8", "parallelism": "TP8"}  # fmt: skip
    (case,), skipped = build_cases([row])
    assert not skipped
    r = _predict(CONFIGS["pp1"])
    want = {"e2e_latency_s": r.e2e_s, "throughput_output_tokens_per_s": r.output_tokens_per_s,
            "accelerator_power_w_avg": r.power_w}[metric]  # fmt: skip
    assert case.predict({}) == pytest.approx(want, rel=REL)


@pytest.mark.parametrize("pp", [1, 2, 4])
def test_sweep_and_search_equal_predict_on_a_custom_design(pp, tmp_path):
    """A physical-model design: the sweep (many designs per kernel call), the search objective
    and predict on the design's Chip give the same numbers."""
    design = {"node": "N4", "peak_bf16_flops_per_s": 1.0e15, "hbm_stacks": 4,
              "sram_bytes": 256e6, "link_bytes_per_s": 400e9}  # fmt: skip
    path = tmp_path / "space.toml"
    path.write_text(
        '[study]\nobjectives = ["tokens_per_s_per_user"]\n'
        f'[base]\nmodel = "llama-3.1-70b"\nquant = "fp8"\ninput_len = {INPUT}\n'
        f"output_len = {OUTPUT}\nchips = 8\npp = {pp}\nbatch = {BATCH}\n"
        '[base.chip]\nnode = "N4"\npeak_bf16_flops_per_s = 1.0e15\nhbm_stacks = 4\n'
        "link_bytes_per_s = 400e9\n[chip]\nsram_bytes = { choices = [256e6] }\n"
    )
    cols = sweep(load_space(path)).columns
    chip = ChipDesign(**design).to_chip()
    r = predict(System(chip=chip, count=8), "llama-3.1-70b", "fp8", tp=8 // pp, pp=pp,
                batch=BATCH, input_len=INPUT, output_len=OUTPUT)  # fmt: skip
    m = evaluate_point(load_space(path).base, {"chip.sram_bytes": 256e6}).metrics
    for key, want in (
        ("ttft_s", r.ttft_s),
        ("tpot_s", r.tpot_s),
        ("tokens_per_s", r.output_tokens_per_s),
        ("power_w", r.power_w),
    ):
        assert cols[key][0] == pytest.approx(want, rel=REL), key
        if key in m:
            assert m[key] == pytest.approx(want, rel=REL), key
    assert m["joules_per_token"] == pytest.approx(r.energy_j_per_token, rel=REL)


SWEEP_SPACE = """
[study]
objectives = ["tokens_per_s_per_user"]
[base]
model = "{model}"
quant = "{quant}"
input_len = 1024
output_len = 64
chips = 8
tp = {tp}
ep = {ep}
batch = 8
[base.chip]
node = "N4"
peak_bf16_flops_per_s = 1.0e15
hbm_stacks = 4
[chip]
fp8 = {{ choices = [true, false] }}
sram_bytes = {{ choices = [0, 256e6] }}
topology = {{ choices = ["torus2d", "switch"] }}
links = {{ choices = [2, 4] }}
yield_model = {{ choices = ["murphy", "poisson"] }}
[deploy]
pp = {{ choices = {pps} }}
"""


@pytest.mark.parametrize(
    ("model", "quant", "tp", "ep", "pps"),
    [("llama-3.1-70b", "fp8", 0, 1, [1, 2, 4]), ("mixtral-8x7b", "bf16", 1, 8, [1])],
    ids=["dense-pp", "moe-ep"],
)
def test_sweep_rows_equal_the_search_point_by_point(model, quant, tp, ep, pps, tmp_path):
    """Every row of a sweep over fp8 support, SRAM, topology, links and yield model (the fields
    the sweep once ignored or costed by the reference chip) equals the search's one-point
    evaluation of the same design: the many-designs path and the one-design path agree."""
    text = SWEEP_SPACE.format(model=model, quant=quant, tp=tp, ep=ep, pps=pps)
    if tp == 0:  # tp over the chips of a pipeline stage (the deploy default)
        text = text.replace("tp = 0\n", "")
    path = tmp_path / "space.toml"
    path.write_text(text)
    space = load_space(path)
    cols = sweep(space).columns
    n = len(cols["fits"])
    assert n == 32 * len(pps) and cols["fits"].all()
    keys = ("ttft_s", "tpot_s", "tokens_per_s", "joules_per_token", "tdp_w", "area_mm2",
            "chip_cost_usd", "usd_per_m_output_tokens")  # fmt: skip
    for i in range(n):
        params = {k: cols[k][i] for k in cols if k.startswith(("chip.", "deploy."))}
        m = evaluate_point(space.base, params).metrics
        got = [float(cols[k][i]) for k in keys]
        np.testing.assert_allclose(got, [m[k] for k in keys], rtol=REL, err_msg=str(params))


def test_one_design_row_is_the_many_design_path():
    """predict's numbers come from cost_run on one packed row; its per-op report steps (the
    analytic step, a second reader of the same kernels) agree with them."""
    r = _predict(CONFIGS["pp4"])
    w = resolve_workload(system="h100-sxm:8", model="llama-3.1-70b", quant="fp8", tp=2, pp=4,
                         input_len=INPUT, output_len=OUTPUT)  # fmt: skip
    row = pack_design(w.system, w.eff, w.plan(BATCH))
    run = cost_run(w, BATCH, np.stack([row, row]))
    assert run.ttft_s[1] == run.ttft_s[0] == pytest.approx(r.ttft_s, rel=1e-12)
    assert r.prefill_step.total_s == pytest.approx(r.ttft_s, rel=1e-12)
    mid = w.decode(BATCH, w.decode_contexts[1], w.plan(BATCH))
    assert mid.total_s == pytest.approx(r.decode_step.total_s, rel=1e-12)
    assert row[L.TDP_W] == w.system.chip.tdp_w


def test_custom_design_chip_reads_back_as_its_arrays():
    """ChipDesign.to_chip and the sweep's design table are one function: reading the Chip back
    into columns gives the table's row."""
    from arch.chip import ChipArrays

    d = ChipDesign(node="N4", peak_bf16_flops_per_s=1.0e15, hbm_stacks=4, sram_bytes=256e6)
    a, b = d.arrays().chips, ChipArrays.of(d.to_chip())
    for f in a.__dataclass_fields__:
        x, y = getattr(a, f), getattr(b, f)
        if x.dtype == object:
            assert list(x) == list(y), f
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, err_msg=f)


def test_the_step_trace_replays_the_prediction_it_comes_from():
    """With a user efficiency override (memory 0.3), the traced decode step without overlap is
    the prediction's own decode step (it once re-resolved the workload without overrides)."""
    from explore.api.trace import step_simulations

    r = _predict(CONFIGS["pp1"], efficiency_overrides={"memory": 0.3})
    sims = step_simulations(r, overlap=False)
    assert sims["decode"].total_s == pytest.approx(r.decode_step.total_s, rel=1e-9)
    assert sims["prefill"].total_s == pytest.approx(r.ttft_s, rel=1e-9)


# --------------------------------------------------------------------------- memory and prefill


def _sram_tiny(tiny_chip, capacity: float):
    from arch.chip import MemoryLevel

    sram = MemoryLevel(name="SRAM", kind="sram", role="main", capacity_bytes=capacity,
                       bandwidth_bytes_per_s=1e12, latency_s=0.0,
                       energy_j_per_byte=1e-12)  # fmt: skip
    return tiny_chip.model_copy(update={"memory": (sram,)})


def test_prefill_chunk_fits_beside_weights_and_kv_on_an_sram_chip(tiny_chip, tiny_model):
    """Tiny model (hidden 64; QKV 128 wide, gated MLP up 256 wide) on one chip with 400,000 B of
    SRAM, reserve 10 %. Activations per token: 2 B x (2 x 64 residual + 256 widest) = 768 B;
    logits of one sequence: 256 x 4 B = 1,024 B. Batch 2, 90 in + 10 out: weights 213,632 B,
    KV 2 x 100 tokens x 256 B = 51,200 B. Left for activations: 360,000 - 51,200 - 213,632 =
    95,168 B. A whole prompt takes 90 x 768 + 1,024 = 70,144 B: one prompt per pass, 2 passes.
    With 300,000 B of SRAM 5,168 B are left, less than a prompt: a pass holds
    (5,168 - 1,024) // 768 = 5 tokens of one prompt (4,864 B)."""
    w = Workload(system=System(chip=_sram_tiny(tiny_chip, 400e3), count=1), model=tiny_model,
                 quant=get_quant("bf16"), par=Parallelism(), input_len=90, output_len=10,
                 eff=efficiency_for("test-family"))  # fmt: skip
    plan = w.plan(2)
    assert plan.prefill_chunk_tokens == 90
    assert plan.activations == pytest.approx(70_144)
    assert plan.fits
    sh = w.shape("prefill", 2, 90, 0, plan)
    assert (sh.batch, sh.seq, sh.passes, sh.fill) == (1, 90, 2, True)
    small = replace(w, system=System(chip=_sram_tiny(tiny_chip, 300e3), count=1))
    assert small.plan(2).prefill_chunk_tokens == 5
    assert small.plan(2).activations == pytest.approx(4_864)
    tight = replace(w, system=System(chip=_sram_tiny(tiny_chip, 260e3), count=1))
    assert not tight.plan(2).fits  # 234,000 B usable < weights + KV = 264,832 B


def test_pipelined_prefill_is_one_chunk_through_every_stage_then_the_slowest(tiny_model):
    """PP2 over 2 tiny chips, 4 prompts of 8 tokens in chunks of 8 tokens: 4 passes. The closed
    form: t = s1 + s2 + (4 - 1) x max(s1, s2), with s1, s2 the stages' times for one chunk; a
    chunk smaller than a prompt splits each prompt (8 tokens in chunks of 3 -> 3 pieces of 3,
    12 passes, costed at the middle piece's context 3)."""
    from arch.presets import load_chip_file

    chip = load_chip_file(Path(__file__).parents[1] / "data" / "tiny_chip.toml")
    w = resolve_workload(system=System(chip=chip, count=2), model=tiny_model, quant="bf16",
                         pp=2, input_len=8, output_len=2)  # fmt: skip
    plan = replace(w.plan(4), prefill_chunk_tokens=8)
    one = analytic_step(w.graph("prefill", 1, 8, 0), w.system, w.eff, plan)
    s1, s2 = one.stage_s
    assert w.prefill(4, plan).total_s == pytest.approx(s1 + s2 + 3 * max(s1, s2), rel=1e-12)
    assert w.prefill(4, plan).energy_j == pytest.approx(4 * one.energy_j, rel=1e-12)
    sh = w.shape("prefill", 4, 8, 0, replace(plan, prefill_chunk_tokens=3))
    assert (sh.batch, sh.seq, sh.context, sh.passes) == (1, 3, 3, 12)


def test_batch_max_keeps_the_weights_in_sram_when_that_is_faster():
    """Llama-3.1-8B BF16 on one CS-3 (44 GB SRAM, MemoryX behind it): the largest batch that
    fits streams the weights from MemoryX every step; --batch max takes a smaller batch that
    keeps them on the wafer and delivers more tokens/s, and says throughput limited it."""
    from sim.batching import batch_choice

    w = resolve_workload(system="cerebras-wse3:1", model="llama-3.1-8b", quant="bf16",
                         input_len=1000, output_len=200)  # fmt: skip
    choice = batch_choice(w)
    assert choice.limit == "throughput" and choice.batch < choice.largest_fitting
    assert w.plan(choice.batch).weights_in == "main"
    assert w.plan(choice.largest_fitting).weights_in == "capacity"
    big = evaluate(w, choice.largest_fitting)
    assert choice.tokens_per_s > 10 * big.output_tokens_per_s


def test_partial_spill_sits_between_all_sram_and_all_hbm(tiny_chip, tiny_model):
    """The tiny chip (10 GB/s HBM) with 100,000 B of addressable SRAM at 1 TB/s in front, reserve
    10 %: SRAM holds 90,000 of the 213,632 weight bytes (42.13 %), HBM the other 123,632. One
    weight byte then costs 0.42129 / 1e12 + 0.57871 / 1e10 s, an effective 17.15 GB/s; the
    decode step lies between the same chip with all weights in SRAM and with none, and saves,
    against all-HBM, the SRAM share of the 180,224 weight bytes a decode step reads
    (tests/workloads/test_graph.py; the embedding table is resident but not read) times
    (1 / 1e10 - 1 / 1e12) s per byte: 0.42129 x 180,224 x 0.99e-10 = 7.5166 us."""
    from arch.chip import MemoryLevel

    def chip_with(sram_bytes: float):
        sram = MemoryLevel(name="SRAM", kind="sram", role="scratch", capacity_bytes=sram_bytes,
                           bandwidth_bytes_per_s=1e12, latency_s=0.0,
                           energy_j_per_byte=1e-12)  # fmt: skip
        return tiny_chip.model_copy(update={"memory": (sram, *tiny_chip.memory)})

    def step(chip):
        w = Workload(system=System(chip=chip, count=1), model=tiny_model,
                     quant=get_quant("bf16"), par=Parallelism(), input_len=10, output_len=2,
                     eff=efficiency_for("test-family", overrides=IDEAL))  # fmt: skip
        plan = w.plan(1)
        return plan, w.decode(1, 10, plan), pack_design(w.system, w.eff, plan)

    plan, part, row = step(chip_with(100e3))
    share = 90_000 / 213_632
    assert plan.weight_split == pytest.approx((share, 1 - share, 0.0), rel=1e-12)
    assert "SRAM holds 42.1 % of the weights (the rest in HBM)" in plan.reason
    assert row[L.BW_WEIGHTS] == pytest.approx(1 / (share / 1e12 + (1 - share) / 1e10), rel=1e-12)
    assert row[L.BW_WEIGHTS] == pytest.approx(17.15e9, rel=1e-3)
    _, all_sram, _ = step(chip_with(1e6))
    _, all_hbm, _ = step(tiny_chip)
    assert all_sram.total_s < part.total_s < all_hbm.total_s
    saved = all_hbm.total_s - part.total_s  # the SRAM-held bytes no longer cross HBM
    assert saved == pytest.approx(share * 180_224 * (1 / 1e10 - 1 / 1e12), rel=1e-9)


def test_a_bigger_batch_never_fits_again_once_one_does_not():
    """Memory per chip grows with the batch (KV cache, the decode micro-batch), so fitting
    turns false once and stays false: on 64 Groq chips with Llama-3.1-8B (512 in / 128 out) a
    pass once held several prompts' logits it had no room for, and batches 5 to 43 were
    reported as not fitting while 44 to 72 were."""
    w = resolve_workload(system="groq-lpu:64", model="llama-3.1-8b", quant="fp8", tp=8, pp=8,
                         input_len=512, output_len=128)  # fmt: skip
    fits = [w.plan(b).fits for b in range(1, 150)]
    assert fits[0] and not fits[-1]
    assert sum(a != b for a, b in itertools.pairwise(fits)) == 1


def test_the_last_prefill_pass_is_not_costed_as_a_full_one():
    """H100, Llama-3.1-8B, 2,048-token prompts, 8,192-token passes: 8 prompts are 2 passes of
    4; 9 prompts are 3 passes of 3 (not 3 of 4), so TTFT grows by about 3/2 x 3/4, not 3/2."""
    w = resolve_workload(system="h100-sxm:1", model="llama-3.1-8b", quant="fp8", input_len=2048,
                         output_len=128)  # fmt: skip
    eight, nine = evaluate(w, 8).ttft_s, evaluate(w, 9).ttft_s
    assert w.shape("prefill", 9, 2048, 0, w.plan(9)).batch == 3
    assert 1.0 < nine / eight < 1.2


def test_sweep_sizes_prefill_chunks_per_design_like_the_search(tmp_path):
    """SRAM-only designs (no HBM) on 8 chips with Llama-3.1-8B: the prefill chunk depends on
    the SRAM each design has left beside its weights and KV, so the sweep sizes it per design
    (not from the reference chip) and every row equals the search's one-point evaluation."""
    path = tmp_path / "sram.toml"
    path.write_text(
        '[study]\nobjectives = ["tokens_per_s_per_user"]\n[base]\nmodel = "llama-3.1-8b"\n'
        'quant = "fp8"\ninput_len = 2048\noutput_len = 64\nchips = 8\nbatch = 8\n'
        '[base.chip]\nnode = "N4"\npeak_bf16_flops_per_s = 5e14\nlinks = 4\n'
        "[chip]\nsram_bytes = { choices = [1.45e9, 1.6e9, 3e9] }\n"
    )
    space = load_space(path)
    cols = sweep(space).columns
    chunks = []
    for i in range(len(cols["fits"])):
        params = {"chip.sram_bytes": cols["chip.sram_bytes"][i]}
        point = evaluate_point(space.base, params)
        chunks.append(point.workload.plan(8).prefill_chunk_tokens)
        for key in ("ttft_s", "tpot_s", "tokens_per_s"):
            assert cols[key][i] == pytest.approx(point.metrics[key], rel=REL), (key, params)
    assert len(set(chunks)) > 1  # the designs do get different chunks
