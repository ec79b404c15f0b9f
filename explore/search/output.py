"""What a search leaves behind: trials.csv, pareto.csv, plots, the Pareto designs as presets, and
the serving-simulation confirmation of the best ones (``--confirm N``)."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

from arch.base import ConfigError
from explore.search.designs import write_chip, write_model
from explore.search.objectives import evaluate_point, lengths
from explore.search.space import Space, safe_name
from explore.search.study import FINISHED, SearchResult, slot_key

__all__ = [
    "confirm",
    "confirm_lines",
    "inside",
    "print_pareto",
    "served_violations",
    "write_outputs",
    "write_presets",
]

MAX_PRESETS = 20


def _flat(rows: list[dict], objectives: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    params = sorted({k for r in rows for k in r["params"]})
    metrics = sorted({k for r in rows for k in r["metrics"]})
    head = ["slot", "state", "feasible", *params, *objectives,
            *[f"metric.{m}" for m in metrics], "reason"]  # fmt: skip
    out = []
    for r in rows:
        row = {"slot": r["slot"], "state": r["state"], "feasible": r["feasible"],
               "reason": r["reason"]}  # fmt: skip
        row |= {p: r["params"].get(p, "") for p in params}
        row |= {o: (r["values"][i] if r["values"] else "") for i, o in enumerate(objectives)}
        row |= {f"metric.{m}": r["metrics"].get(m, "") for m in metrics}
        out.append(row)
    return head, out


def inside(out: Path, path: Path) -> Path:
    """``path``, once resolved, if it lies inside ``out`` (checked before every write)."""
    real, root = path.resolve(), out.resolve()
    if not real.is_relative_to(root):
        raise ConfigError(f"output {path} would land outside --out {out}; use a plain study "
                          "name (--study-name) and a plain --out folder")  # fmt: skip
    return path


def _csv(path: Path, head: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=head)
        w.writeheader()
        w.writerows(rows)


def _ident(p: dict) -> str:
    """A Pareto row's reproducible name: its slot (the trial number for a study without)."""
    return f"s{p['slot']}" if p.get("slot") is not None else f"t{p['number']}"


def write_presets(res: SearchResult, space: Space, out: Path) -> list[str]:
    """Each Pareto design (up to MAX_PRESETS) as a chip preset (and model, for shapes), named
    STUDY-sSLOT. The study name is checked safe as a file name and a TOML string
    (:func:`explore.search.space.check_study_name`); a name made elsewhere is made safe here,
    and every path is checked to stay inside ``out``."""
    written = []
    stem = safe_name(space.name)
    for p in res.pareto[:MAX_PRESETS]:
        point = evaluate_point(space.base, p["params"], space.quality)
        name = f"{stem}-{_ident(p)}"
        ref = f"xpusim search study {stem} {_ident(p)} (trial {p['number']})"
        if point.design is not None:
            chip = point.chip.model_copy(update={"name": name})
            path = inside(out, out / "designs" / f"{name}.toml")
            written.append(str(write_chip(chip, path, ref)))
        if any(k.startswith("model.") for k in p["params"]):
            model = point.model.model_copy(update={"name": f"{name}-model"})
            path = inside(out, out / "designs" / f"{name}-model.toml")
            written.append(str(write_model(model, path, ref)))
    return written


