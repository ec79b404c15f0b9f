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
from explore.tco.fleet import FleetResult, Scenario, operate, price_fleet

__all__ = ["frontier", "headline", "print_table", "sizing", "write_report"]


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


def frontier(sc: Scenario, results: list[FleetResult]) -> dict[str, list[tuple[float, float]]]:
    """Per fleet: (tokens/s/user, $/M output tokens) over batch sizes 1, 2, 4, ... that fit."""
    out = {}
    for f, r in zip(sc.fleets, results, strict=True):
        pts = []
        b = 1
        while b <= 4096:
            try:
                op = operate(sc, f, batch=b)
            except ConfigError:
                break
            pts.append((1 / op.tpot_s, price_fleet(sc, f, op).usd_per_m_output_tokens))
            b *= 2
        out[r.name] = pts
    return out


def _figures(sc: Scenario, results: list[FleetResult]) -> dict[str, bytes]:
    pairs = [(f, r) for f, r in zip(sc.fleets, results, strict=True) if not r.error]
    if not pairs:
        raise ConfigError(f"{sc.name}: no fleet can serve the scenario; nothing to plot")
    from dataclasses import replace

    sc = replace(sc, fleets=tuple(f for f, _ in pairs))
    results = [r for _, r in pairs]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    figs["cost_stack"] = _stack(plt, results)
    figs["frontier"] = _frontier_fig(plt, sc, results)
    figs["tornado"] = _tornado(plt, results)
    figs["monte_carlo"] = _mc(plt, results)
    return figs


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _stack(plt, results):
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r.name for r in results]
    bottom = [0.0] * len(results)
    for comp in ("accelerators", "hosts", "network", "datacenter", "energy", "colocation",
                 "maintenance", "software"):  # fmt: skip
        vals = [_per_m(r, comp) for r in results]
        ax.bar(names, vals, bottom=bottom, label=comp)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("$ per M output tokens")
    ax.set_title("Cost stack (capital recovered per year, opex per year)")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=15)
    return _png(plt, fig)


def _per_m(r: FleetResult, comp: str) -> float:
    """One cost component in $/M output tokens (capex components through the same annuity)."""
    total_year = r.opex_breakdown["annualized_capex"] + r.opex_usd_per_year
    scale = r.usd_per_m_output_tokens / total_year if total_year else 0.0
    if comp in r.capex_breakdown:
        share = r.capex_breakdown[comp] / r.capex_usd
        return r.opex_breakdown["annualized_capex"] * share * scale
    return r.opex_breakdown.get(comp, 0.0) * scale


def _frontier_fig(plt, sc, results):
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in frontier(sc, results).items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
    if sc.tokens_per_s_per_user:
        ax.axvline(sc.tokens_per_s_per_user, color="0.5", ls="--", lw=1, label="SLO")
    ax.set_xlabel("tokens/s per user (batch 1, 2, 4, ...)")
    ax.set_ylabel("$ per M output tokens")
    ax.set_yscale("log")
    ax.set_title("Interactivity vs cost")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def _tornado(plt, results):
    fig, axes = plt.subplots(len(results), 1, figsize=(7, 1.9 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=True):
        items = sorted(r.sensitivity.items(), key=lambda kv: max(abs(v) for v in kv[1]))
        for i, (_, (lo, hi)) in enumerate(items):
            ax.barh(i, lo, color="C0")
            ax.barh(i, hi, color="C3")
        ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=7)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{r.name}: change of $/M output tokens (blue low, red high)", fontsize=8)
    return _png(plt, fig)


def _mc(plt, results):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, r in enumerate(results):
        mc = r.monte_carlo
        ax.errorbar(i, mc["p50"], yerr=[[mc["p50"] - mc["p5"]], [mc["p95"] - mc["p50"]]],
                    fmt="o", capsize=6)  # fmt: skip
    ax.set_xticks(range(len(results)), [r.name for r in results], fontsize=8, rotation=15)
    ax.set_ylabel("$ per M output tokens")
    ax.set_title("Monte Carlo over uncertain inputs and prediction error: p5 / p50 / p95")
    return _png(plt, fig)


def _inputs_table(results: list[FleetResult]) -> list[list[str]]:
    r = next(r for r in results if not r.error)
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
