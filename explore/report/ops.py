"""The per-op view of a prediction: each op of the prefill step and of the mid-context decode
step with its time, share, binding side, bytes and FLOPs, and where it sits on the chip's
roofline (computed here; :mod:`explore.report.tables` prints it, :mod:`explore.report.plots`
draws it).

Numbers are per pass of one replica's step (a decode micro-batch or a prefill chunk through every
stage), summed over the op's instances (``count``: layers folded into one row): ``seconds`` is
the op's time on its chip (the analytic per-op cost,
:meth:`sim.step.StepTiming.op_table`), ``share`` its part of the sum of all op times (so the
shares add up to 100 %; the step's own time also holds pipeline fill, fixed latencies and
engine overhead, reported beside it). ``bytes`` are the weight, KV-cache and activation bytes
the op reads and writes on one chip, ``comm_bytes`` the collective payload per chip, ``flops``
matrix plus vector FLOPs on one chip. The roofline coordinates are per instance:
``arithmetic_intensity`` = FLOPs / bytes and ``achieved_flops_per_s`` = FLOPs / seconds (None
for ops that move no bytes or do no math, e.g. collectives).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arch.chip import Chip
from sim.evaluate import Result
from sim.step import StepTiming

__all__ = ["PHASES", "Roofs", "op_rows", "ops_of", "roofs"]

PHASES = ("prefill", "decode")


def op_rows(step: StepTiming) -> list[dict[str, Any]]:
    """One row per folded op of ``step`` (:meth:`sim.step.StepTiming.op_table`) with its
    roofline coordinates per instance (module docstring)."""
    rows = []
    for row in step.op_table():
        n = row["count"]
        flops, moved = row["flops"] / n if n else 0.0, row["bytes"] / n if n else 0.0
        each_s = row["seconds"] / n if n else 0.0
        rows.append({
            **row,
            "arithmetic_intensity": flops / moved if moved > 0 and flops > 0 else None,
            "achieved_flops_per_s": flops / each_s if each_s > 0 and flops > 0 else None,
        })  # fmt: skip
    return rows


def ops_of(r: Result) -> dict[str, list[dict[str, Any]]]:
    """``{prefill: rows, decode: rows}`` of a prediction (empty when it does not fit)."""
    steps = {"prefill": r.prefill_step, "decode": r.decode_step}
    return {phase: op_rows(s) if s is not None else [] for phase, s in steps.items()}


@dataclass(frozen=True)
class Roofs:
    """The chip's roofs: the matrix peak at the precision the GEMMs run at, the vector peak,
    and one memory roof per level (name -> bytes/s), fastest first."""

    precision: str
    compute_flops_per_s: float
    vector_flops_per_s: float
    memory_bytes_per_s: dict[str, float]


def roofs(chip: Chip, precision: str) -> Roofs:
    levels = {f"{m.name} ({m.kind})": m.bandwidth_bytes_per_s for m in chip.memory}
    return Roofs(precision, chip.matrix.peak(precision), chip.vector.peak("fp32"), levels)
