"""The TCO headline says where it sits in the Monte Carlo, "peak hour" only with a daily
profile, and a fleet's error names the scenario file's field, not a command-line flag."""

from dataclasses import replace

import numpy as np
import pytest

from explore.cli import main
from explore.report.tco import headline, sizing
from explore.tco.fleet import load_tco_scenario, tco, toml_fields

SMALL = """
[scenario]
name = "small"
model = "llama-3.1-8b"
input_len = 512
output_len = 128
load_output_tokens_per_s = 20000
tokens_per_s_per_user = 50
{profile}
[monte_carlo]
samples = 40
[[fleet]]
name = "h100"
system = "h100-sxm:8"
quant = "fp8"
tp = {tp}
dp = 8
"""


def _scenario(tmp_path, profile="", tp=1):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.format(profile=profile, tp=tp))
    return path


def test_headline_names_its_monte_carlo_percentile(tmp_path, capsys):
    (r,) = tco(_scenario(tmp_path))
    mc = r.monte_carlo
    assert 0 <= mc["point_percentile"] <= 100
    text = headline(r)
    assert f"at p{mc['point_percentile']:.0f} of the Monte Carlo" in text
    assert "its p50 is" in text
    assert main(["tco", str(_scenario(tmp_path))]) == 0
    assert "of the Monte Carlo; its p50 is" in capsys.readouterr().out


def test_point_percentile_is_the_share_of_draws_below_the_point(tmp_path):
    """Every draw priced at 2-3x the chip price lies above the point estimate (p0); every draw
    at 0.2-0.5x lies below it (p100). (The throughput band's draws move each sample by less
    than that.)"""
    sc = load_tco_scenario(_scenario(tmp_path))
    sc = replace(sc, uncertainty={"chip_price_scale": (2.0, 3.0)})
    (r,) = tco(sc)
    assert r.monte_carlo["point_percentile"] == 0.0
    sc = replace(sc, uncertainty={"chip_price_scale": (0.2, 0.5)})
    (r,) = tco(sc)
    assert r.monte_carlo["point_percentile"] == pytest.approx(100.0, abs=np.finfo(float).eps)


def test_peak_hour_only_with_a_daily_profile(tmp_path):
    flat = load_tco_scenario(_scenario(tmp_path))
    assert "peak" not in sizing(flat) and "mean load" in sizing(flat)
    daily = load_tco_scenario(_scenario(tmp_path, "daily_profile = [0.5, 1.0, 1.5]"))
    assert "peak hour of the daily profile (1.50x the mean load)" in sizing(daily)


def test_report_without_profile_says_mean_load(tmp_path):
    out = tmp_path / "r.md"
    assert main(["tco", str(_scenario(tmp_path)), "--report", str(out)]) == 0
    text = out.read_text()
    assert "peak hour" not in text and "sized for the mean load" in text


def test_fleet_error_names_the_toml_field(tmp_path, capsys):
    """TP 3 does not divide the model's heads: the message says [[fleet]] tp = 3, no --tp."""
    (r,) = tco(_scenario(tmp_path, tp=3))
    assert r.error and "[[fleet]] tp = 3" in r.error and "--" not in r.error
    assert main(["tco", str(_scenario(tmp_path, tp=3))]) == 0
    out = capsys.readouterr().out
    assert "[[fleet]] tp = 3" in out and "--tp" not in out


@pytest.mark.parametrize(("flag", "field"), [
    ("shorten --input-len/--output-len", "shorten [scenario] input_len/output_len"),
    ("adjust --tp/--pp/--dp", "adjust [[fleet]] tp/pp/dp"),
    ("--ep 4 must divide --tp 2", "[[fleet]] ep = 4 must divide [[fleet]] tp = 2"),
    ("(--tp 3 --ep 1 --dp 8)", "([[fleet]] tp = 3, ep = 1, dp = 8)"),
    ("best at --batch max", "best at the largest batch that fits"),
])  # fmt: skip
def test_toml_fields(flag, field):
    assert toml_fields(flag) == field
