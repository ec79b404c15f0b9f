"""Speed of light: no prediction beats the physics it is built on.

At batch 1, a decode token must read every weight once: a replica of ``tp`` chips per stage
reads the model's weights stage after stage, so TPOT >= weight bytes / (tp x peak bandwidth of
the level the weights are read from). A token also crosses every layer and stage hop of a
statically scheduled chip: TPOT >= layers x layer_latency_s + (pp - 1) x stage_hop_latency_s
(by construction of the step rule; the bandwidth and peak bounds are the ones that can fail).
And prefill cannot beat the matrix peak: TTFT >= prompt FLOPs / (chips x peak at that
precision)."""

import pytest

from sim.evaluate import evaluate, resolve_workload
from workloads.capacity import weight_bytes_per_chip

CASES = [  # system, model, quant, tp, pp
    ("h100-sxm:8", "llama-3.1-70b", "fp8", 8, 1),
    ("h100-sxm:8", "llama-3.1-70b", "fp8", 2, 4),
    ("b200:8", "llama-3.1-405b", "fp4", 8, 1),
    ("mi300x:8", "llama-3.1-70b", "bf16", 8, 1),
    ("groq-lpu:640", "llama-2-70b", "fp8", 8, 80),
    ("cerebras-wse3:1", "llama-3.1-8b", "bf16", 1, 1),
    ("cerebras-wse3:4", "llama-3.1-70b", "bf16", 1, 4),
    ("sambanova-sn40l:16", "llama-3.1-70b", "bf16", 16, 1),
    ("tpu-v5e:8", "llama-3.1-8b", "bf16", 8, 1),
    ("h100-sxm:8", "mixtral-8x7b", "bf16", 8, 1),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-pp{c[4]}" for c in CASES])
def test_no_prediction_beats_bandwidth_latency_or_peak(case):
    system, model, quant, tp, pp = case
    w = resolve_workload(system=system, model=model, quant=quant, tp=tp, pp=pp,
                         dp=w_dp(system, tp, pp), input_len=512, output_len=64)  # fmt: skip
    r = evaluate(w, 1)
    assert r.fits, r.memory.reason
    chip = w.system.chip
    levels = (chip.scratch, chip.main_memory, chip.capacity_tier)
    # seconds per weight byte at the peak of each level, weighted by the share it holds
    per_byte = sum(
        f / lvl.bandwidth_bytes_per_s
        for f, lvl in zip(r.memory.weight_split, levels, strict=True)
        if f > 0
    )
    # every stage reads its share; the most loaded chip bounds each stage from below
    weights = weight_bytes_per_chip(w.model, w.par, w.quant) if pp == 1 else (
        w.model.total_params(active=True) * w.quant.w.bytes_per_element / tp)  # fmt: skip
    if w.model.is_moe:  # one token reads only its experts (and the shared weights)
        weights = w.model.total_params(active=True) * w.quant.w.bytes_per_element / tp
    floor_bw = weights * per_byte
    floor_lat = (w.model.num_layers * w.eff.value("layer_latency_s")
                 + (pp - 1) * w.eff.value("stage_hop_latency_s"))  # fmt: skip
    assert r.tpot_s >= max(floor_bw, floor_lat) * (1 - 1e-9)
    prompt_flops = 2.0 * w.model.total_params(active=True) * 512
    peak = chip.matrix.peak(r.config["gemm_precision"])
    assert r.ttft_s >= prompt_flops / (w.par.chips_per_replica * peak) * (1 - 1e-9)


def w_dp(system: str, tp: int, pp: int) -> int:
    return int(system.split(":")[1]) // (tp * pp)
