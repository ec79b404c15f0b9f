"""``predict --ops`` and ``predict --plot DIR`` (issue 14 item 4): the per-op table of both
phases with shares summing to 100 %, the ``ops`` JSON, and the roofline and time-breakdown PNGs
with labelled axes (read through the Figure objects)."""

from __future__ import annotations

import json
import re

import pytest

from explore.api.predict import predict
from explore.cli import main

PREDICT = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-8b", "--quant", "fp8",
           "--tp", "2", "--dp", "4", "--batch", "16", "--input-len", "1024",
           "--output-len", "128"]  # fmt: skip
ROW = {"name", "count", "seconds", "share", "bound", "bytes", "comm_bytes", "flops",
       "arithmetic_intensity", "achieved_flops_per_s"}  # fmt: skip


def _strict(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture(scope="module")
def result():
    return predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=2, dp=4, batch=16, input_len=1024,
                   output_len=128)  # fmt: skip


def test_ops_table_both_phases_shares_sum_to_100(capsys):
    assert main([*PREDICT, "--ops"]) == 0
    out = capsys.readouterr().out
    for phase in ("prefill", "decode"):
        block = out.split(f"{phase}: ops of one pass")[1].split("└")[0]
        assert "share" in block and "FLOPs" in block and "bytes" in block
        shares = [float(x) for x in re.findall(r"│\s+(\d+\.\d) %\s+│", block)]
        assert len(shares) >= 10  # every folded op has a row
        assert sum(shares) == pytest.approx(100, abs=1.0)
        assert "attn_allreduce" in block and "interconnect" in block  # TP2: collectives
    assert "-0 %" not in out


def test_ops_json(capsys):
    assert main([*PREDICT, "--ops", "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    assert set(d["ops"]) == {"prefill", "decode"}
    for rows in d["ops"].values():
        assert rows and all(r.keys() >= ROW for r in rows)
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        gemm = next(r for r in rows if r["name"] == "qkv_proj")
        assert gemm["flops"] > 0 and gemm["bytes"] > 0
        assert gemm["arithmetic_intensity"] == pytest.approx(gemm["flops"] / gemm["bytes"])


def test_op_rows_agree_with_the_step(result):
    """Op seconds add up to the step's serial op sum; FLOPs to the graph's totals."""
    from explore.report.ops import ops_of

    step = result.decode_step
    rows = ops_of(result)["decode"]
    assert sum(r["seconds"] for r in rows) == pytest.approx(
        sum(x["seconds"] for x in step.op_table()))
    g = step.graph
    assert sum(r["flops"] for r in rows) == pytest.approx(g.total("flops") + g.total("vflops"))


def test_plot_writes_pngs(tmp_path, capsys):
    assert main([*PREDICT, "--plot", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    from PIL import Image

    for name in ("roofline.png", "time_breakdown.png"):
        path = tmp_path / "p" / name
        assert f"plot: {path}" in out
        with Image.open(path) as im:
            assert im.size[0] > 600 and im.size[1] > 400


def test_plot_into_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main([*PREDICT, "--plot", str(f)]) == 2
    assert "--plot" in capsys.readouterr().err


def test_roofline_figure(result):
    from explore.report.plots import roofline_figure

    ax = roofline_figure(result).axes[0]
    assert "arithmetic intensity" in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # the compute roof and one memory roof per level of the H100 (L2, HBM3)
    assert any(x.startswith("matrix fp8: 1.98 PFLOP/s") for x in labels)
    assert any(x.startswith("L2") for x in labels) and any(x.startswith("HBM3") for x in labels)
    assert {"prefill ops", "decode ops"} <= set(labels)


def test_breakdown_figure(result):
    from explore.report.plots import breakdown_figure

    ax = breakdown_figure(result).axes[0]
    assert ax.get_ylabel() and ax.get_xlabel() and ax.get_title()
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert [t.split()[0] for t in ticks] == ["prefill", "decode"]
    heights = {}
    for bar in ax.patches:  # the stacked segments of each bar add up to 100 %
        x = round(bar.get_x(), 6)
        heights[x] = heights.get(x, 0.0) + bar.get_height()
    assert len(heights) == 2 and all(h == pytest.approx(100) for h in heights.values())
