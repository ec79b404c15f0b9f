"""``xpusim predict ... --trace FILE.json``: the prefill step and a mid-context decode step of the
prediction, replayed op by op by the SimPy step simulation, as a Chrome/Perfetto trace
(open it at https://ui.perfetto.dev or chrome://tracing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from arch.base import ConfigError
from explore.api.predict import Result, _resolve
from sim.step_sim import time_step, to_chrome_trace
from workloads.quant import QuantSpec

__all__ = ["step_simulations", "write_step_trace"]


def step_simulations(result: Result, *, overlap: bool = True) -> dict:
    """{"prefill": StepTiming, "decode": StepTiming} simulated for ``result``'s configuration."""
    if not result.fits:
        raise ConfigError("--trace: the design does not fit, there is no step to trace")
    c = result.config
    par = c["parallelism"]
    w = _resolve(c["system"], c["model"], QuantSpec(**c["quant"]), par["tp"], par["pp"],
                 par["ep"], par["dp"], c["input_len"], c["output_len"], 0.0, None)  # fmt: skip
    batch = c["batch_per_replica"]
    plan = w.plan(batch)
    mid = w.input_len + (w.output_len - 1) // 2
    micro = min(w.par.pp, batch)
    return {
        "prefill": time_step(
            w.graph("prefill", batch, w.input_len, 0), w.system, w.eff, plan, overlap=overlap
        ),
        "decode": time_step(
            w.graph("decode", math.ceil(batch / w.par.pp), 1, mid),
            w.system,
            w.eff,
            plan,
            microbatches=micro,
            overlap=overlap,
        ),
    }


def write_step_trace(result: Result, path: Path, *, overlap: bool = True) -> dict:
    steps = step_simulations(result, overlap=overlap)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_chrome_trace(steps)))
    return steps
