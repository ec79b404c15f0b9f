"""Unit strings at the edge, SI floats inside.

Preset and scenario files may write ``"3.35 TB/s"`` or ``"50 MiB"``; everything inside xpusim is a
plain float in SI base units, and the unit lives in the field name (``bandwidth_bytes_per_s``).
:func:`parse_quantity` is the one place where text becomes a number, and it checks that the unit
written matches the dimension the field name promises.

Decimal prefixes (k, M, G, T, P) are powers of 1000; binary prefixes (Ki, Mi, Gi, Ti) are powers
of 1024, as vendors use them (HBM bandwidth in decimal TB/s, some capacities in GiB).
"""

from __future__ import annotations

import re

__all__ = ["UnitError", "dimension_of_field", "parse_field_value", "parse_quantity"]


class UnitError(ValueError):
    """A unit string that cannot be parsed or does not match its field."""


_PREFIX = {
    "": 1.0,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}

# base unit symbol -> (dimension, multiplier to SI)
_BASE = {
    "B": ("bytes", 1.0),
    "b": ("bytes", 0.125),  # bits
    "B/s": ("bytes_per_s", 1.0),
    "b/s": ("bytes_per_s", 0.125),
    "bps": ("bytes_per_s", 0.125),
    "FLOP/s": ("flops_per_s", 1.0),
    "FLOPS": ("flops_per_s", 1.0),
    "OP/s": ("flops_per_s", 1.0),
    "OPS": ("flops_per_s", 1.0),
    "s": ("s", 1.0),
    "W": ("w", 1.0),
    "J/B": ("j_per_byte", 1.0),
    "J/b": ("j_per_byte", 8.0),
    "J/FLOP": ("j_per_flop", 1.0),
    "Hz": ("hz", 1.0),
    "mm2": ("mm2", 1.0),
    "USD": ("usd", 1.0),
    "$": ("usd", 1.0),
}

# field-name suffix -> dimension (longest suffix first)
_SUFFIX = [
    ("_flops_per_s", "flops_per_s"),
    ("_bytes_per_s", "bytes_per_s"),
    ("_j_per_byte", "j_per_byte"),
    ("_j_per_flop", "j_per_flop"),
    ("_bytes", "bytes"),
    ("_mm2", "mm2"),
    ("_usd", "usd"),
    ("_hz", "hz"),
    ("_s", "s"),
    ("_w", "w"),
]

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def dimension_of_field(field: str) -> str | None:
    """The physical dimension a field name promises, or None for dimensionless fields."""
    for suffix, dim in _SUFFIX:
        if field.endswith(suffix):
            return dim
    return None


def _split_unit(unit: str) -> tuple[float, str]:
    if unit in _BASE:
        return 1.0, unit
    for prefix in sorted(_PREFIX, key=len, reverse=True):
        if prefix and unit.startswith(prefix) and unit[len(prefix) :] in _BASE:
            return _PREFIX[prefix], unit[len(prefix) :]
    raise UnitError(f"unknown unit {unit!r}")


def parse_quantity(value: object, field: str = "") -> float:
    """Return ``value`` in SI units for ``field``.

    Numbers pass through unchanged (they are taken as already SI). Strings are ``"<number>
    <unit>"``;
    the unit's dimension must match the field's suffix, e.g. ``"3.35 TB/s"`` for
    ``bandwidth_bytes_per_s``.
    """
    if isinstance(value, bool):
        raise UnitError(f"{field}: expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"{field}: expected a number or a '<number> <unit>' string")
    match = _NUMBER.match(value)
    if not match:
        raise UnitError(f"{field}: cannot read {value!r} as '<number> <unit>'")
    number, unit = float(match.group(1)), match.group(2)
    want = dimension_of_field(field)
    if not unit:
        return number
    if unit == "%" and want is None:
        return number / 100.0
    scale, base = _split_unit(unit)
    dim, mult = _BASE[base]
    if want is not None and dim != want:
        raise UnitError(f"{field}: unit {unit!r} is {dim}, field expects {want}")
    return number * scale * mult


def parse_field_value(value: object, field: str) -> object:
    """``value`` for ``field``: a unit string parsed to SI when the field's name carries a unit
    (``clock_hz``, ``sram_bytes``...), anything else unchanged."""
    if isinstance(value, str) and dimension_of_field(field) is not None:
        return parse_quantity(value, field)
    return value
