"""Column layout of the packed design vector and of the per-op cost output.

A *design* is one float64 row holding everything the cost kernels need about a chip, its fabric,
the efficiency factors and where weights/KV/activations live. Many designs stack into a matrix
``designs[n_designs, N_DESIGN]``; search and sweeps vary its columns directly.
"""

# matrix peak FLOP/s per precision code (workloads.ops.precision_code order); unsupported
# precisions hold the peak of the precision the chip falls back to.
PEAK0 = 0  # .. PEAK0 + 8
VPEAK = 9
UNITS = 10
TILE_R = 11
TILE_C = 12
WEIGHT_STATIONARY = 13
BW_WEIGHTS = 14
BW_KV = 15
BW_ACT = 16
EFF_GEMM16 = 17
EFF_GEMM8 = 18
EFF_ATTN = 19
EFF_MEM = 20
ROOFLINE_P = 21
KERNEL_OVH = 22
UP_BW = 23
UP_LAT = 24
UP_TOPO = 25
UP_LINKS = 26
UP_INR = 27
UP_DOMAIN = 28
OUT_BW = 29
OUT_LAT = 30
OUT_TOPO = 31
OUT_LINKS = 32
EFF_BUS = 33
EFF_INR = 34
DIRECT_ALGOS = 35  # 1: engines' one/two-shot collectives allowed (inference); 0: NCCL only
E_FLOP16 = 36
PEAK16 = 37
E_WEIGHTS = 38
E_KV = 39
E_ACT = 40
E_LINK = 41
E_VFLOP = 42
IDLE_W = 43
TDP_W = 44
# precision class of code i as this design resolves it: 0 16 bits or more, 1 8-bit, 2 6/4-bit
# (which of EFF_GEMM16 / EFF_GEMM8 / EFF_GEMM4 its GEMMs reach)
LOW0 = 45  # .. LOW0 + 8
# scale-up wiring (arch.chip.Interconnect, defaults resolved by kernels.pack): links between one
# chip and one directly linked peer (may be fractional: a torus's links spread over its
# neighbours); ring/torus/mesh: chips per axis of the whole domain (unused axes 0); dragonfly:
# DIM_X chips per local group, DIM_Y global links per chip; seconds per further hop; ring/torus:
# axes whose length is a multiple of UP_WRAP have wrap links (0: only the whole domain's).
# The scale-out fabric needs no such columns: OUT_LINKS counts peer ports (links / per peer).
UP_LINKS_PER_PEER = 54
UP_DIM_X = 55
UP_DIM_Y = 56
UP_DIM_Z = 57
UP_HOP_LAT = 58
UP_WRAP = 59
# multiplier on every dynamic energy per FLOP and per byte (the family's fitted energy scale)
E_SCALE = 60
# fixed latencies of statically scheduled / dataflow chips: per layer, per pipeline-stage hop
LAT_LAYER = 61
LAT_STAGE_HOP = 62
EFF_GEMM4 = 63
# the serving engine's fixed cost per forward pass (once per step)
STEP_OVH = 64
N_DESIGN = 65

# topology codes
TOPO_SWITCH = 0
TOPO_RING = 1
TOPO_TORUS = 2
TOPO_MESH = 3
TOPO_FULLY = 4
TOPO_DRAGONFLY = 5
TOPOLOGY_CODES = {
    "switch": TOPO_SWITCH,
    "ring": TOPO_RING,
    "torus2d": TOPO_TORUS,
    "torus3d": TOPO_TORUS,
    "mesh2d": TOPO_MESH,
    "fully_connected": TOPO_FULLY,
    "dragonfly": TOPO_DRAGONFLY,
    "none": TOPO_SWITCH,
}

# per-op output columns
T_TOTAL = 0
T_COMPUTE = 1
T_MEMORY = 2
T_COMM = 3
T_OVERHEAD = 4
ENERGY = 5
N_OUT = 6
