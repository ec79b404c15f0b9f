"""TCO tables and reports: compute (explore.tco.fleet), then render here.

``write_report(scenario, results, FILE)`` writes a self-contained HTML (figures embedded as PNG
data) or Markdown (figures as PNG files beside it) with: the fleet table, the cost stack per
fleet, $/M output tokens vs tokens/s/user frontier, a sensitivity tornado per fleet, Monte-Carlo
p5/p50/p95 (uncertain inputs and the throughput prediction error), the $/M interval at the ends
of the throughput error band, custom-ASIC payback, and every input used with its source.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from urllib.parse import quote

from arch.base import ConfigError
from explore.tco.fleet import SCALES, FleetResult, Scenario, operate, price_fleet

__all__ = [
    "cost_stack_figure",
    "frontier",
    "frontier_figure",
    "headline",
    "monte_carlo_figure",
    "print_table",
    "sizing",
    "tornado_figure",
    "write_report",
]


def _money(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"${x / div:,.2f}{unit}"
    return f"${x:,.3g}"


def rows(results: list[FleetResult]) -> list[list[str]]:
    out = []
    for r in results:
        if r.error:
            out.append([r.name, *["-"] * (len(HEAD) - 2), "n/a"])
            continue
        mc = r.monte_carlo
        out.append([
            r.name, f"{r.systems:,}", f"{r.chips:,}", f"{r.operating.batch}",
            f"{1 / r.operating.tpot_s:,.0f}", _money(r.usd_per_m_input_tokens),
            _money(r.usd_per_m_output_tokens) + _span(r.interval.get("usd_per_m_output_tokens")),
            f"{_money(mc.get('p5'))}-{_money(mc.get('p95'))}" if mc else "-",
            f"{r.tokens_per_s_per_mw:,.0f}", _money(r.capex_usd), _money(r.opex_usd_per_year),
            f"{100 * r.utilization:.0f}%",
        ])  # fmt: skip
    return out


HEAD = ["fleet", "systems", "chips", "batch", "tok/s/user", "$/M in", "$/M out (error band)",
        "$/M out p5-p95", "tok/s per MW", "capex", "opex/yr", "util"]  # fmt: skip


def _span(iv: list[float] | None) -> str:
    """`` (low–high)`` of a prediction-error interval, or nothing."""
    return f" ({_money(iv[0])}–{_money(iv[1])})" if iv else ""


def print_table(sc: Scenario, results: list[FleetResult]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    tab = Table(title=f"{sc.name}: {sc.model}, {sc.load_output_tokens_per_s:,.0f} output tok/s"
                + (f" at >= {sc.tokens_per_s_per_user:g} tok/s/user"
                   if sc.tokens_per_s_per_user else ""))  # fmt: skip
    for h in HEAD:
        tab.add_column(h, justify="left" if h == "fleet" else "right")
    for row in rows(results):
        tab.add_row(*row)
    con = Console(width=170)
    con.print(tab)
    for r in results:
        if r.error:
            con.print(escape(f"  {r.name}: CANNOT SERVE: {r.error}"))
            continue
        con.print(escape(f"  {headline(r)}"))
        top = sorted(r.sensitivity.items(), key=lambda kv: -max(abs(v) for v in kv[1]))[:3]
        con.print(f"  {r.name}: most sensitive to " + ", ".join(
            f"{k} ({_money(v[0])}/{_money(v[1])})" for k, v in top))  # fmt: skip
        for line in _payback_lines([r]):
            con.print(f"  {line}")
        for n in r.operating.notes:
            if n.startswith("EXTRAPOLATED"):
                con.print(escape(f"  {r.name}: {n}"))
        for n in r.extrapolated:
            if n not in r.operating.notes:
                con.print(escape(f"  {r.name}: EXTRAPOLATED error band: {n}"))
    con.print("  $/M out (error band): priced at the ends of the family's out-of-sample "
              "throughput band (p10-p90), the fleet re-sized; p5-p95: Monte Carlo over the "
              "uncertain inputs and that band")  # fmt: skip


def headline(r: FleetResult) -> str:
    """The fleet's $/M output tokens, saying where it sits in the Monte Carlo: the point
    estimate (nominal inputs, predicted speed) is not the Monte Carlo's median."""
    mc = r.monte_carlo
    text = f"{r.name}: {_money(r.usd_per_m_output_tokens)}/M output tokens"
    if not mc or mc.get("point_percentile") is None:
        return text
    return (f"{text} (point estimate, at p{mc['point_percentile']:.0f} of the Monte Carlo; "
            f"its p50 is {_money(mc['p50'])}, p5-p95 {_money(mc['p5'])}-{_money(mc['p95'])})")


