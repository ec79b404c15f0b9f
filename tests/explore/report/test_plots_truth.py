"""Plots that tell the truth (issue 14 item 8), read through the matplotlib Figure objects: every
axis labelled with its unit, the configuration in every title, log scales exactly where the data
spans decades, legends outside the data area and inside the figure, SLO lines and p50/p90/p99
markers on the latency CDFs, frontier lines broken where the mapping changes, and figures with
nothing to draw saying so (and what was dropped). Written PNGs open with PIL."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.lines import Line2D
from PIL import Image

from explore.api.curve import Curve, CurvePoint
from explore.api.predict import predict
from explore.api.serve import ServeRequest, serve
from explore.report import plots
from sim.serving import Request, ServingTrace
from sim.traffic import Poisson, parse_length

UNIT = re.compile(r"\([^)]+\)|\[[^\]]+\]")


def _labels_with_units(fig) -> None:
    """Every axis labelled with a unit; a shared x axis may carry its label on one sibling."""
    for ax in fig.axes:
        xlabel = ax.get_xlabel() or next(
            (a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax) if a.get_xlabel()),
            "",
        )
        for label in (xlabel, ax.get_ylabel()):
            assert label and UNIT.search(label), (ax.get_title(), label)


def _title_text(fig) -> str:
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return " ".join(" ".join([sup, *(ax.get_title() for ax in fig.axes)]).split())


def _title(ax) -> str:
    """The axes title with its line wrapping undone."""
    return " ".join(ax.get_title().split())


def _legends_clear(fig) -> int:
    """Every legend inside the figure and over no axes' data area; returns how many."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fb = fig.bbox
    n = 0
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        n += 1
        lb = leg.get_window_extent(renderer)
        assert fb.x0 - 1 <= lb.x0 and lb.x1 <= fb.x1 + 1, (lb, fb)
        assert fb.y0 - 1 <= lb.y0 and lb.y1 <= fb.y1 + 1, (lb, fb)
        for other in fig.axes:
            assert not lb.overlaps(other.get_window_extent(renderer)), ax.get_title()
    return n


def _by_gid(ax, prefix: str) -> list:
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def _nothing(ax) -> str:
    texts = [t.get_text() for t in ax.texts if t.get_gid() == "nothing-to-show"]
    assert len(texts) == 1, "the empty axes must say why"
    return texts[0]


# --------------------------------------------------------------------------- the helpers


@pytest.mark.parametrize(
    ("values", "scale"),
    [([1, 10, 100], "log"), ([1, 20], "linear"), ([1, 40], "log"), ([0, 1, 1000], "linear"),
     ([5.0], "linear"), ([2, float("nan"), 2000], "log"), ([-1, 100], "linear")],
)  # fmt: skip
def test_scale_from_decades(values, scale):
    assert plots.scale_for(values) == scale


def test_regime_segments_break_where_the_regime_changes():
    pts = ["a1", "a2", "b1", "a3", "a4", "c1"]
    segs = plots.regime_segments(pts, lambda p: p[0])
    assert segs == [["a1", "a2"], ["b1"], ["a3", "a4"], ["c1"]]


def test_config_title_names_everything_known():
    t = plots.config_title("X", system="h100-sxm:8", model="llama-3.1-8b", quant={"name": "fp8"},
                           parallelism={"tp": 2, "pp": 1, "ep": 1, "dp": 4}, input_len=1024,
                           output_len=128, batch=16, engine="vllm")  # fmt: skip
    assert t.startswith("X\n")
    t = " ".join(t.split())
    for part in ( "llama-3.1-8b on h100-sxm:8", "fp8", "TP2 PP1 EP1 DP4",
                 "input 1024 / output 128 tokens", "batch 16/replica", "engine vllm"):  # fmt: skip
        assert part in t
    assert plots.config_title("X", parallelism={"tp": None, "dp": 2}).endswith("TP auto DP2")


# --------------------------------------------------------------------------- serve