def write_outputs(res: SearchResult, space: Space, out: Path, study=None) -> list[str]:
    """trials.csv (one row per finished slot, in slot order: identical for a seeded study
    however many workers ran it), pareto.csv, the Pareto presets and plots, all inside
    ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    done = sorted((r for r in res.trials if r["state"] in FINISHED), key=slot_key)
    head, rows = _flat(done, res.objectives)
    _csv(inside(out, out / "trials.csv"), head, rows)
    ph, prow = _flat(res.pareto, res.objectives)
    _csv(inside(out, out / "pareto.csv"), ph, prow)
    files = [str(out / "trials.csv"), str(out / "pareto.csv"), *write_presets(res, space, out)]
    files += _plots(res, out, study)
    return files


def _plots(res: SearchResult, out: Path, study) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    feas = [r for r in res.trials if r["feasible"]]
    if len(res.objectives) >= 2 and feas:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        ax.scatter([r["values"][0] for r in feas], [r["values"][1] for r in feas], s=10,
                   c="0.75", label="feasible trials")  # fmt: skip
        front = sorted(res.pareto, key=lambda r: r["values"][0])
        ax.plot([r["values"][0] for r in front], [r["values"][1] for r in front], "o-",
                color="C3", label="Pareto front")  # fmt: skip
        from explore.report.plots import config_title, legend_outside, set_scales

        ax.set_xlabel(_axis_label(res.objectives[0], res.directions[0]))
        ax.set_ylabel(_axis_label(res.objectives[1], res.directions[1]))
        ax.set_title(config_title(f"Pareto front: {res.study_name}",
                                  extra=f"{len(feas)} feasible trials"), fontsize=8)
        set_scales(ax, x=[r["values"][0] for r in feas], y=[r["values"][1] for r in feas])
        legend_outside(ax)
        fig.set_size_inches(8.5, 4.8)
        fig.tight_layout()
        fig.savefig(inside(out, out / "pareto.png"), dpi=110)
        plt.close(fig)
        files.append(str(out / "pareto.png"))
    if study is not None and len(feas) >= 4:
        files += _optuna_plots(study, res, out, plt)
    if len(feas) >= 2:
        fig = parallel_figure(res)
        fig.savefig(inside(out, out / "parallel.png"), dpi=110)
        plt.close(fig)
        files.append(str(out / "parallel.png"))
    return files


def _optuna_plots(study, res: SearchResult, out: Path, plt) -> list[str]:
    from optuna.visualization import matplotlib as ovm

    files = []
    name = res.objectives[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn, fname in ((ovm.plot_param_importances, "importances.png"),):
            try:
                ax = fn(study, target=lambda t: t.values[0], target_name=name)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # too few distinct trials for this plot
            ax.figure.set_size_inches(8, 4.5)
            ax.figure.tight_layout()
            ax.figure.savefig(inside(out, out / fname), dpi=110)
            plt.close(ax.figure)
            files.append(str(out / fname))
    return files


CONFIRM_LOAD = 0.7  # Poisson arrivals at this share of the analytic capacity
# constraints a served run can check, and the served statistic that stands for the analytic
# metric (the analytic TPOT is the mean per output token; throughput is not checked: the load
# is chosen, so the served tokens/s is the offered load, not the design's capacity)
SERVED = {"tpot_s": ("tpot_s", "mean"), "ttft_s": ("ttft_s", "mean"),
          "tokens_per_s_per_user": ("tpot_s", "mean")}  # fmt: skip


def confirm(
    res: SearchResult, space: Space, out: Path, n: int, *, requests: int = 400, progress=None
) -> list[dict]:
    """Re-run the first ``n`` distinct Pareto designs in the serving simulation (Poisson arrivals
    at CONFIRM_LOAD of the analytic capacity, continuous batching capped at the searched batch)
    and compare. A Pareto row with the parameters of an earlier one is the same design: it is
    not served again but listed in that design's ``duplicates``. Each row states the ``load``
    it was served at, and ``violated`` lists the study's latency constraints the served run
    misses. ``progress(1)``, if given, is called after each design."""
    rows: list[dict] = []
    seen: dict[tuple, dict] = {}
    for p in res.pareto:
        key = tuple(sorted((k, repr(v)) for k, v in p["params"].items()))
        if key in seen:
            seen[key]["duplicates"].append(_ident(p))
            continue
        if len(rows) == n:
            continue  # still listing duplicates of the designs served
        seen[key] = _confirm_one(res, space, out, p, requests)
        rows.append(seen[key])
        if progress is not None:
            progress(1)
    return rows


def _confirm_one(res: SearchResult, space: Space, out: Path, p: dict, requests: int) -> dict:
    from explore.api.serve import ServeRequest, serve
    from sim.traffic import Fixed, Poisson

    point = evaluate_point(space.base, p["params"], space.quality)
    ref = f"xpusim search study {safe_name(res.study_name)} {_ident(p)} (confirm)"
    chip_path = write_chip(point.chip, inside(out, out / "confirm" / f"{_ident(p)}.toml"), ref)
    model_path = write_model(
        point.model, inside(out, out / "confirm" / f"{_ident(p)}-model.toml"), ref
    )
    d, m = point.deploy, point.metrics
    inp, outl = lengths(space.base)
    capacity = m["tokens_per_s"] / outl  # requests/s the analytic batch sustains
    load = {"arrivals": "poisson", "rate_per_s": CONFIRM_LOAD * capacity,
            "share_of_analytic_capacity": CONFIRM_LOAD, "requests": requests,
            "input_len": inp, "output_len": outl, "max_batch": d["batch"]}  # fmt: skip
    par = point.workload.par  # type: ignore[union-attr]
    req = ServeRequest(
        system=f"{chip_path}:{d['chips']}", model=str(model_path), quant=d["quant"],
        input_len=Fixed(inp), output_len=Fixed(outl), arrivals=Poisson(load["rate_per_s"]),
        requests=requests, tp=par.tp, pp=par.pp, ep=par.ep, dp=par.dp,
        max_batch=d["batch"], seed=space.seed,
    )  # fmt: skip
    summary, _ = serve(req)
    sim_tpot = summary["tpot_s"]["p50"]
    return {
        "number": p["number"], "slot": p.get("slot"), "analytic_tpot_s": m["tpot_s"],
        "served_tpot_p50_s": sim_tpot,
        "served_ttft_p99_s": summary["ttft_s"]["p99"],
        "served_tokens_per_s": summary["output_tokens_per_s"],
        "tpot_ratio": sim_tpot / m["tpot_s"] if sim_tpot else None,
        "load": load, "violated": served_violations(space, summary), "duplicates": [],
    }  # fmt: skip


def served_violations(space: Space, summary: dict) -> list[dict]:
    """The study's constraints (those a served run can check, :data:`SERVED`) that the served
    run misses: {constraint, served, statistic}."""
    out = []
    for c in space.constraints:
        if c.metric not in SERVED:
            continue
        dist, stat = SERVED[c.metric]
        value = summary[dist][stat]
        if value is None:
            continue
        if c.metric == "tokens_per_s_per_user":
            value = 1.0 / value if value > 0 else math.inf
        if c.violation(value) > 0:
            out.append({"constraint": str(c), "served": value, "statistic": f"{dist}.{stat}"})
    return out


def confirm_lines(rows: list[dict]) -> list[str]:
    """The confirmation as text: each design's served numbers, the load it was served at, the
    duplicates skipped and any constraint the served run violates."""
    out = []
    for c in rows:
        ld = c["load"]
        tpot = c["served_tpot_p50_s"]
        served = f"{tpot * 1e3:.2f} ms" if tpot is not None else "- (one output token)"
        out.append(f"confirm {_ident(c)}: analytic TPOT {c['analytic_tpot_s'] * 1e3:.2f} ms, "
                   f"served p50 {served}, TTFT p99 {c['served_ttft_p99_s'] * 1e3:.1f} ms "
                   f"(Poisson {ld['rate_per_s']:.3g} req/s = "
                   f"{ld['share_of_analytic_capacity']:.0%} of the analytic capacity, "
                   f"{ld['requests']} requests of {ld['input_len']}+{ld['output_len']} tokens, "
                   f"batch <= {ld['max_batch']})")  # fmt: skip
        if c["duplicates"]:
            out.append(f"  same design as {', '.join(c['duplicates'])}: not served again")
        for v in c["violated"]:
            out.append(f"  VIOLATES {v['constraint']} when served: {v['statistic']} = "
                       f"{v['served']:.4g}")  # fmt: skip
    return out


def print_pareto(res: SearchResult, limit: int = 15) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = sorted({k for p in res.pareto for k in p["params"]})
    designs: dict[tuple, list[dict]] = {}  # the same parameters found by several trials: one row
    for p in res.pareto:
        designs.setdefault(tuple(repr(p["params"].get(k)) for k in keys), []).append(p)
    title = (f"{res.study_name}: Pareto front ({len(designs)} designs; "
             f"{res.n_trials_feasible} feasible of {res.n_trials_complete} trials)")  # fmt: skip
    tab = Table(title=title)
    for col in ("#", *[k.split(".", 1)[1] for k in keys], *res.objectives):
        tab.add_column(col, justify="right")
    for same in list(designs.values())[:limit]:
        p = same[0]
        ident = _ident(p) + (f" (= {', '.join(_ident(q) for q in same[1:])})" if same[1:] else "")
        cells = [_value_text(k, p["params"].get(k)) for k in keys]
        values = [_value_text(m, v) for v, m in zip(p["values"], res.objectives, strict=True)]
        tab.add_row(ident, *cells, *values)
    con = Console(width=160)
    con.print(tab)
    if len(designs) > limit:
        con.print(f"  {len(designs) - limit} more designs in pareto.csv")
    notes = sorted({n for p in res.pareto for n in p.get("notes", [])})
    for n in notes:
        con.print(f"  note: {n}")


def _fmt(v) -> str:
    """A value without a unit: integers as they are, other numbers to 4 significant digits with
    SI prefixes (never e+ notation)."""
    from explore.report.units import human

    if isinstance(v, float) and not float(v).is_integer():
        return human(v, digits=4)
    return str(int(v)) if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------- sweep summary


SWEEP_PLOT_POINTS = 20_000  # background points drawn (a seeded sample; the front is always drawn)


def _sweep_axes(space: Space) -> tuple[str, str]:
    """The two metrics a sweep's plot sets against each other: the space's first two objectives,
    or its one objective against the other half of the per-user / per-chip trade-off."""
    objs = list(space.objectives)
    if len(objs) >= 2:
        return objs[0], objs[1]
    partner = "tokens_per_s_per_chip" if objs[0] != "tokens_per_s_per_chip" else (
        "tokens_per_s_per_user")  # fmt: skip
    return objs[0], partner


def _direction(space: Space, metric: str) -> str:
    from explore.search.objectives import METRICS

    if metric in space.objectives:
        return space.directions[space.objectives.index(metric)]
    return METRICS[metric].direction


def _better(values, direction: str):
    """Values with larger = better (minimized metrics negated)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    return v if direction == "maximize" else -v


