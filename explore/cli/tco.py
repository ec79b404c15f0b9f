"""``xpusim tco``: fleets at an SLO, priced ($/M tokens, tokens/s per MW, capex and opex)."""

from __future__ import annotations

import argparse
from pathlib import Path

from arch.base import strict_json
from explore.cli.common import check_output

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    tc = sub.add_parser("tco", help="fleets at an SLO: $/M tokens, tokens/s per MW, capex/opex")
    tc.add_argument("scenario", type=Path)
    tc.add_argument("--json", action="store_true")
    tc.add_argument("--report", type=Path, help="write FILE.html or FILE.md with figures")


def run(args: argparse.Namespace) -> int:
    from explore.report.tco import print_table, write_report
    from explore.tco.fleet import contract, load_tco_scenario, tco

    check_output(args.report, "--report", suffixes=(".html", ".md"))
    sc = load_tco_scenario(args.scenario)
    results = tco(sc)
    if args.report:
        write_report(sc, results, args.report)
    if args.json:
        print(strict_json(contract(results)))
        return 0
    print_table(sc, results)
    if args.report:
        print(f"report: {args.report}")
    return 0
