"""What the commands share: the target flags and the flag-or-scenario-or-default rule."""

from __future__ import annotations

import argparse

from arch.base import ConfigError
from arch.engine import engine_names

__all__ = ["add_target", "degree", "degrees", "pick"]


def degree(text: str) -> int | str:
    """A parallel degree flag: a positive integer, or ``auto`` (chosen by the mapping search)."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive integer or 'auto'")
    return value


def add_target(p) -> None:
    """Flags naming what runs where: system, model, quantization, parallelism."""
    p.add_argument("--system", help="CHIP:N, e.g. h100-sxm:8 (or a chip TOML path :N)")
    p.add_argument("--model", help="model preset or TOML path")
    p.add_argument("--quant", help="bf16, fp16, fp8, int8, fp4, int4-awq")
    p.add_argument("--engine", help="serving engine: " + ", ".join(engine_names())
                   + " (default: the one the chip family is assumed to run)")  # fmt: skip
    p.add_argument("--moe-overlap", action="store_true",
                   help="MoE: overlap expert all-to-all with compute (two-batch overlap)")
    for flag in ("tp", "pp", "ep", "dp"):
        p.add_argument(
            f"--{flag}",
            type=degree,
            help=f"{flag.upper()} degree, or auto (default: omitted ones are chosen)",
        )


def degrees(args, par) -> dict[str, int | str]:
    """tp/pp/ep/dp: the flag, else the scenario file's ``[parallelism]``, else ``"auto"``."""
    return {k: pick(getattr(args, k), getattr(par, k), "auto") for k in ("tp", "pp", "ep", "dp")}


def pick(flag, file_value, default=None, name=""):
    """The flag if given, else the scenario file's value, else ``default``; required if none."""
    value = flag if flag is not None else file_value
    if value is None and default is None:
        raise ConfigError(f"--{name} is required (or set it in --scenario)")
    return default if value is None else value
