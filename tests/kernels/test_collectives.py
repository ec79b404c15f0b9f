"""Collective times per topology against hand calculations (kernels.cost.collective_time).

Every row is the tiny system's design row with the fabric columns set by hand and ideal
efficiency (bus and in-network efficiency 1), so each expected value is the formula of the
docstring with the numbers put in: ``a`` the step latency, ``h`` the hop latency, ``S`` the bytes
per chip, ``n`` the group; bandwidths per direction.
"""

import pytest

from arch.chip import System
from arch.efficiency import efficiency_for
from arch.presets import load_chip, parse_system
from kernels import layout as L
from kernels.cost import collective_time, most_square
from kernels.pack import pack_design
from workloads.ops import OpKind

AR, AG, RS, A2A, P2P = (OpKind.ALLREDUCE, OpKind.ALLGATHER, OpKind.REDUCESCATTER,
                        OpKind.ALLTOALL, OpKind.P2P)  # fmt: skip
IDEAL = {"collective_bus": 1.0, "collective_in_network": 1.0}
US = 1e-6


def _row(system, **cols):
    """The design row of ``system`` at ideal collective efficiency, with ``cols`` set (names of
    kernels.layout columns)."""
    d = pack_design(system, efficiency_for("test-family", overrides=IDEAL))
    for k, v in cols.items():
        d[getattr(L, k)] = v
    return d


def _t(kind, size, n, d):
    return collective_time(kind, size, n, d)


def test_switch(tiny_system):
    """NVSwitch-like: 4 chips, 100 GB/s per chip per direction, a = 1 us, S = 1 MB.
    All-reduce: ring 6 a + 2 x 3/4 x 1e6 / 1e11 = 6 + 15 = 21 us; two-shot 2 + 15 = 17 us;
    in-switch reduction 6 a + S / B = 6 + 10 = 16 us (the fastest). All-gather: two-shot
    1 + 3/4 x 10 = 8.5 us, ring 3 + 7.5 = 10.5 us. All-to-all 1 + 7.5 = 8.5 us. Point to
    point: the switch gives one pair the whole 100 GB/s, 1 + 10 = 11 us."""
    d = _row(tiny_system, UP_LAT=US, UP_BW=100e9, UP_LINKS=4, UP_LINKS_PER_PEER=4)
    assert _t(AR, 1e6, 4, d) == pytest.approx(17 * US)
    d[L.UP_INR] = 1.0
    assert _t(AR, 1e6, 4, d) == pytest.approx(16 * US)
    assert _t(AG, 1e6, 4, d) == pytest.approx(8.5 * US)
    assert _t(A2A, 1e6, 4, d) == pytest.approx(8.5 * US)
    assert _t(P2P, 1e6, 2, d) == pytest.approx(11 * US)
    d[L.DIRECT_ALGOS] = 0.0
    assert _t(RS, 1e6, 4, d) == pytest.approx(10.5 * US)


def test_fully_connected_mi300x_board(tiny_system):
    """MI300X board: 7 links of 64 GB/s, one to each peer; a = 1 us, S = 256 MB, NCCL-style
    (no one-step algorithms). 8 chips use all 7 links: ring 14 a + 2 x 7/8 x 2.56e8 / 4.48e11
    = 14 + 1000 us. 2 chips share one link: 2 a + 2 x 1/2 x 2.56e8 / 6.4e10 = 2 + 4000 us.
    Point to point is one peer's link: 1 + 2.56e8 / 6.4e10 = 4001 us."""
    d = _row(tiny_system, UP_TOPO=L.TOPO_FULLY, UP_BW=448e9, UP_LINKS=7, UP_LINKS_PER_PEER=1,
             UP_DOMAIN=8, UP_LAT=US, DIRECT_ALGOS=0.0)  # fmt: skip
    assert _t(AR, 256e6, 8, d) == pytest.approx(1014 * US)
    assert _t(AR, 256e6, 2, d) == pytest.approx(4002 * US)
    assert _t(P2P, 256e6, 2, d) == pytest.approx(4001 * US)


def test_fully_connected_gaudi_three_ports_per_peer(tiny_system):
    """Gaudi 2: 21 ports of 12.5 GB/s, 3 to each of 7 peers (37.5 GB/s per peer); a = 0,
    direct algorithms. 4 chips reach 3 peers over 9 ports: all-gather 3/4 x 1.125e9 /
    1.125e11 = 7.5 ms. Point to point of 1.5 GB: 1.5e9 / 3.75e10 = 40 ms."""
    d = _row(tiny_system, UP_TOPO=L.TOPO_FULLY, UP_BW=262.5e9, UP_LINKS=21, UP_LINKS_PER_PEER=3,
             UP_DOMAIN=8, UP_LAT=0.0)  # fmt: skip
    assert _t(AG, 1.125e9, 4, d) == pytest.approx(7.5e-3)
    assert _t(P2P, 1.5e9, 2, d) == pytest.approx(40e-3)


