"""Request-level serving simulation in SimPy: arrivals, router, replicas, schedulers, paged KV.

One SimPy process per replica runs steps back to back: it asks its scheduler for a batch, costs it
with the step model (one event per step, not per op), waits that long, then applies it: prompt
tokens prefilled, output tokens emitted, finished requests' KV freed. When a decode step needs a KV
block and none is free, the newest running request is preempted: *recompute* frees its blocks and
requeues it to prefill its prompt and generated tokens again; *swap* copies its blocks to host
memory over the host link (time added to the step) and back when space frees.

Disaggregated serving runs a prefill pool and a decode pool (``pd_ratio`` = prefill replicas :
decode replicas); a request's first token comes from the prefill pool, then its KV crosses the
modelled scale-out link (bytes over bandwidth plus latency) to a decode replica.

Same seed, same result, bit for bit: all randomness comes from one ``numpy`` generator, drawn in a
fixed order, and SimPy breaks ties by insertion order.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from arch.base import ConfigError
from sim.kvcache import PagedKV
from sim.schedulers import SCHEDULERS, Batch, Scheduler
from sim.stepmodel import SpecDecode, StepCost
from sim.traffic import Arrivals, LengthDist, TraceReplay

__all__ = ["Replica", "Request", "ServingConfig", "ServingTrace", "simulate_serving"]

# what --scheduler accepts: every scheduler but the two pools, which "disaggregated" wires together
FRONT_SCHEDULERS = [*(s for s in SCHEDULERS if s not in ("prefill_only", "decode_only")),
                    "disaggregated"]  # fmt: skip


@dataclass(eq=False)
class Request:
    rid: int
    arrival_s: float
    input_len: int
    output_len: int
    cached: int = 0  # prompt tokens found in the prefix cache
    prefilled: int = 0
    generated: int = 0
    recompute: int = 0  # generated tokens to prefill again after a recompute preemption
    first_scheduled_s: float = math.nan
    first_token_s: float = math.nan
    finish_s: float = math.nan
    preemptions: int = 0
    user: int = -1

    @property
    def prompt(self) -> int:
        return self.input_len - self.cached + self.recompute

    @property
    def prompt_left(self) -> int:
        return self.prompt - self.prefilled

    @property
    def context(self) -> int:
        return self.input_len + self.generated


@dataclass(frozen=True)
class ServingConfig:
    """Everything but the step model. ``step_model(n_decode, ctx, prefill, n_prefill, pctx)``.

    Immutable and checked when built: a bad value is a one-line :class:`ConfigError` (a
    ValueError) naming the flag or key to fix, before any simulation starts. ``requests`` is
    what was asked for; a replayed trace may hold fewer (the simulation counts those).
    """

    arrivals: Arrivals
    input_len: LengthDist
    output_len: LengthDist
    requests: int = 1000
    scheduler: str = "continuous"
    max_batch: int = 256
    max_tokens: int = 8192
    replicas: int = 1
    router: str = "round_robin"  # or least_outstanding
    kv_blocks: int = 1 << 30  # per replica
    block_size: int = 16
    preemption: str = "recompute"  # or swap
    swap_bytes_per_token: float = 0.0
    swap_bw_bytes_per_s: float = 64e9
    prefix_hit_rate: float = 0.0
    pd_ratio: tuple[int, int] = (1, 1)
    kv_bytes_per_token: float = 0.0  # whole replica, for the disaggregated KV transfer
    transfer_bw_bytes_per_s: float = 50e9
    transfer_latency_s: float = 10e-6
    spec: SpecDecode | None = None
    chips_per_replica: int = 1
    idle_w: float = 0.0  # per chip
    busy_floor_w: float = 0.0  # per chip while stepping
    seed: int = 0
    progress: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        for ok, msg in self._checks():
            if not ok:
                raise ConfigError(msg)

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.requests >= 1, "--requests must be >= 1"),
            (self.replicas >= 1, "replicas must be >= 1"),
            (self.scheduler in FRONT_SCHEDULERS,
             f"--scheduler {self.scheduler!r}: choose one of {', '.join(FRONT_SCHEDULERS)}"),
            (self.max_batch >= 1, "--max-batch must be >= 1"),
            (self.max_tokens >= 1, "--max-tokens must be >= 1"),
            (self.block_size >= 1, "block_size must be >= 1"),
            (self.router in ("round_robin", "least_outstanding"),
             "router: round_robin or least_outstanding"),
            (self.preemption in ("recompute", "swap"), "preemption: recompute or swap"),
            (0.0 <= self.prefix_hit_rate < 1.0, "prefix_hit_rate must be in [0, 1)"),
            (min(self.pd_ratio) >= 1, "--pd-ratio: give P:D with positive integers, e.g. 1:3"),
            (self.kv_blocks >= 1, "the KV cache has no room: the model leaves no memory for it"),
        ]  # fmt: skip


@dataclass
class ServingTrace:
    """What happened: every request, and one row per step (for plots and Little's law)."""

    requests: list[Request]
    steps: dict[str, list] = field(default_factory=dict)
    simulated_s: float = 0.0
    energy_j: float = 0.0
    preemptions: int = 0
    area_in_system: float = 0.0  # integral of the number of requests in the system over time
    chips: int = 1


class Replica:
    def __init__(self, sim: _Sim, idx: int, scheduler: Scheduler, role: str = "both"):
        self.sim, self.idx, self.scheduler, self.role = sim, idx, scheduler, role
        self.kv = PagedKV(sim.cfg.kv_blocks, sim.cfg.block_size)
        self.waiting: deque[Request] = deque()
        self.prefilling: list[Request] = []
        self.running: list[Request] = []
        self.swapped: deque[Request] = deque()
        self.wake: simpy.Event | None = None
        self.busy_s = 0.0

    @property
    def outstanding(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running) + len(self.swapped)

    def enqueue(self, req: Request) -> None:
        self.waiting.append(req)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def mark_scheduled(self, req: Request) -> None:
        if math.isnan(req.first_scheduled_s):
            req.first_scheduled_s = self.sim.env.now

    def loop(self):
        env = self.sim.env
        while True:
            extra = self._swap_in()
            batch = self.scheduler.plan(self)
            if not batch:
                self.wake = env.event()
                yield self.wake
                continue
            extra += self._make_room(batch)
            cost = self.sim.cost(batch)
            dt = cost.seconds + extra
            yield env.timeout(dt)
            self.busy_s += dt
            self.sim.energy_j += cost.energy_j
            self._apply(batch)
            self.sim.record(self, batch, dt)

    # -- KV pressure ---------------------------------------------------------------------------
    def _make_room(self, batch: Batch) -> float:
        """Grow decode sequences' KV by this step's tokens, preempting the newest if needed."""
        extra, kv = 0.0, self.kv
        held, bs, step = kv.held, kv.block_size, self.sim.kv_step_tokens
        removed: set[Request] = set()
        for req in batch.decode:
            if req in removed:
                continue
            need = min(req.input_len + req.generated + step, req.input_len + req.output_len)
            if held.get(req.rid, 0) * bs >= need:  # fast path: the last block has room
                continue
            while not kv.grow(req.rid, need):
                victim = self.running[-1]
                extra += self._preempt(victim)
                removed.add(victim)
                if victim is req:
                    break
        if removed:
            batch.decode = [r for r in batch.decode if r not in removed]
        return extra

    def _preempt(self, req: Request) -> float:
        self.running.remove(req)
        req.preemptions += 1
        self.sim.preemptions += 1
        cfg = self.sim.cfg
        if cfg.preemption == "swap":
            nbytes = self.kv.held.get(req.rid, 0) * cfg.block_size * cfg.swap_bytes_per_token
            self.kv.release(req.rid)
            self.swapped.append(req)
            return nbytes / cfg.swap_bw_bytes_per_s
        self.kv.release(req.rid)
        req.recompute, req.prefilled = req.generated, 0
        req.cached = 0
        if self.role == "decode":  # recomputed in the prefill pool, then transferred again
            self.sim.route(req, self.sim.front).enqueue(req)
        else:
            self.waiting.appendleft(req)
        return 0.0

    def _swap_in(self) -> float:
        cfg, t = self.sim.cfg, 0.0
        while self.swapped and self.kv.can_grow(self.swapped[0].rid, self.swapped[0].context + 1):
            req = self.swapped.popleft()
            self.kv.grow(req.rid, req.context + 1)
            self.running.append(req)
            t += req.context * cfg.swap_bytes_per_token / cfg.swap_bw_bytes_per_s
        return t

    # -- effects of a finished step ------------------------------------------------------------
    def _apply(self, batch: Batch) -> None:
        now = self.sim.env.now
        for req, n in batch.prefill:
            req.prefilled += n
            if req.prefilled < req.prompt:
                if req not in self.prefilling:
                    self.prefilling.append(req)
                continue
            if req in self.prefilling:
                self.prefilling.remove(req)
            req.recompute = 0
            self._emit(req, 1, now)
            if math.isnan(req.finish_s):
                if self.role == "prefill":
                    self.kv.release(req.rid)
                    self.sim.hand_off(req)
                else:
                    self.running.append(req)
        sim = self.sim
        if sim.cfg.spec is None:  # fast path: one token each, most requests not finishing
            for req in batch.decode:
                if req.generated + 1 < req.output_len:
                    req.generated += 1
                    sim.tokens_out += 1
                else:
                    self._emit(req, 1, now)
            return
        for req in batch.decode:
            self._emit(req, sim.tokens_per_step(), now)

    def _emit(self, req: Request, n: int, now: float) -> None:
        if math.isnan(req.first_token_s):
            req.first_token_s = now
        n = min(n, req.output_len - req.generated)
        req.generated += n
        self.sim.tokens_out += n
        if req.generated >= req.output_len:
            req.finish_s = now
            self.kv.release(req.rid)
            if req in self.running:
                self.running.remove(req)
            self.sim.complete(req)


class _Sim:
    def __init__(self, cfg: ServingConfig, step_model, rng: np.random.Generator):
        self.cfg, self.step_model, self.rng = cfg, step_model, rng
        self.env = simpy.Environment()
        self.energy_j, self.preemptions, self.done, self.tokens_out = 0.0, 0, 0, 0
        self.requests: list[Request] = []
        self.n_requests = cfg.requests  # fewer when a replayed trace is shorter (sample_traffic)
        self.in_system, self.area, self.last_t = 0, 0.0, 0.0
        cols = ("t", "replica", "dt", "decode", "prefill_tokens", "waiting", "running", "kv_util",
                "tokens")  # fmt: skip
        self.steps: dict[str, list] = {k: [] for k in cols}
        self.all_done = self.env.event()
        self.kv_step_tokens = cfg.spec.k + 1 if cfg.spec else 1  # KV slots a decode step fills
        self._rr = 0
        self.pool = self._replicas()
        self.decode_pool = [r for r in self.pool if r.role == "decode"]
        self.front = [r for r in self.pool if r.role != "decode"]

    def _replicas(self) -> list[Replica]:
        c = self.cfg
        if c.scheduler != "disaggregated":
            return [Replica(self, i, SCHEDULERS[c.scheduler](c.max_batch, c.max_tokens))
                    for i in range(c.replicas)]  # fmt: skip
        p, d = c.pd_ratio
        n_p = max(1, round(c.replicas * p / (p + d)))
        n_d = max(1, c.replicas - n_p)
        pre = SCHEDULERS["prefill_only"]
        dec = SCHEDULERS["decode_only"]
        return [
            Replica(self, i, pre(c.max_batch, c.max_tokens), "prefill") for i in range(n_p)
        ] + [Replica(self, n_p + i, dec(c.max_batch, c.max_tokens), "decode") for i in range(n_d)]

    # -- bookkeeping ---------------------------------------------------------------------------
    def _tick(self, delta: int) -> None:
        now = self.env.now
        self.area += self.in_system * (now - self.last_t)
        self.last_t, self.in_system = now, self.in_system + delta

    def route(self, req: Request, pool: list[Replica]) -> Replica:
        if self.cfg.router == "least_outstanding":
            return min(pool, key=lambda r: (r.outstanding, r.idx))
        self._rr = (self._rr + 1) % len(pool)
        return pool[self._rr]

    def arrive(self, req: Request) -> None:
        self._tick(+1)
        self.requests.append(req)
        self.route(req, self.front).enqueue(req)

    def complete(self, req: Request) -> None:
        self._tick(-1)
        self.done += 1
        if self.cfg.progress:
            self.cfg.progress(self.done)
        if self.done == self.n_requests and not self.all_done.triggered:
            self.all_done.succeed()
        if self.cfg.arrivals.closed_loop and self.issued < self.n_requests:
            self.arrive(self._new(self.env.now, req.user))

    def hand_off(self, req: Request) -> None:
        c = self.cfg
        t = c.transfer_latency_s + req.context * c.kv_bytes_per_token / c.transfer_bw_bytes_per_s
        self.env.process(self._transfer(req, t))

    def _transfer(self, req: Request, t: float):
        yield self.env.timeout(t)
        self.route(req, self.decode_pool).enqueue(req)

    def tokens_per_step(self) -> int:
        spec = self.cfg.spec
        if not spec:
            return 1
        n = 1
        for a in spec.acceptance:
            if self.rng.random() >= a:
                break
            n += 1
        return n

    def cost(self, batch: Batch) -> StepCost:
        dec = batch.decode
        ctx = sum(r.input_len + r.generated for r in dec) / len(dec) if dec else 0.0
        pre = batch.prefill
        pctx = sum(r.prefilled + r.cached for r, _ in pre) / len(pre) if pre else 0.0
        return self.step_model(len(dec), ctx, batch.prefill_tokens, len(pre), pctx)

    def record(self, rep: Replica, batch: Batch, dt: float) -> None:
        s = self.steps
        s["t"].append(self.env.now)
        s["replica"].append(rep.idx)
        s["dt"].append(dt)
        s["decode"].append(len(batch.decode))
        s["prefill_tokens"].append(batch.prefill_tokens)
        s["waiting"].append(len(rep.waiting))
        s["running"].append(len(rep.running))
        s["kv_util"].append(rep.kv.utilization)
        s["tokens"].append(self.tokens_out)  # cumulative output tokens

    # -- traffic -------------------------------------------------------------------------------
    def sample_traffic(self) -> None:
        c = self.cfg
        if isinstance(c.arrivals, TraceReplay):
            t, i, o = c.arrivals.load()
            n = self.n_requests = min(c.requests, len(t))
            self.t_arr, self.inp, self.out = t[:n], i[:n], o[:n]
        else:
            self.t_arr = c.arrivals.times(self.rng, c.requests)
            self.inp = c.input_len.sample(self.rng, c.requests)
            self.out = c.output_len.sample(self.rng, c.requests)
        self.hits = self.rng.random(self.n_requests)
        self.issued = 0

    def _new(self, t: float, user: int = -1) -> Request:
        k = self.issued
        self.issued += 1
        inp = int(self.inp[k])
        cached = int(inp * self.cfg.prefix_hit_rate) if self.hits[k] < 1.0 else 0
        cached = min(cached, inp - 1)
        return Request(k, t, inp, int(self.out[k]), cached=cached, user=user)

    def arrivals(self):
        if self.cfg.arrivals.closed_loop:
            for u in range(len(self.t_arr)):
                self.arrive(self._new(0.0, u))
            return
        for t in self.t_arr:
            yield self.env.timeout(max(float(t) - self.env.now, 0.0))
            self.arrive(self._new(float(t)))


def simulate_serving(cfg: ServingConfig, step_model: Callable[..., StepCost]) -> ServingTrace:
    """Run the serving simulation until every request has finished (``cfg`` is not changed;
    it was checked when built)."""
    sim = _Sim(cfg, step_model, np.random.default_rng(cfg.seed))
    sim.sample_traffic()
    sim.env.process(sim.arrivals())
    for r in sim.pool:
        sim.env.process(r.loop())
    longest = int(np.max(sim.inp + sim.out)) if len(sim.inp) else 0
    if sim.pool[0].kv.blocks_for(longest) > cfg.kv_blocks:
        raise ValueError(
            f"--input-len + --output-len: a request of {longest} tokens needs more KV cache "
            f"than a replica has ({cfg.kv_blocks * cfg.block_size} tokens); shorten the lengths "
            "or add chips"
        )
    sim.env.run(until=sim.all_done)
    sim._tick(0)
    chips = cfg.chips_per_replica * len(sim.pool)
    busy = sum(r.busy_s for r in sim.pool) * cfg.chips_per_replica
    floor_j = busy * cfg.busy_floor_w + (chips * sim.env.now - busy) * cfg.idle_w
    return ServingTrace(
        requests=sorted(sim.requests, key=lambda r: r.rid),
        steps=sim.steps,
        simulated_s=sim.env.now,
        energy_j=sim.energy_j + floor_j,
        preemptions=sim.preemptions,
        area_in_system=sim.area,
        chips=chips,
    )
