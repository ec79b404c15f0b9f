"""``--batch max``: the batch per replica with the most output tokens/s that fits in memory (and
meets a TPOT SLO), and what limited it.

The largest batch that fits is not always the fastest: past some batch, the memory a bigger
batch takes for its KV cache squeezes the prefill chunk (small passes re-read the weights), or
pushes the weights out of SRAM into a slower tier (a CS-3 streaming from MemoryX, a GH200 reading
from LPDDR). So the largest batch that fits (bisection on memory) and the largest that meets the
SLO (bisection on the mid-context decode step) bound a scan of batches on a geometric grid, each
costed through the one evaluation path, and the best is kept. The largest batch that keeps
every weight off the capacity tier is always a candidate, and a batch past it (weights
streaming every step) is chosen only when it beats the best resident batch by more than
:data:`STREAM_GAIN`: the streamed rate rests on the capacity tier's link, the least validated
number of a system, and the gain there is usually a fraction of a percent bought with a much
longer TPOT. A note marked ``CLIFF:`` or ``STREAMING:`` names the boundary either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from arch.base import ConfigError
from sim.evaluate import (
    Result,
    Workload,
    cost_run,
    design_row,
    evaluate,
    largest_true,
    resident_batch,
)

__all__ = ["STREAM_GAIN", "BatchChoice", "batch_choice", "evaluate_max", "max_batch"]

_CAP = 1 << 16  # sequences per replica; beyond any engine's scheduler limit
_STEP = 2**0.5  # scan grid: about 41 % apart
STREAM_GAIN = 0.05  # a weight-streaming batch must beat the best resident one by more than this


@dataclass(frozen=True)
class BatchChoice:
    """The chosen batch, its throughput, and ``limit``: what stopped a larger batch —
    ``memory`` (the next does not fit), ``slo`` (the next misses the TPOT SLO), ``throughput``
    (larger batches fit and meet the SLO but deliver fewer tokens/s) or ``engine cap``.
    ``resident``: the largest batch whose weights all stay off the capacity tier (0: none);
    when it is below ``top`` (the largest batch that fits and meets the SLO), the batches past
    it stream weights from ``tier`` every step, and ``tokens_per_s_at`` holds both ends."""

    batch: int
    tokens_per_s: float
    limit: str
    largest_fitting: int
    cap: int = _CAP
    resident: int = 0
    top: int = 0
    tier: str = ""
    tokens_per_s_at: dict[int, float] = field(default_factory=dict, compare=False)

    @property
    def note(self) -> str:
        why = {
            "memory": "the next batch does not fit in memory",
            "slo": "the next batch misses the TPOT SLO",
            "throughput": f"larger batches (up to {self.largest_fitting} fit in memory) "
            "deliver fewer tokens/s or miss the SLO"
            + (" (or stream weights for less gain than that takes)" if self.cliff_note else ""),
            "engine cap": f"the engine's scheduler cap of {self.cap} sequences",
        }[self.limit]
        return f"--batch max chose {self.batch}: {why}"

    @property
    def cliff_note(self) -> str:
        """The weight-streaming boundary between ``resident`` and ``top`` ("" if none):
        ``CLIFF:`` when the batches past it deliver less than the choice, ``STREAMING:`` when
        one delivers more (chosen if by more than :data:`STREAM_GAIN`, else not)."""
        at, r, top = self.tokens_per_s_at, self.resident, self.top
        if not 0 < r < top or not at:
            return ""
        tps, past = self.tokens_per_s, f"past batch {r} the weights stream from {self.tier}"
        stay = max((b for b in at if b <= r), key=lambda b: (at[b], b))
        go = max((b for b in at if b > r), key=lambda b: (at[b], b))
        if self.batch > r:
            return (f"STREAMING: {past} every step; batch {self.batch} still gives "
                    f"{tps / at[stay] - 1:.1%} more tokens/s than batch {stay}, the best that "
                    f"keeps them resident ({at[stay]:,.0f})")  # fmt: skip
        if at[go] > tps:
            return (f"STREAMING: {past} every step; batch {go} gives only {at[go] / tps - 1:.1%} "
                    f"more tokens/s than batch {self.batch} ({at[go]:,.0f}), not the "
                    f"{STREAM_GAIN:.0%} a streaming batch must gain to be chosen")  # fmt: skip
        which = "fits" if top == self.largest_fitting else "meets the SLO"
        return (f"CLIFF: {past} every step: batch {top}, the largest that {which}, gives "
                f"{at[top]:,.0f} tokens/s, {tps / at[top]:.1f}x fewer than batch {self.batch} "
                f"({tps:,.0f}), which keeps them resident")  # fmt: skip


def _pick(scored: dict[int, float], resident: int) -> int:
    """The batch with the most tokens/s, the larger on a tie; one past ``resident`` (weights
    streaming) only when it beats the best resident batch by more than :data:`STREAM_GAIN`."""
    best = max(scored, key=lambda b: (scored[b], b))
    if 0 < resident < best:
        stay = max((b for b in scored if b <= resident), key=lambda b: (scored[b], b))
        if scored[best] <= (1 + STREAM_GAIN) * scored[stay]:
            return stay
    return best


def _tokens_per_s(w: Workload, batch: int) -> float:
    plan = w.plan(batch)
    if not plan.fits:
        return 0.0
    run = cost_run(w, batch, design_row(w, plan)[None, :], plan)
    return float(run.tokens_per_s[0])


def _grid(hi: int) -> list[int]:
    out, b = {hi}, 1.0
    while b < hi:
        out.add(round(b))
        b *= _STEP
    return sorted(out)


def batch_choice(w: Workload, *, tpot_slo_s: float | None = None) -> BatchChoice:
    """The highest-throughput batch per replica that fits and meets ``tpot_slo_s`` (at the
    middle decode context); a ConfigError when no batch fits or meets it."""
    if tpot_slo_s is not None and not (math.isfinite(tpot_slo_s) and tpot_slo_s > 0):
        raise ConfigError(f"--tpot-slo-ms {tpot_slo_s * 1e3:g}: give a positive number of ms")
    cap = w.engine.max_batch or _CAP  # the engine's limit on sequences in flight
    fits = largest_true(lambda b: w.plan(b).fits, cap)
    if fits == 0:
        plan = w.plan(1)
        hint = f"; at least {plan.min_chips} chips needed" if plan.min_chips else ""
        raise ConfigError(f"does not fit even at batch 1: {plan.reason}{hint}")
    hi, limit = fits, "engine cap" if fits == cap else "memory"
    if tpot_slo_s is not None:
        ctx = w.decode_contexts[1]
        best = largest_true(lambda b: w.decode(b, ctx, w.plan(b)).total_s <= tpot_slo_s, fits)
        if best == 0:
            t = w.decode(1, ctx, w.plan(1)).total_s
            raise ConfigError(
                f"--tpot-slo-ms {tpot_slo_s * 1e3:g}: not met even at batch 1 "
                f"(TPOT {t * 1e3:.2f} ms); relax the SLO or add chips"
            )
        hi, limit = best, ("slo" if best < fits else limit)
    # the grid, plus the largest batch whose weights all stay off the capacity tier (throughput
    # usually peaks right there), then a finer look around the best
    resident = resident_batch(w, hi)
    candidates = set(_grid(hi)) | ({resident} if resident else set())
    scored = {b: _tokens_per_s(w, b) for b in candidates}
    best = _pick(scored, resident)
    lo_b, hi_b = max(1, round(best / _STEP)), min(hi, round(best * _STEP))
    for b in {round(lo_b * (hi_b / lo_b) ** (i / 6)) for i in range(7)} - scored.keys():
        scored[b] = _tokens_per_s(w, b)
    b = _pick(scored, resident)
    tier = w.system.chip.capacity_tier
    return BatchChoice(b, scored[b], limit if b == hi else "throughput", fits, cap,
                       resident=resident, top=hi, tier=tier.name if tier else "",
                       tokens_per_s_at=scored)  # fmt: skip


def max_batch(w: Workload, *, tpot_slo_s: float | None = None) -> int:
    """The batch :func:`batch_choice` picks."""
    return batch_choice(w, tpot_slo_s=tpot_slo_s).batch


def evaluate_max(w: Workload, *, tpot_slo_s: float | None = None) -> Result:
    """:func:`sim.evaluate.evaluate` at the :func:`batch_choice` batch, which says in its notes
    what limited the batch; its ``regime`` adds ``streams_above_batch`` (the batch past which
    weights stream from the capacity tier, when a batch that fits gets there; else None)."""
    choice = batch_choice(w, tpot_slo_s=tpot_slo_s)
    r = evaluate(w, choice.batch)
    cliff = (choice.cliff_note,) if choice.cliff_note else ()
    above = choice.resident if 0 < choice.resident < choice.top else None
    return replace(r, notes=(*cliff, *r.notes, choice.note),
                   regime={**r.regime, "streams_above_batch": above})  # fmt: skip
