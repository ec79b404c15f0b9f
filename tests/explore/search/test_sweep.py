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


def _no_compute(monkeypatch):
    """Make any costing fail loudly: a guard must refuse before the work starts."""
    import importlib

    sweep_mod = importlib.import_module("explore.search.sweep")  # the package shadows the name

    def boom(*a, **k):
        raise AssertionError("the sweep computed before refusing")

    monkeypatch.setattr(sweep_mod, "_combo", boom)
    monkeypatch.setattr(sweep_mod, "design_arrays", boom)


def test_a_grid_over_the_limit_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """2 SRAM sizes x 2 PP = 4 points: over --max-points 3 it is one line with the count and
    the override; nothing is computed or written. The default limit takes it."""
    space, out = tmp_path / "s.toml", tmp_path / "s.csv"
    space.write_text(SPACE.format(peak="peak_bf16_flops_per_s = 1e15\n"))
    with monkeypatch.context() as m:
        _no_compute(m)
        assert main(["sweep", str(space), "--out", str(out), "--max-points", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4 points" in err and "--max-points 4" in err
    assert not out.exists()
    assert main(["sweep", str(space), "--out", str(out)]) == 0


def test_a_huge_grid_is_counted_not_built(tmp_path, capsys, monkeypatch):
    """10^5 x 10^5 grid points (num) are refused at once, without building the value lists."""
    space = tmp_path / "s.toml"
    space.write_text(SPACE.format(peak="peak_bf16_flops_per_s = 1e15\n").replace(
        "sram_bytes = { choices = [0, 1e8] }",
        "sram_bytes = { low = 0, high = 1e9, num = 100000 }\n"
        "link_bytes_per_s = { low = 1e9, high = 1e12, num = 100000 }"))  # fmt: skip
    _no_compute(monkeypatch)
    assert main(["sweep", str(space), "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "20,000,000,000 points" in err and "--max-points 20000000000" in err


def test_output_format_and_writability_are_checked_before_computing(tmp_path, capsys, monkeypatch):
    """Parquet without pyarrow, an unknown suffix, a folder, a path under a file: each is one
    line before any costing."""
    import sys

    space = tmp_path / "s.toml"
    space.write_text(SPACE.format(peak="peak_bf16_flops_per_s = 1e15\n"))
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "file").write_text("x")
    _no_compute(monkeypatch)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails: "no pyarrow"
    cases = [("s.parquet", "needs pyarrow"), ("s.xlsx", "use a .csv or .parquet"),
             ("dir.csv", "is a folder"), ("file/s.csv", "cannot write")]  # fmt: skip
    for name, msg in cases:
        assert main(["sweep", str(space), "--out", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and "--out" in err, (name, err)
