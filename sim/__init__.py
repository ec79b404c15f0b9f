"""Step timing, the one evaluation path (:mod:`sim.evaluate`), and the SimPy step and serving
simulations built on it."""

from sim.evaluate import (
    Result,
    RunCost,
    Workload,
    average_power_w,
    cost_run,
    evaluate,
    power_floor_w,
    resolve_workload,
    step_costs,
)
from sim.step import StepTiming, analytic_step, pipeline_seconds, step_energy

__all__ = [
    "Result",
    "RunCost",
    "StepTiming",
    "Workload",
    "analytic_step",
    "average_power_w",
    "cost_run",
    "evaluate",
    "pipeline_seconds",
    "power_floor_w",
    "resolve_workload",
    "step_costs",
    "step_energy",
]
