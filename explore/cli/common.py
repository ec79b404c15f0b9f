"""What the commands share: the target flags and the flag-or-scenario-or-default rule."""

from __future__ import annotations

from arch.base import ConfigError

__all__ = ["add_target", "pick"]


def add_target(p) -> None:
    """Flags naming what runs where: system, model, quantization, parallelism."""
    p.add_argument("--system", help="CHIP:N, e.g. h100-sxm:8 (or a chip TOML path :N)")
    p.add_argument("--model", help="model preset or TOML path")
    p.add_argument("--quant", help="bf16, fp16, fp8, int8, fp4, int4-awq")
    for flag in ("tp", "pp", "ep", "dp"):
        p.add_argument(f"--{flag}", type=int, help=f"{flag.upper()} degree (default 1)")


def pick(flag, file_value, default=None, name=""):
    """The flag if given, else the scenario file's value, else ``default``; required if none."""
    value = flag if flag is not None else file_value
    if value is None and default is None:
        raise ConfigError(f"--{name} is required (or set it in --scenario)")
    return default if value is None else value