def _groq_like(tiny_system):
    """16 links of 15 GB/s; local groups of 8 fully connected by one link per peer, 4 global
    links per chip; a = h = 0.5 us; one-step algorithms allowed."""
    return _row(tiny_system, UP_TOPO=L.TOPO_DRAGONFLY, UP_BW=240e9, UP_LINKS=16,
                UP_LINKS_PER_PEER=1, UP_DIM_X=8, UP_DIM_Y=4, UP_DOMAIN=10440, UP_LAT=0.5 * US,
                UP_HOP_LAT=0.5 * US)  # fmt: skip


def test_dragonfly_inside_a_group(tiny_system):
    """8 chips = one local group, 7 peers x 15 GB/s = 105 GB/s: two-shot all-reduce of 6 MB is
    2 a + 2 x 7/8 x 6e6 / 1.05e11 = 1 + 100 = 101 us; point to point 0.5 + 6e6 / 1.5e10 =
    400.5 us (one 15 GB/s link, not 15 GB/s divided by 16 links)."""
    d = _groq_like(tiny_system)
    assert _t(AR, 6e6, 8, d) == pytest.approx(101 * US)
    assert _t(P2P, 6e6, 2, d) == pytest.approx(400.5 * US)


def test_dragonfly_across_groups(tiny_system):
    """16 chips = 2 groups. Local w_l = 105 GB/s; cross-group w_g = min(4 x 15, 105 / 2) = 52.5
    GB/s (each global byte also crosses up to two local links); a cross step is a + 2 h = 1.5
    us. All-gather of S = 8.4 MB: among the 2 groups 1.5 + 1/2 x (8.4e6 / 8) / 5.25e10 = 1.5 +
    10 = 11.5 us, then in the group 0.5 + 7/8 x 8.4e6 / 1.05e11 = 0.5 + 70 = 70.5 us: 82 us;
    all-reduce twice that, 164 us. All-to-all: 1.5 + 7/16 x 8.4e6 / 1.05e11 + 8/16 x 8.4e6 /
    5.25e10 = 1.5 + 35 + 80 = 116.5 us."""
    d = _groq_like(tiny_system)
    assert _t(AG, 8.4e6, 16, d) == pytest.approx(82 * US)
    assert _t(AR, 8.4e6, 16, d) == pytest.approx(164 * US)
    assert _t(A2A, 8.4e6, 16, d) == pytest.approx(116.5 * US)


def _torus_like(tiny_system, topo, dims, domain, *, bw=200e9, links=4, wrap=0.0):
    x, y, z = dims
    return _row(tiny_system, UP_TOPO=topo, UP_BW=bw, UP_LINKS=links, UP_LINKS_PER_PEER=1,
                UP_DIM_X=x, UP_DIM_Y=y, UP_DIM_Z=z, UP_WRAP=wrap, UP_DOMAIN=domain,
                UP_LAT=US, UP_HOP_LAT=0.5 * US)  # fmt: skip


def test_torus2d_whole_domain(tiny_system):
    """4x4 torus, the group is the whole domain: both axes are bidirectional rings, 2 x 50 GB/s
    each, w = 200 GB/s; 2 + 2 steps. S = 16 MB: all-gather 4 a + 15/16 x 1.6e7 / 2e11 = 4 + 75
    = 79 us; all-reduce 158 us. All-to-all: bisection of a 4-ring, S x 4 / (8 x 5e10) = 160
    us, over injection 75 us; the farthest chip is 4 hops away: 1 + 3 x 0.5 + 160 = 162.5 us.
    Point to point (a neighbour): 1 + 1.6e7 / 5e10 = 321 us."""
    d = _torus_like(tiny_system, L.TOPO_TORUS, (4, 4, 0), 16)
    assert _t(AG, 16e6, 16, d) == pytest.approx(79 * US)
    assert _t(AR, 16e6, 16, d) == pytest.approx(158 * US)
    assert _t(A2A, 16e6, 16, d) == pytest.approx(162.5 * US)
    assert _t(P2P, 16e6, 2, d) == pytest.approx(321 * US)


