"""Model presets: shapes reproduce the published parameter totals."""

import pytest

from arch.base import ConfigError
from workloads.presets import load_model, model_names

CONTRACT_MODELS = {
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.3-70b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gpt-j-6b",
    "tiny",
}


def test_contract_models_exist():
    assert set(model_names()) >= CONTRACT_MODELS


@pytest.mark.parametrize("name", sorted(set(model_names())))
def test_param_count_matches_published_total(name):
    """Published totals are 3-significant-figure figures (HF safetensors counts, papers), so
    0.5 % covers their rounding; a wrong GEMM shape or a missing block is off by far more."""
    m = load_model(name)
    assert m.total_params() == pytest.approx(m.published_params, rel=5e-3)
    assert "published_params" in m.sources


@pytest.mark.parametrize(("name", "rel"), [("mixtral-8x7b", 0.01), ("deepseek-v3", 0.02)])
def test_active_params_match_published(name, rel):
    """Mixtral: 12.9B used per token; DeepSeek-V3: 37B activated (tech report abstract; our
    count, 37.5B, includes the embeddings and LM head the report may leave out)."""
    m = load_model(name)
    assert m.total_params(active=True) == pytest.approx(m.published_active_params, rel=rel)


def test_tiny_model_hand_count(tiny_model):
    """hidden 64, 2 layers, 4 heads / 2 KV heads of 16, SwiGLU 128, vocab 256, untied:
    per layer qkv 64*(4+2+2)*16 = 8,192; o 64*64 = 4,096; gate_up 64*256 = 16,384;
    down 128*64 = 8,192; 2 RMSNorms 128 -> 36,992. Two layers 73,984; embedding and LM head
    2*256*64 = 32,768; final norm 64. Total 106,816."""
    assert tiny_model.total_params() == 106_816


def test_llama2_7b_exact():
    """32 x (4*4096^2 + 3*4096*11008 + 2*4096) + 2*32000*4096 + 4096 = 6,738,415,616."""
    assert load_model("llama-2-7b").total_params() == 6_738_415_616


def test_kv_elements_per_token():
    """Llama-3.1-70B: 2 x 8 KV heads x 128 = 2,048 elements per token per layer; DeepSeek-V3 MLA
    caches the 512 latent + 64 RoPE dims = 576."""
    assert load_model("llama-3.1-70b").kv_elements_per_token_per_layer() == 2048
    assert load_model("deepseek-v3").kv_elements_per_token_per_layer() == 576


def test_unknown_model():
    with pytest.raises(ConfigError, match=r"closest: llama-3\.1-8b"):
        load_model("llama-3.1-8")
