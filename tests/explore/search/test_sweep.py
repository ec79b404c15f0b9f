"""``xpusim sweep``: a deployment that cannot run is rows with fits = 0, a missing design field is
one line."""

import csv

from explore.cli import main

SPACE = """
[study]
objectives = ["tokens_per_s_per_user"]
[base]
model = "llama-3.1-8b"
quant = "fp8"
chips = 8
batch = 1
[base.chip]
node = "N4"
{peak}hbm_stacks = 4
[chip]
sram_bytes = {{ choices = [0, 1e8] }}
[deploy]
pp = {{ choices = [1, 3] }}
"""


def test_a_deployment_that_cannot_run_is_written_as_not_fitting(tmp_path, capsys):
    """PP 3 does not divide 8 chips: its two rows are written with fits = 0 and no timings (the
    chip's area stays, it does not depend on the deployment); PP 1 runs on both designs."""
    space, out = tmp_path / "s.toml", tmp_path / "s.csv"
    space.write_text(SPACE.format(peak="peak_bf16_flops_per_s = 1e15\n"))
    assert main(["sweep", str(space), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["deploy.pp"], r["fits"]) for r in rows] == [("1", "1"), ("1", "1"), ("3", "0"),
                                                           ("3", "0")]  # fmt: skip
    assert all(r["tpot_s"] == "nan" and float(r["area_mm2"]) > 0 for r in rows[2:])


def test_a_design_without_its_peak_is_one_line(tmp_path, capsys):
    space = tmp_path / "s.toml"
    space.write_text(SPACE.format(peak=""))
    assert main(["sweep", str(space), "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "peak_bf16_flops_per_s is required" in err
