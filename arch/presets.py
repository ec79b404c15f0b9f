"""Load chip presets (TOML, every number sourced) and user chip files; parse ``CHIP:N``."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from pydantic import ValidationError

from arch.base import ConfigError, closest, format_validation_error, load_toml, split_sources
from arch.chip import Chip, System

__all__ = ["CHIP_DIR", "chip_names", "load_chip", "load_chip_file", "parse_system"]

CHIP_DIR = Path(__file__).parent / "presets" / "chips"


def chip_names() -> list[str]:
    return sorted(p.stem for p in CHIP_DIR.glob("*.toml") if not p.stem.startswith("_"))


@lru_cache(maxsize=1)
def _common_refs() -> dict[str, str]:
    return load_toml(CHIP_DIR / "_common_refs.toml")["refs"]


def load_chip_file(path: Path, *, strict: bool = True) -> Chip:
    """Build a Chip from a TOML file. ``strict``: every number must carry a source."""
    raw = load_toml(path)
    refs = {**_common_refs(), **raw.pop("refs", {})}
    try:
        values, sources = split_sources(raw, refs=refs, strict=strict)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return Chip(**values, sources=sources)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


@cache
def load_chip(name: str) -> Chip:
    """A preset chip by name, or a path to a chip TOML file."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return load_chip_file(path, strict=False)
    preset = CHIP_DIR / f"{name}.toml"
    if name.startswith("_") or not preset.exists():
        raise ConfigError(f"unknown chip {name!r}; {closest(name, chip_names())}")
    return load_chip_file(preset)


def parse_system(text: str) -> System:
    """``CHIP:N`` -> System of N chips on the chip's standard fabric (``CHIP`` alone means 1)."""
    name, _, count = text.partition(":")
    try:
        n = int(count) if count else 1
    except ValueError:
        raise ConfigError(
            f"--system {text!r}: chip count must be an integer, e.g. h100-sxm:8"
        ) from None
    if n < 1:
        raise ConfigError(f"--system {text!r}: chip count must be >= 1")
    try:
        return System(chip=load_chip(name), count=n)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--system {text!r}: {msg}") from None
