"""Render a comparison (:func:`explore.api.compare.compare`): a table, a plot, an HTML report.

All three read the JSON of the comparison (``Comparison.to_dict()``): each headline metric of
each configuration in human units, with its ratio to the first configuration.

The plot (``compare.png``) has one panel per headline metric: a bar per configuration, its value
on the axis (with the unit in the label) and its ratio to the first written on the bar; a
configuration that does not fit has no bar and says so.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from arch.base import ConfigError

__all__ = ["compare_figure", "print_compare", "rows", "write_html", "write_plot"]

# metric -> (scale, unit shown)
_SHOW = {
    "ttft_s": (1e3, "ms"),
    "tpot_s": (1e3, "ms"),
    "e2e_s": (1.0, "s"),
    "tokens_per_s_per_user": (1.0, "tokens/s"),
    "output_tokens_per_s": (1.0, "tokens/s"),
    "output_tokens_per_s_per_chip": (1.0, "tokens/s"),
    "batch": (1.0, "sequences"),
    "power_w": (1.0, "W"),
    "energy_j_per_token": (1.0, "J"),
}


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return "-"
    scale, unit = _SHOW.get(key, (1.0, ""))
    v = value * scale
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"
    return f"{text} {unit}"


def _ratio(r: float | None) -> str:
    return "" if r is None else f"x{r:.2f}"


def rows(cmp: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per headline metric, per configuration ``value (xratio)``."""
    labels = [c["label"] for c in cmp["configs"]]
    head = ["metric", *labels]
    body = []
    for key, d in cmp["deltas"].items():
        cells = []
        for i, v in enumerate(d["values"]):
            r = "" if i == 0 or v["ratio"] is None else f" ({_ratio(v['ratio'])})"
            cells.append(_fmt(v["value"], key) + r)
        body.append([_name(d), *cells])
    return head, body


def _name(d: dict[str, Any]) -> str:
    better = d["better"]
    return f"{d['name']} ({better} is better)" if better in ("higher", "lower") else d["name"]


def print_compare(cmp: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    head, body = rows(cmp)
    first = cmp["configs"][0]["label"]
    tab = Table(title=f"{_workload(cmp)}; ratios (xN) against {first}")
    for h in head:
        tab.add_column(h, justify="left" if h == "metric" else "right", overflow="fold")
    for row in body:
        tab.add_row(*row)
    con = Console(width=max(100, 30 + 28 * len(head)))
    _print_edits(con, cmp)
    con.print(tab)
    for c in cmp["configs"]:
        if not c["result"]["fits"]:
            con.print(f"{c['label']}: does not fit: {c['result']['fit_reason']}")


def _print_edits(con, cmp: dict[str, Any]) -> None:
    from arch.overrides import format_value

    for c in cmp["configs"]:
        for o in c["result"].get("overrides", ()):
            note = f"  [{o['note']}]" if o["note"] else ""
            was = format_value(o["was"], o["path"]) if o["was"] is not None else "none"
            con.print(f"what-if ({c['label']}): {o['path']} = "
                      f"{format_value(o['value'], o['path'])} (preset: {was}){note}",
                      markup=False, highlight=False)  # fmt: skip


def _workload(cmp: dict[str, Any]) -> str:
    cfg = cmp["configs"][0]["result"]["config"]
    return f"{cfg['model']}, in {cfg['input_len']} out {cfg['output_len']}"


def compare_figure(cmp: dict[str, Any]):
    """The matplotlib figure (module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from explore.report.plots import config_title, set_scales

    keys = list(cmp["deltas"])
    cols = 3
    nrows = -(-len(keys) // cols)
    labels = [c["label"] for c in cmp["configs"]]
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.4 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        d = cmp["deltas"][key]
        scale, unit = _SHOW.get(key, (1.0, d["unit"]))
        vals = [v["value"] * scale if v["value"] is not None else 0.0 for v in d["values"]]
        bars = ax.bar(range(len(vals)), vals, color=[f"C{i}" for i in range(len(vals))])
        for b, v in zip(bars, d["values"], strict=True):
            text = "does not fit" if v["value"] is None else _ratio(v["ratio"])
            ax.annotate(text, (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)  # fmt: skip
        ax.set_title(_name(d), fontsize=10)
        ax.set_ylabel(f"{d['name']} ({unit})")
        ax.set_xticks(range(len(vals)), [str(i + 1) for i in range(len(vals))])
        ax.set_xlabel("configuration")
        set_scales(ax, y=vals)  # log only where the configurations span decades
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    legend = "  ".join(f"{i + 1}: {lb}" for i, lb in enumerate(labels))
    cfg = cmp["configs"][0]["result"]["config"]
    title = config_title("side by side (ratios against configuration 1)", model=cfg["model"],
                         input_len=cfg["input_len"], output_len=cfg["output_len"])  # fmt: skip
    fig.suptitle(f"{title}\n{legend}", fontsize=10)
    fig.tight_layout()
    return fig


def _png(cmp: dict[str, Any]) -> bytes:
    import matplotlib.pyplot as plt

    fig = compare_figure(cmp)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_plot(cmp: dict[str, Any], out_dir: Path) -> Path:
    """``OUT_DIR/compare.png``; returns its path."""
    path = Path(out_dir) / "compare.png"
    _write(path, _png(cmp), "--out")
    return path


def write_html(cmp: dict[str, Any], path: Path) -> None:
    """A self-contained HTML report: the table, the edits, the plot embedded."""
    head, body = rows(cmp)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                  for row in body)  # fmt: skip
    edits = "".join(
        f"<li>{html.escape(c['label'])}: {html.escape(o['set'])}"
        + (f" &mdash; {html.escape(o['note'])}" if o["note"] else "") + "</li>"
        for c in cmp["configs"] for o in c["result"].get("overrides", ()))  # fmt: skip
    img = base64.b64encode(_png(cmp)).decode()
    title = html.escape(f"compare: {_workload(cmp)}")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
             "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
             "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}")  # fmt: skip
    first = html.escape(cmp["configs"][0]["label"])
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
           f"<style>{style}</style></head><body><h1>{title}</h1>"
           f"<p>Ratios (xN) against the first configuration, {first}.</p>"
           f"<table><tr>{th}</tr>{trs}</table>"
           + (f"<h2>what-if edits</h2><ul>{edits}</ul>" if edits else "")
           + f'<h2>plot</h2><img alt="comparison" src="data:image/png;base64,{img}">'
           "</body></html>")  # fmt: skip
    _write(path, doc.encode(), "--report")


def _write(path: Path, data: bytes, flag: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"{flag} {str(path)!r}: cannot write it ({exc.strerror}); give a "
                          "writable path") from None  # fmt: skip