def _trace(ttft_s, tpot_s, out_len=10) -> ServingTrace:
    reqs = []
    for i, (ttft, tpot) in enumerate(zip(ttft_s, tpot_s, strict=True)):
        first = 0.01 * i + ttft
        reqs.append(Request(rid=i, arrival_s=0.01 * i, input_len=100, output_len=out_len,
                            first_scheduled_s=0.01 * i, first_token_s=first,
                            finish_s=first + tpot * (out_len - 1)))  # fmt: skip
    return ServingTrace(requests=reqs, simulated_s=20.0)


CONFIG = {"system": "h100-sxm:8", "model": "llama-3.1-8b", "quant": "fp8",
          "parallelism": {"tp": 2, "pp": 1, "ep": 1, "dp": 4}, "input_len": "Fixed(n=100)",
          "output_len": "Fixed(n=10)"}  # fmt: skip


def test_latency_cdfs_mark_percentiles_slos_and_choose_scales():
    rng = np.random.default_rng(0)
    ttft = np.geomspace(1e-3, 10.0, 200)  # four decades: log
    tpot = rng.uniform(0.020, 0.030, 200)  # narrow: linear
    fig = plots.latency_cdf_figure(_trace(ttft, tpot), slo_ttft_s=0.5, slo_tpot_s=0.025,
                                   config=CONFIG)  # fmt: skip
    _labels_with_units(fig)
    title = _title_text(fig)
    assert all(s in title for s in ("llama-3.1-8b", "h100-sxm:8", "fp8", "TP2 PP1 EP1 DP4"))
    ax_ttft, ax_tpot, ax_e2e = fig.axes
    assert ax_ttft.get_xscale() == "log" and ax_tpot.get_xscale() == "linear"
    for ax, slo_ms in ((ax_ttft, 500.0), (ax_tpot, 25.0)):
        (slo,) = _by_gid(ax, "slo")
        assert slo.get_xdata()[0] == pytest.approx(slo_ms)
        assert "meet it" in slo.get_label()
    assert not _by_gid(ax_e2e, "slo")
    assert any("no end to end SLO" in t.get_text() for t in ax_e2e.get_legend().get_texts())
    x_ms = np.sort(ttft) * 1e3
    for ax in fig.axes:
        for p in (50, 90, 99):
            (marker,) = _by_gid(ax, f"p{p}")
            assert marker.get_ydata()[0] == pytest.approx(p / 100)
            assert marker.get_label().startswith(f"p{p} ")
    assert _by_gid(ax_ttft, "p99")[0].get_xdata()[0] == pytest.approx(np.percentile(x_ms, 99))
    assert _legends_clear(fig) == 3


def test_latency_cdfs_without_finished_requests_say_so():
    trace = _trace([0.01, 0.02], [0.01, 0.01])
    for r in trace.requests:
        r.first_token_s = r.finish_s = float("nan")
    fig = plots.latency_cdf_figure(trace)
    for ax in fig.axes:
        assert "none of the 2 requests" in _nothing(ax)
        assert not ax.get_lines()
    _labels_with_units(fig)


@pytest.fixture(scope="module")
def served():
    req = ServeRequest(system="h100-sxm:8", model="llama-3.1-8b", quant="fp8",
                       input_len=parse_length("uniform:100:900"),
                       output_len=parse_length("lognormal:120:60"), arrivals=Poisson(40),
                       requests=120, tp=2, dp=4)  # fmt: skip
    summary, trace = serve(req)
    return req, summary, trace


def test_serving_pngs_from_a_real_run(served, tmp_path):
    _, summary, trace = served
    paths = [plots.latency_cdfs(trace, tmp_path / "cdf.png", slo_ttft_s=0.05, slo_tpot_s=0.01,
                                config=summary["config"]),
             plots.over_time(trace, tmp_path / "queue.png", config=summary["config"])]  # fmt: skip
    for path in paths:
        with Image.open(path) as im:
            assert im.size[0] > 900 and im.size[1] > 400
    fig = plots.over_time_figure(trace, config=summary["config"])
    _labels_with_units(fig)
    assert "TP2 PP1 EP1 DP4" in _title_text(fig) and "llama-3.1-8b" in _title_text(fig)
    queue = fig.axes[1]
    labels = [t.get_text() for t in queue.get_legend().get_texts()]
    assert len(labels) == 8 and {"replica 0 waiting", "replica 3 running"} <= set(labels)
    assert queue.get_yscale() == "linear"  # queue lengths touch zero
    assert _legends_clear(fig) == 2