def sizing(sc: Scenario) -> str:
    """What the fleets were sized for: the peak hour only where a daily profile varies."""
    prof = sc.profile
    if len(prof) < 2 or max(prof) == min(prof):
        return "fleets sized for the mean load (no daily profile given)"
    factor = max(prof) / (sum(prof) / len(prof))
    return f"fleets sized for the peak hour of the daily profile ({factor:.2f}x the mean load)"


def _regime(op) -> tuple:
    """An operating point's regime: the mapping chosen, the chips per replica and any weight
    placement flag (a frontier line is broken where it changes)."""
    flags = tuple(n.split(":", 1)[0] for n in op.notes
                  if n.startswith(("mapping chosen", "CLIFF", "STREAMING", "SPILLED")))
    mapping = next((n for n in op.notes if n.startswith("mapping chosen")), None)
    return (mapping, op.chips_per_replica, flags)


def _frontier_points(sc: Scenario, f) -> list[tuple[float, float, int, tuple]]:
    """(tokens/s/user, $/M output tokens, batch, regime) over batch sizes 1, 2, 4, ... that fit."""
    pts = []
    b = 1
    while b <= 4096:
        try:
            op = operate(sc, f, batch=b)
        except ConfigError:
            break
        pts.append((1 / op.tpot_s, price_fleet(sc, f, op).usd_per_m_output_tokens, b,
                    _regime(op)))  # fmt: skip
        b *= 2
    return pts


def frontier(sc: Scenario, results: list[FleetResult]) -> dict[str, list[tuple[float, float]]]:
    """Per fleet: (tokens/s/user, $/M output tokens) over batch sizes 1, 2, 4, ... that fit."""
    return {r.name: [p[:2] for p in _frontier_points(sc, f)]
            for f, r in zip(sc.fleets, results, strict=True) if not r.error}  # fmt: skip


# --------------------------------------------------------------------------- figures
#
# Each *_figure function returns a matplotlib Figure (tests read its axes); _figures renders
# them to PNG bytes for the report. They follow explore.report.plots' rules through its
# helpers: log axes only where the values span decades (set_scales), units on every axis, the
# scenario in every title (config_title), legends outside the axes (legend_outside), frontier
# lines broken where the mapping changes (regime_segments), and fleets that cannot serve
# listed in every figure (nothing_to_show when none can).

_COMPONENTS = ("accelerators", "hosts", "network", "datacenter", "energy", "colocation",
               "maintenance", "software")  # fmt: skip


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tex(text: str) -> str:
    """Text with its dollar signs escaped (matplotlib reads a pair of them as math)."""
    return text.replace("$", r"\$")


def _title(what: str, sc: Scenario) -> str:
    from explore.report.plots import config_title

    slo = (f"SLO >= {sc.tokens_per_s_per_user:g} tokens/s per user, "
           if sc.tokens_per_s_per_user else "no per-user SLO, ")  # fmt: skip
    return config_title(what, model=sc.model, input_len=sc.input_len, output_len=sc.output_len,
                        extra=f"{sc.name}; mean load {sc.load_output_tokens_per_s:,.0f} output "
                        f"tokens/s, {slo}{sizing(sc)}", width=100)  # fmt: skip


def _cannot_serve(results: list[FleetResult]) -> list[str]:
    return [f"{r.name}: {r.error}" for r in results if r.error]


def _serving(sc: Scenario, results: list[FleetResult]) -> list[tuple]:
    return [(f, r) for f, r in zip(sc.fleets, results, strict=True) if not r.error]


