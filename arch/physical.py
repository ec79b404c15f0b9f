"""Physical model of a chip: die area, power and manufacturing cost from its components.

Area (mm2) at a process node, components scaled from N5 by the node's logic or SRAM density::

    core   = (MACs x mac_um2 x (1 + fp8/fp4 extras) + lanes x vector_lane_um2) / logic_rel
             + SRAM_MB x sram_mm2_per_mb / sram_rel
    total  = core x (1 + uncore_fraction) + PHYs (HBM, DDR) + SerDes per GB/s + fixed

(PHYs and SerDes are analog and barely shrink: they are not node-scaled.) A die larger than the
reticle becomes chiplets (each pays ``d2d_area_fraction``) on an interposer of at most
``max_interposer_reticles``; a ``wafer_scale`` design is one wafer with redundant area.

Power (W) at TDP: the larger of (every MAC and lane at its peak rate) and (SRAM streaming at full
bandwidth), plus off-chip memory and links at full bandwidth and leakage per mm2, times
(1 + uncore_power_fraction).

Shoreline (mm): memory PHYs and SerDes sit at the die edge, so a design can be built only if
``stacks x phy_edge_mm + packages x phy_edge_mm + link GB/s x serdes_edge_mm_per_gbps`` fits in
``io_edge_fraction`` of the perimeter. A monolithic die is taken as square (4 sqrt(A), the least
perimeter for its area); chiplets are squares in two rows, each giving up the edges it abuts; a
wafer-scale chip has the wafer's edge and no HBM (:func:`shoreline`).

Cost (USD): dies per wafer (circle minus edge loss), Murphy or Poisson yield at the node's defect
density, interposer and package, memory at $/GB, board, and NRE (design + masks) over a volume.

The ``mac_um2`` (SIMT cores), ``systolic_mac_um2``, ``sram_mm2_per_mb``, ``j_per_flop16`` and
``leakage_w_per_mm2`` priors are fitted on published die areas and TDPs (``xpusim physical
--fit``); everything else is sourced data in ``presets/physical/technology.toml``. The formulas
are written on NumPy arrays, so a sweep evaluates a million designs in one call.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from arch.base import (
    ConfigError,
    Frozen,
    Source,
    closest,
    format_validation_error,
    load_toml,
    split_sources,
)
from arch.chip import (
    PRECISIONS,
    Chip,
    ChipArrays,
    ComputeEngine,
    Interconnect,
    MemoryLevel,
    Topology,
)

__all__ = [
    "ChipDesign",
    "DesignArrays",
    "MemoryTech",
    "NodeTech",
    "PhysicalReport",
    "Technology",
    "area_mm2",
    "cost_usd",
    "design_arrays",
    "normalize_node",
    "package",
    "power_w",
    "technology",
]

PHYSICAL_DIR = Path(__file__).parent / "presets" / "physical"
# cores a custom design's MACs are grouped into, for tile/wave quantization: GPU-SM-like cores
# (H100: 989 TF / 2 / 1.83 GHz / 132 SMs = 2048 MACs) working on 128 x 128 tiles (assumption)
MACS_PER_CORE = 2048
CORE_TILE = 128
# access latencies and the scale-up hop, as the chip presets' `lat` / `link-lat` assumptions
# (order of magnitude; they only matter for latency-bound collectives and tiny kernels)
SRAM_LATENCY_S, DRAM_LATENCY_S, LINK_LATENCY_S = 20e-9, 600e-9, 1e-6


class NodeTech(Frozen):
    wafer_price_usd: float = Field(gt=0)
    defect_density_per_cm2: float = Field(ge=0)
    logic_density_rel: float = Field(gt=0, description="logic density vs N5")
    sram_density_rel: float = Field(gt=0, description="SRAM density vs N5")
    energy_rel: float = Field(gt=0, description="energy per operation vs N5")
    mask_set_usd: float = Field(ge=0)


class MemoryTech(Frozen):
    """One HBM stack, or one x64 LPDDR/GDDR package."""

    capacity_bytes: float = Field(gt=0)
    bandwidth_bytes_per_s: float = Field(gt=0)
    energy_j_per_byte: float = Field(ge=0)
    price_usd_per_gb: float = Field(ge=0)
    phy_edge_mm: float = Field(gt=0, description="die edge one stack's / package's PHY takes")
    stacked: bool


class AreaParams(Frozen):
    sram_mm2_per_mb: float = Field(gt=0)
    mac_um2: float = Field(gt=0, description="per 16-bit MAC of a GPU-style (SIMT) core")
    systolic_mac_um2: float = Field(gt=0, description="per 16-bit MAC of a systolic array / PE")
    vector_lane_um2: float = Field(ge=0)
    uncore_fraction: float = Field(ge=0)
    fixed_mm2: float = Field(ge=0)
    fp8_area_fraction: float = Field(ge=0)
    fp4_area_fraction: float = Field(ge=0)
    hbm_phy_mm2: float = Field(ge=0)
    ddr_phy_mm2: float = Field(ge=0)
    serdes_mm2_per_gbps: float = Field(ge=0)
    d2d_area_fraction: float = Field(ge=0)
    wafer_redundancy_fraction: float = Field(ge=0)


class PowerParams(Frozen):
    j_per_flop16: float = Field(gt=0)
    leakage_w_per_mm2: float = Field(ge=0)
    sram_j_per_byte: float = Field(ge=0)
    serdes_j_per_byte: float = Field(ge=0)
    uncore_power_fraction: float = Field(ge=0)
    sram_bytes_per_s_per_mb: float = Field(gt=0)


class ShorelineParams(Frozen):
    io_edge_fraction: float = Field(gt=0, le=1, description="of the perimeter, for PHYs/SerDes")
    serdes_edge_mm_per_gbps: float = Field(ge=0, description="per GB/s per direction")


class CostParams(Frozen):
    package_usd: float = Field(ge=0)
    interposer_usd_per_mm2: float = Field(ge=0)
    hbm_footprint_mm2: float = Field(ge=0)
    board_usd: float = Field(ge=0)
    board_usd_per_w: float = Field(ge=0)
    design_nre_usd: float = Field(ge=0)
    volume_units: float = Field(ge=1)


class Technology(Frozen):
    reticle_mm2: float = Field(gt=0)
    wafer_diameter_mm: float = Field(gt=0)
    scribe_mm: float = Field(ge=0)
    max_interposer_reticles: float = Field(gt=0)
    wafer_scale_mm2: float = Field(gt=0)
    area: AreaParams
    shoreline: ShorelineParams
    power: PowerParams
    cost: CostParams
    nodes: dict[str, NodeTech]
    memories: dict[str, MemoryTech]
    sources: dict[str, Source] = Field(default_factory=dict, repr=False)

    def node(self, name: str) -> NodeTech:
        key = normalize_node(name)
        if key not in self.nodes:
            hint = closest(key, list(self.nodes))
            raise ConfigError(f"node {name!r}: unknown process node; {hint}")
        return self.nodes[key]

    def memory(self, name: str) -> MemoryTech:
        if name not in self.memories:
            raise ConfigError(f"memory {name!r}: unknown; {closest(name, list(self.memories))}")
        return self.memories[name]


_NODE_PATTERNS = (
    (r"\b(4NP?|N4P?|4 ?nm)\b", "N4"),
    (r"\b(N3E?|3 ?nm)\b", "N3"),
    (r"\b(N5|5 ?nm)\b", "N5"),
    (r"\b(N6|6 ?nm)\b", "N6"),
    (r"\b(N7|7 ?nm)\b", "N7"),
    (r"\b(N1[2-6]|1[2-6] ?nm)\b", "N16"),
)


def normalize_node(text: str) -> str:
    """'TSMC 4N' -> 'N4', '14nm' -> 'N16' (the 16/14/12 nm FinFET class); unknown text as is."""
    for pattern, node in _NODE_PATTERNS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return node
    return text


@lru_cache(maxsize=1)
def technology() -> Technology:
    """Sourced technology data, with fitted parameters from ``physical_fitted.toml`` if present."""
    raw = load_toml(PHYSICAL_DIR / "technology.toml")
    refs = raw.pop("refs", {})
    values, sources = split_sources(raw, refs=refs, strict=True)
    fitted_path = PHYSICAL_DIR / "physical_fitted.toml"
    if fitted_path.exists():
        fitted = load_toml(fitted_path)
        for section in ("area", "power"):
            for key, spec in fitted.get(section, {}).items():
                values[section][key] = spec["value"]
                sources[f"{section}.{key}"] = Source(kind="fitted", ref=spec.get("note", ""))
    try:
        return Technology(**values, sources=sources)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "technology.toml")) from None


def clear_cache() -> None:
    technology.cache_clear()


# --------------------------------------------------------------------------- array formulas


def node_arrays(t: Technology, nodes) -> dict[str, np.ndarray]:
    """Per-design node columns from node names (a scalar name or an array of names)."""
    names = np.atleast_1d(np.asarray(nodes, dtype=object))
    uniq = {n: t.node(n) for n in set(names.tolist())}
    return {
        f: np.array([getattr(uniq[n], f) for n in names], dtype=float)
        for f in NodeTech.model_fields
    }


def area_mm2(t: Technology, node: dict, *, macs, lanes, sram_mb, fp8, fp4, hbm, ddr, link_gbps,
             systolic=True):  # fmt: skip
    """Area breakdown (mm2) of the logic a design needs, before chiplet or wafer packaging.
    ``systolic``: weight-stationary arrays / dataflow PEs (else GPU-style SIMT cores)."""
    a = t.area
    per_mac = np.where(systolic, a.systolic_mac_um2, a.mac_um2) * 1e-6
    matrix = macs * per_mac * (1 + fp8 * a.fp8_area_fraction + fp4 * a.fp4_area_fraction)
    matrix = matrix / node["logic_density_rel"]
    vector = lanes * a.vector_lane_um2 * 1e-6 / node["logic_density_rel"]
    sram = sram_mb * a.sram_mm2_per_mb / node["sram_density_rel"]
    uncore = (matrix + vector + sram) * a.uncore_fraction
    io = hbm * a.hbm_phy_mm2 + ddr * a.ddr_phy_mm2 + link_gbps * a.serdes_mm2_per_gbps
    total = matrix + vector + sram + uncore + io + a.fixed_mm2
    return {"matrix": matrix, "vector": vector, "sram": sram, "uncore": uncore, "io": io,
            "total": total}  # fmt: skip


def package(t: Technology, logic_mm2, hbm, wafer_scale):
    """Chiplets, silicon area (incl. die-to-die or redundancy), interposer area and whether it
    can be built: monolithic up to the reticle, chiplets on an interposer of at most
    ``max_interposer_reticles``, or one wafer for ``wafer_scale`` designs."""
    a = t.area
    usable = 0.95 * t.reticle_mm2  # keep-out at the reticle edge
    chiplets = np.where(logic_mm2 <= t.reticle_mm2, 1.0,
                        np.ceil(logic_mm2 * (1 + a.d2d_area_fraction) / usable))  # fmt: skip
    silicon = np.where(chiplets > 1, logic_mm2 * (1 + a.d2d_area_fraction), logic_mm2)
    interposer = silicon + hbm * t.cost.hbm_footprint_mm2
    fits = interposer <= t.max_interposer_reticles * t.reticle_mm2
    wafer_silicon = logic_mm2 * (1 + a.wafer_redundancy_fraction)
    silicon = np.where(wafer_scale, wafer_silicon, silicon)
    chiplets = np.where(wafer_scale, 1.0, chiplets)
    fits = np.where(wafer_scale, wafer_silicon <= t.wafer_scale_mm2, fits)
    return {"chiplets": chiplets, "silicon_mm2": silicon, "interposer_mm2": interposer,
            "fits": fits}  # fmt: skip


def edge_sides(chiplets):
    """Square-die sides of a package left for I/O: one die has 4; chiplets stand in two rows
    (every chiplet keeps an outer edge, as B200's two dies or MI300X's 2 x 2 I/O dies) and each
    abutment costs both dies that side: n chiplets have n - 2 + floor(n / 2) abutments, so 2
    dies keep 6 sides, 3 keep 8, 4 keep 8, 6 keep 10. A wafer-scale chip is one die."""
    n = np.maximum(chiplets, 1.0)
    return 4 * n - 2 * np.where(n > 1, n - 2 + np.floor(n / 2), 0.0)


def perimeter_mm(silicon_mm2, chiplets):
    """Die edge (mm) of ``chiplets`` equal square dies sharing ``silicon_mm2``: a monolithic die
    is 4 sqrt(A), the least perimeter for its area (a real, oblong die has a little more)."""
    return edge_sides(chiplets) * np.sqrt(silicon_mm2 / np.maximum(chiplets, 1.0))


def shoreline(t: Technology, pkg: dict, *, hbm, ddr, link_gbps, hbm_edge_mm, ddr_edge_mm,
              wafer_scale):  # fmt: skip
    """Die edge (mm) the I/O needs vs what the package offers: HBM stacks and DDR packages at
    their PHY width, SerDes per GB/s (per direction), against ``io_edge_fraction`` of
    :func:`perimeter_mm`; ``min_silicon_mm2`` is the least silicon (same chiplet count) whose
    edge would carry the I/O. A wafer-scale chip has no interposer for HBM (``hbm_ok``)."""
    s = t.shoreline
    n = np.maximum(pkg["chiplets"], 1.0)
    parts = {"hbm_mm": hbm * hbm_edge_mm, "ddr_mm": ddr * ddr_edge_mm,
             "serdes_mm": link_gbps * s.serdes_edge_mm_per_gbps}  # fmt: skip
    parts["needed_mm"] = parts["hbm_mm"] + parts["ddr_mm"] + parts["serdes_mm"]
    parts["perimeter_mm"] = perimeter_mm(pkg["silicon_mm2"], n)
    parts["available_mm"] = parts["perimeter_mm"] * s.io_edge_fraction
    parts["min_silicon_mm2"] = n * (parts["needed_mm"] / (s.io_edge_fraction * edge_sides(n))) ** 2
    parts["hbm_ok"] = ~(np.asarray(wafer_scale, dtype=bool) & (hbm > 0))
    parts["fits"] = (parts["needed_mm"] <= parts["available_mm"]) & parts["hbm_ok"]
    return parts


def power_w(t: Technology, node: dict, *, flops16, vflops, sram_bw, mem_bw, mem_j, link_bw, area):
    """TDP breakdown (W): all units at their peak rates, plus leakage and uncore."""
    p = t.power
    e = p.j_per_flop16 * node["energy_rel"]
    parts = {
        "matrix": flops16 * e,
        "vector": vflops * e,
        "sram": sram_bw * p.sram_j_per_byte * node["energy_rel"],
        "memory": mem_bw * mem_j,
        "links": 2.0 * link_bw * p.serdes_j_per_byte,
        "leakage": area * p.leakage_w_per_mm2,
    }
    # TDP envelope: a compute-bound kernel keeps operands in registers and a memory-bound one
    # leaves the MACs idle, so the matrix/vector units and SRAM streaming peak in turn (max)
    busy = np.maximum(parts["matrix"] + parts["vector"], parts["sram"])
    base = busy + parts["memory"] + parts["links"] + parts["leakage"]
    parts["uncore"] = base * p.uncore_power_fraction
    parts["total"] = base + parts["uncore"]
    return parts


def dies_per_wafer(t: Technology, die_mm2):
    """Gross dies: wafer area over die area minus the partial dies lost at the edge."""
    side = np.sqrt(die_mm2) + t.scribe_mm
    a = side * side
    d = t.wafer_diameter_mm
    return np.maximum(np.floor(math.pi * (d / 2) ** 2 / a - math.pi * d / np.sqrt(2 * a)), 0.0)


def die_yield(die_mm2, d0_per_cm2, model="murphy"):
    """Murphy ((1 - e^-AD)/AD)^2 or Poisson e^-AD, A in cm2 (``model`` per design or one)."""
    ad = np.maximum(die_mm2 / 100.0 * d0_per_cm2, 1e-12)
    return np.where(np.asarray(model) == "poisson", np.exp(-ad), ((1 - np.exp(-ad)) / ad) ** 2)


def cost_usd(t: Technology, node: dict, *, pkg: dict, hbm, mem_gb, mem_usd_per_gb, tdp_w,
             wafer_scale, volume, yield_model="murphy"):  # fmt: skip
    """Unit cost breakdown (USD): silicon, package, memory, board and amortized NRE."""
    c = t.cost
    n = pkg["chiplets"]
    die = pkg["silicon_mm2"] / n
    good = dies_per_wafer(t, die) * die_yield(die, node["defect_density_per_cm2"], yield_model)
    silicon = np.where(wafer_scale, node["wafer_price_usd"],
                       n * node["wafer_price_usd"] / np.maximum(good, 1e-9))  # fmt: skip
    needs_interposer = (hbm > 0) | (n > 1)
    interposer = pkg["interposer_mm2"] * c.interposer_usd_per_mm2
    pkg_usd = c.package_usd + np.where(needs_interposer, interposer, 0.0)
    parts = {
        "silicon": silicon,
        "package": pkg_usd,
        "memory": mem_gb * mem_usd_per_gb,
        "board": c.board_usd + c.board_usd_per_w * tdp_w,
        "nre_per_unit": (c.design_nre_usd + node["mask_set_usd"]) / volume,
        "good_dies_per_wafer": good,
    }
    parts["total"] = sum(v for k, v in parts.items() if k != "good_dies_per_wafer")
    return parts


# --------------------------------------------------------------------------- many designs

_TEXT_FIELDS = ("name", "node", "hbm_gen", "ddr_gen", "core_style", "yield_model", "topology")


@dataclass(frozen=True)
class DesignArrays:
    """The physical model of ``n`` designs: breakdowns (arrays per key), what the simulator sees
    (:class:`arch.chip.ChipArrays`), and the memory figures a Chip's levels are built from."""

    area: dict[str, np.ndarray]
    package: dict[str, np.ndarray]
    power: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    chips: ChipArrays
    shoreline: dict[str, np.ndarray]  # die edge needed vs available (:func:`shoreline`)
    sram_bandwidth: np.ndarray
    sram_j_per_byte: np.ndarray
    fits: np.ndarray  # packageable, I/O fits the shoreline, one off-chip memory type, memory


