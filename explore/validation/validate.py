"""``xpusim validate``: predicted vs measured for every expressible row, errors summarized.

Errors are signed percentage errors ``100 x (predicted - measured) / measured``; summaries are the
median and mean absolute percentage error (APE) per class, per chip family and per metric.
Microbenchmark rows are the ones calibration fits on (their error is in-sample); layer, end-to-end
and API rows are never fitted on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arch.base import ConfigError
from explore.validation.cases import Case, Unexpressed, build_cases, load_rows

__all__ = ["RowResult", "Summary", "summarize", "validate"]


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


def validate(
    measurements: Path | None = None, *, only: bool = False
) -> tuple[list[RowResult], list[Unexpressed]]:
    cases, skipped = build_cases(load_rows(measurements, only=only))
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
