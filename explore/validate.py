"""``xpusim validate``: predicted vs measured for every expressible row, errors summarized.

Errors are signed percentage errors ``100 x (predicted - measured) / measured``; summaries are the
median and mean absolute percentage error (APE) per class, per chip family and per metric.
Microbenchmark rows are the ones calibration fits on (their error is in-sample); layer, end-to-end
and API rows are never fitted on.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arch.base import ConfigError
from explore.cases import Case, Unexpressed, build_cases, load_rows

__all__ = ["RowResult", "Summary", "run_validate", "summarize", "validate"]


@dataclass(frozen=True)
class RowResult:
    case: Case
    predicted: float | None
    error: str = ""

    @property
    def pct_error(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.case.measured) / self.case.measured


@dataclass(frozen=True)
class Summary:
    group: str
    n: int
    median_ape: float
    mean_ape: float


def validate(measurements: Path | None = None) -> tuple[list[RowResult], list[Unexpressed]]:
    cases, skipped = build_cases(load_rows(measurements))
    results = []
    for c in cases:
        try:
            value = c.predict({})
            results.append(RowResult(c, value if math.isfinite(value) else None))
        except ConfigError as exc:
            results.append(RowResult(c, None, str(exc)))
    return results, skipped


def _ape_summary(name: str, rows: list[RowResult]) -> Summary | None:
    apes = [abs(r.pct_error) for r in rows if r.pct_error is not None]
    if not apes:
        return None
    return Summary(name, len(apes), float(np.median(apes)), float(np.mean(apes)))


def summarize(results: list[RowResult], key) -> list[Summary]:
    groups: dict[str, list[RowResult]] = defaultdict(list)
    for r in results:
        groups[key(r.case)].append(r)
    out = [_ape_summary(k, v) for k, v in sorted(groups.items())]
    return [s for s in out if s]


def metric_class(c: Case) -> str:
    """gemm / allreduce / other microbenchmark / end_to_end / api (the test bounds use these)."""
    if c.cls != "microbenchmark":
        return c.cls
    if c.metric == "gemm_tflops":
        return "gemm"
    if c.metric.startswith("allreduce"):
        return "allreduce"
    return "layer" if c.metric == "layer_latency_ms" else "other_micro"


def run_validate(measurements: Path | None, *, as_json: bool, csv_path: Path | None) -> int:
    results, skipped = validate(measurements)
    by_class = summarize(results, metric_class)
    by_family = summarize(results, lambda c: f"{c.cls}/{c.family}")
    by_metric = summarize(results, lambda c: c.metric)
    if csv_path:
        _write_csv(results, csv_path)
    if as_json:
        print(
            json.dumps(
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
                indent=2,
            )
        )
        return 0
    _print(results, skipped, by_class, by_family, by_metric)
    return 0


def _write_csv(results: list[RowResult], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["id", "family", "class", "metric", "measured", "predicted", "pct_error", "describe"]
        )
        for r in results:
            w.writerow(
                [
                    r.case.id,
                    r.case.family,
                    r.case.cls,
                    r.case.metric,
                    r.case.measured,
                    r.predicted,
                    r.pct_error,
                    r.case.describe,
                ]
            )


def _print(results, skipped, by_class, by_family, by_metric) -> None:
    from rich.table import Table

    from explore.report import _console

    con = _console()
    t = Table(title="Predicted vs measured (microbenchmarks are in-sample: calibration fits them)")
    for col in ("id", "class", "family", "metric", "measured", "predicted", "error", "case"):
        t.add_column(col, overflow="fold")
    for r in results:
        err = "n/a: " + r.error if r.pct_error is None else f"{r.pct_error:+.1f} %"
        pred = "-" if r.predicted is None else f"{r.predicted:,.4g}"
        t.add_row(
            r.case.id,
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