def design_arrays(fields: dict[str, np.ndarray], t: Technology | None = None) -> DesignArrays:
    """Area, power, cost and simulator view of many designs: ``fields`` holds one array per
    :class:`ChipDesign` field (validated values; ``volume_units`` None = the default volume).
    One design is ``n = 1`` (:meth:`ChipDesign.report` and :meth:`ChipDesign.to_chip`)."""
    t = t or technology()
    f = {k: np.asarray(v, dtype=object if k in _TEXT_FIELDS else float) for k, v in fields.items()
         if k != "volume_units"}  # fmt: skip
    node = node_arrays(t, f["node"])
    has_hbm = f["hbm_stacks"] > 0
    gen = np.where(has_hbm, f["hbm_gen"], f["ddr_gen"])
    units = np.where(has_hbm, f["hbm_stacks"], f["ddr_packages"])
    mem = {k: np.array([getattr(t.memory(g), k) for g in gen], dtype=float)
           for k in ("capacity_bytes", "bandwidth_bytes_per_s", "energy_j_per_byte",
                     "price_usd_per_gb", "phy_edge_mm")}  # fmt: skip
    off_bw = units * mem["bandwidth_bytes_per_s"]
    # banked SRAM bandwidth per MB (Groq/WSE-derived), and never below twice the off-chip
    # bandwidth it fronts (assumption: a hierarchy feeds faster than its backing store)
    sram_bw = f["sram_bytes"] / 1e6 * t.power.sram_bytes_per_s_per_mb
    sram_bw = np.where(units > 0, np.maximum(sram_bw, 2 * off_bw), sram_bw)
    p = f["peak_bf16_flops_per_s"]
    macs = p / (2 * f["clock_hz"])
    systolic = f["core_style"] == "systolic"
    area = area_mm2(t, node, macs=macs, lanes=f["vector_fraction"] * macs,
                    sram_mb=f["sram_bytes"] / 1e6, fp8=f["fp8"], fp4=f["fp4"],
                    hbm=f["hbm_stacks"], ddr=f["ddr_packages"],
                    link_gbps=f["link_bytes_per_s"] / 1e9, systolic=systolic)  # fmt: skip
    wafer = f["wafer_scale"].astype(bool)
    pkg = package(t, area["total"], f["hbm_stacks"], wafer)
    edge = shoreline(t, pkg, hbm=np.where(has_hbm, units, 0.0), ddr=np.where(has_hbm, 0.0, units),
                     link_gbps=f["link_bytes_per_s"] / 1e9, hbm_edge_mm=mem["phy_edge_mm"],
                     ddr_edge_mm=mem["phy_edge_mm"], wafer_scale=wafer)  # fmt: skip
    pw = power_w(t, node, flops16=p, vflops=f["vector_fraction"] * p, sram_bw=sram_bw,
                 mem_bw=off_bw, mem_j=mem["energy_j_per_byte"], link_bw=f["link_bytes_per_s"],
                 area=pkg["silicon_mm2"])  # fmt: skip
    volume = np.array([v or t.cost.volume_units for v in np.atleast_1d(fields["volume_units"])],
                      dtype=float)  # fmt: skip
    cost = cost_usd(t, node, pkg=pkg, hbm=f["hbm_stacks"], mem_gb=units * mem["capacity_bytes"]
                    / 1e9, mem_usd_per_gb=mem["price_usd_per_gb"], tdp_w=pw["total"],
                    wafer_scale=wafer, volume=volume, yield_model=f["yield_model"])  # fmt: skip
    sram_e = t.power.sram_j_per_byte * node["energy_rel"]
    off = units > 0
    chips = _chip_arrays(t, f, node, memory=(units, mem, off_bw), sram=(sram_bw, sram_e),
                         macs=macs, power=pw)  # fmt: skip
    one_memory = ~(has_hbm & (f["ddr_packages"] > 0)) & ((f["sram_bytes"] > 0) | off)
    return DesignArrays(area=area, package=pkg, power=pw, cost=cost, chips=chips,
                        shoreline=edge, sram_bandwidth=sram_bw, sram_j_per_byte=sram_e,
                        fits=pkg["fits"].astype(bool) & edge["fits"] & one_memory)  # fmt: skip


