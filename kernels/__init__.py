"""Numba cost kernels (arrays in, arrays out) and the seam that packs configs into arrays."""

from kernels.cost import collective_time, op_costs, stage_totals, tile_wave_util
from kernels.pack import base_row, pack_design, pack_ops, pack_rows, resolve_precision

__all__ = [
    "base_row",
    "collective_time",
    "op_costs",
    "pack_design",
    "pack_ops",
    "pack_rows",
    "resolve_precision",
    "stage_totals",
    "tile_wave_util",
]
