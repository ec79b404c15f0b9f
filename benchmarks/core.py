"""Speed of the analytical core, each figure beside a baseline measured in the same run.

    python benchmarks/core.py [--json] [--points N]

* ``predict_warm_s``: one warm ``predict`` of Llama-3.1-70B on 8 x H100 (prefill + decode), median.
* ``design_points_per_s``: the Numba kernel costing a 70B TP8 decode step for N chip design points
  (peaks, bandwidths and link speeds varied) on one core; ``numpy_reference_points_per_s``: the
  same
  formulas vectorized over designs in plain NumPy, in this process; results are checked equal.
* ``predict_batch_max_s``: the same with ``--batch max``, median.
* ``cold_start_s``: ``xpusim predict`` as a fresh process with an empty Numba cache;
  ``cold_start_warm_cache_s``: the same with the cache filled.
* ``yardstick_s``: a fixed pure-Python loop (10^6 iterations) timed in the same process; each
  time above is also printed as a ratio to it (``*_over_yardstick``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explore.api.predict import predict  # noqa: E402
from kernels import layout as L  # noqa: E402
from kernels.cost import stage_totals  # noqa: E402
from kernels.pack import pack_design, pack_ops  # noqa: E402
from sim.evaluate import resolve_workload  # noqa: E402

CLI = [
    "predict",
    "--system",
    "h100-sxm:8",
    "--model",
    "llama-3.1-70b",
    "--quant",
    "fp8",
    "--tp",
    "8",
    "--batch",
    "64",
    "--input-len",
    "2048",
    "--output-len",
    "256",
    "--json",
]


def _designs(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = np.repeat(base[None, :], n, axis=0)
    d[:, L.PEAK0 : L.PEAK0 + 9] *= rng.uniform(0.5, 2.0, (n, 1))
    for col in (L.BW_WEIGHTS, L.BW_KV, L.BW_ACT):
        d[:, col] = base[col] * rng.uniform(0.5, 2.0, n)
    d[:, L.UP_BW] *= rng.uniform(0.25, 4.0, n)
    return d


def _numpy_util(m, n, k, groups, d):
    """tile_wave_util of kernels.cost, vectorized over designs (same menu, split-K)."""
    units, tr0, tc0 = d[:, L.UNITS], d[:, L.TILE_R], d[:, L.TILE_C]
    best = np.zeros(len(d))
    for fr in (1.0, 0.5, 0.25):
        for fc in (1.0, 0.5, 0.25):
            tr, tc = tr0 * fr, tc0 * fc
            ta, tb = np.ceil(m / tr), np.ceil(n / tc)
            tiles = ta * tb * max(groups, 1.0)
            split = np.minimum(np.floor(units / tiles), max(1.0, math.floor(k / 256.0)))
            tiles = np.where(tiles < units, tiles * np.maximum(split, 1.0), tiles)
            waves = np.ceil(tiles / units)
            best = np.maximum(best, (m * n) / (ta * tr * tb * tc) * tiles / (waves * units))
    return best


def numpy_reference(packed, d: np.ndarray) -> np.ndarray:
    """Total step time per design: the kernel's formulas for GEMM, attention, elementwise,
    all-reduce and all-gather ops (the kinds in a dense TP decode step on a switch), vectorized
    over designs."""
    (kind, m, n, k, groups, flops, vflops, prec, wb, kvb, ab, cb, group, kernels) = packed.args
    total = np.zeros(len(d))
    em, p = d[:, L.EFF_MEM], d[:, L.ROOFLINE_P]
    for i in range(len(kind)):
        t_c = vflops[i] / d[:, L.VPEAK]
        peak = d[:, L.PEAK0 + prec[i]]
        if kind[i] in (2, 3):
            t_c = t_c + flops[i] / (peak * d[:, L.EFF_ATTN])
        elif kind[i] <= 1:
            cls = d[:, L.LOW0 + prec[i]]
            eff = np.where(cls > 1.5, d[:, L.EFF_GEMM4],
                           np.where(cls > 0.5, d[:, L.EFF_GEMM8], d[:, L.EFF_GEMM16]))
            t_c = t_c + flops[i] / (peak * eff * _numpy_util(m[i], n[i], k[i], groups[i], d))
        t_m = (
            wb[i] / (d[:, L.BW_WEIGHTS] * em)
            + kvb[i] / (d[:, L.BW_KV] * em)
            + ab[i] / (d[:, L.BW_ACT] * em)
        )
        soft = (t_c**p + t_m**p) ** (1.0 / p)
        busy = np.where((t_c > 0) & (t_m > 0) & (p < 50), soft, np.maximum(t_c, t_m))
        t_x = 0.0
        if kind[i] == 7:  # all-reduce: ring vs two-shot vs in-network, as in collective_time
            nn, s = float(group[i]), cb[i]
            beta = 1.0 / (d[:, L.UP_BW] * d[:, L.EFF_BUS])
            lat = d[:, L.UP_LAT]
            ring = 2 * (nn - 1) * lat + 2 * (nn - 1) / nn * s * beta
            two = 2 * lat + 2 * (nn - 1) / nn * s * beta
            inr = 2 * (nn - 1) * lat + s / (d[:, L.UP_BW] * d[:, L.EFF_INR])
            t_x = np.minimum(np.minimum(ring, two), np.where(d[:, L.UP_INR] > 0.5, inr, np.inf))
        elif kind[i] == 8:  # all-gather through a switch with direct algorithms: one step
            nn = float(group[i])
            t_x = d[:, L.UP_LAT] + (nn - 1) / nn * cb[i] / (d[:, L.UP_BW] * d[:, L.EFF_BUS])
        total += (busy + t_x + kernels[i] * d[:, L.KERNEL_OVH]) * packed.count[i]
    return total


def bench_points(n_points: int) -> dict:
    w = resolve_workload(
        system="h100-sxm:8",
        model="llama-3.1-70b",
        quant="fp8",
        tp=8,
        input_len=2048,
        output_len=256,
    )
    plan = w.plan(64)
    g = w.graph("decode", 64, 1, 2048 + 128)
    packed = pack_ops(g)
    base = pack_design(w.system, w.eff, plan)
    designs = _designs(base, n_points)
    stage_totals(*packed.args, packed.count, packed.stage, packed.n_stages, designs[:2])  # compile
    t0 = time.perf_counter()
    out = stage_totals(*packed.args, packed.count, packed.stage, packed.n_stages, designs)
    numba_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = numpy_reference(packed, designs)
    numpy_s = time.perf_counter() - t0
    np.testing.assert_allclose(out[:, 0, L.T_TOTAL], ref, rtol=1e-9)
    return {
        "design_points_per_s": n_points / numba_s,
        "numpy_reference_points_per_s": n_points / numpy_s,
        "ops_per_step": len(g),
        "points": n_points,
    }


def _median_s(fn, repeats: int) -> float:
    fn()  # warm: caches, JIT
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_predict(repeats: int = 20) -> dict:
    args = {"tp": 8, "input_len": 2048, "output_len": 256}
    warm = _median_s(lambda: predict("h100-sxm:8", "llama-3.1-70b", "fp8", batch=64, **args),
                     repeats)  # fmt: skip
    most = _median_s(lambda: predict("h100-sxm:8", "llama-3.1-70b", "fp8", batch="max", **args),
                     max(repeats // 4, 3))  # fmt: skip
    return {"predict_warm_s": warm, "predict_batch_max_s": most}


def yardstick() -> float:
    """Seconds of a fixed pure-Python loop (best of 3), the baseline the other figures are read
    against on this machine and in this process."""

    def loop() -> float:
        t0 = time.perf_counter()
        acc = 0
        for i in range(1_000_000):
            acc += i * i % 7
        return time.perf_counter() - t0

    return min(loop() for _ in range(3))


def _cli_seconds(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "explore.cli", *CLI],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def bench_cold_start() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = _cli_seconds(cache)
        warm = min(_cli_seconds(cache) for _ in range(2))
    return {"cold_start_s": cold, "cold_start_warm_cache_s": warm}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--points", type=int, default=200_000)
    args = ap.parse_args()
    res = {"yardstick_s": yardstick(), **bench_predict(), **bench_points(args.points),
           **bench_cold_start()}  # fmt: skip
    for key in ("predict_warm_s", "predict_batch_max_s", "cold_start_s",
                "cold_start_warm_cache_s"):  # fmt: skip
        res[key.removesuffix("_s") + "_over_yardstick"] = res[key] / res["yardstick_s"]
    res["numba_over_numpy"] = res["design_points_per_s"] / res["numpy_reference_points_per_s"]
    res["cold_over_warm_cache"] = res["cold_start_s"] / res["cold_start_warm_cache_s"]
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:32s} {v:,.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
