"""PNG charts (matplotlib, Agg backend; only ``explore`` imports matplotlib): a serving run, a
prediction's ops (``predict --plot``: roofline and time breakdown) and the tokens/s-per-user vs
tokens/s-per-chip curve (``curve --out``). Each ``*_figure`` function returns the Figure (tests
read its axes); the other functions save them.

``serving_plots`` writes: latency CDFs (TTFT, TPOT, end to end) with the p50/p90/p99 of each and
the SLO where one is stated; throughput and queue length over time; and the standard trade-off
chart, output tokens/s per user against output tokens/s per chip, across batch caps (closed-loop
runs at each cap, so every point is the system saturated at that cap), each point with its
out-of-sample error band (:mod:`sim.intervals`).

Every figure follows the same rules, through one helper each (public, for the other report
modules): an axis is logarithmic when its positive values span more than :data:`DECADES`
decades and linear otherwise (:func:`scale_for`, decided from the data at draw time; stacked
shares are always linear); every axis label carries its unit in parentheses; the title names the
configuration (:func:`config_title`); legends sit outside the axes (:func:`legend_outside`) so
they never cover data; a line through points of different mappings or weight placements is
broken there (:func:`regime_segments`); and a figure with nothing to draw says so inside the
axes and lists what was dropped (:func:`nothing_to_show`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DECADES",
    "breakdown_figure",
    "config_title",
    "curve_figure",
    "curve_plots",
    "latency_cdf_figure",
    "latency_cdfs",
    "legend_outside",
    "nothing_to_show",
    "over_time",
    "over_time_figure",
    "predict_plots",
    "regime_segments",
    "roofline_figure",
    "scale_for",
    "serving_plots",
    "set_scales",
    "tradeoff",
    "tradeoff_figure",
    "tradeoff_points",
]

DECADES = 1.5  # an axis whose positive values span more than this many decades is logarithmic
PERCENTILES = (50, 90, 99)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- shared helpers


def scale_for(values: Iterable[float], decades: float = DECADES) -> str:
    """``"log"`` when the finite values are all positive and span more than ``decades`` decades
    (max / min > 10 ** decades), else ``"linear"`` (a zero or negative value cannot sit on a
    log axis, and a narrow range reads better on a linear one)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2 or (v <= 0).any():
        return "linear"
    return "log" if math.log10(v.max() / v.min()) > decades else "linear"


def set_scales(ax, x: Iterable[float] | None = None, y: Iterable[float] | None = None) -> None:
    """Each given axis of ``ax`` logarithmic or linear from its data (:func:`scale_for`); the
    grid shows minor lines on a log axis."""
    for values, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if values is not None:
            setter(scale_for(values))
    log = "log" in (ax.get_xscale(), ax.get_yscale())
    ax.grid(alpha=0.3, which="both" if log else "major")


def _name(x: Any) -> str | None:
    """A preset, System, quantization (dict or object) or plain value as its name."""
    if x is None:
        return None
    if isinstance(x, dict):
        return str(x.get("name", x))
    return str(getattr(x, "name", x))


def _mapping(par: Any) -> str | None:
    """``{"tp": 2, "pp": 1, "ep": 1, "dp": 4}`` -> ``"TP2 PP1 EP1 DP4"`` (a string is kept;
    unset degrees read ``auto``)."""
    if par is None or isinstance(par, str):
        return par
    keys = ("tp", "pp", "ep", "dp")
    return " ".join(f"{k.upper()}{par.get(k) if par.get(k) not in (None, 'auto') else ' auto'}"
                    for k in keys if k in par)  # fmt: skip


def _length(x: Any) -> str | None:
    """A sequence length (an int, a fixed distribution, or any distribution's repr)."""
    if x is None:
        return None
    if isinstance(x, int | np.integer):
        return str(int(x))
    n = getattr(x, "n", None)
    return str(n) if isinstance(n, int) else str(x)


