"""Analytic step timing: cost every op with the kernels and add them up, serially per stage.

This is the *analytic* fidelity level (no overlap between ops); the SimPy step simulation builds
on the same per-op costs. The two rules of a step, written once and used by every path (one
design here, many designs in :mod:`sim.evaluate`):

* :func:`pipeline_seconds`: a decode step of ``microbatches`` micro-batches takes
  ``max(sum of stage times, microbatches x slowest stage)``: decode steps repeat, so the pipeline
  stays full from one step to the next and a step is either latency-bound by one micro-batch's
  trip or throughput-bound by its slowest stage;
* :func:`fill_drain_seconds`: a one-off pass of ``n`` chunks (prefill) fills and drains the
  pipeline: ``sum of stage times + (n - 1) x slowest stage`` (one chunk through every stage, the
  rest at the slowest stage's pace);
* :func:`step_seconds`: either rule with the trip latency, plus the serving engine's fixed cost
  per forward pass (``step_overhead_s``: once per decode step, once per prefill chunk);
* :func:`step_energy`: the graph is one device per stage running one micro-batch, so the step's
  dynamic energy is ``sum(op energy x count) x tp (chips per stage) x microbatches``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arch.chip import System
from arch.efficiency import FamilyEfficiency
from kernels import layout as L
from kernels.cost import op_costs
from kernels.pack import pack_design, pack_ops
from workloads.capacity import MemoryPlan
from workloads.ops import OpGraph

__all__ = [
    "BOUNDS",
    "StepTiming",
    "analytic_step",
    "fill_drain_seconds",
    "pipeline_seconds",
    "step_energy",
    "step_seconds",
    "trip_latency_s",
]

BOUNDS = ("compute", "memory", "interconnect", "overhead", "latency")


@dataclass(frozen=True)
class StepTiming:
    """One step of one replica. Times in seconds; ``energy_j`` is the dynamic energy of the whole
    step (all micro-batches) on all chips of the replica (idle power is added by the caller over
    wall time)."""

    total_s: float
    stage_s: np.ndarray
    per_op: np.ndarray  # [n_ops, N_OUT] per instance
    graph: OpGraph
    shares: dict[str, float]
    energy_j: float
    latency_s: float = 0.0  # fixed latency in total_s: layer and stage hops, engine step cost
    # filled by the SimPy step simulation (sim.step_sim.time_step); empty for the analytic sum
    busy_s: dict[str, float] = field(default_factory=dict)
    exposed_s: dict[str, float] = field(default_factory=dict)
    timeline: tuple = ()

    @property
    def bound(self) -> str:
        return max(self.shares, key=self.shares.get)  # type: ignore[arg-type]

    def op_table(self) -> list[dict]:
        """Per folded op, over all its instances (``count``, layers folded into one row): name,
        count, seconds per step, its binding side, its ``share`` of the sum of all op times
        (the step's own time also holds pipeline fill and fixed latencies), FLOPs (matrix plus
        vector), bytes read and written (weights + KV + activations) and collective bytes, per
        chip."""
        g = self.graph
        seconds = self.per_op[:, L.T_TOTAL] * g.count
        total = float(seconds.sum()) or 1.0
        rows = []
        for i, name in enumerate(g.names):
            n = int(g.count[i])
            rows.append({
                "name": name, "count": n, "seconds": float(seconds[i]),
                "bound": _op_bound(self.per_op[i]), "share": float(seconds[i]) / total,
                "flops": float(g.flops[i] + g.vflops[i]) * n,
                "bytes": float(g.weight_bytes[i] + g.kv_bytes[i] + g.act_bytes[i]) * n,
                "comm_bytes": float(g.comm_bytes[i]) * n,
            })  # fmt: skip
        return rows


def _op_bound(c: np.ndarray) -> str:
    parts = {
        "compute": c[L.T_COMPUTE] if c[L.T_COMPUTE] >= c[L.T_MEMORY] else 0.0,
        "memory": c[L.T_MEMORY] if c[L.T_MEMORY] > c[L.T_COMPUTE] else 0.0,
        "interconnect": c[L.T_COMM],
        "overhead": c[L.T_OVERHEAD],
    }
    return max(parts, key=parts.get)  # type: ignore[arg-type]


def _shares(per_op: np.ndarray, count: np.ndarray, latency_s: float = 0.0) -> dict[str, float]:
    busy = per_op[:, L.T_TOTAL] - per_op[:, L.T_COMM] - per_op[:, L.T_OVERHEAD]
    compute_side = per_op[:, L.T_COMPUTE] >= per_op[:, L.T_MEMORY]
    parts = {
        "compute": float(np.sum(np.where(compute_side, busy, 0.0) * count)),
        "memory": float(np.sum(np.where(compute_side, 0.0, busy) * count)),
        "interconnect": float(np.sum(per_op[:, L.T_COMM] * count)),
        "overhead": float(np.sum(per_op[:, L.T_OVERHEAD] * count)),
        "latency": latency_s,
    }
    total = sum(parts.values()) or 1.0
    return {k: v / total for k, v in parts.items()}


def trip_latency_s(designs: np.ndarray, graph: OpGraph) -> np.ndarray:
    """Fixed latency of one micro-batch's trip through every stage, per design row: the
    layers' ``layer_latency_s`` and the stage-to-stage ``stage_hop_latency_s`` (0 on GPUs)."""
    d = np.atleast_2d(designs)
    layers = graph.meta.get("num_layers", 0)
    stages = graph.meta.get("parallelism", {}).get("pp", 1)
    return layers * d[:, L.LAT_LAYER] + (stages - 1) * d[:, L.LAT_STAGE_HOP]


