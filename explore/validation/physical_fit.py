"""Fit and check the physical model (arch.physical) on existing chips' published area and TDP.

``xpusim physical`` prints, per calibration chip, the predicted vs published die area and TDP with
the error in sample and leave-one-out (the chip's own figure left out of the fit), and the
manufacturing cost estimate next to the list price. ``--fit`` refits the five named parameters
(``mac_um2``, ``sram_mm2_per_mb``, ``uncore_fraction`` on areas; ``j_per_flop16``,
``leakage_w_per_mm2`` on TDPs) by least squares on log error and writes ``physical_fitted.toml``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from arch.base import load_toml, split_sources, strict_json
from arch.chip import Chip
from arch.physical import (
    PHYSICAL_DIR,
    Technology,
    area_mm2,
    clear_cache,
    cost_usd,
    node_arrays,
    package,
    power_w,
    technology,
)
from arch.presets import load_chip
from arch.units import parse_field_value

__all__ = ["CalibrationChip", "calibration_chips", "fit", "report_rows", "run_physical"]

AREA_PARAMS = ("mac_um2", "systolic_mac_um2", "sram_mm2_per_mb")
POWER_PARAMS = ("j_per_flop16", "leakage_w_per_mm2")
# width of the log-normal prior around each technology.toml value (0.7 ~ a factor of 2; the SRAM
# bitcell is known better) and the expected log error of a first-order model on one chip
PRIOR_LOG_SIGMA = {
    "mac_um2": 0.7,
    "systolic_mac_um2": 0.7,
    "sram_mm2_per_mb": 0.3,
    "j_per_flop16": 0.7,
    "leakage_w_per_mm2": 1.0,
}
DATA_LOG_SIGMA = 0.2
# units over which a shipping chip's NRE is spread in the cost column: large enough that the
# column reads as manufacturing cost, to compare with the list price (which carries the margin)
MANUFACTURING_VOLUME = 1e6
BOUNDS = {
    "mac_um2": (300.0, 8000.0),
    "sram_mm2_per_mb": (0.15, 1.0),
    "systolic_mac_um2": (50.0, 4000.0),
    "j_per_flop16": (0.05e-12, 1.5e-12),
    "leakage_w_per_mm2": (0.0, 0.4),
}


@dataclass(frozen=True)
class CalibrationChip:
    """A preset chip with the extra physical inputs of calibration.toml."""

    chip: Chip
    node: str
    clock_hz: float
    hbm_phys: int
    ddr_phys: int
    link_bytes_per_s: float
    wafer_scale: bool
    memory_gen: str | None
    systolic: bool
    fit_area: bool
    fit_tdp: bool
    note: str

    @property
    def published_area(self) -> float | None:
        return self.chip.die_area_mm2

    @property
    def published_tdp(self) -> float | None:
        return self.chip.tdp_w


def calibration_chips() -> list[CalibrationChip]:
    raw = load_toml(PHYSICAL_DIR / "calibration.toml")
    refs = raw.pop("refs")
    values, _ = split_sources(raw, refs=refs, strict=True)
    out = []
    for name, v in values["chips"].items():
        chip = load_chip(name)
        link = v.get("link_bytes_per_s", chip.scale_up.bandwidth_bytes_per_s)
        clock = parse_field_value(v["clock_hz"], "clock_hz")
        out.append(CalibrationChip(
            chip=chip, node=v["node"], clock_hz=float(clock),
            hbm_phys=int(v.get("hbm_phys", 0)), ddr_phys=int(v.get("ddr_phys", 0)),
            link_bytes_per_s=float(parse_field_value(link, "link_bytes_per_s")),
            wafer_scale=bool(v.get("wafer_scale", False)),
            memory_gen=v.get("hbm_gen") or v.get("ddr_gen"),
            systolic=v["core_style"] == "systolic",
            fit_area=bool(v.get("area", True)) and chip.die_area_mm2 is not None,
            fit_tdp=bool(v.get("tdp", True)), note=refs.get(v.get("note", ""), ""),
        ))  # fmt: skip
    return out


def _components(c: CalibrationChip) -> dict[str, float]:
    chip = c.chip
    bf16 = chip.matrix.peak("bf16") or chip.matrix.peak("fp16")
    on_chip = [m for m in chip.memory if m.kind in ("sram", "cache")]
    main = chip.main_memory
    off = main if main.kind not in ("sram", "cache") else None
    return {
        "macs": bf16 / (2 * c.clock_hz),
        "lanes": max(chip.vector.peak_flops_per_s.values()) / (2 * c.clock_hz),
        "sram_mb": sum(m.capacity_bytes for m in on_chip) / 1e6,
        "sram_bw": max((m.bandwidth_bytes_per_s for m in on_chip), default=0.0),
        "fp8": float(chip.matrix.peak("fp8") > 0),
        "fp4": float(chip.matrix.peak("fp4") > 0),
        "mem_bw": off.bandwidth_bytes_per_s if off else 0.0,
        "mem_j": off.energy_j_per_byte if off else 0.0,
        "bf16": bf16,
        "vflops": max(chip.vector.peak_flops_per_s.values()),
    }


def predict_chip(t: Technology, c: CalibrationChip) -> dict[str, float]:
    """Predicted area (mm2), TDP (W) and unit cost (USD) of a calibration chip."""
    x = _components(c)
    node = {k: v[0] for k, v in node_arrays(t, c.node).items()}
    area = area_mm2(t, node, macs=x["macs"], lanes=x["lanes"], sram_mb=x["sram_mb"],
                    fp8=x["fp8"], fp4=x["fp4"], hbm=c.hbm_phys, ddr=c.ddr_phys,
                    link_gbps=c.link_bytes_per_s / 1e9, systolic=c.systolic)  # fmt: skip
    pkg = package(t, area["total"], c.hbm_phys, c.wafer_scale)
    pw = power_w(t, node, flops16=x["bf16"], vflops=x["vflops"], sram_bw=x["sram_bw"],
                 mem_bw=x["mem_bw"], mem_j=x["mem_j"], link_bw=c.link_bytes_per_s,
                 area=pkg["silicon_mm2"])  # fmt: skip
    main = c.chip.main_memory
    mem_gb = main.capacity_bytes / 1e9 if main.kind not in ("sram", "cache") else 0.0
    per_gb = t.memory(c.memory_gen).price_usd_per_gb if c.memory_gen else 0.0
    cost = cost_usd(t, node, pkg=pkg, hbm=c.hbm_phys, mem_gb=mem_gb, mem_usd_per_gb=per_gb,
                    tdp_w=pw["total"], wafer_scale=c.wafer_scale,
                    volume=MANUFACTURING_VOLUME)  # fmt: skip
    return {"area_mm2": float(pkg["silicon_mm2"]), "tdp_w": float(pw["total"]),
            "unit_cost_usd": float(cost["total"]), "chiplets": float(pkg["chiplets"])}  # fmt: skip


def _with(t: Technology, values: dict[str, float]) -> Technology:
    area = t.area.model_copy(update={k: v for k, v in values.items() if k in AREA_PARAMS})
    power = t.power.model_copy(update={k: v for k, v in values.items() if k in POWER_PARAMS})
    return t.model_copy(update={"area": area, "power": power})


def _fit_group(t, chips, names, key, published) -> dict[str, float]:
    """MAP fit in log space: log errors (sigma DATA_LOG_SIGMA) plus a log-normal prior around
    each technology.toml value, so a parameter few chips constrain stays near its physics."""
    rows = [c for c in chips if published(c)]
    x0 = np.log([_get(t, n) for n in names])
    lo = np.log([max(BOUNDS[n][0], 1e-15) for n in names])
    hi = np.log([BOUNDS[n][1] for n in names])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    weight = np.array([DATA_LOG_SIGMA / PRIOR_LOG_SIGMA[n] for n in names])

    def resid(x):
        tt = _with(t, dict(zip(names, np.exp(x), strict=True)))
        data = [math.log(predict_chip(tt, c)[key] / published(c)) for c in rows]
        return [*data, *((x - x0) * weight)]

    sol = least_squares(resid, x0, bounds=(lo, hi))
    return dict(zip(names, np.exp(sol.x).tolist(), strict=True))


def _get(t: Technology, name: str) -> float:
    return getattr(t.area, name) if name in AREA_PARAMS else getattr(t.power, name)


def fit(t: Technology | None = None, chips: list[CalibrationChip] | None = None) -> dict:
    """Area parameters on published areas, then power parameters on published TDPs."""
    t = t or _priors()
    chips = chips if chips is not None else calibration_chips()
    area = _fit_group(t, chips, AREA_PARAMS, "area_mm2", lambda c: c.fit_area and c.published_area)
    t = _with(t, area)
    power = _fit_group(t, chips, POWER_PARAMS, "tdp_w", lambda c: c.fit_tdp and c.published_tdp)
    return {**area, **power}


def _priors() -> Technology:
    """Technology with the priors of technology.toml (ignoring any fitted file)."""
    raw = load_toml(PHYSICAL_DIR / "technology.toml")
    values, _ = split_sources(raw, refs=raw.pop("refs", {}), strict=True)
    return Technology(**values)


def report_rows(t: Technology | None = None) -> list[dict]:
    """Per chip: predicted vs published area/TDP, in-sample and leave-one-out errors."""
    t = t or technology()
    chips = calibration_chips()
    rows = []
    for c in chips:
        p = predict_chip(t, c)
        others = [o for o in chips if o is not c]
        loo = predict_chip(_with(t, fit(_priors(), others)), c)
        rows.append({
            "chip": c.chip.name, "node": c.node,
            "area_mm2": p["area_mm2"], "published_area_mm2": c.published_area,
            "area_err": _err(p["area_mm2"], c.published_area),
            "area_err_loo": _err(loo["area_mm2"], c.published_area),
            "tdp_w": p["tdp_w"], "published_tdp_w": c.published_tdp,
            "tdp_err": _err(p["tdp_w"], c.published_tdp),
            "tdp_err_loo": _err(loo["tdp_w"], c.published_tdp),
            "unit_cost_usd": p["unit_cost_usd"], "price_usd": c.chip.price_usd,
            "chiplets": p["chiplets"], "fitted_on": {"area": c.fit_area, "tdp": c.fit_tdp},
            "note": c.note,
        })  # fmt: skip
    return rows


def _err(pred: float, pub: float | None) -> float | None:
    return None if pub is None else pred / pub - 1.0


def write_fitted(values: dict[str, float]) -> None:
    stamp = dt.date.today().isoformat()
    lines = [
        f"# GENERATED by `xpusim physical --fit` on {stamp} from the published die areas and",
        "# TDPs of arch/presets/physical/calibration.toml. Do not edit by hand; rerun it.",
    ]
    for section, names in (("area", AREA_PARAMS), ("power", POWER_PARAMS)):
        lines.append(f"\n[{section}]")
        for n in names:
            what = "die areas" if section == "area" else "TDPs"
            note = f"fitted on published {what}"
            lines.append(f'{n} = {{ value = {values[n]:.6g}, note = "{note}" }}')
    (PHYSICAL_DIR / "physical_fitted.toml").write_text("\n".join(lines) + "\n")
    clear_cache()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_table(rows: list[dict], t: Technology) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title="physical model vs published figures (LOO: chip left out of the fit)")
    for col in ("chip", "node", "area mm2", "published", "err", "LOO", "TDP W", "published",
                "err", "LOO", "cost $", "price $"):  # fmt: skip
        tab.add_column(col, justify="left" if col in ("chip", "node") else "right")
    for r in rows:
        star = {k: "" if v else "*" for k, v in r["fitted_on"].items()}
        tab.add_row(r["chip"], r["node"], _num(r["area_mm2"]),
                    _num(r["published_area_mm2"]) + star["area"] * bool(r["published_area_mm2"]),
                    _pct(r["area_err"]), _pct(r["area_err_loo"]), _num(r["tdp_w"]),
                    _num(r["published_tdp_w"]) + star["tdp"] * bool(r["published_tdp_w"]),
                    _pct(r["tdp_err"]), _pct(r["tdp_err_loo"]),
                    _num(r["unit_cost_usd"]), _num(r["price_usd"]))  # fmt: skip
    con = Console(width=150)
    con.print(tab)
    for r in rows:
        if r["note"]:
            con.print(f"  {r['chip']}: {r['note']}")
    params = ", ".join(f"{n}={_get(t, n):.4g} ({t.sources.get(_key(n), '')})" for n in
                       (*AREA_PARAMS, *POWER_PARAMS))  # fmt: skip
    con.print(f"  parameters: {params}")
    con.print("  *: published figure shown, not fitted (see the chip's note)")
    con.print("  cost: manufacturing estimate at 1M units (NRE negligible), vs list price "
              "(which includes the vendor's margin)")  # fmt: skip


def _key(name: str) -> str:
    return f"{'area' if name in AREA_PARAMS else 'power'}.{name}"


def summary(rows: list[dict]) -> dict:
    def med(key):  # over the chips whose figure was fitted (the others are shown, not used)
        kind = "area" if key.startswith("area") else "tdp"
        vals = [abs(r[key]) for r in rows if r[key] is not None and r["fitted_on"][kind]]
        return float(np.median(vals)) if vals else None

    return {k: med(k) for k in ("area_err", "area_err_loo", "tdp_err", "tdp_err_loo")}


def run_physical(*, refit: bool, as_json: bool) -> int:
    if refit:
        write_fitted(fit())
    t = technology()
    rows = report_rows(t)
    if as_json:
        print(strict_json({"chips": rows, "median_abs_error": summary(rows)}))
    else:
        print_table(rows, t)
        s = summary(rows)
        print("median |error|: " + ", ".join(f"{k} {_pct(v)}" for k, v in s.items()))
    return 0
