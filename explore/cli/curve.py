"""``xpusim curve``: tokens/s per user against tokens/s per chip over batch and mapping, for one
or more systems (:mod:`explore.api.curve`); the Pareto front as a table, every point with
``--json``, the chart with ``--out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from arch.base import strict_json
from arch.engine import engine_names
from explore.cli.common import check_output, number

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("curve", help="tokens/s per user vs tokens/s per chip over batch and "
                       "mapping (the Pareto front), for one or more systems")  # fmt: skip
    p.add_argument("--system", action="append", required=True, metavar="CHIP:N",
                   help="a system, e.g. h100-sxm:8; repeat to compare systems")  # fmt: skip
    p.add_argument("--model", required=True, help="model preset or TOML path")
    p.add_argument("--quant", default="bf16", help="bf16, fp16, fp8, int8, fp4, int4-awq")
    p.add_argument("--input-len", type=number(int, ge=1), required=True, help="prompt tokens")
    p.add_argument("--output-len", type=number(int, ge=1), required=True,
                   help="generated tokens")  # fmt: skip
    p.add_argument("--tpot-slo-ms", "--slo-tpot-ms", dest="tpot_slo_ms", type=number(gt=0),
                   help="draw the TPOT SLO; the front keeps the points meeting it")  # fmt: skip
    p.add_argument("--ttft-slo-ms", "--slo-ttft-ms", dest="ttft_slo_ms", type=number(gt=0),
                   help="the front keeps the points whose TTFT (whole batch) meets it")
    p.add_argument("--max-batch", type=number(int, ge=1),
                   help="largest batch per replica to try (default: what fits in memory)")
    p.add_argument("--engine", help="serving engine: " + ", ".join(engine_names())
                   + " (default: the one the chip family is assumed to run)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object (every point)")
    p.add_argument("--out", "--plot", dest="out", type=Path, metavar="DIR",
                   help="output: write curve.png to DIR")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from explore.api.curve import curve

    check_output(args.out, "--out", folder=True)
    c = curve(
        args.system,
        model=args.model,
        quant=args.quant,
        input_len=args.input_len,
        output_len=args.output_len,
        tpot_slo_s=args.tpot_slo_ms / 1e3 if args.tpot_slo_ms else None,
        ttft_slo_s=args.ttft_slo_ms / 1e3 if args.ttft_slo_ms else None,
        max_batch=args.max_batch,
        engine=args.engine,
    )
    plots = []
    if args.out:
        from explore.report.plots import curve_plots

        plots = [str(p) for p in curve_plots(c, args.out, engine=args.engine)]
    if args.json:
        print(strict_json({**c.to_dict(), "plots": plots}))
        return 0
    from explore.report.tables import print_curve

    print_curve(c)
    for p in plots:
        print(f"plot: {p}")
    return 0
