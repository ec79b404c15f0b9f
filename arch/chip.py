"""Hardware as data: compute engines, memory levels, interconnects, chips and systems.

All quantities are SI (bytes, seconds, FLOP/s, watts, joules); the unit is in every field name.
Peak FLOP/s are **dense** (no structured sparsity). Interconnect bandwidth is **per chip, per
direction**, summed over the links of that fabric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PositiveInt,
    model_validator,
)

from arch.base import Frozen, Source

__all__ = [
    "FALLBACK",
    "PRECISIONS",
    "PRECISION_BITS",
    "SHAPE_FIELDS",
    "TOPOLOGY_AXES",
    "Chip",
    "ChipArrays",
    "ComputeEngine",
    "Interconnect",
    "MemoryLevel",
    "Precision",
    "System",
    "resolved_precisions",
    "shape_row",
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

# where a precision falls back when the matrix engine lacks it (next wider format first)
FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp6", "fp8", "int8", "bf16", "fp16"),
    "int4": ("int8", "fp8", "bf16", "fp16"),
    "fp6": ("fp8", "int8", "bf16", "fp16"),
    "fp8": ("int8", "bf16", "fp16"),
    "int8": ("fp8", "bf16", "fp16"),
    "bf16": ("fp16", "tf32", "fp32"),
    "fp16": ("bf16", "tf32", "fp32"),
    "tf32": ("bf16", "fp16", "fp32"),
    "fp32": ("tf32", "bf16", "fp16"),
}


def resolved_precisions(supported: np.ndarray) -> np.ndarray:
    """Index (into :data:`PRECISIONS`) of the precision each engine computes each precision at:
    itself if supported, else the first of its :data:`FALLBACK` chain that is; -1 if none.

    ``supported``: ``bool[n, len(PRECISIONS)]`` (many engines at once; one engine is a row)."""
    sup = np.atleast_2d(np.asarray(supported, dtype=bool))
    out = np.full(sup.shape, -1, dtype=np.int64)
    for i, p in enumerate(PRECISIONS):
        for alt in reversed((p, *FALLBACK[p])):  # the first supported one is written last
            j = PRECISIONS.index(alt)
            out[:, i] = np.where(sup[:, j], j, out[:, i])
    return out


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

    model_config = ConfigDict(allow_inf_nan=False)  # no infinite or NaN hardware figure

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

    model_config = ConfigDict(allow_inf_nan=False)

    name: str
    kind: Literal["sram", "cache", "hbm", "gddr", "lpddr", "ddr", "flash"]
    role: Literal["cache", "scratch", "main", "capacity"]
    capacity_bytes: float = Field(gt=0)
    bandwidth_bytes_per_s: float = Field(gt=0)
    latency_s: float = Field(ge=0)
    energy_j_per_byte: float = Field(ge=0)


def _parse_dims(value: Any) -> Any:
    """``"16x16"`` (how presets write a torus) or ``[16, 16]`` -> ``(16, 16)``."""
    if isinstance(value, str):
        try:
            return tuple(int(v) for v in value.lower().split("x"))
        except ValueError:
            raise ValueError(f"dims: write axis lengths as '16x16' (got {value!r})") from None
    return value


# axis lengths; dumped as "16x16" so a shape reads as one sourced value, not loose numbers
Dims = Annotated[
    tuple[PositiveInt, ...],
    BeforeValidator(_parse_dims),
    PlainSerializer(lambda t: "x".join(str(v) for v in t), return_type=str),
]
# axes of each topology that has them (ring: one closed axis; dragonfly: the local group)
TOPOLOGY_AXES: dict[str, int] = {"ring": 1, "torus2d": 2, "mesh2d": 2, "torus3d": 3}


class Interconnect(Frozen):
    """A fabric between chips: what is wired to what, and how fast.

    Bandwidth is **per chip, per direction**: ``bandwidth_bytes_per_s`` sums the chip's ``links``
    on this fabric, so one link carries ``bandwidth_bytes_per_s / links`` each way.

    * ``topology``: ``switch`` (every link goes to a switch; any pair of chips can use all of
      them: NVSwitch, Ethernet/InfiniBand), ``fully_connected`` (a direct link bundle to every
      other chip of the domain: AMD Infinity Fabric, Gaudi RoCE), ``dragonfly`` (fully connected
      local groups joined by global links: Groq C2C), ``ring``, ``torus2d``/``torus3d``
      (dimension-ordered rings with wrap links: TPU ICI), ``mesh2d`` (the same without wrap
      links: a wafer's dies, a torus slice too small to close its rings), ``none``.
    * ``links``: links per chip on this fabric (count).
    * ``links_per_peer``: links between one chip and one directly connected peer (count). None:
      derived -- switch: all ``links`` (the switch gives one pair the chip's full bandwidth);
      fully_connected: ``links // (domain_chips - 1)``; dragonfly: the same inside a local group;
      ring/torus/mesh: ``links / (2 x axes)``, the links spread evenly over the neighbours.
    * ``dims``: ring/torus/mesh: chips along each axis of the whole domain (product =
      ``domain_chips``; presets write ``"16x16"``); dragonfly: ``(chips per local group,)``.
      None: ring/torus/mesh: the most-square factorization of ``domain_chips`` (the one whose
      longest axis is shortest); dragonfly: the whole domain is one fully connected group. A
      group smaller than the domain takes the most-square factorization of its own size.
    * ``wrap_multiple``: ring/torus: an axis of a group has wrap links when its length is a
      multiple of this (TPU v4/v5p: 4, optical switches close every 4-chip cube edge into a ring).
      None: only a group that is the whole domain has them (TPU v5e/v6e: a 4x4 slice of a 16x16
      pod is a mesh). A mesh never has them.
    * ``global_links``: dragonfly: links per chip that leave its local group (count). None: the
      links the group does not use, ``links - (group - 1) x links_per_peer``.
    * ``latency_s``: one algorithm step between neighbours (software plus one hop); the chip
      family's fitted ``collective_step_latency_s`` replaces it.
    * ``hop_latency_s``: added for each further hop a message crosses (an intermediate chip or
      switch level). None: 0 (a switch step is one hop).
    * ``domain_chips``: the largest group of chips on this fabric.
    * ``in_network_reduction``: the switch reduces in flight (NVLS, SHARP, SwarmX).
    """

    model_config = ConfigDict(allow_inf_nan=False)

    name: str
    topology: Topology
    bandwidth_bytes_per_s: float = Field(ge=0, description="0: chips cannot talk (one chip)")
    links: int = Field(ge=0)
    links_per_peer: int | None = Field(default=None, ge=1)
    dims: Dims | None = None
    wrap_multiple: int | None = Field(default=None, ge=1)
    global_links: int | None = Field(default=None, ge=1)
    latency_s: float = Field(ge=0, description="one hop / one algorithm step")
    hop_latency_s: float | None = Field(default=None, ge=0)
    energy_j_per_byte: float = Field(ge=0)
    domain_chips: int = Field(ge=1, description="largest group of chips on this fabric")
    in_network_reduction: bool = False

    @model_validator(mode="after")
    def _check_wiring(self) -> Interconnect:
        for problem in _wiring_problems(self):
            raise ValueError(f"{self.name}: {problem}")
        return self


def _wiring_problems(f: Interconnect) -> list[str]:
    """What is inconsistent in a fabric's wiring fields (empty when nothing is)."""
    axes = TOPOLOGY_AXES.get(f.topology, 1 if f.topology == "dragonfly" else 0)
    out = []
    if f.dims is not None and not axes:
        out.append(f"dims: a {f.topology} fabric has no axes (ring, torus, mesh, dragonfly do)")
    elif f.dims is not None and len(f.dims) != axes:
        out.append(f"dims: {f.topology} takes {axes} axis length(s), got {len(f.dims)}")
    elif f.dims is not None and f.topology != "dragonfly" and math.prod(f.dims) != f.domain_chips:
        out.append(f"dims: {'x'.join(map(str, f.dims))} is not domain_chips = {f.domain_chips}")
    if f.wrap_multiple is not None and f.topology not in ("ring", "torus2d", "torus3d"):
        out.append("wrap_multiple: only a ring or torus has wrap links")
    if f.global_links is not None and f.topology != "dragonfly":
        out.append("global_links: only a dragonfly has them")
    used = _links_used(f)
    if used > f.links:
        out.append(f"links: the wiring uses {used} links per chip but the chip has {f.links}")
    if f.topology == "dragonfly" and f.dims and f.dims[0] < f.domain_chips:
        local = (f.dims[0] - 1) * (f.links_per_peer or max(1, f.links // max(f.dims[0] - 1, 1)))
        if (f.global_links or f.links - local) < 1:
            out.append("global_links: a dragonfly of several groups needs links between them")
    return out


def _links_used(f: Interconnect) -> int:
    """Links per chip the explicit wiring needs (0 where nothing explicit constrains it)."""
    per_peer = f.links_per_peer or 0
    if f.topology == "fully_connected":
        return per_peer * (f.domain_chips - 1)
    if f.topology == "dragonfly":
        group = f.dims[0] if f.dims else f.domain_chips
        return per_peer * (group - 1) + (f.global_links or 0)
    return per_peer if f.topology == "switch" else 0


class Chip(Frozen):
    """One accelerator package, as software addresses it."""

    model_config = ConfigDict(allow_inf_nan=False)

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
    price_usd: float | None = Field(default=None, ge=0)
    fused_layers: bool = Field(
        default=False,
        description="dataflow: a layer's ops run as one fused kernel, so the activations "
        "between them stay in the addressable on-chip SRAM (scratch), not main memory",
    )
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

    # plain properties, not cached: model_copy(update=...) copies an instance's cache and a copy
    # with other memory levels would keep reading the old ones
    @property
    def main_memory(self) -> MemoryLevel:
        return next(m for m in self.memory if m.role == "main")

    @property
    def capacity_tier(self) -> MemoryLevel | None:
        return next((m for m in self.memory if m.role == "capacity"), None)

    @property
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

    @model_validator(mode="after")
    def _connected(self) -> System:
        """Chips that must talk need a fabric that moves bytes (0 B/s would divide by zero)."""
        fabrics = [("scale_up", self.chip.scale_up)] if self.count > 1 else []
        if self.count > self.chip.scale_up.domain_chips and self.chip.scale_out is not None:
            fabrics.append(("scale_out", self.chip.scale_out))
        for key, f in fabrics:
            if f.bandwidth_bytes_per_s <= 0:
                raise ValueError(f"{key}.bandwidth_bytes_per_s is 0, so {self.count} chips "
                                 "cannot communicate; give a bandwidth > 0 or use 1 chip")
        return self

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


# the explicit wiring fields of an Interconnect, in the column order of ChipArrays.scale_up_shape
SHAPE_FIELDS = ("links_per_peer", "dim_x", "dim_y", "dim_z", "wrap_multiple", "global_links")


def shape_row(f: Interconnect) -> list[float]:
    """A fabric's explicit wiring as :data:`SHAPE_FIELDS` (0 where a field is None)."""
    dims = list(f.dims or ()) + [0] * 3
    return [float(f.links_per_peer or 0), *map(float, dims[:3]), float(f.wrap_multiple or 0),
            float(f.global_links or 0)]  # fmt: skip


@dataclass(frozen=True)
class ChipArrays:
    """What the cost kernels see of ``n`` chips, as columns (one chip is ``n = 1``).

    :meth:`of` reads a :class:`Chip`; the physical model (``arch.physical.design_arrays``) builds
    the same columns for many designs at once, and ``ChipDesign.to_chip`` builds its Chip from
    them, so a design swept in bulk and the same design run alone see identical numbers.
    Memory levels: ``main`` always exists; ``scratch`` and ``tier`` (capacity tier) have capacity
    0 where the chip has none. Peaks are native (0 where unsupported; fallback is resolved when
    packing, by :func:`resolved_precisions`).
    """

    peaks: np.ndarray  # [n, len(PRECISIONS)] dense matrix FLOP/s
    vector_peak: np.ndarray
    units: np.ndarray
    tile_rows: np.ndarray
    tile_cols: np.ndarray
    weight_stationary: np.ndarray
    matrix_j_per_flop: np.ndarray  # at 16-bit
    vector_j_per_flop: np.ndarray
    main_capacity: np.ndarray
    main_bandwidth: np.ndarray
    main_j_per_byte: np.ndarray
    scratch_capacity: np.ndarray
    scratch_bandwidth: np.ndarray
    scratch_j_per_byte: np.ndarray
    tier_capacity: np.ndarray
    tier_bandwidth: np.ndarray
    tier_j_per_byte: np.ndarray
    scale_up_bandwidth: np.ndarray
    scale_up_links: np.ndarray
    scale_up_domain: np.ndarray
    scale_up_topology: np.ndarray  # names (object array)
    idle_w: np.ndarray
    tdp_w: np.ndarray
    # [n, len(SHAPE_FIELDS)] explicit scale-up wiring, 0 where the chip leaves it to be derived
    # from topology, links and domain (kernels.pack resolves it); None (the physical model's
    # designs) means all derived
    scale_up_shape: np.ndarray | None = None
    # 1 where activations between ops stay in scratch SRAM (Chip.fused_layers); None: none do
    activations_on_chip: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scale_up_shape is None:
            zeros = np.zeros((len(self.tdp_w), len(SHAPE_FIELDS)))
            object.__setattr__(self, "scale_up_shape", zeros)
        if self.activations_on_chip is None:
            object.__setattr__(self, "activations_on_chip", np.zeros(len(self.tdp_w)))

    def __len__(self) -> int:
        return len(self.tdp_w)

    @classmethod
    def of(cls, chip: Chip) -> ChipArrays:
        def level(m: MemoryLevel | None) -> tuple[float, float, float]:
            return (m.capacity_bytes, m.bandwidth_bytes_per_s, m.energy_j_per_byte) if m else (
                0.0, 0.0, 0.0)  # fmt: skip

        main, scratch, tier = level(chip.main_memory), level(chip.scratch), level(
            chip.capacity_tier)  # fmt: skip
        col = lambda v: np.array([float(v)])  # noqa: E731
        return cls(
            peaks=np.array([[chip.matrix.peak(p) for p in PRECISIONS]]),
            vector_peak=col(max(chip.vector.peak_flops_per_s.values())),
            units=col(chip.matrix.units),
            tile_rows=col(chip.matrix.tile_rows),
            tile_cols=col(chip.matrix.tile_cols),
            weight_stationary=col(chip.matrix.dataflow == "weight_stationary"),
            matrix_j_per_flop=col(chip.matrix.energy_j_per_flop),
            vector_j_per_flop=col(chip.vector.energy_j_per_flop),
            main_capacity=col(main[0]), main_bandwidth=col(main[1]),
            main_j_per_byte=col(main[2]),
            scratch_capacity=col(scratch[0]), scratch_bandwidth=col(scratch[1]),
            scratch_j_per_byte=col(scratch[2]),
            tier_capacity=col(tier[0]), tier_bandwidth=col(tier[1]), tier_j_per_byte=col(tier[2]),
            scale_up_bandwidth=col(chip.scale_up.bandwidth_bytes_per_s),
            scale_up_links=col(chip.scale_up.links),
            scale_up_domain=col(chip.scale_up.domain_chips),
            scale_up_topology=np.array([chip.scale_up.topology], dtype=object),
            idle_w=col(chip.idle_w),
            tdp_w=col(chip.tdp_w),
            scale_up_shape=np.array([shape_row(chip.scale_up)]),
            activations_on_chip=col(chip.fused_layers and chip.scratch is not None),
        )  # fmt: skip
