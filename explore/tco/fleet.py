"""Fleets at an SLO: sizing, $/M input and output tokens, tokens/s per MW, sensitivity, Monte
Carlo intervals and custom-ASIC payback, from a scenario file (``xpusim tco SCENARIO.toml``).

Sizing. Each fleet is a system (``CHIP:N`` or a ``design`` table priced by the physical model)
and a parallelism. Its replica runs the largest batch that fits in memory and meets the
interactivity SLO (TPOT <= 1 / ``tokens_per_s_per_user``); a replica then delivers
``batch x output_len / e2e`` output tokens/s. Where ``[scenario]`` gives a length distribution
(``input_len``/``output_len`` as ``"lognormal:MEAN:STD"``, ``"uniform:LO:HI"`` or
``"file:PATH"``, the spellings of ``xpusim serve``), the replica's throughput, TTFT, TPOT and
power are the simulated steady state at that batch cap (:func:`explore.api.steady.steady_state`:
continuous batching of a closed batch of requests with those lengths); the mean lengths size the
cap and split prices between input and output tokens. The fleet carries the peak hour of the daily
profile (``load x max(profile) / mean(profile)``), so ``utilization = mean load / capacity``.

Pricing. Ownership cost per hour (:mod:`explore.tco.inputs`) is split between prefill and
decode by the replica's time in each (TTFT vs the rest of e2e):
``$/M input = cost x TTFT/e2e / input tokens``,
``$/M output = cost x (1 - TTFT/e2e) / output tokens``, both at the computed utilization.
Sensitivity moves one uncertain input to its low and high value; Monte Carlo samples all of
them uniformly (seeded) for p5/p50/p95. Performance (the batch, TTFT, TPOT) does not move with
prices, so these are exact re-pricings, not re-simulations. The prediction error does move it:
Monte Carlo also multiplies the fleet's tokens/s by a draw from its family's out-of-sample
throughput band (:mod:`sim.intervals`) and re-sizes the fleet at that speed, and ``interval``
gives $/M tokens at the two ends of that band.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from arch.base import (
    ConfigError,
    UserConfig,
    config_error,
    field_error,
    load_config,
    partial_model,
)
from arch.chip import System
from arch.engine import engine_names
from arch.physical import ChipDesign, technology
from arch.presets import parse_system
from explore.tco.inputs import TcoInputs, default_inputs, default_uncertainty, ownership
from sim.intervals import Band, band, intervals_for
from sim.mapping import choose_mapping

__all__ = [
    "Fleet",
    "FleetResult",
    "Scenario",
    "TcoFile",
    "contract",
    "load_tco_scenario",
    "monte_carlo_samples",
    "tco",
    "to_dataframe",
    "toml_fields",
]


@dataclass(frozen=True)
class Fleet:
    name: str
    system: System
    quant: str
    engine: str | None = None  # None: the one the chip family is assumed to run
    tp: int | None = None  # None: chosen (sim.mapping), the highest throughput at the SLO
    pp: int | None = None
    ep: int | None = None
    dp: int | None = None
    price_usd: float | None = None
    nre_usd: float = 0.0
    unit_cost_usd: float | None = None
    tco: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    input_len: int  # the mean, where lengths gives a distribution
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
    lengths: tuple[str, str] | None = None  # (input, output) spellings when one is a distribution


# --------------------------------------------------------------------------- the file's schema

TcoOverrides = partial_model(TcoInputs, exclude=("sources",))
SCALES = ("chip_price_scale", "load_scale")  # uncertain inputs that scale, not TcoInputs fields


class ScenarioTable(UserConfig):
    """``[scenario]``: the model, lengths, load and interactivity SLO every fleet is sized for."""

    name: str | None = None
    model: str
    input_len: int | str  # tokens, or a distribution: "lognormal:MEAN:STD", ...
    output_len: int | str
    load_output_tokens_per_s: float = Field(gt=0)
    tokens_per_s_per_user: float | None = Field(default=None, gt=0)
    daily_profile: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [1.0])
    api_usd_per_m_output_tokens: float | None = Field(default=None, gt=0)

    @field_validator("input_len", "output_len")
    @classmethod
    def _length(cls, v: int | str, info: ValidationInfo) -> int | str:
        """A length or a distribution; ``file:PATH`` relative to the scenario file's folder."""
        from sim.traffic import parse_length

        folder = (info.context or {}).get("dir")
        if isinstance(v, str) and v.strip().startswith("file:") and folder is not None:
            path = Path(v.strip().removeprefix("file:"))
            v = "file:" + str(path if path.is_absolute() else Path(folder) / path)
        parse_length(v, info.field_name or "length")  # a ConfigError with the spellings it takes
        return v

    @field_validator("daily_profile")
    @classmethod
    def _some_load(cls, v: list[float]) -> list[float]:
        if not v or max(v) <= 0:
            raise ValueError("give relative loads >= 0, not all 0 (e.g. [0.5, 1.0, 1.5])")
        return v


