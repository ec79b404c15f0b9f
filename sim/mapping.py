"""Automatic mapping: the parallelism (tp, pp, ep, dp) that runs a request best on a system.

When some of ``tp``, ``pp``, ``ep``, ``dp`` are not given (``None``), :func:`choose_mapping`

1. enumerates the mappings of the system's chips with the given degrees held fixed
   (:func:`enumerate_mappings`: tp over the chip count's divisors, pp over the divisors of the
   rest up to the layer count, dp what is left; for MoE models ep over the divisors of tp and the
   multiples of tp that divide a stage's tp*dp chips), keeping those
   :meth:`workloads.parallel.Parallelism.validate_for` accepts;
2. drops those whose memory plan does not fit (at the batch; at batch 1 for ``"max"``) before
   costing anything, and keeps at most ``max_candidates`` of the rest, by a cheap proxy read off
   that plan: for per-user speed and TTFT the fewest weight bytes per chip first (more chips per
   replica), for throughput, tokens/s per chip and energy the most first (more replicas);
3. costs each survivor through the one evaluation path, :func:`sim.evaluate.evaluate` (after
   :func:`sim.batching.evaluate_max` for ``"max"``, with the TPOT SLO when one is given);
4. ranks them by an objective (:data:`OBJECTIVES`): by default per-user speed at a given batch
   (lowest TPOT, then lowest TTFT) and system output tokens/s at ``"max"``. Ties fall to lower
   TPOT, then lower TTFT, then enumeration order (tp, pp, ep ascending).

For SRAM-only chips :func:`smallest_sram_system` also finds the fewest chips whose SRAM holds the
model (weights and KV at batch 1): it tries every valid tp x pp with dp 1 on fewer (or more)
chips, smallest count first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from arch.base import ConfigError
from arch.chip import System
from sim.batching import evaluate_max, max_batch
from sim.evaluate import Result, Workload, evaluate, resolve_workload
from workloads.capacity import MemoryPlan, weight_bytes_per_chip
from workloads.model import ModelSpec
from workloads.parallel import Parallelism

__all__ = [
    "DEGREES",
    "OBJECTIVES",
    "Choice",
    "SramFit",
    "choose_mapping",
    "default_objective",
    "enumerate_mappings",
    "settled",
    "smallest_sram_system",
]

DEGREES = ("tp", "pp", "ep", "dp")
# objective name -> (Result attribute, +1 higher is better / -1 lower is better, label)
OBJECTIVES: dict[str, tuple[str, int, str]] = {
    "tokens_per_s_per_user": ("tokens_per_s_per_user", 1, "tokens/s per user"),
    "tokens_per_s": ("output_tokens_per_s", 1, "output tokens/s"),
    "tokens_per_s_per_chip": ("output_tokens_per_s_per_chip", 1, "output tokens/s per chip"),
    "ttft_s": ("ttft_s", -1, "TTFT s"),
    "energy_j_per_token": ("energy_j_per_token", -1, "J per output token"),
}
# mappings costed per request after the memory check: a costing at a given batch takes ~10 ms,
# one at "max" (the batch search first) ~0.1-0.5 s
MAX_CANDIDATES = {"batch": 64, "max": 32}
_MANY_CHIPS_FIRST = ("tokens_per_s_per_user", "ttft_s")  # proxy order: fewest weights first


def default_objective(batch: int | str) -> str:
    """Per-user speed at a given batch; throughput at ``"max"``."""
    return "tokens_per_s" if batch == "max" else "tokens_per_s_per_user"


def settled(model: ModelSpec, given: dict[str, int | None]) -> dict[str, int | None]:
    """``given`` with the degrees that have one possible value filled in: ep 1 on a dense model
    (so a dense model with tp, pp and dp given needs no search)."""
    if model.moe is None and given.get("ep") is None:
        return {**given, "ep": 1}
    return given


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _ep_options(model: ModelSpec, tp: int, dp: int) -> list[int]:
    """Expert-parallel degrees to try: 1 for dense models; else the divisors of tp and the
    multiples of tp dividing tp*dp (attention-DP), each dividing the expert count."""
    if model.moe is None:
        return [1]
    inside = _divisors(tp)
    across = [tp * k for k in _divisors(dp) if k > 1]
    return [e for e in inside + across if model.moe.num_experts % e == 0]


def enumerate_mappings(
    model: ModelSpec,
    chips: int,
    *,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    dp: int | None = None,
) -> list[Parallelism]:
    """Every valid mapping of ``chips`` chips for ``model``; given degrees are held fixed."""
    out = []
    for t in [tp] if tp else _divisors(chips):
        rest = chips // t if chips % t == 0 else 0
        for p in [pp] if pp else [x for x in _divisors(rest) if x <= model.num_layers]:
            d = dp or (rest // p if rest and rest % p == 0 else 1)
            for e in [ep] if ep else _ep_options(model, t, d):
                par = Parallelism(tp=t, pp=p, ep=e, dp=d)
                try:
                    par.validate_for(model, chips)
                except ConfigError:
                    continue
                out.append(par)
    return out


@dataclass(frozen=True)
class SramFit:
    """The fewest chips whose SRAM holds the model (weights + KV at batch 1), as tp x pp."""

    chips: int
    par: Parallelism
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"chips": self.chips, "parallelism": self.par.model_dump(), "method": self.method}


@dataclass(frozen=True)
class Choice:
    """What :func:`choose_mapping` chose and why. ``ranked``: every costed mapping that ran,
    best first, with its objective value; ``result``: the chosen one's :class:`Result` (or, when
    none fits, the mapping closest to fitting, not fitting)."""

    result: Result
    objective: str
    chosen_by: str
    ranked: tuple[tuple[Parallelism, float], ...]
    searched: tuple[str, ...]
    valid: int
    fit: int
    evaluated: int
    sram: SramFit | None = None

    @property
    def runners_up(self) -> tuple[tuple[Parallelism, float], ...]:
        return self.ranked[1:3]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen_by": self.chosen_by,
            "objective": self.objective,
            "searched": list(self.searched),
            "runners_up": [
                {"parallelism": p.model_dump(), "value": v} for p, v in self.runners_up
            ],
            "candidates_valid": self.valid,
            "candidates_fit": self.fit,
            "candidates_evaluated": self.evaluated,
            "sram_min_chips": self.sram.to_dict() if self.sram else None,
        }


def _value(r: Result, objective: str) -> float:
    attr, _, _ = OBJECTIVES[objective]
    return float(getattr(r, attr))


def _rank_key(r: Result, objective: str) -> tuple[float, float, float]:
    """Smaller is better: the objective, then TPOT, then TTFT."""
    return (-OBJECTIVES[objective][1] * _value(r, objective), r.tpot_s, r.ttft_s)


def _overflow(plan: MemoryPlan) -> float:
    """Memory asked per chip over capacity (> 1 when it does not fit)."""
    need = plan.weights + plan.kv_cache + plan.activations + plan.reserve
    return need / plan.capacity if plan.capacity else math.inf


def _cost(w: Workload, batch: int | str, tpot_slo_s: float | None) -> Result | str:
    """The candidate costed through the one path, or why it cannot run (SLO missed)."""
    if batch != "max":
        return evaluate(w, batch)
    try:
        return evaluate_max(w, tpot_slo_s=tpot_slo_s)
    except ConfigError as exc:
        return str(exc)


def _objective(objective: str | None, batch: int | str) -> str:
    objective = objective or default_objective(batch)
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective {objective!r}: one of {', '.join(OBJECTIVES)}")
    return objective


def _no_valid(model: ModelSpec, chips: int, given: dict[str, int | None]) -> ConfigError:
    """One line: why no mapping exists with the given degrees (the first rule one breaks)."""
    fixed = {k: v for k, v in given.items() if v}
    probe = {"tp": 1, "pp": 1, "ep": 1, **fixed}
    probe["dp"] = fixed.get("dp") or max(1, chips // (probe["tp"] * probe["pp"]))
    try:
        Parallelism(**probe).validate_for(model, chips)
        why = "no combination of the other degrees is valid"
    except ConfigError as exc:
        why = str(exc)
    held = " ".join(f"--{k} {v}" for k, v in fixed.items()) or "no degrees fixed"
    return ConfigError(f"no valid mapping of {chips} chips for {model.name} ({held}): {why}")


@dataclass(frozen=True)
class _Pool:
    """Candidates after the memory check: those kept for costing (enumeration order), how many
    fit, and the one closest to fitting."""

    keep: list[Workload]
    fit: int
    closest: Workload | None


def _screen(ws: list[Workload], batch: int | str, objective: str, cap: int) -> _Pool:
    b = 1 if batch == "max" else int(batch)
    plans = [(i, w.plan(b)) for i, w in enumerate(ws)]
    fit = [(i, p.weights) for i, p in plans if p.fits]
    sign = 1 if objective in _MANY_CHIPS_FIRST else -1
    fit.sort(key=lambda iw: sign * iw[1])  # stable: enumeration order among equals
    keep = sorted(i for i, _ in fit[:cap])
    closest = min(plans, key=lambda ip: _overflow(ip[1]))[0] if plans else None
    return _Pool([ws[i] for i in keep], len(fit), None if closest is None else ws[closest])


def _objects(system: str | System, model: str | ModelSpec) -> tuple[System, ModelSpec]:
    from arch.presets import parse_system
    from workloads.presets import load_model

    return (
        parse_system(system) if isinstance(system, str) else system,
        load_model(model) if isinstance(model, str) else model,
    )


def _chosen_by(objective: str, batch: int | str, tpot_slo_s: float | None) -> str:
    _, sign, label = OBJECTIVES[objective]
    best = f"{'highest' if sign > 0 else 'lowest'} {label}"
    if batch != "max":
        return f"{best} at batch {batch} per replica"
    slo = f", TPOT <= {tpot_slo_s * 1e3:g} ms" if tpot_slo_s else ""
    return f"{best} at --batch max{slo}"


def choose_mapping(
    *,
    system: str | System,
    model: str | ModelSpec,
    quant: Any = "bf16",
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    dp: int | None = None,
    batch: int | str = 1,
    tpot_slo_s: float | None = None,
    input_len: int,
    output_len: int,
    objective: str | None = None,
    routing_skew: float = 0.0,
    efficiency_overrides: dict[str, float] | None = None,
    max_candidates: int | None = None,
    engine: str | None = None,
    moe_overlap: bool = False,
) -> Choice:
    """The best valid mapping of ``system`` for the request; ``None`` degrees are searched.

    Raises :class:`ConfigError` (one line) when no mapping is valid, when none fits at batch 1
    for ``batch="max"``, or when none meets ``tpot_slo_s``. At a given batch a request no
    mapping fits returns the closest one, not fitting (as :func:`sim.evaluate.evaluate` does).
    ``max_candidates``: how many fitting mappings to cost (default :data:`MAX_CANDIDATES`)."""
    objective = _objective(objective, batch)
    sys_, model_ = _objects(system, model)
    given = settled(model_, {"tp": tp, "pp": pp, "ep": ep, "dp": dp})
    pars = enumerate_mappings(model_, sys_.count, **given)
    if not pars:
        raise _no_valid(model_, sys_.count, given)
    common = {"system": sys_, "model": model_, "quant": quant, "input_len": input_len,
              "output_len": output_len, "routing_skew": routing_skew,
              "efficiency_overrides": efficiency_overrides, "engine": engine,
              "moe_overlap": moe_overlap}  # fmt: skip
    ws = [resolve_workload(**common, **p.model_dump()) for p in pars]
    cap = max_candidates or MAX_CANDIDATES["max" if batch == "max" else "batch"]
    pool = _screen(ws, batch, objective, cap)
    costed = [_cost(w, batch, tpot_slo_s) for w in pool.keep]
    costed = [_named(c, w) for c, w in zip(costed, pool.keep, strict=True)]
    ok = sorted((r for r in costed if isinstance(r, Result) and r.fits),
                key=lambda r: _rank_key(r, objective))  # fmt: skip
    chosen_by = _chosen_by(objective, batch, tpot_slo_s)
    if not ok:
        result, chosen_by = _nothing_runs(pool, costed, batch, len(pars), sys_.count)
    else:
        result = ok[0]
    sram = None
    if sys_.chip.sram_only and (tp is None or pp is None):  # the chips-per-replica question
        sram = smallest_sram_system(result.workload or ws[0])
    return Choice(
        result=result,
        objective=objective,
        chosen_by=chosen_by,
        ranked=tuple((r.workload.par, _value(r, objective)) for r in ok),
        searched=tuple(k for k, v in given.items() if not v),
        valid=len(pars),
        fit=pool.fit,
        evaluated=len(costed),
        sram=sram,
    )


def _nothing_runs(
    pool: _Pool, costed: list, batch: int | str, valid: int, chips: int
) -> tuple[Result, str]:
    """Batch given: the closest mapping, not fitting. ``"max"``: why nothing runs, raised."""
    if len(costed) == 1:  # it fits at batch 1 but misses the TPOT SLO
        raise ConfigError(str(costed[0]))
    if costed:  # every one misses the SLO: quote the fastest
        fastest = min(costed, key=_tpot_in)
        raise ConfigError(f"none of the {len(costed)} mappings that fit runs; the fastest: "
                          f"{fastest}")  # fmt: skip
    assert pool.closest is not None
    if batch == "max":
        try:
            max_batch(pool.closest)
        except ConfigError as exc:
            raise ConfigError(f"no mapping of {chips} chips fits: {exc}") from None
    why = (f"none of the {valid} valid mappings fits at batch {batch}; shown: the closest "
           "(least memory per chip over capacity)")  # fmt: skip
    return evaluate(pool.closest, 1 if batch == "max" else int(batch)), why


def _named(c: Result | str, w: Workload) -> Result | str:
    """A candidate's SLO miss, with its mapping."""
    if isinstance(c, Result):
        return c
    p = w.par
    return f"TP{p.tp} PP{p.pp} EP{p.ep} DP{p.dp}: {c}"


