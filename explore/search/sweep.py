"""Dense sweeps: every grid point of a space through the vectorized kernels, to CSV or Parquet.

The chip dimensions form one table of designs, costed by the physical model in one call
(:func:`arch.physical.design_arrays`, the function :class:`arch.physical.ChipDesign` uses for one
design); each combination of the other dimensions (model shape, deployment) costs every chip
design at once through the one evaluation path (:func:`sim.evaluate.cost_run` on the designs'
packed rows) and the search's metrics (:func:`explore.search.objectives.run_metrics`). Weights
are placed per design by the one placement rule (:func:`workloads.capacity.place_weights`); a
point that does not fit is written with ``fits = 0`` and no timings. A sweep point therefore
equals the search's evaluation of the same point, and ``predict`` of the same chip.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from arch.base import ConfigError, strict_json
from arch.physical import ChipDesign, DesignArrays, design_arrays
from explore.search.objectives import (
    Infeasible,
    build_model,
    deployment,
    run_metrics,
    section,
    tco_inputs,
)
from explore.search.space import Space, load_space
from kernels.pack import base_row, pack_rows
from sim.evaluate import RunCost, cost_run
from workloads.capacity import place_weights
from workloads.presets import load_model

__all__ = ["MAX_POINTS", "OUT_METRICS", "SweepResult", "check_out", "grid_size", "sweep", "write"]

MAX_POINTS = 5_000_000  # a larger grid is refused before any work (--max-points overrides)

OUT_METRICS = ("fits", "ttft_s", "tpot_s", "tokens_per_s_per_user", "tokens_per_s",
               "tokens_per_s_per_chip", "power_w", "tokens_per_s_per_w", "area_mm2", "tdp_w",
               "chip_cost_usd", "usd_per_m_output_tokens", "joules_per_token",
               "package_ok")  # fmt: skip
# metrics that exist only where the point fits (NaN elsewhere)
_PERFORMANCE = ("ttft_s", "tpot_s", "tokens_per_s_per_user", "tokens_per_s",
                "tokens_per_s_per_chip", "tokens_per_s_per_w",
                "usd_per_m_output_tokens", "joules_per_token")  # fmt: skip


class SweepResult:
    def __init__(self, columns: dict[str, np.ndarray], wall_s: float):
        self.columns, self.wall_s = columns, wall_s

    @property
    def n_points(self) -> int:
        return len(next(iter(self.columns.values())))

    def to_dataframe(self):
        """One row per grid point: the dimensions, then :data:`OUT_METRICS` (as written to the
        CSV; needs pandas)."""
        from sim.evaluate import require_pandas

        pd = require_pandas("SweepResult.to_dataframe()")
        return pd.DataFrame({k: v.tolist() if v.dtype == object else v
                             for k, v in self.columns.items()})  # fmt: skip


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
    spec = ChipDesign.model_fields[name]
    if name not in base and spec.is_required():
        raise ConfigError(f"sweep: [base.chip] {name} is required (or make it a [chip] dimension)")
    return np.full(n, base.get(name, spec.default), dtype=object)


def _designs(space: Space, n: int, cols: dict) -> dict[str, np.ndarray]:
    """Validated ChipDesign fields per point (unit strings parsed once per distinct value)."""
    base = dict(space.base.get("chip", {}))
    out = {}
    for name in ChipDesign.model_fields:
        if name == "name":
            continue
        col = _field(cols, base, name, n)
        uniq = {v: _parse_field(name, v) for v in set(col.tolist())}
        out[name] = np.array([uniq[v] for v in col.tolist()], dtype=object)
    return out


def _parse_field(name: str, value):
    probe = {"peak_bf16_flops_per_s": 1e12, name: value}
    return getattr(ChipDesign(**probe), name)


def _combo(space: Space, params: dict, phys: DesignArrays, ref) -> dict[str, np.ndarray]:
    """Cost every chip design for one (model, deployment) combination; ``ref`` is the base
    design's chip, which supplies what the design table does not vary (the scale-out fabric,
    the efficiency family)."""
    base_model = load_model(space.base["model"])
    model, _ = build_model(base_model, section(params, "model"), space.quality)
    dep, w = deployment(ref, model, space.base, params)
    b = dep["batch"]
    plan = w.plan(b)  # bytes (the same on every design); chunk and placement are per design
    chunk, act = w.activations(phys.chips, b, weights=plan.weights, kv=plan.kv_cache)
    place = place_weights(phys.chips, weights=plan.weights, kv=plan.kv_cache, activations=act,
                          reserve_fraction=w.eff.value("memory_reserve_fraction"))  # fmt: skip
    rows = pack_rows(base_row(w.system, w.eff), phys.chips, place)
    run = _by_chunk(w, b, rows, plan, chunk)
    m = run_metrics(run, chips=dep["chips"], tdp_w=phys.chips.tdp_w, idle_w=phys.chips.idle_w,
                    price_usd=phys.cost["total"], area_mm2=phys.package["silicon_mm2"],
                    tco=tco_inputs(space.base), params=float(model.total_params()),
                    loss=0.0)  # fmt: skip
    ok = (place.sum(axis=1) > 0) & phys.fits
    nan = np.where(ok, 1.0, np.nan)
    out = {k: m[k] * nan if k in _PERFORMANCE else m[k] for k in OUT_METRICS if k in m}
    return out | {"fits": ok.astype(float), "power_w": run.power_w * nan,
                  "package_ok": phys.package["fits"].astype(float)}  # fmt: skip


def _by_chunk(w, batch: int, rows: np.ndarray, plan, chunk: np.ndarray) -> RunCost:
    """:func:`cost_run` of every design, one call per distinct prefill chunk (designs with
    large memories share the engine's full chunk)."""
    parts = {}
    for c in np.unique(chunk):
        sel = chunk == c
        at_chunk = replace(plan, prefill_chunk_tokens=int(c))
        parts[int(c)] = (sel, cost_run(w, batch, rows[sel], at_chunk))
    out = {}
    for f in RunCost.__dataclass_fields__:
        col = np.empty(len(rows))
        for sel, run in parts.values():
            col[sel] = getattr(run, f)
        out[f] = col
    return RunCost(**out)


def _cannot_run(phys: DesignArrays, reason: str) -> dict[str, np.ndarray]:
    """Rows of a (model, deployment) combination that cannot run on any design: fits = 0, no
    timings; the chips' own figures (area, TDP, cost) stay."""
    n = len(phys.fits)
    nan = np.full(n, np.nan)
    out = dict.fromkeys(OUT_METRICS, nan)
    return out | {"fits": np.zeros(n), "tdp_w": phys.chips.tdp_w, "area_mm2":
                  phys.package["silicon_mm2"], "chip_cost_usd": phys.cost["total"],
                  "package_ok": phys.package["fits"].astype(float)}  # fmt: skip


def _ref_design(space: Space) -> dict:
    base = dict(space.base.get("chip", {}))
    base.setdefault("peak_bf16_flops_per_s", 1e15)
    if not (base.get("sram_bytes") or base.get("hbm_stacks") or base.get("ddr_packages")):
        base["hbm_stacks"] = 4
    return base


def _dim_size(d) -> int:
    """How many values ``d.grid()`` has, without building it."""
    if d.choices:
        return len(d.choices)
    if d.step:
        return math.floor((d.high - d.low) / d.step + 1e-9) + 1
    if d.num:
        return int(d.num)
    d.grid()  # raises the one-line error: a grid needs choices, step or num
    return 0


def grid_size(space: Space) -> int:
    """Points of the space's grid (the product of every dimension's values)."""
    return math.prod(_dim_size(d) for d in space.dims)


def sweep(
    space: str | Path | Space, *, max_points: int | None = None, progress=None
) -> SweepResult:
    """Every grid point of the space; columns: the dimensions, then :data:`OUT_METRICS`. A grid
    of more than ``max_points`` (default :data:`MAX_POINTS`) is refused before any work.
    ``progress(n)``, if given, is called as grid points are costed (they sum to the grid's
    size)."""
    sp = space if isinstance(space, Space) else load_space(space)
    if isinstance(sp.base.get("chip", {}), str):
        raise ConfigError("sweep needs [base.chip] as a design table (the vectorized model)")
    limit = MAX_POINTS if max_points is None else max_points
    if limit < 1:
        raise ConfigError(f"--max-points {limit}: give a positive number of grid points")
    n_grid = grid_size(sp)
    if n_grid > limit:
        raise ConfigError(f"sweep: the grid has {n_grid:,} points, over the {limit:,} limit; "
                          f"narrow the space or pass --max-points {n_grid}")  # fmt: skip
    t0 = time.perf_counter()
    cols = _chip_grid(sp)
    n = len(next(iter(cols.values()))) if cols else 1
    phys = design_arrays(_designs(sp, n, cols))
    ref = ChipDesign(**_ref_design(sp)).to_chip()
    others = [d for d in sp.dims if d.section != "chip"]
    parts: list[dict] = []
    for values in itertools.product(*[d.grid() for d in others]):
        params = {d.key: v for d, v in zip(others, values, strict=True)}
        try:
            res = _combo(sp, params, phys, ref)
        except Infeasible as exc:  # the deployment cannot run this model: no design fits it
            res = _cannot_run(phys, str(exc))
        parts.append({**{k: np.full(n, v, dtype=object) for k, v in params.items()},
                      **{f"chip.{k}": v for k, v in cols.items()}, **res})  # fmt: skip
        if progress is not None:
            progress(n)
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SweepResult(columns, time.perf_counter() - t0)


def check_out(path: Path) -> None:
    """The output's format and writability, before any work: a .csv or .parquet name (Parquet
    needs pyarrow), not a folder, in a folder this process can create and write."""
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {path}: use a .csv or .parquet file name")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ConfigError("--out *.parquet needs pyarrow (pip install pyarrow); "
                              "or write .csv") from None  # fmt: skip
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name ending .csv or .parquet")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write it ({exc.strerror}); give a writable "
                          "path") from None  # fmt: skip
    if not existed:
        path.unlink()


