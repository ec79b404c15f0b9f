"""One-line what-ifs: ``--set PATH=VALUE`` edits a chip's fields by their path in the preset file.

A path is the dotted key of the field in the chip's TOML (``tdp_w``, ``scale_up.links``,
``matrix.peak_flops_per_s.fp8``); a memory level is addressed by its ``name`` (``memory.HBM3``,
any case), its ``kind`` (``memory.hbm``), its ``role`` (``memory.main``) or its position
(``memory.1``). Values are read as in preset files: a unit-named field takes ``"6.7 TB/s"``
(:func:`arch.units.parse_quantity` checks the unit against the field), anything else a TOML
literal (``264``, ``true``) or a bare word (``torus2d``).

The edits are applied to the chip's own data and the result is validated by :class:`Chip` (and
:class:`System`), so every check a preset passes applies to an edited chip too; each edited
number is sourced ``user`` with the edit as its reference. Every failure is one
:class:`ConfigError` line naming the ``--set`` edit and the fix; an unknown path names the
closest valid ones.

``TARGET:PATH=VALUE`` restricts an edit to one target (a chip name, or what the command says:
a configuration number in ``compare``, a fleet name in ``tco``); :func:`parse_edit` splits it.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from arch.base import ConfigError
from arch.chip import PRECISIONS, Chip, System
from arch.units import UnitError, dimension_of_field, parse_quantity

__all__ = [
    "Edit",
    "Override",
    "apply_edits",
    "edit_system",
    "format_value",
    "parse_edit",
    "static_no_effect",
    "valid_paths",
]

# an example of each unit dimension, for the fix of a bad unit
_EXAMPLE = {
    "bytes_per_s": "3.35 TB/s",
    "flops_per_s": "989 TFLOP/s",
    "bytes": "80 GB",
    "s": "600 ns",
    "w": "700 W",
    "j_per_byte": "31 pJ/B",
    "j_per_flop": "0.3 pJ/FLOP",
    "mm2": "814 mm2",
    "usd": "30000 USD",
    "hz": "1.8 GHz",
}
_SYMBOL = {
    "bytes_per_s": "B/s",
    "flops_per_s": "FLOP/s",
    "bytes": "B",
    "s": "s",
    "w": "W",
    "j_per_byte": "J/B",
    "j_per_flop": "J/FLOP",
    "mm2": "mm2",
    "usd": "USD",
    "hz": "Hz",
}
_SCALED = ("bytes_per_s", "flops_per_s", "bytes", "s", "j_per_byte", "j_per_flop", "hz")
_LEVEL_KEYS = ("name", "kind", "role")  # how a memory level is addressed, in order of priority
_METADATA = ("name", "display_name", "vendor", "year", "process_node", "die_area_mm2")


@dataclass(frozen=True)
class Edit:
    """One ``--set`` as written: ``[target:]path=value``."""

    text: str
    path: str
    value: str
    target: str | None = None


@dataclass(frozen=True)
class Override:
    """An edit applied: the path, the new value (SI) and the value it replaced (None: added)."""

    path: str
    value: Any
    was: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "was": self.was, "set": self.text}


def parse_edit(text: str, flag: str = "--set") -> Edit:
    """``[TARGET:]PATH=VALUE`` -> :class:`Edit`; a malformed one is a ConfigError naming it."""
    head, eq, value = text.partition("=")
    target, colon, path = head.partition(":")
    if not colon:
        target, path = None, head
    path, value = path.strip(), value.strip()
    if not eq or not path or not value or (colon and not target.strip()):
        raise ConfigError(f"{flag} {text!r}: write PATH=VALUE, e.g. "
                          f"{flag} \"memory.hbm.bandwidth_bytes_per_s=6.7 TB/s\"")  # fmt: skip
    return Edit(text=text, path=path, value=value, target=target.strip() if colon else None)


def apply_edits(chip: Chip, edits: Sequence[Edit | str], *,
                flag: str = "--set") -> tuple[Chip, tuple[Override, ...]]:  # fmt: skip
    """``chip`` with ``edits`` applied and validated, and what each changed."""
    edits = [e if isinstance(e, Edit) else parse_edit(e, flag) for e in edits]
    if not edits:
        return chip, ()
    data = chip.model_dump(exclude={"sources"})
    data["memory"] = list(data["memory"])  # a tuple in the model
    sources = dict(chip.sources)
    done = []
    for e in edits:
        where = f"{flag} {e.text!r}"
        parent, key, src_path = _locate(data, e.path, chip, where)
        value = _value(e, key, src_path, where)
        done.append(Override(e.path, value, parent.get(key), e.text))
        parent[key] = value
        sources[src_path] = {"kind": "user", "ref": f"{flag} {e.text}"}
    try:
        new = Chip.model_validate({**data, "sources": sources})
    except ValidationError as exc:
        raise ConfigError(_invalid(exc, edits, flag)) from None
    return new, tuple(done)


def edit_system(system: System, edits: Sequence[Edit | str], *,
                flag: str = "--set") -> tuple[System, tuple[Override, ...]]:  # fmt: skip
    """``system`` on its chip with ``edits`` applied (:func:`apply_edits`), checked as a
    System (a fabric edited to 0 B/s cannot connect several chips)."""
    chip, done = apply_edits(system.chip, edits, flag=flag)
    if not done:
        return system, done
    try:
        return System(chip=chip, count=system.count), done
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        sets = "; ".join(f"{flag} {o.text!r}" for o in done)
        raise ConfigError(f"{sets}: {msg}") from None


def valid_paths(chip: Chip) -> list[str]:
    """Every path ``--set`` takes on ``chip`` (memory levels by name and by kind)."""
    data = chip.model_dump(exclude={"sources"})
    out: list[str] = []
    for key, value in data.items():
        if key == "memory":
            for level in value:
                for by in {level["name"], level["kind"]}:
                    out += [f"memory.{by}.{f}" for f in level]
        elif key in ("matrix", "vector"):
            out += [f"{key}.{f}" for f in value if f != "peak_flops_per_s"]
            out += [f"{key}.peak_flops_per_s.{p}" for p in PRECISIONS]
        elif isinstance(value, dict):
            out += [f"{key}.{f}" for f in value]
        else:
            out.append(key)
    return out


def _locate(data: dict, path: str, chip: Chip, where: str) -> tuple[dict, str, str]:
    """The dict holding the field ``path`` names, its key, and its sources path."""
    parts = path.split(".")
    node: Any = data
    trail: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            j = _level(node, part, path, where)
            node, trail = node[j], [*trail, str(j)]
            if last:
                raise _table(path, node, where)
            continue
        if not isinstance(node, dict) or (part not in node and not _addable(trail, part, last)):
            raise ConfigError(f"{where}: {chip.name} has no field {path!r}; "
                              f"{_closest(path, chip)}")  # fmt: skip
        if last:
            if isinstance(node.get(part), (dict, list)):
                raise _table(path, node[part], where)
            return node, part, ".".join([*trail, part])
        if node[part] is None:
            raise ConfigError(f"{where}: {chip.name} has no {'.'.join([*trail, part])} table "
                              "(add one in a chip TOML file to edit it)")  # fmt: skip
        node, trail = node[part], [*trail, part]
    raise AssertionError("unreachable")  # the loop returns or raises on the last part


def _addable(trail: list[str], part: str, last: bool) -> bool:
    """A precision a matrix or vector engine does not list yet may be added."""
    return last and bool(trail) and trail[-1] == "peak_flops_per_s" and part in PRECISIONS


def _level(levels: list[dict], part: str, path: str, where: str) -> int:
    """The memory level ``part`` names: by position, name (any case), kind or role."""
    if part.isdigit() and int(part) < len(levels):
        return int(part)
    for key in _LEVEL_KEYS:
        hits = [i for i, lv in enumerate(levels) if str(lv[key]).lower() == part.lower()]
        if len(hits) == 1:
            return hits[0]
        if hits:
            names = ", ".join(levels[i]["name"] for i in hits)
            raise ConfigError(f"{where}: memory.{part} is ambiguous ({names} are all {part}); "
                              "name the level instead")  # fmt: skip
    names = ", ".join(f"{lv['name']} ({lv['kind']}, {lv['role']})" for lv in levels)
    raise ConfigError(f"{where}: no memory level {part!r}; address one by name, kind or role: "
                      f"{names}")  # fmt: skip


def _table(path: str, node: Any, where: str) -> ConfigError:
    keys = list(node) if isinstance(node, dict) else [str(i) for i in range(len(node))]
    return ConfigError(f"{where}: {path} is a table; set one of its fields: "
                       f"{', '.join(f'{path}.{k}' for k in keys)}")  # fmt: skip


def _closest(path: str, chip: Chip) -> str:
    paths = valid_paths(chip)
    near = difflib.get_close_matches(path, paths, n=3, cutoff=0.5)
    if not near:  # a bad first part: compare the last part alone
        tail = path.rsplit(".", 1)[-1]
        near = [p for p in paths if p.rsplit(".", 1)[-1] in
                difflib.get_close_matches(tail, [q.rsplit(".", 1)[-1] for q in paths],
                                          n=3, cutoff=0.6)][:3]  # fmt: skip
    return (f"closest: {', '.join(near)}" if near
            else "see the chip's preset file (xpusim show CHIP) for its fields")  # fmt: skip


def _value(e: Edit, key: str, src_path: str, where: str) -> Any:
    """The value of an edit: SI for a unit-named field (or a map of them), else a TOML literal
    or the bare word."""
    parts = src_path.split(".")
    field = key if dimension_of_field(key) or len(parts) < 2 else parts[-2]
    if dimension_of_field(field) is not None and (field == key or key in PRECISIONS):
        try:
            return parse_quantity(e.value, field)
        except UnitError as exc:
            msg = str(exc).removeprefix(f"{field}: ")
            example = _EXAMPLE.get(dimension_of_field(field) or "", "")
            raise ConfigError(f"{where}: {msg}; write a number and a unit, e.g. "
                              f"{e.path}={example}") from None  # fmt: skip
    try:
        return tomllib.loads(f"v = {e.value}")["v"]
    except tomllib.TOMLDecodeError:
        return e.value


def _invalid(exc: ValidationError, edits: list[Edit], flag: str) -> str:
    """One line: the edit at fault (the one whose field failed, else all), what is wrong."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        msg = msg.replace("Input should be", "must be")
    at = [e for e in edits if loc and loc.endswith(e.path.rsplit(".", 1)[-1])] or edits
    sets = "; ".join(f"{flag} {e.text!r}" for e in at)
    where = f" ({loc})" if loc and len(at) == len(edits) and len(edits) > 1 else ""
    fix = ""
    if "fastest first" in msg:
        fix = (
            "; raise the faster levels' bandwidth too "
            "(another --set memory.LEVEL.bandwidth_bytes_per_s=...)"
        )
    return f"{sets}: {msg}{where}{fix}"