def test_mesh2d_has_no_wrap_links(tiny_system):
    """The same 4x4 as a mesh: each axis is a chain whose end chips have one neighbour, 50 GB/s
    per axis, w = 100 GB/s; 3 + 3 steps. All-reduce 12 a + 2 x 15/16 x 1.6e7 / 1e11 = 12 +
    300 = 312 us. All-to-all: a chain's middle link carries S x 4 / 4 over 50 GB/s = 320 us;
    diameter 6 hops: 1 + 5 x 0.5 + 320 = 323.5 us."""
    d = _torus_like(tiny_system, L.TOPO_MESH, (4, 4, 0), 16)
    assert _t(AR, 16e6, 16, d) == pytest.approx(312 * US)
    assert _t(A2A, 16e6, 16, d) == pytest.approx(323.5 * US)


def test_wafer_mesh_of_dies(tiny_system):
    """A wafer of 3 x 4 dies on an on-wafer mesh (what a multi-die wafer looks like to the
    fabric model; a Cerebras WSE is one chip, its CS-3s meet over SwarmX, a switch): 4 links of
    1 TB/s per die, a = 100 ns, h = 10 ns. All-gather of 12 MB: axes 3 and 4 as chains, w =
    2 TB/s, steps 2 + 3: 5 x 0.1 + 11/12 x 1.2e7 / 2e12 = 0.5 + 5.5 = 6 us. All-to-all: the
    4-chain's middle link, 1.2e7 x 4 / (4 x 1e12) = 12 us, diameter 5: 0.1 + 4 x 0.01 + 12."""
    d = _torus_like(tiny_system, L.TOPO_MESH, (3, 4, 0), 12, bw=4e12)
    d[L.UP_LAT], d[L.UP_HOP_LAT] = 100e-9, 10e-9
    assert _t(AG, 12e6, 12, d) == pytest.approx(6 * US)
    assert _t(A2A, 12e6, 12, d) == pytest.approx(12.14 * US)


def test_torus3d_wraps_on_multiples_of_four(tiny_system):
    """TPU v5p-like 4x4x4 domain, 6 links of 100 GB/s, wrap links on axes that are multiples of
    4. S = 64 MB, a = 1 us. 64 chips: three rings, w = 600 GB/s, 2 + 2 + 2 steps: 12 + 2 x
    63/64 x 6.4e7 / 6e11 = 12 + 210 = 222 us. 16 chips lie 2 x 2 x 4: the 2-axes are chains
    (100 GB/s each), the 4-axis a ring (200): w = 400, steps 1 + 1 + 2: 8 + 2 x 15/16 x 6.4e7
    / 4e11 = 308 us. 8 chips, 2 x 2 x 2, no ring: w = 300, 3 steps: 6 + 2 x 7/8 x 6.4e7 / 3e11
    = 379.33 us."""
    d = _torus_like(tiny_system, L.TOPO_TORUS, (4, 4, 4), 64, bw=600e9, links=6, wrap=4.0)
    assert _t(AR, 64e6, 64, d) == pytest.approx(222 * US)
    assert _t(AR, 64e6, 16, d) == pytest.approx(308 * US)
    assert _t(AR, 64e6, 8, d) == pytest.approx((6 + 2 * 7 / 8 * 6.4e7 / 3e11 * 1e6) * US)


def test_ring_closes_only_on_the_whole_domain(tiny_system):
    """A ring of 8 chips, 2 links of 50 GB/s: all 8 form a bidirectional ring, w = 100 GB/s, 4
    steps: 8 a + 2 x 7/8 x 8e6 / 1e11 = 8 + 140 = 148 us. 4 of them are a chain: w = 50 GB/s, 3
    steps: 6 + 2 x 3/4 x 8e6 / 5e10 = 246 us."""
    d = _torus_like(tiny_system, L.TOPO_RING, (8, 0, 0), 8, bw=100e9, links=2)
    assert _t(AR, 8e6, 8, d) == pytest.approx(148 * US)
    assert _t(AR, 8e6, 4, d) == pytest.approx(246 * US)


def test_scale_out_offers_the_tree(tiny_system):
    """16 chips on an 8-chip domain run on the scale-out switch (50 GB/s, 5 us per step). NCCL
    style, 1 KB: ring 30 x 5 + 2 x 15/16 x 1e3 / 5e10 = 150.04 us; double binary tree 2 x
    log2 16 x 5 + 2 x 1e3 / 5e10 = 40.04 us."""
    d = _row(tiny_system, UP_DOMAIN=8, OUT_BW=50e9, OUT_LAT=5 * US, OUT_TOPO=L.TOPO_SWITCH,
             OUT_LINKS=1, DIRECT_ALGOS=0.0)  # fmt: skip
    assert _t(AR, 1e3, 16, d) == pytest.approx(40.04 * US)


