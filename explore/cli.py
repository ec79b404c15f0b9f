"""``xpusim`` command line: predict, serve, search, sweep, presets, show, validate, calibrate,
physical.

Bad input prints one line naming the field and the fix and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arch.base import ConfigError

__all__ = ["main"]


def _add_target(p) -> None:
    """Flags naming what runs where: system, model, quantization, parallelism."""
    p.add_argument("--system", help="CHIP:N, e.g. h100-sxm:8 (or a chip TOML path :N)")
    p.add_argument("--model", help="model preset or TOML path")
    p.add_argument("--quant", help="bf16, fp16, fp8, int8, fp4, int4-awq")
    for flag in ("tp", "pp", "ep", "dp"):
        p.add_argument(f"--{flag}", type=int, help=f"{flag.upper()} degree (default 1)")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="latency, throughput, memory and energy of a static batch")
    _add_target(p)
    p.add_argument("--batch", help="sequences per replica, or 'max'")
    p.add_argument("--tpot-slo-ms", type=float, help="with --batch max: largest batch meeting it")
    p.add_argument("--input-len", type=int)
    p.add_argument("--output-len", type=int)
    p.add_argument("--routing-skew", type=float, help="Zipf exponent of MoE routing (0 uniform)")
    p.add_argument("--scenario", type=Path, help="TOML scenario; flags override it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", type=Path, help="write a Perfetto/Chrome trace of the steps")
    p.add_argument("--no-overlap", action="store_true", help="--trace: serialize every op")


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="latency distributions and throughput under load (SimPy)")
    _add_target(p)
    p.add_argument("--rate", type=float, help="mean arrival rate, requests/s")
    p.add_argument("--requests", type=int, help="requests to simulate (default 1000)")
    p.add_argument("--input-len", help="N, uniform:LO:HI, lognormal:MEAN:STD or file:PATH")
    p.add_argument("--output-len", help="N, uniform:LO:HI, lognormal:MEAN:STD or file:PATH")
    p.add_argument("--scheduler", help="static, continuous (default), chunked, disaggregated")
    p.add_argument("--max-batch", type=int, help="sequences per replica step (default 256)")
    p.add_argument("--max-tokens", type=int, help="tokens per step / chunk budget (8192)")
    p.add_argument("--arrivals", choices=["poisson", "gamma", "closed", "trace"])
    p.add_argument("--cv", type=float, help="gamma arrivals: coefficient of variation of gaps")
    p.add_argument("--users", type=int, help="closed-loop concurrency")
    p.add_argument("--trace-file", help="trace replay CSV: arrival_s,input_len,output_len")
    p.add_argument("--router", choices=["round_robin", "least_outstanding"])
    p.add_argument("--preemption", choices=["recompute", "swap"])
    p.add_argument("--prefix-hit-rate", type=float, help="share of prompt tokens cached")
    p.add_argument("--pd-ratio", help="disaggregated: prefill:decode replicas, e.g. 1:3")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", type=Path, metavar="DIR", help="write PNG charts here")
    p.add_argument("--scenario", type=Path, help="TOML scenario; flags override it")
    p.add_argument("--rate-search", action="store_true", help="highest rate meeting the SLO")
    p.add_argument("--slo-ttft-ms", type=float, help="p99 TTFT limit")
    p.add_argument("--slo-tpot-ms", type=float, help="p99 TPOT limit")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="co-design search (Optuna): chip x model shape x deployment")
    p.add_argument("space", type=Path, help="search space TOML")
    p.add_argument("--n-trials", type=int, help="total finished trials of the study")
    p.add_argument("--storage", help="a .journal path (default OUT/study.journal), sqlite:///F, "
                   "or postgresql://...")  # fmt: skip
    p.add_argument("--study-name", help="resume or create this study (default: the space's)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the storage")
    p.add_argument("--confirm", type=int, default=0, help="serving-simulate the N best designs")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="output folder (default xpusim-search/STUDY)")
    s = sub.add_parser("sweep", help="dense grid over a space through the vectorized kernels")
    s.add_argument("space", type=Path)
    s.add_argument("--out", type=Path, required=True, help="CSV (.csv) or Parquet (.parquet)")
    s.add_argument("--json", action="store_true")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="xpusim", description="LLM inference hardware simulator")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_predict(sub)
    _add_serve(sub)
    _add_search(sub)
    pr = sub.add_parser("presets", help="list chips, systems and models with key figures")
    pr.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one chip or model with every number's source")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")
    va = sub.add_parser("validate", help="predicted vs measured for shared/validation rows")
    va.add_argument("--measurements", type=Path, help="measurements.csv (default: shared/)")
    va.add_argument("--json", action="store_true")
    va.add_argument("--csv", type=Path, help="write per-row results here")
    tc = sub.add_parser("tco", help="fleets at an SLO: $/M tokens, tokens/s per MW, capex/opex")
    tc.add_argument("scenario", type=Path)
    tc.add_argument("--json", action="store_true")
    tc.add_argument("--report", type=Path, help="write FILE.html or FILE.md with figures")
    ph = sub.add_parser("physical", help="area/power/cost model vs published die areas and TDPs")
    ph.add_argument("--fit", action="store_true", help="refit and rewrite physical_fitted.toml")
    ph.add_argument("--json", action="store_true")
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


def _run_sweep(args: argparse.Namespace) -> int:
    from explore.sweep import run_sweep

    return run_sweep(args.space, args.out, as_json=args.json)


def _run_physical(args: argparse.Namespace) -> int:
    from explore.physical import run_physical

    return run_physical(refit=args.fit, as_json=args.json)


def _run_tco(args: argparse.Namespace) -> int:
    from explore.fleet import run_tco

    return run_tco(args.scenario, as_json=args.json, report=args.report)


_COMMANDS = {"search": "_run_search", "sweep": "_run_sweep", "physical": "_run_physical",
             "tco": "_run_tco"}  # fmt: skip


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in _COMMANDS:
        return globals()[_COMMANDS[args.command]](args)
    if args.command == "predict":
        from explore.report import print_predict

        result = _run_predict(args)
        sims = {}
        if args.trace:
            from explore.trace import write_step_trace

            sims = write_step_trace(result, args.trace, overlap=not args.no_overlap)
        if args.json:
            out = result.to_dict()
            if sims:
                out["step_simulation"] = {
                    k: {"total_s": v.total_s, "busy_s": v.busy_s, "exposed_s": v.exposed_s}
                    for k, v in sims.items()
                }
            print(json.dumps(out, indent=2))
        else:
            print_predict(result)
            for k, v in sims.items():
                print(f"step simulation ({k}): {v.total_s * 1e3:.3f} ms -> {args.trace}")
        return 0
    if args.command == "serve":
        from explore.serve import run_serve

        return run_serve(
            _serve_request(args),
            as_json=args.json,
            plot_dir=args.plot,
            slo_ttft_ms=args.slo_ttft_ms,
            slo_tpot_ms=args.slo_tpot_ms,
            search=args.rate_search,
        )
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


def pick(flag, file_value, default=None, name=""):
    """The flag if given, else the scenario file's value, else ``default``; required if none."""
    value = flag if flag is not None else file_value
    if value is None and default is None:
        raise ConfigError(f"--{name} is required (or set it in --scenario)")
    return default if value is None else value


