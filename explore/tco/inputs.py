"""Total cost of ownership: capex, opex, cost per hour and $/M tokens of accelerators in service.

For ``chips`` accelerators bought at ``chip_price_usd`` each::

    capex      = chips x (chip + host share + network share) + datacenter $/MW x provisioned MW
    provisioned MW = chips x (TDP + host W + network W) x PUE
    annualized = capex x CRF(rate, years) - residual x rate / ((1 + rate)^years - 1)
                 (straight line (capex - residual) / years when rate = 0)
    opex/year  = energy (average power x PUE x 8760 h x $/kWh) + colocation $/kW-month x 12
                 + maintenance x hardware capex + software $/chip-year
    $/hour     = (annualized + opex) / 8760
    $/M tokens = $/hour / (tokens/s x utilization x 3600) x 1e6

Average power is ``utilization x busy + (1 - utilization) x idle`` per accelerator plus hosts and
network. Every default is in ``explore/tco/tco.toml`` with its source; overrides are named.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from arch.base import (
    ConfigError,
    Frozen,
    Source,
    format_validation_error,
    load_toml,
    split_sources,
)

__all__ = [
    "HOURS_PER_YEAR",
    "Ownership",
    "TcoInputs",
    "default_inputs",
    "default_uncertainty",
    "ownership",
]

HOURS_PER_YEAR = 8760.0
TCO_FILE = Path(__file__).parent / "tco.toml"


class TcoInputs(Frozen):
    years: float = Field(gt=0)
    interest_rate: float = Field(ge=0)
    residual_fraction: float = Field(ge=0, le=1)
    usd_per_kwh: float = Field(ge=0)
    pue: float = Field(ge=1)
    utilization: float = Field(gt=0, le=1)
    host_usd_per_chip: float = Field(ge=0)
    host_w_per_chip: float = Field(ge=0)
    network_usd_per_chip: float = Field(ge=0)
    network_w_per_chip: float = Field(ge=0)
    datacenter_usd_per_mw: float = Field(ge=0)
    colocation_usd_per_kw_month: float = Field(ge=0)
    maintenance_fraction_per_year: float = Field(ge=0)
    software_usd_per_chip_year: float = Field(ge=0)
    sources: dict[str, Source] = Field(default_factory=dict, repr=False)

    def with_overrides(self, overrides: dict | None, origin: str = "[tco]") -> TcoInputs:
        if not overrides:
            return self
        data = self.model_dump(exclude={"sources"}) | dict(overrides)
        sources = dict(self.sources)
        for key in overrides:
            sources[key] = Source(kind="user", ref=f"{origin} override")
        try:
            return TcoInputs(**data, sources=sources)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, origin)) from None


@lru_cache(maxsize=1)
def _defaults() -> tuple[dict, dict]:
    raw = load_toml(TCO_FILE)
    return split_sources(raw, refs=raw.pop("refs", {}), strict=True)


@lru_cache(maxsize=1)
def default_inputs() -> TcoInputs:
    values, sources = _defaults()
    values = {k: v for k, v in values.items() if k != "uncertainty"}
    return TcoInputs(**values, sources=sources)


def default_uncertainty() -> dict[str, tuple[float, float]]:
    """[low, high] per input varied by sensitivity and Monte Carlo (sourced in tco.toml)."""
    return {k: (float(v[0]), float(v[1])) for k, v in _defaults()[0]["uncertainty"].items()}


def capital_recovery_factor(rate: float, years: float) -> float:
    """Annual payment per $ of capital: r (1+r)^n / ((1+r)^n - 1); 1/n at r = 0."""
    if rate == 0:
        return 1.0 / years
    g = (1 + rate) ** years
    return rate * g / (g - 1)


@dataclass(frozen=True)
class Ownership:
    """Yearly money of a group of accelerators (USD); ``usd_per_hour`` is everything per hour."""

    capex_usd: float
    capex_breakdown: dict[str, float]
    annualized_capex_usd: float
    opex_usd_per_year: float
    opex_breakdown: dict[str, float]
    provisioned_w: float
    average_w: float

    @property
    def usd_per_hour(self) -> float:
        return (self.annualized_capex_usd + self.opex_usd_per_year) / HOURS_PER_YEAR


def ownership(
    inp: TcoInputs,
    *,
    chips: int | float,
    chip_price_usd: float,
    chip_tdp_w: float,
    chip_busy_w: float,
    chip_idle_w: float,
    utilization: float | None = None,
) -> Ownership:
    """Capex and opex of ``chips`` accelerators with their hosts, network and building."""
    u = inp.utilization if utilization is None else utilization
    overhead_w = inp.host_w_per_chip + inp.network_w_per_chip
    provisioned = chips * (chip_tdp_w + overhead_w) * inp.pue
    hardware = {
        "accelerators": chips * chip_price_usd,
        "hosts": chips * inp.host_usd_per_chip,
        "network": chips * inp.network_usd_per_chip,
    }
    capex = {**hardware, "datacenter": inp.datacenter_usd_per_mw * provisioned / 1e6}
    total = sum(capex.values())
    residual = inp.residual_fraction * sum(hardware.values())
    crf = capital_recovery_factor(inp.interest_rate, inp.years)
    sinking = crf - inp.interest_rate  # = r / ((1+r)^n - 1), 1/n at r = 0
    annual = total * crf - residual * sinking
    avg_chip = u * chip_busy_w + (1 - u) * chip_idle_w
    average = chips * (avg_chip + overhead_w) * inp.pue
    opex = {
        "energy": average / 1e3 * HOURS_PER_YEAR * inp.usd_per_kwh,
        "colocation": inp.colocation_usd_per_kw_month * provisioned / 1e3 * 12,
        "maintenance": inp.maintenance_fraction_per_year * sum(hardware.values()),
        "software": inp.software_usd_per_chip_year * chips,
    }
    return Ownership(
        capex_usd=total,
        capex_breakdown=capex,
        annualized_capex_usd=annual,
        opex_usd_per_year=sum(opex.values()),
        opex_breakdown=opex,
        provisioned_w=provisioned,
        average_w=average,
    )


def usd_per_m_tokens(own: Ownership, tokens_per_s: float, utilization: float) -> float:
    """$ per million tokens for a fleet producing ``tokens_per_s`` at full load (inf at 0;
    works on arrays)."""
    with np.errstate(divide="ignore"):
        out = own.usd_per_hour / (np.asarray(tokens_per_s) * utilization * 3600.0) * 1e6
    return float(out) if np.ndim(out) == 0 else out
