"""One contract suite every scheduler passes (the scikit-learn ``parametrize_with_checks`` idea):
tokens in = tokens out, KV never over capacity, no request starves, seeded determinism.

The step model here is a cheap linear cost (fixed + per decode sequence + per prefill token), so
the suite exercises scheduling and KV bookkeeping, not costs; a small KV cache forces preemption.
"""

import itertools
import math

import numpy as np
import pytest

from sim.kvcache import PagedKV
from sim.schedulers import SCHEDULERS
from sim.serving import ServingConfig, simulate_serving
from sim.stepmodel import SpecDecode, StepCost
from sim.traffic import ClosedLoop, Gamma, Poisson, Uniform


def linear_step(n_decode, ctx, prefill=0, n_prefill=0, pctx=0.0):
    return StepCost(1e-3 + 2e-5 * n_decode + 1e-6 * ctx * n_decode / 100 + 5e-6 * prefill, 1.0)


VARIANTS = {
    "static": {"scheduler": "static"},
    "continuous": {"scheduler": "continuous"},
    "chunked": {"scheduler": "chunked", "max_tokens": 256},
    "disaggregated": {"scheduler": "disaggregated", "replicas": 3, "pd_ratio": (1, 2)},
    "continuous-swap": {"scheduler": "continuous", "preemption": "swap",
                        "swap_bytes_per_token": 1e5},
    "chunked-prefix": {"scheduler": "chunked", "prefix_hit_rate": 0.5, "max_tokens": 512},
    "continuous-spec": {"scheduler": "continuous",
                        "spec": SpecDecode(3, (0.8, 0.6, 0.4))},
    "two-replicas-least": {"scheduler": "chunked", "replicas": 2, "router": "least_outstanding"},
}  # fmt: skip


def _config(variant: str, seed: int = 0, **kw) -> ServingConfig:
    base = {
        "arrivals": Poisson(400.0),
        "input_len": Uniform(16, 400),
        "output_len": Uniform(1, 120),
        "requests": 400,
        "max_batch": 32,
        "max_tokens": 2048,
        "kv_blocks": 120,  # 1,920 tokens: a few long requests fill it, forcing preemption
        "block_size": 16,
        "seed": seed,
    }
    return ServingConfig(**{**base, **VARIANTS[variant], **kw})


class CheckedKV(PagedKV):
    """Fails the moment the cache would go over capacity or below zero."""

    def grow(self, rid, tokens):
        ok = super().grow(rid, tokens)
        assert 0 <= self.used <= self.blocks
        return ok


@pytest.fixture(params=sorted(VARIANTS))
def run(request, monkeypatch):
    import sim.serving

    monkeypatch.setattr(sim.serving, "PagedKV", CheckedKV)
    cfg = _config(request.param)
    return request.param, cfg, simulate_serving(cfg, linear_step)


def test_tokens_in_equal_tokens_out(run):
    _, cfg, trace = run
    assert len(trace.requests) == cfg.requests
    assert all(r.generated == r.output_len for r in trace.requests)
    assert trace.steps["tokens"][-1] == sum(r.output_len for r in trace.requests)
    assert all(r.prefilled >= r.prompt for r in trace.requests)


def test_kv_never_over_capacity(run):
    _, _, trace = run
    assert max(trace.steps["kv_util"]) <= 1.0


def test_no_request_starves(run):
    _, _, trace = run
    for r in trace.requests:
        assert math.isfinite(r.finish_s) and r.finish_s >= r.first_token_s >= r.arrival_s


def test_seeded_determinism(run):
    variant, _, trace = run
    again = simulate_serving(_config(variant), linear_step)
    other = simulate_serving(_config(variant, seed=1), linear_step)
    key = [(r.arrival_s, r.first_token_s, r.finish_s, r.preemptions) for r in trace.requests]
    assert key == [(r.arrival_s, r.first_token_s, r.finish_s, r.preemptions)
                   for r in again.requests]  # fmt: skip
    assert key != [(r.arrival_s, r.first_token_s, r.finish_s) for r in other.requests]


def test_every_scheduler_is_in_the_suite():
    covered = {v["scheduler"] for v in VARIANTS.values()}
    assert set(SCHEDULERS) - {"prefill_only", "decode_only"} <= covered
    assert "disaggregated" in covered  # runs prefill_only and decode_only


def test_small_cache_preempts_and_recovers():
    trace = simulate_serving(_config("continuous", kv_blocks=60), linear_step)
    assert trace.preemptions > 0
    assert all(r.generated == r.output_len for r in trace.requests)


def test_request_larger_than_cache_is_refused():
    with pytest.raises(ValueError, match="needs more KV cache"):
        simulate_serving(_config("continuous", kv_blocks=10), linear_step)


def test_closed_loop_and_gamma_arrivals_finish():
    for arr in (ClosedLoop(8), Gamma(200.0, cv=3.0)):
        t = simulate_serving(_config("chunked", arrivals=arr, requests=200), linear_step)
        assert len(t.requests) == 200 and all(math.isfinite(r.finish_s) for r in t.requests)


def test_closed_loop_keeps_concurrency():
    """With U users and no think time, at most U requests are ever in the system."""
    t = simulate_serving(_config("continuous", arrivals=ClosedLoop(5), requests=100), linear_step)
    arrive = [(r.arrival_s, 1) for r in t.requests]
    events = sorted(arrive + [(r.finish_s, -1) for r in t.requests], key=lambda e: (e[0], e[1]))
    assert max(np.cumsum([d for _, d in events])) <= 5


def test_static_batches_wait_for_the_whole_batch():
    """Static batching admits nobody while a batch is running: every request of a batch finishes
    no earlier than the batch's first token, and the next batch starts after the last finish."""
    t = simulate_serving(_config("static"), linear_step)
    starts = sorted({r.first_scheduled_s for r in t.requests})
    for a, b in itertools.pairwise(starts):
        batch = [r for r in t.requests if r.first_scheduled_s == a]
        assert max(r.finish_s for r in batch) <= b + 1e-12
