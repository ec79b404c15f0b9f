"""The progress bar (explore/report/progress.py): silent when stderr is not a terminal or under
--json, and every long computation's progress callback counts up to the bar's total."""

import math
from dataclasses import replace
from pathlib import Path

import pytest

import explore.report.progress as prog
from explore.api.serve import ServeRequest, rate_search, rate_search_runs, serve
from explore.cli import main
from explore.search.space import load_space
from explore.search.sweep import grid_size, sweep
from explore.tco.fleet import load_tco_scenario, monte_carlo_samples, tco
from explore.validation import calibrate as cal
from explore.validation.cases import Case
from sim.traffic import Fixed, Poisson

DATA = Path(__file__).parents[2] / "data"
SPACE = DATA / "space_bandwidth.toml"
SMALL = """
[scenario]
name = "small"
model = "llama-3.1-8b"
input_len = 512
output_len = 128
load_output_tokens_per_s = 20000
tokens_per_s_per_user = 50
[monte_carlo]
samples = 50
[[fleet]]
name = "h100"
system = "h100-sxm:8"
quant = "fp8"
tp = 1
dp = 8
"""


class Counter:
    def __init__(self):
        self.total = 0
        self.calls = 0

    def __call__(self, n=1):
        assert n >= 0
        self.total += n
        self.calls += 1


def test_silent_when_stderr_is_not_a_terminal(capsys):
    """Under pytest stderr is captured, not a terminal: no bar, no callback, nothing written."""
    assert not prog.is_terminal()
    with prog.progress(10, "work") as advance:
        assert advance is None
    assert capsys.readouterr().err == ""


def test_disabled_is_silent_even_on_a_terminal(monkeypatch):
    monkeypatch.setattr(prog, "is_terminal", lambda: True)
    with prog.progress(10, "work", enabled=False) as advance:
        assert advance is None


def test_on_a_terminal_the_bar_counts_and_waits_for_its_delay(monkeypatch):
    monkeypatch.setattr(prog, "is_terminal", lambda: True)
    with prog.progress(10, "work", delay_s=3600) as advance:
        advance(4)
        advance()
        bar = advance.__self__
        assert bar.done == 5 and bar._p is None  # a short run never draws
    with prog.progress(10, "work") as advance:
        for _ in range(10):
            advance()
        bar = advance.__self__
        assert bar._p is not None
        assert bar._p.tasks[0].completed == 10 and bar._p.tasks[0].total == 10


SWEEP = """
[study]
objectives = ["tokens_per_s_per_user"]
[base]
model = "llama-3.1-8b"
quant = "fp8"
chips = 8
batch = 1
[base.chip]
node = "N4"
peak_bf16_flops_per_s = 400e12
hbm_stacks = 4
[chip]
sram_bytes = { choices = [0, 1e8, 2e8] }
[deploy]
pp = { choices = [1, 2] }
"""


def test_sweep_cli_writes_no_bar_off_a_terminal(tmp_path, capsys):
    (tmp_path / "space.toml").write_text(SWEEP)
    assert main(["sweep", str(tmp_path / "space.toml"), "--out", str(tmp_path / "s.csv")]) == 0
    assert capsys.readouterr().err == ""


def test_sweep_progress_reaches_the_grid_size(tmp_path):
    (tmp_path / "space.toml").write_text(SWEEP)
    c = Counter()
    res = sweep(tmp_path / "space.toml", progress=c)
    assert c.total == grid_size(load_space(tmp_path / "space.toml")) == res.n_points == 6
    assert c.calls == 2  # one call per deployment, for its three chip designs


def test_search_progress_reaches_n_trials(tmp_path):
    from explore.search.study import search

    c = Counter()
    search(SPACE, n_trials=5, out=tmp_path, progress=c)
    assert c.total == 5
    c2 = Counter()  # a resumed study counts what it already had first
    search(SPACE, n_trials=7, out=tmp_path, progress=c2)
    assert c2.total == 7


def _req(**kw) -> ServeRequest:
    base = {"system": "h100-sxm:1", "model": "llama-3.1-8b", "quant": "fp8",
            "input_len": Fixed(256), "output_len": Fixed(32), "arrivals": Poisson(20.0),
            "requests": 120, "tp": 1, "dp": 1}
    return ServeRequest(**(base | kw))


def test_serve_progress_counts_every_request():
    c = Counter()
    serve(_req(), progress=c)
    assert c.total == 120


def test_rate_search_progress_reaches_its_run_count():
    c = Counter()
    rate, _ = rate_search(_req(requests=100, max_batch=32), 0.5, 0.05, progress=c)
    assert rate > 0
    assert c.total >= rate_search_runs() >= 5
    assert c.calls >= 5


def test_tco_monte_carlo_progress_reaches_samples_times_fleets(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace("samples = 50", "samples = 12"))
    sc = load_tco_scenario(path)
    c = Counter()
    tco(sc, progress=c)
    assert c.total == monte_carlo_samples(sc) == 12
    sc2 = replace(sc, fleets=(*sc.fleets, replace(sc.fleets[0], name="too-small", tp=3)))
    c2 = Counter()
    results = tco(sc2, progress=c2)
    assert results[1].error and c2.total == monte_carlo_samples(sc2) == 24


def _toy_case(i: int, true: float) -> Case:
    from arch.efficiency import efficiency_for

    def predict(ov):
        return 1000 * efficiency_for("toy-a", overrides=ov.get("toy-a")).value("gemm_16bit")

    return Case(id=f"G{i}", family="toy-a", chip="toy", metric="gemm_tflops",
                cls="microbenchmark", measured=1000 * true, unit="",
                describe="GEMM 4096x4096x4096 bf16", predict=predict)  # fmt: skip


def test_calibrate_progress_reaches_max_rounds():
    c = Counter()
    fitted, _ = cal.calibrate([_toy_case(1, 0.70), _toy_case(2, 0.72)], progress=c)
    assert c.total == cal.MAX_ROUNDS
    assert 1 <= c.calls <= 2 * cal.MAX_ROUNDS
    assert math.isfinite(fitted["toy-a"]["gemm_16bit"][0])


@pytest.mark.parametrize("argv", [["--json"], []])
def test_tco_cli_is_silent_on_stderr(tmp_path, capsys, argv):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace("samples = 50", "samples = 5"))
    assert main(["tco", str(path), *argv]) == 0
    assert capsys.readouterr().err == ""
