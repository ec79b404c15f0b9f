"""``to_dataframe()`` on predict (per op), serve (per request), search (trials), sweep and
compare results; pandas is optional and its absence is one line naming the extra."""

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest

from arch.base import ConfigError
from explore.api.compare import Config, compare
from explore.api.predict import predict
from explore.api.serve import ServeRequest, serve
from explore.api.serve import to_dataframe as requests_frame
from explore.search.study import search
from explore.search.sweep import sweep
from sim.traffic import Fixed, Poisson

pd = pytest.importorskip("pandas", reason="pandas is in the [test] extra")

SPACE = Path(__file__).parents[1] / "data" / "space_bandwidth.toml"
KW = {"model": "llama-3.1-8b", "quant": "fp8", "input_len": 512, "output_len": 64, "batch": 8}


def test_predict_per_op_frame_matches_the_steps():
    r = predict(system="h100-sxm:1", **KW)
    df = r.to_dataframe()
    assert set(df["phase"]) == {"prefill", "decode"}
    for phase, step in (("prefill", r.prefill_step), ("decode", r.decode_step)):
        part = df[df["phase"] == phase]
        assert len(part) == len(step.graph.names)
        assert part["share"].sum() == pytest.approx(1.0)
        assert part["seconds"].sum() == pytest.approx(sum(o["seconds"] for o in step.op_table()))
    assert (df["flops"] >= 0).all() and df["bytes"].sum() > 0
    assert df.loc[df["phase"] == "decode", "bound"].isin(["compute", "memory", "comm",
                                                          "latency", "overhead"]).all()


def test_predict_frame_of_a_design_that_does_not_fit_is_empty():
    r = predict(system="h100-sxm:1", model="llama-3.1-70b", quant="bf16", input_len=512,
                output_len=64, batch=1)  # fmt: skip
    assert not r.fits
    df = r.to_dataframe()
    assert df.empty and "seconds" in df.columns


def test_serve_per_request_frame_agrees_with_the_summary():
    req = ServeRequest(system="h100-sxm:1", model="llama-3.1-8b", quant="fp8",
                       input_len=Fixed(256), output_len=Fixed(32), arrivals=Poisson(10.0),
                       requests=150, tp=1, dp=1)  # fmt: skip
    summary, trace = serve(req)
    df = requests_frame(trace)
    assert len(df) == 150 and df["arrival_s"].is_monotonic_increasing
    assert df["ttft_s"].quantile(0.5) == pytest.approx(summary["ttft_s"]["p50"])
    assert df["tpot_s"].mean() == pytest.approx(summary["tpot_s"]["mean"])
    assert (df["e2e_s"] >= df["ttft_s"]).all() and (df["queue_s"] >= 0).all()


def test_search_trials_frame(tmp_path):
    res = search(SPACE, n_trials=5, out=tmp_path)
    df = res.to_dataframe()
    assert len(df) == len(res.trials) == 5
    assert list(df["slot"]) == sorted(df["slot"])
    assert {"chip.hbm_stacks", "tokens_per_s_per_user", "metric.tdp_w", "feasible"} <= set(df)
    assert df["feasible"].sum() == res.n_trials_feasible


def test_sweep_frame_has_every_point(tmp_path):
    space = tmp_path / "s.toml"
    space.write_text("""
[study]
objectives = ["tokens_per_s_per_user"]
[base]
model = "llama-3.1-8b"
quant = "fp8"
chips = 8
batch = 1
[base.chip]
node = "N4"
peak_bf16_flops_per_s = 1e15
hbm_stacks = 4
[chip]
sram_bytes = { choices = [0, 1e8] }
[deploy]
pp = { choices = [1, 3] }
""")
    res = sweep(space)
    df = res.to_dataframe()
    assert len(df) == res.n_points == 4
    assert list(df.columns) == list(res.columns)
    assert list(df["fits"]) == [1, 1, 0, 0]
    assert np.isnan(df["tpot_s"].iloc[2]) and df["tpot_s"].iloc[0] > 0


def test_compare_frame_one_row_per_config():
    cmp = compare([Config("h100", {"system": "h100-sxm:1", **KW}),
                   Config("h200", {"system": "h200:1", **KW})])  # fmt: skip
    df = cmp.to_dataframe()
    assert list(df["label"]) == ["h100", "h200"]
    assert df["tpot_s"].iloc[1] < df["tpot_s"].iloc[0]  # more HBM bandwidth, faster decode


def test_without_pandas_the_error_names_the_extra(monkeypatch):
    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real(name, *a, **k)

    r = predict(system="h100-sxm:1", **KW)
    monkeypatch.delitem(sys.modules, "pandas")
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ConfigError, match=r"needs pandas: pip install 'xpusim\[dataframe\]'"):
        r.to_dataframe()
