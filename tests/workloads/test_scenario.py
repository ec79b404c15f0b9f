"""Predict/serve scenario files: what loads, and one-line errors naming file, key and fix."""

from pathlib import Path

import pytest

from arch.base import ConfigError
from explore.cli import main
from workloads.scenario import PredictScenario, load_predict_scenario

GOOD = """
system = "h100-sxm:8"
model = "llama-3.1-70b"
batch = 8
input_len = 128
output_len = 16
[parallelism]
tp = 8
[efficiency]
memory = 0.9
[serving]
rate = 20.0
pd_ratio = "1:3"
[serving.spec]
k = 2
acceptance = [0.8, 0.6]
"""


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_predict_scenario(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def test_good_scenario_loads_frozen(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    sc = load_predict_scenario(path)
    assert sc.batch == 8 and sc.parallelism.tp == 8 and sc.serving.spec.acceptance == [0.8, 0.6]
    assert sc.efficiency == {"memory": 0.9}
    with pytest.raises(ValueError, match="frozen"):
        sc.batch = 4  # type: ignore[misc]


def test_relative_toml_paths_are_beside_the_scenario(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('chip = "my_chip.toml"\ncount = 4\nmodel = "/abs/m.toml"\nbatch = "max"\n')
    sc = load_predict_scenario(path)
    assert sc.system_spec() == f"{tmp_path / 'my_chip.toml'}:4"
    assert sc.model == "/abs/m.toml" and sc.batch == "max"
    assert PredictScenario(chip="x.toml").chip == "x.toml"  # no file, no folder to join


def test_unknown_key_names_it_and_the_valid_ones(tmp_path):
    msg = _error(tmp_path, 'system = "h100-sxm:8"\nbatchsize = 8\n')
    assert "batchsize: unknown key; did you mean 'batch'?" in msg
    assert "valid keys: batch, chip, count," in msg
    msg = _error(tmp_path, "[serving]\nrat = 5\n")
    assert "serving.rat: unknown key" in msg and "rate" in msg


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[parallelism]\ntp = "many"\n', "parallelism.tp", "valid integer"),
        ("[parallelism]\ntp = 0\n", "parallelism.tp", "greater than or equal to 1 (got 0)"),
        ("tpot_slo_ms = -5\n", "tpot_slo_ms", "greater than 0"),
        ("tpot_slo_ms = nan\n", "tpot_slo_ms", "finite number (got nan)"),
        ("[serving]\nrate = inf\n", "serving.rate", "finite number (got inf)"),
        ("[serving]\nrequests = 0\n", "serving.requests", "greater than or equal to 1"),
        ("[serving]\ninput_len = 0\n", "serving.input_len", "greater than or equal to 1"),
        ('[serving]\npd_ratio = "0:1"\n', "serving.pd_ratio", "give P:D with positive integers"),
        ('batch = "many"\n', "batch", "give a positive integer or 'max'"),
        ("batch = 0\n", "batch", "give a positive integer or 'max'"),
        ("[efficiency]\nmemry = 0.5\n", "efficiency.memry", "unknown factor; known: gemm_16bit"),
        ("[efficiency]\nmemory = 0\n", "efficiency.memory", "must be > 0"),
        ("[serving.spec]\nk = 3\nacceptance = [0.8]\n", "serving.spec.acceptance", "k = 3"),
        ("[serving.spec]\nk = 1\nacceptance = []\n", "serving.spec.acceptance", "k = 1"),
        ("[serving.spec]\nk = 1\nacceptance = [1.5]\n", "serving.spec.acceptance.0", "<= 1"),
        ("serving = 5\n", "serving", "valid dictionary"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(tmp_path, text, where, what):
    msg = _error(tmp_path, text)
    assert f": {where}: " in msg and what.replace("<=", "less than or equal to") in msg


def test_directory_binary_and_missing_files(tmp_path):
    for path, what in ((tmp_path, "is a directory"), (tmp_path / "nope.toml", "file not found")):
        with pytest.raises(ConfigError, match=what):
            load_predict_scenario(path)
    binary = tmp_path / "b.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="not a text file"):
        load_predict_scenario(binary)
    broken = tmp_path / "t.toml"
    broken.write_text("batch = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_predict_scenario(broken)


@pytest.mark.parametrize("command", ["predict", "serve"])
@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("[parallelism]\ntp = 0\n", "parallelism.tp"),
        ('[serving]\nrate = "many"\n', "serving.rate"),
        ("bogus = 1\n", "bogus: unknown key"),
        (None, "is a directory"),
    ],
)
def test_cli_exit_2_one_line_no_traceback(tmp_path, capsys, command, text, what):
    path = tmp_path
    if text is not None:
        path = tmp_path / "s.toml"
        path.write_text(text)
    assert main([command, "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert what in err and err.count("\n") == 1 and "Traceback" not in err
