"""TCO fleets sized from the simulated steady state where the scenario gives distributions."""

import pytest

from arch.base import ConfigError
from explore.tco import load_tco_scenario
from explore.tco.fleet import operate

FLEET = ('[[fleet]]\nname = "h100"\nsystem = "h100-sxm:8"\nquant = "fp8"\ntp = 8\npp = 1\n'
         "ep = 1\ndp = 1\nprice_usd = 25000\n")  # fmt: skip


def _scenario(tmp_path, inp, out):
    path = tmp_path / "tco.toml"
    path.write_text(f'[scenario]\nmodel = "llama-3.1-70b"\ninput_len = {inp}\n'
                    f"output_len = {out}\nload_output_tokens_per_s = 1000\n"
                    f"tokens_per_s_per_user = 62.5\n{FLEET}")  # fmt: skip
    return load_tco_scenario(path)


def test_a_heavy_tailed_scenario_sizes_on_the_steady_state(tmp_path):
    """Same mean lengths (1,024 in, 64 out), output lognormal with CV 2: the fleet is sized on
    the simulated throughput at the SLO batch cap, lower than the static batch at the means, and
    the operating point says it was simulated."""
    fixed = _scenario(tmp_path, 1024, 64)
    heavy = _scenario(tmp_path, '"lognormal:1024:512"', '"lognormal:64:128"')
    assert (heavy.input_len, heavy.output_len) == (1024, 64)
    assert heavy.lengths == ("lognormal:1024:512", "lognormal:64:128")
    a, b = operate(fixed, fixed.fleets[0]), operate(heavy, heavy.fleets[0])
    assert b.batch == a.batch
    assert b.replica_tokens_per_s < 0.95 * a.replica_tokens_per_s
    assert any("steady state SIMULATED" in n for n in b.notes)
    assert not any("SIMULATED" in n for n in a.notes)


def test_a_bad_length_spelling_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="output_len"):
        _scenario(tmp_path, 1024, '"lognormal:64"')
