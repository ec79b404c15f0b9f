import pytest

from arch.base import ConfigError
from workloads.quant import FORMATS, QUANT_PRESETS, QuantSpec, get_quant


def test_block_scaled_bytes():
    """NVFP4: 4 bits + an 8-bit scale per 16 = 4.5 bits; MXFP4: 4 + 8/32 = 4.25 bits;
    AWQ int4: 4 + (16-bit scale + 4-bit zero)/128 = 4.15625 bits."""
    assert FORMATS["nvfp4"].bytes_per_element == pytest.approx(4.5 / 8)
    assert FORMATS["mxfp4"].bytes_per_element == pytest.approx(4.25 / 8)
    assert FORMATS["int4-awq"].bytes_per_element == pytest.approx(4.15625 / 8)


def test_narrower_weights_never_more_bytes():
    order = ["bf16", "fp8", "int4-awq", "nvfp4"]
    sizes = [
        get_quant(q if q != "nvfp4" else "fp4").w.bytes_per_element
        for q in ["bf16", "fp8", "int4-awq", "fp4"]
    ]
    assert sizes[0] >= sizes[1] >= min(sizes[2:]), order


def test_weight_only_computes_at_activation_precision():
    assert get_quant("int4-awq").gemm_precision == "fp16"
    assert get_quant("fp8").gemm_precision == "fp8"
    assert QuantSpec(weights="nvfp4", activations="fp8", kv_cache="fp8").gemm_precision == "fp8"


def test_presets_are_the_contract():
    assert set(QUANT_PRESETS) == {"bf16", "fp16", "fp8", "int8", "fp4", "int4-awq"}


def test_unknown_format_and_preset():
    with pytest.raises(ValueError, match="weights: unknown format"):
        QuantSpec(weights="fp7", activations="bf16", kv_cache="bf16")
    with pytest.raises(ConfigError, match="closest: fp8"):
        get_quant("fp9")
