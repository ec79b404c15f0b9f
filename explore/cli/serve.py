"""``xpusim serve``: latency distributions and throughput under load, and the SLO rate search."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from arch.base import ConfigError, strict_json
from explore.cli.common import add_target, degrees, pick

if TYPE_CHECKING:
    from explore.api.serve import ServeRequest

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="latency distributions and throughput under load (SimPy)")
    add_target(p)
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


def run(args: argparse.Namespace) -> int:
    from explore.api.serve import resolve_mapping

    slo_tpot_s = args.slo_tpot_ms / 1e3 if args.slo_tpot_ms else None
    req, mapping = resolve_mapping(_serve_request(args), slo_tpot_s=slo_tpot_s)
    return run_serve(
        req,
        mapping=mapping,
        as_json=args.json,
        plot_dir=args.plot,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_tpot_ms=args.slo_tpot_ms,
        search=args.rate_search,
    )


def _serve_request(args: argparse.Namespace):
    from explore.api.serve import ServeRequest
    from sim.stepmodel import LoRA, SpecDecode
    from sim.traffic import ClosedLoop, Gamma, Poisson, TraceReplay, parse_length
    from workloads.scenario import PredictScenario, load_predict_scenario

    sc = load_predict_scenario(args.scenario) if args.scenario else PredictScenario()
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
        engine=args.engine or sc.engine,
        moe_overlap=args.moe_overlap or sc.moe_overlap,
        input_len=lengths[0],
        output_len=lengths[1],
        arrivals=arrivals,
        requests=pick(args.requests, sv.requests, 1000),
        **degrees(args, par),
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


def run_serve(req: ServeRequest, *, as_json: bool, plot_dir, slo_ttft_ms, slo_tpot_ms,
              search: bool, mapping: dict | None = None) -> int:  # fmt: skip
    slo_t = slo_ttft_ms / 1e3 if slo_ttft_ms else None
    slo_p = slo_tpot_ms / 1e3 if slo_tpot_ms else None
    if search:
        if slo_t is None or slo_p is None:
            raise ConfigError("--rate-search needs --slo-ttft-ms and --slo-tpot-ms")
        from explore.api.serve import rate_search

        rate, summary = rate_search(req, slo_t, slo_p)
        summary = {"rate_search": {"max_rate_per_s": rate, "slo_ttft_ms": slo_ttft_ms,
                                   "slo_tpot_ms": slo_tpot_ms}, **summary}  # fmt: skip
        trace = None
    else:
        from explore.api.serve import serve

        with _Progress(req.requests, enabled=not as_json) as tick:
            summary, trace = serve(req, slo_ttft_s=slo_t, slo_tpot_s=slo_p, progress=tick)
    if mapping is not None:
        summary["mapping"] = mapping
    if plot_dir and trace is not None:
        from explore.report.plots import serving_plots

        summary["plots"] = [str(p) for p in serving_plots(req, trace, plot_dir)]
    if as_json:
        print(strict_json(summary))
    else:
        from explore.report.tables import print_serving

        print_serving(summary)
    return 0


class _Progress:
    """A rich progress bar when stdout is a TTY and the run lasts more than ~2 s."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled and sys.stdout.isatty()
        self.bar = None
        self.t0 = time.perf_counter()

    def __enter__(self):
        return self.tick

    def tick(self, done: int) -> None:
        if not self.enabled or done % 50:
            return
        if self.bar is None and time.perf_counter() - self.t0 > 2.0:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("simulating requests", total=self.total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
