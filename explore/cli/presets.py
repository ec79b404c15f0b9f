"""``xpusim presets`` and ``xpusim show NAME``: the shipped chips, systems and models."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run_presets", "run_show"]


def add_parser(sub) -> None:
    pr = sub.add_parser("presets", help="list chips, systems and models with key figures")
    pr.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one chip or model with every number's source")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")


def run_presets(args: argparse.Namespace) -> int:
    from explore.report.tables import print_presets

    print_presets(as_json=args.json)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from explore.report.tables import print_show

    print_show(args.name, as_json=args.json)
    return 0
