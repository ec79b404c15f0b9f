"""Dense sweeps: every grid point of a space through the vectorized kernels, to CSV or Parquet.

The chip dimensions form one design matrix (``[n, N_DESIGN]``, built column-wise in NumPy from
the physical model, the same formulas :class:`arch.physical.ChipDesign` uses one at a time);
each combination of the other dimensions (model shape, deployment) builds its op graphs once and
costs all chip designs in one Numba call per graph. Memory fit and weight placement are decided
per design exactly as :func:`workloads.capacity.plan_memory` does, so a point that does not fit
is written with ``fits = 0`` and no timings.

TPOT is the Simpson mean over the growing context and TTFT the prefill of the batch, as in
``xpusim predict``; a sweep point equals the search's analytic evaluation of the same point.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

from arch.base import ConfigError
from arch.chip import PRECISIONS, System
from arch.efficiency import efficiency_for
from arch.physical import (
    CORE_TILE,
    MACS_PER_CORE,
    ChipDesign,
    area_mm2,
    cost_usd,
    node_arrays,
    package,
    power_w,
    technology,
)
from explore.api.predict import Workload
from explore.search.objectives import _deploy, _parallelism, _section, build_model, lengths
from explore.search.space import Space, load_space
from explore.tco.inputs import default_inputs, ownership, usd_per_m_tokens
from kernels import layout as L
from kernels.cost import stage_totals
from kernels.pack import pack_design, pack_ops
from workloads.presets import load_model
from workloads.quant import get_quant

__all__ = ["SweepResult", "run_sweep", "sweep"]

OUT_METRICS = ("fits", "ttft_s", "tpot_s", "tokens_per_s_per_user", "tokens_per_s",
               "tokens_per_s_per_chip", "power_w", "tokens_per_s_per_w", "area_mm2", "tdp_w",
               "chip_cost_usd", "usd_per_m_output_tokens", "package_ok")  # fmt: skip


class SweepResult:
    def __init__(self, columns: dict[str, np.ndarray], wall_s: float):
        self.columns, self.wall_s = columns, wall_s

    @property
    def n_points(self) -> int:
        return len(next(iter(self.columns.values())))


def _chip_grid(space: Space) -> dict[str, np.ndarray]:
    """Cartesian product of the chip dimensions (first dimension slowest), as columns."""
    dims = space.dims_in("chip")
    if not dims:
        return {}
    grids = [np.asarray(d.grid(), dtype=object) for d in dims]
    idx = np.indices([len(g) for g in grids]).reshape(len(grids), -1)
    return {d.name: g[i] for d, g, i in zip(dims, grids, idx, strict=True)}


def _field(cols: dict, base: dict, name: str, n: int) -> np.ndarray:
    if name in cols:
        return cols[name]
    default = ChipDesign.model_fields[name].default
    return np.full(n, base.get(name, default), dtype=object)


def _designs(space: Space, n: int, cols: dict) -> dict[str, np.ndarray]:
    """Validated ChipDesign fields per point (unit strings parsed once per distinct value)."""
    base = dict(space.base.get("chip", {}))
    out = {}
    for name in ChipDesign.model_fields:
        if name in ("name", "topology"):
            continue
        col = _field(cols, base, name, n)
        uniq = {v: _parse_field(name, v) for v in set(col.tolist())}
        out[name] = np.array([uniq[v] for v in col.tolist()], dtype=object)
    return out


def _parse_field(name: str, value):
    probe = {"peak_bf16_flops_per_s": 1e12, name: value}
    return getattr(ChipDesign(**probe), name)


def _physical(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Vectorized physical model and memory levels of every design."""
    t = technology()
    text = ("node", "hbm_gen", "ddr_gen", "core_style", "yield_model", "volume_units")
    num = {k: v.astype(float) for k, v in f.items() if k not in text}
    node = node_arrays(t, f["node"])
    has_hbm = num["hbm_stacks"] > 0
    gen = np.where(has_hbm, f["hbm_gen"], f["ddr_gen"])
    units = np.where(has_hbm, num["hbm_stacks"], num["ddr_packages"])
    mem = {k: np.array([getattr(t.memory(g), k) for g in gen], dtype=float)
           for k in ("capacity_bytes", "bandwidth_bytes_per_s", "energy_j_per_byte",
                     "price_usd_per_gb")}  # fmt: skip
    off_bw = units * mem["bandwidth_bytes_per_s"]
    sram_bw = num["sram_bytes"] / 1e6 * t.power.sram_bytes_per_s_per_mb
    sram_bw = np.where(units > 0, np.maximum(sram_bw, 2 * off_bw), sram_bw)
    p = num["peak_bf16_flops_per_s"]
    macs = p / (2 * num["clock_hz"])
    systolic = f["core_style"] == "systolic"
    area = area_mm2(t, node, macs=macs, lanes=num["vector_fraction"] * macs,
                    sram_mb=num["sram_bytes"] / 1e6, fp8=num["fp8"], fp4=num["fp4"],
                    hbm=num["hbm_stacks"], ddr=num["ddr_packages"],
                    link_gbps=num["link_bytes_per_s"] / 1e9, systolic=systolic)  # fmt: skip
    wafer = f["wafer_scale"].astype(bool)
    pkg = package(t, area["total"], num["hbm_stacks"], wafer)
    pw = power_w(t, node, flops16=p, vflops=num["vector_fraction"] * p, sram_bw=sram_bw,
                 mem_bw=off_bw, mem_j=mem["energy_j_per_byte"], link_bw=num["link_bytes_per_s"],
                 area=pkg["silicon_mm2"])  # fmt: skip
    vol = np.array([v or t.cost.volume_units for v in f["volume_units"]], dtype=float)
    cost = cost_usd(t, node, pkg=pkg, hbm=num["hbm_stacks"],
                    mem_gb=units * mem["capacity_bytes"] / 1e9,
                    mem_usd_per_gb=mem["price_usd_per_gb"], tdp_w=pw["total"],
                    wafer_scale=wafer, volume=vol)  # fmt: skip
    return {
        **num, "node_energy": node["energy_rel"], "macs": macs, "systolic": systolic,
        "off_cap": units * mem["capacity_bytes"], "off_bw": off_bw,
        "off_e": mem["energy_j_per_byte"],
        "sram_bw": sram_bw, "sram_e": t.power.sram_j_per_byte * node["energy_rel"],
        "area": pkg["silicon_mm2"], "package_ok": pkg["fits"], "tdp": pw["total"],
        "idle": np.minimum(pw["leakage"] * (1 + t.power.uncore_power_fraction), 0.5 * pw["total"]),
        "cost": cost["total"], "e_flop": t.power.j_per_flop16 * node["energy_rel"],
    }  # fmt: skip


