"""``xpusim`` command line: parsing and dispatch; each command lives in its own module.

Bad input prints one line naming the field and the fix and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import sys

from arch.base import ConfigError
from explore.cli import predict, presets, search, serve, tco, validate

__all__ = ["main"]

# command -> its function (each takes the parsed arguments and returns the exit code)
COMMANDS = {
    "predict": predict.run,
    "serve": serve.run,
    "search": search.run_search,
    "sweep": search.run_sweep,
    "presets": presets.run_presets,
    "show": presets.run_show,
    "validate": validate.run_validate,
    "tco": tco.run,
    "physical": validate.run_physical,
    "calibrate": validate.run_calibrate,
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="xpusim", description="LLM inference hardware simulator")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (predict, serve, search, presets, validate, tco):
        module.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"xpusim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
