"""One formatter for every number a person reads: :func:`human` (value, unit) -> ``"989 TFLOP/s"``,
``"3.35 TB/s"``, ``"80 GB"``, ``"40.2 ms"``, ``"500 B tokens/day"``; :func:`percent` (a share)
-> ``"42 %"``, never ``"-0 %"``.

Rules: three significant digits by default (``digits``), no exponent notation and no float
tails (``2.0000000000000002e-07`` s reads ``200 ns``); SI prefixes on physical units (FLOP/s,
FLOP, B/s, B, W, J, s, Hz and the per-unit energies J/FLOP and J/B, which also take the small
prefixes m, µ, n, p); other units (tokens, params, requests, tokens/day, or none) are counts and
take word scales: k, M, B (billion), T. JSON keeps the raw SI numbers; this is for tables only.
"""

from __future__ import annotations

import math

__all__ = ["field_unit", "human", "percent"]

_BIG = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_SMALL = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))
_COUNT = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
# physical units: large prefixes; those marked also small ones (0.3 pJ/FLOP, 40 ms)
_SI = {"FLOP/s": True, "FLOP": False, "B/s": False, "B": False, "W": True, "J": True,
       "s": True, "Hz": False, "J/FLOP": True, "J/B": True}  # fmt: skip


def _digits(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits, fixed point, trailing zeros dropped."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _scaled(value: float, table) -> tuple[float, str]:
    for factor, prefix in table:
        if abs(value) >= factor * (1 - 5e-4):  # 999.96 k reads 1 M, not 1,000 k
            return value / factor, prefix
    return value, ""


def human(value: float | None, unit: str = "", *, digits: int = 3) -> str:
    """``value`` (SI, unprefixed) with a prefix and ``unit``: ``human(1.6384e14, "FLOP/s")`` ->
    ``"164 TFLOP/s"``, ``human(2e-7, "s")`` -> ``"200 ns"``, ``human(5e11, "tokens/day")`` ->
    ``"500 B tokens/day"``; ``unit="%"``: a fraction as a percentage (:func:`percent`);
    ``unit="$"``: dollars with thousands separators. ``None`` reads ``-``."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return "unlimited" if value > 0 else "-" if math.isnan(value) else "-unlimited"
    if unit == "%":
        return percent(value)
    if unit == "$":
        return f"${value:,.0f}" if abs(value) >= 100 else f"${_digits(value, digits)}"
    if unit == "mm²":
        return f"{_digits(value, digits) if abs(value) < 1000 else f'{value:,.0f}'} mm²"
    if unit in _SI:
        table = _BIG + (_SMALL if _SI[unit] and abs(value) < 1 else ())
        mant, prefix = _scaled(value, table) if value else (0.0, "")
        return f"{_digits(mant, digits)} {prefix}{unit}"
    mant, prefix = _scaled(value, _COUNT) if abs(value) >= 1e4 else (value, "")
    number = _digits(mant, digits) if prefix or not value.is_integer() else f"{value:,.0f}"
    return " ".join(p for p in (number, prefix, unit) if p)


def percent(fraction: float | None, *, decimals: int = 0) -> str:
    """A share (0.42) as ``"42 %"``; a share that rounds to zero reads ``"0 %"`` (never
    ``"-0 %"``)."""
    if fraction is None or not math.isfinite(fraction):
        return "-"
    text = f"{100 * fraction:.{decimals}f}"
    if float(text) == 0:
        text = f"{0:.{decimals}f}"
    return f"{text} %"


# a preset field's unit from its name (the SI-units-in-the-name convention)
_SUFFIXES = (
    ("flops_per_s", "FLOP/s"), ("bytes_per_s", "B/s"), ("j_per_flop", "J/FLOP"),
    ("j_per_byte", "J/B"), ("bytes", "B"), ("_s", "s"), ("_w", "W"), ("_usd", "$"),
    ("_mm2", "mm²"), ("params", "params"),
)  # fmt: skip


def field_unit(path: str) -> str | None:
    """The unit a preset field's dotted path names (``memory.0.bandwidth_bytes_per_s`` ->
    ``"B/s"``, ``matrix.peak_flops_per_s.fp8`` -> ``"FLOP/s"``), or None when it names none."""
    for part in reversed(path.split(".")):
        for suffix, unit in _SUFFIXES:
            if part.endswith(suffix):
                return unit
    return None
