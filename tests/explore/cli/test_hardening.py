"""Issue 13 beyond the corpus: internal errors and --debug, strict JSON with null and a reason,
scenario-relative paths, ``file:`` lengths that never echo content, context clipping with a note,
Markdown that escapes user text."""

from __future__ import annotations

import json

import pytest

from explore.cli import main
from explore.cli.main import COMMANDS

TINY_SERVE = ["serve", "--system", "h100-sxm:1", "--model", "tiny", "--quant", "bf16", "--tp",
              "1", "--requests", "30", "--rate", "50", "--json"]  # fmt: skip


def _strict(text: str):
    """Parse as RFC 8259 JSON: NaN and Infinity are errors."""

    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


# --------------------------------------------------------------------------- internal errors


def _boom(args):
    raise RuntimeError("boom\nsecond line")


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "presets", _boom)
    assert main(["presets"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "internal error: RuntimeError: boom second line" in err
    assert "--debug" in err


def test_debug_prints_the_traceback(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "presets", _boom)
    assert main(["--debug", "presets"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err


def test_config_error_with_a_newline_stays_one_line(capsys):
    assert main(["show", "h100\nsxm"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------- strict JSON


def test_tco_json_fleet_that_cannot_serve_is_null_with_a_reason(tmp_path, capsys):
    """A 70B model in 16-bit does not fit one 80 GB H100: that fleet's numbers are null (not
    NaN) and ``error`` says why; the other fleet is priced."""
    (tmp_path / "t.toml").write_text(
        '[scenario]\nmodel = "llama-3.1-70b"\ninput_len = 128\noutput_len = 32\n'
        "load_output_tokens_per_s = 1000\ntokens_per_s_per_user = 10\n"
        '[[fleet]]\nname = "fits"\nsystem = "h100-sxm:8"\nquant = "fp8"\n'
        '[[fleet]]\nname = "too small"\nsystem = "l40s:1"\nquant = "bf16"\ntp = 1\n'
        "[monte_carlo]\nsamples = 5\n"
    )
    assert main(["tco", str(tmp_path / "t.toml"), "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    bad = next(f for f in d["fleets"] if f["name"] == "too small")
    good = next(f for f in d["fleets"] if f["name"] == "fits")
    assert bad["error"] and bad["usd_per_m_output_tokens"] is None
    assert bad["operating"]["ttft_s"] is None
    assert good["error"] is None and good["usd_per_m_output_tokens"] > 0


def test_serve_json_is_strict(capsys):
    assert main([*TINY_SERVE, "--input-len", "8", "--output-len", "8"]) == 0
    d = _strict(capsys.readouterr().out)
    assert d


# --------------------------------------------------------------------------- paths and files


def test_scenario_relative_paths_resolve_beside_the_scenario(tmp_path, monkeypatch, capsys):
    """A trace and a ``file:`` length named relative to the scenario are read from its folder,
    whatever the current directory."""
    sub = tmp_path / "scen"
    sub.mkdir()
    (sub / "t.csv").write_text("arrival_s,input_len,output_len\n0,8,4\n0.01,16,4\n0.02,8,4\n")
    (sub / "lens.txt").write_text("8\n12\n16\n")
    (sub / "s.toml").write_text(
        'system = "h100-sxm:1"\nmodel = "tiny"\n[parallelism]\ntp = 1\n'
        '[serving]\narrivals = "trace"\ntrace = "t.csv"\nrequests = 3\n'
        'input_len = "file:lens.txt"\noutput_len = 4\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["serve", "--scenario", str(sub / "s.toml"), "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    assert d["completed"] == 3 if "completed" in d else d


def test_file_lengths_never_echo_content(tmp_path, capsys):
    (tmp_path / "lens.txt").write_text("12\nsecret-token-123\n")
    argv = [*TINY_SERVE, "--input-len", f"file:{tmp_path / 'lens.txt'}", "--output-len", "8"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "secret-token" not in out + err and "line 2" in err and "--input-len" in err


@pytest.mark.parametrize("path", ["/proc/sys/kernel/pid_max", "/etc/hostname", "/dev/zero"])
def test_file_lengths_accept_only_the_documented_formats(path, capsys):
    argv = [*TINY_SERVE, "--input-len", f"file:{path}", "--output-len", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert ".txt or .csv" in err and err.count("\n") == 1


def test_file_lengths_csv_with_header(tmp_path):
    from sim.traffic import parse_length

    (tmp_path / "l.csv").write_text("input_len\n10\n20\n30\n")
    assert parse_length(f"file:{tmp_path / 'l.csv'}").mean == 20


def test_trace_errors_never_echo_content(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("arrival_s,input_len,output_len\n0,8,8\nsecret-xyz,8,8\n")
    argv = [*TINY_SERVE, "--arrivals", "trace", "--trace-file", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "secret-xyz" not in err and "row 2: arrival_s" in err


# --------------------------------------------------------------------------- context


def test_serve_clips_lengths_beyond_the_context_with_a_note(capsys):
    """tiny's context is 512 tokens; a lognormal prompt tail past it is clipped and said so."""
    argv = [*TINY_SERVE, "--input-len", "lognormal:200:300", "--output-len", "16"]
    assert main(argv) == 0
    d = _strict(capsys.readouterr().out)
    assert any("clipped to the model's context of 512" in n for n in d["notes"])


def test_serve_trace_longer_than_the_context_is_an_error(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("arrival_s,input_len,output_len\n0,8,8\n0.1,600,8\n")
    argv = [*TINY_SERVE, "--arrivals", "trace", "--trace-file", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "context of 512" in err and "input_len + output_len" in err


def test_serve_mean_lengths_beyond_the_context_are_an_error(capsys):
    argv = [*TINY_SERVE, "--input-len", "lognormal:600:10", "--output-len", "16"]
    assert main(argv) == 2
    assert "context of 512" in capsys.readouterr().err


# --------------------------------------------------------------------------- markdown


def test_markdown_escapes_user_text():
    from explore.report.tco import md_escape

    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<script>x</script>") == "\\<script\\>x\\</script\\>"
    assert md_escape("[x](http://e)") == "\\[x\\]\\(http://e\\)"
    assert md_escape("# title\nnext") == "\\# title next"
    assert md_escape("- item") == "\\- item" and md_escape("1. item") == "1\\. item"
    assert md_escape("8x H100 FP8 1.5") == "8x H100 FP8 1.5"


def test_tco_markdown_report_escapes_a_hostile_fleet_name(tmp_path, capsys):
    (tmp_path / "t.toml").write_text(
        '[scenario]\nname = "evil | <b>x</b>\\n# head"\nmodel = "tiny"\ninput_len = 8\n'
        "output_len = 8\nload_output_tokens_per_s = 1000\n"
        '[[fleet]]\nname = "a|b [l](http://x)"\nsystem = "h100-sxm:1"\nquant = "bf16"\ntp = 1\n'
        "[monte_carlo]\nsamples = 5\n"
    )
    report = tmp_path / "r.md"
    assert main(["tco", str(tmp_path / "t.toml"), "--report", str(report)]) == 0
    text = report.read_text()
    assert "a\\|b \\[l\\]\\(http://x\\)" in text
    assert "<b>" not in text and "\n# head" not in text
    assert text.startswith("# evil \\| \\<b\\>x\\</b\\> \\# head\n")


def test_outputs_checked_before_work(tmp_path, capsys):
    """An output under a regular file is refused before the scenario is even read."""
    (tmp_path / "f").write_text("x")
    assert main(["tco", str(tmp_path / "missing.toml"), "--report", str(tmp_path / "f/r.md")]) == 2
    assert "--report" in capsys.readouterr().err


def test_check_output_accepts_a_new_folder(tmp_path):
    from explore.cli.common import check_output

    check_output(tmp_path / "a" / "b" / "out.csv", "--out")
    check_output(tmp_path / "plots", "--plot", folder=True)
    assert not (tmp_path / "a").exists()  # checking writes nothing


def test_measurement_ranges_still_load():
    """The shipped table holds one published range (``0.50-0.73``); the value check keeps it."""
    from explore.validation.cases import load_rows

    assert any("-" in r["value"] for r in load_rows())


SMALL_SPACE = """\
[study]
name = "json"
objectives = ["tokens_per_s_per_user"]
[base]
model = "llama-3.1-8b"
quant = "fp8"
input_len = 128
output_len = 32
chips = 1
batch = 1
[base.chip]
node = "N4"
link_bytes_per_s = "200 GB/s"
[chip]
hbm_stacks = { choices = [2, 4] }
peak_bf16_flops_per_s = { choices = [400e12, 800e12] }
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--system", "h100-sxm:1", "--model", "tiny", "--batch", "1", "--input-len",
         "8", "--output-len", "8", "--tp", "1"],
        ["physical"],
        ["presets"],
        ["show", "groq-lpu"],
        ["validate", "--measurements", "{d}/m.csv", "--only-measurements"],
        ["sweep", "{d}/sp.toml", "--out", "{d}/o.csv"],
    ],
    ids=lambda a: a[0],
)  # fmt: skip
def test_every_json_output_is_strict(argv, tmp_path, capsys):
    from explore.validation.cases import shipped_measurements

    shipped = shipped_measurements()[0].read_text().splitlines()
    (tmp_path / "m.csv").write_text("\n".join(shipped[:6]) + "\n")
    (tmp_path / "sp.toml").write_text(SMALL_SPACE)
    argv = [a.replace("{d}", str(tmp_path)) for a in argv]
    assert main([*argv, "--json"]) == 0
    assert _strict(capsys.readouterr().out) is not None
