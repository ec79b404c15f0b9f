"""``predict``: one static batch on one system, prefill then decode, analytically.

TTFT is the prefill step of the whole batch (its LM head emits the first token). TPOT is the mean
decode step over the output, integrated with Simpson's rule over the growing context (exact for
the linear parts of the cost). ``e2e_s = TTFT + (output_len - 1) x TPOT``. ``--batch`` counts
sequences per replica; the system runs ``dp`` replicas.

Activation memory is the peak of one prefill *chunk*: engines prefill at most a token budget at a
time (``prefill_chunk_tokens``, default 8,192 — an assumption in the range of common engine
defaults, e.g. TensorRT-LLM's max_num_tokens), so activations do not grow with the whole batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from arch.base import ConfigError
from arch.chip import System
from arch.efficiency import FamilyEfficiency, efficiency_for
from arch.presets import parse_system
from kernels.pack import resolve_precision
from sim.step import StepTiming, analytic_step
from workloads.capacity import MemoryPlan, plan_memory
from workloads.graph import build_graph
from workloads.model import ModelSpec
from workloads.parallel import Parallelism
from workloads.presets import load_model
from workloads.quant import QuantSpec, get_quant

__all__ = ["Result", "Workload", "predict"]

VERSION = "0.1.0"


@dataclass(frozen=True)
class Workload:
    """Everything that defines one prediction, resolved to objects."""

    system: System
    model: ModelSpec
    quant: QuantSpec
    par: Parallelism
    input_len: int
    output_len: int
    eff: FamilyEfficiency
    routing_skew: float = 0.0
    prefill_chunk_tokens: int = 8192

    def graph(self, phase: str, batch: int, seq: int, context: int):
        return build_graph(
            self.model,
            phase=phase,
            batch=batch,
            seq_len=seq,
            context_len=context,
            parallelism=self.par,
            quant=self.quant,
            routing_skew=self.routing_skew,
        )

    def plan(self, batch: int) -> MemoryPlan:
        prefill = self.graph("prefill", batch, self.input_len, 0)
        tokens = batch * self.input_len
        act = float(prefill.act_bytes.max()) * min(1.0, self.prefill_chunk_tokens / tokens)
        return plan_memory(
            self.model,
            self.par,
            self.quant,
            self.system.chip,
            batch=batch,
            context_len=self.input_len + self.output_len,
            activation_bytes=act,
            reserve_fraction=self.eff.value("memory_reserve_fraction"),
        )

    def prefill(self, batch: int, plan: MemoryPlan) -> StepTiming:
        return analytic_step(
            self.graph("prefill", batch, self.input_len, 0), self.system, self.eff, plan
        )

    def decode(self, batch: int, context: int, plan: MemoryPlan) -> StepTiming:
        micro = math.ceil(batch / self.par.pp)
        return analytic_step(
            self.graph("decode", micro, 1, context),
            self.system,
            self.eff,
            plan,
            microbatches=min(self.par.pp, batch),
        )


@dataclass(frozen=True)
class Result:
    """Outcome of :func:`predict`. Timings are None when the design does not fit."""

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
    prefill_step: StepTiming | None = field(default=None, repr=False)
    decode_step: StepTiming | None = field(default=None, repr=False)

    @property
    def tokens_per_s_per_user(self) -> float | None:
        return 1.0 / self.tpot_s if self.tpot_s else None

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
            "config": self.config,
            "version": VERSION,
        }


def _simpson(f, a: int, b: int) -> float:
    """Mean of f over [a, b] by Simpson's rule (f is smooth and nearly linear in context)."""
    if b <= a:
        return f(a)
    return (f(a) + 4.0 * f((a + b) // 2) + f(b)) / 6.0


def _resolve(
    system, model, quant, tp, pp, ep, dp, input_len, output_len, routing_skew, efficiency_overrides
) -> Workload:
    system = parse_system(system) if isinstance(system, str) else system
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
    eff = efficiency_for(system.chip.family, overrides=efficiency_overrides)
    return Workload(
        system=system,
        model=model,
        quant=quant,
        par=par,
        input_len=input_len,
        output_len=output_len,
        eff=eff,
        routing_skew=routing_skew,
    )


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
    w = _resolve(
        system,
        model,
        quant,
        tp,
        pp,
        ep,
        dp,
        input_len,
        output_len,
        routing_skew,
        efficiency_overrides,
    )
    if batch == "max":
        from sim.batching import max_batch  # local: keeps import order one-way

        b = max_batch(w, tpot_slo_s=tpot_slo_s)
    elif isinstance(batch, int) and batch >= 1:
        b = batch
    else:
        raise ConfigError(f"--batch {batch!r}: give a positive integer or 'max'")
    return evaluate(w, b)


def evaluate(w: Workload, batch: int) -> Result:
    """Cost one batch size on a resolved workload."""
    plan = w.plan(batch)
    common = {
        "batch": batch,
        "memory": plan,
        "config": _config(w, batch),
        "efficiency": _efficiency(w),
        "notes": tuple(_notes(w, plan)),
    }
    if not plan.fits:
        return Result(fits=False, **common)
    pre = w.prefill(batch, plan)
    ctx0, ctx1 = w.input_len, w.input_len + w.output_len - 1
    steps = {}

    def step(c: int) -> StepTiming:
        if c not in steps:
            steps[c] = w.decode(batch, c, plan)
        return steps[c]

    tpot = _simpson(lambda c: step(c).total_s, ctx0, ctx1)
    micro = min(w.par.pp, batch)  # micro-batches per decode step, each through every stage
    dec_energy = _simpson(lambda c: step(c).energy_j * micro, ctx0, ctx1)
    e2e = pre.total_s + (w.output_len - 1) * tpot
    chips = w.par.chips_per_replica
    dynamic = pre.energy_j + (w.output_len - 1) * dec_energy
    chip = w.system.chip
    floor_w = max(chip.idle_w, w.eff.value("active_power_fraction") * chip.tdp_w)
    idle = chips * floor_w * e2e
    tokens = batch * w.output_len
    mid = step((ctx0 + ctx1) // 2)
    per_replica = tokens / e2e
    return Result(
        fits=True,
        ttft_s=pre.total_s,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tokens_per_s=per_replica * w.par.dp,
        output_tokens_per_s_per_chip=per_replica / chips,
        power_w=min((dynamic + idle) / (chips * e2e), chip.tdp_w),
        energy_j_per_token=(dynamic + idle) / tokens,
        bound={"prefill": pre.bound, "decode": mid.bound},
        bound_shares={"prefill": pre.shares, "decode": mid.shares},
        prefill_step=pre,
        decode_step=mid,
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
    }


def _efficiency(w: Workload) -> dict[str, Any]:
    return {"family": w.eff.family, "calibrated": w.eff.calibrated, **w.eff.provenance()}


def _notes(w: Workload, plan: MemoryPlan) -> list[str]:
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
    if got in ("fp4", "fp6"):
        notes.append("EXTRAPOLATED: no 4/6-bit GEMM measurements; gemm_8bit efficiency applied")
    if plan.reason and plan.fits:
        notes.append(plan.reason)
    if w.par.pp > 1:
        notes.append(f"decode pipelines {w.par.pp} micro-batches of ceil(batch/{w.par.pp})")
    return notes
