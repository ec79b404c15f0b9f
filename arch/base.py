"""The frozen config base, sourced preset values, and one-line error messages.

Every config type derives from :class:`Frozen`: immutable, unknown keys rejected, and any field
whose
name carries a unit suffix (``_bytes_per_s``, ``_w``, ...) accepts a unit string that is parsed and
checked once, here.

Preset files give every number as a *sourced value*: ``[value, kind, ref]`` (or an inline table
``{value=..., source=..., ref=...}``) where ``kind`` is one of :data:`SOURCE_KINDS` and ``ref`` a
key
of the file's ``[refs]`` table or a free-text citation. :func:`split_sources` separates the numbers
(validated by pydantic) from their provenance (kept beside the object for ``xpusim show``).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from arch.units import UnitError, dimension_of_field, parse_quantity

__all__ = [
    "SOURCE_KINDS",
    "ConfigError",
    "Frozen",
    "Source",
    "closest",
    "format_validation_error",
    "load_toml",
    "split_sources",
]

SOURCE_KINDS = ("datasheet", "paper", "measured", "derived", "assumption", "fitted", "user")
SourceKind = Literal["datasheet", "paper", "measured", "derived", "assumption", "fitted", "user"]


class ConfigError(ValueError):
    """Bad input, reported to the user as one line (exit code 2 at the CLI)."""


class Frozen(BaseModel):
    """Immutable validated config; unit strings parsed for fields named with a unit suffix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _parse_units(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name in cls.model_fields:
            value = out.get(name)
            if dimension_of_field(name) is None or value is None:
                continue
            if isinstance(value, str):
                out[name] = parse_quantity(value, name)
            elif isinstance(value, dict) and _is_dict_field(cls, name):
                out[name] = {k: _maybe_parse(v, name) for k, v in value.items()}
        return out


def _is_dict_field(cls: type[BaseModel], name: str) -> bool:
    """A mapping of quantities (``peak_flops_per_s = {bf16 = "989 TFLOP/s"}``), as opposed to a
    nested model whose own validator parses its fields."""
    return get_origin(cls.model_fields[name].annotation) is dict


def _maybe_parse(value: Any, field: str) -> Any:
    return parse_quantity(value, field) if isinstance(value, str) else value


class Source(Frozen):
    """Where a number comes from."""

    kind: SourceKind
    ref: str = ""


def _is_sourced(node: Any) -> bool:
    if isinstance(node, dict):
        return "value" in node and "source" in node
    return isinstance(node, list) and len(node) in (2, 3) and node[1] in SOURCE_KINDS


def _unpack(node: Any, refs: dict[str, str]) -> tuple[Any, Source]:
    if isinstance(node, dict):
        value, kind, ref = node["value"], node["source"], node.get("ref", "")
    else:
        value, kind, ref = node[0], node[1], node[2] if len(node) == 3 else ""
    return value, Source(kind=kind, ref=refs.get(ref, ref))


def split_sources(
    tree: Any, *, refs: dict[str, str], strict: bool, path: str = ""
) -> tuple[Any, dict[str, Source]]:
    """Strip sourced leaves to plain values; return (values, {dotted.path: Source}).

    With ``strict`` every number (or unit string) must be sourced; a bare one raises ConfigError
    naming its path. Lists of tables are indexed ``memory.0.capacity_bytes``.
    """
    sources: dict[str, Source] = {}
    if _is_sourced(tree):
        value, src = _unpack(tree, refs)
        return value, {path: src}
    if isinstance(tree, dict):
        out = {}
        for key, sub in tree.items():
            out[key], s = split_sources(sub, refs=refs, strict=strict, path=_join(path, key))
            sources.update(s)
        return out, sources
    if isinstance(tree, list) and tree and all(isinstance(x, dict) for x in tree):
        out_list = []
        for i, sub in enumerate(tree):
            v, s = split_sources(sub, refs=refs, strict=strict, path=_join(path, str(i)))
            out_list.append(v)
            sources.update(s)
        return out_list, sources
    if strict and _is_number_like(tree, path):
        raise ConfigError(
            f"{path}: number without a source; write [value, kind, ref] "
            f"with kind one of {', '.join(SOURCE_KINDS[:5])}"
        )
    return tree, sources


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_UNSOURCED_KEYS = {"year"}  # identity metadata, not a physical figure


def _is_number_like(node: Any, path: str) -> bool:
    if isinstance(node, bool) or path.rsplit(".", 1)[-1] in _UNSOURCED_KEYS:
        return False
    if isinstance(node, (int, float)):
        return True
    if isinstance(node, str) and dimension_of_field(path.rsplit(".", 1)[-1]) is not None:
        try:
            parse_quantity(node, path.rsplit(".", 1)[-1])
        except UnitError:
            return False
        return True
    return False


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; syntax errors become one-line ConfigErrors."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """One line: origin, the first failing field path, what is wrong (and how many more)."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check its spelling"
    elif first["type"] == "missing":
        msg = "required key is missing; add it"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{origin}: {loc}: {msg}{more}"


def closest(name: str, choices: list[str]) -> str:
    """'did you mean' text for an unknown name."""
    near = difflib.get_close_matches(name, choices, n=3, cutoff=0.4)
    return f"closest: {', '.join(near)}" if near else f"known: {', '.join(sorted(choices))}"