def _chip_arrays(t: Technology, f: dict, node: dict, *, memory: tuple, sram: tuple, macs,
                 power: dict) -> ChipArrays:  # fmt: skip
    """What the simulator sees of each design: peaks (fp8/int8 at 2x, fp4 at 4x the 16-bit
    rate where supported), cores, the off-chip memory as main memory with the SRAM in front of
    it (or the SRAM as main memory when there is none), the fabric, idle power and TDP."""
    units, mem, off_bw = memory
    sram_bw, sram_e = sram
    p = f["peak_bf16_flops_per_s"]
    e_flop = t.power.j_per_flop16 * node["energy_rel"]
    off = units > 0
    zero = np.zeros(len(p))
    low = np.where(f["fp8"] > 0, 2 * p, 0.0)
    peaks = {"bf16": p, "fp16": p, "fp8": low, "int8": low,
             "fp4": np.where(f["fp4"] > 0, 4 * p, 0.0)}  # fmt: skip
    return ChipArrays(
        peaks=np.stack([peaks.get(q, zero) for q in PRECISIONS], axis=1),
        vector_peak=f["vector_fraction"] * p,
        units=np.maximum(1.0, np.round(macs / MACS_PER_CORE)),
        tile_rows=np.full(len(p), float(CORE_TILE)), tile_cols=np.full(len(p), float(CORE_TILE)),
        weight_stationary=(f["core_style"] == "systolic").astype(float),
        matrix_j_per_flop=e_flop, vector_j_per_flop=e_flop,
        main_capacity=np.where(off, units * mem["capacity_bytes"], f["sram_bytes"]),
        main_bandwidth=np.where(off, off_bw, sram_bw),
        main_j_per_byte=np.where(off, mem["energy_j_per_byte"], sram_e),
        scratch_capacity=np.where(off, f["sram_bytes"], 0.0),
        scratch_bandwidth=np.where(off, sram_bw, 0.0),
        scratch_j_per_byte=np.where(off, sram_e, 0.0),
        tier_capacity=zero, tier_bandwidth=zero, tier_j_per_byte=zero,
        scale_up_bandwidth=f["link_bytes_per_s"], scale_up_links=f["links"],
        scale_up_domain=f["domain_chips"], scale_up_topology=f["topology"],
        idle_w=np.minimum(power["leakage"] * (1 + t.power.uncore_power_fraction),
                          0.5 * power["total"]),
        tdp_w=power["total"],
    )  # fmt: skip


