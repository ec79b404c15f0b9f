"""Goodput is reported only against a stated SLO: without one it is null with the reason."""

import json

from explore.api.serve import ServeRequest, serve
from explore.cli import main
from sim.metrics import GOODPUT_NEEDS_SLO
from sim.traffic import Fixed, Poisson

SERVE = ["serve", "--system", "h100-sxm:1", "--model", "llama-3.1-8b", "--quant", "fp8",
         "--rate", "5", "--requests", "80", "--input-len", "256", "--output-len", "32"]


def _req() -> ServeRequest:
    return ServeRequest(system="h100-sxm:1", model="llama-3.1-8b", quant="fp8",
                        input_len=Fixed(256), output_len=Fixed(32), arrivals=Poisson(5.0),
                        requests=80, tp=1, dp=1)  # fmt: skip


def test_no_slo_no_goodput():
    s, _ = serve(_req())
    assert s["goodput_requests_per_s"] is None and s["goodput_slo"] is None
    assert s["goodput_note"] == GOODPUT_NEEDS_SLO and "--ttft-slo-ms" in s["goodput_note"]


def test_goodput_counts_requests_within_the_stated_slo():
    """A TTFT limit no request meets gives goodput 0; a generous one gives the request rate."""
    tight, _ = serve(_req(), slo_ttft_s=1e-9)
    assert tight["goodput_requests_per_s"] == 0.0
    assert tight["goodput_slo"] == {"ttft_s": 1e-9, "tpot_s": None}
    loose, _ = serve(_req(), slo_ttft_s=60.0, slo_tpot_s=60.0)
    assert loose["goodput_requests_per_s"] == loose["requests_per_s"]
    assert loose["goodput_note"] is None


def test_cli_says_why_there_is_no_goodput(capsys):
    assert main([*SERVE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["goodput_requests_per_s"] is None
    assert main(SERVE) == 0
    assert "goodput is counted against an SLO and none was given" in capsys.readouterr().out
    assert main([*SERVE, "--tpot-slo-ms", "50"]) == 0
    assert "goodput counted against per-request TPOT <= 50 ms" in capsys.readouterr().out
