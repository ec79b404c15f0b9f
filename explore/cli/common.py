"""What the commands share: the target flags, the flag-or-scenario-or-default rule, and the one
check of numeric flags (:func:`number`: typed, finite, in range) and output paths
(:func:`check_output`: writable before any work is done)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from arch.base import ConfigError
from arch.engine import engine_names

__all__ = [
    "add_set",
    "add_target",
    "check_output",
    "degree",
    "degrees",
    "edited_system",
    "number",
    "pick",
    "print_overrides",
    "system_of",
]

SET_HELP = ("edit a chip field by its path in the preset file, units as in presets; "
            "repeatable, e.g. --set \"memory.hbm.bandwidth_bytes_per_s=6.7 TB/s\" "
            "(memory levels by kind or name: memory.hbm, memory.HBM3)")


def number(kind: type = float, *, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None):  # fmt: skip
    """An argparse ``type`` for a numeric flag: an ``int`` or a finite ``float`` within the given
    bounds. A bad value is a usage error naming the flag and the valid range (exit 2)."""
    bounds = [f"{op} {v:g}" for op, v in ((">", gt), (">=", ge), ("<", lt), ("<=", le))
              if v is not None]  # fmt: skip
    want = ("an integer" if kind is int else "a finite number") + (
        " " + " and ".join(bounds) if bounds else "")

    def parse(text: str):
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and all((
            gt is None or value > gt, ge is None or value >= ge,
            lt is None or value < lt, le is None or value <= le))  # fmt: skip
        if not ok:
            shown = text if len(text) <= 30 else text[:27] + "..."
            raise argparse.ArgumentTypeError(f"give {want} (got {shown!r})")
        return value

    parse.__name__ = kind.__name__
    return parse


def check_output(path: Path | None, flag: str, *, folder: bool = False,
                 suffixes: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Refuse an output path that cannot be written, before any work: a file where a folder is
    wanted or the reverse, a parent that is a file, a folder without write permission, a
    suffix the writer does not know. One line naming ``flag`` (exit 2)."""
    if path is None:
        return
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {str(path)!r}: give a file name ending in "
                          f"{' or '.join(suffixes)}")  # fmt: skip
    if path.exists() and path.is_dir() != folder:
        what = "a folder" if path.is_dir() else "a file"
        raise ConfigError(f"{flag} {str(path)!r}: is {what}; give "
                          f"{'a folder' if folder else 'a file name'}")  # fmt: skip
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {str(path)!r}: {str(parent)!r} is not a folder; give a path "
                          "inside a folder")  # fmt: skip
    writable = os.access(parent, os.W_OK | os.X_OK)
    if not writable or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {str(path)!r}: cannot write there (permission denied); "
                          "give a writable path")  # fmt: skip


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


def system_of(args, sc) -> str:
    """The ``--system`` flag or the scenario's system, checked here so that a bad one names
    where it came from (the flag, or the scenario file's key)."""
    from arch.presets import parse_system

    if args.system is None:
        spec = pick(None, sc.system_spec(), name="system")
        where = f"{args.scenario}: {'chip' if sc.chip else 'system'}"
    else:
        spec, where = args.system, f"--system {args.system!r}"
    try:
        parse_system(spec)
    except ConfigError as exc:
        msg = str(exc).removeprefix(f"--system {spec!r}: ")
        raise ConfigError(f"{where}: {msg}") from None
    return spec


def add_set(p, *, target: str = "") -> None:
    """The repeatable ``--set PATH=VALUE`` flag (:mod:`arch.overrides`)."""
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help=SET_HELP + (f"; {target}" if target else ""))  # fmt: skip


def edited_system(spec: str, sets: list[str]):
    """``spec`` (``CHIP:N``) with the ``--set`` edits: (System, overrides), or (spec, ()) when
    there are none. An edit ``CHIP:PATH=VALUE`` must name the system's chip."""
    if not sets:
        return spec, ()
    from arch.overrides import edit_system, parse_edit
    from arch.presets import parse_system

    system = parse_system(spec)
    edits = [parse_edit(s) for s in sets]
    for e in edits:
        if e.target is not None and e.target != system.chip.name:
            raise ConfigError(f"--set {e.text!r}: {e.target!r} is not this run's chip "
                              f"({system.chip.name}); drop '{e.target}:' or name "
                              f"{system.chip.name}")  # fmt: skip
    return edit_system(system, edits)


def print_overrides(overrides, notes=None) -> None:
    """One line per edit: the new value, the preset's, and why it changes nothing if it
    does not."""
    from arch.overrides import format_value

    notes = notes or [None] * len(overrides)
    for o, n in zip(overrides, notes, strict=True):
        was = format_value(o.was, o.path) if o.was is not None else "not in the preset"
        tail = f"  [{n}]" if n else ""
        print(f"what-if: {o.path} = {format_value(o.value, o.path)} (preset: {was}){tail}")
