"""Named efficiency factors per chip family, stored as data with where they came from.

Each factor is the achievable fraction of a peak (or a fixed cost) for one kernel class:

* ``gemm_16bit`` / ``gemm_8bit`` / ``gemm_4bit``: fraction of the dense matrix peak of that
  precision a large GEMM reaches, after tile and wave quantization are accounted for separately
  (``gemm_4bit`` covers the 6- and 4-bit formats; without 4-bit rows it is the family's 8-bit
  factor times a stated 4/8-bit ratio).
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
* ``step_overhead_s``: fixed cost of one forward pass of the serving engine, beyond its
  kernels (host scheduling, sampling, synchronisation), charged once per prefill or decode step.
* ``kernel_scale``: fraction of the microbenchmark GEMM and attention rates an engine's kernels
  reach inside a whole forward pass (1: the kernels the microbenchmarks timed).
* ``energy_scale``: multiplier on every per-FLOP and per-byte energy of the chip preset (its
  datasheet- or paper-derived J/FLOP and J/B leave out clocks, control and data movement inside
  the chip); fitted with ``active_power_fraction`` on the board-power rows.

Resolution order, later wins: the ``default`` prior, the derived cross-family default of
``fitted.toml`` (median of fitted families), the family's own prior, the family's own fit, then
the serving engine's tables: ``engine:NAME`` (prior, fit) and ``engine:NAME@FAMILY`` (prior,
fit), where the engine's software differs by family (kernels written for one vendor first). A
family with no fitted factor is flagged as extrapolated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from arch.base import Frozen, SourceKind, load_toml

__all__ = [
    "EFFICIENCY_DIR",
    "ENGINE_FACTORS",
    "FACTORS",
    "Factor",
    "FamilyEfficiency",
    "efficiency_for",
    "engine_tables",
    "prior_for",
    "use_fitted",
]

EFFICIENCY_DIR = Path(__file__).parent / "presets" / "efficiency"

FACTORS = (
    "gemm_16bit",
    "gemm_8bit",
    "gemm_4bit",
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
    "step_overhead_s",
    "kernel_scale",
)
# factors an engine table may set (the rest describe the silicon and its microbenchmarks)
ENGINE_FACTORS = ("step_overhead_s", "kernel_scale", "kernel_overhead_s")


class Factor(Frozen):
    value: float = Field(ge=0)
    source: SourceKind
    rows: tuple[str, ...] = ()
    note: str = ""


class FamilyEfficiency(Frozen):
    family: str
    gemm_16bit: Factor
    gemm_8bit: Factor
    gemm_4bit: Factor
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
    step_overhead_s: Factor
    kernel_scale: Factor
    engine: str = ""

    @property
    def calibrated(self) -> bool:
        """Whether the silicon's own factors rest on measurements (an engine's fit alone does not
        calibrate a chip family)."""
        return any(getattr(self, f).source == "fitted" for f in FACTORS if f not in ENGINE_FACTORS)

    def value(self, name: str) -> float:
        return getattr(self, name).value

    def provenance(self) -> dict[str, dict]:
        return {f: getattr(self, f).model_dump() for f in FACTORS}


_FITTED_IN_USE: list[dict] = []  # use_fitted(): the tables in place of the stored fitted.toml


@lru_cache(maxsize=1)
def _stored() -> tuple[dict, dict]:
    priors = load_toml(EFFICIENCY_DIR / "priors.toml")
    fitted_path = EFFICIENCY_DIR / "fitted.toml"
    fitted = load_toml(fitted_path) if fitted_path.exists() else {}
    return priors, fitted


def _tables() -> tuple[dict, dict]:
    priors, fitted = _stored()
    return priors, (_FITTED_IN_USE[-1] if _FITTED_IN_USE else fitted)


@contextmanager
def use_fitted(fitted: dict) -> Iterator[None]:
    """Resolve factors from the priors and ``fitted`` (the parsed tables of a fitted.toml)
    instead of the stored file, until the block ends (leave-one-out refits predict this way)."""
    _FITTED_IN_USE.append(fitted)
    _resolved.cache_clear()
    try:
        yield
    finally:
        _FITTED_IN_USE.pop()
        _resolved.cache_clear()


def engine_tables(family: str, engine: str | None) -> tuple[str, ...]:
    """The table names an engine adds for ``family``, in resolution order."""
    return (f"engine:{engine}", f"engine:{engine}@{family}") if engine else ()


def efficiency_for(
    family: str, *, engine: str | None = None, overrides: dict[str, float] | None = None
) -> FamilyEfficiency:
    """Factors for a chip family under a serving engine: default prior < derived default < family
    prior < family fit < engine prior < engine fit < engine-on-family prior < its fit (< user
    overrides). Memoized when nothing is overridden (:func:`clear_cache` forgets)."""
    if not overrides:
        return _resolved(family, engine or "")
    return _resolve(family, engine, overrides)


@lru_cache(maxsize=256)
def _resolved(family: str, engine: str) -> FamilyEfficiency:
    return _resolve(family, engine, None)


def _resolve(family: str, engine: str | None, overrides: dict[str, float] | None):
    priors, fitted = _tables()
    merged: dict[str, dict] = {}
    layers = [priors.get("default", {}), fitted.get("default", {}), priors.get(family, {}),
              fitted.get(family, {})]  # fmt: skip
    for table in engine_tables(family, engine):
        layers += [priors.get(table, {}), fitted.get(table, {})]
    for layer in layers:
        for name, spec in layer.items():
            merged[name] = spec
    for name, value in (overrides or {}).items():
        merged[name] = {"value": value, "source": "user", "note": "scenario override"}
    return FamilyEfficiency(family=family, engine=engine or "", **merged)


def prior_for(family: str, engine: str | None = None) -> FamilyEfficiency:
    """Priors only (no fitted values): the starting point and prior centre of calibration."""
    priors, _ = _tables()
    merged = {**priors.get("default", {}), **priors.get(family, {})}
    for table in engine_tables(family, engine):
        merged.update(priors.get(table, {}))
    return FamilyEfficiency(family=family, engine=engine or "", **merged)


def clear_cache() -> None:
    """Forget loaded tables and resolved factors (after ``xpusim calibrate`` rewrites
    fitted.toml)."""
    _stored.cache_clear()
    _resolved.cache_clear()
