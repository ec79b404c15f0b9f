"""Number formats and quantization schemes.

A :class:`NumberFormat` says how many bytes one element costs in memory (element bits plus the
amortized block-scale bits) and which precision a matrix engine computes it at. A
:class:`QuantSpec`
gives weights, activations and KV cache each their own format. Weight-only formats (``int4-awq``)
compute at the activation precision and pay a dequantization pass on the vector units.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from arch.base import ConfigError, Frozen, closest
from arch.chip import PRECISION_BITS

__all__ = ["FORMATS", "QUANT_PRESETS", "NumberFormat", "QuantSpec", "get_quant"]


class NumberFormat(Frozen):
    """Storage and compute of one tensor class.

    ``bits`` per element plus ``scale_bits`` per ``block_size`` elements (0 = per-tensor scale,
    negligible). ``compute`` is the precision the matrix engine runs at for this format.
    """

    name: str
    bits: float = Field(gt=0)
    block_size: int = Field(default=0, ge=0)
    scale_bits: float = Field(default=0.0, ge=0)
    compute: Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4"]
    weight_only: bool = False

    @property
    def bytes_per_element(self) -> float:
        scale = self.scale_bits / self.block_size if self.block_size else 0.0
        return (self.bits + scale) / 8.0


# Block-scale layouts: OCP MX spec v1.0 (MXFP4/MXFP6: 32-element blocks, 8-bit E8M0 scale);
# NVIDIA NVFP4 (16-element blocks, FP8 E4M3 scale); DeepSeek-V3 FP8 (128x128 weight blocks with an
# FP32 scale, arXiv 2412.19437 sec. 3.3); AWQ (group 128, FP16 scale + 4-bit zero point).
FORMATS: dict[str, NumberFormat] = {
    f.name: f
    for f in [
        NumberFormat(name="fp32", bits=32, compute="fp32"),
        NumberFormat(name="bf16", bits=16, compute="bf16"),
        NumberFormat(name="fp16", bits=16, compute="fp16"),
        NumberFormat(name="fp8", bits=8, compute="fp8"),
        NumberFormat(name="fp8-block", bits=8, block_size=128 * 128, scale_bits=32, compute="fp8"),
        NumberFormat(name="int8", bits=8, compute="int8"),
        NumberFormat(name="mxfp6", bits=6, block_size=32, scale_bits=8, compute="fp6"),
        NumberFormat(name="mxfp4", bits=4, block_size=32, scale_bits=8, compute="fp4"),
        NumberFormat(name="nvfp4", bits=4, block_size=16, scale_bits=8, compute="fp4"),
        NumberFormat(
            name="int4-awq",
            bits=4,
            block_size=128,
            scale_bits=20,
            compute="fp16",
            weight_only=True,
        ),
    ]
}


class QuantSpec(Frozen):
    """Formats for weights, activations and KV cache (names from :data:`FORMATS`)."""

    name: str = "custom"
    weights: str
    activations: str
    kv_cache: str

    @model_validator(mode="after")
    def _known(self) -> QuantSpec:
        for role in ("weights", "activations", "kv_cache"):
            fmt = getattr(self, role)
            if fmt not in FORMATS:
                raise ValueError(f"{role}: unknown format {fmt!r}; {closest(fmt, list(FORMATS))}")
        return self

    @property
    def w(self) -> NumberFormat:
        return FORMATS[self.weights]

    @property
    def a(self) -> NumberFormat:
        return FORMATS[self.activations]

    @property
    def kv(self) -> NumberFormat:
        return FORMATS[self.kv_cache]

    @property
    def gemm_precision(self) -> str:
        """Precision GEMMs run at: the activation format's (weight-only formats dequantize)."""
        if self.w.weight_only:
            return self.a.compute
        return max((self.w.compute, self.a.compute), key=lambda p: PRECISION_BITS[p])


# The --quant presets. "fp8" and "fp4" keep an FP8 KV cache, as the MLPerf closed submissions in
# the validation data (explore/validation/data) do (NVIDIA calibration.md: FP8 KV; FP4 weights
# with FP8 KV).
QUANT_PRESETS: dict[str, QuantSpec] = {
    "bf16": QuantSpec(name="bf16", weights="bf16", activations="bf16", kv_cache="bf16"),
    "fp16": QuantSpec(name="fp16", weights="fp16", activations="fp16", kv_cache="fp16"),
    "fp8": QuantSpec(name="fp8", weights="fp8", activations="fp8", kv_cache="fp8"),
    "int8": QuantSpec(name="int8", weights="int8", activations="int8", kv_cache="int8"),
    "fp4": QuantSpec(name="fp4", weights="nvfp4", activations="nvfp4", kv_cache="fp8"),
    "int4-awq": QuantSpec(
        name="int4-awq", weights="int4-awq", activations="fp16", kv_cache="fp16"
    ),
}


def get_quant(name: str) -> QuantSpec:
    if name not in QUANT_PRESETS:
        raise ConfigError(f"unknown --quant {name!r}; {closest(name, list(QUANT_PRESETS))}")
    return QUANT_PRESETS[name]