def _begin(sc: Scenario, results: list[FleetResult], what: str, ncols: int = 1,
           rows_per_fleet: bool = False, size=(10.5, 5.0)):  # fmt: skip
    """A figure for the serving fleets; with none, one axes saying so and listing every fleet
    with its error (returns ``(fig, None)``)."""
    from explore.report.plots import nothing_to_show

    plt = _plt()
    pairs = _serving(sc, results)
    if not pairs:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ax.set_title(_tex(_title(what, sc)), fontsize=8)
        nothing_to_show(ax, f"no fleet can serve this scenario ({len(results)} tried): "
                        "nothing to draw", _cannot_serve(results))  # fmt: skip
        fig.tight_layout()
        return fig, None
    n = len(pairs) if rows_per_fleet else 1
    fig, axes = plt.subplots(n, ncols, figsize=(size[0], size[1] * (n if rows_per_fleet else 1)),
                             squeeze=False)  # fmt: skip
    return fig, axes


def _finish(fig, results: list[FleetResult], title: str) -> None:
    """The title, the fleets that cannot serve listed under the axes (each with its error), and
    the layout."""
    from textwrap import shorten

    fig.suptitle(_tex(title), fontsize=8)
    lost = _cannot_serve(results)
    bottom = 0.0
    if lost:
        lines = [f"cannot serve, not drawn ({len(lost)}):"]
        lines += [f"  {shorten(x, 150, placeholder=' …')}" for x in lost]
        fig.text(0.01, 0.005, _tex("\n".join(lines)), fontsize=7, va="bottom", ha="left",
                 gid="cannot-serve", color="0.25")  # fmt: skip
        bottom = min(0.45, (0.1 + 0.125 * len(lines)) / fig.get_figheight())
    fig.tight_layout(rect=(0, bottom, 1, 1))


def cost_stack_figure(sc: Scenario, results: list[FleetResult]):
    """Left: each fleet's $/M output tokens (capital recovered per year plus opex per year),
    on a log axis when the fleets span decades; right: what it is made of, each component's
    share in % (a stack is always linear: on a log axis its parts would be misstated)."""
    from explore.report.plots import legend_outside, set_scales

    what = "Cost per M output tokens and what it is made of"
    fig, axes = _begin(sc, results, what, ncols=2, size=(12, 5.0))
    if axes is None:
        return fig
    ok = [r for _, r in _serving(sc, results)]
    names = [r.name for r in ok]
    ax, ax2 = axes[0]
    totals = [r.usd_per_m_output_tokens for r in ok]
    bars = ax.barh(names, totals, color="0.45")
    for rect, r in zip(bars, ok, strict=True):
        ax.annotate(_tex(_money(r.usd_per_m_output_tokens)), (rect.get_width(),
                    rect.get_y() + rect.get_height() / 2), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)  # fmt: skip
    set_scales(ax, x=totals)
    ax.set_xlim(right=max(totals) * (4 if ax.get_xscale() == "log" else 1.25))
    ax.invert_yaxis()
    ax.set_xlabel("total cost per M output tokens ($/M tokens)")
    ax.set_ylabel("fleet")
    ax.set_title("total", fontsize=8)
    left = [0.0] * len(ok)
    for comp in _COMPONENTS:
        share = [100 * _per_m(r, comp) / r.usd_per_m_output_tokens
                 if r.usd_per_m_output_tokens else 0.0 for r in ok]  # fmt: skip
        ax2.barh(names, share, left=left, label=comp)
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax2.set_xscale("linear")
    ax2.set_xlim(0, 100)
    ax2.invert_yaxis()
    ax2.set_yticks(range(len(ok)), [""] * len(ok))
    ax2.set_xlabel("share of the fleet's cost (%)")
    ax2.set_title("components (capital recovered per year, opex per year)", fontsize=8)
    legend_outside(ax2)
    _finish(fig, results, _title(what, sc))
    return fig


def _per_m(r: FleetResult, comp: str) -> float:
    """One cost component in $/M output tokens (capex components through the same annuity)."""
    total_year = r.opex_breakdown["annualized_capex"] + r.opex_usd_per_year
    scale = r.usd_per_m_output_tokens / total_year if total_year else 0.0
    if comp in r.capex_breakdown:
        share = r.capex_breakdown[comp] / r.capex_usd
        return r.opex_breakdown["annualized_capex"] * share * scale
    return r.opex_breakdown.get(comp, 0.0) * scale


