"""Leave-one-out and leave-one-family-out (explore.validation.loo) on toy cases whose predictors
are one-line formulas of the efficiency factors (no simulator, no full calibration), the bands
file they make, and the ``validate --loo`` flags' error paths."""

import math
import tomllib

import pytest

from arch.efficiency import efficiency_for
from explore.cli.main import main
from explore.validation.calibrate import calibrate, derived_defaults
from explore.validation.cases import Case
from explore.validation.loo import (
    LooReport,
    calibrate_blocks,
    intervals,
    out_of_sample,
    render_intervals,
    write_intervals,
)
from sim.intervals import band

A, B = "toy-a", "toy-b"
POWER_SCALE = (1.0, 1.0, 1.4)  # the third power row is an outlier: 40 % above the others


def _factor(family: str, name: str, ov) -> float:
    return efficiency_for(family, overrides=ov.get(family)).value(name)


def _case(id_, family, metric, cls, measured, predict, describe="") -> Case:
    return Case(id=id_, family=family, chip="toy", metric=metric, cls=cls, measured=measured,
                unit="", describe=describe, predict=predict)  # fmt: skip


def _gemm(id_, family, true):
    """A GEMM row: 1000 TFLOP/s x gemm_16bit (it informs gemm_16bit and roofline_exponent)."""
    return _case(id_, family, "gemm_tflops", "microbenchmark", 1000 * true,
                 lambda ov: 1000 * _factor(family, "gemm_16bit", ov),
                 "GEMM 4096x4096x4096 bf16")  # fmt: skip


def _power(id_, scale):
    """A board-power row: 700 W x active_power_fraction (in-sample, like the real ones)."""
    return _case(id_, A, "accelerator_power_w_avg", "end_to_end", 700 * 0.5 * scale,
                 lambda ov: 700 * _factor(A, "active_power_fraction", ov))  # fmt: skip


def _e2e(id_, family, measured):
    """An end-to-end row the fit does not use: 1 s / gemm_16bit."""
    return _case(id_, family, "e2e_latency_s", "end_to_end", measured,
                 lambda ov: 1.0 / _factor(family, "gemm_16bit", ov))  # fmt: skip


@pytest.fixture(scope="module")
def cases():
    return [
        _gemm("G1", A, 0.70), _gemm("G2", A, 0.72), _gemm("G3", B, 0.60), _gemm("G4", B, 0.62),
        *(_power(f"P{i}", s) for i, s in enumerate(POWER_SCALE)),
        _e2e("E1", A, 1.6), _e2e("E2", B, 1.5),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def rows(cases):
    return {r.id: r for r in out_of_sample(cases)}


def _values(fitted):
    return {(fam, f): v for fam, fs in fitted.items() for f, (v, _) in fs.items()}


def test_blocks_reproduce_the_joint_calibration(cases):
    """Families share no parameter: fitting them apart is the joint fit (to the optimizer's
    tolerance), derived defaults included."""
    joint, blocks = _values(calibrate(cases)[0]), _values(calibrate_blocks(cases)[0])
    assert joint.keys() == blocks.keys()
    for k, v in joint.items():
        assert blocks[k] == pytest.approx(v, rel=1e-3), k


def test_each_row_is_labelled_by_how_it_is_out_of_sample(rows):
    assert rows["E1"].loo_method == "not_fitted" and rows["E1"].loo == rows["E1"].full
    assert rows["G1"].loo_method == "in_sample_only" and rows["G1"].loo is None
    assert rows["G1"].in_sample and not rows["E1"].in_sample
    assert all(rows[f"P{i}"].loo_method == "refit" for i in range(3))


def test_leave_one_out_refits_without_the_row(rows):
    """Without the outlier the two other rows pin the power floor at their value (0.5 of 700 W,
    up to the weak prior): the outlier, measured 1.4 x 350 W, is then predicted at ~350 W, a
    -28.6 % error; in-sample the fit leaned towards it."""
    out = rows["P2"]
    assert out.loo == pytest.approx(350, rel=0.02)
    assert out.pct("loo") == pytest.approx(100 * (350 / 490 - 1), abs=1.0)
    assert abs(out.pct("loo")) > abs(out.pct("full"))
    # the others, left out one at a time, are predicted from one normal row and the outlier
    assert rows["P0"].loo > rows["P0"].full


def test_leave_one_family_out_takes_the_derived_default(cases, rows):
    """toy-a left out: its gemm_16bit is the cross-family median of what remains (toy-b's
    fit), so its end-to-end row is 1 / that."""
    rest = [c for c in cases if c.family != A]
    g = derived_defaults(calibrate_blocks(rest)[0])["gemm_16bit"][0]
    assert rows["E1"].lofo == pytest.approx(1 / g, rel=1e-6)
    assert rows["E1"].lofo != pytest.approx(rows["E1"].full, rel=1e-3)
    assert rows["G1"].lofo is None  # microbenchmarks are not predicted left out


def test_refits_leave_the_shipped_factors_alone(rows):
    assert efficiency_for("nvidia-hopper").calibrated


def test_same_cases_same_numbers(cases, rows):
    again = {r.id: r for r in out_of_sample(cases)}
    assert again == rows


def test_bands_from_out_of_sample_residuals(rows):
    """toy-a power: three LOO residuals ln(measured / loo) -> its own band; e2e: one residual
    per family -> the pooled band (both rows), marked."""
    data = intervals(list(rows.values()))
    res = sorted(math.log(rows[f"P{i}"].measured / rows[f"P{i}"].loo) for i in range(3))
    power = data["families"][A]["power"]
    assert power["source"] == "own" and power["n"] == 3
    assert res[0] <= power["p10"] <= power["p90"] <= res[-1]
    e2e = data["families"][A]["e2e"]
    assert e2e["source"] == "pooled" and e2e["n_own"] == 1 and e2e["n"] == 2
    assert data["pooled"]["e2e"]["n"] == 2 and "throughput" not in data["pooled"]


def test_bands_file_round_trips_and_is_not_rewritten(rows, tmp_path):
    report = LooReport(list(rows.values()), 0.0, 1, ["toy rows"])
    path = tmp_path / "intervals.toml"
    assert write_intervals(report, path)
    text = path.read_text()
    assert text.startswith("# GENERATED by `xpusim validate --loo --write-intervals`")
    data = tomllib.loads(text)
    want = intervals(report.rows)
    p10 = want["families"][A]["power"]["p10"]
    assert data["families"][A]["power"]["p10"] == pytest.approx(p10)
    assert not write_intervals(report, path)  # same bands: nothing written
    assert band(A, "power", extrapolated=False, path=path).source == "own"
    assert band(A, "e2e", extrapolated=False, path=path).extrapolated
    assert render_intervals(want, ["toy rows"], 5).count("[pooled.") == len(want["pooled"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--write-intervals"], "--write-intervals needs --loo"),
        (["--workers", "2"], "--workers needs --loo"),
        (["--loo", "--workers", "0"], "--workers 0: give a positive integer"),
        (["--loo", "--write-intervals", "{tmp}"], "a folder"),
        (["--loo", "--write-intervals", "{tmp}/no/such/intervals.toml"], "not an existing"),
        (["--loo", "--workers", "two"], "invalid int value"),
    ],
)
def test_loo_flags_bad_input_one_line_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["validate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
