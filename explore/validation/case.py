"""A validation case: one measured row, the chip family and serving engine it ran, and a function
that predicts it from a set of efficiency overrides (shared by :mod:`explore.validation.cases`
and the MoE rows of :mod:`explore.validation.moe_cases`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Case", "Overrides", "Unexpressed", "ov_key"]

Overrides = dict[str, dict[str, float]]  # case key (ov_key) -> factor -> value


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    chip: str
    metric: str
    cls: str  # microbenchmark | end_to_end | api
    measured: float
    unit: str
    describe: str
    predict: Callable[[Overrides], float]
    assumption: str = ""
    engine: str = ""  # the serving engine the row ran ("": kernels alone, a microbenchmark)

    @property
    def key(self) -> str:
        """The key of this case's factor overrides (:func:`ov_key`)."""
        return ov_key(self.family, self.engine)


def ov_key(family: str, engine: str) -> str:
    """Overrides are resolved per chip family and serving engine: ``ENGINE@FAMILY``, or the
    family alone for the kernels without an engine."""
    return f"{engine}@{family}" if engine else family


@dataclass(frozen=True)
class Unexpressed:
    id: str
    metric: str
    hardware: str
    reason: str
