"""Numba cost kernels: per-op time and energy for many ops and many design points per call.

Model, per op:

* matrix ops: ``t_compute = flops / (peak[precision] * eff * util) + vflops / vector_peak``, where
  ``util`` is tile x wave quantization over the engine's units (GEMMs only; attention efficiency is
  fitted directly) and ``eff`` the family's fitted GEMM or attention efficiency;
* memory: ``t_memory = sum(bytes_level / (bw_level * eff_mem))`` over weights, KV and activations,
  each on the level the capacity plan put it;
* the two overlap as ``(t_c^p + t_m^p)^(1/p)`` (p -> inf is the hard roofline);
* collectives: alpha-beta per algorithm (ring, direct one/two-shot, in-network reduction), the
  fastest available one for the topology;
* every kernel pays a fixed ``kernel_overhead_s`` (launch and tail; 0 on statically scheduled
  chips).

Energy: FLOPs x J/FLOP at the op's precision + bytes x J/B of their level + link bytes x J/B.
Everything is arrays in, arrays out; constants come in the design vector, not globals.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels import layout as L

__all__ = ["collective_time", "op_costs", "stage_totals", "tile_wave_util"]

# op kinds (workloads.ops.OpKind values), repeated as literals: numba needs plain ints
GEMM, GROUPED, ATTN_P, ATTN_D, ELEM, EMBED, SAMPLING = 0, 1, 2, 3, 4, 5, 6
ALLREDUCE, ALLGATHER, REDUCESCATTER, ALLTOALL, P2P = 7, 8, 9, 10, 11


@njit(cache=True)
def _util_for_tile(a, n, k, groups, units, tr, tc, weight_stationary):
    ta = math.ceil(a / tr)
    tb = math.ceil(n / tc)
    tiles = ta * tb * max(groups, 1.0)
    if weight_stationary < 0.5 and tiles < units:  # split-K fills idle units
        split = min(math.floor(units / tiles), max(1.0, math.floor(k / 256.0)))
        tiles = tiles * max(split, 1.0)
    waves = math.ceil(tiles / units)
    return (a * n) / (ta * tr * tb * tc) * tiles / (waves * units)


@njit(cache=True)
def tile_wave_util(m, n, k, groups, units, tile_r, tile_c, weight_stationary):
    """Useful fraction of the engine after padding to tiles and rounding up to full waves.

    Output-stationary engines (GPUs) tile M x N. Like cuBLAS/CUTLASS/hipBLASLt heuristics, the
    library picks the best of a small menu of tiles (the largest, and halves of it in each
    dimension down to a quarter), and splits K across idle units when there are fewer tiles than
    units. Weight-stationary arrays (TPU MXU, Groq MXM) have one fixed K x N tile; M streams
    through unpadded.
    """
    if tile_r <= 1.0 and tile_c <= 1.0:
        return 1.0
    if weight_stationary > 0.5:
        return _util_for_tile(k, n, k, groups, units, tile_r, tile_c, 1.0)
    best = 0.0
    tr = tile_r
    while tr >= tile_r / 4.0:
        tc = tile_c
        while tc >= tile_c / 4.0:
            best = max(best, _util_for_tile(m, n, k, groups, units, tr, tc, 0.0))
            tc = tc / 2.0
        tr = tr / 2.0
    return best


@njit(cache=True)
def collective_time(kind, size, group, d):
    """Seconds for one collective of ``size`` bytes per chip over ``group`` chips."""
    if group <= 1 or size <= 0.0:
        return 0.0
    n = float(group)
    if n <= d[L.UP_DOMAIN]:
        bw, lat, topo, links = d[L.UP_BW], d[L.UP_LAT], d[L.UP_TOPO], d[L.UP_LINKS]
        inr = d[L.UP_INR] > 0.5
    else:
        bw, lat, topo, links = d[L.OUT_BW], d[L.OUT_LAT], d[L.OUT_TOPO], d[L.OUT_LINKS]
        inr = False
    direct_ok = topo == L.TOPO_SWITCH or topo == L.TOPO_FULLY or topo == L.TOPO_DRAGONFLY
    if (topo == L.TOPO_FULLY or topo == L.TOPO_DRAGONFLY) and links > 0:
        bw = bw * min(n - 1.0, links) / links  # only links to group peers carry traffic
    beta = 1.0 / (bw * d[L.EFF_BUS])
    frac = (n - 1.0) / n
    if kind == ALLREDUCE:
        t = 2.0 * (n - 1.0) * lat + 2.0 * frac * size * beta  # ring
        if direct_ok and d[L.DIRECT_ALGOS] > 0.5:
            t = min(t, 2.0 * lat + 2.0 * frac * size * beta)  # two-shot / one-shot
        if inr:  # in-switch reduction: half the traffic, but no lower latency than the ring
            t = min(t, 2.0 * (n - 1.0) * lat + size / (bw * d[L.EFF_INR]))
        return t
    if kind == ALLGATHER or kind == REDUCESCATTER:
        steps = 1.0 if (direct_ok and d[L.DIRECT_ALGOS] > 0.5) else n - 1.0
        return steps * lat + frac * size * beta
    if kind == ALLTOALL:
        return lat + frac * size * beta
    # P2P: one link, except through a switch where a pair gets the full port bandwidth
    link_bw = bw if topo == L.TOPO_SWITCH or links <= 0 else bw / links
    return lat + size / (link_bw * d[L.EFF_BUS])


@njit(cache=True)
def _utils(kind, m, n, k, groups, d):
    """Tile x wave utilization of every GEMM op on design ``d`` (1 for other ops)."""
    util = np.ones(kind.shape[0])
    for i in range(kind.shape[0]):
        if kind[i] <= GROUPED:
            util[i] = tile_wave_util(
                m[i],
                n[i],
                k[i],
                groups[i],
                d[L.UNITS],
                d[L.TILE_R],
                d[L.TILE_C],
                d[L.WEIGHT_STATIONARY],
            )
    return util


@njit(cache=True)
def _op_cost(
    i,
    kind,
    flops,
    vflops,
    prec,
    wbytes,
    kvbytes,
    abytes,
    cbytes,
    group,
    kernels,
    util,
    d,
    out,
):
    """Fill ``out[0:N_OUT]`` for op ``i`` on design ``d``; ``util`` from :func:`_utils`."""
    kd = kind[i]
    t_c = vflops[i] / d[L.VPEAK]
    peak = d[L.PEAK0 + prec[i]]
    if kd == ATTN_P or kd == ATTN_D:
        t_c += flops[i] / (peak * d[L.EFF_ATTN])
    elif kd <= GROUPED:
        eff = d[L.EFF_GEMM8] if d[L.LOW0 + prec[i]] > 0.5 else d[L.EFF_GEMM16]
        t_c += flops[i] / (peak * eff * util[i])
    em = d[L.EFF_MEM]
    t_m = (
        wbytes[i] / (d[L.BW_WEIGHTS] * em)
        + kvbytes[i] / (d[L.BW_KV] * em)
        + abytes[i] / (d[L.BW_ACT] * em)
    )
    t_x = collective_time(kd, cbytes[i], group[i], d) if kd >= ALLREDUCE else 0.0
    p = d[L.ROOFLINE_P]
    if t_c > 0.0 and t_m > 0.0 and p < 50.0:
        busy = (t_c**p + t_m**p) ** (1.0 / p)
    else:
        busy = max(t_c, t_m)
    ovh = kernels[i] * d[L.KERNEL_OVH]
    e_flop = d[L.E_FLOP16] * d[L.PEAK16] / peak
    out[L.T_TOTAL] = busy + t_x + ovh
    out[L.T_COMPUTE] = t_c
    out[L.T_MEMORY] = t_m
    out[L.T_COMM] = t_x
    out[L.T_OVERHEAD] = ovh
    out[L.ENERGY] = (
        flops[i] * e_flop
        + vflops[i] * d[L.E_VFLOP]
        + wbytes[i] * d[L.E_WEIGHTS]
        + kvbytes[i] * d[L.E_KV]
        + abytes[i] * d[L.E_ACT]
        + 2.0 * cbytes[i] * d[L.E_LINK]
    )


@njit(cache=True)
def op_costs(
    kind,
    m,
    n,
    k,
    groups,
    flops,
    vflops,
    prec,
    wbytes,
    kvbytes,
    abytes,
    cbytes,
    group,
    kernels,
    d,
):
    """Per-op costs on one design: ``out[n_ops, N_OUT]`` (per instance, before ``count``)."""
    n_ops = kind.shape[0]
    out = np.empty((n_ops, L.N_OUT))
    util = _utils(kind, m, n, k, groups, d)
    for i in range(n_ops):
        _op_cost(
            i,
            kind,
            flops,
            vflops,
            prec,
            wbytes,
            kvbytes,
            abytes,
            cbytes,
            group,
            kernels,
            util,
            d,
            out[i],
        )
    return out


@njit(cache=True)
def stage_totals(
    kind,
    m,
    n,
    k,
    groups,
    flops,
    vflops,
    prec,
    wbytes,
    kvbytes,
    abytes,
    cbytes,
    group,
    kernels,
    count,
    stage,
    n_stages,
    designs,
):
    """Step totals per pipeline stage for many designs: ``out[n_designs, n_stages, N_OUT]``.

    Tile/wave utilization depends only on the engine's structure (units, tile, dataflow); it is
    recomputed only when that changes from one design to the next (sweeps over peaks, bandwidths
    and links reuse it)."""
    n_d = designs.shape[0]
    out = np.zeros((n_d, n_stages, L.N_OUT))
    buf = np.empty(L.N_OUT)
    util = np.ones(kind.shape[0])
    shape = np.full(4, -1.0)
    for j in range(n_d):
        d = designs[j]
        if (
            d[L.UNITS] != shape[0]
            or d[L.TILE_R] != shape[1]
            or d[L.TILE_C] != shape[2]
            or d[L.WEIGHT_STATIONARY] != shape[3]
        ):
            util = _utils(kind, m, n, k, groups, d)
            shape[0], shape[1], shape[2] = d[L.UNITS], d[L.TILE_R], d[L.TILE_C]
            shape[3] = d[L.WEIGHT_STATIONARY]
        for i in range(kind.shape[0]):
            _op_cost(
                i,
                kind,
                flops,
                vflops,
                prec,
                wbytes,
                kvbytes,
                abytes,
                cbytes,
                group,
                kernels,
                util,
                d,
                buf,
            )
            s = stage[i]
            for c in range(L.N_OUT):
                out[j, s, c] += buf[c] * count[i]
    return out