def test_most_square_factorization():
    """The group shape of a torus or mesh smaller than its domain."""
    assert most_square(16, 2) == (4, 4, 1)
    assert most_square(16, 3) == (2, 2, 4)
    assert most_square(8960, 3) == (16, 20, 28)
    assert most_square(7, 2) == (1, 7, 1)
    assert most_square(12, 1) == (12, 1, 1)


@pytest.mark.parametrize(
    ("system", "per_peer"),
    [
        ("groq-lpu:8", 15e9),  # one 15 GB/s C2C link per peer (was 0.74 GB/s)
        ("mi300x:8", 64e9),  # one 64 GB/s Infinity Fabric link per peer (was 6.4)
        ("gaudi2:8", 37.5e9),  # 3 x 100 GbE per peer
        ("gaudi3:8", 75e9),  # 3 x 200 GbE per peer (was 0.94)
        ("tpu-v5e:16", 50e9),  # one ICI link per neighbour
        ("tpu-v5p:64", 100e9),
        ("h100-sxm:8", 450e9),  # NVSwitch: a pair gets all 18 links
    ],
)
def test_point_to_point_is_the_published_per_peer_bandwidth(system, per_peer):
    """Point to point of 1 GB between neighbours at efficiency 1 and no latency is 1 GB / the
    per-peer bandwidth: links per peer x (per-chip bandwidth / links), divided once."""
    s = parse_system(system)
    d = pack_design(s, efficiency_for(s.chip.family, overrides=IDEAL))
    d[L.UP_LAT] = 0.0
    assert 1e9 / _t(P2P, 1e9, 2, d) == pytest.approx(per_peer)


def _v5e_as(topology, dims, wrap):
    chip = load_chip("tpu-v5e")
    up = chip.scale_up.model_dump() | {"topology": topology, "dims": dims, "links_per_peer": None,
                                       "wrap_multiple": wrap}  # fmt: skip
    return chip.model_copy(update={"scale_up": type(chip.scale_up)(**up)})


def test_torus_mesh_and_ring_differ_as_physics_says():
    """TPU v5e (4 links of 50 GB/s, a = 2 us), 1 MB all-reduce at efficiency 1, as the issue
    measured them (they were one ring, 5.378 ms alike at its size).

    The whole 256-chip pod: torus2d 16x16 rings on both axes, w = 4 x 50 = 200 GB/s, 8 + 8
    steps: 32 a + 2 x 255/256 x 1e6 / 2e11 = 64 + 9.96 us. mesh2d: chains, w = 100, 15 + 15
    steps: 60 a + 19.92 us. torus3d (no dims: 4 x 8 x 8, 4/6 links per neighbour): w = 6 x
    33.3 = 200, 2 + 4 + 4 steps: 40 + 9.96 us. ring (2 links per neighbour): w = 200, 128
    steps: 512 + 9.96 us.
    A 16-chip slice (4x4) of the pod has no wrap links (not a full 16 axis): torus2d = mesh2d,
    w = 100, 3 + 3 steps: 24 + 2 x 15/16 x 10 = 42.75 us; as a ring it is a 16-chain with 2
    links per neighbour, w = 100, 15 steps: 60 + 18.75 = 78.75 us."""
    eff = efficiency_for("google-tpu", overrides=IDEAL)
    t = {}
    for topo, dims, wrap in (("torus2d", (16, 16), 16), ("mesh2d", (16, 16), None),
                             ("torus3d", None, None), ("ring", None, None)):  # fmt: skip
        chip = _v5e_as(topo, dims, wrap)
        for n in (16, 256):
            d = pack_design(System(chip=chip, count=n), eff)
            d[L.UP_LAT] = 2 * US
            t[topo, n] = _t(AR, 1e6, n, d) / US
    bw = 2 * 255 / 256 * 1e6 / 2e11 / US
    assert t["torus2d", 256] == pytest.approx(64 + bw)
    assert t["mesh2d", 256] == pytest.approx(120 + 2 * bw)
    assert t["torus3d", 256] == pytest.approx(40 + bw)
    assert t["ring", 256] == pytest.approx(512 + bw)
    assert t["torus2d", 16] == t["mesh2d", 16] == pytest.approx(42.75)
    assert t["ring", 16] == pytest.approx(78.75)
