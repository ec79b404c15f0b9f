"""SimPy step simulation: one step of one replica replayed op by op on per-stage resources.

Each pipeline stage (a TP group of chips working in lock step, represented by one chip) has an
``engine`` (matrix and vector units, one kernel at a time), a ``link`` port (collectives and
pipeline sends) and, where weights stream from a capacity tier (Cerebras MemoryX, SambaNova DDR),
a ``stream`` port. Ops are processes; every micro-batch is a chain of its ops in layer order
through the stages, so what the analytic sum cannot see emerges from contention:

* communication of one micro-batch overlaps compute of another (two or more micro-batches);
* pipeline bubbles: stage ``s`` idles until the first micro-batch reaches it;
* weight streaming: the capacity-tier share of an op's memory time runs on the ``stream`` port up
  to ``prefetch_depth`` ops ahead of the engine; the op then runs its remaining time.

Costs come from the same Numba kernels as the analytic step (per op: compute/memory roofline time,
communication, fixed overhead). With ``overlap=False`` every op takes its whole analytic time on
one global lock, so the total equals the analytic serial sum. With overlap the total is never
shorter than the busiest resource nor longer than the serial sum (each op's pieces add up to its
analytic time, and a chain of tasks on shared resources finishes within the sum of its tasks).

The statically scheduled SRAM pipeline of a Groq rack and the wafer's mesh are expressed as
pipeline stages with tokens (micro-batches) flowing through them; the mesh hop latency is in the
per-op overhead of those families.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import simpy

from arch.chip import System
from arch.efficiency import FamilyEfficiency
from kernels import layout as L
from sim.step import StepTiming, analytic_step
from workloads.capacity import MemoryPlan
from workloads.ops import COLLECTIVES, OpGraph

__all__ = ["exposed_times", "time_step", "to_chrome_trace"]

CLASSES = ("engine", "link", "stream")


def _order(graph: OpGraph) -> np.ndarray:
    """Execution order of the expanded graph's rows: stage, then layer, then op position."""
    idx = np.arange(len(graph))
    layered = graph.layer >= 0
    first = int(idx[layered].min()) if layered.any() else len(graph)
    key = np.where(layered, graph.layer, np.where(idx < first, -1, 1 << 30))
    return np.lexsort((idx, key, graph.stage))


def _pieces(per_op: np.ndarray, graph: OpGraph, system: System, eff, plan) -> np.ndarray:
    """[n, 3] seconds on engine, link, stream for each (expanded) op; rows sum to T_TOTAL."""
    comm = per_op[:, L.T_COMM]
    is_coll = np.isin(graph.kind, [int(k) for k in COLLECTIVES])
    rest = per_op[:, L.T_TOTAL] - comm
    stream = np.zeros(len(graph))
    if plan is not None and plan.weight_split[2] > 0:  # the streamed share of the weights
        tier = system.chip.capacity_tier
        bw = tier.bandwidth_bytes_per_s * eff.value("memory")
        stream = np.minimum(plan.weight_split[2] * graph.weight_bytes / bw, rest)
    engine = np.where(is_coll, 0.0, rest - stream)
    link = np.where(is_coll, per_op[:, L.T_TOTAL], 0.0)
    return np.stack([engine, link, np.where(is_coll, 0.0, stream)], axis=1)


class _Replay:
    def __init__(self, graph, pieces, microbatches, overlap, prefetch_depth):
        self.env = simpy.Environment()
        self.g, self.pieces, self.mb = graph, pieces, microbatches
        self.overlap, self.depth = overlap, prefetch_depth
        stages = int(graph.stage.max()) + 1 if len(graph) else 1
        # micro-batches a stage works on at once: one when pipelining over stages (GPipe-style
        # flow), all of them on a single stage (two-batch overlap of compute and communication)
        inflight = 1 if stages > 1 else microbatches
        self.slots = [simpy.Resource(self.env, capacity=inflight) for _ in range(stages)]
        if overlap:
            self.res = {(s, c): simpy.Resource(self.env) for s in range(stages) for c in CLASSES}
        else:
            lock = simpy.Resource(self.env)
            self.res = {(s, c): lock for s in range(stages) for c in CLASSES}
        self.timeline: list[tuple[str, int, str, int, float, float]] = []

    def _hold(self, i: int, cls: str, seconds: float, mb: int):
        if seconds <= 0.0:
            return
        stage = int(self.g.stage[i])
        with self.res[(stage, cls)].request() as rq:
            yield rq
            t0 = self.env.now
            yield self.env.timeout(seconds)
            self.timeline.append((self.g.names[i], stage, cls, mb, t0, self.env.now))

    def chain(self, mb: int, streamed: list, started: list):
        slot, slot_stage = None, -1
        for j, i in enumerate(self.order):
            if not self.overlap:
                yield from self._hold(i, "engine", float(self.pieces[i].sum()), mb)
                continue
            stage = int(self.g.stage[i])
            if stage != slot_stage:  # enter the next stage: wait for one of its micro-batch slots
                if slot is not None:
                    self.slots[slot_stage].release(slot)
                slot, slot_stage = self.slots[stage].request(), stage
                yield slot
            started[j].succeed()
            if self.pieces[i, 2] > 0.0:
                yield streamed[j]
            yield from self._hold(i, "engine", float(self.pieces[i, 0]), mb)
            yield from self._hold(i, "link", float(self.pieces[i, 1]), mb)
        if slot is not None:
            self.slots[slot_stage].release(slot)

    def streamer(self, mb: int, streamed: list, started: list):
        for j, i in enumerate(self.order):
            if self.pieces[i, 2] <= 0.0:
                streamed[j].succeed()
                continue
            if j >= self.depth:
                yield started[j - self.depth]
            yield from self._hold(i, "stream", float(self.pieces[i, 2]), mb)
            streamed[j].succeed()

    def run(self, order: np.ndarray) -> float:
        self.order = order
        for mb in range(self.mb):
            streamed = [self.env.event() for _ in order]
            started = [self.env.event() for _ in order]
            self.env.process(self.chain(mb, streamed, started))
            if self.overlap:
                self.env.process(self.streamer(mb, streamed, started))
        self.env.run()
        return float(self.env.now)


