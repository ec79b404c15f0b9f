"""``--batch max``: the batch per replica with the most output tokens/s that fits in memory (and
meets a TPOT SLO), and what limited it.

The largest batch that fits is not always the fastest: past some batch, the memory a bigger
batch takes for its KV cache squeezes the prefill chunk (small passes re-read the weights), or
pushes the weights out of SRAM into a slower tier (a CS-3 streaming from MemoryX, a GH200 reading
from LPDDR). So the largest batch that fits (bisection on memory) and the largest that meets the
SLO (bisection on the mid-context decode step) bound a scan of batches on a geometric grid, each
costed through the one evaluation path, and the best is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from arch.base import ConfigError
from kernels.pack import pack_design
from sim.evaluate import Result, Workload, cost_run, evaluate

__all__ = ["BatchChoice", "batch_choice", "evaluate_max", "max_batch"]

_CAP = 1 << 16  # sequences per replica; beyond any engine's scheduler limit
_STEP = 2**0.5  # scan grid: about 41 % apart


@dataclass(frozen=True)
class BatchChoice:
    """The chosen batch, its throughput, and ``limit``: what stopped a larger batch —
    ``memory`` (the next does not fit), ``slo`` (the next misses the TPOT SLO), ``throughput``
    (larger batches fit and meet the SLO but deliver fewer tokens/s) or ``engine cap``."""

    batch: int
    tokens_per_s: float
    limit: str
    largest_fitting: int
    cap: int = _CAP

    @property
    def note(self) -> str:
        why = {
            "memory": "the next batch does not fit in memory",
            "slo": "the next batch misses the TPOT SLO",
            "throughput": f"larger batches (up to {self.largest_fitting} fit in memory) "
            "deliver fewer tokens/s or miss the SLO",
            "engine cap": f"the engine's scheduler cap of {self.cap} sequences",
        }[self.limit]
        return f"--batch max chose {self.batch}: {why}"


def _largest(ok, hi: int) -> int:
    """Largest b in [1, hi] with ok(b) true, ok monotone (true then false); 0 if ok(1) fails."""
    if not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _tokens_per_s(w: Workload, batch: int) -> float:
    plan = w.plan(batch)
    if not plan.fits:
        return 0.0
    run = cost_run(w, batch, pack_design(w.system, w.eff, plan)[None, :], plan)
    return float(run.tokens_per_s[0])


def _grid(hi: int) -> list[int]:
    out, b = {hi}, 1.0
    while b < hi:
        out.add(round(b))
        b *= _STEP
    return sorted(out)


def batch_choice(w: Workload, *, tpot_slo_s: float | None = None) -> BatchChoice:
    """The highest-throughput batch per replica that fits and meets ``tpot_slo_s`` (at the
    middle decode context)."""
    cap = w.engine.max_batch or _CAP  # the engine's limit on sequences in flight
    fits = _largest(lambda b: w.plan(b).fits, cap)
    if fits == 0:
        plan = w.plan(1)
        hint = f"; at least {plan.min_chips} chips needed" if plan.min_chips else ""
        raise ConfigError(f"does not fit even at batch 1: {plan.reason}{hint}")
    hi, limit = fits, "engine cap" if fits == cap else "memory"
    if tpot_slo_s is not None:
        ctx = w.decode_contexts[1]
        best = _largest(lambda b: w.decode(b, ctx, w.plan(b)).total_s <= tpot_slo_s, fits)
        if best == 0:
            t = w.decode(1, ctx, w.plan(1)).total_s
            raise ConfigError(
                f"--tpot-slo-ms {tpot_slo_s * 1e3:g}: not met even at batch 1 "
                f"(TPOT {t * 1e3:.2f} ms); relax the SLO or add chips"
            )
        hi, limit = best, ("slo" if best < fits else limit)
    # the grid, plus the largest batch whose weights all stay off the capacity tier (throughput
    # usually peaks right there), then a finer look around the best
    resident = _largest(lambda b: w.plan(b).weight_split[2] == 0, hi) if hi else 0
    candidates = set(_grid(hi)) | ({resident} if resident else set())
    scored = {b: _tokens_per_s(w, b) for b in candidates}
    best = max(scored, key=lambda b: (scored[b], b))
    lo_b, hi_b = max(1, round(best / _STEP)), min(hi, round(best * _STEP))
    for b in {round(lo_b * (hi_b / lo_b) ** (i / 6)) for i in range(7)} - scored.keys():
        scored[b] = _tokens_per_s(w, b)
    b = max(scored, key=lambda b: (scored[b], b))
    return BatchChoice(b, scored[b], limit if b == hi else "throughput", fits, cap)


def max_batch(w: Workload, *, tpot_slo_s: float | None = None) -> int:
    """The batch :func:`batch_choice` picks."""
    return batch_choice(w, tpot_slo_s=tpot_slo_s).batch


def evaluate_max(w: Workload, *, tpot_slo_s: float | None = None) -> Result:
    """:func:`sim.evaluate.evaluate` at the :func:`batch_choice` batch, which says in its notes
    what limited the batch."""
    choice = batch_choice(w, tpot_slo_s=tpot_slo_s)
    r = evaluate(w, choice.batch)
    return replace(r, notes=(*r.notes, choice.note))
