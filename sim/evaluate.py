"""The one evaluation path: system x model x quantization x parallelism x lengths x batch ->
prefill and decode timing, energy and power, for one design or many at once.

Every front door costs through here: ``predict`` and ``--batch max``, the serving step model,
``sweep`` (many chip designs per call), the search objectives, the TCO fleets and the validation
cases. One design is a batch of one: :func:`evaluate` packs the system into one design row and
calls :func:`cost_run`, the function ``sweep`` calls with thousands of rows.

The rules, each written once (here, or in the one place named):

* **micro-batching and prefill chunks** (:meth:`Workload.shape`): decode pipelines
  ``min(pp, batch)`` micro-batches of ``ceil(batch / pp)`` sequences through the ``pp`` stages;
  prefill runs chunks of the plan's ``prefill_chunk_tokens`` through the stages, filling and
  draining the pipeline once (TTFT = one chunk through every stage + the rest at the slowest
  stage's pace);
* **activation memory**: the resident footprint of one prefill chunk
  (:func:`workloads.capacity.activation_bytes_per_token`), the chunk sized to what memory holds;
* **layer-to-stage split**: :func:`workloads.capacity.stage_of_layers` (balanced by bytes);
* **precision resolution**: :func:`arch.chip.resolved_precisions`, in the design rows;
* **weight placement**: :func:`workloads.capacity.place_weights`;
* **step time and step energy** under pipelining: :mod:`sim.step`;
* **TPOT**: the mean decode step over the contexts the decode steps see (``input_len + 1`` to
  ``input_len + output_len - 1``: the first decode step attends over the prompt and the first
  token), by Simpson's rule (exact for the parts of the cost linear in context);
  ``e2e = TTFT + (output_len - 1) x TPOT``;
* **power floor** (:func:`power_floor_w`): a working chip draws at least
  ``max(idle_w, active_power_fraction x TDP)``; **average power** (:func:`average_power_w`):
  that floor plus dynamic energy over time, capped at TDP; idle chips draw ``idle_w``.

Engines prefill at most a token budget at a time (``prefill_chunk_tokens``, default 8,192 — an
assumption in the range of common engine defaults, e.g. TensorRT-LLM's max_num_tokens); chips
with little memory (SRAM) prefill in smaller chunks, as many as fit beside weights and KV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from arch.base import ConfigError
from arch.chip import ChipArrays, System
from arch.efficiency import FamilyEfficiency, efficiency_for
from arch.engine import KERNELS_ONLY, Engine, resolve_engine
from arch.presets import parse_system
from kernels import layout as L
from kernels.cost import stage_totals
from kernels.pack import pack_design, pack_ops, resolve_precision
from sim.step import StepTiming, analytic_step, step_energy, step_seconds
from workloads.capacity import (
    LOGIT_BYTES,
    MemoryPlan,
    activation_bytes_per_token,
    kv_bytes_per_chip,
    memo_by_identity,
    plan_memory,
    prefill_chunk,
    weight_bytes_per_chip,
)
from workloads.graph import build_graph
from workloads.model import ModelSpec
from workloads.ops import OpGraph
from workloads.parallel import Parallelism
from workloads.presets import load_model
from workloads.quant import QuantSpec, get_quant

__all__ = [
    "VERSION",
    "Result",
    "RunCost",
    "Workload",
    "average_power_w",
    "cost_run",
    "evaluate",
    "largest_true",
    "power_floor_w",
    "require_pandas",
    "resident_batch",
    "resolve_workload",
    "step_costs",
    "to_dataframe",
    "weight_regime",
]

VERSION = "0.1.0"
Phase = Literal["prefill", "decode"]
_GRAPHS: dict = {}  # Workload.graph, by model identity and every other input
_CHIPS: dict = {}  # ChipArrays.of, by chip identity
_DESIGNS: dict = {}  # pack_design, by system identity, efficiency and plan


@dataclass(frozen=True)
class Pass:
    """One step as it runs: ``passes`` passes of a graph of ``batch`` sequences x ``seq`` new
    tokens at ``context``; ``fill``: a one-off fill and drain of the pipeline (prefill), else
    steady state (decode)."""

    batch: int
    seq: int
    context: int
    passes: int
    fill: bool = False


@dataclass(frozen=True)
class Workload:
    """Everything that defines one prediction, resolved to objects (``par`` per system; the
    step methods cost one replica)."""

    system: System
    model: ModelSpec
    quant: QuantSpec
    par: Parallelism
    input_len: int
    output_len: int
    eff: FamilyEfficiency
    engine: Engine = KERNELS_ONLY
    routing_skew: float = 0.0
    moe_overlap: bool = False  # two-batch overlap of MoE all-to-all with compute
    prefill_chunk_tokens: int = 8192

    def shape(
        self, phase: Phase, batch: int, seq: int, context: int, plan: MemoryPlan | None = None
    ) -> Pass:
        """How a step of ``batch`` sequences of ``seq`` new tokens runs (the micro-batching
        rule). Decode pipelines ``min(pp, batch)`` micro-batches of ``ceil(batch / pp)``
        sequences, step after step. Prefill runs in chunks of the plan's
        ``prefill_chunk_tokens`` (whole prompts per chunk when they fit, else each prompt in
        equal chunks, costed at the middle chunk's context), filling and draining the pipeline
        once."""
        if phase == "decode":
            return Pass(math.ceil(batch / self.par.pp), seq, context, min(self.par.pp, batch))
        chunk = plan.prefill_chunk_tokens if plan and plan.prefill_chunk_tokens else batch * seq
        if chunk >= seq:
            passes = math.ceil(batch / min(batch, chunk // seq))
            return Pass(math.ceil(batch / passes), seq, context, passes, fill=True)
        pieces = math.ceil(seq / chunk)
        size = math.ceil(seq / pieces)
        mid = context + (pieces - 1) * size // 2
        return Pass(1, size, mid, batch * pieces, fill=True)

    def graph(self, phase: Phase, batch: int, seq: int, context: int) -> OpGraph:
        """The ops of one pass of ``batch`` sequences over all stages (one device per stage);
        memoized (the graph's arrays are made read-only)."""
        key = (self.par, self.quant, self.routing_skew, self.moe_overlap,
               self.engine.attention_bits, phase, batch, seq, context)  # fmt: skip
        return memo_by_identity(_GRAPHS, (self.model,), key,
                                lambda: self._build_graph(phase, batch, seq, context))  # fmt: skip

    def _build_graph(self, phase: Phase, batch: int, seq: int, context: int) -> OpGraph:
        g = build_graph(
            self.model,
            phase=phase,
            batch=batch,
            seq_len=seq,
            context_len=context,
            parallelism=self.par,
            quant=self.quant,
            routing_skew=self.routing_skew,
            moe_overlap=self.moe_overlap,
            attention_bits=self.engine.attention_bits,
        )
        for f in fields(g):
            value = getattr(g, f.name)
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        return g

    def plan(self, batch: int) -> MemoryPlan:
        """Memory per chip at ``batch`` sequences per replica, with the prefill chunk whose
        activations fit beside the weights and the KV cache."""
        rf = self.eff.value("memory_reserve_fraction")
        weights = weight_bytes_per_chip(self.model, self.par, self.quant)
        context = self.input_len + self.output_len
        kv = kv_bytes_per_chip(self.model, self.par, self.quant, batch=batch, context_len=context)
        chips = memo_by_identity(_CHIPS, (self.system.chip,), (),
                                 lambda: ChipArrays.of(self.system.chip))  # fmt: skip
        chunk, act = self.activations(chips, batch, weights=weights,
                                      kv=kv)  # fmt: skip
        plan = plan_memory(self.model, self.par, self.quant, self.system.chip, batch=batch,
                           context_len=context, activation_bytes=float(act[0]),
                           reserve_fraction=rf, weights=weights, kv=kv)  # fmt: skip
        return replace(plan, prefill_chunk_tokens=int(chunk[0]))

    def activations(
        self, chips: ChipArrays, batch: int, *, weights: float, kv: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(prefill chunk tokens, activation bytes) per chip of ``chips``: the chunk's footprint,
        or a decode micro-batch's activations and logits if larger (one token per sequence)."""
        chunk, act = prefill_chunk(self.model, self.par, chips, tokens=batch * self.input_len,
                                   sequences=batch, weights=weights, kv=kv,
                                   reserve_fraction=self.eff.value("memory_reserve_fraction"),
                                   max_tokens=self.prefill_chunk_tokens)  # fmt: skip
        per_token = activation_bytes_per_token(self.model, self.par)
        logits = self.model.vocab_size / self.par.tp * LOGIT_BYTES
        decode = self.shape("decode", batch, 1, 0).batch * (per_token + logits)
        return chunk, np.maximum(act, decode)

    def step(
        self, phase: Phase, batch: int, *, seq: int, context: int, plan: MemoryPlan | None
    ) -> StepTiming:
        """One step of ``batch`` sequences on this system, with its per-op costs."""
        sh = self.shape(phase, batch, seq, context, plan)
        g = self.graph(phase, sh.batch, sh.seq, sh.context)
        row = design_row(self, plan) if plan is not None else None
        return analytic_step(g, self.system, self.eff, plan, microbatches=sh.passes, fill=sh.fill,
                             design=row)  # fmt: skip

    def prefill(self, batch: int, plan: MemoryPlan | None) -> StepTiming:
        return self.step("prefill", batch, seq=self.input_len, context=0, plan=plan)

    def decode(
        self, batch: int, context: int, plan: MemoryPlan | None, seq: int = 1
    ) -> StepTiming:
        return self.step("decode", batch, seq=seq, context=context, plan=plan)

    @property
    def decode_contexts(self) -> tuple[int, int, int]:
        """(first, middle, last) context of the decode steps (Simpson's nodes); an engine with a
        padded cache attends over the whole slot (input + output) at every step."""
        c0 = self.input_len + 1
        c1 = max(self.input_len + self.output_len - 1, c0)
        if self.engine.padded_cache:
            return c1, c1, c1
        return c0, (c0 + c1) // 2, c1

    def floor_w(self) -> float:
        """Power floor of one of this system's chips while it works (:func:`power_floor_w`)."""
        c = self.system.chip
        return float(power_floor_w(c.idle_w, c.tdp_w, self.eff))


def resolve_workload(
    *,
    system: str | System,
    model: str | ModelSpec,
    quant: str | QuantSpec = "bf16",
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    input_len: int,
    output_len: int,
    routing_skew: float = 0.0,
    efficiency_overrides: dict[str, float] | None = None,
    eff: FamilyEfficiency | None = None,
    engine: str | Engine | None = None,
    moe_overlap: bool = False,
) -> Workload:
    """Presets and names to objects, checked: lengths, context, parallelism against the system.
    ``engine``: the serving engine (None: the one the chip family is assumed to run);
    ``eff`` (a resolved efficiency) replaces the chip family's calibrated one."""
    system = _parse_system(system) if isinstance(system, str) else system
    model = load_model(model) if isinstance(model, str) else model
    quant = get_quant(quant) if isinstance(quant, str) else quant
    if input_len < 1 or output_len < 1:
        raise ConfigError("--input-len and --output-len must be >= 1")
    if input_len + output_len - 1 > model.max_context:  # the last token is never cached
        raise ConfigError(
            f"input+output = {input_len + output_len} tokens exceeds {model.name}'s "
            f"context of {model.max_context}; shorten --input-len/--output-len"
        )
    par = Parallelism(tp=tp, pp=pp, ep=ep, dp=dp)
    par.validate_for(model, system.count)
    for p in {quant.gemm_precision, quant.a.compute}:  # every precision the ops will ask for
        resolve_precision(system.chip, p)  # a ConfigError when the chip can run none of it
    family = system.chip.family
    engine = engine if isinstance(engine, Engine) else resolve_engine(engine, family)
    return Workload(
        system=system,
        model=model,
        quant=quant,
        par=par,
        input_len=input_len,
        output_len=output_len,
        eff=eff or efficiency_for(family, engine=engine.name, overrides=efficiency_overrides),
        engine=engine,
        routing_skew=routing_skew,
        moe_overlap=moe_overlap,
    )


@lru_cache(maxsize=256)
def _parse_system(name: str) -> System:
    """:func:`parse_system` memoized (a System is frozen)."""
    return parse_system(name)




def design_row(w: Workload, plan: MemoryPlan) -> np.ndarray:
    """:func:`pack_design` of the workload's system at ``plan``, memoized (read-only)."""

    def pack() -> np.ndarray:
        row = pack_design(w.system, w.eff, plan)
        row.setflags(write=False)
        return row

    return memo_by_identity(_DESIGNS, (w.system,), (w.eff, plan), pack)


# --------------------------------------------------------------------------- power rules


def power_floor_w(idle_w, tdp_w, eff: FamilyEfficiency):
    """Least power of a chip while its replica works (scalar or per design)."""
    return np.maximum(idle_w, eff.value("active_power_fraction") * np.asarray(tdp_w))


def average_power_w(dynamic_j, seconds, *, chips: int, floor_w, tdp_w):
    """Mean power per chip over ``seconds`` of work: the floor plus the dynamic energy, <= TDP."""
    return np.minimum(floor_w + dynamic_j / (chips * seconds), tdp_w)


# --------------------------------------------------------------------------- many designs


def step_costs(
    w: Workload,
    phase: Phase,
    batch: int,
    *,
    seq: int,
    context: int,
    designs: np.ndarray,
    plan: MemoryPlan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, dynamic joules) of one step on each design row ``designs[n, N_DESIGN]``."""
    sh = w.shape(phase, batch, seq, context, plan)
    g = w.graph(phase, sh.batch, sh.seq, sh.context)
    p = pack_ops(g)
    out = stage_totals(*p.args, p.count, p.stage, p.n_stages, designs)
    seconds = step_seconds(out[:, :, L.T_TOTAL], sh.passes, fill=sh.fill, designs=designs, graph=g)
    return seconds, step_energy(out[:, :, L.ENERGY].sum(axis=1), g, sh.passes)


@dataclass(frozen=True)
class RunCost:
    """One static batch on each of ``n`` designs (arrays of length n): latencies, throughput of
    the whole system, and power and energy per output token including the power floor."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    tokens_per_s: np.ndarray
    tokens_per_s_per_chip: np.ndarray
    power_w: np.ndarray
    energy_j_per_token: np.ndarray


def cost_run(
    w: Workload, batch: int, designs: np.ndarray, plan: MemoryPlan | None = None
) -> RunCost:
    """Prefill then decode of ``batch`` sequences per replica on every design row (``plan``:
    the memory plan, for the prefill chunk; default ``w.plan(batch)``)."""
    plan = plan or w.plan(batch)
    ttft, e_pre = step_costs(w, "prefill", batch, seq=w.input_len, context=0, designs=designs,
                             plan=plan)  # fmt: skip
    dec = [step_costs(w, "decode", batch, seq=1, context=c, designs=designs)
           for c in w.decode_contexts]  # fmt: skip
    tpot = (dec[0][0] + 4 * dec[1][0] + dec[2][0]) / 6
    e_dec = (dec[0][1] + 4 * dec[1][1] + dec[2][1]) / 6
    e2e = ttft + (w.output_len - 1) * tpot
    chips = w.par.chips_per_replica
    floor = power_floor_w(designs[:, L.IDLE_W], designs[:, L.TDP_W], w.eff)
    dynamic = e_pre + (w.output_len - 1) * e_dec
    tokens = batch * w.output_len
    per_replica = tokens / e2e
    return RunCost(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        tokens_per_s=per_replica * w.par.dp,
        tokens_per_s_per_chip=per_replica / chips,
        power_w=average_power_w(
            dynamic, e2e, chips=chips, floor_w=floor, tdp_w=designs[:, L.TDP_W]
        ),
        energy_j_per_token=(dynamic + chips * floor * e2e) / tokens,
    )


# --------------------------------------------------------------------------- one design


@dataclass(frozen=True)
class Result:
    """Outcome of :func:`evaluate`. Timings are None when the design does not fit."""

    batch: int
    fits: bool
    memory: MemoryPlan
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    output_tokens_per_s: float | None = None
    output_tokens_per_s_per_chip: float | None = None
    power_w: float | None = None
    energy_j_per_token: float | None = None
    bound: dict[str, str] = field(default_factory=dict)
    bound_shares: dict[str, dict[str, float]] = field(default_factory=dict)
    efficiency: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    regime: dict[str, Any] = field(default_factory=dict)  # :func:`weight_regime`
    prefill_step: StepTiming | None = field(default=None, repr=False)
    decode_step: StepTiming | None = field(default=None, repr=False)
    run: RunCost | None = field(default=None, repr=False)  # the same numbers as length-1 arrays
    workload: Workload | None = field(default=None, repr=False)  # what was costed

    @property
    def tokens_per_s_per_user(self) -> float | None:
        return 1.0 / self.tpot_s if self.tpot_s else None

    def to_dataframe(self):
        """The per-op table of the prefill and decode steps (:func:`to_dataframe`)."""
        return to_dataframe(self)

    def to_dict(self) -> dict[str, Any]:
        m = self.memory
        return {
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "tokens_per_s_per_user": self.tokens_per_s_per_user,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_chip": self.output_tokens_per_s_per_chip,
            "e2e_s": self.e2e_s,
            "batch": self.batch,
            "fits": self.fits,
            "fit_reason": m.reason,
            "min_chips": m.min_chips or None,
            "memory_per_chip_bytes": {
                "weights": m.weights,
                "kv_cache": m.kv_cache,
                "activations": m.activations,
                "reserve": m.reserve,
                "capacity": m.capacity,
            },
            "weights_in": m.weights_level,
            "bound": self.bound,
            "bound_shares": self.bound_shares,
            "power_w": self.power_w,
            "energy_j_per_token": self.energy_j_per_token,
            "efficiency": self.efficiency,
            "notes": list(self.notes),
            "regime": self.regime or None,
            "config": self.config,
            "version": VERSION,
        }


def evaluate(w: Workload, batch: int) -> Result:
    """Cost ``batch`` sequences per replica on the workload's system (:func:`cost_run` on its one
    design row), with the prefill and mid-context decode steps' per-op costs for the report."""
    plan = w.plan(batch)
    regime = weight_regime(w, plan, batch)
    common = {
        "batch": batch,
        "workload": w,
        "memory": plan,
        "config": _config(w, batch),
        "efficiency": {
            "family": w.eff.family,
            "calibrated": w.eff.calibrated,
            **w.eff.provenance(),
        },
        "notes": tuple(_notes(w, plan, batch, regime)),
        "regime": regime,
    }
    if not plan.fits:
        return Result(fits=False, **common)
    run = cost_run(w, batch, design_row(w, plan)[None, :], plan)
    pre, mid = w.prefill(batch, plan), w.decode(batch, w.decode_contexts[1], plan)
    return Result(
        fits=True,
        ttft_s=float(run.ttft_s[0]),
        tpot_s=float(run.tpot_s[0]),
        e2e_s=float(run.e2e_s[0]),
        output_tokens_per_s=float(run.tokens_per_s[0]),
        output_tokens_per_s_per_chip=float(run.tokens_per_s_per_chip[0]),
        power_w=float(run.power_w[0]),
        energy_j_per_token=float(run.energy_j_per_token[0]),
        bound={"prefill": pre.bound, "decode": mid.bound},
        bound_shares={"prefill": pre.shares, "decode": mid.shares},
        prefill_step=pre,
        decode_step=mid,
        run=run,
        **common,
    )


def _config(w: Workload, batch: int) -> dict[str, Any]:
    return {
        "system": w.system.name,
        "model": w.model.name,
        "quant": w.quant.model_dump(),
        "parallelism": w.par.model_dump(),
        "input_len": w.input_len,
        "output_len": w.output_len,
        "batch_per_replica": batch,
        "gemm_precision": resolve_precision(w.system.chip, w.quant.gemm_precision),
        "engine": w.engine.name,
        "engine_assumed": w.engine.assumed,
    }


def _notes(w: Workload, plan: MemoryPlan, plan_batch: int, regime: dict) -> list[str]:
    notes = []
    chip = w.system.chip
    want = w.quant.gemm_precision
    got = resolve_precision(chip, want)
    if got != want:
        notes.append(
            f"{chip.name} has no {want} matrix support: GEMMs run at {got} "
            f"(weights stay {w.quant.weights} in memory)"
        )
    if not w.eff.calibrated:
        notes.append(
            f"EXTRAPOLATED: no measured data calibrates the {chip.family} family; "
            "efficiency factors are priors"
        )
    else:
        priors = [f for f, v in w.eff.provenance().items() if v["source"] != "fitted"]
        if priors:
            notes.append(f"{chip.family}: not fitted, priors used for {', '.join(priors)}")
    if got in ("fp4", "fp6") and w.eff.gemm_4bit.source != "fitted":
        notes.append(f"EXTRAPOLATED: no 4/6-bit GEMM measurements for {chip.family}; gemm_4bit "
                     f"is {w.eff.gemm_4bit.source} ({w.eff.gemm_4bit.value:.3g})")
    how = "assumed for the family" if w.engine.assumed else "as given"
    notes.append(f"engine: {w.engine.name} ({how}); --engine names another")
    if regime["weights"] in ("streaming", "spilled"):  # flagged (CLIFF:, STREAMING:, SPILLED:)
        notes.insert(0, _regime_note(plan, regime))
    if w.par.pp > 1:
        sh = w.shape("decode", plan_batch, 1, 0)
        notes.append(f"decode pipelines {sh.passes} micro-batches of {sh.batch}")
    return notes


# --------------------------------------------------------------------------- weight regimes


def largest_true(ok, hi: int) -> int:
    """Largest b in [1, ``hi``] with ok(b) true, ok monotone (true then false); 0 if ok(1) fails
    or ``hi`` < 1 (bisection)."""
    if hi < 1 or not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def resident_batch(w: Workload, hi: int) -> int:
    """The largest batch in [1, ``hi``] that fits with no weight streaming from a capacity tier
    (0 if none does). The KV cache grows with the batch and pushes weights down the levels, so
    the test is true up to one batch and false after it."""

    def ok(b: int) -> bool:
        plan = w.plan(b)
        return plan.fits and plan.weight_split[2] == 0

    return largest_true(ok, hi)


def _tokens_per_s(w: Workload, batch: int, plan: MemoryPlan) -> float:
    run = cost_run(w, batch, design_row(w, plan)[None, :], plan)
    return float(run.tokens_per_s[0])


def weight_regime(w: Workload, plan: MemoryPlan, batch: int) -> dict[str, Any]:
    """Where each step reads the weights from at ``batch``, and the cliff it sits past.

    ``weights``: ``"streaming"`` when a share streams from a capacity tier every step (CS-3
    MemoryX, GH200 LPDDR), ``"spilled"`` when addressable SRAM holds only part of them (the rest
    read from main memory), else ``"resident"``; None when the design does not fit. ``shares``:
    the share of the weights on each memory level, by name. ``cliff``: when batch 1 keeps every
    weight off the capacity tier and this batch does not (its KV cache pushed weights out), the
    largest batch that still keeps them (``resident_batch``), its output tokens/s and this
    batch's, and ``slowdown`` = resident / this (above 1: this batch is on the slow side of a
    cliff); None otherwise."""
    if not plan.fits:
        return {"weights": None, "shares": {}, "cliff": None}
    chip, split = w.system.chip, plan.weight_split
    levels = (chip.scratch, chip.main_memory, chip.capacity_tier)
    shares = {lvl.name: s for s, lvl in zip(split, levels, strict=True) if s > 0}
    kind = "streaming" if split[2] > 0 else "spilled" if 0 < split[0] < 1 else "resident"
    cliff = None
    if kind == "streaming" and (r := resident_batch(w, batch - 1)):
        rplan = w.plan(r)
        slow, fast = _tokens_per_s(w, batch, plan), _tokens_per_s(w, r, rplan)
        cliff = {
            "tier": chip.capacity_tier.name,  # type: ignore[union-attr]
            "streamed_share": split[2],
            "resident_batch": r,
            "resident_level": rplan.weights_level,
            "resident_tokens_per_s": fast,
            "tokens_per_s": slow,
            "slowdown": fast / slow,
        }
    return {"weights": kind, "shares": shares, "cliff": cliff}


def _regime_note(plan: MemoryPlan, regime: dict[str, Any]) -> str:
    """The placement note, marked ``CLIFF:`` (this batch streams weights a smaller batch kept
    resident, and is slower for it), ``STREAMING:`` or ``SPILLED:``."""
    kind, cliff = regime["weights"], regime["cliff"]
    if cliff is None:
        return f"{kind.upper()}: {plan.reason}"
    r, ratio = cliff["resident_batch"], cliff["slowdown"]
    versus = f"{ratio:.1f}x fewer" if ratio > 1 else f"{1 / ratio:.2f}x more"
    return (f"{'CLIFF' if ratio > 1 else 'STREAMING'}: past batch {r} the KV cache pushes "
            f"{100 * cliff['streamed_share']:.1f} % of the weights out to {cliff['tier']}, "
            f"streamed every step: {cliff['tokens_per_s']:,.0f} output tokens/s, {versus} than "
            f"batch {r} ({cliff['resident_tokens_per_s']:,.0f}), the largest that keeps them "
            f"all in {cliff['resident_level']}")


# --------------------------------------------------------------------------- DataFrames


def require_pandas(what: str):
    """pandas, or a one-line ConfigError naming the extra that installs it (pandas is optional:
    only ``to_dataframe`` needs it)."""
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError(f"{what} needs pandas: pip install 'xpusim[dataframe]'") from None
    return pd


def to_dataframe(r: Result):
    """One row per folded op of the prefill step and of the mid-context decode step (``phase``
    column), with its instances (``count``, layers folded into one row), ``seconds`` per step
    over all instances, the binding side, its ``share`` of the phase's op time, and the FLOPs,
    bytes (weights + KV + activations) and collective bytes per chip over all instances. Empty
    (with the columns) when the design does not fit."""
    pd = require_pandas("Result.to_dataframe()")
    rows = []
    for phase, step in (("prefill", r.prefill_step), ("decode", r.decode_step)):
        if step is None:
            continue
        rows += [{"phase": phase, **row} for row in step.op_table()]
    cols = ["phase", "name", "count", "seconds", "bound", "share", "flops", "bytes", "comm_bytes"]
    return pd.DataFrame(rows, columns=cols)