# --------------------------------------------------------------------------- one design


@dataclass(frozen=True)
class PhysicalReport:
    """Area (mm2), power (W) and cost (USD) breakdowns of one design, and its shoreline (mm of
    die edge needed vs available); ``fits`` is False when it cannot be built (``note`` says
    why)."""

    area: dict[str, float]
    package: dict[str, float]
    power: dict[str, float]
    cost: dict[str, float]
    fits: bool
    note: str = ""
    shoreline: dict[str, float] = field(default_factory=dict)

    @property
    def die_area_mm2(self) -> float:
        return self.package["silicon_mm2"]

    @property
    def tdp_w(self) -> float:
        return self.power["total"]

    @property
    def unit_cost_usd(self) -> float:
        return self.cost["total"]


class ChipDesign(Frozen):
    """A custom chip described by its components; :meth:`report` prices it, :meth:`to_chip`
    turns it into an :class:`arch.Chip` the simulator runs. Both are :func:`design_arrays` on one
    design, so a design swept in bulk and the same design built alone agree exactly.

    Peaks: fp8/int8 at 2x and fp4 at 4x the 16-bit rate when supported (as on B200 and MI355X).
    """

    name: str = "custom-design"
    node: str = "N4"
    core_style: Literal["systolic", "simt"] = "systolic"
    peak_bf16_flops_per_s: float = Field(gt=0)
    clock_hz: float = Field(default=1.8e9, gt=0)
    fp8: bool = True
    fp4: bool = False
    vector_fraction: float = Field(default=0.068, gt=0, description="FP32 vector / bf16 peak")
    sram_bytes: float = Field(default=0.0, ge=0)
    hbm_stacks: int = Field(default=0, ge=0)
    hbm_gen: str = "hbm3e"
    ddr_packages: int = Field(default=0, ge=0)
    ddr_gen: str = "lpddr5x"
    link_bytes_per_s: float = Field(default=400e9, ge=0, description="scale-up, per direction")
    links: int = Field(default=4, ge=1)
    topology: Topology = "torus2d"
    domain_chips: int = Field(default=64, ge=1)
    wafer_scale: bool = False
    volume_units: float | None = Field(default=None, ge=1)
    yield_model: Literal["murphy", "poisson"] = "murphy"

    @property
    def macs(self) -> float:
        return self.peak_bf16_flops_per_s / (2 * self.clock_hz)

    def arrays(self, t: Technology | None = None) -> DesignArrays:
        """:func:`design_arrays` of this one design."""
        if self.hbm_stacks and self.ddr_packages:
            raise ConfigError("hbm_stacks and ddr_packages: pick one off-chip memory type")
        t = t or technology()
        t.node(self.node)  # an unknown node is one clear error, not a KeyError in the arrays
        return design_arrays({k: [getattr(self, k)] for k in type(self).model_fields}, t)

    def report(self, t: Technology | None = None) -> PhysicalReport:
        t = t or technology()
        a = self.arrays(t)
        first = lambda d: {k: float(np.asarray(v).ravel()[0]) for k, v in d.items()}  # noqa: E731
        pkg, edge = first(a.package), first(a.shoreline)
        fits = bool(a.fits[0])
        return PhysicalReport(area=first(a.area), package=pkg, power=first(a.power),
                              cost=first(a.cost), fits=fits, shoreline=edge,
                              note="" if fits else self._why_not(t, pkg, edge))  # fmt: skip

    def _why_not(self, t: Technology, pkg: dict, edge: dict) -> str:
        """The first limit that binds: package size, then die edge, then memory."""
        if not pkg["fits"]:
            return self._package_limit(t, pkg)
        if not edge["hbm_ok"]:
            return (f"{self.hbm_stacks} HBM stacks on a wafer-scale chip: a wafer has no "
                    "interposer for HBM; use SRAM or an off-wafer memory tier")  # fmt: skip
        if not edge["fits"]:
            return self._shoreline_limit(pkg, edge)
        return "no memory: sram_bytes, hbm_stacks and ddr_packages are all 0"

    def _package_limit(self, t: Technology, pkg: dict) -> str:
        if self.wafer_scale:
            return (f"needs {float(pkg['silicon_mm2']):.0f} mm2 of silicon but a wafer-scale "
                    f"chip has {t.wafer_scale_mm2:.0f} mm2")  # fmt: skip
        limit = t.max_interposer_reticles * t.reticle_mm2
        return (f"needs a {float(pkg['interposer_mm2']):.0f} mm2 interposer "
                f"({int(pkg['chiplets'])} chiplets + HBM) but the limit is {limit:.0f} mm2; "
                "shrink the design or set wafer_scale")  # fmt: skip

    def _shoreline_limit(self, pkg: dict, edge: dict) -> str:
        """e.g. '8 HBM stacks need 88 mm of die edge but a 169 mm2 die offers 44 mm usable'."""
        io = [
            f"{self.hbm_stacks} HBM stacks" if self.hbm_stacks else "",
            f"{self.ddr_packages} {self.ddr_gen.upper()} packages" if self.ddr_packages else "",
            f"{self.link_bytes_per_s / 1e9:.0f} GB/s of SerDes" if edge["serdes_mm"] else "",
        ]
        what = " + ".join(x for x in io if x)
        n = int(pkg["chiplets"])
        die = (f"a {pkg['silicon_mm2']:.0f} mm2 die" if n == 1 else
               f"{n} chiplets of {pkg['silicon_mm2'] / n:.0f} mm2")  # fmt: skip
        return (f"{what} need {edge['needed_mm']:.0f} mm of die edge but {die} offers "
                f"{edge['available_mm']:.0f} mm usable (shoreline; they need at least "
                f"{edge['min_silicon_mm2']:.0f} mm2 of silicon); fewer stacks or links, a larger "
                "die or chiplets")  # fmt: skip

    def to_chip(self, t: Technology | None = None, report: PhysicalReport | None = None) -> Chip:
        """The simulator's view of the design: peaks, memory levels, fabric, TDP, area, cost."""
        t = t or technology()
        a = self.arrays(t)
        r = report or self.report(t)
        c = a.chips
        peaks = {q: float(v) for q, v in zip(PRECISIONS, c.peaks[0], strict=True) if v > 0}
        e_flop = float(c.matrix_j_per_flop[0])
        dataflow = "weight_stationary" if self.core_style == "systolic" else "output_stationary"
        units = int(c.units[0])
        matrix = ComputeEngine(peak_flops_per_s=peaks, units=units, tile_rows=CORE_TILE,
                               tile_cols=CORE_TILE, dataflow=dataflow,
                               energy_j_per_flop=e_flop)  # fmt: skip
        vector = ComputeEngine(peak_flops_per_s={"fp32": float(c.vector_peak[0])}, units=units,
                               energy_j_per_flop=float(c.vector_j_per_flop[0]))  # fmt: skip
        return Chip(
            name=self.name,
            display_name=f"{self.name} (xpusim physical model, {normalize_node(self.node)})",
            vendor="custom",
            family="custom",
            year=2026,
            process_node=normalize_node(self.node),
            die_area_mm2=r.die_area_mm2,
            matrix=matrix,
            vector=vector,
            memory=self._levels(t, a),
            scale_up=self._fabric(t),
            scale_out=_ETHERNET,
            tdp_w=float(c.tdp_w[0]),
            idle_w=float(c.idle_w[0]),
            price_usd=r.unit_cost_usd,
            sources={"*": Source(kind="derived", ref="xpusim physical model (arch/physical.py)")},
        )

    def _levels(self, t: Technology, a: DesignArrays) -> tuple[MemoryLevel, ...]:
        c = a.chips
        levels = []
        if self.sram_bytes > 0:
            off = c.scratch_capacity[0] > 0
            levels.append(MemoryLevel(
                name="SRAM", kind="sram", role="scratch" if off else "main",
                capacity_bytes=self.sram_bytes, bandwidth_bytes_per_s=float(a.sram_bandwidth[0]),
                latency_s=SRAM_LATENCY_S, energy_j_per_byte=float(a.sram_j_per_byte[0]),
            ))  # fmt: skip
        if self.hbm_stacks or self.ddr_packages:
            gen = self.hbm_gen if self.hbm_stacks else self.ddr_gen
            levels.append(MemoryLevel(
                name=gen.upper(), kind="hbm" if t.memory(gen).stacked else "lpddr", role="main",
                capacity_bytes=float(c.main_capacity[0]),
                bandwidth_bytes_per_s=float(c.main_bandwidth[0]),
                latency_s=DRAM_LATENCY_S, energy_j_per_byte=float(c.main_j_per_byte[0]),
            ))  # fmt: skip
        if not levels:
            raise ConfigError("sram_bytes, hbm_stacks and ddr_packages are all 0: give memory")
        return tuple(levels)

    def _fabric(self, t: Technology) -> Interconnect:
        return Interconnect(
            name=f"custom {self.topology} ({self.links} links)",
            topology=self.topology,
            bandwidth_bytes_per_s=self.link_bytes_per_s,
            links=self.links,
            latency_s=LINK_LATENCY_S,
            energy_j_per_byte=t.power.serdes_j_per_byte,
            domain_chips=self.domain_chips,
        )


# scale-out of every design: one 800G Ethernet port per chip, as the custom-asic preset assumes
_ETHERNET = Interconnect(
    name="800G Ethernet (assumption)",
    topology="switch",
    bandwidth_bytes_per_s=100e9,
    links=1,
    latency_s=5e-6,
    energy_j_per_byte=20e-12,
    domain_chips=100000,
)


def design_from_dict(values: dict, origin: str = "design") -> ChipDesign:
    """A ChipDesign from plain values (unit strings allowed); errors as one line."""
    try:
        return ChipDesign(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None
