"""``search --confirm``: one serving run per distinct design, the load it used, and the latency
constraints the served run misses."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from explore.cli import main
from explore.search.output import CONFIRM_LOAD, confirm, confirm_lines
from explore.search.space import Constraint
from explore.search.study import search

SPACE = Path(__file__).parents[2] / "data" / "space_bandwidth.toml"


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return search(SPACE, n_trials=4, out=out), out


def test_a_repeated_design_is_served_once_and_listed(searched):
    """Two Pareto rows with the same parameters are one design: served once, the second
    named in ``duplicates``; the load is stated and is CONFIRM_LOAD of the analytic capacity."""
    res, out = searched
    best = res.pareto[0]
    twin = {**best, "slot": 99, "number": 99}
    res2 = replace(res, pareto=[best, twin])
    rows = confirm(res2, res.space, out, 2, requests=60)
    assert len(rows) == 1
    row = rows[0]
    assert row["duplicates"] == ["s99"]
    load = row["load"]
    assert load["share_of_analytic_capacity"] == CONFIRM_LOAD
    tokens_per_s = best["metrics"]["tokens_per_s"]
    assert load["rate_per_s"] == pytest.approx(CONFIRM_LOAD * tokens_per_s / 32)  # output_len 32
    assert load["requests"] == 60 and load["max_batch"] == 1
    text = "\n".join(confirm_lines(rows))
    assert "70% of the analytic capacity" in text and "same design as s99" in text


def test_a_violated_latency_constraint_is_flagged(searched):
    """A TPOT limit far below the design's served TPOT is flagged with the served value; a
    throughput constraint is not checked (the load is chosen, not the design's capacity)."""
    res, out = searched
    space = replace(res.space, constraints=(Constraint("tpot_s", "<=", 1e-6),
                                            Constraint("tokens_per_s", ">=", 1e12)))
    (row,) = confirm(res, space, out, 1, requests=60)
    (v,) = row["violated"]
    assert v["constraint"] == "tpot_s <= 1e-06" and v["served"] > 1e-6
    assert v["statistic"] == "tpot_s.mean"
    assert "VIOLATES tpot_s <= 1e-06" in "\n".join(confirm_lines([row]))
    loose = replace(res.space, constraints=(Constraint("tpot_s", "<=", 10.0),))
    (row,) = confirm(res, loose, out, 1, requests=60)
    assert row["violated"] == []


def test_cli_json_states_load_and_violations(tmp_path, capsys):
    code = main(["search", str(SPACE), "--n-trials", "3", "--confirm", "1", "--out",
                 str(tmp_path), "--json"])  # fmt: skip
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)["confirmed"]
    assert row["load"]["arrivals"] == "poisson" and row["violated"] == []
    assert row["duplicates"] == []