def frontier_figure(sc: Scenario, results: list[FleetResult], points: dict | None = None):
    """Per fleet, $/M output tokens against tokens/s per user over batch 1, 2, 4, ... (each
    point priced with the fleet sized for the load at that speed), the line broken where the
    mapping or weight placement changes, the fleet's operating point (the batch that meets the
    SLO) as a star and the SLO as a vertical line. ``points``: precomputed
    :func:`_frontier_points` per fleet name (else computed)."""
    from explore.report.plots import legend_outside, regime_segments, set_scales

    what = "Interactivity vs cost per fleet (batch 1, 2, 4, ...)"
    fig, axes = _begin(sc, results, what, size=(11, 5.2))
    if axes is None:
        return fig
    ax = axes[0, 0]
    xs, ys = [], []
    for i, (f, r) in enumerate(_serving(sc, results)):
        pts = points[r.name] if points is not None else _frontier_points(sc, f)
        color = f"C{i % 10}"
        segs = regime_segments(pts, lambda p: p[3])
        for k, seg in enumerate(segs):
            label = (f"{r.name}" + (f" ({len(segs)} pieces: the mapping changes)"
                                    if len(segs) > 1 else "")) if k == 0 else "_nolegend_"
            ax.plot([p[0] for p in seg], [p[1] for p in seg], "o-", ms=3.5, lw=1.4,
                    color=color, label=label, gid=f"frontier:{r.name}:{k}")  # fmt: skip
        for p in pts[:1] + pts[-1:]:
            ax.annotate(f"b{p[2]}", p[:2], fontsize=6, xytext=(3, 3),
                        textcoords="offset points", color=color)  # fmt: skip
        op_x, op_y = 1 / r.operating.tpot_s, r.usd_per_m_output_tokens
        ax.plot([op_x], [op_y], marker="*", ms=11, ls="", color=color, mec="k", mew=0.5,
                gid=f"operating:{r.name}", label="_nolegend_")  # fmt: skip
        xs += [p[0] for p in pts] + [op_x]
        ys += [p[1] for p in pts] + [op_y]
    ax.plot([], [], marker="*", ls="", color="0.5", mec="k", ms=10,
            label="operating point (batch at the SLO)")  # fmt: skip
    if sc.tokens_per_s_per_user:
        ax.axvline(sc.tokens_per_s_per_user, color="red", ls="--", lw=1, gid="slo",
                   label=f"SLO {sc.tokens_per_s_per_user:g} tokens/s per user")  # fmt: skip
        xs.append(sc.tokens_per_s_per_user)
    set_scales(ax, x=xs, y=ys)
    ax.set_xlabel("output speed per user (tokens/s)")
    ax.set_ylabel("cost per M output tokens ($/M tokens)")
    legend_outside(ax)
    _finish(fig, results, _title(what, sc))
    return fig


def _fmt_value(v: float) -> str:
    return f"{v:,.4g}"


def tornado_figure(sc: Scenario, results: list[FleetResult]):
    """Per fleet, the change of $/M output tokens when one uncertain input goes to the low or
    the high end of its range (the others nominal, the fleet held at its size); each input's
    label gives its low / nominal / high values, bars sorted by swing. Linear axis (the changes
    have both signs)."""
    what = "Sensitivity: change of $/M output tokens, one input at a time"
    pairs = _serving(sc, results)
    fig, axes = _begin(sc, results, what, rows_per_fleet=True, size=(11, 2.0 + 0.32 * max(
        [len(sc.uncertainty), 1])))  # fmt: skip
    if axes is None:
        return fig
    for ax, (_, r) in zip(axes[:, 0], pairs, strict=True):
        items = sorted(r.sensitivity.items(), key=lambda kv: max(abs(v) for v in kv[1]))
        labels = []
        for i, (key, (lo, hi)) in enumerate(items):
            ax.barh(i - 0.2, lo, height=0.4, color="C0",
                    label="input at the low end of its range" if i == 0 else None)
            ax.barh(i + 0.2, hi, height=0.4, color="C3",
                    label="input at the high end of its range" if i == 0 else None)
            low, high = sc.uncertainty.get(key, (None, None))
            nominal = (r.inputs.get(key) or {}).get("value", 1.0 if key in SCALES else None)
            nom = f", nominal {_fmt_value(nominal)}" if nominal is not None else ""
            labels.append(f"{key}\nlow {_fmt_value(low)} / high {_fmt_value(high)}{nom}"
                          if low is not None else key)  # fmt: skip
        ax.set_yticks(range(len(items)), labels, fontsize=6.5)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(_tex("change of cost per M output tokens ($/M tokens; 0 = "
                           f"{_money(r.usd_per_m_output_tokens)})"))  # fmt: skip
        ax.set_title(f"{r.name}: blue = input at the low end of its range, red = high end",
                     fontsize=8)  # fmt: skip
        ax.grid(alpha=0.3, axis="x")
    from explore.report.plots import legend_outside

    legend_outside(axes[0, 0])
    _finish(fig, results, _title(what, sc))
    return fig


