"""Hardware as data: compute engines, memory levels, interconnects, chips and systems.

All quantities are SI (bytes, seconds, FLOP/s, watts, joules); the unit is in every field name.
Peak FLOP/s are **dense** (no structured sparsity). Interconnect bandwidth is **per chip, per
direction**, summed over the links of that fabric.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, model_validator

from arch.base import Frozen, Source

__all__ = [
    "PRECISIONS",
    "PRECISION_BITS",
    "Chip",
    "ComputeEngine",
    "Interconnect",
    "MemoryLevel",
    "Precision",
    "System",
]

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4")
# storage bits of each precision (tf32 keeps 19 significant bits in a 32-bit container)
PRECISION_BITS: dict[str, int] = {
    "fp32": 32,
    "tf32": 19,
    "bf16": 16,
    "fp16": 16,
    "fp8": 8,
    "int8": 8,
    "fp6": 6,
    "fp4": 4,
    "int4": 4,
}

Topology = Literal[
    "switch", "ring", "torus2d", "torus3d", "mesh2d", "fully_connected", "dragonfly", "none"
]


class ComputeEngine(Frozen):
    """A class of compute units (matrix or vector) and the structure quantization needs.

    ``units`` is how many independent cores/SMs/PEs a kernel's tiles are spread over (wave
    quantization). ``tile_rows x tile_cols`` is the block one unit works on at a time (tile
    quantization pads GEMM dimensions up to multiples of it): for an ``output_stationary`` engine
    (GPU SMs) it tiles the output M x N; for a ``weight_stationary`` systolic array (TPU MXU, Groq
    MXM) it tiles the weight K x N while the token dimension M streams through unpadded.
    """

    peak_flops_per_s: dict[Precision, float]
    units: int = Field(ge=1)
    tile_rows: int = Field(default=1, ge=1)
    tile_cols: int = Field(default=1, ge=1)
    dataflow: Literal["output_stationary", "weight_stationary"] = "output_stationary"
    energy_j_per_flop: float = Field(ge=0.0, description="at 16-bit; scales with peak ratio")

    @model_validator(mode="after")
    def _positive_peaks(self) -> ComputeEngine:
        bad = [p for p, v in self.peak_flops_per_s.items() if v <= 0]
        if bad:
            raise ValueError(f"peak_flops_per_s must be > 0 (got {bad})")
        return self

    def peak(self, precision: str) -> float:
        """Dense peak at ``precision``; 0.0 when the engine does not support it."""
        return self.peak_flops_per_s.get(precision, 0.0)  # type: ignore[call-overload]

    def energy_per_flop(self, precision: str) -> float:
        """J/FLOP at a precision: same power at the higher rate (16-bit reference)."""
        ref = self.peak_flops_per_s.get("bf16") or self.peak_flops_per_s.get("fp16")
        peak = self.peak(precision)
        if not ref or not peak:
            return self.energy_j_per_flop
        return self.energy_j_per_flop * ref / peak


class MemoryLevel(Frozen):
    """One level of the memory hierarchy.

    ``role``: ``cache`` is transparent (a GPU L2: nothing is placed in it); ``scratch`` is
    addressable on-chip SRAM that holds the weights when they fit (SambaNova PMUs, Gaudi SRAM);
    ``main`` is where weights, KV cache and activations live by default (HBM, or the SRAM of an
    SRAM-only chip); ``capacity`` is a slower, larger tier weights stream from when they do not fit
    (Cerebras MemoryX, SambaNova DDR, Grace LPDDR).
    """

    name: str
    kind: Literal["sram", "cache", "hbm", "gddr", "lpddr", "ddr", "flash"]
    role: Literal["cache", "scratch", "main", "capacity"]
    capacity_bytes: float = Field(gt=0)
    bandwidth_bytes_per_s: float = Field(gt=0)
    latency_s: float = Field(ge=0)
    energy_j_per_byte: float = Field(ge=0)


class Interconnect(Frozen):
    """A fabric between chips: per-chip, per-direction bandwidth over all of its links."""

    name: str
    topology: Topology
    bandwidth_bytes_per_s: float = Field(ge=0)
    links: int = Field(ge=0)
    latency_s: float = Field(ge=0, description="one hop / one algorithm step")
    energy_j_per_byte: float = Field(ge=0)
    domain_chips: int = Field(ge=1, description="largest group of chips on this fabric")
    in_network_reduction: bool = False


class Chip(Frozen):
    """One accelerator package, as software addresses it."""

    name: str
    display_name: str
    vendor: str
    family: str
    year: int
    process_node: str
    die_area_mm2: float | None = None
    matrix: ComputeEngine
    vector: ComputeEngine
    memory: tuple[MemoryLevel, ...] = Field(min_length=1, description="fastest first")
    scale_up: Interconnect
    scale_out: Interconnect | None = None
    tdp_w: float = Field(gt=0)
    idle_w: float = Field(ge=0)
    price_usd: float | None = None
    sources: dict[str, Source] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _check(self) -> Chip:
        if not any(m.role == "main" for m in self.memory):
            raise ValueError("memory: one level must have role 'main'")
        bws = [m.bandwidth_bytes_per_s for m in self.memory]
        if bws != sorted(bws, reverse=True):
            raise ValueError("memory: levels must be listed fastest first")
        if self.idle_w >= self.tdp_w:
            raise ValueError("idle_w must be below tdp_w")
        return self

    @cached_property
    def main_memory(self) -> MemoryLevel:
        return next(m for m in self.memory if m.role == "main")

    @cached_property
    def capacity_tier(self) -> MemoryLevel | None:
        return next((m for m in self.memory if m.role == "capacity"), None)

    @cached_property
    def scratch(self) -> MemoryLevel | None:
        """Addressable on-chip SRAM that holds the weights when they fit (not a cache)."""
        return next((m for m in self.memory if m.role == "scratch"), None)

    @property
    def sram_only(self) -> bool:
        return self.main_memory.kind == "sram"

    def supports(self, precision: str) -> bool:
        return self.matrix.peak(precision) > 0


class System(Frozen):
    """``count`` chips on the chip's standard fabric: scale-up inside a domain, scale-out
    across."""

    chip: Chip
    count: int = Field(ge=1)

    @property
    def name(self) -> str:
        return f"{self.chip.name}:{self.count}"

    @property
    def domain_chips(self) -> int:
        return min(self.count, self.chip.scale_up.domain_chips)

    def fabric_for(self, group: int) -> Interconnect:
        """The fabric a collective over ``group`` chips runs on."""
        if group <= self.chip.scale_up.domain_chips or self.chip.scale_out is None:
            return self.chip.scale_up
        return self.chip.scale_out
