"""Serving metrics from a :class:`ServingTrace`: latency distributions, throughput, goodput, KV.

TTFT: arrival to first output token. TPOT: (e2e - TTFT) / (output tokens - 1), over requests with
at least two output tokens. Queueing delay: arrival to first scheduled. Throughput counts output
tokens over the simulated span (first arrival to last completion). Goodput: completed requests per
second whose TTFT <= the TTFT SLO and TPOT <= the TPOT SLO, reported only against a stated SLO
(with none it would just be the request rate: it is null, ``goodput_note`` says why, and
``goodput_slo`` names the limits it was counted against). Little's law is checked from the
time-integrated number of requests in the system, kept by the simulator independently of the
per-request times.
"""

from __future__ import annotations

import numpy as np

from sim.serving import ServingTrace

__all__ = ["GOODPUT_NEEDS_SLO", "distribution", "littles_law", "request_arrays", "summarize"]

GOODPUT_NEEDS_SLO = ("goodput is counted against an SLO and none was given: pass --ttft-slo-ms "
                     "and/or --tpot-slo-ms")  # fmt: skip


def distribution(x: np.ndarray) -> dict[str, float | None]:
    if x.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def request_arrays(trace: ServingTrace) -> dict[str, np.ndarray]:
    rs = trace.requests
    arr = np.array([r.arrival_s for r in rs])
    first = np.array([r.first_token_s for r in rs])
    fin = np.array([r.finish_s for r in rs])
    out = np.array([r.output_len for r in rs], dtype=float)
    sched = np.array([r.first_scheduled_s for r in rs])
    multi = out > 1
    return {
        "arrival": arr,
        "ttft": first - arr,
        "e2e": fin - arr,
        "queue": sched - arr,
        "tpot": (fin - first)[multi] / (out[multi] - 1),
        "tpot_all": np.where(multi, (fin - first) / np.maximum(out - 1, 1), 0.0),
        "out": out,
        "finish": fin,
    }


def littles_law(trace: ServingTrace) -> tuple[float, float]:
    """(L, lambda x W) over the whole run: time-average number in system vs arrival rate x mean
    sojourn. Equal when the simulator's bookkeeping is consistent."""
    a = request_arrays(trace)
    span = trace.simulated_s
    lam = len(trace.requests) / span
    return trace.area_in_system / span, lam * float(np.mean(a["e2e"]))


def summarize(
    trace: ServingTrace,
    *,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    wall_s: float = 0.0,
) -> dict:
    """The ``xpusim serve --json`` payload (contract keys) for one run."""
    a = request_arrays(trace)
    span = float(a["finish"].max() - a["arrival"].min()) or trace.simulated_s
    tokens = float(a["out"].sum())
    good = np.ones(len(trace.requests), dtype=bool)
    stated = slo_ttft_s is not None or slo_tpot_s is not None
    if slo_ttft_s is not None:
        good &= a["ttft"] <= slo_ttft_s
    if slo_tpot_s is not None:
        good &= a["tpot_all"] <= slo_tpot_s
    kv = np.asarray(trace.steps.get("kv_util", []), dtype=float)
    dt = np.asarray(trace.steps.get("dt", []), dtype=float)
    return {
        "ttft_s": distribution(a["ttft"]),
        "tpot_s": distribution(a["tpot"]),
        "e2e_s": distribution(a["e2e"]),
        "queue_s": distribution(a["queue"]),
        "output_tokens_per_s": tokens / span,
        "output_tokens_per_s_per_chip": tokens / span / trace.chips,
        "requests_per_s": len(trace.requests) / span,
        "goodput_requests_per_s": float(good.sum()) / span if stated else None,
        "goodput_slo": {"ttft_s": slo_ttft_s, "tpot_s": slo_tpot_s} if stated else None,
        "goodput_note": None if stated else GOODPUT_NEEDS_SLO,
        "kv_utilization_mean": float((kv * dt).sum() / dt.sum()) if dt.sum() > 0 else 0.0,
        "preemptions": int(trace.preemptions),
        "energy_j_per_token": trace.energy_j / tokens if tokens else None,
        "simulated_s": float(trace.simulated_s),
        "wall_s": float(wall_s),
    }
