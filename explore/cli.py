"""``xpusim`` command line: predict, presets, show, validate, calibrate.

Bad input prints one line naming the field and the fix and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arch.base import ConfigError

__all__ = ["main"]


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="latency, throughput, memory and energy of a static batch")
    p.add_argument("--system", help="CHIP:N, e.g. h100-sxm:8 (or a chip TOML path :N)")
    p.add_argument("--model", help="model preset or TOML path")
    p.add_argument("--quant", help="bf16, fp16, fp8, int8, fp4, int4-awq")
    for flag in ("tp", "pp", "ep", "dp"):
        p.add_argument(f"--{flag}", type=int, help=f"{flag.upper()} degree (default 1)")
    p.add_argument("--batch", help="sequences per replica, or 'max'")
    p.add_argument("--tpot-slo-ms", type=float, help="with --batch max: largest batch meeting it")
    p.add_argument("--input-len", type=int)
    p.add_argument("--output-len", type=int)
    p.add_argument("--routing-skew", type=float, help="Zipf exponent of MoE routing (0 uniform)")
    p.add_argument("--scenario", type=Path, help="TOML scenario; flags override it")
    p.add_argument("--json", action="store_true", help="print one JSON object")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="xpusim", description="LLM inference hardware simulator")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_predict(sub)
    pr = sub.add_parser("presets", help="list chips, systems and models with key figures")
    pr.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one chip or model with every number's source")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")
    va = sub.add_parser("validate", help="predicted vs measured for shared/validation rows")
    va.add_argument("--measurements", type=Path, help="measurements.csv (default: shared/)")
    va.add_argument("--json", action="store_true")
    va.add_argument("--csv", type=Path, help="write per-row results here")
    ca = sub.add_parser("calibrate", help="refit efficiency factors on microbenchmark rows")
    ca.add_argument("--measurements", type=Path)
    ca.add_argument("--out", type=Path, help="fitted TOML (default: the preset fitted.toml)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error already printed (2)
        return int(exc.code or 0)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"xpusim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "predict":
        from explore.report import print_predict

        result = _run_predict(args)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            print_predict(result)
        return 0
    if args.command == "presets":
        from explore.report import print_presets

        print_presets(as_json=args.json)
        return 0
    if args.command == "show":
        from explore.report import print_show

        print_show(args.name, as_json=args.json)
        return 0
    if args.command == "validate":
        from explore.validate import run_validate

        return run_validate(args.measurements, as_json=args.json, csv_path=args.csv)
    if args.command == "calibrate":
        from explore.calibrate import run_calibrate

        return run_calibrate(args.measurements, args.out)
    raise ConfigError(f"unknown command {args.command}")


def _run_predict(args: argparse.Namespace):
    from explore.predict import predict
    from workloads.scenario import PredictScenario, load_scenario

    sc = load_scenario(args.scenario) if args.scenario else PredictScenario()
    par = sc.parallelism

    def pick(flag, file_value, default=None, name=""):
        value = flag if flag is not None else file_value
        if value is None and default is None:
            raise ConfigError(f"--{name} is required (or set it in --scenario)")
        return default if value is None else value

    system = pick(args.system, sc.system_spec(), name="system")
    model = pick(args.model, sc.model, name="model")
    batch = pick(args.batch, sc.batch, name="batch")
    if isinstance(batch, str) and batch != "max":
        try:
            batch = int(batch)
        except ValueError:
            raise ConfigError(f"--batch {batch!r}: give a positive integer or 'max'") from None
    slo = args.tpot_slo_ms if args.tpot_slo_ms is not None else sc.tpot_slo_ms
    return predict(
        system,
        model,
        pick(args.quant, sc.quant, default="bf16"),
        tp=pick(args.tp, par.tp, 1),
        pp=pick(args.pp, par.pp, 1),
        ep=pick(args.ep, par.ep, 1),
        dp=pick(args.dp, par.dp, 1),
        batch=batch,
        tpot_slo_s=slo / 1e3 if slo else None,
        input_len=pick(args.input_len, sc.input_len, name="input-len"),
        output_len=pick(args.output_len, sc.output_len, name="output-len"),
        routing_skew=args.routing_skew if args.routing_skew is not None else sc.routing_skew,
        efficiency_overrides=sc.efficiency or None,
    )


if __name__ == "__main__":
    sys.exit(main())