def pareto_2d(x, y, x_dir: str, y_dir: str):
    """Indices of the points no other point beats on both ``x`` and ``y`` (directions
    ``"maximize"``/``"minimize"``; NaN points never), sorted by ``x``: one sort, O(n log n)."""
    import numpy as np

    bx, by = _better(x, x_dir), _better(y, y_dir)
    ok = np.flatnonzero(np.isfinite(bx) & np.isfinite(by))
    order = ok[np.lexsort((-by[ok], -bx[ok]))]  # best x first, ties: best y first
    front, best_y = [], -np.inf
    for i in order:
        if by[i] > best_y:
            front.append(i)
            best_y = by[i]
    return np.asarray(sorted(front, key=lambda i: x[i]), dtype=int)


def _dims(res, space: Space) -> list[str]:
    return [k for k in res.columns if k.startswith(("chip.", "model.", "deploy."))]


_SUFFIX_UNITS = (("bytes_per_s", "B/s"), ("flops_per_s", "FLOP/s"), ("bytes", "B"),
                 ("hz", "Hz"), ("_w", "W"), ("_s", "s"), ("usd", "$"))  # fmt: skip


def _value_text(name: str, v) -> str:
    """A parameter or metric value in human units where its name says the unit."""
    from explore.report.units import human

    if not isinstance(v, int | float) or isinstance(v, bool):
        return str(v)
    short = name.split(".", 1)[-1]
    unit = METRIC_UNITS.get(short) or next(
        (u for suffix, u in _SUFFIX_UNITS if short.endswith(suffix)), None)  # fmt: skip
    if unit:
        return human(float(v), unit)
    return _fmt(v)


