"""MoE routing statistics: which experts a step's tokens reach and how unevenly they load them.

One rule each, used by the op graph (:mod:`workloads.graph`) and nowhere re-derived:

* :func:`expert_hit_probs`: per-token probability ``q_i`` that expert ``i`` is among a token's
  top-k, proportional to ``(i+1)^-skew`` (Zipf; 0 = uniform), capped at 1, summing to k;
* :func:`expected_distinct_experts`: experts a batch touches (whose weights a step reads);
* :func:`busiest_rank`: the expected load of the most-loaded expert-parallel rank over the mean
  (the **imbalance factor**) and the experts it touches. An expert layer waits for its busiest
  rank, so the graph charges that rank's tokens in compute, weight reads and all-to-all time.

Placement assumption: experts are dealt to ranks in popularity order, round-robin (expert ``i``
on rank ``i mod ranks``), the placement a balancer that knows the popularity would pick without
replicas (DeepSeek's EPLB also replicates hot experts, which would lower the factor further).
Loads are sampled, not fluid: with few tokens the busiest rank is well above the mean even at
uniform routing (one token with top-2 of 8 experts on 8 ranks: max 1, mean 1/4, factor 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["RankLoad", "busiest_rank", "expected_distinct_experts", "expert_hit_probs"]

_TAIL_SIGMAS = 10.0  # the expected maximum is summed over mean +- this many standard deviations


def expert_hit_probs(num_experts: int, top_k: int, skew: float = 0.0) -> np.ndarray:
    """Per-token probability that each expert (most popular first) is among the top-k.

    Proportional to the Zipf weights ``p_i ~ (i+1)^-skew``, capped at 1, summing to ``top_k``
    (a token always picks k distinct experts): the ``j`` hottest experts are always picked and
    the other ``k - j`` picks split in proportion to ``p``, ``j`` the fewest that keeps every
    probability <= 1."""
    ranks = np.arange(1, num_experts + 1, dtype=np.float64)
    p = ranks ** (-skew)
    for always in range(top_k + 1):
        rest = (top_k - always) * p[always:] / p[always:].sum()
        if always == top_k or rest[0] <= 1.0:
            return np.concatenate([np.ones(always), rest])
    raise AssertionError("unreachable: always = top_k returns")


def expected_distinct_experts(
    num_experts: int, top_k: int, tokens: float, skew: float = 0.0
) -> float:
    """Expected number of distinct experts hit when ``tokens`` tokens each pick ``top_k``.

    Uniform routing: each expert is missed by one token with probability 1 - k/E, so
    E * (1 - (1 - k/E)^T). Skewed routing: expert i is picked with probability q_i
    (:func:`expert_hit_probs`), so sum over i of 1 - (1 - q_i)^T.
    """
    if tokens <= 0:
        return 0.0
    q = expert_hit_probs(num_experts, top_k, skew)
    return float(np.sum(1.0 - (1.0 - q) ** tokens))


@dataclass(frozen=True)
class RankLoad:
    """The busiest expert-parallel rank of one step.

    ``imbalance``: expected max over ranks of the token-expert pairs a rank receives, divided by
    the mean (>= 1); ``touched``: expected distinct experts hit on that rank; ``mean_pairs``: the
    mean pairs per rank (tokens x top-k / ranks)."""

    imbalance: float
    touched: float
    mean_pairs: float


def _expected_max(n: np.ndarray, p: np.ndarray, floor: int) -> float:
    """E[max_r X_r] for independent X_r ~ Binomial(n_r, p_r): sum over j >= 1 of P(max >= j),
    taken as 1 below the largest mean minus ``_TAIL_SIGMAS`` standard deviations and up to
    ``floor``, a load the busiest rank always reaches (the pairs are a fixed total)."""
    mu, sd = n * p, np.sqrt(n * p * (1.0 - p))
    top = int(np.argmax(mu))
    lo = max(floor, int(np.floor(mu[top] - _TAIL_SIGMAS * sd[top])))
    hi = int(np.ceil(np.max(mu + _TAIL_SIGMAS * sd))) + 1
    live = mu + _TAIL_SIGMAS * sd >= lo  # ranks that can still reach the range
    pairs = np.unique(np.stack([n[live], p[live]], axis=1), axis=0, return_counts=True)
    (uniq, counts) = pairs
    from scipy.stats import binom  # here, not at import: scipy.stats costs ~0.5 s to load

    j = np.arange(lo, hi)[:, None]  # P(max >= j + 1) = 1 - prod_r F_r(j)
    log_cdf = np.log(np.clip(binom.cdf(j, uniq[:, 0], uniq[:, 1]), 1e-300, 1.0))
    below = np.exp(log_cdf @ counts.astype(np.float64))
    return float(lo + np.sum(1.0 - below))


@lru_cache(maxsize=8192)
def busiest_rank(
    num_experts: int, top_k: int, tokens: float, skew: float = 0.0, ranks: int = 1
) -> RankLoad:
    """Load of the most-loaded of ``ranks`` ranks (each holding ``num_experts / ranks`` experts)
    when ``tokens`` tokens each route to ``top_k`` experts with Zipf exponent ``skew``.

    Rank ``r`` receives the pairs of its experts: a sum over its experts of Binomial(T, q_i),
    taken as Binomial(T x experts, mean-matched p) (exact for one expert per rank; slightly wider
    than the true sum otherwise, as it ignores that one token picks distinct experts). Ranks are
    independent (they are weakly anti-correlated in truth: a slight overestimate of the max),
    and the max is never below the ceiling of the mean (the total is fixed).
    The expected maximum is exact for that distribution (a sum over the CDFs), so it is > 1 from
    sampling alone at few tokens and tends to 1 at many tokens under uniform routing, to the
    hottest rank's share under skew.
    """
    t = max(round(tokens), 1)
    q = expert_hit_probs(num_experts, top_k, skew)
    per = max(num_experts // max(ranks, 1), 1)
    rank_q = q.reshape(per, -1).T if num_experts % max(ranks, 1) == 0 else q[None, :]
    mean_pairs = t * top_k / rank_q.shape[0]
    if rank_q.shape[0] == 1:
        return RankLoad(1.0, float(np.sum(1.0 - (1.0 - q) ** t)), mean_pairs)
    n = np.full(rank_q.shape[0], float(t * per))
    p = np.minimum(rank_q.sum(axis=1) / per, 1.0)
    busiest = int(np.argmax(p))
    touched = float(np.sum(1.0 - (1.0 - rank_q[busiest]) ** t))
    floor = int(np.ceil(mean_pairs - 1e-9))  # some rank holds at least the mean
    return RankLoad(max(_expected_max(n, p, floor) / mean_pairs, 1.0), touched, mean_pairs)