class DesignTable(ChipDesign, UserConfig):
    """A fleet's custom chip: a ChipDesign read as a user's table (finite numbers, a unit
    error names its key)."""


class FleetTable(UserConfig):
    """One ``[[fleet]]``: a ``system`` (``CHIP:N``) or a ``design`` table of ``chips`` chips
    (priced by the physical model), the quantization and the layout of the model on it."""

    name: str | None = None
    system: str | None = None
    design: DesignTable | None = None
    chips: int = Field(default=1, ge=1)
    quant: str = "bf16"
    engine: str | None = None  # the serving engine (arch/presets/engines.toml); omitted: assumed
    tp: int | None = Field(default=None, ge=1)  # omitted: chosen, see operate()
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    dp: int | None = Field(default=None, ge=1)
    price_usd: float | None = Field(default=None, ge=0)
    tco: TcoOverrides = Field(default_factory=TcoOverrides)

    @model_validator(mode="after")
    def _one_system(self) -> FleetTable:
        if (self.system is None) == (self.design is None):
            raise ValueError("give system = 'CHIP:N' or a design table (one of them)")
        if self.system is not None and "chips" in self.model_fields_set:
            raise field_error(("chips",), "counts a design's chips; write the count in system "
                              "= 'CHIP:N'", self.chips)  # fmt: skip
        return self


class MonteCarloTable(UserConfig):
    samples: int = Field(default=400, ge=1, le=100_000)  # each sample re-prices every fleet
    seed: int = Field(default=0, ge=0)


class PaybackTable(UserConfig):
    reference: str | None = None  # the fleet a custom ASIC is compared with


class TcoFile(UserConfig):
    """A TCO scenario file: ``[scenario]``, ``[[fleet]]`` tables, and optional ``[tco]``
    overrides, ``[uncertainty]`` ranges ``{input = [low, high]}``, ``[payback]`` and
    ``[monte_carlo]``."""

    scenario: ScenarioTable
    fleet: list[FleetTable] = Field(default_factory=list, validate_default=True)
    tco: TcoOverrides = Field(default_factory=TcoOverrides)
    uncertainty: dict[str, tuple[float, float]] = Field(default_factory=dict)
    payback: PaybackTable = PaybackTable()
    monte_carlo: MonteCarloTable = MonteCarloTable()

    @field_validator("fleet")
    @classmethod
    def _some_fleet(cls, v: list[FleetTable]) -> list[FleetTable]:
        if not v:
            raise ValueError("no [[fleet]] tables; add at least one")
        return v

    @field_validator("uncertainty")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for key, (low, high) in v.items():
            _check_range(key, low, high)
        return v

    @model_validator(mode="after")
    def _fleet_names(self) -> TcoFile:
        names = _names(self.fleet)
        for i, name in enumerate(names):
            if name in names[:i]:
                raise field_error(("fleet", i, "name"), f"a second fleet named {name!r}; "
                                  "give each fleet its own name", name)  # fmt: skip
        ref = self.payback.reference
        if ref is not None and ref not in names:
            msg = f"no fleet named {ref!r}; one of {', '.join(map(repr, names))}"
            raise field_error(("payback", "reference"), msg, ref)
        return self


def _names(fleets: list[FleetTable]) -> list[str]:
    return [f.name or f"fleet {i}" for i, f in enumerate(fleets)]


def _check_range(key: str, low: float, high: float) -> None:
    """An ``[uncertainty]`` entry: a known input, both ends valid values of it, low <= high."""
    if key in SCALES:
        if low <= 0:
            raise field_error((key,), "a scale must be > 0", low)
    elif key in TcoOverrides.model_fields:
        TcoOverrides.model_validate({key: low})  # errors come out at uncertainty.KEY
        TcoOverrides.model_validate({key: high})
    else:
        known = ", ".join([*TcoOverrides.model_fields, *SCALES])
        raise field_error((key,), f"not an input that can vary; one of {known}", key)
    if low > high:
        raise field_error((key,), "give [low, high] with low <= high", [low, high])