def _point_text(res, i: int, dims: list[str]) -> str:
    return ", ".join(f"{k.split('.', 1)[1]}={_value_text(k, res.columns[k][i])}" for k in dims)


def sweep_best(res, space: Space) -> list[dict]:
    """Per objective (the space's and the plot's two axes): the best fitting grid point, its
    value and its dimensions ({metric, direction, value, row, params}; value None when no
    point fits)."""
    import numpy as np

    fits = np.asarray(res.columns["fits"], dtype=float) > 0
    dims = _dims(res, space)
    out = []
    for m in dict.fromkeys([*space.objectives, *_sweep_axes(space)]):
        if m not in res.columns:
            continue
        d = _direction(space, m)
        v = np.where(fits, _better(res.columns[m], d), np.nan)
        if not np.isfinite(v).any():
            out.append({"metric": m, "direction": d, "value": None, "row": None, "params": {}})
            continue
        i = int(np.nanargmax(v))
        out.append({"metric": m, "direction": d, "value": float(res.columns[m][i]), "row": i,
                    "params": {k: _plain(res.columns[k][i]) for k in dims}})  # fmt: skip
    return out


def _plain(v):
    import numpy as np

    return v.item() if isinstance(v, np.generic) else v


def sweep_summary(res, space: Space) -> list[str]:
    """The sweep in a few lines: points that fit, the best point per objective (its value and
    dimensions) and the size of the Pareto front of the plot's two metrics."""
    import numpy as np

    from explore.report.units import human

    fits = np.asarray(res.columns["fits"], dtype=float) > 0
    lines = [f"{space.name}: {res.n_points:,} grid points, {int(fits.sum()):,} fit"]
    dims = _dims(res, space)
    for b in sweep_best(res, space):
        unit = METRIC_UNITS.get(b["metric"], "")
        if b["value"] is None:
            lines.append(f"  best {b['metric']} ({b['direction']}): no point fits")
            continue
        lines.append(f"  best {b['metric']} ({b['direction']}): {human(b['value'], unit)} "
                     f"at {_point_text(res, b['row'], dims)}")  # fmt: skip
    y, x = _sweep_axes(space)
    if y in res.columns and x in res.columns:
        front = pareto_2d(np.where(fits, res.columns[x], np.nan),
                          np.where(fits, res.columns[y], np.nan),
                          _direction(space, x), _direction(space, y))  # fmt: skip
        lines.append(f"  Pareto front of {y} vs {x}: {len(front)} points")
    return lines


