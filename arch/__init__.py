"""Hardware as validated, sourced data: chips, memory, interconnects, systems, efficiency."""

from arch.base import ConfigError, Source
from arch.chip import Chip, ChipArrays, ComputeEngine, Interconnect, MemoryLevel, System
from arch.efficiency import FamilyEfficiency, efficiency_for
from arch.presets import chip_names, load_chip, parse_system

__all__ = [
    "Chip",
    "ChipArrays",
    "ComputeEngine",
    "ConfigError",
    "FamilyEfficiency",
    "Interconnect",
    "MemoryLevel",
    "Source",
    "System",
    "chip_names",
    "efficiency_for",
    "load_chip",
    "parse_system",
]
