"""Queueing-theory checks of the serving simulation.

* Little's law, L = lambda W: the time-average number of requests in the system (integrated by the
  simulator as requests arrive and leave) against arrival rate x mean time in system (from the
  per-request timestamps), within 2 %.
* M/M/1: one server (static batching with batch 1, one output token so a request is one step),
  exponential service of rate mu, Poisson arrivals of rate lambda. Closed forms (Kleinrock,
  Queueing Systems vol. 1, eq. 3.26): mean time in system W = 1 / (mu - lambda), mean wait in queue
  Wq = rho / (mu - lambda). Checked within 3 % over 50,000 requests.
"""

import numpy as np
import pytest

from sim.metrics import littles_law, summarize
from sim.serving import ServingConfig, simulate_serving
from sim.stepmodel import StepCost
from sim.traffic import Fixed, LogNormal, Poisson


class ExponentialService:
    """Service time ~ Exp(mu), drawn from its own seeded generator (one draw per step)."""

    def __init__(self, mu: float, seed: int):
        self.mu, self.rng = mu, np.random.default_rng(seed)

    def __call__(self, n_decode, ctx, prefill=0, n_prefill=0, pctx=0.0):
        return StepCost(float(self.rng.exponential(1.0 / self.mu)), 0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_mm1_against_closed_form(seed):
    lam, mu, n = 0.5, 1.0, 50_000
    cfg = ServingConfig(
        arrivals=Poisson(lam),
        input_len=Fixed(1),
        output_len=Fixed(1),
        requests=n,
        scheduler="static",
        max_batch=1,
        seed=seed,
    )
    trace = simulate_serving(cfg, ExponentialService(mu, seed + 100))
    s = summarize(trace)
    w, wq = 1 / (mu - lam), (lam / mu) / (mu - lam)  # 2.0 s and 1.0 s
    assert s["e2e_s"]["mean"] == pytest.approx(w, rel=0.03)
    assert s["queue_s"]["mean"] == pytest.approx(wq, rel=0.03)
    # service is the TTFT minus the queueing delay: its mean is 1 / mu
    assert s["ttft_s"]["mean"] - s["queue_s"]["mean"] == pytest.approx(1 / mu, rel=0.03)


def test_littles_law_on_a_batched_system():
    def step(n_decode, ctx, prefill=0, n_prefill=0, pctx=0.0):
        return StepCost(4e-3 + 1e-4 * n_decode + 2e-6 * prefill, 0.0)

    for sched in ("continuous", "chunked", "disaggregated"):
        cfg = ServingConfig(
            arrivals=Poisson(30.0),
            input_len=LogNormal(400, 200),
            output_len=LogNormal(100, 60),
            requests=3000,
            scheduler=sched,
            replicas=2,
            seed=3,
        )
        trace = simulate_serving(cfg, step)
        L, lam_w = littles_law(trace)
        assert pytest.approx(lam_w, rel=0.02) == L, sched
