"""CLI contract: --set on predict/serve/tco/compare, xpusim compare, --version, flag aliases.
Every JSON output parses strictly (no NaN/Infinity)."""

import json
from pathlib import Path

import pytest

from explore.cli import main

ROOT = Path(__file__).resolve().parents[3]
PREDICT = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-70b", "--quant", "fp8",
           "--tp", "8", "--batch", "64", "--input-len", "2048", "--output-len", "256"]  # fmt: skip
CONTRACT = [
    "memory.hbm.bandwidth_bytes_per_s=6.7 TB/s",
    "matrix.peak_flops_per_s.fp8=2.5 PFLOP/s",
    "scale_up.bandwidth_bytes_per_s=900 GB/s",
]


def _raise(token):
    raise ValueError(f"non-standard JSON constant {token}")


def strict(text: str):
    return json.loads(text, parse_constant=_raise)


def _json(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return strict(capsys.readouterr().out)


@pytest.fixture(scope="module")
def preset_predict():
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main([*PREDICT, "--json"]) == 0
    return strict(buf.getvalue())


@pytest.mark.parametrize("edit", CONTRACT)
def test_predict_set_contract_spellings(capsys, preset_predict, edit):
    d = _json(capsys, [*PREDICT, "--set", edit])
    (o,) = d["overrides"]
    assert o["path"] == edit.split("=")[0] and o["value"] != o["was"]
    # each of these binds some phase of this run: the prediction moves, and no note says otherwise
    assert o["note"] is None
    assert (d["ttft_s"], d["tpot_s"]) != (preset_predict["ttft_s"], preset_predict["tpot_s"])


def test_predict_set_without_effect_says_why(capsys, preset_predict):
    d = _json(capsys, [*PREDICT, "--set", "memory.L2.capacity_bytes=100 MB",
                       "--set", "scale_out.bandwidth_bytes_per_s=100 GB/s"])  # fmt: skip
    assert all(o["note"].startswith("no effect: ") for o in d["overrides"])
    assert "cache" in d["overrides"][0]["note"] and "scale-up domain" in d["overrides"][1]["note"]
    assert d["tpot_s"] == preset_predict["tpot_s"]


def test_predict_set_table_lists_edit(capsys):
    assert main([*PREDICT, "--set", CONTRACT[0]]) == 0
    assert "what-if: memory.hbm.bandwidth_bytes_per_s = 6.7 TB/s (preset: 3.35 TB/s)" in (
        capsys.readouterr().out)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("memory.hbm.bandwith_bytes_per_s=6 TB/s", ["closest: memory.hbm.bandwidth_bytes_per_s"]),
        ("memory.hbm.bandwidth_bytes_per_s=6.7 GB", ["unit 'GB' is bytes", "TB/s"]),
        ("memory.hbm.bandwidth_bytes_per_s", ["PATH=VALUE"]),
        ("mi300x:tdp_w=1 kW", ["not this run's chip"]),
    ],
)
def test_set_errors_exit_2_one_line(capsys, edit, words):
    assert main([*PREDICT, "--set", edit]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xpusim: error: --set ")
    for w in words:
        assert w in err


def test_serve_set_and_slo_aliases(capsys):
    argv = ["serve", "--system", "h100-sxm:8", "--model", "llama-3.1-8b", "--quant", "fp8",
            "--tp", "1", "--dp", "8", "--rate", "5", "--requests", "50", "--input-len", "256",
            "--output-len", "32", "--set", CONTRACT[0], "--set", "scale_up.links=20"]  # fmt: skip
    new = _json(capsys, [*argv, "--ttft-slo-ms", "500", "--tpot-slo-ms", "50"])
    old = _json(capsys, [*argv, "--slo-ttft-ms", "500", "--slo-tpot-ms", "50"])
    new.pop("wall_s"), old.pop("wall_s")
    assert new == old
    assert [o["path"] for o in new["overrides"]] == ["memory.hbm.bandwidth_bytes_per_s",
                                                     "scale_up.links"]  # fmt: skip
    assert new["overrides"][1]["note"].startswith("no effect: one chip per replica")
    assert new["config"]["system"] == "h100-sxm:8"


def test_serve_out_is_plot(tmp_path, capsys):
    argv = ["serve", "--system", "h100-sxm:1", "--model", "llama-3.1-8b", "--quant", "fp8",
            "--rate", "2", "--requests", "20", "--input-len", "128", "--output-len", "16"]
    for flag in ("--out", "--plot"):
        d = _json(capsys, [*argv, flag, str(tmp_path / flag[2:])])
        assert d["plots"] and all(Path(p).parent == tmp_path / flag[2:] for p in d["plots"])


def test_tco_set_per_fleet_and_out_alias(tmp_path, capsys):
    scen = str(ROOT / "examples" / "tco_405b_b200_fp8_vs_fp4.toml")
    edit = "8x B200 FP8:memory.hbm.bandwidth_bytes_per_s=10 TB/s"
    d = _json(capsys, ["tco", scen, "--set", edit])
    assert [(o["fleet"], o["value"]) for o in d["overrides"]] == [("8x B200 FP8", 10e12)]
    assert main(["tco", scen, "--set", "nope:tdp_w=1 kW"]) == 2
    assert "no fleet or chip 'nope'" in capsys.readouterr().err
    assert main(["tco", scen, "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000


COMPARE = ["compare", "--model", "llama-3.1-70b", "--quant", "fp8", "--batch", "1",
           "--input-len", "1024", "--output-len", "128"]  # fmt: skip


def test_compare_json_shape_and_deltas(capsys):
    d = _json(capsys, [*COMPARE, "--system", "groq-lpu:576", "--system", "h100-sxm:8"])
    assert [c["label"] for c in d["configs"]] == ["groq-lpu:576", "h100-sxm:8"]
    a, b = (c["result"] for c in d["configs"])
    assert {"ttft_s", "tpot_s", "config", "parallelism", "version"} <= set(a)
    tpot = d["deltas"]["tpot_s"]["values"]
    assert tpot[1]["delta"] == pytest.approx(b["tpot_s"] - a["tpot_s"])
    assert tpot[1]["ratio"] == pytest.approx(b["tpot_s"] / a["tpot_s"])
    assert tpot[0]["ratio"] == 1.0


def test_compare_repeated_flags_pair_and_targeted_set(capsys):
    d = _json(capsys, [*COMPARE[:5], "--quant", "bf16", *COMPARE[5:], "--system", "mi300x:8",
                       "--system", "h100-sxm:8", "--set",
                       "h100-sxm:memory.hbm.capacity_bytes=192 GB"])  # fmt: skip
    (a, b) = d["configs"]
    assert a["result"]["config"]["system"] == "mi300x:8"
    assert a["result"]["config"]["quant"]["weights"] == "fp8"
    assert b["result"]["config"]["quant"]["weights"] == "bf16"
    assert "overrides" not in a["result"] and b["result"]["overrides"][0]["value"] == 192e9
    assert b["result"]["memory_per_chip_bytes"]["capacity"] == pytest.approx(192e9, rel=0.01)


def test_compare_unequal_repeats_exit_2(capsys):
    argv = [*COMPARE, "--system", "a:1", "--system", "b:1", "--tp", "1", "--tp", "2", "--tp", "4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--system 2 times" in err and "--tp 3 times" in err and err.count("\n") == 1


def test_compare_single_config_with_set_plot_and_report(tmp_path, capsys):
    argv = [*COMPARE, "--system", "h100-sxm:8", "--set", CONTRACT[0], "--out", str(tmp_path),
            "--report", str(tmp_path / "r.html")]  # fmt: skip
    d = _json(capsys, argv)
    assert [c["label"] for c in d["configs"]] == ["preset", CONTRACT[0]]
    assert d["deltas"]["tpot_s"]["values"][1]["ratio"] < 1.0  # twice the bandwidth: faster decode
    from PIL import Image

    with Image.open(d["plot"]) as im:
        assert im.size[0] > 800 and im.size[1] > 600
    html = (tmp_path / "r.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html and "what-if edits" in html


def test_compare_figure_axes_are_labelled(capsys):
    from explore.report.compare import compare_figure

    d = _json(capsys, [*COMPARE, "--system", "groq-lpu:576", "--system", "h100-sxm:8"])
    fig = compare_figure(d)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == len(d["deltas"])
    assert all(ax.get_ylabel() and ax.get_xlabel() and ax.get_title() for ax in shown)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("xpusim ")


def test_predict_slo_alias(capsys):
    argv = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-8b", "--quant", "fp8",
            "--tp", "1", "--dp", "8", "--batch", "max", "--input-len", "512",
            "--output-len", "128"]  # fmt: skip
    assert _json(capsys, [*argv, "--tpot-slo-ms", "20"]) == _json(
        capsys, [*argv, "--slo-tpot-ms", "20"])


def test_help_says_trace_direction(capsys):
    for cmd, words in (("predict", "output:"), ("serve", "input:")):
        assert main([cmd, "--help"]) == 0
        assert words in " ".join(capsys.readouterr().out.split())
