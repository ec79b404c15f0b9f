import pytest

from arch.base import ConfigError
from explore.api.predict import predict

ARGS = {"input_len": 512, "output_len": 64}
JSON_KEYS = {
    "ttft_s",
    "tpot_s",
    "tokens_per_s_per_user",
    "output_tokens_per_s",
    "output_tokens_per_s_per_chip",
    "e2e_s",
    "batch",
    "fits",
    "memory_per_chip_bytes",
    "bound",
    "power_w",
    "energy_j_per_token",
    "efficiency",
    "version",
}


def test_result_contract_keys():
    d = predict("h100-sxm:8", "llama-3.1-70b", "fp8", tp=8, batch=16, **ARGS).to_dict()
    assert set(d) >= JSON_KEYS
    assert set(d["memory_per_chip_bytes"]) == {
        "weights",
        "kv_cache",
        "activations",
        "reserve",
        "capacity",
    }
    assert set(d["bound"]) == {"prefill", "decode"}


def test_consistency_of_derived_metrics():
    r = predict("h100-sxm:8", "llama-3.1-70b", "fp8", tp=2, dp=4, batch=16, **ARGS)
    assert r.e2e_s == pytest.approx(r.ttft_s + 63 * r.tpot_s)
    per_replica = 16 * 64 / r.e2e_s
    assert r.output_tokens_per_s == pytest.approx(4 * per_replica)
    assert r.output_tokens_per_s_per_chip == pytest.approx(per_replica / 2)
    assert r.tokens_per_s_per_user == pytest.approx(1 / r.tpot_s)


def test_not_fitting_has_no_latency():
    r = predict("h100-sxm:1", "llama-3.1-405b", "bf16", batch=1, **ARGS)
    assert not r.fits and r.ttft_s is None and r.tpot_s is None
    assert r.memory.reason and r.to_dict()["min_chips"] >= 12


def test_max_batch_is_the_most_throughput_that_fits_and_says_why():
    """--batch max fits, says what limited it, and no batch on its scan up to the largest that
    fits delivers more tokens/s (the largest fitting one included)."""
    from sim.batching import batch_choice
    from sim.evaluate import evaluate, resolve_workload

    r = predict("h100-sxm:8", "llama-3.1-70b", "fp8", tp=8, pp=1, dp=1, batch="max", **ARGS)
    assert r.fits and any(n.startswith("--batch max chose") for n in r.notes)
    w = resolve_workload(system="h100-sxm:8", model="llama-3.1-70b", quant="fp8", tp=8,
                         input_len=512, output_len=64)  # fmt: skip
    c = batch_choice(w)
    assert c.batch == r.batch
    # the largest batch that fits, unless the engine's scheduler cap (TRT-LLM: 4096) binds first
    assert c.largest_fitting == w.engine.max_batch or not w.plan(c.largest_fitting + 1).fits
    for b in (1, r.batch // 2, c.largest_fitting):
        assert evaluate(w, b).output_tokens_per_s <= r.output_tokens_per_s * (1 + 1e-12)


def test_tpot_slo_respected_and_tight():
    r = predict("h100-sxm:8", "llama-3.1-70b", "fp8", tp=8, batch="max", tpot_slo_s=0.02, **ARGS)
    assert r.tpot_s <= 0.02 * 1.05  # SLO checked at mid context; mean over output may differ
    bigger = predict("h100-sxm:8", "llama-3.1-70b", "fp8", tp=8, batch=r.batch * 2, **ARGS)
    assert bigger.tpot_s > r.tpot_s


def test_more_batch_more_throughput_less_per_user_speed():
    a = predict("h200:1", "llama-3-8b", "fp8", batch=4, **ARGS)
    b = predict("h200:1", "llama-3-8b", "fp8", batch=64, **ARGS)
    assert b.output_tokens_per_s > a.output_tokens_per_s
    assert b.tokens_per_s_per_user < a.tokens_per_s_per_user


def test_faster_memory_chip_decodes_faster():
    """H200 is H100 silicon with 4.8 vs 3.35 TB/s: batch-1 decode is memory-bound."""
    h100 = predict("h100-sxm:1", "llama-3-8b", "bf16", batch=1, **ARGS)
    h200 = predict("h200:1", "llama-3-8b", "bf16", batch=1, **ARGS)
    assert h200.tpot_s < h100.tpot_s
    assert h100.bound["decode"] == "memory"


def test_batching_raises_power_and_amortizes_energy():
    """Llama-3-8B BF16 on one H100 (700 W TDP, floor 0.35 x 700 = 245 W while working). Batch-1
    decode streams all 16 GB of weights per token; batch 64 reads them once for 64 tokens, so it
    draws more power (more bytes and FLOPs per second) yet spends far less energy per token."""
    one = predict("h100-sxm:1", "llama-3-8b", "bf16", batch=1, **ARGS)
    many = predict("h100-sxm:1", "llama-3-8b", "bf16", batch=64, **ARGS)
    assert 245.0 < one.power_w < many.power_w <= 700.0
    assert many.energy_j_per_token < one.energy_j_per_token / 10


def test_moe_and_mla_and_sram_systems_run():
    assert predict("h100-sxm:8", "mixtral-8x7b", "fp8", tp=8, batch=8, **ARGS).fits
    ds = predict("h200:8", "deepseek-v3", "fp8", tp=1, dp=8, ep=8, batch=8, **ARGS)
    assert ds.fits and ds.tpot_s > 0
    groq = predict("groq-lpu:640", "llama-2-70b", "fp8", tp=8, pp=80, batch=1, **ARGS)
    assert groq.fits and groq.memory.weights_in == "main"
    assert any("groq-tsp: not fitted, priors used for" in n for n in groq.notes)
    tpu = predict("tpu-v5e:8", "llama-3.1-8b", "bf16", tp=8, batch=1, **ARGS)
    assert any("EXTRAPOLATED" in n for n in tpu.notes)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="must equal the system's 8 chips"):
        predict("h100-sxm:8", "llama-3-8b", "bf16", tp=2, pp=1, dp=1, batch=1, **ARGS)
    with pytest.raises(ConfigError, match="exceeds"):
        predict("h100-sxm:1", "llama-2-7b", "bf16", batch=1, input_len=4096, output_len=64)
    with pytest.raises(ConfigError, match="positive integer"):
        predict("h100-sxm:1", "llama-2-7b", "bf16", batch=0, **ARGS)


def test_engine_cap_binds_max_batch_and_is_named():
    """vLLM's scheduler admits at most max_batch sequences (256, arch/presets/engines.toml): a
    small model on a big GPU fits thousands, --batch max stops at the cap and says so."""
    r = predict("h200:1", "llama-3-8b", "fp8", batch="max", engine="vllm", tp=1, pp=1, ep=1,
                dp=1, **ARGS)  # fmt: skip
    assert r.batch <= 256 and r.config["engine"] == "vllm" and not r.config["engine_assumed"]
    free = predict("h200:1", "llama-3-8b", "fp8", batch="max", engine="trtllm", tp=1, pp=1,
                   ep=1, dp=1, **ARGS)  # fmt: skip
    assert free.batch > 256