# human() units of the metrics (explore.report.units)
METRIC_UNITS = {"tokens_per_s_per_user": "tok/s", "tokens_per_s_per_chip": "tok/s",
                "tokens_per_s": "tok/s", "tokens_per_s_per_w": "tok/J", "ttft_s": "s",
                "tpot_s": "s", "area_mm2": "mm²", "tdp_w": "W", "power_w": "W",
                "chip_cost_usd": "$", "usd_per_m_output_tokens": "$/M",
                "joules_per_token": "J"}  # fmt: skip
_AXIS = {"tokens_per_s_per_user": "output speed per user (tokens/s)",
         "tokens_per_s_per_chip": "output throughput per chip (tokens/s)",
         "tokens_per_s": "output throughput of the system (tokens/s)",
         "tokens_per_s_per_w": "output tokens per joule (tokens/J)",
         "usd_per_m_output_tokens": "cost per M output tokens ($/M tokens)",
         "ttft_s": "time to first token (s)", "tpot_s": "time per output token (s)",
         "area_mm2": "silicon area per chip (mm2)", "tdp_w": "TDP per chip (W)",
         "chip_cost_usd": "cost per chip ($)", "joules_per_token": "energy per token (J)",
         "power_w": "power per chip (W)"}  # fmt: skip


def _axis_label(metric: str, direction: str) -> str:
    text = _AXIS.get(metric, f"{metric} ({METRIC_UNITS.get(metric, '-')})")
    return f"{text}, {direction}d"


