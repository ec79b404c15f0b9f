"""Step times for the serving simulation, memoized by batch shape.

A serving step is one forward pass of one replica over a *batch shape*: ``n_decode`` sequences
each generating one token (or verifying ``k`` speculative ones) at a mean context, plus
``prefill`` tokens from ``n_prefill`` prompts (whole prompts or chunks). ``AnalyticStepModel``
costs a shape with the analytic step (the same op graphs and Numba kernels as ``predict``) and
memoizes it by bucket: batch exact up to 32, then, like tokens and context, on a geometric grid of
2^(1/8) (about 9 % wide, so a bucket's centre is within 4.5 % of any shape in it). One event per
step, not per op.

A prefill step runs as one forward pass of up to the engine's token budget
(``Workload.prefill_chunk_tokens``, the same budget ``predict`` prefills with), fewer only where
the chip's memory holds fewer tokens' activations beside the weights and KV (SRAM chips): the
step's prompts share that pass and its one read of the weights. (The step model once took the
pass size from the memory plan it was given; serve gives the plan of *one* sequence, whose
prefill chunk is one mean prompt, so a step of eight 1,024-token prompts ran as eight passes and
read the weights eight times, and continuous and chunked serving ran 9-14 % below ``predict`` at
fixed lengths on one replica.)

A mixed step (chunked prefill with decodes riding along) is one fused forward: costed as the
prefill pass of the step's ``n_prefill`` prompt chunks with the ``n_decode`` decode rows added to
its GEMMs (weights are read once; ``prefill + n_decode`` tokens in ``n_prefill`` sequences at the
chunks' context), plus the decode attention over the decode rows' KV,
``T_dec(B, c) - T_dec(B, 1)``. (It was once costed as ``n_prefill + n_decode`` equal sequences of
``(prefill + n_decode) / (n_prefill + n_decode)`` tokens, which cut a chunk's causal attention by
the square of that split: one 8,000-token chunk beside 192 decodes became 193 sequences of 42
tokens.) This is an approximation of a fused kernel schedule, not a measured one.

Speculative decoding: verification is a decode step of ``k + 1`` tokens per sequence; drafting
costs ``k`` decode steps of the draft model on the same chips, or, for self-drafting heads (MTP),
``k`` times one extra layer (``T_dec / num_layers``). LoRA: ``N`` adapters of rank ``r`` on the
attention projections add, per step, the adapter weights of the distinct adapters in the batch
(expected ``N (1 - (1 - 1/N)^B)``) streamed from memory, plus their FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from arch.chip import ChipArrays
from sim.evaluate import Workload
from sim.step import analytic_step
from workloads.capacity import MemoryPlan, prefill_chunk
from workloads.model import ModelSpec
from workloads.ops import OpKind, precision_code, single_op

__all__ = ["AnalyticStepModel", "LoRA", "SpecDecode", "StepCost", "bucket"]

_GRID = 2 ** (1 / 8)


def bucket(x: float, exact_below: int = 32) -> int:
    """Representative of ``x`` on the memo grid: exact below ``exact_below``, else geometric."""
    if x <= exact_below:
        return max(round(x), 0)
    return round(_GRID ** round(math.log(x, _GRID)))


@dataclass(frozen=True)
class SpecDecode:
    """``k`` draft tokens per step; ``acceptance[i]``: P(token i+1 accepted | tokens <= i were).

    ``draft``: ``"mtp"`` for self-drafting heads, or a ModelSpec run on the same chips."""

    k: int
    acceptance: tuple[float, ...]
    draft: str | ModelSpec = "mtp"

    def __post_init__(self):
        if self.k < 1 or len(self.acceptance) != self.k:
            raise ValueError(
                "speculative decoding: give k >= 1 and one acceptance rate per position"
            )
        if not all(0.0 <= a <= 1.0 for a in self.acceptance):
            raise ValueError("speculative decoding: acceptance rates must be in [0, 1]")

    def expected_tokens(self) -> float:
        """Tokens emitted per verification step: 1 + sum_i prod_{j<=i} a_j."""
        out, p = 1.0, 1.0
        for a in self.acceptance:
            p *= a
            out += p
        return out


@dataclass(frozen=True)
class LoRA:
    adapters: int
    rank: int

    def distinct(self, batch: int) -> float:
        n = self.adapters
        return n * (1.0 - (1.0 - 1.0 / n) ** batch) if n > 0 else 0.0


@dataclass(frozen=True)
class StepCost:
    seconds: float
    energy_j: float


@dataclass
class AnalyticStepModel:
    """Memoized analytic step costs of one replica of ``w`` (:meth:`Workload.step`, the one
    evaluation path). ``exact``: cost every shape as given, without the memo grid (tests and
    cross-checks against ``predict``)."""

    w: Workload
    plan: MemoryPlan | None = None
    spec: SpecDecode | None = None
    lora: LoRA | None = None
    exact: bool = False
    draft: AnalyticStepModel | None = None
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.plan is not None:
            self.plan = replace(self.plan, prefill_chunk_tokens=self.pass_tokens())
        if self.spec and not isinstance(self.spec.draft, str):
            self.draft = AnalyticStepModel(replace(self.w, model=self.spec.draft), self.plan,
                                           exact=self.exact)  # fmt: skip

    @property
    def model(self) -> ModelSpec:
        return self.w.model

    def pass_tokens(self) -> int:
        """Tokens one prefill pass of a serving step holds: the engine's budget
        (``w.prefill_chunk_tokens``), or as many as the chip's memory holds activations for
        beside the plan's weights and KV (:func:`workloads.capacity.prefill_chunk` for one
        prompt of the budget's length)."""
        w, plan = self.w, self.plan
        assert plan is not None
        chunk, _ = prefill_chunk(w.model, w.par, ChipArrays.of(w.system.chip),
                                 tokens=w.prefill_chunk_tokens, sequences=1,
                                 weights=plan.weights, kv=plan.kv_cache,
                                 reserve_fraction=w.eff.value("memory_reserve_fraction"),
                                 max_tokens=w.prefill_chunk_tokens)  # fmt: skip
        return int(chunk[0])

    def _b(self, x: float, exact_below: int = 32) -> int:
        return max(round(x), 0) if self.exact else bucket(x, exact_below)

    # -- primitive passes (memoized) ------------------------------------------------------------
    def _timing(self, phase: str, batch: int, seq: int, ctx: int) -> StepCost:
        key = (phase, batch, seq, ctx)
        hit = self._memo.get(key)
        if hit is None:
            t = self.w.step(phase, batch, seq=seq, context=ctx, plan=self.plan)  # type: ignore[arg-type]
            self._memo[key] = hit = StepCost(t.total_s, t.energy_j)
        return hit

    def decode(self, batch: int, ctx: float, seq: int = 1) -> StepCost:
        return self._timing("decode", self._b(batch), seq, max(self._b(ctx), 1))

    def prefill(self, tokens: float, n_seqs: int, ctx: float = 0.0) -> StepCost:
        n = max(self._b(n_seqs, 8), 1)
        seq = max(self._b(tokens / n), 1)
        return self._timing("prefill", n, seq, self._b(ctx))

    # -- one serving step -----------------------------------------------------------------------
    def step(
        self, n_decode: int, decode_ctx: float, prefill: int = 0, n_prefill: int = 0,
        prefill_ctx: float = 0.0,
    ) -> StepCost:  # fmt: skip
        """Cost of one step; ``decode_ctx`` is the mean context of the decode sequences."""
        parts: list[StepCost] = []
        if n_decode and not prefill:
            parts.append(self._decode_part(n_decode, decode_ctx))
        elif prefill:
            parts.append(self.prefill(prefill + n_decode, max(n_prefill, 1), prefill_ctx))
            if n_decode:
                a, b = self.decode(n_decode, decode_ctx), self.decode(n_decode, 1)
                parts.append(
                    StepCost(max(a.seconds - b.seconds, 0.0), max(a.energy_j - b.energy_j, 0.0))
                )
        if self.lora and (n_decode or prefill):
            parts.append(self._lora(n_decode + n_prefill, n_decode + prefill))
        return StepCost(sum(p.seconds for p in parts), sum(p.energy_j for p in parts))

    def _decode_part(self, n: int, ctx: float) -> StepCost:
        if not self.spec:
            return self.decode(n, ctx)
        k = self.spec.k
        verify = self.decode(n, ctx, seq=k + 1)
        if self.draft is not None:
            one = self.draft.decode(n, ctx)
            draft = StepCost(k * one.seconds, k * one.energy_j)
        else:  # self-drafting head: about one extra layer per draft token
            one = self.decode(n, ctx)
            f = k / self.model.num_layers
            draft = StepCost(f * one.seconds, f * one.energy_j)
        return StepCost(verify.seconds + draft.seconds, verify.energy_j + draft.energy_j)

    def _lora(self, sequences: int, tokens: int) -> StepCost:
        """Adapter GEMMs as one op per pipeline stage, costed by the kernels on this replica's
        design (precision fallback, GEMM efficiency, the level weights are read from): the
        distinct adapters' A/B weights streamed, ``2 x tokens x r x dims`` FLOPs. Launches are
        not charged (one fused multi-adapter kernel per step is assumed)."""
        w, lo = self.w, self.lora
        m = w.model
        assert lo is not None
        a = m.attention
        heads_d = getattr(a, "num_heads", 1) * getattr(a, "head_dim", m.hidden_size)
        kv_d = getattr(a, "num_kv_heads", 1) * getattr(a, "head_dim", m.hidden_size)
        dims = (m.hidden_size + heads_d) * 2 + (m.hidden_size + kv_d) * 2  # q, o, k, v: in + out
        layers = m.num_layers / w.par.pp  # per stage, on average
        per_adapter = lo.rank * dims * layers * w.quant.w.bytes_per_element / w.par.tp
        g = single_op("lora", OpKind.GEMM, m=float(tokens), n=dims / w.par.tp, k=float(lo.rank),
                      groups=1, precision=precision_code(w.quant.gemm_precision),
                      flops=2.0 * tokens * lo.rank * dims * layers / w.par.tp,
                      weight_bytes=lo.distinct(sequences) * per_adapter, kernels=0.0)  # fmt: skip
        t = analytic_step(g, w.system, w.eff, self.plan)
        # every stage runs its own adapters once per step; every chip of a stage its shard
        return StepCost(t.total_s * w.par.pp, t.energy_j * w.par.chips_per_replica)

    @property
    def cached_shapes(self) -> int:
        return len(self._memo)
