"""Speed of the serving simulation, each figure beside a baseline measured in the same run.

    python benchmarks/serving.py [--json] [--requests N]

10,000 requests (lognormal 1,024 +- 512 input, 256 +- 128 output tokens) of Llama-3.1-70B FP8 on
8 x H100 (TP8), continuous batching, Poisson arrivals at 8 requests/s (about 80 % of the
capacity of the replica at these lengths):

* ``requests_per_wall_s``: simulated requests per wall-clock second with a warm step-model memo
  (target >= 2,000); ``sim_over_wall``: simulated seconds per wall second.
* baseline ``cold_requests_per_wall_s``: the same run with an empty memo (every new batch shape
  costed by the analytic step), i.e. what memoization buys.
* ``steps``, ``cached_shapes``: serving steps simulated and distinct batch shapes costed.
* ``steady_state_s``: wall seconds of ``xpusim predict --batch max`` with the same length
  distributions (:func:`explore.api.steady.steady_state`: the static ``--batch max`` at the mean
  lengths, then its default closed batch, 16 requests per batch slot, simulated), beside
  ``static_batch_max_s``, the static ``--batch max`` alone; ``steady_over_static``: the
  simulated throughput over the static estimate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explore.api.predict import predict  # noqa: E402
from explore.api.serve import ServeRequest, build  # noqa: E402
from explore.api.steady import steady_state  # noqa: E402
from sim.serving import simulate_serving  # noqa: E402
from sim.traffic import LogNormal, Poisson  # noqa: E402


def _run(req: ServeRequest, sm=None):
    cfg, fresh = build(req)
    sm = sm or fresh
    t0 = time.perf_counter()
    trace = simulate_serving(cfg, sm.step)
    return time.perf_counter() - t0, trace, sm


def _steady() -> dict:
    target = {"system": "h100-sxm:8", "model": "llama-3.1-70b", "quant": "fp8", "tp": 8,
              "pp": 1, "ep": 1, "dp": 1}  # fmt: skip
    t0 = time.perf_counter()
    predict(**target, batch="max", input_len=1024, output_len=256)
    t1 = time.perf_counter()
    r = steady_state(**target, input_len="lognormal:1024:512", output_len="lognormal:256:128")
    t2 = time.perf_counter()
    info = r.config["steady_state"]
    return {"steady_state_s": t2 - t1, "static_batch_max_s": t1 - t0,
            "steady_state_requests": info["requests"],
            "steady_over_static": r.output_tokens_per_s / info["static_output_tokens_per_s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--requests", type=int, default=10_000)
    args = ap.parse_args()
    req = ServeRequest("h100-sxm:8", "llama-3.1-70b", "fp8", LogNormal(1024, 512),
                       LogNormal(256, 128), Poisson(8.0), requests=args.requests, tp=8,
                       scheduler="continuous", seed=0)  # fmt: skip
    cold_s, trace, sm = _run(req)
    warm_s, trace, _ = _run(req, sm)
    n = len(trace.requests)
    out = {
        "requests": n,
        "steps": len(trace.steps["t"]),
        "cached_shapes": sm.cached_shapes,
        "simulated_s": trace.simulated_s,
        "requests_per_wall_s": n / warm_s,
        "sim_over_wall": trace.simulated_s / warm_s,
        "cold_requests_per_wall_s": n / cold_s,
        "warm_over_cold": cold_s / warm_s,
        **_steady(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:>26}: {v:,.4g}")


if __name__ == "__main__":
    main()