def write(res: SweepResult, path: Path) -> None:
    check_out(path)
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
    names = list(res.columns)
    fmt = ",".join("%s" if res.columns[k].dtype == object else "%.6g" for k in names) + "\n"
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(0, res.n_points, 50_000):
            block = np.stack([res.columns[k][i : i + 50_000].astype(object) for k in names], 1)
            fh.write((fmt * len(block)) % tuple(block.ravel()))


def run_sweep(space_path: Path, out: Path, *, as_json: bool, max_points: int | None = None) -> int:
    from explore.report.progress import progress

    space = load_space(space_path)  # the input first, then the output, then the work
    check_out(out)
    with progress(grid_size(space), "sweep (grid points)", enabled=not as_json) as advance:
        res = sweep(space, max_points=max_points, progress=advance)
    t0 = time.perf_counter()
    write(res, out)
    write_s = time.perf_counter() - t0
    from explore.search.output import sweep_best, sweep_plot, sweep_summary

    plot = sweep_plot(res, space, out.with_suffix(".png"))  # beside the table: OUT.png
    info = {"n_points": res.n_points, "points_per_s": res.n_points / res.wall_s,
            "compute_s": res.wall_s, "write_s": write_s, "out": str(out),
            "n_fit": int(np.nansum(res.columns["fits"])), "plot": str(plot),
            "best": sweep_best(res, space)}  # fmt: skip
    if as_json:
        print(strict_json(info))
    else:
        print(f"{info['n_points']:,} points ({info['n_fit']:,} fit) in {res.wall_s:.2f} s = "
              f"{info['points_per_s']:,.0f} points/s; wrote {out} in {write_s:.1f} s")  # fmt: skip
        for line in sweep_summary(res, space):
            print(line)
        print(f"plot: {plot}")
    return 0
