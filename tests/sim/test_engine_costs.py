"""The serving engine's place in the step rules: a fixed cost per forward pass, the batch cap,
the padded cache (arch/presets/engines.toml, sim.step.step_seconds)."""

from dataclasses import replace

import pytest

from arch.efficiency import efficiency_for
from arch.engine import KERNELS_ONLY, resolve_engine
from sim.evaluate import evaluate, resolve_workload

ARGS = {"system": "h100-sxm:1", "model": "llama-3-8b", "quant": "fp8", "input_len": 512,
        "output_len": 64}  # fmt: skip
HOST = 1.5e-3


def _with_host(w, host):
    eff = efficiency_for(w.system.chip.family, overrides={"step_overhead_s": host})
    return replace(w, eff=eff)


def test_step_overhead_is_charged_once_per_decode_step_and_per_prefill_chunk():
    """TPOT grows by exactly the engine's step cost (one iteration per decode step); TTFT by
    the step cost x the prefill passes. Batch 8 x 512 tokens = 4096 tokens fit one 8192-token
    chunk: one pass. Batch 40 x 512 = 20480 tokens: ceil(40 / 16) = 3 passes of 16 prompts."""
    w0 = resolve_workload(**ARGS, engine=KERNELS_ONLY)
    w1 = _with_host(w0, HOST)
    a, b = evaluate(w0, 8), evaluate(w1, 8)
    assert b.tpot_s - a.tpot_s == pytest.approx(HOST, rel=1e-9)
    assert b.ttft_s - a.ttft_s == pytest.approx(HOST, rel=1e-9)
    passes = w0.shape("prefill", 40, 512, 0, w0.plan(40)).passes
    assert passes == 3
    a, b = evaluate(w0, 40), evaluate(w1, 40)
    assert b.ttft_s - a.ttft_s == pytest.approx(3 * HOST, rel=1e-9)


def test_padded_cache_attends_over_the_whole_slot():
    """JetStream-style padded cache: every decode step reads the cache of input + output
    tokens, so TPOT is the last step's, above the same run with a cache that grows."""
    w = resolve_workload(**ARGS, engine=KERNELS_ONLY)
    jet = resolve_engine("jetstream", "google-tpu").model_copy(update={"name": ""})
    padded = replace(w, engine=jet)
    assert padded.decode_contexts == (575, 575, 575)
    assert evaluate(padded, 32).tpot_s > evaluate(w, 32).tpot_s


def test_result_names_the_engine_it_assumed():
    r = evaluate(resolve_workload(**ARGS), 4)
    assert r.config["engine"] == "trtllm" and r.config["engine_assumed"]
    assert any(n.startswith("engine: trtllm (assumed") for n in r.notes)
    r = evaluate(resolve_workload(**ARGS, engine="vllm"), 4)
    assert r.config["engine"] == "vllm" and not r.config["engine_assumed"]


def test_attention_runs_at_the_engines_narrowest_format():
    """FP8 weights and activations: TRT-LLM attends in FP8 (its attention rows run at the FP8
    peak), an engine that dequantizes the FP8 cache attends in BF16; FP4 never attends below
    FP8 (workloads.graph)."""
    from workloads.ops import OpKind, precision_code

    def attn_prec(engine, quant="fp8"):
        w = resolve_workload(**{**ARGS, "quant": quant}, engine=engine)
        g = w.graph("decode", 4, 1, 600)
        return set(g.precision[g.kind == int(OpKind.ATTN_DECODE)].tolist())

    assert attn_prec("trtllm") == {precision_code("fp8")}
    assert attn_prec("vllm") == {precision_code("bf16")}
    assert attn_prec("trtllm", "fp4") == {precision_code("fp8")}
    assert attn_prec("vllm", "bf16") == {precision_code("bf16")}
