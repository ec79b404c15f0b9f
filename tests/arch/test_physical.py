"""Physical model: hand-checked wafer arithmetic, component invariants, packaging limits."""

import math

import numpy as np
import pytest

from arch.base import ConfigError
from arch.physical import (
    ChipDesign,
    die_yield,
    dies_per_wafer,
    normalize_node,
    technology,
)
from explore.api.predict import predict


def test_dies_per_wafer_by_hand():
    """100 mm2 die + 0.1 mm scribe: side 10.1 mm, a = 102.01 mm2.
    pi 150^2 / 102.01 = 692.93; pi 300 / sqrt(2 x 102.01) = 65.98; floor(626.95) = 626."""
    assert dies_per_wafer(technology(), np.array(100.0)) == 626


def test_yield_models_by_hand():
    """A = 1 cm2, D0 = 0.1: Murphy ((1 - e^-0.1) / 0.1)^2 = 0.951626^2 = 0.905592;
    Poisson e^-0.1 = 0.904837."""
    assert die_yield(100.0, 0.1) == pytest.approx(0.905592, abs=1e-6)
    assert die_yield(100.0, 0.1, "poisson") == pytest.approx(math.exp(-0.1))


@pytest.mark.parametrize(
    ("text", "node"),
    [("TSMC 4N", "N4"), ("TSMC 4NP", "N4"), ("14nm", "N16"), ("TSMC 7nm", "N7"), ("N3", "N3")],
)
def test_node_names(text, node):
    assert normalize_node(text) == node


def _design(**kw):
    base = {"peak_bf16_flops_per_s": 1000e12, "sram_bytes": 256e6, "hbm_stacks": 4}
    return ChipDesign(**(base | kw))


def test_more_of_a_component_never_costs_less():
    """Area, power and cost are monotone in every component."""
    ref = _design().report()
    for kw in ({"sram_bytes": 512e6}, {"peak_bf16_flops_per_s": 1500e12}, {"hbm_stacks": 6},
               {"link_bytes_per_s": 800e9}, {"fp4": True}):  # fmt: skip
        r = _design(**kw).report()
        assert r.die_area_mm2 > ref.die_area_mm2, kw
        assert r.tdp_w >= ref.tdp_w, kw
        assert r.unit_cost_usd > ref.unit_cost_usd, kw


def test_older_node_is_larger_and_hungrier():
    n4, n7 = _design(node="N4").report(), _design(node="N7").report()
    assert n7.die_area_mm2 > n4.die_area_mm2
    assert n7.tdp_w > n4.tdp_w


def test_beyond_reticle_becomes_chiplets_then_does_not_fit():
    t = technology()
    big = _design(peak_bf16_flops_per_s=4000e12).report()
    assert big.package["chiplets"] >= 2
    assert big.die_area_mm2 > t.reticle_mm2
    huge = _design(peak_bf16_flops_per_s=20000e12, hbm_stacks=12).report()
    assert not huge.fits
    assert "interposer" in huge.note


def test_wafer_scale_has_one_wafer_of_silicon():
    r = ChipDesign(peak_bf16_flops_per_s=30e15, sram_bytes=40e9, wafer_scale=True).report()
    assert r.fits
    assert r.cost["silicon"] == technology().nodes["N4"].wafer_price_usd


def test_nre_amortizes_over_volume():
    """NRE per unit = (design NRE + N4 mask set) / volume."""
    t = technology()
    r = _design(volume_units=1000).report()
    want = (t.cost.design_nre_usd + t.nodes["N4"].mask_set_usd) / 1000
    assert r.cost["nre_per_unit"] == pytest.approx(want)


def test_design_runs_in_the_simulator():
    """An SRAM-only design holds an 8B model in SRAM over 16 chips and decodes from it."""
    d = ChipDesign(peak_bf16_flops_per_s=500e12, sram_bytes=2e9, link_bytes_per_s=400e9)
    chip = d.to_chip()
    assert chip.sram_only and chip.family == "custom"
    from arch.chip import System

    r = predict(System(chip=chip, count=16), "llama-3.1-8b", "fp8", tp=16, batch=1,
                input_len=128, output_len=16)  # fmt: skip
    assert r.fits and r.tpot_s > 0
    assert any("EXTRAPOLATED" in n for n in r.notes)


def test_bad_design_input_is_one_line():
    with pytest.raises(ConfigError, match="unknown process node"):
        _design(node="N1").report()
    with pytest.raises(ConfigError, match="pick one"):
        _design(ddr_packages=4).report()


def test_fit_reports_errors_against_published_figures():
    """Every calibration chip with a published area is predicted within a factor of 2 (the fit
    is first-order; the closing note reports the per-chip errors)."""
    from explore.validation.physical_fit import report_rows

    rows = report_rows()
    errs = {r["chip"]: r["area_err"] for r in rows if r["fitted_on"]["area"]}
    assert set(errs) >= {"h100-sxm", "groq-lpu", "cerebras-wse3"}
    assert all(abs(e) < 0.5 for e in errs.values()), errs
