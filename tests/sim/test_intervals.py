"""Error bands (sim.intervals): the rules by hand on a small bands file, and on the shipped
file through predict and its JSON (a family with rows vs one without)."""

import json
import math

import pytest

from arch.base import ConfigError, strict_json
from explore.api.predict import predict, result_dict
from sim.intervals import (
    FLOOR,
    HEADLINE,
    INTERVALS,
    WIDEN,
    band,
    interval,
    interval_of,
    intervals_for,
    result_interval,
    with_interval,
)

BANDS = """
[pooled.throughput]
p10 = -0.3
p90 = 0.1
n = 20
[pooled.tpot]
p10 = -0.2
p90 = 0.25
n = 12
[pooled.power]
p10 = 0.02
p90 = 0.12
n = 8
[families."fam-a".throughput]
p10 = -0.1
p90 = 0.2
n = 5
source = "own"
n_own = 5
[families."fam-a".tpot]
p10 = 0.05
p90 = 0.15
n = 4
source = "own"
n_own = 4
[families."fam-a".power]
p10 = 0.02
p90 = 0.12
n = 8
source = "pooled"
n_own = 1
"""


@pytest.fixture
def bands(tmp_path):
    path = tmp_path / "intervals.toml"
    path.write_text(BANDS)
    return path


def test_own_band_by_hand(bands):
    """fam-a throughput p10 -0.1, p90 0.2: 1000 -> [1000 e^-0.1, 1000 e^0.2], [904.84, 1221.40]."""
    lo, hi = interval("fam-a", "throughput", 1000.0, extrapolated=False, path=bands)
    assert lo == pytest.approx(904.837, rel=1e-5) and hi == pytest.approx(1221.403, rel=1e-5)


def test_band_always_contains_the_point(bands):
    """fam-a TPOT p10 0.05 > 0 (it always ran slower than predicted): the low end is the point."""
    lo, hi = interval("fam-a", "tpot", 0.02, extrapolated=False, path=bands)
    assert lo == pytest.approx(0.02) and hi == pytest.approx(0.02 * math.exp(0.15))
    for fam in ("fam-a", "unknown-family"):
        for kind in ("throughput", "ttft", "tpot", "e2e", "power"):
            for x in (True, False):
                lo, hi = interval(fam, kind, 7.0, extrapolated=x, path=bands)
                assert lo <= 7.0 <= hi


def test_extrapolated_rule_by_hand(bands):
    """Widened: offsets x WIDEN, at least FLOOR either way. fam-a throughput: [-0.2, 0.4] vs
    ln 1.5 = 0.405: [-0.405, 0.405]."""
    b = band("fam-a", "throughput", extrapolated=True, path=bands)
    assert b.extrapolated
    assert b.lo == pytest.approx(min(WIDEN * -0.1, -math.log(FLOOR)))
    assert b.hi == pytest.approx(max(WIDEN * 0.2, math.log(FLOOR)))


def test_family_without_rows_gets_the_pooled_band_widened(bands):
    own = band("fam-a", "throughput", extrapolated=False, path=bands)
    new = band("new-family", "throughput", extrapolated=False, path=bands)
    assert not own.extrapolated and new.extrapolated and new.source == "pooled"
    assert new.lo == pytest.approx(WIDEN * -0.3) and new.hi == pytest.approx(math.log(FLOOR))
    assert new.hi - new.lo > own.hi - own.lo
    # a kind the family has too few rows of is the pooled band, widened even when calibrated
    assert band("fam-a", "power", extrapolated=False, path=bands).extrapolated
    # no band at all for a kind: the floor band
    e2e = band("fam-a", "e2e", extrapolated=False, path=bands)
    assert (e2e.lo, e2e.hi, e2e.source) == (-math.log(FLOOR), math.log(FLOOR), "none")