def _peaks(x: dict) -> np.ndarray:
    """Matrix peak per precision code with the same fallback as kernels.pack."""
    p = x["peak_bf16_flops_per_s"]
    p8 = np.where(x["fp8"] > 0, 2 * p, p)
    p4 = np.where(x["fp4"] > 0, 4 * p, p8)
    by = {"fp32": p, "tf32": p, "bf16": p, "fp16": p, "fp8": p8, "int8": p8, "fp6": p8,
          "fp4": p4, "int4": np.where(x["fp8"] > 0, p8, p)}  # fmt: skip
    return np.stack([by[q] for q in PRECISIONS], axis=1)


def _matrix(base_row: np.ndarray, x: dict, w_in_sram: np.ndarray) -> np.ndarray:
    n = len(x["area"])
    d = np.repeat(base_row[None, :], n, axis=0)
    d[:, L.PEAK0 : L.PEAK0 + len(PRECISIONS)] = _peaks(x)
    d[:, L.VPEAK] = x["vector_fraction"] * x["peak_bf16_flops_per_s"]
    d[:, L.UNITS] = np.maximum(1, np.round(x["macs"] / MACS_PER_CORE))
    d[:, L.TILE_R] = d[:, L.TILE_C] = CORE_TILE
    d[:, L.WEIGHT_STATIONARY] = x["systolic"]
    has_off = x["off_cap"] > 0
    main_bw = np.where(has_off, x["off_bw"], x["sram_bw"])
    main_bw = np.where(main_bw > 0, main_bw, 1.0)  # no memory at all: never fits, keep finite
    main_e = np.where(has_off, x["off_e"], x["sram_e"])
    d[:, L.BW_WEIGHTS] = np.where(w_in_sram, x["sram_bw"], main_bw)
    d[:, L.E_WEIGHTS] = np.where(w_in_sram, x["sram_e"], main_e)
    d[:, L.BW_KV] = d[:, L.BW_ACT] = main_bw
    d[:, L.E_KV] = d[:, L.E_ACT] = main_e
    d[:, L.UP_BW] = x["link_bytes_per_s"]
    d[:, L.E_FLOP16] = d[:, L.E_VFLOP] = x["e_flop"]
    d[:, L.PEAK16] = x["peak_bf16_flops_per_s"]
    d[:, L.IDLE_W], d[:, L.TDP_W] = x["idle"], x["tdp"]
    return d