def monte_carlo_figure(sc: Scenario, results: list[FleetResult]):
    """Per fleet, the Monte Carlo distribution of $/M output tokens (uncertain inputs drawn in
    their ranges, throughput drawn in its prediction-error band): the p5-p95 range as a bar,
    p5 / p50 / p95 as markers, and the point estimate (nominal inputs, predicted speed) as a
    star with the percentile it sits at. Log axis when the fleets span decades."""
    from explore.report.plots import legend_outside, set_scales

    what = "Monte Carlo of $/M output tokens: p5 / p50 / p95 and the point estimate"
    fig, axes = _begin(sc, results, what, size=(11, 2.6 + 0.45 * len(results)))
    if axes is None:
        return fig
    ax = axes[0, 0]
    ok = [r for _, r in _serving(sc, results) if r.monte_carlo]
    xs = []
    marks = {"p5": ("|", "C0"), "p50": ("o", "C2"), "p95": ("|", "C3")}
    for i, r in enumerate(ok):
        mc = r.monte_carlo
        ax.plot([mc["p5"], mc["p95"]], [i, i], color="0.6", lw=5, solid_capstyle="butt",
                label="p5-p95 range" if i == 0 else "_nolegend_", gid=f"range:{r.name}")
        for key, (m, c) in marks.items():
            ax.plot([mc[key]], [i], marker=m, ms=12 if m == "|" else 7, mew=2, color=c, ls="",
                    label=key if i == 0 else "_nolegend_", gid=f"{key}:{r.name}")  # fmt: skip
        pct = mc.get("point_percentile")
        ax.plot([r.usd_per_m_output_tokens], [i], marker="*", ms=13, color="k", ls="",
                label="point estimate (nominal inputs)" if i == 0 else "_nolegend_",
                gid=f"point:{r.name}")  # fmt: skip
        ax.annotate(_tex(f"{_money(r.usd_per_m_output_tokens)}"
                         + (f" (p{pct:.0f})" if pct is not None else "")),
                    (r.usd_per_m_output_tokens, i), xytext=(0, 8), textcoords="offset points",
                    ha="center", fontsize=7)  # fmt: skip
        xs += [mc["p5"], mc["p95"], r.usd_per_m_output_tokens]
    ax.set_yticks(range(len(ok)), [r.name for r in ok], fontsize=8)
    ax.set_ylim(len(ok) - 0.4, -0.7)
    set_scales(ax, x=xs)
    samples = ok[0].monte_carlo.get("samples") if ok else None
    ax.set_xlabel("cost per M output tokens ($/M tokens)"
                  + (f"; {samples} draws per fleet" if samples else ""))  # fmt: skip
    ax.set_ylabel("fleet")
    legend_outside(ax)
    _finish(fig, results, _title(what, sc))
    return fig


def _figures(sc: Scenario, results: list[FleetResult]) -> dict[str, bytes]:
    """Every TCO figure as PNG bytes (fleets that cannot serve listed in each; with none that
    can, each figure says so)."""
    pts = {r.name: _frontier_points(sc, f) for f, r in _serving(sc, results)}
    return {
        "cost_stack": _png(cost_stack_figure(sc, results)),
        "frontier": _png(frontier_figure(sc, results, pts)),
        "tornado": _png(tornado_figure(sc, results)),
        "monte_carlo": _png(monte_carlo_figure(sc, results)),
    }


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _inputs_table(results: list[FleetResult]) -> list[list[str]]:
    r = next((r for r in results if not r.error), None)
    if r is None:
        return []
    return [[k, f"{v['value']:g}", v["source"], v["ref"]] for k, v in r.inputs.items()]


