"""Named efficiency factors per chip family, stored as data with where they came from.

Each factor is the achievable fraction of a peak (or a fixed cost) for one kernel class:

* ``gemm_16bit`` / ``gemm_8bit``: fraction of the dense matrix peak a large GEMM reaches, after
  tile
  and wave quantization are accounted for separately (8-bit also covers 6/4-bit).
* ``attention``: fraction of the matrix peak flash attention reaches.
* ``memory``: fraction of memory bandwidth a streaming kernel reaches.
* ``collective_bus``: fraction of per-direction link bandwidth ring/direct collectives reach;
  ``collective_in_network``: the same for in-switch reduction (NVLS/SHARP).
* ``collective_step_latency_s``: latency of one algorithm step of a collective.
* ``kernel_overhead_s``: fixed cost per kernel inside a step (launch-to-launch gap and tail, as in
  a CUDA graph or a serving engine); 0 on statically scheduled chips.
* ``isolated_launch_s``: extra fixed cost of a kernel timed *alone* (host launch latency, pipeline
  fill and drain that back-to-back kernels hide). It describes the microbenchmark harness, not the
  product: only single-kernel validation cases add it, so that isolated timings do not inflate
  ``kernel_overhead_s``.
* ``roofline_exponent``: p in t = (t_compute^p + t_memory^p)^(1/p); large p is the hard roofline
  max, smaller p models imperfect overlap near the ridge point.
* ``memory_reserve_fraction``: share of main memory unavailable to weights/KV (runtime, allocator).
* ``active_power_fraction``: power floor of an executing chip as a share of TDP (clocks ungated,
  schedulers, caches and leakage at temperature), on top of which per-FLOP and per-byte energy is
  added.
* ``layer_latency_s``: fixed latency of one layer on a statically scheduled or dataflow chip (the
  depth of the spatial pipeline a token crosses: on-chip network hops, functional-unit pipelines,
  the layer's chip-to-chip synchronisations); it lengthens one micro-batch's trip, not the
  throughput of a full pipeline. 0 where ``kernel_overhead_s`` models the per-op cost (GPUs).
* ``stage_hop_latency_s``: fixed latency of handing a micro-batch from one pipeline stage to the
  next (chip to chip, wafer to wafer), beyond the bytes' transfer time.
* ``energy_scale``: multiplier on every per-FLOP and per-byte energy of the chip preset (its
  datasheet- or paper-derived J/FLOP and J/B leave out clocks, control and data movement inside
  the chip); fitted with ``active_power_fraction`` on the board-power rows.

Resolution order, later wins: the ``default`` prior, the derived cross-family default of
``fitted.toml`` (median of fitted families), the family's own prior, the family's own fit. A family
with no fitted factor is flagged as extrapolated.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from arch.base import Frozen, SourceKind, load_toml

__all__ = [
    "EFFICIENCY_DIR",
    "FACTORS",
    "Factor",
    "FamilyEfficiency",
    "efficiency_for",
    "prior_for",
]

EFFICIENCY_DIR = Path(__file__).parent / "presets" / "efficiency"

FACTORS = (
    "gemm_16bit",
    "gemm_8bit",
    "attention",
    "memory",
    "collective_bus",
    "collective_in_network",
    "collective_step_latency_s",
    "kernel_overhead_s",
    "isolated_launch_s",
    "roofline_exponent",
    "memory_reserve_fraction",
    "active_power_fraction",
    "layer_latency_s",
    "stage_hop_latency_s",
    "energy_scale",
)


class Factor(Frozen):
    value: float = Field(ge=0)
    source: SourceKind
    rows: tuple[str, ...] = ()
    note: str = ""


class FamilyEfficiency(Frozen):
    family: str
    gemm_16bit: Factor
    gemm_8bit: Factor
    attention: Factor
    memory: Factor
    collective_bus: Factor
    collective_in_network: Factor
    collective_step_latency_s: Factor
    kernel_overhead_s: Factor
    isolated_launch_s: Factor
    roofline_exponent: Factor
    memory_reserve_fraction: Factor
    active_power_fraction: Factor
    layer_latency_s: Factor
    stage_hop_latency_s: Factor
    energy_scale: Factor

    @property
    def calibrated(self) -> bool:
        return any(getattr(self, f).source == "fitted" for f in FACTORS)

    def value(self, name: str) -> float:
        return getattr(self, name).value

    def provenance(self) -> dict[str, dict]:
        return {f: getattr(self, f).model_dump() for f in FACTORS}


@lru_cache(maxsize=1)
def _tables() -> tuple[dict, dict]:
    priors = load_toml(EFFICIENCY_DIR / "priors.toml")
    fitted_path = EFFICIENCY_DIR / "fitted.toml"
    fitted = load_toml(fitted_path) if fitted_path.exists() else {}
    return priors, fitted


def efficiency_for(family: str, *, overrides: dict[str, float] | None = None) -> FamilyEfficiency:
    """Factors for a chip family: fitted > family prior > default prior (> user overrides)."""
    priors, fitted = _tables()
    merged: dict[str, dict] = {}
    for layer in (
        priors.get("default", {}),
        fitted.get("default", {}),
        priors.get(family, {}),
        fitted.get(family, {}),
    ):
        for name, spec in layer.items():
            merged[name] = spec
    for name, value in (overrides or {}).items():
        merged[name] = {"value": value, "source": "user", "note": "scenario override"}
    return FamilyEfficiency(family=family, **merged)


def prior_for(family: str) -> FamilyEfficiency:
    """Priors only (no fitted values): the starting point and prior centre of calibration."""
    priors, _ = _tables()
    merged = {**priors.get("default", {}), **priors.get(family, {})}
    return FamilyEfficiency(family=family, **merged)


def clear_cache() -> None:
    """Forget loaded tables (after ``xpusim calibrate`` rewrites fitted.toml)."""
    _tables.cache_clear()
