"""Readable output (issue 14 item 6): one formatter, human units in every table, no exponent
notation or float tails, no "-0 %", preset names never cut."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from explore.cli import main
from explore.report.units import field_unit, human, percent

# exponent notation (1.638e+14, 2e-07) or a float tail (2.0000000000000002, 0.30000000000000004)
UNREADABLE = re.compile(r"\d[eE][+-]?\d|\d\.\d{7,}")


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.6384e14, "FLOP/s", "164 TFLOP/s"),
        (1.9789e15, "FLOP/s", "1.98 PFLOP/s"),
        (2.0000000000000002e-07, "s", "200 ns"),
        (0.0402, "s", "40.2 ms"),
        (3.35e12, "B/s", "3.35 TB/s"),
        (8e10, "B", "80 GB"),
        (2.3e8, "B", "230 MB"),
        (5e11, "tokens/day", "500 B tokens/day"),
        (7.06e10, "params", "70.6 B params"),
        (400.0, "W", "400 W"),
        (1.66e-13, "J/FLOP", "166 fJ/FLOP"),
        (999_960, "B", "1 MB"),
        (20000, "$", "$20,000"),
        (2020, "", "2,020"),
        (0.5, "", "0.5"),
        (0.0, "W", "0 W"),
        (None, "s", "-"),
        (float("inf"), "s", "unlimited"),
    ],
)
def test_human(value, unit, text):
    assert human(value, unit) == text


def test_percent_never_negative_zero():
    assert percent(-1e-9) == "0 %"
    assert percent(-0.0004, decimals=1) == "0.0 %"
    assert percent(0.4234) == "42 %"
    assert percent(0.4234, decimals=1) == "42.3 %"


def test_field_unit():
    assert field_unit("matrix.peak_flops_per_s.fp8") == "FLOP/s"
    assert field_unit("memory.1.bandwidth_bytes_per_s") == "B/s"
    assert field_unit("memory.1.capacity_bytes") == "B"
    assert field_unit("scale_up.hop_latency_s") == "s"
    assert field_unit("vector.energy_j_per_flop") == "J/FLOP"
    assert field_unit("year") is None and field_unit("matrix.units") is None


def test_show_h100_is_readable(capsys):
    assert main(["show", "h100-sxm"]) == 0
    out = capsys.readouterr().out
    assert not UNREADABLE.search(out), UNREADABLE.search(out)
    assert "989.4 TFLOP/s" in out and "3.35 TB/s" in out and "80 GB" in out


def test_show_every_chip_value_column_readable(capsys):
    from arch.presets import chip_names

    for name in chip_names():
        assert main(["show", name]) == 0
        out = capsys.readouterr().out
        values = [row.split("│")[2] for row in out.splitlines() if row.count("│") >= 4]
        bad = [v for v in values if UNREADABLE.search(v)]
        assert not bad, (name, bad)


def test_predict_tables_readable(capsys):
    argv = ["predict", "--system", "h100-sxm:8", "--model", "llama-3.1-8b", "--quant", "fp8",
            "--tp", "1", "--dp", "8", "--batch", "16", "--input-len", "1024",
            "--output-len", "128", "--ops"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not UNREADABLE.search(out), UNREADABLE.search(out)
    assert "-0 %" not in out
    assert re.search(r"kernel_overhead_s\s+│ [\d.]+ µs", out)  # a time factor in µs


def test_presets_names_never_cut(monkeypatch, capsys):
    """In a narrow terminal the other columns wrap; chip, family and model names stay whole."""
    from arch.presets import chip_names, load_chip
    from explore.report import tables
    from workloads.presets import model_names

    monkeypatch.setattr(tables, "make_console", lambda: Console(width=80))
    assert main(["presets"]) == 0
    text = capsys.readouterr().out
    families = {load_chip(n).family for n in chip_names()}
    for name in [*chip_names(), *model_names(), *families]:
        assert re.search(rf"│ {re.escape(name)}\s*│", text), name
