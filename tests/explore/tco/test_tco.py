"""TCO: a toy fleet by hand, monotonicity, sizing, payback, the report and the CLI contract."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from explore.cli import main
from explore.tco.fleet import load_tco_scenario, operate, price_fleet, tco, to_dataframe
from explore.tco.inputs import capital_recovery_factor, default_inputs, ownership, usd_per_m_tokens

ROOT = Path(__file__).parents[3]
SMALL = """
[scenario]
name = "small"
model = "llama-3.1-8b"
input_len = 512
output_len = 128
load_output_tokens_per_s = 20000
tokens_per_s_per_user = 50
daily_profile = [0.5, 1.0, 1.5]
api_usd_per_m_output_tokens = 1.0
[monte_carlo]
samples = 50
[[fleet]]
name = "h100"
system = "h100-sxm:8"
quant = "fp8"
tp = 1
dp = 8
"""


def _toy():
    names = ("interest_rate", "residual_fraction", "host_usd_per_chip", "host_w_per_chip",
             "network_usd_per_chip", "network_w_per_chip", "datacenter_usd_per_mw",
             "colocation_usd_per_kw_month", "maintenance_fraction_per_year",
             "software_usd_per_chip_year")  # fmt: skip
    zero = dict.fromkeys(names, 0.0)
    return default_inputs().with_overrides({**zero, "years": 5, "pue": 1.5, "usd_per_kwh": 0.10,
                                            "utilization": 0.5})  # fmt: skip


def test_toy_fleet_by_hand():
    """10 chips at $10,000, 5 years straight line: 100,000 / 5 = $20,000 a year.
    Average power per chip 0.5 x 400 + 0.5 x 100 = 250 W; x 10 x PUE 1.5 = 3,750 W;
    energy 3.75 kW x 8,760 h x $0.10 = $3,285 a year.
    $/hour = (20,000 + 3,285) / 8,760 = 2.658105; at 1,000 tok/s x 0.5 utilization:
    2.658105 / (1,000 x 0.5 x 3,600) x 1e6 = $1.476725 per M tokens."""
    own = ownership(_toy(), chips=10, chip_price_usd=10_000, chip_tdp_w=500, chip_busy_w=400,
                    chip_idle_w=100)  # fmt: skip
    assert own.capex_usd == pytest.approx(100_000)
    assert own.annualized_capex_usd == pytest.approx(20_000)
    assert own.opex_breakdown["energy"] == pytest.approx(3_285)
    assert own.provisioned_w == pytest.approx(10 * 500 * 1.5)
    assert own.usd_per_hour == pytest.approx(2.658105, rel=1e-6)
    assert usd_per_m_tokens(own, 1000, 0.5) == pytest.approx(1.476725, rel=1e-6)


def test_capital_recovery_factor_by_hand():
    """r = 8 %, n = 5: 0.08 x 1.08^5 / (1.08^5 - 1) = 0.08 x 1.469328 / 0.469328 = 0.250456."""
    assert capital_recovery_factor(0.08, 5) == pytest.approx(0.250456, rel=1e-5)
    assert capital_recovery_factor(0.0, 4) == 0.25


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    p = tmp_path_factory.mktemp("tco") / "small.toml"
    p.write_text(SMALL)
    sc = load_tco_scenario(p)
    return p, sc, operate(sc, sc.fleets[0])


def test_sizing_covers_the_peak_hour(small):
    """Profile [0.5, 1, 1.5]: peak = 1.5 x mean, so capacity >= 1.5 x load and the mean
    utilization <= 1 / 1.5."""
    _, sc, op = small
    r = price_fleet(sc, sc.fleets[0], op)
    replicas = r.systems * 8
    assert replicas * op.replica_tokens_per_s >= 1.5 * sc.load_output_tokens_per_s
    assert (replicas - 8) * op.replica_tokens_per_s < 1.5 * sc.load_output_tokens_per_s
    assert r.utilization <= 1 / 1.5 + 1e-9
    assert 1 / op.tpot_s >= 50  # the SLO batch meets the interactivity target


@pytest.mark.parametrize("key", ["usd_per_kwh", "pue", "host_usd_per_chip", "chip_price_scale"])
def test_dearer_inputs_never_lower_cost(small, key):
    _, sc, op = small
    f = sc.fleets[0]
    base = price_fleet(sc, f, op)
    prev = None
    for scale in (0.5, 1.0, 1.5, 2.0):
        value = scale if key == "chip_price_scale" else getattr(
            default_inputs(), key) * scale + (0.6 if key == "pue" else 0.0)  # fmt: skip
        r = price_fleet(sc, f, op, overrides={key: value}, systems=base.systems)
        if prev is not None:
            assert r.usd_per_m_output_tokens >= prev - 1e-12
        prev = r.usd_per_m_output_tokens


def test_lower_utilization_never_lowers_cost(small):
    _, sc, op = small
    f = sc.fleets[0]
    base = price_fleet(sc, f, op)
    costs = [price_fleet(sc, f, op, overrides={"load_scale": s}, systems=base.systems)
             for s in (1.0, 0.8, 0.5, 0.2)]  # fmt: skip
    utils = [c.utilization for c in costs]
    dollars = [c.usd_per_m_output_tokens for c in costs]
    assert utils == sorted(utils, reverse=True)
    assert dollars == sorted(dollars)


def test_prefill_and_decode_split_the_cost(small):
    """Input and output $/M together recover the whole hourly cost of the delivered tokens."""
    _, sc, op = small
    r = price_fleet(sc, sc.fleets[0], op)
    per_hour = r.usd_per_chip_hour * r.chips
    out_tok_h = sc.load_output_tokens_per_s * 3600
    in_tok_h = out_tok_h * sc.input_len / sc.output_len
    recovered = (r.usd_per_m_input_tokens * in_tok_h + r.usd_per_m_output_tokens * out_tok_h) / 1e6
    assert recovered == pytest.approx(per_hour, rel=1e-9)


def test_cli_json_contract_and_report(small, tmp_path, capsys):
    path, _, _ = small
    report = tmp_path / "r.html"
    assert main(["tco", str(path), "--json", "--report", str(report)]) == 0
    out = json.loads(capsys.readouterr().out)
    (f,) = out["fleets"]
    for key in ("name", "systems", "chips", "usd_per_m_input_tokens", "usd_per_m_output_tokens",
                "tokens_per_s_per_mw", "capex_usd", "opex_usd_per_year", "utilization",
                "sensitivity"):  # fmt: skip
        assert key in f
    assert set(f["sensitivity"]) >= {"usd_per_kwh", "pue", "years"}
    lo, hi = f["sensitivity"]["usd_per_kwh"]
    assert lo < 0 < hi
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 4
    assert "usd_per_kwh" in text and "shared/hardware" in text  # inputs listed with sources
    md = tmp_path / "r.md"
    assert main(["tco", str(path), "--report", str(md)]) == 0
    assert len(list(tmp_path.glob("r-*.png"))) == 4


def test_dataframe(small):
    _, sc, _ = small
    df = to_dataframe(tco(replace(sc, samples=20)))
    assert df.loc["h100", "chips"] > 0
    assert "capex.accelerators" in df.columns and "mc.p95" in df.columns


def test_asic_payback_break_even_is_consistent():
    """At the break-even chip price the ASIC fleet's $/M output tokens equals the reference's."""
    sc = load_tco_scenario(ROOT / "examples" / "tco_asic_payback.toml")
    sc = replace(sc, samples=10)
    res = {r.name: r for r in tco(sc)}
    asic, ref = res["8x custom ASIC FP8"], res["8x H100 FP8"]
    p = asic.payback
    assert p["nre_usd"] > 0 and p["payback_months"] > 0
    f = next(f for f in sc.fleets if f.name == asic.name)
    at_be = price_fleet(sc, f, operate(sc, f), chip_price=p["break_even_chip_price_usd"],
                        systems=asic.systems)  # fmt: skip
    assert at_be.usd_per_m_output_tokens == pytest.approx(ref.usd_per_m_output_tokens, rel=1e-6)
    assert p["break_even_volume_units"] == pytest.approx(
        p["nre_usd"] / (p["break_even_chip_price_usd"] - p["unit_cost_usd"])
    )


def test_fleet_that_cannot_meet_the_slo_says_so(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(SMALL.replace("tokens_per_s_per_user = 50", "tokens_per_s_per_user = 5000"))
    assert main(["tco", str(p), "--json"]) == 0
    (f,) = json.loads(capsys.readouterr().out)["fleets"]
    assert "not met" in f["error"] and f["usd_per_m_output_tokens"] is None


def test_bad_scenario_is_one_line(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text("[scenario]\nmodel = 'tiny'\n")
    assert main(["tco", str(p)]) == 2
    err = capsys.readouterr().err
    assert "input_len: required" in err and err.count("\n") == 1


def test_json_is_strict_when_a_fleet_cannot_serve(tmp_path, capsys):
    """8 x H100 at 1,000 tokens/s per user (TPOT <= 1 ms) misses the SLO even at batch 1: its
    numbers are null in --json (strict JSON has no NaN), with the reason."""
    path = tmp_path / "slo.toml"
    path.write_text(SMALL.replace("tokens_per_s_per_user = 50", "tokens_per_s_per_user = 1000"))
    assert main(["tco", str(path), "--json"]) == 0

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    (h100,) = json.loads(capsys.readouterr().out, parse_constant=no_nan)["fleets"]
    assert h100["error"] and "not met" in h100["error"]
    assert h100["usd_per_m_output_tokens"] is None and h100["operating"]["ttft_s"] is None


def test_the_shipped_comparison_serves_every_architecture(capsys):
    """The shipped example prices GPUs, Groq, CS-3, SN40L and TPU at one SLO: every fleet
    serves it (mapping chosen, said in its notes) with a finite price."""
    assert main(["tco", str(ROOT / "examples" / "tco_70b_gpu_lpu_wafer.toml"), "--json"]) == 0
    fleets = json.loads(capsys.readouterr().out)["fleets"]
    assert len(fleets) == 6 and not any(f["error"] for f in fleets)
    for f in fleets:
        assert f["usd_per_m_output_tokens"] > 0 and f["operating"]["tpot_s"] <= 0.02 * (1 + 1e-9)
        assert any(n.startswith("mapping chosen") for n in f["operating"]["notes"])


def test_prediction_error_interval_contains_the_point(small):
    """$/M output tokens priced at the ends of the family's throughput band (the fleet re-sized)
    brackets the point; the Monte Carlo draws the same band."""
    for r in tco(small[1]):
        low, high = r.interval["usd_per_m_output_tokens"]
        assert low <= r.usd_per_m_output_tokens <= high and low < high
        low, high = r.interval["output_tokens_per_s_per_chip"]
        per_chip = r.operating.replica_tokens_per_s / r.operating.chips_per_replica
        assert low <= per_chip <= high
        mc = r.monte_carlo
        assert mc["throughput_factor_low"] <= 1 <= mc["throughput_factor_high"]
        assert mc["p5"] <= mc["p50"] <= mc["p95"]
        assert "interval" in r.to_dict() and isinstance(r.extrapolated, list)


def test_fleet_engine_is_an_input(small, tmp_path, capsys):
    """A fleet may name its serving engine: vLLM caps a replica at 256 sequences
    (arch/presets/engines.toml), so an 8B model on H100 that TRT-LLM runs at a larger batch
    runs at <= 256 and its fleet is no cheaper; an unknown engine is one line naming the field."""
    from explore.tco.fleet import load_tco_scenario

    p = tmp_path / "e.toml"
    p.write_text(SMALL.replace("tokens_per_s_per_user = 50", "tokens_per_s_per_user = 20"))
    trt = operate(load_tco_scenario(p), load_tco_scenario(p).fleets[0])
    p.write_text(SMALL.replace("tokens_per_s_per_user = 50", "tokens_per_s_per_user = 20")
                 .replace('quant = "fp8"', 'quant = "fp8"\nengine = "vllm"'))  # fmt: skip
    sc = load_tco_scenario(p)
    vllm = operate(sc, sc.fleets[0])
    assert trt.batch > 256 >= vllm.batch
    assert any("engine: vllm (as given)" in n for n in vllm.notes)
    p.write_text(SMALL.replace('quant = "fp8"', 'quant = "fp8"\nengine = "nope"'))
    assert main(["tco", str(p)]) == 2
    err = capsys.readouterr().err
    assert "0.engine" in err and "unknown engine 'nope'" in err and err.count("\n") == 1
