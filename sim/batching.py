"""Largest batch that fits in memory (and meets a TPOT SLO): bisection over the batch size."""

from __future__ import annotations

from arch.base import ConfigError

__all__ = ["max_batch"]

_CAP = 1 << 16  # sequences per replica; beyond any engine's scheduler limit


def _largest(ok, hi: int) -> int:
    """Largest b in [1, hi] with ok(b) true, ok monotone (true then false); 0 if ok(1) fails."""
    if not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def max_batch(w, *, tpot_slo_s: float | None = None) -> int:
    """Largest batch per replica that fits (memory) and, if given, meets ``tpot_slo_s`` at the
    middle decode context (``w``: a :class:`sim.evaluate.Workload`)."""
    fits = _largest(lambda b: w.plan(b).fits, _CAP)
    if fits == 0:
        plan = w.plan(1)
        hint = f"; at least {plan.min_chips} chips needed" if plan.min_chips else ""
        raise ConfigError(f"does not fit even at batch 1: {plan.reason}{hint}")
    if tpot_slo_s is None:
        return fits
    ctx = w.decode_contexts[1]

    def meets(b: int) -> bool:
        return w.decode(b, ctx, w.plan(b)).total_s <= tpot_slo_s

    best = _largest(meets, fits)
    if best == 0:
        t = w.decode(1, ctx, w.plan(1)).total_s
        raise ConfigError(
            f"--tpot-slo-ms {tpot_slo_s * 1e3:g}: not met even at batch 1 "
            f"(TPOT {t * 1e3:.2f} ms); relax the SLO or add chips"
        )
    return best
