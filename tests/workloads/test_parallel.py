import pytest

from arch.base import ConfigError
from workloads.model import GQAAttention
from workloads.parallel import Parallelism
from workloads.presets import load_model


def test_tp_must_divide_or_replicate_kv_heads():
    m = load_model("llama-3.1-70b")  # 64 heads, 8 KV heads
    Parallelism(tp=8).validate_for(m, 8)
    Parallelism(tp=16).validate_for(m, 16)  # KV heads replicated twice
    with pytest.raises(ConfigError, match=r"does not divide llama-3\.1-70b's 64 heads"):
        Parallelism(tp=3).validate_for(m, 3)
    odd = load_model("tiny").model_copy(
        update={"attention": GQAAttention(num_heads=12, num_kv_heads=4, head_dim=16)}
    )
    with pytest.raises(ConfigError, match="neither divides nor is a multiple of tiny's 4 KV"):
        Parallelism(tp=6).validate_for(odd, 6)  # 6 divides 12 heads but not 4 KV heads


def test_ep_must_divide_experts():
    with pytest.raises(ConfigError, match="does not divide mixtral-8x7b's 8 experts"):
        Parallelism(tp=1, dp=3, ep=3).validate_for(load_model("mixtral-8x7b"), 3)
    with pytest.raises(ConfigError, match="has no experts"):
        Parallelism(tp=2, ep=2).validate_for(load_model("llama-3-8b"), 2)


def test_chip_count_must_match():
    with pytest.raises(ConfigError, match="must equal the system's 8 chips"):
        Parallelism(tp=2, dp=2).validate_for(load_model("llama-3-8b"), 8)


def test_attention_dp():
    p = Parallelism(tp=1, dp=8, ep=8)
    p.validate_for(load_model("deepseek-v3"), 8)
    assert p.attention_dp and p.expert_tp == 1
    assert Parallelism(tp=8, ep=2).expert_tp == 4
