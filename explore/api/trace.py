"""``xpusim predict ... --trace FILE.json``: the prefill step and a mid-context decode step of the
prediction, replayed op by op by the SimPy step simulation, as a Chrome/Perfetto trace
(open it at https://ui.perfetto.dev or chrome://tracing)."""

from __future__ import annotations

from pathlib import Path

from arch.base import ConfigError, strict_json
from sim.evaluate import Result
from sim.step_sim import time_step, to_chrome_trace

__all__ = ["step_simulations", "write_step_trace"]


def step_simulations(result: Result, *, overlap: bool = True) -> dict:
    """{"prefill": StepTiming, "decode": StepTiming} simulated for ``result``'s configuration."""
    if not result.fits:
        raise ConfigError("--trace: the design does not fit, there is no step to trace")
    w = result.workload  # the prediction's own workload: overrides and routing skew included
    assert w is not None
    batch = result.batch
    plan = w.plan(batch)
    steps = {"prefill": ("prefill", w.input_len, 0), "decode": ("decode", 1, w.decode_contexts[1])}
    out = {}
    for name, (phase, seq, ctx) in steps.items():
        sh = w.shape(phase, batch, seq, ctx, plan)
        graph = w.graph(phase, sh.batch, sh.seq, sh.context)
        out[name] = time_step(graph, w.system, w.eff, plan, overlap=overlap,
                              microbatches=sh.passes, fill=sh.fill)  # fmt: skip
    return out


def write_step_trace(result: Result, path: Path, *, overlap: bool = True) -> dict:
    steps = step_simulations(result, overlap=overlap)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(strict_json(to_chrome_trace(steps), indent=None))  # null, never NaN
    return steps
