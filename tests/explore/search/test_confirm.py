"""``xpusim search --confirm N``: the best designs re-run in the serving simulation."""

import json
from pathlib import Path

import pytest

from explore.cli import main

SPACE = Path(__file__).parents[2] / "data" / "space_bandwidth.toml"


def test_confirm_serves_the_pareto_design_at_its_analytic_speed(tmp_path, capsys):
    """The space runs batch 1 on one chip, so under Poisson load at 70 % of capacity the served
    median TPOT is the analytic decode step of the same design (one sequence per step): the
    serving simulation and the search cost the same parallelism and system."""
    code = main(["search", str(SPACE), "--n-trials", "6", "--confirm", "1", "--out",
                 str(tmp_path), "--json"])  # fmt: skip
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)["confirmed"]
    assert row["served_tpot_p50_s"] == pytest.approx(row["analytic_tpot_s"], rel=0.05)
    assert (tmp_path / "confirm" / f"s{row['slot']}.toml").exists()
