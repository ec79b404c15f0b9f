"""The one seam between pydantic configs and the Numba kernels: pack objects into arrays.

A design row (``layout.N_DESIGN`` floats) holds everything the kernels need about a chip, its
fabric, the efficiency factors and where the weights are read from. :func:`pack_rows` builds many
rows at once from :class:`arch.chip.ChipArrays` columns; :func:`pack_design` is the same function
for one system (one row). Precision fallback is resolved in the row (``PEAK0 + i`` holds the peak
of the precision ``i`` runs at, ``LOW0 + i`` its class: 16-bit, 8-bit or 4-bit), so op graphs
carry the *requested* precision and one packed graph serves every design.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from arch.base import ConfigError
from arch.chip import (
    FALLBACK,
    PRECISION_BITS,
    PRECISIONS,
    TOPOLOGY_AXES,
    Chip,
    ChipArrays,
    System,
    resolved_precisions,
    shape_row,
)
from arch.efficiency import FamilyEfficiency
from kernels import layout as L
from kernels.cost import most_square, peer_links
from workloads.capacity import MemoryPlan
from workloads.ops import OpGraph

__all__ = ["PackedOps", "base_row", "pack_design", "pack_ops", "pack_rows", "resolve_precision"]

# precision class per precision (layout.LOW0): 0 >= 16 bits, 1 8-bit, 2 6/4-bit
_CLASS = np.array([0 if PRECISION_BITS[p] >= 16 else 1 if PRECISION_BITS[p] >= 8 else 2
                   for p in PRECISIONS], dtype=float)  # fmt: skip
_EFFICIENCY_COLUMNS = (
    (L.EFF_GEMM16, "gemm_16bit"),
    (L.EFF_GEMM8, "gemm_8bit"),
    (L.EFF_GEMM4, "gemm_4bit"),
    (L.EFF_ATTN, "attention"),
    (L.EFF_MEM, "memory"),
    (L.ROOFLINE_P, "roofline_exponent"),
    (L.KERNEL_OVH, "kernel_overhead_s"),
    (L.EFF_BUS, "collective_bus"),
    (L.EFF_INR, "collective_in_network"),
    (L.STEP_OVH, "step_overhead_s"),
)
# the kernel classes whose rate the engine's kernel_scale multiplies
_ENGINE_SCALED = (L.EFF_GEMM16, L.EFF_GEMM8, L.EFF_GEMM4, L.EFF_ATTN)


def resolve_precision(chip: Chip, precision: str) -> str:
    """The precision the chip computes ``precision`` at (itself, or the nearest wider it has)."""
    idx = resolved_precisions(ChipArrays.of(chip).peaks > 0)[0, PRECISIONS.index(precision)]
    if idx < 0:
        raise ConfigError(f"{chip.name} supports none of {precision} or its fallbacks "
                          f"({', '.join(FALLBACK[precision])}); pick another --quant")  # fmt: skip
    return PRECISIONS[idx]


@dataclass(frozen=True)
class PackedOps:
    """Kernel arguments for an OpGraph (same order as the kernels' parameters)."""

    args: tuple
    count: np.ndarray
    stage: np.ndarray
    n_stages: int


def pack_ops(graph: OpGraph) -> PackedOps:
    """The op columns the kernels read; precisions stay as requested (designs resolve them)."""
    args = (
        graph.kind,
        graph.m,
        graph.n,
        graph.k,
        graph.groups,
        graph.flops,
        graph.vflops,
        graph.precision.astype(np.int64),
        graph.weight_bytes,
        graph.kv_bytes,
        graph.act_bytes,
        graph.comm_bytes,
        graph.group,
        graph.kernels,
    )
    n_stages = int(graph.stage.max()) + 1 if len(graph) else 1
    return PackedOps(args=args, count=graph.count, stage=graph.stage, n_stages=n_stages)


def base_row(
    system: System, eff: FamilyEfficiency, *, direct_collectives: bool = True
) -> np.ndarray:
    """The columns every design of a system shares: efficiency factors and fabrics (the chip's
    own columns are filled by :func:`pack_rows`)."""
    d = np.zeros(L.N_DESIGN)
    for col, name in _EFFICIENCY_COLUMNS:
        d[col] = eff.value(name)
    for col in _ENGINE_SCALED:
        d[col] = min(1.0, d[col] * eff.value("kernel_scale"))
    _pack_fabrics(d, system, eff)
    d[L.DIRECT_ALGOS] = direct_collectives
    d[L.E_LINK] = system.chip.scale_up.energy_j_per_byte
    d[L.LAT_LAYER] = eff.value("layer_latency_s")
    d[L.E_SCALE] = eff.value("energy_scale")
    d[L.LAT_STAGE_HOP] = eff.value("stage_hop_latency_s")
    return d


_P16, _P8, _P4 = (L.PEAK0 + PRECISIONS.index(p) for p in ("bf16", "fp8", "fp4"))


def _cap_low_precision(d: np.ndarray) -> None:
    """Halving the bits at most doubles a GEMM's rate: per design, the 8-bit rate (peak x
    efficiency) is capped at twice the 16-bit rate and the 4-bit rate at twice the 8-bit one,
    whatever the fitted or derived factors say (their fits come from different shapes)."""
    for lo, hi, e_lo, e_hi in ((_P8, _P16, L.EFF_GEMM8, L.EFF_GEMM16),
                               (_P4, _P8, L.EFF_GEMM4, L.EFF_GEMM8)):  # fmt: skip
        cap = 2.0 * d[:, hi] * d[:, e_hi] / np.where(d[:, lo] > 0, d[:, lo], 1.0)
        d[:, e_lo] = np.where(d[:, lo] > 0, np.minimum(d[:, e_lo], cap), d[:, e_lo])


def pack_rows(base: np.ndarray, chips: ChipArrays, split: np.ndarray) -> np.ndarray:
    """Design rows ``[n, N_DESIGN]``: ``base`` with each chip's columns; ``split[n, 3]`` is the
    share of the weights each design holds on each level of
    :data:`workloads.capacity.WEIGHT_PLACES` (a row of zeros, a design that does not fit, reads
    them from main memory). A split placement is one effective level: weight bytes take
    ``sum(share / bandwidth)`` seconds per byte and ``sum(share x J/B)`` joules."""
    n = len(chips)
    d = np.repeat(np.asarray(base, dtype=float)[None, :], n, axis=0)
    idx = resolved_precisions(chips.peaks > 0)
    native = np.take_along_axis(chips.peaks, np.maximum(idx, 0), axis=1)
    peaks, low = slice(L.PEAK0, L.PEAK0 + len(PRECISIONS)), slice(L.LOW0, L.LOW0 + len(PRECISIONS))
    d[:, peaks] = np.where(idx >= 0, native, chips.vector_peak[:, None])  # no matrix path: vector
    d[:, low] = np.where(idx >= 0, _CLASS[np.maximum(idx, 0)], 0.0)
    _cap_low_precision(d)
    d[:, L.VPEAK] = chips.vector_peak
    d[:, L.UNITS], d[:, L.TILE_R], d[:, L.TILE_C] = chips.units, chips.tile_rows, chips.tile_cols
    d[:, L.WEIGHT_STATIONARY] = chips.weight_stationary
    # a design with no memory at all never fits; keep its bandwidth finite so rows stay numbers
    main_bw = np.where(chips.main_bandwidth > 0, chips.main_bandwidth, 1.0)
    share = np.atleast_2d(np.asarray(split, dtype=float))
    share = np.where(share.sum(axis=1, keepdims=True) > 0, share, [[0.0, 1.0, 0.0]])
    bw = np.stack([chips.scratch_bandwidth, main_bw, chips.tier_bandwidth], axis=1)
    j = np.stack([chips.scratch_j_per_byte, chips.main_j_per_byte, chips.tier_j_per_byte], axis=1)
    seconds = np.where(share > 0, share / np.where(bw > 0, bw, 1.0), 0.0).sum(axis=1)
    d[:, L.BW_WEIGHTS] = 1.0 / seconds
    d[:, L.E_WEIGHTS] = (share * j).sum(axis=1)
    d[:, L.BW_KV], d[:, L.E_KV] = main_bw, chips.main_j_per_byte
    fused = (chips.activations_on_chip > 0) & (chips.scratch_bandwidth > 0)
    d[:, L.BW_ACT] = np.where(fused, chips.scratch_bandwidth, main_bw)
    d[:, L.E_ACT] = np.where(fused, chips.scratch_j_per_byte, chips.main_j_per_byte)
    d[:, L.UP_BW], d[:, L.UP_LINKS] = chips.scale_up_bandwidth, chips.scale_up_links
    d[:, L.UP_DOMAIN] = chips.scale_up_domain
    d[:, L.UP_TOPO] = [L.TOPOLOGY_CODES[t] for t in chips.scale_up_topology]
    d[:, _WIRING] = _wiring_columns(chips)
    d[:, L.E_FLOP16] = chips.matrix_j_per_flop
    d[:, L.E_VFLOP] = chips.vector_j_per_flop
    d[:, L.PEAK16] = d[:, L.PEAK0 + PRECISIONS.index("bf16")]
    d[:, L.IDLE_W], d[:, L.TDP_W] = chips.idle_w, chips.tdp_w
    energies = [L.E_FLOP16, L.E_VFLOP, L.E_WEIGHTS, L.E_KV, L.E_ACT, L.E_LINK]
    d[:, energies] *= d[:, [L.E_SCALE]]
    return d


def pack_design(
    system: System,
    eff: FamilyEfficiency,
    plan: MemoryPlan | None = None,
    *,
    direct_collectives: bool = True,
) -> np.ndarray:
    """One design row for a system, its efficiency and memory plan (:func:`pack_rows`, n = 1)."""
    base = base_row(system, eff, direct_collectives=direct_collectives)
    split = plan.weight_split if plan is not None else (0.0, 1.0, 0.0)
    return pack_rows(base, ChipArrays.of(system.chip), np.array([split]))[0]


def _pack_fabrics(d: np.ndarray, system: System, eff: FamilyEfficiency) -> None:
    """Fabric columns the chip columns do not carry: scale-up step and hop latency, in-network
    reduction; the scale-out fabric, whose links are packed as peer ports (``links /
    links_per_peer``) so the kernel needs no wiring columns for it."""
    up, out = system.chip.scale_up, system.chip.scale_out or system.chip.scale_up
    step = eff.collective_step_latency_s
    d[L.UP_LAT] = step.value if step.source in ("fitted", "user") else up.latency_s
    d[L.UP_HOP_LAT] = up.hop_latency_s or 0.0
    d[L.UP_INR] = up.in_network_reduction
    per_peer, *_ = _wiring(out.topology, float(out.links), float(out.domain_chips),
                           tuple(shape_row(out)))  # fmt: skip
    d[L.OUT_BW], d[L.OUT_TOPO] = out.bandwidth_bytes_per_s, L.TOPOLOGY_CODES[out.topology]
    d[L.OUT_LINKS] = max(out.links / per_peer, 1.0)
    d[L.OUT_LAT] = out.latency_s


# design-row columns of the scale-up wiring, in the order _wiring returns them
_WIRING = [L.UP_LINKS_PER_PEER, L.UP_DIM_X, L.UP_DIM_Y, L.UP_DIM_Z, L.UP_WRAP]


def _wiring_columns(chips: ChipArrays) -> np.ndarray:
    """:data:`_WIRING` columns of every design: the chip's explicit wiring, the rest derived
    (designs share few distinct fabrics, so each is resolved once)."""
    n = len(chips)
    rows = zip(chips.scale_up_topology, chips.scale_up_links, chips.scale_up_domain,
               chips.scale_up_shape, strict=True)  # fmt: skip
    return np.array([_wiring(str(t), float(k), float(m), tuple(map(float, s)))
                     for t, k, m, s in rows]).reshape(n, len(_WIRING))  # fmt: skip


@lru_cache(maxsize=4096)
def _wiring(
    topology: str, links: float, domain: float, shape: tuple[float, ...]
) -> tuple[float, float, float, float, float]:
    """(links per peer, dim x, dim y, dim z, wrap multiple) of one fabric, where ``shape`` is
    :func:`arch.chip.shape_row` (0 = derive). Ring/torus/mesh without dims: the most-square
    factorization of the domain. Dragonfly: dim x = chips per local group (default the whole
    domain), dim y = global links (default the links the group leaves free)."""
    per_peer, dx, dy, dz, wrap, global_links = shape
    code = L.TOPOLOGY_CODES[topology]
    axes = TOPOLOGY_AXES.get(topology, 0)
    if axes and not dx:
        dx, dy, dz = (float(v) if i < axes else 0.0
                      for i, v in enumerate(most_square(domain, axes)))  # fmt: skip
    if topology == "dragonfly":
        group = dx or domain
        per_peer = per_peer or peer_links(code, links, group, 1)
        dx, dy = group, global_links or max(links - (group - 1) * per_peer, 0.0)
    return per_peer or peer_links(code, links, domain, axes), dx, dy, dz, wrap
