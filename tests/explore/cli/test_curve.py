"""``xpusim curve``: the contract keys of ``--json``, strict JSON, the Pareto front, SLOs, the
chart (axes labelled, through the Figure) and one-line errors (issue 14 item 3)."""

from __future__ import annotations

import json

import pytest

from explore.api.curve import batch_grid, curve
from explore.cli import main

BASE = ["curve", "--model", "llama-3.1-8b", "--quant", "fp8", "--input-len", "512",
        "--output-len", "64"]  # fmt: skip
KEYS = {"system", "parallelism", "batch", "tokens_per_s_per_user", "output_tokens_per_s_per_chip"}


def _strict(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def test_batch_grid():
    """Powers of two below the largest batch that fits, and that batch."""
    assert batch_grid(0) == []
    assert batch_grid(1) == [1]
    assert batch_grid(8) == [1, 2, 4, 8]
    assert batch_grid(100) == [1, 2, 4, 8, 16, 32, 64, 100]


def test_json_contract_two_systems(capsys):
    argv = [*BASE, "--system", "h100-sxm:2", "--system", "b200:2", "--tpot-slo-ms", "15",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    d = _strict(capsys.readouterr().out)
    pts = d["points"]
    assert pts and all(p.keys() >= KEYS for p in pts)
    assert {p["system"] for p in pts} == {"h100-sxm:2", "b200:2"}
    assert all(set(p["parallelism"]) == {"tp", "pp", "ep", "dp"} for p in pts)
    # both mappings of two chips, several batches each
    assert {(p["parallelism"]["tp"], p["parallelism"]["dp"]) for p in pts} >= {(1, 2), (2, 1)}
    for system in ("h100-sxm:2", "b200:2"):
        front = [p for p in pts if p["system"] == system and p["pareto"]]
        assert front, system
        assert all(p["tpot_s"] <= 0.015 for p in front)  # the front meets the SLO
        others = [p for p in pts if p["system"] == system and p["meets_slo"]]
        for p in front:  # no SLO-meeting point beats a front point on both axes
            assert not any(
                q["tokens_per_s_per_user"] > p["tokens_per_s_per_user"]
                and q["output_tokens_per_s_per_chip"] > p["output_tokens_per_s_per_chip"]
                for q in others
            )
    assert all(abs(p["tokens_per_s_per_user"] * p["tpot_s"] - 1) < 1e-9 for p in pts)


def test_one_evaluation_path_agrees_with_predict():
    """A curve point is the static batch ``predict`` costs at the same mapping and batch."""
    from explore.api.predict import predict

    c = curve(["h100-sxm:2"], model="llama-3.1-8b", quant="fp8", input_len=512, output_len=64)
    p = next(q for q in c.points if q.parallelism["tp"] == 2 and q.batch == 8)
    r = predict("h100-sxm:2", "llama-3.1-8b", "fp8", tp=2, pp=1, dp=1, batch=8,
                input_len=512, output_len=64)  # fmt: skip
    assert p.output_tokens_per_s_per_chip == pytest.approx(r.output_tokens_per_s_per_chip)
    assert p.tpot_s == pytest.approx(r.tpot_s)


def test_table_and_plot(tmp_path, capsys):
    out = tmp_path / "fig"
    argv = [*BASE, "--system", "h100-sxm:2", "--tpot-slo-ms", "15", "--ttft-slo-ms", "500",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Pareto front" in text and "tokens/s per user" in text
    png = out / "curve.png"
    assert png.stat().st_size > 10_000
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 600 and im.size[1] > 400


def test_figure_axes_labelled_with_slo_line():
    from explore.report.plots import curve_figure

    c = curve(["h100-sxm:2"], model="llama-3.1-8b", quant="fp8", input_len=512, output_len=64,
              tpot_slo_s=0.015)  # fmt: skip
    fig = curve_figure(c)
    ax = fig.axes[0]
    assert "per chip" in ax.get_xlabel() and "per user" in ax.get_ylabel()
    assert ax.get_xscale() == "log" and ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("TPOT SLO 15 ms" in x for x in labels)
    assert any(abs(line.get_ydata()[0] - 1 / 0.015) < 1e-6 for line in ax.get_lines()
               if len(set(line.get_ydata())) == 1)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--system", "h100-sxm:1", "--model", "llama-3.1-405b"], "h100-sxm:1: no mapping"),
        (["--system", "h100-sxm:2", "--tpot-slo-ms", "0"], "--tpot-slo-ms"),
        (["--system", "nope:2"], "nope"),
        (["--system", "h100-sxm:2", "--input-len", "x"], "--input-len"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, extra, message):
    argv = [*BASE, *extra]
    if "--model" in extra:  # replace the base model
        i = argv.index("--model")
        del argv[i:i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
