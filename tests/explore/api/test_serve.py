"""``xpusim serve``: the JSON contract, errors, rate search, plots, step model and the --trace."""

import json

import pytest

from explore.api.serve import ServeRequest, serve
from explore.cli import main
from sim.stepmodel import SpecDecode, bucket
from sim.traffic import LogNormal, Poisson, Uniform, parse_length

SERVE = ["serve", "--system", "h100-sxm:8", "--model", "llama-3.1-8b", "--quant", "fp8",
         "--tp", "2", "--dp", "4", "--rate", "40", "--requests", "400",
         "--input-len", "uniform:100:900", "--output-len", "lognormal:120:60"]  # fmt: skip
KEYS = {"ttft_s", "tpot_s", "e2e_s", "queue_s", "output_tokens_per_s",
        "output_tokens_per_s_per_chip", "requests_per_s", "goodput_requests_per_s",
        "kv_utilization_mean", "preemptions", "energy_j_per_token", "simulated_s",
        "wall_s"}  # fmt: skip


def test_serve_json_contract(capsys):
    assert main([*SERVE, "--json", "--seed", "7"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out.keys() >= KEYS
    for k in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
        d = out[k]
        assert set(d) == {"mean", "p50", "p90", "p99"}
        assert 0 <= d["p50"] <= d["p90"] <= d["p99"]
    assert out["output_tokens_per_s_per_chip"] == pytest.approx(out["output_tokens_per_s"] / 8)
    # the system keeps up with 40 req/s: throughput ~ rate x mean output length (about 120)
    assert out["requests_per_s"] == pytest.approx(40, rel=0.15)
    assert out["tpot_s"]["mean"] > 0 and out["energy_j_per_token"] > 0


def test_same_seed_same_result_bit_for_bit(capsys):
    outs = []
    for _ in range(2):
        main([*SERVE, "--json", "--seed", "3", "--scheduler", "chunked"])
        d = json.loads(capsys.readouterr().out)
        d.pop("wall_s")
        outs.append(d)
    assert outs[0] == outs[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-len", "lognormal:abc"], "--input-len"),
        (["--scheduler", "fifo"], "--scheduler"),
        (["--rate", "-1"], "--rate"),
        (["--pd-ratio", "2", "--scheduler", "disaggregated"], "--pd-ratio"),
        (["--tp", "3"], "tp"),
    ],
)
def test_serve_bad_input_one_line_exit_2(capsys, extra, message):
    assert main([*SERVE, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_rate_search_meets_slo(capsys):
    argv = [*SERVE[:-8], "--requests", "300", "--input-len", "512", "--output-len", "128",
            "--rate-search", "--slo-ttft-ms", "300", "--slo-tpot-ms", "15", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    rate = out["rate_search"]["max_rate_per_s"]
    assert rate > 0
    assert out["ttft_s"]["p99"] <= 0.300 and out["tpot_s"]["p99"] <= 0.015


def test_plots_are_written(tmp_path, capsys):
    assert main([*SERVE, "--requests", "150", "--plot", str(tmp_path), "--json"]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["latency_cdf.png", "throughput_queue.png", "tradeoff_user_vs_chip.png"]
    assert all((tmp_path / n).stat().st_size > 10_000 for n in names)


def test_predict_trace_file(tmp_path, capsys):
    path = tmp_path / "t.json"
    argv = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-70b", "--quant", "fp8",
            "--tp", "8", "--batch", "8", "--input-len", "256", "--output-len", "32",
            "--trace", str(path), "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    doc = json.loads(path.read_text())
    assert any(e["ph"] == "X" for e in doc["traceEvents"])
    # one micro-batch, no pipeline: the step simulation finds nothing to overlap
    assert out["step_simulation"]["decode"]["total_s"] == pytest.approx(out["tpot_s"], rel=0.02)


def test_spec_decoding_expected_tokens_by_hand():
    """acceptance (0.8, 0.6): 1 + 0.8 + 0.8 x 0.6 = 2.28 tokens per verification step."""
    assert SpecDecode(2, (0.8, 0.6)).expected_tokens() == pytest.approx(2.28)
    with pytest.raises(ValueError):
        SpecDecode(2, (0.8,))


def test_spec_decoding_speeds_up_tpot_at_low_load():
    base = ServeRequest("h100-sxm:1", "llama-3.1-8b", "bf16", Uniform(200, 400), Uniform(100, 200),
                        Poisson(1.0), requests=60, seed=1)  # fmt: skip
    plain, _ = serve(base)
    fast, _ = serve(ServeRequest(**{**base.__dict__, "spec": SpecDecode(3, (0.9, 0.8, 0.7))}))
    assert fast["tpot_s"]["mean"] < 0.75 * plain["tpot_s"]["mean"]


def test_bucket_is_within_five_percent():
    for x in (1, 17, 33, 100, 1000, 12345, 200_000):
        assert abs(bucket(x) - x) <= max(0.045 * x, 0.5)


def test_length_parsing():
    assert parse_length("512").mean == 512
    assert parse_length("uniform:10:20").mean == 15
    d = parse_length("lognormal:1000:500")
    assert isinstance(d, LogNormal)
    import numpy as np

    x = d.sample(np.random.default_rng(0), 200_000)
    assert x.mean() == pytest.approx(1000, rel=0.01) and x.std() == pytest.approx(500, rel=0.03)


def test_scenario_with_spec_and_lora(capsys):
    """The example scenario runs; flags override it (--requests)."""
    assert main(["serve", "--scenario", "examples/serve_70b_spec.toml", "--requests", "80",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["requests"] == 80
    # two draft tokens accepted at 0.8 / 0.6: 2.28 tokens per step, so TPOT is well under one step
    assert 0 < out["tpot_s"]["mean"] < 0.010


def test_serve_json_has_error_bands(capsys):
    """Every banded statistic has [low, high] around its value (sim.intervals); H100 has its
    own validation rows for the kinds serve uses."""
    assert main([*SERVE, "--json", "--seed", "7", "--requests", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    iv = out["interval"]
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        for q in ("mean", "p50", "p90", "p99"):
            low, high = iv[f"{key}.{q}"]
            assert low <= out[key][q] <= high
    for key in ("output_tokens_per_s", "output_tokens_per_s_per_chip", "energy_j_per_token"):
        low, high = iv[key]
        assert low <= out[key] <= high and low < high
    assert isinstance(out["extrapolated"], list)
