"""``xpusim tco``: fleets at an SLO, priced ($/M tokens, tokens/s per MW, capex and opex).

``--set [TARGET:]PATH=VALUE`` edits the chips of the fleets (:mod:`arch.overrides`): a plain
edit applies to every fleet, ``FLEET:PATH=VALUE`` to the fleet of that name and
``CHIP:PATH=VALUE`` to the fleets on that chip. A fleet whose chip lacks the field is an error
(name the fleet or chip to keep the edit to the fleets that have it).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from arch.base import ConfigError, strict_json
from explore.cli.common import add_set, check_output

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    tc = sub.add_parser("tco", help="fleets at an SLO: $/M tokens, tokens/s per MW, capex/opex")
    tc.add_argument("scenario", type=Path)
    tc.add_argument("--json", action="store_true")
    tc.add_argument("--out", "--report", dest="report", type=Path, metavar="FILE",
                    help="write FILE.html or FILE.md with figures (same as --report)")  # fmt: skip
    add_set(tc, target="FLEET:PATH=VALUE or CHIP:PATH=VALUE edits only that fleet's or "
                "chip's fleets; a plain one edits every fleet")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from explore.report.progress import progress
    from explore.report.tco import print_table, write_report
    from explore.tco.fleet import contract, load_tco_scenario, monte_carlo_samples, tco

    check_output(args.report, "--out/--report", suffixes=(".html", ".md"))
    sc, edits = _edited(load_tco_scenario(args.scenario), args.set)
    with progress(monte_carlo_samples(sc), "TCO Monte Carlo (samples)",
                  enabled=not args.json) as advance:  # fmt: skip
        results = tco(sc, progress=advance)
    if args.report:
        write_report(sc, results, args.report)
    if args.json:
        out = contract(results)
        if edits:
            out["overrides"] = [{k: v for k, v in e.items() if not k.endswith("shown")}
                                for e in edits]  # fmt: skip
        print(strict_json(out))
        return 0
    for e in edits:
        note = f"  [{e['note']}]" if e["note"] else ""
        print(f"what-if ({e['fleet']}): {e['path']} = {e['shown']} (preset: {e['was_shown']})"
              f"{note}")  # fmt: skip
    print_table(sc, results)
    if args.report:
        print(f"report: {args.report}")
    return 0


def _edited(sc, sets: list[str]):
    """The scenario with the --set edits applied to its fleets' chips, and the list of edits
    applied ({fleet, path, value, was, set, note})."""
    if not sets:
        return sc, []
    from arch.overrides import edit_system, format_value, parse_edit, static_no_effect

    edits = [parse_edit(s) for s in sets]
    for e in edits:
        names = {f.name for f in sc.fleets} | {f.system.chip.name for f in sc.fleets}
        if e.target is not None and e.target not in names:
            raise ConfigError(f"--set {e.text!r}: no fleet or chip {e.target!r}; one of "
                              f"{', '.join(sorted(names))}")  # fmt: skip
    fleets, out = [], []
    for f in sc.fleets:
        mine = [e for e in edits if e.target in (None, f.name, f.system.chip.name)]
        try:
            system, done = edit_system(f.system, mine)
        except ConfigError as exc:
            raise ConfigError(f"fleet {f.name!r}: {exc}") from None
        fleets.append(dataclasses.replace(f, system=system))
        for o in done:
            why = static_no_effect(system, o, command="tco")
            if o.path == "price_usd" and f.price_usd is not None:
                why = "the fleet's price_usd in the scenario file takes precedence"
            out.append({"fleet": f.name, **o.to_dict(), "note": f"no effect: {why}" if why
                        else None, "shown": format_value(o.value, o.path),
                        "was_shown": format_value(o.was, o.path)})  # fmt: skip
    return dataclasses.replace(sc, fleets=tuple(fleets)), out
