"""Validation against published measurements: rows become cases (:func:`build_cases`), are
predicted and compared (:func:`validate`), and the efficiency factors are refit on the
microbenchmark rows (``calibrate``). The measurements ship in ``data/`` with their README."""

from explore.validation.cases import Case, Unexpressed, build_cases, load_rows
from explore.validation.validate import RowResult, Summary, metric_class, summarize, validate

__all__ = ["Case", "RowResult", "Summary", "Unexpressed", "build_cases", "load_rows",
           "metric_class", "summarize", "validate"]  # fmt: skip
