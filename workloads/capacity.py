"""Memory per chip: weights, KV cache, activations, runtime reserve; where the weights live.

A design that does not fit is reported with its reason, never costed as if it did.
Embeddings, the LM head and norms are kept in 16-bit (as FP8/FP4 checkpoints ship them); all other
weights use the weight format of the :class:`QuantSpec`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from arch.chip import Chip, ChipArrays, MemoryLevel
from workloads.model import ModelSpec, attention_weights, mlp_weights
from workloads.parallel import Parallelism
from workloads.quant import QuantSpec

__all__ = [
    "LOGIT_BYTES",
    "WEIGHT_PLACES",
    "MemoryPlan",
    "activation_bytes_per_token",
    "kv_bytes_per_chip",
    "place_weights",
    "plan_memory",
    "prefill_chunk",
    "stage_of_layers",
    "stage_weight_bytes",
    "weight_bytes_per_chip",
]

HALF = 2.0
ACT_BYTES = 2.0  # activations between ops are 16-bit (as workloads.graph.IO_BYTES)
LOGIT_BYTES = 4.0  # logits of the last token of each sequence, fp32 for sampling
# the levels weights are placed on, fastest first (columns of place_weights)
WEIGHT_PLACES = ("scratch", "main", "capacity")


def _layer_weight_bytes(model: ModelSpec, layer: int, par: Parallelism, q: QuantSpec) -> float:
    w = q.w.bytes_per_element
    attn = sum(x.params for x in attention_weights(model)) / par.tp
    norms = model.norm_params_per_layer() * HALF
    if not model.is_moe_layer(layer):
        return (attn + sum(x.params for x in mlp_weights(model, layer)) / par.tp) * w + norms
    moe = model.moe
    assert moe is not None
    per_expert = sum(x.params for x in mlp_weights(model, layer) if x.name.startswith("experts"))
    per_expert /= moe.num_experts
    experts = per_expert * moe.num_experts / par.ep / par.expert_tp
    shared = sum(x.params for x in mlp_weights(model, layer) if x.name.startswith("shared"))
    router = model.hidden_size * moe.num_experts
    return (attn + experts + shared / par.expert_tp) * w + router * HALF + norms


def _layer_bytes(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> list[float]:
    """Resident weight bytes of each layer on one chip (computed once per kind of layer)."""
    kinds: dict[bool, float] = {}
    out = []
    for layer in range(model.num_layers):
        moe = model.is_moe_layer(layer)
        if moe not in kinds:
            kinds[moe] = _layer_weight_bytes(model, layer, par, quant)
        out.append(kinds[moe])
    return out


def _end_bytes(model: ModelSpec, par: Parallelism) -> tuple[float, float]:
    """(first stage's embedding table, last stage's LM head and final norm) bytes per chip, in
    16-bit; a tied head shares the table when one stage holds both."""
    emb = model.vocab_size * model.hidden_size * HALF / par.tp
    head = 0.0 if model.tied_embeddings and par.pp == 1 else emb
    return emb, head + model.hidden_size * HALF


def stage_of_layers(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> list[int]:
    """Pipeline stage of each layer: contiguous blocks with the least bytes on the most loaded
    stage, the embedding table counted on the first stage and the LM head on the last (the one
    layer-to-stage split; the op graph and the memory plan both use it). Every stage keeps at
    least one layer."""
    if par.pp == 1:
        return [0] * model.num_layers
    split = memo_by_identity(_SPLITS, (model,), (par, quant), lambda: _split(model, par, quant))
    return list(split)


_SPLITS: dict = {}


def _split(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> tuple:
    first, last = _end_bytes(model, par)
    return _min_max_split(tuple(_layer_bytes(model, par, quant)), first, last, par.pp)


@lru_cache(maxsize=512)
def _min_max_split(sizes: tuple[float, ...], first: float, last: float, pp: int) -> tuple:
    """The contiguous split of ``sizes`` into ``pp`` non-empty stages whose heaviest stage
    (``first`` added to stage 0, ``last`` to the final one) is lightest: dynamic programming
    over the stage boundaries, vectorized over the previous boundary (cached: a model and its
    parallelism have one answer)."""
    n = len(sizes)
    pre = np.concatenate([[0.0], np.cumsum(sizes)])
    best = np.full((pp + 1, n + 1), np.inf)
    prev = np.zeros((pp + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, pp + 1):
        ends = [n] if k == pp else range(k, n - (pp - k) + 1)
        for j in ends:
            i = np.arange(k - 1, j)
            load = pre[j] - pre[i] + (first if k == 1 else 0.0) + (last if k == pp else 0.0)
            cost = np.maximum(best[k - 1, i], load)
            t = int(np.argmin(cost))
            best[k, j], prev[k, j] = cost[t], i[t]
    out, j = [0] * n, n
    for k in range(pp, 0, -1):
        i = int(prev[k, j])
        out[i:j] = [k - 1] * (j - i)
        j = i
    return tuple(out)


def _stage_layers(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> list[list[int]]:
    stages: list[list[int]] = [[] for _ in range(par.pp)]
    for layer, stage in enumerate(stage_of_layers(model, par, quant)):
        stages[stage].append(layer)
    return stages


def stage_weight_bytes(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> list[float]:
    """Resident weight bytes of one chip of each pipeline stage (memoized; a fresh list)."""
    stages = memo_by_identity(_STAGES, (model,), (par, quant),
                              lambda: tuple(_stage_weight_bytes(model, par, quant)))  # fmt: skip
    return list(stages)


_STAGES: dict = {}


def _stage_weight_bytes(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> list[float]:
    sizes = _layer_bytes(model, par, quant)
    per_stage = [sum(sizes[i] for i in s) for s in _stage_layers(model, par, quant)]
    first, last = _end_bytes(model, par)
    per_stage[0] += first
    per_stage[-1] += last
    return per_stage


def memo_by_identity(cache: dict, objs: tuple, key: tuple, compute):
    """``compute()`` memoized on the identity of ``objs`` (frozen but unhashable presets: a
    model, a system, a chip) and the hashable ``key``. The entry holds ``objs``, so an id is
    never reused while its entry lives; the cache is emptied when it reaches 4,096 entries."""
    k = (tuple(map(id, objs)), key)
    hit = cache.get(k)
    if hit is not None and all(a is b for a, b in zip(hit[0], objs, strict=True)):
        return hit[1]
    value = compute()
    if len(cache) >= 4096:
        cache.clear()
    cache[k] = (objs, value)
    return value


def weight_bytes_per_chip(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> float:
    """Resident weight bytes on the most loaded chip (memoized: independent of the batch)."""
    return max(stage_weight_bytes(model, par, quant))


def kv_bytes_per_chip(
    model: ModelSpec, par: Parallelism, quant: QuantSpec, *, batch: int, context_len: int
) -> float:
    """KV cache for ``batch`` sequences of ``context_len`` tokens on the most loaded chip."""
    elems = model.kv_elements_per_token_per_layer()
    a = model.attention
    if hasattr(a, "num_kv_heads"):
        elems = elems * par.kv_heads_per_chip(model) // a.num_kv_heads  # type: ignore[union-attr]
    per_layer = [
        batch
        * min(context_len, model.sliding_window if model.is_sliding_layer(i) else context_len)
        * elems
        * quant.kv.bytes_per_element
        for i in range(model.num_layers)
    ]
    return max(sum(per_layer[i] for i in s) for s in _stage_layers(model, par, quant))


@dataclass(frozen=True)
class MemoryPlan:
    """Per-chip bytes and the verdict. ``weight_split``: the share of the weights on each of
    :data:`WEIGHT_PLACES` (scratch SRAM, main memory, capacity tier); ``weights_in`` and
    ``weights_level``: the level holding the largest share."""

    weights: float
    kv_cache: float
    activations: float
    reserve: float
    capacity: float
    fits: bool
    weights_in: Literal["scratch", "main", "capacity"]
    weights_level: str
    reason: str = ""
    min_chips: int = 0
    prefill_chunk_tokens: int = 0  # tokens per prefill pass whose activations fit (0: unset)
    weight_split: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def kv_budget_bytes(self) -> float:
        """Main memory per chip left for the KV cache: capacity less reserve and activations,
        and less the weights when they live there (the budget :func:`place_weights` checks)."""
        free = self.capacity - self.reserve - self.activations
        return free - self.weights * self.weight_split[1]


def activation_bytes_per_token(model: ModelSpec, par: Parallelism) -> float:
    """Activation bytes live at once per token on one chip during a forward pass: the residual
    stream going into and out of a block (hidden, replicated over the TP group) plus the widest
    intermediate a column-parallel GEMM writes (QKV, the gated MLP up-projection, the top-k
    experts' up-projections of a token), sharded over TP. Attention is flash-style (no score
    matrix); other buffers are reused op to op (memoized per model and parallelism)."""
    return memo_by_identity(_ACT, (model,), (par,), lambda: _activation_bytes(model, par))


_ACT: dict = {}


def _activation_bytes(model: ModelSpec, par: Parallelism) -> float:
    layers = {0, model.num_layers - 1} | ({model.moe.first_dense_layers} if model.moe else set())
    weights = [*attention_weights(model)]
    for layer in layers:
        weights += mlp_weights(model, layer, active=True)
    h = model.hidden_size
    widest = max((w.n * w.copies for w in weights if w.n != h), default=h) / par.tp
    return ACT_BYTES * (2 * h + widest)


def prefill_chunk(
    model: ModelSpec,
    par: Parallelism,
    chips: ChipArrays,
    *,
    tokens: int,
    sequences: int,
    weights: float,
    kv: float,
    reserve_fraction: float,
    max_tokens: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens per prefill pass, activation bytes per chip) of each chip for ``tokens`` prompt
    tokens of ``sequences`` equal prompts: at most ``max_tokens`` (the engine's token budget),
    and no more than the memory left beside the weights and the KV cache holds (SRAM chips
    prefill in small chunks). A pass holds whole prompts (each with its logits) when one fits,
    else one prompt's chunk; it always holds at least one token, fitting or not (the plan then
    says so). Where the weights spill to a capacity tier anyway, the engine keeps its full token
    budget: a smaller chunk would only stream the spilled weights once more per pass."""
    per_token = activation_bytes_per_token(model, par)
    logits = model.vocab_size / par.tp * LOGIT_BYTES
    seq = max(1, tokens // max(sequences, 1))
    budget = min(max_tokens, tokens)
    split = place_weights(chips, weights=weights, kv=kv, activations=0.0,
                          reserve_fraction=reserve_fraction)  # fmt: skip
    in_main = np.where(split.sum(axis=1) > 0, split[:, 1], 1.0)  # nothing fits: all in main
    free = chips.main_capacity * (1 - reserve_fraction) - kv - weights * in_main
    free = np.where(split[:, 2] > 0, 1e30, free)  # no limit (finite: floor division of inf is nan)
    fused = (chips.activations_on_chip > 0) & (chips.scratch_capacity > 0)
    free = np.where(fused, chips.scratch_capacity * (1 - reserve_fraction), free)  # in SRAM
    per = np.minimum(min(sequences, budget // seq), free // (seq * per_token + logits))
    part = np.maximum(1, np.minimum(budget, (free - logits) // per_token))
    whole = per >= 1  # whole prompts per pass
    chunk = np.where(whole, per * seq, part)
    act = np.where(whole, per * (seq * per_token + logits), part * per_token + logits)
    return chunk.astype(np.int64), act


def place_weights(
    chips: ChipArrays,
    *,
    weights: float,
    kv: float,
    activations: float,
    reserve_fraction: float,
) -> np.ndarray:
    """The placement rule, for many chips at once: the share of the weights on each level of
    :data:`WEIGHT_PLACES`, ``[n, 3]``; a chip that cannot hold them gets a row of zeros.

    Weights fill the fastest level first: addressable SRAM (less the reserve), then main memory
    beside the KV cache and activations (less the reserve), and only what neither holds streams
    from a capacity tier every step. KV cache and activations live in main memory. On a chip
    that fuses layers (dataflow, ``Chip.fused_layers``) the SRAM holds the streaming pipeline's
    activations and buffers (they must fit there, and take no main memory), and weights are
    served from main memory (SN40L: "actively used models are cached and served from high
    bandwidth memory", DAC 2025 talk).
    """
    usable = 1 - reserve_fraction
    fused = (chips.activations_on_chip > 0) & (chips.scratch_capacity > 0)
    free = chips.main_capacity * usable - kv - np.where(fused, 0.0, activations)
    for_weights = np.where(fused, 0.0, chips.scratch_capacity)
    sram = np.minimum(weights, for_weights * usable)
    main = np.clip(np.minimum(weights - sram, free), 0.0, None)
    tier = np.clip(np.minimum(weights - sram - main, chips.tier_capacity), 0.0, None)
    ok = (free >= 0) & (sram + main + tier >= weights * (1 - 1e-12))
    ok &= ~fused | (activations <= chips.scratch_capacity * usable)  # fused: they sit in SRAM
    split = np.stack([sram, main, tier], axis=1) / max(weights, 1e-30)
    return np.where(ok[:, None], split, 0.0)


def plan_memory(
    model: ModelSpec,
    par: Parallelism,
    quant: QuantSpec,
    chip: Chip,
    *,
    batch: int,
    context_len: int,
    activation_bytes: float,
    reserve_fraction: float,
    weights: float | None = None,
    kv: float | None = None,
) -> MemoryPlan:
    """Bytes per chip and where the weights live (:func:`place_weights`, for one chip);
    ``weights`` and ``kv``: the per-chip bytes when the caller has them already."""
    if weights is None:
        weights = weight_bytes_per_chip(model, par, quant)
    if kv is None:
        kv = kv_bytes_per_chip(model, par, quant, batch=batch, context_len=context_len)
    main = chip.main_memory
    reserve = reserve_fraction * main.capacity_bytes
    common = {
        "weights": weights,
        "kv_cache": kv,
        "activations": activation_bytes,
        "reserve": reserve,
        "capacity": main.capacity_bytes,
    }
    split = place_weights(
        ChipArrays.of(chip),
        weights=weights,
        kv=kv,
        activations=activation_bytes,
        reserve_fraction=reserve_fraction,
    )[0]
    if split.sum() == 0:
        return MemoryPlan(
            **common,
            fits=False,
            weights_in="main",
            weights_level=main.name,
            reason=_why(weights, kv, activation_bytes, reserve, main),
            min_chips=_min_chips(weights, kv, activation_bytes, main, reserve_fraction, par.chips),
        )
    levels = (chip.scratch, main, chip.capacity_tier)
    top = int(np.argmax(split))
    where = WEIGHT_PLACES[top]
    shares = (float(split[0]), float(split[1]), float(split[2]))
    return MemoryPlan(
        **common,
        fits=True,
        weights_in=where,
        weights_level=levels[top].name,
        reason=_split_note(split, levels),
        weight_split=shares,
    )  # type: ignore[arg-type]


def _split_note(split: np.ndarray, levels: tuple) -> str:
    """What the output says about a placement that is not all in one level."""
    notes = []
    if 0 < split[0] < 1:
        rest = levels[1].name if split[1] else levels[2].name
        notes.append(f"{levels[0].name} holds {100 * split[0]:.1f} % of the weights "
                     f"(the rest in {rest})")  # fmt: skip
    if split[2] > 0:
        notes.append(f"{100 * split[2]:.1f} % of the weights stream from {levels[2].name} "
                     "every step (nothing faster holds them)")  # fmt: skip
    return "; ".join(notes)


def _why(weights: float, kv: float, act: float, reserve: float, main: MemoryLevel) -> str:
    gb = 1e9
    return (
        f"needs {(weights + kv + act + reserve) / gb:.1f} GB per chip (weights "
        f"{weights / gb:.1f}, KV {kv / gb:.1f}, activations {act / gb:.2f}, reserve "
        f"{reserve / gb:.1f}) but {main.name} holds {main.capacity_bytes / gb:.1f} GB"
    )


def _min_chips(
    weights: float, kv: float, act: float, main: MemoryLevel, reserve_fraction: float, chips: int
) -> int:
    """Smallest chip count whose aggregate memory holds the sharded model and KV (a lower bound:
    assumes weights and KV shard evenly over the added chips)."""
    usable = main.capacity_bytes * (1 - reserve_fraction) - act
    if usable <= 0:
        return 0
    return math.ceil(chips * (weights + kv) / usable)
