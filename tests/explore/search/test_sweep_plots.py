"""``xpusim sweep`` prints the best point per objective and draws its two main metrics with
the Pareto front beside the table; the search's parallel-coordinates plot is legible (issue 14
item 8)."""

import json

import numpy as np
import pytest
from PIL import Image

from explore.cli import main
from explore.search.output import parallel_figure, pareto_2d, sweep_best, sweep_figure
from explore.search.space import load_space
from explore.search.sweep import sweep

SPACE = """
[study]
name = "tiny-sweep"
objectives = ["tokens_per_s_per_user"]
[base]
model = "llama-3.1-8b"
quant = "fp8"
input_len = 256
output_len = 64
chips = 8
[base.chip]
node = "N4"
hbm_stacks = 4
[chip]
peak_bf16_flops_per_s = { choices = [1e14, 1e15] }
sram_bytes = { choices = [0, 1e8] }
[deploy]
batch = { choices = [1, 16, 256] }
"""


@pytest.fixture(autouse=True)
def _close_figures():
    """Each test's figures closed after it (matplotlib warns past 20 open)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SPACE)
    return path


def test_pareto_2d_by_hand():
    """(1,5) (2,4) (3,1) are the front when both are maximized; (1,1) and (2,2) are beaten;
    minimizing y keeps only (1,1)... and (3,1) which has the best x too."""
    x = np.array([1, 2, 3, 1, 2, np.nan])
    y = np.array([5, 4, 1, 1, 2, 9])
    assert pareto_2d(x, y, "maximize", "maximize").tolist() == [0, 1, 2]
    assert pareto_2d(x, y, "maximize", "minimize").tolist() == [2]


def test_sweep_prints_the_best_points_and_writes_the_plot(space, tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert main(["sweep", str(space), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny-sweep: 12 grid points, 6 fit" in text  # batch 256 does not fit
    assert "best tokens_per_s_per_user (maximize):" in text
    assert "best tokens_per_s_per_chip (maximize):" in text
    assert "peak_bf16_flops_per_s=1 PFLOP/s" in text  # the dimensions, in human units
    assert "Pareto front of tokens_per_s_per_user vs tokens_per_s_per_chip:" in text
    png = tmp_path / "o.png"
    assert f"plot: {png}" in text
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 800


def test_sweep_json_names_the_best_points_and_the_plot(space, tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert main(["sweep", str(space), "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["plot"] == str(tmp_path / "o.png")
    best = {b["metric"]: b for b in info["best"]}
    assert best["tokens_per_s_per_user"]["params"]["deploy.batch"] == 1
    assert best["tokens_per_s_per_chip"]["params"]["deploy.batch"] == 256


def test_best_points_agree_with_the_columns(space):
    sp = load_space(space)
    res = sweep(sp)
    for b in sweep_best(res, sp):
        col = res.columns[b["metric"]]
        assert b["value"] == pytest.approx(np.nanmax(col))


def test_sweep_figure_axes_units_scales_front_and_title(space):
    sp = load_space(space)
    res = sweep(sp)
    fig = sweep_figure(res, sp)
    ax = fig.axes[0]
    assert "(tokens/s)" in ax.get_xlabel() and "(tokens/s)" in ax.get_ylabel()
    assert "llama-3.1-8b" in ax.get_title() and "input 256 / output 64 tokens" in ax.get_title()
    x = res.columns["tokens_per_s_per_chip"]
    span = np.log10(np.nanmax(x) / np.nanmin(x))
    assert ax.get_xscale() == ("log" if span > 1.5 else "linear")
    gids = {line.get_gid() for line in ax.get_lines()}
    assert {"pareto", "best:tokens_per_s_per_user", "best:tokens_per_s_per_chip"} <= gids
    assert ax.get_legend() is not None


def test_a_sweep_where_nothing_fits_says_so(space):
    sp = load_space(space)
    res = sweep(sp)
    res.columns["fits"] = np.zeros(res.n_points)
    fig = sweep_figure(res, sp)
    assert any(t.get_gid() == "nothing-to-show" for t in fig.axes[0].texts)
    assert all(b["value"] is None for b in sweep_best(res, sp))


def _trial(n, params, values, feasible=True):
    return {"number": n, "slot": n, "state": "COMPLETE", "feasible": feasible,
            "params": params, "values": values, "metrics": {}, "reason": ""}  # fmt: skip


def test_parallel_coordinates_normalized_labelled_and_capped():
    from types import SimpleNamespace

    trials = [_trial(i, {"chip.sram_bytes": 1e6 * 10 ** (i % 4), "chip.hbm_gen":
                         ["hbm3", "hbm3e"][i % 2], "deploy.batch": 8},
                     [float(i + 1), 100.0 - i]) for i in range(60)]  # fmt: skip
    pareto = trials[-3:]
    res = SimpleNamespace(trials=trials, pareto=pareto, study_name="pc",
                          objectives=("tokens_per_s_per_user", "usd_per_m_output_tokens"),
                          directions=("maximize", "minimize"))  # fmt: skip
    fig = parallel_figure(res, max_lines=10)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    # the batch does not vary: no axis for it; the objectives are axes with their direction
    assert ticks == ["hbm_gen", "sram_bytes", "tokens_per_s_per_user (max)",
                     "usd_per_m_output_tokens (min)"]  # fmt: skip
    texts = [t.get_text() for t in ax.texts]
    assert {"1 MB", "1 GB", "hbm3", "hbm3e", "60 tok/s", "1 tok/s"} <= set(texts)
    assert "log" in texts  # sram spans three decades
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 4]
    assert len(lines) == 10 + 3
    for line in lines:
        assert all(0.0 <= y <= 1.0 for y in line.get_ydata())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "other feasible trials (10 of 57, a sample)" in legend
    assert "Pareto trials (3)" in legend
    assert "(0 = its min, 1 = its max)" in ax.get_ylabel()
