"""CLI contract: flags, JSON keys, one-line errors with exit code 2."""

import json

import pytest

from explore.cli import main

PREDICT = [
    "predict",
    "--system",
    "h100-sxm:8",
    "--model",
    "llama-3.1-70b",
    "--quant",
    "fp8",
    "--tp",
    "8",
    "--batch",
    "64",
    "--input-len",
    "2048",
    "--output-len",
    "256",
]


def test_predict_json(capsys):
    assert main([*PREDICT, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] and d["batch"] == 64 and d["ttft_s"] > 0 and d["version"]


def test_predict_table_mentions_everything(capsys):
    assert main(PREDICT) == 0
    out = capsys.readouterr().out
    for word in (
        "TTFT",
        "TPOT",
        "tokens/s per user",
        "per chip",
        "KV cache",
        "reserve",
        "prefill",
        "decode",
        "energy",
        "gemm_8bit",
    ):
        assert word in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "predict",
                "--system",
                "h100:8",
                "--model",
                "llama-3-8b",
                "--batch",
                "1",
                "--input-len",
                "8",
                "--output-len",
                "8",
            ],
            "unknown chip 'h100'",
        ),
        ([*PREDICT[:8], "3", *PREDICT[9:]], "must equal the system's 8 chips"),
        (["predict", "--system", "mixtral-8x7b"], "--model is required"),
        (["predict", "--bogus"], "unrecognized arguments"),
        (["show", "nope"], "unknown preset"),
        ([*PREDICT, "--engine", "nope"], "--engine 'nope': unknown; choose one of"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_scenario_file(tmp_path, capsys):
    sc = tmp_path / "s.toml"
    sc.write_text(
        'system = "h100-sxm:8"\nmodel = "llama-3.1-70b"\nbatch = 8\ninput_len = 128\n'
        'output_len = 16\n[quant]\nweights = "nvfp4"\nactivations = "fp8"\n'
        'kv_cache = "fp8"\n[parallelism]\ntp = 8\n[efficiency]\nmemory = 0.5\n'
    )
    assert main(["predict", "--scenario", str(sc), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["config"]["quant"]["weights"] == "nvfp4"
    assert d["efficiency"]["memory"]["source"] == "user"
    sc.write_text('system = "h100-sxm:8"\nbatchsize = 8\n')
    assert main(["predict", "--scenario", str(sc)]) == 2
    assert "batchsize: unknown key" in capsys.readouterr().err


def test_presets_and_show(capsys):
    assert main(["presets", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "groq-lpu" in d["chips"] and "deepseek-v3" in d["models"]
    assert main(["show", "h100-sxm", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sources"]["tdp_w"]["kind"] == "datasheet"