def static_no_effect(system: System, o: Override, *, command: str = "predict",
                     chips_per_replica: int | None = None,
                     gemm_precision: str | None = None) -> str | None:  # fmt: skip
    """Why an edit cannot change what ``command`` computes, where that is known without running
    it (None: it may). ``chips_per_replica``: tp x pp x ep of the run, when known."""
    head, _, rest = o.path.partition(".")
    if head in _METADATA:
        return f"{head} is a label, not used by the performance model"
    if head == "price_usd" and command != "tco":
        return "the chip price enters tco, not performance"
    if head == "memory":
        level = system.chip.memory[_level([m.model_dump() for m in system.chip.memory],
                                          rest.split(".")[0], o.path, "")]  # fmt: skip
        if level.role == "cache":
            return (f"{level.name} is a transparent cache (role cache): nothing is placed in it, "
                    "so the cost model never reads it")  # fmt: skip
    group = chips_per_replica or system.count
    if head == "scale_up" and group == 1:
        return "one chip per replica: no collectives run on scale_up"
    if head == "scale_out" and group <= system.chip.scale_up.domain_chips:
        return (
            f"{group} chip(s) per replica fit in one scale-up domain of "
            f"{system.chip.scale_up.domain_chips}: scale_out carries no traffic"
        )
    if head == "matrix" and rest.startswith("peak_flops_per_s.") and gemm_precision:
        p = rest.rsplit(".", 1)[-1]
        if p not in (gemm_precision, "bf16", "fp16"):
            return f"the GEMMs of this run compute at {gemm_precision}, not {p}"
    return None


def format_value(value: Any, path: str) -> str:
    """``value`` of the field ``path`` in a unit a person reads (``6.7 TB/s``, ``600 ns``)."""
    parts = path.split(".")
    dim = dimension_of_field(parts[-1]) or (
        dimension_of_field(parts[-2]) if len(parts) > 1 else None
    )
    if value is None:
        return "none"
    if dim is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    unit = _SYMBOL[dim]
    if dim not in _SCALED or value == 0:
        return f"{value:,.0f} {unit}" if abs(value) >= 1000 else f"{value:.4g} {unit}"
    for prefix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6),
                          ("k", 1e3), ("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9),
                          ("p", 1e-12)):  # fmt: skip
        if abs(value) >= scale * 0.9995:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
