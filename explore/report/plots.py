"""PNG charts of a serving run (matplotlib, Agg backend; only ``explore`` imports matplotlib).

``serving_plots`` writes: latency CDFs (TTFT, TPOT, end to end); throughput and queue length over
time; and the standard trade-off chart, output tokens/s per user against output tokens/s per chip,
across batch caps (closed-loop runs at each cap, so every point is the system saturated at that
cap).
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


def tradeoff_points(req: ServeRequest, caps=(1, 2, 4, 8, 16, 32, 64, 128, 256), requests=None):
    """(cap, tokens/s per user, tokens/s per chip) at saturation for each batch cap."""
    pts = []
    for cap in caps:
        n = requests or max(4 * cap * req.dp, 64)
        s, _ = serve(replace(req, arrivals=ClosedLoop(cap * req.dp), max_batch=cap, requests=n))
        tpot = s["tpot_s"]["mean"]
        if tpot:
            pts.append((cap, 1.0 / tpot, s["output_tokens_per_s_per_chip"]))
    return pts


def tradeoff(req: ServeRequest, path: Path) -> Path:
    plt = _plt()
    pts = tradeoff_points(req)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot([p[2] for p in pts], [p[1] for p in pts], marker="o")
    for cap, user, chip in pts:
        ax.annotate(f"b{cap}", (chip, user), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("output tokens/s per chip")
    ax.set_ylabel("output tokens/s per user (1 / mean TPOT)")
    ax.set_title(f"{req.model} on {req.system} ({req.quant}): batch-cap sweep at saturation")
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