def load_tco_scenario(path: str | Path) -> Scenario:
    """Read a TCO scenario file (``xpusim tco FILE``): validated by :class:`TcoFile`, fleets
    resolved (presets loaded, designs priced); every error is one line naming file and key."""
    f = load_config(path, TcoFile)
    sc, origin, names = f.scenario, str(path), _names(f.fleet)
    fleets = tuple(_fleet(t, i, names[i], origin) for i, t in enumerate(f.fleet))
    return Scenario(
        name=sc.name if sc.name is not None else Path(path).stem, model=sc.model,
        input_len=_mean_len(sc.input_len), output_len=_mean_len(sc.output_len),
        lengths=_lengths(sc.input_len, sc.output_len),
        load_output_tokens_per_s=sc.load_output_tokens_per_s,
        tokens_per_s_per_user=sc.tokens_per_s_per_user, profile=tuple(sc.daily_profile),
        fleets=fleets, tco=f.tco.model_dump(exclude_unset=True),
        uncertainty=dict(f.uncertainty) or default_uncertainty(),
        api_usd_per_m_output_tokens=sc.api_usd_per_m_output_tokens,
        payback_reference=f.payback.reference, samples=f.monte_carlo.samples,
        seed=f.monte_carlo.seed,
    )  # fmt: skip


def _mean_len(v: int | str) -> int:
    from sim.traffic import parse_length

    return max(1, round(parse_length(v).mean))


def _lengths(inp: int | str, out: int | str) -> tuple[str, str] | None:
    """The two spellings when either is a distribution (None: both are fixed lengths)."""
    from explore.api.steady import is_distribution

    return (str(inp), str(out)) if is_distribution(inp) or is_distribution(out) else None


def _fleet(t: FleetTable, i: int, name: str, origin: str) -> Fleet:
    nre, unit = 0.0, None
    if t.design is not None:
        system, nre, unit = _designed(t, name, origin, ("fleet", i, "design"))
    else:
        try:
            system = parse_system(t.system)
        except ConfigError as exc:
            raise config_error(origin, ("fleet", i, "system"), str(exc)) from None
    if t.engine is not None and t.engine not in engine_names():
        raise config_error(origin, ("fleet", i, "engine"),
                           f"unknown engine {t.engine!r}; choose one of "
                           f"{', '.join(engine_names())}")  # fmt: skip
    return Fleet(name=name, system=system, quant=t.quant, engine=t.engine, tp=t.tp, pp=t.pp,
                 ep=t.ep, dp=t.dp,
                 price_usd=t.price_usd, nre_usd=nre, unit_cost_usd=unit,
                 tco=t.tco.model_dump(exclude_unset=True))  # fmt: skip


def _designed(t: FleetTable, name: str, origin: str, loc: tuple) -> tuple[System, float, float]:
    """A design table priced by the physical model: its system, NRE and unit cost (less NRE)."""
    d = t.design
    if "name" not in d.model_fields_set:
        d = d.model_copy(update={"name": name.replace(" ", "-").lower()})
    try:
        rep = d.report()
        if not rep.fits:
            raise ConfigError(rep.note)
        chip = d.to_chip(report=rep)
    except ConfigError as exc:
        raise config_error(origin, loc, str(exc)) from None
    nre = rep.cost["nre_per_unit"] * (d.volume_units or technology().cost.volume_units)
    try:
        system = System(chip=chip, count=t.chips)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        msg = msg.replace("scale_up.bandwidth_bytes_per_s", "link_bytes_per_s")
        raise config_error(origin, loc, msg) from None
    return system, nre, rep.unit_cost_usd - rep.cost["nre_per_unit"]


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
    """One replica of the fleet at its operating point: the given batch, else the batch with the
    most tokens/s that meets the SLO; degrees the fleet omits are chosen the same way (the
    mapping with the most tokens/s at the SLO, :func:`sim.mapping.choose_mapping`)."""
    slo = 1.0 / sc.tokens_per_s_per_user if sc.tokens_per_s_per_user else None
    degrees = {"tp": f.tp, "pp": f.pp, "ep": f.ep, "dp": f.dp}
    if sc.lengths is not None and batch is None:
        return _steady(sc, f, degrees, slo)
    try:
        choice = choose_mapping(system=f.system, model=sc.model, quant=f.quant, **degrees,
                                batch=batch or "max", tpot_slo_s=None if batch else slo,
                                input_len=sc.input_len, output_len=sc.output_len,
                                objective="tokens_per_s", engine=f.engine)  # fmt: skip
    except ConfigError as exc:
        raise ConfigError(f"fleet {f.name!r}: {toml_fields(str(exc))}") from None
    r = choice.result
    if not r.fits:
        raise ConfigError(f"fleet {f.name!r}: does not fit at batch {r.batch}: {r.memory.reason}")
    par = r.config["parallelism"]
    notes = r.notes
    if choice.searched:
        notes = (*notes, "mapping chosen: TP{tp} PP{pp} EP{ep} DP{dp}".format(**par))
    return Operating(r.batch, r.ttft_s, r.tpot_s, r.e2e_s, r.batch * sc.output_len / r.e2e_s,
                     par["tp"] * par["pp"], r.power_w, notes)  # fmt: skip


