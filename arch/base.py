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

import copy
import difflib
import json
import math
import tomllib
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic_core import PydanticCustomError

from arch.units import UnitError, dimension_of_field, parse_quantity

__all__ = [
    "SOURCE_KINDS",
    "ConfigError",
    "Frozen",
    "Source",
    "UserConfig",
    "closest",
    "config_error",
    "field_error",
    "field_path",
    "format_validation_error",
    "load_config",
    "load_toml",
    "one_line",
    "partial_model",
    "split_sources",
    "strict_json",
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
        return _unit_fields(cls, data, lambda v, name, _loc: _maybe_parse(v, name))


def _unit_fields(cls: type[BaseModel], data: Any, parse) -> Any:
    """``data`` with the unit strings of unit-named fields (and of their dict values) parsed by
    ``parse(value, field, loc)``."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in cls.model_fields:
        value = out.get(name)
        if dimension_of_field(name) is None or value is None:
            continue
        if isinstance(value, str):
            out[name] = parse(value, name, (name,))
        elif isinstance(value, dict) and _is_dict_field(cls, name):
            out[name] = {k: parse(v, name, (name, k)) for k, v in value.items()}
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
    """Read a TOML file; a missing file, a folder, a binary or unreadable file and syntax errors
    become one-line ConfigErrors naming the file (never echoing its content)."""
    if Path(path).is_dir():
        raise ConfigError(f"{path}: is a directory; give a TOML file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8); give a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {one_line(str(exc))}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}); give a TOML file") from None


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, for a one-line message."""
    return " ".join(str(text).split())


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


# --------------------------------------------------------------------------- user config files
#
# Scenario files, search spaces and TCO scenarios are read by one loader, validated by pydantic
# models derived from UserConfig, and every failure is one line in one format:
# ``FILE: FIELD.PATH: what is wrong and the fix``.

M = TypeVar("M", bound=BaseModel)


class UserConfig(Frozen):
    """Schema of a file a user writes (scenario, search space, TCO scenario): :class:`Frozen`,
    and no NaN or infinity in any float field (TOML spells both; no quantity a user sets here
    means either)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _parse_units(cls, data: Any) -> Any:
        """As :class:`Frozen`'s, but a unit that does not fit names the field's own path."""
        return _unit_fields(cls, data, _quantity)


def _quantity(value: Any, name: str, loc: tuple) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse_quantity(value, name)
    except UnitError as exc:
        raise field_error(loc, str(exc).removeprefix(f"{name}: "), value) from None


def load_config(path: str | Path, model: type[M], *, origin: str | None = None) -> M:
    """Read a TOML file and validate it against ``model``: the one loader of user config files.

    Every failure is a :class:`ConfigError` of one line naming ``origin`` (default: the path),
    the field (:func:`field_path`) and the fix: a missing file, a directory, a binary or
    malformed file, an unknown key (with the valid ones), a wrong type, a value out of range.
    Validators find the file's folder in ``info.context["dir"]`` (for relative paths).
    """
    p = Path(path)
    where = origin or str(p)
    raw = _read(p, where)
    try:
        return model.model_validate(raw, context={"dir": p.parent})
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, where, model)) from None


def _read(path: Path, where: str) -> dict[str, Any]:
    try:
        return load_toml(path)
    except ConfigError as exc:
        raise ConfigError(f"{where}{str(exc).removeprefix(str(path))}") from None


def field_path(loc: Sequence[str | int]) -> str:
    """Where a field is in a TOML file: ``study.objectives``, ``chip.sram_bytes.low``, and
    ``[[fleet]] 2.tp`` in the third table of a top-level array of tables (counted from 0)."""
    parts = [p for p in loc if p != "[key]"]
    if len(parts) >= 2 and isinstance(parts[1], int):
        return ".".join([f"[[{parts[0]}]] {parts[1]}", *map(str, parts[2:])])
    return ".".join(map(str, parts))


def config_error(origin: str, loc: Sequence[str | int], message: str) -> ConfigError:
    """The one error format, for checks made after validation (a preset that must exist):
    ``ORIGIN: FIELD.PATH: message``, or ``ORIGIN: message`` about the whole file."""
    where = field_path(loc)
    return ConfigError(f"{origin}: {where}: {message}" if where else f"{origin}: {message}")


def field_error(loc: Sequence[str | int], message: str, value: Any = None) -> ValidationError:
    """A validation error at ``loc`` inside the value a validator checks (raise it from the
    validator; pydantic puts the field's own location in front), so that a check of a whole
    table still names the key at fault."""
    err = PydanticCustomError("config", message)
    return ValidationError.from_exception_data(
        "config", [{"type": err, "loc": tuple(loc), "input": value}]
    )


def partial_model(model: type[BaseModel], *, exclude: Sequence[str] = ()) -> type[UserConfig]:
    """``model`` with every field optional (None when absent), constraints and unit parsing
    kept: the schema of a table that overrides some of its fields (``[tco]``, ``[base.chip]``).
    The model's own cross-field validators are not copied; the full model still runs them."""
    fields: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        if name in exclude:
            continue
        info = copy.copy(f)
        info.default, info.default_factory = None, None
        fields[name] = (f.annotation | None, info)
    return create_model(f"{model.__name__}Overrides", __base__=UserConfig, **fields)


def _one_line(exc: ValidationError, origin: str, model: type[BaseModel]) -> str:
    """The first error as ``ORIGIN: FIELD.PATH: message``, and how many other fields fail."""
    errors = exc.errors(include_url=False)
    walked = [_walk(model, e["loc"]) for e in errors]
    # a value that fits no member of a union fails every member: report the member of the
    # value's own kind (a table's bad key), not "should be a valid string" from another
    real = [i for i, (e, w) in enumerate(zip(errors, walked, strict=True))
            if not (w[2] and e["type"].endswith("_type"))] or [0]  # fmt: skip
    first = real[0]
    loc, owner, _ = walked[first]
    more = len({walked[i][0] for i in real} - {loc})
    tail = f" (+{more} more)" if more else ""
    return str(config_error(origin, loc, _message(errors[first], owner) + tail))


def _message(err: dict[str, Any], owner: type[BaseModel] | None) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return _unknown_key(str(err["loc"][-1]), owner)
    if kind == "missing":
        short = bool(err["loc"]) and isinstance(err["loc"][-1], int)
        return "too few values" if short else "required key is missing; add it"
    if kind in ("value_error", "assertion_error", "config"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg + _got(err.get("input"))


def _unknown_key(key: str, owner: type[BaseModel] | None) -> str:
    if owner is None:
        return "unknown key; remove it or check its spelling"
    names = sorted(owner.model_fields)
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown key; {hint}valid keys: {', '.join(names)}"


def _got(value: Any) -> str:
    if value is None or isinstance(value, dict):
        return ""
    text = repr(value)
    return f" (got {text if len(text) <= 40 else text[:37] + '...'})"


def _walk(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[tuple, type | None, bool]:
    """An error location without the union-member tags pydantic puts in it (``int``,
    ``literal['max']``, a model's name), the model that owns its last key (None when the last
    key is in a plain table), and whether the location went through a union."""
    ann: Any = model
    owner, union = None, False
    out: list[str | int] = []
    for part in loc:
        if part == "[key]":
            continue
        ann = _plain(ann)
        members = _members(ann)
        if members:  # this part names the member pydantic tried
            ann = next((m for m in members if getattr(m, "__name__", None) == part), Any)
            union = True
            continue
        owner = ann if _is_model(ann) else None
        ann = _child(ann, part)
        out.append(part)
    return tuple(out), owner, union


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _plain(ann: Any) -> Any:
    """Strip ``Annotated`` and a lone ``| None`` (pydantic does not tag those)."""
    while True:
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        elif len(_members(ann, with_none=True)) == 1:
            ann = _members(ann, with_none=True)[0]
        else:
            return ann


def _members(ann: Any, *, with_none: bool = False) -> tuple:
    """The members of a union other than None; () for anything else (or a lone member when
    ``with_none``, so that ``X | None`` reads as X)."""
    if get_origin(ann) not in (Union, types.UnionType):
        return ()
    members = tuple(a for a in get_args(ann) if a is not type(None))
    if with_none:
        return members if len(members) == 1 else ()
    return members if len(members) > 1 else ()


def _child(ann: Any, part: str | int) -> Any:
    if _is_model(ann):
        f = ann.model_fields.get(str(part))
        return f.annotation if f else Any
    args = get_args(ann)
    if get_origin(ann) is dict:
        return args[1] if args else Any
    if get_origin(ann) in (list, tuple, set, frozenset):
        return args[0] if args else Any
    return Any


def _jsonable(o: Any) -> Any:
    """Plain JSON values: non-finite floats become null, numpy scalars and arrays Python ones,
    anything else (paths, enums) its string."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if hasattr(o, "tolist"):  # numpy scalar or array
        return _jsonable(o.tolist())
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if o is None or isinstance(o, (bool, int, str)):
        return o
    return str(o)


def strict_json(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259) for every ``--json`` output: NaN and infinity are ``null``."""
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False)