def _run_predict(args: argparse.Namespace):
    from explore.predict import predict
    from workloads.scenario import PredictScenario, load_scenario

    sc = load_scenario(args.scenario) if args.scenario else PredictScenario()
    par = sc.parallelism

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


def _serve_request(args: argparse.Namespace):
    from explore.serve import ServeRequest
    from sim.stepmodel import LoRA, SpecDecode
    from sim.traffic import ClosedLoop, Gamma, Poisson, TraceReplay, parse_length
    from workloads.scenario import PredictScenario, load_scenario

    sc = load_scenario(args.scenario) if args.scenario else PredictScenario()
    sv, par = sc.serving, sc.parallelism

    for flag, value in (("rate", args.rate), ("requests", args.requests)):
        if value is not None and value <= 0:
            raise ConfigError(f"--{flag} must be > 0")
    kind = pick(args.arrivals, sv.arrivals)
    if kind == "trace":
        arrivals = TraceReplay(Path(pick(args.trace_file, sv.trace, name="trace-file")))
    elif kind == "closed":
        arrivals = ClosedLoop(pick(args.users, sv.users, name="users"))
    else:
        rate = pick(args.rate, sv.rate, 1.0 if args.rate_search else None, name="rate")
        arrivals = Gamma(rate, pick(args.cv, sv.cv)) if kind == "gamma" else Poisson(rate)
    lengths = [
        parse_length(pick(getattr(args, f), getattr(sv, f), getattr(sc, f), name=n), "--" + n)
        for f, n in (("input_len", "input-len"), ("output_len", "output-len"))
    ]
    pd = pick(args.pd_ratio, sv.pd_ratio)
    try:
        p, d = (int(x) for x in pd.split(":"))
        assert p >= 1 and d >= 1
    except (ValueError, AssertionError):
        raise ConfigError(
            f"--pd-ratio {pd!r}: give P:D with positive integers, e.g. 1:3"
        ) from None
    spec = lora = None
    try:
        if sv.spec:
            spec = SpecDecode(sv.spec.k, tuple(sv.spec.acceptance), sv.spec.draft)
        if sv.lora:
            lora = LoRA(sv.lora.adapters, sv.lora.rank)
    except ValueError as exc:
        raise ConfigError(f"{args.scenario}: serving: {exc}") from None
    return ServeRequest(
        system=pick(args.system, sc.system_spec(), name="system"),
        model=pick(args.model, sc.model, name="model"),
        quant=pick(args.quant, sc.quant, default="bf16"),
        input_len=lengths[0],
        output_len=lengths[1],
        arrivals=arrivals,
        requests=pick(args.requests, sv.requests, 1000),
        tp=pick(args.tp, par.tp, 1),
        pp=pick(args.pp, par.pp, 1),
        ep=pick(args.ep, par.ep, 1),
        dp=pick(args.dp, par.dp, 1),
        scheduler=pick(args.scheduler, sv.scheduler, "continuous"),
        max_batch=pick(args.max_batch, sv.max_batch, 256),
        max_tokens=pick(args.max_tokens, sv.max_tokens, 8192),
        router=pick(args.router, sv.router),
        preemption=pick(args.preemption, sv.preemption),
        prefix_hit_rate=pick(args.prefix_hit_rate, sv.prefix_hit_rate),
        pd_ratio=(p, d),
        spec=spec,
        lora=lora,
        seed=pick(args.seed, sv.seed, 0),
    )