def write_report(sc: Scenario, results: list[FleetResult], path: Path) -> None:
    if path.suffix not in (".html", ".md"):
        raise ConfigError(f"--report {path}: use a .html or .md file name")
    figs = _figures(sc, results)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".html":
            path.write_text(_html(sc, results, figs))
            return
        for name, png in figs.items():
            (path.parent / f"{path.stem}-{name}.png").write_bytes(png)
        path.write_text(_markdown(sc, results, [f"{path.stem}-{n}.png" for n in figs]))
    except OSError as exc:
        raise ConfigError(f"--report {str(path)!r}: cannot write it ({exc.strerror}); give a "
                          "writable path") from None  # fmt: skip


def _payback_lines(results: list[FleetResult]) -> list[str]:
    out = []
    for r in results:
        if r.payback:
            p = r.payback
            months = f"{p['payback_months']:.1f} months" if p["payback_months"] else "never"
            vol = p["break_even_volume_units"]
            out.append(f"{r.name}: NRE {_money(p['nre_usd'])}, unit cost "
                       f"{_money(p['unit_cost_usd'])}; saves {_money(p['savings_usd_per_year'])}"
                       f"/year vs {p['reference']} at {p['daily_output_tokens']:,.0f} output "
                       f"tokens/day; pays back in {months}; break-even volume "
                       f"{f'{vol:,.0f}' if vol else 'none'} units")  # fmt: skip
    return out


def _errors(results: list[FleetResult]) -> list[str]:
    return [f"{r.name}: cannot serve this scenario: {r.error}" for r in results if r.error]


def _intro(sc: Scenario) -> str:
    slo = (
        f" at >= {sc.tokens_per_s_per_user:g} tokens/s per user"
        if sc.tokens_per_s_per_user
        else ""
    )
    return (f"{sc.model}, {sc.input_len} input / {sc.output_len} output tokens, mean load "
            f"{sc.load_output_tokens_per_s:,.0f} output tokens/s{slo}; {sizing(sc)}.")  # fmt: skip


def _html(sc, results, figs) -> str:
    def table(head, body):
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                      for row in body)  # fmt: skip
        return f"<table><tr>{th}</tr>{trs}</table>"

    imgs = "".join(f'<h2>{n.replace("_", " ")}</h2><img alt="{n}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode()}">' for n, b in figs.items())  # fmt: skip
    heads = [headline(r) for r in results if not r.error]
    pay = "".join(f"<p>{html.escape(x)}</p>"
                  for x in heads + _payback_lines(results) + _errors(results))  # fmt: skip
    inputs = table(["input", "value", "source", "ref"], _inputs_table(results))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
             "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}")  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(sc.name)}"
            f"</title><style>{style}</style></head><body><h1>{html.escape(sc.name)}</h1>"
            f"<p>{html.escape(_intro(sc))}</p>{table(HEAD, rows(results))}{pay}{imgs}"
            f"<h2>inputs used</h2>{inputs}"
            "</body></html>")  # fmt: skip


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~])")
_MD_LIST = re.compile(r"^(\d+)([.)])|^([-+])")  # a line that would start a list


def md_escape(text: str) -> str:
    """User text as literal Markdown: special characters backslash-escaped, line breaks folded
    (a fleet or scenario name cannot open a table, a link, a heading or raw HTML)."""
    out = _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return _MD_LIST.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", out)


def _markdown(sc, results, images) -> str:
    def row(cells) -> str:
        return "| " + " | ".join(md_escape(c) for c in cells) + " |"

    lines = [f"# {md_escape(sc.name)}", "", md_escape(_intro(sc)), "", row(HEAD),
             "|" + "---|" * len(HEAD)]  # fmt: skip
    lines += [row(r) for r in rows(results)]
    heads = [headline(r) for r in results if not r.error]
    lines += ["", *(md_escape(x) for x in heads + _payback_lines(results) + _errors(results)), ""]
    lines += [f"![{md_escape(i)}]({quote(i)})" for i in images]
    lines += ["", "## inputs used", "", row(["input", "value", "source", "ref"]),
              "|---|---|---|---|"]  # fmt: skip
    lines += [row(r) for r in _inputs_table(results)]
    return "\n".join(lines) + "\n"