def sweep_figure(res, space: Space):
    """The sweep's two main metrics (:func:`_sweep_axes`) against each other: every fitting
    point faint (a seeded sample of :data:`SWEEP_PLOT_POINTS` when there are more), the Pareto
    front as a line, the best point per metric starred; axes log or linear from the data
    (:func:`explore.report.plots.set_scales`); the points that do not fit counted in the
    legend, and said in the axes when none fits. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from explore.report.plots import config_title, legend_outside, nothing_to_show, set_scales

    y, x = _sweep_axes(space)
    xd, yd = _direction(space, x), _direction(space, y)
    fits = np.asarray(res.columns["fits"], dtype=float) > 0
    base = space.base
    fig, ax = plt.subplots(figsize=(10, 5.8))
    ax.set_title(config_title(f"Sweep {space.name}: {y} vs {x}", model=base.get("model"),
                              quant=base.get("quant"), input_len=base.get("input_len"),
                              output_len=base.get("output_len"),
                              extra=f"{res.n_points:,} grid points, {int(fits.sum()):,} fit"),
                 fontsize=8)  # fmt: skip
    ax.set_xlabel(_axis_label(x, xd))
    ax.set_ylabel(_axis_label(y, yd))
    xs = np.where(fits, np.asarray(res.columns.get(x, np.full(res.n_points, np.nan)), float),
                  np.nan)  # fmt: skip
    ys = np.where(fits, np.asarray(res.columns.get(y, np.full(res.n_points, np.nan)), float),
                  np.nan)  # fmt: skip
    ok = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    if not ok.size:
        nothing_to_show(ax, f"no grid point fits: nothing to draw ({res.n_points:,} points, "
                        "every one fits = 0 in the output)")  # fmt: skip
        fig.tight_layout()
        return fig
    shown = ok
    if ok.size > SWEEP_PLOT_POINTS:
        shown = np.sort(np.random.default_rng(0).choice(ok, SWEEP_PLOT_POINTS, replace=False))
    label = (f"grid points that fit ({ok.size:,})" if shown.size == ok.size else
             f"grid points that fit (a sample of {shown.size:,} of {ok.size:,})")  # fmt: skip
    ax.scatter(xs[shown], ys[shown], s=4, color="0.7", alpha=0.5, lw=0, label=label,
               rasterized=True, gid="points")  # fmt: skip
    front = pareto_2d(xs, ys, xd, yd)
    ax.plot(xs[front], ys[front], "o-", color="C3", ms=4, lw=1.5, gid="pareto",
            label=f"Pareto front ({len(front)} points)")  # fmt: skip
    for k, b in enumerate(sweep_best(res, space)):
        if b["row"] is None or b["metric"] not in (x, y):
            continue
        i = b["row"]
        ax.plot([xs[i]], [ys[i]], marker="*", ms=13, ls="", color=f"C{k}", mec="k",
                gid=f"best:{b['metric']}", label=f"best {b['metric']}")  # fmt: skip
    if (~fits).any():
        ax.plot([], [], ls="", label=f"{int((~fits).sum()):,} points do not fit (not drawn)")
    set_scales(ax, x=xs[ok], y=ys[ok])
    legend_outside(ax)
    fig.tight_layout()
    return fig


def sweep_plot(res, space: Space, path: Path) -> Path:
    """:func:`sweep_figure` saved to ``path``."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(res, space)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- parallel coordinates

PARALLEL_LINES = 150  # non-Pareto trials drawn at most (a seeded sample); Pareto ones always


def _axis_values(name: str, values: list) -> tuple[list[float], list[tuple[float, str]], str]:
    """One parallel axis: each value at 0-1 on it, the (position, label) ticks, and the scale.
    Numbers are normalized between their min and max (on a log scale where they span decades,
    :func:`explore.report.plots.scale_for`) and labelled with the real ends; anything else is a
    category, spread evenly and each labelled."""
    import math

    from explore.report.plots import scale_for

    nums = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not nums:
        cats = sorted({str(v) for v in values})
        pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
        return [pos[str(v)] for v in values], [(pos[c], c) for c in cats], "categories"
    scale = scale_for(values)
    f = math.log10 if scale == "log" else float
    lo, hi = f(min(values)), f(max(values))
    span = hi - lo
    pos = [(f(v) - lo) / span if span else 0.5 for v in values]
    ends = [(0.0, _value_text(name, min(values))), (1.0, _value_text(name, max(values)))] if (
        span) else [(0.5, _value_text(name, values[0]))]  # fmt: skip
    return pos, ends, scale