def _tpot_in(message: str) -> float:
    hit = re.search(r"TPOT ([0-9.]+) ms", message)
    return float(hit.group(1)) if hit else math.inf


def _valid_tps(model: ModelSpec) -> list[int]:
    ok = []
    for t in range(1, model.attention.num_heads + 1):
        try:
            Parallelism(tp=t).validate_for(model, t)
        except ConfigError:
            continue
        ok.append(t)
    return ok


_SRAM_METHOD = (
    "fewest chips over every valid TP x PP with DP 1, weights + KV at batch 1 in SRAM, "
    "not streamed"
)


def smallest_sram_system(w: Workload) -> SramFit | None:
    """Fewest chips of ``w``'s kind whose SRAM holds the model, weights and the KV cache of one
    sequence (batch 1, weights not streamed from a capacity tier): every valid tp x pp with dp 1
    (ep 1), fewest chips first, from the bound total weight bytes / SRAM per chip."""
    chip, model = w.system.chip, w.model
    total = weight_bytes_per_chip(model, Parallelism(), w.quant)
    lo = max(1, math.ceil(total / chip.main_memory.capacity_bytes))
    pairs = sorted((t * p, t, p) for t in _valid_tps(model)
                   for p in range(1, model.num_layers + 1) if t * p >= lo)  # fmt: skip
    for n, t, p in pairs:
        cand = resolve_workload(
            system=System(chip=chip, count=n), model=model, quant=w.quant, tp=t, pp=p,
            input_len=w.input_len, output_len=w.output_len, routing_skew=w.routing_skew,
            eff=w.eff, engine=w.engine, moe_overlap=w.moe_overlap,
        )  # fmt: skip
        plan = cand.plan(1)
        if plan.fits and plan.weight_split[2] == 0:  # no weight streams from a capacity tier
            return SramFit(n, cand.par, _SRAM_METHOD)
    return None
