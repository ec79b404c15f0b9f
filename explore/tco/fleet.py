"""Fleets at an SLO: sizing, $/M input and output tokens, tokens/s per MW, sensitivity, Monte
Carlo intervals and custom-ASIC payback, from a scenario file (``xpusim tco SCENARIO.toml``).

Sizing. Each fleet is a system (``CHIP:N`` or a ``design`` table priced by the physical model)
and a parallelism. Its replica runs the largest batch that fits in memory and meets the
interactivity SLO (TPOT <= 1 / ``tokens_per_s_per_user``); a replica then delivers
``batch x output_len / e2e`` output tokens/s. The fleet carries the peak hour of the daily
profile (``load x max(profile) / mean(profile)``), so ``utilization = mean load / capacity``.

Pricing. Ownership cost per hour (:mod:`explore.tco.inputs`) is split between prefill and
decode by the replica's time in each (TTFT vs the rest of e2e):
``$/M input = cost x TTFT/e2e / input tokens``,
``$/M output = cost x (1 - TTFT/e2e) / output tokens``, both at the computed utilization.
Sensitivity moves one uncertain input to its low and high value; Monte Carlo samples all of
them uniformly (seeded) for p5/p50/p95. Performance (the batch, TTFT, TPOT) does not move with
prices, so these are exact re-pricings, not re-simulations; efficiency factors are not varied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arch.base import ConfigError, load_toml
from arch.chip import System
from arch.physical import design_from_dict, technology
from arch.presets import parse_system
from explore.tco.inputs import TcoInputs, default_inputs, default_uncertainty, ownership
from sim.batching import max_batch
from sim.evaluate import evaluate, resolve_workload

__all__ = [
    "Fleet",
    "FleetResult",
    "Scenario",
    "contract",
    "load_scenario",
    "tco",
    "to_dataframe",
]


@dataclass(frozen=True)
class Fleet:
    name: str
    system: System
    quant: str
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    price_usd: float | None = None
    nre_usd: float = 0.0
    unit_cost_usd: float | None = None
    tco: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    input_len: int
    output_len: int
    load_output_tokens_per_s: float
    tokens_per_s_per_user: float | None
    profile: tuple[float, ...]
    fleets: tuple[Fleet, ...]
    tco: dict
    uncertainty: dict[str, tuple[float, float]]
    api_usd_per_m_output_tokens: float | None = None
    payback_reference: str | None = None
    samples: int = 400
    seed: int = 0


def _fleet(raw: dict, i: int) -> Fleet:
    name = raw.get("name") or f"fleet {i}"
    unknown = set(raw) - {"name", "system", "design", "chips", "quant", "tp", "pp", "ep", "dp",
                          "price_usd", "tco"}  # fmt: skip
    if unknown:
        raise ConfigError(f"[[fleet]] {name}: unknown key {sorted(unknown)[0]!r}")
    nre, unit = 0.0, None
    if "design" in raw:
        d = design_from_dict({"name": name.replace(" ", "-").lower(), **raw["design"]},
                             f"[[fleet]] {name} design")  # fmt: skip
        rep = d.report()
        if not rep.fits:
            raise ConfigError(f"[[fleet]] {name} design: {rep.note}")
        chip = d.to_chip(report=rep)
        system = System(chip=chip, count=int(raw.get("chips", 1)))
        nre = rep.cost["nre_per_unit"] * (d.volume_units or technology().cost.volume_units)
        unit = rep.unit_cost_usd - rep.cost["nre_per_unit"]
    elif "system" in raw:
        system = parse_system(raw["system"])
    else:
        raise ConfigError(f"[[fleet]] {name}: give system = 'CHIP:N' or a design table")
    return Fleet(name=name, system=system, quant=raw.get("quant", "bf16"),
                 tp=int(raw.get("tp", 1)), pp=int(raw.get("pp", 1)), ep=int(raw.get("ep", 1)),
                 dp=int(raw.get("dp", 1)), price_usd=raw.get("price_usd"), nre_usd=nre,
                 unit_cost_usd=unit, tco=dict(raw.get("tco", {})))  # fmt: skip


def load_scenario(path: str | Path) -> Scenario:
    raw = load_toml(Path(path))
    sc = raw.get("scenario", {})
    for key in ("model", "input_len", "output_len", "load_output_tokens_per_s"):
        if key not in sc:
            raise ConfigError(f"[scenario] {key}: required")
    fleets = tuple(_fleet(f, i) for i, f in enumerate(raw.get("fleet", [])))
    if not fleets:
        raise ConfigError(f"{path}: no [[fleet]] tables; add at least one")
    prof = tuple(float(x) for x in sc.get("daily_profile", [1.0]))
    if min(prof) < 0 or max(prof) <= 0:
        raise ConfigError("[scenario] daily_profile: relative loads must be >= 0, not all 0")
    unc = {k: tuple(float(x) for x in v) for k, v in raw.get("uncertainty", {}).items()}
    for k, v in unc.items():
        if len(v) != 2 or v[0] > v[1]:
            raise ConfigError(f"[uncertainty] {k}: give [low, high] with low <= high")
    return Scenario(
        name=str(sc.get("name", Path(path).stem)), model=sc["model"],
        input_len=int(sc["input_len"]), output_len=int(sc["output_len"]),
        load_output_tokens_per_s=float(sc["load_output_tokens_per_s"]),
        tokens_per_s_per_user=sc.get("tokens_per_s_per_user"), profile=prof, fleets=fleets,
        tco=dict(raw.get("tco", {})), uncertainty=unc or default_uncertainty(),
        api_usd_per_m_output_tokens=sc.get("api_usd_per_m_output_tokens"),
        payback_reference=raw.get("payback", {}).get("reference"),
        samples=int(raw.get("monte_carlo", {}).get("samples", 400)),
        seed=int(raw.get("monte_carlo", {}).get("seed", 0)),
    )  # fmt: skip


# --------------------------------------------------------------------------- sizing & pricing


@dataclass(frozen=True)
class Operating:
    """One replica at its SLO batch: performance the prices do not change."""

    batch: int
    ttft_s: float
    tpot_s: float
    e2e_s: float
    replica_tokens_per_s: float
    chips_per_replica: int
    busy_w: float
    notes: tuple[str, ...]


def operate(sc: Scenario, f: Fleet, *, batch: int | None = None) -> Operating:
    w = resolve_workload(system=f.system, model=sc.model, quant=f.quant, tp=f.tp, pp=f.pp,
                         ep=f.ep, dp=f.dp, input_len=sc.input_len, output_len=sc.output_len)
    slo = 1.0 / sc.tokens_per_s_per_user if sc.tokens_per_s_per_user else None
    try:
        b = batch or max_batch(w, tpot_slo_s=slo)
    except ConfigError as exc:
        raise ConfigError(f"fleet {f.name!r}: {exc}") from None
    r = evaluate(w, b)
    if not r.fits:
        raise ConfigError(f"fleet {f.name!r}: does not fit at batch {b}: {r.memory.reason}")
    return Operating(b, r.ttft_s, r.tpot_s, r.e2e_s, b * sc.output_len / r.e2e_s,
                     w.par.chips_per_replica, r.power_w, r.notes)  # fmt: skip


def _inputs(sc: Scenario, f: Fleet) -> TcoInputs:
    return default_inputs().with_overrides(sc.tco, "[tco]").with_overrides(f.tco, f"{f.name} tco")


@dataclass
class FleetResult:
    name: str
    systems: int
    chips: int
    usd_per_m_input_tokens: float
    usd_per_m_output_tokens: float
    tokens_per_s_per_mw: float
    tokens_per_s_per_mw_consumed: float
    capex_usd: float
    opex_usd_per_year: float
    utilization: float
    usd_per_chip_hour: float
    capex_breakdown: dict[str, float]
    opex_breakdown: dict[str, float]
    operating: Operating
    sensitivity: dict[str, list[float]] = field(default_factory=dict)
    monte_carlo: dict[str, float] = field(default_factory=dict)
    margin: float | None = None
    payback: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, name: str, reason: str) -> FleetResult:
        """A fleet that cannot serve the scenario (does not fit, misses the SLO): no numbers."""
        nan = math.nan
        op = Operating(0, nan, nan, nan, nan, 0, nan, ())
        return cls(name, 0, 0, nan, nan, nan, nan, nan, nan, nan, nan, {}, {}, op, error=reason)

    def to_dict(self) -> dict:
        d = {k: (None if isinstance(v, float) and math.isnan(v) else v)
             for k, v in self.__dict__.items() if k != "operating"}  # fmt: skip
        d["operating"] = self.operating.__dict__ | {"notes": list(self.operating.notes)}
        return d


def _price(f: Fleet) -> float:
    """Scenario price, else the preset's (a design's includes NRE over its volume)."""
    if f.price_usd is not None:
        return float(f.price_usd)
    if f.system.chip.price_usd is None:
        raise ConfigError(f"fleet {f.name!r}: chip {f.system.chip.name} has no price; "
                          "set price_usd")  # fmt: skip
    return f.system.chip.price_usd


def price_fleet(
    sc: Scenario,
    f: Fleet,
    op: Operating,
    *,
    overrides: dict | None = None,
    chip_price: float | None = None,
    systems: int | None = None,
) -> FleetResult:
    """Size (unless ``systems`` is given) and price one fleet; ``overrides`` adds the
    sensitivity keys (``chip_price_scale``, ``load_scale``) and any TcoInputs field."""
    ov = dict(overrides or {})
    price_scale, load_scale = ov.pop("chip_price_scale", 1.0), ov.pop("load_scale", 1.0)
    inp = _inputs(sc, f).with_overrides(ov, "sensitivity") if ov else _inputs(sc, f)
    peak_factor = max(sc.profile) / (sum(sc.profile) / len(sc.profile))
    replicas_per_system = max(1, f.system.count // op.chips_per_replica)
    need = sc.load_output_tokens_per_s * peak_factor / op.replica_tokens_per_s
    n_sys = systems or max(1, math.ceil(need / replicas_per_system - 1e-9))
    chips = n_sys * f.system.count
    capacity = n_sys * replicas_per_system * op.replica_tokens_per_s
    load = sc.load_output_tokens_per_s * load_scale
    util = min(1.0, load / capacity)
    price = (chip_price if chip_price is not None else _price(f)) * price_scale
    chip = f.system.chip
    own = ownership(inp, chips=chips, chip_price_usd=price, chip_tdp_w=chip.tdp_w,
                    chip_busy_w=op.busy_w, chip_idle_w=chip.idle_w, utilization=util)  # fmt: skip
    per_s = own.usd_per_hour / 3600.0
    pre = op.ttft_s / op.e2e_s
    out_tok_s = load  # delivered output tokens/s (on average)
    in_tok_s = load * sc.input_len / sc.output_len
    return FleetResult(
        name=f.name, systems=n_sys, chips=chips,
        usd_per_m_input_tokens=per_s * pre / in_tok_s * 1e6,
        usd_per_m_output_tokens=per_s * (1 - pre) / out_tok_s * 1e6,
        tokens_per_s_per_mw=capacity / (own.provisioned_w / 1e6),
        tokens_per_s_per_mw_consumed=load / (own.average_w / 1e6),
        capex_usd=own.capex_usd, opex_usd_per_year=own.opex_usd_per_year, utilization=util,
        usd_per_chip_hour=own.usd_per_hour / chips, capex_breakdown=own.capex_breakdown,
        opex_breakdown=own.opex_breakdown | {"annualized_capex": own.annualized_capex_usd},
        operating=op, inputs=_used(inp, price),
    )  # fmt: skip


def _used(inp: TcoInputs, price: float) -> dict[str, Any]:
    out = {k: {"value": v, "source": inp.sources[k].kind, "ref": inp.sources[k].ref}
           for k, v in inp.model_dump(exclude={"sources"}).items()}  # fmt: skip
    out["chip_price_usd"] = {"value": price, "source": "preset or scenario", "ref": ""}
    return out


def _sensitivity(sc: Scenario, f: Fleet, op: Operating, base: FleetResult) -> dict:
    out = {}
    for key, (lo, hi) in sc.uncertainty.items():
        vals = []
        for v in (lo, hi):
            r = price_fleet(sc, f, op, overrides={key: v}, systems=base.systems)
            vals.append(r.usd_per_m_output_tokens - base.usd_per_m_output_tokens)
        out[key] = vals
    return out


def _monte_carlo(sc: Scenario, f: Fleet, op: Operating, base: FleetResult) -> dict:
    rng = np.random.default_rng(sc.seed)
    keys = list(sc.uncertainty)
    draws = []
    for _ in range(sc.samples):
        ov = {k: float(rng.uniform(*sc.uncertainty[k])) for k in keys}
        if "years" in ov:
            ov["years"] = max(ov["years"], 0.5)
        r = price_fleet(sc, f, op, overrides=ov, systems=base.systems)
        draws.append(r.usd_per_m_output_tokens)
    p5, p50, p95 = np.percentile(draws, [5, 50, 95])
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95), "samples": sc.samples}


def _payback(sc: Scenario, f: Fleet, op: Operating, res: FleetResult, ref: FleetResult) -> dict:
    """Custom ASIC vs the reference fleet at the scenario's token volume: months to pay back
    the NRE from the yearly savings, and the unit volume at which $/M output tokens break even
    ($/M is linear in the chip price, so two pricings find the break-even price)."""
    unit = f.unit_cost_usd or 0.0
    at_unit = price_fleet(sc, f, op, chip_price=unit, systems=res.systems)
    at_2x = price_fleet(sc, f, op, chip_price=2 * unit + 1.0, systems=res.systems)
    slope = (at_2x.usd_per_m_output_tokens - at_unit.usd_per_m_output_tokens) / (unit + 1.0)
    gap = ref.usd_per_m_output_tokens - at_unit.usd_per_m_output_tokens
    be_price = unit + gap / slope if slope > 0 else math.inf

    def yearly(r: FleetResult) -> float:
        return r.opex_breakdown["annualized_capex"] + r.opex_usd_per_year

    savings = yearly(ref) - yearly(at_unit)
    return {
        "reference": ref.name, "nre_usd": f.nre_usd, "unit_cost_usd": unit,
        "savings_usd_per_year": savings,
        "payback_months": 12 * f.nre_usd / savings if savings > 0 else None,
        "break_even_chip_price_usd": be_price,
        "break_even_volume_units": f.nre_usd / (be_price - unit) if be_price > unit else None,
        "daily_output_tokens": sc.load_output_tokens_per_s * 86400,
    }  # fmt: skip


def tco(scenario: str | Path | Scenario) -> list[FleetResult]:
    """Size and price every fleet of a scenario (the ``xpusim tco`` computation)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    ops: dict[str, Operating] = {}
    results = []
    for f in sc.fleets:
        try:
            ops[f.name] = operate(sc, f)
        except ConfigError as exc:
            results.append(FleetResult.failed(f.name, str(exc)))
            continue
        r = price_fleet(sc, f, ops[f.name])
        r.sensitivity = _sensitivity(sc, f, ops[f.name], r)
        r.monte_carlo = _monte_carlo(sc, f, ops[f.name], r)
        if sc.api_usd_per_m_output_tokens:
            r.margin = 1 - r.usd_per_m_output_tokens / sc.api_usd_per_m_output_tokens
        results.append(r)
    by_name = {r.name: r for r in results}
    if sc.payback_reference and sc.payback_reference not in by_name:
        raise ConfigError(f"[payback] reference {sc.payback_reference!r}: no such fleet")
    for f, r in zip(sc.fleets, results, strict=True):
        ref = by_name.get(sc.payback_reference or "")
        if r.error or (ref is not None and ref.error):
            continue
        if f.nre_usd and sc.payback_reference:
            r.payback = _payback(sc, f, ops[f.name], r, by_name[sc.payback_reference])
    return results


def to_dataframe(results: list[FleetResult]):
    """One row per fleet (pandas is imported here, for notebooks)."""
    import pandas as pd

    rows = []
    for r in results:
        d = {k: v for k, v in r.to_dict().items() if not isinstance(v, dict)}
        d |= {f"capex.{k}": v for k, v in r.capex_breakdown.items()}
        d |= {f"opex.{k}": v for k, v in r.opex_breakdown.items()}
        d |= {f"mc.{k}": v for k, v in r.monte_carlo.items()}
        rows.append(d)
    return pd.DataFrame(rows).set_index("name")


def contract(results: list[FleetResult]) -> dict:
    keys = ("name", "systems", "chips", "usd_per_m_input_tokens", "usd_per_m_output_tokens",
            "tokens_per_s_per_mw", "capex_usd", "opex_usd_per_year", "utilization",
            "sensitivity")  # fmt: skip
    fleets = []
    for r in results:
        d = r.to_dict()
        fleets.append({k: d[k] for k in keys} | {k: d[k] for k in d if k not in keys})
    return {"fleets": fleets}