def parallel_figure(res: SearchResult, max_lines: int = PARALLEL_LINES):
    """Parallel coordinates of the feasible trials: one vertical axis per varied parameter and
    per objective, each normalized to its own range with the real ends written at its bottom
    and top (categories each labelled; ``log`` under an axis normalized on a log scale), at most
    ``max_lines`` other trials in light grey (a seeded sample) and every Pareto trial in colour
    on top; axis names under the axes, rotated so they do not overlap. Returns the Figure."""
    import random

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from explore.report.plots import config_title, legend_outside, nothing_to_show

    feas = [r for r in res.trials if r["feasible"] and r["values"]]
    pareto_ids = {(p.get("slot"), p["number"]) for p in res.pareto}
    keys = sorted({k for r in feas for k in r["params"]})
    keys = [k for k in keys if len({repr(r["params"].get(k)) for r in feas}) > 1]  # varied only
    axes_names = [*keys, *res.objectives]
    with plt.style.context("default"):  # optuna's plots leave a style behind
        fig, ax = plt.subplots(figsize=(max(8.0, 1.25 * len(axes_names) + 3), 5.6))
    title = config_title(f"Parallel coordinates: {res.study_name}",
                         extra=f"{len(feas)} feasible trials, {len(res.pareto)} on the Pareto "
                         "front; each axis scaled to its own range (ends labelled)")  # fmt: skip
    ax.set_title(title, fontsize=8)
    if len(feas) < 2 or not axes_names:
        nothing_to_show(ax, "fewer than two feasible trials: nothing to draw")
        fig.tight_layout()
        return fig
    cols = []
    for name in axes_names:
        if name in res.objectives:
            vals = [r["values"][res.objectives.index(name)] for r in feas]
        else:
            vals = [r["params"].get(name, "-") for r in feas]
        cols.append(_axis_values(name, vals))
    is_front = [(r.get("slot"), r["number"]) in pareto_ids for r in feas]
    rest = [i for i, f in enumerate(is_front) if not f]
    shown = sorted(random.Random(0).sample(rest, max_lines)) if len(rest) > max_lines else rest
    xs = list(range(len(axes_names)))
    for n, i in enumerate(shown):
        ax.plot(xs, [c[0][i] for c in cols], color="0.75", lw=0.6, alpha=0.6, zorder=1,
                label=(f"other feasible trials ({len(shown)}"
                       + (f" of {len(rest)}, a sample" if len(shown) < len(rest) else "")
                       + ")") if n == 0 else "_nolegend_")  # fmt: skip
    front = [i for i, f in enumerate(is_front) if f]
    cmap = plt.get_cmap("viridis")
    for n, i in enumerate(front):
        ax.plot(xs, [c[0][i] for c in cols], color=cmap(n / max(1, len(front) - 1)), lw=1.6,
                zorder=3, label=f"Pareto trials ({len(front)})" if n == 0 else "_nolegend_")
    for x, (_, ticks, scale) in zip(xs, cols, strict=True):
        ax.axvline(x, color="k", lw=0.8, zorder=2)
        for y, text in ticks:
            ax.annotate(text, (x, y), xytext=(3, 0), textcoords="offset points", fontsize=6.5,
                        va="center", ha="left", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8})  # fmt: skip
        if scale == "log":
            ax.annotate("log", (x, 1.0), xytext=(0, 6), textcoords="offset points",
                        fontsize=6, ha="center", color="0.3")  # fmt: skip
    labels = [n.split(".", 1)[1] if "." in n else n for n in keys]
    labels += [f"{o} ({d[:3]})" for o, d in zip(res.objectives, res.directions, strict=True)]
    ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=7.5)
    ax.set_xlim(-0.2, len(xs) - 0.4)
    ax.set_ylim(-0.05, 1.08)
    ax.set_yticks([0, 0.5, 1], ["min", "mid", "max"])
    ax.set_ylabel("position on each axis (0 = its min, 1 = its max)")
    ax.set_xlabel("parameter or objective (its range at the axis ends)")
    legend_outside(ax)
    fig.tight_layout()
    return fig
