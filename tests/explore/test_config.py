"""One config story: search spaces and TCO scenarios go through arch.base.load_config, and
every bad file is one ConfigError line ``FILE: FIELD.PATH: what is wrong and the fix``."""

from pathlib import Path

import pytest

from arch.base import ConfigError, field_path
from explore.cli import main
from explore.search.space import load_space
from explore.tco.fleet import load_tco_scenario

ROOT = Path(__file__).parents[2]
SPACE = (ROOT / "tests" / "data" / "space_bandwidth.toml").read_text()
HBM = "hbm_stacks = { low = 1, high = 8 }"
TCO = """
[scenario]
model = "llama-3.1-8b"
input_len = 512
output_len = 128
load_output_tokens_per_s = 20000
daily_profile = [0.5, 1.0, 1.5]
[monte_carlo]
samples = 50
[[fleet]]
name = "h100"
system = "h100-sxm:8"
tp = 1
[[fleet]]
name = "b200"
system = "b200:8"
tp = 1
"""


def _error(tmp_path: Path, loader, text: str) -> str:
    path = tmp_path / "f.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        loader(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg[len(f"{path}: ") :]


def test_field_paths_read_like_the_toml():
    assert field_path(("fleet", 2, "tp")) == "[[fleet]] 2.tp"
    assert field_path(("chip", "sram_bytes", "low")) == "chip.sram_bytes.low"
    assert field_path(("efficiency", "memry", "[key]")) == "efficiency.memry"
    assert field_path(()) == ""


def test_one_loader_for_both_files():
    sc = load_tco_scenario(ROOT / "examples" / "tco_asic_payback.toml")
    assert [f.name for f in sc.fleets] == ["8x H100 FP8", "8x custom ASIC FP8"]
    assert sc.fleets[1].system.chip.name == "8x-custom-asic-fp8" and sc.fleets[1].nre_usd > 0
    space = load_space(ROOT / "examples" / "sweep_decode_chip_70b.toml")
    assert [d.key for d in space.dims][:2] == ["chip.peak_bf16_flops_per_s", "chip.sram_bytes"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SPACE.replace(HBM, "hbm_stacks = { low = 1, hi = 8 }"),
         "chip.hbm_stacks.hi: unknown key; did you mean 'high'? valid keys: choices, high, log,"),
        (SPACE.replace("seed = 1", "sed = 1"), "study.sed: unknown key; did you mean 'seed'?"),
        (SPACE + "[chips]\nx = 1\n", "chips: unknown key; did you mean 'chip'? valid keys: base,"),
        (SPACE.replace("batch = 1", "batchsize = 1"), "base.batchsize: unknown key"),
        (SPACE.replace('node = "N4"', 'nod = "N4"'), "base.chip.nod: unknown key"),
        (SPACE.replace("n_trials = 60", 'n_trials = "many"'), "study.n_trials: Input should be a "
         "valid integer, unable to parse string as an integer (got 'many')"),
        (SPACE.replace("n_trials = 60", "n_trials = 0"), "study.n_trials: Input should be great"),
        (SPACE.replace(HBM, "hbm_stacks = { low = -1, high = 8 }"), "chip.hbm_stacks.low: Input "
         "should be greater than or equal to 0 (got -1)"),
        (SPACE.replace("[100e12,", "[nan,"), "chip.peak_bf16_flops_per_s.choices.0: Input should "
         "be a finite number (got nan)"),
        (SPACE.replace(HBM, "hbm_stacks = { choices = [] }"), "chip.hbm_stacks.choices: choices "
         "is empty"),
        (SPACE.replace(HBM, "hbm_stacks = { low = 8, high = 1 }"), "chip.hbm_stacks.high: low "
         "must be <= high"),
        (SPACE.replace(HBM, "hbm_stacks = { low = 1, high = 8, step = 0 }"),
         "chip.hbm_stacks.step: step must be > 0"),
        (SPACE + 'sram_bytes = { low = "0 MB", high = "2 GB/s" }\n',
         "chip.sram_bytes.high: unit 'GB/s' is bytes_per_s, field expects bytes"),
        (SPACE.replace('"200 GB/s"', '"200 GB"'), "base.chip.link_bytes_per_s: unit 'GB'"),
        (SPACE.replace("batch = 1", "batch = 1\ntco = { pue = 0.5 }"), "base.tco.pue: Input "
         "should be greater than or equal to 1 (got 0.5)"),
        (SPACE.replace('["tokens_per_s_per_user"]', "[]"), "study.objectives: name at least one"),
        (SPACE.replace('"tdp_w <= 300"', '"tdp_w <= inf"'), "study.constraints.0: constraint "
         "'tdp_w <= inf': the limit must be a finite number"),
        (SPACE.replace('sampler = "tpe"', 'sampler = "cmaes"'), "study.sampler: Input should be "
         "'tpe', 'nsga2', 'random' or 'grid' (got 'cmaes')"),
        (SPACE + "[deploy]\ntp = { choices = [0, 8] }\n", "deploy.tp.choices.0: Input should be "
         "greater than or equal to 1 (got 0)"),
        (SPACE.replace('model = "llama-3.1-8b"', ""), "base.model: required key is missing"),
        (SPACE.split("[chip]", maxsplit=1)[0],
         "no dimensions; add a [chip], [model] or [deploy] table"),
    ],
)  # fmt: skip
def test_bad_space_is_one_line(tmp_path, text, expected):
    assert _error(tmp_path, load_space, text).startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TCO.replace("tp = 1", 'tp = "many"', 1), "[[fleet]] 0.tp: Input should be a valid "
         "integer, unable to parse string as an integer (got 'many')"),
        (TCO.replace("tp = 1\n[[", "tp = 0\n[["), "[[fleet]] 0.tp: Input should be greater than "
         "or equal to 1 (got 0)"),
        (TCO.replace('name = "b200"', 'name = "b200"\nqant = "fp8"'), "[[fleet]] 1.qant: unknown "
         "key; did you mean 'quant'? valid keys: chips, design, dp, engine, ep, name, pp, "
         "price_usd,"),
        (TCO.replace("[0.5, 1.0, 1.5]", "[]"), "scenario.daily_profile: give relative loads"),
        (TCO.replace("[0.5, 1.0, 1.5]", "[0.5, nan]"), "scenario.daily_profile.1: Input should be"
         " a finite number (got nan)"),
        (TCO.replace("= 20000", "= -1"), "scenario.load_output_tokens_per_s: Input should be "
         "greater than 0 (got -1)"),
        (TCO.replace("= 20000", "= inf"), "scenario.load_output_tokens_per_s: Input should be a "
         "finite number (got inf)"),
        (TCO.replace("samples = 50", "samples = 0"), "monte_carlo.samples: Input should be "
         "greater than or equal to 1 (got 0)"),
        (TCO + "[tco]\npeu = 1.2\n", "tco.peu: unknown key; did you mean 'pue'?"),
        (TCO + "[tco]\npue = 0.5\n", "tco.pue: Input should be greater than or equal to 1"),
        (TCO + "[uncertainty]\npue = [1.5, 1.2]\n", "uncertainty.pue: give [low, high] with low"),
        (TCO + "[uncertainty]\npue = [0.5, 1.2]\n", "uncertainty.pue: Input should be greater"),
        (TCO + "[uncertainty]\nbogus = [1, 2]\n", "uncertainty.bogus: not an input that can vary;"
         " one of years,"),
        (TCO + "[payback]\nreference = 'x'\n", "payback.reference: no fleet named 'x'; one of "
         "'h100', 'b200'"),
        (TCO.replace('"b200"', '"h100"'), "[[fleet]] 1.name: a second fleet named 'h100'"),
        (TCO.replace('system = "b200:8"', ""), "[[fleet]] 1: give system = 'CHIP:N' or a design"),
        (TCO.replace('"b200:8"', '"b2000:8"'), "[[fleet]] 1.system: unknown chip 'b2000'"),
        (TCO.split("[[fleet]]", maxsplit=1)[0], "fleet: no [[fleet]] tables; add at least one"),
        ("[scenario]\nmodel = 'tiny'\n", "scenario.input_len: required key is missing; add it "
         "(+3 more)"),
    ],
)  # fmt: skip
def test_bad_tco_scenario_is_one_line(tmp_path, text, expected):
    assert _error(tmp_path, load_tco_scenario, text).startswith(expected)