def test_over_time_sums_many_replicas_and_says_when_empty():
    reps = 12
    t = np.repeat(np.arange(5.0), reps)
    steps = {"t": list(t), "replica": [i % reps for i in range(t.size)],
             "waiting": [1] * t.size, "running": [2] * t.size,
             "tokens": list(np.arange(t.size) * 10.0)}  # fmt: skip
    fig = plots.over_time_figure(ServingTrace(requests=[], steps=steps, simulated_s=5.0))
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == [f"waiting, all {reps} replicas", f"running, all {reps} replicas"]
    assert max(fig.axes[1].get_lines()[1].get_ydata()) == 2 * reps
    empty = plots.over_time_figure(ServingTrace(requests=[], steps={}))
    assert all("no scheduler step" in _nothing(ax) for ax in empty.axes)


def _run(cap, user, chip, par):
    return (cap, {"tpot_s": {"mean": 1 / user}, "output_tokens_per_s_per_chip": chip,
                  "interval": {"tpot_s.mean": [0.9 / user, 1.1 / user],
                               "output_tokens_per_s_per_chip": [0.9 * chip, 1.1 * chip]},
                  "config": {**CONFIG, "parallelism": par}})  # fmt: skip


TP2 = {"tp": 2, "pp": 1, "ep": 1, "dp": 4}
TP8 = {"tp": 8, "pp": 1, "ep": 1, "dp": 1}


def test_tradeoff_breaks_at_a_mapping_change_and_draws_the_slo(served):
    req = served[0]
    runs = [_run(1, 200, 50, TP2), _run(4, 190, 180, TP2), _run(16, 150, 700, TP8),
            _run(64, 120, 2500, TP8), _run(256, 60, 6000, TP8)]  # fmt: skip
    fig = plots.tradeoff_figure(req, runs, dropped=["batch cap 512: no request produced a "
                                                    "second token"], slo_tpot_s=0.01)  # fmt: skip
    ax = fig.axes[0]
    _labels_with_units(fig)
    assert "llama-3.1-8b on h100-sxm:8" in _title(ax) and "fp8" in _title(ax)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"  # 50..6000 vs 54..220
    lines = [a for a in _by_gid(ax, "tradeoff:") if isinstance(a, Line2D)]
    xs = sorted(tuple(line.get_xdata()) for line in lines if len(line.get_xdata()) > 1)
    assert xs == [(50, 180), (700, 2500, 6000)]  # no line from the TP2 runs to the TP8 runs
    (slo,) = _by_gid(ax, "slo")
    assert slo.get_ydata()[0] == pytest.approx(100)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("TP2 PP1 EP1 DP4" in x for x in labels) and any("TP8" in x for x in labels)
    assert any("batch cap 512" in x for x in labels)
    assert _legends_clear(fig) == 1
    empty = plots.tradeoff_figure(req, [], dropped=["batch cap 1: no request produced a second "
                                                    "token"])  # fmt: skip
    assert "batch cap 1" in _nothing(empty.axes[0])


# --------------------------------------------------------------------------- predict --plot


@pytest.fixture(scope="module")
def result():
    return predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=2, dp=4, batch=16, input_len=1024,
                   output_len=128)  # fmt: skip


def test_roofline_and_breakdown(result, tmp_path):
    for fig in (plots.roofline_figure(result), plots.breakdown_figure(result)):
        _labels_with_units(fig)
        title = _title(fig.axes[0])
        for part in ("llama-3.1-8b on h100-sxm:8", "fp8", "TP2 PP1 EP1 DP4",
                     "input 1024 / output 128 tokens", "batch 16/replica"):  # fmt: skip
            assert part in title
        assert _legends_clear(fig) == 1
    roof = plots.roofline_figure(result).axes[0]
    assert roof.get_xscale() == roof.get_yscale() == "log"
    bars = plots.breakdown_figure(result).axes[0]
    assert bars.get_yscale() == "linear" and bars.get_ylim() == (0, 100)
    for path in plots.predict_plots(result, tmp_path):
        with Image.open(path) as im:
            assert im.size[0] > 700 and im.size[1] > 450


