"""TCO figures tell the truth (issue 14 item 8): units on every axis, the scenario in every
title, log axes only where the fleets span decades, the tornado labelled with each input's low
and high values, the Monte Carlo with its percentiles and the point estimate, and fleets that
cannot serve listed in every figure (never dropped); the HTML report parses and embeds them."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from PIL import Image

from explore.report import tco as rt
from explore.tco.fleet import FleetResult, load_tco_scenario, tco

SCENARIO = """
[scenario]
name = "plot check"
model = "llama-3.1-8b"
input_len = 512
output_len = 128
load_output_tokens_per_s = 20000
tokens_per_s_per_user = 50
[monte_carlo]
samples = 30
[[fleet]]
name = "h100 fp8"
system = "h100-sxm:8"
quant = "fp8"
tp = 1
dp = 8
[[fleet]]
name = "groq too small"
system = "groq-lpu:2"
quant = "fp8"
tp = 2
"""

UNIT = re.compile(r"\(.+\)")  # a unit in parentheses


@pytest.fixture(autouse=True)
def _close_figures():
    """Each test's figures closed after it (matplotlib warns past 20 open)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("tco") / "s.toml"
    path.write_text(SCENARIO)
    sc = load_tco_scenario(path)
    return sc, tco(sc)


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_xlabel()]


def test_the_scenario_has_one_fleet_that_serves_and_one_that_cannot(scenario):
    _, results = scenario
    assert not results[0].error
    assert results[1].error  # two LPUs do not hold 8B in SRAM


@pytest.mark.parametrize("name", ["cost_stack_figure", "frontier_figure", "tornado_figure",
                                  "monte_carlo_figure"])  # fmt: skip
def test_every_figure_has_units_the_configuration_and_lists_the_fleet_that_cannot_serve(
    scenario, name
):
    sc, results = scenario
    fig = getattr(rt, name)(sc, results)
    title = " ".join(fig._suptitle.get_text().split())
    assert "llama-3.1-8b" in title and "input 512 / output 128 tokens" in title
    assert "SLO >= 50 tokens/s per user" in title
    for ax in _data_axes(fig):
        assert UNIT.search(ax.get_xlabel()), ax.get_xlabel()
        assert ax.get_ylabel() or ax.get_yticklabels()
    listed = [t.get_text() for t in fig.texts if t.get_gid() == "cannot-serve"]
    assert len(listed) == 1 and "groq too small:" in listed[0]
    assert results[1].error[:40] in listed[0].replace("\\$", "$")


def test_cost_stack_total_is_log_only_when_fleets_span_decades(scenario):
    sc, results = scenario
    ok = results[0]
    fig = rt.cost_stack_figure(replace(sc, fleets=sc.fleets[:1]), [ok])
    total, share = _data_axes(fig)
    assert total.get_xscale() == "linear" and share.get_xscale() == "linear"
    assert share.get_xlim() == (0, 100) and "(%)" in share.get_xlabel()
    cheap = replace(ok, name="cheap", usd_per_m_output_tokens=ok.usd_per_m_output_tokens / 300)
    fig = rt.cost_stack_figure(replace(sc, fleets=(*sc.fleets[:1], sc.fleets[0])), [ok, cheap])
    total, share = _data_axes(fig)
    assert total.get_xscale() == "log"
    assert share.get_xscale() == "linear"  # shares of a stack stay linear
    assert "$/M tokens" in total.get_xlabel()


def test_tornado_labels_say_what_low_and_high_mean(scenario):
    sc, results = scenario
    fig = rt.tornado_figure(sc, results)
    (ax,) = _data_axes(fig)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(sc.uncertainty)
    for key, (lo, hi) in sc.uncertainty.items():
        (label,) = [x for x in labels if x.startswith(key + "\n")]
        assert f"low {lo:,.4g}" in label and f"high {hi:,.4g}" in label and "nominal" in label
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "input at the low end of its range" in legend
    assert "input at the high end of its range" in legend
    assert "blue = input at the low end" in ax.get_title()


