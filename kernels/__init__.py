"""Numba cost kernels (arrays in, arrays out) and the seam that packs configs into arrays."""

from kernels.cost import collective_time, op_costs, stage_totals, tile_wave_util
from kernels.pack import pack_design, pack_ops, resolve_precision

__all__ = [
    "collective_time",
    "op_costs",
    "pack_design",
    "pack_ops",
    "resolve_precision",
    "stage_totals",
    "tile_wave_util",
]
