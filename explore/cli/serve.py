"""``xpusim serve``: latency distributions and throughput under load, and the SLO rate search."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from arch.base import ConfigError, strict_json
from explore.cli.common import (
    add_set,
    add_target,
    check_output,
    degrees,
    edited_system,
    number,
    pick,
    print_overrides,
    system_of,
)

if TYPE_CHECKING:
    from explore.api.serve import ServeRequest

__all__ = ["MAX_REQUESTS", "add_parser", "run"]

MAX_REQUESTS = 10_000_000  # a simulation of more requests would not finish in a session
LONG_RUN = 20_000  # requests from which the progress bar shows at once (else after 2 s)


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="latency distributions and throughput under load (SimPy)")
    add_target(p)
    p.add_argument("--rate", type=number(gt=0), help="mean arrival rate, requests/s")
    p.add_argument("--requests", type=number(int, ge=1, le=MAX_REQUESTS),
                   help="requests to simulate (default 1000)")  # fmt: skip
    p.add_argument("--input-len", help="N, uniform:LO:HI, lognormal:MEAN:STD or file:PATH")
    p.add_argument("--output-len", help="N, uniform:LO:HI, lognormal:MEAN:STD or file:PATH")
    p.add_argument("--scheduler", help="static, continuous (default), chunked, disaggregated")
    p.add_argument("--max-batch", type=number(int, ge=1),
                   help="sequences per replica step (default 256)")  # fmt: skip
    p.add_argument("--max-tokens", type=number(int, ge=1),
                   help="tokens per step / chunk budget (8192)")  # fmt: skip
    p.add_argument("--arrivals", choices=["poisson", "gamma", "closed", "trace"])
    p.add_argument("--cv", type=number(gt=0, le=1e3),
                   help="gamma arrivals: coefficient of variation of gaps")  # fmt: skip
    p.add_argument("--users", type=number(int, ge=1, le=MAX_REQUESTS),
                   help="closed-loop concurrency")  # fmt: skip
    p.add_argument("--trace-file", metavar="CSV",
                   help="input: trace to replay, CSV arrival_s,input_len,output_len")  # fmt: skip
    p.add_argument("--router", choices=["round_robin", "least_outstanding"])
    p.add_argument("--preemption", choices=["recompute", "swap"])
    p.add_argument("--prefix-hit-rate", type=number(ge=0, lt=1),
                   help="share of prompt tokens cached")  # fmt: skip
    p.add_argument("--pd-ratio", help="disaggregated: prefill:decode replicas, e.g. 1:3")
    p.add_argument("--seed", type=number(int, ge=0, le=2**32 - 1), help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", "--plot", dest="plot", type=Path, metavar="DIR",
                   help="write PNG charts here (--plot: the same)")  # fmt: skip
    p.add_argument("--scenario", type=Path, help="TOML scenario; flags override it")
    p.add_argument("--rate-search", action="store_true", help="highest rate meeting the SLO")
    p.add_argument("--ttft-slo-ms", "--slo-ttft-ms", dest="slo_ttft_ms", type=number(gt=0),
                   help="p99 TTFT limit, ms")  # fmt: skip
    p.add_argument("--tpot-slo-ms", "--slo-tpot-ms", dest="slo_tpot_ms", type=number(gt=0),
                   help="p99 TPOT limit, ms")  # fmt: skip
    add_set(p)


def run(args: argparse.Namespace) -> int:
    from explore.api.serve import resolve_mapping

    check_output(args.plot, "--out/--plot", folder=True)
    slo_tpot_s = args.slo_tpot_ms / 1e3 if args.slo_tpot_ms else None
    notes: list[str] = []
    req, mapping = resolve_mapping(_serve_request(args, notes), slo_tpot_s=slo_tpot_s)
    return run_serve(
        req,
        overrides=_what_if(req, args.edited),
        mapping=mapping,
        as_json=args.json,
        plot_dir=args.plot,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_tpot_ms=args.slo_tpot_ms,
        search=args.rate_search,
        notes=notes,
    )


def _serve_request(args: argparse.Namespace, notes: list[str]):
    from explore.api.serve import ServeRequest
    from sim.stepmodel import LoRA, SpecDecode
    from sim.traffic import ClosedLoop, Gamma, Poisson, TraceReplay
    from workloads.scenario import PredictScenario, load_predict_scenario

    sc = load_predict_scenario(args.scenario) if args.scenario else PredictScenario()
    sv, par = sc.serving, sc.parallelism

    kind = pick(args.arrivals, sv.arrivals)
    if kind == "trace":
        arrivals = TraceReplay(Path(pick(args.trace_file, sv.trace, name="trace-file")))
        arrivals.load()  # a bad file: one line naming the row and column, before any work
    elif kind == "closed":
        arrivals = ClosedLoop(pick(args.users, sv.users, name="users"))
    else:
        rate = pick(args.rate, sv.rate, 1.0 if args.rate_search else None, name="rate")
        arrivals = Gamma(rate, pick(args.cv, sv.cv)) if kind == "gamma" else Poisson(rate)
    from_trace = arrivals.load()[1:] if isinstance(arrivals, TraceReplay) else (None, None)
    flags = (("input_len", "input-len"), ("output_len", "output-len"))
    lengths = [
        _length(_first(getattr(args, f), getattr(sv, f), getattr(sc, f)), "--" + n, trace)
        for (f, n), trace in zip(flags, from_trace, strict=True)
    ]
    model = pick(args.model, sc.model, name="model")
    lengths = _within_context(lengths, arrivals, model, notes)
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
    args.edited = edited_system(system_of(args, sc), args.set)  # (System, overrides)
    return ServeRequest(
        system=args.edited[0],
        model=model,
        quant=pick(args.quant, sc.quant, default="bf16"),
        engine=args.engine or sc.engine,
        moe_overlap=args.moe_overlap or sc.moe_overlap,
        input_len=lengths[0],
        output_len=lengths[1],
        arrivals=arrivals,
        requests=pick(args.requests, sv.requests, 1000),
        **degrees(args, par),
        scheduler=_scheduler(pick(args.scheduler, sv.scheduler, "continuous"), args),
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


def _first(*values):
    """The first value that is set (flag, then ``[serving]``, then the scenario's top level)."""
    return next((v for v in values if v is not None), None)


def _length(value, flag: str, trace):
    """A length flag (or scenario value); with trace arrivals and none given, the trace's own
    lengths (they plan the mapping; each request replays its row's lengths)."""
    from sim.traffic import Empirical, parse_length

    if value is None and trace is not None:
        return Empirical(tuple(int(v) for v in trace))
    if value is None:
        raise ConfigError(f"{flag} is required (or set it in --scenario)")
    return parse_length(value, flag)


def _upper(d) -> float:
    """The longest length a distribution can draw (inf for an unbounded one)."""
    from sim.traffic import Clipped, Empirical, Fixed, Uniform

    if isinstance(d, Fixed):
        return d.n
    if isinstance(d, Uniform):
        return d.hi
    if isinstance(d, Empirical):
        return max(d.values)
    if isinstance(d, Clipped):
        return min(d.max_len, _upper(d.dist))
    return math.inf


def _within_context(lengths: list, arrivals, model: str, notes: list[str]) -> list:
    """Requests that fit the model's context: a trace row longer than it, or lengths whose means
    exceed it, are errors; a distribution whose tail exceeds it is clipped, with a note (the
    prompt keeps its share of the context by the means, the output the rest)."""
    from sim.traffic import Clipped, Fixed, TraceReplay
    from workloads.presets import load_model

    ctx = load_model(model).max_context
    if isinstance(arrivals, TraceReplay):
        _, i, o = arrivals.load()
        worst = int(np.argmax(i + o))
        if i[worst] + o[worst] - 1 > ctx:
            total = int(i[worst] + o[worst])
            raise ConfigError(f"trace {arrivals.path}: input_len + output_len {total:,} exceeds "
                              f"{model}'s context of {ctx:,} tokens; shorten that request")
        return lengths
    din, dout = lengths
    if isinstance(din, Fixed) and isinstance(dout, Fixed):
        return lengths  # one length: sim.evaluate says so when it is too long
    if din.mean + dout.mean - 1 > ctx:
        raise ConfigError(f"--input-len/--output-len: mean lengths {din.mean:,.0f} + "
                          f"{dout.mean:,.0f} exceed {model}'s context of {ctx:,} tokens; "
                          "give shorter lengths")  # fmt: skip
    if _upper(din) + _upper(dout) - 1 <= ctx:
        return lengths
    share = round((ctx + 1) * din.mean / (din.mean + dout.mean))
    cap_in = int(min(_upper(din), max(1, share)))
    cap_out = int(min(_upper(dout), ctx + 1 - cap_in))
    cap_in = int(min(_upper(din), ctx + 1 - cap_out))
    notes.append(f"lengths clipped to the model's context of {ctx:,} tokens: input <= {cap_in:,},"
                 f" output <= {cap_out:,} (the distributions' tails exceed it)")  # fmt: skip
    return [Clipped(din, cap_in) if _upper(din) > cap_in else din,
            Clipped(dout, cap_out) if _upper(dout) > cap_out else dout]  # fmt: skip


def _scheduler(name: str, args: argparse.Namespace) -> str:
    """A scheduler ``serve`` runs (the two pools of disaggregated serving are not on their own)."""
    from sim.serving import FRONT_SCHEDULERS

    if name not in FRONT_SCHEDULERS:
        where = ("--scheduler" if args.scheduler is not None
                 else f"{args.scenario}: serving.scheduler")  # fmt: skip
        raise ConfigError(f"{where} {name!r}: choose one of {', '.join(FRONT_SCHEDULERS)}")
    return name


def run_serve(req: ServeRequest, *, as_json: bool, plot_dir, slo_ttft_ms, slo_tpot_ms,
              search: bool, mapping: dict | None = None,
              notes: list[str] | None = None, overrides=()) -> int:  # fmt: skip
    slo_t = slo_ttft_ms / 1e3 if slo_ttft_ms else None
    slo_p = slo_tpot_ms / 1e3 if slo_tpot_ms else None
    if search:
        if slo_t is None or slo_p is None:
            raise ConfigError("--rate-search needs --ttft-slo-ms and --tpot-slo-ms")
        from explore.api.serve import rate_search, rate_search_runs
        from explore.report.progress import progress

        with progress(rate_search_runs(), "rate search (simulations)",
                      enabled=not as_json) as advance:  # fmt: skip
            rate, summary = rate_search(req, slo_t, slo_p, progress=advance)
        summary = {"rate_search": {"max_rate_per_s": rate, "slo_ttft_ms": slo_ttft_ms,
                                   "slo_tpot_ms": slo_tpot_ms}, **summary}  # fmt: skip
        trace = None
    else:
        from explore.api.serve import serve
        from explore.report.progress import progress

        # a long run: more than LONG_RUN requests at once, any run after 2 s
        delay = 0.0 if req.requests > LONG_RUN else 2.0
        with progress(req.requests, "simulating requests", enabled=not as_json,
                      delay_s=delay) as advance:  # fmt: skip
            summary, trace = serve(req, slo_ttft_s=slo_t, slo_tpot_s=slo_p, progress=advance)
    if mapping is not None:
        summary["mapping"] = mapping
    if notes:
        summary["notes"] = [*summary.get("notes", []), *notes]
    if overrides:
        summary["overrides"] = overrides[0]
        summary.get("config", {})["system"] = req.system.name  # the edited System object
    if plot_dir and trace is not None:
        from explore.report.plots import serving_plots

        paths = serving_plots(req, trace, plot_dir, slo_ttft_s=slo_t, slo_tpot_s=slo_p,
                              config=summary.get("config"))  # fmt: skip
        summary["plots"] = [str(p) for p in paths]
    if as_json:
        print(strict_json(summary))
    else:
        from explore.report.tables import print_serving

        if overrides:
            print_overrides(*overrides[1:])
        print_serving(summary)
        print(_goodput_line(summary))
        for note in notes or ():
            print(f"note: {note}")
    return 0


def _what_if(req: ServeRequest, edited) -> tuple:
    """(JSON list, overrides, notes) of the --set edits, the notes only where the reason is
    known without a second simulation (:func:`arch.overrides.static_no_effect`); () if none."""
    system, overrides = edited
    if not overrides:
        return ()
    from arch.overrides import static_no_effect
    from explore.api.compare import overrides_dict

    per_replica = system.count // max(1, int(req.dp or 1))
    notes = [static_no_effect(system, o, command="serve", chips_per_replica=per_replica)
             for o in overrides]  # fmt: skip
    notes = [f"no effect: {n}" if n else None for n in notes]
    return overrides_dict(overrides, notes), overrides, notes


def _goodput_line(summary: dict) -> str:
    """What the goodput figure was counted against, or why there is none."""
    if summary.get("goodput_note"):
        return f"note: {summary['goodput_note']}"
    slo = summary.get("goodput_slo") or {}
    parts = [f"{label} <= {slo[k] * 1e3:g} ms" for k, label in (("ttft_s", "TTFT"),
             ("tpot_s", "TPOT")) if slo.get(k) is not None]  # fmt: skip
    return "goodput counted against per-request " + " and ".join(parts)
