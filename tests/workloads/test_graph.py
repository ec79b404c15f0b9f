"""Op graphs: bytes and FLOPs against hand calculations, folding, MoE expert counting."""

import numpy as np
import pytest

from workloads.graph import build_graph, expected_distinct_experts
from workloads.ops import OpKind
from workloads.parallel import Parallelism
from workloads.presets import load_model
from workloads.quant import get_quant


def _decode(model, *, batch=1, context=10, tp=1, quant="bf16", **kw):
    return build_graph(
        model,
        phase="decode",
        batch=batch,
        seq_len=1,
        context_len=context,
        parallelism=Parallelism(tp=tp, **kw),
        quant=get_quant(quant),
    )


def test_tiny_decode_weight_bytes(tiny_model):
    """Per layer the GEMMs read 8,192 + 4,096 + 16,384 + 8,192 = 36,864 bf16 weights = 73,728 B;
    two layers 147,456 B; the LM head 64 x 256 x 2 B = 32,768 B. The embedding is a gather, not a
    weight stream. Total 180,224 B per decode step."""
    assert _decode(tiny_model).total("weight_bytes") == 180_224


def test_tiny_decode_kv_bytes(tiny_model):
    """Each layer reads 11 tokens (10 cached + 1 new) x 64 KV elements x 2 B = 1,408 B and writes
    64 x 2 = 128 B: 1,536 B per layer, 3,072 B for two layers."""
    assert _decode(tiny_model).total("kv_bytes") == 3_072


def test_tiny_decode_matrix_flops(tiny_model):
    """GEMMs: 2 x (2 x 36,864 + 16,384) = 180,224 FLOPs. Attention: 2 x 11 keys x 4 heads x
    (16 + 16) = 2,816 per layer, 5,632 total. Sum 185,856."""
    assert _decode(tiny_model).total("flops") == 185_856


def test_prefill_flops_near_two_per_param_per_token():
    m = load_model("llama-3-8b")
    g = build_graph(
        m,
        phase="prefill",
        batch=1,
        seq_len=512,
        context_len=0,
        parallelism=Parallelism(),
        quant=get_quant("bf16"),
    )
    non_embed = m.total_params() - m.vocab_size * m.hidden_size * 2
    gemm = 2 * non_embed * 512 + 2 * m.vocab_size * m.hidden_size  # LM head on the last token
    attention = g.total("flops") - gemm
    assert 0 < attention < 0.1 * gemm


def test_tp_shards_weights():
    m = load_model("llama-3.1-70b")
    one, eight = _decode(m, tp=1), _decode(m, tp=8)
    assert eight.total("weight_bytes") == pytest.approx(one.total("weight_bytes") / 8, rel=1e-3)
    assert (eight.kind == OpKind.ALLREDUCE).sum() == 2  # folded: two per layer
    assert eight.count[eight.kind == OpKind.ALLREDUCE].sum() == 2 * m.num_layers


def test_fp8_weights_never_more_bytes_than_bf16():
    m = load_model("llama-3-8b")
    assert _decode(m, quant="fp8").total("weight_bytes") <= _decode(m).total("weight_bytes")


def test_expand_preserves_totals():
    g = _decode(load_model("llama-2-7b"), batch=4)
    e = g.expand()
    assert len(e) > len(g)
    for col in ("flops", "weight_bytes", "kv_bytes", "act_bytes", "comm_bytes"):
        assert e.total(col) == pytest.approx(g.total(col))


def test_expected_distinct_experts():
    """One token with top-2 of 8 touches exactly 2; many tokens touch all 8; the uniform formula
    is E (1 - (1 - k/E)^T): T = 4 -> 8 (1 - 0.75^4) = 5.46875."""
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2.0)
    assert expected_distinct_experts(8, 2, 4) == pytest.approx(5.46875)
    assert expected_distinct_experts(8, 2, 10_000) == pytest.approx(8.0)
    assert expected_distinct_experts(256, 8, 16, skew=1.2) < expected_distinct_experts(256, 8, 16)


def test_moe_decode_reads_only_touched_experts():
    m = load_model("mixtral-8x7b")
    small, big = _decode(m, batch=1), _decode(m, batch=256)
    assert small.total("weight_bytes") < 0.4 * big.total("weight_bytes")


def test_mla_decode_absorbed():
    g = _decode(load_model("deepseek-v3"), batch=8, context=4096, tp=1, dp=8, ep=8)
    assert "q_absorb" in g.names and "kv_b_proj" not in g.names
    assert (g.kind == OpKind.ALLTOALL).sum() == 2  # dispatch + combine
    attn = np.array(g.names) == "attention_decode"
    # latent cache: 8 seqs x 4,097 tokens x 576 elements x 1 B (fp8 KV default is bf16 here)
    assert g.kv_bytes[attn][0] == pytest.approx(8 * 4097 * 576 * 2 + 8 * 576 * 2)


def test_pipeline_stages_and_sends():
    g = _decode(load_model("llama-3.1-70b"), pp=4)
    assert set(g.stage) == {0, 1, 2, 3}
    assert (g.kind == OpKind.P2P).sum() == 3


def test_bad_shapes_rejected(tiny_model):
    with pytest.raises(ValueError):
        _decode(tiny_model, batch=0)


def test_attention_never_runs_below_8_bits():
    """An NVFP4 checkpoint (FP4 activations) runs its GEMMs at FP4 but attention at FP8, as
    engines do (TRT-LLM's FP8 context FMHA); FP8 and BF16 models keep their own."""
    from workloads.ops import precision_code

    m = load_model("llama-3.1-8b")
    for quant, want in (("fp4", "fp8"), ("fp8", "fp8"), ("bf16", "bf16")):
        g = build_graph(m, phase="decode", batch=1, seq_len=1, context_len=100,
                        parallelism=Parallelism(), quant=get_quant(quant))  # fmt: skip
        attn = g.precision[g.kind == int(OpKind.ATTN_DECODE)]
        assert set(attn.tolist()) == {precision_code(want)}, quant