# --------------------------------------------------------------------------- curve


def _pt(par, batch, user, chip, system="h100-sxm:8", *, ok=True, pareto=True):
    return CurvePoint(system=system, parallelism=par, batch=batch, tokens_per_s_per_user=user,
                      output_tokens_per_s_per_chip=chip, output_tokens_per_s=chip * 8,
                      ttft_s=0.1, tpot_s=1 / user, meets_slo=ok, pareto=pareto)  # fmt: skip


def _curve(points, **kw):
    return Curve(tuple(points), "llama-3.1-70b", "fp8", 1024, 256, **kw)


def _fronts(ax, system="h100-sxm:8"):
    return [a for a in _by_gid(ax, f"front:{system}:") if isinstance(a, Line2D)]


def test_curve_front_broken_at_mapping_changes(tmp_path):
    pts = [_pt(TP8, 1, 100, 10), _pt(TP8, 4, 95, 40), _pt(TP2, 8, 80, 300),
           _pt(TP2, 32, 60, 900), _pt(TP8, 256, 40, 1500), _pt(TP2, 1, 20, 5, pareto=False),
           _pt(TP8, 512, 2, 1600, ok=False, pareto=False)]  # fmt: skip
    c = _curve(pts, tpot_slo_s=0.03, skipped=("h100-sxm:8 TP1 PP1 EP1 DP8: needs 80.9 GB",))
    fig = plots.curve_figure(c, engine="trt-llm")
    ax = fig.axes[0]
    _labels_with_units(fig)
    for part in ("llama-3.1-70b", "h100-sxm:8", "fp8", "input 1024 / output 256 tokens",
                 "engine trt-llm"):  # fmt: skip
        assert part in _title(ax)
    fronts = _fronts(ax)
    assert len(fronts) == 3  # TP8 | TP2 | TP8: three pieces, never one line across mappings
    by_xy = {(p.output_tokens_per_s_per_chip, p.tokens_per_s_per_user): p for p in pts}
    for line in fronts:
        pars = {tuple(by_xy[(x, y)].parallelism.items())
                for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)}  # fmt: skip
        assert len(pars) == 1
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"  # 5..1600, 2..100
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("Pareto front" in x for x in labels) == 1  # one entry for the system's front
    assert any("TP1 PP1 EP1 DP8" in x for x in labels)  # the mapping that does not fit
    assert _by_gid(ax, "slo")
    assert _legends_clear(fig) == 1
    (path,) = plots.curve_plots(c, tmp_path)
    with Image.open(path) as im:
        assert im.size[0] > 900 and im.size[1] > 500


def test_curve_one_mapping_is_one_line_and_linear_when_narrow():
    pts = [_pt(TP8, b, 100 - b, 50 + 10 * b) for b in (1, 2, 4, 8)]
    ax = plots.curve_figure(_curve(pts)).axes[0]
    assert len(_fronts(ax)) == 1 and len(_fronts(ax)[0].get_xdata()) == 4
    assert ax.get_xscale() == ax.get_yscale() == "linear"  # 60..130, 92..99


def test_curve_with_nothing_to_show_says_so():
    miss = [_pt(TP8, 1, 10, 5, ok=False, pareto=False)]
    fig = plots.curve_figure(_curve(miss, tpot_slo_s=0.01))
    assert "no point meets the SLO" in _title(fig.axes[0])
    assert not _fronts(fig.axes[0])
    empty = plots.curve_figure(_curve([], skipped=("mi300x:1 TP1 PP1 EP1 DP1: needs 141 GB",)))
    text = _nothing(empty.axes[0])
    assert "no mapping" in text and "mi300x:1 TP1" in text