def test_derived_metrics_by_hand(bands):
    """Per-user speed is 1 / TPOT: fam-a TPOT offsets [0, 0.15] -> speed [e^-0.15 v, v].
    J/token = power / throughput: pooled power (fallback: widened to [-0.405, 0.405]) minus
    fam-a throughput [-0.1, 0.2]: [-0.405 - 0.2, 0.405 + 0.1]."""
    speed = interval_of("fam-a", "tokens_per_s_per_user", 50.0, extrapolated=False, path=bands)
    assert speed == pytest.approx([50 * math.exp(-0.15), 50.0])
    e = interval_of("fam-a", "energy_j_per_token", 1.0, extrapolated=False, path=bands)
    f = math.log(FLOOR)
    assert e == pytest.approx([math.exp(-f - 0.2), math.exp(f + 0.1)])
    assert interval_of("fam-a", "ttft_s.p99", None, extrapolated=False, path=bands) is None
    assert interval_of("fam-a", "ttft_s", math.nan, extrapolated=False, path=bands) is None


def test_reasons_name_every_widening(bands):
    iv = intervals_for("fam-a", {"output_tokens_per_s": 10.0, "power_w": 500.0},
                       calibrated=True, notes=("EXTRAPOLATED: no 4-bit rows", "other"),
                       path=bands)  # fmt: skip
    reasons = iv["extrapolated"]
    assert "EXTRAPOLATED: no 4-bit rows" in reasons and "other" not in reasons
    assert any(r.startswith("power:") for r in reasons)
    assert not any(r.startswith("throughput:") for r in reasons)
    plain = intervals_for("fam-a", {"output_tokens_per_s": 10.0}, calibrated=True, path=bands)
    assert plain["extrapolated"] == []
    assert intervals_for("fam-a", {}, calibrated=False, path=bands)["extrapolated"]


def test_bad_kind_and_bad_file(tmp_path, bands):
    with pytest.raises(ConfigError, match="unknown interval kind"):
        band("fam-a", "latency", extrapolated=False, path=bands)
    with pytest.raises(ConfigError, match="no error band"):
        interval_of("fam-a", "queue_s", 1.0, extrapolated=False, path=bands)
    bad = tmp_path / "bad.toml"
    bad.write_text("[pooled\n")
    with pytest.raises(ConfigError, match="cannot read the error bands"):
        band("fam-a", "tpot", extrapolated=False, path=bad)


# ---------------------------------------------------------------- the shipped file, via predict


@pytest.fixture(scope="module")
def hopper():
    return predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=1, dp=8, batch=16, input_len=1024,
                   output_len=128)  # fmt: skip


@pytest.fixture(scope="module")
def tpu():
    return predict("tpu-v6e:8", "llama-3.1-8b", "bf16", tp=1, dp=8, batch=16, input_len=1024,
                   output_len=128)  # fmt: skip


def _width(iv: list[float], value: float) -> float:
    return math.log(iv[1] / iv[0])


def test_shipped_bands_exist():
    assert INTERVALS.exists(), "run `xpusim validate --loo --write-intervals`"


def test_family_without_rows_is_wider_and_flagged(hopper, tpu):
    h, t = result_interval(hopper), result_interval(tpu)
    assert t["extrapolated"], "google-tpu has no validation rows"
    assert any("EXTRAPOLATED" in r or "residuals" in r for r in t["extrapolated"])
    for m in ("output_tokens_per_s", "tpot_s", "ttft_s"):
        assert _width(t["interval"][m], 1) > _width(h["interval"][m], 1), m


def test_predict_json_has_strict_intervals(hopper, tpu):
    for r in (hopper, tpu):
        text = strict_json(with_interval(result_dict(r), r))
        d = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
        assert set(d["interval"]) == set(HEADLINE)
        for m, iv in d["interval"].items():
            low, high = iv
            assert low <= d[m] <= high, m
        assert isinstance(d["extrapolated"], list)


def test_design_that_does_not_fit_has_null_intervals():
    r = predict("h100-sxm:1", "llama-3.1-405b", "bf16", tp=1, batch=1, input_len=128,
                output_len=8)  # fmt: skip
    assert not r.fits
    d = json.loads(strict_json(with_interval(result_dict(r), r)))
    assert all(v is None for v in d["interval"].values())