def test_monte_carlo_marks_percentiles_and_the_point_estimate(scenario):
    sc, results = scenario
    fig = rt.monte_carlo_figure(sc, results)
    (ax,) = _data_axes(fig)
    r = results[0]
    gids = {line.get_gid(): line for line in ax.get_lines()}
    for key in ("p5", "p50", "p95"):
        assert gids[f"{key}:{r.name}"].get_xdata()[0] == pytest.approx(r.monte_carlo[key])
    assert gids[f"point:{r.name}"].get_xdata()[0] == pytest.approx(r.usd_per_m_output_tokens)
    assert f"(p{r.monte_carlo['point_percentile']:.0f})" in _texts(fig)
    assert "groq too small" not in [t.get_text() for t in ax.get_yticklabels()]


def test_frontier_marks_the_slo_and_the_operating_point(scenario):
    sc, results = scenario
    fig = rt.frontier_figure(sc, results)
    (ax,) = _data_axes(fig)
    gids = {line.get_gid() for line in ax.get_lines()}
    assert "slo" in gids and "operating:h100 fp8" in gids
    assert any(g and g.startswith("frontier:h100 fp8:") for g in gids)
    assert "(tokens/s)" in ax.get_xlabel() and "($/M tokens)" in ax.get_ylabel()


def test_no_fleet_that_can_serve_is_a_figure_listing_every_fleet(scenario, tmp_path):
    """Today's report used to raise; now each figure says so and lists the fleets, and the
    report is written."""
    sc, results = scenario
    failed = [results[1], FleetResult.failed("other", "does not fit: 99 GB per chip")]
    fig = rt.monte_carlo_figure(sc, failed)
    (text,) = [t for t in fig.axes[0].texts if t.get_gid() == "nothing-to-show"]
    assert "no fleet can serve" in text.get_text()
    assert "groq too small:" in text.get_text() and "other: does not fit" in text.get_text()
    out = tmp_path / "none.html"
    rt.write_report(sc, failed, out)
    assert out.read_text().count("data:image/png;base64,") == 4


class _Checker(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def check_html(text: str, folder) -> list[bytes]:
    """Every tag closed in order; every image embedded (PNG data) or a file that exists.
    Returns the images' bytes."""
    import base64

    p = _Checker()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    out = []
    for img in p.images:
        src = img["src"]
        if src.startswith("data:image/png;base64,"):
            out.append(base64.b64decode(src.split(",", 1)[1]))
        else:
            out.append((folder / src).read_bytes())
    return out


def test_tco_html_report_parses_and_its_images_open(scenario, tmp_path):
    sc, results = scenario
    out = tmp_path / "r.html"
    rt.write_report(sc, results, out)
    images = check_html(out.read_text(), tmp_path)
    assert len(images) == 4
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.size[0] >= 600 and im.size[1] >= 300
    text = out.read_text()
    assert "groq too small: cannot serve this scenario" in text


def test_tco_markdown_report_links_images_that_exist(scenario, tmp_path):
    sc, results = scenario
    out = tmp_path / "r.md"
    rt.write_report(sc, results, out)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text())
    assert len(links) == 4
    for link in links:
        with Image.open(tmp_path / link) as im:
            assert im.format == "PNG"


def test_compare_html_report_parses_and_embeds_its_plot(tmp_path):
    from explore.cli import main

    out = tmp_path / "cmp.html"
    assert main(["compare", "--system", "h100-sxm:1", "--system", "b200:1", "--model",
                 "llama-3.1-8b", "--quant", "fp8", "--batch", "8", "--input-len", "256",
                 "--output-len", "32", "--report", str(out)]) == 0  # fmt: skip
    (png,) = check_html(out.read_text(), tmp_path)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size[0] >= 600