def config_title(what: str, *, system: Any = None, model: Any = None, quant: Any = None,
                 parallelism: Any = None, input_len: Any = None, output_len: Any = None,
                 engine: Any = None, batch: Any = None, extra: str | None = None,
                 width: int = 110) -> str:  # fmt: skip
    """The one title: ``what`` on the first line, then the configuration (model on system,
    quantization, mapping, input / output tokens, batch, engine; what is not known is left
    out), wrapped at ``width`` characters."""
    parts = []
    model_, system_ = _name(model), _name(system)
    if model_ or system_:
        parts.append(" on ".join(p for p in (model_, system_) if p))
    for text in (_name(quant), _mapping(parallelism)):
        if text:
            parts.append(text)
    inp, out = _length(input_len), _length(output_len)
    if inp or out:
        parts.append(f"input {inp or '?'} / output {out or '?'} tokens")
    if batch is not None:
        parts.append(f"batch {batch}/replica")
    if engine:
        parts.append(f"engine {_name(engine)}")
    if extra:
        parts.append(extra)
    body = textwrap.fill(", ".join(parts), width) if parts else ""
    return f"{what}\n{body}" if body else what


def legend_outside(ax, *, fontsize: float = 7, ncol: int = 1, **kw):
    """The legend of ``ax`` to the right of the axes (upper left corner anchored just past the
    right spine), so it never covers data; the layout (``tight_layout``) makes room for it."""
    return ax.legend(fontsize=fontsize, ncol=ncol, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, **kw)  # fmt: skip


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def nothing_to_show(ax, message: str, dropped: Sequence[str] = (), *, show: int = 6):
    """Say inside ``ax`` that there is nothing to draw, and why: ``message`` and up to ``show``
    of the ``dropped`` items (then "N more"). Returns the Text artist (gid ``nothing-to-show``)."""
    lines = [textwrap.fill(message, 60)]
    if dropped:
        lines.append("dropped:")
        lines += [f"  {_short(d)}" for d in dropped[:show]]
        if len(dropped) > show:
            lines.append(f"  … and {len(dropped) - show} more")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.text(0.5, 0.5, "\n".join(lines), transform=ax.transAxes, ha="center",
                   va="center", fontsize=8, wrap=True, gid="nothing-to-show",
                   bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.6"})  # fmt: skip


def _dropped_entries(ax, what: str, dropped: Sequence[str], show: int = 3) -> None:
    """Legend-only entries (no handle) listing what was left off a figure that has data."""
    if not dropped:
        return
    ax.plot([], [], ls="", label=f"not drawn, {what} ({len(dropped)}):")
    for d in dropped[:show]:
        ax.plot([], [], ls="", label=f"  {_short(d, 55)}")
    if len(dropped) > show:
        ax.plot([], [], ls="", label=f"  … and {len(dropped) - show} more")


def regime_segments(points: Sequence, regime: Callable[[Any], Any]) -> list[list]:
    """``points`` (in drawing order) split into runs of equal ``regime(point)``: a frontier
    line is drawn per run, so it is broken where the mapping or weight placement changes rather
    than joining two regimes as if they were one continuous curve."""
    segments: list[list] = []
    for p in points:
        if segments and regime(segments[-1][-1]) == regime(p):
            segments[-1].append(p)
        else:
            segments.append([p])
    return segments


def _regime(p: Any) -> tuple:
    """A curve point's regime: its mapping, and its weight placement where it carries one."""
    par = getattr(p, "parallelism", None) or {}
    return (tuple(sorted(par.items())), getattr(p, "placement", None))


def _save(fig, path: Path) -> Path:
    plt = _plt()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------- serve --plot


def _serve_config(req: Any = None, config: dict | None = None) -> dict[str, Any]:
    """The title fields of a serving run: from its summary's ``config`` (the mapping resolved)
    when given, else from the request."""
    if config:
        return {k: config.get(k) for k in ("system", "model", "quant", "parallelism",
                                           "input_len", "output_len", "engine")}  # fmt: skip
    if req is None:
        return {}
    return {"system": req.system, "model": req.model, "quant": req.quant,
            "parallelism": {k: getattr(req, k) for k in ("tp", "pp", "ep", "dp")},
            "input_len": req.input_len, "output_len": req.output_len,
            "engine": getattr(req, "engine", None)}  # fmt: skip


_CDFS = (("ttft", "TTFT", "time to first token"), ("tpot", "TPOT", "time per output token"),
         ("e2e", "end to end", "end-to-end latency"))  # fmt: skip
_MARKERS = {50: ("o", "tab:green"), 90: ("s", "tab:orange"), 99: ("D", "tab:purple")}


def latency_cdf_figure(trace, *, slo_ttft_s: float | None = None,
                       slo_tpot_s: float | None = None, config: dict | None = None):  # fmt: skip
    """The CDF of TTFT, TPOT and end-to-end latency over the finished requests, each with its
    p50 / p90 / p99 marked (values in the legend) and the SLO as a vertical red line with the
    share of requests meeting it (or a legend line saying no SLO was stated). The latency axis
    is logarithmic when it spans decades. ``config``: the serve summary's ``config`` (title).
    Returns the Figure."""
    from explore.report.units import human, percent
    from sim.metrics import request_arrays

    plt = _plt()
    a = request_arrays(trace)
    slos = {"ttft": slo_ttft_s, "tpot": slo_tpot_s, "e2e": None}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, (key, short, long) in zip(axes, _CDFS, strict=True):
        ax.set_xlabel(f"{long} (ms)")
        ax.set_ylabel("fraction of requests (0-1)")
        ax.set_title(f"{short} CDF", fontsize=9)
        x = np.asarray(a[key], dtype=float)
        x = np.sort(x[np.isfinite(x)]) * 1e3
        slo = slos[key]
        if not x.size:
            lost = len(trace.requests)
            nothing_to_show(ax, f"no {short} to plot: none of the {lost} requests has one "
                            "(none finished, or every output is one token)")  # fmt: skip
            continue
        ax.plot(x, np.arange(1, x.size + 1) / x.size, lw=1.6, gid="cdf",
                label=f"{short} CDF ({x.size} requests)")  # fmt: skip
        for p in PERCENTILES:
            q = float(np.percentile(x, p))
            marker, color = _MARKERS[p]
            ax.plot([q], [p / 100], marker=marker, ls="", color=color, ms=7, zorder=4,
                    gid=f"p{p}", label=f"p{p} {human(q / 1e3, 's')}")  # fmt: skip
        if slo:
            ax.axvline(slo * 1e3, color="red", ls="--", lw=1.2, gid="slo",
                       label=f"SLO {human(slo, 's')}: {percent(float(np.mean(x <= slo * 1e3)))}"
                       " meet it")  # fmt: skip
        else:
            ax.plot([], [], ls="", label=f"no {short} SLO stated")
        set_scales(ax, x=[*x, *([slo * 1e3] if slo else [])])
        ax.set_ylim(0, 1.02)
        legend_outside(ax)
    n = len(trace.requests)
    fig.suptitle(config_title("Latency CDFs", **_serve_config(None, config),
                              extra=f"{n} requests"), fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def latency_cdfs(trace, path: Path, **kw) -> Path:
    """:func:`latency_cdf_figure` saved to ``path`` (keywords passed on)."""
    return _save(latency_cdf_figure(trace, **kw), path)


def over_time_figure(trace, *, window_s: float | None = None, config: dict | None = None,
                     max_replicas: int = 8):  # fmt: skip
    """Output tokens/s over time (windows of ``window_s``, 1/60 of the run by default) and the
    requests waiting and running per replica (summed over replicas when there are more than
    ``max_replicas``, to stay legible). Returns the Figure."""
    from explore.report.units import human

    plt = _plt()
    s = trace.steps
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.8), sharex=True)
    ax1.set_ylabel("output throughput (tokens/s)")
    ax2.set_xlabel("simulated time (s)")
    ax2.set_ylabel("waiting / running (requests)")
    title = config_title("Throughput and queue length over time",
                         **_serve_config(None, config))  # fmt: skip
    ax1.set_title(title, fontsize=9)
    t = np.asarray(s.get("t", ()), dtype=float)
    if not t.size:
        for ax in (ax1, ax2):
            nothing_to_show(ax, f"no scheduler step was simulated ({len(trace.requests)} "
                            "requests, none scheduled)")  # fmt: skip
        fig.tight_layout()
        return fig
    tokens = np.asarray(s["tokens"], dtype=float)
    span = trace.simulated_s or float(t[-1]) or 1.0
    w = window_s or span / 60
    edges = np.arange(0.0, span + w, w)
    idx = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 1)
    cum = np.where(edges >= t[0], tokens[idx], 0.0)
    rate = np.diff(cum) / w
    ax1.step(edges[1:], rate, where="pre", label=f"output tokens/s, {human(w, 's')} windows")
    set_scales(ax1, y=rate)
    legend_outside(ax1)
    replica = np.asarray(s["replica"])
    waiting, running = np.asarray(s["waiting"]), np.asarray(s["running"])
    reps = sorted(set(replica.tolist()))
    queue = []
    if len(reps) > max_replicas:  # one pair of lines over all replicas: the sum, step by step
        order = np.argsort(t, kind="stable")
        last_w, last_r = dict.fromkeys(reps, 0), dict.fromkeys(reps, 0)
        tot_w, tot_r = [], []
        for i in order:
            last_w[replica[i]], last_r[replica[i]] = waiting[i], running[i]
            tot_w.append(sum(last_w.values()))
            tot_r.append(sum(last_r.values()))
        ax2.plot(t[order], tot_w, lw=0.8, label=f"waiting, all {len(reps)} replicas")
        ax2.plot(t[order], tot_r, lw=0.8, ls="--", label=f"running, all {len(reps)} replicas")
        queue = tot_w + tot_r
    else:
        for r in reps:
            m = replica == r
            line, = ax2.plot(t[m], waiting[m], lw=0.8, label=f"replica {r} waiting")
            ax2.plot(t[m], running[m], lw=0.8, ls="--", color=line.get_color(),
                     label=f"replica {r} running")  # fmt: skip
            queue += [*waiting[m], *running[m]]
    set_scales(ax2, y=queue)
    legend_outside(ax2, ncol=1 if len(reps) <= 4 else 2)
    fig.tight_layout()
    return fig


