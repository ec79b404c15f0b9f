"""MoE routing statistics: hit probabilities, distinct experts, the busiest rank's load."""

from itertools import pairwise

import numpy as np
import pytest

from workloads.routing import busiest_rank, expected_distinct_experts, expert_hit_probs


@pytest.mark.parametrize("skew", [0.0, 0.5, 1.2, 3.0])
def test_hit_probs_are_probabilities_summing_to_top_k(skew):
    """A token always picks k distinct experts: the inclusion probabilities sum to k, each in
    [0, 1], most popular first."""
    q = expert_hit_probs(256, 8, skew)
    assert q.sum() == pytest.approx(8.0)
    assert q.max() <= 1.0 + 1e-12 and q.min() > 0.0
    assert np.all(np.diff(q) <= 1e-12)


def test_one_token_top2_of_8_on_8_ranks():
    """One token with top-2 of 8 experts, one expert per rank: two ranks get 1 pair, the rest 0.
    Max 1, mean 2/8 = 0.25: factor exactly 4; the busiest rank touches q = 2/8 of an expert."""
    load = busiest_rank(8, 2, 1, 0.0, 8)
    assert load.imbalance == pytest.approx(4.0)
    assert load.mean_pairs == pytest.approx(0.25)


def test_one_rank_is_never_imbalanced():
    assert busiest_rank(8, 2, 100, 1.0, 1).imbalance == 1.0


def test_uniform_many_tokens_tends_to_one():
    """Binomial(T, k/E) per expert: the max/mean excess shrinks like 1/sqrt(T)."""
    many = busiest_rank(256, 8, 1_000_000, 0.0, 32).imbalance
    assert 1.0 <= many < 1.01


def test_fewer_tokens_more_imbalance():
    factors = [busiest_rank(256, 8, t, 0.0, 64).imbalance for t in (10_000, 1_000, 100, 10)]
    assert all(a < b for a, b in pairwise(factors))
    assert factors[-1] > 1.5


def test_skew_raises_imbalance():
    factors = [busiest_rank(256, 8, 4096, s, 16).imbalance for s in (0.0, 0.3, 0.8, 1.5)]
    assert all(a < b for a, b in pairwise(factors))


def test_expected_max_against_sampling():
    """The expected max from the CDF sum against a seeded multinomial simulation of the real
    router (each token draws k distinct experts, uniformly): within 3 %."""
    rng = np.random.default_rng(0)
    experts, k, tokens, ranks = 64, 4, 200, 16
    maxima = []
    for _ in range(2000):
        picks = np.argsort(rng.random((tokens, experts)), axis=1)[:, :k]
        per_rank = np.bincount((picks % ranks).ravel(), minlength=ranks)
        maxima.append(per_rank.max())
    measured = np.mean(maxima) / (tokens * k / ranks)
    assert busiest_rank(experts, k, tokens, 0.0, ranks).imbalance == pytest.approx(
        measured, rel=0.03
    )


def test_distinct_experts_hand_values():
    """Uniform: E (1 - (1 - k/E)^T): T = 4, top-2 of 8 -> 8 (1 - 0.75^4) = 5.46875."""
    assert expected_distinct_experts(8, 2, 4) == pytest.approx(5.46875)
    assert expected_distinct_experts(8, 2, 0) == 0.0
