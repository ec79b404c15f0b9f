"""ServingConfig: immutable, checked when built (one-line errors), never changed by a run."""

import dataclasses

import pytest

from arch.base import ConfigError
from sim.serving import ServingConfig, simulate_serving
from sim.stepmodel import StepCost
from sim.traffic import Fixed, Poisson, TraceReplay


def _cfg(**kw) -> ServingConfig:
    return ServingConfig(arrivals=Poisson(50.0), input_len=Fixed(8), output_len=Fixed(4), **kw)


def _step(n_decode, ctx, prefill=0, n_prefill=0, pctx=0.0):
    return StepCost(1e-3 + 1e-5 * prefill, 0.0)


def test_config_is_immutable():
    cfg = _cfg(requests=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.requests = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"requests": 0}, "--requests must be >= 1"),
        ({"replicas": 0}, "replicas must be >= 1"),
        ({"scheduler": "fifo"}, "--scheduler 'fifo': choose one of"),
        ({"router": "random"}, "router: round_robin or least_outstanding"),
        ({"preemption": "drop"}, "preemption: recompute or swap"),
        ({"prefix_hit_rate": 1.0}, "prefix_hit_rate must be in [0, 1)"),
        ({"kv_blocks": 0}, "the KV cache has no room"),
        ({"max_batch": 0}, "--max-batch must be >= 1"),
        ({"pd_ratio": (0, 1)}, "--pd-ratio"),
    ],
)
def test_bad_value_fails_when_built_as_one_line(kw, message):
    with pytest.raises(ConfigError) as info:
        _cfg(**kw)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)  # callers catching ValueError still do


def test_short_trace_replays_all_it_has_and_leaves_the_config_alone(tmp_path):
    """A 3-request trace asked for 10 requests: 3 are simulated; cfg.requests stays 10."""
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,input_len,output_len\n0.0,8,2\n0.1,16,3\n0.2,4,1\n")
    cfg = ServingConfig(arrivals=TraceReplay(path), input_len=Fixed(8), output_len=Fixed(4),
                        requests=10)  # fmt: skip
    trace = simulate_serving(cfg, _step)
    assert len(trace.requests) == 3 and cfg.requests == 10
    assert [r.output_len for r in trace.requests] == [2, 3, 1]