def test_bad_design_table_names_its_key(tmp_path):
    asic = (ROOT / "examples" / "tco_asic_payback.toml").read_text()
    cases = [
        (asic.replace("hbm_stacks = 4", "hbm_stack = 4"), "[[fleet]] 1.design.hbm_stack: unknown"),
        (asic.replace('"1.5 GHz"', '"1.5 GB"'), "[[fleet]] 1.design.clock_hz: unit 'GB' is bytes"),
        (asic.replace('"256 MB"', "inf"), "[[fleet]] 1.design.sram_bytes: Input should be a fini"),
        (asic.replace('node = "N4"', 'node = "N1"'), "[[fleet]] 1.design: node 'N1': unknown"),
    ]
    for text, expected in cases:
        assert _error(tmp_path, load_tco_scenario, text).startswith(expected)


@pytest.mark.parametrize("loader", [load_space, load_tco_scenario])
def test_directory_and_binary_paths(tmp_path, loader):
    with pytest.raises(ConfigError, match="is a directory; give a TOML file"):
        loader(tmp_path)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 64)
    with pytest.raises(ConfigError, match="not a text file"):
        loader(binary)


@pytest.mark.parametrize(
    ("argv", "text", "what"),
    [
        (["tco"], TCO.replace("samples = 50", "samples = 0"), "monte_carlo.samples"),
        (["tco"], TCO.replace("tp = 1", 'tp = "many"', 1), "[[fleet]] 0.tp"),
        (["tco"], None, "is a directory"),
        (["search"], SPACE.replace(HBM, "hbm_stacks = { choices = [] }"), "choices is empty"),
        (["sweep"], SPACE.replace(HBM, "hbm_stacks = { low = 1, hi = 8 }"), "hbm_stacks.hi"),
        (["search"], None, "is a directory"),
    ],
)
def test_cli_exit_2_one_line_no_traceback(tmp_path, capsys, argv, text, what):
    path = tmp_path
    if text is not None:
        path = tmp_path / "f.toml"
        path.write_text(text)
    extra = ["--out", str(tmp_path / "out")] if argv[0] in ("search", "sweep") else []
    assert main([*argv, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert what in err and err.count("\n") == 1 and "Traceback" not in err
