"""Load model presets (TOML) and user model files."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from arch.base import ConfigError, closest, format_validation_error, load_toml, split_sources
from workloads.model import ModelSpec

__all__ = ["MODEL_DIR", "load_model", "load_model_file", "model_names"]

MODEL_DIR = Path(__file__).parent / "presets" / "models"


def model_names() -> list[str]:
    return sorted(p.stem for p in MODEL_DIR.glob("*.toml"))


def load_model_file(path: Path) -> ModelSpec:
    """A model from TOML. Shapes are cited as a whole by ``config_source``; the published
    parameter totals carry their own source (``[value, kind, ref]``)."""
    raw = load_toml(path)
    values, sources = split_sources(raw, refs=raw.pop("refs", {}), strict=False)
    try:
        return ModelSpec(**values, sources=sources)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


@cache
def load_model(name: str) -> ModelSpec:
    """A preset model by name, or a path to a model TOML file."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return load_model_file(path)
    preset = MODEL_DIR / f"{name}.toml"
    if not preset.exists():
        raise ConfigError(f"unknown model {name!r}; {closest(name, model_names())}")
    return load_model_file(preset)
