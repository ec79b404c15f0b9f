"""The one seam between pydantic configs and the Numba kernels: pack objects into arrays.

:func:`pack_design` resolves everything chip-specific once (precision fallback, where weights are
read from, which fabric, which efficiency factors) so the kernels see plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arch.chip import PRECISION_BITS, PRECISIONS, Chip, System
from arch.efficiency import FamilyEfficiency
from kernels import layout as L
from workloads.capacity import MemoryPlan
from workloads.ops import OpGraph

__all__ = ["PackedOps", "pack_design", "pack_ops", "resolve_precision"]

# where a precision falls back when the matrix engine lacks it (next wider format first)
FALLBACK = {
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


def resolve_precision(chip: Chip, precision: str) -> str:
    """The precision the chip computes ``precision`` at (itself, or the nearest wider it has)."""
    if chip.matrix.peak(precision) > 0:
        return precision
    for alt in FALLBACK[precision]:
        if chip.matrix.peak(alt) > 0:
            return alt
    raise ValueError(f"{chip.name} supports none of {precision} or its fallbacks")


@dataclass(frozen=True)
class PackedOps:
    """Kernel arguments for an OpGraph (same order as the kernels' parameters)."""

    args: tuple
    count: np.ndarray
    stage: np.ndarray
    n_stages: int


def pack_ops(graph: OpGraph, chip: Chip) -> PackedOps:
    prec = np.array(
        [PRECISIONS.index(resolve_precision(chip, PRECISIONS[p])) for p in graph.precision],
        dtype=np.int64,
    )
    low = np.array([PRECISION_BITS[PRECISIONS[p]] < 16 for p in prec], dtype=np.bool_)
    args = (
        graph.kind,
        graph.m,
        graph.n,
        graph.k,
        graph.groups,
        graph.flops,
        graph.vflops,
        prec,
        low,
        graph.weight_bytes,
        graph.kv_bytes,
        graph.act_bytes,
        graph.comm_bytes,
        graph.group,
        graph.kernels,
    )
    n_stages = int(graph.stage.max()) + 1 if len(graph) else 1
    return PackedOps(args=args, count=graph.count, stage=graph.stage, n_stages=n_stages)


def _level_bw_energy(chip: Chip, plan: MemoryPlan | None) -> tuple[float, float]:
    if plan is None or plan.weights_in == "main":
        lvl = chip.main_memory
    elif plan.weights_in == "scratch":
        lvl = chip.scratch or chip.main_memory
    else:
        lvl = chip.capacity_tier or chip.main_memory
    return lvl.bandwidth_bytes_per_s, lvl.energy_j_per_byte


def pack_design(
    system: System,
    eff: FamilyEfficiency,
    plan: MemoryPlan | None = None,
    *,
    direct_collectives: bool = True,
) -> np.ndarray:
    """One design row (``layout.N_DESIGN`` floats) for a system, its efficiency and memory plan."""
    chip = system.chip
    d = np.zeros(L.N_DESIGN)
    for i, p in enumerate(PRECISIONS):
        try:
            d[L.PEAK0 + i] = chip.matrix.peak(resolve_precision(chip, p))
        except ValueError:
            d[L.PEAK0 + i] = chip.vector.peak("fp32")
    d[L.VPEAK] = max(chip.vector.peak_flops_per_s.values())
    d[L.UNITS], d[L.TILE_R], d[L.TILE_C] = (
        chip.matrix.units,
        chip.matrix.tile_rows,
        chip.matrix.tile_cols,
    )
    d[L.WEIGHT_STATIONARY] = chip.matrix.dataflow == "weight_stationary"
    main = chip.main_memory
    d[L.BW_WEIGHTS], d[L.E_WEIGHTS] = _level_bw_energy(chip, plan)
    d[L.BW_KV] = d[L.BW_ACT] = main.bandwidth_bytes_per_s
    d[L.E_KV] = d[L.E_ACT] = main.energy_j_per_byte
    for col, name in (
        (L.EFF_GEMM16, "gemm_16bit"),
        (L.EFF_GEMM8, "gemm_8bit"),
        (L.EFF_ATTN, "attention"),
        (L.EFF_MEM, "memory"),
        (L.ROOFLINE_P, "roofline_exponent"),
        (L.KERNEL_OVH, "kernel_overhead_s"),
        (L.EFF_BUS, "collective_bus"),
        (L.EFF_INR, "collective_in_network"),
    ):
        d[col] = eff.value(name)
    _pack_fabrics(d, system, eff)
    d[L.DIRECT_ALGOS] = direct_collectives
    d[L.E_FLOP16] = chip.matrix.energy_j_per_flop
    d[L.PEAK16] = chip.matrix.peak(resolve_precision(chip, "bf16"))
    d[L.E_VFLOP] = chip.vector.energy_j_per_flop
    d[L.E_LINK] = chip.scale_up.energy_j_per_byte
    d[L.IDLE_W], d[L.TDP_W] = chip.idle_w, chip.tdp_w
    return d


def _pack_fabrics(d: np.ndarray, system: System, eff: FamilyEfficiency) -> None:
    up, out = system.chip.scale_up, system.chip.scale_out or system.chip.scale_up
    step = eff.collective_step_latency_s
    d[L.UP_BW], d[L.UP_TOPO], d[L.UP_LINKS] = (
        up.bandwidth_bytes_per_s,
        L.TOPOLOGY_CODES[up.topology],
        up.links,
    )
    d[L.UP_LAT] = step.value if step.source in ("fitted", "user") else up.latency_s
    d[L.UP_INR] = up.in_network_reduction
    d[L.UP_DOMAIN] = up.domain_chips
    d[L.OUT_BW], d[L.OUT_TOPO], d[L.OUT_LINKS] = (
        out.bandwidth_bytes_per_s,
        L.TOPOLOGY_CODES[out.topology],
        out.links,
    )
    d[L.OUT_LAT] = out.latency_s
