"""PNG charts of a serving run (matplotlib, Agg backend; only ``explore`` imports matplotlib).

``serving_plots`` writes: latency CDFs (TTFT, TPOT, end to end); throughput and queue length over
time; and the standard trade-off chart, output tokens/s per user against output tokens/s per chip,
across batch caps (closed-loop runs at each cap, so every point is the system saturated at that
cap), each point with its out-of-sample error band (:mod:`sim.intervals`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from explore.api.serve import ServeRequest, serve
from sim.metrics import request_arrays
from sim.serving import ServingTrace
from sim.traffic import ClosedLoop

__all__ = ["serving_plots", "tradeoff_points"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cdf(ax, x: np.ndarray, label: str) -> None:
    x = np.sort(x[np.isfinite(x)]) * 1e3
    if x.size:
        ax.plot(x, np.arange(1, x.size + 1) / x.size, label=label)


def latency_cdfs(trace: ServingTrace, path: Path) -> Path:
    plt = _plt()
    a = request_arrays(trace)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("ttft", "tpot", "e2e"), ("TTFT", "TPOT", "end to end"),
                              strict=True):  # fmt: skip
        _cdf(ax, a[key], title)
        ax.set_xlabel(f"{title} (ms)")
        ax.set_ylabel("fraction of requests")
        ax.grid(alpha=0.3)
        ax.set_title(f"{title} CDF")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def over_time(trace: ServingTrace, path: Path, window_s: float | None = None) -> Path:
    plt = _plt()
    s = trace.steps
    t = np.asarray(s["t"])
    tokens = np.asarray(s["tokens"], dtype=float)
    span = trace.simulated_s or 1.0
    w = window_s or span / 60
    edges = np.arange(0.0, span + w, w)
    idx = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 1)
    cum = np.where(edges >= t[0], tokens[idx], 0.0)
    rate = np.diff(cum) / w
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    ax1.step(edges[1:], rate, where="pre")
    ax1.set_ylabel("output tokens/s")
    ax1.grid(alpha=0.3)
    for r in sorted(set(s["replica"])):
        m = np.asarray(s["replica"]) == r
        ax2.plot(t[m], np.asarray(s["waiting"])[m], lw=0.8, label=f"replica {r} waiting")
        ax2.plot(t[m], np.asarray(s["running"])[m], lw=0.8, ls="--", label=f"replica {r} running")
    ax2.set_xlabel("simulated time (s)")
    ax2.set_ylabel("requests")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


CAPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _saturated(req: ServeRequest, caps, requests) -> list[tuple[int, dict]]:
    """(cap, serve summary) of a closed-loop run at each batch cap that produced tokens."""
    out = []
    for cap in caps:
        n = requests or max(4 * cap * req.dp, 64)
        s, _ = serve(replace(req, arrivals=ClosedLoop(cap * req.dp), max_batch=cap, requests=n))
        if s["tpot_s"]["mean"]:
            out.append((cap, s))
    return out


def tradeoff_points(req: ServeRequest, caps=CAPS, requests=None):
    """(cap, tokens/s per user, tokens/s per chip) at saturation for each batch cap."""
    return [(cap, 1.0 / s["tpot_s"]["mean"], s["output_tokens_per_s_per_chip"])
            for cap, s in _saturated(req, caps, requests)]  # fmt: skip


def _errors(value: float, band: list[float] | None) -> list[float]:
    """Distances below and above ``value`` to the ends of its band (0, 0 without one)."""
    return [value - band[0], band[1] - value] if band else [0.0, 0.0]


def tradeoff(req: ServeRequest, path: Path) -> Path:
    """The tokens/s-per-user vs tokens/s-per-chip chart, with the out-of-sample error band of
    each point (:mod:`sim.intervals`: per-user speed from the mean-TPOT band, inverted)."""
    plt = _plt()
    runs = _saturated(req, CAPS, None)
    user = [1.0 / s["tpot_s"]["mean"] for _, s in runs]
    chip = [s["output_tokens_per_s_per_chip"] for _, s in runs]
    tpot_bands = [s.get("interval", {}).get("tpot_s.mean") for _, s in runs]
    user_bands = [[1.0 / b[1], 1.0 / b[0]] if b else None for b in tpot_bands]
    chip_bands = [s.get("interval", {}).get("output_tokens_per_s_per_chip") for _, s in runs]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    yerr = np.array([_errors(v, b) for v, b in zip(user, user_bands, strict=True)]).T
    xerr = np.array([_errors(v, b) for v, b in zip(chip, chip_bands, strict=True)]).T
    ax.errorbar(chip, user, xerr=xerr if len(runs) else None, yerr=yerr if len(runs) else None,
                marker="o", capsize=3, elinewidth=0.8)  # fmt: skip
    for (cap, _), u, c in zip(runs, user, chip, strict=True):
        ax.annotate(f"b{cap}", (c, u), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("output tokens/s per chip")
    ax.set_ylabel("output tokens/s per user (1 / mean TPOT)")
    ax.set_title(f"{req.model} on {req.system} ({req.quant}): batch-cap sweep at saturation"
                 "\nbars: p10-p90 out-of-sample validation error", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def serving_plots(req: ServeRequest, trace: ServingTrace, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        latency_cdfs(trace, out_dir / "latency_cdf.png"),
        over_time(trace, out_dir / "throughput_queue.png"),
        tradeoff(req, out_dir / "tradeoff_user_vs_chip.png"),
    ]
