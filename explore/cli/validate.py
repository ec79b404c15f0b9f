"""``xpusim validate`` (predicted vs measured), ``calibrate`` (refit the efficiency factors) and
``physical`` (the area/power/cost model against published chips)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from arch.base import ConfigError, strict_json
from explore.validation.calibrate import informed_factors
from explore.validation.validate import RowResult, metric_class, summarize, validate

__all__ = ["add_parser", "run_calibrate", "run_physical", "run_validate"]


def add_parser(sub) -> None:
    va = sub.add_parser("validate", help="predicted vs measured for the validation rows")
    _measurement_flags(va)
    va.add_argument("--json", action="store_true")
    va.add_argument("--csv", type=Path, help="write per-row results here")
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
    from explore.validation.calibrate import run_calibrate as calibrate

    return calibrate(args.measurements, args.out, only=args.only_measurements)


def run_validate(args: argparse.Namespace) -> int:
    results, skipped = validate(args.measurements, only=args.only_measurements)
    return _report(results, skipped, as_json=args.json, csv_path=args.csv)


def _report(results, skipped, *, as_json: bool, csv_path: Path | None) -> int:
    by_class = summarize(results, metric_class)
    by_family = summarize(results, lambda c: f"{c.cls}/{c.family}")
    by_metric = summarize(results, lambda c: c.metric)
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
                            "class": r.case.cls,
                            "metric": r.case.metric,
                            "measured": r.case.measured,
                            "predicted": r.predicted,
                            "pct_error": r.pct_error,
                            "describe": r.case.describe,
                            "assumption": r.case.assumption,
                            "error": r.error,
                            "in_sample": bool(informed_factors(r.case)),
                        }
                        for r in results
                    ],
                    "summary": {
                        "by_class": [s.__dict__ for s in by_class],
                        "by_family": [s.__dict__ for s in by_family],
                        "by_metric": [s.__dict__ for s in by_metric],
                    },
                    "unexpressed": [s.__dict__ for s in skipped],
                },
            )
        )
        return 0
    _print(results, skipped, by_class, by_family, by_metric)
    return 0


_CSV_COLUMNS = ["id", "family", "class", "metric", "measured", "predicted", "pct_error"]


def _write_csv(results: list[RowResult], path: Path) -> None:
    """Per-row results as CSV; a path that cannot be written is a one-line ConfigError."""
    try:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*_CSV_COLUMNS, "describe"])
            for r in results:
                c = r.case
                row = (c.id, c.family, c.cls, c.metric, c.measured, r.predicted, r.pct_error)
                w.writerow([*row, c.describe])
    except OSError as exc:
        raise ConfigError(f"--csv {path}: cannot write it ({exc.strerror})") from None


def _print(results, skipped, by_class, by_family, by_metric) -> None:
    from rich.table import Table

    from explore.report.tables import make_console

    con = make_console()
    t = Table(
        title="Predicted vs measured (rows marked * are in-sample: calibration fits them "
        "— microbenchmarks, and the per-user speed rows that fit a static chip's "
        "layer latency)"
    )
    for col in ("id", "class", "family", "metric", "measured", "predicted", "error", "case"):
        t.add_column(col, overflow="fold")
    for r in results:
        err = "n/a: " + r.error if r.pct_error is None else f"{r.pct_error:+.1f} %"
        pred = "-" if r.predicted is None else f"{r.predicted:,.4g}"
        t.add_row(
            r.case.id + ("*" if informed_factors(r.case) else ""),
            r.case.cls,
            r.case.family,
            r.case.metric,
            f"{r.case.measured:,.4g}",
            pred,
            err,
            r.case.describe,
        )
    con.print(t)
    for title, rows in (
        ("by class", by_class),
        ("by class/family", by_family),
        ("by metric", by_metric),
    ):
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