def over_time(trace, path: Path, window_s: float | None = None, **kw) -> Path:
    """:func:`over_time_figure` saved to ``path``."""
    return _save(over_time_figure(trace, window_s=window_s, **kw), path)


CAPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _sweep(req, caps, requests) -> tuple[list[tuple[int, dict]], list[str]]:
    """(cap, serve summary) of a closed-loop run at each batch cap that produced tokens, and
    one line per cap that did not (what the trade-off chart leaves off)."""
    from explore.api.serve import serve
    from sim.traffic import ClosedLoop

    out, dropped = [], []
    for cap in caps:
        n = requests or max(4 * cap * req.dp, 64)
        s, _ = serve(replace(req, arrivals=ClosedLoop(cap * req.dp), max_batch=cap, requests=n))
        if s["tpot_s"]["mean"]:
            out.append((cap, s))
        else:
            dropped.append(f"batch cap {cap}: no request produced a second token")
    return out, dropped


def _saturated(req, caps, requests) -> list[tuple[int, dict]]:
    """(cap, serve summary) of a closed-loop run at each batch cap that produced tokens."""
    return _sweep(req, caps, requests)[0]


def tradeoff_points(req, caps=CAPS, requests=None):
    """(cap, tokens/s per user, tokens/s per chip) at saturation for each batch cap."""
    return [(cap, 1.0 / s["tpot_s"]["mean"], s["output_tokens_per_s_per_chip"])
            for cap, s in _saturated(req, caps, requests)]  # fmt: skip