def _fit(x: dict, plan, rf: float) -> tuple[np.ndarray, np.ndarray]:
    """(fits, weights in SRAM) per design, as plan_memory decides."""
    has_off = x["off_cap"] > 0
    main_cap = np.where(has_off, x["off_cap"], x["sram_bytes"])
    free = main_cap * (1 - rf) - plan.kv_cache - plan.activations
    in_sram = has_off & (plan.weights <= x["sram_bytes"] * (1 - rf)) & (free >= 0)
    return in_sram | (plan.weights <= free), in_sram


def _step(graph, chip, design_rows, microbatches: int):
    packed = pack_ops(graph, chip)
    out = stage_totals(*packed.args, packed.count, packed.stage, packed.n_stages, design_rows)
    t = out[:, :, L.T_TOTAL]
    total = np.maximum(t.sum(axis=1), microbatches * t.max(axis=1))
    tp = graph.meta.get("parallelism", {}).get("tp", 1)
    return total, out[:, :, L.ENERGY].sum(axis=1) * tp


def _combo(space: Space, params: dict, x: dict, ref) -> dict[str, np.ndarray]:
    """Cost every chip design for one (model, deployment) combination; ``ref`` is the base
    design's chip, which supplies everything the design matrix does not vary."""
    base_model = load_model(space.base["model"])
    model, _ = build_model(base_model, _section(params, "model"), space.quality)
    dep = _deploy(space.base, params)
    par = _parallelism(dep, model)
    inp, outl = lengths(space.base)
    eff = efficiency_for("custom")
    w = Workload(System(chip=ref, count=dep["chips"]), model, get_quant(dep["quant"]), par,
                 inp, outl, eff)  # fmt: skip
    b = dep["batch"]
    plan = w.plan(b)
    fits, in_sram = _fit(x, plan, eff.value("memory_reserve_fraction"))
    rows = _matrix(pack_design(w.system, eff, plan), x, in_sram)
    ttft, e_pre = _step(w.graph("prefill", b, inp, 0), ref, rows, 1)
    micro, mb = math.ceil(b / par.pp), min(par.pp, b)
    c0, c1 = inp, inp + outl - 1
    dec = [_step(w.graph("decode", micro, 1, c), ref, rows, mb) for c in (c0, (c0 + c1) // 2, c1)]
    tpot = (dec[0][0] + 4 * dec[1][0] + dec[2][0]) / 6
    e_dec = (dec[0][1] + 4 * dec[1][1] + dec[2][1]) / 6 * mb
    return _metrics(space, x, dep, par, fits, ttft, tpot, e_pre, e_dec, eff)


def _ref_design(space: Space) -> dict:
    base = dict(space.base.get("chip", {}))
    base.setdefault("peak_bf16_flops_per_s", 1e15)
    if not (base.get("sram_bytes") or base.get("hbm_stacks") or base.get("ddr_packages")):
        base["hbm_stacks"] = 4
    return base


def _metrics(space, x, dep, par, fits, ttft, tpot, e_pre, e_dec, eff) -> dict[str, np.ndarray]:
    outl = lengths(space.base)[1]
    b, chips, cpr = dep["batch"], dep["chips"], par.chips_per_replica
    e2e = ttft + (outl - 1) * tpot
    floor = np.maximum(x["idle"], eff.value("active_power_fraction") * x["tdp"])
    dyn = e_pre + (outl - 1) * e_dec
    power = np.minimum((dyn + cpr * floor * e2e) / (cpr * e2e), x["tdp"])
    tps = b * outl / e2e * par.dp
    tco = default_inputs().with_overrides(space.base.get("tco"), "[base.tco]")
    own = ownership(tco, chips=chips, chip_price_usd=x["cost"], chip_tdp_w=x["tdp"],
                    chip_busy_w=power, chip_idle_w=x["idle"])  # fmt: skip
    ok = fits & x["package_ok"].astype(bool)
    nan = np.where(ok, 1.0, np.nan)
    return {
        "fits": ok.astype(float), "ttft_s": ttft * nan, "tpot_s": tpot * nan,
        "tokens_per_s_per_user": 1 / tpot * nan, "tokens_per_s": tps * nan,
        "tokens_per_s_per_chip": tps / chips * nan, "power_w": power * nan,
        "tokens_per_s_per_w": tps / (chips * power) * nan, "area_mm2": x["area"],
        "tdp_w": x["tdp"], "chip_cost_usd": x["cost"],
        "usd_per_m_output_tokens": usd_per_m_tokens(own, tps, tco.utilization) * nan,
        "package_ok": x["package_ok"].astype(float),
    }  # fmt: skip


def sweep(space: str | Path | Space) -> SweepResult:
    """Every grid point of the space; columns: the dimensions, then :data:`OUT_METRICS`."""
    sp = space if isinstance(space, Space) else load_space(space)
    if isinstance(sp.base.get("chip", {}), str):
        raise ConfigError("sweep needs [base.chip] as a design table (the vectorized model)")
    t0 = time.perf_counter()
    cols = _chip_grid(sp)
    n = len(next(iter(cols.values()))) if cols else 1
    x = _physical(_designs(sp, n, cols))
    ref = ChipDesign(**_ref_design(sp)).to_chip()
    others = [d for d in sp.dims if d.section != "chip"]
    parts: list[dict] = []
    for values in itertools.product(*[d.grid() for d in others]):
        params = {d.key: v for d, v in zip(others, values, strict=True)}
        res = _combo(sp, params, x, ref)
        parts.append({**{k: np.full(n, v, dtype=object) for k, v in params.items()},
                      **{f"chip.{k}": v for k, v in cols.items()}, **res})  # fmt: skip
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SweepResult(columns, time.perf_counter() - t0)


def write(res: SweepResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError("--out *.parquet needs pyarrow (pip install pyarrow); "
                              "or write .csv") from None  # fmt: skip
        pq.write_table(pa.table({k: v.tolist() if v.dtype == object else v
                                 for k, v in res.columns.items()}), path)  # fmt: skip
        return
    if path.suffix != ".csv":
        raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
    names = list(res.columns)
    fmt = ",".join("%s" if res.columns[k].dtype == object else "%.6g" for k in names) + "\n"
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(0, res.n_points, 50_000):
            block = np.stack([res.columns[k][i : i + 50_000].astype(object) for k in names], 1)
            fh.write((fmt * len(block)) % tuple(block.ravel()))


def run_sweep(space_path: Path, out: Path, *, as_json: bool) -> int:
    res = sweep(space_path)
    t0 = time.perf_counter()
    write(res, out)
    write_s = time.perf_counter() - t0
    info = {"n_points": res.n_points, "points_per_s": res.n_points / res.wall_s,
            "compute_s": res.wall_s, "write_s": write_s, "out": str(out),
            "n_fit": int(np.nansum(res.columns["fits"]))}  # fmt: skip
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{info['n_points']:,} points ({info['n_fit']:,} fit) in {res.wall_s:.2f} s = "
              f"{info['points_per_s']:,.0f} points/s; wrote {out} in {write_s:.1f} s")  # fmt: skip
    return 0