def exposed_times(timeline) -> tuple[dict[str, float], dict[str, float]]:
    """(busy, exposed) seconds per resource class: exposed = busy while no other class is busy."""
    edges = sorted({t for *_, a, b in timeline for t in (a, b)})
    if len(edges) < 2:
        return dict.fromkeys(CLASSES, 0.0), dict.fromkeys(CLASSES, 0.0)
    mids = (np.array(edges[:-1]) + np.array(edges[1:])) / 2
    width = np.diff(edges)
    active = {c: np.zeros(len(mids), dtype=bool) for c in CLASSES}
    for _, _, cls, _, a, b in timeline:
        lo, hi = np.searchsorted(mids, a), np.searchsorted(mids, b)
        active[cls][lo:hi] = True
    busy, exposed = {}, {}
    for c in CLASSES:
        others = np.zeros(len(mids), dtype=bool)
        for o in CLASSES:
            if o != c:
                others |= active[o]
        busy[c] = float(width[active[c]].sum())
        exposed[c] = float(width[active[c] & ~others].sum())
    return busy, exposed


def time_step(
    graph: OpGraph,
    system: System,
    eff: FamilyEfficiency,
    plan: MemoryPlan | None = None,
    *,
    microbatches: int = 1,
    overlap: bool = True,
    prefetch_depth: int = 2,
    fill: bool = False,
) -> StepTiming:
    """Simulate one step; ``graph`` is one micro-batch's (or prefill chunk's) ops, all stages,
    run ``microbatches`` times (``fill``: a prefill's chunks, for the analytic figures)."""
    analytic = analytic_step(graph, system, eff, plan, microbatches=max(microbatches, 1),
                             fill=fill)  # fmt: skip
    flat = graph.expand()
    per_op = np.repeat(analytic.per_op, graph.count, axis=0)
    pieces = _pieces(per_op, flat, system, eff, plan)
    replay = _Replay(flat, pieces, max(microbatches, 1), overlap, max(prefetch_depth, 1))
    end = replay.run(_order(flat))
    busy, exposed = exposed_times(replay.timeline)
    timeline = list(replay.timeline)
    if analytic.latency_s > 0:  # fixed trip latency and engine step cost, as analytic
        timeline.append(("fixed latency", 0, "engine", 0, end, end + analytic.latency_s))
    return replace(
        analytic,
        total_s=end + analytic.latency_s,
        busy_s=busy,
        exposed_s=exposed,
        timeline=tuple(timeline),
    )


def to_chrome_trace(steps: dict[str, StepTiming]) -> dict:
    """Chrome/Perfetto trace JSON: one process per (phase, stage), one thread per resource."""
    events, pid = [], 0
    for phase, st in steps.items():
        stages = sorted({s for _, s, *_ in st.timeline})
        for s in stages:
            pid += 1
            events.append({"ph": "M", "name": "process_name", "pid": pid,
                           "args": {"name": f"{phase} stage {s}"}})  # fmt: skip
            for tid, cls in enumerate(CLASSES):
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                               "args": {"name": cls}})  # fmt: skip
            for name, stage, cls, mb, a, b in st.timeline:
                if stage == s:
                    events.append({"ph": "X", "name": name, "cat": cls, "pid": pid,
                                   "tid": CLASSES.index(cls), "ts": a * 1e6, "dur": (b - a) * 1e6,
                                   "args": {"microbatch": mb}})  # fmt: skip
    return {"traceEvents": events, "displayTimeUnit": "ms"}
