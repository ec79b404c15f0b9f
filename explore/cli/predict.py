"""``xpusim predict``: one static batch, prefill then decode (optionally a step trace)."""

from __future__ import annotations

import argparse
from pathlib import Path

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
from sim.mapping import OBJECTIVES

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="latency, throughput, memory and energy of a static batch")
    add_target(p)
    p.add_argument("--batch", help="sequences per replica, or 'max'")
    p.add_argument("--tpot-slo-ms", "--slo-tpot-ms", dest="tpot_slo_ms", type=number(gt=0),
                   help="with --batch max: the best batch meeting it")  # fmt: skip
    add_set(p)
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        help="what the automatic mapping maximizes (per-user speed at a given batch, "
        "tokens_per_s at --batch max)",
    )
    for flag in ("--input-len", "--output-len"):
        p.add_argument(flag, help="tokens; with --batch max also uniform:LO:HI, "
                       "lognormal:MEAN:STD or file:PATH (steady state, simulated)")  # fmt: skip
    p.add_argument("--routing-skew", type=number(ge=0, le=100),
                   help="Zipf exponent of MoE routing (0 uniform)")  # fmt: skip
    p.add_argument("--scenario", type=Path, help="TOML scenario; flags override it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="output: write a Perfetto/Chrome trace of the steps to FILE")  # fmt: skip
    p.add_argument("--no-overlap", action="store_true", help="--trace: serialize every op")
    p.add_argument("--ops", action="store_true", help="also the per-op table of prefill and "
                   "decode: time, share, bound, bytes, FLOPs (in --json: ops)")  # fmt: skip
    p.add_argument("--out", "--plot", dest="plot", type=Path, metavar="DIR",
                   help="output: a roofline of the ops and the time breakdown per phase, as PNGs "
                   "in DIR (--plot: the same)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from explore.report.tables import print_predict

    check_output(args.trace, "--trace")
    check_output(args.plot, "--out/--plot", folder=True)
    result = _predict(args)
    system, overrides = args.edited
    effects = _effects(args, system, overrides, result)
    sims = {}
    if args.trace:
        from explore.api.trace import write_step_trace

        sims = write_step_trace(result, args.trace, overlap=not args.no_overlap)
    if args.json:
        from explore.api.predict import result_dict

        out = result_dict(result)
        if overrides:
            from explore.api.compare import overrides_dict

            out["overrides"] = overrides_dict(overrides, effects)
        if sims:
            out["step_simulation"] = {
                k: {"total_s": v.total_s, "busy_s": v.busy_s, "exposed_s": v.exposed_s}
                for k, v in sims.items()
            }
        print(strict_json({**out, **_op_view(args, result)}))
    else:
        print_overrides(overrides, effects)
        print_predict(result)
        _op_view(args, result, text=True)
        for k, v in sims.items():
            print(f"step simulation ({k}): {v.total_s * 1e3:.3f} ms -> {args.trace}")
    return 0


def _predict(args: argparse.Namespace):
    from explore.api.predict import predict
    from workloads.scenario import PredictScenario, load_predict_scenario

    sc = load_predict_scenario(args.scenario) if args.scenario else PredictScenario()
    par = sc.parallelism

    model = pick(args.model, sc.model, name="model")
    # the system with the --set edits (System, overrides), kept for run()
    args.edited = edited_system(system_of(args, sc), args.set)
    system = args.edited[0]
    batch = pick(args.batch, sc.batch, name="batch")
    if isinstance(batch, str) and batch != "max":
        if not batch.strip().isdigit() or int(batch) < 1:
            raise ConfigError(f"--batch {batch!r}: give a positive integer or 'max'")
        batch = int(batch)
    slo = args.tpot_slo_ms if args.tpot_slo_ms is not None else sc.tpot_slo_ms
    inp, out, front = _lengths(args, sc, batch, predict)
    return front(
        system,
        model,
        pick(args.quant, sc.quant, default="bf16"),
        **degrees(args, par),
        batch=batch,
        tpot_slo_s=slo / 1e3 if slo else None,
        input_len=inp,
        output_len=out,
        routing_skew=args.routing_skew if args.routing_skew is not None else sc.routing_skew,
        efficiency_overrides=sc.efficiency or None,
        objective=args.objective,
        engine=args.engine or sc.engine,
        moe_overlap=args.moe_overlap or sc.moe_overlap,
    )


def _effects(args: argparse.Namespace, system, overrides, result) -> tuple:
    """Per --set edit, "no effect: why" where it changes nothing (the run repeated unedited
    tells when the reason is not known in advance), else None."""
    if not overrides:
        return ()
    from explore.api.compare import effect_notes

    base = None
    if result.fits:
        try:
            base = _predict(argparse.Namespace(**{**vars(args), "set": []}))
        except ConfigError:  # the unedited chip cannot run it (it does not fit)
            base = None
    return effect_notes(system, overrides, result, base)


def _lengths(args: argparse.Namespace, sc, batch, predict):
    """(input, output, front door): integer lengths cost a static batch (``predict``); a length
    distribution (any spelling ``serve`` takes) needs ``--batch max`` and is simulated to a
    steady state (:func:`explore.api.steady.steady_state`)."""
    from explore.api.steady import is_distribution, length_dist, steady_state

    given = {f: pick(getattr(args, a), getattr(sc, a), name=f[2:])
             for f, a in (("--input-len", "input_len"), ("--output-len", "output_len"))}
    for flag, value in given.items():
        length_dist(value, flag)  # a bad spelling: one line naming the flag
    dists = [(f, v) for f, v in given.items() if is_distribution(v)]
    inp, out = given.values()
    if not dists:
        return int(inp), int(out), predict
    flag, value = dists[0]
    if batch != "max":
        raise ConfigError(f"{flag} {value}: a length distribution needs --batch max (the steady "
                          f"state is simulated); give an integer {flag} with --batch {batch}")
    if args.trace:
        raise ConfigError(f"{flag} {value}: --trace writes one static batch's steps; give "
                          f"integer lengths or drop --trace")
    return inp, out, steady_state


def _op_view(args: argparse.Namespace, result, *, text: bool = False) -> dict:
    """``--ops`` (the per-op table; in JSON ``ops``) and ``--plot DIR`` (roofline and time
    breakdown PNGs; in JSON ``plots``)."""
    from explore.report.ops import ops_of
    from explore.report.plots import predict_plots
    from explore.report.tables import print_ops

    out: dict = {}
    if args.ops:
        if text:
            print_ops(result)
        out["ops"] = ops_of(result)
    if args.plot:
        out["plots"] = [str(p) for p in predict_plots(result, args.plot)]
        for p in out["plots"] if text else ():
            print(f"plot: {p}")
        if text and not out["plots"]:
            print(f"--plot {args.plot}: nothing drawn (the design does not fit)")
    return out
