"""Batch schedulers: each decides, before every step of one replica, what that step runs.

All share one abstract base and pass one contract suite (``tests/sim/test_scheduler_contract.py``):
tokens in = tokens out, KV never over capacity, no request starves, seeded determinism. Adding a
scheduler is one class here plus one line in :data:`SCHEDULERS`.

* ``static``: a batch is formed from the queue, prefilled in one step and decoded until every
  member finishes; KV for the whole input + output is reserved at admission (no preemption).
* ``continuous``: iteration-level batching (Orca, vLLM v0): a step either prefills newly admitted
  prompts (up to ``max_tokens`` tokens) or decodes every running sequence.
* ``chunked``: chunked prefill (Sarathi-Serve, vLLM v1): every step decodes every running sequence
  and fills the rest of a ``max_tokens`` budget with prompt chunks.
* ``prefill_only`` / ``decode_only``: the two pools of disaggregated serving (DistServe,
  Splitwise);
  ``simulate_serving(..., scheduler="disaggregated")`` wires them with the KV transfer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from sim.serving import Replica, Request

__all__ = ["SCHEDULERS", "Batch", "Scheduler"]


@dataclass
class Batch:
    prefill: list[tuple[Request, int]] = field(default_factory=list)
    decode: list[Request] = field(default_factory=list)

    @property
    def prefill_tokens(self) -> int:
        return sum(n for _, n in self.prefill)

    def __bool__(self) -> bool:
        return bool(self.prefill or self.decode)


class Scheduler(ABC):
    name: ClassVar[str]
    reserve_full: ClassVar[bool] = False  # reserve KV for input + output at admission
    chunks: ClassVar[bool] = False  # may split a prompt across steps

    def __init__(self, max_batch: int = 256, max_tokens: int = 8192):
        if max_batch < 1 or max_tokens < 1:
            raise ValueError("scheduler: max_batch and max_tokens must be >= 1")
        self.max_batch, self.max_tokens = max_batch, max_tokens

    @abstractmethod
    def plan(self, r: Replica) -> Batch | None:
        """What the next step of replica ``r`` runs; None when there is nothing to do."""

    # -- shared admission ---------------------------------------------------------------------
    def _kv_tokens(self, req: Request) -> int:
        return req.input_len + req.output_len if self.reserve_full else req.context + 1

    def admit(self, r: Replica, req: Request) -> bool:
        """Reserve KV for ``req``'s prompt (or whole lifetime); False if the cache is full."""
        return r.kv.grow(req.rid, self._kv_tokens(req))

    def _admit_prompts(self, r: Replica, budget: int, slots: int) -> list[tuple[Request, int]]:
        out: list[tuple[Request, int]] = []
        while r.waiting and slots > 0 and budget > 0:
            req = r.waiting[0]
            n = min(req.prompt_left, budget) if self.chunks else req.prompt_left
            if (out and n > budget) or not self.admit(r, req):
                break
            r.waiting.popleft()
            r.mark_scheduled(req)
            out.append((req, n))
            budget -= n
            slots -= 1
        return out


class StaticBatching(Scheduler):
    name = "static"
    reserve_full = True

    def plan(self, r):
        if r.running:
            return Batch(decode=list(r.running))
        chosen = self._admit_prompts(r, budget=1 << 60, slots=self.max_batch)
        return Batch(prefill=chosen) if chosen else None


class ContinuousBatching(Scheduler):
    name = "continuous"

    def plan(self, r):
        slots = self.max_batch - len(r.running)
        chosen = self._admit_prompts(r, self.max_tokens, slots)
        if chosen:
            return Batch(prefill=chosen)
        return Batch(decode=list(r.running)) if r.running else None


class ChunkedPrefill(Scheduler):
    name = "chunked"
    chunks = True

    def plan(self, r):
        decode = list(r.running)
        budget = self.max_tokens - len(decode)
        chunks: list[tuple[Request, int]] = []
        for req in r.prefilling:  # continue partially prefilled prompts first (FCFS)
            if budget <= 0:
                break
            n = min(req.prompt_left, budget)
            chunks.append((req, n))
            budget -= n
        slots = self.max_batch - len(decode) - len(r.prefilling)
        chunks += self._admit_prompts(r, budget, slots)
        batch = Batch(prefill=chunks, decode=decode)
        return batch or None


class PrefillOnly(Scheduler):
    """Prefill pool of disaggregated serving: whole prompts, up to ``max_tokens`` per step."""

    name = "prefill_only"

    def plan(self, r):
        chosen = self._admit_prompts(r, self.max_tokens, self.max_batch)
        return Batch(prefill=chosen) if chosen else None


class DecodeOnly(Scheduler):
    """Decode pool: admits prefilled requests (their KV arrived) and decodes every one."""

    name = "decode_only"

    def plan(self, r):
        while r.waiting and len(r.running) < self.max_batch:
            req = r.waiting[0]
            if not self.admit(r, req):
                break
            r.waiting.popleft()
            r.mark_scheduled(req)
            r.running.append(req)
        return Batch(decode=list(r.running)) if r.running else None


SCHEDULERS: dict[str, type[Scheduler]] = {
    s.name: s
    for s in (StaticBatching, ContinuousBatching, ChunkedPrefill, PrefillOnly, DecodeOnly)
}
