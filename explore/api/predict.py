"""``predict``: one static batch on one system, prefill then decode, analytically.

The front door resolves names and the batch (``"max"``: the batch with the most throughput that
fits, or that also meets a TPOT SLO) and costs it through the one evaluation path,
:func:`sim.evaluate.evaluate` (where TTFT, TPOT, e2e, power and energy are defined). ``--batch``
counts sequences per replica; the system runs ``dp`` replicas.

Parallelism degrees left ``None`` (or ``"auto"``) are chosen by :func:`sim.mapping.choose_mapping`
(the degrees given are held fixed): per-user speed at a given batch, throughput at ``"max"``, or
``objective``. The chosen :class:`Result` then carries ``config["mapping"]`` (how it was chosen,
the two runners-up, the candidate counts, and for SRAM-only chips the fewest chips that hold the
model); :func:`result_dict` lifts it and the parallelism to the top of the JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from arch.base import ConfigError
from arch.chip import System
from sim.batching import evaluate_max
from sim.evaluate import Result, evaluate, resolve_workload
from sim.intervals import with_interval
from sim.mapping import DEGREES, OBJECTIVES, Choice, choose_mapping, settled
from workloads.model import ModelSpec
from workloads.presets import load_model
from workloads.quant import QuantSpec

__all__ = ["OBJECTIVES", "Degree", "Result", "predict", "result_dict"]

Degree = int | str | None  # a parallel degree: a positive integer, or None / "auto" to choose


def _degree(name: str, value: Degree) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--{name} {value!r}: give a positive integer or 'auto'")
    return value


def _batch(batch: int | str) -> int | str:
    if batch == "max" or (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1):
        return batch
    raise ConfigError(f"--batch {batch!r}: give a positive integer or 'max'")


def predict(
    system: str | System,
    model: str | ModelSpec,
    quant: str | QuantSpec = "bf16",
    *,
    tp: Degree = None,
    pp: Degree = None,
    ep: Degree = None,
    dp: Degree = None,
    batch: int | str = 1,
    tpot_slo_s: float | None = None,
    input_len: int,
    output_len: int,
    routing_skew: float = 0.0,
    efficiency_overrides: dict[str, float] | None = None,
    objective: str | None = None,
    engine: str | None = None,
    moe_overlap: bool = False,
) -> Result:
    """Predict a static batch: TTFT, TPOT, throughput, memory, bounds, power and energy.

    ``batch="max"``: the batch with the most throughput that fits (and, with ``tpot_slo_s``,
    meets that TPOT). ``tp``/``pp``/``ep``/``dp`` left ``None`` or ``"auto"`` are chosen
    (:mod:`sim.mapping`) by ``objective`` (one of :data:`OBJECTIVES`; default per-user speed at
    a given batch, output tokens/s at ``"max"``). ``engine``: the serving engine
    (:mod:`arch.engine`; None: the one the chip family is assumed to run).
    """
    batch = _batch(batch)
    model = load_model(model) if isinstance(model, str) else model
    given = {k: _degree(k, v) for k, v in zip(DEGREES, (tp, pp, ep, dp), strict=True)}
    given = settled(model, given)
    common = {
        "system": system,
        "model": model,
        "quant": quant,
        "input_len": input_len,
        "output_len": output_len,
        "routing_skew": routing_skew,
        "efficiency_overrides": efficiency_overrides,
        "engine": engine,
        "moe_overlap": moe_overlap,
    }
    if any(v is None for v in given.values()):
        choice = choose_mapping(
            **common, **given, batch=batch, tpot_slo_s=tpot_slo_s, objective=objective
        )
        return _with_mapping(choice)
    w = resolve_workload(**common, **given)
    return evaluate_max(w, tpot_slo_s=tpot_slo_s) if batch == "max" else evaluate(w, batch)


def _with_mapping(choice: Choice) -> Result:
    r = choice.result
    return dataclasses.replace(r, config={**r.config, "mapping": choice.to_dict()})


def result_dict(r: Result) -> dict[str, Any]:
    """The JSON of a prediction: :meth:`Result.to_dict` with ``parallelism`` {tp, pp, ep, dp},
    when it was chosen ``mapping`` at the top level, and ``interval`` {metric: [low, high]}
    (the validation error band, :mod:`sim.intervals`) with ``extrapolated`` reasons."""
    out = r.to_dict()
    config = dict(out["config"])
    mapping = config.pop("mapping", None)
    out["config"] = config
    out["parallelism"] = config["parallelism"]
    if mapping is not None:
        out["mapping"] = mapping
    return with_interval(out, r)
