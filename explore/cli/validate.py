"""``xpusim validate`` (predicted vs measured), ``calibrate`` (refit the efficiency factors) and
``physical`` (the area/power/cost model against published chips)."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from arch.base import ConfigError, strict_json
from explore.cli.common import check_output
from explore.validation.calibrate import informed, ttft_engines
from explore.validation.validate import RowResult, metric_class, summarize, validate
from sim.intervals import INTERVALS

__all__ = ["add_parser", "run_calibrate", "run_physical", "run_validate"]


def add_parser(sub) -> None:
    va = sub.add_parser("validate", help="predicted vs measured for the validation rows")
    _measurement_flags(va)
    va.add_argument("--json", action="store_true")
    va.add_argument("--csv", type=Path, help="write per-row results here")
    va.add_argument(
        "--loo",
        action="store_true",
        help="out-of-sample errors: leave-one-out refits of the fitted end-to-end, power and API "
        "rows, leave-one-family-out refits; per family x metric group (a minute or two)",
    )
    va.add_argument(
        "--write-intervals",
        type=Path,
        nargs="?",
        const=INTERVALS,
        metavar="FILE",
        help="with --loo: write the out-of-sample residual bands (p10/p90 per family and kind) "
        "to FILE (default: arch/presets/efficiency/intervals.toml); writes nothing if unchanged",
    )
    va.add_argument(
        "--workers", type=int, metavar="N", help="with --loo: processes for the refits"
    )
    ph = sub.add_parser("physical", help="area/power/cost model vs published die areas and TDPs")
    ph.add_argument("--fit", action="store_true", help="refit and rewrite physical_fitted.toml")
    ph.add_argument("--json", action="store_true")
    ca = sub.add_parser(
        "calibrate",
        help="refit efficiency factors on microbenchmark rows (writes nothing if none changed)",
    )
    _measurement_flags(ca)
    ca.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the fitted TOML here (default: arch/presets/efficiency/fitted.toml)",
    )


def _measurement_flags(p) -> None:
    p.add_argument(
        "--measurements",
        type=Path,
        metavar="FILE",
        help="a measurements CSV (the columns of explore/validation/data/measurements.csv); "
        "its rows join the shipped ones (default: the shipped rows alone)",
    )
    p.add_argument(
        "--only-measurements",
        action="store_true",
        help="use the --measurements rows alone, not the shipped ones",
    )


def run_physical(args: argparse.Namespace) -> int:
    from explore.validation.physical_fit import run_physical as physical

    return physical(refit=args.fit, as_json=args.json)


def run_calibrate(args: argparse.Namespace) -> int:
    from explore.report.progress import progress
    from explore.validation.calibrate import MAX_ROUNDS
    from explore.validation.calibrate import run_calibrate as calibrate

    _check_measurements(args)  # (calibrate checks --out itself, before the fit)
    with progress(MAX_ROUNDS, "calibrate (fits)") as advance:
        return calibrate(args.measurements, args.out, only=args.only_measurements,
                         progress=advance)  # fmt: skip


def _check_measurements(args: argparse.Namespace) -> None:
    """The --measurements file read (and its values checked) before any work."""
    from explore.validation.cases import load_rows

    if args.measurements is not None or args.only_measurements:
        load_rows(args.measurements, only=args.only_measurements)


def run_validate(args: argparse.Namespace) -> int:
    if not args.loo:
        for flag, value in (("--write-intervals", args.write_intervals),
                            ("--workers", args.workers)):  # fmt: skip
            if value is not None:
                raise ConfigError(f"{flag} needs --loo (it concerns the out-of-sample refits)")
    check_output(args.csv, "--csv")
    _check_measurements(args)
    if args.loo:
        return _run_loo(args)
    results, skipped = validate(args.measurements, only=args.only_measurements)
    return _report(results, skipped, as_json=args.json, csv_path=args.csv)


def _report(results, skipped, *, as_json: bool, csv_path: Path | None) -> int:
    by_class = summarize(results, metric_class)
    by_family = summarize(results, lambda c: f"{c.cls}/{c.family}")
    by_metric = summarize(results, lambda c: c.metric)
    by_engine = summarize([r for r in results if r.case.engine],
                          lambda c: f"{c.engine}/{c.family}")  # fmt: skip
    ttft = ttft_engines([r.case for r in results])  # engines fitted on their TTFT rows
    if csv_path:
        _write_csv(results, csv_path)
    if as_json:
        print(
            strict_json(
                {
                    "rows": [
                        {
                            "id": r.case.id,
                            "family": r.case.family,
                            "engine": r.case.engine or None,
                            "class": r.case.cls,
                            "metric": r.case.metric,
                            "measured": r.case.measured,
                            "predicted": r.predicted,
                            "pct_error": r.pct_error,
                            "describe": r.case.describe,
                            "assumption": r.case.assumption,
                            "error": r.error,
                            "in_sample": bool(informed(r.case, ttft)),
                        }
                        for r in results
                    ],
                    "summary": {
                        "by_class": [s.__dict__ for s in by_class],
                        "by_family": [s.__dict__ for s in by_family],
                        "by_metric": [s.__dict__ for s in by_metric],
                        "by_engine": [s.__dict__ for s in by_engine],
                    },
                    "unexpressed": [s.__dict__ for s in skipped],
                },
            )
        )
        return 0
    _print(results, skipped, (by_class, by_family, by_metric, by_engine), ttft)
    return 0


_CSV_COLUMNS = ["id", "family", "engine", "class", "metric", "measured", "predicted", "pct_error"]


def _write_csv(results: list[RowResult], path: Path) -> None:
    """Per-row results as CSV; a path that cannot be written is a one-line ConfigError."""
    try:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*_CSV_COLUMNS, "describe"])
            for r in results:
                c = r.case
                row = (c.id, c.family, c.engine, c.cls, c.metric, c.measured, r.predicted,
                       r.pct_error)  # fmt: skip
                w.writerow([*row, c.describe])
    except OSError as exc:
        raise ConfigError(f"--csv {path}: cannot write it ({exc.strerror})") from None


def _print(results, skipped, summaries, ttft) -> None:
    from rich.table import Table

    from explore.report.tables import make_console

    con = make_console()
    t = Table(
        title="Predicted vs measured (rows marked * are in-sample: calibration fits them "
        "— microbenchmarks, and the per-user speed rows that fit a static chip's "
        "layer latency)"
    )
    for col in ("id", "class", "family", "engine", "metric", "measured", "predicted", "error",
                "case"):  # fmt: skip
        t.add_column(col, overflow="fold")
    for r in results:
        err = "n/a: " + r.error if r.pct_error is None else f"{r.pct_error:+.1f} %"
        pred = "-" if r.predicted is None else f"{r.predicted:,.4g}"
        t.add_row(
            r.case.id + ("*" if informed(r.case, ttft) else ""),
            r.case.cls,
            r.case.family,
            r.case.engine or "-",
            r.case.metric,
            f"{r.case.measured:,.4g}",
            pred,
            err,
            r.case.describe,
        )
    con.print(t)
    titles = ("by class", "by class/family", "by metric", "by engine/family")
    for title, rows in zip(titles, summaries, strict=True):
        s = Table(title=f"Absolute percentage error {title}")
        for col in ("group", "rows", "median APE", "mean APE"):
            s.add_column(col)
        for x in rows:
            s.add_row(x.group, str(x.n), f"{x.median_ape:.1f} %", f"{x.mean_ape:.1f} %")
        con.print(s)
    u = Table(title=f"Rows not expressed ({len(skipped)})")
    for col in ("id", "metric", "hardware", "why"):
        u.add_column(col, overflow="fold")
    for x in skipped:
        u.add_row(x.id, x.metric, x.hardware, x.reason)
    con.print(u)


# --------------------------------------------------------------------------- --loo


def _run_loo(args: argparse.Namespace) -> int:
    from explore.validation.loo import check_out, loo, write_intervals

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give a positive integer")
    if args.write_intervals is not None:
        check_out(args.write_intervals)
    report = loo(args.measurements, only=args.only_measurements, workers=args.workers)
    if args.csv:
        _write_loo_csv(report.rows, args.csv)
    written = None
    if args.write_intervals is not None:
        written = write_intervals(report, args.write_intervals)
    if args.json:
        print(strict_json(_loo_json(report)))
    else:
        _print_loo(report)
    if written is not None:
        what = "written" if written else "unchanged: nothing written"
        print(f"intervals {what} ({args.write_intervals})", file=sys.stderr if args.json else None)
    return 0


def _loo_json(report) -> dict:
    from explore.validation.loo import METHOD, intervals, lofo_by_family, summary

    return {
        "method": METHOD,
        "rows": [r.to_dict() for r in report.rows],
        "summary": summary(report.rows),
        "lofo_by_family": lofo_by_family(report.rows),
        "intervals": intervals(report.rows),
        "wall_s": report.wall_s,
        "workers": report.workers,
    }


_LOO_COLUMNS = ["id", "family", "class", "metric", "group", "measured", "in_sample",
                "predicted_full", "predicted_loo", "loo_method", "predicted_lofo"]  # fmt: skip


def _write_loo_csv(rows, path: Path) -> None:
    try:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(_LOO_COLUMNS)
            for r in rows:
                w.writerow([r.id, r.family, r.cls, r.metric, r.group, r.measured, r.in_sample,
                            r.full, r.loo, r.loo_method, r.lofo])  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"--csv {path}: cannot write it ({exc.strerror})") from None


def _ape(x: float | None, n: int = 0, *, count: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:.1f} %" + (f" ({n})" if count else "")


def _print_loo(report) -> None:
    from rich.table import Table

    from explore.report.tables import make_console
    from explore.validation.loo import lofo_by_family, summary

    con = make_console()
    t = Table(title="Median APE per family x metric group: full fit, out of sample (LOO), "
              "family left out (LOFO); (n) = rows it rests on")  # fmt: skip
    for col in ("family", "group", "n", "fitted", "full fit", "LOO", "LOFO"):
        t.add_column(col, justify="left" if col in ("family", "group") else "right")
    for s in summary(report.rows):
        oos = _ape(s["median_ape_loo"], s["n_loo"], count=True)
        if s["median_ape_loo"] is None and s["n_in_sample"]:
            oos = "in-sample only"
        t.add_row(s["family"], s["group"], str(s["n"]), str(s["n_in_sample"]),
                  _ape(s["median_ape_full"]), oos,
                  _ape(s["median_ape_lofo"], s["n_lofo"], count=True))  # fmt: skip
    con.print(t)
    f = Table(title="Leave one family out: median APE of the family's end-to-end, API and "
              "power rows")  # fmt: skip
    for col in ("family", "rows", "LOFO median APE"):
        f.add_column(col)
    for x in lofo_by_family(report.rows):
        f.add_row(x["family"], str(x["n"]), _ape(x["median_ape_lofo"]))
    con.print(f)
    _print_refits(con, report.rows)
    con.print(
        "LOO: in-sample end-to-end, power and API rows refit without the row (calibrate's "
        "rounds, one fit per family block); microbenchmark rows are in-sample only; rows the "
        "fit does not use are out of sample with the full fit. LOFO: the family's rows all "
        f"removed. {report.workers} worker(s), {report.wall_s:.0f} s."
    )


def _print_refits(con, rows) -> None:
    from rich.table import Table

    t = Table(title="Rows refit without themselves (leave one out)")
    for col in ("id", "family", "metric", "measured", "full fit", "LOO", "LOFO"):
        t.add_column(col)
    for r in rows:
        if r.loo_method != "refit":
            continue
        t.add_row(r.id, r.family, r.metric, f"{r.measured:,.4g}",
                  *(_signed(r.pct(w)) for w in ("full", "loo", "lofo")))  # fmt: skip
    con.print(t)


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f} %"
