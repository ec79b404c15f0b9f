"""``predict``: one static batch on one system, prefill then decode, analytically.

The front door resolves names and the batch (``"max"``: the largest that fits, or that also meets
a TPOT SLO) and costs it through the one evaluation path, :func:`sim.evaluate.evaluate` (where
TTFT, TPOT, e2e, power and energy are defined). ``--batch`` counts sequences per replica; the
system runs ``dp`` replicas.
"""

from __future__ import annotations

from arch.base import ConfigError
from arch.chip import System
from sim.batching import max_batch
from sim.evaluate import Result, evaluate, resolve_workload
from workloads.model import ModelSpec
from workloads.quant import QuantSpec

__all__ = ["Result", "predict"]


def predict(
    system: str | System,
    model: str | ModelSpec,
    quant: str | QuantSpec = "bf16",
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    batch: int | str = 1,
    tpot_slo_s: float | None = None,
    input_len: int,
    output_len: int,
    routing_skew: float = 0.0,
    efficiency_overrides: dict[str, float] | None = None,
) -> Result:
    """Predict a static batch: TTFT, TPOT, throughput, memory, bounds, power and energy.

    ``batch="max"``: the largest batch that fits (and, with ``tpot_slo_s``, meets that TPOT).
    """
    w = resolve_workload(
        system=system,
        model=model,
        quant=quant,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        input_len=input_len,
        output_len=output_len,
        routing_skew=routing_skew,
        efficiency_overrides=efficiency_overrides,
    )
    if batch == "max":
        b = max_batch(w, tpot_slo_s=tpot_slo_s)
    elif isinstance(batch, int) and batch >= 1:
        b = batch
    else:
        raise ConfigError(f"--batch {batch!r}: give a positive integer or 'max'")
    return evaluate(w, b)