def _errors(value: float, band: list[float] | None) -> list[float]:
    """Distances below and above ``value`` to the ends of its band (0, 0 without one)."""
    return [value - band[0], band[1] - value] if band else [0.0, 0.0]


def tradeoff_figure(req, runs: Sequence[tuple[int, dict]], *, dropped: Sequence[str] = (),
                    slo_tpot_s: float | None = None, config: dict | None = None):  # fmt: skip
    """Output tokens/s per user (1 / mean TPOT) against output tokens/s per chip over batch
    caps (``runs``: (cap, serve summary) pairs, :func:`_sweep`), each point with its
    out-of-sample error band; the line is broken where the mapping in a run's ``config``
    changes; the TPOT SLO as a horizontal line (1 / SLO); caps that produced no tokens listed
    (``dropped``), and said in the axes when none did. Returns the Figure."""
    from explore.report.units import human

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 5))
    ax.set_xlabel("output throughput per chip (tokens/s)")
    ax.set_ylabel("output speed per user, 1 / mean TPOT (tokens/s)")
    cfg = config or (runs[0][1].get("config") if runs else None)
    ax.set_title(config_title("Batch-cap sweep at saturation (closed loop)",
                              **_serve_config(req, cfg),
                              extra="bars: p10-p90 out-of-sample validation error"),
                 fontsize=8)  # fmt: skip
    if not runs:
        nothing_to_show(ax, "no batch cap produced output tokens: nothing to plot", dropped)
        fig.tight_layout()
        return fig
    user = [1.0 / s["tpot_s"]["mean"] for _, s in runs]
    chip = [s["output_tokens_per_s_per_chip"] for _, s in runs]
    tpot_bands = [s.get("interval", {}).get("tpot_s.mean") for _, s in runs]
    user_bands = [[1.0 / b[1], 1.0 / b[0]] if b else None for b in tpot_bands]
    chip_bands = [s.get("interval", {}).get("output_tokens_per_s_per_chip") for _, s in runs]
    rows = list(zip(runs, user, chip, user_bands, chip_bands, strict=True))

    def regime(row):
        return tuple(sorted((row[0][1].get("config", {}).get("parallelism") or {}).items()))

    color = None
    for k, seg in enumerate(regime_segments(rows, regime)):  # a new mapping starts a new line
        xs, ys = [r[2] for r in seg], [r[1] for r in seg]
        xerr = np.array([_errors(r[2], r[4]) for r in seg]).T
        yerr = np.array([_errors(r[1], r[3]) for r in seg]).T
        mapping = _mapping(seg[0][0][1].get("config", {}).get("parallelism"))
        label = "batch caps at saturation" + (f", {mapping}" if mapping else "")
        bars = ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="osD^v"[k % 5], capsize=3,
                           elinewidth=0.8,
                           color=color, label=label if k == 0 or mapping else "_nolegend_")
        bars.lines[0].set_gid(f"tradeoff:{k}")  # the data line (not its caps and bars)
        color = color or bars.lines[0].get_color()
    for (cap, _), u, c in zip(runs, user, chip, strict=True):
        ax.annotate(f"b{cap}", (c, u), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ys_all = [*user, *(b for band in user_bands if band for b in band)]
    if slo_tpot_s:
        ax.axhline(1 / slo_tpot_s, color="red", ls="--", lw=1, gid="slo",
                   label=f"TPOT SLO {human(slo_tpot_s, 's')} "
                   f"({1 / slo_tpot_s:,.0f} tokens/s per user)")  # fmt: skip
        ys_all.append(1 / slo_tpot_s)
    set_scales(ax, x=[*chip, *(b for band in chip_bands if band for b in band)], y=ys_all)
    _dropped_entries(ax, "no tokens", dropped)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def tradeoff(req, path: Path, *, slo_tpot_s: float | None = None,
             config: dict | None = None) -> Path:  # fmt: skip
    """The batch-cap sweep simulated (:func:`_sweep`) and drawn (:func:`tradeoff_figure`)."""
    runs, dropped = _sweep(req, CAPS, None)
    return _save(tradeoff_figure(req, runs, dropped=dropped, slo_tpot_s=slo_tpot_s,
                                 config=config), path)  # fmt: skip


def serving_plots(req, trace, out_dir: Path, *, slo_ttft_s: float | None = None,
                  slo_tpot_s: float | None = None, config: dict | None = None) -> list[Path]:
    """``serve --plot DIR``: latency_cdf.png, throughput_queue.png, tradeoff_user_vs_chip.png.
    ``config``: the serve summary's ``config`` (the mapping as resolved; the titles name it, and
    the batch-cap sweep reuses it instead of choosing again); the SLOs are drawn where given."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    par = (config or {}).get("parallelism") or {}
    if par and all(isinstance(v, int) for v in par.values()):
        req = replace(req, **{k: v for k, v in par.items() if hasattr(req, k)})
    return [
        latency_cdfs(trace, out_dir / "latency_cdf.png", slo_ttft_s=slo_ttft_s,
                     slo_tpot_s=slo_tpot_s, config=config or _serve_config(req)),
        over_time(trace, out_dir / "throughput_queue.png", config=config or _serve_config(req)),
        tradeoff(req, out_dir / "tradeoff_user_vs_chip.png", slo_tpot_s=slo_tpot_s,
                 config=config),
    ]  # fmt: skip


# --------------------------------------------------------------------------- predict --plot


def _predict_title(what: str, r) -> str:
    c = r.config
    return config_title(what, system=c["system"], model=c["model"], quant=c["quant"],
                        parallelism=c["parallelism"], input_len=c["input_len"],
                        output_len=c["output_len"], batch=r.batch, engine=c.get("engine"),
                        extra=f"GEMMs at {c['gemm_precision']}")  # fmt: skip


def roofline_figure(r):
    """Each op of the prefill (circles) and decode (triangles) step at its arithmetic intensity
    (FLOPs per byte moved) and achieved FLOP/s per chip, under the chip's compute roof (matrix
    peak at the GEMM precision, and the vector peak) and one memory roof per memory level.
    Collectives (no math) are not on it; ops without one are listed. Axes log or linear from
    the data (:func:`scale_for`; a roofline spans decades, so in practice log-log). Returns the
    matplotlib Figure."""
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
    fig, ax = plt.subplots(figsize=(9.5, 5.8))
    ys = [rf.compute_flops_per_s, rf.vector_flops_per_s, *(p[1] for p in pts)]
    for level, bw in rf.memory_bytes_per_s.items():
        roof = np.minimum(bw * ai, rf.compute_flops_per_s)
        ax.plot(ai, roof, lw=1, ls="--", label=f"{level} roof: {human(bw, 'B/s')}")
        ys += [float(roof.min())]
    ax.axhline(rf.compute_flops_per_s, color="k", lw=1.5,
               label=f"matrix {rf.precision}: {human(rf.compute_flops_per_s, 'FLOP/s')}")
    ax.axhline(rf.vector_flops_per_s, color="grey", lw=1, ls=":",
               label=f"vector: {human(rf.vector_flops_per_s, 'FLOP/s')}")  # fmt: skip
    no_math = []
    for (phase, all_rows), marker in zip(ops.items(), ("o", "^"), strict=True):
        rows = [x for x in all_rows if x["arithmetic_intensity"]]
        no_math += [f"{phase} {x['name']}" for x in all_rows if not x["arithmetic_intensity"]]
        ax.scatter([x["arithmetic_intensity"] for x in rows],
                   [x["achieved_flops_per_s"] for x in rows], marker=marker, s=28,
                   label=f"{phase} ops", zorder=3)  # fmt: skip
        for x in rows:
            ax.annotate(x["name"], (x["arithmetic_intensity"], x["achieved_flops_per_s"]),
                        fontsize=6, xytext=(3, 2), textcoords="offset points")  # fmt: skip
    set_scales(ax, x=ai, y=ys)
    ax.set_xlabel("arithmetic intensity (FLOP/byte moved)")
    ax.set_ylabel("achieved compute per chip (FLOP/s)")
    ax.set_title(_predict_title("Roofline", r), fontsize=8)
    _dropped_entries(ax, "no FLOPs (collectives, copies)", sorted(set(no_math)))
    legend_outside(ax)
    fig.tight_layout()
    return fig


def breakdown_figure(r, top: int = 8):
    """Where each phase's op time goes: one stacked bar per phase (share of the summed op
    time, so phases of very different length sit on one axis; the step time under each bar),
    the ``top`` ops by time over both phases and the rest as "other". The share axis is always
    linear, 0-100 % (a stack on a log axis misstates its parts). Returns the Figure."""
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
    fig, ax = plt.subplots(figsize=(8, 5.2))
    ax.set_ylabel("share of op time per pass (%)")
    ax.set_xlabel("phase, with its step time (categories)")
    ax.set_title(_predict_title("Time breakdown", r), fontsize=8)
    if not ops:
        nothing_to_show(ax, "no op was costed in either phase")
        fig.tight_layout()
        return fig
    bottom = np.zeros(len(ops))

    def group(op: str) -> str:
        return op if op in names else "other"

    for name in [*names, "other"]:
        h = np.array([100 * sum(x["share"] for x in rows if group(x["name"]) == name)
                      for rows in ops.values()])  # fmt: skip
        ax.bar(labels, h, bottom=bottom, label=name, width=0.5)
        bottom += h
    ax.set_yscale("linear")
    ax.set_ylim(0, 100)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def predict_plots(r, out_dir: Path) -> list[Path]:
    """``predict --plot DIR``: roofline.png and time_breakdown.png (nothing when it does not
    fit: there are no steps to draw)."""
    if not r.fits:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_save(roofline_figure(r), out_dir / "roofline.png"),
            _save(breakdown_figure(r), out_dir / "time_breakdown.png")]  # fmt: skip


# --------------------------------------------------------------------------- curve


def curve_figure(c, *, engine: str | None = None):
    """Output tokens/s per user (1 / TPOT) against output tokens/s per chip, every mapping and
    batch of each system (:func:`explore.api.curve.curve`): all points faint, hollow markers
    for points that miss an SLO, each system's Pareto front as lines with its points labelled by
    batch, broken where the mapping (or weight placement) changes (:func:`regime_segments`; the
    mapping is written at the start of each piece), and the TPOT SLO as a horizontal line
    (1 / TPOT SLO). Axes log or linear from the data (:func:`scale_for`). Mappings that could
    not run are listed in the legend; with no point at all the axes say so. Returns the
    matplotlib Figure."""
    from explore.report.units import human

    plt = _plt()
    fig, ax = plt.subplots(figsize=(10.5, 6.2))
    ax.set_xlabel("output throughput per chip (tokens/s)")
    ax.set_ylabel("output speed per user, 1 / mean TPOT (tokens/s)")
    systems = c.systems
    fronts = {s: c.frontier(s) for s in systems}
    extra = "static batches"
    if c.points and not any(fronts.values()):
        extra += "; no point meets the SLO, so there is no Pareto front"
    ax.set_title(config_title("Per-user speed vs per-chip throughput",
                              system=", ".join(systems) or None, model=c.model, quant=c.quant,
                              parallelism="every mapping", input_len=c.input_len,
                              output_len=c.output_len, engine=engine or getattr(c, "engine", None),
                              extra=extra), fontsize=8)  # fmt: skip
    if not c.points:
        nothing_to_show(ax, "no point to draw: no mapping of any system fits", c.skipped)
        fig.tight_layout()
        return fig
    xs = [p.output_tokens_per_s_per_chip for p in c.points]
    ys = [p.tokens_per_s_per_user for p in c.points]
    for i, system in enumerate(systems):
        color = f"C{i % 10}"
        pts = [p for p in c.points if p.system == system]
        ok = [p for p in pts if p.meets_slo]
        miss = [p for p in pts if not p.meets_slo]
        segments = regime_segments(fronts[system], _regime)
        for k, seg in enumerate(segments):
            label = (f"{system}: Pareto front ({len(segments)} piece"
                     f"{'s' if len(segments) > 1 else ''}, broken where the mapping changes)")
            ax.plot([p.output_tokens_per_s_per_chip for p in seg],
                    [p.tokens_per_s_per_user for p in seg], marker="o", lw=1.8, color=color,
                    gid=f"front:{system}:{k}", label=label if k == 0 else "_nolegend_")
            first = seg[0]
            ax.annotate(first.mapping.replace(" EP1", ""),
                        (first.output_tokens_per_s_per_chip, first.tokens_per_s_per_user),
                        fontsize=6, xytext=(4, 8), textcoords="offset points", color=color)
            for p in seg:
                ax.annotate(f"b{p.batch}", (p.output_tokens_per_s_per_chip,
                                            p.tokens_per_s_per_user),
                            fontsize=6, xytext=(3, -8), textcoords="offset points")  # fmt: skip
        if not segments:
            ax.plot([], [], ls="", label=f"{system}: no point meets the SLO (no Pareto front)")
        if ok:
            ax.scatter([p.output_tokens_per_s_per_chip for p in ok],
                       [p.tokens_per_s_per_user for p in ok], s=10, color=color, alpha=0.3,
                       label=f"{system}: every mapping x batch ({len(ok)})")  # fmt: skip
        if miss:
            ax.scatter([p.output_tokens_per_s_per_chip for p in miss],
                       [p.tokens_per_s_per_user for p in miss], s=14, facecolors="none",
                       edgecolors=color, alpha=0.5,
                       label=f"{system}: misses an SLO ({len(miss)})")  # fmt: skip
    if c.tpot_slo_s:
        ax.axhline(1 / c.tpot_slo_s, color="red", ls="--", lw=1, gid="slo",
                   label=f"TPOT SLO {human(c.tpot_slo_s, 's')} "
                   f"({1 / c.tpot_slo_s:,.0f} tokens/s per user)")  # fmt: skip
        ys.append(1 / c.tpot_slo_s)
    if c.ttft_slo_s:
        ax.plot([], [], ls="", label=f"TTFT SLO {human(c.ttft_slo_s, 's')}: hollow points miss it")
    set_scales(ax, x=xs, y=ys)
    _dropped_entries(ax, "no batch fits", list(c.skipped))
    legend_outside(ax)
    fig.tight_layout()
    return fig


def curve_plots(c, out_dir: Path, *, engine: str | None = None) -> list[Path]:
    """``curve --out DIR``: curve.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_save(curve_figure(c, engine=engine), out_dir / "curve.png")]
