"""``xpusim compare``: two or more configurations on one workload, side by side.

The predict flags; a flag repeated gives one configuration per value (``--system A --system
B``), a flag given once applies to all, and flags repeated the same number of times pair up in
order (``--system A --quant fp8 --system B --quant bf16``: A at fp8, B at bf16). ``--set`` edits
chips (:mod:`arch.overrides`): ``N:PATH=VALUE`` edits configuration N only, ``CHIP:PATH=VALUE``
the configurations on that chip; one configuration with edits is compared with itself unedited.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arch.base import ConfigError, strict_json
from explore.cli.common import add_set, check_output, degree, number
from sim.mapping import OBJECTIVES

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="two or more configurations side by side: deltas, ratios")
    rep = "; repeat for one configuration per value"
    p.add_argument("--system", action="append", default=[], help="CHIP:N" + rep)
    p.add_argument("--model", action="append", default=[], help="model preset or TOML" + rep)
    p.add_argument("--quant", action="append", default=[], help="bf16, fp8, fp4, ..." + rep)
    p.add_argument("--engine", action="append", default=[], help="serving engine" + rep)
    for flag in ("tp", "pp", "ep", "dp"):
        p.add_argument(f"--{flag}", action="append", default=[], type=degree,
                       help=f"{flag.upper()} degree or auto (default: chosen)" + rep)  # fmt: skip
    p.add_argument("--batch", action="append", default=[], help="sequences per replica or max"
                   + rep)  # fmt: skip
    p.add_argument("--input-len", action="append", default=[], type=number(int, ge=1),
                   help="tokens" + rep)  # fmt: skip
    p.add_argument("--output-len", action="append", default=[], type=number(int, ge=1),
                   help="tokens" + rep)  # fmt: skip
    p.add_argument("--tpot-slo-ms", "--slo-tpot-ms", dest="tpot_slo_ms", type=number(gt=0),
                   help="with --batch max: the best batch meeting it")  # fmt: skip
    p.add_argument("--objective", choices=list(OBJECTIVES),
                   help="what the automatic mapping maximizes")  # fmt: skip
    p.add_argument("--routing-skew", type=number(ge=0, le=100),
                   help="Zipf exponent of MoE routing (0 uniform)")  # fmt: skip
    p.add_argument("--moe-overlap", action="store_true", help="MoE: two-batch overlap")
    add_set(p, target="N:PATH=VALUE edits configuration N only, CHIP:PATH=VALUE the "
                      "configurations on CHIP")  # fmt: skip
    p.add_argument("--json", action="store_true",
                   help="print {configs: [{label, result}], deltas}")  # fmt: skip
    p.add_argument("--out", type=Path, metavar="DIR", help="write compare.png here")
    p.add_argument("--report", type=Path, metavar="FILE", help="write an HTML report")


def run(args: argparse.Namespace) -> int:
    from explore.api.compare import VARIED, compare, pair
    from explore.report.compare import print_compare, write_html, write_plot

    check_output(args.out, "--out", folder=True)
    check_output(args.report, "--report", suffixes=(".html",))
    values = {flag: getattr(args, dest) for flag, dest in _dests(VARIED).items()}
    for flag in ("--system", "--model", "--input-len", "--output-len"):
        if not values[flag]:
            raise ConfigError(f"compare: {flag} is required")
    values["--batch"] = [_batch(b) for b in values["--batch"]] or [1]
    common = {
        "tpot_slo_s": args.tpot_slo_ms / 1e3 if args.tpot_slo_ms else None,
        "objective": args.objective,
        "routing_skew": args.routing_skew or 0.0,
        "moe_overlap": args.moe_overlap,
    }
    configs = pair(values, args.set, common=common)
    out = compare(configs).to_dict()
    if args.out:
        out["plot"] = str(write_plot(out, args.out))
    if args.report:
        write_html(out, args.report)
        out["report"] = str(args.report)
    if args.json:
        print(strict_json(out))
        return 0
    print_compare(out)
    for key in ("plot", "report"):
        if key in out:
            print(f"{key}: {out[key]}")
    return 0


def _dests(varied: dict[str, str]) -> dict[str, str]:
    """CLI flag -> argparse attribute."""
    return {flag: flag[2:].replace("-", "_") for flag in varied}


def _batch(text: str) -> int | str:
    if text == "max":
        return text
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"--batch {text!r}: give a positive integer or 'max'")
    return int(text)