def _steady(sc: Scenario, f: Fleet, degrees: dict, slo: float | None) -> Operating:
    """:func:`operate` for a scenario with length distributions: the simulated steady state of
    one replica at the SLO batch cap (mapping and cap chosen at the mean lengths)."""
    from explore.api.steady import steady_state

    assert sc.lengths is not None
    try:
        r = steady_state(f.system, sc.model, f.quant, **degrees, input_len=sc.lengths[0],
                         output_len=sc.lengths[1], tpot_slo_s=slo,
                         objective="tokens_per_s", engine=f.engine)  # fmt: skip
    except ConfigError as exc:
        raise ConfigError(f"fleet {f.name!r}: {toml_fields(str(exc))}") from None
    if not r.fits:
        raise ConfigError(f"fleet {f.name!r}: does not fit at batch {r.batch}: {r.memory.reason}")
    par = r.config["parallelism"]
    assert r.output_tokens_per_s is not None
    return Operating(r.batch, r.ttft_s, r.tpot_s, r.e2e_s, r.output_tokens_per_s / par["dp"],
                     par["tp"] * par["pp"], r.power_w, r.notes)  # fmt: skip


# the command-line spellings the shared core uses in its messages, and the scenario file's
# fields that set the same thing in ``xpusim tco`` (longest first)
_FLAGS = (
    (re.compile(r"--(?:tp|pp|ep|dp) [^\s)]+(?: --(?:tp|pp|ep|dp) [^\s)]+)*"),
     lambda m: "[[fleet]] " + ", ".join(" = ".join(d.split()) for d in
                                         m[0].removeprefix("--").split(" --"))),
    (re.compile(r"--tp/--pp/--dp"), "[[fleet]] tp/pp/dp"),
    (re.compile(r"--input-len(/| and )--output-len"), r"[scenario] input_len\1output_len"),
    (re.compile(r"--(input|output)-len"), r"[scenario] \1_len"),
    (re.compile(r"--batch max"), "the largest batch that fits"),
    (re.compile(r"--([a-z][a-z-]*)"), lambda m: m[1].replace("-", "_")),
)


def toml_fields(message: str) -> str:
    """A core error message with its command-line flags (``--tp 3``, ``--input-len``) written
    as the TCO scenario file's fields (``[[fleet]] tp = 3``, ``[scenario] input_len``): the
    user of ``xpusim tco`` edits the file, not flags."""
    for pattern, repl in _FLAGS:
        message = pattern.sub(repl, message)
    return message


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
    interval: dict[str, list[float]] = field(default_factory=dict)  # [low, high]: prediction error
    extrapolated: list[str] = field(default_factory=list)
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
                          "set price_usd in its [[fleet]] table")  # fmt: skip
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


def _throughput_band(f: Fleet, op: Operating) -> Band:
    """The out-of-sample error band of the fleet family's throughput (:mod:`sim.intervals`),
    widened when the operating point's notes say EXTRAPOLATED."""
    extrapolated = any("EXTRAPOLATED" in n for n in op.notes)
    return band(f.system.chip.family, "throughput", extrapolated=extrapolated)


def _at_speed(op: Operating, factor: float) -> Operating:
    """The operating point if the chips deliver ``factor`` x the predicted tokens/s (TTFT and
    e2e scale together, so the prefill/decode cost split does not move)."""
    return replace(op, replica_tokens_per_s=op.replica_tokens_per_s * factor)


