"""MoE validation rows: which are expressed, and the GT204 prediction's plumbing."""

import pytest

from explore.validation.cases import Case, load_rows
from explore.validation.moe_cases import is_moe_row, moe_case

ROWS = {r["id"]: r for r in load_rows()}


def test_the_moe_rows_are_recognised():
    for rid in ("GT017", "GT049", "GT204"):
        assert is_moe_row(ROWS[rid]), rid
    assert not is_moe_row(ROWS["GT003"])  # Llama-2-70B


@pytest.mark.parametrize("rid", ["GT017", "GT049"])
def test_server_ttft_rows_say_why_not(rid):
    out = moe_case(ROWS[rid], "h100-sxm" if rid == "GT017" else "b200", None)
    assert isinstance(out, str) and "length distribution" in out


def test_gt204_predicts_per_node_decode_throughput():
    """The production decode row becomes an end-to-end case on H800 whose prediction is a
    positive per-node rate; a faster memory (efficiency override) never predicts less."""
    case = moe_case(ROWS["GT204"], "h800", None)
    assert isinstance(case, Case)
    assert case.cls == "end_to_end" and case.measured == 14800
    assert "EP128" in case.assumption and "21" in case.assumption
    base = case.predict({})
    assert 1_000 < base < 200_000
    fam = case.family
    assert case.predict({fam: {"memory": 0.95}}) >= base * 0.999
