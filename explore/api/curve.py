"""``curve``: output tokens/s per user against output tokens/s per chip, over batch and mapping,
for one or more systems — the Pareto chart users read in AIConfigurator and InferenceMAX.

For each system, every valid mapping of its chips (:func:`sim.mapping.enumerate_mappings`) is
resolved through the one evaluation path (:func:`sim.evaluate.resolve_workload`); the largest
batch per replica that fits in memory is found by bisection on the memory plan (capped by the
engine's scheduler limit and ``max_batch``), and a geometric grid of batches up to it
(:func:`batch_grid`: powers of two plus the largest) is costed with
:func:`sim.evaluate.cost_run`, the function ``evaluate`` and ``--batch max`` use. A point is a
static batch: per-user speed is 1 / TPOT (mean over the output), per-chip throughput the
replica's output tokens over its end-to-end time, divided by its chips.

``pareto`` marks, per system, the points no other point of that system beats on both axes among
those meeting the SLOs (TPOT <= ``tpot_slo_s``, TTFT <= ``ttft_slo_s``; ``meets_slo``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from arch.base import ConfigError
from arch.chip import System
from arch.presets import parse_system
from kernels.pack import pack_design
from sim.evaluate import Workload, cost_run, resolve_workload
from sim.mapping import enumerate_mappings
from workloads.model import ModelSpec
from workloads.presets import load_model

__all__ = ["BATCH_CAP", "Curve", "CurvePoint", "batch_grid", "curve", "largest_batch"]

BATCH_CAP = 1 << 16  # sequences per replica when neither the engine nor the caller caps it


@dataclass(frozen=True)
class CurvePoint:
    """One static batch on one mapping of one system (SI units, per replica batch)."""

    system: str
    parallelism: dict[str, int]
    batch: int
    tokens_per_s_per_user: float
    output_tokens_per_s_per_chip: float
    output_tokens_per_s: float
    ttft_s: float
    tpot_s: float
    meets_slo: bool = True
    pareto: bool = False

    @property
    def mapping(self) -> str:
        p = self.parallelism
        return f"TP{p['tp']} PP{p['pp']} EP{p['ep']} DP{p['dp']}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Curve:
    """Every costed point of every system, and what could not run (``skipped``: one line per
    system or mapping with no batch that fits)."""

    points: tuple[CurvePoint, ...]
    model: str
    quant: str
    input_len: int
    output_len: int
    tpot_slo_s: float | None = None
    ttft_slo_s: float | None = None
    skipped: tuple[str, ...] = field(default=())

    def frontier(self, system: str) -> list[CurvePoint]:
        """The Pareto points of ``system``, fastest per user first."""
        pts = [p for p in self.points if p.system == system and p.pareto]
        return sorted(pts, key=lambda p: -p.tokens_per_s_per_user)

    @property
    def systems(self) -> list[str]:
        return list(dict.fromkeys(p.system for p in self.points))

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": [p.to_dict() for p in self.points],
            "model": self.model,
            "quant": self.quant,
            "input_len": self.input_len,
            "output_len": self.output_len,
            "tpot_slo_s": self.tpot_slo_s,
            "ttft_slo_s": self.ttft_slo_s,
            "skipped": list(self.skipped),
        }


def batch_grid(largest: int) -> list[int]:
    """Powers of two below ``largest``, and ``largest`` itself (empty when it is 0)."""
    if largest < 1:
        return []
    return sorted({1 << i for i in range(largest.bit_length()) if 1 << i < largest} | {largest})


def largest_batch(w: Workload, cap: int) -> int:
    """The largest batch per replica in [1, ``cap``] whose memory plan fits (0: none). The plan
    grows with the batch, so fitting is true up to one batch and false after it."""
    if cap < 1 or not w.plan(1).fits:
        return 0
    lo, hi = 1, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if w.plan(mid).fits else (lo, mid - 1)
    return lo


def _point(w: Workload, batch: int, slo: tuple[float | None, float | None]) -> CurvePoint:
    plan = w.plan(batch)
    run = cost_run(w, batch, pack_design(w.system, w.eff, plan)[None, :], plan)
    tpot, ttft = float(run.tpot_s[0]), float(run.ttft_s[0])
    ok = (slo[0] is None or tpot <= slo[0]) and (slo[1] is None or ttft <= slo[1])
    return CurvePoint(
        system=w.system.name,
        parallelism=w.par.model_dump(),
        batch=batch,
        tokens_per_s_per_user=1.0 / tpot,
        output_tokens_per_s_per_chip=float(run.tokens_per_s_per_chip[0]),
        output_tokens_per_s=float(run.tokens_per_s[0]),
        ttft_s=ttft,
        tpot_s=tpot,
        meets_slo=ok,
    )


def _with_pareto(points: list[CurvePoint]) -> list[CurvePoint]:
    """Mark the points of each system that no SLO-meeting point of it beats on both axes."""
    from dataclasses import replace

    out = []
    for p in points:
        rivals = [q for q in points if q.system == p.system and q.meets_slo and q is not p]
        beaten = any(
            q.tokens_per_s_per_user >= p.tokens_per_s_per_user
            and q.output_tokens_per_s_per_chip >= p.output_tokens_per_s_per_chip
            and (q.tokens_per_s_per_user, q.output_tokens_per_s_per_chip)
            != (p.tokens_per_s_per_user, p.output_tokens_per_s_per_chip)
            for q in rivals
        )
        out.append(replace(p, pareto=p.meets_slo and not beaten))
    return out


def _system_points(system: System, model: ModelSpec, common: dict, cap: int,
                   slo: tuple) -> tuple[list[CurvePoint], list[str]]:  # fmt: skip
    """Every mapping's batch grid on one system, and the mappings with no batch that fits."""
    points, skipped = [], []
    for par in enumerate_mappings(model, system.count):
        w = resolve_workload(system=system, model=model, **common, **par.model_dump())
        top = largest_batch(w, min(cap, w.engine.max_batch or cap))
        if top == 0:
            skipped.append(f"{system.name} TP{par.tp} PP{par.pp} EP{par.ep} DP{par.dp}: "
                           f"{w.plan(1).reason}")  # fmt: skip
            continue
        points += [_point(w, b, slo) for b in batch_grid(top)]
    return points, skipped


