import pytest

from arch.presets import load_chip
from workloads.capacity import kv_bytes_per_chip, plan_memory, weight_bytes_per_chip
from workloads.parallel import Parallelism
from workloads.presets import load_model
from workloads.quant import get_quant


def test_weights_per_chip_70b_tp8_fp8():
    """Llama-3.1-70B: 70,553,706,496 params, of which embedding + LM head 2 x 128,256 x 8,192 =
    2,101,346,304 stay 16-bit, norms (161 x 8,192 = 1,318,912) too. FP8 rest:
    (70,553,706,496 - 2,101,346,304 - 1,318,912) x 1 B + (2,101,346,304 + 1,318,912) x 2 B, / 8
    = (68,451,041,280 + 4,205,330,432) / 8 = 9,082,046,464 B (norms are replicated, not sharded,
    which adds 1,318,912 x 2 x 7/8 = 2,308,096 B)."""
    w = weight_bytes_per_chip(load_model("llama-3.1-70b"), Parallelism(tp=8), get_quant("fp8"))
    assert w == pytest.approx(9_082_046_464 + 2_308_096, rel=1e-6)


def test_kv_per_chip():
    """Llama-3.1-70B, TP8 (one KV head per chip), FP8 KV, batch 64 x 2,304 tokens:
    64 x 2,304 x 80 layers x 2 x 128 x 1 B = 3,019,898,880 B."""
    kv = kv_bytes_per_chip(
        load_model("llama-3.1-70b"),
        Parallelism(tp=8),
        get_quant("fp8"),
        batch=64,
        context_len=2304,
    )
    assert kv == 3_019_898_880


def test_does_not_fit_says_why():
    plan = plan_memory(
        load_model("llama-3.1-405b"),
        Parallelism(tp=1),
        get_quant("bf16"),
        load_chip("h100-sxm"),
        batch=1,
        context_len=1024,
        activation_bytes=0.0,
        reserve_fraction=0.1,
    )
    assert not plan.fits
    assert "HBM3 holds 80.0 GB" in plan.reason
    assert plan.min_chips >= 12  # 812 GB of weights over 72 GB usable


def test_sram_chip_and_streaming_tier():
    groq = plan_memory(
        load_model("llama-3-8b"),
        Parallelism(tp=1),
        get_quant("fp8"),
        load_chip("groq-lpu"),
        batch=1,
        context_len=128,
        activation_bytes=0.0,
        reserve_fraction=0.05,
    )
    assert not groq.fits and groq.min_chips >= 35
    cs = plan_memory(
        load_model("llama-3.1-70b"),
        Parallelism(tp=1),
        get_quant("bf16"),
        load_chip("cerebras-wse3"),
        batch=1,
        context_len=1024,
        activation_bytes=0.0,
        reserve_fraction=0.05,
    )
    assert cs.fits and cs.weights_in == "capacity"  # streamed from MemoryX


def test_stages_are_balanced_by_bytes_with_the_embedding_and_head():
    """Llama-3.1-70B FP8, TP2 x PP4: a layer is 0.855 GB of FP8 weights, 0.428 GB per chip, and
    the 16-bit embedding table 128,256 x 8,192 x 2 B / 2 = 1.051 GB per chip (the LM head the
    same). Equal layer counts (20 each) would give the end stages 9.6 GB against 8.6 GB in the
    middle; balanced by bytes the end stages take one layer fewer (19, 21, 21, 19: 9.18 and
    8.98 GB) and every stage holds within 1.1 % of the mean."""
    from workloads.capacity import stage_of_layers, stage_weight_bytes

    m, q, par = load_model("llama-3.1-70b"), get_quant("fp8"), Parallelism(tp=2, pp=4)
    stages = stage_of_layers(m, par, q)
    assert [stages.count(s) for s in range(4)] == [19, 21, 21, 19]
    assert stages == sorted(stages)  # contiguous blocks
    per = stage_weight_bytes(m, par, q)
    assert max(per) / (sum(per) / 4) - 1 < 0.011
    assert weight_bytes_per_chip(m, par, q) == max(per)
    one = stage_of_layers(m, Parallelism(tp=1, pp=80), q)
    assert one == list(range(80))  # every stage keeps at least one layer


def test_the_stage_split_is_the_lightest_heaviest_stage_by_brute_force():
    """Llama-3.1-8B FP8 over 5 stages: every way to cut 32 layers into 5 non-empty contiguous
    blocks (C(31, 4) = 31,465) is tried; none has a lighter heaviest stage than the split the
    plan uses (embedding on the first stage, LM head on the last)."""
    import itertools

    from workloads.capacity import stage_of_layers, stage_weight_bytes

    m, q, par = load_model("llama-3.1-8b"), get_quant("fp8"), Parallelism(pp=5)
    one_each = stage_weight_bytes(m, Parallelism(pp=32), q)  # one layer per stage
    layer = one_each[1]
    first, last = one_each[0] - layer, one_each[-1] - layer
    best = min(
        max(first + layer * (cuts[0]), *(layer * (b - a) for a, b in itertools.pairwise(cuts)),
            layer * (32 - cuts[-1]) + last)
        for cuts in itertools.combinations(range(1, 32), 4)
    )  # fmt: skip
    assert max(stage_weight_bytes(m, par, q)) == pytest.approx(best, rel=1e-12)
    assert len(set(stage_of_layers(m, par, q))) == 5
