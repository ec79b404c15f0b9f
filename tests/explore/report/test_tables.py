"""The predict table shows each headline number with its error band, and flags EXTRAPOLATED
bands with their reasons."""

import re

import pytest
from rich.console import Console

from explore.api.predict import predict
from explore.report.tables import print_predict
from sim.intervals import result_interval

ARGS = {"model": "llama-3.1-8b", "tp": 1, "dp": 8, "batch": 16, "input_len": 1024,
        "output_len": 128}  # fmt: skip


def _render(r) -> str:
    con = Console(width=200, record=True)
    print_predict(r, console=con)
    return con.export_text()


@pytest.mark.parametrize(("system", "quant"), [("h100-sxm:8", "fp8"), ("tpu-v6e:8", "bf16")])
def test_bands_beside_the_numbers(system, quant):
    r = predict(system, quant=quant, **ARGS)
    out = _render(r)
    low, high = result_interval(r)["interval"]["output_tokens_per_s"]
    line = next(x for x in out.splitlines() if "output tokens/s (system)" in x)
    assert f"({low:,.1f}–{high:,.1f})" in line
    assert re.search(r"TTFT .*ms \(.* ms–.* ms\)", out)


def test_extrapolated_family_is_flagged():
    out = _render(predict("tpu-v6e:8", quant="bf16", **ARGS))
    assert "EXTRAPOLATED: bands widened" in out
    hopper = predict("h100-sxm:8", quant="fp8", **ARGS)
    assert ("EXTRAPOLATED: bands widened" in _render(hopper)) == bool(
        result_interval(hopper)["extrapolated"]
    )