def curve(
    systems: list[str | System],
    *,
    model: str | ModelSpec,
    quant: str = "bf16",
    input_len: int,
    output_len: int,
    tpot_slo_s: float | None = None,
    ttft_slo_s: float | None = None,
    max_batch: int | None = None,
    engine: str | None = None,
    routing_skew: float = 0.0,
    moe_overlap: bool = False,
) -> Curve:
    """The points of every system (module docstring). Raises :class:`ConfigError` (one line)
    when a system has no mapping that fits at batch 1, or an SLO is not a positive time."""
    for flag, v in (("--tpot-slo-ms", tpot_slo_s), ("--ttft-slo-ms", ttft_slo_s)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{flag}: give a positive number of ms")
    if not systems:
        raise ConfigError("--system is required (repeat it to compare systems)")
    model_ = load_model(model) if isinstance(model, str) else model
    common = {"quant": quant, "input_len": input_len, "output_len": output_len,
              "engine": engine, "routing_skew": routing_skew, "moe_overlap": moe_overlap}
    cap = max_batch or BATCH_CAP
    points: list[CurvePoint] = []
    skipped: list[str] = []
    for spec in systems:
        system = parse_system(spec) if isinstance(spec, str) else spec
        pts, miss = _system_points(system, model_, common, cap, (tpot_slo_s, ttft_slo_s))
        if not pts:
            raise ConfigError(f"--system {system.name}: no mapping of {model_.name} fits even at "
                              f"batch 1 ({miss[0] if miss else 'no valid mapping'}); add chips "
                              "or pick a smaller --quant")  # fmt: skip
        points += pts
        skipped += miss
    return Curve(tuple(_with_pareto(points)), model_.name, str(quant), input_len, output_len,
                 tpot_slo_s, ttft_slo_s, tuple(skipped))  # fmt: skip
