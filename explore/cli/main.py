"""``xpusim`` command line: parsing and dispatch; each command lives in its own module.

Bad input prints one line naming the field and the fix and exits with code 2 (no traceback).
Anything else that goes wrong inside a command is a bug: one line ``internal error: TYPE: MSG;
rerun with --debug for the traceback`` and exit code 1; ``xpusim --debug COMMAND ...`` prints the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from arch.base import ConfigError, one_line
from explore.cli import compare, curve, predict, presets, search, serve, tco, validate

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
    "compare": compare.run,
    "curve": curve.run,
    "physical": validate.run_physical,
    "calibrate": validate.run_calibrate,
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {one_line(message)}", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="xpusim", description="LLM inference hardware simulator")
    ap.add_argument("--debug", action="store_true",
                    help="on an internal error, print the traceback")  # fmt: skip
    ap.add_argument("--version", action="version", version=f"xpusim {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (predict, serve, search, presets, validate, tco, compare, curve):
        module.add_parser(sub)
    return ap


def _version() -> str:
    from sim.evaluate import VERSION

    return VERSION


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"xpusim: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("xpusim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, or the traceback with --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"xpusim: internal error: {type(exc).__name__}: {one_line(str(exc))[:300]}; "
                  "rerun with --debug for the traceback", file=sys.stderr)  # fmt: skip
        return 1
