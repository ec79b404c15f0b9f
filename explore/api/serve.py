"""``xpusim serve``: latency distributions and throughput under load, and the SLO rate search.

Wires the core (system, model, quantization, parallelism, calibrated efficiency) to the serving
simulation: the KV cache of each replica is sized by the capacity plan (main memory less weights,
reserve and activations), the step model is the memoized analytic step, idle and active power
come from the chip preset and the efficiency factors.

Parallel degrees left ``None`` (or ``"auto"``) are chosen by :func:`resolve_mapping` through the
shared chooser, :func:`sim.mapping.choose_mapping`: the mapping with the most output tokens/s at
``--batch max`` (meeting the TPOT SLO when one is given), at the mean request lengths.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from arch.base import ConfigError
from sim.evaluate import Workload, evaluate, require_pandas, resolve_workload
from sim.intervals import intervals_for
from sim.mapping import DEGREES, choose_mapping, settled
from sim.metrics import summarize
from sim.serving import ServingConfig, simulate_serving
from sim.stepmodel import AnalyticStepModel, LoRA, SpecDecode
from sim.traffic import Arrivals, ClosedLoop, LengthDist, Poisson, TraceReplay
from workloads.capacity import kv_bytes_per_chip
from workloads.presets import load_model

__all__ = [
    "ServeRequest",
    "build",
    "rate_search",
    "rate_search_runs",
    "resolve_mapping",
    "serve",
    "serve_interval",
    "to_dataframe",
]

SWAP_BW = 64e9  # host link per chip for swap preemption: PCIe 5.0 x16 (assumption)


@dataclass(frozen=True)
class ServeRequest:
    system: str
    model: str
    quant: str
    input_len: LengthDist
    output_len: LengthDist
    arrivals: Arrivals
    requests: int = 1000
    tp: int | str | None = None  # None or "auto": chosen (resolve_mapping)
    pp: int | str | None = None
    ep: int | str | None = None
    dp: int | str | None = None
    scheduler: str = "continuous"
    max_batch: int = 256
    max_tokens: int = 8192
    router: str = "round_robin"
    preemption: str = "recompute"
    prefix_hit_rate: float = 0.0
    pd_ratio: tuple[int, int] = (1, 1)
    spec: SpecDecode | None = None
    lora: LoRA | None = None
    seed: int = 0
    block_size: int = 16
    engine: str | None = None  # None: the one the chip family is assumed to run
    moe_overlap: bool = False  # MoE: two-batch overlap of the all-to-all with compute


def _lengths(req: ServeRequest) -> tuple[int, int]:
    return max(1, round(req.input_len.mean)), max(1, round(req.output_len.mean))


def resolve_mapping(
    req: ServeRequest, *, slo_tpot_s: float | None = None
) -> tuple[ServeRequest, dict | None]:
    """``req`` with every parallel degree set, and how the omitted ones were chosen (None when
    all were given): most output tokens/s at ``--batch max`` under ``slo_tpot_s``."""
    given = {k: None if getattr(req, k) == "auto" else getattr(req, k) for k in DEGREES}
    given = settled(load_model(req.model), given)
    if all(isinstance(v, int) for v in given.values()):
        return replace(req, **given), None
    inp, out = _lengths(req)
    choice = choose_mapping(
        system=req.system, model=req.model, quant=req.quant, **given,
        batch="max", tpot_slo_s=slo_tpot_s, objective="tokens_per_s",
        input_len=inp, output_len=out, engine=req.engine, moe_overlap=req.moe_overlap,
    )  # fmt: skip
    par = choice.result.workload.par
    return replace(req, **par.model_dump()), choice.to_dict()


def _workload(req: ServeRequest) -> Workload:
    inp, out = _lengths(req)
    return resolve_workload(
        system=req.system,
        model=req.model,
        quant=req.quant,
        tp=req.tp,
        pp=req.pp,
        ep=req.ep,
        dp=req.dp,
        input_len=inp,
        output_len=out,
        engine=req.engine,
        moe_overlap=req.moe_overlap,
    )


def _kv_blocks(w: Workload, block: int) -> tuple[int, float]:
    """KV blocks per replica from the capacity plan, and KV bytes per token per chip."""
    plan = w.plan(1)
    if not plan.fits:
        raise ConfigError(f"the model does not fit: {plan.reason}")
    per_token = kv_bytes_per_chip(w.model, w.par, w.quant, batch=1, context_len=1)
    free = plan.kv_budget_bytes
    blocks = int(free // (per_token * block)) if per_token > 0 else 1 << 30
    if blocks < 1:
        raise ConfigError("no memory is left for the KV cache: add chips or quantize")
    return blocks, per_token


def build(req: ServeRequest, progress=None) -> tuple[ServingConfig, AnalyticStepModel]:
    w = _workload(resolve_mapping(req)[0])
    blocks, per_token = _kv_blocks(w, req.block_size)
    chip = w.system.chip
    out_link = chip.scale_out or chip.scale_up
    spec = req.spec
    if spec and isinstance(spec.draft, str) and spec.draft != "mtp":
        spec = replace(spec, draft=load_model(spec.draft))
    sm = AnalyticStepModel(w, w.plan(1), spec, req.lora)
    replicas = w.par.dp
    requests = req.requests
    if isinstance(req.arrivals, TraceReplay):  # a shorter trace replays all it has
        requests = min(requests, len(req.arrivals.load()[0]))
    cfg = ServingConfig(
        arrivals=req.arrivals,
        input_len=req.input_len,
        output_len=req.output_len,
        requests=requests,
        scheduler=req.scheduler,
        max_batch=req.max_batch,
        max_tokens=req.max_tokens,
        replicas=replicas,
        router=req.router,
        kv_blocks=blocks,
        block_size=req.block_size,
        preemption=req.preemption,
        swap_bytes_per_token=per_token,
        swap_bw_bytes_per_s=SWAP_BW,
        prefix_hit_rate=req.prefix_hit_rate,
        pd_ratio=req.pd_ratio,
        kv_bytes_per_token=per_token,
        transfer_bw_bytes_per_s=out_link.bandwidth_bytes_per_s,  # already over all its links
        transfer_latency_s=out_link.latency_s,
        spec=req.spec,
        chips_per_replica=w.par.chips_per_replica,
        idle_w=chip.idle_w,
        busy_floor_w=w.floor_w(),
        seed=req.seed,
        progress=progress,
    )
    return cfg, sm


def serve(req: ServeRequest, *, slo_ttft_s=None, slo_tpot_s=None, progress=None):
    """Simulate; returns (summary dict with the contract keys, trace). Omitted parallel degrees
    are chosen first (:func:`resolve_mapping`; the summary then has ``mapping``).
    ``progress(n)``, if given, is called as requests complete (n more done; they sum to the
    requests simulated)."""
    req, mapping = resolve_mapping(req, slo_tpot_s=slo_tpot_s)
    cfg, sm = build(req, _counted(progress))
    t0 = time.perf_counter()
    try:
        trace = simulate_serving(cfg, sm.step)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    wall = time.perf_counter() - t0
    out = summarize(trace, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s, wall_s=wall)
    out |= serve_interval(sm.w, out)
    out["config"] = _config(req, cfg)
    if mapping is not None:
        out["mapping"] = mapping
    return out, trace


def _counted(advance):
    """The serving simulation reports the count done so far; ``advance`` takes increments."""
    if advance is None:
        return None
    last = [0]

    def done(count: int) -> None:
        advance(count - last[0])
        last[0] = count

    return done


# simulated distributions that get a band at each statistic, and single numbers that get one
BANDED_DISTRIBUTIONS = ("ttft_s", "tpot_s", "e2e_s")
BANDED_NUMBERS = ("output_tokens_per_s", "output_tokens_per_s_per_chip", "energy_j_per_token")


def serve_interval(w: Workload, summary: dict) -> dict:
    """{"interval": {"ttft_s.p99": [low, high], ..., "output_tokens_per_s": [...]},
    "extrapolated": [reasons]}: the validation error bands of :mod:`sim.intervals` (kinds
    ttft, tpot, e2e, throughput; J/token from power and throughput) on the simulated values.
    Queueing amplifies a service-time error near saturation, so there the TTFT and e2e bands
    understate the uncertainty; below saturation the delivered tokens/s is the offered load and
    its band overstates it. Whether the family is extrapolated comes from a static batch of one
    (:func:`sim.evaluate.evaluate`: its notes say EXTRAPOLATED)."""
    stats = ("mean", "p50", "p90", "p99")
    values = {f"{k}.{q}": summary[k][q] for k in BANDED_DISTRIBUTIONS for q in stats}
    values |= {k: summary[k] for k in BANDED_NUMBERS}
    notes = evaluate(w, 1).notes
    return intervals_for(w.eff.family, values, calibrated=w.eff.calibrated, notes=notes)


def _config(req: ServeRequest, cfg: ServingConfig) -> dict:
    return {
        "system": req.system,
        "model": req.model,
        "quant": req.quant,
        "parallelism": {"tp": req.tp, "pp": req.pp, "ep": req.ep, "dp": req.dp},
        "scheduler": req.scheduler,
        "max_batch": req.max_batch,
        "max_tokens": req.max_tokens,
        "arrivals": repr(req.arrivals),
        "input_len": repr(req.input_len),
        "output_len": repr(req.output_len),
        "requests": cfg.requests,
        "kv_blocks_per_replica": cfg.kv_blocks,
        "kv_tokens_per_replica": cfg.kv_blocks * cfg.block_size,
        "seed": req.seed,
    }


def _meets(summary: dict, slo_ttft_s: float, slo_tpot_s: float) -> bool:
    t, p = summary["ttft_s"]["p99"], summary["tpot_s"]["p99"]
    return t is not None and t <= slo_ttft_s and (p is None or p <= slo_tpot_s)


def rate_search(
    req: ServeRequest, slo_ttft_s: float, slo_tpot_s: float, *, rel_tol: float = 0.02,
    progress=None,
) -> tuple[float, dict]:
    """Highest Poisson rate whose p99 TTFT and p99 TPOT meet the SLO (MLPerf Server style).

    Brackets by doubling from a capacity estimate, then bisects to ``rel_tol``. Returns
    (rate, summary at that rate); rate 0 when even a trickle misses the SLO. ``progress(n)``,
    if given, is called after each simulation (the calls sum to :func:`rate_search_runs`)."""
    req, mapping = resolve_mapping(req, slo_tpot_s=slo_tpot_s)
    step = progress or (lambda n=1: None)
    rate, best, runs = _rate_search(req, slo_ttft_s, slo_tpot_s, rel_tol, step)
    step(max(0, rate_search_runs(rel_tol) - runs))  # a trickle that misses stops early
    return rate, best if mapping is None else {**best, "mapping": mapping}


RANGE = 64.0  # the bisection starts between capacity x 1.2 / RANGE and capacity x 1.2


def rate_search_runs(rel_tol: float = 0.02) -> int:
    """Simulations a rate search runs (the probe, the floor, then the bisection): the bracket
    shrinks the same way whichever side each midpoint falls, so the count is known up front
    (within one step: the stopping test is relative to the upper end)."""
    lo, hi, n = 1.0 / RANGE, 1.0, 2
    while hi - lo > rel_tol * hi:
        mid = math.sqrt(lo * hi) if hi / lo > 4 else (lo + hi) / 2
        lo, n = mid, n + 1
    return n


def _rate_search(
    req: ServeRequest, slo_ttft_s: float, slo_tpot_s: float, rel_tol: float, step
) -> tuple[float, dict, int]:
    probe, _ = serve(replace(req, arrivals=ClosedLoop(req.max_batch * req.dp), requests=
                             max(200, req.max_batch * req.dp * 2)))  # fmt: skip
    step(1)
    hi = probe["requests_per_s"] * 1.2
    runs = [1]

    def run(rate):
        s, _ = serve(replace(req, arrivals=Poisson(rate)), slo_ttft_s=slo_ttft_s,
                     slo_tpot_s=slo_tpot_s)  # fmt: skip
        step(1)
        runs[0] += 1
        return s

    lo = hi / RANGE
    best = run(lo)
    if not _meets(best, slo_ttft_s, slo_tpot_s):
        return 0.0, best, runs[0]
    while hi - lo > rel_tol * hi:
        mid = math.sqrt(lo * hi) if hi / lo > 4 else (lo + hi) / 2
        s = run(mid)
        if _meets(s, slo_ttft_s, slo_tpot_s):
            lo, best = mid, s
        else:
            hi = mid
    return lo, best, runs[0]


def to_dataframe(trace):
    """One row per simulated request of a serving trace (the second value :func:`serve`
    returns), in arrival order: ``arrival_s``, lengths, the times it was first scheduled, got
    its first token and finished (seconds of simulated time), ``ttft_s``, ``tpot_s`` (NaN for a
    one-token output), ``e2e_s``, ``queue_s``, prefix-cached prompt tokens and preemptions."""
    import numpy as np

    pd = require_pandas("serve's to_dataframe()")
    rs = sorted(trace.requests, key=lambda r: (r.arrival_s, r.rid))
    df = pd.DataFrame({
        "request": [r.rid for r in rs],
        "arrival_s": [r.arrival_s for r in rs],
        "input_len": [r.input_len for r in rs],
        "output_len": [r.output_len for r in rs],
        "cached_tokens": [r.cached for r in rs],
        "first_scheduled_s": [r.first_scheduled_s for r in rs],
        "first_token_s": [r.first_token_s for r in rs],
        "finish_s": [r.finish_s for r in rs],
        "preemptions": [r.preemptions for r in rs],
    })  # fmt: skip
    df["ttft_s"] = df["first_token_s"] - df["arrival_s"]
    df["e2e_s"] = df["finish_s"] - df["arrival_s"]
    df["queue_s"] = df["first_scheduled_s"] - df["arrival_s"]
    multi = df["output_len"] > 1
    df["tpot_s"] = np.where(multi, (df["finish_s"] - df["first_token_s"])
                            / (df["output_len"] - 1).clip(lower=1), np.nan)  # fmt: skip
    return df.set_index("request")
