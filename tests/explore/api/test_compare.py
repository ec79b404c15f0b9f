"""compare: pairing of repeated flags, deltas by hand, and --set targets."""

import pytest

from arch.base import ConfigError
from explore.api.compare import deltas, pair


def test_single_values_apply_to_all_and_repeats_zip():
    cfgs = pair({"--system": ["a:1", "b:1"], "--quant": ["fp8", "bf16"], "--model": ["m"]}, [])
    assert [(c.kwargs["system"], c.kwargs["quant"], c.kwargs["model"]) for c in cfgs] == [
        ("a:1", "fp8", "m"), ("b:1", "bf16", "m")]  # fmt: skip
    assert [c.label for c in cfgs] == ["a:1 quant=fp8", "b:1 quant=bf16"]


def test_unequal_repeats_name_the_flags():
    with pytest.raises(ConfigError, match="--system 2 times, --quant 3 times"):
        pair({"--system": ["a:1", "b:1"], "--quant": ["fp8", "bf16", "fp4"]}, [])


def test_one_configuration_needs_an_edit_and_is_compared_with_itself():
    with pytest.raises(ConfigError, match="two or more configurations"):
        pair({"--system": ["a:1"]}, [])
    base, edited = pair({"--system": ["a:1"]}, ["tdp_w=1 kW"])
    assert base.edits == () and [e.path for e in edited.edits] == ["tdp_w"]
    assert base.label == "preset" and edited.label == "tdp_w=1 kW"


def test_targeted_edits():
    cfgs = pair({"--system": ["mi300x:1", "h100-sxm:1", "h100-sxm:2"]},
                ["h100-sxm:tdp_w=1 kW", "3:idle_w=80 W"])  # fmt: skip
    assert [[e.path for e in c.edits] for c in cfgs] == [[], ["tdp_w"], ["tdp_w", "idle_w"]]
    with pytest.raises(ConfigError, match="is no configuration"):
        pair({"--system": ["a:1", "b:1"]}, ["7:tdp_w=1 kW"])


def test_deltas_by_hand():
    """first: TPOT 20 ms, 100 tok/s; second: TPOT 10 ms, 250 tok/s -> delta -10 ms (ratio 0.5)
    and +150 tok/s (ratio 2.5); a missing value (does not fit) has no delta."""
    configs = [
        {"label": "A", "result": {"tpot_s": 0.020, "output_tokens_per_s": 100.0}},
        {"label": "B", "result": {"tpot_s": 0.010, "output_tokens_per_s": 250.0}},
        {"label": "C", "result": {"tpot_s": None, "output_tokens_per_s": None}},
    ]
    d = deltas(configs)
    a, b, c = d["tpot_s"]["values"]
    assert (a["delta"], a["ratio"]) == (0.0, 1.0)
    assert b["delta"] == pytest.approx(-0.010) and b["ratio"] == pytest.approx(0.5)
    assert c["delta"] is None and c["ratio"] is None
    out = d["output_tokens_per_s"]["values"][1]
    assert out["delta"] == pytest.approx(150.0) and out["ratio"] == pytest.approx(2.5)
    assert d["tpot_s"]["better"] == "lower" and d["output_tokens_per_s"]["better"] == "higher"
