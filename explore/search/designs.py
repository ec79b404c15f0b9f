"""Write searched designs out as ready-to-use presets: a chip TOML any ``--system PATH:N`` accepts,
and a model TOML for searched shapes. Every number is tagged ``derived`` with the trial it came
from, so the preset contract (every number sourced) holds for them too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arch.chip import Chip
from workloads.model import ModelSpec

__all__ = ["chip_toml", "model_toml", "write_chip", "write_model"]


def _scalar(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return f"[{', '.join(_scalar(x) for x in v)}]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string (\n, \u0000 escaped)
    return repr(float(v)) if isinstance(v, float) else str(v)


def _emit(d: dict, prefix: str, lines: list[str], sourced: bool) -> None:
    """Scalars first, then sub-tables, then arrays of tables (TOML's order rule)."""
    subs, arrays = [], []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            subs.append((k, v))
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
            arrays.append((k, v))
        elif sourced and isinstance(v, (int, float)) and not isinstance(v, bool) and k != "year":
            lines.append(f'{k} = [{_scalar(v)}, "derived", "design"]')
        else:
            lines.append(f"{k} = {_scalar(v)}")
    for k, v in subs:
        lines.append(f"\n[{prefix}{k}]")
        _emit(v, f"{prefix}{k}.", lines, sourced)
    for k, items in arrays:
        for item in items:
            lines.append(f"\n[[{prefix}{k}]]")
            _emit(item, f"{prefix}{k}.", lines, sourced)


def chip_toml(chip: Chip, ref: str) -> str:
    data = chip.model_dump(exclude={"sources"})
    lines = [f"# Written by xpusim: {ref}", ""]
    _emit(data, "", lines, sourced=True)
    lines.append("\n[refs]")
    lines.append(f"design = {_scalar(ref)}")
    return "\n".join(lines) + "\n"


def model_toml(model: ModelSpec, ref: str) -> str:
    data = model.model_dump(exclude={"sources"})
    data["config_source"] = ref
    lines = [f"# Written by xpusim: {ref}", ""]
    _emit(data, "", lines, sourced=False)
    return "\n".join(lines) + "\n"


def write_chip(chip: Chip, path: Path, ref: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chip_toml(chip, ref))
    return path


def write_model(model: ModelSpec, path: Path, ref: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_toml(model, ref))
    return path
