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
        ax.set_xlabel(f"{res.objectives[0]} ({res.directions[0]})")
        ax.set_ylabel(f"{res.objectives[1]} ({res.directions[1]})")
        ax.set_title(res.study_name)
        ax.legend()
        fig.tight_layout()
        fig.savefig(inside(out, out / "pareto.png"), dpi=110)
        plt.close(fig)
        files.append(str(out / "pareto.png"))
    if study is not None and len(feas) >= 4:
        files += _optuna_plots(study, res, out, plt)
    return files


def _optuna_plots(study, res: SearchResult, out: Path, plt) -> list[str]:
    from optuna.visualization import matplotlib as ovm

    files = []
    name = res.objectives[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn, fname in ((ovm.plot_param_importances, "importances.png"),
                          (ovm.plot_parallel_coordinate, "parallel.png")):  # fmt: skip
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

    title = (f"{res.study_name}: Pareto front ({len(res.pareto)} designs; "
             f"{res.n_trials_feasible} feasible of {res.n_trials_complete} trials)")  # fmt: skip
    tab = Table(title=title)
    keys = sorted({k for p in res.pareto for k in p["params"]})
    for col in ("#", *[k.split(".", 1)[1] for k in keys], *res.objectives):
        tab.add_column(col, justify="right")
    for p in res.pareto[:limit]:
        cells = [_fmt(p["params"].get(k)) for k in keys]
        tab.add_row(_ident(p), *cells, *[_fmt(v) for v in p["values"]])
    con = Console(width=160)
    con.print(tab)
    notes = sorted({n for p in res.pareto for n in p.get("notes", [])})
    for n in notes:
        con.print(f"  note: {n}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)