def _interval(sc: Scenario, f: Fleet, op: Operating, b: Band) -> dict[str, list[float]]:
    """$/M tokens and tokens/s per chip at the ends of the throughput band, the fleet re-sized
    for the peak at that speed (a slower chip needs more of them): [low, high]."""
    fast = price_fleet(sc, f, _at_speed(op, math.exp(b.hi)))
    slow = price_fleet(sc, f, _at_speed(op, math.exp(b.lo)))
    per_chip = op.replica_tokens_per_s / op.chips_per_replica
    return {
        "usd_per_m_output_tokens": [fast.usd_per_m_output_tokens, slow.usd_per_m_output_tokens],
        "usd_per_m_input_tokens": [fast.usd_per_m_input_tokens, slow.usd_per_m_input_tokens],
        "output_tokens_per_s_per_chip": list(b.apply(per_chip)),
    }


def _with_interval(sc: Scenario, f: Fleet, op: Operating, r: FleetResult) -> None:
    """``r.interval`` (the throughput band's ends, priced) and ``r.extrapolated`` (why the band
    is widened, :mod:`sim.intervals`; an uncalibrated family says so in the notes)."""
    b = _throughput_band(f, op)
    r.interval = _interval(sc, f, op, b)
    values = {"output_tokens_per_s_per_chip": op.replica_tokens_per_s / op.chips_per_replica}
    iv = intervals_for(f.system.chip.family, values, calibrated=True, notes=op.notes)
    r.extrapolated = iv["extrapolated"]


def _monte_carlo(sc: Scenario, f: Fleet, op: Operating, point: float, progress=None) -> dict:
    """p5/p50/p95 of $/M output tokens over the uncertain inputs (uniform in their ranges, the
    fleet held at its size: exact re-pricings) and the prediction error of throughput: a factor
    drawn log-uniformly between the ends of the family's band (:func:`_throughput_band`; the
    band is the p10-p90 of out-of-sample error, so the tails are left out, as the price ranges
    leave out theirs), the fleet re-sized for the peak at the drawn speed. The error draws come
    from their own stream (seed, 1): the price draws are those of the seed alone.
    ``point_percentile``: where the headline $/M (``point``, at the nominal inputs and the
    predicted speed) sits among the draws (the share below it, ties counted half, in %)."""
    rng = np.random.default_rng(sc.seed)
    speed = np.random.default_rng([sc.seed, 1])
    b = _throughput_band(f, op)
    keys = list(sc.uncertainty)
    draws = []
    for _ in range(sc.samples):
        ov = {k: float(rng.uniform(*sc.uncertainty[k])) for k in keys}
        if "years" in ov:
            ov["years"] = max(ov["years"], 0.5)
        at = _at_speed(op, math.exp(float(speed.uniform(b.lo, b.hi))))
        draws.append(price_fleet(sc, f, at, overrides=ov).usd_per_m_output_tokens)
        if progress is not None:
            progress(1)
    p5, p50, p95 = np.percentile(draws, [5, 50, 95])
    d = np.asarray(draws)
    at_point = 100.0 * (np.sum(d < point) + 0.5 * np.sum(d == point)) / d.size
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95), "samples": sc.samples,
            "point_percentile": float(at_point),
            "throughput_factor_low": math.exp(b.lo),
            "throughput_factor_high": math.exp(b.hi)}  # fmt: skip


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


def tco(scenario: str | Path | Scenario, *, progress=None) -> list[FleetResult]:
    """Size and price every fleet of a scenario (the ``xpusim tco`` computation).
    ``progress(n)``, if given, is called as Monte Carlo samples are priced (they sum to
    :func:`monte_carlo_samples`; a fleet that cannot serve counts its samples at once)."""
    sc = scenario if isinstance(scenario, Scenario) else load_tco_scenario(scenario)
    ops: dict[str, Operating] = {}
    results = []
    for f in sc.fleets:
        try:
            ops[f.name] = operate(sc, f)
        except ConfigError as exc:
            results.append(FleetResult.failed(f.name, str(exc)))
            if progress is not None:
                progress(sc.samples)
            continue
        r = price_fleet(sc, f, ops[f.name])
        r.sensitivity = _sensitivity(sc, f, ops[f.name], r)
        r.monte_carlo = _monte_carlo(sc, f, ops[f.name], r.usd_per_m_output_tokens, progress)
        _with_interval(sc, f, ops[f.name], r)
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


def monte_carlo_samples(sc: Scenario) -> int:
    """Prices the Monte Carlo of :func:`tco` draws in all (samples per fleet x fleets)."""
    return sc.samples * len(sc.fleets)


def to_dataframe(results: list[FleetResult]):
    """One row per fleet (pandas is imported here, for notebooks)."""
    from sim.evaluate import require_pandas

    pd = require_pandas("explore.tco.to_dataframe()")

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
