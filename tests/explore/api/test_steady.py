"""Steady-state ``--batch max`` with length distributions (explore.api.steady)."""

import pytest

from explore.api.predict import predict
from explore.api.steady import default_requests, is_distribution, steady_state
from explore.cli.main import main

HARD = {"roofline_exponent": 100.0}  # decode attention stays memory-bound: the step is affine
TARGET = {"system": "h100-sxm:8", "model": "llama-3.1-70b", "quant": "fp8", "tp": 8, "pp": 1,
          "ep": 1, "dp": 1}  # fmt: skip
SLO = 0.016  # a TPOT SLO that holds --batch max to a few dozen sequences (a quick simulation)


def _static(**kw):
    return predict(**TARGET, batch="max", tpot_slo_s=SLO, efficiency_overrides=HARD, **kw)


def _steady(**kw):
    return steady_state(**TARGET, tpot_slo_s=SLO, efficiency_overrides=HARD, **kw)


def test_fixed_lengths_equal_the_static_batch():
    """Fixed lengths, 3 x B requests at t=0, PP1, every step costed exactly: three waves, each
    B prompts of 8,192 tokens prefilled one per step (one token budget, 8,192) until the batch
    is full, then 63 decode steps of all B, which finish together. predict's static batch is
    the same steps (its B prefill passes of one prompt run back to back at PP1) with the decode
    steps by Simpson's rule, exact for an affine step: throughput = 3 B x 64 / (3 x e2e) =
    predict's, to rounding. Latencies are per request (below), predict's are the batch's.
    (With prompts that share a pass the two split a wave
    differently: predict balances ceil(B / per-pass) equal passes, the scheduler fills each
    budget in turn; 20 prompts of 1,024 are 3 x 7 in predict, 8 + 8 + 4 in the simulation.)"""
    static = _static(input_len=8192, output_len=64)
    b = static.batch
    assert 2 < b < 200  # several prefill steps per wave, and a quick run
    r = _steady(input_len=8192, output_len=64, requests=3 * b, exact=True)
    assert r.batch == b
    assert r.output_tokens_per_s == pytest.approx(static.output_tokens_per_s, rel=1e-6)
    # latencies: prompt k of the wave is admitted at (k - 1) P and gets its first token at k P
    # (P = predict's TTFT / B, one prefill pass), then waits for the B - k passes after it
    p = static.ttft_s / b
    assert r.ttft_s == pytest.approx(p, rel=1e-6)  # from admission
    assert r.tpot_s == pytest.approx(static.tpot_s + (b - 1) / 2 * p / 63, rel=1e-6)
    assert r.e2e_s == pytest.approx(static.e2e_s - (b - 1) / 2 * p, rel=1e-6)
    info = r.config["steady_state"]
    assert info["requests"] == 3 * b
    assert info["static_output_tokens_per_s"] == static.output_tokens_per_s
    assert any("steady state SIMULATED" in n and f"{3 * b} requests" in n for n in r.notes)


def test_heavy_tailed_output_runs_below_the_static_mean_length_estimate():
    """Same means (1,024 in, 64 out), lognormal output with CV 2: the token-weighted context
    is longer than the mean, and the run ends with the longest sequences draining at a small
    batch, so the steady state delivers fewer tokens/s than the static batch at the means, and
    fewer than the same simulation at fixed lengths."""
    static = _static(input_len=1024, output_len=64)
    n = 8 * static.batch
    fixed = _steady(input_len=1024, output_len=64, requests=n)
    heavy = _steady(input_len="lognormal:1024:512", output_len="lognormal:64:128", requests=n)
    assert heavy.batch == static.batch
    assert heavy.output_tokens_per_s < 0.95 * static.output_tokens_per_s
    assert heavy.output_tokens_per_s < 0.95 * fixed.output_tokens_per_s
    assert fixed.output_tokens_per_s == pytest.approx(static.output_tokens_per_s, rel=0.03)


def test_same_seed_same_numbers_other_seed_other_numbers():
    kw = {"input_len": "lognormal:1024:512", "output_len": "lognormal:64:64", "requests": 200}
    a, b, c = _steady(seed=3, **kw), _steady(seed=3, **kw), _steady(seed=4, **kw)
    for k in ("output_tokens_per_s", "ttft_s", "tpot_s", "e2e_s", "energy_j_per_token"):
        assert getattr(a, k) == getattr(b, k)
    assert a.output_tokens_per_s != c.output_tokens_per_s
    assert a.config["steady_state"]["seed"] == 3


def test_default_requests_and_distribution_spellings():
    assert default_requests(10) == 2000
    assert default_requests(1000) == 16_000
    assert not is_distribution(512) and not is_distribution("512") and not is_distribution(None)
    assert is_distribution("lognormal:512:128") and is_distribution("uniform:1:9")


CLI = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-70b", "--quant", "fp8",
       "--tp", "8", "--pp", "1", "--ep", "1", "--dp", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--batch", "8", "--input-len", "lognormal:1024:512", "--output-len", "64"],
         "--input-len lognormal:1024:512: a length distribution needs --batch max"),
        (["--batch", "max", "--input-len", "1024", "--output-len", "lognormal:64"],
         "--output-len 'lognormal:64': give an integer >= 1"),
        (["--batch", "max", "--input-len", "0", "--output-len", "64"],
         "--input-len '0': give an integer >= 1"),
        (["--batch", "max", "--input-len", "uniform:9:1", "--output-len", "64"],
         "--input-len 'uniform:9:1'"),
        (["--batch", "max", "--input-len", "1024", "--output-len", "lognormal:64:64",
          "--trace", "t.json"], "--output-len lognormal:64:64: --trace writes"),
    ],
)  # fmt: skip
def test_bad_length_flags_are_one_line_exit_2(extra, needle, capsys):
    assert main([*CLI, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_distribution_with_batch_max_runs_the_steady_state(capsys):
    argv = [*CLI, "--batch", "max", "--tpot-slo-ms", str(SLO * 1e3), "--input-len",
            "lognormal:1024:512", "--output-len", "uniform:32:96", "--json"]  # fmt: skip
    assert main(argv) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    info = out["config"]["steady_state"]
    assert info["output_len"] == "uniform:32:96" and info["seed"] == 0
    assert info["requests"] == default_requests(out["batch"])
    assert out["output_tokens_per_s"] > 0
