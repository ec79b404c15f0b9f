"""Step timing (analytic now; the SimPy step and serving simulations build on it)."""

from sim.step import StepTiming, analytic_step

__all__ = ["StepTiming", "analytic_step"]
