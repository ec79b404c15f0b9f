"""Paged KV cache of one replica: fixed-size blocks, per-request block tables (counts only).

The number of blocks comes from the core's capacity accounting (main memory less weights, reserve
and activations, over the KV bytes per token on the most loaded chip). Prefix caching is modelled
by a hit rate: that share of a prompt's tokens is found cached and skips prefill compute; cached
blocks are not counted twice (a request still holds its own blocks: sharing is not modelled, which
overstates KV use when many requests share a prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PagedKV"]


@dataclass
class PagedKV:
    blocks: int
    block_size: int = 16
    used: int = 0
    held: dict[int, int] = field(default_factory=dict)  # request id -> blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    @property
    def free(self) -> int:
        return self.blocks - self.used

    @property
    def utilization(self) -> float:
        return self.used / self.blocks if self.blocks else 0.0

    def can_grow(self, rid: int, tokens: int) -> bool:
        return self.blocks_for(tokens) - self.held.get(rid, 0) <= self.free

    def grow(self, rid: int, tokens: int) -> bool:
        """Make ``rid`` hold enough blocks for ``tokens``; False (and no change) if they lack."""
        need = self.blocks_for(tokens) - self.held.get(rid, 0)
        if need <= 0:
            return True
        if need > self.free:
            return False
        self.held[rid] = self.held.get(rid, 0) + need
        self.used += need
        return True

    def release(self, rid: int) -> int:
        n = self.held.pop(rid, 0)
        self.used -= n
        return n
