"""Validation rows of MoE deployments (``data/measurements.csv``), expressed where an honest
prediction exists, through the product's own MoE costing (busiest-rank experts, node-limited
all-to-all, two-batch overlap).

* **GT204** (DeepSeek-V3/R1 production decode on H800, tokens/s per node): decode-only
  throughput of the published attention-DP / expert-parallel deployment at the row's average KV
  length, at the largest batch per GPU whose step meets the published per-user speed. The
  assumptions are stated in the case.
* **MLPerf Server TTFT** (GT017 Mixtral on H100, GT049 DeepSeek-R1 on B200): unexpressible
  (reason returned): a mean TTFT under Poisson load at a target QPS needs the data set's input
  length distribution (not in the data) and the serving simulation; a max-throughput
  prediction does not give it.
"""

from __future__ import annotations

import re

from arch.base import ConfigError
from arch.presets import load_chip
from explore.validation.case import Case, Overrides
from sim.evaluate import Workload, resolve_workload
from sim.step import analytic_step
from workloads.graph import build_graph

__all__ = ["is_moe_row", "moe_case"]

_MOE_MODELS = [
    (r"DeepSeek-R1", "deepseek-r1"),
    (r"DeepSeek-V3", "deepseek-v3"),
    (r"Mixtral", "mixtral-8x7b"),
]
_METRICS = ("ttft_ms_mean", "tpot_ms_mean", "decode_throughput_tokens_per_s_per_node")

# GT204 deployment (DeepSeek's inference-system overview, the row's source): decode units of
# 18 nodes, EP144 / DP144, 32 redundant experts so each GPU holds 2 routed experts; average
# output speed 20-22 tokens/s per user (the same overview's statistics)
_USER_TOKENS_PER_S = 21.0
_NODE_GPUS = 8
_EP = 128  # 256 experts, 2 per GPU, as EP144 with its 32 replicas gives; no redundant experts


def is_moe_row(row: dict[str, str]) -> bool:
    """Rows this module answers: an MoE model and one of its metrics."""
    return row["metric"] in _METRICS and any(re.search(p, row["model"]) for p, _ in _MOE_MODELS)


def moe_case(row: dict[str, str], chip: str, model: str | None) -> Case | str:
    """A :class:`Case` for an MoE row, or the reason it cannot be expressed yet."""
    model = model or next((m for p, m in _MOE_MODELS if re.search(p, row["model"])), None)
    metric = row["metric"]
    if metric in ("ttft_ms_mean", "tpot_ms_mean"):
        return (
            "MLPerf Server under Poisson load at a target QPS: the mean TTFT/TPOT needs the data "
            "set's input/output length distribution (not in the validation data) and the "
            "serving simulation at that load; a max-throughput prediction at the same chip "
            "count does not give it"
        )
    if metric == "decode_throughput_tokens_per_s_per_node" and model:
        return _production_decode_case(row, chip, model)
    return f"metric {metric} of {row['model']!r} not expressible yet"


def _case(row, chip: str, describe: str, pred, assumption: str, cls: str) -> Case:
    return Case(id=row["id"], family=load_chip(chip).family, chip=chip, metric=row["metric"],
                cls=cls, measured=float(row["value"]), unit=row["unit"], describe=describe,
                predict=pred, assumption=assumption)  # fmt: skip


# -- production decode (GT204) -------------------------------------------------------------------
def _context(row) -> int | None:
    hit = re.search(r"(\d+)\s*tokens", row["input_len"])
    return int(hit.group(1)) if hit else None


def _decode_seconds(w: Workload, batch: int, context: int) -> float | None:
    """One decode step of ``batch`` sequences per replica with two-batch overlap, or None when
    the batch does not fit."""
    plan = w.plan(batch)
    if not plan.fits:
        return None
    g = build_graph(w.model, phase="decode", batch=batch, seq_len=1, context_len=context,
                    parallelism=w.par, quant=w.quant, routing_skew=w.routing_skew,
                    moe_overlap=True)  # fmt: skip
    return analytic_step(g, w.system, w.eff, plan).total_s


def _largest_batch(w: Workload, context: int, step_limit_s: float) -> tuple[int, float]:
    """The largest batch per replica that fits and whose step meets ``step_limit_s`` (the step
    time grows with the batch), by bisection; (batch, step seconds)."""
    lo, hi = 0, 1
    while True:
        t = _decode_seconds(w, hi, context)
        if t is None or t > step_limit_s or hi >= 4096:
            break
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        t = _decode_seconds(w, mid, context)
        lo, hi = (mid, hi) if t is not None and t <= step_limit_s else (lo, mid)
    if lo == 0:
        raise ConfigError("no decode batch meets the per-user speed")
    return lo, _decode_seconds(w, lo, context) or 0.0


def _production_decode_case(row, chip: str, model: str) -> Case | str:
    context = _context(row)
    if context is None or "EP" not in row["parallelism"]:
        return "average context or expert-parallel deployment not given"
    fam = load_chip(chip).family
    limit = 1.0 / _USER_TOKENS_PER_S

    def pred(ov: Overrides) -> float:  # family overrides: the case has no engine key
        w = resolve_workload(system=f"{chip}:{_EP}", model=model, quant="fp8", tp=1, ep=_EP,
                             dp=_EP, input_len=context, output_len=2,
                             efficiency_overrides=ov.get(fam))  # fmt: skip
        batch, step = _largest_batch(w, context, limit)
        return batch / step * _NODE_GPUS

    assumption = (
        f"decode only (prefill runs on other nodes); EP144/DP144 with 32 redundant experts "
        f"(2 routed experts per GPU) expressed as EP{_EP}/DP{_EP} (2 per GPU, no replicas); FP8; "
        f"two-batch overlap on; uniform routing; every sequence at the row's average KV length "
        f"{context}; batch per GPU the largest whose step meets the overview's average output "
        f"speed of 20-22 tokens/s per user (21); no multi-token prediction"
    )
    return _case(row, chip, f"{model} decode EP{_EP} ctx {context} at 21 tok/s/user, per node",
                 pred, assumption, "end_to_end")  # fmt: skip
