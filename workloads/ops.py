"""The closed op vocabulary and the struct-of-arrays op graph of one step on one chip.

An :class:`OpGraph` row is one op as one chip of a replica executes it, for one stage of the
pipeline. Layers with identical shapes are folded into one row with a ``count`` (an 80-layer dense
model is ~12 rows, not ~1,000), which is what makes costing millions of design points cheap;
:meth:`OpGraph.expand` unfolds them per layer for timelines.

Units: FLOPs, bytes, elements. ``flops`` run on the matrix engine at ``precision``; ``vflops`` on
the
vector units (norms, activations, softmax, dequantization). ``weight_bytes``, ``kv_bytes`` and
``act_bytes`` are placed on a memory level by the kernels (weights by capacity: SRAM, HBM or a
streaming tier); ``comm_bytes`` is the per-chip payload of a collective over ``group`` chips.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum

import numpy as np

from arch.chip import PRECISIONS

__all__ = ["COLLECTIVES", "MATRIX_KINDS", "OpGraph", "OpKind", "precision_code", "single_op"]


class OpKind(IntEnum):
    GEMM = 0
    GROUPED_GEMM = 1  # MoE experts, MLA per-head absorbed projections
    ATTN_PREFILL = 2  # causal flash-style attention over new tokens (+ prior context)
    ATTN_DECODE = 3  # one query per sequence over the KV cache
    ELEMENTWISE = 4  # norms, RoPE, activation, residual
    EMBED = 5  # token embedding gather
    SAMPLING = 6  # softmax / top-k over the logits
    ALLREDUCE = 7
    ALLGATHER = 8
    REDUCESCATTER = 9
    ALLTOALL = 10
    P2P = 11  # pipeline send/recv


MATRIX_KINDS = (OpKind.GEMM, OpKind.GROUPED_GEMM, OpKind.ATTN_PREFILL, OpKind.ATTN_DECODE)
COLLECTIVES = (
    OpKind.ALLREDUCE,
    OpKind.ALLGATHER,
    OpKind.REDUCESCATTER,
    OpKind.ALLTOALL,
    OpKind.P2P,
)


def precision_code(name: str) -> int:
    return PRECISIONS.index(name)


_INT_COLS = ("kind", "count", "layer", "stage", "precision", "group")


@dataclass(frozen=True)
class OpGraph:
    """Struct of arrays, one row per (folded) op. All arrays have the same length."""

    names: tuple[str, ...]
    kind: np.ndarray
    count: np.ndarray
    layer: np.ndarray
    stage: np.ndarray
    precision: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    groups: np.ndarray
    flops: np.ndarray
    vflops: np.ndarray
    weight_bytes: np.ndarray
    kv_bytes: np.ndarray
    act_bytes: np.ndarray
    comm_bytes: np.ndarray
    group: np.ndarray
    kernels: np.ndarray
    meta: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_rows(cls, rows: list[dict], meta: dict) -> OpGraph:
        cols = {f.name: [] for f in fields(cls) if f.name not in ("names", "meta")}
        for r in rows:
            for c, values in cols.items():
                values.append(r.get(c, 0))
        arrays = {
            c: np.asarray(v, dtype=np.int64 if c in _INT_COLS else np.float64)
            for c, v in cols.items()
        }
        return cls(names=tuple(r["name"] for r in rows), meta=meta, **arrays)

    def total(self, column: str) -> float:
        """Sum of a per-instance column over the step (counts applied)."""
        return float(np.sum(getattr(self, column) * self.count))

    def expand(self) -> OpGraph:
        """One row per layer instance (count = 1), layers numbered consecutively."""
        idx = np.repeat(np.arange(len(self)), self.count)
        offsets = np.concatenate([np.arange(c) for c in self.count]) if len(self) else idx
        arrays = {
            f.name: getattr(self, f.name)[idx]
            for f in fields(self)
            if f.name not in ("names", "meta")
        }
        arrays["count"] = np.ones_like(idx)
        arrays["layer"] = np.where(self.layer[idx] >= 0, self.layer[idx] + offsets, -1)
        return OpGraph(names=tuple(self.names[i] for i in idx), meta=self.meta, **arrays)


def single_op(name: str, kind: OpKind, **cols: float) -> OpGraph:
    """A one-op graph (microbenchmarks: one GEMM, one collective, one attention kernel)."""
    row = {"name": name, "kind": int(kind), "count": 1, "kernels": 1.0, "group": 1, **cols}
    return OpGraph.from_rows([row], {"phase": "microbenchmark"})