def pipeline_seconds(stage_s: np.ndarray, microbatches: int, latency_s=0.0) -> np.ndarray:
    """Step seconds from per-stage seconds ``[..., n_stages]`` and the trip latency (module
    docstring): latency lengthens one micro-batch's trip, not a full pipeline's period."""
    return np.maximum(stage_s.sum(axis=-1) + latency_s, microbatches * stage_s.max(axis=-1))


def fill_drain_seconds(stage_s: np.ndarray, passes: int, latency_s=0.0) -> np.ndarray:
    """Seconds of ``passes`` chunks through the stages ``[..., n_stages]`` (module docstring)."""
    return stage_s.sum(axis=-1) + latency_s + (passes - 1) * stage_s.max(axis=-1)


def host_seconds(designs: np.ndarray, passes: int, *, fill: bool) -> np.ndarray:
    """The engine's fixed cost of a step per design row: one per forward pass (each prefill chunk
    is one; a decode step's micro-batches are one iteration)."""
    return np.atleast_2d(designs)[:, L.STEP_OVH] * (passes if fill else 1)


def step_seconds(
    stage_s: np.ndarray, passes: int, *, fill: bool, designs: np.ndarray, graph: OpGraph
) -> np.ndarray:
    """Seconds of a step per design row (module docstring): the pipeline rule with the trip
    latency, plus the engine's fixed cost per forward pass."""
    rule = fill_drain_seconds if fill else pipeline_seconds
    latency = trip_latency_s(designs, graph)
    return rule(stage_s, passes, latency) + host_seconds(designs, passes, fill=fill)


def step_energy(device_energy_j, graph: OpGraph, microbatches: int):
    """Step energy from one device-per-stage micro-batch's op energy (scalar or per design)."""
    return device_energy_j * graph.meta.get("parallelism", {}).get("tp", 1) * microbatches


def analytic_step(
    graph: OpGraph,
    system: System,
    eff: FamilyEfficiency,
    plan: MemoryPlan | None = None,
    *,
    microbatches: int = 1,
    direct_collectives: bool = True,
    fill: bool = False,
    design: np.ndarray | None = None,
) -> StepTiming:
    """One step on one design with its per-op costs (for bounds, op tables and the step
    simulation); ``graph`` is one micro-batch's (or chunk's) ops over all stages, repeated
    ``microbatches`` times, in a full pipeline or (``fill``) a one-off fill and drain.
    ``design``: the packed row of ``system`` at ``plan`` when the caller has it already."""
    packed = pack_ops(graph)
    if design is None:
        design = pack_design(system, eff, plan, direct_collectives=direct_collectives)
    per_op = op_costs(*packed.args, design)
    weighted = per_op[:, L.T_TOTAL] * packed.count
    stage_s = np.bincount(packed.stage, weights=weighted, minlength=packed.n_stages)
    device_j = float(np.sum(per_op[:, L.ENERGY] * packed.count))
    total = float(step_seconds(stage_s, microbatches, fill=fill, designs=design, graph=graph)[0])
    host = host_seconds(design, microbatches, fill=fill)
    latency = float(trip_latency_s(design, graph)[0] + host[0])
    return StepTiming(
        total_s=total,
        stage_s=stage_s,
        per_op=per_op,
        graph=graph,
        shares=_shares(per_op, packed.count, latency),
        latency_s=latency,
        energy_j=float(step_energy(device_j, graph, microbatches)),
    )
