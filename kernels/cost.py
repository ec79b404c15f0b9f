"""Numba cost kernels: per-op time and energy for many ops and many design points per call.

Model, per op:

* matrix ops: ``t_compute = flops / (peak[precision] * eff * util) + vflops / vector_peak``, where
  ``util`` is tile x wave quantization over the engine's units (GEMMs only; attention efficiency is
  fitted directly) and ``eff`` the family's fitted GEMM or attention efficiency;
* memory: ``t_memory = sum(bytes_level / (bw_level * eff_mem))`` over weights, KV and activations,
  each on the level the capacity plan put it;
* the two overlap as ``(t_c^p + t_m^p)^(1/p)`` (p -> inf is the hard roofline);
* collectives: alpha-beta per algorithm and topology (switch, fully connected, dragonfly,
  ring/torus/mesh: :func:`collective_time`), the fastest available algorithm for the topology;
* MoE all-to-all (rows that carry their routing, see :mod:`workloads.graph`): each token is sent
  once per destination chip, and across nodes once per destination node over the scale-out
  fabric, then forwarded inside the node (:func:`moe_alltoall_time`, node-limited routing); with
  two-batch overlap the layer's all-to-alls hide under its compute
  (:func:`hide_overlapped_comm`);
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

__all__ = [
    "collective_time",
    "dispatch_fanout",
    "hide_overlapped_comm",
    "moe_alltoall_time",
    "most_square",
    "op_costs",
    "peer_links",
    "stage_totals",
    "tile_wave_util",
]

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
def _divisor_upto(n, limit):
    """The largest divisor of ``n`` that is at most ``limit`` (1 at least)."""
    best = 1
    i = 1
    while i <= limit:
        if n % i == 0:
            best = i
        i += 1
    return best


@njit(cache=True)
def _isqrt(n):
    r = int(math.sqrt(n))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


@njit(cache=True)
def most_square(n, axes):
    """Axis lengths ``(x, y, z)`` (unused axes 1) of ``n`` chips on ``axes`` axes whose longest
    axis is shortest; ties go to the one whose shortest axis is longest. How a group smaller
    than its torus or mesh is laid out, and a domain whose preset gives no ``dims``: 16 on two
    axes is 4 x 4, on three 2 x 2 x 4; a prime p is 1 x p."""
    n = max(int(n + 0.5), 1)
    if axes <= 1:
        return n, 1, 1
    if axes == 2:
        a = _divisor_upto(n, _isqrt(n))
        return a, n // a, 1
    bx, by, bz = 1, 1, n
    a = 1
    while a * a * a <= n:
        if n % a == 0:
            r = n // a
            b = _divisor_upto(r, _isqrt(r))
            c = r // b
            longest, shortest = max(a, b, c), min(a, b, c)
            if longest < max(bx, by, bz) or (
                longest == max(bx, by, bz) and shortest > min(bx, by, bz)
            ):
                bx, by, bz = a, b, c
        a += 1
    return bx, by, bz


@njit(cache=True)
def peer_links(topo, links, group, axes):
    """Links between a chip and one directly linked peer when the preset does not say: a switch
    gives one pair all of the chip's links; a fully connected group (or a dragonfly's local
    group) of ``group`` chips splits them over its ``group - 1`` peers; a ring, torus or mesh
    spreads them over its ``2 x axes`` neighbours (fractional when they do not divide)."""
    if topo == L.TOPO_FULLY or topo == L.TOPO_DRAGONFLY:
        return max(1.0, math.floor(links / max(group - 1.0, 1.0)))
    if topo == L.TOPO_RING or topo == L.TOPO_TORUS or topo == L.TOPO_MESH:
        return max(links, 1.0) / (2.0 * max(axes, 1.0))
    return max(links, 1.0)


@njit(cache=True)
def _axes(d):
    """Axes of the scale-up ring/torus/mesh: those of its domain shape; 2 (1 for a ring) for a
    hand-built row that gives none."""
    if d[L.UP_DIM_Z] > 0:
        return 3
    if d[L.UP_DIM_Y] > 0:
        return 2
    if d[L.UP_DIM_X] > 0 or d[L.UP_TOPO] == L.TOPO_RING:
        return 1
    return 2


@njit(cache=True)
def _neighbour_bw(d, group):
    """Per-direction bandwidth between a chip and one directly linked peer on the scale-up
    fabric: links per peer x bandwidth per link."""
    links = d[L.UP_LINKS]
    per_peer = d[L.UP_LINKS_PER_PEER]
    if per_peer <= 0.0:
        per_peer = peer_links(d[L.UP_TOPO], links, group, _axes(d))
    return d[L.UP_BW] / max(links, 1.0) * per_peer


@njit(cache=True)
def _direct(kind, size, n, w_all, w_pair, lat, direct, inr, tree, d):
    """Switch and fully connected groups: every chip reaches every other in one step, over
    ``w_all`` bytes/s (the group's links of one chip) or, point to point, ``w_pair``;
    ``direct``: one-step algorithms may run (the engine has them and the fabric allows them).

    * all-reduce: ring ``2 (n-1) a + 2 (n-1)/n S / w`` (over a fully connected group, n - 1
      rings on disjoint links, as the complete digraph decomposes into Hamiltonian cycles);
      two-shot/one-shot ``2 a + 2 (n-1)/n S / w`` where the engine runs them; NCCL's double
      binary tree ``2 ceil(log2 n) a + 2 S / w`` (``tree``); in-switch reduction ``2 (n-1) a +
      S / (w eff_inr)`` (half the bytes, no lower latency than the ring: fitted on NVLS);
    * all-gather / reduce-scatter: ``k a + (n-1)/n S / w``, k = 1 direct, n - 1 ring;
    * all-to-all: ``a + (n-1)/n S / w``; point to point: ``a + S / w_pair``.
    """
    e = d[L.EFF_BUS]
    frac = (n - 1.0) / n
    if kind == ALLREDUCE:
        moved = 2.0 * frac * size / (w_all * e)
        t = 2.0 * (n - 1.0) * lat + moved
        if direct:
            t = min(t, 2.0 * lat + moved)
        if tree:
            t = min(t, 2.0 * math.ceil(math.log2(n)) * lat + 2.0 * size / (w_all * e))
        if inr:
            t = min(t, 2.0 * (n - 1.0) * lat + size / (w_all * d[L.EFF_INR]))
        return t
    if kind == ALLGATHER or kind == REDUCESCATTER:
        steps = 1.0 if direct else n - 1.0
        return steps * lat + frac * size / (w_all * e)
    if kind == ALLTOALL:
        return lat + frac * size / (w_all * e)
    return lat + size / (w_pair * e)


@njit(cache=True)
def _group_axes(n, d):
    """Axis lengths of ``n`` chips on the scale-up ring/torus/mesh: the domain's own shape when
    the group is all of it, else the most-square factorization of ``n``."""
    x, y, z = max(d[L.UP_DIM_X], 1.0), max(d[L.UP_DIM_Y], 1.0), max(d[L.UP_DIM_Z], 1.0)
    if d[L.UP_DIM_X] > 0 and abs(x * y * z - n) < 0.5:
        return int(x), int(y), int(z)
    return most_square(n, _axes(d))


@njit(cache=True)
def _closed(length, whole, wrap, mesh):
    """Whether an axis of ``length`` chips has wrap links: never on a mesh; on a ring or torus
    when the group is the whole domain, or its length is a multiple of ``wrap`` (> 0)."""
    if mesh or length < 2:
        return False
    return whole or (wrap >= 1.0 and length % int(wrap) == 0)


@njit(cache=True)
def _torus(kind, size, n, d):
    """Ring, 2D/3D torus, 2D mesh (and a wafer's mesh of dies): dimension-ordered rings.

    Per axis of length k with neighbour bandwidth ``b`` (links per peer x link): with wrap
    links a bidirectional ring, ``2 b`` per direction and ``floor(k/2)`` steps; without, a
    chain whose end chips have one neighbour, ``b`` and ``k - 1`` steps. The data is split so
    every axis carries a part at once (as TPU collectives do), so ``w = sum of the axes' bw``
    and the steps add: all-gather / reduce-scatter ``steps a + (n-1)/n S / w``, all-reduce
    twice that. All-to-all is limited by the bisection of the worst axis, ``S k / (8 b)`` with
    wrap links and ``S k / (4 b)`` without (each chip's S/n to every chip), or by injection,
    ``(n-1)/n S / w``; its farthest message crosses the diameter: ``a + (diameter - 1) hop``.
    Point to point (pipeline neighbours): ``a + S / b``.
    """
    b = _neighbour_bw(d, n)
    whole = n >= d[L.UP_DOMAIN] - 0.5
    mesh = d[L.UP_TOPO] == L.TOPO_MESH
    w_all, steps, bisect = 0.0, 0.0, 0.0
    for k in _group_axes(n, d):
        if k < 2:
            continue
        closed = _closed(k, whole, d[L.UP_WRAP], mesh)
        w_all += 2.0 * b if closed else b
        steps += k // 2 if closed else k - 1
        bisect = max(bisect, size * k / ((8.0 if closed else 4.0) * b))
    e, lat = d[L.EFF_BUS], d[L.UP_LAT]
    frac = (n - 1.0) / n
    if kind == ALLREDUCE:
        return 2.0 * steps * lat + 2.0 * frac * size / (w_all * e)
    if kind == ALLGATHER or kind == REDUCESCATTER:
        return steps * lat + frac * size / (w_all * e)
    if kind == ALLTOALL:
        return lat + (steps - 1.0) * d[L.UP_HOP_LAT] + max(bisect, frac * size / w_all) / e
    return lat + size / (b * e)


@njit(cache=True)
def _phase(k, size, w, lat, direct, e):
    """One level of a hierarchical all-gather over ``k`` members, ``size`` bytes at the end."""
    if k < 2.0:
        return 0.0
    steps = 1.0 if direct else k - 1.0
    return steps * lat + (k - 1.0) / k * size / (w * e)


@njit(cache=True)
def _dragonfly(kind, size, n, d):
    """A group larger than the dragonfly's local group of ``g`` chips (Groq: the 8 of a node).

    Hierarchical: over ``g - 1`` local peers (``w_l``) inside each group and among the ``m =
    ceil(n/g)`` groups over the global links; each cross-group byte also crosses up to two
    local links (minimal route local, global, local), so a chip's cross-group bandwidth is
    ``w_g = min(global links x link, w_l / 2)`` and a cross-group step costs ``a + 2 hop``.
    All-gather = cross-group all-gather of S/g, then the local one of S (reduce-scatter the
    reverse); all-reduce both, twice. All-to-all: the local ``(g-1)/n S / w_l`` and the
    cross-group ``(n-g)/n S / w_g`` one after the other (an upper bound). Point to point
    (pipeline neighbours, placed in one group): ``a + S / per-peer``.
    """
    g = d[L.UP_DIM_X]
    link = d[L.UP_BW] / max(d[L.UP_LINKS], 1.0)
    per_peer = _neighbour_bw(d, g)
    w_l = (g - 1.0) * per_peer
    w_g = min(d[L.UP_DIM_Y] * link, w_l / 2.0)
    lat, e = d[L.UP_LAT], d[L.EFF_BUS]
    far = lat + 2.0 * d[L.UP_HOP_LAT]
    if kind == P2P:
        return lat + size / (per_peer * e)
    if kind == ALLTOALL:
        return far + ((g - 1.0) / n * size / w_l + (n - g) / n * size / w_g) / e
    direct = d[L.DIRECT_ALGOS] > 0.5
    t = _phase(math.ceil(n / g), size / g, w_g, far, direct, e)
    t += _phase(g, size, w_l, lat, direct, e)
    return 2.0 * t if kind == ALLREDUCE else t


@njit(cache=True)
def _scale_out(kind, size, n, d):
    """A group larger than the scale-up domain runs on the scale-out fabric. ``OUT_LINKS``
    counts peer ports: a switch gives a pair all of ``OUT_BW``, a fully connected fabric or
    dragonfly ``OUT_BW / ports`` per peer; a ring, torus or mesh there is costed as one ring.
    NCCL's tree is offered on a switch (what it picks across nodes for small messages)."""
    bw, ports, topo = d[L.OUT_BW], max(d[L.OUT_LINKS], 1.0), d[L.OUT_TOPO]
    lat, direct = d[L.OUT_LAT], d[L.DIRECT_ALGOS] > 0.5
    if topo == L.TOPO_FULLY or topo == L.TOPO_DRAGONFLY:
        pair = bw / ports
        return _direct(kind, size, n, min(n - 1.0, ports) * pair, pair, lat, direct, False,
                       False, d)  # fmt: skip
    if topo == L.TOPO_SWITCH:
        return _direct(kind, size, n, bw, bw, lat, direct, False, True, d)
    return _direct(kind, size, n, bw, bw / ports, lat, False, False, False, d)


@njit(cache=True)
def collective_time(kind, size, group, d):
    """Seconds for one collective of ``size`` bytes per chip over ``group`` chips on design
    ``d`` (all-gather: ``size`` is the gathered result; all-to-all: what one chip sends to all).

    The scale-up fabric carries groups up to its domain, the scale-out fabric larger ones. Per
    topology (see the helpers for each formula): a switch and a fully connected group
    (:func:`_direct`), a dragonfly's local group likewise and larger groups hierarchically
    (:func:`_dragonfly`), ring/torus/mesh as dimension-ordered rings (:func:`_torus`). Where
    several algorithms apply, the fastest is taken. ``a`` is the step latency (UP_LAT),
    bandwidths are per direction times the fitted bus efficiency.
    """
    if group <= 1 or size <= 0.0:
        return 0.0
    n = float(group)
    if n > d[L.UP_DOMAIN]:
        return _scale_out(kind, size, n, d)
    topo = d[L.UP_TOPO]
    if topo == L.TOPO_RING or topo == L.TOPO_TORUS or topo == L.TOPO_MESH:
        return _torus(kind, size, n, d)
    if topo == L.TOPO_DRAGONFLY and 0.0 < d[L.UP_DIM_X] < n:
        return _dragonfly(kind, size, n, d)
    lat, direct = d[L.UP_LAT], d[L.DIRECT_ALGOS] > 0.5
    if topo == L.TOPO_FULLY or topo == L.TOPO_DRAGONFLY:
        pair = _neighbour_bw(d, d[L.UP_DIM_X] if d[L.UP_DIM_X] > 0 else d[L.UP_DOMAIN])
        return _direct(kind, size, n, min((n - 1.0) * pair, d[L.UP_BW]), pair, lat, direct,
                       False, False, d)  # fmt: skip
    pair = min(_neighbour_bw(d, n), d[L.UP_BW])
    return _direct(kind, size, n, d[L.UP_BW], pair, lat, direct, d[L.UP_INR] > 0.5, False, d)


@njit(cache=True)
def _all_missed(pool, held, draws):
    """Probability that ``draws`` distinct picks out of ``pool`` experts all miss ``held`` given
    ones: C(pool - held, draws) / C(pool, draws) (continued to fractional ``held``)."""
    if held <= 0.0:
        return 1.0
    r = 1.0
    for i in range(int(draws)):
        if pool - held - i <= 0.0:
            return 0.0
        r *= (pool - held - i) / (pool - i)
    return r


@njit(cache=True)
def dispatch_fanout(experts, top_k, chips, node_chips, max_nodes):
    """(distinct chips, distinct nodes) one token's ``top_k`` experts lie on, in expectation,
    for ``experts`` spread evenly over ``chips`` chips in nodes of ``node_chips``, under uniform
    routing. Node-limited routing (``max_nodes`` > 0 and fewer than the nodes): the router
    keeps the experts of ``max_nodes`` nodes and picks the top-k among them (DeepSeek-V3
    technical report, arXiv 2412.19437, section 3.2.2: "we limit each token to be dispatched
    to at most 4 nodes"; section 4.2: M = 4)."""
    nodes = max(chips / node_chips, 1.0)
    per_chip, per_node = experts / chips, experts / nodes
    if 0.0 < max_nodes < nodes:
        pool = max_nodes * per_node
        hit_nodes = max_nodes * (1.0 - _all_missed(pool, per_node, top_k))
        hit_chips = max_nodes * node_chips * (1.0 - _all_missed(pool, per_chip, top_k))
        return hit_chips, hit_nodes
    hit_nodes = nodes * (1.0 - _all_missed(experts, per_node, top_k))
    return chips * (1.0 - _all_missed(experts, per_chip, top_k)), hit_nodes


@njit(cache=True)
def moe_alltoall_time(size, group, top_k, experts, max_nodes, d):
    """(seconds, bytes each chip puts on links) of a MoE dispatch or combine of nominal ``size``
    bytes per chip (one copy per token-expert pair) over an expert-parallel ``group``.

    A token goes once to each chip holding one of its experts (``size / k`` x distinct chips,
    :func:`dispatch_fanout`; the combine returns one reduced copy per chip). Inside one node
    that is an all-to-all on the scale-up fabric. A group spanning ``N`` nodes sends each token
    once per destination node over the scale-out fabric (``size / k`` x distinct nodes, the
    own node's share staying home), and each node forwards it to the chips holding its experts
    over the scale-up fabric (``size / k`` x distinct chips x (g-1)/g, g chips per node); the two
    fabrics run at once, chunk by chunk (the report's section 3.2.2: a token goes "via IB to the
    GPUs with the same in-node index on its target nodes", then is "instantaneously forwarded
    via NVLink", so "communications via IB and NVLink are fully overlapped"), and the slower one
    sets the time. Uniform routing sets the fan-out; skew enters through ``size`` (the busiest
    chip's).
    """
    if group <= 1 or size <= 0.0:
        return 0.0, 0.0
    per_copy = size / max(top_k, 1.0)
    n = float(group)
    if n <= d[L.UP_DOMAIN]:
        chips, _ = dispatch_fanout(experts, top_k, n, n, 0.0)
        moved = per_copy * chips
        return collective_time(ALLTOALL, moved, group, d), moved * (n - 1.0) / n
    nodes = math.ceil(n / d[L.UP_DOMAIN])
    node_chips = n / nodes
    chips, hit_nodes = dispatch_fanout(experts, top_k, n, node_chips, max_nodes)
    out_bytes, up_bytes = per_copy * hit_nodes, per_copy * chips
    t_out = _scale_out(ALLTOALL, out_bytes, float(nodes), d)
    t_up = collective_time(ALLTOALL, up_bytes, node_chips, d) if node_chips > 1.0 else 0.0
    moved = out_bytes * (nodes - 1.0) / nodes + up_bytes * (node_chips - 1.0) / node_chips
    return max(t_out, t_up), moved


@njit(cache=True)
def hide_overlapped_comm(kind, groups, per_op):
    """Two-batch overlap, in place on ``per_op[n_ops, N_OUT]``: an all-to-all row whose
    ``groups`` is W > 0 closes a window of the W rows before it (a MoE layer's two
    micro-batches). The window's all-to-alls (seconds C) run while its compute and memory ops
    (seconds B, overheads included) keep the engine busy, so they cost only max(C - B, 0): the
    window takes max(B, C) plus what cannot overlap (other collectives, the all-to-alls' launch
    overhead). Each all-to-all keeps the same fraction of its time."""
    for i in range(kind.shape[0]):
        if kind[i] != ALLTOALL or groups[i] < 1.0:
            continue
        lo = max(i - int(groups[i]), 0)
        comm, busy = 0.0, 0.0
        for j in range(lo, i + 1):
            if kind[j] == ALLTOALL:
                comm += per_op[j, L.T_COMM]
            elif kind[j] < ALLREDUCE:
                busy += per_op[j, L.T_TOTAL]
        if comm <= 0.0:
            continue
        cut = 1.0 - max(comm - busy, 0.0) / comm
        for j in range(lo, i + 1):
            if kind[j] == ALLTOALL:
                hidden = per_op[j, L.T_COMM] * cut
                per_op[j, L.T_COMM] -= hidden
                per_op[j, L.T_TOTAL] -= hidden


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
    m,
    n,
    k,
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
    """Fill ``out[0:N_OUT]`` for op ``i`` on design ``d``; ``util`` from :func:`_utils`.
    An all-to-all with ``k`` (top-k) > 0 is a MoE dispatch/combine (:func:`moe_alltoall_time`)."""
    kd = kind[i]
    t_c = vflops[i] / d[L.VPEAK]
    peak = d[L.PEAK0 + prec[i]]
    if kd == ATTN_P or kd == ATTN_D:
        t_c += flops[i] / (peak * d[L.EFF_ATTN])
    elif kd <= GROUPED:
        cls = d[L.LOW0 + prec[i]]
        eff = d[L.EFF_GEMM4] if cls > 1.5 else (d[L.EFF_GEMM8] if cls > 0.5 else d[L.EFF_GEMM16])
        t_c += flops[i] / (peak * eff * util[i])
    em = d[L.EFF_MEM]
    t_m = (
        wbytes[i] / (d[L.BW_WEIGHTS] * em)
        + kvbytes[i] / (d[L.BW_KV] * em)
        + abytes[i] / (d[L.BW_ACT] * em)
    )
    link = cbytes[i]
    if kd == ALLTOALL and k[i] > 0.0:
        t_x, link = moe_alltoall_time(cbytes[i], group[i], k[i], n[i], m[i], d)
    elif kd >= ALLREDUCE:
        t_x = collective_time(kd, cbytes[i], group[i], d)
    else:
        t_x = 0.0
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
        + 2.0 * link * d[L.E_LINK]
    )


@njit(cache=True)
def _fill(
    kind, m, n, k, groups, flops, vflops, prec, wbytes, kvbytes, abytes, cbytes, group, kernels,
    util, d, out,
):  # fmt: skip
    """Per-op costs of every op on design ``d`` into ``out[n_ops, N_OUT]``, then the two-batch
    overlap of MoE layers (:func:`hide_overlapped_comm`)."""
    for i in range(kind.shape[0]):
        _op_cost(i, kind, m, n, k, flops, vflops, prec, wbytes, kvbytes, abytes, cbytes, group,
                 kernels, util, d, out[i])  # fmt: skip
    hide_overlapped_comm(kind, groups, out)


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
    out = np.empty((kind.shape[0], L.N_OUT))
    util = _utils(kind, m, n, k, groups, d)
    _fill(kind, m, n, k, groups, flops, vflops, prec, wbytes, kvbytes, abytes, cbytes, group,
          kernels, util, d, out)  # fmt: skip
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
    per_op = np.empty((kind.shape[0], L.N_OUT))
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
        _fill(kind, m, n, k, groups, flops, vflops, prec, wbytes, kvbytes, abytes, cbytes, group,
              kernels, util, d, per_op)  # fmt: skip
        for i in range(kind.shape[0]):
            s = stage[i]
            for c in range(L.N_OUT):
                out[j, s, c] += per_op[i, c] * count[i]
    return out
