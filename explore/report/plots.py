"""PNG charts (matplotlib, Agg backend; only ``explore`` imports matplotlib): a serving run, a
prediction's ops (``predict --plot``: roofline and time breakdown) and the tokens/s-per-user vs
tokens/s-per-chip curve (``curve --out``). Each ``*_figure`` function returns the Figure (tests
read its axes); the ``*_plots`` functions save them.

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

__all__ = [
    "breakdown_figure",
    "curve_figure",
    "curve_plots",
    "predict_plots",
    "roofline_figure",
    "serving_plots",
    "tradeoff_points",
]


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


# --------------------------------------------------------------------------- predict --plot


def _title(r) -> str:
    c, p = r.config, r.config["parallelism"]
    return (f"{c['model']} on {c['system']} ({c['quant']['name']}, GEMMs at "
            f"{c['gemm_precision']}), TP{p['tp']} PP{p['pp']} EP{p['ep']} DP{p['dp']}, "
            f"batch {r.batch}/replica, in {c['input_len']} out {c['output_len']}")  # fmt: skip


def roofline_figure(r):
    """Each op of the prefill (circles) and decode (triangles) step at its arithmetic intensity
    (FLOPs per byte moved) and achieved FLOP/s per chip, under the chip's compute roof (matrix
    peak at the GEMM precision, and the vector peak) and one memory roof per memory level.
    Collectives (no math) are not on it. Returns the matplotlib Figure."""
    from explore.report.ops import ops_of, roofs
    from explore.report.units import human

    plt = _plt()
    chip = r.workload.system.chip
    rf = roofs(chip, r.config["gemm_precision"])
    ops = ops_of(r)
    pts = [(x["arithmetic_intensity"], x["achieved_flops_per_s"]) for rows in ops.values()
           for x in rows if x["arithmetic_intensity"]]  # fmt: skip
    lo = min([p[0] for p in pts] + [0.1]) / 3
    ridge = rf.compute_flops_per_s / min(rf.memory_bytes_per_s.values())
    hi = max([p[0] for p in pts] + [ridge]) * 3
    ai = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for level, bw in rf.memory_bytes_per_s.items():
        ax.plot(ai, np.minimum(bw * ai, rf.compute_flops_per_s), lw=1, ls="--",
                label=f"{level}: {human(bw, 'B/s')}")  # fmt: skip
    ax.axhline(rf.compute_flops_per_s, color="k", lw=1.5,
               label=f"matrix {rf.precision}: {human(rf.compute_flops_per_s, 'FLOP/s')}")
    ax.axhline(rf.vector_flops_per_s, color="grey", lw=1, ls=":",
               label=f"vector: {human(rf.vector_flops_per_s, 'FLOP/s')}")  # fmt: skip
    for (phase, all_rows), marker in zip(ops.items(), ("o", "^"), strict=True):
        rows = [x for x in all_rows if x["arithmetic_intensity"]]
        ax.scatter([x["arithmetic_intensity"] for x in rows],
                   [x["achieved_flops_per_s"] for x in rows], marker=marker, s=28,
                   label=f"{phase} ops", zorder=3)  # fmt: skip
        for x in rows:
            ax.annotate(x["name"], (x["arithmetic_intensity"], x["achieved_flops_per_s"]),
                        fontsize=6, xytext=(3, 2), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("achieved FLOP/s per chip")
    ax.set_title("Roofline: " + _title(r), fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def breakdown_figure(r, top: int = 8):
    """Where each phase's op time goes: one stacked bar per phase (share of the summed op
    time, so phases of very different length sit on one axis; the step time under each bar),
    the ``top`` ops by time over both phases and the rest as "other". Returns the Figure."""
    from explore.report.ops import ops_of
    from explore.report.units import human

    plt = _plt()
    ops = {k: v for k, v in ops_of(r).items() if v}
    totals: dict[str, float] = {}
    for rows in ops.values():
        for x in rows:
            totals[x["name"]] = totals.get(x["name"], 0.0) + x["share"]
    names = sorted(totals, key=totals.get, reverse=True)[:top]  # type: ignore[arg-type]
    steps = {"prefill": r.prefill_step, "decode": r.decode_step}
    labels = [f"{p}\nstep {human(steps[p].total_s, 's')}" for p in ops]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    bottom = np.zeros(len(ops))
    def group(op: str) -> str:
        return op if op in names else "other"

    for name in [*names, "other"]:
        h = np.array([100 * sum(x["share"] for x in rows if group(x["name"]) == name)
                      for rows in ops.values()])  # fmt: skip
        ax.bar(labels, h, bottom=bottom, label=name, width=0.5)
        bottom += h
    ax.set_ylabel("share of op time per pass (%)")
    ax.set_xlabel("phase (and its step time)")
    ax.set_ylim(0, 100)
    ax.set_title("Time breakdown: " + _title(r), fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def predict_plots(r, out_dir: Path) -> list[Path]:
    """``predict --plot DIR``: roofline.png and time_breakdown.png (nothing when it does not
    fit: there are no steps to draw)."""
    if not r.fits:
        return []
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fig, name in ((roofline_figure(r), "roofline.png"),
                      (breakdown_figure(r), "time_breakdown.png")):  # fmt: skip
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


# --------------------------------------------------------------------------- curve


def curve_figure(c):
    """Output tokens/s per user (1 / TPOT) against output tokens/s per chip, every mapping and
    batch of each system (:func:`explore.api.curve.curve`): all points faint, each system's
    Pareto front as a line with its points labelled by mapping and batch, hollow markers for
    points that miss an SLO, and the TPOT SLO as a horizontal line (1 / TPOT SLO). Log axes:
    both span decades. Returns the matplotlib Figure."""
    from explore.report.units import human

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 6))
    for system in c.systems:
        pts = [p for p in c.points if p.system == system]
        ok = [p for p in pts if p.meets_slo]
        miss = [p for p in pts if not p.meets_slo]
        front = c.frontier(system)
        line, = ax.plot([p.output_tokens_per_s_per_chip for p in front],
                        [p.tokens_per_s_per_user for p in front], marker="o", lw=1.8,
                        label=f"{system}: Pareto front")  # fmt: skip
        color = line.get_color()
        ax.scatter([p.output_tokens_per_s_per_chip for p in ok],
                   [p.tokens_per_s_per_user for p in ok], s=10, color=color, alpha=0.3,
                   label=f"{system}: every mapping x batch")  # fmt: skip
        if miss:
            ax.scatter([p.output_tokens_per_s_per_chip for p in miss],
                       [p.tokens_per_s_per_user for p in miss], s=14, facecolors="none",
                       edgecolors=color, alpha=0.5, label=f"{system}: misses an SLO")
        for p in front:
            ax.annotate(f"{p.mapping.replace(' EP1', '')} b{p.batch}",
                        (p.output_tokens_per_s_per_chip, p.tokens_per_s_per_user),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    if c.tpot_slo_s:
        ax.axhline(1 / c.tpot_slo_s, color="red", ls="--", lw=1,
                   label=f"TPOT SLO {human(c.tpot_slo_s, 's')} "
                   f"({1 / c.tpot_slo_s:,.0f} tokens/s per user)")  # fmt: skip
    if c.ttft_slo_s:
        ax.plot([], [], ls="", label=f"TTFT SLO {human(c.ttft_slo_s, 's')}: hollow points miss it")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output tokens/s per chip")
    ax.set_ylabel("output tokens/s per user (1 / mean TPOT)")
    ax.set_title(f"{c.model} ({c.quant}), input {c.input_len} / output {c.output_len} tokens: "
                 "static batches over every mapping", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def curve_plots(c, out_dir: Path) -> list[Path]:
    """``curve --out DIR``: curve.png."""
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = curve_figure(c)
    path = out_dir / "curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