if __name__ == "__main__":
    sys.exit(main())


def _run_search(args: argparse.Namespace) -> int:
    from explore.search import dumps, search
    from explore.search_out import confirm, print_pareto, write_outputs
    from explore.space import load_space

    space = load_space(args.space)
    out = args.out or Path("xpusim-search") / (args.study_name or space.name)
    res = search(space, storage=args.storage, study_name=args.study_name, n_trials=args.n_trials,
                 seed=args.seed, workers=args.workers, out=out,
                 progress=not args.json and sys.stderr.isatty())  # fmt: skip
    files = write_outputs(res, res.space, out, res.study)
    if args.confirm:
        res.confirmed = confirm(res, res.space, out, args.confirm)
    if args.json:
        print(dumps(res.to_json()))
        return 0
    print_pareto(res)
    for c in res.confirmed:
        print(f"confirm trial {c['number']}: analytic TPOT {c['analytic_tpot_s'] * 1e3:.2f} ms, "
              f"served p50 {c['served_tpot_p50_s'] * 1e3:.2f} ms, TTFT p99 "
              f"{c['served_ttft_p99_s'] * 1e3:.1f} ms")  # fmt: skip
    print(f"{res.n_trials_complete} trials ({res.n_trials_done_here} here, "
          f"{res.n_trials_done_here / max(res.wall_s, 1e-9):.1f}/s); wrote {len(files)} files "
          f"to {out}")  # fmt: skip
    return 0
